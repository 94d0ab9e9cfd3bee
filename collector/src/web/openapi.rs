//! The HTTP API's routes in one table, and the OpenAPI 3.1 document made from it. The router
//! is built from the same table (`web::router`), so the document cannot list a route the
//! collector does not have, or miss one it has; the schemas' property names are checked
//! against the serialised domain types by the tests below.

use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::{Map, Value, json};

use super::{Web, handlers};

/// The error text of the JSON 404 for a path that is not a route.
pub const NO_SUCH_ROUTE: &str = "no such route; see /api/openapi.json";

/// The answer of `/metrics`: Prometheus text, the one route that does not answer JSON.
pub const METRICS: &str = "Metrics";

/// The answer of `/api/stream`: server-sent events, not one JSON document.
pub const EVENT_STREAM: &str = "EventStream";

/// The media type of `/metrics` (the Prometheus text exposition format).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One route: method, path (axum's `{name}` syntax is also OpenAPI's), what it does, its
/// parameters, body and answer schemas, and its handler.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// (name, "path" or "query", schema type, description)
    pub params: &'static [(&'static str, &'static str, &'static str, &'static str)],
    pub body: Option<&'static str>,
    pub answer: &'static str,
    pub auth: bool,
    pub handler: MethodRouter<Web>,
}

