//! The collector's core on SQLite and on a throwaway PostgreSQL server: reports that can never
//! wedge an agent (a rejected snapshot among stored ones, spool epochs, an agent's wrong
//! clock), the event log read by cursor while two writers commit out of order, dedupe under
//! parallel writers, unknown stored values read back as errors, and the service layer's
//! naming of hosts, labels, silences and duplicate machines.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::report::Batch;
use firstline_collector::service::{EventQuery, Service, ServiceError, SilenceRequest};
use firstline_collector::store::{
    CertKind, CountedTable, EventFilter, NewAgent, NewCertificate, NewTicket, Store, TicketFilter,
    TokenRow,
};
use firstline_collector::sweep::sweep;
use firstline_proto::v1;
use firstline_tests::pg::TempPostgres;
use sqlx::Executor;

type Case = fn(Store, String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("a_rejected_snapshot_leaves_the_rest_stored", |s, u| {
        Box::pin(a_rejected_snapshot_leaves_the_rest_stored(s, u))
    }),
    ("a_new_spool_epoch_numbers_from_one", |s, _| {
        Box::pin(a_new_spool_epoch_numbers_from_one(s))
    }),
    ("a_wrong_agent_clock_is_corrected", |s, _| {
        Box::pin(a_wrong_agent_clock_is_corrected(s))
    }),
    ("events_are_read_in_commit_order", |s, _| {
        Box::pin(events_are_read_in_commit_order(s))
    }),
    ("parallel_batches_are_stored_once", |s, _| {
        Box::pin(parallel_batches_are_stored_once(s))
    }),
    ("unknown_stored_values_are_errors", |s, u| {
        Box::pin(unknown_stored_values_are_errors(s, u))
    }),
    ("raised_tickets_and_three_tiers", |s, _| {
        Box::pin(raised_tickets_and_three_tiers(s))
    }),
    ("hosts_by_name_labels_and_silences", |s, _| {
        Box::pin(hosts_by_name_labels_and_silences(s))
    }),
    ("antivirus_is_required_per_os", |s, _| {
        Box::pin(antivirus_is_required_per_os(s))
    }),
    ("the_same_machine_enrolled_twice", |s, _| {
        Box::pin(the_same_machine_enrolled_twice(s))
    }),
    ("conditions_on_their_way_show_on_the_host", |s, _| {
        Box::pin(conditions_on_their_way_show_on_the_host(s))
    }),
];

const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

#[tokio::test(flavor = "multi_thread")]
async fn core_on_sqlite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        );
        let store = Store::open(&url).await.expect("sqlite");
        case(store, url).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn core_on_postgres() {
    let pg = TempPostgres::start();
    for (name, case) in CASES {
        let url = pg.database(name);
        let store = Store::open(&url).await.expect("postgres");
        case(store, url).await;
    }
}

/// A raw connection to the store's database, for what no interface of ours may do: break it.
async fn raw(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("raw connection")
}

async fn agent(store: &Store, id: &str) {
    firstline_tests::fixtures::enroll_agent(store, id, &format!("pc-{id}"), T0).await;
}

