//! Human output of the CLI: aligned tables and the ticket page, drawn from the domain types.
//! (`--json` prints the types' own serialisation, the same documents as the HTTP API.)

use std::time::SystemTime;

use crate::clock::from_ms;
use crate::service::{EventPage, Handoff, Host, SilenceView, TicketDetail};
use crate::tickets::Ticket;

/// Renders rows as a table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// The measured value in the unit of its rule.
fn value_cell(t: &Ticket) -> String {
    match t.rule_id.as_str() {
        "disk.usage" | "disk.inodes" => format!("{:.1}%", t.last_value),
        "disk.forecast" => format!("{:.0}h left", t.last_value),
        _ if t.last_value == 0.0 => "-".into(),
        _ => format!("{:.1}", t.last_value),
    }
}

/// "3m ago" style age of a stored time, relative to `now`.
pub fn age(ms: i64, now: SystemTime) -> String {
    if ms <= 0 {
        return "never".into();
    }
    let secs = now
        .duration_since(from_ms(ms))
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// "in 42m" or "overdue 5m" for a due time.
pub fn due(ms: i64, now: SystemTime) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let now_ms = crate::clock::to_ms(now);
    let (word, secs) = if ms >= now_ms {
        ("in", (ms - now_ms) / 1000)
    } else {
        ("overdue", (now_ms - ms) / 1000)
    };
    let amount = match secs {
        0..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    };
    format!("{word} {amount}")
}

/// The response SLA of a ticket: met once acknowledged, nothing due once it is not open.
fn response_cell(t: &Ticket, now: SystemTime) -> String {
    match (t.acknowledged_at_ms, t.state.is_open()) {
        (Some(at), _) => met_or_missed(at, t.response_due_ms),
        (None, true) => due(t.response_due_ms, now),
        (None, false) => "-".into(),
    }
}

/// The resolve SLA of a ticket: counting while open, met or missed once resolved.
fn resolve_cell(t: &Ticket, now: SystemTime) -> String {
    match (t.resolved_at_ms, t.state.is_open()) {
        (_, true) => due(t.resolve_due_ms, now),
        (Some(at), false) => met_or_missed(at, t.resolve_due_ms),
        (None, false) => "-".into(),
    }
}

fn met_or_missed(at_ms: i64, due_ms: i64) -> String {
    if due_ms <= 0 || at_ms <= due_ms {
        "met".into()
    } else {
        "missed".into()
    }
}

/// The state with what else a technician should see at a glance.
fn state_cell(t: &Ticket) -> String {
    let mut cell = t.state.as_str().to_owned();
    if t.flapping {
        cell.push_str(" flapping");
    }
    if t.tier > 1 {
        cell.push_str(&format!(" T{}", t.tier));
    }
    if t.linked_hosts > 0 {
        cell.push_str(&format!(" ({} hosts)", t.linked_hosts));
    }
    cell
}

pub fn tickets_table(tickets: &[Ticket], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = tickets
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                format!("P{}", t.priority),
                state_cell(t),
                t.hostname.clone(),
                t.subject.clone(),
                value_cell(t),
                t.occurrences.to_string(),
                age(t.opened_at_ms, now),
                resolve_cell(t, now),
                t.title.clone(),
            ]
        })
        .collect();
    let header = [
        "ID", "PRIO", "STATE", "HOST", "SUBJECT", "VALUE", "SEEN", "OPENED", "RESOLVE", "TITLE",
    ];
    table(&header, &rows)
}

/// One ticket with its timeline and knowledge-base steps.
pub fn ticket_detail(d: &TicketDetail, now: SystemTime) -> String {
    let t = &d.ticket;
    let mut out = format!(
        "#{} P{} {} (tier {}) {}\n",
        t.id,
        t.priority,
        state_cell(t),
        t.tier,
        t.title
    );
    out.push_str(&format!(
        "host {}  rule {}  subject {}  seen {} times\n",
        t.hostname, t.rule_id, t.subject, t.occurrences
    ));
    out.push_str(&format!(
        "opened {}  response {}  resolve {}  assignee {}\n",
        age(t.opened_at_ms, now),
        response_cell(t, now),
        resolve_cell(t, now),
        if t.assignee.is_empty() {
            "-"
        } else {
            &t.assignee
        }
    ));
    if let Some(parent) = t.parent_id {
        out.push_str(&format!("part of outage #{parent}\n"));
    }
    if !d.linked.is_empty() {
        out.push_str(&format!("\nHOSTS ({})\n", d.linked.len()));
        for l in &d.linked {
            out.push_str(&format!(
                "  #{} {} {}\n",
                l.id,
                l.hostname,
                l.state.as_str()
            ));
        }
    }
    out.push_str("\nTIMELINE\n");
    for e in &d.timeline {
        let who = if e.actor.is_empty() {
            String::new()
        } else {
            format!(" by {}", e.actor)
        };
        let observed = if e.observed_at_ms > 0 && e.observed_at_ms != e.at_ms {
            format!(
                " (observed {}, reported late)",
                humantime::format_rfc3339_seconds(from_ms(e.observed_at_ms))
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {}  {}{}  {}{observed}\n",
            humantime::format_rfc3339_seconds(from_ms(e.at_ms)),
            e.kind.as_str(),
            who,
            e.detail
        ));
    }
    if !d.kb_markdown.is_empty() {
        out.push_str("\nWHAT TO DO\n");
        out.push_str(&d.kb_markdown);
    }
    out
}

