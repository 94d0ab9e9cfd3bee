//! The ticket lifecycle as pure decisions over a ticket and a time: which action is legal in
//! which state and what it changes, SLA due times, what a priority raise changes, when a
//! ticket escalates to tier 2 and tier 3, when a flapping ticket may resolve, and whether a
//! recurring condition reopens its resolved ticket. The store applies what these decide.

use std::time::Duration;

use super::{EventKind, Ticket, TicketAction, TicketState};

/// SLA times per priority (index 0 is P1): response (acknowledge by), resolve (fix by), and
/// how long a ticket may stay on tier 2 before it escalates to tier 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    pub response: [Duration; 4],
    pub resolve: [Duration; 4],
    pub tier2: [Duration; 4],
}

/// Highest tier a ticket escalates to.
pub const TOP_TIER: u32 = 3;

/// What a person's action changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state, when the action changes it.
    pub state: Option<TicketState>,
    pub event: EventKind,
    pub detail: String,
}

/// What a priority raise changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raise {
    pub priority: u32,
    pub response_due_ms: i64,
    pub resolve_due_ms: i64,
    pub detail: String,
}

/// What the clear condition does to an open ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearDecision {
    Resolve,
    /// Flapping: wait until the condition stayed clear for the flap window; `since` is when it
    /// went clear.
    Wait {
        since_ms: i64,
    },
}

/// What a recurring condition does to its resolved ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    /// Open a new ticket.
    New,
    /// Reopen the resolved one; `flapping` when it resolved within the flap window.
    Reopen { flapping: bool },
}

impl Default for Sla {
    fn default() -> Self {
        let m = |minutes: u64| Duration::from_secs(minutes * 60);
        Self {
            response: [m(15), m(60), m(4 * 60), m(24 * 60)],
            resolve: [m(4 * 60), m(8 * 60), m(3 * 24 * 60), m(7 * 24 * 60)],
            tier2: [m(2 * 60), m(8 * 60), m(2 * 24 * 60), m(5 * 24 * 60)],
        }
    }
}

impl Sla {
    /// Response and resolve due times of a ticket of `priority` starting at `from_ms`.
    pub fn due(&self, from_ms: i64, priority: u32) -> (i64, i64) {
        let i = index(priority);
        (
            from_ms.saturating_add(ms(self.response[i])),
            from_ms.saturating_add(ms(self.resolve[i])),
        )
    }
}

/// Whether `action` is legal for a ticket in `state`, and what it changes.
pub fn act(state: TicketState, action: &TicketAction) -> Result<Transition, String> {
    let (new_state, event) = match action {
        TicketAction::Acknowledge if state == TicketState::New => {
            (Some(TicketState::Acknowledged), EventKind::Acknowledged)
        }
        TicketAction::Assign(_) if state != TicketState::Closed => (None, EventKind::Assigned),
        TicketAction::Comment(_) => (None, EventKind::Comment),
        TicketAction::Resolve(_) if state.is_open() || state == TicketState::Suppressed => {
            (Some(TicketState::Resolved), EventKind::Resolved)
        }
        TicketAction::Reopen(_) if matches!(state, TicketState::Resolved | TicketState::Closed) => {
            (Some(TicketState::New), EventKind::Reopened)
        }
        TicketAction::Close if state == TicketState::Resolved => {
            (Some(TicketState::Closed), EventKind::Closed)
        }
        _ => {
            return Err(format!(
                "cannot {} a ticket that is {}",
                action.verb(),
                state.as_str()
            ));
        }
    };
    Ok(Transition {
        state: new_state,
        event,
        detail: action.text().to_owned(),
    })
}

/// A raise of an open ticket to `priority` at `at_ms`, or `None` when it is not more urgent.
/// Due times become the earlier of the old ones and those of the new priority from now.
pub fn raise(ticket: &Ticket, priority: u32, at_ms: i64, sla: &Sla) -> Option<Raise> {
    if priority >= ticket.priority {
        return None;
    }
    let (response, resolve) = sla.due(at_ms, priority);
    Some(Raise {
        priority,
        response_due_ms: response.min(ticket.response_due_ms),
        resolve_due_ms: resolve.min(ticket.resolve_due_ms),
        detail: format!("P{} -> P{priority}", ticket.priority),
    })
}

