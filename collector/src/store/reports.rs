//! Snapshots as received (keyed by agent and sequence, which makes ingest idempotent), each
//! host's latest facts, and the read side the admin API lists.

use sqlx::Row;

use super::{Store, StoreError, WriteTx, to_i64, to_u64};
use crate::report::{Filesystem, Snapshot};

/// A host as the admin API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub agent_id: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub enrolled_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub last_seq: u64,
    pub snapshots_stored: u64,
    pub dropped_snapshots: u64,
    pub revoked: bool,
    pub filesystems: Vec<FilesystemRow>,
    /// The latest probe facts, encoded (see `ProbeFacts::merged_over`); empty when none.
    pub facts: Vec<u8>,
}

/// A filesystem's latest facts.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesystemRow {
    pub fs: Filesystem,
    pub updated_at_ms: i64,
}

impl WriteTx {
    /// Stores a snapshot unless this agent already sent that sequence number. Returns whether
    /// it was new.
    pub async fn insert_snapshot(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
        received_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO snapshots (agent_id, seq, taken_at_ms, received_at_ms, trigger_kind, payload) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id, seq) DO NOTHING",
        )
        .bind(agent_id)
        .bind(to_i64(snapshot.seq, "seq")?)
        .bind(snapshot.taken_at_ms)
        .bind(received_at_ms)
        .bind(snapshot.trigger)
        .bind(snapshot.payload.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The highest sequence number stored for an agent so far.
    pub async fn last_seq(&mut self, agent_id: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        to_u64(seq.unwrap_or(0), "last_seq")
    }

    /// Counts a newly stored snapshot on its host and, when it is the newest one, takes its
    /// descriptive facts and its filesystems as the host's current state.
    pub async fn apply_snapshot(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
        newest: bool,
        received_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE agents SET snapshots_stored = snapshots_stored + 1, \
             dropped_snapshots = dropped_snapshots + $2, \
             last_seen_at_ms = CASE WHEN last_seen_at_ms > $3 THEN last_seen_at_ms ELSE $3 END \
             WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(to_i64(snapshot.dropped_snapshots, "dropped_snapshots")?)
        .bind(received_at_ms)
        .execute(&mut *self.tx)
        .await?;
        if !newest {
            return Ok(());
        }
        sqlx::query(
            "UPDATE agents SET last_seq = $2, hostname = $3, os = $4, agent_version = $5 \
             WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(to_i64(snapshot.seq, "seq")?)
        .bind(&snapshot.hostname)
        .bind(&snapshot.os)
        .bind(&snapshot.agent_version)
        .execute(&mut *self.tx)
        .await?;
        let previous: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM host_facts WHERE agent_id = $1 AND kind = 'facts'",
        )
        .bind(agent_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO host_facts (agent_id, kind, payload, updated_at_ms) VALUES ($1, 'facts', $2, $3) \
             ON CONFLICT (agent_id, kind) DO UPDATE SET payload = excluded.payload, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(agent_id)
        .bind(snapshot.facts.merged_over(previous.as_deref()))
        .bind(snapshot.taken_at_ms)
        .execute(&mut *self.tx)
        .await?;
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
            .bind(snapshot.taken_at_ms)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Every enrolled host with its current filesystems, by host name.
    pub async fn list_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.agent_id, a.hostname, a.os, a.agent_version, a.enrolled_at_ms, \
             a.last_seen_at_ms, a.last_seq, a.snapshots_stored, a.dropped_snapshots, \
             (SELECT COUNT(*) FROM certificates c WHERE c.subject = a.agent_id \
                AND c.revoked_at_ms IS NULL) \
             FROM agents a WHERE a.agent_id <> 'fleet' ORDER BY a.hostname, a.agent_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut hosts = Vec::with_capacity(rows.len());
        for r in rows {
            let valid_certs: i64 = r.try_get(9)?;
            hosts.push(HostRow {
                agent_id: r.try_get(0)?,
                hostname: r.try_get(1)?,
                os: r.try_get(2)?,
                agent_version: r.try_get(3)?,
                enrolled_at_ms: r.try_get(4)?,
                last_seen_at_ms: r.try_get(5)?,
                last_seq: to_u64(r.try_get(6)?, "last_seq")?,
                snapshots_stored: to_u64(r.try_get(7)?, "snapshots_stored")?,
                dropped_snapshots: to_u64(r.try_get(8)?, "dropped_snapshots")?,
                revoked: valid_certs == 0,
                filesystems: Vec::new(),
                facts: Vec::new(),
            });
        }
        let fs_rows = sqlx::query(
            "SELECT agent_id, mount_point, device, fs_type, total_bytes, used_bytes, \
             available_bytes, total_inodes, used_inodes, updated_at_ms \
             FROM filesystems ORDER BY agent_id, mount_point",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in fs_rows {
            let agent_id: String = r.try_get(0)?;
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
            if let Some(host) = hosts.iter_mut().find(|h| h.agent_id == agent_id) {
                host.filesystems.push(row);
            }
        }
        let facts: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT agent_id, payload FROM host_facts WHERE kind = 'facts'")
                .fetch_all(&self.pool)
                .await?;
        for (agent_id, payload) in facts {
            if let Some(host) = hosts.iter_mut().find(|h| h.agent_id == agent_id) {
                host.facts = payload;
            }
        }
        Ok(hosts)
    }

    /// One stored snapshot as received (protobuf-encoded), for inspection and replay.
    pub async fn snapshot_payload(
        &self,
        agent_id: &str,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let payload: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM snapshots WHERE agent_id = $1 AND seq = $2")
                .bind(agent_id)
                .bind(to_i64(seq, "seq")?)
                .fetch_optional(&self.pool)
                .await?;
        Ok(payload)
    }

    /// The sequence numbers stored for one agent, ascending.
    pub async fn stored_seqs(&self, agent_id: &str) -> Result<Vec<u64>, StoreError> {
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM snapshots WHERE agent_id = $1 ORDER BY seq")
                .bind(agent_id)
                .fetch_all(&self.pool)
                .await?;
        seqs.into_iter().map(|s| to_u64(s, "seq")).collect()
    }
}

/// Disk samples are kept one per this interval per mount...
const SAMPLE_EVERY_MS: i64 = 10 * 60_000;
/// ...for this long.
const SAMPLES_KEPT_MS: i64 = 7 * 86_400_000;

/// One recorded disk sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSample {
    pub at_ms: i64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

impl WriteTx {
    /// Records the snapshot's disk usage as samples (at most one per mount per ten minutes)
    /// and forgets samples older than a week.
    pub async fn record_disk_samples(
        &mut self,
        agent_id: &str,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(at_ms) FROM disk_samples WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_one(&mut *self.tx)
                .await?;
        if latest.is_some_and(|l| snapshot.taken_at_ms - l < SAMPLE_EVERY_MS) {
            return Ok(());
        }
        for fs in &snapshot.filesystems {
            sqlx::query(
                "INSERT INTO disk_samples (agent_id, mount_point, at_ms, used_bytes, available_bytes) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id, mount_point, at_ms) DO NOTHING",
            )
            .bind(agent_id)
            .bind(&fs.mount_point)
            .bind(snapshot.taken_at_ms)
            .bind(to_i64(fs.used_bytes, "used_bytes")?)
            .bind(to_i64(fs.available_bytes, "available_bytes")?)
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query("DELETE FROM disk_samples WHERE agent_id = $1 AND at_ms < $2")
            .bind(agent_id)
            .bind(snapshot.taken_at_ms - SAMPLES_KEPT_MS)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
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
