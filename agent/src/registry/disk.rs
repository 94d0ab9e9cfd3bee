//! The disk probe in the registry: every real filesystem's usage, measured every
//! `disk.interval`; a threshold crossing is a change, and the first snapshot waits for the
//! first measurement. In the running agent the measuring is done by the disk thread
//! (`disk_sampler`), which wakes the probe's task only for a crossing or another set of
//! filesystems; the task's own runs, every [`REFRESH`], pick up the latest figures for the
//! heartbeats. A one-off `check` measures once, on the probe's blocking lane.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firstline_proto::v1;
use tokio::sync::{Notify, watch};

use super::disk_sampler::{Sampler, Settings};
use super::{Context, Level, Limits, Probe};
use crate::config::Config;
use crate::facts::{Signature, bucket};
use crate::identity::Policy;
use crate::probe::disk::{self, FsUsage};
use crate::probe::{Offload, ProbeError};

/// How often the running agent's disk task takes the disk thread's latest figures when
/// nothing crossed a threshold (the heartbeat carries them).
pub const REFRESH: Duration = Duration::from_secs(10);

/// How long one measurement may take before the probe reports it as hanging.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Disk {
    offload: Offload,
    /// Read again only when the mount table changes.
    mounts: Arc<Mutex<disk::MountTable>>,
    /// The disk thread, once the running agent's task first asks.
    sampler: Mutex<Option<Sampler>>,
    /// What the disk thread wakes the task with.
    changed: Arc<Notify>,
}

impl Disk {
    /// The disk thread's latest figures, starting the thread on first use (and waiting for its
    /// first measurement).
    async fn sampled(
        &self,
        config: &Config,
        policy: &watch::Receiver<Policy>,
    ) -> Result<Vec<FsUsage>, ProbeError> {
        let settings = Settings {
            interval: config.disk_interval,
            filter: config.disk_filter.clone(),
        };
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            // A notification that comes between this look and the wait is kept by `Notify`.
            let woken = self.changed.notified();
            {
                let mut slot = self.sampler.lock().unwrap_or_else(|p| p.into_inner());
                match slot.as_ref() {
                    Some(sampler) => {
                        sampler.configure(&settings);
                        if let Some(latest) = sampler.latest(TIMEOUT) {
                            return latest;
                        }
                    }
                    None => {
                        let started =
                            Sampler::start(settings.clone(), policy.clone(), self.changed.clone())
                                .map_err(|e| {
                                    ProbeError::Failed(format!("cannot start the disk thread: {e}"))
                                })?;
                        *slot = Some(started);
                    }
                }
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Err(ProbeError::Timeout(TIMEOUT));
            }
        }
    }
}

impl Probe for Disk {
    type Facts = Vec<FsUsage>;

    fn name(&self) -> &'static str {
        "disk"
    }

    /// The running agent's task runs every [`REFRESH`] (or the interval, when longer) and when
    /// the disk thread says a threshold was crossed.
    fn timing(&self, config: &Config) -> (Duration, Duration) {
        (config.disk_interval.max(REFRESH), TIMEOUT)
    }

    fn changes(&self) -> Option<Arc<Notify>> {
        Some(self.changed.clone())
    }

    async fn collect(&self, config: &Config, ctx: &Context) -> Result<Vec<FsUsage>, ProbeError> {
        if let Some(policy) = &ctx.policy {
            return self.sampled(config, policy).await;
        }
        let (filter, mounts) = (config.disk_filter.clone(), self.mounts.clone());
        self.offload
            .run(move || {
                let mut mounts = mounts.lock().unwrap_or_else(|p| p.into_inner());
                mounts
                    .measure(&filter)
                    .map_err(|e| ProbeError::Failed(format!("mount table: {e}")))
            })
            .await?
    }

    fn signature(&self, facts: &Vec<FsUsage>, thresholds: &[f64], signature: &mut Signature) {
        signature.disk.extend(
            facts
                .iter()
                .map(|f| (f.mount_point.clone(), bucket(f.used_percent(), thresholds))),
        );
    }

    fn report(&self, facts: &Vec<FsUsage>, snapshot: &mut v1::Snapshot) {
        snapshot.filesystems = facts.iter().cloned().map(filesystem).collect();
    }

    fn judge(&self, facts: &Vec<FsUsage>, limits: &Limits, _now_ms: i64) -> Vec<(Level, String)> {
        facts.iter().map(|f| judge_fs(f, limits)).collect()
    }

    fn gates_first_snapshot(&self) -> bool {
        true
    }
}

fn judge_fs(f: &FsUsage, limits: &Limits) -> (Level, String) {
    let p = f.used_percent();
    let level = if p >= limits.disk_critical {
        Level::Critical
    } else if p >= limits.disk_warning {
        Level::Warning
    } else {
        Level::Ok
    };
    let inodes = if f.total_inodes > 0 {
        format!(
            ", inodes {:.0}%",
            f.used_inodes as f64 * 100.0 / f.total_inodes as f64
        )
    } else {
        String::new()
    };
    let text = format!(
        "{} {p:.1}% used ({:.1} of {:.1} GiB{inodes})",
        f.mount_point,
        gib(f.used_bytes),
        gib(f.total_bytes)
    );
    (level, text)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0 * 1024.0)
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
