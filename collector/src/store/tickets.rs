//! Tickets as stored, and the read side: lists, one ticket, the handoff sets. The dedupe
//! invariant (one open ticket per key) is held by partial unique indexes. States are read back
//! through [`TicketState::parse`]: an unknown value is an error, never a silent default.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, to_u64};
use crate::tickets::{Ticket, TicketState};

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only open (`Some(true)`) or only closed and resolved (`Some(false)`) tickets.
    pub open: Option<bool>,
    pub agent_id: Option<String>,
    /// Most tickets returned; 0 means 200.
    pub limit: u32,
}

/// The queue's further filters (each empty or `None`: any).
#[derive(Debug, Clone, Default)]
pub struct TicketMatch {
    /// Exactly this state (`new`, `acknowledged`, ...), narrowing `open`.
    pub state: Option<TicketState>,
    pub priority: Option<u32>,
    pub assignee: Option<String>,
    pub rule_id: Option<String>,
    /// Only tickets whose host carries this label.
    pub label: Option<String>,
}

/// Counts of the tickets a queue view matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketCounts {
    /// Every matching ticket.
    pub total: u64,
    /// P1 to P4.
    pub by_priority: [u64; 4],
    /// Outage tickets among them.
    pub outages: u64,
}

/// The WHERE clause of a queue view over `t` and `a`: `$1` agent, `$3` state, `$4` priority,
/// `$5` assignee, `$6` rule, `$7` label and `$8` its LIKE pattern (see [`bind_matching`]).
fn matching_clause(filter: &TicketFilter) -> String {
    let state_clause = match filter.open {
        None => "",
        Some(true) => "AND t.state IN ('new', 'acknowledged')",
        Some(false) => "AND t.state IN ('resolved', 'closed')",
    };
    format!(
        "($1 = '' OR t.agent_id = $1) {state_clause} \
         AND ($3 = '' OR t.state = $3) AND ($4 = 0 OR t.priority = $4) \
         AND ($5 = '' OR t.assignee = $5) AND ($6 = '' OR t.rule_id = $6) \
         AND ($7 = '' OR (',' || a.labels || ',') LIKE $8 ESCAPE '\\')"
    )
}

/// Binds `$1` to `$8` of [`matching_clause`] (`$2`: the limit).
fn bind_matching<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    filter: &TicketFilter,
    more: &TicketMatch,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(filter.agent_id.clone().unwrap_or_default())
        .bind(i64::from(if filter.limit == 0 {
            200
        } else {
            filter.limit
        }))
        .bind(more.state.map(TicketState::as_str).unwrap_or_default())
        .bind(i64::from(more.priority.unwrap_or(0)))
        .bind(more.assignee.clone().unwrap_or_default())
        .bind(more.rule_id.clone().unwrap_or_default())
        .bind(more.label.clone().unwrap_or_default())
        .bind(format!(
            "%,{},%",
            super::fleet_page::like_escape(more.label.as_deref().unwrap_or_default())
        ))
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

/// The end-of-shift sets, each cut at [`HANDOFF_LIMIT`] rows.
#[derive(Debug, Clone, Default)]
pub struct HandoffRows {
    pub critical_open: Vec<Ticket>,
    pub escalated: Vec<Ticket>,
    /// Resolved tickets, with host tickets that were under an outage left out: the outage
    /// stands for them (with its host count).
    pub resolved_since: Vec<Ticket>,
    /// Which lists were cut: critical, escalated, resolved.
    pub truncated: [bool; 3],
}

/// Most rows of one handoff list.
pub const HANDOFF_LIMIT: usize = 500;

pub(super) const COLUMNS: &str = "t.id, t.dedupe_key, t.agent_id, a.hostname, t.rule_id, \
     t.subject, t.state, t.priority, t.title, t.occurrences, t.opened_at_ms, t.last_seen_at_ms, \
     t.resolved_at_ms, t.last_value, t.tier, t.assignee, t.acknowledged_at_ms, t.response_due_ms, \
     t.resolve_due_ms, t.kb, t.flapping, t.clear_since_ms, t.parent_id, \
     (SELECT COUNT(*) FROM tickets c WHERE c.parent_id = t.id), t.escalated_at_ms, t.opened_priority";
pub(super) const FROM: &str = "FROM tickets t JOIN agents a ON a.agent_id = t.agent_id";
/// Width of [`COLUMNS`], for queries that select more after them.
pub(super) const WIDTH: usize = 26;

