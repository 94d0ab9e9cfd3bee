//! Property tests of the ticket state machine: random sequences of reports, sweeps and operator
//! actions against a real store, checking after every step that no two open tickets share a
//! dedupe key, that a ticket's state is the one its timeline says, and that a resolved ticket
//! never escalates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::store::{Store, TicketFilter};
use firstline_collector::sweep::sweep;
use firstline_collector::tickets::Sla;
use firstline_collector::tickets::TicketAction;
use firstline_proto::v1;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Report {
        host: usize,
        mount: usize,
        percent: u64,
    },
    Sweep {
        minutes: i64,
    },
    Act {
        pick: usize,
        action: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..2usize, prop_oneof![Just(40u64), Just(88), Just(92), Just(97)])
            .prop_map(|(host, mount, percent)| Step::Report { host, mount, percent }),
        1 => (1..600i64).prop_map(|minutes| Step::Sweep { minutes }),
        2 => (0..10usize, 0..6u8).prop_map(|(pick, action)| Step::Act { pick, action }),
    ]
}

static CASE: AtomicU32 = AtomicU32::new(0);

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let store = Store::open(&format!("sqlite:file:props{n}?mode=memory&cache=shared"))
        .await
        .expect("store");
    let engine = Engine::default();
    let t0 = 1_800_000_000_000i64;
    for h in 0..3 {
        let id = format!("h{h}");
        firstline_tests::fixtures::enroll_agent(&store, &id, &id, t0).await;
    }
    let mut now = t0;
    let mut seqs: HashMap<usize, u64> = HashMap::new();
    let mut last_percent: HashMap<(usize, usize), u64> = HashMap::new();
    for step in steps {
        now += 60_000;
        match step {
            Step::Report {
                host,
                mount,
                percent,
            } => {
                last_percent.insert((host, mount), percent);
                let seq = seqs.entry(host).or_default();
                *seq += 1;
                let filesystems = (0..2)
                    .map(|m| {
                        let p = *last_percent.get(&(host, m)).unwrap_or(&10);
                        v1::Filesystem {
                            mount_point: format!("/m{m}"),
                            total_bytes: 100,
                            used_bytes: p,
                            available_bytes: 100 - p,
                            ..Default::default()
                        }
                    })
                    .collect();
                let s = v1::Snapshot {
                    seq: *seq,
                    taken_at_ms: now,
                    hostname: format!("h{host}"),
                    filesystems,
                    ..Default::default()
                };
                let batch = firstline_tests::fixtures::batch(vec![s], now);
                ingest(&store, &engine, &format!("h{host}"), &batch, now)
                    .await
                    .expect("ingest");
            }
            Step::Sweep { minutes } => {
                now += minutes * 60_000;
                sweep(&store, &engine, Duration::from_secs(365 * 86_400), now)
                    .await
                    .expect("sweep");
            }
            Step::Act { pick, action } => {
                let all = store
                    .list_tickets(&TicketFilter {
                        limit: 1000,
                        ..Default::default()
                    })
                    .await
                    .expect("list");
                if let Some(t) = all.get(pick % all.len().max(1)) {
                    let action = match action {
                        0 => TicketAction::Acknowledge,
                        1 => TicketAction::Assign("bob".into()),
                        2 => TicketAction::Comment("looking".into()),
                        3 => TicketAction::Resolve(String::new()),
                        4 => TicketAction::Reopen(String::new()),
                        _ => TicketAction::Close,
                    };
                    // Refused actions are fine; they must change nothing.
                    let _ = store
                        .act(t.id, &action, "alice", now, &Sla::default())
                        .await;
                }
            }
        }
        check(&store).await?;
    }
    store.close().await;
    Ok(())
}

async fn check(store: &Store) -> Result<(), TestCaseError> {
    let all = store
        .list_tickets(&TicketFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list");
    let mut open_keys = HashMap::new();
    for t in &all {
        if matches!(t.state.as_str(), "new" | "acknowledged" | "suppressed") {
            let previous = open_keys.insert(t.dedupe_key.clone(), t.id);
            prop_assert!(
                previous.is_none(),
                "two open tickets share key {:?}",
                t.dedupe_key
            );
        }
        let timeline = store.timeline(t.id).await.expect("timeline");
        prop_assert_eq!(timeline.first().map(|e| e.kind.as_str()), Some("opened"));
        let last_state_event = timeline.iter().rev().map(|e| e.kind.as_str()).find(|k| {
            matches!(
                *k,
                "opened" | "reopened" | "acknowledged" | "resolved" | "closed" | "suppressed"
            )
        });
        let expected = match last_state_event {
            Some("opened" | "reopened") => "new",
            Some(other) => other,
            None => "?",
        };
        prop_assert_eq!(
            t.state.as_str(),
            expected,
            "ticket {} timeline {:?}",
            t.id,
            timeline.iter().map(|e| &e.kind).collect::<Vec<_>>()
        );
        if let Some(resolved_at) = t.resolved_at_ms {
            let escalated_after = timeline
                .iter()
                .any(|e| e.kind.as_str() == "escalated" && e.at_ms > resolved_at);
            prop_assert!(
                !escalated_after,
                "ticket {} escalated after it resolved",
                t.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn ticket_state_machine_invariants(steps in proptest::collection::vec(step(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run(steps))?;
    }
}