/// The end-of-shift report.
pub fn handoff(r: &Handoff, now: SystemTime, since: std::time::Duration) -> String {
    let rows = |tickets: &[Ticket]| -> Vec<Vec<String>> {
        tickets
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    format!("P{}", t.priority),
                    state_cell(t),
                    t.hostname.clone(),
                    age(t.opened_at_ms, now),
                    resolve_cell(t, now),
                    if t.assignee.is_empty() {
                        "-".into()
                    } else {
                        t.assignee.clone()
                    },
                    t.title.clone(),
                ]
            })
            .collect()
    };
    let header = [
        "ID", "PRIO", "STATE", "HOST", "OPENED", "RESOLVE", "ASSIGNEE", "TITLE",
    ];
    let count = |list: &[Ticket], cut: bool| {
        if cut {
            format!("first {}, list cut", list.len())
        } else {
            list.len().to_string()
        }
    };
    let mut out = format!(
        "OPEN P1/P2 ({})\n",
        count(&r.critical_open, r.cut.critical_open)
    );
    out.push_str(&table(&header, &rows(&r.critical_open)));
    out.push_str(&format!(
        "\nESCALATED ({})\n",
        count(&r.escalated, r.cut.escalated)
    ));
    out.push_str(&table(&header, &rows(&r.escalated)));
    out.push_str(&format!(
        "\nRESOLVED IN THE LAST {} ({}; outages stand for their hosts)\n",
        humantime::format_duration(since),
        count(&r.resolved_since, r.cut.resolved_since)
    ));
    out.push_str(&table(&header, &rows(&r.resolved_since)));
    out
}

pub fn hosts_table(hosts: &[Host], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let fullest = h
                .filesystems
                .iter()
                .max_by(|a, b| a.used_percent.total_cmp(&b.used_percent))
                .map(|f| format!("{} {:.1}%", f.mount_point, f.used_percent))
                .unwrap_or_else(|| "-".into());
            let mut notes = Vec::new();
            if h.revoked {
                notes.push("revoked".to_owned());
            }
            if !h.same_machine_as.is_empty() {
                notes.push(format!("same machine as {}", h.same_machine_as.join(", ")));
            }
            if let Some(at) = h.identity_conflict_at_ms {
                let ago = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|n| (n.as_millis() as i64 - at).max(0) / 1000)
                    .unwrap_or(0);
                if ago * 1000 < crate::ingest::instance::DIVERGED_FOR_MS {
                    notes.push(format!("identity used by two machines ({}s ago)", ago));
                }
            }
            if h.clock_skew_ms.abs() > crate::report::CLOCK_TOLERANCE_MS {
                notes.push(format!("clock off by {}s", h.clock_skew_ms / 1000));
            }
            notes.extend(h.pending.iter().map(|p| pending_note(p, now)));
            vec![
                h.hostname.clone(),
                h.agent_id.clone(),
                h.os.clone(),
                age(h.last_seen_at_ms.unwrap_or(0), now),
                h.filesystems.len().to_string(),
                fullest,
                updates_cell(h),
                antivirus_cell(h),
                network_cell(h),
                if h.labels.is_empty() {
                    "-".into()
                } else {
                    h.labels.join(",")
                },
                if notes.is_empty() {
                    "-".into()
                } else {
                    notes.join("; ")
                },
            ]
        })
        .collect();
    let header = [
        "HOST",
        "AGENT ID",
        "OS",
        "LAST SEEN",
        "DISKS",
        "FULLEST",
        "UPDATES",
        "ANTIVIRUS",
        "NETWORK",
        "LABELS",
        "NOTES",
    ];
    table(&header, &rows)
}

/// "P2 updates.security in 4d if still so" for a condition on its way to a ticket.
pub fn pending_note(p: &crate::service::PendingCondition, now: SystemTime) -> String {
    let when = if p.reports_to_go > 0 {
        format!("after {} more failing reports", p.reports_to_go)
    } else {
        due(p.opens_at_ms, now)
    };
    format!(
        "P{} {} {} {when} if still so",
        p.priority, p.rule_id, p.subject
    )
}

