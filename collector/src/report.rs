//! The edge between a report on the wire and the collector's own types (`facts`): every field is
//! checked here (lengths, counts, finite and in-range numbers, plausible times), and nothing
//! past this point sees a prost type from an agent.
//!
//! A batch whose shape is wrong (empty, too long, a sequence number twice) is refused whole. A
//! single snapshot that is wrong is *rejected* on its own, with a reason: the agent drops it
//! and the rest of the batch is stored, so one bad value can never wedge an agent's spool.

use firstline_proto::limits;
use firstline_proto::v1;
use prost::Message;

use crate::facts::{
    AntivirusProduct, AntivirusState, Connectivity, Filesystem, GatewayCheck, HttpsCheck,
    NamedCheck, PatchState, PendingUpdate, ProbeFacts, ProbeStatus, Snapshot, SystemFacts, Trigger,
    UplinkDiagnosis, VpnInterface,
};

/// A batch in ascending sequence order: each entry is a valid snapshot or a rejection.
#[derive(Debug, Clone)]
pub struct Batch {
    pub entries: Vec<Entry>,
    /// The agent's clock minus the collector's at arrival, when the agent said when it sent.
    pub clock_skew_ms: Option<i64>,
}

/// One snapshot of a batch.
#[derive(Debug, Clone)]
pub enum Entry {
    Valid(Box<Snapshot>),
    Rejected { seq: u64, reason: String },
}

/// Why a whole batch was refused. The message names the snapshot and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReport {
    #[error("batch is empty")]
    Empty,
    #[error("batch holds {0} snapshots, the limit is {max}", max = limits::MAX_BATCH_SNAPSHOTS)]
    TooManySnapshots(usize),
    #[error("snapshot seq {0} appears twice in the batch")]
    DuplicateSeq(u64),
    #[error("batch mixes spool epochs {0} and {1}; send one epoch per batch")]
    MixedEpochs(u64, u64),
}

/// Largest sequence number, epoch or size accepted: it must fit the store's signed columns.
pub const MAX_SEQ: u64 = i64::MAX as u64;
/// Latest sensible wall-clock time in a report (the year 2200).
const MAX_TIMESTAMP_MS: i64 = 7_258_118_400_000;
/// A clock this far from the collector's is not trusted for time-driven work.
pub const CLOCK_TOLERANCE_MS: i64 = 5 * 60_000;
/// Largest per-snapshot drop or reject count (the collector adds them up).
const MAX_COUNTER: u64 = 1 << 40;
/// Short names, versions and states; paths, URLs and messages may be longer.
const SHORT: usize = 255;
const LONG: usize = limits::MAX_STRING_BYTES;

impl Batch {
    /// Checks a request that arrived at `arrival_ms` on the collector's clock.
    pub fn from_wire(request: v1::ReportRequest, arrival_ms: i64) -> Result<Self, InvalidReport> {
        if request.snapshots.is_empty() {
            return Err(InvalidReport::Empty);
        }
        if request.snapshots.len() > limits::MAX_BATCH_SNAPSHOTS {
            return Err(InvalidReport::TooManySnapshots(request.snapshots.len()));
        }
        let mut seqs: Vec<u64> = request.snapshots.iter().map(|s| s.seq).collect();
        seqs.sort_unstable();
        if let Some(pair) = seqs.windows(2).find(|w| w[0] == w[1]) {
            return Err(InvalidReport::DuplicateSeq(pair[0]));
        }
        let first_epoch = request.snapshots[0].spool_epoch;
        if let Some(other) = request
            .snapshots
            .iter()
            .find(|s| s.spool_epoch != first_epoch)
        {
            return Err(InvalidReport::MixedEpochs(first_epoch, other.spool_epoch));
        }
        let clock_skew_ms = (request.sent_at_ms > 0 && request.sent_at_ms <= MAX_TIMESTAMP_MS)
            .then(|| request.sent_at_ms - arrival_ms);
        let mut entries: Vec<Entry> = request
            .snapshots
            .into_iter()
            .map(|wire| {
                let seq = wire.seq;
                match snapshot(wire, arrival_ms, clock_skew_ms) {
                    Ok(s) => Entry::Valid(Box::new(s)),
                    Err(problem) => Entry::Rejected {
                        seq,
                        reason: format!("snapshot seq {seq}: {problem}"),
                    },
                }
            })
            .collect();
        entries.sort_by_key(Entry::seq);
        Ok(Self {
            entries,
            clock_skew_ms,
        })
    }
}

