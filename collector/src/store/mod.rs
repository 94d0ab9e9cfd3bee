//! The collector's persistent state behind one interface with two backends: SQLite (one file,
//! WAL; the embedded default) and PostgreSQL (production, several replicas). Both run through
//! sqlx's `Any` driver with the same SQL text (`$1` placeholders work in both), so the
//! dialect differences are confined to the migration files under `collector/migrations/`.
//!
//! Values are stored as `BIGINT` milliseconds and `TEXT`, the common ground of both engines.

mod agent_state;
mod agents;
mod alert_sync;
mod checkpoint;
mod conditions;
mod email;
mod events;
mod feeds;
mod fleet_page;
mod fleet_stats;
mod helpdesk;
mod hints;
mod lease;
mod outages;
mod quiet;
mod quiet_lane;
mod reports;
mod retention;
mod silences;
mod ticket_writes;
mod tickets;
mod trends;
mod users;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, SqlSafeStr, Transaction};

pub use agents::{
    CertKind, CertificateRow, CountedTable, Enrolled, Identity, NewAgent, NewCertificate, Renewal,
    TokenRow,
};
pub use conditions::{Condition, TrackedCondition};
pub use email::{OutboxEntry, OutboxRow};
pub use events::{AlertEvent, EventFilter};
pub use feeds::{DeadLetterRow, Delivery, FeedCounts};
pub use fleet_page::{FleetField, FleetRow, FleetRows};
pub use fleet_stats::{FleetStats, HostGroup, OpenTickets, VERSION_ROWS};
pub use helpdesk::{HelpdeskCounts, HelpdeskLink, sync_feed};
pub use lease::Lease;
pub use outages::FLEET;
pub use quiet::{AgentVersion, QuietRow, Recurring};
pub use reports::{
    AgentInstance, DIVERGED_FOR_MS, DiskSample, FilesystemRow, HostRow, Instance, MAX_MARKED_BOOTS,
    Sequence,
};
pub use retention::{RETENTION_CHUNK, TicketsPruned};
pub use silences::{Matcher, Silence};
pub use tickets::{HANDOFF_LIMIT, HandoffRows, NewTicket, TicketCounts, TicketFilter, TicketMatch};
pub use trends::{OutageRow, Recurrence, ResponseRow, TrendRows};
pub use users::{SessionRow, UserRow, UserTokenRow};

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors of the store layer. Callers branch on the enrollment variants; the rest are reported.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store url {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("enrollment token is not known")]
    TokenUnknown,
    #[error("enrollment token expired")]
    TokenExpired,
    #[error("enrollment token has no uses left")]
    TokenUsedUp,
    #[error("enrollment token was revoked")]
    TokenRevoked,
    #[error("stored value out of range in {0}")]
    OutOfRange(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A failure shared by the reports of one group commit (the store went away, the commit
    /// failed): each report of the group gets it; it can pass.
    #[error("{0}")]
    Unavailable(String),
    /// A stored row that cannot be read back; names what and which.
    #[error("stored {what} {key} cannot be read: {detail}")]
    Corrupt {
        what: &'static str,
        key: String,
        detail: String,
    },
}

impl StoreError {
    /// Whether this transaction lost a race with a concurrent one (a unique key another
    /// writer took first, a serialisation failure, a deadlock): the same work tried again in
    /// a new transaction sees the other's result and goes through.
    pub fn is_race(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => {
                e.kind() == sqlx::error::ErrorKind::UniqueViolation
                    || e.code().is_some_and(|c| c == "40001" || c == "40P01")
            }
            _ => false,
        }
    }

    pub(crate) fn corrupt(what: &'static str, key: impl ToString, e: impl ToString) -> Self {
        Self::Corrupt {
            what,
            key: key.to_string(),
            detail: e.to_string(),
        }
    }

    /// Whether the same input would fail the same way again (a value the store refuses, a
    /// constraint), as opposed to a failure that can pass (the store is down or busy).
    pub fn is_permanent(&self) -> bool {
        if self.is_race() {
            return false;
        }
        match self {
            Self::Database(sqlx::Error::Database(e)) => {
                use sqlx::error::ErrorKind;
                let data_exception = e.code().is_some_and(|c| c.starts_with("22"));
                // SQLite: SQLITE_TOOBIG (18), SQLITE_CONSTRAINT (19), SQLITE_MISMATCH (20),
                // SQLITE_RANGE (25) and their extended codes.
                let sqlite_refusal = e
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25));
                matches!(
                    e.kind(),
                    ErrorKind::UniqueViolation
                        | ErrorKind::ForeignKeyViolation
                        | ErrorKind::NotNullViolation
                        | ErrorKind::CheckViolation
                ) || data_exception
                    || sqlite_refusal
            }
            Self::Database(
                sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. },
            ) => true,
            Self::Database(_)
            | Self::Migrate(_)
            | Self::UnsupportedUrl(_)
            | Self::Unavailable(_) => false,
            Self::TokenUnknown
            | Self::TokenExpired
            | Self::TokenUsedUp
            | Self::TokenRevoked
            | Self::OutOfRange(_)
            | Self::NotFound(_)
            | Self::Conflict(_)
            | Self::Corrupt { .. } => true,
        }
    }
}

