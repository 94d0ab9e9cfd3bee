//! The HTTP JSON API, for the dashboard and scripts: the same operations as the gRPC admin
//! service, through the same service layer, described by an OpenAPI document it serves at
//! `/api/openapi.json`. Off unless `http.listen` is set; every call but `/api/health`, the
//! OpenAPI document and the Prometheus metrics at `/metrics` (`crate::telemetry`, for an
//! unauthenticated scraper; counts only, no host names) needs `Authorization: Bearer <key>`
//! with the API key the collector keeps in its data directory (`api.key`, mode 0600). Errors
//! are JSON (`{"error": "..."}`) with a 4xx status (503 when the store is down), and change
//! nothing.

mod feeds;
mod handlers;
pub mod openapi;
mod openapi_schemas;

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::{Service, ServiceError};

/// File in the data directory holding the API key.
pub const API_KEY_FILE: &str = "api.key";

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct Web {
    service: Service,
    key_hash: String,
    /// The fleet gauges of `/metrics`, with their cached store answer.
    fleet: Arc<crate::telemetry::FleetGauges>,
}

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
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

/// The router: every route of [`openapi::routes`], a JSON 404 for anything else.
pub fn router(service: Service, api_key: &str) -> axum::Router {
    // `/metrics` shows the health metrics of the global recorder; installing it is idempotent
    // (`Collector::start` does it too), so the metrics are there whoever builds the router.
    crate::telemetry::init();
    let web = Web {
        service,
        key_hash: crate::tokens::hash_token(api_key),
        fleet: Arc::default(),
    };
    let mut router = axum::Router::new();
    for route in openapi::routes() {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, openapi::NO_SUCH_ROUTE.into()) })
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

/// Turns a malformed path, query or body into a JSON 400 instead of axum's plain text.
fn bad<T, R: std::fmt::Display>(r: Result<T, R>) -> Result<T, ApiError> {
    r.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}
