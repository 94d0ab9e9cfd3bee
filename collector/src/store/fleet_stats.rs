//! The fleet in numbers, for the Prometheus gauges of `/metrics` (`crate::telemetry`): hosts
//! grouped by what decides their status, open tickets by priority and rule, the oldest
//! unacknowledged P1, and agents by version. Every query is an aggregate with a bounded
//! answer (a few rows per status flag, one row per priority and rule, at most
//! [`VERSION_ROWS`] versions), so a scrape costs the same on ten hosts or ten thousand rows
//! returned; the telemetry module caches the answer for a few seconds on top.

use sqlx::Row;

use super::outages::FLEET;
use super::{Store, StoreError};

/// Most agent versions read one by one; the agents of every other version are counted
/// together (`FleetStats::agents_total` minus the rows read).
pub const VERSION_ROWS: i64 = 20;

/// Agents sharing the three facts a host's status is decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostGroup {
    /// No certificate of the agent is valid any more.
    pub revoked: bool,
    /// The agent has reported at least once.
    pub reported: bool,
    /// An "agent silent" ticket is open on the agent (the sweep decided it is silent).
    pub silent_ticket: bool,
    pub hosts: i64,
}

/// Tickets in the queue (new or acknowledged) of one priority and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTickets {
    pub priority: i64,
    pub rule_id: String,
    pub tickets: i64,
}

/// The fleet in numbers at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetStats {
    pub hosts: Vec<HostGroup>,
    pub open_tickets: Vec<OpenTickets>,
    /// When the oldest P1 ticket still waiting for an acknowledgement (re)opened.
    pub oldest_unacknowledged_p1_ms: Option<i64>,
    /// The most common agent versions as the agents reported them (raw, unchecked text; empty
    /// when an agent never said), most agents first, at most [`VERSION_ROWS`].
    pub versions: Vec<(String, i64)>,
    /// Every enrolled agent (the pseudo host of outages left out).
    pub agents_total: i64,
}

fn flag(row: &sqlx::any::AnyRow, i: usize) -> Result<bool, StoreError> {
    let v: i64 = row.try_get(i)?;
    Ok(v != 0)
}

impl Store {
    /// The fleet in numbers; `silent_rule` is the rule id of the sweep's "agent silent"
    /// tickets.
    pub async fn fleet_stats(&self, silent_rule: &str) -> Result<FleetStats, StoreError> {
        let hosts = sqlx::query(
            "SELECT revoked, reported, silent, COUNT(*) FROM ( \
               SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM certificates c \
                   WHERE c.subject = a.agent_id AND c.revoked_at_ms IS NULL) \
                   THEN 0 ELSE 1 END AS BIGINT) AS revoked, \
                 CAST(CASE WHEN a.last_seen_at_ms > 0 THEN 1 ELSE 0 END AS BIGINT) AS reported, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM tickets t WHERE t.agent_id = a.agent_id \
                   AND t.rule_id = $1 AND t.state IN ('new', 'acknowledged')) \
                   THEN 1 ELSE 0 END AS BIGINT) AS silent \
               FROM agents a WHERE a.agent_id <> $2) s \
             GROUP BY revoked, reported, silent",
        )
        .bind(silent_rule)
        .bind(FLEET)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(HostGroup {
                revoked: flag(r, 0)?,
                reported: flag(r, 1)?,
                silent_ticket: flag(r, 2)?,
                hosts: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let open_tickets = sqlx::query(
            "SELECT priority, rule_id, COUNT(*) FROM tickets \
             WHERE state IN ('new', 'acknowledged') GROUP BY priority, rule_id \
             ORDER BY priority, rule_id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(OpenTickets {
                priority: r.try_get(0)?,
                rule_id: r.try_get(1)?,
                tickets: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let oldest_unacknowledged_p1_ms: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(last_opened_at_ms) FROM tickets WHERE state = 'new' AND priority = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let versions: Vec<(String, i64)> = sqlx::query_as(
            "SELECT agent_version, COUNT(*) FROM agents WHERE agent_id <> $1 \
             GROUP BY agent_version ORDER BY COUNT(*) DESC, agent_version LIMIT $2",
        )
        .bind(FLEET)
        .bind(VERSION_ROWS)
        .fetch_all(&self.pool)
        .await?;
        let agents_total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE agent_id <> $1")
                .bind(FLEET)
                .fetch_one(&self.pool)
                .await?;
        Ok(FleetStats {
            hosts,
            open_tickets,
            oldest_unacknowledged_p1_ms,
            versions,
            agents_total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewTicket;

    use crate::test_fixtures::T0;

    async fn store_with_agents(dir: &std::path::Path, agents: usize) -> Store {
        crate::test_fixtures::store_with_agents(dir, "f.db", agents).await
    }

    async fn open(store: &Store, agent_id: &str, rule_id: &str, priority: u32, at_ms: i64) {
        let mut tx = store.begin_write().await.expect("tx");
        tx.open_ticket(&NewTicket {
            agent_id,
            rule_id,
            subject: "/",
            priority,
            title: "t",
            at_ms,
            value: 0.0,
            response_due_ms: at_ms,
            resolve_due_ms: at_ms,
            kb: "",
        })
        .await
        .expect("open");
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn the_fleet_is_counted_by_status_flags_priority_rule_and_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_agents(dir.path(), 3).await;
        open(&store, "a0", "disk.usage", 1, T0 + 20).await;
        open(&store, "a1", "disk.usage", 1, T0 + 10).await;
        open(&store, "a1", "agent.silent", 3, T0 + 30).await;
        store.revoke_subject("a2", T0).await.expect("revoke");
        let stats = store.fleet_stats("agent.silent").await.expect("stats");
        let mut hosts = stats.hosts.clone();
        hosts.sort_by_key(|g| (g.revoked, g.silent_ticket));
        let flags: Vec<_> = hosts
            .iter()
            .map(|g| (g.revoked, g.reported, g.silent_ticket, g.hosts))
            .collect();
        assert_eq!(
            flags,
            vec![
                (false, false, false, 1),
                (false, false, true, 1),
                (true, false, false, 1)
            ]
        );
        assert_eq!(
            stats.open_tickets,
            vec![
                OpenTickets {
                    priority: 1,
                    rule_id: "disk.usage".into(),
                    tickets: 2
                },
                OpenTickets {
                    priority: 3,
                    rule_id: "agent.silent".into(),
                    tickets: 1
                },
            ]
        );
        assert_eq!(stats.oldest_unacknowledged_p1_ms, Some(T0 + 10));
        assert_eq!(stats.versions, vec![(String::new(), 3)]);
        assert_eq!(stats.agents_total, 3, "the outage pseudo host is left out");
    }
}
