//! Silences and maintenance windows: while one matches (a host, a label, or a rule), conditions
//! are still tracked but open no ticket.

use sqlx::Row;

use super::{Store, StoreError, WriteTx};

/// What a silence matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// An agent id or a host name.
    Host(String),
    /// A label set on hosts (`firstline-collector label`).
    Label(String),
    /// A rule id.
    Rule(String),
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: i64,
    pub matcher: Matcher,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub reason: String,
    pub created_by: String,
}

impl Matcher {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::Host(v) => ("host", v),
            Self::Label(v) => ("label", v),
            Self::Rule(v) => ("rule", v),
        }
    }

    fn from_parts(id: i64, kind: &str, value: String) -> Result<Self, StoreError> {
        Ok(match kind {
            "host" => Self::Host(value),
            "label" => Self::Label(value),
            "rule" => Self::Rule(value),
            other => {
                return Err(StoreError::corrupt(
                    "silence",
                    id,
                    format!("unknown matcher kind {other:?}"),
                ));
            }
        })
    }

    /// The matcher's kind and value, as the interfaces name them.
    pub fn kind_and_value(&self) -> (&'static str, &str) {
        self.parts()
    }

    /// Whether this matcher covers a condition of `rule_id` on a host.
    pub fn covers(&self, agent_id: &str, hostname: &str, labels: &[String], rule_id: &str) -> bool {
        match self {
            Self::Host(h) => h == agent_id || h.eq_ignore_ascii_case(hostname),
            Self::Label(l) => labels.iter().any(|x| x == l),
            Self::Rule(r) => r == rule_id,
        }
    }
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Silence, StoreError> {
    let kind: String = r.try_get(1)?;
    let id: i64 = r.try_get(0)?;
    Ok(Silence {
        id,
        matcher: Matcher::from_parts(id, &kind, r.try_get(2)?)?,
        starts_at_ms: r.try_get(3)?,
        ends_at_ms: r.try_get(4)?,
        reason: r.try_get(5)?,
        created_by: r.try_get(6)?,
    })
}

const COLUMNS: &str =
    "id, matcher_kind, matcher_value, starts_at_ms, ends_at_ms, reason, created_by";

impl Store {
    /// Adds a silence; returns its id.
    pub async fn create_silence(
        &self,
        matcher: &Matcher,
        starts_at_ms: i64,
        ends_at_ms: i64,
        reason: &str,
        created_by: &str,
    ) -> Result<i64, StoreError> {
        let (kind, value) = matcher.parts();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO silences (matcher_kind, matcher_value, starts_at_ms, ends_at_ms, reason, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(kind)
        .bind(value)
        .bind(starts_at_ms)
        .bind(ends_at_ms)
        .bind(reason)
        .bind(created_by)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Silences that have not ended at `now_ms`.
    pub async fn current_silences(&self, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM silences WHERE ends_at_ms > $1 ORDER BY ends_at_ms");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Ends a silence now; returns it, or `None` when there is no such silence still running.
    pub async fn end_silence(&self, id: i64, now_ms: i64) -> Result<Option<Silence>, StoreError> {
        let done = sqlx::query(
            "UPDATE silences SET ends_at_ms = $2, starts_at_ms = CASE WHEN starts_at_ms > $2 \
             THEN $2 ELSE starts_at_ms END WHERE id = $1 AND ends_at_ms > $2",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let sql = format!("SELECT {COLUMNS} FROM silences WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        from_row(&row).map(Some)
    }

    /// Sets a host's labels (comma-separated in storage).
    pub async fn set_labels(&self, agent_id: &str, labels: &[String]) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE agents SET labels = $2 WHERE agent_id = $1 AND agent_id <> 'fleet'",
        )
        .bind(agent_id)
        .bind(labels.join(","))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl WriteTx {
    /// Silences active at `at_ms`.
    pub async fn active_silences(&mut self, at_ms: i64) -> Result<Vec<Silence>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM silences WHERE starts_at_ms <= $1 AND ends_at_ms > $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(at_ms)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Silences that end after `after_ms` (in force then or later), inside the transaction.
    pub(super) async fn silences_ending_after(
        &mut self,
        after_ms: i64,
    ) -> Result<Vec<Silence>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM silences WHERE ends_at_ms > $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_ms)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// A host's labels.
    pub async fn labels(&mut self, agent_id: &str) -> Result<Vec<String>, StoreError> {
        let labels: Option<String> =
            sqlx::query_scalar("SELECT labels FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(super::reports::split_labels(&labels.unwrap_or_default()))
    }
}
