//! Benchmark: with the shipped defaults, how long from a real filesystem crossing the disk
//! threshold to an open ticket in the collector's store? Release binaries as processes, a tmpfs
//! filled to 95% and emptied again, repeated; prints p50/p90/p99/max.
//!
//! Run as root: `cargo bench -p firstline-tests --bench ticket_latency`
//! (`FIRSTLINE_BENCH_ROUNDS=N` sets the number of fills, default 50).

use std::time::{Duration, Instant};

use firstline_collector::store::{Store, TicketFilter};
use firstline_tests::fs::Tmpfs;
use firstline_tests::procs::{AgentProc, CollectorProc};

/// Polls the store until `mount` has an open ticket (`want_open`) or none; returns when.
async fn wait_ticket(store: &Store, agent_id: &str, mount: &str, want_open: bool) -> Instant {
    let filter = TicketFilter {
        open: Some(true),
        agent_id: Some(agent_id.to_owned()),
        limit: 1000,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = store
            .list_tickets(&filter)
            .await
            .expect("list tickets")
            .iter()
            .any(|t| t.subject == mount);
        if open == want_open {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "no ticket change within 60 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rounds: usize = std::env::var("FIRSTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().expect("tempdir");
    // Shipped defaults, except that fills repeated every second would (rightly) be held open
    // as flapping; each round must start with no open ticket.
    let collector = CollectorProc::start(dir.path(), "[tickets]\nflap_window = \"0s\"\n");
    let mut agent = AgentProc::new(dir.path(), "");
    agent.enroll(&collector);
    let disk = Tmpfs::mount(16 * 1024 * 1024);
    let mount = disk.mount_point();
    agent.start();
    let agent_id = agent.agent_id();
    let store = Store::open(&collector.store_url()).await.expect("store");
    // Let the agent report once so the first round measures a crossing, not the startup.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Random phase against the agent's sampling tick.
        tokio::time::sleep(Duration::from_millis(200 + fastrand::u64(0..700))).await;
        disk.fill_to(95.0);
        let crossed = Instant::now();
        let opened = wait_ticket(&store, &agent_id, &mount, true).await;
        latencies.push(opened - crossed);
        disk.empty();
        wait_ticket(&store, &agent_id, &mount, false).await;
        if round % 10 == 9 {
            eprintln!("{} rounds done", round + 1);
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = latencies.iter().map(|d| ms(*d)).sum::<f64>() / latencies.len() as f64;
    println!(
        "disk crossing -> open ticket (shipped defaults, n={}): p50={:.0} ms p90={:.0} ms p99={:.0} ms max={:.0} ms mean={:.0} ms",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies[latencies.len() - 1]),
        mean
    );
}