const TICKET_ID: (&str, &str, &str, &str) = ("id", "path", "integer", "ticket id");
const HOST: (&str, &str, &str, &str) = ("host", "path", "string", "agent id or host name");
const USER: (&str, &str, &str, &str) = ("name", "path", "string", "user name");

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: "/api/health",
            summary: "Liveness check (no key needed)",
            params: &[],
            body: None,
            answer: "Health",
            auth: false,
            handler: get(handlers::health),
        },
        Route {
            method: "get",
            path: "/api/openapi.json",
            summary: "This document (no key needed)",
            params: &[],
            body: None,
            answer: "OpenApi",
            auth: false,
            handler: get(handlers::openapi_document),
        },
        Route {
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics in the text format, for scraping (no key needed; docs/metrics.md)",
            params: &[],
            body: None,
            answer: METRICS,
            auth: false,
            handler: get(handlers::metrics),
        },
        Route {
            method: "get",
            path: "/api/hosts",
            summary: "Every enrolled host with its latest facts",
            params: &[],
            body: None,
            answer: "HostList",
            auth: true,
            handler: get(handlers::hosts),
        },
        Route {
            method: "get",
            path: "/api/hosts/{host}",
            summary: "One host",
            params: &[HOST],
            body: None,
            answer: "Host",
            auth: true,
            handler: get(handlers::host),
        },
        Route {
            method: "put",
            path: "/api/hosts/{host}/labels",
            summary: "Replace a host's labels",
            params: &[HOST],
            body: Some("Labels"),
            answer: "Host",
            auth: true,
            handler: put(handlers::set_labels),
        },
        Route {
            method: "post",
            path: "/api/hosts/{host}/check",
            summary: "Check now: the host's agent runs every probe and reports; answers once the \
                      fresh report is stored (done), or offline, busy, timeout (technician)",
            params: &[HOST],
            body: None,
            answer: "CheckNow",
            auth: true,
            handler: post(super::live::check),
        },
        Route {
            method: "post",
            path: "/api/hosts/{host}/revoke",
            summary: "Revoke every certificate of the host's agent, as `firstline-collector \
                      revoke`: its next report is refused (admin; 409 when already revoked)",
            params: &[HOST],
            body: None,
            answer: "Revoked",
            auth: true,
            handler: post(super::agents::revoke),
        },
        Route {
            method: "get",
            path: "/api/hosts/{host}/disk-history",
            summary: "A host's disk usage samples per mount, with the disk-full forecast",
            params: &[
                HOST,
                (
                    "mount",
                    "query",
                    "string",
                    "only this mount point (default: every mount)",
                ),
                (
                    "days",
                    "query",
                    "integer",
                    "days of history, 1 to 90 (default 7)",
                ),
            ],
            body: None,
            answer: "DiskHistory",
            auth: true,
            handler: get(super::dashboard_api::disk_history),
        },
        Route {
            method: "get",
            path: "/api/fleet",
            summary: "One page of the fleet by host name, searched by name, label, OS or version \
                      (name:, label:, os:, version: limit the search to one field)",
            params: &[
                ("q", "query", "string", "search text (default: every host)"),
                ("page", "query", "integer", "page from 1 (default 1)"),
                (
                    "per_page",
                    "query",
                    "integer",
                    "hosts per page (default 50, max 500)",
                ),
            ],
            body: None,
            answer: "FleetPage",
            auth: true,
            handler: get(super::dashboard_api::fleet),
        },
        Route {
            method: "get",
            path: "/api/trends",
            summary: "Rules and hosts that recur most, outages and their reach, time to \
                      acknowledge and resolve per priority against the SLA",
            params: &[(
                "days",
                "query",
                "integer",
                "days looked back, 1 to 366 (default 30)",
            )],
            body: None,
            answer: "Trends",
            auth: true,
            handler: get(super::dashboard_api::trends),
        },
        Route {
            method: "get",
            path: "/api/stream",
            summary: "The alert event log as server-sent events (event: ticket, id: cursor, \
                      data: AlertEvent); resumes from Last-Event-ID or cursor, else from now",
            params: &[(
                "cursor",
                "query",
                "integer",
                "events after this cursor (default: the log's end; Last-Event-ID wins)",
            )],
            body: None,
            answer: EVENT_STREAM,
            auth: true,
            handler: get(super::stream::stream),
        },
        Route {
            method: "get",
            path: "/api/tickets",
            summary: "Tickets, open ones first by priority",
            params: &[
                (
                    "state",
                    "query",
                    "string",
                    "open, new, acknowledged, suppressed, resolved, closed or all (default)",
                ),
                (
                    "host",
                    "query",
                    "string",
                    "agent id or host name (alias: agent)",
                ),
                (
                    "limit",
                    "query",
                    "integer",
                    "at most this many (default 200, max 1000)",
                ),
                (
                    "priority",
                    "query",
                    "integer",
                    "only this priority (1 to 4)",
                ),
                (
                    "assignee",
                    "query",
                    "string",
                    "only tickets assigned to this person",
                ),
                (
                    "mine",
                    "query",
                    "boolean",
                    "only tickets assigned to the caller",
                ),
                ("rule", "query", "string", "only this rule"),
                ("label", "query", "string", "only hosts with this label"),
            ],
            body: None,
            answer: "TicketList",
            auth: true,
            handler: get(handlers::tickets),
        },
        Route {
            method: "get",
            path: "/api/tickets/summary",
            summary: "How many tickets the queue's filters match in all: per priority and \
                      outages (state defaults to open; the queue's counts)",
            params: &[
                (
                    "state",
                    "query",
                    "string",
                    "open (default), new, acknowledged, suppressed, resolved, closed or all",
                ),
                (
                    "host",
                    "query",
                    "string",
                    "agent id or host name (alias: agent)",
                ),
                (
                    "limit",
                    "query",
                    "integer",
                    "ignored (accepted as /api/tickets)",
                ),
                (
                    "priority",
                    "query",
                    "integer",
                    "only this priority (1 to 4)",
                ),
                (
                    "assignee",
                    "query",
                    "string",
                    "only tickets assigned to this person",
                ),
                (
                    "mine",
                    "query",
                    "boolean",
                    "only tickets assigned to the caller",
                ),
                ("rule", "query", "string", "only this rule"),
                ("label", "query", "string", "only hosts with this label"),
            ],
            body: None,
            answer: "TicketSummary",
            auth: true,
            handler: get(handlers::ticket_summary),
        },
        Route {
            method: "get",
            path: "/api/tickets/{id}",
            summary: "One ticket with its timeline, knowledge-base steps and linked hosts",
            params: &[TICKET_ID],
            body: None,
            answer: "TicketDetail",
            auth: true,
            handler: get(handlers::ticket),
        },
        Route {
            method: "post",
            path: "/api/tickets/{id}/actions",
            summary: "Acknowledge (ack), assign, comment, resolve, reopen or close a ticket",
            params: &[TICKET_ID],
            body: Some("Action"),
            answer: "TicketDetail",
            auth: true,
            handler: post(handlers::act),
        },
        Route {
            method: "get",
            path: "/api/handoff",
            summary: "End-of-shift report",
            params: &[(
                "since_ms",
                "query",
                "integer",
                "list tickets resolved since (default: 12 hours ago)",
            )],
            body: None,
            answer: "Handoff",
            auth: true,
            handler: get(handlers::handoff),
        },
        Route {
            method: "get",
            path: "/api/silences",
            summary: "Silences that have not ended",
            params: &[],
            body: None,
            answer: "SilenceList",
            auth: true,
            handler: get(handlers::silences),
        },
        Route {
            method: "post",
            path: "/api/silences",
            summary: "Silence a host, a label or a rule until a time",
            params: &[],
            body: Some("NewSilence"),
            answer: "Silence",
            auth: true,
            handler: post(handlers::create_silence),
        },
        Route {
            method: "delete",
            path: "/api/silences/{id}",
            summary: "End a silence now",
            params: &[("id", "path", "integer", "silence id")],
            body: None,
            answer: "Silence",
            auth: true,
            handler: delete(handlers::end_silence),
        },
        Route {
            method: "get",
            path: "/api/events",
            summary: "The alert event log after a cursor, oldest first",
            params: &[
                (
                    "cursor",
                    "query",
                    "integer",
                    "events after this cursor (default 0)",
                ),
                (
                    "limit",
                    "query",
                    "integer",
                    "at most this many (default 100, max 1000)",
                ),
                (
                    "priority",
                    "query",
                    "integer",
                    "only this priority or more urgent",
                ),
                ("rule", "query", "string", "only this rule"),
                (
                    "host",
                    "query",
                    "string",
                    "only this host (agent id or host name)",
                ),
                ("label", "query", "string", "only hosts with this label"),
            ],
            body: None,
            answer: "EventPage",
            auth: true,
            handler: get(handlers::events),
        },
        Route {
            method: "get",
            path: "/api/feeds",
            summary: "The alert feeds with their cursor, lag, retries, dead letters, last error",
            params: &[],
            body: None,
            answer: "FeedList",
            auth: true,
            handler: get(super::feeds::list),
        },
        Route {
            method: "post",
            path: "/api/feeds/{name}/test",
            summary: "Send a test event to one feed now",
            params: &[("name", "path", "string", "feed name, e.g. webhook:ops")],
            body: None,
            answer: "FeedTest",
            auth: true,
            handler: post(super::feeds::test),
        },
        Route {
            method: "get",
            path: "/api/feeds/dead-letters",
            summary: "Deliveries a webhook gave up on, newest first",
            params: &[
                ("feed", "query", "string", "only this feed's"),
                (
                    "limit",
                    "query",
                    "integer",
                    "at most this many (default 100, max 1000)",
                ),
            ],
            body: None,
            answer: "DeadLetterList",
            auth: true,
            handler: get(super::feeds::dead_letters),
        },
        Route {
            method: "post",
            path: "/api/feeds/{name}/replay",
            summary: "Queue a feed's dead letters for delivery again",
            params: &[("name", "path", "string", "feed name, e.g. webhook:ops")],
            body: Some("Replay"),
            answer: "Replayed",
            auth: true,
            handler: post(super::feeds::replay),
        },
        Route {
            method: "post",
            path: "/api/session",
            summary: "Sign in with a name and password (Content-Type: application/json); sets the firstline_session cookie (no credential needed; 401 alike for an unknown user or a wrong password, 429 with Retry-After after repeated failures)",
            params: &[],
            body: Some("Login"),
            answer: "Session",
            auth: false,
            handler: post(super::session::login),
        },
        Route {
            method: "get",
            path: "/api/session",
            summary: "Who is signed in, with the session's CSRF token (null for an API token)",
            params: &[],
            body: None,
            answer: "Session",
            auth: true,
            handler: get(super::session::current),
        },
        Route {
            method: "delete",
            path: "/api/session",
            summary: "Sign out: end this session and remove its cookie (needs X-CSRF-Token)",
            params: &[],
            body: None,
            answer: "SignedOut",
            auth: true,
            handler: delete(super::session::logout),
        },
        Route {
            method: "get",
            path: "/api/users",
            summary: "The local accounts (admin)",
            params: &[],
            body: None,
            answer: "UserList",
            auth: true,
            handler: get(super::users::list),
        },
        Route {
            method: "post",
            path: "/api/users",
            summary: "Add a user with a role and a password of 10 to 1024 characters (admin)",
            params: &[],
            body: Some("NewUser"),
            answer: "User",
            auth: true,
            handler: post(super::users::create),
        },
        Route {
            method: "post",
            path: "/api/users/{name}/disable",
            summary: "Disable a user: their sessions end and their API tokens stop working (admin)",
            params: &[USER],
            body: None,
            answer: "User",
            auth: true,
            handler: post(super::users::disable),
        },
        Route {
            method: "post",
            path: "/api/users/{name}/tokens",
            summary: "Create an API token for a user; it is shown once (admin)",
            params: &[USER],
            body: Some("NewUserToken"),
            answer: "CreatedUserToken",
            auth: true,
            handler: post(super::users::create_user_token),
        },
        Route {
            method: "get",
            path: "/api/me/tokens",
            summary: "The caller's own API tokens (hash prefix, label, creation)",
            params: &[],
            body: None,
            answer: "UserTokenList",
            auth: true,
            handler: get(super::users::my_tokens),
        },
        Route {
            method: "get",
            path: "/api/tokens",
            summary: "Enrollment tokens with their remaining uses, expiry and state (admin)",
            params: &[],
            body: None,
            answer: "EnrollmentTokenList",
            auth: true,
            handler: get(super::users::enrollment_tokens),
        },
        Route {
            method: "post",
            path: "/api/tokens",
            summary: "Create an enrollment token; it is shown once (admin)",
            params: &[],
            body: Some("NewEnrollmentToken"),
            answer: "CreatedEnrollmentToken",
            auth: true,
            handler: post(super::users::create_enrollment_token),
        },
        Route {
            method: "post",
            path: "/api/tokens/{hash}/revoke",
            summary: "Revoke an enrollment token (its hash, or the first 8+ characters of it): \
                      enrollment with it is refused (admin; 409 when already revoked)",
            params: &[("hash", "path", "string", "token hash or its start")],
            body: None,
            answer: "EnrollmentToken",
            auth: true,
            handler: post(super::users::revoke_enrollment_token),
        },
        Route {
            method: "get",
            path: "/api/certificates",
            summary: "Client certificates of agents and operators, newest first, with their \
                      state (admin)",
            params: &[
                (
                    "kind",
                    "query",
                    "string",
                    "agent or operator (default: both)",
                ),
                ("limit", "query", "integer", "1 to 1000 (default 100)"),
                (
                    "offset",
                    "query",
                    "integer",
                    "certificates to skip (default 0)",
                ),
            ],
            body: None,
            answer: "CertificatePage",
            auth: true,
            handler: get(super::agents::certificates),
        },
    ]
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in routes() {
        let params: Vec<Value> = r
            .params
            .iter()
            .map(|(name, at, ty, what)| {
                json!({"name": name, "in": at, "required": *at == "path",
                       "description": what, "schema": {"type": ty}})
            })
            .collect();
        let media = if r.answer == METRICS {
            "text/plain"
        } else if r.answer == EVENT_STREAM {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut ok = Map::new();
        ok.insert(media.into(), json!({"schema": reference(r.answer)}));
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": ok},
                "400": error_response("the request is malformed"),
                "404": error_response("no such object"),
            },
        });
        if r.auth {
            op["security"] = json!([{"apiKey": []}, {"session": []}]);
            op["responses"]["401"] = error_response("no valid API token or session");
            op["responses"]["403"] = error_response(
                "the caller's role may not do this, or a session's write lacks X-CSRF-Token",
            );
            op["responses"]["503"] = error_response("the store is unavailable; retry later");
        }
        if r.method == "post" && r.path.ends_with("/actions") {
            op["responses"]["409"] = error_response("the action does not apply in this state");
        }
        if let Some(body) = r.body {
            op["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": reference(body)}}});
        }
        let entry = paths
            .entry(r.path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Firstline collector API", "version": env!("CARGO_PKG_VERSION"),
                 "license": {"name": "Apache-2.0"}},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                    "description": "a user's API token (`user token NAME`), or the key in the \
                        collector's data_dir/api.key (the built-in admin local-admin)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "firstline_session",
                    "description": "set by POST /api/session; writes also need the X-CSRF-Token \
                        header with the session's csrf"},
            },
            "schemas": super::openapi_schemas::schemas(),
        },
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn error_response(what: &str) -> Value {
    json!({"description": what, "content": {"application/json": {"schema": reference("Error")}}})
}

#[cfg(test)]
mod tests;
