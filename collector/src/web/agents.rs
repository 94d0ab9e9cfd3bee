//! Agents and their certificates for admins. `POST /api/hosts/{host}/revoke`: the dashboard's
//! **Revoke** button revokes every certificate of a host's agent, the same store change as
//! `firstline-collector revoke AGENT_ID` (`Service::revoke_host`); the agent's next report is
//! refused. Like every state-changing request, a session must send its `X-CSRF-Token`
//! (`Web::caller`); a technician or a viewer gets 403 and nothing changes; a host already
//! revoked is a 409. `GET /api/certificates`: the admin page's list of agents' and operators'
//! certificates with their state, a page at a time.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Role;
use super::{ApiError, ApiResult, Web, bad, to_json};
use crate::clock::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateParams {
    kind: Option<String>,
    #[serde(default = "page")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn page() -> i64 {
    100
}

pub async fn certificates(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<CertificateParams>, QueryRejection>,
) -> ApiResult {
    let caller = web.caller(&headers, &Method::GET).await?;
    caller.require(Role::Admin)?;
    let Query(q) = bad(q)?;
    let page = web
        .service
        .certificates(q.kind.as_deref(), q.limit, q.offset, now_ms())
        .await?;
    to_json(&page)
}

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

    use super::super::openapi_schemas::{CERTIFICATE, CERTIFICATE_PAGE, REVOKED};
    use crate::service::{CertificatePage, CertificateView, Revoked};
    use crate::store::CertificateRow;

    fn keys<T: serde::Serialize>(value: &T) -> BTreeSet<String> {
        match serde_json::to_value(value).expect("serialises") {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    fn names(schema: &[(&str, &str)]) -> BTreeSet<String> {
        schema.iter().map(|(n, _)| (*n).to_owned()).collect()
    }

    #[test]
    fn the_certificate_schemas_name_the_fields_of_the_answer() {
        let view = CertificateView {
            row: CertificateRow {
                fingerprint: "f".into(),
                kind: "agent".into(),
                subject: "a".into(),
                hostname: "h".into(),
                issued_at_ms: 1,
                not_after_ms: 2,
                revoked_at_ms: None,
            },
            state: "valid",
        };
        assert_eq!(keys(&view), names(CERTIFICATE));
        let page = CertificatePage {
            total: 1,
            offset: 0,
            certificates: vec![view],
        };
        assert_eq!(keys(&page), names(CERTIFICATE_PAGE));
    }

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
