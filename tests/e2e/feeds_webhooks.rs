//! The webhook feed against real parts: the collector binary (`CollectorProc`), tickets opened
//! by real agent reports over mTLS, a receiver on loopback (`webhook_receiver`) that records
//! requests and can refuse or be down, and for the Alertmanager v4 format a real consumer of
//! it — Debian's `alertmanager-irc-relay` relaying to a local `ngircd`, read by a raw IRC
//! client. Covered: the signature (checked with the collector's `verify` and recomputed by
//! Python's `hmac`), the documented schema, retries that end in exactly one accepted delivery,
//! a dead letter listed and replayed through the CLI, a refusal that is dead-lettered at once,
//! and a collector killed with SIGKILL mid-retry that delivers after its restart.
//!
//! The tests fail, never skip, when `ngircd` or `alertmanager-irc-relay` is missing
//! (`scripts/test.sh` installs them).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firstline_agent::enroll::{EnrollParams, enroll};
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_collector::feeds::signature::{self, SignatureError};
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{Filesystem, ReportRequest, Snapshot, TicketAction, UpdateTicketRequest};
use firstline_tests::procs::CollectorProc;
use firstline_tests::webhook_receiver::{Received, Receiver};
use firstline_tests::{admin, wait_for, wait_until};
use serde_json::Value;

/// Upper bound for anything waited for; a safety net against hangs, not a performance
/// assertion.
const LIMIT: Duration = Duration::from_secs(60);
/// The disk rule the reports below trip.
const DISK_RULE: &str = "disk.usage";

/// A `[[feeds.webhook]]` table with short retries; `extra` adds keys.
fn webhook(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[feeds.webhook]]\nname = {name:?}\nurl = {url:?}\nretry_initial = \"200ms\"\n\
         retry_max = \"1s\"\nmax_attempts = 3\nrules = [{DISK_RULE:?}]\n{extra}\n"
    )
}

/// Starts a collector with `toml` and waits until webhook `name` has taken its cursor (a new
/// feed starts at the end of the log, so events before that are not its).
fn collector_with(dir: &Path, toml: &str, name: &str) -> CollectorProc {
    let collector = CollectorProc::start(dir, toml);
    wait_delivering(&collector, name, 1);
    collector
}

