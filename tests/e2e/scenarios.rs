//! Ticket lifecycle scenarios, driven through ingest and the sweep with an injected clock (no
//! sleeps), on SQLite and on a throwaway PostgreSQL server: `for` durations, consecutive
//! failures, SLA escalation, reopen inside and outside the window, silent agents, operator
//! actions, and one event per change.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::store::Matcher;
use firstline_collector::store::{CountedTable, Store, StoreError, TicketFilter};
use firstline_collector::sweep::sweep;
use firstline_collector::tickets::Sla;
use firstline_collector::tickets::{Ticket, TicketAction};
use firstline_proto::v1;
use firstline_tests::pg::TempPostgres;

type Scenario = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("security_updates_for_seven_days", |s| {
        Box::pin(security_updates_for_seven_days(s))
    }),
    ("connectivity_needs_consecutive_failures", |s| {
        Box::pin(connectivity_needs_consecutive_failures(s))
    }),
    ("sla_breach_escalates_open_tickets_only", |s| {
        Box::pin(sla_breach_escalates_open_tickets_only(s))
    }),
    ("recurrence_inside_and_outside_the_reopen_window", |s| {
        Box::pin(recurrence_inside_and_outside_the_reopen_window(s))
    }),
    ("silent_agent_opens_and_report_resolves", |s| {
        Box::pin(silent_agent_opens_and_report_resolves(s))
    }),
    ("operator_actions_and_their_timeline", |s| {
        Box::pin(operator_actions_and_their_timeline(s))
    }),
    ("antivirus_rules", |s| Box::pin(antivirus_rules(s))),
    ("storm_of_500_hosts_is_one_outage", |s| {
        Box::pin(storm_of_500_hosts_is_one_outage(s))
    }),
    ("silences_by_rule_host_and_label", |s| {
        Box::pin(silences_by_rule_host_and_label(s))
    }),
    ("flapping_is_one_ticket", |s| {
        Box::pin(flapping_is_one_ticket(s))
    }),
    ("disk_forecast_from_growth", |s| {
        Box::pin(disk_forecast_from_growth(s))
    }),
];

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[tokio::test(flavor = "multi_thread")]
async fn ticket_scenarios_on_sqlite() {
    for (name, scenario) in SCENARIOS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        ))
        .await
        .expect("sqlite");
        scenario(store).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_scenarios_on_postgres() {
    let pg = TempPostgres::start();
    for (name, scenario) in SCENARIOS {
        let store = Store::open(&pg.database(name)).await.expect("postgres");
        scenario(store).await;
    }
}

async fn agent(store: &Store, id: &str) {
    firstline_tests::fixtures::enroll_agent(store, id, &format!("pc-{id}"), T0).await;
}

/// Reports one snapshot `seq` taken at `at` with the given facts.
async fn report(
    store: &Store,
    engine: &Engine,
    id: &str,
    seq: u64,
    at: i64,
    facts: impl FnOnce(&mut v1::Snapshot),
) {
    let mut s = v1::Snapshot {
        seq,
        taken_at_ms: at,
        hostname: format!("pc-{id}"),
        ..Default::default()
    };
    facts(&mut s);
    let batch = firstline_tests::fixtures::batch(vec![s], at);
    ingest(store, engine, id, &batch, at).await.expect("ingest");
}

async fn open_for(store: &Store, rule: &str) -> Vec<Ticket> {
    let all = store
        .list_tickets(&TicketFilter {
            open: Some(true),
            ..Default::default()
        })
        .await
        .expect("tickets");
    all.into_iter().filter(|t| t.rule_id == rule).collect()
}

async fn kinds(store: &Store, id: i64) -> Vec<String> {
    store
        .timeline(id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect()
}

fn patches(security: u32) -> impl FnOnce(&mut v1::Snapshot) {
    move |s| {
        s.patches = Some(v1::PatchState {
            package_manager: "apt".into(),
            pending_count: security,
            security_count: security,
            ..Default::default()
        })
    }
}

async fn security_updates_for_seven_days(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    report(&store, &engine, "a", 1, T0, patches(2)).await;
    report(&store, &engine, "a", 2, T0 + 6 * DAY, patches(2)).await;
    assert!(
        open_for(&store, "updates.security").await.is_empty(),
        "not yet seven days"
    );
    report(&store, &engine, "a", 3, T0 + 7 * DAY + HOUR, patches(3)).await;
    let open = open_for(&store, "updates.security").await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].priority, open[0].kb.as_str()),
        (2, "security-updates")
    );
    assert_eq!(
        open[0].title, "3 security updates pending on pc-a for over 7 days",
        "a whole count, the rule's duration"
    );
    assert_eq!(
        open[0].response_due_ms,
        T0 + 7 * DAY + HOUR + HOUR,
        "P2 response time is one hour"
    );
    report(&store, &engine, "a", 4, T0 + 8 * DAY, patches(0)).await;
    assert!(
        open_for(&store, "updates.security").await.is_empty(),
        "installed: resolved"
    );
    // The clock restarts: pending again today is not seven days pending.
    report(&store, &engine, "a", 5, T0 + 9 * DAY, patches(1)).await;
    assert!(open_for(&store, "updates.security").await.is_empty());
}