/// A handle to the store; cheap to clone (it is a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    hints: Arc<hints::Hints>,
    /// Bumped after every commit that wrote events (see [`Store::event_signal`]).
    events_written: Arc<tokio::sync::watch::Sender<u64>>,
    /// Revocations made through this handle (see [`Store::revocations`]).
    revocations: Arc<std::sync::atomic::AtomicU64>,
    /// SQLite files: the quiet reports' own connection (`quiet_lane`).
    quiet_lane: Option<Arc<quiet_lane::QuietLane>>,
    /// SQLite files: checkpoints off the commit path (`checkpoint`).
    checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

/// A write transaction. SQLite transactions start `IMMEDIATE` so that two writers queue on the
/// busy timeout instead of failing when a reader upgrades.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    /// Whether this transaction holds the event-log lock (see `events`).
    holds_event_lock: bool,
    /// Silences read once per transaction: from when, and which (see `agent_state`).
    silence_memo: Option<(i64, Vec<Silence>)>,
    hints: Arc<hints::Hints>,
    /// Whether this transaction appended events (the signal fires on commit).
    wrote_events: bool,
    events_written: Arc<tokio::sync::watch::Sender<u64>>,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "host facts",
        include_str!("../../migrations/sqlite/0002_host_facts.sql"),
    ),
    (
        3,
        "ticket lifecycle",
        include_str!("../../migrations/sqlite/0003_ticket_lifecycle.sql"),
    ),
    (
        4,
        "outages and silences",
        include_str!("../../migrations/sqlite/0004_outages_silences.sql"),
    ),
    (
        5,
        "flapping",
        include_str!("../../migrations/sqlite/0005_flapping.sql"),
    ),
    (
        6,
        "disk samples",
        include_str!("../../migrations/sqlite/0006_disk_samples.sql"),
    ),
    (
        7,
        "core",
        include_str!("../../migrations/sqlite/0007_core.sql"),
    ),
    (
        8,
        "correlation",
        include_str!("../../migrations/sqlite/0008_correlation.sql"),
    ),
    (
        9,
        "retention",
        include_str!("../../migrations/sqlite/0009_retention.sql"),
    ),
    (
        10,
        "state version",
        include_str!("../../migrations/sqlite/0010_state_version.sql"),
    ),
    (
        11,
        "feeds",
        include_str!("../../migrations/sqlite/0011_feeds.sql"),
    ),
    (
        12,
        "users",
        include_str!("../../migrations/sqlite/0012_users.sql"),
    ),
    (
        13,
        "dashboard",
        include_str!("../../migrations/sqlite/0013_dashboard.sql"),
    ),
    (
        14,
        "admin",
        include_str!("../../migrations/sqlite/0014_admin.sql"),
    ),
    (
        15,
        "revocations",
        include_str!("../../migrations/sqlite/0015_revocations.sql"),
    ),
    (
        16,
        "instances",
        include_str!("../../migrations/sqlite/0016_instances.sql"),
    ),
    (
        17,
        "token labels",
        include_str!("../../migrations/sqlite/0017_token_labels.sql"),
    ),
    (
        18,
        "help desk",
        include_str!("../../migrations/sqlite/0018_helpdesk.sql"),
    ),
    (
        19,
        "e-mail outbox",
        include_str!("../../migrations/sqlite/0019_email_outbox.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "host facts",
        include_str!("../../migrations/postgres/0002_host_facts.sql"),
    ),
    (
        3,
        "ticket lifecycle",
        include_str!("../../migrations/postgres/0003_ticket_lifecycle.sql"),
    ),
    (
        4,
        "outages and silences",
        include_str!("../../migrations/postgres/0004_outages_silences.sql"),
    ),
    (
        5,
        "flapping",
        include_str!("../../migrations/postgres/0005_flapping.sql"),
    ),
    (
        6,
        "disk samples",
        include_str!("../../migrations/postgres/0006_disk_samples.sql"),
    ),
    (
        7,
        "core",
        include_str!("../../migrations/postgres/0007_core.sql"),
    ),
    (
        8,
        "correlation",
        include_str!("../../migrations/postgres/0008_correlation.sql"),
    ),
    (
        9,
        "retention",
        include_str!("../../migrations/postgres/0009_retention.sql"),
    ),
    (
        10,
        "state version",
        include_str!("../../migrations/postgres/0010_state_version.sql"),
    ),
    (
        11,
        "feeds",
        include_str!("../../migrations/postgres/0011_feeds.sql"),
    ),
    (
        12,
        "users",
        include_str!("../../migrations/postgres/0012_users.sql"),
    ),
    (
        13,
        "dashboard",
        include_str!("../../migrations/postgres/0013_dashboard.sql"),
    ),
    (
        14,
        "admin",
        include_str!("../../migrations/postgres/0014_admin.sql"),
    ),
    (
        15,
        "revocations",
        include_str!("../../migrations/postgres/0015_revocations.sql"),
    ),
    (
        16,
        "instances",
        include_str!("../../migrations/postgres/0016_instances.sql"),
    ),
    (
        17,
        "token labels",
        include_str!("../../migrations/postgres/0017_token_labels.sql"),
    ),
    (
        18,
        "help desk",
        include_str!("../../migrations/postgres/0018_helpdesk.sql"),
    ),
    (
        19,
        "e-mail outbox",
        include_str!("../../migrations/postgres/0019_email_outbox.sql"),
    ),
];

