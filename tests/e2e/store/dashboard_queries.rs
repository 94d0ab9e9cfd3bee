//! The dashboard's queries in the store suite (run on SQLite and PostgreSQL): a small fleet
//! (host names, labels, OS, agent versions), tickets of several priorities, states, rules and
//! assignees, and an outage with two hosts under it; then what a technician checks: page 2 of
//! the fleet and its total, searches by name, label, OS and version (with `%` and `_` taken
//! literally), the queue's filters and its counts, and the trends.

use std::sync::Arc;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::service::{FleetQuery, Service, TicketQuery};
use firstline_collector::store::{FLEET, NewTicket, Store};
use firstline_proto::v1;

use super::NOW;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// (agent id, host name, OS, agent version, labels)
const HOSTS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "a1",
        "Alpha-pc",
        "Debian GNU/Linux 12",
        "0.3.1",
        &["lab", "floor1"],
    ),
    ("a2", "bravo", "Windows 11 Pro", "0.2.0", &["office"]),
    ("a3", "Charlie", "Debian GNU/Linux 13", "0.3.0", &["lab"]),
    ("a4", "delta", "macOS 14", "0.3.1", &[]),
    ("a5", "echo_1", "Ubuntu 24.04", "0.2.0", &["office", "lab2"]),
    ("a6", "foxtrot", "Debian GNU/Linux 12", "0.1.9", &[]),
];

/// The ticket ids of the fixture.
struct Ids {
    t1: i64,
    t2: i64,
    t3: i64,
    t4: i64,
    t5: i64,
    outage: i64,
    h1: i64,
    h4: i64,
}

async fn open(
    store: &Store,
    agent: &str,
    rule: &str,
    subject: &str,
    priority: u32,
    at_ms: i64,
) -> i64 {
    let mut tx = store.begin_write().await.expect("tx");
    let id = tx
        .open_ticket(&NewTicket {
            agent_id: agent,
            rule_id: rule,
            subject,
            priority,
            title: &format!("{rule} on {agent}"),
            at_ms,
            value: 95.0,
            response_due_ms: at_ms + 4 * HOUR,
            resolve_due_ms: at_ms + DAY,
            kb: "",
        })
        .await
        .expect("open ticket");
    tx.commit().await.expect("commit");
    id
}

async fn resolve(store: &Store, id: i64, at_ms: i64) {
    let mut tx = store.begin_write().await.expect("tx");
    tx.resolve_ticket(id, at_ms, 10.0, "test")
        .await
        .expect("resolve");
    tx.commit().await.expect("commit");
}

async fn fixture(store: &Store, service: &Service) -> Ids {
    for &(id, name, os, version, labels) in HOSTS {
        firstline_tests::fixtures::enroll_agent(store, id, name, NOW - DAY).await;
        let snapshot = v1::Snapshot {
            seq: 1,
            taken_at_ms: NOW - MIN,
            hostname: name.into(),
            os: os.into(),
            agent_version: version.into(),
            ..Default::default()
        };
        let batch = firstline_tests::fixtures::batch(vec![snapshot], NOW - MIN);
        ingest(store, &Engine::default(), id, &batch, NOW - MIN)
            .await
            .expect("ingest");
        let labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        service.set_labels(id, &labels, NOW).await.expect("labels");
    }
    let t1 = open(store, "a1", "disk.usage", "/", 1, NOW - 2 * HOUR).await;
    let t2 = open(store, "a2", "disk.usage", "/", 2, NOW - 3 * HOUR).await;
    let t3 = open(store, "a3", "av.missing", "", 3, NOW - HOUR).await;
    let t4 = open(store, "a3", "disk.usage", "/data", 2, NOW - 4 * HOUR).await;
    let t5 = open(store, "a5", "patches.pending", "", 4, NOW - 40 * DAY).await;
    resolve(store, t4, NOW - 3 * HOUR).await;
    resolve(store, t5, NOW - 39 * DAY).await;
    service
        .act(t1, "acknowledge", "", "ada", NOW - HOUR)
        .await
        .expect("ack");
    service
        .act(t1, "assign", "ada", "ada", NOW - HOUR)
        .await
        .expect("assign");
    service
        .act(t2, "assign", "bob", "ada", NOW - HOUR)
        .await
        .expect("assign");
    // An outage: the DNS check fails on a1 and a4, both host tickets under one fleet ticket.
    let outage = open(store, FLEET, "net.dns", "", 1, NOW - 30 * MIN).await;
    let h1 = open(store, "a1", "net.dns", "", 3, NOW - 30 * MIN).await;
    let h4 = open(store, "a4", "net.dns", "", 3, NOW - 30 * MIN).await;
    let mut tx = store.begin_write().await.expect("tx");
    for id in [h1, h4] {
        tx.suppress(id, outage, NOW - 30 * MIN)
            .await
            .expect("suppress");
    }
    tx.commit().await.expect("commit");
    Ids {
        t1,
        t2,
        t3,
        t4,
        t5,
        outage,
        h1,
        h4,
    }
}

