//! The duty lease: which collector replica runs the time-driven work (silent agents, SLA
//! escalation, retention). On PostgreSQL it is a session advisory lock held on a connection
//! of its own, outside the pool: the replica that takes it holds it as long as that
//! connection lives, and when the replica dies (or its connection does) the server releases
//! it at once and the next replica to ask takes it. Replicas ask every few seconds, so the
//! work moves within seconds. On SQLite there is one collector per file, which always holds
//! it.

use sqlx::{AnyConnection, ConnectOptions, Connection};

use super::{Backend, Store, StoreError};

/// The advisory lock key of the duty lease (ASCII "fl-duty!").
const DUTY_LOCK: i64 = 0x666c_2d64_7574_7921;

/// One replica's claim on the duty lease.
pub struct Lease {
    store: Store,
    conn: Option<AnyConnection>,
    held: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("held", &self.held).finish()
    }
}

impl Store {
    /// A claim on the duty lease, not yet asked for.
    pub fn duty_lease(&self) -> Lease {
        Lease {
            store: self.clone(),
            conn: None,
            held: false,
        }
    }
}

impl Lease {
    /// Takes the lease or checks that it is still held; returns whether this replica holds
    /// it now. A failure (the database is away) means not held, and is retried on the next
    /// call.
    pub async fn hold(&mut self) -> Result<bool, StoreError> {
        if self.store.backend == Backend::Sqlite {
            self.held = true;
            return Ok(true);
        }
        let result = self.ask().await;
        if result.is_err() {
            // The connection (and with it the lock, if it was held) is gone.
            self.conn = None;
            self.held = false;
        }
        result
    }

    async fn ask(&mut self) -> Result<bool, StoreError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self
                .conn
                .insert(self.store.pool.connect_options().connect().await?),
        };
        if self.held {
            // Still ours while the session lives.
            conn.ping().await?;
            return Ok(true);
        }
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(DUTY_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        self.held = taken;
        Ok(taken)
    }

    /// Gives the lease up (on shutdown), so another replica takes it without waiting.
    pub async fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}
