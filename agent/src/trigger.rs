//! When to take a snapshot: at startup, when the set of filesystems changes, when a disk crosses
//! one of the collector's thresholds (in either direction), and otherwise once per heartbeat.
//! Disks are measured often and cheaply; snapshots, spool writes and uploads happen only on
//! these triggers. Pure, so it is tested without clocks or disks.

use std::time::{Duration, Instant};

use firstline_proto::v1::Trigger;

/// What the last snapshot showed, to compare the next measurement against.
#[derive(Debug, Clone, PartialEq)]
pub struct LastReport {
    pub at: Instant,
    /// (mount point, threshold bucket), sorted by mount point.
    pub buckets: Vec<(String, usize)>,
}

/// How many thresholds a usage has reached.
pub fn bucket(used_percent: f64, thresholds: &[f64]) -> usize {
    thresholds.iter().filter(|t| used_percent >= **t).count()
}

/// The (mount point, bucket) list for measurements given as (mount point, percent).
pub fn buckets(usage: &[(String, f64)], thresholds: &[f64]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = usage
        .iter()
        .map(|(m, p)| (m.clone(), bucket(*p, thresholds)))
        .collect();
    out.sort();
    out
}

/// Decides whether the current measurement must be reported, and why.
pub fn decide(
    last: Option<&LastReport>,
    now: Instant,
    current: &[(String, usize)],
    heartbeat: Duration,
) -> Option<Trigger> {
    let Some(last) = last else {
        return Some(Trigger::Startup);
    };
    let same_mounts = last.buckets.len() == current.len()
        && last.buckets.iter().zip(current).all(|(a, b)| a.0 == b.0);
    if !same_mounts {
        Some(Trigger::Change)
    } else if last.buckets != current {
        Some(Trigger::Threshold)
    } else if now.duration_since(last.at) >= heartbeat {
        Some(Trigger::Heartbeat)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[f64] = &[85.0, 90.0];

    fn state(pairs: &[(&str, f64)]) -> Vec<(String, usize)> {
        let usage: Vec<(String, f64)> = pairs.iter().map(|(m, p)| (m.to_string(), *p)).collect();
        buckets(&usage, T)
    }

    #[test]
    fn reports_crossings_at_once_and_quiet_values_only_on_heartbeat() {
        let t0 = Instant::now();
        let hb = Duration::from_secs(60);
        let last = LastReport {
            at: t0,
            buckets: state(&[("/", 50.0), ("/home", 89.0)]),
        };
        let at = |s| t0 + Duration::from_secs(s);
        type Case = (Vec<(String, usize)>, u64, Option<Trigger>);
        let cases: Vec<Case> = vec![
            (state(&[("/", 60.0), ("/home", 89.9)]), 1, None),
            (
                state(&[("/", 50.0), ("/home", 90.0)]),
                1,
                Some(Trigger::Threshold),
            ),
            (
                state(&[("/", 50.0), ("/home", 84.0)]),
                1,
                Some(Trigger::Threshold),
            ),
            (state(&[("/", 50.0)]), 1, Some(Trigger::Change)),
            (
                state(&[("/", 50.0), ("/data", 89.0)]),
                1,
                Some(Trigger::Change),
            ),
            (
                state(&[("/", 50.0), ("/home", 89.0)]),
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
        assert_eq!(decide(None, t0, &[], hb), Some(Trigger::Startup));
    }
}
