//! `POST /api/hosts/{host}/check`: "check now" for the dashboard's button. A technician asks
//! the host's agent, over its live channel, to run every probe and report; the answer comes
//! once the fresh report is stored (`done`, with the snapshot's time), or says the agent is
//! `offline` (with when it was last seen), `busy`, `timeout` or `failed`: one service call
//! (`service/live.rs`), the same answer as `firstline-collector check-now HOST`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use serde_json::Value;

use super::auth::Role;
use super::{ApiError, Web, bad};

pub async fn check(
    State(web): State<Web>,
    headers: HeaderMap,
    host: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = web.caller(&headers, &Method::POST).await?;
    caller.require(Role::Technician)?;
    let Path(host) = bad(host)?;
    tracing::debug!(user = caller.name, host, "check now asked");
    let result = web.service.check_now(&host).await?;
    serde_json::to_value(&result)
        .map(Json)
        .map_err(|e| ApiError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::openapi_schemas::CHECK_NOW;
    use crate::service::CheckNowResult;

    fn keys<T: serde::Serialize>(value: &T) -> BTreeSet<String> {
        match serde_json::to_value(value).expect("serialises") {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn the_schema_names_the_fields_of_the_answer_and_the_grpc_message() {
        let names: BTreeSet<String> = CHECK_NOW.iter().map(|(n, _)| (*n).to_owned()).collect();
        let result = CheckNowResult {
            status: "done",
            agent_id: "a".into(),
            hostname: "h".into(),
            snapshot_at_ms: Some(1),
            last_seen_at_ms: Some(1),
            seconds: 0.1,
            detail: String::new(),
        };
        assert_eq!(keys(&result), names, "CheckNow");
        assert_eq!(
            keys(&firstline_proto::v1::CheckNowResponse::default()),
            names,
            "the gRPC CheckNowResponse carries the same fields"
        );
    }
}
