//! Tickets and their append-only event log. The dedupe invariant (one open ticket per key) is
//! held by a partial unique index; every change of state writes an event in the same
//! transaction, so a reader of the log never sees a change without its event or the reverse.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx, to_u64};

/// The states a ticket can be in. `new` and `acknowledged` count as open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    New,
    Acknowledged,
    /// A host's ticket under an outage ticket: tracked, but not in the queue.
    Suppressed,
    Resolved,
    Closed,
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRow {
    pub id: i64,
    pub dedupe_key: String,
    pub agent_id: String,
    pub hostname: String,
    pub rule_id: String,
    pub subject: String,
    pub state: TicketState,
    pub priority: u32,
    pub title: String,
    pub occurrences: u64,
    pub opened_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub last_value: f64,
    pub tier: u32,
    pub assignee: String,
    pub acknowledged_at_ms: Option<i64>,
    pub response_due_ms: i64,
    pub resolve_due_ms: i64,
    pub kb: String,
    /// The condition toggles faster than the flap window.
    pub flapping: bool,
    /// While flapping: since when the condition has been clear.
    pub clear_since_ms: Option<i64>,
}

/// What an operator does to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketAction {
    Acknowledge,
    Assign(String),
    Comment(String),
    Resolve(String),
    Reopen(String),
    Close,
}

impl TicketAction {
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Assign(_) => "assign",
            Self::Comment(_) => "comment on",
            Self::Resolve(_) => "resolve",
            Self::Reopen(_) => "reopen",
            Self::Close => "close",
        }
    }
}

/// One entry of a ticket's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub cursor: i64,
    pub ticket_id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub actor: String,
    pub detail: String,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only open (`Some(true)`) or only closed and resolved (`Some(false)`) tickets.
    pub open: Option<bool>,
    pub agent_id: Option<String>,
    /// Most tickets returned; 0 means 200.
    pub limit: u32,
}

/// A ticket about to be opened.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub agent_id: &'a str,
    pub rule_id: &'a str,
    pub subject: &'a str,
    pub priority: u32,
    pub title: &'a str,
    pub at_ms: i64,
    pub value: f64,
    pub response_due_ms: i64,
    pub resolve_due_ms: i64,
    pub kb: &'a str,
}

const COLUMNS: &str = "t.id, t.dedupe_key, t.agent_id, a.hostname, t.rule_id, t.subject, t.state, \
     t.priority, t.title, t.occurrences, t.opened_at_ms, t.last_seen_at_ms, t.resolved_at_ms, \
     t.last_value, t.tier, t.assignee, t.acknowledged_at_ms, t.response_due_ms, t.resolve_due_ms, t.kb, \
     t.flapping, t.clear_since_ms";

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Acknowledged => "acknowledged",
            Self::Suppressed => "suppressed",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "acknowledged" => Self::Acknowledged,
            "suppressed" => Self::Suppressed,
            "resolved" => Self::Resolved,
            "closed" => Self::Closed,
            _ => Self::New,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::Acknowledged)
    }
}

/// The key that makes two conditions the same ticket.
pub fn dedupe_key(agent_id: &str, rule_id: &str, subject: &str) -> String {
    format!("{agent_id}\u{1f}{rule_id}\u{1f}{subject}")
}

