//! The bodies a webhook sends (docs/feeds.md, "Webhooks", documents every field): Firstline's
//! own JSON ([`firstline_event`], schema `"version": 1`) and the Prometheus Alertmanager
//! webhook message, version 4 ([`alertmanager_v4`]), so receivers written for Alertmanager
//! take our events unchanged. The Alertmanager labels and annotations of an event
//! ([`alert_labels`], [`alert_annotations`]) are shared with the Alertmanager push feed, so an
//! alert carries the same labels whichever way it reaches Alertmanager's world.
//!
//! Pure functions of an event; times are RFC 3339 in UTC.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::from_ms;
use crate::store::AlertEvent;
use crate::tickets::{EventKind, TicketState};

/// The version of Firstline's own webhook schema.
pub const SCHEMA_VERSION: u32 = 1;
/// The event kind of a test delivery (`feeds test`): never an event of the log.
pub const TEST_KIND: &str = "test";
/// Alertmanager's zero time, its `endsAt` of an alert still firing.
pub const ALERTMANAGER_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A time of the store (ms since the epoch) as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(from_ms(ms)).to_string()
}

/// A priority as people write it: `P1` (most urgent) to `P4`.
pub fn priority_name(priority: u32) -> String {
    format!("P{priority}")
}

/// The Alertmanager `severity` of a priority: P1 `critical`, P2 `error`, P3 `warning`,
/// P4 (and anything less urgent) `info`.
pub fn severity(priority: u32) -> &'static str {
    match priority {
        0 | 1 => "critical",
        2 => "error",
        3 => "warning",
        _ => "info",
    }
}

/// Firstline's own webhook body for one event (schema version 1).
pub fn firstline_event(alert: &AlertEvent) -> Value {
    let e = &alert.event;
    let t = &alert.ticket;
    json!({
        "version": SCHEMA_VERSION,
        "test": false,
        "event": {
            "cursor": e.cursor,
            "kind": e.kind.as_str(),
            "at": rfc3339(e.at_ms),
            "observed_at": rfc3339(e.observed_at_ms),
            "actor": e.actor,
            "detail": e.detail,
        },
        "ticket": {
            "id": t.id,
            "rule": t.rule_id,
            "subject": t.subject,
            "host": t.hostname,
            "agent_id": t.agent_id,
            "priority": priority_name(t.priority),
            "opened_priority": priority_name(t.opened_priority),
            "state": t.state.as_str(),
            "title": t.title,
            "occurrences": t.occurrences,
            "opened_at": rfc3339(t.opened_at_ms),
            "last_seen_at": rfc3339(t.last_seen_at_ms),
            "acknowledged_at": t.acknowledged_at_ms.map(rfc3339),
            "resolved_at": t.resolved_at_ms.map(rfc3339),
            "tier": t.tier,
            "assignee": t.assignee,
            "flapping": t.flapping,
            "parent_id": t.parent_id,
            "kb": t.kb,
            "labels": alert.labels,
        },
    })
}

/// The body of a test delivery in Firstline's schema: `"test": true`, event kind `test`,
/// cursor 0 and a made-up ticket 0 on host `firstline-test`, so no receiver can take it for a
/// real alert.
pub fn test_event(now_ms: i64) -> Value {
    json!({
        "version": SCHEMA_VERSION,
        "test": true,
        "event": {
            "cursor": 0,
            "kind": TEST_KIND,
            "at": rfc3339(now_ms),
            "observed_at": rfc3339(now_ms),
            "actor": "firstline-collector feeds test",
            "detail": "a test delivery: no ticket changed",
        },
        "ticket": {
            "id": 0,
            "rule": "firstline.test",
            "subject": "",
            "host": "firstline-test",
            "agent_id": "",
            "priority": priority_name(4),
            "opened_priority": priority_name(4),
            "state": TicketState::New.as_str(),
            "title": "Firstline webhook test",
            "occurrences": 1,
            "opened_at": rfc3339(now_ms),
            "last_seen_at": rfc3339(now_ms),
            "acknowledged_at": null,
            "resolved_at": null,
            "tier": 1,
            "assignee": "",
            "flapping": false,
            "parent_id": null,
            "kb": "",
            "labels": [],
        },
    })
}

