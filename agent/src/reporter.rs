//! The reporter keeps the latest facts of every probe and decides, on each new result and on a
//! one-second tick, whether to take a snapshot (see `trigger`); a snapshot goes to the spool and
//! wakes the uplink. Snapshots carry the uplink's diagnosis while the collector is unreachable,
//! and what the spool lost or the collector rejected since the previous one. Once an upload
//! succeeds after failures, a snapshot follows at once: the last one carried the failures, and
//! the collector would show them next to a working connection until the next heartbeat. The
//! slow probes' results are also kept in the state directory for `check` (`check::cache`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firstline_proto::v1::Trigger;
use firstline_support::errors::chain;
use prost::Message;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::check::cache::{Kept, SLOW_PROBES};
use crate::clock::now_ms;
use crate::facts::{Facts, ProbeId, ProbeOutput};
use crate::identity::Policy;
use crate::registry::ProbeSet;
use crate::scheduler::{ProbeResult, Wakeups};
use crate::spool::{SharedSpool, SpoolError, Stamp};
use crate::trigger::{LastReport, decide};
use crate::uplink::live::CheckRequest;
use crate::wire::{self, UplinkDiagnosis};

/// The reporter's inputs.
pub struct Reporter {
    pub probes: Arc<ProbeSet>,
    pub host: wire::Identity,
    pub spool: SharedSpool,
    pub policy: watch::Receiver<Policy>,
    pub wake: Arc<Notify>,
    pub diagnosis: Arc<Mutex<UplinkDiagnosis>>,
    /// Where the slow probes' results are kept for `check`.
    pub state_dir: PathBuf,
    /// Runs probes at once for "check now".
    pub wakeups: Arc<Wakeups>,
}

/// How long a "check now" waits for every probe's fresh result before it reports what it has.
const CHECK_GATHER: Duration = Duration::from_secs(6);

/// A "check now" in progress: the probes still to answer, until when, and who asked.
struct PendingCheck {
    waiting: Vec<ProbeId>,
    until: Instant,
    reply: tokio::sync::oneshot::Sender<Result<(u64, u64), String>>,
}

impl Reporter {
    /// Runs until `shutdown` or until every probe task is gone. `checks` asks for a snapshot
    /// of every probe at once ("check now").
    pub async fn run(
        self,
        mut results: mpsc::Receiver<ProbeResult>,
        mut checks: mpsc::Receiver<CheckRequest>,
        shutdown: CancellationToken,
    ) {
        let mut check: Option<PendingCheck> = None;
        let mut facts = Facts::default();
        let mut last: Option<LastReport> = None;
        // Upload failures the last spooled snapshot carried.
        let mut carried: u32 = 0;
        loop {
            // Nothing is due between results but a heartbeat, the end of a "check now"'s
            // gathering, and (after failed uploads) a look at whether they were cleared.
            let due = next_look(
                last.as_ref(),
                check.as_ref().map(|c| c.until),
                carried > 0,
                self.heartbeat(),
            );
            tokio::select! {
                received = results.recv() => match received {
                    Some((id, result)) => {
                        if let Ok(output) = &result {
                            self.keep(id, output);
                        }
                        facts.apply(id, result);
                        if let Some(c) = &mut check {
                            c.waiting.retain(|w| *w != id);
                        }
                    }
                    None => return,
                },
                Some(request) = checks.recv(), if check.is_none() => {
                    let waiting: Vec<ProbeId> = self.probes.ids().collect();
                    for id in &waiting {
                        self.wakeups.rerun(*id);
                    }
                    check = Some(PendingCheck {
                        waiting,
                        until: Instant::now() + CHECK_GATHER,
                        reply: request.reply,
                    });
                    continue;
                }
                () = tokio::time::sleep_until(due.into()) => {}
                () = shutdown.cancelled() => return,
            }
            if check
                .as_ref()
                .is_some_and(|c| c.waiting.is_empty() || Instant::now() >= c.until)
                && let Some(c) = check.take()
            {
                self.checked(&facts, c, &mut last).await;
                continue;
            }
            // The first snapshot waits for the first disk measurement (it comes first).
            if !self.probes.ready_for_first_snapshot(&facts) {
                continue;
            }
            let policy = self.policy.borrow().clone();
            let signature = self
                .probes
                .signature(&facts, &policy.disk_thresholds_percent);
            let now = Instant::now();
            let heartbeat = Duration::from_secs(u64::from(policy.heartbeat_seconds.max(1)));
            let stale = stale_failures(carried, &self.diagnosis());
            let Some(trigger) = decide(last.as_ref(), now, &signature, heartbeat)
                .or_else(|| stale.then_some(Trigger::Change))
            else {
                continue;
            };
            match self.spool_snapshot(&facts, trigger).await {
                Ok((stamp, failures)) => {
                    carried = failures;
                    let probes: Vec<&str> = facts.reported().map(ProbeId::name).collect();
                    tracing::debug!(
                        epoch = stamp.epoch,
                        seq = stamp.seq,
                        ?trigger,
                        probes = probes.join(","),
                        "snapshot spooled"
                    );
                    last = Some(LastReport { at: now, signature });
                    self.wake.notify_one();
                }
                Err(error) => tracing::error!(error = %chain(&error), "cannot spool snapshot"),
            }
        }
    }

