//! Human and machine output of the CLI: aligned tables for people, JSON (`--json`) for scripts.

use std::time::SystemTime;

use firstline_proto::v1::{HandoffReport, Host, Ticket, TicketDetail};
use serde_json::{Value, json};

use crate::clock::from_ms;
use crate::report::used_percent as percent;

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

/// RFC 3339 time of a stored value, or null when unset.
pub fn time_json(ms: i64) -> Value {
    if ms <= 0 {
        Value::Null
    } else {
        Value::String(humantime::format_rfc3339_millis(from_ms(ms)).to_string())
    }
}

pub fn tickets_table(tickets: &[Ticket], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = tickets
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                format!("P{}", t.priority),
                t.state.clone(),
                t.hostname.clone(),
                t.subject.clone(),
                value_cell(t),
                t.occurrences.to_string(),
                age(t.opened_at_ms, now),
                t.title.clone(),
            ]
        })
        .collect();
    let header = [
        "ID", "PRIO", "STATE", "HOST", "SUBJECT", "VALUE", "SEEN", "OPENED", "TITLE",
    ];
    table(&header, &rows)
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

/// One ticket with its timeline and knowledge-base steps.
pub fn ticket_detail(d: &TicketDetail, now: SystemTime) -> String {
    let mut out = String::new();
    if let Some(t) = &d.ticket {
        out.push_str(&format!(
            "#{} P{} {} (tier {}) {}\n",
            t.id, t.priority, t.state, t.tier, t.title
        ));
        out.push_str(&format!(
            "host {}  rule {}  subject {}  seen {} times\n",
            t.hostname, t.rule_id, t.subject, t.occurrences
        ));
        out.push_str(&format!(
            "opened {}  response due {}  resolve due {}  assignee {}\n",
            age(t.opened_at_ms, now),
            if t.acknowledged_at_ms > 0 {
                "met".into()
            } else {
                due(t.response_due_ms, now)
            },
            due(t.resolve_due_ms, now),
            if t.assignee.is_empty() {
                "-"
            } else {
                &t.assignee
            }
        ));
    }
    out.push_str("\nTIMELINE\n");
    for e in &d.timeline {
        let who = if e.actor.is_empty() {
            String::new()
        } else {
            format!(" by {}", e.actor)
        };
        out.push_str(&format!(
            "  {}  {}{}  {}\n",
            humantime::format_rfc3339_seconds(crate::clock::from_ms(e.at_ms)),
            e.kind,
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
pub fn handoff(r: &HandoffReport, now: SystemTime, since: std::time::Duration) -> String {
    let rows = |tickets: &[Ticket]| -> Vec<Vec<String>> {
        tickets
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    format!("P{}", t.priority),
                    t.state.clone(),
                    t.hostname.clone(),
                    age(t.opened_at_ms, now),
                    due(t.resolve_due_ms, now),
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
        "ID",
        "PRIO",
        "STATE",
        "HOST",
        "OPENED",
        "RESOLVE DUE",
        "ASSIGNEE",
        "TITLE",
    ];
    let mut out = format!("OPEN P1/P2 ({})\n", r.critical_open.len());
    out.push_str(&table(&header, &rows(&r.critical_open)));
    out.push_str(&format!("\nESCALATED TO TIER 2 ({})\n", r.escalated.len()));
    out.push_str(&table(&header, &rows(&r.escalated)));
    out.push_str(&format!(
        "\nRESOLVED IN THE LAST {} ({})\n",
        humantime::format_duration(since),
        r.resolved_since.len()
    ));
    out.push_str(&table(&header, &rows(&r.resolved_since)));
    out
}

pub fn tickets_json(tickets: &[Ticket]) -> Value {
    Value::Array(
        tickets
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "agent_id": t.agent_id,
                    "hostname": t.hostname,
                    "rule_id": t.rule_id,
                    "subject": t.subject,
                    "state": t.state,
                    "priority": t.priority,
                    "title": t.title,
                    "occurrences": t.occurrences,
                    "opened_at": time_json(t.opened_at_ms),
                    "last_seen_at": time_json(t.last_seen_at_ms),
                    "resolved_at": time_json(t.resolved_at_ms),
                    "last_value": t.last_value,
                })
            })
            .collect(),
    )
}

pub fn hosts_table(hosts: &[Host], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let fullest = h
                .filesystems
                .iter()
                .map(|f| {
                    (
                        percent(f.used_bytes, f.available_bytes),
                        f.mount_point.as_str(),
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(p, m)| format!("{m} {p:.1}%"))
                .unwrap_or_else(|| "-".into());
            vec![
                h.hostname.clone(),
                h.agent_id.clone(),
                h.os.clone(),
                age(h.last_seen_at_ms, now),
                h.last_seq.to_string(),
                h.filesystems.len().to_string(),
                fullest,
                updates_cell(h),
                antivirus_cell(h),
                network_cell(h),
                if h.revoked { "revoked" } else { "active" }.into(),
            ]
        })
        .collect();
    let header = [
        "HOST",
        "AGENT ID",
        "OS",
        "LAST SEEN",
        "SEQ",
        "DISKS",
        "FULLEST",
        "UPDATES",
        "ANTIVIRUS",
        "NETWORK",
        "CERT",
    ];
    table(&header, &rows)
}

/// "12 (3 sec), reboot" or "-" when the patch probe has not reported.
fn updates_cell(h: &Host) -> String {
    let Some(p) = &h.patches else {
        return "-".into();
    };
    let mut cell = format!("{} ({} sec)", p.pending_count, p.security_count);
    if p.reboot_required {
        cell.push_str(", reboot");
    }
    cell
}

/// The products and their state, e.g. "ClamAV ok" or "none".
fn antivirus_cell(h: &Host) -> String {
    let Some(a) = &h.antivirus else {
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
    let Some(c) = &h.connectivity else {
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

pub fn hosts_json(hosts: &[Host]) -> Value {
    Value::Array(
        hosts
            .iter()
            .map(|h| {
                let filesystems: Vec<Value> = h
                    .filesystems
                    .iter()
                    .map(|f| {
                        json!({
                            "mount_point": f.mount_point,
                            "device": f.device,
                            "fs_type": f.fs_type,
                            "total_bytes": f.total_bytes,
                            "used_bytes": f.used_bytes,
                            "available_bytes": f.available_bytes,
                            "used_percent": percent(f.used_bytes, f.available_bytes),
                            "total_inodes": f.total_inodes,
                            "used_inodes": f.used_inodes,
                        })
                    })
                    .collect();
                json!({
                    "agent_id": h.agent_id,
                    "hostname": h.hostname,
                    "os": h.os,
                    "agent_version": h.agent_version,
                    "enrolled_at": time_json(h.enrolled_at_ms),
                    "last_seen_at": time_json(h.last_seen_at_ms),
                    "last_seq": h.last_seq,
                    "snapshots_stored": h.snapshots_stored,
                    "dropped_snapshots": h.dropped_snapshots,
                    "revoked": h.revoked,
                    "filesystems": filesystems,
                    "system": h.system,
                    "patches": h.patches,
                    "antivirus": h.antivirus,
                    "connectivity": h.connectivity,
                    "probe_status": h.probe_status,
                    "uplink": h.uplink,
                })
            })
            .collect(),
    )
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
}