impl Entry {
    pub fn seq(&self) -> u64 {
        match self {
            Self::Valid(s) => s.seq,
            Self::Rejected { seq, .. } => *seq,
        }
    }
}

/// When a snapshot happened on the collector's clock, and whether its own time was corrected.
pub fn collector_time(taken_at_ms: i64, arrival_ms: i64, skew_ms: Option<i64>) -> (i64, bool) {
    if taken_at_ms <= 0 || taken_at_ms > MAX_TIMESTAMP_MS {
        return (arrival_ms, true);
    }
    match skew_ms {
        Some(skew) if skew.abs() > CLOCK_TOLERANCE_MS => {
            ((taken_at_ms.saturating_sub(skew)).min(arrival_ms), true)
        }
        Some(_) => (taken_at_ms.min(arrival_ms), false),
        // Unknown skew: a time in the past may be a spooled snapshot and is kept; one in the
        // future beyond the tolerance is the agent's clock running ahead.
        None if taken_at_ms > arrival_ms + CLOCK_TOLERANCE_MS => (arrival_ms, true),
        None => (taken_at_ms.min(arrival_ms), false),
    }
}

fn snapshot(w: v1::Snapshot, arrival_ms: i64, skew: Option<i64>) -> Result<Snapshot, String> {
    let payload = w.encode_to_vec();
    if w.seq == 0 || w.seq > MAX_SEQ {
        return Err(format!("seq must be between 1 and {MAX_SEQ}"));
    }
    if w.spool_epoch > MAX_SEQ {
        return Err(format!("spool_epoch must be at most {MAX_SEQ}"));
    }
    counter("dropped_snapshots", w.dropped_snapshots)?;
    counter("rejected_snapshots", w.rejected_snapshots)?;
    check_string("hostname", &w.hostname, SHORT)?;
    check_string("os", &w.os, SHORT)?;
    check_string("agent_version", &w.agent_version, 64)?;
    check_string("machine_id", &w.machine_id, 255)?;
    check_string("boot_id", &w.boot_id, 64)?;
    count("filesystems", w.filesystems.len(), limits::MAX_FILESYSTEMS)?;
    let mut filesystems: Vec<Filesystem> = Vec::with_capacity(w.filesystems.len());
    for fs in w.filesystems {
        let fs = filesystem(fs)?;
        if filesystems.iter().any(|f| f.mount_point == fs.mount_point) {
            return Err(format!("mount point {:?} listed twice", fs.mount_point));
        }
        filesystems.push(fs);
    }
    let facts = probe_facts(
        w.system,
        w.patches,
        w.antivirus,
        w.connectivity,
        w.probe_status,
        w.uplink,
    )?;
    let (at_ms, clock_adjusted) = collector_time(w.taken_at_ms, arrival_ms, skew);
    Ok(Snapshot {
        seq: w.seq,
        epoch: w.spool_epoch,
        taken_at_ms: w.taken_at_ms,
        at_ms,
        clock_adjusted,
        trigger: match v1::Trigger::try_from(w.trigger) {
            Ok(v1::Trigger::Startup) => Trigger::Startup,
            Ok(v1::Trigger::Heartbeat) => Trigger::Heartbeat,
            Ok(v1::Trigger::Threshold) => Trigger::Threshold,
            Ok(v1::Trigger::Change) => Trigger::Change,
            Ok(v1::Trigger::Unspecified) | Err(_) => Trigger::Unspecified,
        },
        hostname: w.hostname,
        os: w.os,
        agent_version: w.agent_version,
        machine_id: w.machine_id,
        boot_id: w.boot_id,
        dropped_snapshots: w.dropped_snapshots,
        rejected_snapshots: w.rejected_snapshots,
        filesystems,
        facts,
        payload,
    })
}