/// Waits until the log says webhook `name` started delivering `times` times.
fn wait_delivering(collector: &CollectorProc, name: &str, times: usize) {
    let feed = format!("feed=\"webhook:{name}\"");
    let feed_plain = format!("feed=webhook:{name}");
    wait_for("the webhook to start delivering", LIMIT, || {
        let log = collector.log();
        let n = log
            .lines()
            .filter(|l| l.contains("webhook delivering"))
            .filter(|l| l.contains(&feed) || l.contains(&feed_plain))
            .count();
        (n >= times).then_some(())
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Enrolls `host` and reports its `/` `used` percent full (93: a P2 disk ticket). The report
/// is acknowledged after the commit, so the ticket's events are in the log on return.
fn report_full_disk(collector: &CollectorProc, dir: &Path, host: &str, used: u64) {
    let token = collector.token();
    let ca = std::fs::read_to_string(collector.data_dir.join("ca.crt")).expect("ca.crt");
    runtime().block_on(async {
        let identity = enroll(
            &dir.join(host),
            &EnrollParams {
                collector_url: &collector.url(),
                token: &token,
                ca_pem: &ca,
                hostname: host,
                force: false,
            },
        )
        .await
        .expect("enrollment");
        AgentClient::new(channel(&identity).expect("channel"))
            .report(ReportRequest {
                snapshots: vec![Snapshot {
                    seq: 1,
                    taken_at_ms: now_ms(),
                    hostname: host.into(),
                    filesystems: vec![Filesystem {
                        mount_point: "/".into(),
                        total_bytes: 100,
                        used_bytes: used,
                        available_bytes: 100 - used,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                sent_at_ms: now_ms(),
            })
            .await
            .expect("report");
    });
}

/// Comments on ticket `id` through the admin API (one more event in the log).
fn comment(collector: &CollectorProc, id: i64, text: &str) {
    runtime().block_on(async {
        admin::connect(&collector.url(), &collector.data_dir)
            .await
            .update_ticket(UpdateTicketRequest {
                id,
                action: TicketAction::Comment.into(),
                text: text.into(),
            })
            .await
            .expect("UpdateTicket comment");
    });
}

/// The requests that carried event `id`.
fn for_event(requests: &[Received], id: &str) -> Vec<Received> {
    requests
        .iter()
        .filter(|r| r.header("x-firstline-event-id") == Some(id))
        .cloned()
        .collect()
}

/// The first accepted request of kind `kind`.
fn wait_accepted(receiver: &Receiver, kind: &str) -> Received {
    wait_for(&format!("an accepted {kind} event"), LIMIT, || {
        receiver
            .accepted()
            .into_iter()
            .find(|r| r.header("x-firstline-event-kind") == Some(kind))
    })
}

/// `feeds list --json`: the entry of webhook `name`.
fn feed_entry(collector: &CollectorProc, name: &str) -> Value {
    let list = collector.json(&["feeds", "list", "--json"]);
    list.as_array()
        .expect("feeds list is an array")
        .iter()
        .find(|f| f["name"] == format!("webhook:{name}"))
        .cloned()
        .unwrap_or_else(|| panic!("webhook:{name} in {list}"))
}

/// Waits until webhook `name` owes nothing: no pending delivery (so no attempt will follow).
fn wait_settled(collector: &CollectorProc, name: &str) -> Value {
    wait_until(
        "the webhook to have nothing pending",
        LIMIT,
        || feed_entry(collector, name),
        |f| f["pending"] == 0,
    )
}

fn object_keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// An RFC 3339 UTC time with milliseconds, as the schema documents: `2025-01-02T03:04:05.678Z`.
fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        s.len() == 24
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && s.ends_with('Z')
            && s.chars().filter(char::is_ascii_digit).count() == 17
    })
}

/// The signature of `body` at `timestamp` as Python's `hmac` computes it: an implementation
/// that shares nothing with the collector's.
fn python_signature(dir: &Path, secret: &str, timestamp: &str, body: &[u8]) -> String {
    let path = dir.join("body.json");
    std::fs::write(&path, body).expect("write body");
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys; \
             body=open(sys.argv[3],'rb').read(); \
             print('v1='+hmac.new(sys.argv[1].encode(), sys.argv[2].encode()+b'.'+body, hashlib.sha256).hexdigest())",
            secret,
            timestamp,
        ])
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn events_arrive_signed_in_the_documented_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    let secret = "s3cret-for-the-test";
    let collector = collector_with(
        dir.path(),
        &webhook(
            "sig",
            &receiver.url("/hook"),
            &format!("secret = {secret:?}"),
        ),
        "sig",
    );
    report_full_disk(&collector, dir.path(), "pc-sig", 93);
    let r = wait_accepted(&receiver, "opened");
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.header("user-agent")
            .is_some_and(|ua| ua.starts_with("firstline-collector/")),
        "{:?}",
        r.headers
    );

    // The signature, checked as a receiver would: with the collector's own verify, and
    // recomputed by another implementation.
    let header = r.header("x-firstline-signature").expect("signature header");
    let ts_text = r.header("x-firstline-timestamp").expect("timestamp header");
    let ts: i64 = ts_text.parse().expect("timestamp is Unix seconds");
    let now = now_ms() / 1000;
    assert_eq!(
        signature::verify(
            secret.as_bytes(),
            header,
            ts,
            &r.body,
            now,
            signature::TOLERANCE
        ),
        Ok(())
    );
    assert_eq!(
        python_signature(dir.path(), secret, ts_text, &r.body),
        header
    );
    assert_eq!(
        signature::verify(b"wrong", header, ts, &r.body, now, signature::TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    // A replay ten minutes later is refused on its timestamp.
    assert!(matches!(
        signature::verify(
            secret.as_bytes(),
            header,
            ts,
            &r.body,
            now + 600,
            signature::TOLERANCE
        ),
        Err(SignatureError::Stale { .. })
    ));

    // The body is the documented schema (docs/feeds.md, "Webhooks").
    let v = r.json();
    assert_eq!(
        object_keys(&v),
        keys(&["version", "test", "event", "ticket"])
    );
    assert_eq!(v["version"], 1);
    assert_eq!(v["test"], false);
    let e = &v["event"];
    assert_eq!(
        object_keys(e),
        keys(&["cursor", "kind", "at", "observed_at", "actor", "detail"])
    );
    assert_eq!(
        e["cursor"].as_i64().map(|c| c.to_string()).as_deref(),
        r.header("x-firstline-event-id"),
        "the event id header is the event's cursor"
    );
    assert_eq!(e["kind"], "opened");
    assert!(
        is_rfc3339_utc(&e["at"]) && is_rfc3339_utc(&e["observed_at"]),
        "{e}"
    );
    let t = &v["ticket"];
    assert_eq!(
        object_keys(t),
        keys(&[
            "id",
            "rule",
            "subject",
            "host",
            "agent_id",
            "priority",
            "opened_priority",
            "state",
            "title",
            "occurrences",
            "opened_at",
            "last_seen_at",
            "acknowledged_at",
            "resolved_at",
            "tier",
            "assignee",
            "flapping",
            "parent_id",
            "kb",
            "labels",
        ])
    );
    assert!(t["id"].as_i64().is_some_and(|id| id > 0), "{t}");
    assert_eq!(t["rule"], DISK_RULE);
    assert_eq!(t["subject"], "/");
    assert_eq!(t["host"], "pc-sig");
    assert_eq!(t["priority"], "P2");
    assert_eq!(t["state"], "new");
    assert_eq!(t["resolved_at"], Value::Null);
    assert!(is_rfc3339_utc(&t["opened_at"]), "{t}");
    assert!(t["labels"].is_array(), "{t}");

    // `feeds test` sends the marked test event once, signed the same way.
    let out = collector.json(&["feeds", "test", "webhook:sig", "--json"]);
    assert_eq!(out["delivered"], true, "{out}");
    let test = wait_accepted(&receiver, "test");
    let tv = test.json();
    assert_eq!(tv["test"], true);
    assert_eq!(tv["event"]["kind"], "test");
    assert_eq!(test.header("x-firstline-event-id"), Some("0"));
    let ts: i64 = test
        .header("x-firstline-timestamp")
        .and_then(|t| t.parse().ok())
        .expect("timestamp");
    assert_eq!(
        signature::verify(
            secret.as_bytes(),
            test.header("x-firstline-signature").unwrap_or_default(),
            ts,
            &test.body,
            now_ms() / 1000,
            signature::TOLERANCE
        ),
        Ok(())
    );
}

#[test]
fn a_receiver_that_fails_twice_gets_the_event_once_on_the_third_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    let collector = collector_with(
        dir.path(),
        &webhook("flaky", &receiver.url("/"), "kinds = [\"opened\"]"),
        "flaky",
    );
    receiver.fail_next(2, 500);
    report_full_disk(&collector, dir.path(), "pc-flaky", 93);
    let accepted = wait_accepted(&receiver, "opened");
    let id = accepted
        .header("x-firstline-event-id")
        .expect("event id")
        .to_owned();
    let settled = wait_settled(&collector, "flaky");
    assert_eq!(settled["dead_letters"], 0, "{settled}");
    let attempts = for_event(&receiver.requests(), &id);
    let statuses: Vec<u16> = attempts.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [500, 500, 200],
        "three attempts of event {id}, the last accepted"
    );
    // Every attempt is the same event with the same body (the idempotency key holds).
    assert!(
        attempts.iter().all(|r| r.body == accepted.body),
        "the body changed between attempts"
    );
    assert_eq!(receiver.accepted().len(), 1, "{:?}", receiver.accepted());
}

#[test]
fn undeliverable_events_become_dead_letters_that_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start();
    let collector = collector_with(dir.path(), &webhook("down", &receiver.url("/"), ""), "down");
    receiver.go_down();
    report_full_disk(&collector, dir.path(), "pc-down", 93);
    let dead = wait_until(
        "a dead letter in `feeds dead-letters`",
        LIMIT,
        || collector.json(&["feeds", "dead-letters", "webhook:down", "--json"]),
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    );
    let letter = &dead[0];
    assert_eq!(letter["feed"], "webhook:down", "{letter}");
    assert_eq!(letter["attempts"], 3, "{letter}");
    assert!(
        letter["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{letter}"
    );
    let cursor = letter["event_cursor"].as_i64().expect("event_cursor");
    let ticket = letter["event"]["ticket"]["id"]
        .as_i64()
        .expect("the dead letter carries its event");
    let listed = feed_entry(&collector, "down");
    assert_eq!(listed["dead_letters"], 1, "{listed}");
    // The table form names the event too.
    let table = collector.cli(&["feeds", "dead-letters"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains(&cursor.to_string()),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );

    // Back up: the replayed dead letter is delivered, and the list is empty again.
    receiver.come_back();
    let out = collector.cli(&["feeds", "replay", "webhook:down"]);
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = cursor.to_string();
    wait_for("the replayed event to be accepted", LIMIT, || {
        (!for_event(&receiver.accepted(), &id).is_empty()).then_some(())
    });
    let settled = wait_settled(&collector, "down");
    assert_eq!(settled["dead_letters"], 0, "{settled}");

    // A refusal that would repeat (404) is a dead letter at once, with the receiver's answer.
    receiver.fail_next(1, 404);
    comment(&collector, ticket, "looking into it");
    let dead = wait_until(
        "the refused comment as a dead letter",
        LIMIT,
        || collector.json(&["feeds", "dead-letters", "webhook:down", "--json"]),
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    );
    let letter = &dead[0];
    assert_eq!(letter["attempts"], 1, "not retried: {letter}");
    assert_eq!(
        letter["last_error"], "HTTP 404: receiver says no",
        "{letter}"
    );
    assert_eq!(letter["event"]["kind"], "comment", "{letter}");
}

#[test]
fn a_collector_killed_mid_retry_delivers_after_its_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    let mut collector = collector_with(
        dir.path(),
        &webhook(
            "crash",
            &receiver.url("/"),
            "kinds = [\"opened\"]\nmax_attempts = 50",
        )
        // The table above sets max_attempts already; keep only the last one.
        .replacen("max_attempts = 3\n", "", 1),
        "crash",
    );
    receiver.fail_next(u32::MAX, 503);
    report_full_disk(&collector, dir.path(), "pc-crash", 93);
    let first = wait_for("a first failed attempt", LIMIT, || {
        receiver.requests().into_iter().next()
    });
    let id = first
        .header("x-firstline-event-id")
        .expect("event id")
        .to_owned();
    collector.kill();
    let before = for_event(&receiver.requests(), &id).len();
    assert!(before >= 1 && receiver.accepted().is_empty());
    receiver.fail_next(0, 200);
    collector.restart();
    let accepted = wait_for("the pending delivery after the restart", LIMIT, || {
        for_event(&receiver.accepted(), &id).into_iter().next()
    });
    assert_eq!(accepted.body, first.body, "the same event");
    let settled = wait_settled(&collector, "crash");
    assert_eq!(settled["dead_letters"], 0, "{settled}");
    assert_eq!(
        receiver.accepted().len(),
        1,
        "delivered once: {:?}",
        receiver.accepted()
    );
}

// ---- Alertmanager v4 into alertmanager-irc-relay -------------------------------------------

const NGIRCD: &str = "/usr/sbin/ngircd";
const RELAY: &str = "/usr/bin/alertmanager-irc-relay";
const CHANNEL: &str = "#alerts";

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the Alertmanager-format test needs Debian's {package} \
         (scripts/test.sh installs it)"
    );
}

