//! The HTTP JSON API, for the dashboard and scripts: the same operations as the gRPC admin
//! service, through the same service layer, described by an OpenAPI document it serves at
//! `/api/openapi.json`. Off unless `http.listen` is set; every call but `/api/health`, the
//! OpenAPI document, the sign-in (`POST /api/session`) and the Prometheus metrics at
//! `/metrics` (`crate::telemetry`, for an unauthenticated scraper; counts only, no host names)
//! needs a credential (`auth`): a user's session cookie (with its CSRF token on writes, see
//! `session`) or `Authorization: Bearer <token>` with a user's API token or the machine's own
//! key in the data directory (`api.key`, mode 0600; the built-in admin `local-admin`). Each
//! route needs a role (viewer reads, technician works tickets, admin manages users, tokens and
//! feeds). Errors are JSON (`{"error": "..."}`) with a 4xx status (401 without a valid
//! credential, 403 for a role or CSRF refusal, 503 when the store is down), and change nothing.

mod agents;
pub mod auth;
mod dashboard_api;
mod feeds;
mod handlers;
mod live;
pub mod openapi;
mod openapi_schemas;
mod pages;
mod session;
mod stream;
mod users;

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
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
    /// Failed sign-ins per name, in memory.
    limiter: Arc<session::LoginLimiter>,
    /// Whether the session cookie is marked `Secure` (`[http] secure_cookies`).
    secure_cookies: bool,
    /// The fleet gauges of `/metrics`, with their cached store answer.
    fleet: Arc<crate::telemetry::FleetGauges>,
    /// See [`WebOptions::shutdown`].
    shutdown: tokio_util::sync::CancellationToken,
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

/// Settings of the HTTP listener beyond its routes.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Mark the session cookie `Secure` (must be true behind HTTPS).
    pub secure_cookies: bool,
    /// Cancelled when the collector stops: open event streams end at once.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The router with default [`WebOptions`].
pub fn router(service: Service, api_key: &str) -> axum::Router {
    router_with(service, api_key, WebOptions::default())
}

/// The router: every route of [`openapi::routes`], a JSON 404 for anything else.
pub fn router_with(service: Service, api_key: &str, options: WebOptions) -> axum::Router {
    // `/metrics` shows the health metrics of the global recorder; installing it is idempotent
    // (`Collector::start` does it too), so the metrics are there whoever builds the router.
    crate::telemetry::init();
    let web = Web {
        service,
        key_hash: crate::tokens::hash_token(api_key),
        limiter: Arc::default(),
        secure_cookies: options.secure_cookies,
        fleet: Arc::default(),
        shutdown: options.shutdown,
    };
    let mut router = axum::Router::new();
    for route in openapi::routes() {
        router = router.route(route.path, route.handler);
    }
    // The dashboard's pages and assets (`pages`), beside the API.
    router = router.merge(pages::routes());
    router
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, openapi::NO_SUCH_ROUTE.into()) })
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(web)
}

/// What a JSON handler answers.
type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// A domain value as the JSON answer (its own serialisation, the same as `--json`).
fn to_json<T: serde::Serialize>(value: &T) -> ApiResult {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Turns a malformed path, query or body into a JSON 400 instead of axum's plain text.
fn bad<T, R: std::fmt::Display>(r: Result<T, R>) -> Result<T, ApiError> {
    r.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}