fn dns(ok: bool) -> impl FnOnce(&mut v1::Snapshot) {
    move |s| {
        s.connectivity = Some(v1::Connectivity {
            gateway: Some(v1::GatewayCheck {
                present: true,
                ..Default::default()
            }),
            dns: vec![v1::NamedCheck {
                target: "intranet".into(),
                ok,
                failure: if ok { String::new() } else { "timeout".into() },
                ..Default::default()
            }],
            ..Default::default()
        })
    }
}

async fn connectivity_needs_consecutive_failures(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    report(&store, &engine, "a", 1, T0, dns(false)).await;
    report(&store, &engine, "a", 2, T0 + 60_000, dns(false)).await;
    assert!(
        open_for(&store, "connectivity.failure").await.is_empty(),
        "two failures are not three"
    );
    report(&store, &engine, "a", 3, T0 + 120_000, dns(true)).await;
    report(&store, &engine, "a", 4, T0 + 180_000, dns(false)).await;
    report(&store, &engine, "a", 5, T0 + 240_000, dns(false)).await;
    assert!(
        open_for(&store, "connectivity.failure").await.is_empty(),
        "a success resets the count"
    );
    report(&store, &engine, "a", 6, T0 + 300_000, dns(false)).await;
    let open = open_for(&store, "connectivity.failure").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].subject, "dns intranet");
    report(&store, &engine, "a", 7, T0 + 360_000, dns(true)).await;
    assert!(open_for(&store, "connectivity.failure").await.is_empty());
}

fn disk(percent: u64) -> impl FnOnce(&mut v1::Snapshot) {
    move |s| {
        s.filesystems = vec![v1::Filesystem {
            mount_point: "/".into(),
            total_bytes: 100,
            used_bytes: percent,
            available_bytes: 100 - percent,
            ..Default::default()
        }]
    }
}

async fn sla_breach_escalates_open_tickets_only(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    agent(&store, "b").await;
    report(&store, &engine, "a", 1, T0, disk(92)).await;
    report(&store, &engine, "b", 1, T0, disk(92)).await;
    report(&store, &engine, "b", 2, T0 + 10 * 60_000, disk(50)).await; // b resolves in time
    let silent = Duration::from_secs(365 * 86_400);
    let before = sweep(&store, &engine, silent, T0 + 59 * 60_000)
        .await
        .expect("sweep");
    assert_eq!(before.escalated, 0, "P2 response time is one hour");
    let after = sweep(&store, &engine, silent, T0 + 61 * 60_000)
        .await
        .expect("sweep");
    assert_eq!(after.escalated, 1, "only the open ticket escalates");
    let a = &open_for(&store, "disk.usage").await[0];
    assert_eq!(a.tier, 2);
    assert_eq!(kinds(&store, a.id).await, ["opened", "escalated"]);
    let again = sweep(&store, &engine, silent, T0 + 9 * HOUR)
        .await
        .expect("sweep");
    assert_eq!(again.escalated, 0, "escalated once");
    let resolved = store
        .list_tickets(&TicketFilter {
            open: Some(false),
            ..Default::default()
        })
        .await
        .expect("tickets");
    assert!(
        resolved.iter().all(|t| t.tier == 1),
        "resolved tickets never escalate"
    );
}

