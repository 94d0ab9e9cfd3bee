//! Load check of the dashboard on a large store: 10,000 hosts (facts, two filesystems, labels,
//! four OS families, three agent versions, some silent) and 50,000 tickets over 90 days (every
//! priority, most resolved, a few thousand open, some acknowledged, assigned or escalated, an
//! outage with hosts under it), filled in bulk SQL from one host ingested for real (its facts
//! and filesystems are copied to the others). A collector process serves that data directory
//! with its HTTP listener; a viewer made with `firstline-collector user add` signs in, and
//! each page and the API call it makes first is timed `FIRSTLINE_BENCH_ROUNDS` times (default
//! 30): one line per URL with p50, p99 and max of the round trip on loopback.
//! `FIRSTLINE_BENCH_KEEP=1` keeps the data directory (for `EXPLAIN QUERY PLAN`).
//!
//! `cargo bench -p firstline-tests --bench dashboard_load`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firstline_collector::clock::now_ms;
use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::store::Store;
use firstline_proto::v1;
use firstline_tests::procs::{CollectorProc, logged_addr};
use firstline_tests::wait_for;

const HOSTS: i64 = 10_000;
const TICKETS: i64 = 50_000;
/// One ticket in this many is still open (about 2,900).
const OPEN_EVERY: i64 = 17;
const DAY: i64 = 86_400_000;
const PASSWORD: &str = "bench password 42";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The first host, ingested through the real path: its facts and filesystems are the model.
async fn model_host(store: &Store, now: i64) {
    firstline_tests::fixtures::enroll_agent(store, "h00000", "pc-00000", now - 90 * DAY).await;
    let fs = |mount: &str, used: u64| v1::Filesystem {
        mount_point: mount.into(),
        device: format!("/dev/sda{}", mount.len()),
        fs_type: "ext4".into(),
        total_bytes: 500_000_000_000,
        used_bytes: used,
        available_bytes: 500_000_000_000 - used,
        total_inodes: 30_000_000,
        used_inodes: 1_000_000,
    };
    let snapshot = v1::Snapshot {
        seq: 1,
        taken_at_ms: now - 1000,
        hostname: "pc-00000".into(),
        os: "Debian GNU/Linux 12".into(),
        agent_version: "0.3.1".into(),
        filesystems: vec![fs("/", 200_000_000_000), fs("/home", 300_000_000_000)],
        system: Some(v1::SystemFacts {
            hostname: "pc-00000".into(),
            machine_id: "0123456789abcdef".into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            os_build: "6.1.0-18-amd64".into(),
            architecture: "x86_64".into(),
            uptime_seconds: 86_400,
            cpu_percent: 12.5,
            memory_total_bytes: 16_000_000_000,
            ..Default::default()
        }),
        ..Default::default()
    };
    let batch = firstline_tests::fixtures::batch(vec![snapshot], now);
    ingest(store, &Engine::default(), "h00000", &batch, now)
        .await
        .expect("ingest the model host");
}

