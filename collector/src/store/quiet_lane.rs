//! SQLite's quiet lane: the quiet reports of a group (`crate::ingest::quiet`) written on a
//! connection of their own, on a thread of their own, with prepared statements kept from one
//! group to the next. Through sqlx every statement is a message to its connection's worker
//! thread and every batched statement a new text to prepare; here a group costs one hand-off
//! and one commit, and each report a handful of steps of already prepared statements.
//!
//! It writes exactly what `store::quiet` writes through sqlx (PostgreSQL keeps that path):
//! a compare-and-set of the agent's row on (epoch, last sequence number, ticket-state
//! version), and for the agents it moved their snapshot, facts, filesystems and the
//! occurrences of the conditions that held again. An agent whose row changed elsewhere gets
//! nothing written and takes the full path.
//!
//! The lane commits on its own, before the group's full-path reports: SQLite has one writer
//! at a time, and the lane's transaction and the pool's queue on the busy timeout like any
//! two writers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::quiet::{COUNTER_CAP, QuietRow, Recurring};
use super::{AgentVersion, StoreError, to_i64};
use crate::facts::Filesystem;

/// One quiet report, owned, for the lane's thread.
#[derive(Debug, Clone)]
struct LaneRow {
    agent_id: String,
    /// The agent row as the writer last saw it: epoch, last sequence number, state version.
    seen: [i64; 3],
    epoch: i64,
    seq: i64,
    taken_at_ms: i64,
    at_ms: i64,
    received_at_ms: i64,
    trigger: &'static str,
    hostname: String,
    os: String,
    agent_version: String,
    machine_id: String,
    dropped: i64,
    rejected: i64,
    clock_adjusted: bool,
    clock_skew_ms: Option<i64>,
    payload: Vec<u8>,
    facts: Option<Vec<u8>>,
    filesystems: Vec<LaneFilesystem>,
    recurring: Vec<Recurring>,
}

/// A filesystem row with its sizes as stored.
#[derive(Debug, Clone)]
struct LaneFilesystem {
    mount_point: String,
    device: String,
    fs_type: String,
    sizes: [i64; 5],
}

impl LaneFilesystem {
    fn of(fs: &Filesystem) -> Result<Self, StoreError> {
        Ok(Self {
            mount_point: fs.mount_point.clone(),
            device: fs.device.clone(),
            fs_type: fs.fs_type.clone(),
            sizes: [
                to_i64(fs.total_bytes, "total_bytes")?,
                to_i64(fs.used_bytes, "used_bytes")?,
                to_i64(fs.available_bytes, "available_bytes")?,
                to_i64(fs.total_inodes, "total_inodes")?,
                to_i64(fs.used_inodes, "used_inodes")?,
            ],
        })
    }
}

impl LaneRow {
    fn of(r: &QuietRow<'_>) -> Result<Self, StoreError> {
        let s = r.snapshot;
        Ok(Self {
            agent_id: r.agent_id.to_owned(),
            seen: seen(r.seen)?,
            epoch: to_i64(s.epoch, "epoch")?,
            seq: to_i64(s.seq, "seq")?,
            taken_at_ms: s.taken_at_ms,
            at_ms: s.at_ms,
            received_at_ms: r.received_at_ms,
            trigger: s.trigger.as_str(),
            hostname: s.hostname.clone(),
            os: s.os.clone(),
            agent_version: s.agent_version.clone(),
            machine_id: s
                .facts
                .system
                .as_ref()
                .map(|f| f.machine_id.clone())
                .unwrap_or_default(),
            dropped: to_i64(s.dropped_snapshots, "dropped_snapshots")?,
            rejected: to_i64(s.rejected_snapshots, "rejected_snapshots")?,
            clock_adjusted: s.clock_adjusted,
            clock_skew_ms: r.clock_skew_ms,
            payload: s.payload.clone(),
            facts: r.facts.map(<[u8]>::to_vec),
            filesystems: s
                .filesystems
                .iter()
                .map(LaneFilesystem::of)
                .collect::<Result<_, _>>()?,
            recurring: r.recurring.to_vec(),
        })
    }
}

