//! The running agent's disk measurements: one thread of its own that measures every
//! `disk.interval` (a `poll` of the mount table and a `statvfs` per filesystem, see
//! `MountTable`) and wakes the async side only when what counts as a change moved: the set of
//! filesystems, or one of them crossing a threshold of the collector's policy. Between those,
//! the disk probe's scheduled runs take the latest measurement as it is, with no hand-off to
//! a blocking thread, so an idle agent does next to nothing twice a second.
//!
//! A `statvfs` that hangs (a dead network mount) stops only this thread; the probe then
//! reports the measurement as timed out instead of handing out old figures.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::facts::bucket;
use crate::identity::Policy;
use crate::probe::ProbeError;
use crate::probe::disk::{DiskFilter, FsUsage, MountTable};

/// What the thread measures with, changed by a configuration reload.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval: Duration,
    pub filter: DiskFilter,
}

/// The mount points and their threshold buckets, or the error: what wakes the async side.
type Signature = Result<Vec<(String, usize)>, String>;

#[derive(Debug)]
struct State {
    settings: Settings,
    latest: Option<(Instant, Result<Vec<FsUsage>, String>)>,
    delivered: Option<Signature>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Arc<Notify>,
}

/// The disk thread; stops when dropped.
#[derive(Debug)]
pub struct Sampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts measuring with `settings`; a change of the signature under `policy`'s thresholds
    /// notifies `changed`. The first measurement always does.
    pub fn start(
        settings: Settings,
        policy: watch::Receiver<Policy>,
        changed: Arc<Notify>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                settings,
                latest: None,
                delivered: None,
                stop: false,
            }),
            changed,
        });
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("firstline-disk".into())
            .stack_size(128 * 1024)
            .spawn(move || measure_loop(&inner, &policy))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Uses `settings` from the next measurement on (at once when they changed).
    pub fn configure(&self, settings: &Settings) {
        let mut state = self.lock();
        if state.settings != *settings {
            state.settings = settings.clone();
            state.delivered = None;
            drop(state);
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }

    /// The latest measurement, when there is one no older than `stale`; an error when the
    /// thread has been stuck longer (a hung mount), `None` before the first measurement.
    pub fn latest(&self, stale: Duration) -> Option<Result<Vec<FsUsage>, ProbeError>> {
        let state = self.lock();
        let (at, result) = state.latest.as_ref()?;
        let age = at.elapsed();
        if age > stale + state.settings.interval {
            return Some(Err(ProbeError::Timeout(age)));
        }
        Some(result.clone().map_err(ProbeError::Failed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.lock().stop = true;
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // Not joined: a thread stuck in statvfs must not hold up the agent's exit.
        }
    }
}

fn measure_loop(shared: &Shared, policy: &watch::Receiver<Policy>) {
    let mut mounts = MountTable::default();
    loop {
        let settings = {
            let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.stop {
                return;
            }
            state.settings.clone()
        };
        let result = mounts
            .measure(&settings.filter)
            .map_err(|e| format!("mount table: {e}"));
        let thresholds = policy.borrow().disk_thresholds_percent.clone();
        let signature = signature(&result, &thresholds);
        let wake = {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            state.latest = Some((Instant::now(), result));
            let wake = state.delivered.as_ref() != Some(&signature);
            if wake {
                state.delivered = Some(signature);
            }
            wake
        };
        if wake {
            shared.changed.notify_one();
        }
        std::thread::park_timeout(settings.interval);
    }
}

/// The mount points in order with their buckets under `thresholds`, or the error.
fn signature(result: &Result<Vec<FsUsage>, String>, thresholds: &[f64]) -> Signature {
    result
        .as_ref()
        .map(|fs| {
            let mut out: Vec<(String, usize)> = fs
                .iter()
                .map(|f| (f.mount_point.clone(), bucket(f.used_percent(), thresholds)))
                .collect();
            out.sort();
            out
        })
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(mount: &str, used: u64) -> FsUsage {
        FsUsage {
            mount_point: mount.into(),
            total_bytes: 100,
            used_bytes: used,
            available_bytes: 100 - used,
            ..FsUsage::default()
        }
    }

    #[test]
    fn only_a_crossing_or_another_set_of_filesystems_changes_the_signature() {
        let t = [85.0, 90.0];
        let at = |used| signature(&Ok(vec![fs("/", used), fs("/home", 10)]), &t);
        assert_eq!(at(50), at(84), "moving within a band");
        assert_ne!(at(84), at(85), "crossing 85%");
        assert_ne!(at(89), at(90));
        let fewer = signature(&Ok(vec![fs("/", 50)]), &t);
        assert_ne!(at(50), fewer, "a filesystem gone");
        assert_ne!(at(50), signature(&Err("mount table: gone".into()), &t));
    }

    /// The thread measures the real mounts, wakes the async side for the first result, and
    /// hands out the latest one.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_first_measurement_wakes_and_the_latest_is_handed_out() {
        let changed = Arc::new(Notify::new());
        let (_policy_tx, policy) = watch::channel(Policy {
            disk_thresholds_percent: vec![85.0],
            heartbeat_seconds: 60,
        });
        let settings = Settings {
            interval: Duration::from_millis(50),
            filter: DiskFilter::default(),
        };
        let sampler = Sampler::start(settings.clone(), policy, changed.clone()).expect("start");
        tokio::time::timeout(Duration::from_secs(30), changed.notified())
            .await
            .expect("woken for the first measurement");
        let first = sampler.latest(Duration::from_secs(5)).expect("measured");
        assert!(first.is_ok(), "{first:?}");
        sampler.configure(&Settings {
            interval: Duration::from_millis(100),
            ..settings
        });
        // New settings: the next measurement is delivered again.
        tokio::time::timeout(Duration::from_secs(30), changed.notified())
            .await
            .expect("woken after the new settings");
    }
}
