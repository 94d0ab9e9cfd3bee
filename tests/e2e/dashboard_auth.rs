//! Users and sign-in over HTTP against an in-process collector (docs/dashboard.md): the
//! session cookie's attributes, CSRF on writes, roles enforced by the server, per-user API
//! tokens naming their user, disabled users locked out, logout, and the bound on failed
//! sign-ins.

use std::time::Duration;

use firstline_collector::clock::now_ms;
use firstline_collector::service::{Role, Users};
use firstline_tests::inproc::InProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse 42";

/// An HTTP answer: status, headers (names lower-case) and the JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The session cookie value of a `Set-Cookie`.
    fn session(&self) -> String {
        let cookie = self.header("set-cookie").expect("set-cookie");
        cookie
            .split(';')
            .next()
            .and_then(|c| c.strip_prefix("firstline_session="))
            .expect("firstline_session cookie")
            .to_owned()
    }
}

/// Credentials of one request.
#[derive(Debug, Clone, Default)]
struct Cred {
    bearer: Option<String>,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Cred {
    fn bearer(token: &str) -> Self {
        Self {
            bearer: Some(token.to_owned()),
            ..Self::default()
        }
    }

    fn session(cookie: &str, csrf: Option<&str>) -> Self {
        Self {
            cookie: Some(cookie.to_owned()),
            csrf: csrf.map(str::to_owned),
            ..Self::default()
        }
    }
}

/// One HTTP/1.1 request with `Content-Type: application/json` unless `content_type` says else.
async fn call_as(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cred: &Cred,
    body: Option<&str>,
    content_type: &str,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut extra = String::new();
    if let Some(b) = &cred.bearer {
        extra.push_str(&format!("Authorization: Bearer {b}\r\n"));
    }
    if let Some(c) = &cred.cookie {
        extra.push_str(&format!("Cookie: theme=dark; firstline_session={c}\r\n"));
    }
    if let Some(t) = &cred.csrf {
        extra.push_str(&format!("X-CSRF-Token: {t}\r\n"));
    }
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned())),
    }
}

async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cred: &Cred,
    body: Option<&str>,
) -> Answer {
    call_as(addr, method, path, cred, body, "application/json").await
}

async fn login(addr: std::net::SocketAddr, name: &str, password: &str) -> Answer {
    let body = json!({"name": name, "password": password}).to_string();
    call(addr, "POST", "/api/session", &Cred::default(), Some(&body)).await
}

/// Signs in; returns the cookie value and the CSRF token.
async fn sign_in(addr: std::net::SocketAddr, name: &str) -> (String, String) {
    let a = login(addr, name, PASSWORD).await;
    assert_eq!(a.status, 200, "{name}: {}", a.body);
    let csrf = a.body["csrf"].as_str().expect("csrf").to_owned();
    (a.session(), csrf)
}