type Answer = oneshot::Sender<Result<HashSet<String>, StoreError>>;

/// A group's quiet reports and where the lane answers.
type LaneJob = (Vec<LaneRow>, Answer);

/// The handle to the lane's thread; the thread ends when the lane is closed or dropped.
#[derive(Debug)]
pub struct QuietLane {
    jobs: Mutex<Option<mpsc::Sender<LaneJob>>>,
}

impl QuietLane {
    /// Opens the lane's connection to the SQLite file at `path` (whose schema is migrated).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = connect(path).map_err(|e| lane_error(&e))?;
        let (jobs, rx) = mpsc::channel::<LaneJob>();
        std::thread::Builder::new()
            .name("sqlite-quiet-lane".into())
            .spawn(move || run(conn, &rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the quiet lane: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
        })
    }

    /// Stores the quiet reports in one transaction of the lane's; returns the agents advanced.
    /// On an error nothing of the group's quiet reports is written.
    pub async fn store(&self, rows: &[QuietRow<'_>]) -> Result<HashSet<String>, StoreError> {
        let owned = rows.iter().map(LaneRow::of).collect::<Result<_, _>>()?;
        let (done, answer) = oneshot::channel();
        {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let sent = jobs.as_ref().is_some_and(|j| j.send((owned, done)).is_ok());
            if !sent {
                return Err(StoreError::Unavailable("the store is closed".into()));
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the quiet lane stopped".into())))
    }

    /// Ends the lane's thread once it has answered what it was given.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The file behind a `sqlite:` store URL, when it is a file the lane can open beside the
/// pool (not an in-memory database).
pub fn file_of(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty()
        || path == ":memory:"
        || query
            .split('&')
            .any(|kv| kv == "mode=memory" || kv == "immutable=1" || kv == "mode=ro");
    (!in_memory).then(|| PathBuf::from(path))
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // As the pool's connections (`Store::open`): a commit is on disk before it is answered.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn run(mut conn: Connection, jobs: &mpsc::Receiver<LaneJob>) {
    while let Ok((rows, done)) = jobs.recv() {
        let result = store_all(&mut conn, &rows).map_err(|e| lane_error(&e));
        let _ = done.send(result);
    }
    tracing::debug!("quiet lane stopped");
}

fn lane_error(e: &rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite (quiet lane): {e}"))
}

const ADVANCE: &str = "UPDATE agents SET snapshots_stored = snapshots_stored + 1, \
     dropped_snapshots = CASE WHEN dropped_snapshots > ?16 - ?2 THEN ?16 ELSE dropped_snapshots + ?2 END, \
     rejected_snapshots = CASE WHEN rejected_snapshots > ?16 - ?3 THEN ?16 ELSE rejected_snapshots + ?3 END, \
     clock_adjusted_snapshots = clock_adjusted_snapshots + ?5, \
     last_seen_at_ms = CASE WHEN last_seen_at_ms > ?4 THEN last_seen_at_ms ELSE ?4 END, \
     last_seq = ?6, hostname = ?7, os = ?8, agent_version = ?9, \
     machine_id = CASE WHEN ?10 = '' THEN machine_id ELSE ?10 END, \
     clock_skew_ms = CASE WHEN ?11 = 1 THEN ?12 ELSE clock_skew_ms END \
     WHERE agent_id = ?1 AND spool_epoch = ?13 AND last_seq = ?14 AND state_version = ?15";

const SNAPSHOT: &str = "INSERT INTO snapshots (agent_id, epoch, seq, taken_at_ms, received_at_ms, \
     trigger_kind, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (agent_id, epoch, seq) DO NOTHING";

const FACTS: &str = "INSERT INTO host_facts (agent_id, kind, payload, updated_at_ms) \
     VALUES (?1, 'facts', ?2, ?3) ON CONFLICT (agent_id, kind) DO UPDATE SET \
     payload = excluded.payload, updated_at_ms = excluded.updated_at_ms";

const FILESYSTEM: &str = "INSERT INTO filesystems (agent_id, mount_point, device, fs_type, \
     total_bytes, used_bytes, available_bytes, total_inodes, used_inodes, updated_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (agent_id, mount_point) DO UPDATE SET device = excluded.device, \
     fs_type = excluded.fs_type, total_bytes = excluded.total_bytes, \
     used_bytes = excluded.used_bytes, available_bytes = excluded.available_bytes, \
     total_inodes = excluded.total_inodes, used_inodes = excluded.used_inodes, \
     updated_at_ms = excluded.updated_at_ms";

const RECUR_TICKET: &str = "UPDATE tickets SET occurrences = occurrences + 1, \
     last_seen_at_ms = ?2, last_value = ?3, title = ?4, clear_since_ms = NULL WHERE id = ?1";

const RECUR_CONDITION: &str = "UPDATE conditions SET holds_count = holds_count + 1, \
     last_seen_ms = ?4 WHERE agent_id = ?1 AND rule_id = ?2 AND subject = ?3";

fn store_all(conn: &mut Connection, rows: &[LaneRow]) -> rusqlite::Result<HashSet<String>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut advanced = HashSet::with_capacity(rows.len());
    {
        let mut advance = tx.prepare_cached(ADVANCE)?;
        let mut snapshot = tx.prepare_cached(SNAPSHOT)?;
        let mut facts = tx.prepare_cached(FACTS)?;
        let mut filesystem = tx.prepare_cached(FILESYSTEM)?;
        let mut recur_ticket = tx.prepare_cached(RECUR_TICKET)?;
        let mut recur_condition = tx.prepare_cached(RECUR_CONDITION)?;
        for r in rows {
            let moved = advance.execute(params![
                r.agent_id,
                r.dropped,
                r.rejected,
                r.received_at_ms,
                i64::from(r.clock_adjusted),
                r.seq,
                r.hostname,
                r.os,
                r.agent_version,
                r.machine_id,
                i64::from(r.clock_skew_ms.is_some()),
                r.clock_skew_ms.unwrap_or(0),
                r.seen[0],
                r.seen[1],
                r.seen[2],
                COUNTER_CAP,
            ])?;
            if moved == 0 {
                continue;
            }
            snapshot.execute(params![
                r.agent_id,
                r.epoch,
                r.seq,
                r.taken_at_ms,
                r.received_at_ms,
                r.trigger,
                r.payload,
            ])?;
            if let Some(f) = &r.facts {
                facts.execute(params![r.agent_id, f, r.at_ms])?;
            }
            for fs in &r.filesystems {
                filesystem.execute(params![
                    r.agent_id,
                    fs.mount_point,
                    fs.device,
                    fs.fs_type,
                    fs.sizes[0],
                    fs.sizes[1],
                    fs.sizes[2],
                    fs.sizes[3],
                    fs.sizes[4],
                    r.at_ms,
                ])?;
            }
            for c in &r.recurring {
                if let Some(ticket) = c.ticket_id {
                    recur_ticket.execute(params![ticket, r.at_ms, c.value, c.title])?;
                }
                recur_condition.execute(params![r.agent_id, c.rule_id, c.subject, r.at_ms])?;
            }
            advanced.insert(r.agent_id.clone());
        }
    }
    tx.commit()?;
    Ok(advanced)
}

fn seen(v: AgentVersion) -> Result<[i64; 3], StoreError> {
    Ok([
        to_i64(v.epoch, "epoch")?,
        to_i64(v.last_seq, "seq")?,
        v.state_version,
    ])
}

#[cfg(test)]
mod tests {
    use super::file_of;
    use std::path::PathBuf;

    #[test]
    fn the_lane_opens_files_and_leaves_memory_databases_to_the_pool() {
        assert_eq!(
            file_of("sqlite:///var/lib/firstline/store.db"),
            Some(PathBuf::from("/var/lib/firstline/store.db"))
        );
        assert_eq!(
            file_of("sqlite://data/store.db?mode=rwc"),
            Some(PathBuf::from("data/store.db"))
        );
        assert_eq!(file_of("sqlite:store.db"), Some(PathBuf::from("store.db")));
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("sqlite://:memory:"), None);
        assert_eq!(file_of("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file_of("sqlite://x.db?mode=ro"), None);
        assert_eq!(file_of("postgres://localhost/db"), None);
    }
}
