//! Outage correlation under the load of many hosts, on SQLite and on a throwaway PostgreSQL
//! server with an injected clock: a second storm within the reopen window, concurrent ingests
//! that race to open the first outage, failures that share a DNS resolver or a gateway, the
//! handoff of a resolved outage, and timelines after a replayed spool.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::rules::RuleKind;
use firstline_collector::store::{Store, TicketFilter};
use firstline_collector::sweep::sweep;
use firstline_collector::tickets::Ticket;
use firstline_proto::v1;
use firstline_tests::pg::TempPostgres;

type Scenario = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("second_storm_within_the_reopen_window_is_an_outage", |s| {
        Box::pin(second_storm_within_the_reopen_window_is_an_outage(s))
    }),
    ("concurrent_ingests_open_one_outage", |s| {
        Box::pin(concurrent_ingests_open_one_outage(s))
    }),
    (
        "failures_through_one_resolver_or_gateway_are_one_outage",
        |s| Box::pin(failures_through_one_resolver_or_gateway_are_one_outage(s)),
    ),
    ("replayed_spool_keeps_the_timeline_in_order", |s| {
        Box::pin(replayed_spool_keeps_the_timeline_in_order(s))
    }),
];

const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

#[tokio::test(flavor = "multi_thread")]
async fn outage_storms_on_sqlite() {
    for (name, scenario) in SCENARIOS {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        );
        scenario(Store::open(&url).await.expect("sqlite")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outage_storms_on_postgres() {
    let pg = TempPostgres::start();
    for (name, scenario) in SCENARIOS {
        let store = Store::open(&pg.database(name)).await.expect("postgres");
        scenario(store).await;
    }
}

/// The default engine with connectivity failures counted from the first failing report.
fn engine() -> Engine {
    let mut engine = Engine::default();
    for rule in &mut engine.rules {
        if rule.id == "connectivity.failure" {
            rule.kind = RuleKind::ConnectivityFailure { consecutive: 1 };
        }
    }
    engine
}

fn hosts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("h{i:03}")).collect()
}

async fn enroll(store: &Store, hosts: &[String]) {
    for h in hosts {
        firstline_tests::fixtures::enroll_agent(store, h, &format!("pc-{h}"), T0).await;
    }
}

