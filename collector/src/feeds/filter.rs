//! Which events a feed carries: a pure test over an event and its ticket, so every feed
//! (webhook, Alertmanager, NATS) filters the same way. An empty list means "any".

use crate::store::AlertEvent;
use crate::tickets::EventKind;

/// A feed's filter. Events that do not match are skipped (the feed's cursor still moves past
/// them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    /// Only tickets of this priority or more urgent (1 to 4); 0: all.
    pub max_priority: u32,
    /// Only these rules.
    pub rules: Vec<String>,
    /// Only hosts carrying one of these labels.
    pub labels: Vec<String>,
    /// Only these hosts (host name or agent id).
    pub hosts: Vec<String>,
    /// Only these kinds of event.
    pub kinds: Vec<EventKind>,
}

impl FeedFilter {
    pub fn matches(&self, alert: &AlertEvent) -> bool {
        let t = &alert.ticket;
        (self.max_priority == 0 || t.priority <= self.max_priority)
            && (self.rules.is_empty() || self.rules.contains(&t.rule_id))
            && (self.hosts.is_empty()
                || self
                    .hosts
                    .iter()
                    .any(|h| *h == t.hostname || *h == t.agent_id))
            && (self.labels.is_empty() || alert.labels.iter().any(|l| self.labels.contains(l)))
            && (self.kinds.is_empty() || self.kinds.contains(&alert.event.kind))
    }
}