async fn recurrence_inside_and_outside_the_reopen_window(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    report(&store, &engine, "a", 1, T0, disk(91)).await;
    report(&store, &engine, "a", 2, T0 + HOUR, disk(40)).await;
    report(&store, &engine, "a", 3, T0 + 2 * HOUR, disk(93)).await; // inside 24 h
    let open = open_for(&store, "disk.usage").await;
    assert_eq!(open.len(), 1);
    let first = open[0].id;
    assert_eq!(
        kinds(&store, first).await,
        ["opened", "resolved", "reopened"]
    );
    report(&store, &engine, "a", 4, T0 + 3 * HOUR, disk(40)).await;
    report(&store, &engine, "a", 5, T0 + 3 * DAY, disk(95)).await; // outside
    let open = open_for(&store, "disk.usage").await;
    assert_eq!(open.len(), 1);
    assert_ne!(open[0].id, first, "outside the window: a new ticket");
    assert_eq!(open[0].priority, 1, "95% opens at P1");
}

async fn silent_agent_opens_and_report_resolves(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    report(&store, &engine, "a", 1, T0, disk(10)).await;
    let three_intervals = Duration::from_secs(180);
    assert_eq!(
        sweep(&store, &engine, three_intervals, T0 + 170_000)
            .await
            .expect("sweep")
            .silent_opened,
        0
    );
    assert_eq!(
        sweep(&store, &engine, three_intervals, T0 + 181_000)
            .await
            .expect("sweep")
            .silent_opened,
        1
    );
    assert_eq!(
        sweep(&store, &engine, three_intervals, T0 + 300_000)
            .await
            .expect("sweep")
            .silent_opened,
        0,
        "one ticket, not one per sweep"
    );
    let silent = open_for(&store, "agent.silent").await;
    assert_eq!((silent.len(), silent[0].priority), (1, 3));
    report(&store, &engine, "a", 2, T0 + 400_000, disk(10)).await;
    assert!(
        open_for(&store, "agent.silent").await.is_empty(),
        "the next report resolves it"
    );
}

async fn operator_actions_and_their_timeline(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    report(&store, &engine, "a", 1, T0, disk(92)).await;
    let id = open_for(&store, "disk.usage").await[0].id;
    let events_before = store
        .count_rows(CountedTable::TicketEvents)
        .await
        .expect("count");
    store
        .act(
            id,
            &TicketAction::Acknowledge,
            "alice",
            T0 + 1,
            &Sla::default(),
        )
        .await
        .expect("ack");
    store
        .act(
            id,
            &TicketAction::Assign("bob".into()),
            "alice",
            T0 + 2,
            &Sla::default(),
        )
        .await
        .expect("assign");
    store
        .act(
            id,
            &TicketAction::Comment("cleaning /var/log".into()),
            "bob",
            T0 + 3,
            &Sla::default(),
        )
        .await
        .expect("comment");
    let again = store
        .act(
            id,
            &TicketAction::Acknowledge,
            "bob",
            T0 + 4,
            &Sla::default(),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    store
        .act(
            id,
            &TicketAction::Resolve("freed 20 GB".into()),
            "bob",
            T0 + 5,
            &Sla::default(),
        )
        .await
        .expect("resolve");
    store
        .act(id, &TicketAction::Close, "bob", T0 + 6, &Sla::default())
        .await
        .expect("close");
    assert!(matches!(
        store
            .act(999_999, &TicketAction::Close, "bob", T0, &Sla::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    let timeline = store.timeline(id).await.expect("timeline");
    let got: Vec<(String, String, String)> = timeline
        .iter()
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                e.actor.clone(),
                e.detail.clone(),
            )
        })
        .collect();
    assert_eq!(
        got[1..],
        [
            ("acknowledged".into(), "alice".into(), String::new()),
            ("assigned".into(), "alice".into(), "bob".into()),
            ("comment".into(), "bob".into(), "cleaning /var/log".into()),
            ("resolved".into(), "bob".into(), "freed 20 GB".into()),
            ("closed".into(), "bob".into(), String::new()),
        ]
    );
    let events_after = store
        .count_rows(CountedTable::TicketEvents)
        .await
        .expect("count");
    assert_eq!(
        events_after - events_before,
        5,
        "one event per change, none for the refused one"
    );
    let t = store.ticket(id).await.expect("ticket").expect("exists");
    assert_eq!(
        (t.assignee.as_str(), t.state.as_str(), t.acknowledged_at_ms),
        ("bob", "closed", Some(T0 + 1))
    );
}

async fn antivirus_rules(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    agent(&store, "b").await;
    let av = |os: &'static str, products: Vec<v1::AntivirusProduct>| {
        move |s: &mut v1::Snapshot| {
            s.os = os.into();
            s.antivirus = Some(v1::AntivirusState { products });
        }
    };
    const WINDOWS: &str = "Microsoft Windows 11 Pro";
    const LINUX: &str = "Debian GNU/Linux 12";
    // Windows requires an antivirus; a Linux workstation without one opens nothing.
    report(&store, &engine, "a", 1, T0, av(WINDOWS, vec![])).await;
    report(&store, &engine, "b", 1, T0, av(LINUX, vec![])).await;
    let none = open_for(&store, "antivirus.none").await;
    assert_eq!(none.len(), 1, "{none:?}");
    assert_eq!((none[0].agent_id.as_str(), none[0].priority), ("a", 1));
    let clam = |running: bool, age_days: i64| v1::AntivirusProduct {
        name: "ClamAV".into(),
        running,
        source: "clamd-socket".into(),
        definitions_updated_ms: T0 - age_days * DAY,
        ..Default::default()
    };
    report(
        &store,
        &engine,
        "b",
        2,
        T0 + 1000,
        av(LINUX, vec![clam(false, 1)]),
    )
    .await;
    assert_eq!(open_for(&store, "antivirus.off").await[0].subject, "ClamAV");
    // On Linux a running on-demand scanner protects, real-time or not.
    report(
        &store,
        &engine,
        "b",
        3,
        T0 + 2000,
        av(LINUX, vec![clam(true, 5)]),
    )
    .await;
    assert!(open_for(&store, "antivirus.off").await.is_empty());
    let old = open_for(&store, "antivirus.definitions").await;
    assert_eq!((old.len(), old[0].priority), (1, 2));
    // On Windows a product with real-time protection off is not protecting.
    let defender = v1::AntivirusProduct {
        name: "Microsoft Defender".into(),
        running: true,
        realtime_protection: false,
        source: "defender".into(),
        definitions_updated_ms: T0,
        ..Default::default()
    };
    report(
        &store,
        &engine,
        "a",
        2,
        T0 + 1000,
        av(WINDOWS, vec![defender]),
    )
    .await;
    assert!(open_for(&store, "antivirus.none").await.is_empty());
    let off = open_for(&store, "antivirus.off").await;
    assert_eq!((off.len(), off[0].agent_id.as_str()), (1, "a"));
}

