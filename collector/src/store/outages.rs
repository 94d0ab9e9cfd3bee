//! The SQL of outage correlation: outage tickets on the pseudo agent `fleet`, the host tickets
//! that count towards one, and the link between them. The decisions are in
//! `crate::correlation`.

use super::{StoreError, WriteTx};
use crate::tickets::{EventKind, dedupe_key};

/// The pseudo agent that owns outage tickets.
pub const FLEET: &str = "fleet";

impl WriteTx {
    /// The open outage ticket for a rule and subject.
    pub async fn open_outage(
        &mut self,
        rule_id: &str,
        subject: &str,
    ) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM tickets WHERE dedupe_key = $1 AND state IN ('new', 'acknowledged')",
        )
        .bind(dedupe_key(FLEET, rule_id, subject))
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// Open host tickets for a rule and subject opened since `since_ms`.
    pub async fn recent_host_tickets(
        &mut self,
        rule_id: &str,
        subject: &str,
        since_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM tickets WHERE rule_id = $1 AND subject = $2 AND agent_id <> 'fleet' \
             AND state IN ('new', 'acknowledged') AND opened_at_ms >= $3 ORDER BY id",
        )
        .bind(rule_id)
        .bind(subject)
        .bind(since_ms)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids)
    }

    /// Hosts that reported since `since_ms`.
    pub async fn active_hosts(&mut self, since_ms: i64) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM agents WHERE agent_id <> 'fleet' AND last_seen_at_ms >= $1",
        )
        .bind(since_ms)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n)
    }

    /// Puts a host ticket under an outage.
    pub async fn suppress(&mut self, id: i64, outage: i64, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET state = 'suppressed', parent_id = $2 WHERE id = $1")
            .bind(id)
            .bind(outage)
            .execute(&mut *self.tx)
            .await?;
        self.event(
            id,
            at_ms,
            EventKind::Suppressed,
            "",
            &format!("part of outage #{outage}"),
        )
        .await?;
        self.event(
            outage,
            at_ms,
            EventKind::Linked,
            "",
            &format!("host ticket #{id}"),
        )
        .await
    }

    /// Host tickets under an outage that are not resolved yet.
    pub async fn unresolved_children(&mut self, outage: i64) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE parent_id = $1 AND state = 'suppressed'",
        )
        .bind(outage)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n)
    }
}
