//! Ingest: one agent's checked batch goes into the store inside a write transaction. For every
//! snapshot not stored before, the host's state is updated and the rules run on it, so a
//! threshold crossing becomes a ticket in the same commit that stores the report.
//!
//! The server does not call this per report: `writer` commits the reports waiting at one
//! moment together (group commit), each batch under a savepoint of its own, and answers each
//! only after that commit. [`ingest`] is the same work in a transaction of its own, for tools
//! and tests that store one batch.
//!
//! Each snapshot is applied under its own savepoint: one that the store refuses for a reason
//! that would repeat (a value out of range, a constraint) is rolled back and answered as
//! rejected, and the others of the batch are stored. A failure that can pass (the store is
//! down, a lock timed out) fails the whole batch, which the agent sends again.
//!
//! Before that, each snapshot's machine and boot are judged (`instance`): a snapshot from a
//! second machine using this agent's identity is rejected with the reason and the agent marked.

pub mod instance;
pub mod quiet;
pub mod writer;

use self::instance::{AgentInstance, Instance, Verdict};
use crate::engine::Engine;
use crate::facts::Snapshot;
use crate::report::{Batch, Entry};
use crate::store::{Savepoint, Sequence, Store, StoreError, WriteTx};

/// What one batch changed, for the ack, logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Every sequence number of the batch that is now stored (new or from an earlier attempt).
    pub stored_seqs: Vec<u64>,
    /// Snapshots refused for good, with the reason.
    pub rejected: Vec<(u64, String)>,
    pub new_snapshots: usize,
    pub tickets_opened: usize,
    pub tickets_resolved: usize,
    /// When each ticket opened (or reopened) by this batch was observed: the time of the
    /// snapshot that opened it, on the collector's clock (for the alert latency metric).
    pub opened_observed_at_ms: Vec<i64>,
}

