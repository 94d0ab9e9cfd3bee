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
    /// These facts laid over the previously stored ones: a probe absent from this snapshot
    /// keeps its last facts; probe status and uplink diagnosis are replaced.
    pub fn merged_over(&self, previous: Option<ProbeFacts>) -> ProbeFacts {
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
        let merged = second.merged_over(Some(first));
        assert_eq!(merged.patches.map(|p| p.pending_count), Some(3));
        assert_eq!(merged.system.map(|s| s.hostname), Some("pc".to_owned()));
        assert_eq!(merged.uplink, None, "the uplink diagnosis is replaced");
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
