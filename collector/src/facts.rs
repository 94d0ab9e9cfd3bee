//! The collector's own types for what agents report: a validated snapshot and the facts of each
//! probe. `report.rs` builds them from the wire message (the only place that sees the prost
//! types of a report); rules, store and service read these. Host facts are stored as the JSON
//! of [`ProbeFacts`], the store's own format, independent of the wire encoding.

use serde::{Deserialize, Serialize};

/// One validated snapshot from one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub seq: u64,
    /// The spool epoch the sequence number belongs to (see the wire contract).
    pub epoch: u64,
    /// When the probes ran, on the agent's clock.
    pub taken_at_ms: i64,
    /// When it happened on the collector's clock: the agent's time corrected for its clock
    /// skew, never later than the arrival. Everything time-driven uses this.
    pub at_ms: i64,
    /// The agent's time was too far off to trust, and `at_ms` was corrected.
    pub clock_adjusted: bool,
    pub trigger: Trigger,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    /// The machine and the boot that took it (see the wire contract); empty from agents that
    /// predate them. `ingest::instance` tells reboots from clones with them.
    pub machine_id: String,
    pub boot_id: String,
    pub dropped_snapshots: u64,
    pub rejected_snapshots: u64,
    pub filesystems: Vec<Filesystem>,
    pub facts: ProbeFacts,
    /// The snapshot as received, kept opaque as the record of what was reported.
    pub payload: Vec<u8>,
}

/// Why the agent took a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Unspecified,
    Startup,
    Heartbeat,
    Threshold,
    Change,
}

/// One filesystem as the disk probe saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub total_inodes: u64,
    pub used_inodes: u64,
}

