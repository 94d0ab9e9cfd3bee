//! Ingest: one agent's validated batch goes into the store in a single transaction. For every
//! snapshot not stored before, the host's state is updated and the rules run on it, so a
//! threshold crossing becomes a ticket in the same commit that stores the report. The returned
//! sequence numbers are exactly the ones that are durably stored once this returns.

use crate::report::{Batch, Snapshot};
use crate::rules::Decision;
use crate::rules::disk::{self, DiskUsageRule};
use crate::store::{NewTicket, Store, StoreError, WriteTx};

/// The rules ingest evaluates; built from the collector's config.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    pub disk_usage: DiskUsageRule,
}

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
    rules: &Rules,
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
                // Spooled reports arrive late; the ticket's times are when it happened, but
                // never in the future of the collector's clock.
                let at_ms = snapshot.taken_at_ms.min(now_ms);
                apply_disk_rule(
                    &mut tx,
                    &rules.disk_usage,
                    agent_id,
                    snapshot,
                    at_ms,
                    &mut outcome,
                )
                .await?;
            }
        }
        outcome.stored_seqs.push(snapshot.seq);
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn apply_disk_rule(
    tx: &mut WriteTx,
    rule: &DiskUsageRule,
    agent_id: &str,
    snapshot: &Snapshot,
    at_ms: i64,
    outcome: &mut IngestOutcome,
) -> Result<(), StoreError> {
    let open = tx.open_tickets(agent_id, disk::RULE_ID).await?;
    for fs in &snapshot.filesystems {
        let percent = fs.used_percent();
        let ticket = open.iter().find(|t| t.subject == fs.mount_point);
        match (rule.decide(percent, ticket.is_some()), ticket) {
            (Decision::Open, _) => {
                let title = rule.title(&snapshot.hostname, &fs.mount_point, percent);
                tx.open_ticket(&NewTicket {
                    agent_id,
                    rule_id: disk::RULE_ID,
                    subject: &fs.mount_point,
                    priority: rule.priority,
                    title: &title,
                    at_ms,
                    value: percent,
                })
                .await?;
                outcome.tickets_opened += 1;
            }
            (Decision::Recur, Some(t)) => tx.bump_ticket(t.id, at_ms, percent).await?,
            (Decision::Hold, Some(t)) => tx.note_value(t.id, percent).await?,
            (Decision::Clear, Some(t)) => {
                let reason = format!("usage fell to {percent:.1}%, under {}%", rule.clear_percent);
                tx.resolve_ticket(t.id, at_ms, percent, &reason).await?;
                outcome.tickets_resolved += 1;
            }
            _ => {}
        }
    }
    // A mount that is no longer reported cannot clear by itself: resolve its ticket and say why.
    for t in &open {
        if !snapshot
            .filesystems
            .iter()
            .any(|fs| fs.mount_point == t.subject)
        {
            tx.resolve_ticket(t.id, at_ms, t.last_value, "filesystem no longer mounted")
                .await?;
            outcome.tickets_resolved += 1;
        }
    }
    Ok(())
}
