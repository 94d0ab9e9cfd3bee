//! Runs each probe of the registry on its own interval and timeout, in its own task, so a probe
//! that hangs (a dead network mount, a package manager holding its lock) is cut off and
//! reported, never blocking the others. A probe also reruns at once when the file watcher says
//! its inputs changed (or only refreshes its last facts, when that is all a change needs), and
//! with new settings when the configuration is reloaded.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::facts::{ProbeId, ProbeOutput};
use crate::probe::ProbeError;
use crate::registry::{Context, ProbeSet};

/// One probe result, as sent to the reporter.
pub type ProbeResult = (ProbeId, Result<ProbeOutput, ProbeError>);

/// What wakes each probe besides its interval: the file watcher's two kinds of signal.
#[derive(Debug)]
pub struct Wakeups {
    rerun: Vec<Arc<Notify>>,
    refresh: Vec<Arc<Notify>>,
}

/// The channels a probe task listens on.
struct Signals {
    rerun: Arc<Notify>,
    refresh: Arc<Notify>,
}

impl Wakeups {
    /// One pair of signals per probe of `probes`.
    pub fn new(probes: &ProbeSet) -> Self {
        let make = || (0..probes.len()).map(|_| Arc::new(Notify::new())).collect();
        Self {
            rerun: make(),
            refresh: make(),
        }
    }

    /// Runs probe `id` at once.
    pub fn rerun(&self, id: ProbeId) {
        if let Some(n) = self.rerun.get(id.index()) {
            n.notify_one();
        }
    }

    /// Refreshes probe `id`'s last facts at once.
    pub fn refresh(&self, id: ProbeId) {
        if let Some(n) = self.refresh.get(id.index()) {
            n.notify_one();
        }
    }

    fn signals(&self, id: ProbeId) -> Option<Signals> {
        Some(Signals {
            rerun: self.rerun.get(id.index())?.clone(),
            refresh: self.refresh.get(id.index())?.clone(),
        })
    }
}

/// Starts one task per probe. Results go to `results`.
pub fn spawn(
    tracker: &tokio_util::task::TaskTracker,
    probes: Arc<ProbeSet>,
    ctx: Arc<Context>,
    config: watch::Receiver<Arc<Config>>,
    wakeups: &Wakeups,
    results: mpsc::Sender<ProbeResult>,
    shutdown: CancellationToken,
) {
    for id in probes.ids() {
        let Some(signals) = wakeups.signals(id) else {
            continue;
        };
        let task = ProbeTask {
            id,
            probes: probes.clone(),
            ctx: ctx.clone(),
            signals,
            results: results.clone(),
        };
        tracker.spawn(task.run(config.clone(), shutdown.clone()));
    }
}

/// One probe's loop.
struct ProbeTask {
    id: ProbeId,
    probes: Arc<ProbeSet>,
    ctx: Arc<Context>,
    signals: Signals,
    results: mpsc::Sender<ProbeResult>,
}

impl ProbeTask {
    async fn run(self, mut config: watch::Receiver<Arc<Config>>, shutdown: CancellationToken) {
        let id = self.id;
        // The facts of the last full run, which a refresh starts from.
        let mut last: Option<ProbeOutput> = None;
        let mut ticker = self.ticker(&config.borrow());
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.signals.rerun.notified() => {}
                () = self.signals.refresh.notified(), if last.is_some() => {
                    let current = config.borrow().clone();
                    if let Some(previous) = &last
                        && let Some(refreshed) = self.probes.refresh(id, previous, &current).await
                        && self.results.send((id, Ok(refreshed))).await.is_err()
                    {
                        return;
                    }
                    continue;
                }
                changed = config.changed() => {
                    if changed.is_err() { return; }
                    ticker = self.ticker(&config.borrow());
                    continue; // the new ticker fires at once
                }
                () = shutdown.cancelled() => return,
            }
            let current = config.borrow().clone();
            let result = self.probes.run_once(id, &current, &self.ctx).await;
            match &result {
                Ok(output) => last = Some(output.clone()),
                Err(error) => tracing::warn!(probe = id.name(), %error, "probe failed"),
            }
            if self.results.send((id, result)).await.is_err() {
                return;
            }
        }
    }

    fn ticker(&self, config: &Config) -> tokio::time::Interval {
        let mut ticker = tokio::time::interval(self.probes.timing(self.id, config).0);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    }
}