/// Everything else, in bulk SQL on SQLite (one transaction).
async fn fill(url: &str, now: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("raw connection");
    let nums = |n: i64| {
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})")
    };
    let hosts = nums(HOSTS - 1);
    let tickets = nums(TICKETS);
    let statements = [
        format!(
            "{hosts} INSERT INTO agents (agent_id, hostname, os, agent_version, enrolled_at_ms, \
             last_seen_at_ms, last_seq, snapshots_stored, labels, machine_id) \
             SELECT printf('h%05d', i), printf('pc-%05d', i), \
             CASE i % 4 WHEN 0 THEN 'Debian GNU/Linux 12' WHEN 1 THEN 'Windows 11 Pro' \
               WHEN 2 THEN 'Ubuntu 24.04' ELSE 'macOS 14' END, \
             CASE i % 3 WHEN 0 THEN '0.3.1' WHEN 1 THEN '0.3.0' ELSE '0.2.9' END, \
             {start}, CASE WHEN i % 50 = 0 THEN {now} - 2 * {DAY} ELSE {now} - (i % 300) * 1000 END, \
             100, 100, \
             CASE i % 5 WHEN 0 THEN 'lab,floor' || (i % 7) WHEN 1 THEN 'office' \
               WHEN 2 THEN 'office,vip' ELSE 'floor' || (i % 7) END, printf('m%05d', i) FROM n",
            start = now - 90 * DAY
        ),
        format!(
            "INSERT INTO certificates (fingerprint, kind, subject, issued_at_ms, not_after_ms, \
             revoked_at_ms) SELECT 'fp-' || agent_id, 'agent', agent_id, {now} - {DAY}, \
             {now} + 365 * {DAY}, CASE WHEN agent_id LIKE '%99' THEN {now} ELSE NULL END \
             FROM agents WHERE agent_id NOT IN ('fleet', 'h00000')"
        ),
        "INSERT INTO filesystems (agent_id, mount_point, device, fs_type, total_bytes, \
         used_bytes, available_bytes, total_inodes, used_inodes, updated_at_ms) \
         SELECT a.agent_id, f.mount_point, f.device, f.fs_type, f.total_bytes, \
         f.used_bytes / 2 + (abs(random()) % (f.total_bytes / 2)), 0, f.total_inodes, \
         f.used_inodes, a.last_seen_at_ms FROM agents a, filesystems f \
         WHERE f.agent_id = 'h00000' AND a.agent_id NOT IN ('fleet', 'h00000')"
            .to_owned(),
        "UPDATE filesystems SET available_bytes = total_bytes - used_bytes \
         WHERE available_bytes = 0"
            .to_owned(),
        "INSERT INTO host_facts (agent_id, kind, payload, updated_at_ms) \
         SELECT a.agent_id, f.kind, f.payload, a.last_seen_at_ms FROM agents a, host_facts f \
         WHERE f.agent_id = 'h00000' AND a.agent_id NOT IN ('fleet', 'h00000')"
            .to_owned(),
        // i spreads the tickets over 90 days, oldest first; one in OPEN_EVERY stays open.
        format!(
            "{tickets} INSERT INTO tickets (dedupe_key, agent_id, rule_id, subject, state, \
             priority, title, occurrences, opened_at_ms, last_seen_at_ms, resolved_at_ms, \
             last_value, tier, assignee, acknowledged_at_ms, response_due_ms, resolve_due_ms, kb, \
             opened_priority, last_opened_at_ms, escalated_at_ms) \
             SELECT printf('h%05d', i % {HOSTS}) || '|' || rule || '|/m' || i, \
             printf('h%05d', i % {HOSTS}), rule, '/m' || i, \
             CASE WHEN i % {OPEN_EVERY} <> 0 THEN (CASE WHEN i % 11 = 0 THEN 'closed' ELSE 'resolved' END) \
               WHEN i % 3 = 0 THEN 'acknowledged' ELSE 'new' END, \
             1 + i % 4, rule || ' on pc-' || (i % {HOSTS}), 1 + i % 5, at, at + 60000, \
             CASE WHEN i % {OPEN_EVERY} <> 0 THEN at + (i % 480) * 60000 ELSE NULL END, \
             91.5, CASE WHEN i % 13 = 0 THEN 2 ELSE 1 END, \
             CASE WHEN i % 4 = 0 THEN 'tech-' || (i % 9) ELSE '' END, \
             CASE WHEN i % 3 = 0 THEN at + (i % 120) * 60000 ELSE NULL END, \
             at + (1 + i % 4) * 3600000, at + (1 + i % 4) * 4 * 3600000, 'disk-full', \
             1 + i % 4, at, CASE WHEN i % 13 = 0 THEN at + 3600000 ELSE NULL END \
             FROM (SELECT i, {now} - 90 * {DAY} + i * (90 * {DAY} / {TICKETS}) AS at, \
               CASE i % 6 WHEN 0 THEN 'disk.usage' WHEN 1 THEN 'disk.forecast' \
               WHEN 2 THEN 'patches.pending' WHEN 3 THEN 'av.missing' WHEN 4 THEN 'net.dns' \
               ELSE 'agent.silent' END AS rule FROM n) ORDER BY i"
        ),
        "INSERT INTO ticket_events (ticket_id, at_ms, kind, detail, actor, observed_at_ms) \
         SELECT id, opened_at_ms, 'opened', title, '', opened_at_ms FROM tickets"
            .to_owned(),
        "INSERT INTO ticket_events (ticket_id, at_ms, kind, detail, actor, observed_at_ms) \
         SELECT id, acknowledged_at_ms, 'acknowledged', '', 'tech-1', acknowledged_at_ms \
         FROM tickets WHERE acknowledged_at_ms IS NOT NULL"
            .to_owned(),
        "INSERT INTO ticket_events (ticket_id, at_ms, kind, detail, actor, observed_at_ms) \
         SELECT id, resolved_at_ms, 'resolved', 'cleared', '', resolved_at_ms \
         FROM tickets WHERE resolved_at_ms IS NOT NULL"
            .to_owned(),
        // An outage now, with 40 open host tickets of its rule under it.
        format!(
            "INSERT INTO tickets (dedupe_key, agent_id, rule_id, subject, state, priority, title, \
             occurrences, opened_at_ms, last_seen_at_ms, last_value, response_due_ms, \
             resolve_due_ms, kb, opened_priority, last_opened_at_ms) VALUES \
             ('fleet|net.dns|10.0.0.53', 'fleet', 'net.dns', '10.0.0.53', 'new', 1, \
             'DNS resolver 10.0.0.53 fails on 40 hosts', 40, {now} - 600000, {now}, 40, \
             {now} + 3600000, {now} + 14400000, 'dns', 1, {now} - 600000)"
        ),
        "UPDATE tickets SET state = 'suppressed', parent_id = \
         (SELECT id FROM tickets WHERE agent_id = 'fleet') \
         WHERE id IN (SELECT id FROM tickets WHERE rule_id = 'net.dns' AND state = 'new' \
         AND agent_id <> 'fleet' ORDER BY id DESC LIMIT 40)"
            .to_owned(),
        "ANALYZE".to_owned(),
    ];
    let mut tx = pool.begin().await.expect("begin");
    for sql in &statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    tx.commit().await.expect("commit");
    pool.close().await;
}

