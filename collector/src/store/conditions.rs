//! Conditions a rule tracks between reports: since when a condition holds and on how many
//! reports in a row, so `for` durations and "N consecutive checks" survive restarts and work
//! the same on every collector replica.

use sqlx::Row;

use super::{Store, StoreError, WriteTx};

/// One tracked condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub subject: String,
    pub since_ms: i64,
    pub holds_count: i64,
}

impl WriteTx {
    /// The conditions of one agent under one rule.
    pub async fn conditions(
        &mut self,
        agent_id: &str,
        rule_id: &str,
    ) -> Result<Vec<Condition>, StoreError> {
        let rows = sqlx::query("SELECT subject, since_ms, holds_count FROM conditions WHERE agent_id = $1 AND rule_id = $2")
            .bind(agent_id)
            .bind(rule_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Condition {
                    subject: r.try_get(0)?,
                    since_ms: r.try_get(1)?,
                    holds_count: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Records that a condition holds at `at_ms` (starting it if new); returns it updated.
    pub async fn condition_holds(
        &mut self,
        agent_id: &str,
        rule_id: &str,
        previous: Option<&Condition>,
        subject: &str,
        at_ms: i64,
    ) -> Result<Condition, StoreError> {
        let next = match previous {
            Some(c) => Condition {
                subject: subject.to_owned(),
                since_ms: c.since_ms,
                holds_count: c.holds_count + 1,
            },
            None => Condition {
                subject: subject.to_owned(),
                since_ms: at_ms,
                holds_count: 1,
            },
        };
        sqlx::query(
            "INSERT INTO conditions (agent_id, rule_id, subject, since_ms, last_seen_ms, holds_count) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id, rule_id, subject) DO UPDATE SET \
             last_seen_ms = excluded.last_seen_ms, holds_count = excluded.holds_count",
        )
        .bind(agent_id)
        .bind(rule_id)
        .bind(subject)
        .bind(next.since_ms)
        .bind(at_ms)
        .bind(next.holds_count)
        .execute(&mut *self.tx)
        .await?;
        Ok(next)
    }

    /// Forgets a condition (it cleared, or its subject is gone).
    pub async fn condition_clears(
        &mut self,
        agent_id: &str,
        rule_id: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM conditions WHERE agent_id = $1 AND rule_id = $2 AND subject = $3")
            .bind(agent_id)
            .bind(rule_id)
            .bind(subject)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

/// A tracked condition of a host, with its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedCondition {
    pub agent_id: String,
    pub rule_id: String,
    pub condition: Condition,
}

impl Store {
    /// The conditions tracked for one agent (or, with `agent_id` empty, every agent), by
    /// agent, rule and subject.
    pub async fn tracked_conditions(
        &self,
        agent_id: &str,
    ) -> Result<Vec<TrackedCondition>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule_id, subject, since_ms, holds_count, agent_id FROM conditions \
             WHERE ($1 = '' OR agent_id = $1) ORDER BY agent_id, rule_id, subject LIMIT 100000",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TrackedCondition {
                    agent_id: r.try_get(4)?,
                    rule_id: r.try_get(0)?,
                    condition: Condition {
                        subject: r.try_get(1)?,
                        since_ms: r.try_get(2)?,
                        holds_count: r.try_get(3)?,
                    },
                })
            })
            .collect()
    }
}
