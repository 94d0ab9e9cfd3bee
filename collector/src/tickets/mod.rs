//! The ticket domain: what a ticket is, the states it moves through, the events its timeline
//! records and the actions people take on it. The decisions (which action is legal in which
//! state, SLA due times, priority raises, escalation tiers, flapping, reopening) are pure
//! functions in `lifecycle`; the store applies them. No SQL and no wire types here.

pub mod lifecycle;

use serde::Serialize;

pub use lifecycle::{ClearDecision, Sla};

/// The states a ticket can be in. `new` and `acknowledged` count as open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    #[default]
    New,
    Acknowledged,
    /// A host's ticket under an outage ticket: tracked, but not in the queue.
    Suppressed,
    Resolved,
    Closed,
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[default]
    Opened,
    /// The priority was raised (detail: "P2 -> P1").
    Priority,
    Reopened,
    Acknowledged,
    Assigned,
    Comment,
    Resolved,
    Closed,
    Escalated,
    /// A host ticket was put under an outage.
    Suppressed,
    /// An outage got one more host ticket.
    Linked,
    Flapping,
}

/// A stored value that is not one of the known names: the store reports it, naming the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

/// A ticket, as every interface shows it (the JSON of the HTTP API and `--json`, and the
/// fields of the gRPC `Ticket` message, under the same names).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ticket {
    pub id: i64,
    #[serde(skip)]
    pub dedupe_key: String,
    pub agent_id: String,
    pub hostname: String,
    pub rule_id: String,
    pub subject: String,
    pub state: TicketState,
    pub priority: u32,
    pub opened_priority: u32,
    pub title: String,
    pub occurrences: u64,
    pub opened_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub last_value: f64,
    pub tier: u32,
    pub escalated_at_ms: Option<i64>,
    pub assignee: String,
    pub acknowledged_at_ms: Option<i64>,
    pub response_due_ms: i64,
    pub resolve_due_ms: i64,
    pub kb: String,
    /// The condition toggles faster than the flap window; the ticket stays open.
    pub flapping: bool,
    /// While flapping: since when the condition has been clear.
    #[serde(skip)]
    pub clear_since_ms: Option<i64>,
    /// The outage this host ticket is suppressed under.
    pub parent_id: Option<i64>,
    /// For an outage ticket: the host tickets linked to it.
    pub linked_hosts: u32,
}

/// One entry of a ticket's timeline, which is also the alert event log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TicketEvent {
    pub cursor: i64,
    pub ticket_id: i64,
    /// When the timeline shows it: never before the ticket's previous event.
    pub at_ms: i64,
    /// When it was observed (the snapshot's time); differs from `at_ms` only for a replayed
    /// spool that arrived after later events.
    pub observed_at_ms: i64,
    pub kind: EventKind,
    pub actor: String,
    pub detail: String,
}

/// What a person does to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketAction {
    Acknowledge,
    Assign(String),
    Comment(String),
    Resolve(String),
    Reopen(String),
    Close,
}

/// Longest text of an action (a comment, an assignee, a reason).
pub const MAX_ACTION_TEXT: usize = 4096;
/// The action verbs, as every interface names them.
pub const ACTION_VERBS: [&str; 6] = [
    "acknowledge",
    "assign",
    "comment",
    "resolve",
    "reopen",
    "close",
];

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Acknowledged => "acknowledged",
            Self::Suppressed => "suppressed",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownName> {
        Ok(match s {
            "new" => Self::New,
            "acknowledged" => Self::Acknowledged,
            "suppressed" => Self::Suppressed,
            "resolved" => Self::Resolved,
            "closed" => Self::Closed,
            _ => return Err(unknown("ticket state", s)),
        })
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::Acknowledged)
    }
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        Self::Opened,
        Self::Priority,
        Self::Reopened,
        Self::Acknowledged,
        Self::Assigned,
        Self::Comment,
        Self::Resolved,
        Self::Closed,
        Self::Escalated,
        Self::Suppressed,
        Self::Linked,
        Self::Flapping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Priority => "priority",
            Self::Reopened => "reopened",
            Self::Acknowledged => "acknowledged",
            Self::Assigned => "assigned",
            Self::Comment => "comment",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Escalated => "escalated",
            Self::Suppressed => "suppressed",
            Self::Linked => "linked",
            Self::Flapping => "flapping",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| unknown("event kind", s))
    }
}