/// One HTTP/1.1 GET; returns the status and the body.
fn get(addr: SocketAddr, path: &str, cookie: &str) -> (u16, String) {
    request(addr, "GET", path, cookie, "")
}

fn request(addr: SocketAddr, method: &str, path: &str, cookie: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: firstline_session={cookie}\r\n")
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\n{cookie}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rounds = env_number("FIRSTLINE_BENCH_ROUNDS", 30).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("collector");
    std::fs::create_dir_all(&data).expect("data dir");
    let url = format!("sqlite://{}", data.join("firstline.db").display());
    let now = now_ms();
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open(&url).await.expect("open the store");
        model_host(&store, now).await;
        drop(store);
        fill(&url, now).await;
    });
    println!(
        "filled {HOSTS} hosts and {} tickets in {:.1} s",
        TICKETS + 1,
        started.elapsed().as_secs_f64()
    );

    let collector = CollectorProc::start(dir.path(), "[http]\nlisten = \"127.0.0.1:0\"\n");
    let addr = wait_for("the HTTP listener", Duration::from_secs(60), || {
        logged_addr(&collector.log(), "collector serving the HTTP API")
    });
    let mut add = Command::new(firstline_tests::bins::collector())
        .arg("--config")
        .arg(dir.path().join("collector.toml"))
        .args([
            "user",
            "add",
            "bench",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("user add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    assert!(add.wait().expect("user add").success(), "user add failed");
    let (status, answer) = request(
        addr,
        "POST",
        "/api/session",
        "",
        &format!("{{\"name\": \"bench\", \"password\": \"{PASSWORD}\"}}"),
    );
    assert_eq!(status, 200, "sign-in: {answer}");
    let cookie = answer
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then_some(value)?;
            value.trim().strip_prefix("firstline_session=")
        })
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();

    let host = "h04242";
    let (_, open) = get(addr, "/api/tickets?limit=1&state=open", &cookie);
    let ticket: i64 = open
        .split("\"id\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("an open ticket's id");
    let since = now - 12 * 3_600_000;
    let urls = [
        "/".to_owned(),
        "/api/tickets?limit=1000&state=open".to_owned(),
        "/api/tickets/summary?state=open".to_owned(),
        "/fleet".to_owned(),
        "/api/fleet?q=&page=1&per_page=50".to_owned(),
        "/api/fleet?q=label%3Avip&page=3&per_page=50".to_owned(),
        "/trends".to_owned(),
        "/api/trends?days=30".to_owned(),
        "/api/trends?days=90".to_owned(),
        "/handoff".to_owned(),
        format!("/api/handoff?since_ms={since}"),
        format!("/hosts/{host}"),
        format!("/api/hosts/{host}"),
        format!("/api/hosts/{host}/disk-history?days=7"),
        format!("/api/tickets?limit=100&host={host}"),
        format!("/tickets/{ticket}"),
        format!("/api/tickets/{ticket}"),
    ];
    println!("{rounds} rounds each, milliseconds (round trip on loopback)");
    for path in &urls {
        let (status, body) = get(addr, path, &cookie);
        assert_eq!(status, 200, "{path}: {}", &body[..body.len().min(300)]);
        let mut times: Vec<Duration> = (0..rounds)
            .map(|_| {
                let t = Instant::now();
                let (status, _) = get(addr, path, &cookie);
                let took = t.elapsed();
                assert_eq!(status, 200, "{path}");
                took
            })
            .collect();
        times.sort();
        println!(
            "{path:<52} p50 {:>7}  p99 {:>7}  max {:>7}  ({} bytes)",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(times[times.len() - 1]),
            body.len()
        );
    }
    drop(collector);
    if std::env::var_os("FIRSTLINE_BENCH_KEEP").is_some() {
        println!("data kept in {}", dir.keep().display());
    }
}