async fn names(service: &Service, q: &str, page: u32, per_page: u32) -> (Vec<String>, u64) {
    let p = service
        .fleet_page(
            &FleetQuery {
                q: Some(q.into()),
                page: Some(page),
                per_page: Some(per_page),
            },
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("fleet page {q:?}: {e}"));
    (p.hosts.into_iter().map(|h| h.hostname).collect(), p.total)
}

async fn ids(service: &Service, q: TicketQuery) -> Vec<i64> {
    service
        .list_tickets(&q)
        .await
        .unwrap_or_else(|e| panic!("tickets {q:?}: {e}"))
        .into_iter()
        .map(|t| t.id)
        .collect()
}

fn query(state: &str) -> TicketQuery {
    TicketQuery {
        state: Some(state.into()),
        ..Default::default()
    }
}

pub(super) async fn dashboard_queries(store: Store) {
    let service = Service::new(store.clone(), Arc::new(Engine::default()), None);
    let t = fixture(&store, &service).await;

    // The fleet, by host name whatever its case, two a page.
    let page = service
        .fleet_page(
            &FleetQuery {
                q: None,
                page: Some(2),
                per_page: Some(2),
            },
            NOW,
        )
        .await
        .expect("page 2");
    let on_page: Vec<_> = page.hosts.iter().map(|h| h.hostname.as_str()).collect();
    assert_eq!(on_page, ["Charlie", "delta"], "page 2");
    assert_eq!((page.total, page.pages, page.page), (6, 3, 2));
    let charlie = &page.hosts[0];
    assert_eq!(
        (charlie.open_tickets, charlie.worst_priority, charlie.health),
        (1, Some(3), "warning"),
        "a3: the AV ticket open, the disk one resolved"
    );
    assert_eq!(charlie.os, "Debian GNU/Linux 13");
    assert_eq!(charlie.agent_version, "0.3.0");
    assert_eq!(charlie.labels, ["lab"]);
    let delta = &page.hosts[1];
    assert_eq!(
        (delta.open_tickets, delta.worst_priority),
        (1, Some(3)),
        "a4's ticket under the outage counts as open"
    );
    let first = service
        .fleet_page(&FleetQuery::default(), NOW)
        .await
        .expect("page 1");
    assert_eq!(first.hosts.len(), 6);
    assert_eq!(
        (
            first.hosts[0].open_tickets,
            first.hosts[0].worst_priority,
            first.hosts[0].health
        ),
        (2, Some(1), "critical"),
        "Alpha-pc: its P1 and its suppressed DNS ticket"
    );
    assert_eq!(first.hosts[5].health, "ok", "foxtrot");
    let beyond = names(&service, "", 4, 2).await;
    assert_eq!(beyond, (vec![], 6), "a page after the last is empty");

    // Searches.
    let cases: &[(&str, &[&str])] = &[
        ("lab", &["Alpha-pc", "Charlie", "echo_1"]),
        ("label:office", &["bravo", "echo_1"]),
        ("label:LAB2", &["echo_1"]),
        ("os:debian", &["Alpha-pc", "Charlie", "foxtrot"]),
        ("os:windows", &["bravo"]),
        ("version:0.3", &["Alpha-pc", "Charlie", "delta"]),
        ("version:0.2.0", &["bravo", "echo_1"]),
        ("name:ALPHA", &["Alpha-pc"]),
        ("name:a4", &["delta"]),
        ("macos", &["delta"]),
        ("_", &["echo_1"]),
        ("%", &[]),
        ("name:o_1", &["echo_1"]),
        ("name:%", &[]),
        ("nothing-like-it", &[]),
    ];
    for (q, want) in cases {
        let (got, total) = names(&service, q, 1, 50).await;
        assert_eq!(got, *want, "search {q:?}");
        assert_eq!(total, want.len() as u64, "search {q:?} total");
    }
    assert_eq!(
        names(&service, "os:debian", 2, 2).await,
        (vec!["foxtrot".to_owned()], 3),
        "page 2 of a search"
    );

    // The queue's filters.
    assert_eq!(
        ids(&service, query("open")).await,
        [t.outage, t.t1, t.t2, t.t3],
        "open: by priority, newest first"
    );
    let with = |f: fn(&mut TicketQuery)| {
        let mut q = query("open");
        f(&mut q);
        q
    };
    assert_eq!(ids(&service, with(|q| q.priority = Some(2))).await, [t.t2]);
    assert_eq!(
        ids(&service, with(|q| q.priority = Some(1))).await,
        [t.outage, t.t1]
    );
    assert_eq!(
        ids(&service, with(|q| q.assignee = Some("bob".into()))).await,
        [t.t2]
    );
    assert_eq!(
        ids(&service, with(|q| q.mine = Some("ada".into()))).await,
        [t.t1],
        "mine"
    );
    assert_eq!(
        ids(&service, with(|q| q.host = Some("charlie".into()))).await,
        [t.t3],
        "by host name"
    );
    let all = |f: fn(&mut TicketQuery)| {
        let mut q = query("all");
        f(&mut q);
        q
    };
    assert_eq!(
        ids(&service, all(|q| q.rule = Some("disk.usage".into()))).await,
        [t.t1, t.t2, t.t4],
        "rule: open first, then the resolved one"
    );
    assert_eq!(
        ids(&service, all(|q| q.label = Some("lab".into()))).await,
        [t.t1, t.t3, t.t4, t.h1],
        "label lab (not lab2)"
    );
    assert_eq!(
        ids(&service, all(|q| q.label = Some("la_".into()))).await,
        Vec::<i64>::new(),
        "a label's _ is literal"
    );
    assert_eq!(
        ids(&service, query("suppressed")).await,
        [t.h4, t.h1],
        "under the outage"
    );
    assert_eq!(ids(&service, query("resolved")).await, [t.t4, t.t5]);
    assert_eq!(ids(&service, query("acknowledged")).await, [t.t1]);
    assert_eq!(ids(&service, query("new")).await, [t.outage, t.t2, t.t3]);
    assert_eq!(ids(&service, query("all")).await.len(), 8);

    // The queue's counts, from the server, under the same filters.
    let summary = service
        .ticket_summary(&TicketQuery::default())
        .await
        .expect("summary");
    assert_eq!(
        (
            summary.total,
            summary.p1,
            summary.p2,
            summary.p3,
            summary.p4,
            summary.outages
        ),
        (4, 2, 1, 1, 0, 1),
        "open by default"
    );
    let lab = service
        .ticket_summary(&TicketQuery {
            label: Some("lab".into()),
            ..Default::default()
        })
        .await
        .expect("summary");
    assert_eq!(
        (lab.total, lab.p1, lab.p3, lab.outages),
        (2, 1, 1, 0),
        "label"
    );
    let every = service
        .ticket_summary(&TicketQuery {
            state: Some("all".into()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("summary");
    assert_eq!(
        (every.total, every.p1, every.p2, every.p3, every.p4),
        (8, 2, 2, 3, 1),
        "all states, the limit ignored"
    );

    // Trends over 30 days: t5 opened 40 days ago is outside.
    let trends = service.trends(Some(30), NOW).await.expect("trends");
    let rules: Vec<_> = trends
        .rules
        .iter()
        .map(|r| (r.rule_id.as_str(), r.openings, r.hosts))
        .collect();
    assert_eq!(
        rules,
        [
            ("disk.usage", 3, 3),
            ("net.dns", 2, 2),
            ("av.missing", 1, 1)
        ]
    );
    let hosts: Vec<_> = trends
        .hosts
        .iter()
        .map(|h| {
            (
                h.agent_id.as_str(),
                h.hostname.as_str(),
                h.openings,
                h.rules,
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            ("a1", "Alpha-pc", 2, 2),
            ("a3", "Charlie", 2, 2),
            ("a2", "bravo", 1, 1),
            ("a4", "delta", 1, 1)
        ]
    );
    assert_eq!(trends.outages.len(), 1);
    let o = &trends.outages[0];
    assert_eq!(
        (o.ticket_id, o.hosts, o.state.as_str(), o.priority),
        (t.outage, 2, "new", 1)
    );
    let p = |n: u32| trends.response[(n - 1) as usize];
    assert_eq!(
        (
            p(1).opened,
            p(1).acknowledged,
            p(1).mean_ack_ms,
            p(1).ack_in_time
        ),
        (2, 1, Some(HOUR), 1),
        "P1: the outage and t1 (host tickets under it not counted)"
    );
    assert_eq!(
        (
            p(2).opened,
            p(2).resolved,
            p(2).mean_resolve_ms,
            p(2).resolve_in_time
        ),
        (2, 1, Some(HOUR), 1)
    );
    assert_eq!((p(3).opened, p(4).opened), (1, 0));
    let quarter = service.trends(Some(90), NOW).await.expect("90 days");
    assert_eq!(quarter.response[3].opened, 1, "t5 within 90 days");
    assert_eq!(quarter.response[3].resolved, 1);
}
