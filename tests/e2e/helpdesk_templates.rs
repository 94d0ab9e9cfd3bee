//! The shipped help-desk and chat templates against local receivers that answer as each
//! system's public API documents (and refuse, with that system's error shape, a request that
//! lacks what the API requires): Jira Service Management, ServiceNow, Zammad, GLPI,
//! Freshservice, Slack's Web API, Mattermost's and Rocket.Chat's REST APIs, Slack-format
//! incoming webhooks and a Teams workflow. One
//! ticket is opened, commented, resolved and reopened; each system gets its calls in order,
//! with the id its create call answered in the later ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use firstline_collector::clock::now_ms;
use firstline_collector::helpdesk::config::{HelpdeskConfig, RawHelpdesk};
use firstline_collector::tickets::TicketAction;
use firstline_tests::inproc::InProcess;
use firstline_tests::wait_until;
use firstline_tests::webhook_receiver::{Received, Receiver};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
const SECRET: &str = "s3cret-token";
const GLPI_SESSION: &str = "83af7e620c83a50a18d3eac2f6ed05a3ca0bea62";
const SN_SYS_ID: &str = "9d385017c611228701d22104cc95c371";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn bad(status: u16, body: Value) -> (u16, String) {
    (status, body.to_string())
}

fn is_str(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// `%XX` and `+` decoded.
fn decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of query parameter `name`, decoded.
fn query_param(path: &str, name: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decoded(v))
}

/// What the receiver does once: the first Jira create answers 503 (so the next attempt
/// searches for the key first), and a GLPI follow-up finds its session ended.
#[derive(Default)]
struct Once {
    glpi_session_ended: AtomicBool,
    jira_create_failed: AtomicBool,
}

