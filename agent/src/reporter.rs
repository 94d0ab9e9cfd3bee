//! The reporter keeps the latest facts of every probe and decides, on each new result and on a
//! one-second tick, whether to take a snapshot (see `trigger`); a snapshot goes to the spool and
//! wakes the uplink. Snapshots carry the uplink's diagnosis while the collector is unreachable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firstline_proto::v1::Trigger;
use prost::Message;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::facts::Facts;
use crate::identity::Policy;
use crate::scheduler::ProbeResult;
use crate::spool::{Spool, SpoolError};
use crate::trigger::{LastReport, decide};
use crate::uplink::with_spool;
use crate::wire::{self, UplinkDiagnosis};

/// The reporter's inputs.
pub struct Reporter {
    pub host: wire::Identity,
    pub spool: Arc<Mutex<Spool>>,
    pub policy: watch::Receiver<Policy>,
    pub wake: Arc<Notify>,
    pub diagnosis: Arc<Mutex<UplinkDiagnosis>>,
}

impl Reporter {
    /// Runs until `shutdown` or until every probe task is gone.
    pub async fn run(self, mut results: mpsc::Receiver<ProbeResult>, shutdown: CancellationToken) {
        let mut facts = Facts::default();
        let mut last: Option<LastReport> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = results.recv() => match received {
                    Some((kind, result)) => facts.apply(kind, result),
                    None => return,
                },
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            // The first snapshot waits for the first disk measurement (it comes first).
            if facts.disk.is_none() {
                continue;
            }
            let policy = self.policy.borrow().clone();
            let signature = facts.signature(&policy.disk_thresholds_percent);
            let now = Instant::now();
            let heartbeat = Duration::from_secs(u64::from(policy.heartbeat_seconds.max(1)));
            let Some(trigger) = decide(last.as_ref(), now, &signature, heartbeat) else {
                continue;
            };
            match self.spool_snapshot(&facts, trigger).await {
                Ok(seq) => {
                    tracing::debug!(seq, ?trigger, probes = ?wire::reported(&facts), "snapshot spooled");
                    last = Some(LastReport { at: now, signature });
                    self.wake.notify_one();
                }
                Err(error) => tracing::error!(%error, "cannot spool snapshot"),
            }
        }
    }

    async fn spool_snapshot(&self, facts: &Facts, trigger: Trigger) -> Result<u64, SpoolError> {
        let diagnosis = self
            .diagnosis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut snapshot = wire::snapshot(facts, &self.host, trigger, now_ms(), Some(&diagnosis));
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
