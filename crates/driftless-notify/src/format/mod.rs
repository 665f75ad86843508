//! Requests in each service's documented format. Pure: a delivery and a
//! target in, the HTTP request out, so every format is tested alone.

mod alertmanager;
mod chat;
mod commit;
mod webhook;

use driftless_api::{NotifierType, Time};

pub use alertmanager::{Alert, FIRING_MS, alert_for, request as alertmanager_request, resolves};
pub use commit::repository_of;

use crate::event::Delivery;
use crate::target::Target;

/// One HTTP request to send. Its `Debug` leaves out the URL and headers,
/// which may carry a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Full URL.
    pub url: String,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish_non_exhaustive()
    }
}

/// Why a delivery cannot be put in a target's format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// A commit status needs a repository and none could be derived.
    #[error(
        "no repository for the commit status: set spec.repository (the GitSource URL {url:?} names none)"
    )]
    NoRepository {
        /// The GitSource URL.
        url: String,
    },
}

/// The request that tells `delivery` to `target`, or `None` when the target's
/// type does not take it (chat types take events, commit-status types commits).
/// Alertmanager alerts are built by [`alert_for`] instead.
pub fn request(
    target: &Target,
    delivery: &Delivery,
    now: Time,
) -> Result<Option<Request>, FormatError> {
    let url = target.url.expose();
    let json = |value: serde_json::Value| {
        serde_json::to_vec(&value).expect("a JSON value always serialises")
    };
    match (target.type_(), delivery) {
        (
            NotifierType::Github | NotifierType::Gitlab | NotifierType::Gitea,
            Delivery::Commit(c),
        ) => commit::request(target, c).map(Some),
        (_, Delivery::Commit(_)) => Ok(None),
        (NotifierType::Github | NotifierType::Gitlab | NotifierType::Gitea, _) => Ok(None),
        (NotifierType::Alertmanager, Delivery::Event(e)) => {
            let alert = alert_for(e, now);
            Ok(Some(alertmanager::request(target, &[alert])))
        }
        (NotifierType::Webhook, Delivery::Event(e)) => Ok(Some(webhook::request(target, e))),
        (NotifierType::Telegram, Delivery::Event(e)) => Ok(Some(chat::telegram(target, e))),
        (type_, Delivery::Event(e)) => {
            let body = match type_ {
                NotifierType::Slack => chat::slack(e, target.spec.channel.as_deref()),
                NotifierType::Mattermost => chat::mattermost(e, target.spec.channel.as_deref()),
                NotifierType::Discord => chat::discord(e),
                NotifierType::Googlechat => chat::google_chat(e),
                _ => chat::teams(e),
            };
            Ok(Some(Request {
                url: url.to_owned(),
                headers: Vec::new(),
                body: json(body),
            }))
        }
    }
}