fn snap(seq: u64, at: i64, used_percent: u64) -> v1::Snapshot {
    v1::Snapshot {
        seq,
        taken_at_ms: at,
        hostname: "pc".into(),
        filesystems: vec![v1::Filesystem {
            mount_point: "/".into(),
            total_bytes: 100,
            used_bytes: used_percent,
            available_bytes: 100 - used_percent,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn batch(snapshots: Vec<v1::Snapshot>, arrival: i64) -> Batch {
    firstline_tests::fixtures::batch(snapshots, arrival)
}

fn service(store: &Store) -> Service {
    Service::new(store.clone(), Arc::new(Engine::default()), None)
}

async fn open_tickets(store: &Store) -> Vec<firstline_collector::tickets::Ticket> {
    store
        .list_tickets(&TicketFilter {
            open: Some(true),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("tickets")
}

async fn a_rejected_snapshot_leaves_the_rest_stored(store: Store, url: String) {
    agent(&store, "a").await;
    let engine = Engine::default();
    // The store refuses snapshot 2 for good (a trigger stands in for any constraint); the
    // edge rejects snapshot 4 (NaN). 1 and 3 are stored, and the disk crossing in 3 opens its
    // ticket.
    let pool = raw(&url).await;
    if url.starts_with("sqlite") {
        pool.execute(
            "CREATE TRIGGER refuse_two BEFORE INSERT ON snapshots WHEN NEW.seq = 2 \
             BEGIN SELECT RAISE(ABORT, 'seq 2 is refused'); END",
        )
        .await
        .expect("trigger");
    } else {
        pool.execute(
            "CREATE FUNCTION refuse_two() RETURNS trigger AS $$ BEGIN \
             IF NEW.seq = 2 THEN RAISE EXCEPTION 'seq 2 is refused' USING ERRCODE = 'check_violation'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_two BEFORE INSERT ON snapshots FOR EACH ROW EXECUTE FUNCTION refuse_two();",
        )
        .await
        .expect("trigger");
    }
    let mut nan = snap(4, T0, 10);
    nan.system = Some(v1::SystemFacts {
        cpu_percent: f64::NAN,
        ..Default::default()
    });
    let b = batch(
        vec![snap(1, T0, 10), snap(2, T0, 10), snap(3, T0, 95), nan],
        T0,
    );
    let outcome = ingest(&store, &engine, "a", &b, T0).await.expect("ingest");
    assert_eq!(outcome.stored_seqs, [1, 3]);
    let rejected: Vec<u64> = outcome.rejected.iter().map(|r| r.0).collect();
    assert_eq!(rejected, [2, 4]);
    assert!(
        outcome.rejected[0].1.contains("seq 2"),
        "{:?}",
        outcome.rejected
    );
    assert!(outcome.rejected[1].1.contains("cpu_percent"));
    assert_eq!(store.stored_seqs("a").await.expect("seqs"), [1, 3]);
    let open = open_tickets(&store).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].subject, "/");
    // The rejected count the agent reports is added up on the host.
    let mut next = snap(5, T0 + 1000, 95);
    next.rejected_snapshots = 2;
    ingest(
        &store,
        &engine,
        "a",
        &batch(vec![next], T0 + 1000),
        T0 + 1000,
    )
    .await
    .expect("ingest");
    let host = store.host("a").await.expect("host").expect("exists");
    assert_eq!(host.rejected_snapshots, 2);
    // A store that is down fails the batch as a failure that can pass, not as a rejection.
    store.close().await;
    let error = ingest(&store, &engine, "a", &batch(vec![snap(6, T0, 10)], T0), T0)
        .await
        .expect_err("closed store");
    assert!(!error.is_permanent(), "{error}");
}

async fn a_new_spool_epoch_numbers_from_one(store: Store) {
    agent(&store, "a").await;
    let engine = Engine::default();
    let epoch = |e: u64, s: v1::Snapshot| v1::Snapshot {
        spool_epoch: e,
        ..s
    };
    for seq in 1..=3 {
        ingest(
            &store,
            &engine,
            "a",
            &batch(vec![epoch(7, snap(seq, T0, 10))], T0),
            T0,
        )
        .await
        .expect("ingest");
    }
    // The agent lost its spool: a new epoch starts at 1 again, and it is stored and applied.
    let fresh = ingest(
        &store,
        &engine,
        "a",
        &batch(vec![epoch(9, snap(1, T0 + 1000, 96))], T0 + 1000),
        T0 + 1000,
    )
    .await
    .expect("ingest");
    assert_eq!(fresh.stored_seqs, [1]);
    assert_eq!(
        fresh.new_snapshots, 1,
        "stored, not acknowledged and dropped"
    );
    let host = store.host("a").await.expect("host").expect("exists");
    assert_eq!((host.spool_epoch, host.last_seq), (9, 1));
    assert_eq!(
        open_tickets(&store).await.len(),
        1,
        "its disk crossing opened a ticket"
    );
    // A late duplicate of the old epoch is acknowledged but changes nothing.
    let late = ingest(
        &store,
        &engine,
        "a",
        &batch(vec![epoch(7, snap(3, T0, 10))], T0 + 2000),
        T0 + 2000,
    )
    .await
    .expect("ingest");
    assert_eq!(
        (late.stored_seqs.as_slice(), late.new_snapshots),
        ([3u64].as_slice(), 0)
    );
    // A sequence at the top of the range does not freeze the host: the next epoch goes on.
    let top = u64::try_from(i64::MAX).expect("fits");
    ingest(
        &store,
        &engine,
        "a",
        &batch(vec![epoch(9, snap(top, T0 + 3000, 96))], T0 + 3000),
        T0 + 3000,
    )
    .await
    .expect("top seq");
    ingest(
        &store,
        &engine,
        "a",
        &batch(vec![epoch(10, snap(1, T0 + 4000, 10))], T0 + 4000),
        T0 + 4000,
    )
    .await
    .expect("rolled over");
    let host = store.host("a").await.expect("host").expect("exists");
    assert_eq!((host.spool_epoch, host.last_seq), (10, 1));
    assert!(
        open_tickets(&store).await.is_empty(),
        "10% resolves the ticket"
    );
}

async fn a_wrong_agent_clock_is_corrected(store: Store) {
    agent(&store, "a").await;
    let engine = Engine::default();
    let year = 365 * 1440 * MIN;
    // The agent's clock runs a year ahead; it says so by when it sent the request.
    let b = Batch::from_wire(
        v1::ReportRequest {
            snapshots: vec![snap(1, T0 + year - 2000, 95)],
            sent_at_ms: T0 + year,
        },
        T0,
    )
    .expect("valid");
    ingest(&store, &engine, "a", &b, T0).await.expect("ingest");
    let open = open_tickets(&store).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].opened_at_ms, T0 - 2000, "on the collector's clock");
    assert!(
        open[0].resolve_due_ms < T0 + 86_400_000,
        "SLA from the collector's clock"
    );
    let host = store.host("a").await.expect("host").expect("exists");
    assert_eq!(host.clock_skew_ms, year);
    assert_eq!(host.clock_adjusted_snapshots, 1);
}

async fn events_are_read_in_commit_order(store: Store) {
    agent(&store, "a").await;
    agent(&store, "b").await;
    let new = |agent_id: &'static str| NewTicket {
        agent_id,
        rule_id: "disk.usage",
        subject: "/",
        priority: 2,
        title: "t",
        at_ms: T0,
        value: 91.0,
        response_due_ms: T0 + MIN,
        resolve_due_ms: T0 + 60 * MIN,
        kb: "",
    };
    let start = store.last_cursor().await.expect("cursor");
    // Writer 1 writes its event first and commits last.
    let mut first = store.begin_write().await.expect("tx 1");
    first.open_ticket(&new("a")).await.expect("ticket 1");
    let second_store = store.clone();
    let second = tokio::spawn(async move {
        let mut tx = second_store.begin_write().await.expect("tx 2");
        tx.open_ticket(&new("b")).await.expect("ticket 2");
        tx.commit().await.expect("commit 2");
    });
    // A reader polls while both are in flight; it must never move past an event that could
    // still commit below its cursor.
    let mut cursor = start;
    let mut seen = Vec::new();
    let filter = EventFilter::default();
    for _ in 0..20 {
        for e in store
            .events_since(cursor, &filter, 100)
            .await
            .expect("read")
        {
            cursor = e.event.cursor;
            seen.push((e.event.cursor, e.ticket.agent_id));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        seen.is_empty(),
        "nothing is visible before the first writer commits: {seen:?}"
    );
    first.commit().await.expect("commit 1");
    second.await.expect("writer 2");
    for e in store
        .events_since(cursor, &filter, 100)
        .await
        .expect("read")
    {
        seen.push((e.event.cursor, e.ticket.agent_id));
    }
    let agents: Vec<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        agents,
        ["a", "b"],
        "every event once, in commit order: {seen:?}"
    );
    assert!(seen[0].0 < seen[1].0);
    // Filters and paging.
    let svc = service(&store);
    let page = svc
        .events_since(&EventQuery {
            cursor: start,
            host: Some("pc-b".into()),
            ..Default::default()
        })
        .await
        .expect("filtered");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.next_cursor, seen[1].0);
    let none = svc
        .events_since(&EventQuery {
            cursor: page.next_cursor,
            ..Default::default()
        })
        .await
        .expect("nothing new");
    assert!(none.events.is_empty());
    assert_eq!(none.next_cursor, page.next_cursor);
}

