//! The rule kinds and how each one reads a snapshot. An observation says, for one subject,
//! whether the condition holds, the clear condition holds, or neither (hysteresis band).

use std::time::Duration;

use crate::facts::{Snapshot, os_family};

/// A configured rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    pub priority: u32,
    /// How long the condition must hold before a ticket opens.
    pub hold_for: Duration,
    /// Title template: `{host}`, `{subject}` and `{value}` are filled in.
    pub title: String,
    /// Knowledge-base article name (a markdown file in `docs/kb/`).
    pub kb: String,
    /// The OS families the rule applies to; empty: every host.
    pub os: Vec<String>,
}

/// What a rule checks, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Disk space used, per mount: opens at `open_percent`, clears under `clear_percent`; at
    /// `critical_percent` the same ticket is raised to `critical_priority`.
    DiskUsage {
        open_percent: f64,
        clear_percent: f64,
        critical_percent: f64,
        critical_priority: u32,
    },
    /// A mount forecast to be full within `horizon_hours` at its recent growth rate (from the
    /// collector's samples; the engine evaluates it, see `forecast`).
    DiskForecast { horizon_hours: f64 },
    /// Inodes used, per mount.
    InodeUsage {
        open_percent: f64,
        clear_percent: f64,
    },
    /// Security updates pending (combine with `for` for "pending longer than").
    SecurityUpdatesPending,
    /// Any update pending.
    UpdatesPending,
    /// A reboot is required.
    RebootPending,
    /// The antivirus probe found no product at all.
    NoAntivirus,
    /// A product is not running, or has real-time protection off on an OS family listed in
    /// `realtime_required_on` (elsewhere a running on-demand scanner counts as protecting).
    AntivirusOff { realtime_required_on: Vec<String> },
    /// A product's definitions are older than `max_age_days`.
    DefinitionsOld { max_age_days: f64 },
    /// DNS, gateway, TCP, HTTPS or collector checks failing on `consecutive` reports in a row.
    ConnectivityFailure { consecutive: u32 },
}

/// The state of one subject under one rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Holds,
    Clear,
    /// Between the clear and the open threshold: an open ticket stays open.
    Between,
}

/// One subject's observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub subject: String,
    pub verdict: Verdict,
    pub value: f64,
    /// A priority above the rule's own, when the value calls for it.
    pub raised_priority: Option<u32>,
    /// The shared cause the failure points to, for outage correlation ("resolver 10.0.0.53",
    /// "gateway 10.0.0.1"); empty when the subject itself is the key.
    pub cause: String,
}

const DAY_MS: f64 = 86_400_000.0;

fn band(value: f64, open: f64, clear: f64) -> Verdict {
    if value >= open {
        Verdict::Holds
    } else if value < clear {
        Verdict::Clear
    } else {
        Verdict::Between
    }
}

fn flag(subject: &str, holds: bool, value: f64) -> Observation {
    Observation {
        subject: subject.to_owned(),
        verdict: if holds {
            Verdict::Holds
        } else {
            Verdict::Clear
        },
        value,
        raised_priority: None,
        cause: String::new(),
    }
}

