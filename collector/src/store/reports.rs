//! Snapshots as received (keyed by agent and sequence, which makes ingest idempotent), each
//! host's latest facts, and the read side the admin API lists.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError, WriteTx, to_i64, to_u64};
use crate::facts::{Filesystem, ProbeFacts, Snapshot};

/// A host as the admin API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub agent_id: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub machine_id: String,
    pub enrolled_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub spool_epoch: u64,
    pub last_seq: u64,
    pub snapshots_stored: u64,
    pub dropped_snapshots: u64,
    pub rejected_snapshots: u64,
    pub clock_adjusted_snapshots: u64,
    pub clock_skew_ms: i64,
    pub revoked: bool,
    pub labels: Vec<String>,
    /// Other agents that reported the same OS machine id.
    pub same_machine_as: Vec<String>,
    /// When a snapshot last showed a second machine using this identity, and what it showed.
    pub identity_conflict_at_ms: Option<i64>,
    pub identity_conflict: String,
    pub filesystems: Vec<FilesystemRow>,
    /// The latest facts of each probe.
    pub facts: ProbeFacts,
}

/// A filesystem's latest facts.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesystemRow {
    pub fs: Filesystem,
    pub updated_at_ms: i64,
}

/// Where an agent's numbering stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sequence {
    pub epoch: u64,
    pub last_seq: u64,
}

/// How long an agent counts as shared by two machines after the last divergence
/// (`ingest::instance`).
pub const DIVERGED_FOR_MS: i64 = 24 * 3600 * 1000;

/// The machine and boot a snapshot came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub machine_id: String,
    pub boot_id: String,
}

/// The most boots remembered as second machines of one agent.
pub const MAX_MARKED_BOOTS: usize = 16;

/// The agent's instance as stored, with the boots found diverging (newest first) and when the
/// last one did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentInstance {
    pub current: Instance,
    pub diverged_boot_ids: Vec<String>,
    pub diverged_at_ms: Option<i64>,
}

impl AgentInstance {
    /// The boots still marked as second machines at `now_ms` (none once the last divergence
    /// is [`DIVERGED_FOR_MS`] old).
    pub fn marked_boots(&self, now_ms: i64) -> &[String] {
        match self.diverged_at_ms {
            Some(at) if now_ms.saturating_sub(at) < DIVERGED_FOR_MS => &self.diverged_boot_ids,
            _ => &[],
        }
    }

    /// Marks `boot_id` as a second machine at `now_ms`.
    pub fn mark(&mut self, boot_id: &str, now_ms: i64) {
        if self.marked_boots(now_ms).is_empty() {
            self.diverged_boot_ids.clear();
        }
        self.diverged_boot_ids.retain(|b| b != boot_id);
        self.diverged_boot_ids.insert(0, boot_id.to_owned());
        self.diverged_boot_ids.truncate(MAX_MARKED_BOOTS);
        self.diverged_at_ms = Some(now_ms);
    }
}

/// Counters are kept below this, so adding to them can never overflow a column.
const COUNTER_CAP: i64 = 1 << 62;

