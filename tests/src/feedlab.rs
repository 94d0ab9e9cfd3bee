//! What the alert-feed tests run against, all real and all on loopback: a NATS server with
//! JetStream (`nats-server -js`, its own store directory, a random port), a Prometheus
//! Alertmanager (its own storage, clustering off, port 0), a webhook receiver that keeps what
//! it is sent, plain HTTP/1.0 calls for their APIs, and in-test agents that enroll with a
//! collector process and report a filesystem, the cheapest real way to open tickets. Every
//! server is killed on drop; none of them ever uses a machine-wide default port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firstline_agent::enroll::{EnrollParams, enroll};
use firstline_agent::identity::Identity;
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_proto::v1::admin_client::AdminClient;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{
    AlertEvent, EventsSinceRequest, Filesystem, ReportRequest, Snapshot, TicketAction,
    UpdateTicketRequest,
};
use serde_json::Value;
use tonic::transport::Channel;

use crate::procs::CollectorProc;
use crate::wait_for;

/// How long a server gets to start; a safety net, not a performance assertion.
const LIMIT: Duration = Duration::from_secs(60);

/// The NATS server binary (Debian's `nats-server`).
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// The Alertmanager binary (Debian's `prometheus-alertmanager`).
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Fails loudly when a server binary is missing: scripts/test.sh installs it.
fn require(binary: &str, package: &str) {
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install the Debian package {package} (scripts/test.sh does)"
    );
}

