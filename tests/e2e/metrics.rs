//! `/metrics` as an operator uses it: the collector binary with its HTTP listener on, a host
//! reporting two full disks (a P1 and a P2 ticket), and a real Prometheus server scraping the
//! collector every second; PromQL through Prometheus' HTTP API sees the open tickets by
//! priority, the hosts, and the collector's own health (reports, alert latency). The fleet
//! queries behind the gauges also run on PostgreSQL.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firstline_agent::enroll::{EnrollParams, enroll};
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_collector::store::{
    CertKind, NewAgent, NewCertificate, NewTicket, OpenTickets, Store, TokenRow,
};
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{Filesystem, ReportRequest, Snapshot};
use firstline_tests::pg::TempPostgres;
use firstline_tests::procs::{CollectorProc, logged_addr};
use firstline_tests::{http_get as get, wait_for, wait_until};
use serde_json::Value;

/// The Debian package's server binary (scripts/test.sh installs `prometheus`).
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// A safety net against hangs, not a performance assertion.
const LIMIT: Duration = Duration::from_secs(90);

/// A Prometheus server on a free loopback port, with its own config and storage; killed on
/// drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` every second.
    fn start(dir: &Path, target: SocketAddr) -> Self {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: firstline\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    metrics_path: /metrics\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let storage = dir.join("prometheus-data");
        let log = dir.join("prometheus.log");
        // A port free a moment ago; Prometheus binds it at once.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {PROMETHEUS} (Debian package prometheus): {e}")
            });
        Self { child, addr, log }
    }

    /// The result vector of an instant PromQL query (empty while Prometheus starts).
    fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        get(self.addr, &path)
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The value of a query's only series, or of the series whose `label` is `value`.
    fn value(&self, promql: &str, label: Option<(&str, &str)>) -> Option<f64> {
        self.query(promql)
            .iter()
            .find(|s| label.is_none_or(|(k, v)| s["metric"][k] == v))
            .and_then(|s| s["value"][1].as_str()?.parse().ok())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query string value: unreserved characters kept, everything else `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Enrolls `pc-1` and reports `/` 93% full (P2) and `/data` 97% full (P1).
async fn report_two_full_disks(collector: &CollectorProc, dir: &Path, token: &str) {
    let ca = std::fs::read_to_string(collector.data_dir.join("ca.crt")).expect("ca.crt");
    let identity = enroll(
        &dir.join("pc-1"),
        &EnrollParams {
            collector_url: &collector.url(),
            token,
            ca_pem: &ca,
            hostname: "pc-1",
            force: false,
        },
    )
    .await
    .expect("enrollment");
    let full = |mount: &str, used: u64| Filesystem {
        mount_point: mount.into(),
        total_bytes: 100,
        used_bytes: used,
        available_bytes: 100 - used,
        ..Default::default()
    };
    AgentClient::new(channel(&identity).expect("channel"))
        .report(ReportRequest {
            snapshots: vec![Snapshot {
                seq: 1,
                taken_at_ms: now_ms(),
                hostname: "pc-1".into(),
                filesystems: vec![full("/", 93), full("/data", 97)],
                ..Default::default()
            }],
            sent_at_ms: now_ms(),
        })
        .await
        .expect("report");
}

#[test]
fn prometheus_scrapes_open_tickets_and_the_collectors_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[http]\nlisten = \"127.0.0.1:0\"\n");
    let http = wait_for("the HTTP address in the collector's log", LIMIT, || {
        logged_addr(&collector.log(), "collector serving the HTTP API")
    });
    let token = collector.token();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(report_two_full_disks(&collector, dir.path(), &token));
    let open: Vec<_> = collector
        .admin()
        .tickets("")
        .into_iter()
        .filter(|t| t.state == "new" || t.state == "acknowledged")
        .collect();
    let p1 = open.iter().filter(|t| t.priority == 1).count();
    let p2 = open.iter().filter(|t| t.priority == 2).count();
    assert!(p1 >= 1 && p2 >= 1, "a P1 and a P2 disk ticket: {open:?}");

    // The endpoint itself: no key, Prometheus' text format, no host name in it.
    let (head, body) = get(http, "/metrics").expect("GET /metrics");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    assert!(!body.contains("pc-1"), "no host names as labels:\n{body}");

    let prometheus = Prometheus::start(dir.path(), http);
    let total = wait_until(
        "Prometheus to see every open ticket",
        LIMIT,
        || prometheus.value("sum(firstline_open_tickets)", None),
        |v| *v == Some(open.len() as f64),
    );
    assert_eq!(total, Some(open.len() as f64), "{}", prometheus.log());
    let by_priority = "sum by (priority) (firstline_open_tickets)";
    assert_eq!(
        prometheus.value(by_priority, Some(("priority", "P1"))),
        Some(p1 as f64)
    );
    assert_eq!(
        prometheus.value(by_priority, Some(("priority", "P2"))),
        Some(p2 as f64)
    );
    assert_eq!(
        prometheus.value("firstline_hosts", Some(("status", "reporting"))),
        Some(1.0)
    );
    // The collector's own health: the report was counted, and so was its alert latency.
    let accepted = prometheus.value(
        "firstline_ingest_reports_total",
        Some(("outcome", "accepted")),
    );
    assert!(accepted.is_some_and(|n| n >= 1.0), "{accepted:?}");
    let alerts = prometheus.value("firstline_alert_latency_seconds_count", None);
    assert!(
        alerts.is_some_and(|n| n >= open.len() as f64),
        "every ticket opened from the report has an alert latency: {alerts:?}"
    );
    assert_eq!(prometheus.value("up", None), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_queries_run_on_postgres() {
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .expect("postgres");
    let store = Store::open(&pg.database("fleet_metrics"))
        .await
        .expect("open postgres");
    let t0 = 1_800_000_000_000;
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
    let agent = NewAgent {
        agent_id: "a0".into(),
        hostname: "h0".into(),
        machine_id: String::new(),
        enrolled_at_ms: t0,
    };
    let cert = NewCertificate {
        fingerprint: "f0".into(),
        kind: CertKind::Agent,
        subject: "a0".into(),
        issued_at_ms: t0,
        not_after_ms: t0 + 1,
    };
    store.enroll("t", t0, &agent, &cert).await.expect("enroll");
    let mut tx = store.begin_write().await.expect("tx");
    tx.open_ticket(&NewTicket {
        agent_id: "a0",
        rule_id: "disk.usage",
        subject: "/",
        priority: 1,
        title: "t",
        at_ms: t0,
        value: 97.0,
        response_due_ms: t0,
        resolve_due_ms: t0,
        kb: "",
    })
    .await
    .expect("open");
    tx.commit().await.expect("commit");

    let stats = store
        .fleet_stats("agent.silent")
        .await
        .expect("fleet stats");
    assert_eq!(stats.hosts.len(), 1, "{stats:?}");
    assert_eq!(
        (
            stats.hosts[0].revoked,
            stats.hosts[0].reported,
            stats.hosts[0].hosts
        ),
        (false, false, 1)
    );
    assert_eq!(
        stats.open_tickets,
        vec![OpenTickets {
            priority: 1,
            rule_id: "disk.usage".into(),
            tickets: 1
        }]
    );
    assert_eq!(stats.oldest_unacknowledged_p1_ms, Some(t0));
    assert_eq!((stats.versions.len(), stats.agents_total), (1, 1));
    let text = firstline_collector::telemetry::render_fleet(Some(&stats), t0 + 5_000);
    assert!(
        text.contains("firstline_oldest_unacknowledged_p1_age_seconds 5"),
        "{text}"
    );
}