/// Answers like the systems' documented APIs do.
fn answer(r: &Received, once: &Once) -> (u16, String) {
    let glpi_session_ended = &once.glpi_session_ended;
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let path = r.path.split('?').next().unwrap_or_default();
    let auth = r.header("authorization").unwrap_or_default().to_owned();
    if let Some(rest) = path.strip_prefix("/jira") {
        if auth != basic("ops@example.com", SECRET) {
            return bad(401, json!({ "errorMessage": "unauthorized" }));
        }
        return match (r.method.as_str(), rest) {
            // JQL as Jira parses it: a phrase search for the key in the summary.
            ("GET", "/rest/api/3/search/jql") => match query_param(&r.path, "jql") {
                Some(jql)
                    if jql.starts_with("summary ~ \"\\\"[firstline #") && jql.ends_with("]\\\"\"") =>
                {
                    (200, json!({ "issues": [], "isLast": true }).to_string())
                }
                other => bad(400, json!({ "errorMessages": [format!("Error in the JQL Query: {other:?}")] })),
            },
            ("POST", "/rest/servicedeskapi/request") if !once.jira_create_failed.swap(true, Ordering::SeqCst) => {
                (503, json!({ "errorMessage": "Service Unavailable" }).to_string())
            }
            ("POST", "/rest/servicedeskapi/request")
                if is_str(&body, "/serviceDeskId")
                    && is_str(&body, "/requestTypeId")
                    && is_str(&body, "/requestFieldValues/summary")
                    && is_str(&body, "/requestFieldValues/description") =>
            {
                (
                    201,
                    json!({ "issueId": "10010", "issueKey": "OPS-7", "requestTypeId": "25", "serviceDeskId": "10" })
                        .to_string(),
                )
            }
            ("POST", "/rest/servicedeskapi/request/OPS-7/comment")
                if is_str(&body, "/body") && body["public"].is_boolean() =>
            {
                (201, json!({ "id": "1000", "body": body["body"], "public": body["public"] }).to_string())
            }
            ("POST", "/rest/servicedeskapi/request/OPS-7/transition")
                if is_str(&body, "/id") && is_str(&body, "/additionalComment/body") =>
            {
                (204, String::new())
            }
            _ => bad(400, json!({ "errorMessage": format!("bad request {} {rest}", r.method) })),
        };
    }
    if let Some(rest) = path.strip_prefix("/servicenow") {
        if auth != basic("firstline", SECRET) {
            return bad(
                401,
                json!({ "error": { "message": "User Not Authenticated" }, "status": "failure" }),
            );
        }
        let incident = format!("/api/now/table/incident/{SN_SYS_ID}");
        // The Table API takes field values as strings.
        let all_strings = body
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_string));
        return match (r.method.as_str(), rest) {
            ("GET", "/api/now/table/incident") => (200, json!({ "result": [] }).to_string()),
            ("POST", "/api/now/table/incident")
                if all_strings && is_str(&body, "/short_description") && is_str(&body, "/correlation_id") =>
            {
                (
                    201,
                    json!({ "result": { "sys_id": SN_SYS_ID, "number": "INC0010002", "short_description": body["short_description"] } })
                        .to_string(),
                )
            }
            ("PATCH", p) if p == incident && all_strings => {
                (200, json!({ "result": { "sys_id": SN_SYS_ID, "number": "INC0010002" } }).to_string())
            }
            _ => bad(400, json!({ "error": { "message": "Invalid request" }, "status": "failure" })),
        };
    }
    if let Some(rest) = path.strip_prefix("/zammad") {
        if auth != format!("Token token={SECRET}") {
            return bad(401, json!({ "error": "authentication failed" }));
        }
        return match (r.method.as_str(), rest) {
            ("GET", "/api/v1/tickets/search") => (200, "[]".to_owned()),
            ("POST", "/api/v1/tickets")
                if is_str(&body, "/title")
                    && is_str(&body, "/group")
                    && is_str(&body, "/customer")
                    && is_str(&body, "/article/body")
                    && body["article"]["internal"].is_boolean() =>
            {
                (
                    201,
                    json!({ "id": 19, "number": "31001", "title": body["title"] }).to_string(),
                )
            }
            ("POST", "/api/v1/ticket_articles")
                if body["ticket_id"] == json!(19)
                    && is_str(&body, "/body")
                    && body["type"] == "note" =>
            {
                (201, json!({ "id": 55, "ticket_id": 19 }).to_string())
            }
            ("PUT", "/api/v1/tickets/19") if is_str(&body, "/state") => {
                (200, json!({ "id": 19, "state": body["state"] }).to_string())
            }
            _ => bad(422, json!({ "error": "unprocessable" })),
        };
    }
    if let Some(rest) = path.strip_prefix("/glpi/apirest.php") {
        if rest == "/initSession" {
            return if r.method == "GET" && auth == format!("user_token {SECRET}") {
                (200, json!({ "session_token": GLPI_SESSION }).to_string())
            } else {
                bad(
                    401,
                    json!([
                        "ERROR_GLPI_LOGIN_USER_TOKEN",
                        "parameter user_token seems invalid"
                    ]),
                )
            };
        }
        if r.header("session-token") != Some(GLPI_SESSION) {
            return bad(
                401,
                json!(["ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid"]),
            );
        }
        let input = &body["input"];
        return match (r.method.as_str(), rest) {
            ("POST", "/Ticket") if is_str(input, "/name") && is_str(input, "/content") => {
                (201, json!({ "id": 15, "message": "" }).to_string())
            }
            ("POST", "/Ticket/15/ITILFollowup")
                if input["itemtype"] == "Ticket"
                    && input["items_id"] == json!(15)
                    && is_str(input, "/content") =>
            {
                // The session ends once, as GLPI's do: the next call must open a new one.
                if !glpi_session_ended.swap(true, Ordering::SeqCst) {
                    return bad(
                        401,
                        json!(["ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid"]),
                    );
                }
                (201, json!({ "id": 3, "message": "" }).to_string())
            }
            ("PUT", "/Ticket/15") if input["status"].is_u64() => {
                (200, json!([{ "15": true, "message": "" }]).to_string())
            }
            _ => bad(
                400,
                json!([
                    "ERROR_BAD_ARRAY",
                    "input parameter must be an array of objects"
                ]),
            ),
        };
    }
    if let Some(rest) = path.strip_prefix("/freshservice") {
        if auth != basic(SECRET, "X") {
            return bad(
                401,
                json!({ "code": "invalid_credentials", "message": "You have to be logged in to perform this action." }),
            );
        }
        return match (r.method.as_str(), rest) {
            ("POST", "/api/v2/tickets")
                if is_str(&body, "/subject")
                    && is_str(&body, "/description")
                    && is_str(&body, "/email")
                    && (1..=4).contains(&body["priority"].as_u64().unwrap_or(0))
                    && body["status"].is_u64() =>
            {
                (
                    201,
                    json!({ "ticket": { "id": 42, "subject": body["subject"] } }).to_string(),
                )
            }
            ("POST", "/api/v2/tickets/42/notes")
                if is_str(&body, "/body") && body["private"] == true =>
            {
                (
                    201,
                    json!({ "conversation": { "id": 7, "body": body["body"] } }).to_string(),
                )
            }
            ("PUT", "/api/v2/tickets/42")
                if body["status"].is_u64() || body["priority"].is_u64() =>
            {
                (200, json!({ "ticket": { "id": 42 } }).to_string())
            }
            _ => bad(
                400,
                json!({ "description": "Validation failed", "errors": [{ "field": "?", "message": "invalid", "code": "invalid_value" }] }),
            ),
        };
    }
    if let Some(method) = path.strip_prefix("/slack/api/") {
        if auth != format!("Bearer {SECRET}") {
            return (
                200,
                json!({ "ok": false, "error": "invalid_auth" }).to_string(),
            );
        }
        if body["channel"] != "C0123ABC" {
            return (
                200,
                json!({ "ok": false, "error": "channel_not_found" }).to_string(),
            );
        }
        return match method {
            "chat.postMessage" if is_str(&body, "/text") => (
                200,
                json!({ "ok": true, "channel": "C0123ABC", "ts": if body["thread_ts"].is_string() { "1503435957.000300" } else { "1503435956.000247" } })
                    .to_string(),
            ),
            "chat.update" if body["ts"] == "1503435956.000247" && is_str(&body, "/text") => {
                (200, json!({ "ok": true, "channel": "C0123ABC", "ts": body["ts"] }).to_string())
            }
            "chat.update" => (200, json!({ "ok": false, "error": "message_not_found" }).to_string()),
            _ => (200, json!({ "ok": false, "error": "invalid_arguments" }).to_string()),
        };
    }
    if let Some(rest) = path.strip_prefix("/mattermost/api/v4") {
        if auth != format!("Bearer {SECRET}") {
            return bad(
                401,
                json!({ "id": "api.context.session_expired.app_error", "status_code": 401 }),
            );
        }
        let post = "kpeoxh3ksfg9pnsuayw9kyi6se";
        return match (r.method.as_str(), rest) {
            ("POST", "/posts")
                if body["channel_id"] == "chan-ops"
                    && is_str(&body, "/message")
                    && (body.get("root_id").is_none() || body["root_id"] == post) =>
            {
                let id = if body.get("root_id").is_some() {
                    "reply0000000000000000000000"
                } else {
                    post
                };
                (
                    201,
                    json!({ "id": id, "channel_id": "chan-ops", "message": body["message"] })
                        .to_string(),
                )
            }
            ("PUT", p) if p == format!("/posts/{post}/patch") && is_str(&body, "/message") => (
                200,
                json!({ "id": post, "message": body["message"] }).to_string(),
            ),
            _ => bad(
                400,
                json!({ "id": "api.context.invalid_body_param.app_error", "status_code": 400 }),
            ),
        };
    }
    if let Some(rest) = path.strip_prefix("/rocketchat/api/v1") {
        if r.header("x-auth-token") != Some(SECRET) || r.header("x-user-id") != Some("bot-user-id")
        {
            return bad(
                401,
                json!({ "status": "error", "message": "You must be logged in to do this." }),
            );
        }
        let msg = "7aDSXtjMA3KPLxLjt";
        return match rest {
            "/chat.postMessage" if body["roomId"] == "room-ops" && is_str(&body, "/text") => (
                200,
                json!({ "ts": 1_481_748_965_123_i64, "channel": "room-ops", "message": { "_id": msg, "rid": "room-ops", "msg": body["text"] }, "success": true })
                    .to_string(),
            ),
            "/chat.update" if body["roomId"] == "room-ops" && body["msgId"] == msg && is_str(&body, "/text") => {
                (200, json!({ "message": { "_id": msg }, "success": true }).to_string())
            }
            "/chat.sendMessage"
                if body["message"]["rid"] == "room-ops" && body["message"]["tmid"] == msg && is_str(&body, "/message/msg") =>
            {
                (200, json!({ "message": { "_id": "reply", "tmid": msg }, "success": true }).to_string())
            }
            _ => (400, json!({ "success": false, "error": "error-invalid-params" }).to_string()),
        };
    }
    if path == format!("/hooks/slack/{SECRET}") {
        return if is_str(&body, "/text") {
            (200, "ok".to_owned())
        } else {
            (400, "invalid_payload".to_owned())
        };
    }
    if path == format!("/hooks/teams/{SECRET}") {
        let card = &body["attachments"][0];
        return if body["type"] == "message"
            && card["contentType"] == "application/vnd.microsoft.card.adaptive"
            && card["content"]["type"] == "AdaptiveCard"
            && card["content"]["body"]
                .as_array()
                .is_some_and(|b| !b.is_empty())
        {
            (202, String::new())
        } else {
            (
                400,
                json!({ "error": { "code": "InvalidRequestContent" } }).to_string(),
            )
        };
    }
    (404, "no such receiver".to_owned())
}

