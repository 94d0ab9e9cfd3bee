//! `firstline-agent check`: every probe once, judged and printed for a technician on the phone
//! with a user. Colour when the output is a terminal (and `NO_COLOR` is unset), plain text when
//! piped, `--json` for scripts. Exit code as monitoring plugins use it: 0 healthy, 1 warnings,
//! 2 critical. Works without enrollment and without a collector.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::facts::{Facts, ProbeKind};
use crate::probe::antivirus::AvProduct;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub section: ProbeKind,
    pub level: Level,
    pub text: String,
}

/// Limits the judgement uses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub disk_warning: f64,
    pub disk_critical: f64,
    pub definitions_max_age_days: i64,
    pub certificate_warning_days: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            disk_warning: 90.0,
            disk_critical: 95.0,
            definitions_max_age_days: 3,
            certificate_warning_days: 14,
        }
    }
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Self::Ok => "OK  ",
            Self::Warning => "WARN",
            Self::Critical => "CRIT",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Ok => "healthy",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// The process exit code for this overall level.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
        }
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0 * 1024.0)
}

/// Judges the facts.
pub fn evaluate(facts: &Facts, limits: &Limits, now_ms: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |section, level, text: String| {
        out.push(Finding {
            section,
            level,
            text,
        })
    };
    for f in facts.disk.iter().flatten() {
        let p = f.used_percent();
        let level = if p >= limits.disk_critical {
            Level::Critical
        } else if p >= limits.disk_warning {
            Level::Warning
        } else {
            Level::Ok
        };
        let inodes = if f.total_inodes > 0 {
            format!(
                ", inodes {:.0}%",
                f.used_inodes as f64 * 100.0 / f.total_inodes as f64
            )
        } else {
            String::new()
        };
        add(
            ProbeKind::Disk,
            level,
            format!(
                "{} {p:.1}% used ({:.1} of {:.1} GiB{inodes})",
                f.mount_point,
                gib(f.used_bytes),
                gib(f.total_bytes)
            ),
        );
    }
    if let Some(p) = &facts.patches {
        let manager = if p.package_manager.is_empty() {
            "no package manager found"
        } else {
            &p.package_manager
        };
        let level = if p.security_count > 0 {
            Level::Warning
        } else {
            Level::Ok
        };
        add(
            ProbeKind::Patches,
            level,
            format!(
                "{manager}: {} updates pending, {} security",
                p.pending_count, p.security_count
            ),
        );
        for u in p.updates.iter().filter(|u| u.security).take(5) {
            add(
                ProbeKind::Patches,
                Level::Warning,
                format!(
                    "security: {} {} -> {}",
                    u.name, u.installed_version, u.candidate_version
                ),
            );
        }
        if p.reboot_required {
            add(
                ProbeKind::Patches,
                Level::Warning,
                format!("reboot required ({})", p.reboot_reason),
            );
        }
    }
    if let Some(products) = &facts.antivirus {
        if products.is_empty() {
            add(
                ProbeKind::Antivirus,
                Level::Critical,
                "no antivirus product found".into(),
            );
        }
        for a in products {
            let (level, text) = judge_av(a, limits, now_ms);
            add(ProbeKind::Antivirus, level, text);
        }
    }
    if let Some(c) = &facts.connectivity {
        let g = &c.gateway;
        match (g.present, g.reachable) {
            (false, _) => add(
                ProbeKind::Connectivity,
                Level::Critical,
                "no default gateway".into(),
            ),
            (true, true) => add(
                ProbeKind::Connectivity,
                Level::Ok,
                format!("gateway {} on {} reachable", g.address, g.interface),
            ),
            (true, false) => add(
                ProbeKind::Connectivity,
                Level::Warning,
                format!("gateway {} on {} not answering ARP", g.address, g.interface),
            ),
        }
        for (label, level, check) in c
            .dns
            .iter()
            .map(|d| ("dns", Level::Critical, d))
            .chain(c.tcp.iter().map(|t| ("tcp", Level::Warning, t)))
            .chain(c.collector.iter().map(|t| ("collector", Level::Warning, t)))
        {
            if check.ok {
                add(
                    ProbeKind::Connectivity,
                    Level::Ok,
                    format!("{label} {} ok in {:.0} ms", check.target, check.millis),
                );
            } else {
                add(
                    ProbeKind::Connectivity,
                    level,
                    format!(
                        "{label} {} failed: {} ({})",
                        check.target, check.failure, check.detail
                    ),
                );
            }
        }
        for h in &c.https {
            if !h.ok {
                add(
                    ProbeKind::Connectivity,
                    Level::Warning,
                    format!("https {} failed: {} ({})", h.url, h.failure, h.detail),
                );
            } else if h.certificate_days_left < limits.certificate_warning_days {
                add(
                    ProbeKind::Connectivity,
                    Level::Warning,
                    format!(
                        "https {} certificate expires in {} days",
                        h.url, h.certificate_days_left
                    ),
                );
            } else {
                add(
                    ProbeKind::Connectivity,
                    Level::Ok,
                    format!("https {} status {} in {:.0} ms", h.url, h.status, h.millis),
                );
            }
        }
        for (name, up) in &c.vpn {
            add(
                ProbeKind::Connectivity,
                Level::Ok,
                format!("vpn {name} {}", if *up { "up" } else { "down" }),
            );
        }
    }
    for (kind, error) in &facts.errors {
        let level = if matches!(error, crate::probe::ProbeError::Unsupported(_)) {
            Level::Ok
        } else {
            Level::Warning
        };
        add(*kind, level, format!("probe {}: {error}", error.state()));
    }
    out
}

