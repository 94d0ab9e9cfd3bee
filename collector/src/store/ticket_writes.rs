//! Changes to tickets inside a write transaction. Each change that a person or a feed should
//! see writes its event in the same transaction (see `events`). What changes is decided by the
//! ticket lifecycle (`crate::tickets::lifecycle`); this module only applies it.

use super::tickets::{COLUMNS, FROM, NewTicket, ticket_from_row};
use super::{StoreError, WriteTx};
use crate::tickets::lifecycle::{self, Raise, Sla};
use crate::tickets::{EventKind, Ticket, TicketAction, TicketState, dedupe_key};

impl WriteTx {
    /// Open (and suppressed) tickets of one agent for one rule.
    pub async fn open_tickets(
        &mut self,
        agent_id: &str,
        rule_id: &str,
    ) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE t.agent_id = $1 AND t.rule_id = $2 \
             AND t.state IN ('new', 'acknowledged', 'suppressed')"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agent_id)
            .bind(rule_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| ticket_from_row(r, 0)).collect()
    }

    /// One ticket, read inside the transaction.
    pub async fn ticket(&mut self, id: i64) -> Result<Ticket, StoreError> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE t.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound("ticket"))?;
        ticket_from_row(&row, 0)
    }

    /// Opens a ticket and logs the event. Returns its id.
    pub async fn open_ticket(&mut self, t: &NewTicket<'_>) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (dedupe_key, agent_id, rule_id, subject, state, priority, title, \
             occurrences, opened_at_ms, last_seen_at_ms, last_value, response_due_ms, resolve_due_ms, \
             kb, opened_priority, last_opened_at_ms) \
             VALUES ($1, $2, $3, $4, 'new', $5, $6, 1, $7, $7, $8, $9, $10, $11, $5, $7) RETURNING id",
        )
        .bind(dedupe_key(t.agent_id, t.rule_id, t.subject))
        .bind(t.agent_id)
        .bind(t.rule_id)
        .bind(t.subject)
        .bind(i64::from(t.priority))
        .bind(t.title)
        .bind(t.at_ms)
        .bind(t.value)
        .bind(t.response_due_ms)
        .bind(t.resolve_due_ms)
        .bind(t.kb)
        .fetch_one(&mut *self.tx)
        .await?;
        self.event(id, t.at_ms, EventKind::Opened, "", t.title)
            .await?;
        Ok(id)
    }

    /// The condition was seen again: one more occurrence, the latest value and title.
    pub async fn bump_ticket(
        &mut self,
        id: i64,
        at_ms: i64,
        value: f64,
        title: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET occurrences = occurrences + 1, last_seen_at_ms = $2, \
             last_value = $3, title = $4, clear_since_ms = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(at_ms)
        .bind(value)
        .bind(title)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records the latest measured value without counting an occurrence (the value sits
    /// between the clear and the open threshold), and since when a flapping ticket is clear.
    pub async fn note_value(
        &mut self,
        id: i64,
        value: f64,
        clear_since_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET last_value = $2, clear_since_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(value)
            .bind(clear_since_ms)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Resolves an open ticket and logs why. A resolution observed before the ticket's latest
    /// (re)opening (a replayed spool) is recorded at that opening, never before it.
    pub async fn resolve_ticket(
        &mut self,
        id: i64,
        at_ms: i64,
        value: f64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE tickets SET state = 'resolved', \
             resolved_at_ms = CASE WHEN $2 < last_opened_at_ms THEN last_opened_at_ms ELSE $2 END, \
             last_value = $3, flapping = 0, clear_since_ms = NULL \
             WHERE id = $1 AND state IN ('new', 'acknowledged', 'suppressed')",
        )
        .bind(id)
        .bind(at_ms)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 1 {
            self.event(id, at_ms, EventKind::Resolved, "", reason)
                .await?;
        }
        Ok(())
    }

    /// The latest resolved ticket with this key, and when it resolved.
    pub async fn last_resolved(&mut self, key: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, resolved_at_ms FROM tickets WHERE dedupe_key = $1 AND state = 'resolved' \
             AND resolved_at_ms IS NOT NULL ORDER BY resolved_at_ms DESC LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row)
    }

    /// Reopens a resolved ticket: the condition recurred within the reopen window. Its SLA
    /// starts again from now, and it leaves the outage it was under (correlation places it
    /// again).
    pub async fn reopen_ticket(
        &mut self,
        id: i64,
        at_ms: i64,
        value: f64,
        sla: &Sla,
        why: &str,
    ) -> Result<(), StoreError> {
        let priority: i64 = sqlx::query_scalar("SELECT priority FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?;
        let (response, resolve) = sla.due(at_ms, u32::try_from(priority).unwrap_or(4));
        sqlx::query(
            "UPDATE tickets SET state = 'new', resolved_at_ms = NULL, acknowledged_at_ms = NULL, \
             occurrences = occurrences + 1, last_seen_at_ms = $2, last_value = $3, \
             response_due_ms = $4, resolve_due_ms = $5, last_opened_at_ms = $2, \
             clear_since_ms = NULL, parent_id = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(at_ms)
        .bind(value)
        .bind(response)
        .bind(resolve)
        .execute(&mut *self.tx)
        .await?;
        self.event(id, at_ms, EventKind::Reopened, "", why).await
    }

    /// Applies a priority raise: priority, due times and the title that goes with them.
    pub async fn raise_priority(
        &mut self,
        id: i64,
        raise: &Raise,
        title: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET priority = $2, response_due_ms = $3, resolve_due_ms = $4, \
             title = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(raise.priority))
        .bind(raise.response_due_ms)
        .bind(raise.resolve_due_ms)
        .bind(title)
        .execute(&mut *self.tx)
        .await?;
        self.event(id, at_ms, EventKind::Priority, "", &raise.detail)
            .await
    }

    /// Applies a person's action if the lifecycle allows it in the ticket's state; returns the
    /// event written, or a conflict saying why the action does not apply.
    pub async fn ticket_action(
        &mut self,
        id: i64,
        action: &TicketAction,
        actor: &str,
        at_ms: i64,
        sla: &Sla,
    ) -> Result<EventKind, StoreError> {
        let ticket = self.ticket(id).await?;
        let change = lifecycle::act(ticket.state, action).map_err(StoreError::Conflict)?;
        match change.state {
            Some(TicketState::Acknowledged) => {
                self.set_state(
                    "UPDATE tickets SET state = 'acknowledged', acknowledged_at_ms = $2 WHERE id = $1",
                    id,
                    at_ms,
                )
                .await?;
            }
            Some(TicketState::Resolved) => {
                self.set_state(
                    "UPDATE tickets SET state = 'resolved', resolved_at_ms = $2, flapping = 0, \
                     clear_since_ms = NULL WHERE id = $1",
                    id,
                    at_ms,
                )
                .await?;
            }
            Some(TicketState::Closed) => {
                sqlx::query("UPDATE tickets SET state = 'closed' WHERE id = $1")
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
            }
            Some(TicketState::New) => {
                let (response, resolve) = sla.due(at_ms, ticket.priority);
                sqlx::query(
                    "UPDATE tickets SET state = 'new', resolved_at_ms = NULL, acknowledged_at_ms = NULL, \
                     last_seen_at_ms = $2, response_due_ms = $3, resolve_due_ms = $4, \
                     last_opened_at_ms = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(at_ms)
                .bind(response)
                .bind(resolve)
                .execute(&mut *self.tx)
                .await?;
            }
            Some(TicketState::Suppressed) | None => {}
        }
        if let TicketAction::Assign(who) = action {
            sqlx::query("UPDATE tickets SET assignee = $2 WHERE id = $1")
                .bind(id)
                .bind(who)
                .execute(&mut *self.tx)
                .await?;
        }
        self.event(id, at_ms, change.event, actor, &change.detail)
            .await?;
        Ok(change.event)
    }

    async fn set_state(
        &mut self,
        sql: &'static str,
        id: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(sql)
            .bind(id)
            .bind(at_ms)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Marks a ticket flapping (once) and logs it.
    pub async fn mark_flapping(&mut self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tickets SET flapping = 1 WHERE id = $1 AND flapping = 0")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 1 {
            self.event(
                id,
                at_ms,
                EventKind::Flapping,
                "",
                "the condition toggles faster than the flap window",
            )
            .await?;
        }
        Ok(())
    }

    /// Open tickets below the top tier that may be due to escalate at `now_ms`: tier 1 past a
    /// due time, and every tier-2 ticket (the lifecycle decides).
    pub async fn escalation_candidates(&mut self, now_ms: i64) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE t.state IN ('new', 'acknowledged') AND ( \
               (t.tier <= 1 AND ((t.state = 'new' AND t.response_due_ms > 0 AND t.response_due_ms <= $1) \
                  OR (t.resolve_due_ms > 0 AND t.resolve_due_ms <= $1))) \
               OR t.tier = 2) ORDER BY t.id LIMIT 10000"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| ticket_from_row(r, 0)).collect()
    }

    /// Moves a ticket to `tier` and logs the escalation.
    pub async fn escalate(
        &mut self,
        id: i64,
        tier: u32,
        now_ms: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET tier = $2, escalated_at_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(i64::from(tier))
            .bind(now_ms)
            .execute(&mut *self.tx)
            .await?;
        self.event(
            id,
            now_ms,
            EventKind::Escalated,
            "",
            &format!("tier {tier}: {why}"),
        )
        .await
    }
}

impl super::Store {
    /// Applies a person's action in its own transaction (see [`WriteTx::ticket_action`]).
    pub async fn act(
        &self,
        id: i64,
        action: &TicketAction,
        actor: &str,
        at_ms: i64,
        sla: &Sla,
    ) -> Result<EventKind, StoreError> {
        let mut tx = self.begin_write().await?;
        let kind = tx.ticket_action(id, action, actor, at_ms, sla).await?;
        tx.commit().await?;
        Ok(kind)
    }
}