    fn heartbeat(&self) -> Duration {
        Duration::from_secs(u64::from(self.policy.borrow().heartbeat_seconds.max(1)))
    }

    /// Answers a "check now": a snapshot of what the probes just measured, spooled.
    async fn checked(&self, facts: &Facts, c: PendingCheck, last: &mut Option<LastReport>) {
        if !self.probes.ready_for_first_snapshot(facts) {
            let _ = c
                .reply
                .send(Err("the first measurement is not done yet".into()));
            return;
        }
        if !c.waiting.is_empty() {
            let slow: Vec<&str> = c.waiting.iter().map(|id| id.name()).collect();
            tracing::info!(
                probes = slow.join(","),
                "check now: reporting without the slow probes' new results"
            );
        }
        let policy = self.policy.borrow().clone();
        let signature = self
            .probes
            .signature(facts, &policy.disk_thresholds_percent);
        let now = Instant::now();
        match self.spool_snapshot(facts, Trigger::Change).await {
            Ok((stamp, _)) => {
                tracing::debug!(
                    epoch = stamp.epoch,
                    seq = stamp.seq,
                    "check now: snapshot spooled"
                );
                *last = Some(LastReport { at: now, signature });
                self.wake.notify_one();
                let _ = c.reply.send(Ok((stamp.epoch, stamp.seq)));
            }
            Err(error) => {
                let text = chain(&error).to_string();
                tracing::error!(error = %text, "cannot spool snapshot");
                let _ = c
                    .reply
                    .send(Err(format!("cannot spool the snapshot: {text}")));
            }
        }
    }

    /// Keeps a slow probe's result for `check`, on the blocking pool, without waiting for it.
    fn keep(&self, id: ProbeId, output: &ProbeOutput) {
        if !SLOW_PROBES.contains(&id.name()) {
            return;
        }
        let (probes, dir, output) = (self.probes.clone(), self.state_dir.clone(), output.clone());
        tokio::spawn(async move {
            let saved = firstline_support::blocking::run(move || {
                Kept::new(&probes, id, output, now_ms()).save(&dir)
            })
            .await;
            if let Err(error) = saved {
                tracing::warn!(%error, probe = id.name(), "cannot keep the result for check");
            }
        });
    }

    fn diagnosis(&self) -> UplinkDiagnosis {
        self.diagnosis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Spools a snapshot; also says how many upload failures it carries.
    async fn spool_snapshot(
        &self,
        facts: &Facts,
        trigger: Trigger,
    ) -> Result<(Stamp, u32), SpoolError> {
        let diagnosis = self.diagnosis();
        let failures = diagnosis.consecutive_failures;
        let mut snapshot = wire::snapshot(
            &self.probes,
            facts,
            &self.host,
            trigger,
            now_ms(),
            Some(&diagnosis),
        );
        self.spool
            .push(move |stamp| {
                snapshot.spool_epoch = stamp.epoch;
                snapshot.seq = stamp.seq;
                snapshot.dropped_snapshots = stamp.dropped;
                snapshot.rejected_snapshots = stamp.rejected;
                snapshot.encode_to_vec()
            })
            .await
            .map(|stamp| (stamp, failures))
    }
}

/// When the reporter looks again if no result comes first: the next heartbeat, the end of a
/// check's gathering, within [`STALE_LOOK`] while the last snapshot carried upload failures,
/// within a second before the first snapshot.
fn next_look(
    last: Option<&LastReport>,
    check_until: Option<Instant>,
    carried_failures: bool,
    heartbeat: Duration,
) -> Instant {
    let now = Instant::now();
    let mut due = last.map_or(now + Duration::from_secs(1), |l| l.at + heartbeat);
    if carried_failures {
        due = due.min(now + STALE_LOOK);
    }
    if let Some(until) = check_until {
        due = due.min(until);
    }
    due.max(now)
}

/// How often the reporter looks whether failures the last snapshot carried were cleared.
const STALE_LOOK: Duration = Duration::from_secs(1);

/// Whether the last snapshot's upload failures are out of date: it carried some, and an upload
/// has succeeded since (the uplink clears the diagnosis on its first success).
fn stale_failures(carried: u32, now: &UplinkDiagnosis) -> bool {
    carried > 0 && now.consecutive_failures == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_follows_the_first_success_after_failures() {
        let failing = UplinkDiagnosis {
            consecutive_failures: 10,
            ..UplinkDiagnosis::default()
        };
        let cleared = UplinkDiagnosis::default();
        let cases = [
            (0, &cleared, false),
            (0, &failing, false),
            (10, &failing, false),
            (10, &cleared, true),
        ];
        for (carried, now, stale) in cases {
            assert_eq!(stale_failures(carried, now), stale, "{carried} {now:?}");
        }
    }
}