async fn parallel_batches_are_stored_once(store: Store) {
    agent(&store, "a").await;
    agent(&store, "b").await;
    let engine = Arc::new(Engine::default());
    let mut tasks = Vec::new();
    for round in 0..4 {
        for id in ["a", "b"] {
            let (store, engine) = (store.clone(), engine.clone());
            tasks.push(tokio::spawn(async move {
                let b = batch((1..=5).map(|s| snap(s, T0, 95)).collect(), T0 + round);
                ingest(&store, &engine, id, &b, T0 + round).await
            }));
        }
    }
    for t in tasks {
        let outcome = t.await.expect("task").expect("ingest");
        assert_eq!(
            outcome.stored_seqs,
            [1, 2, 3, 4, 5],
            "every attempt acks all"
        );
    }
    assert_eq!(
        store
            .count_rows(CountedTable::Snapshots)
            .await
            .expect("count"),
        10
    );
    for id in ["a", "b"] {
        let host = store.host(id).await.expect("host").expect("exists");
        assert_eq!(host.snapshots_stored, 5, "{id}");
    }
    assert_eq!(open_tickets(&store).await.len(), 2, "one ticket per host");
    // One host's reports racing each other to open the same ticket: they queue on the host's
    // row, nothing is rejected, one ticket opens.
    agent(&store, "c").await;
    let mut racing = Vec::new();
    for seq in 1..=6u64 {
        let (store, engine) = (store.clone(), engine.clone());
        racing.push(tokio::spawn(async move {
            let at = T0 + i64::try_from(seq).unwrap_or(0);
            ingest(
                &store,
                &engine,
                "c",
                &batch(vec![snap(seq, at, 96)], at),
                at,
            )
            .await
        }));
    }
    for t in racing {
        let outcome = t.await.expect("task").expect("no race reaches the agent");
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        assert_eq!(outcome.stored_seqs.len(), 1);
    }
    assert_eq!(
        store.stored_seqs("c").await.expect("seqs"),
        [1, 2, 3, 4, 5, 6]
    );
    let c_tickets: Vec<_> = open_tickets(&store)
        .await
        .into_iter()
        .filter(|t| t.agent_id == "c")
        .collect();
    assert_eq!(c_tickets.len(), 1, "{c_tickets:?}");
}

