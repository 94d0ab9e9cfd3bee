//! Benchmark: from a ticket opening to its Request Tracker ticket existing, with the collector
//! binary on its shipped defaults (SQLite) plus `[helpdesk.request_tracker]` on its defaults,
//! and a real RT 5 (`firstline_tests::request_tracker`). Each round a fresh host reports `/`
//! 93% full (a new P2 ticket). Two figures per round, both on the collector's clock: the
//! ticket's `opened` time to the sync's note that RT answered the create with the ticket's
//! id (the RT ticket exists by then), and the report's send to RT's search finding the
//! ticket, seen from outside. Prints p50/p99/max. (Only the per-address enrollment limit is
//! off, so the bench can enroll its hosts from one address in a row.)
//!
//! `cargo bench -p firstline-tests --bench helpdesk_latency` (`FIRSTLINE_BENCH_ROUNDS=N`,
//! default 50). Needs Request Tracker (scripts/test.sh installs it).

use std::time::{Duration, Instant};

use firstline_collector::store::{Store, TicketFilter};
use firstline_tests::feedlab::TestHost;
use firstline_tests::procs::CollectorProc;
use firstline_tests::request_tracker::RequestTracker;

const LIMIT: Duration = Duration::from_secs(60);
const QUEUE: &str = "Firstline";

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("FIRSTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = RequestTracker::start();
    rt.create_queue(QUEUE);
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "[helpdesk.request_tracker]\nurl = {:?}\ntoken = {:?}\nqueue = {QUEUE:?}\n\n\
         [limits]\nenrollments_per_minute_per_ip = 0\n",
        rt.base_url(),
        rt.root_token()
    );
    let collector = CollectorProc::start(dir.path(), &extra);
    let store = Store::open(&collector.store_url()).await.expect("store");
    let mut hosts = Vec::new();
    for i in 0..rounds {
        hosts.push(TestHost::enroll(&collector, dir.path(), &format!("bench-{i}")).await);
    }
    // Let the sync take its start cursor (it starts at the end of the log).
    wait_for(|| {
        collector
            .log()
            .contains("Request Tracker sync running")
            .then_some(())
    })
    .await;

    let mut to_created = Vec::new();
    let mut to_found = Vec::new();
    for host in &mut hosts {
        let sent = Instant::now();
        host.report_disk(93).await;
        let agent_id = host.identity.agent_id.clone();
        let filter = TicketFilter {
            agent_id: Some(agent_id),
            ..Default::default()
        };
        let ticket = store
            .list_tickets(&filter)
            .await
            .expect("tickets")
            .remove(0);
        let tag = format!("[firstline #{}]", ticket.id);
        let found = loop {
            let hits = rt.tickets(&format!("Queue = '{QUEUE}' AND Subject LIKE '{tag}'"));
            if !hits.is_empty() {
                break sent.elapsed();
            }
            assert!(
                sent.elapsed() < LIMIT,
                "no RT ticket for {tag} in {LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        to_found.push(found);
        let created_at = wait_for(|| {
            let timeline = futures_block(store.timeline(ticket.id));
            timeline
                .iter()
                .find(|e| e.actor == "helpdesk:rt" && e.detail.ends_with(" created"))
                .map(|e| e.at_ms)
        })
        .await;
        to_created.push(Duration::from_millis(
            u64::try_from(created_at - ticket.opened_at_ms).unwrap_or(0),
        ));
    }
    println!(
        "Request Tracker latency over {rounds} new tickets (collector defaults, SQLite, RT 5 on SQLite)"
    );
    firstline_tests::print_latency_line("opened -> RT ticket created", &mut to_created);
    firstline_tests::print_latency_line("report sent -> RT search finds it", &mut to_found);
}

/// Runs a store call to completion from inside a poll closure.
fn futures_block<T>(
    f: impl std::future::Future<Output = Result<T, firstline_collector::store::StoreError>>,
) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f)).expect("store")
}

async fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up after {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