async fn storm_of_500_hosts_is_one_outage(store: Store) {
    let mut engine = Engine::default();
    for rule in &mut engine.rules {
        if rule.id == "connectivity.failure" {
            rule.kind =
                firstline_collector::rules::RuleKind::ConnectivityFailure { consecutive: 1 };
        }
    }
    let hosts: Vec<String> = (0..500).map(|i| format!("h{i:03}")).collect();
    for h in &hosts {
        agent(&store, h).await;
    }
    // Everyone is healthy first (so all count as active hosts), then the DNS server dies.
    for h in &hosts {
        report(&store, &engine, h, 1, T0, dns(true)).await;
    }
    for (i, h) in hosts.iter().enumerate() {
        report(
            &store,
            &engine,
            h,
            2,
            T0 + 60_000 + i as i64 * 100,
            dns(false),
        )
        .await;
    }
    let all = store
        .list_tickets(&TicketFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("tickets");
    let outages: Vec<&Ticket> = all.iter().filter(|t| t.agent_id == "fleet").collect();
    assert_eq!(outages.len(), 1, "exactly one outage ticket");
    let outage = outages[0];
    assert_eq!(
        (outage.state.as_str(), outage.subject.as_str()),
        ("new", "dns intranet")
    );
    let host_tickets: Vec<&Ticket> = all.iter().filter(|t| t.agent_id != "fleet").collect();
    assert_eq!(host_tickets.len(), 500);
    assert!(
        host_tickets
            .iter()
            .all(|t| t.state.as_str() == "suppressed"),
        "no host ticket left in the queue"
    );
    let open_queue = store
        .list_tickets(&TicketFilter {
            open: Some(true),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("open");
    assert_eq!(
        open_queue.len(),
        1,
        "the queue shows one ticket: the outage"
    );
    let linked = kinds(&store, outage.id)
        .await
        .iter()
        .filter(|k| *k == "linked")
        .count();
    assert_eq!(linked, 500, "every host is linked to the outage");
    // The DNS server comes back: every host recovers, and so does the outage.
    for (i, h) in hosts.iter().enumerate() {
        report(
            &store,
            &engine,
            h,
            3,
            T0 + 600_000 + i as i64 * 100,
            dns(true),
        )
        .await;
    }
    let open_queue = store
        .list_tickets(&TicketFilter {
            open: Some(true),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("open");
    assert!(open_queue.is_empty(), "{open_queue:?}");
    let outage = store
        .ticket(outage.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(outage.state.as_str(), "resolved");
}

async fn silences_by_rule_host_and_label(store: Store) {
    let engine = Engine::default();
    for h in ["a", "b", "c"] {
        agent(&store, h).await;
    }
    store
        .set_labels("c", &["lab".into()])
        .await
        .expect("labels");
    store
        .create_silence(
            &Matcher::Rule("disk.usage".into()),
            T0,
            T0 + HOUR,
            "disk swap",
            "alice",
        )
        .await
        .expect("silence");
    store
        .create_silence(
            &Matcher::Host("pc-b".into()),
            T0,
            T0 + 3 * HOUR,
            "re-imaging",
            "alice",
        )
        .await
        .expect("silence");
    store
        .create_silence(
            &Matcher::Label("lab".into()),
            T0,
            T0 + 3 * HOUR,
            "lab rebuild",
            "alice",
        )
        .await
        .expect("silence");
    report(&store, &engine, "a", 1, T0 + 60_000, disk(96)).await;
    assert!(
        open_for(&store, "disk.usage").await.is_empty(),
        "the rule is silenced"
    );
    report(&store, &engine, "a", 2, T0 + 2 * HOUR, disk(96)).await;
    assert_eq!(
        open_for(&store, "disk.usage").await.len(),
        1,
        "the silence ended; the condition was tracked all along"
    );
    for h in ["b", "c"] {
        report(&store, &engine, h, 1, T0 + 2 * HOUR, |s| {
            s.antivirus = Some(v1::AntivirusState { products: vec![] })
        })
        .await;
    }
    assert!(
        open_for(&store, "antivirus.none").await.is_empty(),
        "host and label silences hold"
    );
    assert_eq!(
        store
            .current_silences(T0 + 2 * HOUR)
            .await
            .expect("list")
            .len(),
        2
    );
}

async fn flapping_is_one_ticket(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    // The disk toggles every minute for an hour.
    for i in 0..60u64 {
        let percent = if i % 2 == 0 { 91 } else { 40 };
        report(
            &store,
            &engine,
            "a",
            i + 1,
            T0 + i as i64 * 60_000,
            disk(percent),
        )
        .await;
    }
    let all = store
        .list_tickets(&TicketFilter::default())
        .await
        .expect("tickets");
    assert_eq!(all.len(), 1, "one ticket for the whole hour");
    let t = &all[0];
    assert!(t.flapping, "{t:?}");
    assert_eq!(t.state.as_str(), "new", "still open while it flaps");
    let events = kinds(&store, t.id).await;
    assert_eq!(
        events.iter().filter(|k| *k == "resolved").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|k| *k == "flapping").count(),
        1,
        "{events:?}"
    );
    // Clear for the whole flap window: resolved, and no longer flapping.
    let last = T0 + 60 * 60_000;
    report(&store, &engine, "a", 61, last, disk(40)).await;
    report(&store, &engine, "a", 62, last + 16 * 60_000, disk(40)).await;
    let t = store.ticket(t.id).await.expect("read").expect("exists");
    assert_eq!((t.state.as_str(), t.flapping), ("resolved", false));
}

async fn disk_forecast_from_growth(store: Store) {
    let engine = Engine::default();
    agent(&store, "a").await;
    // Growing one point an hour from 50 %: about 48 hours left after two hours, under 72.
    for i in 0..=12u64 {
        let at = T0 + i as i64 * 10 * 60_000;
        let percent = 50 + i / 6;
        report(&store, &engine, "a", i + 1, at, disk(percent)).await;
    }
    let forecast = open_for(&store, "disk.forecast").await;
    assert_eq!(forecast.len(), 1, "{forecast:?}");
    assert_eq!(forecast[0].priority, 3);
    assert!(
        forecast[0].last_value > 24.0 && forecast[0].last_value < 72.0,
        "{}",
        forecast[0].last_value
    );
    assert!(
        open_for(&store, "disk.usage").await.is_empty(),
        "52 % is not full"
    );
    // Growth stops: flat for a day, the forecast clears.
    for i in 13..=40u64 {
        report(
            &store,
            &engine,
            "a",
            i + 1,
            T0 + i as i64 * 3_600_000,
            disk(52),
        )
        .await;
    }
    assert!(open_for(&store, "disk.forecast").await.is_empty());
}