impl Backend {
    /// Tells the backend from a store URL.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                // One writer at a time is SQLite's model; a few readers beside it.
                // `synchronous = FULL`: a commit is on disk before it is acknowledged, so an
                // acknowledged report survives power loss (NORMAL in WAL mode may lose the
                // last commits).
                // A file's log is checkpointed by a thread of its own (`checkpoint`).
                let pragmas = if quiet_lane::file_of(url).is_some() {
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;"
                } else {
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY;"
                };
                options
                    .max_connections(4)
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            conn.execute(pragmas).await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url_with_create(url))
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(url).await?,
        };
        let mut store = Self {
            pool,
            backend,
            hints: Arc::default(),
            events_written: Arc::new(tokio::sync::watch::Sender::new(0)),
            revocations: Arc::default(),
            quiet_lane: None,
            checkpointer: None,
        };
        store.migrate().await?;
        if backend == Backend::Sqlite
            && let Some(file) = quiet_lane::file_of(url)
        {
            store.checkpointer = Some(Arc::new(checkpoint::Checkpointer::start(&file)?));
            store.quiet_lane = Some(Arc::new(quiet_lane::QuietLane::open(&file)?));
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many revocations this process has made: whoever remembers identities forgets them
    /// when it changes, so a certificate revoked here is refused at once (one revoked by
    /// another process or replica: within the memory's lifetime).
    pub fn revocations(&self) -> u64 {
        self.revocations.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Changes after every commit of this process that appended events to the log, so feeds
    /// read the log at once instead of on their next poll. Events written by another replica
    /// are not signalled: readers also poll.
    pub fn event_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events_written.subscribe()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let source = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations: Vec<Migration> = source
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let mut migrator = Migrator::DEFAULT;
        migrator.migrations = Cow::Owned(migrations);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            backend: self.backend,
            holds_event_lock: false,
            silence_memo: None,
            hints: self.hints.clone(),
            wrote_events: false,
            events_written: self.events_written.clone(),
        })
    }

    /// Closes every connection; pending writes are already committed.
    pub async fn close(&self) {
        if let Some(lane) = &self.quiet_lane {
            lane.close();
        }
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close();
        }
        self.pool.close().await;
    }

    /// Names of the user tables and their columns, sorted; used to prove that both dialects
    /// describe the same schema.
    pub async fn schema_outline(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
                 ORDER BY 1, 2"
            }
            Backend::Postgres => {
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY 1, 2"
            }
        };
        let rows: Vec<(String, String)> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
        Ok(rows)
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if self.wrote_events {
            self.events_written.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    /// Marks a point to go back to when one part of the transaction fails (one report of a
    /// group, one snapshot of a batch): see [`WriteTx::rollback_to`] and
    /// [`WriteTx::release`]. Savepoints nest.
    pub async fn savepoint(&mut self, at: Savepoint) -> Result<(), StoreError> {
        self.tx.execute(at.sql()[0]).await?;
        Ok(())
    }

    /// Undoes everything since the savepoint; the transaction goes on.
    pub async fn rollback_to(&mut self, at: Savepoint) -> Result<(), StoreError> {
        self.tx.execute(at.sql()[1]).await?;
        self.tx.execute(at.sql()[2]).await?;
        // A lock taken after the savepoint is released with it; taking it again is harmless.
        self.holds_event_lock = false;
        Ok(())
    }

    /// Keeps everything since the savepoint.
    pub async fn release(&mut self, at: Savepoint) -> Result<(), StoreError> {
        self.tx.execute(at.sql()[2]).await?;
        Ok(())
    }
}

/// The savepoints of a write transaction, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Savepoint {
    /// One report of a group commit.
    Report,
    /// One snapshot of a report.
    Snapshot,
}

impl Savepoint {
    /// Set, roll back to, release.
    fn sql(self) -> [&'static str; 3] {
        match self {
            Self::Report => [
                "SAVEPOINT report",
                "ROLLBACK TO SAVEPOINT report",
                "RELEASE SAVEPOINT report",
            ],
            Self::Snapshot => [
                "SAVEPOINT part",
                "ROLLBACK TO SAVEPOINT part",
                "RELEASE SAVEPOINT part",
            ],
        }
    }
}

/// `sqlite://file.db` must create the file on first start.
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Converts an unsigned wire value to the signed column type, refusing what does not fit.
pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange(what))
}

/// Converts a signed column back; negative values never get written, so this is a check.
pub(crate) fn to_u64(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::OutOfRange(what))
}