impl TicketAction {
    /// Builds an action from its verb (or a short form: `ack`) and its text, checking the text
    /// the same way whichever interface it came from.
    pub fn parse(verb: &str, text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > MAX_ACTION_TEXT {
            return Err(format!("text is at most {MAX_ACTION_TEXT} bytes"));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err("text must not contain control characters".into());
        }
        let needs_text = |what: &str| {
            if text.is_empty() {
                Err(format!("{what} needs a text"))
            } else {
                Ok(text.to_owned())
            }
        };
        Ok(match verb {
            "acknowledge" | "ack" => Self::Acknowledge,
            "assign" => Self::Assign(needs_text("assign")?),
            "comment" => Self::Comment(needs_text("comment")?),
            "resolve" => Self::Resolve(text.to_owned()),
            "reopen" => Self::Reopen(text.to_owned()),
            "close" => Self::Close,
            other => {
                return Err(format!(
                    "action {other:?} is not one of {}",
                    ACTION_VERBS.join(", ")
                ));
            }
        })
    }

    /// The action's verb, as [`ACTION_VERBS`] names it.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Assign(_) => "assign",
            Self::Comment(_) => "comment",
            Self::Resolve(_) => "resolve",
            Self::Reopen(_) => "reopen",
            Self::Close => "close",
        }
    }

    /// The text the action carries (empty for those without).
    pub fn text(&self) -> &str {
        match self {
            Self::Acknowledge | Self::Close => "",
            Self::Assign(t) | Self::Comment(t) | Self::Resolve(t) | Self::Reopen(t) => t,
        }
    }
}

/// The key that makes two conditions the same ticket.
pub fn dedupe_key(agent_id: &str, rule_id: &str, subject: &str) -> String {
    format!("{agent_id}\u{1f}{rule_id}\u{1f}{subject}")
}

fn unknown(what: &'static str, value: &str) -> UnknownName {
    UnknownName {
        what,
        value: value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Ok(kind));
        }
        for state in [
            TicketState::New,
            TicketState::Acknowledged,
            TicketState::Suppressed,
            TicketState::Resolved,
            TicketState::Closed,
        ] {
            assert_eq!(TicketState::parse(state.as_str()), Ok(state));
        }
        assert!(TicketState::parse("nwe").is_err());
        assert_eq!(
            EventKind::parse("opend").expect_err("unknown").to_string(),
            "unknown event kind \"opend\""
        );
    }

    #[test]
    fn actions_are_checked_the_same_way_for_every_interface() {
        assert_eq!(
            TicketAction::parse("ack", ""),
            Ok(TicketAction::Acknowledge)
        );
        assert_eq!(
            TicketAction::parse("comment", "  called the user "),
            Ok(TicketAction::Comment("called the user".into()))
        );
        for (verb, text, why) in [
            ("comment", "   ", "comment needs a text"),
            ("assign", "", "assign needs a text"),
            ("comment", "a\u{7}b", "control characters"),
            ("snooze", "", "not one of acknowledge, assign"),
        ] {
            let error = TicketAction::parse(verb, text).expect_err(why);
            assert!(error.contains(why), "{error}");
        }
        let long = "x".repeat(MAX_ACTION_TEXT + 1);
        assert!(TicketAction::parse("comment", &long).is_err());
        for verb in ACTION_VERBS {
            let action = TicketAction::parse(verb, "text").expect("every verb parses");
            assert_eq!(action.verb(), verb);
        }
    }
}
