//! When to take a snapshot: at startup, when the set of filesystems changes, when a disk crosses
//! one of the collector's thresholds (in either direction), when another probe's state changes
//! (see `facts::Signature`), and otherwise once per heartbeat. Measuring is frequent and cheap;
//! snapshots, spool writes and uploads happen only on these triggers. Pure, so it is tested
//! without clocks or disks.

use std::time::{Duration, Instant};

use firstline_proto::v1::Trigger;

use crate::facts::Signature;

/// What the last snapshot showed, to compare the next measurement against.
#[derive(Debug, Clone, PartialEq)]
pub struct LastReport {
    pub at: Instant,
    pub signature: Signature,
}

/// Decides whether the current state must be reported, and why.
pub fn decide(
    last: Option<&LastReport>,
    now: Instant,
    current: &Signature,
    heartbeat: Duration,
) -> Option<Trigger> {
    let Some(last) = last else {
        return Some(Trigger::Startup);
    };
    let (before, after) = (&last.signature.disk, &current.disk);
    let same_mounts =
        before.len() == after.len() && before.iter().zip(after).all(|(a, b)| a.0 == b.0);
    if !same_mounts {
        Some(Trigger::Change)
    } else if before != after {
        Some(Trigger::Threshold)
    } else if last.signature.other != current.other {
        Some(Trigger::Change)
    } else if now.duration_since(last.at) >= heartbeat {
        Some(Trigger::Heartbeat)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::bucket;

    const T: &[f64] = &[85.0, 90.0];

    fn state(pairs: &[(&str, f64)], other: &[&str]) -> Signature {
        let mut disk: Vec<(String, usize)> = pairs
            .iter()
            .map(|(m, p)| (m.to_string(), bucket(*p, T)))
            .collect();
        disk.sort();
        Signature {
            disk,
            other: other.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn reports_crossings_and_changes_at_once_and_quiet_values_only_on_heartbeat() {
        let t0 = Instant::now();
        let hb = Duration::from_secs(60);
        let last = LastReport {
            at: t0,
            signature: state(&[("/", 50.0), ("/home", 89.0)], &["av clamav true"]),
        };
        let at = |s| t0 + Duration::from_secs(s);
        let cases = [
            (
                state(&[("/", 60.0), ("/home", 89.9)], &["av clamav true"]),
                1,
                None,
            ),
            (
                state(&[("/", 50.0), ("/home", 90.0)], &["av clamav true"]),
                1,
                Some(Trigger::Threshold),
            ),
            (
                state(&[("/", 50.0), ("/home", 84.0)], &["av clamav true"]),
                1,
                Some(Trigger::Threshold),
            ),
            (
                state(&[("/", 50.0)], &["av clamav true"]),
                1,
                Some(Trigger::Change),
            ),
            (
                state(&[("/", 50.0), ("/data", 89.0)], &["av clamav true"]),
                1,
                Some(Trigger::Change),
            ),
            (
                state(&[("/", 50.0), ("/home", 89.0)], &["av clamav false"]),
                1,
                Some(Trigger::Change),
            ),
            (
                state(&[("/", 50.0), ("/home", 89.0)], &["av clamav true"]),
                60,
                Some(Trigger::Heartbeat),
            ),
        ];
        for (current, secs, expected) in cases {
            assert_eq!(
                decide(Some(&last), at(secs), &current, hb),
                expected,
                "{current:?} at {secs}s"
            );
        }
        assert_eq!(
            decide(None, t0, &state(&[], &[]), hb),
            Some(Trigger::Startup)
        );
    }
}