impl WriteTx {
    /// Stores a snapshot unless this agent already sent it (same epoch and sequence number).
    /// Returns whether it was new.
    pub async fn insert_snapshot(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
        received_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO snapshots (agent_id, epoch, seq, taken_at_ms, received_at_ms, trigger_kind, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agent_id, epoch, seq) DO NOTHING",
        )
        .bind(agent_id)
        .bind(to_i64(snapshot.epoch, "epoch")?)
        .bind(to_i64(snapshot.seq, "seq")?)
        .bind(snapshot.taken_at_ms)
        .bind(received_at_ms)
        .bind(snapshot.trigger.as_str())
        .bind(snapshot.payload.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The agent's current spool epoch and the highest sequence number stored in it.
    pub async fn sequence(
        &mut self,
        agent_id: &str,
    ) -> Result<(Sequence, AgentInstance), StoreError> {
        type Row = (i64, i64, String, String, String, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT spool_epoch, last_seq, instance_machine_id, instance_boot_id, \
             diverged_boot_id, diverged_at_ms FROM agents WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let (epoch, last_seq, machine_id, boot_id, diverged_boot_ids, diverged_at_ms) =
            row.unwrap_or_default();
        // Boot ids hold no control characters (`report.rs`), so a newline separates them.
        let diverged_boot_ids = diverged_boot_ids
            .split('\n')
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect();
        Ok((
            Sequence {
                epoch: to_u64(epoch, "spool_epoch")?,
                last_seq: to_u64(last_seq, "last_seq")?,
            },
            AgentInstance {
                current: Instance {
                    machine_id,
                    boot_id,
                },
                diverged_boot_ids,
                diverged_at_ms,
            },
        ))
    }

    /// Records the machine and boot of the agent's newest snapshot.
    pub async fn set_instance(
        &mut self,
        agent_id: &str,
        instance: &Instance,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE agents SET instance_machine_id = $1, instance_boot_id = $2 WHERE agent_id = $3",
        )
        .bind(&instance.machine_id)
        .bind(&instance.boot_id)
        .bind(agent_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records the boots seen as second machines using this agent's identity, and what the
    /// last divergence showed.
    pub async fn record_divergence(
        &mut self,
        agent_id: &str,
        marks: &AgentInstance,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE agents SET diverged_at_ms = $1, diverged_boot_id = $2, diverged_detail = $3 \
             WHERE agent_id = $4",
        )
        .bind(marks.diverged_at_ms)
        .bind(marks.diverged_boot_ids.join("\n"))
        .bind(detail)
        .bind(agent_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The agent's host name as stored.
    pub async fn agent_hostname(&mut self, agent_id: &str) -> Result<String, StoreError> {
        let name: Option<String> =
            sqlx::query_scalar("SELECT hostname FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(name.unwrap_or_default())
    }

    /// The payload stored under (agent, epoch, seq), if any.
    pub async fn stored_payload(
        &mut self,
        agent_id: &str,
        epoch: u64,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let payload: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM snapshots WHERE agent_id = $1 AND epoch = $2 AND seq = $3",
        )
        .bind(agent_id)
        .bind(to_i64(epoch, "epoch")?)
        .bind(to_i64(seq, "seq")?)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(payload)
    }

    /// Whether any snapshot of this agent was stored under `epoch` (then it is not new).
    pub async fn epoch_seen(&mut self, agent_id: &str, epoch: u64) -> Result<bool, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM snapshots WHERE agent_id = $1 AND epoch = $2 LIMIT 1",
        )
        .bind(agent_id)
        .bind(to_i64(epoch, "epoch")?)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(n.is_some())
    }

    /// Counts a newly stored snapshot on its host and, when it is the newest one, takes its
    /// descriptive facts and its filesystems as the host's current state. Facts and
    /// filesystems that did not change are not written again (only their time moves).
    pub async fn apply_snapshot(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
        newest: bool,
        received_at_ms: i64,
    ) -> Result<(), StoreError> {
        let counters = "snapshots_stored = snapshots_stored + 1, \
             dropped_snapshots = CASE WHEN dropped_snapshots > $5 - $2 THEN $5 ELSE dropped_snapshots + $2 END, \
             rejected_snapshots = CASE WHEN rejected_snapshots > $5 - $3 THEN $5 ELSE rejected_snapshots + $3 END, \
             clock_adjusted_snapshots = clock_adjusted_snapshots + $6, \
             last_seen_at_ms = CASE WHEN last_seen_at_ms > $4 THEN last_seen_at_ms ELSE $4 END";
        let sql = if newest {
            format!(
                "UPDATE agents SET {counters}, spool_epoch = $7, last_seq = $8, hostname = $9, os = $10, \
                 agent_version = $11, machine_id = CASE WHEN $12 = '' THEN machine_id ELSE $12 END \
                 WHERE agent_id = $1"
            )
        } else {
            format!("UPDATE agents SET {counters} WHERE agent_id = $1")
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agent_id)
            .bind(to_i64(snapshot.dropped_snapshots, "dropped_snapshots")?)
            .bind(to_i64(snapshot.rejected_snapshots, "rejected_snapshots")?)
            .bind(received_at_ms)
            .bind(COUNTER_CAP)
            .bind(i64::from(snapshot.clock_adjusted));
        if newest {
            let machine_id = snapshot
                .facts
                .system
                .as_ref()
                .map(|s| s.machine_id.clone())
                .unwrap_or_default();
            query = query
                .bind(to_i64(snapshot.epoch, "epoch")?)
                .bind(to_i64(snapshot.seq, "seq")?)
                .bind(snapshot.hostname.clone())
                .bind(snapshot.os.clone())
                .bind(snapshot.agent_version.clone())
                .bind(machine_id);
        }
        query.execute(&mut *self.tx).await?;
        if !newest {
            return Ok(());
        }
        let previous: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM host_facts WHERE agent_id = $1 AND kind = 'facts'",
        )
        .bind(agent_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let previous = previous
            .map(|bytes| decode_facts(agent_id, &bytes))
            .transpose()?;
        let merged = snapshot.facts.merged_over(previous.clone(), snapshot.at_ms);
        if previous.as_ref() != Some(&merged) {
            let encoded = serde_json::to_vec(&merged)
                .map_err(|e| StoreError::corrupt("host facts", agent_id, e))?;
            sqlx::query(
                "INSERT INTO host_facts (agent_id, kind, payload, updated_at_ms) VALUES ($1, 'facts', $2, $3) \
                 ON CONFLICT (agent_id, kind) DO UPDATE SET payload = excluded.payload, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(agent_id)
            .bind(encoded)
            .bind(snapshot.at_ms)
            .execute(&mut *self.tx)
            .await?;
        }
        self.replace_filesystems(agent_id, snapshot).await
    }

    /// Records the agent's clock skew, measured on a report that said when it was sent.
    pub async fn set_clock_skew(&mut self, agent_id: &str, skew_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET clock_skew_ms = $2 WHERE agent_id = $1")
            .bind(agent_id)
            .bind(skew_ms)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Makes the snapshot's filesystems the host's current ones: when they are the ones
    /// stored, only their time moves; otherwise the rows are replaced.
    async fn replace_filesystems(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT mount_point, device, fs_type, total_bytes, used_bytes, available_bytes, \
             total_inodes, used_inodes FROM filesystems WHERE agent_id = $1 ORDER BY mount_point",
        )
        .bind(agent_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut stored = rows
            .iter()
            .map(|r| {
                Ok(Filesystem {
                    mount_point: r.try_get(0)?,
                    device: r.try_get(1)?,
                    fs_type: r.try_get(2)?,
                    total_bytes: to_u64(r.try_get(3)?, "total_bytes")?,
                    used_bytes: to_u64(r.try_get(4)?, "used_bytes")?,
                    available_bytes: to_u64(r.try_get(5)?, "available_bytes")?,
                    total_inodes: to_u64(r.try_get(6)?, "total_inodes")?,
                    used_inodes: to_u64(r.try_get(7)?, "used_inodes")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut incoming = snapshot.filesystems.clone();
        incoming.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        stored.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        if stored == incoming {
            sqlx::query("UPDATE filesystems SET updated_at_ms = $2 WHERE agent_id = $1")
                .bind(agent_id)
                .bind(snapshot.at_ms)
                .execute(&mut *self.tx)
                .await?;
            return Ok(());
        }
        sqlx::query("DELETE FROM filesystems WHERE agent_id = $1")
            .bind(agent_id)
            .execute(&mut *self.tx)
            .await?;
        for fs in &snapshot.filesystems {
            sqlx::query(
                "INSERT INTO filesystems (agent_id, mount_point, device, fs_type, total_bytes, \
                 used_bytes, available_bytes, total_inodes, used_inodes, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(agent_id)
            .bind(&fs.mount_point)
            .bind(&fs.device)
            .bind(&fs.fs_type)
            .bind(to_i64(fs.total_bytes, "total_bytes")?)
            .bind(to_i64(fs.used_bytes, "used_bytes")?)
            .bind(to_i64(fs.available_bytes, "available_bytes")?)
            .bind(to_i64(fs.total_inodes, "total_inodes")?)
            .bind(to_i64(fs.used_inodes, "used_inodes")?)
            .bind(snapshot.at_ms)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}

/// Stored host facts; a row that cannot be read is an error naming the host.
fn decode_facts(agent_id: &str, bytes: &[u8]) -> Result<ProbeFacts, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt("host facts", agent_id, e))
}

impl Store {
    /// Every enrolled host with its current filesystems, by host name.
    pub async fn list_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        self.hosts_where("").await
    }

    /// One host by agent id.
    pub async fn host(&self, agent_id: &str) -> Result<Option<HostRow>, StoreError> {
        let mut hosts = self.hosts_where(agent_id).await?;
        Ok(hosts.pop())
    }

    /// Agent ids whose agent id is `name` or whose host name is `name` (any case).
    pub async fn find_hosts(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT agent_id FROM agents WHERE agent_id <> 'fleet' \
             AND (agent_id = $1 OR LOWER(hostname) = LOWER($1)) ORDER BY agent_id LIMIT 100",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// Hosts, all (`agent_id` empty) or one.
    async fn hosts_where(&self, agent_id: &str) -> Result<Vec<HostRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.agent_id, a.hostname, a.os, a.agent_version, a.enrolled_at_ms, \
             a.last_seen_at_ms, a.last_seq, a.snapshots_stored, a.dropped_snapshots, \
             (SELECT COUNT(*) FROM certificates c WHERE c.subject = a.agent_id \
                AND c.revoked_at_ms IS NULL), \
             a.labels, a.machine_id, a.spool_epoch, a.rejected_snapshots, a.clock_adjusted_snapshots, \
             a.clock_skew_ms, a.diverged_at_ms, a.diverged_detail \
             FROM agents a WHERE a.agent_id <> 'fleet' AND ($1 = '' OR a.agent_id = $1) \
             ORDER BY a.hostname, a.agent_id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        let mut hosts = Vec::with_capacity(rows.len());
        let mut index = HashMap::with_capacity(rows.len());
        for r in rows {
            let valid_certs: i64 = r.try_get(9)?;
            let labels: String = r.try_get(10)?;
            let id: String = r.try_get(0)?;
            index.insert(id.clone(), hosts.len());
            hosts.push(HostRow {
                agent_id: id,
                hostname: r.try_get(1)?,
                os: r.try_get(2)?,
                agent_version: r.try_get(3)?,
                machine_id: r.try_get(11)?,
                enrolled_at_ms: r.try_get(4)?,
                last_seen_at_ms: r.try_get(5)?,
                spool_epoch: to_u64(r.try_get(12)?, "spool_epoch")?,
                last_seq: to_u64(r.try_get(6)?, "last_seq")?,
                snapshots_stored: to_u64(r.try_get(7)?, "snapshots_stored")?,
                dropped_snapshots: to_u64(r.try_get(8)?, "dropped_snapshots")?,
                rejected_snapshots: to_u64(r.try_get(13)?, "rejected_snapshots")?,
                clock_adjusted_snapshots: to_u64(r.try_get(14)?, "clock_adjusted_snapshots")?,
                clock_skew_ms: r.try_get(15)?,
                revoked: valid_certs == 0,
                labels: split_labels(&labels),
                same_machine_as: Vec::new(),
                identity_conflict_at_ms: r.try_get(16)?,
                identity_conflict: r.try_get(17)?,
                filesystems: Vec::new(),
                facts: ProbeFacts::default(),
            });
        }
        let fs_rows = sqlx::query(
            "SELECT agent_id, mount_point, device, fs_type, total_bytes, used_bytes, \
             available_bytes, total_inodes, used_inodes, updated_at_ms \
             FROM filesystems WHERE ($1 = '' OR agent_id = $1) ORDER BY agent_id, mount_point",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        for r in fs_rows {
            let id: String = r.try_get(0)?;
            let row = FilesystemRow {
                fs: Filesystem {
                    mount_point: r.try_get(1)?,
                    device: r.try_get(2)?,
                    fs_type: r.try_get(3)?,
                    total_bytes: to_u64(r.try_get(4)?, "total_bytes")?,
                    used_bytes: to_u64(r.try_get(5)?, "used_bytes")?,
                    available_bytes: to_u64(r.try_get(6)?, "available_bytes")?,
                    total_inodes: to_u64(r.try_get(7)?, "total_inodes")?,
                    used_inodes: to_u64(r.try_get(8)?, "used_inodes")?,
                },
                updated_at_ms: r.try_get(9)?,
            };
            if let Some(&i) = index.get(&id) {
                hosts[i].filesystems.push(row);
            }
        }
        let facts: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT agent_id, payload FROM host_facts WHERE kind = 'facts' AND ($1 = '' OR agent_id = $1)",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        for (id, payload) in facts {
            if let Some(&i) = index.get(&id) {
                hosts[i].facts = decode_facts(&id, &payload)?;
            }
        }
        let mut by_machine: HashMap<&str, Vec<&str>> = HashMap::new();
        for h in hosts.iter().filter(|h| !h.machine_id.is_empty()) {
            by_machine
                .entry(&h.machine_id)
                .or_default()
                .push(&h.agent_id);
        }
        let twins: Vec<Vec<String>> = hosts
            .iter()
            .map(|h| match by_machine.get(h.machine_id.as_str()) {
                Some(ids) if !h.machine_id.is_empty() => ids
                    .iter()
                    .filter(|id| **id != h.agent_id)
                    .map(|id| (*id).to_owned())
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        for (h, t) in hosts.iter_mut().zip(twins) {
            h.same_machine_as = t;
        }
        if !agent_id.is_empty()
            && let Some(h) = hosts.first_mut()
            && !h.machine_id.is_empty()
        {
            h.same_machine_as = self.same_machine(&h.machine_id, &h.agent_id).await?;
        }
        Ok(hosts)
    }

    /// Other agents that reported `machine_id`.
    pub async fn same_machine(
        &self,
        machine_id: &str,
        except: &str,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT agent_id FROM agents WHERE machine_id = $1 AND agent_id <> $2 AND machine_id <> '' \
             ORDER BY agent_id LIMIT 100",
        )
        .bind(machine_id)
        .bind(except)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// One stored snapshot as received (protobuf-encoded), for inspection and replay.
    pub async fn snapshot_payload(
        &self,
        agent_id: &str,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let payload: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM snapshots WHERE agent_id = $1 AND seq = $2 ORDER BY epoch DESC LIMIT 1")
                .bind(agent_id)
                .bind(to_i64(seq, "seq")?)
                .fetch_optional(&self.pool)
                .await?;
        Ok(payload)
    }

    /// The sequence numbers stored for one agent, ascending (all epochs).
    pub async fn stored_seqs(&self, agent_id: &str) -> Result<Vec<u64>, StoreError> {
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM snapshots WHERE agent_id = $1 ORDER BY epoch, seq")
                .bind(agent_id)
                .fetch_all(&self.pool)
                .await?;
        seqs.into_iter().map(|s| to_u64(s, "seq")).collect()
    }
}

/// Disk samples are recorded at most one per this interval per mount; retention thins and
/// ages them (`store::retention`, `crate::retention`).
const SAMPLE_EVERY_MS: i64 = 10 * 60_000;

/// One recorded disk sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSample {
    pub at_ms: i64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

impl WriteTx {
    /// Records the snapshot's disk usage as samples (at most one per mount per ten minutes);
    /// returns whether it did. Old samples are retention's to thin and delete. When this
    /// collector recorded the agent's last sample less than the interval ago it knows without
    /// asking the store (a hint only: another replica's samples can only make it ask).
    pub async fn record_disk_samples(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
    ) -> Result<bool, StoreError> {
        if !self.sample_may_be_due(agent_id, snapshot.at_ms) {
            return Ok(false);
        }
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(at_ms) FROM disk_samples WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_one(&mut *self.tx)
                .await?;
        if let Some(l) = latest
            && snapshot.at_ms - l < SAMPLE_EVERY_MS
        {
            self.hints.sampled(agent_id, l);
            return Ok(false);
        }
        for fs in &snapshot.filesystems {
            sqlx::query(
                "INSERT INTO disk_samples (agent_id, mount_point, at_ms, used_bytes, available_bytes) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id, mount_point, at_ms) DO NOTHING",
            )
            .bind(agent_id)
            .bind(&fs.mount_point)
            .bind(snapshot.at_ms)
            .bind(to_i64(fs.used_bytes, "used_bytes")?)
            .bind(to_i64(fs.available_bytes, "available_bytes")?)
            .execute(&mut *self.tx)
            .await?;
        }
        self.hints.sampled(agent_id, snapshot.at_ms);
        Ok(true)
    }

    /// Whether a snapshot of `agent_id` at `at_ms` would add a disk sample, or this collector
    /// cannot tell without asking the store.
    pub fn sample_may_be_due(&self, agent_id: &str, at_ms: i64) -> bool {
        sample_may_be_due(&self.hints, agent_id, at_ms)
    }

    /// Samples of one mount since `since_ms`, oldest first.
    pub async fn disk_samples(
        &mut self,
        agent_id: &str,
        mount: &str,
        since_ms: i64,
    ) -> Result<Vec<DiskSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, used_bytes, available_bytes FROM disk_samples \
             WHERE agent_id = $1 AND mount_point = $2 AND at_ms >= $3 ORDER BY at_ms",
        )
        .bind(agent_id)
        .bind(mount)
        .bind(since_ms)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DiskSample {
                    at_ms: r.try_get(0)?,
                    used_bytes: to_u64(r.try_get(1)?, "used_bytes")?,
                    available_bytes: to_u64(r.try_get(2)?, "available_bytes")?,
                })
            })
            .collect()
    }
}

/// Whether the hints leave a disk sample of `agent_id` at `at_ms` possibly due.
pub(super) fn sample_may_be_due(hints: &super::hints::Hints, agent_id: &str, at_ms: i64) -> bool {
    !hints
        .last_sample(agent_id)
        .is_some_and(|l| (0..SAMPLE_EVERY_MS).contains(&(at_ms - l)))
}

/// Labels as stored (comma-separated).
pub(crate) fn split_labels(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
