//! Rate limits at the collector's gRPC edge (`[limits]`): reports per agent, reports for the
//! whole collector, and enrollment calls per client address. Each is a GCRA limiter from
//! `governor` (a burst, then a steady rate); 0 turns one off. A call over its limit is refused
//! before any work with RESOURCE_EXHAUSTED and `grpc-retry-pushback-ms`, the wait until it
//! would pass, which the agent honours (the failure passes by waiting, so it is never one that
//! needs a person), and counted in `firstline_rate_limited_total{limit}`.
//!
//! The per-agent limit is keyed by the agent id of the client certificate, so only enrolled
//! agents hold a slot; the enrollment limit is keyed by IP address (an IPv6 address by its
//! /64, which one host can fill). Idle keys are forgotten by [`RateLimits::prune`] (the server
//! calls it every minute), and past [`MAX_KEYS`] live addresses enrollment is refused rather
//! than more remembered, so memory stays bounded whatever the callers do.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The most keys a keyed limiter remembers between two prunes.
pub const MAX_KEYS: usize = 100_000;

type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, DefaultClock>;
type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// The configured limits (`[limits]`); a rate of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Reports one agent may send per minute, after its burst.
    pub agent_reports_per_minute: u32,
    /// Reports one agent may send at once (after an outage, its spool drains in batches).
    pub agent_report_burst: u32,
    /// Reports per second for the whole collector; 0: only the ingest queue's admission.
    pub reports_per_second: u32,
    /// Enrollment calls per minute from one address, after a burst of as many.
    pub enrollments_per_minute_per_ip: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            agent_reports_per_minute: 60,
            agent_report_burst: 120,
            reports_per_second: 0,
            enrollments_per_minute_per_ip: 30,
        }
    }
}

/// Which limit refused a call: the `limit` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    AgentReports,
    Reports,
    EnrollmentsPerIp,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Self::AgentReports => "agent_reports",
            Self::Reports => "reports",
            Self::EnrollmentsPerIp => "enrollments_per_ip",
        }
    }
}

/// A call over a limit: which one, and how long until it would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: Duration,
}

/// The limiters of one collector.
pub struct RateLimits {
    clock: DefaultClock,
    per_agent: Option<Keyed<String>>,
    global: Option<Direct>,
    enroll: Option<Keyed<IpAddr>>,
}

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        let clock = DefaultClock::default();
        let per_agent = NonZeroU32::new(config.agent_reports_per_minute).map(|rate| {
            let burst = NonZeroU32::new(config.agent_report_burst).unwrap_or(rate);
            RateLimiter::hashmap_with_clock(
                Quota::per_minute(rate).allow_burst(burst),
                clock.clone(),
            )
        });
        let global = NonZeroU32::new(config.reports_per_second)
            .map(|rate| RateLimiter::direct_with_clock(Quota::per_second(rate), clock.clone()));
        let enroll = NonZeroU32::new(config.enrollments_per_minute_per_ip)
            .map(|rate| RateLimiter::hashmap_with_clock(Quota::per_minute(rate), clock.clone()));
        Self {
            clock,
            per_agent,
            global,
            enroll,
        }
    }

    /// Whether `agent_id` may send a report now (its own limit, then the collector's).
    pub fn report(&self, agent_id: &str) -> Result<(), Refusal> {
        if let Some(limiter) = &self.per_agent {
            // Keys are enrolled agents' ids (authenticated), as many as the fleet.
            limiter
                .check_key(&agent_id.to_owned())
                .map_err(|not_until| self.refusal(Limit::AgentReports, &not_until))?;
        }
        if let Some(limiter) = &self.global {
            limiter
                .check()
                .map_err(|not_until| self.refusal(Limit::Reports, &not_until))?;
        }
        Ok(())
    }

    /// Whether an enrollment call from `peer` may go on. Without a known address (not a TCP
    /// connection) the call is not limited.
    pub fn enrollment(&self, peer: Option<IpAddr>) -> Result<(), Refusal> {
        let (Some(limiter), Some(ip)) = (&self.enroll, peer) else {
            return Ok(());
        };
        let key = address_key(ip);
        if limiter.len() >= MAX_KEYS {
            // Full of addresses seen within the minute: a flood; refuse new ones.
            return Err(Refusal {
                limit: Limit::EnrollmentsPerIp,
                retry_after: Duration::from_secs(60),
            });
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| self.refusal(Limit::EnrollmentsPerIp, &not_until))
    }

    /// Forgets the keys whose limiter is back to a full burst.
    pub fn prune(&self) {
        if let Some(limiter) = &self.per_agent {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.enroll {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn refusal(
        &self,
        limit: Limit,
        not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> Refusal {
        crate::telemetry::rate_limited(limit.label());
        Refusal {
            limit,
            retry_after: not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_millis(1)),
        }
    }
}

/// The key of an address: an IPv4 address itself, an IPv6 address its /64 (IPv4-mapped ones as
/// IPv4).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(agent: u32, burst: u32, global: u32, enroll: u32) -> RateLimits {
        RateLimits::new(&LimitsConfig {
            agent_reports_per_minute: agent,
            agent_report_burst: burst,
            reports_per_second: global,
            enrollments_per_minute_per_ip: enroll,
        })
    }

    #[test]
    fn an_agent_gets_its_burst_then_waits_and_others_are_unaffected() {
        let l = limits(60, 3, 0, 0);
        for _ in 0..3 {
            l.report("a").expect("within the burst");
        }
        let refusal = l.report("a").expect_err("over the burst");
        assert_eq!(refusal.limit, Limit::AgentReports);
        assert!(
            refusal.retry_after > Duration::from_millis(500)
                && refusal.retry_after <= Duration::from_secs(1),
            "one report a second: {:?}",
            refusal.retry_after
        );
        l.report("b").expect("another agent has its own burst");
    }

    #[test]
    fn the_global_limit_counts_every_agent() {
        let l = limits(0, 0, 2, 0);
        l.report("a").expect("first");
        l.report("b").expect("second");
        let refusal = l.report("c").expect_err("third in the same second");
        assert_eq!(refusal.limit, Limit::Reports);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let l = limits(0, 0, 0, 0);
        for _ in 0..10_000 {
            l.report("a").expect("no limit");
            l.enrollment(Some("192.0.2.1".parse().expect("ip")))
                .expect("no limit");
        }
    }

    #[test]
    fn enrollments_are_limited_per_address_and_ipv6_by_its_64() {
        let l = limits(0, 0, 0, 2);
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        l.enrollment(ip("2001:db8::1")).expect("first");
        l.enrollment(ip("2001:db8::2")).expect("second, same /64");
        let refusal = l
            .enrollment(ip("2001:db8::ffff:1"))
            .expect_err("third from the same /64");
        assert_eq!(refusal.limit, Limit::EnrollmentsPerIp);
        l.enrollment(ip("2001:db8:0:1::1"))
            .expect("another /64 has its own");
        l.enrollment(ip("192.0.2.1")).expect("v4");
        l.enrollment(ip("::ffff:192.0.2.1"))
            .expect("the same v4, mapped");
        l.enrollment(ip("192.0.2.1")).expect_err("third for the v4");
        l.enrollment(None).expect("no address: not limited");
    }
}
