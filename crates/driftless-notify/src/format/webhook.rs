//! The generic webhook: the event as driftless's own JSON document, signed
//! with HMAC-SHA256 of the body when the Notifier has a key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Request;
use crate::event::Event;
use crate::target::Target;

/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Driftless-Signature";
/// Header carrying the event's kind.
pub const EVENT_HEADER: &str = "X-Driftless-Event";

pub(super) fn request(target: &Target, event: &Event) -> Request {
    let body = serde_json::to_vec(event).expect("an event always serialises");
    let mut headers = vec![(EVENT_HEADER, event.kind.as_str().to_owned())];
    if let Some(key) = &target.token {
        headers.push((SIGNATURE_HEADER, signature(key.expose().as_bytes(), &body)));
    }
    Request {
        url: target.url.expose().to_owned(),
        headers,
        body,
    }
}

/// `sha256=<hex>` of `body` under `key`.
pub(crate) fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
