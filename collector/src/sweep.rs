//! Time-driven ticket work, run periodically by `serve` (and directly, with an injected clock,
//! by tests): SLA breaches escalate open tickets to tier 2, and agents silent for too long get
//! a ticket (resolved by their next report, see `engine`). Each change writes its event in the
//! same transaction.

use std::time::Duration;

use sqlx::Row;

use crate::engine::Engine;
use crate::store::{NewTicket, Store, StoreError};

/// Rule id of the "agent silent" tickets.
pub const SILENT_RULE: &str = "agent.silent";
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
    // SLA: not acknowledged by the response time, or not resolved by the resolve time.
    let breached = tx.breached_tickets(now_ms).await?;
    for (id, why) in breached {
        tx.escalate(id, now_ms, &why).await?;
        outcome.escalated += 1;
    }
    let cutoff = now_ms - i64::try_from(silent_after.as_millis()).unwrap_or(i64::MAX);
    for (agent_id, hostname, last_seen) in tx.silent_agents(cutoff).await? {
        let title = format!(
            "{hostname} has not reported since {}",
            humantime::format_rfc3339_seconds(crate::clock::from_ms(last_seen))
        );
        let priority = 3;
        tx.open_ticket(&NewTicket {
            agent_id: &agent_id,
            rule_id: SILENT_RULE,
            subject: SILENT_SUBJECT,
            priority,
            title: &title,
            at_ms: now_ms,
            value: ((now_ms - last_seen) / 1000) as f64,
            response_due_ms: now_ms
                + i64::try_from(engine.sla.response[2].as_millis()).unwrap_or(i64::MAX),
            resolve_due_ms: now_ms
                + i64::try_from(engine.sla.resolve[2].as_millis()).unwrap_or(i64::MAX),
            kb: "agent-silent",
        })
        .await?;
        outcome.silent_opened += 1;
    }
    tx.commit().await?;
    Ok(outcome)
}

impl crate::store::WriteTx {
    /// Open tickets still on tier 1 whose response or resolve time has passed, with why.
    pub async fn breached_tickets(
        &mut self,
        now_ms: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, CASE WHEN resolve_due_ms > 0 AND resolve_due_ms <= $1 THEN 'resolve time passed' \
             ELSE 'not acknowledged within the response time' END FROM tickets \
             WHERE tier = 1 AND state IN ('new', 'acknowledged') AND ( \
               (state = 'new' AND response_due_ms > 0 AND response_due_ms <= $1) OR \
               (resolve_due_ms > 0 AND resolve_due_ms <= $1))",
        )
        .bind(now_ms)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Moves a ticket to tier 2 and logs the escalation.
    pub async fn escalate(&mut self, id: i64, now_ms: i64, why: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET tier = 2 WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        self.event_by(id, now_ms, "escalated", "", why).await
    }

    /// Agents whose last report is older than `cutoff_ms` and that have no open silent ticket.
    pub async fn silent_agents(
        &mut self,
        cutoff_ms: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.agent_id, a.hostname, a.last_seen_at_ms FROM agents a \
             WHERE a.last_seen_at_ms > 0 AND a.last_seen_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.agent_id = a.agent_id AND t.rule_id = $2 \
                             AND t.state IN ('new', 'acknowledged')) \
             AND EXISTS (SELECT 1 FROM certificates c WHERE c.subject = a.agent_id AND c.revoked_at_ms IS NULL)",
        )
        .bind(cutoff_ms)
        .bind(SILENT_RULE)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}
