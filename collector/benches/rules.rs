//! Benchmark: the default rules on one incoming report.
//! - pure evaluation: every default rule reading a realistic snapshot (8 filesystems, patches,
//!   antivirus, connectivity), in microseconds per report;
//! - the whole ingest of one report (store, rules, conditions, tickets, commit) on a SQLite
//!   file, sequentially, as reports per second on one core;
//! - the same reports from many hosts at once through the group-commit writer the server uses
//!   (`FIRSTLINE_BENCH_HOSTS` hosts, each sending its next report as soon as the last one is
//!   acknowledged), as reports per second and the writer's mean group size. No gRPC or TLS:
//!   the store and the rules alone (the load generator measures the whole collector).
//!
//! Run: `cargo bench -p firstline-collector --bench rules` (`FIRSTLINE_BENCH_REPORTS=N`,
//! `FIRSTLINE_BENCH_HOSTS=N`, `FIRSTLINE_BENCH_STORE=postgres://…` for the writer part).

use std::time::Instant;

use firstline_collector::engine::Engine;
use std::sync::Arc;

use firstline_collector::ingest::ingest;
use firstline_collector::ingest::writer::{Writer, WriterLimits};
use firstline_collector::report::{Batch, Entry};
use firstline_collector::store::{CertKind, NewAgent, NewCertificate, Store, TokenRow};
use firstline_proto::v1;

fn snapshot(seq: u64, at: i64, percent: u64) -> v1::Snapshot {
    let filesystems = (0..8)
        .map(|i| v1::Filesystem {
            mount_point: format!("/data{i}"),
            device: format!("/dev/sd{i}"),
            fs_type: "ext4".into(),
            total_bytes: 100_000,
            used_bytes: percent * 1000,
            available_bytes: (100 - percent) * 1000,
            total_inodes: 1000,
            used_inodes: 100,
        })
        .collect();
    v1::Snapshot {
        seq,
        taken_at_ms: at,
        hostname: "bench".into(),
        filesystems,
        system: Some(v1::SystemFacts {
            os_name: "Debian GNU/Linux".into(),
            os_version: "13".into(),
            os_build: "6.12.0".into(),
            ..Default::default()
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
                definitions_updated_ms: at,
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
                .map(|i| v1::NamedCheck {
                    target: format!("name{i}"),
                    ok: true,
                    ..Default::default()
                })
                .collect(),
            tcp: (0..3)
                .map(|i| v1::NamedCheck {
                    target: format!("10.0.0.{i}:443"),
                    ok: true,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn batch(s: v1::Snapshot, at: i64) -> Batch {
    Batch::from_wire(
        v1::ReportRequest {
            snapshots: vec![s],
            sent_at_ms: at,
        },
        at,
    )
    .expect("valid")
}

#[tokio::main]
async fn main() {
    let reports: u64 = std::env::var("FIRSTLINE_BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let engine = Engine::default();
    let t0 = 1_800_000_000_000i64;

    // Pure evaluation.
    let Some(Entry::Valid(one)) = batch(snapshot(1, t0, 50), t0).entries.pop() else {
        panic!("the bench snapshot is valid");
    };
    let rounds = 20_000u32;
    let start = Instant::now();
    let mut observations = 0usize;
    for _ in 0..rounds {
        for rule in &engine.rules {
            observations += rule.kind.observe(&one, t0).map_or(0, |o| o.len());
        }
    }
    let per = start.elapsed() / rounds;
    println!(
        "default rules, pure evaluation: {:.2} us per report ({} rules, {} observations per report)",
        per.as_secs_f64() * 1e6,
        engine.rules.len(),
        observations / rounds as usize
    );

    // Whole ingest on SQLite.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .expect("store");
    store
        .create_token(&TokenRow {
            token_hash: "t".into(),
            label: String::new(),
            created_at_ms: t0,
            expires_at_ms: t0 + 1,
            uses_total: 1,
            uses_left: 1,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    store
        .enroll(
            "t",
            t0,
            &NewAgent {
                agent_id: "a".into(),
                hostname: "bench".into(),
                machine_id: String::new(),
                enrolled_at_ms: t0,
            },
            &NewCertificate {
                fingerprint: "f".into(),
                kind: CertKind::Agent,
                subject: "a".into(),
                issued_at_ms: t0,
                not_after_ms: t0 + 1,
            },
        )
        .await
        .expect("enroll");
    let start = Instant::now();
    for seq in 1..=reports {
        // Every tenth report crosses the disk threshold and back, so tickets open and resolve.
        let percent = if seq % 10 == 0 { 92 } else { 50 };
        let at = t0 + i64::try_from(seq).unwrap_or(0) * 1000;
        ingest(
            &store,
            &engine,
            "a",
            &batch(snapshot(seq, at, percent), at),
            at,
        )
        .await
        .expect("ingest");
    }
    let elapsed = start.elapsed();
    let per = elapsed / u32::try_from(reports).unwrap_or(1);
    println!(
        "ingest of one report with the default rules (SQLite, sequential): {:.3} ms per report, {:.0} reports/s",
        per.as_secs_f64() * 1000.0,
        reports as f64 / elapsed.as_secs_f64()
    );

    store.close().await;

    // Many hosts at once through the group-commit writer.
    let hosts: u64 = std::env::var("FIRSTLINE_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let url = std::env::var("FIRSTLINE_BENCH_STORE")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("group.db").display()));
    let store = Store::open(&url).await.expect("store");
    let prefix = format!("g{}-", std::process::id());
    enroll_hosts(&store, &prefix, hosts, t0).await;
    let writer = Writer::start(store.clone(), Arc::new(engine), WriterLimits::default());
    let per_host = (reports / hosts).max(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for h in 0..hosts {
        let writer = writer.clone();
        let agent = format!("{prefix}{h}");
        tasks.push(tokio::spawn(async move {
            for seq in 1..=per_host {
                // One report in a hundred crosses the threshold (and the next clears it).
                let percent = if (seq + h) % 100 == 0 { 92 } else { 50 };
                let at = t0 + i64::try_from(seq).unwrap_or(0) * 1000;
                let b = batch(snapshot(seq, at, percent), at);
                writer
                    .submit(agent.clone(), b, 2000, at)
                    .await
                    .expect("stored");
            }
        }));
    }
    for t in tasks {
        t.await.expect("host task");
    }
    let elapsed = start.elapsed();
    let stats = writer.stats();
    println!(
        "ingest through the group writer ({}, {hosts} hosts at once): {:.0} reports/s, {:.1} reports per commit",
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        (per_host * hosts) as f64 / elapsed.as_secs_f64(),
        stats.reports as f64 / stats.groups.max(1) as f64,
    );
}

async fn enroll_hosts(store: &Store, prefix: &str, hosts: u64, t0: i64) {
    let token = format!("{prefix}token");
    store
        .create_token(&TokenRow {
            token_hash: token.clone(),
            label: String::new(),
            created_at_ms: t0,
            expires_at_ms: t0 + 1,
            uses_total: hosts as i64,
            uses_left: hosts as i64,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    for h in 0..hosts {
        store
            .enroll(
                &token,
                t0,
                &NewAgent {
                    agent_id: format!("{prefix}{h}"),
                    hostname: format!("bench-{h}"),
                    machine_id: String::new(),
                    enrolled_at_ms: t0,
                },
                &NewCertificate {
                    fingerprint: format!("{prefix}f{h}"),
                    kind: CertKind::Agent,
                    subject: format!("{prefix}{h}"),
                    issued_at_ms: t0,
                    not_after_ms: t0 + 1,
                },
            )
            .await
            .expect("enroll");
    }
}
