//! The admin API as JSON over HTTP, for the dashboard and scripts: hosts, tickets (list, one
//! with its timeline, actions), the handoff report, silences, and a health check. Off unless
//! `http.listen` is set; every call but `/api/health` needs `Authorization: Bearer <key>` with
//! the API key the collector keeps in its data directory (`api.key`, mode 0600). Errors are JSON
//! (`{"error": "..."}`) with a 4xx status, and change nothing.

use std::path::Path;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::now_ms;
use crate::grpc::Shared;
use crate::store::{StoreError, TicketAction, TicketFilter};

/// File in the data directory holding the API key.
pub const API_KEY_FILE: &str = "api.key";

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct Web {
    shared: Arc<Shared>,
    key_hash: String,
}

/// A JSON error response.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Conflict(_) => Self(StatusCode::CONFLICT, e.to_string()),
            other => {
                tracing::error!(error = %other, "store failure in the HTTP API");
                Self(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the collector's store is unavailable".into(),
                )
            }
        }
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// Turns a malformed path, query or body into a JSON 400 instead of axum's plain text.
fn bad<T, R: std::fmt::Display>(r: Result<T, R>) -> Result<T, ApiError> {
    r.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Reads the API key from the data directory, creating it on first use.
pub fn load_or_create_key(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(API_KEY_FILE);
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_owned());
    }
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| std::io::Error::other("no randomness"))?;
    let key = format!("fla_{}", crate::pki::hex(&bytes));
    firstline_support::files::write_atomic(&path, key.as_bytes(), 0o600)?;
    Ok(key)
}

/// The router.
pub fn router(shared: Arc<Shared>, api_key: &str) -> Router {
    let web = Web {
        shared,
        key_hash: crate::tokens::hash_token(api_key),
    };
    Router::new()
        .route(
            "/api/health",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/api/hosts", get(hosts))
        .route("/api/tickets", get(tickets))
        .route("/api/tickets/{id}", get(ticket))
        .route("/api/tickets/{id}/actions", post(act))
        .route("/api/handoff", get(handoff))
        .route("/api/silences", get(silences).post(create_silence))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(web)
}

impl Web {
    /// Checks the bearer key; returns the caller's name for the timeline.
    fn authorize(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError(
                    StatusCode::UNAUTHORIZED,
                    "an Authorization: Bearer <api key> header is required".into(),
                )
            })?;
        if crate::tokens::hash_token(given) != self.key_hash {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "the API key is not valid".into(),
            ));
        }
        let who = headers
            .get("x-firstline-operator")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("api");
        Ok(who.chars().filter(|c| !c.is_control()).take(64).collect())
    }
}

async fn hosts(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    web.authorize(&headers)?;
    let hosts = web.shared.store.list_hosts().await?;
    let wire: Vec<_> = hosts.into_iter().map(crate::grpc::host_to_wire).collect();
    Ok(Json(crate::output::hosts_json(&wire)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketQuery {
    state: Option<String>,
    agent: Option<String>,
    limit: Option<u32>,
}

async fn tickets(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<TicketQuery>, QueryRejection>,
) -> ApiResult {
    web.authorize(&headers)?;
    let Query(q) = bad(q)?;
    let open = match q.state.as_deref() {
        None | Some("all") => None,
        Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("state {other:?} is not one of open, resolved, all"),
            ));
        }
    };
    let filter = TicketFilter {
        open,
        agent_id: q.agent.filter(|a| !a.is_empty()),
        limit: q.limit.unwrap_or(200).min(1000),
    };
    let rows = web.shared.store.list_tickets(&filter).await?;
    let wire: Vec<_> = rows.into_iter().map(crate::grpc::ticket_to_wire).collect();
    Ok(Json(crate::output::tickets_json(&wire)))
}

async fn ticket(
    State(web): State<Web>,
    headers: HeaderMap,
    id: Result<UrlPath<i64>, PathRejection>,
) -> ApiResult {
    web.authorize(&headers)?;
    let UrlPath(id) = bad(id)?;
    detail(&web, id).await
}