/// The probe facts of a wire message (a snapshot's, or a host's as the admin API sends it),
/// checked like a report's.
pub fn probe_facts(
    system: Option<v1::SystemFacts>,
    patches: Option<v1::PatchState>,
    antivirus: Option<v1::AntivirusState>,
    connectivity: Option<v1::Connectivity>,
    status: Vec<v1::ProbeStatus>,
    uplink_diagnosis: Option<v1::UplinkDiagnosis>,
) -> Result<ProbeFacts, String> {
    Ok(ProbeFacts {
        system: system.map(self::system).transpose()?,
        patches: patches.map(self::patches).transpose()?,
        antivirus: antivirus.map(self::antivirus).transpose()?,
        connectivity: connectivity.map(self::connectivity).transpose()?,
        probe_status: probe_status(status)?,
        uplink: uplink_diagnosis.map(uplink).transpose()?,
        // Kept by the collector from the snapshots' diagnoses, never taken from a message.
        last_uplink_failure: None,
        uplink_recovered_at_ms: 0,
    })
}

/// A filesystem of a wire message, checked.
pub fn filesystem(w: v1::Filesystem) -> Result<Filesystem, String> {
    check_string("mount_point", &w.mount_point, LONG)?;
    if w.mount_point.is_empty() {
        return Err("mount_point is empty".into());
    }
    let at = &w.mount_point;
    check_string("device", &w.device, LONG)?;
    check_string("fs_type", &w.fs_type, 64)?;
    for (name, value) in [
        ("total_bytes", w.total_bytes),
        ("used_bytes", w.used_bytes),
        ("available_bytes", w.available_bytes),
        ("total_inodes", w.total_inodes),
        ("used_inodes", w.used_inodes),
    ] {
        if value > MAX_SEQ {
            return Err(format!("{at}: {name} {value} is out of range"));
        }
    }
    if w.used_bytes > w.total_bytes {
        return Err(format!("{at}: used_bytes exceeds total_bytes"));
    }
    if w.available_bytes > w.total_bytes {
        return Err(format!("{at}: available_bytes exceeds total_bytes"));
    }
    if w.used_inodes > w.total_inodes {
        return Err(format!("{at}: used_inodes exceeds total_inodes"));
    }
    Ok(Filesystem {
        mount_point: w.mount_point,
        device: w.device,
        fs_type: w.fs_type,
        total_bytes: w.total_bytes,
        used_bytes: w.used_bytes,
        available_bytes: w.available_bytes,
        total_inodes: w.total_inodes,
        used_inodes: w.used_inodes,
    })
}

fn system(s: v1::SystemFacts) -> Result<SystemFacts, String> {
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
    number("system.cpu_percent", s.cpu_percent, 0.0, 100.0)?;
    if s.memory_used_bytes > s.memory_total_bytes {
        return Err("system: memory_used_bytes exceeds memory_total_bytes".into());
    }
    Ok(SystemFacts {
        hostname: s.hostname,
        machine_id: s.machine_id,
        os_name: s.os_name,
        os_version: s.os_version,
        os_build: s.os_build,
        architecture: s.architecture,
        uptime_seconds: s.uptime_seconds,
        cpu_percent: s.cpu_percent,
        memory_total_bytes: s.memory_total_bytes,
        memory_used_bytes: s.memory_used_bytes,
        agent_version: s.agent_version,
        agent_rss_bytes: s.agent_rss_bytes,
        agent_cpu_millis: s.agent_cpu_millis,
    })
}

