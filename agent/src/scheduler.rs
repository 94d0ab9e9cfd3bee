//! Runs each probe on its own interval and timeout, in its own task, so a probe that hangs (a
//! dead network mount, a package manager holding its lock) is cut off and reported, never
//! blocking the others. A probe also reruns at once when the file watcher says its inputs
//! changed, and with new settings when the configuration is reloaded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::facts::{ProbeKind, ProbeOutput};
use crate::probe::system::SystemProbe;
use crate::probe::{ProbeError, antivirus, connectivity, disk, patch};

/// One probe result, as sent to the reporter.
pub type ProbeResult = (ProbeKind, Result<ProbeOutput, ProbeError>);

/// State a probe keeps between runs, and the guard against piling up hung runs.
pub struct ProbeContext {
    system: Arc<Mutex<SystemProbe>>,
    /// `host:port` of the collector, for the connectivity probe.
    pub collector: Option<String>,
    busy: [Arc<AtomicBool>; 5],
}

impl ProbeContext {
    pub fn new(collector: Option<String>) -> Self {
        Self {
            system: Arc::new(Mutex::new(SystemProbe::new())),
            collector,
            busy: Default::default(),
        }
    }
}

/// How often a probe runs and how long it may take, under `config`.
pub fn timing(kind: ProbeKind, config: &Config) -> (Duration, Duration) {
    match kind {
        ProbeKind::Disk => (config.disk_interval, Duration::from_secs(5)),
        ProbeKind::System => (config.system_interval, Duration::from_secs(10)),
        ProbeKind::Patches => (config.patches.interval, config.patches.timeout),
        ProbeKind::Antivirus => (config.antivirus.interval, config.antivirus.timeout),
        // Checks run concurrently, each bounded by the check timeout.
        ProbeKind::Connectivity => (
            config.connectivity.interval,
            config.connectivity.timeout * 2 + Duration::from_secs(2),
        ),
    }
}

/// Runs one probe once, cut off at its timeout.
pub async fn run_once(
    kind: ProbeKind,
    config: &Config,
    ctx: &ProbeContext,
) -> Result<ProbeOutput, ProbeError> {
    let (_, timeout) = timing(kind, config);
    let work = async {
        match kind {
            ProbeKind::Disk => {
                let filter = config.disk_filter.clone();
                blocking(ctx, kind, move || {
                    disk::collect(&filter)
                        .map(ProbeOutput::Disk)
                        .map_err(|e| ProbeError::Failed(format!("mount table: {e}")))
                })
                .await
            }
            ProbeKind::System => {
                let system = ctx.system.clone();
                blocking(ctx, kind, move || {
                    let mut probe = system.lock().unwrap_or_else(|p| p.into_inner());
                    Ok(ProbeOutput::System(probe.collect()))
                })
                .await
            }
            ProbeKind::Patches => patch::collect(&config.patch_settings)
                .await
                .map(ProbeOutput::Patches),
            ProbeKind::Antivirus => antivirus::collect(&config.av_settings)
                .await
                .map(ProbeOutput::Antivirus),
            ProbeKind::Connectivity => {
                let mut settings = config.conn_settings.clone();
                settings.collector.clone_from(&ctx.collector);
                Ok(ProbeOutput::Connectivity(
                    connectivity::collect(&settings).await,
                ))
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(ProbeError::Timeout(timeout)))
}

/// Runs blocking OS calls on the blocking pool; if the previous run of this probe is still
/// stuck there, does not start another.
async fn blocking(
    ctx: &ProbeContext,
    kind: ProbeKind,
    f: impl FnOnce() -> Result<ProbeOutput, ProbeError> + Send + 'static,
) -> Result<ProbeOutput, ProbeError> {
    let busy = ctx.busy[kind as usize].clone();
    if busy.swap(true, Ordering::AcqRel) {
        return Err(ProbeError::Failed(
            "the previous run is still hanging".into(),
        ));
    }
    // The blocking thread clears the flag itself, so a hung call keeps it set.
    let handle = tokio::task::spawn_blocking(move || {
        let out = f();
        busy.store(false, Ordering::Release);
        out
    });
    handle
        .await
        .unwrap_or_else(|e| Err(ProbeError::Failed(format!("probe panicked: {e}"))))
}

/// Starts one task per probe. Results go to `results`; `rerun[kind]` runs a probe at once.
pub fn spawn(
    tracker: &tokio_util::task::TaskTracker,
    ctx: Arc<ProbeContext>,
    config: watch::Receiver<Arc<Config>>,
    rerun: &[Arc<Notify>; 5],
    reboot: Arc<Notify>,
    results: mpsc::Sender<ProbeResult>,
    shutdown: CancellationToken,
) {
    for kind in ProbeKind::ALL {
        let signals = Signals {
            rerun: rerun[kind as usize].clone(),
            reboot: reboot.clone(),
        };
        tracker.spawn(probe_loop(
            kind,
            ctx.clone(),
            config.clone(),
            signals,
            results.clone(),
            shutdown.clone(),
        ));
    }
}

/// What wakes a probe besides its interval.
struct Signals {
    rerun: Arc<Notify>,
    /// Only the patches probe listens: a reboot marker changed.
    reboot: Arc<Notify>,
}

async fn probe_loop(
    kind: ProbeKind,
    ctx: Arc<ProbeContext>,
    mut config: watch::Receiver<Arc<Config>>,
    signals: Signals,
    results: mpsc::Sender<ProbeResult>,
    shutdown: CancellationToken,
) {
    let mut last_patches: Option<crate::probe::patch::PatchFacts> = None;
    let mut ticker = tokio::time::interval(timing(kind, &config.borrow()).0);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = signals.rerun.notified() => {}
            () = signals.reboot.notified(), if kind == ProbeKind::Patches && last_patches.is_some() => {
                if let Some(mut facts) = last_patches.clone() {
                    crate::probe::patch::refresh_reboot(&mut facts, &config.borrow().patch_settings);
                    if results.send((kind, Ok(ProbeOutput::Patches(facts)))).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            changed = config.changed() => {
                if changed.is_err() { return; }
                ticker = tokio::time::interval(timing(kind, &config.borrow()).0);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                continue; // the new ticker fires at once
            }
            () = shutdown.cancelled() => return,
        }
        let current = config.borrow().clone();
        let result = run_once(kind, &current, &ctx).await;
        if let Ok(ProbeOutput::Patches(p)) = &result {
            last_patches = Some(p.clone());
        }
        if let Err(error) = &result {
            tracing::warn!(probe = kind.name(), %error, "probe failed");
        }
        if results.send((kind, result)).await.is_err() {
            return;
        }
    }
}
