//! The HTTP handlers: each authenticates the caller and requires its role (`auth`: viewer to
//! read, technician for ticket actions, labels and silences), turns the path, query and body
//! into a service call, and the answer into JSON (the domain types' own serialisation, the
//! same as `--json`). The caller's name is the actor of what they change.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Role;
use super::{ApiError, ApiResult, Web, bad, to_json};
use crate::clock::now_ms;
use crate::service::{EventQuery, SilenceRequest, TicketQuery};

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn openapi_document() -> Json<Value> {
    Json(super::openapi::document())
}

/// The Prometheus metrics: this process's health and this collector's fleet.
pub async fn metrics(State(web): State<Web>) -> impl axum::response::IntoResponse {
    let text = crate::telemetry::render(&web.fleet, web.service.store(), now_ms()).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            super::openapi::METRICS_CONTENT_TYPE,
        )],
        text,
    )
}

pub async fn hosts(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    to_json(&web.service.list_hosts(now_ms()).await?)
}

pub async fn host(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    let Path(name) = bad(name)?;
    to_json(&web.service.host(&name, now_ms()).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    labels: Vec<String>,
}

pub async fn set_labels(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<LabelsBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::PUT).await?;
    caller.require(Role::Technician)?;
    let Path(name) = bad(name)?;
    let Json(body) = bad(body)?;
    to_json(
        &web.service
            .set_labels(&name, &body.labels, now_ms())
            .await?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketParams {
    state: Option<String>,
    /// An agent id or host name (`agent` is accepted as an alias).
    #[serde(alias = "agent")]
    host: Option<String>,
    limit: Option<u32>,
    priority: Option<u32>,
    assignee: Option<String>,
    rule: Option<String>,
    label: Option<String>,
    /// Only tickets assigned to the caller.
    mine: Option<bool>,
}

pub async fn tickets(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<TicketParams>, QueryRejection>,
) -> ApiResult {
    let (web, query) = ticket_query(web, &headers, q).await?;
    to_json(&web.service.list_tickets(&query).await?)
}

/// Counts per priority (and outages) of the open tickets the queue's filters match, in all.
pub async fn ticket_summary(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<TicketParams>, QueryRejection>,
) -> ApiResult {
    let (web, query) = ticket_query(web, &headers, q).await?;
    to_json(&web.service.ticket_summary(&query).await?)
}

/// The caller checked (viewer) and the queue's parameters as a [`TicketQuery`].
async fn ticket_query(
    web: Web,
    headers: &HeaderMap,
    q: Result<Query<TicketParams>, QueryRejection>,
) -> Result<(Web, TicketQuery), ApiError> {
    let caller = web.caller(headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    let Query(q) = bad(q)?;
    let query = TicketQuery {
        state: q.state,
        host: q.host,
        limit: q.limit,
        priority: q.priority,
        assignee: q.assignee,
        rule: q.rule,
        label: q.label,
        mine: q.mine.unwrap_or(false).then(|| caller.name.clone()),
    };
    Ok((web, query))
}

pub async fn ticket(
    State(web): State<Web>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    let Path(id) = bad(id)?;
    to_json(&web.service.ticket_detail(id).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    action: String,
    #[serde(default)]
    text: String,
}

pub async fn act(
    State(web): State<Web>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Technician)?;
    let Path(id) = bad(id)?;
    let Json(body) = bad(body)?;
    let detail = web
        .service
        .act(id, &body.action, &body.text, &caller.name, now_ms())
        .await?;
    to_json(&detail)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffParams {
    since_ms: Option<i64>,
}

pub async fn handoff(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<HandoffParams>, QueryRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    let Query(q) = bad(q)?;
    to_json(&web.service.handoff(q.since_ms, now_ms()).await?)
}

pub async fn silences(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    to_json(&web.service.list_silences(now_ms()).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
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

pub async fn create_silence(
    State(web): State<Web>,
    headers: HeaderMap,
    b: Result<Json<SilenceBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Technician)?;
    let Json(b) = bad(b)?;
    let req = SilenceRequest {
        host: b.host,
        label: b.label,
        rule: b.rule,
        starts_at_ms: b.starts_at_ms,
        ends_at_ms: b.ends_at_ms,
        reason: b.reason,
    };
    to_json(
        &web.service
            .create_silence(&req, &caller.name, now_ms())
            .await?,
    )
}

pub async fn end_silence(
    State(web): State<Web>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::DELETE).await?;
    caller.require(Role::Technician)?;
    let Path(id) = bad(id)?;
    to_json(&web.service.end_silence(id, &caller.name, now_ms()).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    #[serde(default)]
    cursor: i64,
    limit: Option<u32>,
    priority: Option<u32>,
    rule: Option<String>,
    host: Option<String>,
    label: Option<String>,
}

pub async fn events(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<EventParams>, QueryRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    let Query(q) = bad(q)?;
    let query = EventQuery {
        cursor: q.cursor,
        limit: q.limit,
        max_priority: q.priority,
        rule: q.rule,
        host: q.host,
        label: q.label,
    };
    to_json(&web.service.events_since(&query).await?)
}