/// Kills a child and waits for it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A `nats-server -js` on a random loopback port with its own store directory.
pub struct NatsServer {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl NatsServer {
    /// Starts it with its files in `dir`; returns once it takes client connections.
    pub fn start(dir: &Path) -> Self {
        require(NATS_SERVER, "nats-server");
        std::fs::create_dir_all(dir).expect("nats dir");
        let log = dir.join("nats.log");
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
            .arg(dir.join("store"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let mut me = Self {
            child,
            url: String::new(),
            log,
        };
        let addr = wait_for("nats-server to take client connections", LIMIT, || {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("nats-server exited ({status}):\n{}", me.log());
            }
            let log = me.log();
            let ready = log.contains("Server is ready");
            log.lines()
                .find_map(|l| {
                    l.split("Listening for client connections on ")
                        .nth(1)
                        .map(|a| a.trim().to_owned())
                })
                .filter(|_| ready)
        });
        me.url = format!("nats://{addr}");
        me
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One message of a JetStream stream, as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub sequence: u64,
    pub subject: String,
    /// `Nats-Msg-Id`.
    pub msg_id: String,
    /// `Firstline-Event-Kind`.
    pub kind: String,
    /// The body's `event.cursor`.
    pub cursor: i64,
}

/// Every message of `stream` on the server at `url`, oldest first (none when the stream does
/// not exist yet).
pub async fn stream_entries(url: &str, stream: &str) -> Vec<StreamEntry> {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let Ok(mut s) = js.get_stream(stream).await else {
        return Vec::new();
    };
    let state = s.info().await.expect("stream info").state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = s.get_raw_message(seq).await else {
            continue; // deleted
        };
        let header = |k: &str| {
            m.headers
                .get(k)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let body: Value = serde_json::from_slice(&m.payload).expect("a JSON body");
        out.push(StreamEntry {
            sequence: m.sequence,
            subject: m.subject.to_string(),
            msg_id: header("Nats-Msg-Id"),
            kind: header("Firstline-Event-Kind"),
            cursor: body["event"]["cursor"].as_i64().unwrap_or(-1),
        });
    }
    out
}

/// A Prometheus Alertmanager on a loopback port it picked, clustering off, routing every
/// alert (grouped by `alertname`, 1 s group wait and interval) to the webhook at `hook_url`
/// with resolved notifications.
pub struct Alertmanager {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Alertmanager {
    pub fn start(dir: &Path, hook_url: &str) -> Self {
        require(ALERTMANAGER, "prometheus-alertmanager");
        std::fs::create_dir_all(dir).expect("alertmanager dir");
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
                 webhook_configs:\n      - url: {hook_url:?}\n        send_resolved: true\n"
            ),
        )
        .expect("write alertmanager.yml");
        let log = dir.join("alertmanager.log");
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start prometheus-alertmanager");
        let mut me = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        me.addr = wait_for("Alertmanager to listen", LIMIT, || {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("Alertmanager exited ({status}):\n{}", me.log());
            }
            me.log()
                .lines()
                .filter(|l| l.contains("msg=\"Listening on\""))
                .find_map(|l| {
                    l.split("address=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()
                })
        });
        wait_for("Alertmanager to answer", LIMIT, || {
            (http_json(me.addr, "GET", "/api/v2/status", None).0 == 200).then_some(())
        });
        me
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /api/v2/alerts`: the alerts it holds that have not ended.
    pub fn alerts(&self) -> Vec<Value> {
        let (status, v) = http_json(self.addr, "GET", "/api/v2/alerts", None);
        assert_eq!(status, 200, "GET /api/v2/alerts: {v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// Creates a silence for an hour of alerts whose `label` equals `value`; returns its id.
    pub fn silence(&self, label: &str, value: &str) -> String {
        let now = now_ms();
        let body = serde_json::json!({
            "matchers": [{"name": label, "value": value, "isRegex": false, "isEqual": true}],
            "startsAt": firstline_collector::feeds::payload::rfc3339(now),
            "endsAt": firstline_collector::feeds::payload::rfc3339(now + 3_600_000),
            "createdBy": "firstline e2e",
            "comment": "silenced by the test",
        });
        let (status, v) = http_json(
            self.addr,
            "POST",
            "/api/v2/silences",
            Some(&body.to_string()),
        );
        assert_eq!(status, 200, "POST /api/v2/silences: {v}");
        v["silenceID"].as_str().expect("silenceID").to_owned()
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One HTTP/1.0 request (the server answers without chunking and closes); returns the status
/// and the JSON body (`Null` when empty or not JSON). Status 0: no connection.
pub fn http_json(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, Value::Null);
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, Value::Null);
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(rest).unwrap_or(Value::Null))
}

/// A webhook receiver on a loopback port: answers every POST with 200 and keeps its JSON body.
pub struct HookReceiver {
    pub addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HookReceiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bodies, stop) = (bodies.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(mut conn) = conn
                        && let Some(body) = read_request(&mut conn)
                    {
                        let _ = conn.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        if let Ok(v) = serde_json::from_slice(&body) {
                            bodies.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                        }
                    }
                }
            })
        };
        Self {
            addr,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every body received so far.
    pub fn received(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop up so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body; returns the body.
fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[header_end..].to_vec())
}

/// An in-test agent of a collector process: enrolled with a fresh token, it reports its root
/// filesystem as full as asked.
pub struct TestHost {
    pub identity: Identity,
    pub name: String,
    client: AgentClient<Channel>,
    seq: u64,
}

impl TestHost {
    /// Enrolls `name` with `collector`, its state under `dir`.
    pub async fn enroll(collector: &CollectorProc, dir: &Path, name: &str) -> Self {
        let token = collector.token();
        let ca_pem = std::fs::read_to_string(collector.data_dir.join("ca.crt")).expect("CA");
        let identity = enroll(
            &dir.join(name),
            &EnrollParams {
                collector_url: &collector.url(),
                token: &token,
                ca_pem: &ca_pem,
                hostname: name,
                force: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("enroll {name}: {e}"));
        let client = AgentClient::new(channel(&identity).expect("channel"));
        Self {
            identity,
            name: name.to_owned(),
            client,
            seq: 0,
        }
    }

    /// Reports `/` `used` percent full (93: a P2 disk ticket opens, 97: P1). Acknowledged
    /// after the commit, so the ticket's events are in the log when this returns.
    pub async fn report_disk(&mut self, used: u64) {
        self.seq += 1;
        let snapshot = Snapshot {
            seq: self.seq,
            taken_at_ms: now_ms(),
            hostname: self.name.clone(),
            filesystems: vec![Filesystem {
                mount_point: "/".into(),
                total_bytes: 100,
                used_bytes: used,
                available_bytes: 100 - used,
                ..Default::default()
            }],
            ..Default::default()
        };
        self.client
            .report(ReportRequest {
                snapshots: vec![snapshot],
                sent_at_ms: now_ms(),
            })
            .await
            .unwrap_or_else(|e| panic!("report from {}: {e}", self.name));
    }
}

/// One admin action on a ticket (each appends one event to the log).
pub async fn act(
    client: &mut AdminClient<Channel>,
    id: i64,
    action: TicketAction,
    text: &str,
) -> Result<(), tonic::Status> {
    client
        .update_ticket(UpdateTicketRequest {
            id,
            action: action.into(),
            text: text.into(),
        })
        .await
        .map(|_| ())
}

/// Every event of the collector's log after `cursor`, through `Admin/EventsSince`.
pub async fn log_after(client: &mut AdminClient<Channel>, cursor: i64) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    let mut cursor = cursor;
    loop {
        let page = client
            .events_since(EventsSinceRequest {
                cursor,
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("EventsSince")
            .into_inner();
        if page.events.is_empty() {
            return out;
        }
        out.extend(page.events);
        cursor = page.next_cursor;
    }
}
