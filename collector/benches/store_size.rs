//! Benchmark: how many bytes of SQLite one host costs with the default retention. Simulates
//! `FIRSTLINE_BENCH_HOSTS` hosts (default 10) each sending one realistic full report every
//! 60 s for 9 simulated days (1440 reports a host a day, spooled as hourly batches of 60 and
//! ingested with the default rules on an injected clock), runs retention at the end of days 1, 8
//! and 9, and prints the file size after `PRAGMA wal_checkpoint(TRUNCATE)`, the live bytes
//! (file minus free pages), and the steady state per host and per host per day of history.
//!
//! Run: `cargo bench -p firstline-collector --bench store_size`.

use std::time::Instant;

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::report::Batch;
use firstline_collector::retention::{self, RetentionPolicy};
use firstline_collector::store::{
    CertKind, CountedTable, NewAgent, NewCertificate, Store, TokenRow,
};
use firstline_proto::v1;
use sqlx::{Connection, Executor};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_800_000_000_000;
const GB: u64 = 1_000_000_000;
const DAYS: i64 = 9;

/// A workstation's full report: 4 filesystems, system, patches, antivirus, connectivity.
fn snapshot(host: usize, seq: u64, at: i64, minute: i64) -> v1::Snapshot {
    // Disks grow slowly; host 0's data disk crosses 90% for an hour a day (tickets).
    let growth = u64::try_from(minute).unwrap_or(0) * 10_000_000;
    let hot = host == 0 && minute % 1440 >= 600 && minute % 1440 < 660;
    let filesystems = ["/", "/home", "/var", "/data"]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let total = 500 * GB;
            let used = if hot && i == 3 {
                460 * GB
            } else {
                (100 + 50 * i as u64) * GB + growth
            };
            v1::Filesystem {
                mount_point: (*m).into(),
                device: format!("/dev/nvme0n1p{}", i + 1),
                fs_type: "ext4".into(),
                total_bytes: total,
                used_bytes: used,
                available_bytes: total - used,
                total_inodes: 30_000_000,
                used_inodes: 1_200_000 + u64::try_from(minute).unwrap_or(0),
            }
        })
        .collect();
    let check = |target: String, millis: f64| v1::NamedCheck {
        target,
        ok: true,
        millis,
        ..Default::default()
    };
    v1::Snapshot {
        seq,
        taken_at_ms: at,
        hostname: format!("ws-{host:04}.corp.example"),
        agent_version: "0.9.0".into(),
        os: "linux".into(),
        filesystems,
        system: Some(v1::SystemFacts {
            hostname: format!("ws-{host:04}.corp.example"),
            machine_id: format!("{host:032x}"),
            os_name: "Ubuntu".into(),
            os_version: "24.04.1 LTS".into(),
            os_build: "6.8.0-45-generic".into(),
            architecture: "x86_64".into(),
            uptime_seconds: u64::try_from(minute * 60).unwrap_or(0),
            cpu_percent: (minute % 37) as f64 * 1.7,
            memory_total_bytes: 16 * GB,
            memory_used_bytes: 6 * GB + u64::try_from(minute % 97).unwrap_or(0) * 10_000_000,
            agent_version: "0.9.0".into(),
            agent_rss_bytes: 9_000_000,
            agent_cpu_millis: u64::try_from(minute).unwrap_or(0) * 20,
        }),
        patches: Some(v1::PatchState {
            package_manager: "apt".into(),
            pending_count: 5,
            security_count: 2,
            ..Default::default()
        }),
        antivirus: Some(v1::AntivirusState {
            products: vec![v1::AntivirusProduct {
                name: "ClamAV".into(),
                running: true,
                source: "clamd-socket".into(),
                definitions_updated_ms: at - 6 * HOUR,
                ..Default::default()
            }],
        }),
        connectivity: Some(v1::Connectivity {
            gateway: Some(v1::GatewayCheck {
                present: true,
                reachable: true,
                ..Default::default()
            }),
            dns: (0..3)
                .map(|i| check(format!("intranet{i}.corp.example"), 3.2 + f64::from(i)))
                .collect(),
            tcp: (0..2)
                .map(|i| check(format!("10.0.0.{i}:443"), 1.8))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn enroll(store: &Store, id: &str) {
    let token = format!("t-{id}");
    store
        .create_token(&TokenRow {
            token_hash: token.clone(),
            label: String::new(),
            created_at_ms: T0,
            expires_at_ms: T0 + 1,
            uses_total: 1,
            uses_left: 1,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    let agent = NewAgent {
        agent_id: id.into(),
        hostname: id.into(),
        machine_id: String::new(),
        enrolled_at_ms: T0,
    };
    let cert = NewCertificate {
        fingerprint: format!("fp-{id}"),
        kind: CertKind::Agent,
        subject: id.into(),
        issued_at_ms: T0,
        not_after_ms: T0 + 1,
    };
    store
        .enroll(&token, T0, &agent, &cert)
        .await
        .expect("enroll");
}

/// (file bytes after a checkpoint, live bytes: file minus free pages).
async fn size(url: &str, path: &std::path::Path) -> (u64, u64) {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint");
    let free: i64 = sqlx::query_scalar("SELECT freelist_count FROM pragma_freelist_count")
        .fetch_one(&mut conn)
        .await
        .expect("freelist");
    let page: i64 = sqlx::query_scalar("SELECT page_size FROM pragma_page_size")
        .fetch_one(&mut conn)
        .await
        .expect("page size");
    conn.close().await.expect("close");
    let file = std::fs::metadata(path).expect("db file").len();
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    let file = file + wal;
    (file, file - u64::try_from(free * page).unwrap_or(0))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hosts: usize = std::env::var("FIRSTLINE_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("size.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.expect("store");
    let engine = Engine::default();
    let policy = RetentionPolicy::default();
    let ids: Vec<String> = (0..hosts).map(|h| format!("agent-{h:04}")).collect();
    for id in &ids {
        enroll(&store, id).await;
    }
    let started = Instant::now();
    let per_host = |bytes: u64| bytes / hosts as u64;
    let mut day1_raw = 0;
    let mut steady = (0, 0);
    for hour in 0..DAYS * 24 {
        for (h, id) in ids.iter().enumerate() {
            let wire: Vec<v1::Snapshot> = (0..60)
                .map(|m| {
                    let minute = hour * 60 + m;
                    let seq = u64::try_from(minute + 1).unwrap_or(0);
                    snapshot(h, seq, T0 + minute * MIN + h as i64 * 500, minute)
                })
                .collect();
            let arrival = T0 + (hour + 1) * HOUR;
            let request = v1::ReportRequest {
                snapshots: wire,
                sent_at_ms: arrival,
            };
            let batch = Batch::from_wire(request, arrival).expect("valid batch");
            ingest(&store, &engine, id, &batch, arrival)
                .await
                .expect("ingest");
        }
        let day = (hour + 1) / 24;
        if (hour + 1) % 24 != 0 || ![1, 8, 9].contains(&day) {
            continue;
        }
        let now = T0 + day * DAY;
        let before = size(&url, &path).await;
        let t = Instant::now();
        let outcome = retention::run(&store, &policy, now)
            .await
            .expect("retention");
        let took = t.elapsed();
        let after = size(&url, &path).await;
        let snapshots = store.count_rows(CountedTable::Snapshots).await.expect("n");
        let tickets = store.count_rows(CountedTable::Tickets).await.expect("n");
        println!(
            "day {day}: file {} -> {} bytes per host, live {} -> {} bytes per host; \
             retention took {:.2} s ({outcome:?}); snapshots kept {snapshots}, tickets {tickets}",
            per_host(before.0),
            per_host(after.0),
            per_host(before.1),
            per_host(after.1),
            took.as_secs_f64()
        );
        if day == 1 {
            day1_raw = per_host(before.1);
        }
        steady = after;
    }
    println!(
        "ingest without retention: {day1_raw} bytes per host per day (live, day 1, {} reports a host)",
        24 * 60
    );
    println!(
        "store size: {} bytes per host per day of history (sqlite, 7 days raw snapshots, 48 h raw \
         disk samples then hourly, 400 days finished tickets; steady state after retention at \
         day 9: {} live bytes per host, file {} bytes per host; {hosts} hosts, 1 report/60 s; \
         {:.0} s)",
        per_host(steady.1) / 7,
        per_host(steady.1),
        per_host(steady.0),
        started.elapsed().as_secs_f64()
    );
}