fn config(receiver: &Receiver) -> HelpdeskConfig {
    let base = |p: &str| receiver.url(p);
    let common = "correlated_hold = \"0s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n";
    let text = format!(
        "[[webhook]]\nname = \"jira\"\ntemplate = \"jira-sm\"\nurl = {jira:?}\nuser = \"ops@example.com\"\nsecret = {SECRET:?}\n{common}\
         [webhook.settings]\nservice_desk_id = \"10\"\nrequest_type_id = \"25\"\nresolve_transition = \"761\"\nreopen_transition = \"771\"\n\
         [[webhook]]\nname = \"servicenow\"\ntemplate = \"servicenow\"\nurl = {sn:?}\nuser = \"firstline\"\nsecret = {SECRET:?}\n{common}\
         [[webhook]]\nname = \"zammad\"\ntemplate = \"zammad\"\nurl = {zammad:?}\nsecret = {SECRET:?}\n{common}\
         [webhook.settings]\ncustomer = \"it@example.com\"\n\
         [[webhook]]\nname = \"glpi\"\ntemplate = \"glpi\"\nurl = {glpi:?}\nsecret = {SECRET:?}\n{common}\
         [[webhook]]\nname = \"freshservice\"\ntemplate = \"freshservice\"\nurl = {fresh:?}\nsecret = {SECRET:?}\n{common}\
         [webhook.settings]\nrequester_email = \"it@example.com\"\n\
         [[webhook]]\nname = \"slack\"\ntemplate = \"slack\"\nsecret = {SECRET:?}\n{common}\
         [webhook.settings]\nchannel = \"C0123ABC\"\napi_url = {slack:?}\n\
         [[webhook]]\nname = \"mattermost\"\ntemplate = \"mattermost\"\nurl = {mm:?}\nsecret = {SECRET:?}\n{common}\
         [webhook.settings]\nchannel_id = \"chan-ops\"\n\
         [[webhook]]\nname = \"rocketchat\"\ntemplate = \"rocketchat\"\nurl = {rc:?}\nuser = \"bot-user-id\"\nsecret = {SECRET:?}\n{common}\
         [webhook.settings]\nroom_id = \"room-ops\"\n\
         [[webhook]]\nname = \"chat\"\ntemplate = \"slack-webhook\"\nsecret = {hook:?}\n{common}\
         [[webhook]]\nname = \"teams\"\ntemplate = \"teams\"\nsecret = {teams:?}\n{common}",
        jira = base("/jira"),
        sn = base("/servicenow"),
        zammad = base("/zammad"),
        glpi = base("/glpi"),
        fresh = base("/freshservice"),
        slack = base("/slack/api"),
        mm = base("/mattermost"),
        rc = base("/rocketchat"),
        hook = base(&format!("/hooks/slack/{SECRET}")),
        teams = base(&format!("/hooks/teams/{SECRET}")),
    );
    let raw: RawHelpdesk = toml::from_str(&text).expect("valid toml");
    let mut problems = Vec::new();
    let config = HelpdeskConfig::from_raw(raw, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(config.webhooks.len(), 10);
    config
}

/// `(method, path without query)` of the requests to one system, in order.
fn calls(receiver: &Receiver, prefix: &str) -> Vec<(String, String, u16)> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .map(|r| {
            let path = r.path.split('?').next().unwrap_or_default().to_owned();
            (r.method, path, r.status)
        })
        .collect()
}

