//! The service layer: every operation a person or a program can ask of the collector, validated
//! once. The gRPC admin service, the HTTP JSON API and the CLI translate their requests into
//! these calls and the answers back; none of them checks a request on its own, so the same
//! request gets the same answer whichever door it came in by. Domain types in, domain types out.

mod cursor;
mod events;
mod feeds;
mod fleet;
mod handoff;
mod hosts;
mod live;
mod silences;
mod tickets;
mod tokens;
mod trends;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

pub use events::{AlertEventView, EventPage, EventQuery};
pub use feeds::{
    DeadLetterView, FeedDescription, FeedDirectory, FeedHealth, FeedTestOutcome, FeedView, NoFeeds,
    TestFuture,
};
pub use fleet::{DiskHistory, DiskPoint, FleetHost, FleetPage, FleetQuery, MountHistory};
pub use handoff::{Handoff, HandoffCuts};
pub use hosts::{FilesystemView, Host, PendingCondition, Revoked};
pub use live::{
    CHECK_NOW_TIMEOUT, CheckAnswer, CheckFuture, CheckNowResult, LiveAgents, NoLiveAgents,
};
pub use silences::{SilenceRequest, SilenceView};
pub use tickets::{TicketDetail, TicketQuery, TicketSummary};
pub use tokens::{
    CertificatePage, CertificateView, CreatedEnrollmentToken, EnrollmentTokenView,
    MAX_CERTIFICATES_PER_PAGE, token_state,
};
pub use trends::{HostTrend, OutageTrend, PriorityTrend, RuleTrend, Trends};
pub use users::{
    CreatedUserToken, LOCAL_ADMIN, NewSession, Role, SESSION_IDLE_MS, SESSION_MAX_MS, SignedIn,
    UserTokenView, UserView, Users,
};

use crate::engine::Engine;
use crate::store::{Store, StoreError};

/// What the service layer works with.
#[derive(Clone)]
pub struct Service {
    store: Store,
    engine: Arc<Engine>,
    kb_dir: Option<PathBuf>,
    feeds: Arc<dyn FeedDirectory>,
    live: Arc<dyn LiveAgents>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("store", &self.store)
            .field("kb_dir", &self.kb_dir)
            .finish_non_exhaustive()
    }
}

/// Why a request was not done. Each interface maps these to its own codes (gRPC status, HTTP
/// status, CLI message); the message is for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is wrong; sending it again will not help.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The request does not apply in the current state (e.g. closing an open ticket).
    #[error("{0}")]
    Conflict(String),
    /// The store failed in a way that can pass; retry later.
    #[error("the collector's store is unavailable, retry later")]
    Unavailable(#[source] StoreError),
    /// Stored data cannot be read; retrying will not help.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(why) => Self::Conflict(why),
            StoreError::OutOfRange(_)
            | StoreError::TokenUnknown
            | StoreError::TokenExpired
            | StoreError::TokenUsedUp
            | StoreError::TokenRevoked => Self::Invalid(error.to_string()),
            StoreError::Corrupt { .. } => {
                tracing::error!(%error, "stored data cannot be read");
                Self::Internal(error.to_string())
            }
            other if other.is_permanent() => {
                tracing::error!(error = %other, "store refused the request");
                Self::Internal(other.to_string())
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::Unavailable(other)
            }
        }
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl Service {
    pub fn new(store: Store, engine: Arc<Engine>, kb_dir: Option<PathBuf>) -> Self {
        Self {
            store,
            engine,
            kb_dir,
            feeds: Arc::new(NoFeeds),
            live: Arc::new(NoLiveAgents),
        }
    }

    /// The same service, answering feed questions from `feeds` (the running feeds).
    pub fn with_feeds(mut self, feeds: Arc<dyn FeedDirectory>) -> Self {
        self.feeds = feeds;
        self
    }

    /// The same service, reaching agents' live channels through `live` ("check now").
    pub fn with_live(mut self, live: Arc<dyn LiveAgents>) -> Self {
        self.live = live;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The local accounts (users, API tokens, sessions).
    pub fn users(&self) -> Users {
        Users::new(self.store.clone())
    }
}

/// Checks a short free-text value (a name, a label, a rule id).
fn short_text(what: &str, value: &str, max: usize) -> ServiceResult<()> {
    if value.len() > max {
        return Err(ServiceError::Invalid(format!(
            "{what} is at most {max} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}