fn patches(p: v1::PatchState) -> Result<PatchState, String> {
    check_string("patches.package_manager", &p.package_manager, SHORT)?;
    check_string("patches.reboot_reason", &p.reboot_reason, LONG)?;
    count("patches.updates", p.updates.len(), limits::MAX_UPDATES)?;
    if p.security_count > p.pending_count {
        return Err("patches: security_count exceeds pending_count".into());
    }
    time("patches.last_update_ms", p.last_update_ms)?;
    count("patches.held", p.held.len(), limits::MAX_UPDATES)?;
    let updates = pending_updates("patches.updates", p.updates)?;
    let held = pending_updates("patches.held", p.held)?;
    Ok(PatchState {
        package_manager: p.package_manager,
        pending_count: p.pending_count,
        security_count: p.security_count,
        updates,
        updates_truncated: p.updates_truncated,
        reboot_required: p.reboot_required,
        reboot_reason: p.reboot_reason,
        last_update_ms: p.last_update_ms,
        held_count: p.held_count,
        held,
    })
}

fn pending_updates(what: &str, list: Vec<v1::PendingUpdate>) -> Result<Vec<PendingUpdate>, String> {
    list.into_iter()
        .map(|u| {
            check_string(&format!("{what}.name"), &u.name, LONG)?;
            check_string(
                &format!("{what}.installed_version"),
                &u.installed_version,
                SHORT,
            )?;
            check_string(
                &format!("{what}.candidate_version"),
                &u.candidate_version,
                SHORT,
            )?;
            Ok(PendingUpdate {
                name: u.name,
                installed_version: u.installed_version,
                candidate_version: u.candidate_version,
                security: u.security,
            })
        })
        .collect()
}

fn antivirus(a: v1::AntivirusState) -> Result<AntivirusState, String> {
    count("antivirus.products", a.products.len(), limits::MAX_ITEMS)?;
    let mut products = Vec::with_capacity(a.products.len());
    for p in a.products {
        for (name, v) in [
            ("antivirus.name", &p.name),
            ("antivirus.vendor", &p.vendor),
            ("antivirus.definitions_version", &p.definitions_version),
            ("antivirus.engine_version", &p.engine_version),
            ("antivirus.source", &p.source),
        ] {
            check_string(name, v, SHORT)?;
        }
        time("antivirus.definitions_updated_ms", p.definitions_updated_ms)?;
        products.push(AntivirusProduct {
            name: p.name,
            vendor: p.vendor,
            running: p.running,
            realtime_protection: p.realtime_protection,
            definitions_version: p.definitions_version,
            definitions_updated_ms: p.definitions_updated_ms,
            engine_version: p.engine_version,
            source: p.source,
        });
    }
    Ok(AntivirusState { products })
}

