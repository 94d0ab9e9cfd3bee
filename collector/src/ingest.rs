//! Ingest: one agent's validated batch goes into the store in a single transaction. For every
//! snapshot not stored before, the host's state is updated and the rules run on it, so a
//! threshold crossing becomes a ticket in the same commit that stores the report. The returned
//! sequence numbers are exactly the ones that are durably stored once this returns.

use crate::engine::Engine;
use crate::report::Batch;
use crate::store::{Store, StoreError};

/// What one batch changed, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Every sequence number of the batch that is now stored (new or from an earlier attempt).
    pub stored_seqs: Vec<u64>,
    pub new_snapshots: usize,
    pub tickets_opened: usize,
    pub tickets_resolved: usize,
}

/// Stores a batch for `agent_id` and applies the rules; all or nothing.
pub async fn ingest(
    store: &Store,
    engine: &Engine,
    agent_id: &str,
    batch: &Batch,
    now_ms: i64,
) -> Result<IngestOutcome, StoreError> {
    let mut tx = store.begin_write().await?;
    let mut outcome = IngestOutcome::default();
    let mut last_seq = tx.last_seq(agent_id).await?;
    for snapshot in &batch.snapshots {
        if tx.insert_snapshot(agent_id, snapshot, now_ms).await? {
            let newest = snapshot.seq > last_seq;
            tx.apply_snapshot(agent_id, snapshot, newest, now_ms)
                .await?;
            outcome.new_snapshots += 1;
            if newest {
                last_seq = snapshot.seq;
                tx.record_disk_samples(agent_id, snapshot).await?;
                // Spooled reports arrive late; the ticket's times are when it happened, but
                // never in the future of the collector's clock.
                let at_ms = snapshot.taken_at_ms.min(now_ms);
                let changes = engine.apply(&mut tx, agent_id, snapshot, at_ms).await?;
                outcome.tickets_opened += changes.opened + changes.reopened;
                outcome.tickets_resolved += changes.resolved;
            }
        }
        outcome.stored_seqs.push(snapshot.seq);
    }
    tx.commit().await?;
    Ok(outcome)
}