/// The tier an open ticket escalates to at `now_ms`, with why; `None` when it stays.
pub fn escalation(ticket: &Ticket, now_ms: i64, sla: &Sla) -> Option<(u32, String)> {
    if !ticket.state.is_open() || ticket.tier >= TOP_TIER {
        return None;
    }
    if ticket.tier <= 1 {
        let unacknowledged = ticket.state == TicketState::New
            && ticket.response_due_ms > 0
            && ticket.response_due_ms <= now_ms;
        let unresolved = ticket.resolve_due_ms > 0 && ticket.resolve_due_ms <= now_ms;
        return if unresolved {
            Some((2, "resolve time passed".into()))
        } else if unacknowledged {
            Some((2, "not acknowledged within the response time".into()))
        } else {
            None
        };
    }
    let since = ticket.escalated_at_ms?;
    let limit = ms(sla.tier2[index(ticket.priority)]);
    (now_ms >= since.saturating_add(limit)).then(|| {
        (
            TOP_TIER,
            format!(
                "still open {} after escalating to tier 2",
                humantime::format_duration(Duration::from_millis(
                    u64::try_from(limit).unwrap_or(0)
                ))
            ),
        )
    })
}

/// What the clear condition does to an open ticket at `at_ms`.
pub fn on_clear(ticket: &Ticket, at_ms: i64, flap_window: Duration) -> ClearDecision {
    let since_ms = ticket.clear_since_ms.unwrap_or(at_ms);
    if ticket.flapping && at_ms - since_ms < ms(flap_window) {
        ClearDecision::Wait { since_ms }
    } else {
        ClearDecision::Resolve
    }
}

/// Whether a condition that holds again at `at_ms` reopens a ticket resolved at
/// `resolved_at_ms` (by the condition clearing or by a person).
pub fn recurrence(
    resolved_at_ms: Option<i64>,
    at_ms: i64,
    reopen_window: Duration,
    flap_window: Duration,
) -> Recurrence {
    match resolved_at_ms {
        Some(r) if at_ms - r <= ms(reopen_window) => Recurrence::Reopen {
            flapping: at_ms - r < ms(flap_window),
        },
        _ => Recurrence::New,
    }
}

fn index(priority: u32) -> usize {
    usize::try_from(priority.clamp(1, 4) - 1).unwrap_or(3)
}

/// A duration in milliseconds, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A ticket to test decisions on, for this crate's tests.
#[cfg(test)]
pub mod tests_support {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    /// An open P2 ticket on tier 1, opened at a fixed time.
    pub fn ticket() -> Ticket {
        ticket_in(TicketState::New, 2, 1)
    }

