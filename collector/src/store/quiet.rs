//! The statements of ingest's quiet path (`crate::ingest::quiet`): the reports of a group that
//! change nothing the rules keep are stored together, a hundred per statement: one
//! compare-and-set on the agents' rows (epoch, last sequence number and ticket-state version
//! as the writer last saw them) that returns the rows it moved, then the snapshot rows, the
//! hosts' current facts and their filesystems for those.

use std::collections::HashSet;
use std::fmt::Write as _;

use sqlx::Row;

use super::{StoreError, WriteTx, to_i64};
use crate::facts::Snapshot;

/// One quiet report of a group, for the batched statements.
#[derive(Debug, Clone, Copy)]
pub struct QuietRow<'a> {
    pub agent_id: &'a str,
    pub seen: AgentVersion,
    pub snapshot: &'a Snapshot,
    pub received_at_ms: i64,
    pub clock_skew_ms: Option<i64>,
    /// The facts to store, when they changed since the stored ones.
    pub facts: Option<&'a [u8]>,
    /// Open tickets of the agent whose condition holds again.
    pub recurring: &'a [Recurring],
}

/// A tracked condition that held again, and one more occurrence of its open ticket if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurring {
    pub ticket_id: Option<i64>,
    pub rule_id: String,
    pub subject: String,
    pub value: f64,
    pub title: String,
}

/// Reports per batched statement. Binding costs grow with the square of a statement's
/// parameter count in SQLite (each bind looks its name up in a list), so statements stay at a
/// few hundred parameters: far below both engines' limits, and past the point where fewer
/// round trips still pay.
const ROWS_PER_STATEMENT: usize = 25;
/// Filesystem rows per statement (ten parameters each).
const FILESYSTEMS_PER_STATEMENT: usize = 40;

/// What the writer last saw of an agent's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentVersion {
    pub epoch: u64,
    pub last_seq: u64,
    pub state_version: i64,
}

/// Counters cap, as in `reports`.
pub(super) const COUNTER_CAP: i64 = 1 << 62;

impl super::Store {
    /// Stores quiet reports in a transaction of their own on SQLite's quiet lane
    /// (`store::quiet_lane`), when this store has one; `None` when it has not (PostgreSQL, an
    /// in-memory SQLite database): then [`WriteTx::store_quiet`] does it in the group's
    /// transaction. Returns the agents advanced.
    pub async fn store_quiet_apart(
        &self,
        rows: &[QuietRow<'_>],
    ) -> Option<Result<HashSet<String>, StoreError>> {
        let lane = self.quiet_lane.as_ref()?;
        Some(lane.store(rows).await)
    }

    /// Whether a snapshot of `agent_id` at `at_ms` would add a disk sample, or this collector
    /// cannot tell without asking the store (as [`WriteTx::sample_may_be_due`]).
    pub fn sample_may_be_due(&self, agent_id: &str, at_ms: i64) -> bool {
        super::reports::sample_may_be_due(&self.hints, agent_id, at_ms)
    }
}

impl WriteTx {
    /// The agent's row version, read after the full path has run on its report.
    pub async fn agent_version(
        &mut self,
        agent_id: &str,
    ) -> Result<Option<AgentVersion>, StoreError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT spool_epoch, last_seq, state_version FROM agents WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some((epoch, last_seq, state_version)) = row else {
            return Ok(None);
        };
        Ok(Some(AgentVersion {
            epoch: super::to_u64(epoch, "spool_epoch")?,
            last_seq: super::to_u64(last_seq, "last_seq")?,
            state_version,
        }))
    }

    /// The batched form of the quiet path for many agents at once: advances every agent row
    /// still at its `seen` version and stores the snapshot, facts and filesystems of those,
    /// in a handful of statements per 25 reports. Returns the agents advanced; the
    /// others changed elsewhere and nothing of theirs was written.
    pub async fn store_quiet(
        &mut self,
        rows: &[QuietRow<'_>],
    ) -> Result<HashSet<String>, StoreError> {
        let mut advanced = HashSet::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            advanced.extend(self.advance_agents(chunk).await?);
        }
        let done: Vec<&QuietRow<'_>> = rows
            .iter()
            .filter(|r| advanced.contains(r.agent_id))
            .collect();
        for chunk in done.chunks(ROWS_PER_STATEMENT) {
            self.insert_snapshots(chunk).await?;
            self.put_facts(chunk).await?;
            self.put_filesystems(chunk).await?;
        }
        let recurring: Vec<(&str, i64, &Recurring)> = done
            .iter()
            .flat_map(|r| {
                r.recurring
                    .iter()
                    .map(move |c| (r.agent_id, r.snapshot.at_ms, c))
            })
            .collect();
        let on_tickets: Vec<(&str, i64, &Recurring)> = recurring
            .iter()
            .filter(|(_, _, r)| r.ticket_id.is_some())
            .copied()
            .collect();
        for chunk in on_tickets.chunks(ROWS_PER_STATEMENT) {
            self.recur_tickets(chunk).await?;
        }
        for chunk in recurring.chunks(ROWS_PER_STATEMENT) {
            self.recur_conditions(chunk).await?;
        }
        Ok(advanced)
    }

