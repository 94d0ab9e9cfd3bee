//! The OpenAPI document against the types the API really serialises.

use std::collections::BTreeSet;

use super::super::openapi_schemas::{ALERT_EVENT, DETAIL, EVENT, HANDOFF, HOST, SILENCE, TICKET};
use super::*;
use crate::service::{AlertEventView, Handoff, Host, SilenceView, TicketDetail};
use crate::tickets::lifecycle::Sla;
use crate::tickets::{EventKind, Ticket, TicketEvent, TicketState};

fn names(props: &[(&str, &str)]) -> BTreeSet<String> {
    props.iter().map(|(n, _)| (*n).to_owned()).collect()
}

fn keys<T: serde::Serialize>(value: &T) -> BTreeSet<String> {
    match serde_json::to_value(value).expect("serialises") {
        Value::Object(m) => m.keys().cloned().collect(),
        other => panic!("not an object: {other}"),
    }
}

fn ticket() -> Ticket {
    let (response_due_ms, resolve_due_ms) = Sla::default().due(1, 2);
    Ticket {
        id: 1,
        dedupe_key: "k".into(),
        agent_id: "a".into(),
        hostname: "h".into(),
        rule_id: "disk.usage".into(),
        subject: "/".into(),
        state: TicketState::New,
        priority: 2,
        opened_priority: 2,
        title: "t".into(),
        occurrences: 1,
        opened_at_ms: 1,
        last_seen_at_ms: 1,
        resolved_at_ms: None,
        last_value: 91.0,
        tier: 1,
        escalated_at_ms: None,
        assignee: String::new(),
        acknowledged_at_ms: None,
        response_due_ms,
        resolve_due_ms,
        kb: "disk-full".into(),
        flapping: false,
        clear_since_ms: None,
        parent_id: None,
        linked_hosts: 0,
    }
}

#[test]
fn schemas_name_exactly_the_fields_the_api_sends() {
    let t = ticket();
    assert_eq!(keys(&t), names(TICKET), "Ticket");
    let event = TicketEvent {
        cursor: 1,
        ticket_id: 1,
        at_ms: 1,
        kind: EventKind::Opened,
        actor: String::new(),
        detail: String::new(),
        observed_at_ms: 1,
    };
    assert_eq!(keys(&event), names(EVENT), "TicketEvent");
    let detail = TicketDetail {
        ticket: t.clone(),
        timeline: vec![event],
        kb_markdown: String::new(),
        linked: Vec::new(),
    };
    assert_eq!(keys(&detail), names(DETAIL), "TicketDetail");
    let handoff = Handoff {
        generated_at_ms: 1,
        since_ms: 0,
        critical_open: vec![],
        escalated: vec![],
        resolved_since: vec![],
        cut: Default::default(),
    };
    assert_eq!(keys(&handoff), names(HANDOFF), "Handoff");
    let host = Host::from(crate::store::HostRow {
        agent_id: "a".into(),
        hostname: "h".into(),
        os: String::new(),
        agent_version: String::new(),
        machine_id: String::new(),
        enrolled_at_ms: 1,
        last_seen_at_ms: 0,
        spool_epoch: 0,
        last_seq: 0,
        snapshots_stored: 0,
        dropped_snapshots: 0,
        rejected_snapshots: 0,
        clock_adjusted_snapshots: 0,
        clock_skew_ms: 0,
        revoked: false,
        labels: vec![],
        same_machine_as: vec![],
        identity_conflict_at_ms: None,
        identity_conflict: String::new(),
        filesystems: vec![],
        facts: crate::facts::ProbeFacts::default(),
    });
    assert_eq!(keys(&host), names(HOST), "Host");
    let silence = SilenceView {
        id: 1,
        matcher_kind: "host".into(),
        matcher_value: "a".into(),
        starts_at_ms: 1,
        ends_at_ms: 2,
        reason: String::new(),
        created_by: String::new(),
    };
    assert_eq!(keys(&silence), names(SILENCE), "Silence");
    let alert = AlertEventView {
        cursor: 1,
        at_ms: 1,
        kind: EventKind::Resolved,
        actor: String::new(),
        detail: String::new(),
        observed_at_ms: 1,
        labels: Vec::new(),
        ticket: t,
    };
    assert_eq!(keys(&alert), names(ALERT_EVENT), "AlertEvent");
}

#[test]
fn the_ticket_schema_is_the_grpc_ticket_message() {
    let wire = firstline_proto::v1::Ticket::default();
    assert_eq!(
        keys(&wire),
        names(TICKET),
        "the gRPC Ticket carries the same fields"
    );
    let detail = firstline_proto::v1::TicketDetail::default();
    assert_eq!(keys(&detail), names(DETAIL));
    let host = firstline_proto::v1::Host::default();
    assert_eq!(
        keys(&host),
        names(HOST),
        "the gRPC Host carries the same fields"
    );
}

#[test]
fn every_route_is_documented_once_with_its_method() {
    let doc = document();
    let mut seen = BTreeSet::new();
    for r in routes() {
        assert!(
            seen.insert((r.method, r.path)),
            "{} {} twice",
            r.method,
            r.path
        );
        let op = &doc["paths"][r.path][r.method];
        assert!(op.is_object(), "{} {} missing", r.method, r.path);
        for (name, at, _, _) in r.params {
            if *at == "path" {
                assert!(
                    r.path.contains(&format!("{{{name}}}")),
                    "{name} not in {}",
                    r.path
                );
            }
        }
    }
    let documented: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|p| p.as_object().expect("methods").len())
        .sum();
    assert_eq!(documented, routes().len());
}

