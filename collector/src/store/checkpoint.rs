//! SQLite's WAL checkpoints, off the commit path. By default the connection that commits past
//! a thousand pages of log copies them into the database file and flushes it, inside that
//! commit: under ingest that is every group, and the group's reports wait on random writes
//! of pages that the next group changes again. With a SQLite file the store turns automatic
//! checkpoints off on its connections and this thread checkpoints every
//! [`CHECKPOINT_EVERY`] instead (passive: it never blocks a writer), so a page changed by many
//! groups is written to the database once per second, and commits only append to the log.
//!
//! The log stays bounded: a passive checkpoint copies everything no reader still needs, and
//! SQLite starts the log over once it has all been copied. Should readers keep it from that
//! for long (the log past [`RESTART_ABOVE`]), a restart checkpoint waits for them.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// How often the log is checkpointed.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Log size past which the checkpoint waits for readers so the log can start over.
const RESTART_ABOVE: u64 = 256 * 1024 * 1024;

/// The checkpoint thread; it stops when this is dropped or closed.
#[derive(Debug)]
pub struct Checkpointer {
    stop: std::sync::Mutex<Option<mpsc::Sender<()>>>,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite file at `path` (in WAL mode).
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)
            .and_then(|c| c.execute_batch("PRAGMA busy_timeout = 10000;").map(|()| c))
            .map_err(|e| StoreError::Unavailable(format!("sqlite (checkpoint): {e}")))?;
        let wal = {
            let mut p = path.as_os_str().to_owned();
            p.push("-wal");
            std::path::PathBuf::from(p)
        };
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > RESTART_ABOVE);
                    let mode = if big { "RESTART" } else { "PASSIVE" };
                    let done = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    });
                    match done {
                        Ok((busy, log, copied)) => {
                            tracing::trace!(mode, busy, log, copied, "checkpoint");
                        }
                        Err(error) => tracing::warn!(%error, mode, "checkpoint failed"),
                    }
                }
                // Whatever is left is copied when the last connection closes.
                tracing::debug!("checkpoint thread stopped");
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Self {
            stop: std::sync::Mutex::new(Some(stop)),
        })
    }

    /// Stops the thread (it ends within a checkpoint).
    pub fn close(&self) {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