/// Whether an event reports its alert as `firing` or `resolved`: a resolution or closure is
/// resolved; what opens, raises or escalates a ticket is firing; anything else (a comment, an
/// acknowledgement, an assignment) follows the ticket's state now.
pub fn alert_status(alert: &AlertEvent) -> &'static str {
    match alert.event.kind {
        EventKind::Resolved | EventKind::Closed => "resolved",
        EventKind::Opened
        | EventKind::Reopened
        | EventKind::Priority
        | EventKind::Escalated
        | EventKind::Flapping
        | EventKind::Linked
        | EventKind::Suppressed => "firing",
        EventKind::Acknowledged | EventKind::Assigned | EventKind::Comment => {
            match alert.ticket.state {
                TicketState::Resolved | TicketState::Closed => "resolved",
                TicketState::New | TicketState::Acknowledged | TicketState::Suppressed => "firing",
            }
        }
    }
}

/// The Alertmanager labels of an event's alert. Names match `[a-zA-Z_][a-zA-Z0-9_]*`:
///
/// - `alertname` and `rule`: the rule id; `subject`: what the rule is about (a mount point, a
///   service), left out when empty;
/// - `severity` (see [`severity`]) and `priority` (`P1`..`P4`);
/// - `host` and `instance`: the host name; `agent_id`; `ticket`: the ticket id;
/// - the host's labels: `site:paris` becomes `label_site="paris"`, a plain `lab` becomes
///   `label_lab="true"` (characters a label name cannot hold become `_`; of two host labels
///   that come out the same, the first wins).
pub fn alert_labels(alert: &AlertEvent) -> BTreeMap<String, String> {
    let t = &alert.ticket;
    let mut labels = BTreeMap::new();
    for host_label in &alert.labels {
        let (name, value) = match host_label.split_once(':') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => (k, v),
            _ => (host_label.as_str(), "true"),
        };
        labels
            .entry(format!("label_{}", label_name(name)))
            .or_insert_with(|| value.to_owned());
    }
    let fixed = [
        ("alertname", t.rule_id.clone()),
        ("rule", t.rule_id.clone()),
        ("severity", severity(t.priority).to_owned()),
        ("priority", priority_name(t.priority)),
        ("host", t.hostname.clone()),
        ("instance", t.hostname.clone()),
        ("agent_id", t.agent_id.clone()),
        ("ticket", t.id.to_string()),
    ];
    for (name, value) in fixed {
        labels.insert(name.to_owned(), value);
    }
    if !t.subject.is_empty() {
        labels.insert("subject".to_owned(), t.subject.clone());
    }
    labels
}

/// The Alertmanager annotations of an event's alert: `summary` (the ticket's title),
/// `description` (what this event did: `comment by ana: …`), `event_kind`, `event_cursor`,
/// `state` (the ticket's state now), and `kb` (the knowledge-base article) when it has one.
pub fn alert_annotations(alert: &AlertEvent) -> BTreeMap<String, String> {
    let e = &alert.event;
    let t = &alert.ticket;
    let mut description = e.kind.as_str().to_owned();
    if !e.actor.is_empty() {
        description.push_str(" by ");
        description.push_str(&e.actor);
    }
    if !e.detail.is_empty() {
        description.push_str(": ");
        description.push_str(&e.detail);
    }
    let mut annotations = BTreeMap::from([
        ("summary".to_owned(), t.title.clone()),
        ("description".to_owned(), description),
        ("event_kind".to_owned(), e.kind.as_str().to_owned()),
        ("event_cursor".to_owned(), e.cursor.to_string()),
        ("state".to_owned(), t.state.as_str().to_owned()),
    ]);
    if !t.kb.is_empty() {
        annotations.insert("kb".to_owned(), t.kb.clone());
    }
    annotations
}

