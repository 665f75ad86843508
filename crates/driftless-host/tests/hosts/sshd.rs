//! The test hosts of driftless-testenv as endpoints of this crate.

use driftless_host::{Endpoint, Identity};
pub use driftless_testenv::hosts::{Lab, available};

/// Endpoints of a lab's hosts.
pub trait Endpoints {
    /// Endpoints of all hosts, in order, each with a `region` variable.
    fn endpoints(&self) -> Vec<Endpoint>;
}

impl Endpoints for Lab {
    fn endpoints(&self) -> Vec<Endpoint> {
        self.hosts
            .iter()
            .map(|host| Endpoint {
                name: host.name.clone(),
                address: "127.0.0.1".into(),
                port: host.port,
                user: driftless_testenv::hosts::whoami(),
                identity: Identity::File(self.identity()),
                known_hosts: driftless_host::KnownHosts::File(host.known_hosts()),
                apps_root: host.apps().display().to_string(),
                vars: [("region".to_owned(), format!("region-of-{}", host.name))].into(),
            })
            .collect()
    }
}
