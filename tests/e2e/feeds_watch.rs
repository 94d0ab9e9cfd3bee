//! The gRPC alert feed `Feed/Watch` as a program written with another gRPC stack reads it:
//! `tests/python/watch_consumer.py` (Python grpcio, stubs generated from `proto/` at run time)
//! against an in-process collector, with the operator certificate from its data directory.
//! The durable log, read through `Admin/EventsSince`, is the reference every stream is compared
//! with: a consumer that disconnects and reconnects with the last cursor it printed gets
//! exactly the events it missed, then the new ones as they commit. Filters, `from_now` and
//! refused calls are covered too. Needs python3 with grpcio and grpcio-tools: the tests fail,
//! never skip, without them (`scripts/test.sh` installs them).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use firstline_proto::v1::admin_client::AdminClient;
use firstline_proto::v1::{AlertEvent, EventsSinceRequest, TicketAction, UpdateTicketRequest};
use firstline_tests::admin;
use firstline_tests::inproc::InProcess;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// Upper bound for anything the consumer is waited for; a safety net against hangs, not a
/// performance assertion.
const LIMIT: Duration = Duration::from_secs(60);

/// One event as the consumer prints it and as the log holds it: the fields compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    cursor: i64,
    kind: String,
    ticket_id: i64,
    rule: String,
    priority: u32,
    hostname: String,
}

impl Seen {
    fn from_wire(e: &AlertEvent) -> Self {
        let t = e.ticket.clone().unwrap_or_default();
        Self {
            cursor: e.cursor,
            kind: e.kind.clone(),
            ticket_id: t.id,
            rule: t.rule_id,
            priority: t.priority,
            hostname: t.hostname,
        }
    }

    fn from_line(v: &Value) -> Self {
        let int = |k: &str| {
            v[k].as_i64()
                .unwrap_or_else(|| panic!("consumer line without integer {k}: {v}"))
        };
        let text = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("consumer line without string {k}: {v}"))
                .to_owned()
        };
        Self {
            cursor: int("cursor"),
            kind: text("kind"),
            ticket_id: int("ticket_id"),
            rule: text("rule"),
            priority: u32::try_from(int("priority")).expect("priority fits u32"),
            hostname: text("hostname"),
        }
    }
}

/// The durable log after `cursor` through `Admin/EventsSince`, every page, with filters.
async fn log_since(
    client: &mut AdminClient<Channel>,
    cursor: i64,
    filter: EventsSinceRequest,
) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut cursor = cursor;
    loop {
        let page = client
            .events_since(EventsSinceRequest {
                cursor,
                limit: 1000,
                ..filter.clone()
            })
            .await
            .expect("EventsSince")
            .into_inner();
        if page.events.is_empty() {
            return out;
        }
        out.extend(page.events.iter().map(Seen::from_wire));
        cursor = page.next_cursor;
    }
}

/// Every event of the log after `cursor`, unfiltered.
async fn log_after(client: &mut AdminClient<Channel>, cursor: i64) -> Vec<Seen> {
    log_since(client, cursor, EventsSinceRequest::default()).await
}

/// The one ticket of `host` in the log.
async fn ticket_of(client: &mut AdminClient<Channel>, host: &str) -> i64 {
    let mut ids: Vec<i64> = log_after(client, 0)
        .await
        .into_iter()
        .filter(|e| e.hostname == host)
        .map(|e| e.ticket_id)
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one ticket of {host}: {ids:?}");
    ids[0]
}

/// One admin action on a ticket (each appends one event to the log).
async fn act(client: &mut AdminClient<Channel>, id: i64, action: TicketAction, text: &str) {
    client
        .update_ticket(UpdateTicketRequest {
            id,
            action: action.into(),
            text: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("UpdateTicket {action:?} on {id}: {e}"));
}

async fn comment(client: &mut AdminClient<Channel>, id: i64, text: &str) {
    act(client, id, TicketAction::Comment, text).await;
}

fn consumer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/watch_consumer.py")
}

