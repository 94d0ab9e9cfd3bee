//! The connectivity probe in the registry: gateway, DNS, TCP, HTTPS, the collector and VPN
//! interfaces. A check starting or stopping to fail (or failing differently) is a change; its
//! latency is not.

use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Level, Limits, Probe};
use crate::config::Config;
use crate::facts::Signature;
use crate::probe::connectivity::{self, CheckResult, ConnFacts, HttpsResult};
use crate::probe::{Offload, ProbeError};

#[derive(Default)]
pub struct Connectivity {
    offload: Offload,
}

impl Probe for Connectivity {
    type Facts = ConnFacts;

    fn name(&self) -> &'static str {
        "connectivity"
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        // Checks run concurrently, each bounded by the check timeout.
        (
            config.connectivity.interval,
            config.connectivity.timeout * 2 + Duration::from_secs(2),
        )
    }

    async fn collect(&self, config: &Config, ctx: &Context) -> Result<ConnFacts, ProbeError> {
        let mut settings = config.conn_settings.clone();
        settings.collector.clone_from(&ctx.collector);
        connectivity::collect(&settings, &self.offload).await
    }

    fn signature(&self, c: &ConnFacts, _thresholds: &[f64], signature: &mut Signature) {
        let other = &mut signature.other;
        other.push(format!(
            "gateway {} {}",
            c.gateway.present, c.gateway.reachable
        ));
        for check in c.dns.iter().chain(&c.tcp).chain(c.collector.as_ref()) {
            other.push(format!(
                "check {} {} {}",
                check.target, check.ok, check.failure
            ));
        }
        for h in &c.https {
            other.push(format!("https {} {} {}", h.url, h.ok, h.failure));
        }
        for (name, up) in &c.vpn {
            other.push(format!("vpn {name} {up}"));
        }
    }

    fn report(&self, c: &ConnFacts, snapshot: &mut v1::Snapshot) {
        snapshot.connectivity = Some(connectivity(c.clone()));
    }

    fn judge(&self, c: &ConnFacts, limits: &Limits, _now_ms: i64) -> Vec<(Level, String)> {
        let mut out = vec![judge_gateway(c)];
        for (label, level, check) in c
            .dns
            .iter()
            .map(|d| ("dns", Level::Critical, d))
            .chain(c.tcp.iter().map(|t| ("tcp", Level::Warning, t)))
            .chain(c.collector.iter().map(|t| ("collector", Level::Warning, t)))
        {
            out.push(if check.ok {
                (
                    Level::Ok,
                    format!("{label} {} ok in {:.0} ms", check.target, check.millis),
                )
            } else {
                (
                    level,
                    format!(
                        "{label} {} failed: {} ({})",
                        check.target, check.failure, check.detail
                    ),
                )
            });
        }
        out.extend(c.https.iter().map(|h| judge_https(h, limits)));
        for (name, up) in &c.vpn {
            out.push((
                Level::Ok,
                format!("vpn {name} {}", if *up { "up" } else { "down" }),
            ));
        }
        out
    }
}

fn judge_gateway(c: &ConnFacts) -> (Level, String) {
    let g = &c.gateway;
    match (g.present, g.reachable) {
        (false, _) => (Level::Critical, "no default gateway".into()),
        (true, true) => (
            Level::Ok,
            format!("gateway {} on {} reachable", g.address, g.interface),
        ),
        (true, false) => (
            Level::Warning,
            format!("gateway {} on {} not answering ARP", g.address, g.interface),
        ),
    }
}

fn judge_https(h: &HttpsResult, limits: &Limits) -> (Level, String) {
    if !h.ok {
        (
            Level::Warning,
            format!("https {} failed: {} ({})", h.url, h.failure, h.detail),
        )
    } else if h.certificate_days_left < limits.certificate_warning_days {
        (
            Level::Warning,
            format!(
                "https {} certificate expires in {} days",
                h.url, h.certificate_days_left
            ),
        )
    } else {
        (
            Level::Ok,
            format!("https {} status {} in {:.0} ms", h.url, h.status, h.millis),
        )
    }
}

fn check(c: CheckResult) -> v1::NamedCheck {
    v1::NamedCheck {
        target: c.target,
        ok: c.ok,
        millis: c.millis,
        failure: c.failure,
        detail: c.detail,
        resolver: c.resolver,
    }
}

fn https(h: HttpsResult) -> v1::HttpsCheck {
    v1::HttpsCheck {
        url: h.url,
        ok: h.ok,
        millis: h.millis,
        status: h.status,
        certificate_days_left: h.certificate_days_left,
        failure: h.failure,
        detail: h.detail,
        certificate_not_after_ms: h.certificate_not_after_ms,
    }
}

fn connectivity(c: ConnFacts) -> v1::Connectivity {
    v1::Connectivity {
        gateway: Some(v1::GatewayCheck {
            present: c.gateway.present,
            address: c.gateway.address,
            interface: c.gateway.interface,
            reachable: c.gateway.reachable,
        }),
        dns: c.dns.into_iter().map(check).collect(),
        tcp: c.tcp.into_iter().map(check).collect(),
        https: c.https.into_iter().map(https).collect(),
        collector: c.collector.map(check),
        vpn: c
            .vpn
            .into_iter()
            .map(|(name, up)| v1::VpnInterface { name, up })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_check(ok: bool, failure: &str, millis: f64) -> Signature {
        let facts = ConnFacts {
            dns: vec![CheckResult {
                target: "intranet".into(),
                ok,
                millis,
                failure: failure.into(),
                detail: String::new(),
                resolver: String::new(),
            }],
            ..ConnFacts::default()
        };
        let mut signature = Signature::default();
        Connectivity::default().signature(&facts, &[85.0, 90.0], &mut signature);
        signature
    }

    #[test]
    fn a_check_starting_to_fail_changes_the_signature_but_its_latency_does_not() {
        assert_eq!(with_check(true, "", 3.0), with_check(true, "", 9.0));
        assert_ne!(
            with_check(true, "", 3.0),
            with_check(false, "timeout", 3000.0)
        );
        assert_ne!(
            with_check(false, "timeout", 1.0),
            with_check(false, "nxdomain", 1.0)
        );
    }
}
