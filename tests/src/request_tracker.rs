//! A throwaway Request Tracker 5 (Debian's request-tracker5, rt5-db-sqlite and rt5-standalone
//! packages) for the helpdesk end-to-end tests, set up as /work/shared/REQUEST-TRACKER.md
//! describes: its own SQLite database and site config in a temp dir (`RT_SITE_CONFIG` and
//! `RT_SITE_CONFIG_DIR` both set, so nothing system-wide is read or written), `rt-server` on
//! 127.0.0.1 with two workers, outgoing mail appended to mbox files in the dir. The tests drive it
//! through REST 2 as `root` (password `password`) and as technicians they create; what REST 2
//! cannot do (auth tokens, queue rights) is done by a small Perl script using RT's own API.
//!
//! Everything is synchronous, for `#[test]` functions outside a tokio runtime: the HTTP/1.1
//! client is a few lines over `std::net::TcpStream` (`Connection: close`, `Content-Length` or
//! chunked answers).

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{tail, wait_for};

/// The standalone server; it is not on `$PATH`.
const RT_SERVER: &str = "/usr/share/request-tracker5/libexec/rt-server";
/// Creates and fills the database.
const RT_SETUP_DATABASE: &str = "/usr/sbin/rt-setup-database-5";
/// Where RT's Perl modules live.
const RT_LIB: &str = "/usr/share/request-tracker5/lib";
/// What a missing RT tells the reader to do.
const INSTALL_HINT: &str =
    "install request-tracker5 rt5-db-sqlite rt5-standalone (scripts/test.sh does)";
/// `root`'s password after `rt-setup-database-5 --action init`.
const ROOT_PASSWORD: &str = "password";
/// How long RT gets to start; a safety net, not a performance assertion (it takes about 2 s).
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a stopped server gets to exit (its workers with it) before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// How long one HTTP exchange may take (the first request of a worker compiles templates).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one readiness probe may take: short, so a server that died behind someone else's
/// listener on its port is noticed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How many fresh ports `start` tries when the one it picked was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// The largest page RT 5 serves (it caps `per_page` at 100).
const PER_PAGE: usize = 100;
/// How much of a log a panic shows (its end).
const SHOWN_LOG_CHARS: usize = 4000;

/// The queue-level rights [`RequestTracker::grant_technician`] gives: see the queue and its
/// tickets (comments included), create tickets, watch, own, take an unowned ticket, steal one
/// owned by someone else (`PUT /ticket/ID/steal`), modify (status, owner when unowned or own),
/// reply and comment. Not `ReassignTicket` (give a ticket someone else owns to a third user) and
/// no global right, so a technician's powers end at the queue.
pub const TECHNICIAN_RIGHTS: &[&str] = &[
    "SeeQueue",
    "ShowTicket",
    "ShowTicketComments",
    "CreateTicket",
    "Watch",
    "OwnTicket",
    "TakeTicket",
    "StealTicket",
    "ModifyTicket",
    "ReplyToTicket",
    "CommentOnTicket",
];

/// What REST 2 cannot do, through RT's Perl API: `token USER` prints a new auth token for
/// USER (created by RT's system user, as a user may lack `ManageAuthTokens`); `grant USER QUEUE
/// RIGHT...` grants USER those rights on QUEUE, skipping the ones USER has already.
const ADMIN_SCRIPT: &str = r#"use strict; use warnings;
use lib '@RT_LIB@';
use RT; RT::LoadConfig(); RT::Init();
my ($action, $name, @args) = @ARGV;
my $user = RT::User->new(RT->SystemUser);
$user->Load($name);
die "no user $name\n" unless $user->Id;
if ($action eq 'token') {
    my ($ok, $msg, $authstring) = RT::AuthToken->new(RT->SystemUser)
        ->Create(Owner => $user->Id, Description => 'e2e');
    die "token for $name: $msg\n" unless $ok;
    print "$authstring\n";
} elsif ($action eq 'grant') {
    my ($queue_name, @rights) = @args;
    my $queue = RT::Queue->new(RT->SystemUser);
    $queue->Load($queue_name);
    die "no queue $queue_name\n" unless $queue->Id;
    for my $right (@rights) {
        next if $user->PrincipalObj->HasRight(Right => $right, Object => $queue);
        my ($ok, $msg) = $user->PrincipalObj->GrantRight(Right => $right, Object => $queue);
        die "grant $right on $queue_name to $name: $msg\n" unless $ok;
    }
    print "ok\n";
} else {
    die "unknown action $action\n";
}
"#;