/// The facts of the probes other than disk; absent means the probe has not reported yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeFacts {
    pub system: Option<SystemFacts>,
    pub patches: Option<PatchState>,
    pub antivirus: Option<AntivirusState>,
    pub connectivity: Option<Connectivity>,
    pub probe_status: Vec<ProbeStatus>,
    pub uplink: Option<UplinkDiagnosis>,
    /// The agent's latest spell of failed uploads (the last diagnosis its snapshots carried),
    /// kept after it reached the collector again: "why was it offline" once the host is back.
    /// Kept by the collector from the snapshots' diagnoses, never sent by an agent.
    pub last_uplink_failure: Option<UplinkDiagnosis>,
    /// When that spell ended: the time of the first snapshot without a diagnosis (taken once
    /// uploads worked again); 0 while the latest snapshot still carries one.
    pub uplink_recovered_at_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemFacts {
    pub hostname: String,
    pub machine_id: String,
    pub os_name: String,
    pub os_version: String,
    pub os_build: String,
    pub architecture: String,
    pub uptime_seconds: u64,
    pub cpu_percent: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub agent_version: String,
    pub agent_rss_bytes: u64,
    pub agent_cpu_millis: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatchState {
    pub package_manager: String,
    pub pending_count: u32,
    pub security_count: u32,
    pub updates: Vec<PendingUpdate>,
    pub updates_truncated: bool,
    pub reboot_required: bool,
    pub reboot_reason: String,
    pub last_update_ms: i64,
    /// Held-back packages with a newer version (not counted as pending).
    pub held_count: u32,
    pub held: Vec<PendingUpdate>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PendingUpdate {
    pub name: String,
    pub installed_version: String,
    pub candidate_version: String,
    pub security: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AntivirusState {
    pub products: Vec<AntivirusProduct>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AntivirusProduct {
    pub name: String,
    pub vendor: String,
    pub running: bool,
    pub realtime_protection: bool,
    pub definitions_version: String,
    pub definitions_updated_ms: i64,
    pub engine_version: String,
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connectivity {
    pub gateway: Option<GatewayCheck>,
    pub dns: Vec<NamedCheck>,
    pub tcp: Vec<NamedCheck>,
    pub https: Vec<HttpsCheck>,
    pub collector: Option<NamedCheck>,
    pub vpn: Vec<VpnInterface>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayCheck {
    pub present: bool,
    pub address: String,
    pub interface: String,
    pub reachable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedCheck {
    pub target: String,
    pub ok: bool,
    pub millis: f64,
    pub failure: String,
    pub detail: String,
    /// DNS checks: the resolver asked.
    pub resolver: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpsCheck {
    pub url: String,
    pub ok: bool,
    pub millis: f64,
    pub status: u32,
    pub certificate_days_left: i64,
    pub failure: String,
    pub detail: String,
    /// When the certificate expires; 0 when none was received.
    pub certificate_not_after_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VpnInterface {
    pub name: String,
    pub up: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeStatus {
    pub probe: String,
    pub state: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UplinkDiagnosis {
    pub consecutive_failures: u32,
    pub failing_since_ms: i64,
    pub last_code: String,
    pub last_error: String,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Startup => "startup",
            Self::Heartbeat => "heartbeat",
            Self::Threshold => "threshold",
            Self::Change => "change",
        }
    }
}

impl ProbeFacts {
    /// These facts of a snapshot taken at `at_ms` laid over the previously stored ones: a probe
    /// absent from this snapshot keeps its last facts; probe status and uplink diagnosis are
    /// replaced. A diagnosis of failed uploads becomes the host's last spell of them; the first
    /// snapshot without one ends that spell at its time.
    pub fn merged_over(&self, previous: Option<ProbeFacts>, at_ms: i64) -> ProbeFacts {
        let mut merged = previous.unwrap_or_default();
        if self.system.is_some() {
            merged.system.clone_from(&self.system);
        }
        if self.patches.is_some() {
            merged.patches.clone_from(&self.patches);
        }
        if self.antivirus.is_some() {
            merged.antivirus.clone_from(&self.antivirus);
        }
        if self.connectivity.is_some() {
            merged.connectivity.clone_from(&self.connectivity);
        }
        merged.probe_status.clone_from(&self.probe_status);
        merged.uplink.clone_from(&self.uplink);
        match self.uplink.as_ref().filter(|u| u.consecutive_failures > 0) {
            Some(failing) => {
                merged.last_uplink_failure = Some(failing.clone());
                merged.uplink_recovered_at_ms = 0;
            }
            None => {
                if let Some(spell) = &merged.last_uplink_failure
                    && merged.uplink_recovered_at_ms == 0
                {
                    merged.uplink_recovered_at_ms = at_ms.max(spell.failing_since_ms);
                }
            }
        }
        merged
    }
}

impl Filesystem {
    /// Used space as `df` shows it: used / (used + available), so blocks reserved for root
    /// count as unavailable rather than free.
    pub fn used_percent(&self) -> f64 {
        used_percent(self.used_bytes, self.available_bytes)
    }
}

/// `df`'s Use%: used / (used + available), 0 for an empty filesystem.
pub fn used_percent(used: u64, available: u64) -> f64 {
    let denominator = used.saturating_add(available);
    if denominator == 0 {
        return 0.0;
    }
    used as f64 * 100.0 / denominator as f64
}

/// The OS family of a host ("linux", "windows", "macos", or "" when unknown), from what its
/// agent reports.
pub fn os_family(os: &str, facts: &ProbeFacts) -> &'static str {
    let name = facts
        .system
        .as_ref()
        .map(|s| s.os_name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(os)
        .to_ascii_lowercase();
    if name.contains("windows") {
        "windows"
    } else if name.contains("mac") || name.contains("darwin") {
        "macos"
    } else if name.is_empty() {
        ""
    } else {
        "linux"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_merge_over_the_previous_ones() {
        let first = ProbeFacts {
            patches: Some(PatchState {
                pending_count: 3,
                ..Default::default()
            }),
            uplink: Some(UplinkDiagnosis {
                consecutive_failures: 2,
                ..Default::default()
            }),
            ..ProbeFacts::default()
        };
        let second = ProbeFacts {
            system: Some(SystemFacts {
                hostname: "pc".into(),
                ..Default::default()
            }),
            ..ProbeFacts::default()
        };
        let merged = second.merged_over(Some(first), 5_000);
        assert_eq!(merged.patches.map(|p| p.pending_count), Some(3));
        assert_eq!(merged.system.map(|s| s.hostname), Some("pc".to_owned()));
        assert_eq!(merged.uplink, None, "the uplink diagnosis is replaced");
    }

    fn diagnosed(failures: u32, since_ms: i64) -> ProbeFacts {
        ProbeFacts {
            uplink: Some(UplinkDiagnosis {
                consecutive_failures: failures,
                failing_since_ms: since_ms,
                last_code: "Unavailable".into(),
                last_error: "connection refused".into(),
            }),
            ..ProbeFacts::default()
        }
    }

    #[test]
    fn the_last_spell_of_failed_uploads_outlives_the_recovery() {
        // Spooled snapshots arrive in order: each carries the diagnosis so far.
        let during = diagnosed(2, 1_000).merged_over(None, 2_000);
        let during = diagnosed(5, 1_000).merged_over(Some(during), 3_000);
        let spell = during.last_uplink_failure.clone().expect("a spell");
        assert_eq!(spell.consecutive_failures, 5);
        assert_eq!(during.uplink_recovered_at_ms, 0, "still failing");

        // The first snapshot without a diagnosis ends the spell at its time; later ones keep it.
        let back = ProbeFacts::default().merged_over(Some(during), 9_000);
        assert_eq!(back.uplink, None);
        let spell = back.last_uplink_failure.clone().expect("kept");
        assert_eq!(
            (spell.consecutive_failures, back.uplink_recovered_at_ms),
            (5, 9_000)
        );
        let later = ProbeFacts::default().merged_over(Some(back), 60_000);
        assert!(later.last_uplink_failure.is_some());
        assert_eq!(later.uplink_recovered_at_ms, 9_000);

        // A diagnosis of zero failures (the uplink's first success) is no spell.
        let clean = diagnosed(0, 0).merged_over(None, 1_000);
        assert_eq!(clean.last_uplink_failure, None);
    }

    #[test]
    fn a_new_spell_replaces_the_old_one() {
        let first = diagnosed(3, 1_000).merged_over(None, 2_000);
        let back = ProbeFacts::default().merged_over(Some(first), 4_000);
        let again = diagnosed(1, 50_000).merged_over(Some(back), 51_000);
        let spell = again.last_uplink_failure.expect("spell");
        assert_eq!(
            (spell.failing_since_ms, again.uplink_recovered_at_ms),
            (50_000, 0)
        );
    }

    #[test]
    fn stored_facts_round_trip_through_json() {
        let facts = ProbeFacts {
            antivirus: Some(AntivirusState {
                products: vec![AntivirusProduct {
                    name: "ClamAV".into(),
                    running: true,
                    ..Default::default()
                }],
            }),
            ..ProbeFacts::default()
        };
        let text = serde_json::to_string(&facts).expect("encodes");
        let back: ProbeFacts = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, facts);
    }

    #[test]
    fn os_family_prefers_the_system_probe() {
        let mut facts = ProbeFacts::default();
        assert_eq!(os_family("", &facts), "");
        assert_eq!(os_family("Debian GNU/Linux 12", &facts), "linux");
        facts.system = Some(SystemFacts {
            os_name: "Microsoft Windows 11 Pro".into(),
            ..Default::default()
        });
        assert_eq!(os_family("whatever", &facts), "windows");
        facts.system = Some(SystemFacts {
            os_name: "macOS".into(),
            ..Default::default()
        });
        assert_eq!(os_family("", &facts), "macos");
    }
}