fn judge_av(a: &AvProduct, limits: &Limits, now_ms: i64) -> (Level, String) {
    let age_days =
        (a.definitions_updated_ms > 0).then(|| (now_ms - a.definitions_updated_ms) / 86_400_000);
    let age = age_days
        .map(|d| format!(", {d} days old"))
        .unwrap_or_default();
    let base = format!(
        "{} definitions {}{age}",
        a.name,
        if a.definitions_version.is_empty() {
            "unknown"
        } else {
            &a.definitions_version
        }
    );
    if !a.running {
        (Level::Critical, format!("{base}: not running"))
    } else if !a.realtime_protection && a.source != "clamd-socket" {
        (Level::Critical, format!("{base}: real-time protection off"))
    } else if age_days.is_some_and(|d| d > limits.definitions_max_age_days) {
        (Level::Warning, format!("{base}: definitions out of date"))
    } else {
        (Level::Ok, format!("{base}: running"))
    }
}

/// The worst level among the findings.
pub fn overall(findings: &[Finding]) -> Level {
    findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok)
}

/// The report as text; `colour` adds ANSI colours to the level tags.
pub fn render_text(host: &str, findings: &[Finding], colour: bool) -> String {
    let paint = |level: Level, s: &str| {
        if !colour {
            return s.to_owned();
        }
        let code = match level {
            Level::Ok => "32",
            Level::Warning => "33",
            Level::Critical => "31;1",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    };
    let total = overall(findings);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Firstline health check for {host}: {}",
        paint(total, &total.word().to_uppercase())
    );
    for kind in ProbeKind::ALL {
        let lines: Vec<&Finding> = findings.iter().filter(|f| f.section == kind).collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", kind.name().to_uppercase());
        for f in lines {
            let _ = writeln!(out, "  {}  {}", paint(f.level, f.level.tag()), f.text);
        }
    }
    out
}

