//! Benchmark: from a report that crosses the disk threshold arriving at the collector to the
//! ticket's `opened` event at each feed — a gRPC `Watch` consumer, a webhook receiver and a
//! NATS JetStream subscriber — with the collector binary on its shipped defaults (SQLite)
//! plus the three feeds. Each round a fresh host reports `/` 93% full (a new P2 ticket). The
//! clock starts when the report is sent and the ack time is noted too, so the figures show
//! both the whole path and the part after ingest committed. Prints p50/p99/max per feed.
//! (Only the per-address enrollment limit is off, so the hosts can enroll from one address.)
//!
//! `cargo bench -p firstline-tests --bench feed_latency` (`FIRSTLINE_BENCH_ROUNDS=N`, default
//! 200). Needs `nats-server` (scripts/test.sh installs it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firstline_proto::v1::WatchRequest;
use firstline_proto::v1::feed_client::FeedClient;
use firstline_tests::feedlab::{NatsServer, TestHost};
use firstline_tests::procs::CollectorProc;
use firstline_tests::webhook_receiver::Receiver;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

const LIMIT: Duration = Duration::from_secs(30);

/// Arrival times of `opened` events by host name.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("FIRSTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(&dir.path().join("nats"));
    let hook = Receiver::start();
    let extra = format!(
        "[[feeds.webhook]]\nname = \"bench\"\nurl = \"{}\"\nsecret = \"s\"\nkinds = [\"opened\"]\n\n\
         [feeds.nats]\nurl = \"{}\"\nkinds = [\"opened\"]\n\n\
         [limits]\nenrollments_per_minute_per_ip = 0\n",
        hook.url("/hook"),
        nats.url
    );
    let collector = CollectorProc::start(dir.path(), &extra);

    // The Watch consumer.
    let watch: Arrivals = Arc::default();
    let read = |name: &str| std::fs::read_to_string(collector.data_dir.join(name)).expect(name);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(Identity::from_pem(
            read("operator.crt"),
            read("operator.key"),
        ))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(collector.url())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let mut stream = FeedClient::new(channel)
        .watch(WatchRequest {
            from_now: true,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    {
        let watch = watch.clone();
        tokio::spawn(async move {
            while let Ok(Some(e)) = stream.message().await {
                if e.kind == "opened" {
                    let host = e.ticket.map(|t| t.hostname).unwrap_or_default();
                    watch.lock().expect("lock").insert(host, Instant::now());
                }
            }
        });
    }

    // The NATS subscriber (a core subscription on the stream's subjects: it sees each
    // message as JetStream stores it).
    let on_nats: Arrivals = Arc::default();
    {
        let client = async_nats::connect(&nats.url).await.expect("nats");
        let mut sub = client
            .subscribe("firstline.alerts.>")
            .await
            .expect("subscribe");
        let on_nats = on_nats.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt as _;
            while let Some(m) = sub.next().await {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
                if let Some(host) = v["ticket"]["host"].as_str() {
                    on_nats
                        .lock()
                        .expect("lock")
                        .insert(host.to_owned(), Instant::now());
                }
            }
            drop(client);
        });
    }

    let mut hosts = Vec::new();
    for i in 0..rounds {
        hosts.push(TestHost::enroll(&collector, dir.path(), &format!("bench-{i}")).await);
    }
    // Let the feeds take their start cursors (a new feed starts at the end of the log).
    wait(|| collector.cli(&["feeds", "list", "--json"]).status.success()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut total: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut after_ack: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut acks = Vec::new();
    for host in &mut hosts {
        let sent = Instant::now();
        host.report_disk(93).await;
        let acked = Instant::now();
        acks.push(acked - sent);
        let name = host.name.clone();
        let webhook_at = {
            let name = name.clone();
            let hook = &hook;
            move || {
                hook.accepted().iter().find_map(|r| {
                    (r.json()["ticket"]["host"].as_str() == Some(name.as_str())).then_some(r.at)
                })
            }
        };
        for (feed, at) in [
            (
                "watch",
                wait_for(|| watch.lock().expect("lock").get(&name).copied()).await,
            ),
            ("webhook", wait_for(webhook_at).await),
            (
                "nats",
                wait_for(|| on_nats.lock().expect("lock").get(&name).copied()).await,
            ),
        ] {
            total.entry(feed).or_default().push(at - sent);
            after_ack
                .entry(feed)
                .or_default()
                .push(at.saturating_duration_since(acked));
        }
    }
    println!("feed latency over {rounds} new tickets (collector defaults, SQLite)");
    firstline_tests::print_latency_line("report ack", &mut acks);
    for feed in ["watch", "webhook", "nats"] {
        let t = total.get_mut(feed).expect("figures");
        firstline_tests::print_latency_line(&format!("{feed}: from report sent"), t);
        let a = after_ack.get_mut(feed).expect("figures");
        firstline_tests::print_latency_line(&format!("{feed}: after the ack"), a);
    }
}

async fn wait(mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "an event did not arrive in {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
