//! The alert event log: every ticket change is a row of `ticket_events`, written in the same
//! transaction as the change, with a cursor that only grows. Feeds read it with
//! [`Store::events_since`].
//!
//! Ordering guarantee: a reader that has seen every event up to cursor C and asks for events
//! after C misses none, even with several collectors writing to one PostgreSQL. An identity
//! value alone would not give that: it is handed out before commit, so a transaction that took
//! cursor 10 can commit after one that took 11, and a reader that already moved past 11 would
//! skip 10 for ever. So on PostgreSQL every transaction takes one transaction-scoped advisory
//! lock before its first event and holds it until it commits or rolls back: cursors are then
//! handed out in commit order, and every cursor a reader can see is below every cursor still
//! uncommitted. Transactions that change no ticket never take the lock. On SQLite writers are
//! serialised by `BEGIN IMMEDIATE`, which gives the same order.
//!
//! Time order: `at_ms` is the time the timeline shows; it is never before the previous event
//! of the same ticket (an offline spool replayed after the sweep wrote on the collector's
//! clock would otherwise read "opened 20:44, resolved 20:42"). When it had to move,
//! `observed_at_ms` keeps the time the snapshot observed. Timelines are read in cursor order.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::tickets::{COLUMNS, WIDTH, ticket_from_row};
use super::{Backend, Store, StoreError, WriteTx};
use crate::tickets::{EventKind, Ticket, TicketEvent};

/// The advisory lock key that orders event writers (ASCII "fl-evlog").
const EVENT_LOG_LOCK: i64 = 0x666c_2d65_766c_6f67;

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only tickets of this priority or more urgent; 0: all.
    pub max_priority: u32,
    pub rule_id: String,
    pub agent_id: String,
    pub label: String,
}

/// An event with its ticket as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub event: TicketEvent,
    pub ticket: Ticket,
    /// The host's labels now.
    pub labels: Vec<String>,
}

impl WriteTx {
    /// Takes the event-log lock now (PostgreSQL), before reads whose decision must be atomic
    /// with the writes that follow (outage correlation): every writer of events queues on it,
    /// so no other transaction can open or link tickets between the reads and this commit.
    pub async fn lock_event_log(&mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres && !self.holds_event_lock {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVENT_LOG_LOCK)
                .execute(&mut *self.tx)
                .await?;
            self.holds_event_lock = true;
        }
        Ok(())
    }

    /// Appends an event to a ticket's timeline; the change it records is in this transaction.
    pub async fn event(
        &mut self,
        ticket_id: i64,
        at_ms: i64,
        kind: EventKind,
        actor: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.lock_event_log().await?;
        self.wrote_events = true;
        // The agent's ticket state changed: whoever remembers it must read it again.
        sqlx::query(
            "UPDATE agents SET state_version = state_version + 1 \
             WHERE agent_id = (SELECT agent_id FROM tickets WHERE id = $1)",
        )
        .bind(ticket_id)
        .execute(&mut *self.tx)
        .await?;
        // A timeline never goes back in time: an event observed before the ticket's previous
        // event (a replayed spool after the sweep opened a ticket on the collector's clock) is
        // shown at the previous event's time, and keeps when it was observed.
        let previous: Option<i64> =
            sqlx::query_scalar("SELECT MAX(at_ms) FROM ticket_events WHERE ticket_id = $1")
                .bind(ticket_id)
                .fetch_one(&mut *self.tx)
                .await?;
        let shown_ms = previous.map_or(at_ms, |p| p.max(at_ms));
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, at_ms, kind, actor, detail, observed_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ticket_id)
        .bind(shown_ms)
        .bind(kind.as_str())
        .bind(actor)
        .bind(detail)
        .bind(at_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Events after `cursor`, oldest first, at most `limit`, with their tickets.
    pub async fn events_since(
        &self,
        cursor: i64,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<AlertEvent>, StoreError> {
        let sql = format!(
            "{} WHERE e.cursor > $1 AND ($2 = 0 OR t.priority <= $2) AND ($3 = '' OR t.rule_id = $3) \
             AND ($4 = '' OR t.agent_id = $4) \
             AND ($5 = '' OR (',' || a.labels || ',') LIKE $6 ESCAPE '\\') \
             ORDER BY e.cursor LIMIT $7",
            alert_select()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cursor)
            .bind(i64::from(filter.max_priority))
            .bind(&filter.rule_id)
            .bind(&filter.agent_id)
            .bind(&filter.label)
            .bind(format!("%,{},%", like_escape(&filter.label)))
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// A ticket's timeline, oldest first.
    pub async fn timeline(&self, id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT cursor, at_ms, kind, actor, detail, observed_at_ms FROM ticket_events WHERE ticket_id = $1 \
             ORDER BY cursor LIMIT 5000",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| event_from_row(r, 0, id)).collect()
    }

    /// A ticket's events after `cursor`, oldest first, at most `limit`.
    pub async fn ticket_events_after(
        &self,
        id: i64,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT cursor, at_ms, kind, actor, detail, observed_at_ms FROM ticket_events \
             WHERE ticket_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3",
        )
        .bind(id)
        .bind(cursor)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| event_from_row(r, 0, id)).collect()
    }

    /// The newest cursor of the log (0 when empty).
    pub async fn last_cursor(&self) -> Result<i64, StoreError> {
        let c: Option<i64> = sqlx::query_scalar("SELECT MAX(cursor) FROM ticket_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(c.unwrap_or(0))
    }
}

/// `SELECT … FROM …` of events `e` with their tickets `t` and agents `a`, read by
/// [`alert_from_row`]; the caller adds `WHERE`, `ORDER BY` and `LIMIT`.
pub(super) fn alert_select() -> String {
    format!(
        "SELECT {COLUMNS}, e.cursor, e.at_ms, e.kind, e.actor, e.detail, e.observed_at_ms, a.labels \
         FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
         JOIN agents a ON a.agent_id = t.agent_id"
    )
}

/// An event with its ticket, from a row of [`alert_select`].
pub(super) fn alert_from_row(r: &AnyRow) -> Result<AlertEvent, StoreError> {
    alert_from_row_at(r, 0)
}

/// An event with its ticket, from the columns of [`alert_select`] starting at column `at`.
pub(super) fn alert_from_row_at(r: &AnyRow, at: usize) -> Result<AlertEvent, StoreError> {
    let ticket = ticket_from_row(r, at)?;
    let event = event_from_row(r, at + WIDTH, ticket.id)?;
    let labels: String = r.try_get(at + WIDTH + 6)?;
    let labels = labels
        .split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(AlertEvent {
        event,
        ticket,
        labels,
    })
}

fn event_from_row(r: &AnyRow, at: usize, ticket_id: i64) -> Result<TicketEvent, StoreError> {
    let cursor: i64 = r.try_get(at)?;
    let kind: String = r.try_get(at + 2)?;
    Ok(TicketEvent {
        cursor,
        ticket_id,
        at_ms: r.try_get(at + 1)?,
        kind: EventKind::parse(&kind).map_err(|e| StoreError::corrupt("event", cursor, e))?,
        actor: r.try_get(at + 3)?,
        detail: r.try_get(at + 4)?,
        observed_at_ms: r.try_get(at + 5)?,
    })
}

/// `value` as a literal inside a LIKE pattern with `\` as the escape character.
fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