    async fn advance_agents(&mut self, rows: &[QuietRow<'_>]) -> Result<Vec<String>, StoreError> {
        let values = values_list(
            rows.len(),
            &[
                "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT",
                "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT",
            ],
        );
        // VALUES columns are column1.. in both engines: 1 agent, 2 dropped, 3 rejected,
        // 4 received, 5 clock adjusted, 6 seq, 7 hostname, 8 os, 9 version, 10 machine id,
        // 11 has skew, 12 skew, 13 seen epoch, 14 seen seq, 15 seen state version.
        let sql = format!(
            "UPDATE agents SET snapshots_stored = snapshots_stored + 1, \
             dropped_snapshots = CASE WHEN dropped_snapshots > {COUNTER_CAP} - v.column2 \
               THEN {COUNTER_CAP} ELSE dropped_snapshots + v.column2 END, \
             rejected_snapshots = CASE WHEN rejected_snapshots > {COUNTER_CAP} - v.column3 \
               THEN {COUNTER_CAP} ELSE rejected_snapshots + v.column3 END, \
             clock_adjusted_snapshots = clock_adjusted_snapshots + v.column5, \
             last_seen_at_ms = CASE WHEN last_seen_at_ms > v.column4 THEN last_seen_at_ms ELSE v.column4 END, \
             last_seq = v.column6, hostname = v.column7, os = v.column8, agent_version = v.column9, \
             machine_id = CASE WHEN v.column10 = '' THEN machine_id ELSE v.column10 END, \
             clock_skew_ms = CASE WHEN v.column11 = 1 THEN v.column12 ELSE clock_skew_ms END \
             FROM (VALUES {values}) AS v \
             WHERE agents.agent_id = v.column1 AND agents.spool_epoch = v.column13 \
             AND agents.last_seq = v.column14 AND agents.state_version = v.column15 \
             RETURNING agents.agent_id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in rows {
            let s = r.snapshot;
            let machine_id = s
                .facts
                .system
                .as_ref()
                .map(|f| f.machine_id.clone())
                .unwrap_or_default();
            query = query
                .bind(r.agent_id.to_owned())
                .bind(to_i64(s.dropped_snapshots, "dropped_snapshots")?)
                .bind(to_i64(s.rejected_snapshots, "rejected_snapshots")?)
                .bind(r.received_at_ms)
                .bind(i64::from(s.clock_adjusted))
                .bind(to_i64(s.seq, "seq")?)
                .bind(s.hostname.clone())
                .bind(s.os.clone())
                .bind(s.agent_version.clone())
                .bind(machine_id)
                .bind(i64::from(r.clock_skew_ms.is_some()))
                .bind(r.clock_skew_ms.unwrap_or(0))
                .bind(to_i64(r.seen.epoch, "epoch")?)
                .bind(to_i64(r.seen.last_seq, "seq")?)
                .bind(r.seen.state_version);
        }
        let returned = query.fetch_all(&mut *self.tx).await?;
        returned
            .iter()
            .map(|row| Ok(row.try_get::<String, _>(0)?))
            .collect()
    }

    async fn insert_snapshots(&mut self, rows: &[&QuietRow<'_>]) -> Result<(), StoreError> {
        let mut sql = String::from(
            "INSERT INTO snapshots (agent_id, epoch, seq, taken_at_ms, received_at_ms, trigger_kind, payload) VALUES ",
        );
        sql.push_str(&values_list(rows.len(), &[""; 7]));
        sql.push_str(" ON CONFLICT (agent_id, epoch, seq) DO NOTHING");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in rows {
            let s = r.snapshot;
            query = query
                .bind(r.agent_id.to_owned())
                .bind(to_i64(s.epoch, "epoch")?)
                .bind(to_i64(s.seq, "seq")?)
                .bind(s.taken_at_ms)
                .bind(r.received_at_ms)
                .bind(s.trigger.as_str())
                .bind(s.payload.clone());
        }
        query.execute(&mut *self.tx).await?;
        Ok(())
    }

    async fn put_facts(&mut self, rows: &[&QuietRow<'_>]) -> Result<(), StoreError> {
        let changed: Vec<(&str, &[u8], i64)> = rows
            .iter()
            .filter_map(|r| r.facts.map(|f| (r.agent_id, f, r.snapshot.at_ms)))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mut sql =
            String::from("INSERT INTO host_facts (agent_id, kind, payload, updated_at_ms) VALUES ");
        for i in 0..changed.len() {
            let b = i * 3;
            if i > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "(${}, 'facts', ${}, ${})", b + 1, b + 2, b + 3);
        }
        sql.push_str(
            " ON CONFLICT (agent_id, kind) DO UPDATE SET payload = excluded.payload, \
             updated_at_ms = excluded.updated_at_ms",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (agent_id, facts, at_ms) in changed {
            query = query
                .bind(agent_id.to_owned())
                .bind(facts.to_vec())
                .bind(at_ms);
        }
        query.execute(&mut *self.tx).await?;
        Ok(())
    }

    async fn put_filesystems(&mut self, rows: &[&QuietRow<'_>]) -> Result<(), StoreError> {
        let all: Vec<(&str, &crate::facts::Filesystem, i64)> = rows
            .iter()
            .flat_map(|r| {
                r.snapshot
                    .filesystems
                    .iter()
                    .map(move |f| (r.agent_id, f, r.snapshot.at_ms))
            })
            .collect();
        for chunk in all.chunks(FILESYSTEMS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO filesystems (agent_id, mount_point, device, fs_type, total_bytes, \
                 used_bytes, available_bytes, total_inodes, used_inodes, updated_at_ms) VALUES ",
            );
            sql.push_str(&values_list(chunk.len(), &[""; 10]));
            sql.push_str(
                " ON CONFLICT (agent_id, mount_point) DO UPDATE SET device = excluded.device, \
                 fs_type = excluded.fs_type, total_bytes = excluded.total_bytes, \
                 used_bytes = excluded.used_bytes, available_bytes = excluded.available_bytes, \
                 total_inodes = excluded.total_inodes, used_inodes = excluded.used_inodes, \
                 updated_at_ms = excluded.updated_at_ms",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (agent_id, fs, at_ms) in chunk {
                query = query
                    .bind((*agent_id).to_owned())
                    .bind(fs.mount_point.clone())
                    .bind(fs.device.clone())
                    .bind(fs.fs_type.clone())
                    .bind(to_i64(fs.total_bytes, "total_bytes")?)
                    .bind(to_i64(fs.used_bytes, "used_bytes")?)
                    .bind(to_i64(fs.available_bytes, "available_bytes")?)
                    .bind(to_i64(fs.total_inodes, "total_inodes")?)
                    .bind(to_i64(fs.used_inodes, "used_inodes")?)
                    .bind(*at_ms);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// One more occurrence of each ticket: as `bump_ticket` does, for many at once.
    async fn recur_tickets(&mut self, rows: &[(&str, i64, &Recurring)]) -> Result<(), StoreError> {
        let values = values_list(
            rows.len(),
            &["BIGINT", "BIGINT", "DOUBLE PRECISION", "TEXT"],
        );
        let sql = format!(
            "UPDATE tickets SET occurrences = occurrences + 1, last_seen_at_ms = v.column2, \
             last_value = v.column3, title = v.column4, clear_since_ms = NULL \
             FROM (VALUES {values}) AS v WHERE tickets.id = v.column1"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, at_ms, r) in rows {
            query = query
                .bind(r.ticket_id.unwrap_or_default())
                .bind(*at_ms)
                .bind(r.value)
                .bind(r.title.clone());
        }
        query.execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Each ticket's condition held once more: as `condition_holds` does, for many at once.
    async fn recur_conditions(
        &mut self,
        rows: &[(&str, i64, &Recurring)],
    ) -> Result<(), StoreError> {
        let values = values_list(rows.len(), &["TEXT", "TEXT", "TEXT", "BIGINT"]);
        let sql = format!(
            "UPDATE conditions SET holds_count = holds_count + 1, last_seen_ms = v.column4 \
             FROM (VALUES {values}) AS v WHERE conditions.agent_id = v.column1 \
             AND conditions.rule_id = v.column2 AND conditions.subject = v.column3"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (agent_id, at_ms, r) in rows {
            query = query
                .bind((*agent_id).to_owned())
                .bind(r.rule_id.clone())
                .bind(r.subject.clone())
                .bind(*at_ms);
        }
        query.execute(&mut *self.tx).await?;
        Ok(())
    }
}

/// The placeholders of `rows` rows of a VALUES list, `$1` onwards, one per type of `types`
/// (empty: the bare placeholder; else `CAST($n AS type)`, so PostgreSQL knows a parameter's
/// type where nothing else tells it).
fn values_list(rows: usize, types: &[&str]) -> String {
    let mut out = String::with_capacity(rows * types.len() * 12);
    let mut n = 0;
    for row in 0..rows {
        out.push_str(if row == 0 { "(" } else { ", (" });
        for (i, ty) in types.iter().enumerate() {
            n += 1;
            if i > 0 {
                out.push_str(", ");
            }
            if ty.is_empty() {
                let _ = write!(out, "${n}");
            } else {
                let _ = write!(out, "CAST(${n} AS {ty})");
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::values_list;

    #[test]
    fn values_lists_number_their_placeholders_across_rows() {
        assert_eq!(values_list(2, &["", ""]), "($1, $2), ($3, $4)");
        assert_eq!(
            values_list(1, &["TEXT", "BIGINT"]),
            "(CAST($1 AS TEXT), CAST($2 AS BIGINT))"
        );
    }
}
