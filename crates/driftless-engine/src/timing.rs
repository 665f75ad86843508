//! Time arithmetic shared by the queue and the store: wall-clock stamps, backoff, jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use driftless_api::UnixMillis;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> UnixMillis {
    // A clock before 1970 is a broken host; recording 0 is better than refusing to record.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Exponential backoff: `base * factor^(failures-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay, reached after enough consecutive failures.
    pub max: Duration,
    /// Multiplier per further failure (2 doubles; 1 keeps the delay constant).
    pub factor: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            factor: 2,
        }
    }
}

impl Backoff {
    /// The delay before retry number `failures` (1 for the first failure); zero for 0.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        // Long past the cap: saturate instead of overflowing.
        let factor = self.factor.max(1).saturating_pow(failures - 1);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Spreads `delay` uniformly over `[delay * (1 - fraction), delay * (1 + fraction)]`.
///
/// Without jitter, Apps created together (one config file) would fetch and apply in
/// lock-step forever, hitting Git servers and the API server in bursts.
pub fn jitter(delay: Duration, fraction: f64, rng: &mut fastrand::Rng) -> Duration {
    let fraction = fraction.clamp(0.0, 1.0);
    if fraction == 0.0 || delay.is_zero() {
        return delay;
    }
    let spread = 1.0 + fraction * (rng.f64() * 2.0 - 1.0);
    delay.mul_f64(spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            factor: 2,
        };
        let delays: Vec<u64> = (0..7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(b.delay(200), Duration::from_secs(10));
        let triple = Backoff {
            factor: 3,
            max: Duration::from_secs(100),
            ..b
        };
        let delays: Vec<u64> = (0..6).map(|n| triple.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![0, 1, 3, 9, 27, 81]);
    }

    #[test]
    fn jitter_stays_within_fraction_and_varies() {
        let mut rng = fastrand::Rng::with_seed(7);
        let base = Duration::from_secs(100);
        let samples: Vec<Duration> = (0..200).map(|_| jitter(base, 0.1, &mut rng)).collect();
        assert!(
            samples
                .iter()
                .all(|d| *d >= Duration::from_secs(90) && *d <= Duration::from_secs(110))
        );
        let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
        assert!(
            distinct.len() > 100,
            "jitter should spread values, got {}",
            distinct.len()
        );
        assert_eq!(jitter(base, 0.0, &mut rng), base);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