/// Stores a batch for `agent_id` and applies the rules.
pub async fn ingest(
    store: &Store,
    engine: &Engine,
    agent_id: &str,
    batch: &Batch,
    now_ms: i64,
) -> Result<IngestOutcome, StoreError> {
    // A race lost to a concurrent writer (a unique key taken first, a serialisation failure or
    // a deadlock on PostgreSQL) is retried here with the other's result in view, never
    // answered to the agent. Reports of one host already queue on the host's row, and outage
    // placement runs under the event-log lock, so this is the net below those.
    let mut attempt = 0;
    loop {
        match ingest_once(store, engine, agent_id, batch, now_ms).await {
            Err(error) if error.is_race() && attempt < RACE_RETRIES => {
                attempt += 1;
                tracing::debug!(agent_id, attempt, %error, "ingest lost a race; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// How often a batch that lost a race is tried again before the failure is answered.
const RACE_RETRIES: u64 = 5;

async fn ingest_once(
    store: &Store,
    engine: &Engine,
    agent_id: &str,
    batch: &Batch,
    now_ms: i64,
) -> Result<IngestOutcome, StoreError> {
    let mut tx = store.begin_write().await?;
    let outcome = ingest_in(&mut tx, engine, agent_id, batch, now_ms).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Applies one batch inside `tx`, which the caller commits. Each snapshot runs under a
/// savepoint of its own: a store refusal that would repeat rolls back that snapshot alone.
pub(crate) async fn ingest_in(
    tx: &mut WriteTx,
    engine: &Engine,
    agent_id: &str,
    batch: &Batch,
    now_ms: i64,
) -> Result<IngestOutcome, StoreError> {
    let mut outcome = IngestOutcome::default();
    let (mut sequence, mut known) = tx.sequence(agent_id).await?;
    for entry in &batch.entries {
        let snapshot = match entry {
            Entry::Valid(s) => s,
            Entry::Rejected { seq, reason } => {
                tracing::warn!(agent_id, seq, reason = %reason, "snapshot rejected");
                outcome.rejected.push((*seq, reason.clone()));
                continue;
            }
        };
        let seen = Instance {
            machine_id: snapshot.machine_id.clone(),
            boot_id: snapshot.boot_id.clone(),
        };
        let verdict =
            judge_snapshot(tx, agent_id, &known, &seen, snapshot, sequence, now_ms).await?;
        if matches!(verdict, Verdict::Diverged | Verdict::Marked) {
            let reason =
                diverged(tx, agent_id, &mut known, &seen, snapshot, verdict, now_ms).await?;
            outcome.rejected.push((snapshot.seq, reason));
            continue;
        }
        let before = (sequence, outcome.clone());
        tx.savepoint(Savepoint::Snapshot).await?;
        match store_one(
            tx,
            engine,
            agent_id,
            snapshot,
            &mut sequence,
            now_ms,
            &mut outcome,
        )
        .await
        {
            Ok(()) => {
                tx.release(Savepoint::Snapshot).await?;
                outcome.stored_seqs.push(snapshot.seq);
                let newest = (sequence.epoch, sequence.last_seq) == (snapshot.epoch, snapshot.seq);
                if verdict == Verdict::NewBoot && newest {
                    tx.set_instance(agent_id, &seen).await?;
                    known.current = seen;
                }
            }
            Err(error) if error.is_permanent() => {
                tx.rollback_to(Savepoint::Snapshot).await?;
                (sequence, outcome) = before;
                tracing::warn!(agent_id, seq = snapshot.seq, %error, "snapshot rejected by the store");
                outcome.rejected.push((
                    snapshot.seq,
                    format!("snapshot seq {}: {error}", snapshot.seq),
                ));
            }
            Err(error) => return Err(error),
        }
    }
    if let Some(skew) = batch.clock_skew_ms {
        tx.set_clock_skew(agent_id, skew).await?;
    }
    Ok(outcome)
}

/// Judges where `snapshot` came from (`instance`). A snapshot that looks diverged but is the
/// stored one, byte for byte, is a retry after a lost acknowledgement: the same.
async fn judge_snapshot(
    tx: &mut WriteTx,
    agent_id: &str,
    known: &AgentInstance,
    seen: &Instance,
    snapshot: &Snapshot,
    sequence: Sequence,
    now_ms: i64,
) -> Result<Verdict, StoreError> {
    let current = &known.current;
    if seen.boot_id.is_empty() || seen == current {
        return Ok(Verdict::Same);
    }
    let epoch_is_new =
        snapshot.epoch != sequence.epoch && !tx.epoch_seen(agent_id, snapshot.epoch).await?;
    let verdict = instance::judge(
        current,
        seen,
        (snapshot.epoch, snapshot.seq),
        (sequence.epoch, sequence.last_seq),
        epoch_is_new,
        known.marked_boots(now_ms),
    );
    if verdict == Verdict::Diverged
        && tx
            .stored_payload(agent_id, snapshot.epoch, snapshot.seq)
            .await?
            .is_some_and(|stored| stored == snapshot.payload)
    {
        return Ok(Verdict::Same);
    }
    Ok(verdict)
}

/// The rejection reason of a snapshot from a second machine; a new divergence (not a boot
/// already marked) marks its boot and records what was seen.
async fn diverged(
    tx: &mut WriteTx,
    agent_id: &str,
    known: &mut AgentInstance,
    seen: &Instance,
    snapshot: &Snapshot,
    verdict: Verdict,
    now_ms: i64,
) -> Result<String, StoreError> {
    let current_host = tx.agent_hostname(agent_id).await?;
    let reason = instance::divergence_text(
        agent_id,
        &known.current,
        &current_host,
        seen,
        &snapshot.hostname,
    );
    tracing::warn!(
        agent_id,
        seq = snapshot.seq,
        machine_id = seen.machine_id,
        boot_id = seen.boot_id,
        hostname = snapshot.hostname,
        marked = verdict == Verdict::Marked,
        "snapshot from a second machine using this agent's identity rejected"
    );
    if verdict == Verdict::Diverged {
        known.mark(&seen.boot_id, now_ms);
        tx.record_divergence(agent_id, known, &reason).await?;
    }
    Ok(reason)
}

/// Stores one snapshot and, when it is the newest of its agent, applies it.
async fn store_one(
    tx: &mut WriteTx,
    engine: &Engine,
    agent_id: &str,
    snapshot: &Snapshot,
    sequence: &mut Sequence,
    now_ms: i64,
    outcome: &mut IngestOutcome,
) -> Result<(), StoreError> {
    // A snapshot of a spool epoch never seen before starts a new numbering (the agent lost
    // its spool, or its numbering ran out): it is the newest whatever its seq.
    let newest = if snapshot.epoch == sequence.epoch {
        snapshot.seq > sequence.last_seq
    } else {
        !tx.epoch_seen(agent_id, snapshot.epoch).await?
    };
    if !tx.insert_snapshot(agent_id, snapshot, now_ms).await? {
        return Ok(());
    }
    tx.apply_snapshot(agent_id, snapshot, newest, now_ms)
        .await?;
    outcome.new_snapshots += 1;
    if newest {
        *sequence = Sequence {
            epoch: snapshot.epoch,
            last_seq: snapshot.seq,
        };
        let new_sample = tx.record_disk_samples(agent_id, snapshot).await?;
        let changes = engine.apply(tx, agent_id, snapshot, new_sample).await?;
        outcome.tickets_opened += changes.opened + changes.reopened;
        let opened = changes.opened + changes.reopened;
        outcome
            .opened_observed_at_ms
            .extend(std::iter::repeat_n(snapshot.at_ms, opened));
        outcome.tickets_resolved += changes.resolved;
    }
    Ok(())
}
