//! `POST /api/hosts/{host}/revoke`: the dashboard's **Revoke** button. An admin revokes every
//! certificate of a host's agent, the same store change as `firstline-collector revoke
//! AGENT_ID` (`Service::revoke_host`); the agent's next report is refused. Like every
//! state-changing request, a session must send its `X-CSRF-Token` (`Web::caller`); a
//! technician or a viewer gets 403 and nothing changes; a host already revoked is a 409.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use super::auth::Role;
use super::{ApiError, Web, bad};
use crate::clock::now_ms;

pub async fn revoke(
    State(web): State<Web>,
    headers: HeaderMap,
    host: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Admin)?;
    let Path(host) = bad(host)?;
    let revoked = web.service.revoke_host(&host, now_ms()).await?;
    tracing::info!(
        user = caller.name,
        agent_id = revoked.agent_id,
        "agent revoked from the HTTP API"
    );
    serde_json::to_value(&revoked)
        .map(Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::openapi_schemas::REVOKED;
    use crate::service::Revoked;

    #[test]
    fn the_schema_names_the_fields_of_the_answer() {
        let names: BTreeSet<String> = REVOKED.iter().map(|(n, _)| (*n).to_owned()).collect();
        let answer = Revoked {
            agent_id: "a".into(),
            hostname: "h".into(),
            revoked_certificates: 1,
        };
        let keys: BTreeSet<String> = match serde_json::to_value(&answer).expect("serialises") {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        };
        assert_eq!(keys, names);
    }
}
