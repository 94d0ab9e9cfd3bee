//! Ticket operations: the queue, one ticket with its timeline, and the actions people take.

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::store::{TicketFilter, TicketMatch};
use crate::tickets::{Ticket, TicketAction, TicketEvent, TicketState};

/// Tickets returned when the request does not say, and the most one request may ask for.
pub const DEFAULT_TICKETS: u32 = 200;
pub const MAX_TICKETS: u32 = 1000;

/// Which tickets to list, as asked.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// "open", "resolved" or "all" (the default).
    pub state: Option<String>,
    /// An agent id or a host name.
    pub host: Option<String>,
    pub limit: Option<u32>,
    /// Only this priority (1 to 4).
    pub priority: Option<u32>,
    /// Only tickets assigned to this person (empty: unassigned is not a filter; see `mine`).
    pub assignee: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only tickets of hosts carrying this label.
    pub label: Option<String>,
    /// Only tickets assigned to the caller: the interface fills in the caller's name.
    pub mine: Option<String>,
}

/// Counts of what the queue's filters match: per priority and outages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TicketSummary {
    /// Every matching ticket.
    pub total: u64,
    pub p1: u64,
    pub p2: u64,
    pub p3: u64,
    pub p4: u64,
    /// Outage tickets among them.
    pub outages: u64,
}

/// One ticket with its timeline, its knowledge-base steps and, for an outage, its host tickets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketDetail {
    pub ticket: Ticket,
    pub timeline: Vec<TicketEvent>,
    pub kb_markdown: String,
    pub linked: Vec<Ticket>,
}

impl Service {
    /// The tickets a query asks for: open ones first by priority, then newest first.
    pub async fn list_tickets(&self, q: &TicketQuery) -> ServiceResult<Vec<Ticket>> {
        let (filter, more) = self.ticket_filters(q).await?;
        Ok(self.store.list_tickets_matching(&filter, &more).await?)
    }

    /// How many tickets the queue's filters match in all (not only the first page): per
    /// priority and outages. The state is `open` unless the query says otherwise; `limit` is
    /// ignored.
    pub async fn ticket_summary(&self, q: &TicketQuery) -> ServiceResult<TicketSummary> {
        let mut q = q.clone();
        if q.state.as_deref().is_none_or(str::is_empty) {
            q.state = Some("open".into());
        }
        let (filter, more) = self.ticket_filters(&q).await?;
        let c = self.store.count_tickets_matching(&filter, &more).await?;
        let [p1, p2, p3, p4] = c.by_priority;
        Ok(TicketSummary {
            total: c.total,
            p1,
            p2,
            p3,
            p4,
            outages: c.outages,
        })
    }

    /// A query checked and turned into the store's filters.
    async fn ticket_filters(&self, q: &TicketQuery) -> ServiceResult<(TicketFilter, TicketMatch)> {
        let (open, state) = match q.state.as_deref() {
            None | Some("" | "all") => (None, None),
            Some("open") => (Some(true), None),
            Some("resolved") => (Some(false), None),
            Some("new") => (Some(true), Some(TicketState::New)),
            Some("acknowledged") => (Some(true), Some(TicketState::Acknowledged)),
            Some("suppressed") => (None, Some(TicketState::Suppressed)),
            Some("closed") => (Some(false), Some(TicketState::Closed)),
            Some(other) => {
                return Err(ServiceError::Invalid(format!(
                    "state {other:?} is not one of open, new, acknowledged, suppressed, \
                     resolved, closed, all"
                )));
            }
        };
        if let Some(p) = q.priority
            && !(1..=4).contains(&p)
        {
            return Err(ServiceError::Invalid(
                "priority must be between 1 and 4".into(),
            ));
        }
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let assignee = given(&q.mine).or_else(|| given(&q.assignee));
        for (what, v) in [
            ("assignee", &assignee),
            ("rule", &q.rule),
            ("label", &q.label),
        ] {
            super::short_text(what, v.as_deref().unwrap_or_default(), 255)?;
        }
        let more = TicketMatch {
            state,
            priority: q.priority,
            assignee,
            rule_id: given(&q.rule),
            label: given(&q.label),
        };
        let agent_id = match q.host.as_deref().filter(|h| !h.is_empty()) {
            Some(name) => Some(self.resolve_host(name).await?),
            None => None,
        };
        let limit = match q.limit {
            None | Some(0) => DEFAULT_TICKETS,
            Some(n) => n.min(MAX_TICKETS),
        };
        Ok((
            TicketFilter {
                open,
                agent_id,
                limit,
            },
            more,
        ))
    }

    /// One ticket in full.
    pub async fn ticket_detail(&self, id: i64) -> ServiceResult<TicketDetail> {
        let ticket = self
            .store
            .ticket(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("ticket {id} not found")))?;
        let timeline = self.store.timeline(id).await?;
        let linked = if ticket.linked_hosts > 0 {
            self.store.linked_tickets(id).await?
        } else {
            Vec::new()
        };
        let kb_markdown =
            crate::kb::article(&ticket.kb, self.kb_dir.as_deref()).unwrap_or_default();
        Ok(TicketDetail {
            ticket,
            timeline,
            kb_markdown,
            linked,
        })
    }

    /// Applies an action (`verb` as in [`crate::tickets::ACTION_VERBS`], or a short form) by
    /// `actor`; returns the ticket as it is afterwards.
    pub async fn act(
        &self,
        id: i64,
        verb: &str,
        text: &str,
        actor: &str,
        now_ms: i64,
    ) -> ServiceResult<TicketDetail> {
        let action = TicketAction::parse(verb, text).map_err(ServiceError::Invalid)?;
        super::short_text("actor", actor, 255)?;
        let mut tx = self.store.begin_write().await?;
        let kind = tx
            .ticket_action(id, &action, actor, now_ms, &self.engine.sla)
            .await?;
        tx.commit().await?;
        tracing::info!(ticket = id, actor, event = kind.as_str(), "ticket updated");
        self.ticket_detail(id).await
    }
}
