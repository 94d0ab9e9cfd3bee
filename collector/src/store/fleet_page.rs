//! The fleet page of the dashboard: one page of hosts (LIMIT/OFFSET, with the count of all
//! that match), each with its open-ticket count and most urgent open priority, searched by
//! name, label, OS or agent version in the store, so a fleet of 10,000 is never read whole.

use sqlx::Row;

use super::{Store, StoreError};

/// Which hosts a fleet search matches: a case-insensitive substring of one field or of any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FleetField {
    /// Host name, agent id, labels, OS or agent version.
    #[default]
    Any,
    Name,
    Label,
    Os,
    Version,
}

/// One row of the fleet page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRow {
    pub agent_id: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    /// 0 when the agent never reported.
    pub last_seen_at_ms: i64,
    pub clock_skew_ms: i64,
    pub labels: Vec<String>,
    /// No valid certificate is left.
    pub revoked: bool,
    /// Tickets open on the host (new, acknowledged, or suppressed under an outage).
    pub open_tickets: u64,
    /// The most urgent priority among them.
    pub worst_priority: Option<u32>,
}

/// A page of hosts and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetRows {
    pub rows: Vec<FleetRow>,
    pub total: u64,
}

/// The WHERE clause of a fleet search over agents `a`; `$1` is the field's pattern.
fn clause(field: FleetField) -> &'static str {
    match field {
        FleetField::Any => {
            "($1 = '%%' OR LOWER(a.hostname) LIKE $1 ESCAPE '\\' OR LOWER(a.agent_id) LIKE $1 ESCAPE '\\' \
             OR LOWER(a.labels) LIKE $1 ESCAPE '\\' OR LOWER(a.os) LIKE $1 ESCAPE '\\' \
             OR LOWER(a.agent_version) LIKE $1 ESCAPE '\\')"
        }
        FleetField::Name => {
            "(LOWER(a.hostname) LIKE $1 ESCAPE '\\' OR LOWER(a.agent_id) LIKE $1 ESCAPE '\\')"
        }
        FleetField::Label => "LOWER(a.labels) LIKE $1 ESCAPE '\\'",
        FleetField::Os => "LOWER(a.os) LIKE $1 ESCAPE '\\'",
        FleetField::Version => "LOWER(a.agent_version) LIKE $1 ESCAPE '\\'",
    }
}

const OPEN: &str = "t.state IN ('new', 'acknowledged', 'suppressed')";

impl Store {
    /// Hosts whose `field` contains `text` (any case), by host name, `limit` from `offset`.
    pub async fn fleet_page(
        &self,
        field: FleetField,
        text: &str,
        limit: u32,
        offset: u64,
    ) -> Result<FleetRows, StoreError> {
        let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
        let filter = clause(field);
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM agents a WHERE a.agent_id <> 'fleet' AND {filter}"
        )))
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        // The page is cut first, in a derived table, so the per-host counts are computed for
        // the hosts shown, not for every host that matches.
        let sql = format!(
            "SELECT a.agent_id, a.hostname, a.os, a.agent_version, a.last_seen_at_ms, \
             a.clock_skew_ms, a.labels, \
             (SELECT COUNT(*) FROM certificates c WHERE c.subject = a.agent_id \
                AND c.revoked_at_ms IS NULL), \
             (SELECT COUNT(*) FROM tickets t WHERE t.agent_id = a.agent_id AND {OPEN}), \
             (SELECT MIN(t.priority) FROM tickets t WHERE t.agent_id = a.agent_id AND {OPEN}) \
             FROM (SELECT a.* FROM agents a WHERE a.agent_id <> 'fleet' AND {filter} \
                ORDER BY LOWER(a.hostname), a.agent_id LIMIT $2 OFFSET $3) a \
             ORDER BY LOWER(a.hostname), a.agent_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&pattern)
            .bind(i64::from(limit.max(1)))
            .bind(i64::try_from(offset).map_err(|_| StoreError::OutOfRange("offset"))?)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .iter()
            .map(|r| {
                let labels: String = r.try_get(6)?;
                let certs: i64 = r.try_get(7)?;
                let open: i64 = r.try_get(8)?;
                let worst: Option<i64> = r.try_get(9)?;
                Ok(FleetRow {
                    agent_id: r.try_get(0)?,
                    hostname: r.try_get(1)?,
                    os: r.try_get(2)?,
                    agent_version: r.try_get(3)?,
                    last_seen_at_ms: r.try_get(4)?,
                    clock_skew_ms: r.try_get(5)?,
                    labels: super::reports::split_labels(&labels),
                    revoked: certs == 0,
                    open_tickets: super::to_u64(open, "open tickets")?,
                    worst_priority: worst
                        .map(|p| u32::try_from(p).map_err(|_| StoreError::OutOfRange("priority")))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(FleetRows {
            rows,
            total: super::to_u64(total, "host count")?,
        })
    }
}

/// `value` as a literal inside a LIKE pattern with `\` as the escape character.
pub(super) fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
