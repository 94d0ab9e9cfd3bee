//! HTTP handlers of the feed operations (`/api/feeds…`): list, test, dead letters, replay,
//! each one service call (service/feeds.rs). Reading needs a viewer; a test event and a
//! replay need an admin.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::json;

use super::auth::Role;
use super::{ApiResult, Web, bad, to_json};

pub async fn list(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    to_json(&web.service.feeds().await?)
}

pub async fn test(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Path(name) = bad(name)?;
    to_json(&web.service.test_feed(&name).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterParams {
    feed: Option<String>,
    limit: Option<u32>,
}

pub async fn dead_letters(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<DeadLetterParams>, QueryRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    let Query(q) = bad(q)?;
    to_json(&web.service.dead_letters(q.feed.as_deref(), q.limit).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    event_cursor: Option<i64>,
}

pub async fn replay(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<ReplayBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Path(name) = bad(name)?;
    let Json(body) = bad(body)?;
    let replayed = web
        .service
        .replay_dead_letters(&name, body.event_cursor)
        .await?;
    to_json(&json!({ "replayed": replayed }))
}