/// A snapshot `seq` taken at `at` whose DNS check of `name` through `resolver` (and gateway,
/// when `gateway` is not empty) passes or fails.
fn snapshot(
    seq: u64,
    at: i64,
    ok: bool,
    name: &str,
    resolver: &str,
    gateway: &str,
) -> v1::Snapshot {
    v1::Snapshot {
        seq,
        taken_at_ms: at,
        connectivity: Some(v1::Connectivity {
            gateway: Some(v1::GatewayCheck {
                present: ok || gateway.is_empty(),
                address: gateway.into(),
                ..Default::default()
            }),
            dns: vec![v1::NamedCheck {
                target: name.into(),
                ok,
                failure: if ok { String::new() } else { "timeout".into() },
                resolver: resolver.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Reports one snapshot of host `h`, arriving at `arrival`.
async fn report(store: &Store, engine: &Engine, h: &str, mut s: v1::Snapshot, arrival: i64) {
    s.hostname = format!("pc-{h}");
    let batch = firstline_tests::fixtures::batch(vec![s], arrival);
    let outcome = ingest(store, engine, h, &batch, arrival)
        .await
        .expect("ingest");
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
}

/// Every host reports the DNS check `ok` (or not) once, 100 ms apart from `at`.
async fn wave(store: &Store, engine: &Engine, hosts: &[String], seq: u64, at: i64, ok: bool) {
    for (i, h) in hosts.iter().enumerate() {
        let t = at + i as i64 * 100;
        report(
            store,
            engine,
            h,
            snapshot(seq, t, ok, "intranet", "", ""),
            t,
        )
        .await;
    }
}

async fn all_tickets(store: &Store) -> Vec<Ticket> {
    store
        .list_tickets(&TicketFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .expect("tickets")
}

fn outages(all: &[Ticket]) -> Vec<&Ticket> {
    all.iter().filter(|t| t.agent_id == "fleet").collect()
}

fn open(all: &[Ticket]) -> Vec<&Ticket> {
    all.iter()
        .filter(|t| matches!(t.state.as_str(), "new" | "acknowledged"))
        .collect()
}

async fn second_storm_within_the_reopen_window_is_an_outage(store: Store) {
    let engine = engine();
    let hosts = hosts(60);
    enroll(&store, &hosts).await;
    wave(&store, &engine, &hosts, 1, T0, true).await;
    // The first storm: the outage counts its hosts as they join.
    wave(&store, &engine, &hosts[..37], 2, T0 + MIN, false).await;
    let first = outages(&all_tickets(&store).await)[0].clone();
    assert_eq!(first.title, "Outage: dns intranet failing on 37 hosts");
    assert_eq!(first.priority, 2, "below 50 hosts: the rule's priority");
    wave(&store, &engine, &hosts[37..], 2, T0 + 2 * MIN, false).await;
    let first = store.ticket(first.id).await.expect("read").expect("exists");
    assert_eq!(first.title, "Outage: dns intranet failing on 60 hosts");
    assert_eq!(first.priority, 1, "50 hosts and more: P1");
    wave(&store, &engine, &hosts, 3, T0 + 10 * MIN, true).await;
    assert!(open(&all_tickets(&store).await).is_empty());

    // The second storm, five minutes after the recovery: every host ticket reopens (and is
    // flapping), and the window counts from the reopening, not from the first opening.
    wave(&store, &engine, &hosts, 4, T0 + 15 * MIN, false).await;
    let all = all_tickets(&store).await;
    let open_now = open(&all);
    assert_eq!(
        open_now.len(),
        1,
        "the queue shows one outage: {open_now:?}"
    );
    let second = open_now[0];
    assert_eq!(
        (second.agent_id.as_str(), second.linked_hosts),
        ("fleet", 60)
    );
    assert_eq!(second.title, "Outage: dns intranet failing on 60 hosts");
    let host_tickets: Vec<&Ticket> = all.iter().filter(|t| t.agent_id != "fleet").collect();
    assert_eq!(host_tickets.len(), 60, "reopened, not new");
    assert!(
        host_tickets.iter().all(|t| t.state.as_str() == "suppressed"
            && t.flapping
            && t.parent_id == Some(second.id)),
        "{host_tickets:?}"
    );

    // Recovery: the outage resolves although every host ticket is in its flap hold.
    wave(&store, &engine, &hosts, 5, T0 + 20 * MIN, true).await;
    let all = all_tickets(&store).await;
    assert!(
        all.iter().all(|t| t.state.as_str() == "resolved"),
        "{:?}",
        all.iter()
            .filter(|t| t.state.as_str() != "resolved")
            .collect::<Vec<_>>()
    );

    // The handoff lists the two outages with their host counts, not 120 host tickets.
    let handoff = store.handoff(T0).await.expect("handoff");
    let listed: Vec<(&str, &str)> = handoff
        .resolved_since
        .iter()
        .map(|t| (t.agent_id.as_str(), t.title.as_str()))
        .collect();
    let title = "Outage: dns intranet failing on 60 hosts";
    assert_eq!(listed, [("fleet", title), ("fleet", title)]);
    assert_eq!(handoff.truncated, [false; 3]);
}

async fn concurrent_ingests_open_one_outage(store: Store) {
    let engine = engine();
    let hosts = hosts(120);
    enroll(&store, &hosts).await;
    wave(&store, &engine, &hosts, 1, T0, true).await;
    // Every host reports its failure at the same moment, ten at once.
    for chunk in hosts.chunks(10) {
        let mut tasks = tokio::task::JoinSet::new();
        for h in chunk {
            let (store, engine, h) = (store.clone(), engine.clone(), h.clone());
            tasks.spawn(async move {
                let mut s = snapshot(2, T0 + MIN, false, "intranet", "", "");
                s.hostname = format!("pc-{h}");
                let batch = firstline_tests::fixtures::batch(vec![s], T0 + MIN);
                ingest(&store, &engine, &h, &batch, T0 + MIN).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            let outcome = done.expect("task").expect("no ingest error");
            assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        }
    }
    let all = all_tickets(&store).await;
    let outages = outages(&all);
    assert_eq!(outages.len(), 1, "exactly one outage: {outages:?}");
    let host_tickets: Vec<&Ticket> = all.iter().filter(|t| t.agent_id != "fleet").collect();
    assert_eq!(host_tickets.len(), 120);
    assert!(
        host_tickets
            .iter()
            .all(|t| t.state.as_str() == "suppressed" && t.parent_id == Some(outages[0].id)),
        "every host ticket linked"
    );
    assert_eq!(
        outages[0].title,
        "Outage: dns intranet failing on 120 hosts"
    );
}

async fn failures_through_one_resolver_or_gateway_are_one_outage(store: Store) {
    let engine = engine();
    let hosts = hosts(12);
    enroll(&store, &hosts).await;
    for (i, h) in hosts.iter().enumerate() {
        let s = snapshot(
            1,
            T0,
            true,
            &format!("name{i}.example.org"),
            "10.0.0.53:53",
            "10.0.0.1",
        );
        report(&store, &engine, h, s, T0).await;
    }
    // Each host asks for another name through the same resolver behind the same gateway.
    for (i, h) in hosts.iter().enumerate() {
        let t = T0 + MIN + i as i64 * 100;
        let s = snapshot(
            2,
            t,
            false,
            &format!("name{i}.example.org"),
            "10.0.0.53:53",
            "10.0.0.1",
        );
        report(&store, &engine, h, s, t).await;
    }
    let all = all_tickets(&store).await;
    let mut titles: Vec<&str> = outages(&all).iter().map(|t| t.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "DNS resolver 10.0.0.53 not answering on 12 hosts",
            "Gateway 10.0.0.1 not answering on 12 hosts",
        ]
    );
    assert_eq!(
        open(&all).len(),
        2,
        "one outage per cause, no host ticket in the queue"
    );
    for (i, h) in hosts.iter().enumerate() {
        let t = T0 + 5 * MIN + i as i64 * 100;
        let s = snapshot(
            3,
            t,
            true,
            &format!("name{i}.example.org"),
            "10.0.0.53:53",
            "10.0.0.1",
        );
        report(&store, &engine, h, s, t).await;
    }
    assert!(open(&all_tickets(&store).await).is_empty());
}

async fn replayed_spool_keeps_the_timeline_in_order(store: Store) {
    let engine = engine();
    let hosts = hosts(1);
    enroll(&store, &hosts).await;
    report(
        &store,
        &engine,
        "h000",
        snapshot(1, T0, true, "intranet", "", ""),
        T0,
    )
    .await;
    // The collector hears nothing for two hours and opens "agent silent" on its own clock...
    let swept = sweep(&store, &engine, Duration::from_secs(3600), T0 + 2 * HOUR)
        .await
        .expect("sweep");
    assert_eq!(swept.silent_opened, 1);
    // ...then the spool is replayed: a snapshot observed an hour before the ticket opened.
    let replayed = snapshot(2, T0 + HOUR, true, "intranet", "", "");
    report(&store, &engine, "h000", replayed, T0 + 2 * HOUR + MIN).await;
    let all = all_tickets(&store).await;
    let silent = all
        .iter()
        .find(|t| t.rule_id == "agent.silent")
        .expect("silent ticket");
    assert_eq!(silent.state.as_str(), "resolved");
    assert!(
        silent.resolved_at_ms >= Some(silent.opened_at_ms),
        "{silent:?}"
    );
    let timeline = store.timeline(silent.id).await.expect("timeline");
    let times: Vec<(&str, i64)> = timeline
        .iter()
        .map(|e| (e.kind.as_str(), e.at_ms))
        .collect();
    assert_eq!(
        times,
        [("opened", T0 + 2 * HOUR), ("resolved", T0 + 2 * HOUR)]
    );
    // Both times are kept: the resolution was observed an hour before it was shown.
    let observed: Vec<i64> = timeline.iter().map(|e| e.observed_at_ms).collect();
    assert_eq!(observed, [T0 + 2 * HOUR, T0 + HOUR]);
}
