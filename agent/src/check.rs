//! `firstline-agent check`: every probe once, judged and printed for a technician on the phone
//! with a user. Colour when the output is a terminal (and `NO_COLOR` is unset), plain text when
//! piped, `--json` for scripts. Exit code as monitoring plugins use it: 0 healthy, 1 warnings,
//! 2 critical. Works without enrollment and without a collector. In text, each probe's
//! findings are printed as soon as it finishes (`render_section`), then the summary; the slow
//! probes' results can come from the running agent (`cache`).

pub mod cache;

use std::fmt::Write as _;

use serde_json::{Value, json};

pub use crate::registry::{Finding, Level, Limits};

use crate::facts::Facts;
use crate::registry::ProbeSet;

/// Judges the facts: each probe's findings in report order, then the probes that failed.
pub fn evaluate(probes: &ProbeSet, facts: &Facts, limits: &Limits, now_ms: i64) -> Vec<Finding> {
    probes.judge(facts, limits, now_ms)
}

fn tag(level: Level) -> &'static str {
    match level {
        Level::Ok => "OK  ",
        Level::Warning => "WARN",
        Level::Critical => "CRIT",
    }
}

fn word(level: Level) -> &'static str {
    cache::word(level)
}

fn paint(level: Level, s: &str, colour: bool) -> String {
    if !colour {
        return s.to_owned();
    }
    let code = match level {
        Level::Ok => "32",
        Level::Warning => "33",
        Level::Critical => "31;1",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The worst level among the findings.
pub fn overall(findings: &[Finding]) -> Level {
    findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok)
}

/// The report as text; `colour` adds ANSI colours to the level tags.
pub fn render_text(host: &str, findings: &[Finding], colour: bool) -> String {
    let mut out = render_summary(host, findings, colour);
    let mut sections: Vec<_> = findings.iter().map(|f| f.section).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        let of_section: Vec<Finding> = findings
            .iter()
            .filter(|f| f.section == section)
            .cloned()
            .collect();
        out.push_str(&render_section(
            &section.name().to_uppercase(),
            &of_section,
            colour,
        ));
    }
    out
}

/// One probe's findings under its section title, as printed when the probe finishes.
pub fn render_section(title: &str, findings: &[Finding], colour: bool) -> String {
    let mut out = format!("\n{title}\n");
    for f in findings {
        let _ = writeln!(
            out,
            "  {}  {}",
            paint(f.level, tag(f.level), colour),
            f.text
        );
    }
    out
}

/// The line with the overall judgement.
pub fn render_summary(host: &str, findings: &[Finding], colour: bool) -> String {
    let total = overall(findings);
    format!(
        "Firstline health check for {host}: {}\n",
        paint(total, &word(total).to_uppercase(), colour)
    )
}

/// The report as JSON: the judgement and, under `facts`, everything the probes found (in the
/// shape of the wire contract's snapshot).
pub fn render_json(host: &str, findings: &[Finding], facts: Value) -> Value {
    json!({
        "host": host,
        "status": word(overall(findings)),
        "facts": facts,
        "findings": findings.iter().map(|f| json!({
            "section": f.section.name(),
            "level": word(f.level),
            "text": f.text,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{ProbeId, ProbeOutput};
    use crate::probe::ProbeError;
    use crate::probe::antivirus::AvProduct;
    use crate::probe::connectivity::{CheckResult, ConnFacts, Gateway};
    use crate::probe::disk::FsUsage;
    use crate::probe::patch::{PatchFacts, PendingUpdate};

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn id(probes: &ProbeSet, name: &str) -> ProbeId {
        probes.id(name).expect("probe in the registry")
    }

    fn controlled(probes: &ProbeSet) -> Facts {
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
            id(probes, "disk"),
            Ok(ProbeOutput::new(vec![
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
        facts.apply(id(probes, "patches"), Ok(ProbeOutput::new(patches)));
        facts.apply(
            id(probes, "antivirus"),
            Ok(ProbeOutput::new(vec![AvProduct {
                name: "ClamAV".into(),
                running: true,
                definitions_version: "27462".into(),
                definitions_updated_ms: NOW - 5 * DAY,
                source: "clamd-socket".into(),
                ..AvProduct::default()
            }])),
        );
        facts.apply(
            id(probes, "connectivity"),
            Ok(ProbeOutput::new(ConnFacts {
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
                        resolver: "10.0.0.53:53".into(),
                    },
                ],
                tcp: vec![CheckResult {
                    target: "10.0.0.5:443".into(),
                    ok: false,
                    millis: 3000.0,
                    failure: "timeout".into(),
                    detail: "no connection within 3s".into(),
                    resolver: String::new(),
                }],
                ..ConnFacts::default()
            })),
        );
        facts.apply(
            id(probes, "system"),
            Err(ProbeError::Timeout(std::time::Duration::from_secs(10))),
        );
        facts
    }

    #[test]
    fn report_on_a_controlled_machine() {
        let probes = ProbeSet::new();
        let findings = evaluate(&probes, &controlled(&probes), &Limits::default(), NOW);
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
        let probes = ProbeSet::new();
        let mut facts = Facts::default();
        facts.apply(
            id(&probes, "antivirus"),
            Ok(ProbeOutput::new(Vec::<AvProduct>::new())),
        );
        let findings = evaluate(&probes, &facts, &Limits::default(), NOW);
        assert_eq!(overall(&findings), Level::Critical);
        assert_eq!(
            overall(&evaluate(
                &probes,
                &Facts::default(),
                &Limits::default(),
                NOW
            ))
            .exit_code(),
            0
        );
    }
}
