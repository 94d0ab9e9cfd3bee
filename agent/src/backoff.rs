//! Reconnect pacing: exponential backoff with jitter between failed uploads, reset by the first
//! success. Jitter spreads a fleet's reconnects after a collector restart so they do not arrive
//! as one wave. Failures that can pass are capped low (the spools drain soon after the collector
//! is back); failures that wait for a person wait a longer step of their own.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is half the exponential step plus a
/// random part of up to the other half.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    long: Duration,
    failures: u32,
}

impl Backoff {
    /// Steps from `base` doubling up to `max`; `long` is the step of failures that need a
    /// person (see [`Backoff::next_max_delay`]).
    pub fn new(base: Duration, max: Duration, long: Duration) -> Self {
        Self {
            base,
            max,
            long,
            failures: 0,
        }
    }

    /// The delay before the next attempt after one more failure. `unit` is a random number in
    /// [0, 1) (injected so tests are deterministic).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures.min(20)))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The delay before the next attempt at the long step, for failures that wait for a person
    /// (a revoked certificate) rather than for the collector to come back.
    pub fn next_max_delay(&mut self, unit: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let half = self.long / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(15),
            Duration::from_secs(60),
        );
        let highs: Vec<u128> = (0..9).map(|_| b.next_delay(1.0).as_millis()).collect();
        assert_eq!(
            highs,
            [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]
        );
        let lows: Vec<u128> = (0..3).map(|_| b.next_delay(0.0).as_millis()).collect();
        assert_eq!(lows, [7500, 7500, 7500], "jitter spreads even the cap");
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
    }

    #[test]
    fn failures_that_need_a_person_wait_the_longest_step() {
        let mut b = Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(15),
            Duration::from_secs(60),
        );
        let cases = [(0.0, 30), (0.5, 45), (1.0, 60)];
        for (unit, secs) in cases {
            assert_eq!(b.next_max_delay(unit), Duration::from_secs(secs), "{unit}");
        }
        assert_eq!(b.failures(), 3);
    }

    #[test]
    fn jitter_stays_within_half_to_full_step() {
        let mut b = Backoff::new(
            Duration::from_secs(4),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        for unit in [0.0, 0.3, 0.999] {
            b.reset();
            let d = b.next_delay(unit);
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }
}
