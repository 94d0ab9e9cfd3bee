//! Validated domain types for what agents upload. Wire messages become these through `TryFrom`,
//! which is the one place where bounds and required fields are checked; nothing past this point
//! sees a prost type from an agent.

use firstline_proto::limits;
use firstline_proto::v1;
use prost::Message;

/// A batch of snapshots in ascending sequence order, each one checked.
#[derive(Debug, Clone)]
pub struct Batch {
    pub snapshots: Vec<Snapshot>,
}

/// One validated snapshot from one agent.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub seq: u64,
    pub taken_at_ms: i64,
    pub trigger: &'static str,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub dropped_snapshots: u64,
    pub filesystems: Vec<Filesystem>,
    /// The other probes' facts, checked; the collector keeps them as reported.
    pub facts: ProbeFacts,
    /// The snapshot as received, protobuf-encoded, kept as the record of what was reported.
    pub payload: Vec<u8>,
}

/// The facts of the probes other than disk, bounds-checked. Rules that need them read them
/// from here; the store keeps them encoded, merged over the previous ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeFacts {
    pub system: Option<v1::SystemFacts>,
    pub patches: Option<v1::PatchState>,
    pub antivirus: Option<v1::AntivirusState>,
    pub connectivity: Option<v1::Connectivity>,
    pub probe_status: Vec<v1::ProbeStatus>,
    pub uplink: Option<v1::UplinkDiagnosis>,
}

/// One filesystem as the disk probe saw it.
#[derive(Debug, Clone, PartialEq)]
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

/// Why a report was refused. The message names the snapshot and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReport {
    #[error("batch is empty")]
    Empty,
    #[error("batch holds {0} snapshots, the limit is {max}", max = limits::MAX_BATCH_SNAPSHOTS)]
    TooManySnapshots(usize),
    #[error("snapshot seq {0} appears twice in the batch")]
    DuplicateSeq(u64),
    #[error("snapshot seq {seq}: {problem}")]
    Snapshot { seq: u64, problem: String },
}

/// Latest sensible wall-clock time in a report (the year 2200), to refuse garbage timestamps.
const MAX_TIMESTAMP_MS: i64 = 7_258_118_400_000;
/// Largest size value accepted; it must fit the store's signed 64-bit columns.
const MAX_SIZE: u64 = i64::MAX as u64;

impl TryFrom<v1::ReportRequest> for Batch {
    type Error = InvalidReport;

    fn try_from(request: v1::ReportRequest) -> Result<Self, Self::Error> {
        if request.snapshots.is_empty() {
            return Err(InvalidReport::Empty);
        }
        if request.snapshots.len() > limits::MAX_BATCH_SNAPSHOTS {
            return Err(InvalidReport::TooManySnapshots(request.snapshots.len()));
        }
        let mut snapshots = request
            .snapshots
            .into_iter()
            .map(Snapshot::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        snapshots.sort_by_key(|s| s.seq);
        if let Some(pair) = snapshots.windows(2).find(|w| w[0].seq == w[1].seq) {
            return Err(InvalidReport::DuplicateSeq(pair[0].seq));
        }
        Ok(Self { snapshots })
    }
}

impl TryFrom<v1::Snapshot> for Snapshot {
    type Error = InvalidReport;