/// "12 (3 sec), reboot" or "-" when the patch probe has not reported.
fn updates_cell(h: &Host) -> String {
    let Some(p) = &h.facts.patches else {
        return "-".into();
    };
    let mut cell = format!("{} ({} sec)", p.pending_count, p.security_count);
    if p.reboot_required {
        cell.push_str(", reboot");
    }
    cell
}

/// The products and their state, e.g. "ClamAV on" or "none".
fn antivirus_cell(h: &Host) -> String {
    let Some(a) = &h.facts.antivirus else {
        return "-".into();
    };
    if a.products.is_empty() {
        return "none".into();
    }
    a.products
        .iter()
        .map(|p| {
            let state = if !p.running {
                "off"
            } else if p.realtime_protection {
                "on"
            } else {
                "running"
            };
            format!("{} {state}", p.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "ok", or the number of failing checks, or "no gateway".
fn network_cell(h: &Host) -> String {
    let Some(c) = &h.facts.connectivity else {
        return "-".into();
    };
    if !c.gateway.as_ref().is_some_and(|g| g.present) {
        return "no gateway".into();
    }
    let failing = c
        .dns
        .iter()
        .chain(&c.tcp)
        .chain(c.collector.as_ref())
        .filter(|x| !x.ok)
        .count()
        + c.https.iter().filter(|x| !x.ok).count();
    if failing == 0 {
        "ok".into()
    } else {
        format!("{failing} failing")
    }
}

pub fn silences_table(list: &[SilenceView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                format!("{} {}", s.matcher_kind, s.matcher_value),
                humantime::format_rfc3339_seconds(from_ms(s.starts_at_ms)).to_string(),
                humantime::format_rfc3339_seconds(from_ms(s.ends_at_ms)).to_string(),
                s.created_by.clone(),
                s.reason.clone(),
            ]
        })
        .collect();
    table(&["ID", "MATCHES", "FROM", "UNTIL", "BY", "REASON"], &rows)
}

pub fn events_table(page: &EventPage) -> String {
    let rows: Vec<Vec<String>> = page
        .events
        .iter()
        .map(|e| {
            vec![
                e.cursor.to_string(),
                humantime::format_rfc3339_seconds(from_ms(e.at_ms)).to_string(),
                e.kind.as_str().to_owned(),
                format!("#{}", e.ticket.id),
                format!("P{}", e.ticket.priority),
                e.ticket.hostname.clone(),
                e.detail.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &["CURSOR", "AT", "EVENT", "TICKET", "PRIO", "HOST", "DETAIL"],
        &rows,
    );
    out.push_str(&format!("next cursor: {}\n", page.next_cursor));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let out = table(
            &["ID", "HOST"],
            &[
                vec!["1".into(), "laptop-42".into()],
                vec!["100".into(), "pc".into()],
            ],
        );
        assert_eq!(out, "ID   HOST\n1    laptop-42\n100  pc\n");
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        let now = from_ms(10_000_000);
        assert_eq!(age(10_000_000 - 5_000, now), "5s ago");
        assert_eq!(age(10_000_000 - 300_000, now), "5m ago");
        assert_eq!(age(0, now), "never");
    }

    #[test]
    fn a_late_event_shows_when_it_was_observed() {
        let t = crate::tickets::lifecycle::tests_support::ticket();
        let event = |at_ms: i64, observed_at_ms: i64| crate::tickets::TicketEvent {
            cursor: 1,
            ticket_id: t.id,
            at_ms,
            observed_at_ms,
            kind: crate::tickets::EventKind::Resolved,
            actor: String::new(),
            detail: "condition cleared".into(),
        };
        let page = |e| TicketDetail {
            ticket: t.clone(),
            timeline: vec![e],
            kb_markdown: String::new(),
            linked: Vec::new(),
        };
        let now = from_ms(1_900_000_000_000);
        let late = ticket_detail(&page(event(1_800_007_200_000, 1_800_003_600_000)), now);
        assert!(
            late.contains("condition cleared (observed 2027-01-15T09:00:00Z, reported late)"),
            "{late}"
        );
        let on_time = ticket_detail(&page(event(1_800_003_600_000, 1_800_003_600_000)), now);
        assert!(!on_time.contains("observed"), "{on_time}");
    }

    #[test]
    fn a_resolved_ticket_shows_no_time_left() {
        let now = from_ms(10_000_000);
        let mut t = crate::tickets::lifecycle::tests_support::ticket();
        t.resolve_due_ms = 10_000_000 + 7 * 3_600_000;
        assert_eq!(resolve_cell(&t, now), "in 7h");
        t.state = crate::tickets::TicketState::Resolved;
        t.resolved_at_ms = Some(9_000_000);
        assert_eq!(resolve_cell(&t, now), "met");
        t.resolved_at_ms = Some(10_000_000 + 8 * 3_600_000);
        assert_eq!(resolve_cell(&t, now), "missed");
        t.flapping = true;
        t.tier = 3;
        assert_eq!(state_cell(&t), "resolved flapping T3");
    }
}
