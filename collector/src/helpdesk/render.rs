//! The text a help desk receives: the subject (with the tag the sync finds the ticket by),
//! the body of a new remote ticket (the facts, the hosts of an outage, the knowledge-base
//! steps, a link back to the dashboard) and one comment per event of the ticket's timeline.
//! Pure functions of a ticket and its events; times are RFC 3339 in UTC.

use std::fmt::Write as _;

use crate::feeds::payload::{priority_name, rfc3339};
use crate::store::FLEET;
use crate::tickets::{EventKind, Ticket, TicketEvent};

/// Longest subject sent (RT's Subject column holds 200 characters).
const MAX_SUBJECT_CHARS: usize = 200;
/// Hosts listed in an outage's body; the rest are counted.
const MAX_LISTED_HOSTS: usize = 200;

/// A ticket with what its remote ticket shows besides it.
#[derive(Debug, Clone, Default)]
pub struct TicketView {
    pub ticket: Ticket,
    /// The host's labels.
    pub labels: Vec<String>,
    /// For an outage: its host tickets.
    pub linked: Vec<Ticket>,
    /// What the ticket opened with (the detail of its first event).
    pub opened_detail: String,
    /// The knowledge-base article, Markdown.
    pub kb_markdown: String,
    /// The dashboard's address (empty: no link back).
    pub dashboard_url: String,
}

/// The tag a remote ticket's subject carries: `[firstline #42]`.
pub fn sync_key(tag: &str, ticket: i64) -> String {
    format!("[{tag} #{ticket}]")
}

/// The subject: `<title> on <host> [tag #id]`, shortened to fit but never losing the tag.
pub fn subject(view: &TicketView, key: &str) -> String {
    let t = &view.ticket;
    let what = if t.agent_id == FLEET || t.hostname.is_empty() || t.title.contains(&t.hostname) {
        t.title.clone()
    } else {
        format!("{} on {}", t.title, t.hostname)
    };
    let room = MAX_SUBJECT_CHARS.saturating_sub(key.chars().count() + 1);
    let mut what: String = what.chars().filter(|c| !c.is_control()).collect();
    if what.chars().count() > room {
        what = what
            .chars()
            .take(room.saturating_sub(1))
            .collect::<String>()
            + "…";
    }
    format!("{what} {key}")
}

/// The body of a new remote ticket.
pub fn create_body(view: &TicketView) -> String {
    let t = &view.ticket;
    let mut b = String::new();
    let _ = writeln!(b, "{}", t.title);
    let _ = writeln!(b);
    if !view.opened_detail.is_empty() {
        let _ = writeln!(b, "{}", view.opened_detail);
        let _ = writeln!(b);
    }
    let _ = writeln!(b, "Firstline ticket: #{}", t.id);
    if !view.dashboard_url.is_empty() {
        let _ = writeln!(b, "Dashboard: {}/tickets/{}", view.dashboard_url, t.id);
    }
    let _ = writeln!(b, "Host: {}", t.hostname);
    if !view.labels.is_empty() {
        let _ = writeln!(b, "Labels: {}", view.labels.join(", "));
    }
    let _ = writeln!(b, "Rule: {}", t.rule_id);
    if !t.subject.is_empty() {
        let _ = writeln!(b, "Subject: {}", t.subject);
    }
    let _ = writeln!(b, "Priority: {}", priority_name(t.priority));
    let _ = writeln!(b, "Opened: {}", rfc3339(t.opened_at_ms));
    let _ = writeln!(b, "Last seen: {}", rfc3339(t.last_seen_at_ms));
    let _ = writeln!(b, "Occurrences: {}", t.occurrences);
    if t.last_value != 0.0 {
        let _ = writeln!(b, "Last value: {}", t.last_value);
    }
    if !view.linked.is_empty() {
        let _ = writeln!(b);
        let _ = writeln!(b, "Affected hosts ({}):", view.linked.len());
        for h in view.linked.iter().take(MAX_LISTED_HOSTS) {
            let _ = writeln!(
                b,
                "- {} (Firstline #{}, {})",
                h.hostname,
                h.id,
                h.state.as_str()
            );
        }
        if view.linked.len() > MAX_LISTED_HOSTS {
            let _ = writeln!(b, "- and {} more", view.linked.len() - MAX_LISTED_HOSTS);
        }
    }
    if !view.kb_markdown.trim().is_empty() {
        let _ = writeln!(b);
        let _ = writeln!(b, "What to do:");
        let _ = writeln!(b);
        let _ = writeln!(b, "{}", view.kb_markdown.trim_end());
    }
    let _ = writeln!(b);
    let _ = writeln!(
        b,
        "This ticket follows Firstline ticket #{}: Firstline comments here when it changes and \
         resolves it when the condition clears. Resolving or taking it here does the same in Firstline.",
        t.id
    );
    b
}