/// A running RT 5 with its own database, stopped on drop (the temp dir goes with it).
pub struct RequestTracker {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    root_token: String,
}

/// `path` when it exists, else a panic saying how to install RT.
fn rt_file(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(p.exists(), "{} not found: {INSTALL_HINT}", p.display());
    p
}

/// A port on the loopback address that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The end of the file at `path`, or a note that it cannot be read.
fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => tail(&text, SHOWN_LOG_CHARS),
        Err(e) => format!("({} unreadable: {e})", path.display()),
    }
}

/// Standard base64 with padding (for the basic auth header).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `text` percent-encoded for a query string value (everything but the unreserved characters).
fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of a chunked HTTP/1.1 answer, `None` when it is cut or malformed.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_field = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size_hex = size_field.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// How a request authenticates.
enum Auth<'a> {
    Basic { user: &'a str, password: &'a str },
    Token(&'a str),
}

/// One HTTP/1.1 exchange with RT on `port` (`Connection: close`): the status and the body,
/// `None` when the connection fails or the answer is not HTTP.
fn exchange(
    port: u16,
    timeout: Duration,
    auth: &Auth<'_>,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    match auth {
        Auth::Basic { user, password } => {
            let credentials = base64(format!("{user}:{password}").as_bytes());
            head.push_str(&format!("Authorization: Basic {credentials}\r\n"));
        }
        Auth::Token(token) => head.push_str(&format!("Authorization: token {token}\r\n")),
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    if let Some(body) = body {
        stream.write_all(body).ok()?;
    }
    stream.flush().ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let rest = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some((status, body))
}

