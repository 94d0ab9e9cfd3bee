//! The dashboard's trend views: which rules and hosts recur most (tickets opened and reopened
//! in a window), the outages and how many hosts each touched, and per priority how fast
//! tickets were acknowledged and resolved against their due times; and one host's disk
//! usage history. Aggregated in SQL (both dialects), so the answer stays small.

use sqlx::Row;

use super::{DiskSample, Store, StoreError, to_u64};

/// Most rows of a "recurs most" list, outages listed, and disk samples of one history.
pub const TREND_ROWS: i64 = 20;
pub const TREND_OUTAGES: i64 = 50;
pub const HISTORY_ROWS: i64 = 100_000;

/// A rule or a host with how often it opened or reopened a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    /// The rule id, or the agent id.
    pub key: String,
    /// The host name (hosts only).
    pub name: String,
    /// Tickets opened or reopened in the window.
    pub openings: u64,
    /// Distinct hosts (rules) or distinct rules (hosts) among them.
    pub spread: u64,
}

/// An outage and the hosts linked under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageRow {
    pub ticket_id: i64,
    pub title: String,
    pub rule_id: String,
    pub state: String,
    pub priority: u32,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub hosts: u64,
}

/// Per priority: tickets opened in the window, how many were acknowledged and resolved, the
/// summed times (ms) to do so, and how many made their due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseRow {
    pub priority: u32,
    pub opened: u64,
    pub acknowledged: u64,
    pub ack_ms_total: i64,
    pub ack_in_time: u64,
    pub resolved: u64,
    pub resolve_ms_total: i64,
    pub resolve_in_time: u64,
}

/// Everything of the trends view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrendRows {
    pub rules: Vec<Recurrence>,
    pub hosts: Vec<Recurrence>,
    pub outages: Vec<OutageRow>,
    pub response: Vec<ResponseRow>,
}

fn small(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::OutOfRange(what))
}

impl Store {
    /// The trend rows of tickets opened (or reopened) since `since_ms`.
    pub async fn trends(&self, since_ms: i64) -> Result<TrendRows, StoreError> {
        let openings = "FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
             JOIN agents a ON a.agent_id = t.agent_id \
             WHERE e.at_ms >= $1 AND e.kind IN ('opened', 'reopened') AND t.agent_id <> 'fleet'";
        let rules = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.rule_id, COUNT(*), COUNT(DISTINCT t.agent_id) {openings} \
             GROUP BY t.rule_id ORDER BY COUNT(*) DESC, t.rule_id LIMIT {TREND_ROWS}"
        )))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let hosts = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.agent_id, a.hostname, COUNT(*), COUNT(DISTINCT t.rule_id) {openings} \
             GROUP BY t.agent_id, a.hostname ORDER BY COUNT(*) DESC, a.hostname LIMIT {TREND_ROWS}"
        )))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let outages = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.id, t.title, t.rule_id, t.state, t.priority, t.opened_at_ms, t.resolved_at_ms, \
             (SELECT COUNT(DISTINCT c.agent_id) FROM tickets c WHERE c.parent_id = t.id) \
             FROM tickets t WHERE t.agent_id = 'fleet' \
             AND (t.opened_at_ms >= $1 OR t.resolved_at_ms IS NULL OR t.resolved_at_ms >= $1) \
             ORDER BY t.opened_at_ms DESC, t.id DESC LIMIT {TREND_OUTAGES}"
        )))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let response = sqlx::query(
            "SELECT t.priority, COUNT(*), COUNT(t.acknowledged_at_ms), \
             CAST(COALESCE(SUM(t.acknowledged_at_ms - t.opened_at_ms), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN t.acknowledged_at_ms <= t.response_due_ms THEN 1 ELSE 0 END), 0) AS BIGINT), \
             COUNT(t.resolved_at_ms), \
             CAST(COALESCE(SUM(t.resolved_at_ms - t.opened_at_ms), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN t.resolved_at_ms <= t.resolve_due_ms THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM tickets t WHERE t.opened_at_ms >= $1 AND t.parent_id IS NULL \
             GROUP BY t.priority ORDER BY t.priority",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(TrendRows {
            rules: rules
                .iter()
                .map(|r| {
                    Ok(Recurrence {
                        key: r.try_get(0)?,
                        name: String::new(),
                        openings: to_u64(r.try_get(1)?, "count")?,
                        spread: to_u64(r.try_get(2)?, "count")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            hosts: hosts
                .iter()
                .map(|r| {
                    Ok(Recurrence {
                        key: r.try_get(0)?,
                        name: r.try_get(1)?,
                        openings: to_u64(r.try_get(2)?, "count")?,
                        spread: to_u64(r.try_get(3)?, "count")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            outages: outages
                .iter()
                .map(|r| {
                    Ok(OutageRow {
                        ticket_id: r.try_get(0)?,
                        title: r.try_get(1)?,
                        rule_id: r.try_get(2)?,
                        state: r.try_get(3)?,
                        priority: small(r.try_get(4)?, "priority")?,
                        opened_at_ms: r.try_get(5)?,
                        resolved_at_ms: r.try_get(6)?,
                        hosts: to_u64(r.try_get(7)?, "count")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            response: response
                .iter()
                .map(|r| {
                    Ok(ResponseRow {
                        priority: small(r.try_get(0)?, "priority")?,
                        opened: to_u64(r.try_get(1)?, "count")?,
                        acknowledged: to_u64(r.try_get(2)?, "count")?,
                        ack_ms_total: r.try_get(3)?,
                        ack_in_time: to_u64(r.try_get(4)?, "count")?,
                        resolved: to_u64(r.try_get(5)?, "count")?,
                        resolve_ms_total: r.try_get(6)?,
                        resolve_in_time: to_u64(r.try_get(7)?, "count")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }

    /// Disk samples of one host since `since_ms`, by mount point then time, at most
    /// [`HISTORY_ROWS`]; `mount` empty for every mount.
    pub async fn disk_history(
        &self,
        agent_id: &str,
        mount: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, DiskSample)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT mount_point, at_ms, used_bytes, available_bytes FROM disk_samples \
             WHERE agent_id = $1 AND ($2 = '' OR mount_point = $2) AND at_ms >= $3 \
             ORDER BY mount_point, at_ms LIMIT {HISTORY_ROWS}"
        )))
        .bind(agent_id)
        .bind(mount)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    DiskSample {
                        at_ms: r.try_get(1)?,
                        used_bytes: to_u64(r.try_get(2)?, "used_bytes")?,
                        available_bytes: to_u64(r.try_get(3)?, "available_bytes")?,
                    },
                ))
            })
            .collect()
    }
}
