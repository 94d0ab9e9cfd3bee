//! Conversion of the agent's facts into the wire contract: the snapshot's envelope (host,
//! trigger, time, probe failures, the uplink's diagnosis) here, each probe's own part through
//! its registry binding. With `uplink` and the registry, the only place the agent builds prost
//! messages.

use firstline_proto::v1;

use crate::facts::Facts;
use crate::registry::ProbeSet;

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
    /// The OS's machine id and this boot's id (`probe::system::boot_id`), read at start.
    pub machine_id: String,
    pub boot_id: String,
}

/// Builds a snapshot (epoch, sequence number and the drop and rejection counts are filled in
/// by the spool).
pub fn snapshot(
    probes: &ProbeSet,
    facts: &Facts,
    host: &Identity,
    trigger: v1::Trigger,
    taken_at_ms: i64,
    uplink: Option<&UplinkDiagnosis>,
) -> v1::Snapshot {
    let mut snapshot = v1::Snapshot {
        taken_at_ms,
        trigger: trigger as i32,
        hostname: host.hostname.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        os: host.os.clone(),
        machine_id: host.machine_id.clone(),
        boot_id: host.boot_id.clone(),
        probe_status: facts
            .errors
            .iter()
            .map(|(id, error)| v1::ProbeStatus {
                probe: id.name().to_owned(),
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
        ..v1::Snapshot::default()
    };
    probes.report(facts, &mut snapshot);
    snapshot
}

/// The uplink diagnosis an encoded snapshot carries, if it decodes and carries one (for
/// `status`: the newest spooled snapshot says why uploads fail).
pub fn diagnosis_in(encoded: &[u8]) -> Option<UplinkDiagnosis> {
    let u = crate::spool::decode_entry(encoded).ok()?.uplink?;
    Some(UplinkDiagnosis {
        consecutive_failures: u.consecutive_failures,
        failing_since_ms: u.failing_since_ms,
        last_code: u.last_code,
        last_error: u.last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ProbeOutput;
    use crate::probe::ProbeError;
    use crate::probe::disk::FsUsage;
    use prost::Message;

    #[test]
    fn probes_fill_their_parts_and_failures_become_probe_status() {
        let probes = ProbeSet::new();
        let mut facts = Facts::default();
        let disk = probes.id("disk").expect("disk");
        let fs = FsUsage {
            mount_point: "/".into(),
            device: "/dev/vda1".into(),
            fs_type: "ext4".into(),
            total_bytes: 10,
            used_bytes: 4,
            available_bytes: 6,
            total_inodes: 0,
            used_inodes: 0,
        };
        facts.apply(disk, Ok(ProbeOutput::new(vec![fs])));
        let patches = probes.id("patches").expect("patches");
        facts.apply(patches, Err(ProbeError::Failed("apt-get is locked".into())));
        let diagnosis = UplinkDiagnosis {
            consecutive_failures: 3,
            last_error: "refused".into(),
            ..UplinkDiagnosis::default()
        };
        let host = Identity {
            hostname: "pc-1".into(),
            os: "Linux".into(),
            machine_id: "m-1".into(),
            boot_id: "b-1".into(),
        };
        let s = snapshot(
            &probes,
            &facts,
            &host,
            v1::Trigger::Heartbeat,
            5,
            Some(&diagnosis),
        );
        assert_eq!(s.filesystems.len(), 1);
        assert_eq!((s.machine_id.as_str(), s.boot_id.as_str()), ("m-1", "b-1"));
        assert_eq!((s.system, s.patches), (None, None));
        assert_eq!(
            s.probe_status
                .iter()
                .map(|p| (p.probe.as_str(), p.state.as_str(), p.message.as_str()))
                .collect::<Vec<_>>(),
            [("patches", "error", "apt-get is locked")]
        );
        let encoded = v1::Snapshot {
            uplink: s.uplink.clone(),
            ..v1::Snapshot::default()
        }
        .encode_to_vec();
        assert_eq!(diagnosis_in(&encoded), Some(diagnosis));
        assert_eq!(diagnosis_in(b"\xff\xff"), None);
    }
}
