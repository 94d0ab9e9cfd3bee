//! The store suite, run unchanged on SQLite and on a throwaway PostgreSQL server: the same
//! schema, enrollment all-or-nothing, idempotent ingest, and the ticket lifecycle with its
//! dedupe invariant and event log, retention, and the dashboard's queries.

use std::future::Future;
use std::pin::Pin;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::report::Batch;
use firstline_collector::store::{
    CertKind, CountedTable, NewAgent, NewCertificate, NewTicket, Store, StoreError, TicketFilter,
    TokenRow,
};
use firstline_collector::tickets::TicketState;
use firstline_proto::v1;
use firstline_tests::pg::TempPostgres;

mod dashboard_queries;
mod retention;

type Scenario = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("enrollment", |s| Box::pin(enrollment(s))),
    ("idempotent_ingest", |s| Box::pin(idempotent_ingest(s))),
    ("ticket_lifecycle", |s| Box::pin(ticket_lifecycle(s))),
    ("one_open_ticket_per_key", |s| {
        Box::pin(one_open_ticket_per_key(s))
    }),
    ("vanished_mount", |s| Box::pin(vanished_mount(s))),
    ("handoff_says_when_a_list_is_cut", |s| {
        Box::pin(handoff_says_when_a_list_is_cut(s))
    }),
    ("dashboard_queries", |s| {
        Box::pin(dashboard_queries::dashboard_queries(s))
    }),
    ("retention_snapshots", |s| {
        Box::pin(retention::old_snapshots_go_newest_stays(s))
    }),
    ("retention_disk_samples", |s| {
        Box::pin(retention::disk_samples_thin_to_one_per_hour(s))
    }),
    ("retention_tickets", |s| {
        Box::pin(retention::old_finished_tickets_go_open_ones_stay(s))
    }),
];

