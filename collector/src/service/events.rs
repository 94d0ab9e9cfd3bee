//! The alert event log, read by cursor: what feeds and the dashboard's live view consume.

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::store::{AlertEvent, EventFilter};
use crate::tickets::{EventKind, Ticket};

const DEFAULT_EVENTS: u32 = 100;
const MAX_EVENTS: u32 = 1000;

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Events after this cursor; 0 for the oldest kept.
    pub cursor: i64,
    pub limit: Option<u32>,
    /// Only tickets of this priority or more urgent (1 to 4).
    pub max_priority: Option<u32>,
    pub rule: Option<String>,
    /// An agent id or host name.
    pub host: Option<String>,
    pub label: Option<String>,
}

/// One event with its ticket as it is now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEventView {
    pub cursor: i64,
    pub at_ms: i64,
    pub kind: EventKind,
    pub actor: String,
    pub detail: String,
    pub observed_at_ms: i64,
    /// The host's labels now.
    pub labels: Vec<String>,
    pub ticket: Ticket,
}

impl From<AlertEvent> for AlertEventView {
    fn from(r: AlertEvent) -> Self {
        Self {
            cursor: r.event.cursor,
            at_ms: r.event.at_ms,
            kind: r.event.kind,
            actor: r.event.actor,
            detail: r.event.detail,
            observed_at_ms: r.event.observed_at_ms,
            labels: r.labels,
            ticket: r.ticket,
        }
    }
}

/// A page of events and the cursor to ask from next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<AlertEventView>,
    pub next_cursor: i64,
}

impl Service {
    /// Events after the query's cursor, oldest first. See `store/events.rs` for why a reader
    /// that resumes from its last cursor misses nothing.
    pub async fn events_since(&self, q: &EventQuery) -> ServiceResult<EventPage> {
        if q.cursor < 0 {
            return Err(ServiceError::Invalid("cursor must not be negative".into()));
        }
        let max_priority = q.max_priority.unwrap_or(0);
        if max_priority > 4 {
            return Err(ServiceError::Invalid(
                "priority must be between 1 and 4".into(),
            ));
        }
        let agent_id = match q.host.as_deref().filter(|h| !h.is_empty()) {
            Some(name) => self.resolve_host(name).await?,
            None => String::new(),
        };
        let rule_id = q.rule.clone().unwrap_or_default();
        let label = q.label.clone().unwrap_or_default();
        super::short_text("rule", &rule_id, 255)?;
        super::short_text("label", &label, 255)?;
        let filter = EventFilter {
            max_priority,
            rule_id,
            agent_id,
            label,
        };
        let limit = q
            .limit
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_EVENTS)
            .min(MAX_EVENTS);
        let rows = self.store.events_since(q.cursor, &filter, limit).await?;
        let next_cursor = rows.last().map_or(q.cursor, |r| r.event.cursor);
        Ok(EventPage {
            events: rows.into_iter().map(AlertEventView::from).collect(),
            next_cursor,
        })
    }
}