impl WriteTx {
    /// Open tickets of one agent for one rule.
    pub async fn open_tickets(
        &mut self,
        agent_id: &str,
        rule_id: &str,
    ) -> Result<Vec<TicketRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tickets t JOIN agents a ON a.agent_id = t.agent_id \
             WHERE t.agent_id = $1 AND t.rule_id = $2 AND t.state IN ('new', 'acknowledged', 'suppressed')"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agent_id)
            .bind(rule_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    /// Opens a ticket and logs the event. Returns its id.
    pub async fn open_ticket(&mut self, t: &NewTicket<'_>) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (dedupe_key, agent_id, rule_id, subject, state, priority, title, \
             occurrences, opened_at_ms, last_seen_at_ms, last_value, response_due_ms, resolve_due_ms, kb) \
             VALUES ($1, $2, $3, $4, 'new', $5, $6, 1, $7, $7, $8, $9, $10, $11) RETURNING id",
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
        self.event(id, t.at_ms, "opened", t.title).await?;
        Ok(id)
    }

    /// The condition was seen again: one more occurrence on the same ticket.
    pub async fn bump_ticket(&mut self, id: i64, at_ms: i64, value: f64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET occurrences = occurrences + 1, last_seen_at_ms = $2, \
             last_value = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(at_ms)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records the latest measured value without counting an occurrence (the value sits
    /// between the clear and the open threshold).
    pub async fn note_value(&mut self, id: i64, value: f64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET last_value = $2 WHERE id = $1")
            .bind(id)
            .bind(value)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Resolves an open ticket and logs why.
    pub async fn resolve_ticket(
        &mut self,
        id: i64,
        at_ms: i64,
        value: f64,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET state = 'resolved', resolved_at_ms = $2, last_value = $3, flapping = 0, \
             clear_since_ms = NULL WHERE id = $1 AND state IN ('new', 'acknowledged', 'suppressed')",
        )
        .bind(id)
        .bind(at_ms)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        self.event(id, at_ms, "resolved", reason).await
    }

    async fn event(
        &mut self,
        id: i64,
        at_ms: i64,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.event_by(id, at_ms, kind, "", detail).await
    }

    /// Appends an event to a ticket's timeline; the change it records is in this transaction.
    pub async fn event_by(
        &mut self,
        id: i64,
        at_ms: i64,
        kind: &str,
        actor: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, at_ms, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(at_ms)
        .bind(kind)
        .bind(actor)
        .bind(detail)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The latest resolved ticket with this key resolved at or after `since_ms`, if any.
    pub async fn recently_resolved(
        &mut self,
        key: &str,
        since_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM tickets WHERE dedupe_key = $1 AND state = 'resolved' AND resolved_at_ms >= $2 \
             ORDER BY resolved_at_ms DESC LIMIT 1",
        )
        .bind(key)
        .bind(since_ms)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// Reopens a resolved ticket (the condition recurred within the reopen window).
    pub async fn reopen_ticket(
        &mut self,
        id: i64,
        at_ms: i64,
        value: f64,
        actor: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET state = 'new', resolved_at_ms = NULL, acknowledged_at_ms = NULL, \
             occurrences = occurrences + 1, last_seen_at_ms = $2, last_value = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(at_ms)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        self.event_by(id, at_ms, "reopened", actor, why).await
    }

    /// Raises a ticket's priority (never lowers it) and logs it.
    pub async fn raise_priority(
        &mut self,
        ticket: &TicketRow,
        priority: u32,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        if priority >= ticket.priority {
            return Ok(());
        }
        sqlx::query("UPDATE tickets SET priority = $2 WHERE id = $1")
            .bind(ticket.id)
            .bind(i64::from(priority))
            .execute(&mut *self.tx)
            .await?;
        self.event(
            ticket.id,
            at_ms,
            "priority",
            &format!("P{} -> P{priority}", ticket.priority),
        )
        .await
    }

    /// Applies an operator's action to a ticket; returns the event kind written, or a conflict
    /// saying why the action does not apply in the ticket's state.
    pub async fn ticket_action(
        &mut self,
        id: i64,
        action: &TicketAction,
        actor: &str,
        at_ms: i64,
    ) -> Result<&'static str, StoreError> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        let state = TicketState::parse(&state.ok_or(StoreError::NotFound("ticket"))?);
        let conflict = || {
            StoreError::Conflict(format!(
                "cannot {} a ticket that is {}",
                action.verb(),
                state.as_str()
            ))
        };
        let (kind, detail) = match action {
            TicketAction::Acknowledge if state == TicketState::New => {
                self.exec("UPDATE tickets SET state = 'acknowledged', acknowledged_at_ms = $2 WHERE id = $1", id, at_ms).await?;
                ("acknowledged", String::new())
            }
            TicketAction::Assign(who) => {
                sqlx::query("UPDATE tickets SET assignee = $2 WHERE id = $1")
                    .bind(id)
                    .bind(who)
                    .execute(&mut *self.tx)
                    .await?;
                ("assigned", who.clone())
            }
            TicketAction::Comment(text) => ("comment", text.clone()),
            TicketAction::Resolve(why) if state.is_open() => {
                self.exec(
                    "UPDATE tickets SET state = 'resolved', resolved_at_ms = $2 WHERE id = $1",
                    id,
                    at_ms,
                )
                .await?;
                ("resolved", why.clone())
            }
            TicketAction::Reopen(why)
                if matches!(state, TicketState::Resolved | TicketState::Closed) =>
            {
                self.exec(
                    "UPDATE tickets SET state = 'new', resolved_at_ms = NULL, acknowledged_at_ms = NULL, last_seen_at_ms = $2 WHERE id = $1",
                    id,
                    at_ms,
                )
                .await?;
                ("reopened", why.clone())
            }
            TicketAction::Close if state == TicketState::Resolved => {
                self.exec(
                    "UPDATE tickets SET state = 'closed', last_seen_at_ms = $2 WHERE id = $1",
                    id,
                    at_ms,
                )
                .await?;
                ("closed", String::new())
            }
            _ => return Err(conflict()),
        };
        self.event_by(id, at_ms, kind, actor, &detail).await?;
        Ok(kind)
    }

    async fn exec(&mut self, sql: &'static str, id: i64, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(sql)
            .bind(id)
            .bind(at_ms)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Tickets matching a filter: open ones first by priority, then newest first.
    pub async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketRow>, StoreError> {
        let state_clause = match filter.open {
            None => "",
            Some(true) => "AND t.state IN ('new', 'acknowledged')",
            Some(false) => "AND t.state IN ('resolved', 'closed')",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM tickets t JOIN agents a ON a.agent_id = t.agent_id \
             WHERE ($1 = '' OR t.agent_id = $1) {state_clause} \
             ORDER BY CASE WHEN t.state IN ('new', 'acknowledged') THEN 0 ELSE 1 END, \
             t.priority, t.opened_at_ms DESC, t.id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.agent_id.clone().unwrap_or_default())
            .bind(i64::from(if filter.limit == 0 {
                200
            } else {
                filter.limit
            }))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    /// The event kinds of one ticket in log order, with their cursors.
    pub async fn ticket_events(&self, ticket_id: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT cursor, kind FROM ticket_events WHERE ticket_id = $1 ORDER BY cursor",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

fn ticket_from_row(r: &AnyRow) -> Result<TicketRow, StoreError> {
    let state: String = r.try_get(6)?;
    let priority: i64 = r.try_get(7)?;
    Ok(TicketRow {
        id: r.try_get(0)?,
        dedupe_key: r.try_get(1)?,
        agent_id: r.try_get(2)?,
        hostname: r.try_get(3)?,
        rule_id: r.try_get(4)?,
        subject: r.try_get(5)?,
        state: TicketState::parse(&state),
        priority: u32::try_from(priority).map_err(|_| StoreError::OutOfRange("priority"))?,
        title: r.try_get(8)?,
        occurrences: to_u64(r.try_get(9)?, "occurrences")?,
        opened_at_ms: r.try_get(10)?,
        last_seen_at_ms: r.try_get(11)?,
        resolved_at_ms: r.try_get(12)?,
        last_value: r.try_get(13)?,
        tier: u32::try_from(r.try_get::<i64, _>(14)?)
            .map_err(|_| StoreError::OutOfRange("tier"))?,
        assignee: r.try_get(15)?,
        acknowledged_at_ms: r.try_get(16)?,
        response_due_ms: r.try_get(17)?,
        resolve_due_ms: r.try_get(18)?,
        kb: r.try_get(19)?,
        flapping: r.try_get::<i64, _>(20)? != 0,
        clear_since_ms: r.try_get(21)?,
    })
}

impl WriteTx {
    /// Marks a ticket flapping (once) and logs it.
    pub async fn mark_flapping(&mut self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tickets SET flapping = 1 WHERE id = $1 AND flapping = 0")
            .bind(id)
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 1 {
            self.event(
                id,
                at_ms,
                "flapping",
                "the condition toggles faster than the flap window",
            )
            .await?;
        }
        Ok(())
    }

    /// Records since when a flapping ticket's condition is clear (None: it holds again).
    pub async fn set_clear_since(&mut self, id: i64, since: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET clear_since_ms = $2 WHERE id = $1")
            .bind(id)
            .bind(since)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// When a ticket last resolved (from its timeline), if ever.
    pub async fn last_resolved_at(&mut self, id: i64) -> Result<Option<i64>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(at_ms) FROM ticket_events WHERE ticket_id = $1 AND kind = 'resolved'",
        )
        .bind(id)
        .fetch_one(self.conn())
        .await?;
        Ok(at)
    }
}

impl Store {
    /// The end-of-shift view: open P1/P2 tickets, open escalated tickets, and tickets resolved
    /// since `since_ms`.
    pub async fn handoff(
        &self,
        since_ms: i64,
    ) -> Result<(Vec<TicketRow>, Vec<TicketRow>, Vec<TicketRow>), StoreError> {
        let query = |clause: &str| {
            format!(
                "SELECT {COLUMNS} FROM tickets t JOIN agents a ON a.agent_id = t.agent_id WHERE {clause} ORDER BY t.priority, t.opened_at_ms LIMIT 500"
            )
        };
        let critical = sqlx::query(sqlx::AssertSqlSafe(query(
            "t.state IN ('new', 'acknowledged') AND t.priority <= 2",
        )))
        .fetch_all(&self.pool)
        .await?;
        let escalated = sqlx::query(sqlx::AssertSqlSafe(query(
            "t.state IN ('new', 'acknowledged') AND t.tier >= 2",
        )))
        .fetch_all(&self.pool)
        .await?;
        let resolved = sqlx::query(sqlx::AssertSqlSafe(query(
            "t.state IN ('resolved', 'closed') AND t.resolved_at_ms >= $1",
        )))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let convert = |rows: Vec<AnyRow>| {
            rows.iter()
                .map(ticket_from_row)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((convert(critical)?, convert(escalated)?, convert(resolved)?))
    }

    /// One ticket.
    pub async fn ticket(&self, id: i64) -> Result<Option<TicketRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tickets t JOIN agents a ON a.agent_id = t.agent_id WHERE t.id = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    /// A ticket's timeline, oldest first.
    pub async fn timeline(&self, id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query("SELECT cursor, ticket_id, at_ms, kind, actor, detail FROM ticket_events WHERE ticket_id = $1 ORDER BY cursor")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketEvent {
                    cursor: r.try_get(0)?,
                    ticket_id: r.try_get(1)?,
                    at_ms: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    actor: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Applies an operator's action in its own transaction.
    pub async fn act(
        &self,
        id: i64,
        action: &TicketAction,
        actor: &str,
        at_ms: i64,
    ) -> Result<&'static str, StoreError> {
        let mut tx = self.begin_write().await?;
        let kind = tx.ticket_action(id, action, actor, at_ms).await?;
        tx.commit().await?;
        Ok(kind)
    }
}