const NOW: i64 = 1_800_000_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn store_suite_on_sqlite() {
    for (name, scenario) in SCENARIOS {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        );
        let store = Store::open(&url).await.expect("open sqlite");
        scenario(store).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_suite_on_postgres() {
    let pg = TempPostgres::start();
    for (name, scenario) in SCENARIOS {
        let store = Store::open(&pg.database(name))
            .await
            .expect("open postgres");
        scenario(store).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_backends_have_the_same_schema() {
    let pg = TempPostgres::start();
    let postgres = Store::open(&pg.database("schema")).await.expect("postgres");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .expect("sqlite");
    let a = sqlite.schema_outline().await.expect("sqlite schema");
    let b = postgres.schema_outline().await.expect("postgres schema");
    assert!(a.len() > 40, "schema outline looks empty: {a:?}");
    assert_eq!(a, b, "the two migrations describe different schemas");
}

async fn enroll_agent(store: &Store, id: &str) {
    firstline_tests::fixtures::enroll_agent(store, id, &format!("host-{id}"), NOW).await;
}

fn agent(id: &str) -> NewAgent {
    NewAgent {
        agent_id: id.into(),
        hostname: format!("host-{id}"),
        machine_id: String::new(),
        enrolled_at_ms: NOW,
    }
}

fn cert(id: &str) -> NewCertificate {
    NewCertificate {
        fingerprint: format!("fp-{id}"),
        kind: CertKind::Agent,
        subject: id.into(),
        issued_at_ms: NOW,
        not_after_ms: NOW + 1,
    }
}

fn batch(snapshots: Vec<(u64, Vec<(&str, u64)>)>) -> Batch {
    let snapshots = snapshots
        .into_iter()
        .map(|(seq, mounts)| v1::Snapshot {
            seq,
            taken_at_ms: NOW + seq as i64 * 1000,
            hostname: "pc".into(),
            filesystems: mounts
                .into_iter()
                .map(|(m, used)| v1::Filesystem {
                    mount_point: m.into(),
                    total_bytes: 100,
                    used_bytes: used,
                    available_bytes: 100 - used,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    // Arrives after every snapshot was taken (a spooled batch); the times are the agent's.
    Batch::from_wire(
        v1::ReportRequest {
            snapshots,
            sent_at_ms: 0,
        },
        NOW + 100_000,
    )
    .expect("valid batch")
}

async fn enrollment(store: Store) {
    store
        .create_token(&TokenRow {
            token_hash: "h".into(),
            label: "two".into(),
            created_at_ms: NOW,
            expires_at_ms: NOW + 1000,
            uses_total: 2,
            uses_left: 2,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    let unknown = store.enroll("nope", NOW, &agent("x"), &cert("x")).await;
    assert!(
        matches!(unknown, Err(StoreError::TokenUnknown)),
        "{unknown:?}"
    );
    let late = store.enroll("h", NOW + 1000, &agent("x"), &cert("x")).await;
    assert!(matches!(late, Err(StoreError::TokenExpired)), "{late:?}");
    store
        .enroll("h", NOW, &agent("a"), &cert("a"))
        .await
        .expect("first");
    store
        .enroll("h", NOW, &agent("b"), &cert("b"))
        .await
        .expect("second");
    let spent = store.enroll("h", NOW, &agent("c"), &cert("c")).await;
    assert!(matches!(spent, Err(StoreError::TokenUsedUp)), "{spent:?}");
    assert_eq!(
        store.count_rows(CountedTable::Agents).await.expect("count"),
        2
    );
    assert_eq!(
        store
            .count_rows(CountedTable::Certificates)
            .await
            .expect("count"),
        2
    );
    let who = store
        .identity("fp-a")
        .await
        .expect("lookup")
        .expect("known");
    assert_eq!(
        (who.kind, who.subject.as_str(), who.revoked),
        (CertKind::Agent, "a", false)
    );
    assert_eq!(store.revoke_subject("a", NOW).await.expect("revoke"), 1);
    assert!(
        store
            .identity("fp-a")
            .await
            .expect("lookup")
            .expect("known")
            .revoked
    );
    assert_eq!(store.identity("fp-zzz").await.expect("lookup"), None);
    let tokens = store.list_tokens().await.expect("tokens");
    assert_eq!(tokens[0].uses_left, 0);
}

async fn idempotent_ingest(store: Store) {
    enroll_agent(&store, "a").await;
    let rules = Engine::default();
    let b = batch(vec![(1, vec![("/", 10)]), (2, vec![("/", 20)])]);
    let first = ingest(&store, &rules, "a", &b, NOW).await.expect("ingest");
    assert_eq!(
        (first.stored_seqs.clone(), first.new_snapshots),
        (vec![1, 2], 2)
    );
    let again = ingest(&store, &rules, "a", &b, NOW)
        .await
        .expect("ingest again");
    assert_eq!((again.stored_seqs, again.new_snapshots), (vec![1, 2], 0));
    // An older snapshot arriving late is stored but does not replace the newer state.
    let late = ingest(&store, &rules, "a", &batch(vec![(5, vec![("/", 30)])]), NOW)
        .await
        .expect("5");
    assert_eq!(late.new_snapshots, 1);
    ingest(&store, &rules, "a", &batch(vec![(4, vec![("/", 99)])]), NOW)
        .await
        .expect("4");
    assert_eq!(store.stored_seqs("a").await.expect("seqs"), [1, 2, 4, 5]);
    let hosts = store.list_hosts().await.expect("hosts");
    assert_eq!(hosts[0].last_seq, 5);
    assert_eq!(hosts[0].snapshots_stored, 4);
    assert_eq!(
        hosts[0].filesystems[0].fs.used_bytes, 30,
        "state is the newest snapshot's"
    );
    assert_eq!(
        store
            .count_rows(CountedTable::Tickets)
            .await
            .expect("count"),
        0,
        "late 99% opened a ticket"
    );
}

async fn ticket_lifecycle(store: Store) {
    enroll_agent(&store, "a").await;
    let rules = Engine::default();
    let steps: &[(u64, u64, &str, u64)] = &[
        // (seq, used %, expected state of the "/" ticket, expected occurrences)
        (1, 50, "none", 0),
        (2, 90, "new", 1),
        (3, 97, "new", 2),
        (4, 87, "new", 2),
        (5, 85, "new", 2),
        (6, 91, "new", 3),
        (7, 84, "resolved", 3),
        (8, 60, "resolved", 3),
    ];
    for &(seq, used, state, occurrences) in steps {
        ingest(
            &store,
            &rules,
            "a",
            &batch(vec![(seq, vec![("/", used)])]),
            NOW + 100_000,
        )
        .await
        .expect("ingest");
        let tickets = store
            .list_tickets(&TicketFilter::default())
            .await
            .expect("tickets");
        match state {
            "none" => assert!(tickets.is_empty(), "seq {seq}: {tickets:?}"),
            _ => {
                assert_eq!(tickets.len(), 1, "seq {seq}: one ticket, not {tickets:?}");
                assert_eq!(tickets[0].state.as_str(), state, "seq {seq}");
                assert_eq!(tickets[0].occurrences, occurrences, "seq {seq}");
                // A resolved ticket keeps the value that resolved it.
                let value = if seq == 8 { 84.0 } else { used as f64 };
                assert_eq!(tickets[0].last_value, value, "seq {seq}");
            }
        }
    }
    let ticket = &store
        .list_tickets(&TicketFilter::default())
        .await
        .expect("tickets")[0];
    assert_eq!(
        ticket.opened_at_ms,
        NOW + 2000,
        "opened when the report was taken"
    );
    assert_eq!(ticket.resolved_at_ms, Some(NOW + 7000));
    assert_eq!(
        ticket.hostname, "pc",
        "the host name follows the latest report"
    );
    assert_eq!(ticket.priority, 1, "97% raised the disk ticket to P1");
    let kinds = |id| {
        let store = store.clone();
        async move {
            store
                .timeline(id)
                .await
                .expect("events")
                .into_iter()
                .map(|e| e.kind.as_str())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(kinds(ticket.id).await, ["opened", "priority", "resolved"]);
    // Recurrence within the reopen window reopens the same ticket.
    ingest(
        &store,
        &rules,
        "a",
        &batch(vec![(9, vec![("/", 95)])]),
        NOW + 100_000,
    )
    .await
    .expect("ingest");
    let open = store
        .list_tickets(&TicketFilter {
            open: Some(true),
            ..Default::default()
        })
        .await
        .expect("open tickets");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, ticket.id, "reopened, not a new ticket");
    assert_eq!(open[0].state, TicketState::New);
    // Back within seconds of resolving: the ticket is also marked flapping.
    assert_eq!(
        kinds(ticket.id).await,
        ["opened", "priority", "resolved", "reopened", "flapping"]
    );
}

async fn one_open_ticket_per_key(store: Store) {
    enroll_agent(&store, "a").await;
    let ticket = NewTicket {
        agent_id: "a",
        rule_id: "disk.usage",
        subject: "/",
        priority: 2,
        title: "t",
        at_ms: NOW,
        value: 95.0,
        response_due_ms: NOW + 1,
        resolve_due_ms: NOW + 2,
        kb: "disk-full",
    };
    let mut tx = store.begin_write().await.expect("tx");
    let id = tx.open_ticket(&ticket).await.expect("first");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    let duplicate = tx.open_ticket(&ticket).await;
    assert!(
        duplicate.is_err(),
        "a second open ticket with the same key was accepted"
    );
    drop(tx);
    let mut tx = store.begin_write().await.expect("tx");
    tx.resolve_ticket(id, NOW, 10.0, "test")
        .await
        .expect("resolve");
    tx.open_ticket(&ticket)
        .await
        .expect("a new ticket once the old one is resolved");
    tx.commit().await.expect("commit");
    assert_eq!(
        store
            .count_rows(CountedTable::Tickets)
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        store
            .count_rows(CountedTable::TicketEvents)
            .await
            .expect("count"),
        3
    );
}

async fn vanished_mount(store: Store) {
    enroll_agent(&store, "a").await;
    let rules = Engine::default();
    ingest(
        &store,
        &rules,
        "a",
        &batch(vec![(1, vec![("/", 10), ("/media/usb", 99)])]),
        NOW,
    )
    .await
    .expect("1");
    ingest(&store, &rules, "a", &batch(vec![(2, vec![("/", 10)])]), NOW)
        .await
        .expect("2");
    let tickets = store
        .list_tickets(&TicketFilter::default())
        .await
        .expect("tickets");
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        tickets[0].state,
        TicketState::Resolved,
        "unplugged disk's ticket resolves"
    );
}

async fn handoff_says_when_a_list_is_cut(store: Store) {
    enroll_agent(&store, "a").await;
    let limit = firstline_collector::store::HANDOFF_LIMIT;
    let mut tx = store.begin_write().await.expect("tx");
    for i in 0..=limit {
        let subject = format!("/m{i}");
        let id = tx
            .open_ticket(&NewTicket {
                agent_id: "a",
                rule_id: "disk.usage",
                subject: &subject,
                priority: 3,
                title: "t",
                at_ms: NOW,
                value: 95.0,
                response_due_ms: NOW + 1,
                resolve_due_ms: NOW + 2,
                kb: "disk-full",
            })
            .await
            .expect("open");
        tx.resolve_ticket(id, NOW + 1, 10.0, "test")
            .await
            .expect("resolve");
    }
    tx.commit().await.expect("commit");
    let handoff = store.handoff(NOW).await.expect("handoff");
    assert_eq!(handoff.resolved_since.len(), limit);
    assert_eq!(
        handoff.truncated,
        [false, false, true],
        "only resolved is cut"
    );
}