/// The report as JSON: the judgement and, under `facts`, everything the probes found (in the
/// shape of the wire contract's snapshot).
pub fn render_json(host: &str, findings: &[Finding], facts: Value) -> Value {
    json!({
        "host": host,
        "status": overall(findings).word(),
        "facts": facts,
        "findings": findings.iter().map(|f| json!({
            "section": f.section.name(),
            "level": f.level.word(),
            "text": f.text,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ProbeOutput;
    use crate::probe::ProbeError;
    use crate::probe::connectivity::{CheckResult, ConnFacts, Gateway};
    use crate::probe::disk::FsUsage;
    use crate::probe::patch::{PatchFacts, PendingUpdate};

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn controlled() -> Facts {
        let gib = 1024 * 1024 * 1024;
        let mut facts = Facts::default();
        let fs = |m: &str, used: u64| FsUsage {
            mount_point: m.into(),
            device: "/dev/sda1".into(),
            fs_type: "ext4".into(),
            total_bytes: 100 * gib,
            used_bytes: used * gib,
            available_bytes: (100 - used) * gib,
            total_inodes: 1000,
            used_inodes: 250,
        };
        facts.apply(
            ProbeKind::Disk,
            Ok(ProbeOutput::Disk(vec![
                fs("/", 40),
                fs("/home", 92),
                fs("/data", 97),
            ])),
        );
        let mut patches = PatchFacts::from_updates(
            "apt",
            vec![
                PendingUpdate {
                    name: "openssl".into(),
                    installed_version: "3.0.1".into(),
                    candidate_version: "3.0.2".into(),
                    security: true,
                },
                PendingUpdate {
                    name: "vim".into(),
                    installed_version: "9.0".into(),
                    candidate_version: "9.1".into(),
                    security: false,
                },
            ],
        );
        patches.reboot_required = true;
        patches.reboot_reason = "/var/run/reboot-required exists".into();
        facts.apply(ProbeKind::Patches, Ok(ProbeOutput::Patches(patches)));
        facts.apply(
            ProbeKind::Antivirus,
            Ok(ProbeOutput::Antivirus(vec![AvProduct {
                name: "ClamAV".into(),
                running: true,
                definitions_version: "27462".into(),
                definitions_updated_ms: NOW - 5 * DAY,
                source: "clamd-socket".into(),
                ..AvProduct::default()
            }])),
        );
        facts.apply(
            ProbeKind::Connectivity,
            Ok(ProbeOutput::Connectivity(ConnFacts {
                gateway: Gateway {
                    present: true,
                    address: "10.0.0.1".into(),
                    interface: "eth0".into(),
                    reachable: true,
                },
                dns: vec![
                    CheckResult {
                        target: "intranet.example".into(),
                        ok: true,
                        millis: 4.2,
                        ..CheckResult::default()
                    },
                    CheckResult {
                        target: "typo.example".into(),
                        ok: false,
                        millis: 3.0,
                        failure: "nxdomain".into(),
                        detail: "no record".into(),
                    },
                ],
                tcp: vec![CheckResult {
                    target: "10.0.0.5:443".into(),
                    ok: false,
                    millis: 3000.0,
                    failure: "timeout".into(),
                    detail: "no connection within 3s".into(),
                }],
                ..ConnFacts::default()
            })),
        );
        facts.apply(
            ProbeKind::System,
            Err(ProbeError::Timeout(std::time::Duration::from_secs(10))),
        );
        facts
    }

    #[test]
    fn report_on_a_controlled_machine() {
        let findings = evaluate(&controlled(), &Limits::default(), NOW);
        assert_eq!(overall(&findings), Level::Critical);
        assert_eq!(overall(&findings).exit_code(), 2);
        expect_test::expect_file!["../testdata/check/report.txt"]
            .assert_eq(&render_text("pc-042", &findings, false));
        let coloured = render_text("pc-042", &findings, true);
        assert!(coloured.contains("\x1b[31;1mCRIT\x1b[0m"), "{coloured}");
        let json = render_json("pc-042", &findings, Value::Null);
        assert_eq!(json["status"], "critical");
        assert_eq!(
            json["findings"].as_array().map(Vec::len),
            Some(findings.len())
        );
    }

    #[test]
    fn a_healthy_machine_exits_zero_and_no_antivirus_is_critical() {
        let mut facts = Facts::default();
        facts.apply(ProbeKind::Antivirus, Ok(ProbeOutput::Antivirus(vec![])));
        let findings = evaluate(&facts, &Limits::default(), NOW);
        assert_eq!(overall(&findings), Level::Critical);
        assert_eq!(
            overall(&evaluate(&Facts::default(), &Limits::default(), NOW)).exit_code(),
            0
        );
    }
}