async fn detail(web: &Web, id: i64) -> ApiResult {
    let t = web
        .shared
        .store
        .ticket(id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("ticket {id} not found")))?;
    let timeline = web.shared.store.timeline(id).await?;
    let kb = crate::kb::article(&t.kb, web.shared.kb_dir.as_deref()).unwrap_or_default();
    let ticket = crate::output::tickets_json(&[crate::grpc::ticket_to_wire(t)]);
    Ok(Json(json!({
        "ticket": ticket.get(0),
        "timeline": timeline.iter().map(|e| json!({
            "cursor": e.cursor, "at": crate::output::time_json(e.at_ms), "kind": e.kind, "actor": e.actor, "detail": e.detail,
        })).collect::<Vec<_>>(),
        "kb_markdown": kb,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action: String,
    #[serde(default)]
    text: String,
}

async fn act(
    State(web): State<Web>,
    headers: HeaderMap,
    id: Result<UrlPath<i64>, PathRejection>,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> ApiResult {
    let who = web.authorize(&headers)?;
    let UrlPath(id) = bad(id)?;
    let Json(body) = bad(body)?;
    let text = body.text.trim().to_owned();
    if text.len() > 4096 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "text is at most 4096 bytes".into(),
        ));
    }
    let needs = |what: &str| {
        if text.is_empty() {
            Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("{what} needs a text"),
            ))
        } else {
            Ok(text.clone())
        }
    };
    let action = match body.action.as_str() {
        "acknowledge" => TicketAction::Acknowledge,
        "assign" => TicketAction::Assign(needs("assign")?),
        "comment" => TicketAction::Comment(needs("comment")?),
        "resolve" => TicketAction::Resolve(text.clone()),
        "reopen" => TicketAction::Reopen(text.clone()),
        "close" => TicketAction::Close,
        other => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "action {other:?} is not one of acknowledge, assign, comment, resolve, reopen, close"
                ),
            ));
        }
    };
    web.shared.store.act(id, &action, &who, now_ms()).await?;
    detail(&web, id).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffQuery {
    since_ms: Option<i64>,
}

async fn handoff(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<HandoffQuery>, QueryRejection>,
) -> ApiResult {
    web.authorize(&headers)?;
    let Query(q) = bad(q)?;
    let now = now_ms();
    let since = q
        .since_ms
        .filter(|s| *s > 0)
        .unwrap_or(now - 12 * 3_600_000);
    let (critical, escalated, resolved) = web.shared.store.handoff(since).await?;
    let wire = |v: Vec<_>| {
        crate::output::tickets_json(
            &v.into_iter()
                .map(crate::grpc::ticket_to_wire)
                .collect::<Vec<_>>(),
        )
    };
    Ok(Json(json!({
        "generated_at": crate::output::time_json(now),
        "critical_open": wire(critical),
        "escalated": wire(escalated),
        "resolved_since": wire(resolved),
    })))
}

async fn silences(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    web.authorize(&headers)?;
    let list = web.shared.store.current_silences(now_ms()).await?;
    Ok(Json(Value::Array(
        list.into_iter()
            .map(|s| serde_json::to_value(crate::grpc::silence_to_wire(s)).unwrap_or_default())
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    #[serde(default)]
    host: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    starts_at_ms: i64,
    ends_at_ms: i64,
    #[serde(default)]
    reason: String,
}

async fn create_silence(
    State(web): State<Web>,
    headers: HeaderMap,
    b: Result<Json<SilenceBody>, JsonRejection>,
) -> ApiResult {
    let who = web.authorize(&headers)?;
    let Json(b) = bad(b)?;
    let req = firstline_proto::v1::CreateSilenceRequest {
        host: b.host,
        label: b.label,
        rule: b.rule,
        starts_at_ms: b.starts_at_ms,
        ends_at_ms: b.ends_at_ms,
        reason: b.reason,
    };
    let (matcher, starts, ends) = crate::grpc::silence_from(&req, now_ms())
        .map_err(|s| ApiError(StatusCode::BAD_REQUEST, s.message().to_owned()))?;
    let reason = req.reason.trim().to_owned();
    let id = web
        .shared
        .store
        .create_silence(&matcher, starts, ends, &reason, &who)
        .await?;
    Ok(Json(json!({ "id": id })))
}
