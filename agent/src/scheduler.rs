//! Runs each probe of the registry on its own interval and timeout, in its own task, so a probe
//! that hangs (a dead network mount, a package manager holding its lock) is cut off and
//! reported, never blocking the others. A probe also reruns when the file watcher says its
//! inputs changed (or only refreshes its last facts, when that is all a change needs), and
//! with new settings when the configuration is reloaded. Watched changes are coalesced: the
//! first change of a burst opens a window of the probe's `rerun_gap`, and the probe runs once
//! at its end (a package install's many writes to dpkg's status are one package-manager run,
//! after them), at most once per `rerun_gap`; "check now" reruns at once. A probe stopped for going over its budget backs off: its next runs wait twice its
//! interval, then four times, up to a day, until a run stays within budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::facts::{ProbeId, ProbeOutput};
use crate::probe::ProbeError;
use crate::registry::{Context, ProbeSet};

/// One probe result, as sent to the reporter.
pub type ProbeResult = (ProbeId, Result<ProbeOutput, ProbeError>);

/// Longest back-off of a probe that keeps going over its budget.
const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

/// What wakes each probe besides its interval: "check now", and the file watcher's two kinds
/// of signal.
#[derive(Debug)]
pub struct Wakeups {
    rerun: Vec<Arc<Notify>>,
    changed: Vec<Arc<Notify>>,
    refresh: Vec<Arc<Notify>>,
}

/// The channels a probe task listens on.
struct Signals {
    rerun: Arc<Notify>,
    changed: Arc<Notify>,
    refresh: Arc<Notify>,
}

impl Wakeups {
    /// One pair of signals per probe of `probes`.
    pub fn new(probes: &ProbeSet) -> Self {
        let make = || (0..probes.len()).map(|_| Arc::new(Notify::new())).collect();
        Self {
            rerun: make(),
            changed: make(),
            refresh: make(),
        }
    }

    /// Runs probe `id` at once ("check now").
    pub fn rerun(&self, id: ProbeId) {
        if let Some(n) = self.rerun.get(id.index()) {
            n.notify_one();
        }
    }

    /// Runs probe `id` because its watched inputs changed: at once, or when its `rerun_gap`
    /// since the last run has passed (several changes meanwhile make one run).
    pub fn changed(&self, id: ProbeId) {
        if let Some(n) = self.changed.get(id.index()) {
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
            changed: self.changed.get(id.index())?.clone(),
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
            changes: probes.changes(id),
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
    /// The probe's own signal that its facts changed (a probe measuring on its own thread).
    changes: Option<Arc<Notify>>,
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
        let mut ticker = self.ticker(&config.borrow(), None);
        // A coalesced rerun for watched changes, due at this instant.
        let mut deferred: Option<Instant> = None;
        // Consecutive runs stopped for going over budget.
        let mut over_budget: u32 = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.signals.rerun.notified() => {}
                () = changes(self.changes.as_deref()) => {}
                () = self.signals.changed.notified() => {
                    if over_budget > 0 {
                        continue; // the backed-off ticker runs it
                    }
                    // The first change of a burst opens a window of `rerun_gap`; the changes
                    // within it make one run at its end.
                    if deferred.is_none() {
                        let gap = self.probes.rerun_gap(id, &config.borrow());
                        if !gap.is_zero() {
                            tracing::debug!(probe = id.name(), wait_ms = gap.as_millis() as u64, "inputs changed; rerun coalesced");
                        }
                        deferred = Some(Instant::now() + gap);
                    }
                    continue;
                }
                () = sleep_until(deferred), if deferred.is_some() => {}
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
                    ticker = self.ticker(&config.borrow(), None);
                    continue; // the new ticker fires at once
                }
                () = shutdown.cancelled() => return,
            }
            deferred = None;
            let current = config.borrow().clone();
            let result = self.probes.run_once(id, &current, &self.ctx).await;
            match &result {
                Ok(output) => {
                    last = Some(output.clone());
                    if over_budget > 0 {
                        over_budget = 0;
                        ticker = self.ticker(&current, Some(self.probes.timing(id, &current).0));
                    }
                }
                Err(error @ ProbeError::OverBudget(_)) => {
                    over_budget = over_budget.saturating_add(1);
                    let wait = backoff(self.probes.timing(id, &current).0, over_budget);
                    tracing::warn!(probe = id.name(), %error, backoff_s = wait.as_secs(), "probe over budget; backing off");
                    ticker = self.ticker(&current, Some(wait));
                }
                Err(error) => tracing::warn!(probe = id.name(), %error, "probe failed"),
            }
            if self.results.send((id, result)).await.is_err() {
                return;
            }
        }
    }

    /// The probe's interval ticker: firing at once, or first after `first`.
    fn ticker(&self, config: &Config, first: Option<Duration>) -> tokio::time::Interval {
        let period = self.probes.timing(self.id, config).0;
        let start = Instant::now() + first.unwrap_or_default();
        let mut ticker = tokio::time::interval_at(start, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    }
}

/// How long a probe waits after its `n`th consecutive run over budget: twice its interval,
/// then four times..., at most a day.
fn backoff(interval: Duration, n: u32) -> Duration {
    let factor = 2u32.saturating_pow(n.min(16));
    interval.saturating_mul(factor).min(MAX_BACKOFF)
}

async fn changes(notify: Option<&Notify>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_day() {
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff(hour, 1), 2 * hour);
        assert_eq!(backoff(hour, 2), 4 * hour);
        assert_eq!(backoff(hour, 5), MAX_BACKOFF);
        assert_eq!(backoff(hour, u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(1), 3), Duration::from_secs(8));
    }
}
