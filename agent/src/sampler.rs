//! The sampler measures disks on a short interval and, when a trigger says so, builds a
//! snapshot and spools it, then wakes the uplink. Measuring is cheap (a mount table read and
//! one `statvfs` per filesystem); writing and sending happen only on triggers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use firstline_proto::v1::{self, Trigger};
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::identity::Policy;
use crate::probe::disk::{self, DiskFilter, FsUsage};
use crate::spool::Spool;
use crate::trigger::{LastReport, buckets, decide};
use crate::uplink::with_spool;

/// A disk measurement that takes longer than this is abandoned for this round (a hung network
/// or dying disk must not stall the agent).
const DISK_TIMEOUT: Duration = Duration::from_secs(5);

/// Facts about this machine that go into every snapshot.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub hostname: String,
    pub os: String,
}

impl HostFacts {
    /// Reads them from the OS.
    pub fn detect() -> Self {
        let uname = rustix::system::uname();
        Self {
            hostname: uname.nodename().to_string_lossy().into_owned(),
            os: format!(
                "{} {}",
                uname.sysname().to_string_lossy(),
                uname.release().to_string_lossy()
            ),
        }
    }
}

/// The sampling loop's inputs.
pub struct Sampler {
    pub interval: Duration,
    pub filter: DiskFilter,
    pub facts: HostFacts,
    pub spool: Arc<Mutex<Spool>>,
    pub policy: watch::Receiver<Policy>,
    pub wake: Arc<Notify>,
}

impl Sampler {
    /// Measures every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<LastReport> = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let filter = self.filter.clone();
            let measured = tokio::time::timeout(
                DISK_TIMEOUT,
                tokio::task::spawn_blocking(move || disk::collect(&filter)),
            )
            .await;
            let filesystems = match measured {
                Ok(Ok(Ok(fs))) => fs,
                Ok(Ok(Err(error))) => {
                    tracing::warn!(%error, "disk probe failed");
                    continue;
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(
                        timeout_ms = DISK_TIMEOUT.as_millis() as u64,
                        "disk probe timed out"
                    );
                    continue;
                }
            };
            let policy = self.policy.borrow().clone();
            let usage: Vec<(String, f64)> = filesystems
                .iter()
                .map(|f| (f.mount_point.clone(), f.used_percent()))
                .collect();
            let current = buckets(&usage, &policy.disk_thresholds_percent);
            let now = Instant::now();
            let heartbeat = Duration::from_secs(u64::from(policy.heartbeat_seconds.max(1)));
            let Some(trigger) = decide(last.as_ref(), now, &current, heartbeat) else {
                continue;
            };
            match self.spool_snapshot(trigger, filesystems).await {
                Ok(seq) => {
                    tracing::debug!(seq, ?trigger, "snapshot spooled");
                    last = Some(LastReport {
                        at: now,
                        buckets: current,
                    });
                    self.wake.notify_one();
                }
                Err(error) => tracing::error!(%error, "cannot spool snapshot"),
            }
        }
    }

    async fn spool_snapshot(
        &self,
        trigger: Trigger,
        filesystems: Vec<FsUsage>,
    ) -> Result<u64, crate::spool::SpoolError> {
        let taken_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut snapshot = v1::Snapshot {
            seq: 0,
            taken_at_ms,
            trigger: trigger as i32,
            hostname: self.facts.hostname.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            filesystems: filesystems.into_iter().map(to_wire).collect(),
            dropped_snapshots: 0,
            os: self.facts.os.clone(),
        };
        with_spool(&self.spool, move |spool| {
            spool.push(|seq, dropped| {
                snapshot.seq = seq;
                snapshot.dropped_snapshots = dropped;
                snapshot.encode_to_vec()
            })
        })
        .await
    }
}

fn to_wire(f: FsUsage) -> v1::Filesystem {
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