fn connectivity(c: v1::Connectivity) -> Result<Connectivity, String> {
    count("connectivity.dns", c.dns.len(), limits::MAX_ITEMS)?;
    count("connectivity.tcp", c.tcp.len(), limits::MAX_ITEMS)?;
    count("connectivity.https", c.https.len(), limits::MAX_ITEMS)?;
    count("connectivity.vpn", c.vpn.len(), limits::MAX_ITEMS)?;
    let gateway = match c.gateway {
        Some(g) => {
            check_string("connectivity.gateway.address", &g.address, SHORT)?;
            check_string("connectivity.gateway.interface", &g.interface, SHORT)?;
            Some(GatewayCheck {
                present: g.present,
                address: g.address,
                interface: g.interface,
                reachable: g.reachable,
            })
        }
        None => None,
    };
    let named = |list: Vec<v1::NamedCheck>| -> Result<Vec<NamedCheck>, String> {
        list.into_iter().map(named_check).collect()
    };
    let mut https = Vec::with_capacity(c.https.len());
    for h in c.https {
        check_string("connectivity.https.url", &h.url, LONG)?;
        check_string("connectivity.https.failure", &h.failure, SHORT)?;
        check_string("connectivity.https.detail", &h.detail, LONG)?;
        number("connectivity.https.millis", h.millis, 0.0, 1e7)?;
        time(
            "connectivity.https.certificate_not_after_ms",
            h.certificate_not_after_ms,
        )?;
        if h.status > 999 || h.certificate_days_left.abs() > 1_000_000 {
            return Err("connectivity.https: status or certificate_days_left out of range".into());
        }
        https.push(HttpsCheck {
            url: h.url,
            ok: h.ok,
            millis: h.millis,
            status: h.status,
            certificate_days_left: h.certificate_days_left,
            failure: h.failure,
            detail: h.detail,
            certificate_not_after_ms: h.certificate_not_after_ms,
        });
    }
    let mut vpn = Vec::with_capacity(c.vpn.len());
    for v in c.vpn {
        check_string("connectivity.vpn.name", &v.name, SHORT)?;
        vpn.push(VpnInterface {
            name: v.name,
            up: v.up,
        });
    }
    Ok(Connectivity {
        gateway,
        dns: named(c.dns)?,
        tcp: named(c.tcp)?,
        https,
        collector: c.collector.map(named_check).transpose()?,
        vpn,
    })
}

fn named_check(c: v1::NamedCheck) -> Result<NamedCheck, String> {
    check_string("connectivity.target", &c.target, LONG)?;
    check_string("connectivity.failure", &c.failure, SHORT)?;
    check_string("connectivity.detail", &c.detail, LONG)?;
    check_string("connectivity.resolver", &c.resolver, SHORT)?;
    number("connectivity.millis", c.millis, 0.0, 1e7)?;
    Ok(NamedCheck {
        target: c.target,
        ok: c.ok,
        millis: c.millis,
        failure: c.failure,
        detail: c.detail,
        resolver: c.resolver,
    })
}

fn probe_status(list: Vec<v1::ProbeStatus>) -> Result<Vec<ProbeStatus>, String> {
    count("probe_status", list.len(), 16)?;
    list.into_iter()
        .map(|p| {
            check_string("probe_status.probe", &p.probe, SHORT)?;
            check_string("probe_status.state", &p.state, SHORT)?;
            check_string("probe_status.message", &p.message, LONG)?;
            Ok(ProbeStatus {
                probe: p.probe,
                state: p.state,
                message: p.message,
            })
        })
        .collect()
}

/// An uplink diagnosis of a wire message, checked.
pub(crate) fn uplink(u: v1::UplinkDiagnosis) -> Result<UplinkDiagnosis, String> {
    check_string("uplink.last_code", &u.last_code, SHORT)?;
    check_string("uplink.last_error", &u.last_error, LONG)?;
    time("uplink.failing_since_ms", u.failing_since_ms)?;
    Ok(UplinkDiagnosis {
        consecutive_failures: u.consecutive_failures,
        failing_since_ms: u.failing_since_ms,
        last_code: u.last_code,
        last_error: u.last_error,
    })
}

fn count(name: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!("{name}: {n} entries, the limit is {max}"));
    }
    Ok(())
}

fn counter(name: &str, value: u64) -> Result<(), String> {
    if value > MAX_COUNTER {
        return Err(format!("{name} {value} is out of range"));
    }
    Ok(())
}

fn number(name: &str, value: f64, min: f64, max: f64) -> Result<(), String> {
    if !value.is_finite() || value < min || value > max {
        return Err(format!(
            "{name} {value} is not a number between {min} and {max}"
        ));
    }
    Ok(())
}

/// A time in milliseconds since the epoch: 0 (unknown) or a plausible time.
fn time(name: &str, ms: i64) -> Result<(), String> {
    if !(0..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(format!("{name} {ms} is not a plausible time"));
    }
    Ok(())
}

fn check_string(name: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{name} is {} bytes, the limit is {max}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name} contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
