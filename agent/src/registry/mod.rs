//! The probes the agent runs, in one list ([`ProbeSet::new`]), and everything the rest of the
//! agent asks of a probe through one trait ([`Probe`]): its name, interval and timeout, how to
//! run it, what of its facts counts as a change, how its facts go into the snapshot, how
//! `check` judges them, which files make it run again. The scheduler, the reporter, the wire
//! conversion, `check` and the file watcher iterate this list and know no probe by name.
//!
//! Each probe's binding (`disk.rs`, `system.rs`, ...) implements [`Probe`] over the collector
//! in `probe/`; adding a probe is its `probe/` module, its binding here and one line in
//! [`ProbeSet::new`].

mod antivirus;
mod connectivity;
mod disk;
mod disk_sampler;
mod erased;
mod patches;
mod system;
mod verdict;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use firstline_proto::v1;

pub use verdict::{Finding, Level, Limits};

use erased::Erased;

use crate::config::Config;
use crate::facts::{Facts, ProbeId, ProbeOutput, Signature};
use crate::probe::ProbeError;

/// One probe as the registry sees it. `Facts` is the probe's own typed result; the registry
/// stores it type-erased in [`Facts`] and hands it back typed to the other methods.
pub trait Probe: Send + Sync + 'static {
    type Facts: Send + Sync + 'static;

    /// The name in logs, `probe_status` and `check`'s sections.
    fn name(&self) -> &'static str;

    /// How often the probe runs and how long one run may take, under `config`.
    fn timing(&self, config: &Config) -> (Duration, Duration);

    /// Least time from one run to a rerun for changed watched files (none, by default): the
    /// changes meanwhile make one run when it has passed.
    fn rerun_gap(&self, _config: &Config) -> Duration {
        Duration::ZERO
    }

    /// Runs the probe once; blocking calls go through the probe's `Offload`.
    fn collect(
        &self,
        config: &Config,
        ctx: &Context,
    ) -> impl Future<Output = Result<Self::Facts, ProbeError>> + Send;

    /// Adds what of `facts` counts as a change of state (nothing, by default).
    fn signature(&self, _facts: &Self::Facts, _thresholds: &[f64], _signature: &mut Signature) {}

    /// Puts `facts` into the snapshot.
    fn report(&self, facts: &Self::Facts, snapshot: &mut v1::Snapshot);

    /// `check`'s judgement of `facts` (none, by default).
    fn judge(&self, _facts: &Self::Facts, _limits: &Limits, _now_ms: i64) -> Vec<(Level, String)> {
        Vec::new()
    }

    /// Files whose change should make the probe run again at once (none, by default).
    fn watched(&self, _config: &Config) -> Vec<Watched> {
        Vec::new()
    }

    /// A cheap update of the last full run's facts after a [`Watched::refresh_only`] file
    /// changed (none, by default).
    fn refresh(
        &self,
        _facts: &Self::Facts,
        _config: &Config,
    ) -> impl Future<Output = Option<Self::Facts>> + Send {
        async { None }
    }

    /// What wakes the probe's task for a run besides its interval (none, by default): a probe
    /// that measures on a thread of its own says so when its facts changed.
    fn changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Whether the first snapshot waits for this probe's first facts.
    fn gates_first_snapshot(&self) -> bool {
        false
    }
}

/// What a probe run may need besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `host:port` of the collector, for the connectivity probe.
    pub collector: Option<String>,
    /// The collector's report policy, in the running agent (not in a one-off `check`): a
    /// probe that measures on its own thread wakes its task when a threshold is crossed.
    pub policy: Option<tokio::sync::watch::Receiver<crate::identity::Policy>>,
}

/// A file or directory a probe wants watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub path: PathBuf,
    /// Every file in the directory `path`, not only the file `path`.
    pub whole_dir: bool,
    /// Only [`Probe::refresh`] is needed, not a full run.
    pub refresh_only: bool,
}

/// Every probe, in report order, with its id.
pub struct ProbeSet {
    probes: Vec<(ProbeId, Box<dyn Erased>)>,
}

impl Watched {
    /// The file `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            whole_dir: false,
            refresh_only: false,
        }
    }

    /// Every file in the directory `path`.
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        Self {
            whole_dir: true,
            ..Self::file(path)
        }
    }

    /// A change needs only [`Probe::refresh`].
    pub fn refresh_only(self) -> Self {
        Self {
            refresh_only: true,
            ..self
        }
    }
}

impl Default for ProbeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl ProbeSet {
    /// Every probe, in report order: the one list to extend when adding a probe. Each call
    /// gives fresh probes (with their own state and blocking lanes).
    pub fn new() -> Self {
        let probes: Vec<Box<dyn Erased>> = vec![
            Box::new(disk::Disk::default()),
            Box::new(system::System::default()),
            Box::new(patches::Patches::default()),
            Box::new(antivirus::Antivirus::default()),
            Box::new(connectivity::Connectivity::default()),
        ];
        let probes = probes
            .into_iter()
            .enumerate()
            .map(|(i, p)| (ProbeId::new(i, p.name()), p))
            .collect();
        Self { probes }
    }

