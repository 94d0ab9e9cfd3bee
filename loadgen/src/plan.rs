//! The shape of a run, decided once from the command line and shared by every simulated
//! agent: the mode, the pace (interval and jitter, or closed loop), the measured window, the
//! storm's time and share of agents, the flush backlog.

use std::time::{Duration, Instant};

/// What the fleet does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Every agent reports at its pace.
    Steady,
    /// As steady, and for a while a share of the agents report the same TCP target failing.
    Storm,
    /// Every agent comes back from an outage with a backlog, all at once, then goes steady.
    Flush,
    /// No reports: every agent calls the gRPC health check at the pace instead, over the same
    /// mutual-TLS connection. What the collector spends per call then is its transport's
    /// floor (TLS, HTTP/2, gRPC framing), with no store, rules or validation behind it.
    Floor,
}

/// When the storm blows and who is in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Storm {
    pub from: Instant,
    pub until: Instant,
    pub share: f64,
}

/// The run's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// When the agents start reporting (all connected).
    pub start: Instant,
    /// Zero: closed loop, the next report as soon as the previous is acknowledged.
    pub interval: Duration,
    pub jitter: f64,
    pub cross_share: f64,
    /// The spool epoch every agent numbers in: new each run, so seq 1.. is new to the
    /// collector even with reused identities (it would otherwise ack them as duplicates).
    pub epoch: u64,
    pub seed: u64,
    /// How long the agents were offline before a flush.
    pub offline: Duration,
    pub storm: Option<Storm>,
}

impl Plan {
    /// Whether agent `n` reports the storm at `at`.
    pub fn storm_now(&self, n: usize, at: Instant) -> bool {
        self.storm
            .is_some_and(|s| at >= s.from && at < s.until && in_share(n, s.share))
    }

    /// The time between two backlog snapshots: the interval, or the agent's usual 60 s
    /// heartbeat in closed-loop runs.
    pub fn backlog_step(&self) -> Duration {
        if self.interval.is_zero() {
            Duration::from_secs(60)
        } else {
            self.interval
        }
    }

    /// Snapshots each agent holds when a flush starts (at least one).
    pub fn backlog(&self) -> usize {
        let n = self.offline.as_secs_f64() / self.backlog_step().as_secs_f64();
        (n.round() as usize).max(1)
    }
}

/// Whether agent `n` is among a `share` of the fleet, spread evenly over the numbers.
pub fn in_share(n: usize, share: f64) -> bool {
    let spread = (n as u64).wrapping_mul(2_654_435_761) % 10_000;
    (spread as f64) < share * 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(interval: u64, offline: u64) -> Plan {
        Plan {
            mode: Mode::Flush,
            start: Instant::now(),
            interval: Duration::from_secs(interval),
            jitter: 0.2,
            cross_share: 0.0,
            epoch: 1,
            seed: 1,
            offline: Duration::from_secs(offline),
            storm: None,
        }
    }

    #[test]
    fn the_backlog_covers_the_outage_at_the_interval() {
        assert_eq!(plan(60, 600).backlog(), 10);
        assert_eq!(plan(0, 600).backlog(), 10);
        assert_eq!(plan(60, 1).backlog(), 1);
        assert_eq!(plan(10, 3600).backlog(), 360);
    }

    #[test]
    fn a_share_takes_about_that_many_agents() {
        let n = (0..10_000).filter(|&n| in_share(n, 0.5)).count();
        assert!((4_800..5_200).contains(&n), "{n}");
        assert_eq!((0..1000).filter(|&n| in_share(n, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|&n| in_share(n, 1.0)).count(), 1000);
    }

    #[test]
    fn the_storm_blows_only_in_its_window() {
        let mut p = plan(60, 600);
        let t = p.start;
        p.storm = Some(Storm {
            from: t + Duration::from_secs(10),
            until: t + Duration::from_secs(20),
            share: 1.0,
        });
        assert!(!p.storm_now(1, t));
        assert!(p.storm_now(1, t + Duration::from_secs(15)));
        assert!(!p.storm_now(1, t + Duration::from_secs(20)));
    }
}
