//! HTTP handlers of the admin operations on accounts and enrollment (`/api/users…`,
//! `/api/tokens`), admin only, and the caller's own API tokens (`/api/me/tokens`). Each is one
//! call of `service::Users` or the service's enrollment tokens.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use super::auth::Role;
use super::{ApiError, ApiResult, Web, bad, to_json};
use crate::clock::now_ms;

pub async fn list(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Admin)?;
    to_json(&web.service.users().list().await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    name: String,
    role: String,
    password: String,
}

pub async fn create(
    State(web): State<Web>,
    headers: HeaderMap,
    body: Result<Json<NewUserBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Json(body) = bad(body)?;
    let role = body.role.parse()?;
    let user = web
        .service
        .users()
        .add(&body.name, role, &body.password, now_ms())
        .await?;
    tracing::info!(by = %caller.name, user = %user.name, role = %user.role, "user added");
    to_json(&user)
}

pub async fn disable(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Path(name) = bad(name)?;
    let user = web.service.users().disable(&name, now_ms()).await?;
    tracing::info!(by = %caller.name, user = %user.name, "user disabled");
    to_json(&user)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[serde(default)]
    label: String,
}

pub async fn create_user_token(
    State(web): State<Web>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<TokenBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Path(name) = bad(name)?;
    let Json(body) = bad(body)?;
    let created = web
        .service
        .users()
        .create_token(&name, &body.label, now_ms())
        .await?;
    tracing::info!(by = %caller.name, user = %name, "API token created");
    to_json(&created)
}

pub async fn my_tokens(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Viewer)?;
    to_json(&web.service.users().tokens(&caller.name).await?)
}

pub async fn revoke_enrollment_token(
    State(web): State<Web>,
    headers: HeaderMap,
    hash: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Path(hash) = bad(hash)?;
    let token = web.service.revoke_enrollment_token(&hash, now_ms()).await?;
    tracing::info!(by = %caller.name, token = %&token.hash[..12], "enrollment token revoked from the HTTP API");
    to_json(&token)
}

pub async fn enrollment_tokens(State(web): State<Web>, headers: HeaderMap) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Admin)?;
    to_json(&web.service.enrollment_tokens(now_ms()).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentTokenBody {
    #[serde(default = "one")]
    uses: u32,
    /// e.g. "30m", "24h", "7d".
    #[serde(default = "day")]
    ttl: String,
    #[serde(default)]
    label: String,
    /// Host labels every agent enrolled with the token starts with.
    #[serde(default)]
    host_labels: Vec<String>,
}

fn one() -> u32 {
    1
}

fn day() -> String {
    "24h".into()
}

pub async fn create_enrollment_token(
    State(web): State<Web>,
    headers: HeaderMap,
    body: Result<Json<EnrollmentTokenBody>, JsonRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Json(body) = bad(body)?;
    let ttl: Duration = humantime::parse_duration(&body.ttl)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("ttl {:?}: {e}", body.ttl)))?;
    let created = web
        .service
        .create_enrollment_token(&body.label, &body.host_labels, ttl, body.uses)
        .await?;
    tracing::info!(by = %caller.name, uses = body.uses, "enrollment token created");
    to_json(&created)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::openapi_schemas::{
        CREATED_ENROLLMENT_TOKEN, CREATED_USER_TOKEN, ENROLLMENT_TOKEN, USER, USER_TOKEN,
    };
    use crate::service::{
        CreatedEnrollmentToken, CreatedUserToken, EnrollmentTokenView, Role, UserTokenView,
        UserView,
    };

    fn names(props: &[(&str, &str)]) -> BTreeSet<String> {
        props.iter().map(|(n, _)| (*n).to_owned()).collect()
    }

    fn keys<T: serde::Serialize>(value: &T) -> BTreeSet<String> {
        match serde_json::to_value(value).expect("serialises") {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn account_schemas_name_exactly_the_fields_the_api_sends() {
        let user = UserView {
            name: "ada".into(),
            role: Role::Technician,
            disabled: false,
            created_at_ms: 1,
            disabled_at_ms: None,
        };
        assert_eq!(keys(&user), names(USER), "User");
        let created = CreatedUserToken {
            token: "flu_x".into(),
            name: "ada".into(),
            label: String::new(),
            created_at_ms: 1,
        };
        assert_eq!(
            keys(&created),
            names(CREATED_USER_TOKEN),
            "CreatedUserToken"
        );
        let token = UserTokenView {
            hash_prefix: "abc".into(),
            label: String::new(),
            created_at_ms: 1,
        };
        assert_eq!(keys(&token), names(USER_TOKEN), "UserToken");
        let enrollment = EnrollmentTokenView {
            hash: "h".into(),
            label: String::new(),
            uses_left: 1,
            uses_total: 1,
            created_at_ms: 1,
            expires_at_ms: 2,
            state: "valid",
            revoked_at_ms: None,
            host_labels: vec![],
        };
        assert_eq!(
            keys(&enrollment),
            names(ENROLLMENT_TOKEN),
            "EnrollmentToken"
        );
        let created = CreatedEnrollmentToken {
            token: "flt_x".into(),
            label: String::new(),
            uses: 1,
            expires_at_ms: 2,
            host_labels: vec![],
        };
        assert_eq!(
            keys(&created),
            names(CREATED_ENROLLMENT_TOKEN),
            "CreatedEnrollmentToken"
        );
    }
}
