//! What every help desk the sync talks to has in common: the calls the sync makes (`Remote`:
//! find a ticket by its key, create, apply an event, and for two-way help desks the search
//! for tickets changed there), a remote ticket as the sync knows it, why a call failed (worth
//! another attempt, or a refusal that would repeat), and what a technician did to a ticket in
//! the help desk.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;

use super::config::SyncSettings;
use super::render::TicketView;
use crate::store::HelpdeskLink;
use crate::tickets::TicketEvent;

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

/// A help desk as the sync (`sync.rs`) drives it.
pub trait Remote: Send + Sync + 'static {
    /// Its name in logs and on the timeline ("Request Tracker").
    fn label(&self) -> &str;
    /// Its kind in `feeds list`.
    fn kind(&self) -> &'static str;
    fn settings(&self) -> &SyncSettings;
    /// Where it is, without credentials, for `feeds list`.
    fn target(&self) -> String;
    /// The prefix of the actor of changes made in the help desk (`rt:`), for two-way ones.
    fn actor_prefix(&self) -> Option<&str> {
        None
    }
    /// The remote ticket carrying `key`, if the help desk can be searched and has one.
    fn find(
        &self,
        key: &str,
        view: &TicketView,
    ) -> impl Future<Output = Result<Option<RemoteTicket>, RemoteError>> + Send;
    fn create(
        &self,
        view: &TicketView,
        key: &str,
    ) -> impl Future<Output = Result<RemoteTicket, RemoteError>> + Send;
    /// One event of a linked ticket; keeps `link.remote_status` up to date.
    fn apply(
        &self,
        view: &TicketView,
        e: &TicketEvent,
        link: &mut HelpdeskLink,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send;
    /// Tickets changed in the help desk since `since_ms` (two-way help desks).
    fn changed_since(
        &self,
        _since_ms: i64,
    ) -> impl Future<Output = Result<Vec<RemoteTicket>, RemoteError>> + Send {
        async { Ok(Vec::new()) }
    }
    /// What the changes of a remote ticket mean for the Firstline ticket.
    fn changes(&self, _remote: &RemoteTicket, _link: &HelpdeskLink) -> Vec<RemoteChange> {
        Vec::new()
    }
    /// Who made the latest change of `field` of a remote ticket.
    fn changed_by(
        &self,
        _id: &str,
        _field: &str,
    ) -> impl Future<Output = Result<Option<String>, RemoteError>> + Send {
        async { Ok(None) }
    }
    /// Whether the help desk answers (`feeds test`): a line saying what it answered.
    fn probe(&self) -> impl Future<Output = Result<String, RemoteError>> + Send;
}

/// A failed HTTP answer classified: 5xx, 408 and 429 are worth another attempt, any other
/// refusal would repeat.
pub fn answer_error(
    what: &str,
    status: StatusCode,
    text: &str,
    retry_after: Option<Duration>,
) -> RemoteError {
    let error = format!("{what}: HTTP {} {}", status.as_u16(), text.trim());
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        RemoteError::Transient { error, retry_after }
    } else {
        RemoteError::Permanent { error }
    }
}

/// The answer's `Retry-After`, when it has one.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::feeds::webhook::parse_retry_after(v, crate::clock::now_ms() / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_worth_retrying_are_told_from_refusals() {
        for s in [500, 502, 503, 408, 429] {
            let e = answer_error("x", StatusCode::from_u16(s).expect("valid"), "", None);
            assert!(matches!(e, RemoteError::Transient { .. }), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            let e = answer_error("x", StatusCode::from_u16(s).expect("valid"), "no", None);
            assert!(matches!(e, RemoteError::Permanent { .. }), "{s}");
            assert_eq!(e.to_string(), format!("x: HTTP {s} no"));
        }
    }
}