fn timeline(detail: &Value) -> Vec<(String, String)> {
    detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn assert_error(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    assert!(
        a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: the error is JSON with a message: {}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_csrf_roles_and_tokens_are_enforced_by_the_server() {
    let (c, http) = InProcess::start_with_http().await;
    let key = std::fs::read_to_string(c.data_dir.join("api.key")).expect("api.key");
    let machine = Cred::bearer(key.trim());
    c.report_disk("pc-1", 93).await;
    let users = Users::new(c.store.clone());
    let now = now_ms();
    users
        .add("tess", Role::Technician, PASSWORD, now)
        .await
        .expect("technician");
    users
        .add("vic", Role::Viewer, PASSWORD, now)
        .await
        .expect("viewer");

    // No credentials: 401 JSON, for reads and writes alike.
    let none = Cred::default();
    assert_error(
        &call(http, "GET", "/api/tickets", &none, None).await,
        401,
        "no credentials",
    );
    assert_error(
        &call(http, "GET", "/api/session", &none, None).await,
        401,
        "no session",
    );

    // Unknown user and wrong password: the same 401 and message.
    let wrong = login(http, "tess", "not the password").await;
    let unknown = login(http, "nobody", PASSWORD).await;
    assert_error(&wrong, 401, "wrong password");
    assert_error(&unknown, 401, "unknown user");
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.header("set-cookie").is_none());
    // A cross-site form cannot sign in: the login needs a JSON body.
    let form = call_as(
        http,
        "POST",
        "/api/session",
        &none,
        Some("name=tess&password=x"),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_error(&form, 415, "form login");

    // Sign-in sets an HttpOnly, SameSite=Strict cookie and answers name, role, csrf.
    let signed = login(http, "tess", PASSWORD).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let cookie = signed.header("set-cookie").expect("set-cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not asked for: {cookie}");
    assert_eq!(signed.body["name"], "tess");
    assert_eq!(signed.body["role"], "technician");
    let tess_csrf = signed.body["csrf"].as_str().expect("csrf").to_owned();
    let tess = signed.session();

    // Reads with the cookie work.
    let no_csrf = Cred::session(&tess, None);
    let tickets = call(http, "GET", "/api/tickets?state=open", &no_csrf, None).await;
    assert_eq!(tickets.status, 200, "{}", tickets.body);
    let id = tickets.body[0]["id"].as_i64().expect("ticket id");
    let me = call(http, "GET", "/api/session", &no_csrf, None).await;
    assert_eq!(
        (me.status, &me.body["name"], &me.body["csrf"]),
        (200, &json!("tess"), &json!(tess_csrf))
    );
    let ticket_path = format!("/api/tickets/{id}");
    let actions = format!("/api/tickets/{id}/actions");
    let before = call(http, "GET", &ticket_path, &no_csrf, None).await.body;

    // A write with the cookie but without (or with a wrong) CSRF token: 403, nothing changed.
    let ack = Some(r#"{"action":"acknowledge"}"#);
    assert_error(
        &call(http, "POST", &actions, &no_csrf, ack).await,
        403,
        "no csrf",
    );
    let forged = Cred::session(&tess, Some("0123456789abcdef"));
    assert_error(
        &call(http, "POST", &actions, &forged, ack).await,
        403,
        "wrong csrf",
    );
    let unchanged = call(http, "GET", &ticket_path, &no_csrf, None).await.body;
    assert_eq!(timeline(&unchanged), timeline(&before));
    assert_eq!(unchanged["ticket"]["state"], before["ticket"]["state"]);

    // With it: done, and the timeline names the user.
    let tess_cred = Cred::session(&tess, Some(&tess_csrf));
    let acked = call(http, "POST", &actions, &tess_cred, ack).await;
    assert_eq!(acked.status, 200, "{}", acked.body);
    assert_eq!(acked.body["ticket"]["state"], "acknowledged");
    assert!(
        timeline(&acked.body).contains(&("acknowledged".into(), "tess".into())),
        "{}",
        acked.body
    );
    let after_ack = timeline(&acked.body);

    // A viewer reads but may not act: 403 from the server, the ticket unchanged.
    let (vic, vic_csrf) = sign_in(http, "vic").await;
    let vic_cred = Cred::session(&vic, Some(&vic_csrf));
    assert_eq!(
        call(http, "GET", &ticket_path, &vic_cred, None)
            .await
            .status,
        200
    );
    let comment = Some(r#"{"action":"comment","text":"looking"}"#);
    assert_error(
        &call(http, "POST", &actions, &vic_cred, comment).await,
        403,
        "viewer comments",
    );
    assert_error(
        &call(http, "GET", "/api/users", &vic_cred, None).await,
        403,
        "viewer lists users",
    );
    assert_error(
        &call(http, "GET", "/api/users", &tess_cred, None).await,
        403,
        "technician lists users",
    );
    let still = call(http, "GET", &ticket_path, &vic_cred, None).await.body;
    assert_eq!(timeline(&still), after_ack);

    // Per-user API tokens: bearer requests need no CSRF token and name their user.
    let tess_token = users
        .create_token("tess", "script", now_ms())
        .await
        .expect("token");
    let tess_bearer = Cred::bearer(&tess_token.token);
    let commented = call(http, "POST", &actions, &tess_bearer, comment).await;
    assert_eq!(commented.status, 200, "{}", commented.body);
    assert!(
        timeline(&commented.body).contains(&("comment".into(), "tess".into())),
        "{}",
        commented.body
    );
    let vic_token = users
        .create_token("vic", "", now_ms())
        .await
        .expect("token")
        .token;
    let vic_bearer = Cred::bearer(&vic_token);
    assert_eq!(
        call(http, "GET", "/api/hosts", &vic_bearer, None)
            .await
            .status,
        200
    );
    assert_error(
        &call(http, "POST", &actions, &vic_bearer, comment).await,
        403,
        "viewer token acts",
    );
    assert_error(
        &call(http, "GET", "/api/tickets", &Cred::bearer("flu_nope"), None).await,
        401,
        "unknown token",
    );

    // The machine's api.key is the built-in admin local-admin: it adds an admin.
    let ada = json!({"name": "ada", "role": "admin", "password": PASSWORD}).to_string();
    let added = call(http, "POST", "/api/users", &machine, Some(&ada)).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["role"], "admin");
    let short = json!({"name": "bob", "role": "viewer", "password": "short"}).to_string();
    assert_error(
        &call(http, "POST", "/api/users", &machine, Some(&short)).await,
        400,
        "short password",
    );
    let listed = call(http, "GET", "/api/users", &machine, None).await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.body
    );

    // An admin's session disables the viewer: their session and token stop working.
    let (ada_cookie, ada_csrf) = sign_in(http, "ada").await;
    let ada_cred = Cred::session(&ada_cookie, Some(&ada_csrf));
    let disabled = call(http, "POST", "/api/users/vic/disable", &ada_cred, None).await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["disabled"], true);
    assert_error(
        &call(http, "GET", "/api/tickets", &vic_cred, None).await,
        401,
        "disabled user's session",
    );
    assert_error(
        &call(http, "GET", "/api/tickets", &vic_bearer, None).await,
        401,
        "disabled user's token",
    );
    assert_error(
        &login(http, "vic", PASSWORD).await,
        401,
        "disabled user signs in",
    );

    // Enrollment tokens are the admin's.
    let created = call(
        http,
        "POST",
        "/api/tokens",
        &ada_cred,
        Some(r#"{"uses":2,"ttl":"1h","label":"lab"}"#),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created.body["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("flt_"))
    );
    let tokens = call(http, "GET", "/api/tokens", &ada_cred, None).await;
    assert!(
        tokens.body.as_array().is_some_and(|l| l
            .iter()
            .any(|t| t["label"] == "lab" && t["state"] == "valid")),
        "{}",
        tokens.body
    );
    assert_error(
        &call(http, "GET", "/api/tokens", &tess_cred, None).await,
        403,
        "technician lists enrollment tokens",
    );

    // Logout needs the CSRF token, then the cookie is worthless.
    assert_error(
        &call(http, "DELETE", "/api/session", &no_csrf, None).await,
        403,
        "logout without csrf",
    );
    let out = call(http, "DELETE", "/api/session", &tess_cred, None).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_error(
        &call(http, "GET", "/api/tickets", &tess_cred, None).await,
        401,
        "after logout",
    );
    // The API token outlives the session.
    assert_eq!(
        call(http, "GET", "/api/tickets", &tess_bearer, None)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failed_sign_ins_are_refused_for_a_while() {
    let (c, http) =
        InProcess::start_with_http_configured(|config| config.http_secure_cookies = true).await;
    Users::new(c.store.clone())
        .add("rita", Role::Viewer, PASSWORD, now_ms())
        .await
        .expect("user");
    for i in 0..5 {
        assert_error(
            &login(http, "rita", &format!("guess {i} wrong")).await,
            401,
            "failure",
        );
    }
    let limited = login(http, "rita", PASSWORD).await;
    assert_error(&limited, 429, "sixth attempt");
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=300).contains(&wait), "{wait}");
    // Other names are not held up; behind HTTPS the cookie is Secure.
    Users::new(c.store.clone())
        .add("sam", Role::Viewer, PASSWORD, now_ms())
        .await
        .expect("user");
    let ok = login(http, "sam", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        ok.header("set-cookie")
            .is_some_and(|c| c.contains("; Secure"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_admin_is_made_on_the_command_line() {
    let (c, http) = InProcess::start_with_http().await;
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(firstline_tests::bins::collector())
            .arg("--data-dir")
            .arg(&c.data_dir)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the CLI");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("CLI output")
    };
    let added = run(
        &[
            "user",
            "add",
            "root.admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let short = run(
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
    let no_tty = run(&["user", "add", "bob", "--role", "viewer"], "");
    assert!(
        String::from_utf8_lossy(&no_tty.stderr).contains("--password-stdin"),
        "{}",
        String::from_utf8_lossy(&no_tty.stderr)
    );
    let token = run(&["user", "token", "root.admin", "--label", "ci"], "");
    assert!(token.status.success());
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let me = call(http, "GET", "/api/session", &Cred::bearer(&token), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["name"], "root.admin");
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["csrf"], Value::Null);
    let list = run(&["user", "list", "--json"], "");
    let list: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(list[0]["name"], "root.admin");
    let disabled = run(&["user", "disable", "root.admin"], "");
    assert!(disabled.status.success());
    let refused = call(http, "GET", "/api/session", &Cred::bearer(&token), None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
}