async fn unknown_stored_values_are_errors(store: Store, url: String) {
    agent(&store, "a").await;
    let engine = Engine::default();
    ingest(&store, &engine, "a", &batch(vec![snap(1, T0, 95)], T0), T0)
        .await
        .expect("ingest");
    let pool = raw(&url).await;
    pool.execute("UPDATE tickets SET state = 'nwe'")
        .await
        .expect("corrupt");
    let error = store
        .list_tickets(&TicketFilter::default())
        .await
        .expect_err("an unknown state is not read as new");
    assert!(
        error.to_string().contains("unknown ticket state \"nwe\""),
        "{error}"
    );
    let garbage = if url.starts_with("sqlite") {
        "UPDATE host_facts SET payload = CAST('x' AS BLOB)"
    } else {
        "UPDATE host_facts SET payload = 'x'::bytea"
    };
    pool.execute(garbage).await.expect("corrupt");
    let error = store.list_hosts().await.expect_err("unreadable facts");
    assert!(
        error.to_string().contains("host facts a"),
        "names the host: {error}"
    );
    let svc = service(&store);
    let error = svc.list_hosts(T0).await.expect_err("service error");
    assert!(
        matches!(error, ServiceError::Internal(_)),
        "not worth retrying: {error:?}"
    );
}

async fn raised_tickets_and_three_tiers(store: Store) {
    agent(&store, "a").await;
    let engine = Engine::default();
    ingest(&store, &engine, "a", &batch(vec![snap(1, T0, 92)], T0), T0)
        .await
        .expect("ingest");
    let p2 = open_tickets(&store).await.remove(0);
    assert_eq!(p2.priority, 2);
    assert!(p2.title.contains("92.0% full"), "{}", p2.title);
    let at = T0 + 10 * MIN;
    ingest(&store, &engine, "a", &batch(vec![snap(2, at, 97)], at), at)
        .await
        .expect("ingest");
    let p1 = store.ticket(p2.id).await.expect("ticket").expect("exists");
    assert_eq!(p1.priority, 1);
    assert_eq!(p1.opened_priority, 2);
    assert!(
        p1.title.contains("97.0% full"),
        "title follows: {}",
        p1.title
    );
    assert_eq!(
        p1.response_due_ms,
        at + 15 * MIN,
        "P1 response time from the raise"
    );
    assert_eq!(
        p1.resolve_due_ms,
        at + 240 * MIN,
        "P1 resolve time from the raise"
    );
    // Not resolved in time: tier 2; still open after P1's tier-2 time (2 h): tier 3.
    let silent = Duration::from_secs(365 * 86_400);
    let t2 = p1.resolve_due_ms + MIN;
    sweep(&store, &engine, silent, t2).await.expect("sweep");
    let e = store.ticket(p1.id).await.expect("ticket").expect("exists");
    assert_eq!((e.tier, e.escalated_at_ms), (2, Some(t2)));
    sweep(&store, &engine, silent, t2 + 119 * MIN)
        .await
        .expect("sweep");
    assert_eq!(store.ticket(p1.id).await.expect("t").expect("e").tier, 2);
    sweep(&store, &engine, silent, t2 + 120 * MIN)
        .await
        .expect("sweep");
    assert_eq!(store.ticket(p1.id).await.expect("t").expect("e").tier, 3);
    sweep(&store, &engine, silent, t2 + 1000 * MIN)
        .await
        .expect("sweep");
    let kinds: Vec<String> = store
        .timeline(p1.id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["opened", "priority", "escalated", "escalated"],
        "escalates once per tier"
    );
}

