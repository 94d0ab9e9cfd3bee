//! The JSON admin API over HTTP: a credential is required (here the machine's api.key, the
//! built-in admin local-admin), bad requests get JSON errors with a 4xx
//! status and change nothing, and a technician can work a ticket through it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use firstline_collector::clock::now_ms;
use firstline_tests::inproc::InProcess;
use serde_json::Value;

/// One HTTP/1.1 request; returns the status and the JSON body.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let json = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    (
        status,
        serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_owned())),
    )
}

/// The status line, headers and first event of an event stream, then the connection closed.
fn stream_head(addr: SocketAddr, path: &str, key: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen);
        if text
            .split_once("event: hello")
            .is_some_and(|(_, rest)| rest.contains("data:"))
        {
            break;
        }
        let n = stream.read(&mut buf).expect("read the stream");
        assert!(n > 0, "the stream ended early: {text}");
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_api_needs_its_key_and_answers_in_json() {
    let (c, http) = InProcess::start_with_http().await;
    let key = std::fs::read_to_string(c.data_dir.join("api.key")).expect("api.key");
    let key = key.trim().to_owned();
    c.report_disk("pc-1", 93).await;

    let (status, body) =
        tokio::task::spawn_blocking(move || call(http, "GET", "/api/health", None, None))
            .await
            .expect("join");
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let k = key.clone();
    let results = tokio::task::spawn_blocking(move || {
        let k = Some(k.as_str());
        vec![
            ("no key", call(http, "GET", "/api/tickets", None, None), 401),
            (
                "wrong key",
                call(http, "GET", "/api/tickets", Some("fla_nope"), None),
                401,
            ),
            (
                "bad state",
                call(http, "GET", "/api/tickets?state=bogus", k, None),
                400,
            ),
            (
                "unknown query key",
                call(http, "GET", "/api/tickets?colour=red", k, None),
                400,
            ),
            (
                "no such ticket",
                call(http, "GET", "/api/tickets/999", k, None),
                404,
            ),
            (
                "not a number",
                call(http, "GET", "/api/tickets/abc", k, None),
                400,
            ),
            (
                "bad json",
                call(http, "POST", "/api/tickets/1/actions", k, Some("{not json")),
                400,
            ),
            (
                "bad action",
                call(
                    http,
                    "POST",
                    "/api/tickets/1/actions",
                    k,
                    Some(r#"{"action":"delete"}"#),
                ),
                400,
            ),
            (
                "silence without end",
                call(
                    http,
                    "POST",
                    "/api/silences",
                    k,
                    Some(r#"{"host":"pc-1","ends_at_ms":1}"#),
                ),
                400,
            ),
        ]
    })
    .await
    .expect("join");
    for (name, (status, body), expected) in results {
        assert_eq!(status, expected, "{name}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}: error must be JSON with a message: {body}"
        );
    }
    let k = key.clone();
    let (tickets, acked, again, handoff) = tokio::task::spawn_blocking(move || {
        let k = Some(k.as_str());
        let tickets = call(http, "GET", "/api/tickets?state=open", k, None);
        let id = tickets.1[0]["id"].as_i64().expect("ticket id");
        let acked = call(
            http,
            "POST",
            &format!("/api/tickets/{id}/actions"),
            k,
            Some(r#"{"action":"acknowledge"}"#),
        );
        let again = call(
            http,
            "POST",
            &format!("/api/tickets/{id}/actions"),
            k,
            Some(r#"{"action":"acknowledge"}"#),
        );
        let handoff = call(http, "GET", "/api/handoff", k, None);
        (tickets, acked, again, handoff)
    })
    .await
    .expect("join");
    assert_eq!(tickets.0, 200);
    assert_eq!(tickets.1.as_array().map(Vec::len), Some(1), "{}", tickets.1);
    assert_eq!(acked.0, 200, "{}", acked.1);
    assert_eq!(acked.1["ticket"]["state"], "acknowledged");
    assert!(
        acked.1["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "acknowledged" && e["actor"] == "local-admin")
    );
    assert!(
        acked.1["kb_markdown"]
            .as_str()
            .unwrap_or_default()
            .contains("Disk almost full")
    );
    assert_eq!(again.0, 409, "{}", again.1);
    assert_eq!(handoff.0, 200);
    assert_eq!(handoff.1["critical_open"].as_array().map(Vec::len), Some(1));
}

/// Runs the collector binary as the CLI against an in-process collector.
fn cli(c: &InProcess, args: &[&str]) -> std::process::Output {
    std::process::Command::new(firstline_tests::bins::collector())
        .arg("--data-dir")
        .arg(&c.data_dir)
        .args(args)
        .args(["--collector", &c.url()])
        .output()
        .expect("run the CLI")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_answers_and_every_door_shows_one_ticket_schema() {
    let (c, http) = InProcess::start_with_http().await;
    let key = std::fs::read_to_string(c.data_dir.join("api.key")).expect("api.key");
    let key = key.trim().to_owned();
    c.report_disk("pc-1", 93).await;
    let k = key.clone();
    let (doc, answers, unknown) = tokio::task::spawn_blocking(move || {
        let bare = k.as_str();
        let k = Some(bare);
        let (status, doc) = call(http, "GET", "/api/openapi.json", None, None);
        assert_eq!(status, 200);
        let mut answers = Vec::new();
        for (path, methods) in doc["paths"].as_object().expect("paths") {
            for method in methods.as_object().expect("methods").keys() {
                let concrete = path.replace("{id}", "1").replace("{host}", "pc-1");
                let body = (method != "get" && method != "delete").then_some("{}");
                if concrete == "/api/stream" {
                    // An event stream does not end: its status line and first event do.
                    let head = stream_head(http, &concrete, bare);
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    assert!(head.contains("text/event-stream"), "{head}");
                    assert!(head.contains("event: hello"), "{head}");
                    continue;
                }
                let answer = call(http, &method.to_uppercase(), &concrete, k, body);
                answers.push((format!("{method} {path}"), answer));
            }
        }
        let unknown = call(http, "GET", "/api/nope", k, None);
        (doc, answers, unknown)
    })
    .await
    .expect("join");
    assert!(answers.len() >= 13, "{answers:?}");
    for (route, (status, body)) in &answers {
        assert_ne!(
            body["error"].as_str(),
            Some(firstline_collector::web::openapi::NO_SUCH_ROUTE),
            "{route} is documented but not served ({status})"
        );
        assert_ne!(*status, 405, "{route}: {body}");
    }
    assert_eq!(unknown.0, 404);
    assert_eq!(
        unknown.1["error"],
        firstline_collector::web::openapi::NO_SUCH_ROUTE
    );
    assert_eq!(doc["openapi"], "3.1.0");

    // One ticket, three doors: the HTTP API, `ticket show --json` (through gRPC) and the
    // gRPC message itself carry the same fields under the same names.
    let k = key.clone();
    let http_detail =
        tokio::task::spawn_blocking(move || call(http, "GET", "/api/tickets/1", Some(&k), None))
            .await
            .expect("join");
    assert_eq!(http_detail.0, 200, "{}", http_detail.1);
    let shown = cli(&c, &["ticket", "show", "1", "--json"]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let cli_detail: Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(
        cli_detail, http_detail.1,
        "ticket show --json is the HTTP document"
    );
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let wire = serde_json::to_value(firstline_proto::v1::Ticket::default()).expect("json");
    assert_eq!(keys(&http_detail.1["ticket"]), keys(&wire));
    for field in [
        "assignee",
        "tier",
        "flapping",
        "response_due_ms",
        "resolve_due_ms",
    ] {
        assert!(http_detail.1["ticket"].get(field).is_some(), "{field}");
    }
    // Short verbs are aliases everywhere: `ticket ack` on the CLI, "ack" over HTTP.
    let acked = cli(&c, &["ticket", "ack", "1", "--json"]);
    assert!(
        acked.status.success(),
        "{}",
        String::from_utf8_lossy(&acked.stderr)
    );
    let k = key.clone();
    let (hosts, labelled, tickets_by_name, bad_host, events, silence, ended) =
        tokio::task::spawn_blocking(move || {
            let k = Some(k.as_str());
            let hosts = call(http, "GET", "/api/hosts", k, None);
            let labelled = call(
                http,
                "PUT",
                "/api/hosts/pc-1/labels",
                k,
                Some(r#"{"labels":["lab"]}"#),
            );
            let by_name = call(http, "GET", "/api/tickets?host=pc-1", k, None);
            let bad_host = call(http, "GET", "/api/tickets?host=nosuchhost", k, None);
            let events = call(http, "GET", "/api/events?cursor=0&limit=10", k, None);
            let end = now_ms() + 3_600_000;
            let silence = call(
                http,
                "POST",
                "/api/silences",
                k,
                Some(&format!(r#"{{"host":"pc-1","ends_at_ms":{end}}}"#)),
            );
            let id = silence.1["id"].as_i64().unwrap_or(0);
            let ended = call(http, "DELETE", &format!("/api/silences/{id}"), k, None);
            (hosts, labelled, by_name, bad_host, events, silence, ended)
        })
        .await
        .expect("join");
    assert_eq!(hosts.0, 200);
    assert_eq!(labelled.0, 200, "{}", labelled.1);
    assert_eq!(labelled.1["labels"][0], "lab");
    assert_eq!(
        tickets_by_name.1.as_array().map(Vec::len),
        Some(1),
        "{}",
        tickets_by_name.1
    );
    assert_eq!(bad_host.0, 404, "{}", bad_host.1);
    let kinds: Vec<&str> = events.1["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["opened", "acknowledged"], "{}", events.1);
    assert_eq!(silence.0, 200, "{}", silence.1);
    assert_eq!(ended.0, 200, "{}", ended.1);
    assert!(ended.1["ends_at_ms"].as_i64() <= Some(now_ms()));
    let hosts_cli = cli(&c, &["hosts", "--json"]);
    assert!(
        hosts_cli.status.success(),
        "{}",
        String::from_utf8_lossy(&hosts_cli.stderr)
    );
    let hosts_cli: Value = serde_json::from_slice(&hosts_cli.stdout).expect("json");
    assert_eq!(
        hosts_cli[0]["labels"][0], "lab",
        "labels show in hosts --json"
    );
}