/// The comment an event becomes on the remote ticket.
pub fn comment(view: &TicketView, e: &TicketEvent) -> String {
    let t = &view.ticket;
    let who = if e.actor.is_empty() {
        "Firstline".to_owned()
    } else {
        e.actor.clone()
    };
    let at = rfc3339(e.at_ms);
    let what = match e.kind {
        EventKind::Opened => format!("Opened: {}", e.detail),
        EventKind::Priority => format!("Priority raised ({}): {}", e.detail, t.title),
        EventKind::Reopened => format!(
            "Reopened: the condition is back ({} occurrences). {}",
            t.occurrences, e.detail
        ),
        EventKind::Acknowledged => format!("Acknowledged by {who}."),
        EventKind::Assigned => format!("Assigned to {} by {who}.", e.detail),
        EventKind::Comment => format!("Comment by {who}: {}", e.detail),
        EventKind::Resolved => {
            if e.actor.is_empty() {
                format!("Resolved: the condition cleared. {}", e.detail)
            } else {
                format!("Resolved by {who}. {}", e.detail)
            }
        }
        EventKind::Closed => format!("Closed by {who}. {}", e.detail),
        EventKind::Escalated => format!("Escalated: {}", e.detail),
        EventKind::Suppressed => format!("Now {} (one ticket for all its hosts).", e.detail),
        EventKind::Linked => {
            let host = view
                .linked
                .iter()
                .find(|h| e.detail.ends_with(&format!("#{}", h.id)))
                .map_or_else(
                    || e.detail.clone(),
                    |h| format!("{} ({})", h.hostname, e.detail),
                );
            format!(
                "One more host affected: {host}. {} hosts in all.",
                view.linked.len().max(1)
            )
        }
        EventKind::Flapping => format!("Flapping: {}", e.detail),
    };
    format!("[Firstline {at}] {}", what.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::TicketState;

    fn view() -> TicketView {
        TicketView {
            ticket: Ticket {
                id: 42,
                hostname: "pc-17".into(),
                rule_id: "disk.usage".into(),
                subject: "/".into(),
                title: "Disk / at 93% on pc-17".into(),
                priority: 2,
                state: TicketState::New,
                occurrences: 3,
                ..Ticket::default()
            },
            labels: vec!["floor-3".into()],
            opened_detail: "/ is 93.0% full (threshold 90%)".into(),
            kb_markdown: "1. Empty the recycle bin.\n".into(),
            dashboard_url: "https://firstline.example.com".into(),
            ..TicketView::default()
        }
    }

    #[test]
    fn the_subject_carries_the_key_even_when_shortened() {
        let mut v = view();
        assert_eq!(
            subject(&v, &sync_key("firstline", 42)),
            "Disk / at 93% on pc-17 [firstline #42]"
        );
        v.ticket.title = "x".repeat(500);
        let s = subject(&v, "[firstline #42]");
        assert!(s.ends_with("… [firstline #42]"), "{s}");
        assert_eq!(s.chars().count(), MAX_SUBJECT_CHARS);
    }

    #[test]
    fn the_body_has_the_facts_steps_and_link_back() {
        let b = create_body(&view());
        for want in [
            "/ is 93.0% full (threshold 90%)",
            "Firstline ticket: #42",
            "Dashboard: https://firstline.example.com/tickets/42",
            "Host: pc-17",
            "Labels: floor-3",
            "Priority: P2",
            "1. Empty the recycle bin.",
        ] {
            assert!(b.contains(want), "{want:?} missing from:\n{b}");
        }
    }

    #[test]
    fn an_outage_lists_its_hosts() {
        let mut v = view();
        // As the store keeps an outage: on the pseudo agent, under a host name of its own.
        v.ticket.agent_id = FLEET.into();
        v.ticket.hostname = "(fleet)".into();
        let s = subject(&v, "[firstline #9]");
        assert!(!s.contains("(fleet)"), "{s}");
        v.linked = (1..=3)
            .map(|i| Ticket {
                id: i,
                hostname: format!("pc-{i}"),
                state: TicketState::Suppressed,
                ..Ticket::default()
            })
            .collect();
        let b = create_body(&v);
        assert!(b.contains("Affected hosts (3):"), "{b}");
        assert!(b.contains("- pc-2 (Firstline #2, suppressed)"), "{b}");
        let e = TicketEvent {
            kind: EventKind::Linked,
            detail: "host ticket #3".into(),
            ..TicketEvent::default()
        };
        assert!(
            comment(&v, &e)
                .contains("One more host affected: pc-3 (host ticket #3). 3 hosts in all.")
        );
    }
}
