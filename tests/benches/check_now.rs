//! Benchmark of "check now" with the real binaries, in two parts.
//!
//! 1. Click to fresh facts: a collector with an hour's heartbeat and a real agent; each round
//!    asks `Admin/CheckNow` (what `firstline-collector check-now` and the dashboard's button
//!    call) and times the round trip to "done", by which time the fresh report is stored.
//!    Prints min/p50/p99/max over `FIRSTLINE_BENCH_ROUNDS` rounds (default 50), one per
//!    second (the agent's minimum interval is set to 1 s).
//! 2. Memory per connected agent: enrolls `FIRSTLINE_BENCH_AGENTS` identities (default 500),
//!    opens one TLS connection per identity (an empty Report call), then a live stream on each,
//!    and prints the collector's resident memory (VmRSS) at each step and per agent.
//!
//! `cargo bench -p firstline-tests --bench check_now`

use std::path::Path;
use std::time::{Duration, Instant};

use firstline_agent::enroll::{EnrollParams, enroll};
use firstline_agent::uplink::channel;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{AgentLive, CheckNowRequest, LiveHello, ReportRequest};
use firstline_tests::admin::connect;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::wait_for;
use futures_util::StreamExt;

const LIMIT: Duration = Duration::from_secs(120);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The pid of the `serve` process whose command line names `config`.
fn collector_pid(config: &Path) -> u32 {
    let wanted = config.display().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                c.contains(&wanted) && c.contains("serve")
            })
        })
        .expect("the collector's pid")
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn click_to_fresh_facts(dir: &Path) {
    let rounds = env_number("FIRSTLINE_BENCH_ROUNDS", 50);
    if rounds == 0 {
        return;
    }
    let collector = CollectorProc::start(dir, "[report]\nheartbeat = \"1h\"\n");
    let mut agent = AgentProc::new(dir, "[report]\ncheck_now_min_interval = \"1s\"\n");
    agent.enroll(&collector);
    agent.start();
    let host = agent.agent_id();
    let mut admin = connect(&collector.url(), &collector.data_dir).await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let r = admin
            .check_now(CheckNowRequest { host: host.clone() })
            .await
            .expect("check now")
            .into_inner();
        if r.status == "done" {
            break;
        }
        assert!(Instant::now() < deadline, "the agent never answered: {r:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let started = Instant::now();
        let r = admin
            .check_now(CheckNowRequest { host: host.clone() })
            .await
            .expect("check now")
            .into_inner();
        let took = started.elapsed();
        assert_eq!(r.status, "done", "{r:?}\n{}", agent.log());
        times.push(took);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "check_now click-to-fresh-facts over {rounds} rounds: min {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
    );
}

async fn memory_per_agent(dir: &Path) {
    let n = env_number("FIRSTLINE_BENCH_AGENTS", 500);
    let collector = CollectorProc::start(dir, "[report]\nheartbeat = \"1h\"\n");
    let out = collector.cli(&[
        "token",
        "create",
        "--uses",
        &n.to_string(),
        "--label",
        "bench",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let ca_pem = std::fs::read_to_string(collector.data_dir.join("ca.crt")).expect("CA");
    let url = collector.url();
    let started = Instant::now();
    let mut identities = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("bench-{i}");
        let identity = enroll(
            &dir.join("agents").join(&name),
            &EnrollParams {
                collector_url: &url,
                token: &token,
                ca_pem: &ca_pem,
                hostname: &name,
                force: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("enroll {name}: {e}"));
        identities.push(identity);
    }
    println!(
        "enrolled {n} agents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let pid = collector_pid(&collector.config);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(pid);
    // One TLS connection per agent, as the uplink keeps it.
    let mut clients = Vec::with_capacity(n);
    for identity in &identities {
        let mut client = AgentClient::new(channel(identity).expect("channel"));
        let _ = client.report(ReportRequest::default()).await;
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = rss_kib(pid);
    // A live stream on each connection.
    let mut streams = Vec::with_capacity(n);
    for client in &mut clients {
        let hello = AgentLive {
            hello: Some(LiveHello {
                agent_version: "bench".into(),
            }),
            done: None,
        };
        let outbound = futures_util::stream::iter([hello]).chain(futures_util::stream::pending());
        let inbound = client.live(outbound).await.expect("live").into_inner();
        streams.push(inbound);
    }
    let log_path = collector.config.with_extension("log");
    let wanted = format!("connected={n}");
    wait_for("every live channel to be registered", LIMIT, || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.lines()
            .any(|l| l.contains("live channel open") && l.trim_end().ends_with(&wanted))
            .then_some(())
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = rss_kib(pid);
    let per = |a: u64, b: u64| (a.saturating_sub(b)) as f64 * 1024.0 / n as f64;
    println!(
        "collector VmRSS: idle {idle} KiB, {n} connections {connected} KiB, {n} live streams {live} KiB"
    );
    println!(
        "memory per connected agent: {:.0} B connection + {:.0} B live stream = {:.0} B",
        per(connected, idle),
        per(live, connected),
        per(live, idle),
    );
    drop(streams);
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (click, memory) = (dir.path().join("click"), dir.path().join("memory"));
    for d in [&click, &memory] {
        std::fs::create_dir_all(d).expect("bench directory");
    }
    click_to_fresh_facts(&click).await;
    memory_per_agent(&memory).await;
}