impl RuleKind {
    /// The observations of this rule on a snapshot, or `None` when the snapshot does not carry
    /// the facts the rule reads (the probe has not reported): then nothing changes.
    pub fn observe(&self, s: &Snapshot, now_ms: i64) -> Option<Vec<Observation>> {
        let facts = &s.facts;
        match self {
            Self::DiskUsage {
                open_percent,
                clear_percent,
                critical_percent,
                critical_priority,
            } => Some(
                s.filesystems
                    .iter()
                    .map(|f| {
                        let v = f.used_percent();
                        Observation {
                            subject: f.mount_point.clone(),
                            verdict: band(v, *open_percent, *clear_percent),
                            value: v,
                            raised_priority: (v >= *critical_percent).then_some(*critical_priority),
                            cause: String::new(),
                        }
                    })
                    .collect(),
            ),
            // Needs history: evaluated by the engine with the stored samples.
            Self::DiskForecast { .. } => None,
            Self::InodeUsage {
                open_percent,
                clear_percent,
            } => Some(
                s.filesystems
                    .iter()
                    .filter(|f| f.total_inodes > 0)
                    .map(|f| {
                        let v = f.used_inodes as f64 * 100.0 / f.total_inodes as f64;
                        Observation {
                            subject: f.mount_point.clone(),
                            verdict: band(v, *open_percent, *clear_percent),
                            value: v,
                            raised_priority: None,
                            cause: String::new(),
                        }
                    })
                    .collect(),
            ),
            Self::SecurityUpdatesPending => {
                let p = facts.patches.as_ref()?;
                Some(vec![flag(
                    "security updates",
                    p.security_count > 0,
                    f64::from(p.security_count),
                )])
            }
            Self::UpdatesPending => {
                let p = facts.patches.as_ref()?;
                Some(vec![flag(
                    "updates",
                    p.pending_count > 0,
                    f64::from(p.pending_count),
                )])
            }
            Self::RebootPending => {
                let p = facts.patches.as_ref()?;
                Some(vec![flag("reboot", p.reboot_required, 0.0)])
            }
            Self::NoAntivirus => {
                let a = facts.antivirus.as_ref()?;
                Some(vec![flag("antivirus", a.products.is_empty(), 0.0)])
            }
            Self::AntivirusOff {
                realtime_required_on,
            } => {
                let a = facts.antivirus.as_ref()?;
                let family = os_family(&s.os, facts);
                let realtime_needed = realtime_required_on.iter().any(|o| o == family);
                Some(
                    a.products
                        .iter()
                        .map(|p| {
                            let protecting =
                                p.running && (p.realtime_protection || !realtime_needed);
                            flag(&p.name, !protecting, 0.0)
                        })
                        .collect(),
                )
            }
            Self::DefinitionsOld { max_age_days } => {
                let a = facts.antivirus.as_ref()?;
                Some(
                    a.products
                        .iter()
                        .filter(|p| p.definitions_updated_ms > 0)
                        .map(|p| {
                            let age = (now_ms - p.definitions_updated_ms) as f64 / DAY_MS;
                            flag(&p.name, age > *max_age_days, age)
                        })
                        .collect(),
                )
            }
            Self::ConnectivityFailure { .. } => {
                let c = facts.connectivity.as_ref()?;
                let mut out = Vec::new();
                if let Some(g) = &c.gateway {
                    let mut o = flag("gateway", !g.present, 0.0);
                    if !g.address.is_empty() {
                        o.cause = format!("gateway {}", g.address);
                    }
                    out.push(o);
                }
                for d in &c.dns {
                    let mut o = flag(&format!("dns {}", d.target), !d.ok, d.millis);
                    if !d.resolver.is_empty() {
                        o.cause = format!("resolver {}", resolver_address(&d.resolver));
                    }
                    out.push(o);
                }
                for t in c.tcp.iter().chain(c.collector.as_ref()) {
                    out.push(flag(&format!("tcp {}", t.target), !t.ok, t.millis));
                }
                for h in &c.https {
                    out.push(flag(&format!("https {}", h.url), !h.ok, h.millis));
                }
                Some(out)
            }
        }
    }

    /// Whether the observed value is a count (pending updates), shown without decimals.
    pub fn counts(&self) -> bool {
        matches!(self, Self::SecurityUpdatesPending | Self::UpdatesPending)
    }

    /// How many reports in a row the condition must hold (1 for most kinds).
    pub fn consecutive(&self) -> u32 {
        match self {
            Self::ConnectivityFailure { consecutive } => (*consecutive).max(1),
            _ => 1,
        }
    }

    /// The kind's name in rule files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::DiskUsage { .. } => "disk_usage",
            Self::DiskForecast { .. } => "disk_forecast",
            Self::InodeUsage { .. } => "inode_usage",
            Self::SecurityUpdatesPending => "security_updates_pending",
            Self::UpdatesPending => "updates_pending",
            Self::RebootPending => "reboot_pending",
            Self::NoAntivirus => "no_antivirus",
            Self::AntivirusOff { .. } => "antivirus_off",
            Self::DefinitionsOld { .. } => "definitions_old",
            Self::ConnectivityFailure { .. } => "connectivity_failure",
        }
    }
}