impl Store {
    /// Tickets matching a filter: open ones first by priority, then newest first.
    pub async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        self.list_tickets_matching(filter, &TicketMatch::default())
            .await
    }

    /// Tickets matching a filter and the queue's further filters, in the order of
    /// [`Store::list_tickets`].
    pub async fn list_tickets_matching(
        &self,
        filter: &TicketFilter,
        more: &TicketMatch,
    ) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE {} \
             ORDER BY CASE WHEN t.state IN ('new', 'acknowledged') THEN 0 ELSE 1 END, \
             t.priority, t.opened_at_ms DESC, t.id DESC LIMIT $2",
            matching_clause(filter)
        );
        let rows = bind_matching(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, more)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| ticket_from_row(r, 0)).collect()
    }

    /// How many tickets match a filter and the queue's further filters (no limit), per
    /// priority, and how many of them are outages.
    pub async fn count_tickets_matching(
        &self,
        filter: &TicketFilter,
        more: &TicketMatch,
    ) -> Result<TicketCounts, StoreError> {
        // `$2` (the list's limit) is bound but not used: both queries share the clause.
        let sql = format!(
            "SELECT t.priority, COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN t.agent_id = 'fleet' THEN 1 ELSE 0 END), 0) AS BIGINT) \
             {FROM} WHERE {} AND $2 > 0 GROUP BY t.priority ORDER BY t.priority",
            matching_clause(filter)
        );
        let rows = bind_matching(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, more)
            .fetch_all(&self.pool)
            .await?;
        let mut counts = TicketCounts::default();
        for r in &rows {
            let priority: i64 = r.try_get(0)?;
            let n = to_u64(r.try_get(1)?, "count")?;
            counts.outages += to_u64(r.try_get(2)?, "count")?;
            counts.total += n;
            if let Some(slot) = usize::try_from(priority)
                .ok()
                .and_then(|p| p.checked_sub(1))
                .and_then(|i| counts.by_priority.get_mut(i))
            {
                *slot += n;
            }
        }
        Ok(counts)
    }

    /// One ticket.
    pub async fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE t.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| ticket_from_row(r, 0)).transpose()
    }

    /// Host tickets suppressed under an outage (or resolved since), oldest first.
    pub async fn linked_tickets(&self, outage: i64) -> Result<Vec<Ticket>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} {FROM} WHERE t.parent_id = $1 ORDER BY t.id LIMIT 1000");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(outage)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| ticket_from_row(r, 0)).collect()
    }

    /// The end-of-shift view: open P1/P2 tickets, open escalated tickets, and tickets resolved
    /// since `since_ms`.
    pub async fn handoff(&self, since_ms: i64) -> Result<HandoffRows, StoreError> {
        // One row more than shown tells whether the list was cut.
        let query = |clause: &str| {
            format!(
                "SELECT {COLUMNS} {FROM} WHERE {clause} ORDER BY t.priority, t.opened_at_ms LIMIT {}",
                HANDOFF_LIMIT + 1
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
            "t.state IN ('resolved', 'closed') AND t.resolved_at_ms >= $1 AND t.parent_id IS NULL",
        )))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let convert = |rows: Vec<AnyRow>| -> Result<(Vec<Ticket>, bool), StoreError> {
            let cut = rows.len() > HANDOFF_LIMIT;
            let tickets = rows
                .iter()
                .take(HANDOFF_LIMIT)
                .map(|r| ticket_from_row(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((tickets, cut))
        };
        let (critical_open, c) = convert(critical)?;
        let (escalated, e) = convert(escalated)?;
        let (resolved_since, r) = convert(resolved)?;
        Ok(HandoffRows {
            critical_open,
            escalated,
            resolved_since,
            truncated: [c, e, r],
        })
    }
}

/// A ticket from the [`COLUMNS`] of a row, starting at column `at`.
pub(super) fn ticket_from_row(r: &AnyRow, at: usize) -> Result<Ticket, StoreError> {
    let state: String = r.try_get(at + 6)?;
    let small = |i: usize, what: &'static str| -> Result<u32, StoreError> {
        u32::try_from(r.try_get::<i64, _>(at + i)?).map_err(|_| StoreError::OutOfRange(what))
    };
    let id: i64 = r.try_get(at)?;
    let priority = small(7, "priority")?;
    let opened_priority = small(25, "opened_priority")?;
    Ok(Ticket {
        id,
        dedupe_key: r.try_get(at + 1)?,
        agent_id: r.try_get(at + 2)?,
        hostname: r.try_get(at + 3)?,
        rule_id: r.try_get(at + 4)?,
        subject: r.try_get(at + 5)?,
        state: TicketState::parse(&state).map_err(|e| StoreError::corrupt("ticket", id, e))?,
        priority,
        opened_priority: if opened_priority == 0 {
            priority
        } else {
            opened_priority
        },
        title: r.try_get(at + 8)?,
        occurrences: to_u64(r.try_get(at + 9)?, "occurrences")?,
        opened_at_ms: r.try_get(at + 10)?,
        last_seen_at_ms: r.try_get(at + 11)?,
        resolved_at_ms: r.try_get(at + 12)?,
        last_value: r.try_get(at + 13)?,
        tier: small(14, "tier")?,
        assignee: r.try_get(at + 15)?,
        acknowledged_at_ms: r.try_get(at + 16)?,
        response_due_ms: r.try_get(at + 17)?,
        resolve_due_ms: r.try_get(at + 18)?,
        kb: r.try_get(at + 19)?,
        flapping: r.try_get::<i64, _>(at + 20)? != 0,
        clear_since_ms: r.try_get(at + 21)?,
        parent_id: r.try_get(at + 22)?,
        linked_hosts: small(23, "linked_hosts")?,
        escalated_at_ms: r.try_get(at + 24)?,
    })
}