/// A port free now on 127.0.0.1 (for programs that cannot bind port 0 and say which port).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Proc {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    Proc(
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}")),
    )
}

/// `ngircd` in the foreground on `port`: no PAM, no ident, no DNS, nothing from /etc.
fn start_ngircd(dir: &Path, port: u16) -> Proc {
    let include = dir.join("ngircd.conf.d");
    std::fs::create_dir_all(&include).expect("include dir");
    let conf = dir.join("ngircd.conf");
    std::fs::write(
        &conf,
        format!(
            "[Global]\n\tName = irc.firstline.test\n\tInfo = Firstline test server\n\
             \tAdminInfo1 = test\n\tAdminInfo2 = test\n\tAdminEMail = test@localhost\n\
             \tListen = 127.0.0.1\n\tPorts = {port}\n\tMotdPhrase = \"test\"\n\
             \tPidFile = {pid}\n\tHelpFile = \n\
             [Limits]\n\tMaxConnectionsIP = 0\n\tMaxNickLength = 30\n\
             [Options]\n\tPAM = no\n\tIdent = no\n\tDNS = no\n\tRequireAuthPing = no\n\
             \tIncludeDir = {include}\n",
            pid = dir.join("ngircd.pid").display(),
            include = include.display(),
        ),
    )
    .expect("ngircd.conf");
    let proc = spawn_logged(
        Command::new(NGIRCD).arg("-n").arg("-f").arg(&conf),
        &dir.join("ngircd.log"),
    );
    wait_for("ngircd to listen", LIMIT, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    proc
}

/// A raw IRC client in `CHANNEL`: every line it reads is kept; PINGs are answered.
struct IrcWatcher {
    lines: Arc<Mutex<Vec<String>>>,
}

impl IrcWatcher {
    fn join(port: u16, nick: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to ngircd");
        let mut writer = stream.try_clone().expect("stream");
        write!(
            writer,
            "NICK {nick}\r\nUSER {nick} 0 * :Firstline test watcher\r\n"
        )
        .expect("register");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stream);
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if let Some(token) = line.strip_prefix("PING ") {
                    let _ = write!(writer, "PONG {token}\r\n");
                }
                // 001: registered; now the channel can be joined.
                if line.split_whitespace().nth(1) == Some("001") {
                    let _ = write!(writer, "JOIN {CHANNEL}\r\n");
                }
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        Self { lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits for a line that `matches`.
    fn wait_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        wait_until(
            what,
            LIMIT,
            || self.lines(),
            |ls| ls.iter().any(|l| matches(l)),
        )
        .into_iter()
        .find(|l| matches(l))
        .unwrap_or_default()
    }
}

#[test]
fn the_alertmanager_format_is_relayed_to_irc_by_alertmanager_irc_relay() {
    require(NGIRCD, "ngircd");
    require(RELAY, "alertmanager-irc-relay");
    let dir = tempfile::tempdir().expect("tempdir");
    let irc_port = free_port();
    let _ngircd = start_ngircd(dir.path(), irc_port);
    let watcher = IrcWatcher::join(irc_port, "watcher");
    watcher.wait_line("the watcher in the channel", |l| {
        l.contains(" JOIN ") && l.contains(CHANNEL) && l.starts_with(":watcher!")
    });

    let http_port = free_port();
    let relay_conf = dir.path().join("relay.yml");
    std::fs::write(
        &relay_conf,
        format!(
            "http_host: 127.0.0.1\nhttp_port: {http_port}\n\
             irc_host: 127.0.0.1\nirc_port: {irc_port}\nirc_use_ssl: no\n\
             irc_nickname: firstlinebot\nirc_realname: Firstline test relay\n\
             irc_channels:\n  - name: \"{CHANNEL}\"\n\
             use_privmsg: yes\nmsg_once_per_alert_group: no\n\
             msg_template: \"{{{{ .Status }}}} {{{{ .Labels.alertname }}}} {{{{ .Labels.priority }}}} \
             ticket {{{{ .Labels.ticket }}}} on {{{{ .Labels.instance }}}}: {{{{ .Annotations.summary }}}}\"\n"
        ),
    )
    .expect("relay config");
    let _relay = spawn_logged(
        Command::new(RELAY).arg("-config").arg(&relay_conf),
        &dir.path().join("relay.log"),
    );
    watcher.wait_line("the relay in the channel", |l| {
        l.starts_with(":firstlinebot!") && l.contains(" JOIN ")
    });
    wait_for("the relay's HTTP listener", LIMIT, || {
        TcpStream::connect(("127.0.0.1", http_port)).ok()
    });

    let collector = collector_with(
        dir.path(),
        &webhook(
            "irc",
            &format!("http://127.0.0.1:{http_port}/alerts"),
            "format = \"alertmanager\"\nkinds = [\"opened\"]",
        ),
        "irc",
    );
    report_full_disk(&collector, dir.path(), "pc-irc", 93);
    let line = watcher.wait_line("the alert in the channel", |l| {
        l.starts_with(":firstlinebot!") && l.contains(&format!("PRIVMSG {CHANNEL} :firing"))
    });
    let message = line
        .split_once(&format!("PRIVMSG {CHANNEL} :"))
        .map(|(_, m)| m.to_owned())
        .unwrap_or_default();
    assert!(
        message.starts_with(&format!("firing {DISK_RULE} P2 ticket ")),
        "{message}"
    );
    assert!(message.contains(" on pc-irc: "), "{message}");
    let settled = wait_settled(&collector, "irc");
    assert_eq!(settled["dead_letters"], 0, "{settled}");
    assert!(
        settled["last_delivery_at_ms"].as_i64().is_some(),
        "{settled}"
    );
}
