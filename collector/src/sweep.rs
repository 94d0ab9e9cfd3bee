//! Time-driven ticket work, run periodically by `serve` (and directly, with an injected clock,
//! by tests): SLA breaches escalate open tickets to tier 2 and, when still open after the
//! tier-2 time, to tier 3 (the lifecycle decides); agents silent for too long get a ticket
//! (resolved by their next report, see `engine`). Each change writes its event in the same
//! transaction.

use std::time::Duration;

use crate::engine::{Engine, SILENT_RULE};
use crate::store::{NewTicket, Store, StoreError};
use crate::tickets::lifecycle::{escalation, ms};

const SILENT_SUBJECT: &str = "agent";

/// What one sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    pub escalated: usize,
    pub silent_opened: usize,
}

/// Runs one sweep at `now_ms`. `silent_after` is how long without a report makes an agent
/// silent (three report intervals by default).
pub async fn sweep(
    store: &Store,
    engine: &Engine,
    silent_after: Duration,
    now_ms: i64,
) -> Result<SweepOutcome, StoreError> {
    let mut outcome = SweepOutcome::default();
    let mut tx = store.begin_write().await?;
    for ticket in tx.escalation_candidates(now_ms).await? {
        if let Some((tier, why)) = escalation(&ticket, now_ms, &engine.sla) {
            tx.escalate(ticket.id, tier, now_ms, &why).await?;
            outcome.escalated += 1;
        }
    }
    let cutoff = now_ms - ms(silent_after);
    for (agent_id, hostname, last_seen) in tx.silent_agents(cutoff, SILENT_RULE).await? {
        let title = format!(
            "{hostname} has not reported since {}",
            humantime::format_rfc3339_seconds(crate::clock::from_ms(last_seen))
        );
        let priority = 3;
        let (response_due_ms, resolve_due_ms) = engine.sla.due(now_ms, priority);
        tx.open_ticket(&NewTicket {
            agent_id: &agent_id,
            rule_id: SILENT_RULE,
            subject: SILENT_SUBJECT,
            priority,
            title: &title,
            at_ms: now_ms,
            value: ((now_ms - last_seen) / 1000) as f64,
            response_due_ms,
            resolve_due_ms,
            kb: "agent-silent",
        })
        .await?;
        outcome.silent_opened += 1;
    }
    tx.commit().await?;
    Ok(outcome)
}