    /// The ids, in report order.
    pub fn ids(&self) -> impl Iterator<Item = ProbeId> + '_ {
        self.probes.iter().map(|(id, _)| *id)
    }

    pub fn len(&self) -> usize {
        self.probes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    /// The probe called `name`.
    pub fn id(&self, name: &str) -> Option<ProbeId> {
        self.ids().find(|id| id.name() == name)
    }

    /// How often `id` runs and how long one run may take.
    pub fn timing(&self, id: ProbeId, config: &Config) -> (Duration, Duration) {
        self.probe(id).timing(config)
    }

    /// What wakes `id`'s task besides its interval, if anything.
    pub fn changes(&self, id: ProbeId) -> Option<Arc<tokio::sync::Notify>> {
        self.probe(id).changes()
    }

    /// Least time from one run of `id` to a rerun for changed watched files.
    pub fn rerun_gap(&self, id: ProbeId, config: &Config) -> Duration {
        self.probe(id).rerun_gap(config)
    }

    /// Runs one probe once, cut off at its timeout.
    pub async fn run_once(
        &self,
        id: ProbeId,
        config: &Config,
        ctx: &Context,
    ) -> Result<ProbeOutput, ProbeError> {
        let probe = self.probe(id);
        let (_, timeout) = probe.timing(config);
        tokio::time::timeout(timeout, probe.collect(config, ctx))
            .await
            .unwrap_or(Err(ProbeError::Timeout(timeout)))
    }

    /// `id`'s cheap update of `output`, if it has one.
    pub async fn refresh(
        &self,
        id: ProbeId,
        output: &ProbeOutput,
        config: &Config,
    ) -> Option<ProbeOutput> {
        self.probe(id).refresh(output, config).await
    }

    /// The signature of `facts` under the given disk thresholds.
    pub fn signature(&self, facts: &Facts, thresholds: &[f64]) -> Signature {
        let mut signature = Signature::default();
        for (id, probe) in &self.probes {
            if let Some(output) = facts.get(*id) {
                probe.signature(output, thresholds, &mut signature);
            }
        }
        signature.disk.sort();
        facts.error_signature(&mut signature);
        signature
    }

    /// Puts every probe's facts into `snapshot`.
    pub fn report(&self, facts: &Facts, snapshot: &mut v1::Snapshot) {
        for (id, probe) in &self.probes {
            if let Some(output) = facts.get(*id) {
                probe.report(output, snapshot);
            }
        }
    }

    /// `check`'s findings for `facts`, probe by probe, then the probes that failed.
    pub fn judge(&self, facts: &Facts, limits: &Limits, now_ms: i64) -> Vec<Finding> {
        let mut out = Vec::new();
        for (id, probe) in &self.probes {
            if let Some(output) = facts.get(*id) {
                out.extend(
                    probe
                        .judge(output, limits, now_ms)
                        .into_iter()
                        .map(|(level, text)| Finding::new(*id, level, text)),
                );
            }
        }
        for (id, error) in &facts.errors {
            let level = if matches!(error, ProbeError::Unsupported(_)) {
                Level::Ok
            } else {
                Level::Warning
            };
            out.push(Finding::new(
                *id,
                level,
                format!("probe {}: {error}", error.state()),
            ));
        }
        out
    }

    /// What every probe wants watched under `config`.
    pub fn watched(&self, config: &Config) -> Vec<(ProbeId, Watched)> {
        self.probes
            .iter()
            .flat_map(|(id, p)| p.watched(config).into_iter().map(|w| (*id, w)))
            .collect()
    }

    /// Whether every probe the first snapshot waits for has reported.
    pub fn ready_for_first_snapshot(&self, facts: &Facts) -> bool {
        self.probes
            .iter()
            .filter(|(_, p)| p.gates_first_snapshot())
            .all(|(id, _)| facts.get(*id).is_some())
    }

    fn probe(&self, id: ProbeId) -> &dyn Erased {
        // Ids come from this set's own list (`ids`, `id`): the index is always in range.
        self.probes[id.index()].1.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_each_probe_once_in_report_order() {
        let set = ProbeSet::new();
        let names: Vec<&str> = set.ids().map(ProbeId::name).collect();
        assert_eq!(
            names,
            ["disk", "system", "patches", "antivirus", "connectivity"]
        );
        for (i, id) in set.ids().enumerate() {
            assert_eq!((id.index(), set.id(id.name())), (i, Some(id)));
        }
        assert_eq!(set.id("nonsense"), None);
    }

    #[test]
    fn timings_come_from_the_config() {
        let config = Config::default();
        let set = ProbeSet::new();
        let timing = |name| set.timing(set.id(name).expect("probe"), &config);
        let cases = [
            ("disk", (disk::REFRESH, Duration::from_secs(5))),
            ("system", (config.system_interval, Duration::from_secs(10))),
            ("patches", (config.patches.interval, config.patches.timeout)),
            (
                "antivirus",
                (config.antivirus.interval, config.antivirus.timeout),
            ),
            (
                "connectivity",
                (
                    config.connectivity.interval,
                    config.connectivity.timeout * 2 + Duration::from_secs(2),
                ),
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(timing(name), expected, "{name}");
        }
    }

    #[test]
    fn only_the_disk_gates_the_first_snapshot() {
        let set = ProbeSet::new();
        let disk = set.id("disk").expect("disk");
        let mut facts = Facts::default();
        for id in set.ids().filter(|id| *id != disk) {
            facts.apply(id, Err(ProbeError::Failed("x".into())));
        }
        assert!(!set.ready_for_first_snapshot(&facts));
        facts.apply(
            disk,
            Ok(ProbeOutput::new(Vec::<crate::probe::disk::FsUsage>::new())),
        );
        assert!(set.ready_for_first_snapshot(&facts));
    }
}
