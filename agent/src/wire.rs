//! Conversion of the agent's facts into the wire contract. With `uplink`, the only place the
//! agent builds prost messages.

use firstline_proto::v1;

use crate::facts::{Facts, ProbeKind};
use crate::probe::antivirus::AvProduct;
use crate::probe::connectivity::{CheckResult, ConnFacts, HttpsResult};
use crate::probe::disk::FsUsage;
use crate::probe::patch::PatchFacts;
use crate::probe::system::SystemFacts;

/// Why the uplink is failing, kept by the uplink and carried in every snapshot taken meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkDiagnosis {
    pub consecutive_failures: u32,
    pub failing_since_ms: i64,
    pub last_code: String,
    pub last_error: String,
}

/// Host-level facts every snapshot carries.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub hostname: String,
    pub os: String,
}

/// Builds a snapshot (sequence number and drop count are filled in by the spool).
pub fn snapshot(
    facts: &Facts,
    host: &Identity,
    trigger: v1::Trigger,
    taken_at_ms: i64,
    uplink: Option<&UplinkDiagnosis>,
) -> v1::Snapshot {
    v1::Snapshot {
        seq: 0,
        taken_at_ms,
        trigger: trigger as i32,
        hostname: host.hostname.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        filesystems: facts
            .disk
            .iter()
            .flatten()
            .cloned()
            .map(filesystem)
            .collect(),
        dropped_snapshots: 0,
        os: host.os.clone(),
        system: facts.system.clone().map(system),
        patches: facts.patches.clone().map(patches),
        antivirus: facts.antivirus.clone().map(|products| v1::AntivirusState {
            products: products.into_iter().map(antivirus).collect(),
        }),
        connectivity: facts.connectivity.clone().map(connectivity),
        probe_status: facts
            .errors
            .iter()
            .map(|(kind, error)| v1::ProbeStatus {
                probe: kind.name().to_owned(),
                state: error.state().to_owned(),
                message: error.to_string(),
            })
            .collect(),
        uplink: uplink
            .filter(|u| u.consecutive_failures > 0)
            .map(|u| v1::UplinkDiagnosis {
                consecutive_failures: u.consecutive_failures,
                failing_since_ms: u.failing_since_ms,
                last_code: u.last_code.clone(),
                last_error: u.last_error.clone(),
            }),
    }
}

/// All probes that have reported so far, by name (for logs).
pub fn reported(facts: &Facts) -> Vec<&'static str> {
    ProbeKind::ALL
        .iter()
        .filter(|k| match k {
            ProbeKind::Disk => facts.disk.is_some(),
            ProbeKind::System => facts.system.is_some(),
            ProbeKind::Patches => facts.patches.is_some(),
            ProbeKind::Antivirus => facts.antivirus.is_some(),
            ProbeKind::Connectivity => facts.connectivity.is_some(),
        })
        .map(|k| k.name())
        .collect()
}

pub fn filesystem(f: FsUsage) -> v1::Filesystem {
    v1::Filesystem {
        mount_point: f.mount_point,
        device: f.device,
        fs_type: f.fs_type,
        total_bytes: f.total_bytes,
        used_bytes: f.used_bytes,
        available_bytes: f.available_bytes,
        total_inodes: f.total_inodes,
        used_inodes: f.used_inodes,
    }
}

fn system(s: SystemFacts) -> v1::SystemFacts {
    v1::SystemFacts {
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
    }
}

fn patches(p: PatchFacts) -> v1::PatchState {
    v1::PatchState {
        package_manager: p.package_manager,
        pending_count: p.pending_count,
        security_count: p.security_count,
        updates: p
            .updates
            .into_iter()
            .map(|u| v1::PendingUpdate {
                name: u.name,
                installed_version: u.installed_version,
                candidate_version: u.candidate_version,
                security: u.security,
            })
            .collect(),
        updates_truncated: p.updates_truncated,
        reboot_required: p.reboot_required,
        reboot_reason: p.reboot_reason,
        last_update_ms: p.last_update_ms,
    }
}

fn antivirus(a: AvProduct) -> v1::AntivirusProduct {
    v1::AntivirusProduct {
        name: a.name,
        vendor: a.vendor,
        running: a.running,
        realtime_protection: a.realtime_protection,
        definitions_version: a.definitions_version,
        definitions_updated_ms: a.definitions_updated_ms,
        engine_version: a.engine_version,
        source: a.source,
    }
}

fn check(c: CheckResult) -> v1::NamedCheck {
    v1::NamedCheck {
        target: c.target,
        ok: c.ok,
        millis: c.millis,
        failure: c.failure,
        detail: c.detail,
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