fn bodies(receiver: &Receiver, prefix: &str) -> Vec<Value> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(prefix) && !r.body.is_empty())
        .map(|r| r.json())
        .collect()
}

#[test]
fn every_shipped_template_creates_comments_resolves_and_reopens_as_its_api_documents() {
    let once = Arc::new(Once::default());
    let flag = once.clone();
    let receiver = Receiver::start_answering(move |r| answer(r, &flag));
    let helpdesk = config(&receiver);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let collector = runtime.block_on(InProcess::start_configured(|c| c.helpdesk = helpdesk));
    let sla = firstline_collector::config::Config::default().engine.sla;
    runtime.block_on(collector.report_disk("pc-tpl-1", 93));
    let id = wait_until(
        "the ticket",
        LIMIT,
        || {
            runtime
                .block_on(collector.store.list_tickets(&Default::default()))
                .expect("tickets")
        },
        |t| !t.is_empty(),
    )[0]
    .id;
    let creates = [
        "/jira/rest/servicedeskapi/request",
        "/servicenow/api/now/table/incident",
        "/zammad/api/v1/tickets",
        "/glpi/apirest.php/Ticket",
        "/freshservice/api/v2/tickets",
        "/slack/api/chat.postMessage",
        "/mattermost/api/v4/posts",
        "/rocketchat/api/v1/chat.postMessage",
        "/hooks/slack/",
        "/hooks/teams/",
    ];
    let created = |receiver: &Receiver| {
        let accepted = receiver.accepted();
        creates
            .iter()
            .filter(|p| {
                accepted
                    .iter()
                    .any(|r| r.method == "POST" && r.path.starts_with(*p))
            })
            .count()
    };
    wait_until(
        "every create",
        LIMIT,
        || created(&receiver),
        |n| *n == creates.len(),
    );

    let act = |action: TicketAction| {
        runtime.block_on(async {
            let mut tx = collector.store.begin_write().await.expect("tx");
            tx.ticket_action(id, &action, "alice", now_ms(), &sla)
                .await
                .expect("action");
            tx.commit().await.expect("commit");
        });
    };
    act(TicketAction::Comment(
        "Looking at it from the office".into(),
    ));
    act(TicketAction::Resolve("Cleaned /var/log".into()));
    act(TicketAction::Reopen("It filled up again".into()));

    // Reopen is the last call each system gets.
    wait_until(
        "every system to get the reopen",
        LIMIT,
        || {
            (
                calls(&receiver, "/jira").len(),
                calls(&receiver, "/servicenow").len(),
                calls(&receiver, "/zammad").len(),
                calls(&receiver, "/glpi").len(),
                calls(&receiver, "/freshservice").len(),
                calls(&receiver, "/slack/api").len(),
                calls(&receiver, "/hooks/slack").len(),
                calls(&receiver, "/hooks/teams").len(),
                calls(&receiver, "/mattermost").len(),
                calls(&receiver, "/rocketchat").len(),
            )
        },
        |n| *n == (6, 4, 4, 9, 6, 7, 3, 3, 7, 7),
    );

    let ok = |c: &[(String, String, u16)]| c.iter().all(|(_, _, s)| (200..300).contains(s));
    let paths = |c: Vec<(String, String, u16)>| {
        c.into_iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect::<Vec<_>>()
    };

    // Jira SM: the request's key is its id in the later calls.
    // The first create answered 503: the retry searched for the key, found none, created.
    let jira = calls(&receiver, "/jira");
    assert_eq!(jira[0].2, 503);
    assert!(ok(&jira[1..]), "{jira:?}");
    assert_eq!(
        paths(jira),
        [
            "POST /jira/rest/servicedeskapi/request",
            "GET /jira/rest/api/3/search/jql",
            "POST /jira/rest/servicedeskapi/request",
            "POST /jira/rest/servicedeskapi/request/OPS-7/comment",
            "POST /jira/rest/servicedeskapi/request/OPS-7/transition",
            "POST /jira/rest/servicedeskapi/request/OPS-7/transition",
        ]
    );
    let b = bodies(&receiver, "/jira")[1..].to_vec();
    assert!(
        b[0]["requestFieldValues"]["summary"]
            .as_str()
            .expect("valid")
            .contains("[firstline #"),
        "{}",
        b[0]
    );
    assert!(
        b[0]["requestFieldValues"]["description"]
            .as_str()
            .expect("valid")
            .contains("pc-tpl-1"),
        "{}",
        b[0]
    );
    assert!(
        b[1]["body"]
            .as_str()
            .expect("valid")
            .contains("Looking at it from the office"),
        "{}",
        b[1]
    );
    assert_eq!(b[1]["public"], false);
    assert_eq!(
        (b[2]["id"].as_str(), b[3]["id"].as_str()),
        (Some("761"), Some("771"))
    );

    // ServiceNow: the key in correlation_id, work notes, state 6 with a close code, state 2.
    let sn = calls(&receiver, "/servicenow");
    assert!(ok(&sn), "{sn:?}");
    let b = bodies(&receiver, "/servicenow");
    assert!(
        b[0]["correlation_id"]
            .as_str()
            .expect("valid")
            .starts_with("[firstline #"),
        "{}",
        b[0]
    );
    assert_eq!(b[0]["urgency"], "1", "P2 is urgency 1: {}", b[0]);
    assert!(
        b[1]["work_notes"]
            .as_str()
            .expect("valid")
            .contains("Looking at it"),
        "{}",
        b[1]
    );
    assert_eq!(
        (b[2]["state"].as_str(), b[2]["close_code"].as_str()),
        (Some("6"), Some("Solution provided"))
    );
    assert!(
        b[2]["close_notes"]
            .as_str()
            .expect("valid")
            .contains("Cleaned /var/log"),
        "{}",
        b[2]
    );
    assert_eq!(b[3]["state"], "2");

    // Zammad: internal notes on ticket 19, closed, then open again.
    let z = calls(&receiver, "/zammad");
    assert!(ok(&z), "{z:?}");
    let b = bodies(&receiver, "/zammad");
    assert_eq!(b[0]["customer"], "it@example.com");
    assert_eq!(b[0]["priority"], "3 high");
    assert_eq!(b[1]["ticket_id"], 19);
    assert_eq!(
        (b[2]["state"].as_str(), b[3]["state"].as_str()),
        (Some("closed"), Some("open"))
    );

    // GLPI: a session first; when it ended, a new one, and the follow-up again.
    let g = calls(&receiver, "/glpi");
    assert_eq!(
        paths(g.clone()),
        [
            "GET /glpi/apirest.php/initSession",
            "POST /glpi/apirest.php/Ticket",
            "POST /glpi/apirest.php/Ticket/15/ITILFollowup",
            "GET /glpi/apirest.php/initSession",
            "POST /glpi/apirest.php/Ticket/15/ITILFollowup",
            "PUT /glpi/apirest.php/Ticket/15",
            "POST /glpi/apirest.php/Ticket/15/ITILFollowup",
            "PUT /glpi/apirest.php/Ticket/15",
            "POST /glpi/apirest.php/Ticket/15/ITILFollowup",
        ]
    );
    assert_eq!(g[2].2, 401, "the ended session: {g:?}");
    assert!(once.glpi_session_ended.load(Ordering::SeqCst));
    let b = bodies(&receiver, "/glpi");
    assert_eq!(b[0]["input"]["urgency"], 4, "P2 is urgency 4: {}", b[0]);
    assert_eq!(b[3]["input"]["status"], 5);
    assert_eq!(b[5]["input"]["status"], 2);

    // Freshservice: HTML description, private notes, status 4 then 2.
    let f = calls(&receiver, "/freshservice");
    assert!(ok(&f), "{f:?}");
    let b = bodies(&receiver, "/freshservice");
    assert!(
        b[0]["description"]
            .as_str()
            .expect("valid")
            .contains("<br>"),
        "{}",
        b[0]
    );
    assert_eq!(b[0]["priority"], 3, "P2 is High (3): {}", b[0]);
    assert_eq!(b[2]["status"], 4);
    assert_eq!(b[4]["status"], 2);

    // Slack Web API: one message, updated in place, the events in its thread.
    let s = calls(&receiver, "/slack/api");
    assert!(ok(&s), "{s:?}");
    let b = bodies(&receiver, "/slack/api");
    assert!(b[0].get("thread_ts").is_none());
    for i in [1, 3, 5] {
        assert_eq!(b[i]["ts"], "1503435956.000247", "update {i}: {}", b[i]);
    }
    for i in [2, 4, 6] {
        assert_eq!(
            b[i]["thread_ts"], "1503435956.000247",
            "reply {i}: {}",
            b[i]
        );
    }
    assert!(
        b[3]["text"].as_str().expect("valid").contains("resolved"),
        "{}",
        b[3]
    );
    // Mattermost and Rocket.Chat: one post updated in place, the events replies to it.
    let mm = calls(&receiver, "/mattermost");
    assert!(ok(&mm), "{mm:?}");
    assert_eq!(
        paths(mm).iter().filter(|p| p.starts_with("PUT ")).count(),
        3,
        "updated in place at the comment, the resolve and the reopen"
    );
    let b = bodies(&receiver, "/mattermost");
    assert!(b[6]["root_id"] == "kpeoxh3ksfg9pnsuayw9kyi6se", "{}", b[6]);
    let rc = calls(&receiver, "/rocketchat");
    assert!(ok(&rc), "{rc:?}");
    let b = bodies(&receiver, "/rocketchat");
    assert_eq!(b[1]["msgId"], "7aDSXtjMA3KPLxLjt", "{}", b[1]);
    assert_eq!(b[2]["message"]["tmid"], "7aDSXtjMA3KPLxLjt", "{}", b[2]);
    // Comments are not posted to incoming webhooks; open, resolve and reopen are.
    let h = bodies(&receiver, "/hooks/slack");
    assert!(
        h[1]["text"].as_str().expect("valid").contains("Resolved"),
        "{h:?}"
    );
    let t = calls(&receiver, "/hooks/teams");
    assert!(ok(&t), "{t:?}");

    // Each system's create is noted on the timeline with the id it answered.
    let timeline = runtime
        .block_on(collector.store.timeline(id))
        .expect("timeline");
    let notes: Vec<&str> = timeline
        .iter()
        .filter(|e| e.actor.starts_with("helpdesk:"))
        .map(|e| e.detail.as_str())
        .collect();
    for want in [
        "jira (jira-sm) ticket #OPS-7 created",
        &format!("servicenow (servicenow) ticket #{SN_SYS_ID} created"),
        "zammad (zammad) ticket #19 created",
        "glpi (glpi) ticket #15 created",
        "freshservice (freshservice) ticket #42 created",
        "slack (slack) ticket #1503435956.000247 created",
        "mattermost (mattermost) ticket #kpeoxh3ksfg9pnsuayw9kyi6se created",
        "rocketchat (rocketchat) ticket #7aDSXtjMA3KPLxLjt created",
    ] {
        assert!(notes.contains(&want), "{want:?} not in {notes:#?}");
    }
    drop(collector);
}
