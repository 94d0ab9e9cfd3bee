//! The rules shipped with the collector. An operator's rule file replaces a rule by using its id,
//! switches one off with `enabled = false`, or adds new ones.

use std::time::Duration;

use super::{Rule, RuleKind};

const DAY: Duration = Duration::from_secs(86_400);

fn rule(
    id: &str,
    kind: RuleKind,
    priority: u32,
    hold_for: Duration,
    title: &str,
    kb: &str,
) -> Rule {
    Rule {
        id: id.into(),
        kind,
        priority,
        hold_for,
        title: title.into(),
        kb: kb.into(),
        os: Vec::new(),
    }
}

/// Where common policy requires an antivirus product: Windows and macOS. Linux workstations
/// commonly run none, so a fresh install does not open a P1 on every Linux machine; list
/// `"linux"` in the rule's `os` to require one there too.
pub fn antivirus_required_on() -> Vec<String> {
    vec!["windows".into(), "macos".into()]
}

/// Where a running product with real-time protection off is not protecting: Windows and macOS
/// (Defender, XProtect and the like work on access). On Linux the usual scanner, clamd, scans
/// on demand, so a running one counts as protecting.
pub fn realtime_required_on() -> Vec<String> {
    antivirus_required_on()
}

/// The default rule set.
pub fn rules() -> Vec<Rule> {
    vec![
        rule(
            "disk.usage",
            RuleKind::DiskUsage {
                open_percent: 90.0,
                clear_percent: 85.0,
                critical_percent: 95.0,
                critical_priority: 1,
            },
            2,
            Duration::ZERO,
            "Disk {subject} on {host} is {value}% full",
            "disk-full",
        ),
        rule(
            "disk.forecast",
            RuleKind::DiskForecast {
                horizon_hours: 72.0,
            },
            3,
            Duration::ZERO,
            "Disk {subject} on {host} will be full in {value} hours",
            "disk-full",
        ),
        rule(
            "disk.inodes",
            RuleKind::InodeUsage {
                open_percent: 90.0,
                clear_percent: 85.0,
            },
            2,
            Duration::ZERO,
            "Inodes of {subject} on {host} are {value}% used",
            "inodes-full",
        ),
        rule(
            "updates.security",
            RuleKind::SecurityUpdatesPending,
            2,
            7 * DAY,
            "{value} security updates pending on {host} for over {for}",
            "security-updates",
        ),
        rule(
            "updates.any",
            RuleKind::UpdatesPending,
            3,
            30 * DAY,
            "{value} updates pending on {host} for over {for}",
            "pending-updates",
        ),
        rule(
            "reboot.pending",
            RuleKind::RebootPending,
            3,
            3 * DAY,
            "Reboot pending on {host} for over {for}",
            "reboot-pending",
        ),
        Rule {
            os: antivirus_required_on(),
            ..rule(
                "antivirus.none",
                RuleKind::NoAntivirus,
                1,
                Duration::ZERO,
                "No antivirus on {host}",
                "antivirus-missing",
            )
        },
        rule(
            "antivirus.off",
            RuleKind::AntivirusOff {
                realtime_required_on: realtime_required_on(),
            },
            1,
            Duration::ZERO,
            "{subject} not protecting {host}",
            "antivirus-off",
        ),
        rule(
            "antivirus.definitions",
            RuleKind::DefinitionsOld { max_age_days: 3.0 },
            2,
            Duration::ZERO,
            "{subject} definitions on {host} are {value} days old",
            "antivirus-definitions",
        ),
        rule(
            "connectivity.failure",
            RuleKind::ConnectivityFailure { consecutive: 3 },
            2,
            Duration::ZERO,
            "{subject} failing on {host}",
            "connectivity",
        ),
    ]
}