    fn try_from(wire: v1::Snapshot) -> Result<Self, Self::Error> {
        let seq = wire.seq;
        let bad = |problem: String| InvalidReport::Snapshot { seq, problem };
        if seq == 0 || seq > MAX_SIZE {
            return Err(bad(format!("seq must be between 1 and {MAX_SIZE}")));
        }
        if wire.taken_at_ms <= 0 || wire.taken_at_ms > MAX_TIMESTAMP_MS {
            return Err(bad(format!(
                "taken_at_ms {} is not a plausible time",
                wire.taken_at_ms
            )));
        }
        if wire.dropped_snapshots > MAX_SIZE {
            return Err(bad("dropped_snapshots is out of range".into()));
        }
        check_string("hostname", &wire.hostname, 255).map_err(bad)?;
        check_string("os", &wire.os, 255).map_err(bad)?;
        check_string("agent_version", &wire.agent_version, 64).map_err(bad)?;
        if wire.filesystems.len() > limits::MAX_FILESYSTEMS {
            return Err(bad(format!(
                "{} filesystems, the limit is {}",
                wire.filesystems.len(),
                limits::MAX_FILESYSTEMS
            )));
        }
        let payload = wire.encode_to_vec();
        let facts = ProbeFacts {
            system: wire.system,
            patches: wire.patches,
            antivirus: wire.antivirus,
            connectivity: wire.connectivity,
            probe_status: wire.probe_status,
            uplink: wire.uplink,
        };
        facts.check().map_err(bad)?;
        let trigger = match v1::Trigger::try_from(wire.trigger) {
            Ok(v1::Trigger::Startup) => "startup",
            Ok(v1::Trigger::Heartbeat) => "heartbeat",
            Ok(v1::Trigger::Threshold) => "threshold",
            Ok(v1::Trigger::Change) => "change",
            Ok(v1::Trigger::Unspecified) | Err(_) => "unspecified",
        };
        let mut filesystems = Vec::with_capacity(wire.filesystems.len());
        for fs in wire.filesystems {
            let fs = Filesystem::try_from(fs).map_err(bad)?;
            if filesystems
                .iter()
                .any(|f: &Filesystem| f.mount_point == fs.mount_point)
            {
                return Err(bad(format!(
                    "mount point {:?} listed twice",
                    fs.mount_point
                )));
            }
            filesystems.push(fs);
        }
        Ok(Self {
            seq,
            taken_at_ms: wire.taken_at_ms,
            trigger,
            hostname: wire.hostname,
            os: wire.os,
            agent_version: wire.agent_version,
            dropped_snapshots: wire.dropped_snapshots,
            filesystems,
            facts,
            payload,
        })
    }
}

/// Short names, versions and states; paths, URLs and messages may be longer.
const SHORT: usize = 255;
const LONG: usize = limits::MAX_STRING_BYTES;

fn count(name: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!("{name}: {n} entries, the limit is {max}"));
    }
    Ok(())
}

impl ProbeFacts {
    /// Checks every string length and list length against the contract's limits.
    fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.system {
            for (name, v) in [
                ("system.hostname", &s.hostname),
                ("system.machine_id", &s.machine_id),
                ("system.os_name", &s.os_name),
                ("system.os_version", &s.os_version),
                ("system.os_build", &s.os_build),
                ("system.architecture", &s.architecture),
                ("system.agent_version", &s.agent_version),
            ] {
                check_string(name, v, SHORT)?;
            }
            if !s.cpu_percent.is_finite() || s.memory_used_bytes > s.memory_total_bytes {
                return Err("system: cpu_percent or memory values are out of range".into());
            }
        }
        if let Some(p) = &self.patches {
            check_string("patches.package_manager", &p.package_manager, SHORT)?;
            check_string("patches.reboot_reason", &p.reboot_reason, LONG)?;
            count("patches.updates", p.updates.len(), limits::MAX_UPDATES)?;
            for u in &p.updates {
                check_string("patches.updates.name", &u.name, LONG)?;
                check_string(
                    "patches.updates.installed_version",
                    &u.installed_version,
                    SHORT,
                )?;
                check_string(
                    "patches.updates.candidate_version",
                    &u.candidate_version,
                    SHORT,
                )?;
            }
            if p.security_count > p.pending_count {
                return Err("patches: security_count exceeds pending_count".into());
            }
        }
        if let Some(a) = &self.antivirus {
            count("antivirus.products", a.products.len(), limits::MAX_ITEMS)?;
            for p in &a.products {
                for (name, v) in [
                    ("antivirus.name", &p.name),
                    ("antivirus.vendor", &p.vendor),
                    ("antivirus.definitions_version", &p.definitions_version),
                    ("antivirus.engine_version", &p.engine_version),
                    ("antivirus.source", &p.source),
                ] {
                    check_string(name, v, SHORT)?;
                }
            }
        }
        if let Some(c) = &self.connectivity {
            if let Some(g) = &c.gateway {
                check_string("connectivity.gateway.address", &g.address, SHORT)?;
                check_string("connectivity.gateway.interface", &g.interface, SHORT)?;
            }
            count("connectivity.dns", c.dns.len(), limits::MAX_ITEMS)?;
            count("connectivity.tcp", c.tcp.len(), limits::MAX_ITEMS)?;
            count("connectivity.https", c.https.len(), limits::MAX_ITEMS)?;
            count("connectivity.vpn", c.vpn.len(), limits::MAX_ITEMS)?;
            for check in c.dns.iter().chain(&c.tcp).chain(c.collector.as_ref()) {
                check_string("connectivity.target", &check.target, LONG)?;
                check_string("connectivity.failure", &check.failure, SHORT)?;
                check_string("connectivity.detail", &check.detail, LONG)?;
                if !check.millis.is_finite() {
                    return Err("connectivity: millis is not a number".into());
                }
            }
            for h in &c.https {
                check_string("connectivity.https.url", &h.url, LONG)?;
                check_string("connectivity.https.failure", &h.failure, SHORT)?;
                check_string("connectivity.https.detail", &h.detail, LONG)?;
            }
            for v in &c.vpn {
                check_string("connectivity.vpn.name", &v.name, SHORT)?;
            }
        }
        count("probe_status", self.probe_status.len(), 16)?;
        for p in &self.probe_status {
            check_string("probe_status.probe", &p.probe, SHORT)?;
            check_string("probe_status.state", &p.state, SHORT)?;
            check_string("probe_status.message", &p.message, LONG)?;
        }
        if let Some(u) = &self.uplink {
            check_string("uplink.last_code", &u.last_code, SHORT)?;
            check_string("uplink.last_error", &u.last_error, LONG)?;
        }
        Ok(())
    }

    /// These facts laid over the previously stored ones (a probe absent from this snapshot
    /// keeps its last facts; probe status and uplink diagnosis are replaced), encoded.
    pub fn merged_over(&self, previous: Option<&[u8]>) -> Vec<u8> {
        let mut merged = previous
            .and_then(|bytes| v1::Snapshot::decode(bytes).ok())
            .unwrap_or_default();
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
        merged.encode_to_vec()
    }
}