/// Fails loudly when the Python side is missing: this test is the proof that another gRPC
/// stack can read the feed, so it must not pass by not running.
fn require_python_grpc() {
    let found = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .output();
    let problem = match found {
        Err(e) => format!("cannot run python3: {e}"),
        Ok(out) if !out.status.success() => format!(
            "python3 cannot import grpc and grpc_tools: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => return,
    };
    panic!(
        "{problem}\nThe Feed/Watch end-to-end tests need python3 with grpcio and grpcio-tools; \
         scripts/test.sh installs them (or: python3 -m pip install grpcio grpcio-tools)"
    );
}

/// A running `watch_consumer.py`: its event lines are read as they come; its stderr (stream
/// state, tracebacks) is collected for the messages of failed assertions.
struct Consumer {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: mpsc::UnboundedReceiver<String>,
    stderr_seen: Vec<String>,
}

impl Consumer {
    /// Starts the consumer against `c` with the operator certificate and `args`.
    fn start(c: &InProcess, args: &[&str]) -> Self {
        require_python_grpc();
        let mut child = Command::new("python3")
            .arg(consumer_script())
            .arg("--target")
            .arg(format!("127.0.0.1:{}", c.addr.port()))
            .arg("--data-dir")
            .arg(&c.data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3 watch_consumer.py");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (tx, stderr) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
        }
    }

    /// What the consumer wrote on stderr so far.
    fn stderr_text(&mut self) -> String {
        while let Ok(line) = self.stderr.try_recv() {
            self.stderr_seen.push(line);
        }
        self.stderr_seen.join("\n")
    }

    /// The next JSON line on stdout; `None` at its end.
    async fn next_line(&mut self) -> Option<Value> {
        let line = match tokio::time::timeout(LIMIT, self.stdout.next_line()).await {
            Ok(line) => line.expect("read the consumer's stdout"),
            Err(_) => panic!(
                "no line from the consumer in {LIMIT:?}; stderr:\n{}",
                self.stderr_text()
            ),
        };
        line.map(|l| {
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
        })
    }

    /// The next `n` events; panics on an error line or an early end.
    async fn events(&mut self, n: usize) -> Vec<Seen> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_line().await {
                Some(v) if v.get("error").is_some() => panic!(
                    "the consumer got a gRPC error after {out:?}: {v}\nstderr:\n{}",
                    self.stderr_text()
                ),
                Some(v) => out.push(Seen::from_line(&v)),
                None => panic!(
                    "the consumer ended after {} of {n} events: {out:?}\nstderr:\n{}",
                    out.len(),
                    self.stderr_text()
                ),
            }
        }
        out
    }

    /// Waits until the collector has answered the call with its headers (the consumer's
    /// `{"stream": "open"}` on stderr).
    async fn wait_open(&mut self) {
        loop {
            match tokio::time::timeout(LIMIT, self.stderr.recv()).await {
                Ok(Some(line)) => {
                    self.stderr_seen.push(line.clone());
                    if serde_json::from_str::<Value>(&line)
                        .is_ok_and(|v| v["stream"].as_str() == Some("open"))
                    {
                        return;
                    }
                }
                Ok(None) => panic!(
                    "the consumer ended before the stream opened; stderr:\n{}",
                    self.stderr_seen.join("\n")
                ),
                Err(_) => panic!(
                    "the stream did not open in {LIMIT:?}; stderr:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the consumer to exit; returns its status and the lines it printed after
    /// those already read.
    async fn finish(mut self) -> (ExitStatus, Vec<Value>, String) {
        let mut rest = Vec::new();
        while let Some(v) = self.next_line().await {
            rest.push(v);
        }
        let status = match tokio::time::timeout(LIMIT, self.child.wait()).await {
            Ok(status) => status.expect("wait for the consumer"),
            Err(_) => panic!(
                "the consumer did not exit in {LIMIT:?}; stderr:\n{}",
                self.stderr_text()
            ),
        };
        // The stderr reader ends with the process; take all it read.
        while let Some(line) = self.stderr.recv().await {
            self.stderr_seen.push(line);
        }
        (status, rest, self.stderr_seen.join("\n"))
    }

    /// Waits for a consumer started with `--count` to stop on its own after exactly its events.
    async fn finish_clean(self) {
        let (status, rest, stderr) = self.finish().await;
        assert!(
            status.success() && rest.is_empty(),
            "the consumer must stop after its count with nothing more: {status}, {rest:?}\n{stderr}"
        );
    }
}

fn kinds(events: &[Seen]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_consumer_that_reconnects_with_its_cursor_gets_exactly_what_it_missed() {
    require_python_grpc();
    let c = InProcess::start().await;
    let mut client = admin::connect(&c.url(), &c.data_dir).await;
    c.report_disk("pc-1", 93).await;
    let a = ticket_of(&mut client, "pc-1").await;

    // First connection, from the start of the log: everything so far, as the log holds it.
    let before = log_after(&mut client, 0).await;
    assert_eq!(
        before.first().map(|e| e.kind.as_str()),
        Some("opened"),
        "{before:?}"
    );
    let count = before.len().to_string();
    let mut first = Consumer::start(&c, &["--cursor", "0", "--count", &count]);
    let got = first.events(before.len()).await;
    assert_eq!(got, before, "from cursor 0 the stream is the log");
    first.finish_clean().await;
    let last = got.last().expect("an event").cursor;

    // Disconnected: comments, an acknowledgement and a second ticket on another host.
    comment(&mut client, a, "looking at it").await;
    act(&mut client, a, TicketAction::Acknowledge, "").await;
    c.report_disk("pc-2", 97).await;
    let b = ticket_of(&mut client, "pc-2").await;
    comment(&mut client, b, "second host").await;
    comment(&mut client, a, "still full").await;
    let missed = log_after(&mut client, last).await;
    assert!(
        missed.len() >= 5 && missed.iter().all(|e| e.cursor > last),
        "{missed:?}"
    );
    assert!(
        missed
            .iter()
            .any(|e| e.ticket_id == b && e.kind == "opened"),
        "{missed:?}"
    );

    // Reconnect with the last cursor printed: exactly the missed events, then, still
    // connected, a new one as it commits. Counting one more than missed makes a duplicate or
    // an extra event visible: the consumer would stop before the new one or print it out of
    // place.
    let last_arg = last.to_string();
    let count = (missed.len() + 1).to_string();
    let mut second = Consumer::start(&c, &["--cursor", &last_arg, "--count", &count]);
    let caught_up = second.events(missed.len()).await;
    assert_eq!(
        caught_up, missed,
        "after reconnecting with cursor {last}: exactly the missed events, in cursor order"
    );
    comment(&mut client, b, "live").await;
    let live = second.events(1).await;
    second.finish_clean().await;
    let expected = log_after(&mut client, last).await;
    let mut all = caught_up.clone();
    all.extend(live.iter().cloned());
    assert_eq!(
        all, expected,
        "missed events then the new one, each once, in cursor order"
    );
    assert_eq!(
        (live[0].kind.as_str(), live[0].ticket_id),
        ("comment", b),
        "{live:?}"
    );
    let cursors: Vec<i64> = all.iter().map(|e| e.cursor).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]) && cursors[0] > last,
        "strictly after {last}, strictly increasing: {cursors:?}"
    );
    assert!(
        kinds(&all).contains(&"acknowledged") && kinds(&all).contains(&"comment"),
        "{all:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filtered_watch_sends_only_the_matching_tickets_events() {
    let c = InProcess::start().await;
    let mut client = admin::connect(&c.url(), &c.data_dir).await;
    c.report_disk("pc-1", 93).await; // P2
    c.report_disk("pc-2", 97).await; // P1
    let a = ticket_of(&mut client, "pc-1").await;
    let b = ticket_of(&mut client, "pc-2").await;
    comment(&mut client, a, "p2 before").await;
    comment(&mut client, b, "p1 before").await;
    let urgent = EventsSinceRequest {
        max_priority: 1,
        ..EventsSinceRequest::default()
    };
    let expected = log_since(&mut client, 0, urgent.clone()).await;
    assert!(
        !expected.is_empty() && expected.iter().all(|e| e.ticket_id == b && e.priority == 1),
        "{expected:?}"
    );

    let count = (expected.len() + 1).to_string();
    let mut consumer = Consumer::start(
        &c,
        &["--cursor", "0", "--max-priority", "1", "--count", &count],
    );
    let got = consumer.events(expected.len()).await;
    assert_eq!(got, expected, "max_priority 1: only the P1 ticket's events");
    // Live: an event of the P2 ticket passes by unseen, the P1 ticket's next one arrives.
    comment(&mut client, a, "p2 live").await;
    comment(&mut client, b, "p1 live").await;
    let live = consumer.events(1).await;
    consumer.finish_clean().await;
    let expected = log_since(&mut client, 0, urgent).await;
    let mut all = got;
    all.extend(live);
    assert_eq!(
        all, expected,
        "the filtered stream is the filtered log, live too"
    );
    assert_eq!(
        all.last().map(|e| (e.kind.as_str(), e.ticket_id)),
        Some(("comment", b))
    );

    // A host filter by name, from the start, stopped by its count.
    let expected = log_since(
        &mut client,
        0,
        EventsSinceRequest {
            host: "pc-1".into(),
            ..EventsSinceRequest::default()
        },
    )
    .await;
    assert!(
        expected.iter().all(|e| e.ticket_id == a) && expected.len() >= 3,
        "{expected:?}"
    );
    let count = expected.len().to_string();
    let mut consumer = Consumer::start(&c, &["--host", "pc-1", "--count", &count]);
    assert_eq!(consumer.events(expected.len()).await, expected);
    consumer.finish_clean().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn from_now_sends_only_what_commits_after_the_call() {
    let c = InProcess::start().await;
    let mut client = admin::connect(&c.url(), &c.data_dir).await;
    c.report_disk("pc-1", 93).await;
    let a = ticket_of(&mut client, "pc-1").await;
    comment(&mut client, a, "old news").await;
    let newest = log_after(&mut client, 0)
        .await
        .last()
        .expect("events")
        .cursor;

    // `--cursor 0` is ignored with from_now: nothing of the past arrives.
    let mut consumer = Consumer::start(&c, &["--from-now", "--cursor", "0", "--count", "3"]);
    consumer.wait_open().await;
    comment(&mut client, a, "new one").await;
    act(&mut client, a, TicketAction::Acknowledge, "").await;
    comment(&mut client, a, "newer one").await;
    let got = consumer.events(3).await;
    consumer.finish_clean().await;
    let expected = log_after(&mut client, newest).await;
    assert_eq!(
        got, expected,
        "from_now: the events after the newest one at the call ({newest}), nothing before"
    );
    assert_eq!(kinds(&got), ["comment", "acknowledged", "comment"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_watch_reaches_the_python_consumer_as_a_status() {
    let c = InProcess::start().await;
    c.report_disk("pc-1", 93).await;

    // An agent's certificate is not an operator's: the feed is for operators' programs.
    let agent = c.enroll("pc-2").await;
    let cert = c.dir.path().join("agent-as-operator.crt");
    let key = c.dir.path().join("agent-as-operator.key");
    std::fs::write(&cert, &agent.cert_pem).expect("write cert");
    std::fs::write(&key, &agent.key_pem).expect("write key");
    let consumer = Consumer::start(
        &c,
        &[
            "--cert",
            cert.to_str().expect("utf-8 path"),
            "--key",
            key.to_str().expect("utf-8 path"),
            "--count",
            "1",
        ],
    );
    let (status, lines, stderr) = consumer.finish().await;
    assert_eq!(status.code(), Some(1), "{lines:?}\n{stderr}");
    assert_eq!(lines.len(), 1, "only the error line: {lines:?}\n{stderr}");
    assert_eq!(
        lines[0]["error"]["code"], "PERMISSION_DENIED",
        "{lines:?}\n{stderr}"
    );

    // A priority outside 1..4 is refused as EventsSince refuses it.
    let consumer = Consumer::start(&c, &["--max-priority", "5", "--count", "1"]);
    let (status, lines, stderr) = consumer.finish().await;
    assert_eq!(status.code(), Some(1), "{lines:?}\n{stderr}");
    assert_eq!(lines.len(), 1, "only the error line: {lines:?}\n{stderr}");
    assert_eq!(
        lines[0]["error"]["code"], "INVALID_ARGUMENT",
        "{lines:?}\n{stderr}"
    );
    assert!(
        lines[0]["error"]["details"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{lines:?}"
    );
}
