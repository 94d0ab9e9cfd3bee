//! The SQL of outage correlation: outage tickets on the pseudo agent `fleet`, the host tickets
//! that count towards one, and the link between them. The decisions are in
//! `crate::correlation`.

use super::{StoreError, WriteTx};
use crate::tickets::{EventKind, dedupe_key};

/// The pseudo agent that owns outage tickets.
pub const FLEET: &str = "fleet";

impl WriteTx {
    /// The open outage ticket for a rule and correlation key (a subject or a shared cause).
    pub async fn open_outage(
        &mut self,
        rule_id: &str,
        key: &str,
    ) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM tickets WHERE dedupe_key = $1 AND state IN ('new', 'acknowledged')",
        )
        .bind(dedupe_key(FLEET, rule_id, key))
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// Open host tickets for a rule that share a cause (when `cause` is not empty) or else the
    /// subject (and no cause), (re)opened since `since_ms`: their ids and agents.
    pub async fn recent_host_tickets(
        &mut self,
        rule_id: &str,
        subject: &str,
        cause: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, agent_id FROM tickets WHERE rule_id = $1 AND agent_id <> 'fleet' \
             AND (($3 = '' AND subject = $2 AND cause = '') OR ($3 <> '' AND cause = $3)) \
             AND state IN ('new', 'acknowledged') AND last_opened_at_ms >= $4 ORDER BY id",
        )
        .bind(rule_id)
        .bind(subject)
        .bind(cause)
        .bind(since_ms)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows)
    }

    /// Records the shared cause a host ticket's failure points to.
    pub async fn set_cause(&mut self, id: i64, cause: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET cause = $2 WHERE id = $1")
            .bind(id)
            .bind(cause)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
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

    /// How many hosts have a ticket linked to an outage (suppressed now or resolved since).
    pub async fn outage_hosts(&mut self, outage: i64) -> Result<i64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT agent_id) FROM tickets WHERE parent_id = $1")
                .bind(outage)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(n)
    }

    /// Sets a ticket's title (an outage's title carries its host count).
    pub async fn set_title(&mut self, id: i64, title: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET title = $2 WHERE id = $1")
            .bind(id)
            .bind(title)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Host tickets under an outage whose condition still holds: suppressed and not clear (a
    /// flapping ticket waiting out its flap window has `clear_since_ms` and does not count).
    pub async fn failing_children(&mut self, outage: i64) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE parent_id = $1 AND state = 'suppressed' \
             AND clear_since_ms IS NULL",
        )
        .bind(outage)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n)
    }

    /// Host tickets still suppressed under an outage.
    pub async fn suppressed_children(&mut self, outage: i64) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM tickets WHERE parent_id = $1 AND state = 'suppressed' ORDER BY id",
        )
        .bind(outage)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids)
    }
}
