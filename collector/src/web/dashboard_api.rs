//! The JSON routes the dashboard adds to the API: a page of the fleet (searched and paged in
//! the store), a host's disk usage history with its forecast, and the trends view. Each asks
//! [`Web::caller`] first (any signed-in role reads), then the service layer.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use serde::Deserialize;

use super::auth::Role;
use super::{ApiError, ApiResult, Web, bad, to_json};
use crate::clock::now_ms;
use crate::service::FleetQuery;

/// Authenticates a read.
async fn reader(web: &Web, headers: &HeaderMap) -> Result<(), ApiError> {
    web.caller(headers, &Method::GET)
        .await?
        .require(Role::Viewer)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetParams {
    q: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

pub async fn fleet(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<FleetParams>, QueryRejection>,
) -> ApiResult {
    reader(&web, &headers).await?;
    let Query(q) = bad(q)?;
    let query = FleetQuery {
        q: q.q,
        page: q.page,
        per_page: q.per_page,
    };
    to_json(&web.service.fleet_page(&query, now_ms()).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    mount: Option<String>,
    days: Option<u32>,
}

pub async fn disk_history(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult {
    reader(&web, &headers).await?;
    let Path(name) = bad(name)?;
    let Query(q) = bad(q)?;
    let mount = q.mount.filter(|m| !m.is_empty());
    to_json(
        &web.service
            .disk_history(&name, mount.as_deref(), q.days, now_ms())
            .await?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendParams {
    days: Option<u32>,
}

pub async fn trends(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<TrendParams>, QueryRejection>,
) -> ApiResult {
    reader(&web, &headers).await?;
    let Query(q) = bad(q)?;
    to_json(&web.service.trends(q.days, now_ms()).await?)
}