impl TryFrom<v1::Filesystem> for Filesystem {
    type Error = String;

    fn try_from(wire: v1::Filesystem) -> Result<Self, String> {
        check_string("mount_point", &wire.mount_point, limits::MAX_STRING_BYTES)?;
        if wire.mount_point.is_empty() {
            return Err("mount_point is empty".into());
        }
        let at = &wire.mount_point;
        check_string("device", &wire.device, limits::MAX_STRING_BYTES)?;
        check_string("fs_type", &wire.fs_type, 64)?;
        for (name, value) in [
            ("total_bytes", wire.total_bytes),
            ("used_bytes", wire.used_bytes),
            ("available_bytes", wire.available_bytes),
            ("total_inodes", wire.total_inodes),
            ("used_inodes", wire.used_inodes),
        ] {
            if value > MAX_SIZE {
                return Err(format!("{at}: {name} {value} is out of range"));
            }
        }
        if wire.used_bytes > wire.total_bytes {
            return Err(format!("{at}: used_bytes exceeds total_bytes"));
        }
        if wire.available_bytes > wire.total_bytes {
            return Err(format!("{at}: available_bytes exceeds total_bytes"));
        }
        if wire.used_inodes > wire.total_inodes {
            return Err(format!("{at}: used_inodes exceeds total_inodes"));
        }
        Ok(Self {
            mount_point: wire.mount_point,
            device: wire.device,
            fs_type: wire.fs_type,
            total_bytes: wire.total_bytes,
            used_bytes: wire.used_bytes,
            available_bytes: wire.available_bytes,
            total_inodes: wire.total_inodes,
            used_inodes: wire.used_inodes,
        })
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

fn check_string(name: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{name} is {} bytes, the limit is {max}",
            value.len()
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("{name} contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(mount: &str, total: u64, used: u64, avail: u64) -> v1::Filesystem {
        v1::Filesystem {
            mount_point: mount.into(),
            device: "/dev/sda1".into(),
            fs_type: "ext4".into(),
            total_bytes: total,
            used_bytes: used,
            available_bytes: avail,
            total_inodes: 100,
            used_inodes: 10,
        }
    }

    fn snap(seq: u64, filesystems: Vec<v1::Filesystem>) -> v1::Snapshot {
        v1::Snapshot {
            seq,
            taken_at_ms: 1_700_000_000_000,
            hostname: "pc-1".into(),
            filesystems,
            ..Default::default()
        }
    }

    fn check(snapshots: Vec<v1::Snapshot>) -> Result<Batch, String> {
        Batch::try_from(v1::ReportRequest { snapshots }).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_sane_batch_and_sorts_it() {
        let batch =
            check(vec![snap(2, vec![]), snap(1, vec![fs("/", 100, 50, 40)])]).expect("valid batch");
        let seqs: Vec<u64> = batch.snapshots.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [1, 2]);
        let percent = batch.snapshots[0].filesystems[0].used_percent();
        assert!((percent - 50.0 / 90.0 * 100.0).abs() < 1e-9, "{percent}");
    }

    #[test]
    fn refuses_absurd_values_with_a_message_naming_them() {
        let cases: Vec<(Vec<v1::Snapshot>, &str)> = vec![
            (vec![], "batch is empty"),
            (vec![snap(0, vec![])], "seq 0: seq must be"),
            (
                vec![snap(1, vec![]), snap(1, vec![])],
                "seq 1 appears twice",
            ),
            (
                vec![snap(3, vec![fs("/", 10, 11, 0)])],
                "/: used_bytes exceeds total_bytes",
            ),
            (
                vec![snap(3, vec![fs("/", u64::MAX, 1, 0)])],
                "total_bytes 18446744073709551615 is out of range",
            ),
            (
                vec![snap(3, vec![fs("", 10, 1, 1)])],
                "mount_point is empty",
            ),
            (
                vec![snap(3, vec![fs(&"x".repeat(5000), 10, 1, 1)])],
                "mount_point is 5000 bytes",
            ),
            (
                vec![snap(3, vec![fs("/a", 10, 1, 1), fs("/a", 10, 1, 1)])],
                "listed twice",
            ),
            (
                vec![snap(
                    3,
                    (0..300).map(|i| fs(&format!("/m{i}"), 10, 1, 1)).collect(),
                )],
                "300 filesystems",
            ),
            ((1..=65).map(|i| snap(i, vec![])).collect(), "65 snapshots"),
        ];
        for (input, expected) in cases {
            let error = check(input).expect_err(expected);
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn oversized_facts_are_refused() {
        let mut s = snap(1, vec![]);
        s.patches = Some(v1::PatchState {
            updates: (0..limits::MAX_UPDATES + 1)
                .map(|_| v1::PendingUpdate::default())
                .collect(),
            ..Default::default()
        });
        let error = check(vec![s]).expect_err("too many updates");
        assert!(error.contains("patches.updates: 501 entries"), "{error}");
        let mut s = snap(1, vec![]);
        s.antivirus = Some(v1::AntivirusState {
            products: vec![v1::AntivirusProduct {
                name: "x".repeat(300),
                ..Default::default()
            }],
        });
        assert!(
            check(vec![s])
                .expect_err("long name")
                .contains("antivirus.name is 300 bytes")
        );
    }

    #[test]
    fn facts_merge_over_the_previous_ones() {
        let first = ProbeFacts {
            patches: Some(v1::PatchState {
                pending_count: 3,
                ..Default::default()
            }),
            uplink: Some(v1::UplinkDiagnosis {
                consecutive_failures: 2,
                ..Default::default()
            }),
            ..ProbeFacts::default()
        };
        let stored = first.merged_over(None);
        let second = ProbeFacts {
            system: Some(v1::SystemFacts {
                hostname: "pc".into(),
                ..Default::default()
            }),
            ..ProbeFacts::default()
        };
        let merged =
            v1::Snapshot::decode(second.merged_over(Some(&stored)).as_slice()).expect("decodes");
        assert_eq!(
            merged.patches.map(|p| p.pending_count),
            Some(3),
            "patches kept"
        );
        assert_eq!(merged.system.map(|s| s.hostname), Some("pc".to_owned()));
        assert_eq!(merged.uplink, None, "the uplink diagnosis is replaced");
    }

    #[test]
    fn zero_sized_filesystem_is_zero_percent() {
        let f = Filesystem::try_from(fs("/x", 0, 0, 0)).expect("valid");
        assert_eq!(f.used_percent(), 0.0);
    }
}
