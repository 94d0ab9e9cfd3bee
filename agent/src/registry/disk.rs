//! The disk probe in the registry: every real filesystem's usage, measured every
//! `disk.interval`; a threshold crossing is a change, and the first snapshot waits for the
//! first measurement.

use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Level, Limits, Probe};
use crate::config::Config;
use crate::facts::{Signature, bucket};
use crate::probe::disk::{self, FsUsage};
use crate::probe::{Offload, ProbeError};

#[derive(Default)]
pub struct Disk {
    offload: Offload,
    /// Read again only when the mount table changes.
    mounts: std::sync::Arc<std::sync::Mutex<disk::MountTable>>,
}

impl Probe for Disk {
    type Facts = Vec<FsUsage>;

    fn name(&self) -> &'static str {
        "disk"
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        (config.disk_interval, Duration::from_secs(5))
    }

    async fn collect(&self, config: &Config, _ctx: &Context) -> Result<Vec<FsUsage>, ProbeError> {
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
