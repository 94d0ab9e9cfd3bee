//! The agent's current picture of the machine: the latest result of every probe, and a
//! signature of what matters for reporting (a disk crossing a threshold, a new security
//! update, antivirus stopping, a check starting to fail) so a change is sent at once while
//! everything else waits for the heartbeat.

use std::collections::BTreeMap;

use crate::probe::ProbeError;
use crate::probe::antivirus::AvProduct;
use crate::probe::connectivity::ConnFacts;
use crate::probe::disk::FsUsage;
use crate::probe::patch::PatchFacts;
use crate::probe::system::SystemFacts;
use crate::trigger::bucket;

/// The probes, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeKind {
    Disk,
    System,
    Patches,
    Antivirus,
    Connectivity,
}

/// One probe's result.
#[derive(Debug, Clone)]
pub enum ProbeOutput {
    Disk(Vec<FsUsage>),
    System(SystemFacts),
    Patches(PatchFacts),
    Antivirus(Vec<AvProduct>),
    Connectivity(ConnFacts),
}

/// The latest result of each probe; a failed run keeps the previous facts and records why.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub disk: Option<Vec<FsUsage>>,
    pub system: Option<SystemFacts>,
    pub patches: Option<PatchFacts>,
    pub antivirus: Option<Vec<AvProduct>>,
    pub connectivity: Option<ConnFacts>,
    pub errors: BTreeMap<ProbeKind, ProbeError>,
}

/// What is compared between two reports to decide whether something notable changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// (mount point, threshold bucket), sorted.
    pub disk: Vec<(String, usize)>,
    /// Everything else that counts as a change of state, as comparable text.
    pub other: Vec<String>,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 5] = [
        Self::Disk,
        Self::System,
        Self::Patches,
        Self::Antivirus,
        Self::Connectivity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::System => "system",
            Self::Patches => "patches",
            Self::Antivirus => "antivirus",
            Self::Connectivity => "connectivity",
        }
    }
}

impl Facts {
    /// Takes in one probe's result.
    pub fn apply(&mut self, kind: ProbeKind, result: Result<ProbeOutput, ProbeError>) {
        match result {
            Ok(output) => {
                self.errors.remove(&kind);
                match output {
                    ProbeOutput::Disk(v) => self.disk = Some(v),
                    ProbeOutput::System(v) => self.system = Some(v),
                    ProbeOutput::Patches(v) => self.patches = Some(v),
                    ProbeOutput::Antivirus(v) => self.antivirus = Some(v),
                    ProbeOutput::Connectivity(v) => self.connectivity = Some(v),
                }
            }
            Err(error) => {
                self.errors.insert(kind, error);
            }
        }
    }

    /// The signature of these facts under the given disk thresholds.
    pub fn signature(&self, thresholds: &[f64]) -> Signature {
        let mut disk: Vec<(String, usize)> = self
            .disk
            .iter()
            .flatten()
            .map(|f| (f.mount_point.clone(), bucket(f.used_percent(), thresholds)))
            .collect();
        disk.sort();
        let mut other = Vec::new();
        if let Some(p) = &self.patches {
            other.push(format!(
                "patches {} {} {}",
                p.pending_count, p.security_count, p.reboot_required
            ));
        }
        for a in self.antivirus.iter().flatten() {
            other.push(format!(
                "av {} {} {} {}",
                a.name, a.running, a.realtime_protection, a.definitions_version
            ));
        }
        if let Some(c) = &self.connectivity {
            other.push(format!(
                "gateway {} {}",
                c.gateway.present, c.gateway.reachable
            ));
            for check in c.dns.iter().chain(&c.tcp).chain(c.collector.as_ref()) {
                other.push(format!(
                    "check {} {} {}",
                    check.target, check.ok, check.failure
                ));
            }
            for h in &c.https {
                other.push(format!("https {} {} {}", h.url, h.ok, h.failure));
            }
            for (name, up) in &c.vpn {
                other.push(format!("vpn {name} {up}"));
            }
        }
        for (kind, error) in &self.errors {
            other.push(format!("error {} {}", kind.name(), error.state()));
        }
        Signature { disk, other }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::connectivity::CheckResult;

    fn with_check(ok: bool, failure: &str, millis: f64) -> Facts {
        let mut facts = Facts::default();
        facts.apply(
            ProbeKind::Connectivity,
            Ok(ProbeOutput::Connectivity(ConnFacts {
                dns: vec![CheckResult {
                    target: "intranet".into(),
                    ok,
                    millis,
                    failure: failure.into(),
                    detail: String::new(),
                }],
                ..ConnFacts::default()
            })),
        );
        facts
    }

    #[test]
    fn a_check_starting_to_fail_changes_the_signature_but_its_latency_does_not() {
        let t = [85.0, 90.0];
        assert_eq!(
            with_check(true, "", 3.0).signature(&t),
            with_check(true, "", 9.0).signature(&t)
        );
        assert_ne!(
            with_check(true, "", 3.0).signature(&t),
            with_check(false, "timeout", 3000.0).signature(&t)
        );
        assert_ne!(
            with_check(false, "timeout", 1.0).signature(&t),
            with_check(false, "nxdomain", 1.0).signature(&t)
        );
    }

    #[test]
    fn a_failed_run_keeps_old_facts_and_records_the_error() {
        let mut facts = with_check(true, "", 1.0);
        facts.apply(
            ProbeKind::Connectivity,
            Err(ProbeError::Timeout(std::time::Duration::from_secs(1))),
        );
        assert!(facts.connectivity.is_some());
        assert_eq!(facts.errors[&ProbeKind::Connectivity].state(), "timeout");
        assert!(
            facts
                .signature(&[])
                .other
                .iter()
                .any(|s| s == "error connectivity timeout")
        );
    }
}