impl Rule {
    /// Whether the rule applies to a host of this OS family ("" when unknown: only rules for
    /// every OS apply).
    pub fn applies_to(&self, family: &str) -> bool {
        self.os.is_empty() || self.os.iter().any(|o| o == family)
    }

    /// The ticket title for a subject: `{host}`, `{subject}`, `{value}` (a count as a whole
    /// number, "2 security updates", a measurement with one decimal) and `{for}` (the rule's
    /// `for` duration, "7 days").
    pub fn title_for(&self, host: &str, subject: &str, value: f64) -> String {
        let value = if self.kind.counts() && value.abs() < 1e15 {
            format!("{value:.0}")
        } else {
            format!("{value:.1}")
        };
        self.title
            .replace("{host}", host)
            .replace("{subject}", subject)
            .replace("{value}", &value)
            .replace("{for}", &human_duration(self.hold_for))
    }
}

/// A duration in its largest whole unit: "7 days", "1 day", "36 hours", "90 seconds".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        0 => (0, "seconds"),
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    match (n, unit) {
        (0, u) => format!("0 {u}"),
        (1, u) => format!("1 {u}"),
        (n, u) => format!("{n} {u}s"),
    }
}

/// A resolver as people name it: the address without the standard DNS port.
fn resolver_address(resolver: &str) -> &str {
    let host = resolver.strip_suffix(":53").unwrap_or(resolver);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{AntivirusProduct, AntivirusState, Filesystem, PatchState, Trigger};

    const NOW: i64 = 1_800_000_000_000;

    fn snapshot(f: impl FnOnce(&mut Snapshot)) -> Snapshot {
        let mut s = Snapshot {
            seq: 1,
            epoch: 0,
            taken_at_ms: NOW,
            at_ms: NOW,
            clock_adjusted: false,
            trigger: Trigger::Heartbeat,
            hostname: "pc".into(),
            os: String::new(),
            agent_version: String::new(),
            machine_id: String::new(),
            boot_id: String::new(),
            dropped_snapshots: 0,
            rejected_snapshots: 0,
            filesystems: Vec::new(),
            facts: Default::default(),
            payload: Vec::new(),
        };
        f(&mut s);
        s
    }

    fn fs(used: u64, used_inodes: u64) -> Filesystem {
        Filesystem {
            mount_point: "/".into(),
            device: String::new(),
            fs_type: "ext4".into(),
            total_bytes: 100,
            used_bytes: used,
            available_bytes: 100 - used,
            total_inodes: 100,
            used_inodes,
        }
    }

    fn verdicts(kind: &RuleKind, s: &Snapshot) -> Option<Vec<(String, Verdict)>> {
        kind.observe(s, NOW)
            .map(|v| v.into_iter().map(|o| (o.subject, o.verdict)).collect())
    }

    #[test]
    fn each_default_rule_reads_its_facts() {
        let full_inodes = snapshot(|s| s.filesystems = vec![fs(50, 95)]);
        let inodes = RuleKind::InodeUsage {
            open_percent: 90.0,
            clear_percent: 85.0,
        };
        assert_eq!(
            verdicts(&inodes, &full_inodes),
            Some(vec![("/".into(), Verdict::Holds)])
        );
        assert_eq!(
            verdicts(&RuleKind::UpdatesPending, &full_inodes),
            None,
            "no patch facts: no change"
        );
        let patches = snapshot(|s| {
            s.facts.patches = Some(PatchState {
                pending_count: 4,
                security_count: 0,
                reboot_required: true,
                ..Default::default()
            })
        });
        assert_eq!(
            verdicts(&RuleKind::UpdatesPending, &patches),
            Some(vec![("updates".into(), Verdict::Holds)])
        );
        assert_eq!(
            verdicts(&RuleKind::SecurityUpdatesPending, &patches),
            Some(vec![("security updates".into(), Verdict::Clear)])
        );
        assert_eq!(
            verdicts(&RuleKind::RebootPending, &patches),
            Some(vec![("reboot".into(), Verdict::Holds)])
        );
        let disk = RuleKind::DiskUsage {
            open_percent: 90.0,
            clear_percent: 85.0,
            critical_percent: 95.0,
            critical_priority: 1,
        };
        let band = snapshot(|s| s.filesystems = vec![fs(87, 0)]);
        assert_eq!(
            verdicts(&disk, &band),
            Some(vec![("/".into(), Verdict::Between)])
        );
    }

    #[test]
    fn real_time_protection_counts_where_the_os_needs_it() {
        let off = RuleKind::AntivirusOff {
            realtime_required_on: crate::rules::defaults::realtime_required_on(),
        };
        let host = |os: &str, running: bool, realtime: bool| {
            snapshot(|s| {
                s.os = os.into();
                s.facts.antivirus = Some(AntivirusState {
                    products: vec![AntivirusProduct {
                        name: "AV".into(),
                        running,
                        realtime_protection: realtime,
                        ..Default::default()
                    }],
                });
            })
        };
        let cases = [
            ("Debian GNU/Linux 12", true, false, Verdict::Clear),
            ("Debian GNU/Linux 12", false, false, Verdict::Holds),
            ("Microsoft Windows 11 Pro", true, false, Verdict::Holds),
            ("Microsoft Windows 11 Pro", true, true, Verdict::Clear),
            ("macOS 15.1", true, false, Verdict::Holds),
        ];
        for (os, running, realtime, verdict) in cases {
            assert_eq!(
                verdicts(&off, &host(os, running, realtime)),
                Some(vec![("AV".into(), verdict)]),
                "{os} running={running} realtime={realtime}"
            );
        }
        let none = crate::rules::defaults::rules()
            .into_iter()
            .find(|r| r.id == "antivirus.none")
            .expect("shipped");
        assert!(none.applies_to("windows") && none.applies_to("macos"));
        assert!(!none.applies_to("linux") && !none.applies_to(""));
    }

    #[test]
    fn titles_fill_in_host_subject_and_value() {
        let rule = &crate::rules::defaults::rules()[0];
        assert_eq!(
            rule.title_for("pc-1", "/home", 93.456),
            "Disk /home on pc-1 is 93.5% full"
        );
    }

    #[test]
    fn counts_are_whole_and_durations_come_from_the_rule() {
        let mut rule = crate::rules::defaults::rules()
            .into_iter()
            .find(|r| r.id == "updates.security")
            .expect("shipped");
        assert_eq!(
            rule.title_for("pc-1", "", 2.0),
            "2 security updates pending on pc-1 for over 7 days"
        );
        rule.hold_for = Duration::from_secs(36 * 3600);
        assert_eq!(
            rule.title_for("pc-1", "", 1.0),
            "1 security updates pending on pc-1 for over 36 hours"
        );
        let disk = &crate::rules::defaults::rules()[0];
        assert_eq!(
            disk.title_for("pc-1", "/", 92.0),
            "Disk / on pc-1 is 92.0% full",
            "a measurement keeps its decimal"
        );
        let cases = [
            (0, "0 seconds"),
            (86_400, "1 day"),
            (5_400, "90 minutes"),
            (61, "61 seconds"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), text);
        }
    }

    #[test]
    fn dns_failures_carry_their_resolver_and_gateways_their_address() {
        use crate::facts::{Connectivity, GatewayCheck, NamedCheck};
        let s = snapshot(|s| {
            s.facts.connectivity = Some(Connectivity {
                gateway: Some(GatewayCheck {
                    present: false,
                    address: "10.0.0.1".into(),
                    ..Default::default()
                }),
                dns: vec![NamedCheck {
                    target: "example.org".into(),
                    ok: false,
                    resolver: "10.0.0.53:53".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
        });
        let kind = RuleKind::ConnectivityFailure { consecutive: 1 };
        let causes: Vec<String> = kind
            .observe(&s, NOW)
            .expect("observed")
            .into_iter()
            .map(|o| o.cause)
            .collect();
        assert_eq!(causes, ["gateway 10.0.0.1", "resolver 10.0.0.53"]);
    }
}
