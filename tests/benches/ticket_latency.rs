//! Benchmark: with the shipped collector and agent settings, how long from the write that takes
//! a real filesystem past the disk threshold to a NEW ticket visible through the collector's
//! admin API (what the CLI and the technician see)? Every round mounts a fresh tmpfs, so each
//! ticket is a first one (no reopen, no flap protection), fills it to just under the threshold,
//! waits until that is reported, then crosses. Prints min/median/max.
//!
//! Run as root: `cargo bench -p firstline-tests --bench ticket_latency`
//! (`FIRSTLINE_BENCH_ROUNDS=N` sets the number of rounds, default 30).

use std::time::{Duration, Instant};

use firstline_proto::v1::admin_client::AdminClient;
use firstline_proto::v1::{ListHostsRequest, Ticket};
use firstline_tests::admin::{connect, list_tickets};
use firstline_tests::fs::Tmpfs;
use firstline_tests::procs::{AgentProc, CollectorProc};
use tonic::transport::Channel;

const SHIPPED_AGENT_CONFIG: &str = include_str!("../../deploy/agent/agent.toml");
const LIMIT: Duration = Duration::from_secs(120);
/// How often the admin API is asked; the resolution of the measurement.
const POLL: Duration = Duration::from_millis(5);

/// Just under the shipped rule's 90%, and past it.
const BELOW: f64 = 89.0;
const ABOVE: f64 = 95.0;

/// Polls the admin API until `found` accepts what it returns; returns when it did.
async fn poll<T>(
    what: &str,
    client: &mut AdminClient<Channel>,
    mut found: impl AsyncFnMut(&mut AdminClient<Channel>) -> Option<T>,
) -> (Instant, T) {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(value) = found(&mut *client).await {
            return (Instant::now(), value);
        }
        assert!(Instant::now() < deadline, "no {what} within {LIMIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// The reported usage of `mount`, once at least `percent`.
async fn reported_at_least(
    client: &mut AdminClient<Channel>,
    agent_id: &str,
    mount: &str,
    percent: f64,
) -> Option<f64> {
    let hosts = client
        .list_hosts(ListHostsRequest {})
        .await
        .expect("ListHosts")
        .into_inner()
        .hosts;
    let host = hosts.iter().find(|h| h.agent_id == agent_id)?;
    let fs = host.filesystems.iter().find(|f| f.mount_point == mount)?;
    let used = fs.used_bytes as f64 * 100.0 / (fs.used_bytes + fs.available_bytes).max(1) as f64;
    (used >= percent).then_some(used)
}

/// The disk ticket of `mount`, once it is in state `state` (any open state for "open").
async fn disk_ticket(
    client: &mut AdminClient<Channel>,
    agent_id: &str,
    mount: &str,
    state: &str,
) -> Option<Ticket> {
    list_tickets(client, agent_id).await.into_iter().find(|t| {
        t.rule_id == "disk.usage"
            && t.subject == mount
            && (t.state == state || (state == "open" && t.state != "resolved"))
    })
}

/// One round on a fresh tmpfs; returns the time from the crossing write to the ticket.
async fn round(client: &mut AdminClient<Channel>, agent_id: &str) -> Duration {
    let disk = Tmpfs::mount(16 * 1024 * 1024);
    let mount = disk.mount_point();
    disk.fill_to(BELOW);
    poll(
        "report of the new mount",
        client,
        async |c: &mut AdminClient<Channel>| {
            reported_at_least(c, agent_id, &mount, BELOW - 1.0).await
        },
    )
    .await;
    // Random phase against the agent's disk sampling tick.
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1000))).await;
    let crossed = Instant::now();
    disk.fill_to(ABOVE);
    let (visible, ticket) = poll(
        "new ticket",
        client,
        async |c: &mut AdminClient<Channel>| disk_ticket(c, agent_id, &mount, "open").await,
    )
    .await;
    assert_eq!(
        ticket.state, "new",
        "a first ticket for {mount}: {ticket:?}"
    );
    // Resolved before the mount goes, so each round starts with no open ticket.
    disk.empty();
    poll(
        "ticket resolution",
        client,
        async |c: &mut AdminClient<Channel>| disk_ticket(c, agent_id, &mount, "resolved").await,
    )
    .await;
    visible - crossed
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rounds: usize = std::env::var("FIRSTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing overridden: the collector's defaults are its shipped file (tests/e2e/cli.rs
    // checks that), and the agent runs on its shipped file.
    let collector = CollectorProc::start(dir.path(), "");
    let mut agent = AgentProc::new(dir.path(), SHIPPED_AGENT_CONFIG);
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    let mut client = connect(&collector.url(), &collector.data_dir).await;

    let mut latencies = Vec::with_capacity(rounds);
    for n in 1..=rounds {
        latencies.push(round(&mut client, &agent_id).await);
        if n % 10 == 0 {
            eprintln!("{n} rounds done");
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "disk crossing -> new ticket visible in the admin API (shipped settings, n={}, poll {} ms): \
         min={:.0} ms median={:.0} ms max={:.0} ms",
        latencies.len(),
        POLL.as_millis(),
        ms(latencies[0]),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() - 1]),
    );
}