#[test]
fn metrics_are_documented_as_unauthenticated_prometheus_text() {
    let doc = document();
    let op = &doc["paths"]["/metrics"]["get"];
    assert!(op.is_object(), "/metrics missing");
    assert!(op.get("security").is_none(), "/metrics needs no key: {op}");
    assert_eq!(
        op["responses"]["200"]["content"]["text/plain"]["schema"]["$ref"],
        "#/components/schemas/Metrics"
    );
    assert_eq!(doc["components"]["schemas"]["Metrics"]["type"], "string");
}

#[test]
fn feed_schemas_name_exactly_the_fields_the_api_sends() {
    use super::super::openapi_schemas::{DEAD_LETTER, FEED, FEED_TEST};
    use crate::service::{DeadLetterView, FeedTestOutcome, FeedView};
    let feed = FeedView {
        name: "webhook:ops".into(),
        kind: "webhook",
        target: "https://x/".into(),
        cursor: 1,
        lag: 0,
        pending: 0,
        dead_letters: 0,
        last_error: String::new(),
        last_error_at_ms: None,
        last_delivery_at_ms: Some(1),
    };
    assert_eq!(keys(&feed), names(FEED), "Feed");
    let dead = DeadLetterView {
        feed: "webhook:ops".into(),
        event_cursor: 1,
        attempts: 3,
        last_error: "HTTP 500".into(),
        failed_at_ms: 1,
        event: None,
    };
    assert_eq!(keys(&dead), names(DEAD_LETTER), "DeadLetter");
    let test = FeedTestOutcome {
        delivered: true,
        detail: String::new(),
    };
    assert_eq!(keys(&test), names(FEED_TEST), "FeedTest");
}

#[test]
fn dashboard_schemas_name_exactly_the_fields_the_api_sends() {
    use super::super::openapi_schemas::{
        DISK_HISTORY, DISK_POINT, FLEET_HOST, FLEET_PAGE, HOST_TREND, MOUNT_HISTORY, OUTAGE_TREND,
        PRIORITY_TREND, RULE_TREND, TRENDS,
    };
    use crate::service::{
        DiskHistory, DiskPoint, FleetHost, FleetPage, HostTrend, MountHistory, OutageTrend,
        PriorityTrend, RuleTrend, Trends,
    };
    let host = FleetHost {
        agent_id: "a".into(),
        hostname: "h".into(),
        os: String::new(),
        agent_version: String::new(),
        last_seen_at_ms: None,
        clock_skew_ms: 0,
        labels: vec![],
        revoked: false,
        open_tickets: 0,
        worst_priority: None,
        health: "ok",
    };
    assert_eq!(keys(&host), names(FLEET_HOST), "FleetHost");
    let page = FleetPage {
        hosts: vec![host],
        total: 1,
        page: 1,
        per_page: 50,
        pages: 1,
    };
    assert_eq!(keys(&page), names(FLEET_PAGE), "FleetPage");
    let point = DiskPoint {
        at_ms: 1,
        used_bytes: 1,
        available_bytes: 1,
        used_percent: 50.0,
    };
    assert_eq!(keys(&point), names(DISK_POINT), "DiskPoint");
    let mount = MountHistory {
        mount_point: "/".into(),
        samples: vec![point],
        hours_to_full: None,
        full_at_ms: None,
    };
    assert_eq!(keys(&mount), names(MOUNT_HISTORY), "MountHistory");
    let history = DiskHistory {
        agent_id: "a".into(),
        hostname: "h".into(),
        days: 7,
        since_ms: 0,
        mounts: vec![mount],
    };
    assert_eq!(keys(&history), names(DISK_HISTORY), "DiskHistory");
    let rule = RuleTrend {
        rule_id: "disk.usage".into(),
        openings: 1,
        hosts: 1,
    };
    assert_eq!(keys(&rule), names(RULE_TREND), "RuleTrend");
    let host = HostTrend {
        agent_id: "a".into(),
        hostname: "h".into(),
        openings: 1,
        rules: 1,
    };
    assert_eq!(keys(&host), names(HOST_TREND), "HostTrend");
    let outage = OutageTrend {
        ticket_id: 1,
        title: "t".into(),
        rule_id: "r".into(),
        state: "new".into(),
        priority: 1,
        opened_at_ms: 1,
        resolved_at_ms: None,
        hosts: 3,
    };
    assert_eq!(keys(&outage), names(OUTAGE_TREND), "OutageTrend");
    let response = PriorityTrend {
        priority: 1,
        opened: 0,
        acknowledged: 0,
        mean_ack_ms: None,
        ack_in_time: 0,
        response_sla_ms: 1,
        resolved: 0,
        mean_resolve_ms: None,
        resolve_in_time: 0,
        resolve_sla_ms: 1,
    };
    assert_eq!(keys(&response), names(PRIORITY_TREND), "PriorityTrend");
    let trends = Trends {
        generated_at_ms: 1,
        days: 30,
        since_ms: 0,
        rules: vec![rule],
        hosts: vec![host],
        outages: vec![outage],
        response: vec![response],
    };
    assert_eq!(keys(&trends), names(TRENDS), "Trends");
    let doc = document();
    assert!(
        doc["paths"]["/api/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            .is_object()
    );
}

#[test]
fn the_ticket_summary_schema_names_exactly_the_fields_the_api_sends() {
    use super::super::openapi_schemas::TICKET_SUMMARY;
    use crate::service::TicketSummary;
    let summary = TicketSummary {
        total: 3,
        p1: 1,
        p2: 0,
        p3: 2,
        p4: 0,
        outages: 1,
    };
    assert_eq!(keys(&summary), names(TICKET_SUMMARY), "TicketSummary");
    let doc = document();
    let get = &doc["paths"]["/api/tickets/summary"]["get"];
    assert!(get.is_object(), "the route is documented");
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/TicketSummary"
    );
}
