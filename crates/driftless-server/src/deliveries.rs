//! Recently seen webhook delivery ids, so that a replayed delivery triggers nothing.
//!
//! A Git host gives each delivery an id (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`,
//! `X-Gitea-Delivery`) and keeps it when the same delivery is sent again. The ids of
//! the last [`RECENT_DELIVERIES`] verified deliveries are kept in memory, hashed with
//! their receiver's name so every entry has the same small size.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// How many delivery ids are remembered (about 1 MiB with the index).
pub const RECENT_DELIVERIES: usize = 10_000;

type Key = [u8; 32];

/// A bounded set of (receiver, delivery id) pairs; the oldest is forgotten first.
#[derive(Debug, Default)]
pub struct RecentDeliveries {
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<Key>,
    set: HashSet<Key>,
}

impl RecentDeliveries {
    /// Records delivery `id` of `receiver`; false if it was already recorded.
    pub fn first_time(&self, receiver: &str, id: &str) -> bool {
        let mut hash = Sha256::new();
        hash.update(receiver.as_bytes());
        hash.update([0]);
        hash.update(id.as_bytes());
        let key: Key = hash.finalize().into();
        let mut seen = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !seen.set.insert(key) {
            return false;
        }
        seen.order.push_back(key);
        if seen.order.len() > RECENT_DELIVERIES
            && let Some(oldest) = seen.order.pop_front()
        {
            seen.set.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{RECENT_DELIVERIES, RecentDeliveries};

    #[test]
    fn a_delivery_counts_once_per_receiver_and_old_ids_are_forgotten() {
        let seen = RecentDeliveries::default();
        assert!(seen.first_time("gh", "d-1"));
        assert!(!seen.first_time("gh", "d-1"));
        assert!(seen.first_time("other", "d-1"));
        for i in 0..RECENT_DELIVERIES {
            assert!(seen.first_time("gh", &format!("n-{i}")));
        }
        assert!(
            seen.first_time("gh", "d-1"),
            "evicted after {RECENT_DELIVERIES} newer ids"
        );
    }
}
