//! The reporter keeps the latest facts of every probe and decides, on each new result and on a
//! one-second tick, whether to take a snapshot (see `trigger`); a snapshot goes to the spool and
//! wakes the uplink. Snapshots carry the uplink's diagnosis while the collector is unreachable,
//! and what the spool lost or the collector rejected since the previous one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firstline_proto::v1::Trigger;
use firstline_support::errors::chain;
use prost::Message;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::facts::{Facts, ProbeId};
use crate::identity::Policy;
use crate::registry::ProbeSet;
use crate::scheduler::ProbeResult;
use crate::spool::{SharedSpool, SpoolError, Stamp};
use crate::trigger::{LastReport, decide};
use crate::wire::{self, UplinkDiagnosis};

/// The reporter's inputs.
pub struct Reporter {
    pub probes: Arc<ProbeSet>,
    pub host: wire::Identity,
    pub spool: SharedSpool,
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
                    Some((id, result)) => facts.apply(id, result),
                    None => return,
                },
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
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
            let Some(trigger) = decide(last.as_ref(), now, &signature, heartbeat) else {
                continue;
            };
            match self.spool_snapshot(&facts, trigger).await {
                Ok(stamp) => {
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

    async fn spool_snapshot(&self, facts: &Facts, trigger: Trigger) -> Result<Stamp, SpoolError> {
        let diagnosis = self
            .diagnosis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
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
    }
}