    pub fn ticket_in(state: TicketState, priority: u32, tier: u32) -> Ticket {
        let (response_due_ms, resolve_due_ms) = Sla::default().due(T0, priority);
        Ticket {
            id: 1,
            dedupe_key: String::new(),
            agent_id: "a".into(),
            hostname: "pc".into(),
            rule_id: "disk.usage".into(),
            subject: "/".into(),
            state,
            priority,
            opened_priority: priority,
            title: String::new(),
            occurrences: 1,
            opened_at_ms: T0,
            last_seen_at_ms: T0,
            resolved_at_ms: None,
            last_value: 0.0,
            tier,
            escalated_at_ms: (tier > 1).then_some(T0),
            assignee: String::new(),
            acknowledged_at_ms: None,
            response_due_ms,
            resolve_due_ms,
            kb: String::new(),
            flapping: false,
            clear_since_ms: None,
            parent_id: None,
            linked_hosts: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    use super::tests_support::ticket_in as ticket;

    #[test]
    fn actions_are_legal_only_in_their_states() {
        use TicketState::*;
        let ack = TicketAction::Acknowledge;
        let close = TicketAction::Close;
        let reopen = TicketAction::Reopen(String::new());
        let resolve = TicketAction::Resolve(String::new());
        let cases = [
            (New, &ack, Ok(Some(Acknowledged))),
            (
                Acknowledged,
                &ack,
                Err("cannot acknowledge a ticket that is acknowledged"),
            ),
            (Resolved, &close, Ok(Some(Closed))),
            (New, &close, Err("cannot close a ticket that is new")),
            (Closed, &reopen, Ok(Some(New))),
            (New, &reopen, Err("cannot reopen a ticket that is new")),
            (Acknowledged, &resolve, Ok(Some(Resolved))),
            (
                Closed,
                &resolve,
                Err("cannot resolve a ticket that is closed"),
            ),
            (Closed, &TicketAction::Comment("x".into()), Ok(None)),
        ];
        for (state, action, expected) in cases {
            let got = act(state, action).map(|t| t.state);
            assert_eq!(got, expected.map_err(str::to_owned), "{state:?} {action:?}");
        }
    }

    #[test]
    fn a_raise_moves_due_times_forward_but_never_back() {
        let sla = Sla::default();
        let t = ticket(TicketState::New, 2, 1);
        let r = raise(&t, 1, T0 + 10 * MIN, &sla).expect("P2 -> P1 is a raise");
        assert_eq!(r.priority, 1);
        assert_eq!(
            r.response_due_ms,
            T0 + 10 * MIN + 15 * MIN,
            "P1 response from the raise"
        );
        assert_eq!(
            r.resolve_due_ms,
            T0 + 10 * MIN + 240 * MIN,
            "P1 resolve from the raise"
        );
        assert_eq!(r.detail, "P2 -> P1");
        assert_eq!(raise(&t, 2, T0, &sla), None);
        assert_eq!(raise(&t, 3, T0, &sla), None, "never lowered");
        // Late in the ticket's life the old due times are earlier and stay.
        let late = raise(&t, 1, T0 + 470 * MIN, &sla).expect("raise");
        assert_eq!(late.resolve_due_ms, t.resolve_due_ms);
    }

    #[test]
    fn tickets_escalate_through_three_tiers() {
        let sla = Sla::default();
        let fresh = ticket(TicketState::New, 2, 1);
        assert_eq!(escalation(&fresh, T0 + MIN, &sla), None);
        assert_eq!(
            escalation(&fresh, T0 + 61 * MIN, &sla).map(|e| e.0),
            Some(2),
            "P2 not acknowledged within an hour"
        );
        let acked = Ticket {
            state: TicketState::Acknowledged,
            ..fresh.clone()
        };
        assert_eq!(escalation(&acked, T0 + 61 * MIN, &sla), None);
        assert_eq!(
            escalation(&acked, T0 + 481 * MIN, &sla).map(|e| e.0),
            Some(2)
        );
        let tier2 = ticket(TicketState::Acknowledged, 2, 2);
        assert_eq!(escalation(&tier2, T0 + 479 * MIN, &sla), None);
        let (tier, why) = escalation(&tier2, T0 + 480 * MIN, &sla).expect("tier 3");
        assert_eq!(tier, 3);
        assert!(why.contains("8h"), "{why}");
        let top = ticket(TicketState::New, 1, 3);
        assert_eq!(escalation(&top, T0 + 100_000 * MIN, &sla), None);
        let resolved = ticket(TicketState::Resolved, 1, 1);
        assert_eq!(escalation(&resolved, T0 + 100_000 * MIN, &sla), None);
    }

    #[test]
    fn flapping_tickets_wait_for_the_window_and_recurrences_reopen() {
        let window = Duration::from_secs(15 * 60);
        let mut t = ticket(TicketState::New, 2, 1);
        assert_eq!(on_clear(&t, T0, window), ClearDecision::Resolve);
        t.flapping = true;
        assert_eq!(
            on_clear(&t, T0, window),
            ClearDecision::Wait { since_ms: T0 }
        );
        t.clear_since_ms = Some(T0);
        assert_eq!(
            on_clear(&t, T0 + 14 * MIN, window),
            ClearDecision::Wait { since_ms: T0 }
        );
        assert_eq!(on_clear(&t, T0 + 15 * MIN, window), ClearDecision::Resolve);
        let day = Duration::from_secs(86_400);
        assert_eq!(recurrence(None, T0, day, window), Recurrence::New);
        assert_eq!(
            recurrence(Some(T0), T0 + MIN, day, window),
            Recurrence::Reopen { flapping: true }
        );
        assert_eq!(
            recurrence(Some(T0), T0 + 60 * MIN, day, window),
            Recurrence::Reopen { flapping: false }
        );
        assert_eq!(
            recurrence(Some(T0), T0 + 1441 * MIN, day, window),
            Recurrence::New
        );
    }
}