/// A stable fingerprint of the ticket (16 hex digits, like Alertmanager's): the same for every
/// event of one ticket, different between tickets.
pub fn fingerprint(alert: &AlertEvent) -> String {
    let t = &alert.ticket;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!(
            "firstline-ticket\0{}\0{}\0{}\0{}",
            t.id, t.agent_id, t.rule_id, t.subject
        )
        .as_bytes(),
    );
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Alertmanager webhook message (version 4) for `alerts`, as Alertmanager's own webhook
/// notifier would send it to `receiver` (the webhook's name). The webhook sends one event per
/// message; the group is then that event's ticket (`groupLabels`: `alertname`, `ticket`).
/// `externalURL` and `generatorURL` are empty: there is no Alertmanager to link back to.
pub fn alertmanager_v4(alerts: &[AlertEvent], receiver: &str) -> Value {
    let items: Vec<AmAlert> = alerts
        .iter()
        .map(|a| AmAlert {
            status: alert_status(a),
            labels: alert_labels(a),
            annotations: alert_annotations(a),
            starts_at: rfc3339(a.ticket.opened_at_ms),
            ends_at: match alert_status(a) {
                "resolved" => rfc3339(a.ticket.resolved_at_ms.unwrap_or(a.event.at_ms)),
                _ => ALERTMANAGER_ZERO_TIME.to_owned(),
            },
            fingerprint: fingerprint(a),
        })
        .collect();
    let mut group = BTreeMap::new();
    if let Some(first) = alerts.first() {
        group.insert("alertname".to_owned(), first.ticket.rule_id.clone());
        group.insert("ticket".to_owned(), first.ticket.id.to_string());
    }
    am_message(&items, &group, receiver)
}

/// The Alertmanager-format body of a test delivery: one firing alert `FirstlineTest` of
/// severity `info` with the label `test="true"`.
pub fn alertmanager_test(receiver: &str, now_ms: i64) -> Value {
    let labels = BTreeMap::from([
        ("alertname".to_owned(), "FirstlineTest".to_owned()),
        ("severity".to_owned(), "info".to_owned()),
        ("priority".to_owned(), priority_name(4)),
        ("host".to_owned(), "firstline-test".to_owned()),
        ("instance".to_owned(), "firstline-test".to_owned()),
        ("test".to_owned(), "true".to_owned()),
    ]);
    let annotations = BTreeMap::from([
        ("summary".to_owned(), "Firstline webhook test".to_owned()),
        (
            "description".to_owned(),
            "a test delivery: no ticket changed".to_owned(),
        ),
        ("event_kind".to_owned(), TEST_KIND.to_owned()),
    ]);
    let alert = AmAlert {
        status: "firing",
        labels,
        annotations,
        starts_at: rfc3339(now_ms),
        ends_at: ALERTMANAGER_ZERO_TIME.to_owned(),
        fingerprint: "0000000000000000".to_owned(),
    };
    let group = BTreeMap::from([("alertname".to_owned(), "FirstlineTest".to_owned())]);
    am_message(&[alert], &group, receiver)
}

/// One alert of an Alertmanager message.
struct AmAlert {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    fingerprint: String,
}

fn am_message(alerts: &[AmAlert], group: &BTreeMap<String, String>, receiver: &str) -> Value {
    let status = if alerts.iter().any(|a| a.status == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let common_labels = common(alerts.iter().map(|a| &a.labels));
    let common_annotations = common(alerts.iter().map(|a| &a.annotations));
    let group_key = format!(
        "{{}}:{{{}}}",
        group
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": "",
        "alerts": alerts.iter().map(|a| json!({
            "status": a.status,
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": a.starts_at,
            "endsAt": a.ends_at,
            "generatorURL": "",
            "fingerprint": a.fingerprint,
        })).collect::<Vec<_>>(),
    })
}