async fn hosts_by_name_labels_and_silences(store: Store) {
    agent(&store, "a").await;
    agent(&store, "b").await;
    let svc = service(&store);
    assert_eq!(svc.resolve_host("PC-A").await.expect("by host name"), "a");
    assert_eq!(svc.resolve_host("b").await.expect("by agent id"), "b");
    let unknown = svc.resolve_host("nosuchhost").await.expect_err("unknown");
    assert!(matches!(unknown, ServiceError::NotFound(_)), "{unknown:?}");
    let tickets = svc
        .list_tickets(&firstline_collector::service::TicketQuery {
            host: Some("nosuchhost".into()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(tickets, Err(ServiceError::NotFound(_))),
        "{tickets:?}"
    );
    let host = svc
        .set_labels("pc-a", &["lab".into(), "floor-3".into(), "lab".into()], T0)
        .await
        .expect("labels");
    assert_eq!(host.labels, ["lab", "floor-3"]);
    let listed = svc.list_hosts(T0).await.expect("hosts");
    assert_eq!(
        listed.iter().find(|h| h.agent_id == "a").expect("a").labels,
        ["lab", "floor-3"]
    );
    assert!(
        svc.set_labels("pc-a", &["has space".into()], T0)
            .await
            .is_err()
    );
    let silence = |host: &str, rule: &str| SilenceRequest {
        host: host.into(),
        rule: rule.into(),
        ends_at_ms: T0 + 60 * MIN,
        ..Default::default()
    };
    let error = svc
        .create_silence(&silence("nosuchhost", ""), "alice", T0)
        .await
        .expect_err("unknown host");
    assert!(matches!(error, ServiceError::NotFound(_)), "{error:?}");
    let error = svc
        .create_silence(&silence("", "disk.usag"), "alice", T0)
        .await
        .expect_err("unknown rule");
    assert!(error.to_string().contains("disk.usag"), "{error}");
    let s = svc
        .create_silence(&silence("pc-a", ""), "alice", T0)
        .await
        .expect("silence");
    assert_eq!(s.matcher_value, "a", "stored by agent id");
    assert_eq!(svc.list_silences(T0 + MIN).await.expect("list").len(), 1);
    let ended = svc
        .end_silence(s.id, "alice", T0 + MIN)
        .await
        .expect("end early");
    assert_eq!(ended.ends_at_ms, T0 + MIN);
    assert!(
        svc.list_silences(T0 + 2 * MIN)
            .await
            .expect("list")
            .is_empty()
    );
    let again = svc.end_silence(s.id, "alice", T0 + 2 * MIN).await;
    assert!(matches!(again, Err(ServiceError::NotFound(_))), "{again:?}");
    // Two hosts with one name: say so instead of picking one.
    let engine = Engine::default();
    for id in ["a", "b"] {
        let mut s = snap(1, T0, 10);
        s.hostname = "twin".into();
        ingest(&store, &engine, id, &batch(vec![s], T0), T0)
            .await
            .expect("ingest");
    }
    let error = svc.resolve_host("twin").await.expect_err("ambiguous");
    assert!(error.to_string().contains("matches 2 agents"), "{error}");
}

async fn antivirus_is_required_per_os(store: Store) {
    let engine = Engine::default();
    let cases: [(&str, &str, Vec<v1::AntivirusProduct>, bool); 5] = [
        ("linux-none", "Debian GNU/Linux 12", vec![], false),
        ("windows-none", "Microsoft Windows 11 Pro", vec![], true),
        ("macos-none", "macOS", vec![], true),
        (
            "linux-clamd",
            "Debian GNU/Linux 12",
            vec![v1::AntivirusProduct {
                name: "ClamAV".into(),
                running: true,
                realtime_protection: false,
                source: "clamd-socket".into(),
                ..Default::default()
            }],
            false,
        ),
        (
            "windows-rt-off",
            "Microsoft Windows 11 Pro",
            vec![v1::AntivirusProduct {
                name: "Microsoft Defender".into(),
                running: true,
                realtime_protection: false,
                source: "defender".into(),
                ..Default::default()
            }],
            true,
        ),
    ];
    for (id, os, products, expect_ticket) in cases {
        agent(&store, id).await;
        let s = v1::Snapshot {
            seq: 1,
            taken_at_ms: T0,
            hostname: id.into(),
            os: os.into(),
            antivirus: Some(v1::AntivirusState { products }),
            ..Default::default()
        };
        ingest(&store, &engine, id, &batch(vec![s], T0), T0)
            .await
            .expect("ingest");
        let open: Vec<_> = open_tickets(&store)
            .await
            .into_iter()
            .filter(|t| t.agent_id == id)
            .collect();
        assert_eq!(!open.is_empty(), expect_ticket, "{id}: {open:?}");
        if expect_ticket {
            assert_eq!(open[0].priority, 1, "{id}");
        }
    }
}

async fn the_same_machine_enrolled_twice(store: Store) {
    for (id, token) in [("a", "t1"), ("b", "t2")] {
        store
            .create_token(&TokenRow {
                token_hash: token.into(),
                label: String::new(),
                created_at_ms: T0,
                expires_at_ms: T0 + MIN,
                uses_total: 1,
                uses_left: 1,
                revoked_at_ms: None,
                host_labels: Vec::new(),
            })
            .await
            .expect("token");
        let enrolled = store
            .enroll(
                token,
                T0,
                &NewAgent {
                    agent_id: id.into(),
                    hostname: "pc".into(),
                    machine_id: "m-1".into(),
                    enrolled_at_ms: T0,
                },
                &NewCertificate {
                    fingerprint: format!("fp-{id}"),
                    kind: CertKind::Agent,
                    subject: id.into(),
                    issued_at_ms: T0,
                    not_after_ms: T0 + 1,
                },
            )
            .await
            .expect("enroll");
        let others: Vec<&str> = enrolled
            .same_machine_as
            .iter()
            .map(|(a, _)| a.as_str())
            .collect();
        assert_eq!(others, if id == "a" { vec![] } else { vec!["a"] });
    }
    let hosts = store.list_hosts().await.expect("hosts");
    let twins: Vec<(&str, Vec<String>)> = hosts
        .iter()
        .map(|h| (h.agent_id.as_str(), h.same_machine_as.clone()))
        .collect();
    assert_eq!(
        twins,
        [("a", vec!["b".to_owned()]), ("b", vec!["a".to_owned()])]
    );
}

async fn conditions_on_their_way_show_on_the_host(store: Store) {
    agent(&store, "a").await;
    let engine = Engine::default();
    let day = 1440 * MIN;
    let security = |seq: u64, at: i64| v1::Snapshot {
        patches: Some(v1::PatchState {
            package_manager: "apt".into(),
            pending_count: 2,
            security_count: 2,
            ..Default::default()
        }),
        ..snap(seq, at, 10)
    };
    ingest(&store, &engine, "a", &batch(vec![security(1, T0)], T0), T0)
        .await
        .expect("ingest");
    let later = T0 + 3 * day;
    ingest(
        &store,
        &engine,
        "a",
        &batch(vec![security(2, later)], later),
        later,
    )
    .await
    .expect("ingest");
    let host = service(&store).host("a", later).await.expect("host");
    let pending: Vec<(&str, u32, i64)> = host
        .pending
        .iter()
        .map(|p| (p.rule_id.as_str(), p.priority, p.opens_at_ms))
        .collect();
    assert!(
        pending.contains(&("updates.security", 2, T0 + 7 * day)),
        "P2 in 4 days if not patched: {pending:?}"
    );
    assert!(open_tickets(&store).await.is_empty(), "not due yet");
    let listed = service(&store).list_hosts(later).await.expect("hosts");
    assert_eq!(listed[0].pending, host.pending, "the list shows the same");
    // Once due, it is a ticket and no longer pending.
    let due = T0 + 7 * day + MIN;
    ingest(
        &store,
        &engine,
        "a",
        &batch(vec![security(3, due)], due),
        due,
    )
    .await
    .expect("ingest");
    let host = service(&store).host("a", due).await.expect("host");
    assert!(
        host.pending.iter().all(|p| p.rule_id != "updates.security"),
        "{:?}",
        host.pending
    );
    assert_eq!(open_tickets(&store).await.len(), 1);
}
