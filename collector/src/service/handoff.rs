//! The end-of-shift report: open critical tickets, escalations, and what was resolved. Host
//! tickets that were under an outage are not listed among the resolved: the outage stands for
//! them, with its host count (`linked_hosts`). Each list is cut at `store::HANDOFF_LIMIT` rows,
//! and `cut` says which were.

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::tickets::Ticket;

/// Longest look back of a handoff.
const MAX_SINCE_MS: i64 = 31 * 86_400_000;

/// The end-of-shift report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handoff {
    pub generated_at_ms: i64,
    pub since_ms: i64,
    /// Open P1 and P2 tickets, most urgent first.
    pub critical_open: Vec<Ticket>,
    /// Open tickets escalated to tier 2 or 3.
    pub escalated: Vec<Ticket>,
    pub resolved_since: Vec<Ticket>,
    /// Which lists were cut (more matched than are listed).
    pub cut: HandoffCuts,
}

/// Which handoff lists were cut at `store::HANDOFF_LIMIT` rows (more matched).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HandoffCuts {
    pub critical_open: bool,
    pub escalated: bool,
    pub resolved_since: bool,
}

impl Service {
    /// The handoff at `now_ms`, listing what resolved since `since_ms` (default: 12 hours).
    pub async fn handoff(&self, since_ms: Option<i64>, now_ms: i64) -> ServiceResult<Handoff> {
        let since_ms = since_ms
            .filter(|s| *s > 0)
            .unwrap_or(now_ms - 12 * 3_600_000);
        if since_ms > now_ms || now_ms - since_ms > MAX_SINCE_MS {
            return Err(ServiceError::Invalid(
                "since must be in the past, at most 31 days ago".into(),
            ));
        }
        let rows = self.store.handoff(since_ms).await?;
        let [critical_open, escalated, resolved_since] = rows.truncated;
        Ok(Handoff {
            generated_at_ms: now_ms,
            since_ms,
            critical_open: rows.critical_open,
            escalated: rows.escalated,
            resolved_since: rows.resolved_since,
            cut: HandoffCuts {
                critical_open,
                escalated,
                resolved_since,
            },
        })
    }
}
