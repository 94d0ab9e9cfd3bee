//! What every help desk the sync talks to has in common: a remote ticket as the sync knows it,
//! why a call failed (worth another attempt, or a refusal that would repeat), and what a
//! technician did to a ticket in the help desk.

use std::time::Duration;

/// A ticket of the help desk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteTicket {
    pub id: String,
    pub status: String,
    pub owner: String,
}

/// Why a call to the help desk failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// Worth trying again: the help desk was away, slow or overloaded.
    #[error("{error}")]
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
    /// A refusal that would repeat: credentials, a missing queue, a rejected field.
    #[error("{error}")]
    Permanent { error: String },
}

/// What a technician did to a synced ticket in the help desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteChange {
    /// Resolved (or rejected, deleted): the Firstline ticket resolves.
    Resolved,
    /// Set back to an active status after it ended: a resolved Firstline ticket reopens.
    Reopened,
    /// Taken by, or given to, this user: the Firstline ticket is assigned to them.
    Taken(String),
}