/// An answer's body as JSON: `Null` when empty, the text as a JSON string when it is not JSON.
fn body_json(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// An `id` that RT gives as a number (`GET /ticket/1`) or as a string (create answers,
/// collections).
fn id_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl RequestTracker {
    /// Creates a database in a new temp dir, starts `rt-server` on a free loopback port and
    /// waits until REST 2 answers `root`, then creates an auth token for `root`. Takes about
    /// 5 s (database 1.5–2 s, server 1.5 s, token 1 s); a port someone took meanwhile costs
    /// a few seconds more, as another is tried.
    pub fn start() -> Self {
        let server = rt_file(RT_SERVER);
        let setup = rt_file(RT_SETUP_DATABASE);
        let dir = tempfile::Builder::new()
            .prefix("firstline-rt")
            .tempdir()
            .expect("tempdir for RT");
        for sub in ["site.d", "mason_data", "session_data", "var"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir in RT's dir");
        }
        std::fs::write(
            dir.path().join("rt-admin.pl"),
            ADMIN_SCRIPT.replace("@RT_LIB@", RT_LIB),
        )
        .expect("write rt-admin.pl");
        let mut me = Self {
            dir,
            child: None,
            port: free_port(),
            root_token: String::new(),
        };
        me.write_site_config();
        let init_log = me.dir.path().join("init.log");
        let log = std::fs::File::create(&init_log).expect("create init.log");
        let status = me
            .rt_command(&setup)
            .args(["--action", "init"])
            .stdout(log.try_clone().expect("clone init.log"))
            .stderr(log)
            .status()
            .expect("run rt-setup-database-5");
        assert!(
            status.success(),
            "rt-setup-database-5 --action init failed ({status}): {}",
            log_tail(&init_log)
        );
        let mut attempt = 1;
        while !me.serve(&server) {
            assert!(
                attempt < PORT_ATTEMPTS,
                "rt-server found no free port in {PORT_ATTEMPTS} attempts: {}",
                log_tail(&me.log_path())
            );
            attempt += 1;
            me.port = free_port();
            me.write_site_config();
        }
        me.root_token = me.token_for("root");
        let (status, body) = me.send(&Auth::Token(&me.root_token), "GET", "/rt", &Value::Null);
        assert_eq!(status, 200, "root's auth token is refused: {body}");
        me
    }

    /// Writes RT_SiteConfig.pm for the current port (`WebPort` and `WebBaseURL` match it, as
    /// the `_url` fields of RT's answers are built from `WebBaseURL`).
    fn write_site_config(&self) {
        let dir = self.dir.path().display();
        let port = self.port;
        let config = format!(
            "Set($rtname, 'rt.test');
Set($Organization, 'rt.test');
Set($CorrespondAddress, 'rt@localhost');
Set($CommentAddress, 'rt-comment@localhost');
Set($Timezone, 'UTC');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{dir}/rt.db');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {port});
Set($WebPath, '');
Set($WebBaseURL, 'http://127.0.0.1:{port}');
Set($MasonDataDir, '{dir}/mason_data');
Set($MasonSessionDir, '{dir}/session_data');
Set($VarPath, '{dir}/var');
Set($LogToSyslog, undef);
Set($LogToSTDERR, 'warning');
Set($MailCommand, 'mbox');
1;
"
        );
        std::fs::write(self.dir.path().join("RT_SiteConfig.pm"), config)
            .expect("write RT_SiteConfig.pm");
    }

    /// A command for one of RT's programs with this instance's config: both variables, so the
    /// snippets in /etc/request-tracker5/RT_SiteConfig.d are not read.
    fn rt_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("RT_SITE_CONFIG", self.dir.path().join("RT_SiteConfig.pm"))
            .env("RT_SITE_CONFIG_DIR", self.dir.path().join("site.d"))
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `rt-server` on the current port and waits until REST 2 answers 200. False when
    /// the port was taken (the caller picks another); a panic with the log's end when the
    /// server died for another reason or did not answer in time.
    fn serve(&mut self, server: &Path) -> bool {
        let log = std::fs::File::create(self.log_path()).expect("create server.log");
        let child = self
            .rt_command(server)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--max-workers", "2"])
            .stdout(log.try_clone().expect("clone server.log"))
            .stderr(log)
            // Its own process group, so a server that ignores TERM is killed with its workers.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", server.display()));
        self.child = Some(child);
        let port = self.port;
        let log_path = self.log_path();
        let child = self.child.as_mut().expect("the child just spawned");
        let answered = wait_for("RT to answer GET /REST/2.0/rt as root", START_LIMIT, || {
            if let Some(status) = child.try_wait().expect("wait for rt-server") {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if log.contains("couldn't start up a web server on port") {
                    return Some(false);
                }
                panic!(
                    "rt-server exited ({status}) before answering: {}",
                    log_tail(&log_path)
                );
            }
            let auth = Auth::Basic {
                user: "root",
                password: ROOT_PASSWORD,
            };
            exchange(port, PROBE_TIMEOUT, &auth, "GET", "/REST/2.0/rt", None)
                .filter(|(status, _)| *status == 200)
                .map(|_| true)
        });
        if !answered {
            // It has exited already.
            self.child = None;
        }
        answered
    }

    /// Runs the Perl admin script with `args` and returns what it printed, trimmed.
    fn admin(&self, args: &[&str]) -> String {
        let out = self
            .rt_command(Path::new("perl"))
            .arg(self.dir.path().join("rt-admin.pl"))
            .args(args)
            .output()
            .expect("run perl");
        assert!(
            out.status.success(),
            "rt-admin.pl {args:?} failed ({}): {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), SHOWN_LOG_CHARS)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The server's log (its stdout and stderr; RT logs warnings and errors there).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where outgoing mail goes: one `<process start time>.mbox` file per server process.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("var")
    }

    /// `http://127.0.0.1:PORT`, RT's `WebBaseURL`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/REST/2.0`.
    pub fn rest_url(&self) -> String {
        format!("{}/REST/2.0", self.base_url())
    }

    /// `root`'s auth token (`Authorization: token ...`), made at start.
    pub fn root_token(&self) -> String {
        self.root_token.clone()
    }

    /// A request under `/REST/2.0` with `auth`; `Null` as the body sends none for GET and
    /// DELETE and `{}` otherwise (RT's take/untake/steal want a JSON content type even empty).
    fn send(&self, auth: &Auth<'_>, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let full = format!("/REST/2.0{path}");
        let bytes = match body {
            Value::Null if matches!(method, "GET" | "DELETE" | "HEAD") => None,
            Value::Null => Some(b"{}".to_vec()),
            body => Some(serde_json::to_vec(body).expect("serialise a JSON body")),
        };
        let (status, answer) = exchange(
            self.port,
            REQUEST_TIMEOUT,
            auth,
            method,
            &full,
            bytes.as_deref(),
        )
        .unwrap_or_else(|| panic!("no HTTP answer from RT to {method} {full}"));
        (status, body_json(&answer))
    }

    /// A request as `root`; panics unless RT answers `expected`.
    fn root(&self, method: &str, path: &str, body: Value, expected: u16) -> Value {
        let auth = Auth::Basic {
            user: "root",
            password: ROOT_PASSWORD,
        };
        let (status, answer) = self.send(&auth, method, path, &body);
        assert_eq!(
            status, expected,
            "RT answered {method} {path} {body} with {status}: {answer}"
        );
        answer
    }

    /// All items of a REST 2 collection at `path` (which has a query string), page by page.
    fn collection(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        for page in 1.. {
            let answer = self.root(
                "GET",
                &format!("{path}&per_page={PER_PAGE}&page={page}"),
                Value::Null,
                200,
            );
            let got = answer["items"]
                .as_array()
                .unwrap_or_else(|| panic!("no items in RT's answer to {path}: {answer}"));
            items.extend(got.iter().cloned());
            // `pages` is null when the user may not count everything; then a short page ends it.
            let more = answer.get("next_page").is_some()
                || (answer["pages"].is_null() && got.len() == PER_PAGE);
            if !more {
                break;
            }
        }
        items
    }

    /// Creates a queue named `name` and returns its id.
    pub fn create_queue(&self, name: &str) -> i64 {
        let answer = self.root(
            "POST",
            "/queue",
            json!({ "Name": name, "CorrespondAddress": format!("{}@localhost", name.to_lowercase()) }),
            201,
        );
        id_of(&answer["id"]).unwrap_or_else(|| panic!("no queue id in {answer}"))
    }

    /// Creates a privileged user `name` (mail `name@example.com`) with `password` (RT wants at
    /// least 5 characters). It has no rights yet: see [`grant_technician`](Self::grant_technician).
    pub fn create_user(&self, name: &str, password: &str) {
        self.root(
            "POST",
            "/user",
            json!({
                "Name": name,
                "EmailAddress": format!("{name}@example.com"),
                "Password": password,
                "Privileged": 1,
            }),
            201,
        );
    }

    /// Grants `user` the [`TECHNICIAN_RIGHTS`] on `queue` (a name): enough to see, take, steal,
    /// own, comment on, answer and resolve its tickets. The running server sees new rights at
    /// the next request.
    pub fn grant_technician(&self, user: &str, queue: &str) {
        self.grant_rights(user, queue, TECHNICIAN_RIGHTS);
    }

    /// Grants `user` each of `rights` (RT right names, e.g. `ShowTicket`) on `queue` (a name);
    /// rights the user has already are skipped. REST 2 in RT 5.0 has no endpoint for rights,
    /// so this runs `GrantRight` through RT's Perl API (about 1 s).
    pub fn grant_rights(&self, user: &str, queue: &str, rights: &[&str]) {
        let mut args = vec!["grant", user, queue];
        args.extend_from_slice(rights);
        self.admin(&args);
    }

    /// A new auth token for `user` (`Authorization: token ...`), made through RT's Perl API
    /// (about 1 s).
    pub fn token_for(&self, user: &str) -> String {
        let token = self.admin(&["token", user]);
        assert!(!token.is_empty(), "rt-admin.pl printed no token for {user}");
        token
    }

    /// Creates a ticket in `queue` as root, with `content` as its text/plain body; returns its id.
    pub fn create_ticket(&self, queue: &str, subject: &str, content: &str) -> i64 {
        let answer = self.root(
            "POST",
            "/ticket",
            json!({
                "Queue": queue,
                "Subject": subject,
                "Content": content,
                "ContentType": "text/plain",
            }),
            201,
        );
        id_of(&answer["id"]).unwrap_or_else(|| panic!("no ticket id in {answer}"))
    }

    /// `GET /ticket/ID` as root. `id` is a number here; `Owner`, `Creator` and `Queue` are
    /// objects like `{"id":"bob","type":"user","_url":...}` (`"Nobody"` when unowned, the
    /// queue's id as a string).
    pub fn ticket(&self, id: i64) -> Value {
        self.root("GET", &format!("/ticket/{id}"), Value::Null, 200)
    }

    /// The tickets matching `ticketsql`, all pages, with the fields Subject, Status, Owner,
    /// Priority, Queue and LastUpdated (besides `id`, a string here, `type` and `_url`).
    pub fn tickets(&self, ticketsql: &str) -> Vec<Value> {
        self.collection(&format!(
            "/tickets?query={}&fields=Subject,Status,Owner,Priority,Queue,LastUpdated&orderby=id",
            query_value(ticketsql)
        ))
    }

    /// Ticket `id`'s transactions, oldest first, with Type, Field, OldValue, NewValue, Creator
    /// (an object) and Created. An owner change is `Type` "Set", `Field` "Owner", with user
    /// *ids* as values (Nobody is "6"); a status change is `Type` "Status".
    pub fn history(&self, id: i64) -> Vec<Value> {
        self.collection(&format!(
            "/ticket/{id}/history?fields=Type,Field,OldValue,NewValue,Creator,Created&orderby=id"
        ))
    }

    /// The text of ticket `id`'s Create, Comment and Correspond transactions, oldest first: a
    /// transaction's text/plain parts, or its text/html parts when it has no plain one. Mail RT
    /// sent (EmailRecord transactions: autoreplies, notifications) is left out.
    pub fn transaction_contents(&self, id: i64) -> Vec<String> {
        let wanted: HashSet<i64> = self
            .collection(&format!("/ticket/{id}/history?fields=Type&orderby=id"))
            .iter()
            .filter(|t| {
                matches!(
                    t["Type"].as_str(),
                    Some("Create" | "Comment" | "Correspond")
                )
            })
            .filter_map(|t| id_of(&t["id"]))
            .collect();
        // In a collection RT gives `Content` as text; only `GET /attachment/N` base64-encodes it.
        let attachments = self.collection(&format!(
            "/ticket/{id}/attachments?fields=Content,ContentType,TransactionId&orderby=id"
        ));
        // Per transaction, in order: (attachment id, is plain, content).
        let mut parts: BTreeMap<i64, Vec<(i64, bool, String)>> = BTreeMap::new();
        for a in &attachments {
            let Some(transaction) = id_of(&a["TransactionId"]).filter(|t| wanted.contains(t))
            else {
                continue;
            };
            let content_type = a["ContentType"].as_str().unwrap_or_default();
            let content = a["Content"].as_str().unwrap_or_default();
            let plain = content_type.eq_ignore_ascii_case("text/plain");
            if content.is_empty() || !(plain || content_type.eq_ignore_ascii_case("text/html")) {
                continue;
            }
            parts.entry(transaction).or_default().push((
                id_of(&a["id"]).unwrap_or_default(),
                plain,
                content.to_owned(),
            ));
        }
        let mut texts = Vec::new();
        for mut found in parts.into_values() {
            found.sort_by_key(|(attachment, _, _)| *attachment);
            let any_plain = found.iter().any(|(_, plain, _)| *plain);
            texts.extend(
                found
                    .into_iter()
                    .filter(|(_, plain, _)| *plain == any_plain)
                    .map(|(_, _, content)| content),
            );
        }
        texts
    }

    /// One REST 2 request as `user` with basic auth: `path` is under `/REST/2.0` (e.g.
    /// `/ticket/1`), `body` is sent as JSON (`Null`: none for GET and DELETE, `{}` otherwise).
    /// Returns the status and the body as JSON (`Null` when empty). Beware: RT answers 200 to a
    /// `PUT /ticket/ID` it refused in part, with the reason in the message list (e.g.
    /// `["Ticket 2: You can only take tickets that are unowned"]`); 403 only when the user may
    /// not touch the ticket at all, 401 for a wrong password.
    pub fn act_as(
        &self,
        user: &str,
        password: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        self.send(&Auth::Basic { user, password }, method, path, &body)
    }

    /// Stops the server: TERM (its Starlet parent stops the workers; 0.3 s measured, up to 2 s in
    /// REQUEST-TRACKER.md), then a
    /// KILL to the whole process group if it has not exited after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let start = Instant::now();
        while start.elapsed() < STOP_LIMIT {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"root:password"), "cm9vdDpwYXNzd29yZA==");
    }

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(
            query_value("Queue = 'E2E' AND Status = 'resolved'"),
            "Queue%20%3D%20%27E2E%27%20AND%20Status%20%3D%20%27resolved%27"
        );
        assert_eq!(query_value("é-_.~"), "%C3%A9-_.~");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n").as_deref(),
            Some(&b"Wikipedia "[..])
        );
        assert_eq!(dechunk(b"4\r\nWi"), None);
    }
}
