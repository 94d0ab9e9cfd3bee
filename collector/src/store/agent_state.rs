//! What ingest reads about one agent before the rules run, in as few statements as possible:
//! every open ticket of the agent (all rules at once), every tracked condition, the disk
//! samples of all its mounts, and the silences in force (read once per transaction, which for
//! a group commit is once per group). Each statement costs a round trip to the database
//! thread or server, and at fleet scale the number of statements per report is the ingest
//! rate, so the rules get their inputs in bulk rather than rule by rule.

use std::collections::HashMap;

use sqlx::Row;

use super::conditions::Condition;
use super::silences::Silence;
use super::tickets::{COLUMNS, FROM, ticket_from_row};
use super::{DiskSample, StoreError, WriteTx, to_u64};
use crate::tickets::Ticket;

/// Silences are read for this far behind the first report of a transaction, so a replayed
/// spool in the same group finds them too; an older snapshot reads its own.
const SILENCE_MEMO_BEHIND_MS: i64 = 7 * 86_400_000;

impl WriteTx {
    /// Open (and suppressed) tickets of one agent, every rule.
    pub async fn open_tickets_of(&mut self, agent_id: &str) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE t.agent_id = $1 \
             AND t.state IN ('new', 'acknowledged', 'suppressed')"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agent_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| ticket_from_row(r, 0)).collect()
    }

    /// Every tracked condition of one agent, by rule id.
    pub async fn conditions_of(
        &mut self,
        agent_id: &str,
    ) -> Result<HashMap<String, Vec<Condition>>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule_id, subject, since_ms, holds_count FROM conditions WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut by_rule: HashMap<String, Vec<Condition>> = HashMap::new();
        for r in &rows {
            by_rule.entry(r.try_get(0)?).or_default().push(Condition {
                subject: r.try_get(1)?,
                since_ms: r.try_get(2)?,
                holds_count: r.try_get(3)?,
            });
        }
        Ok(by_rule)
    }

    /// Disk samples of every mount of one agent since `since_ms`, oldest first, by mount.
    pub async fn disk_samples_of(
        &mut self,
        agent_id: &str,
        since_ms: i64,
    ) -> Result<HashMap<String, Vec<DiskSample>>, StoreError> {
        let rows = sqlx::query(
            "SELECT mount_point, at_ms, used_bytes, available_bytes FROM disk_samples \
             WHERE agent_id = $1 AND at_ms >= $2 ORDER BY mount_point, at_ms",
        )
        .bind(agent_id)
        .bind(since_ms)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut by_mount: HashMap<String, Vec<DiskSample>> = HashMap::new();
        for r in &rows {
            by_mount.entry(r.try_get(0)?).or_default().push(DiskSample {
                at_ms: r.try_get(1)?,
                used_bytes: to_u64(r.try_get(2)?, "used_bytes")?,
                available_bytes: to_u64(r.try_get(3)?, "available_bytes")?,
            });
        }
        Ok(by_mount)
    }

    /// The silences in force at `at_ms`. Read once per transaction (with a week's margin
    /// behind the first caller's time) and filtered here after that.
    pub async fn silences_at(&mut self, at_ms: i64) -> Result<Vec<Silence>, StoreError> {
        if let Some((floor, memo)) = &self.silence_memo
            && at_ms >= *floor
        {
            return Ok(memo
                .iter()
                .filter(|s| s.starts_at_ms <= at_ms && s.ends_at_ms > at_ms)
                .cloned()
                .collect());
        }
        let floor = at_ms.saturating_sub(SILENCE_MEMO_BEHIND_MS);
        let all = self.silences_ending_after(floor).await?;
        let active = all
            .iter()
            .filter(|s| s.starts_at_ms <= at_ms && s.ends_at_ms > at_ms)
            .cloned()
            .collect();
        if self.silence_memo.as_ref().is_none_or(|(f, _)| floor < *f) {
            self.silence_memo = Some((floor, all));
        }
        Ok(active)
    }
}
