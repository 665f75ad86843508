//! Every request driftless sends to an API server, counted by HTTP method,
//! so its own load is told apart from other clients' (a no-op resync must
//! write nothing) and exported as `driftless_kube_requests_total`.

use std::sync::atomic::{AtomicU64, Ordering};

use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tower::util::MapRequestLayer;

/// The methods counted apart; anything else counts as `OTHER`.
pub const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"];

static COUNTS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

fn index(method: &http::Method) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method.as_str())
        .unwrap_or(METHODS.len() - 1)
}

/// Requests sent so far by every client of this process built with
/// [`client`], in the order of [`METHODS`]. Watches and lists are `GET`.
pub fn counts() -> [u64; 6] {
    std::array::from_fn(|i| COUNTS[i].load(Ordering::Relaxed))
}

/// Requests that change something (every method but `GET`) sent so far.
pub fn writes() -> u64 {
    counts().iter().skip(1).sum()
}

/// A client for `config` whose requests are counted.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    let count = |request: http::Request<Body>| {
        COUNTS[index(request.method())].fetch_add(1, Ordering::Relaxed);
        request
    };
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&MapRequestLayer::new(count))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_map_to_their_counter_and_the_rest_to_other() {
        assert_eq!(index(&http::Method::GET), 0);
        assert_eq!(index(&http::Method::PATCH), 3);
        assert_eq!(index(&http::Method::DELETE), 4);
        assert_eq!(index(&http::Method::OPTIONS), 5);
    }
}