/// The pairs every map holds with the same value.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// A label name from free text: `[a-zA-Z0-9_]`, anything else `_`, never starting with a
/// digit (the caller prefixes `label_` anyway).
fn label_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{Ticket, TicketEvent};

    /// 2023-11-14T22:13:20Z
    const T0: i64 = 1_700_000_000_000;

    fn alert(kind: EventKind, state: TicketState) -> AlertEvent {
        AlertEvent {
            event: TicketEvent {
                cursor: 42,
                ticket_id: 7,
                at_ms: T0 + 60_000,
                observed_at_ms: T0 + 59_500,
                kind,
                actor: "rules".into(),
                detail: "/ at 93%".into(),
            },
            ticket: Ticket {
                id: 7,
                dedupe_key: "k".into(),
                agent_id: "agent-1".into(),
                hostname: "ws-01".into(),
                rule_id: "disk.full".into(),
                subject: "/".into(),
                state,
                priority: 2,
                opened_priority: 3,
                title: "Disk / almost full on ws-01".into(),
                occurrences: 3,
                opened_at_ms: T0,
                last_seen_at_ms: T0 + 60_000,
                resolved_at_ms: matches!(state, TicketState::Resolved).then_some(T0 + 120_000),
                last_value: 93.0,
                tier: 1,
                escalated_at_ms: None,
                assignee: "ana".into(),
                acknowledged_at_ms: None,
                response_due_ms: 0,
                resolve_due_ms: 0,
                kb: "disk-full".into(),
                flapping: false,
                clear_since_ms: None,
                parent_id: None,
                linked_hosts: 0,
            },
            labels: vec!["lab".into(), "site:paris".into(), "team/ops".into()],
        }
    }

    #[test]
    fn the_firstline_schema_carries_the_event_and_its_ticket() {
        let v = firstline_event(&alert(EventKind::Opened, TicketState::New));
        assert_eq!(v["version"], 1);
        assert_eq!(v["test"], false);
        assert_eq!(
            v["event"],
            json!({
                "cursor": 42, "kind": "opened", "at": "2023-11-14T22:14:20.000Z",
                "observed_at": "2023-11-14T22:14:19.500Z", "actor": "rules", "detail": "/ at 93%",
            })
        );
        let t = &v["ticket"];
        assert_eq!(t["id"], 7);
        assert_eq!(t["rule"], "disk.full");
        assert_eq!(t["host"], "ws-01");
        assert_eq!(t["priority"], "P2");
        assert_eq!(t["opened_priority"], "P3");
        assert_eq!(t["state"], "new");
        assert_eq!(t["opened_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(t["resolved_at"], Value::Null);
        assert_eq!(t["labels"], json!(["lab", "site:paris", "team/ops"]));
        // No internal field leaks (the dedupe key, the clear timer).
        assert!(t.get("dedupe_key").is_none() && t.get("clear_since_ms").is_none());
    }

    #[test]
    fn the_test_event_is_marked_as_one() {
        let v = test_event(T0);
        assert_eq!(v["test"], true);
        assert_eq!(v["event"]["kind"], TEST_KIND);
        assert_eq!(v["event"]["cursor"], 0);
        assert_eq!(v["ticket"]["id"], 0);
        // The same keys as a real event: receivers parse it with the same code.
        let real = firstline_event(&alert(EventKind::Opened, TicketState::New));
        let keys = |v: &Value, k: &str| -> Vec<String> {
            v[k].as_object().expect("object").keys().cloned().collect()
        };
        assert_eq!(keys(&v, "event"), keys(&real, "event"));
        assert_eq!(keys(&v, "ticket"), keys(&real, "ticket"));
    }

    #[test]
    fn labels_are_valid_prometheus_label_names() {
        let labels = alert_labels(&alert(EventKind::Opened, TicketState::New));
        for name in labels.keys() {
            let mut chars = name.chars();
            let first = chars.next().expect("non-empty");
            assert!(
                (first.is_ascii_alphabetic() || first == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
        }
        assert_eq!(labels["alertname"], "disk.full");
        assert_eq!(labels["severity"], "error");
        assert_eq!(labels["priority"], "P2");
        assert_eq!(labels["instance"], "ws-01");
        assert_eq!(labels["ticket"], "7");
        assert_eq!(labels["subject"], "/");
        assert_eq!(labels["label_lab"], "true");
        assert_eq!(labels["label_site"], "paris");
        assert_eq!(labels["label_team_ops"], "true");
    }

    #[test]
    fn the_alertmanager_message_has_the_v4_shape() {
        let a = alert(EventKind::Opened, TicketState::New);
        let v = alertmanager_v4(std::slice::from_ref(&a), "ops");
        assert_eq!(v["version"], "4");
        assert_eq!(v["truncatedAlerts"], 0);
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "ops");
        assert_eq!(v["groupKey"], r#"{}:{alertname="disk.full", ticket="7"}"#);
        assert_eq!(
            v["groupLabels"],
            json!({"alertname": "disk.full", "ticket": "7"})
        );
        assert_eq!(v["externalURL"], "");
        let alerts = v["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 1);
        let x = &alerts[0];
        assert_eq!(x["status"], "firing");
        assert_eq!(x["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(x["endsAt"], ALERTMANAGER_ZERO_TIME);
        assert_eq!(x["annotations"]["summary"], "Disk / almost full on ws-01");
        assert_eq!(x["annotations"]["description"], "opened by rules: / at 93%");
        assert_eq!(x["labels"], v["commonLabels"]);
        assert_eq!(x["annotations"], v["commonAnnotations"]);
        assert_eq!(x["fingerprint"].as_str().map(str::len), Some(16));
        for key in [
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        ] {
            assert!(x.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_resolution_is_resolved_and_ends_when_the_ticket_resolved() {
        let a = alert(EventKind::Resolved, TicketState::Resolved);
        let v = alertmanager_v4(std::slice::from_ref(&a), "ops");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["alerts"][0]["endsAt"], "2023-11-14T22:15:20.000Z");
        // A comment follows the ticket's state; an opening is firing whatever came since.
        assert_eq!(
            alert_status(&alert(EventKind::Comment, TicketState::Resolved)),
            "resolved"
        );
        assert_eq!(
            alert_status(&alert(EventKind::Comment, TicketState::Acknowledged)),
            "firing"
        );
        assert_eq!(
            alert_status(&alert(EventKind::Opened, TicketState::Resolved)),
            "firing"
        );
    }

    #[test]
    fn the_fingerprint_is_stable_per_ticket() {
        let a = alert(EventKind::Opened, TicketState::New);
        let b = alert(EventKind::Resolved, TicketState::Resolved);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = a.clone();
        c.ticket.id = 8;
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn common_labels_keep_only_what_all_alerts_share() {
        let a = alert(EventKind::Opened, TicketState::New);
        let mut b = a.clone();
        b.ticket.id = 8;
        b.ticket.hostname = "ws-02".into();
        let v = alertmanager_v4(&[a, b], "ops");
        let common = v["commonLabels"].as_object().expect("object");
        assert_eq!(common["alertname"], "disk.full");
        assert!(common.get("instance").is_none() && common.get("ticket").is_none());
    }

    #[test]
    fn the_alertmanager_test_message_is_marked() {
        let v = alertmanager_test("ops", T0);
        assert_eq!(v["version"], "4");
        assert_eq!(v["alerts"][0]["labels"]["test"], "true");
        assert_eq!(v["alerts"][0]["labels"]["alertname"], "FirstlineTest");
    }
}
