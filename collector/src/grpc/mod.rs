//! The collector's gRPC services: enrollment (no client certificate), agent reports and admin
//! reads (client certificate required). Prost types stop here: requests become domain types,
//! and the single mapping from store errors to gRPC codes lives in this module.

mod admin;
mod agent;
mod enrollment;
pub mod status_remap;

use std::sync::Arc;

use tonic::{Request, Status};

pub use admin::{AdminService, host_to_wire, silence_from, silence_to_wire, ticket_to_wire};
pub use agent::AgentService;
pub use enrollment::EnrollmentService;

use crate::engine::Engine;
use crate::pki::{Authority, fingerprint};
use crate::store::{CertKind, Store, StoreError};

/// What every service needs.
pub struct Shared {
    pub store: Store,
    pub authority: Authority,
    pub engine: Engine,
    pub certificate_validity: std::time::Duration,
    pub heartbeat_seconds: u32,
    /// The operator's knowledge-base directory, overriding shipped articles.
    pub kb_dir: Option<std::path::PathBuf>,
}

/// Shared state handle passed to each service.
pub type State = Arc<Shared>;

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::TokenUnknown => Status::unauthenticated(error.to_string()),
            StoreError::TokenExpired | StoreError::TokenUsedUp => {
                Status::permission_denied(error.to_string())
            }
            StoreError::OutOfRange(_) => Status::invalid_argument(error.to_string()),
            StoreError::NotFound(_) => Status::not_found(error.to_string()),
            StoreError::Conflict(_) => Status::failed_precondition(error.to_string()),
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::UnsupportedUrl(_) => {
                tracing::error!(%error, "store failure");
                Status::unavailable("the collector's store is unavailable, retry later")
            }
        }
    }
}

/// Finds who is calling from the TLS client certificate, and checks it is of the wanted kind.
/// The identity never comes from the message.
pub async fn caller<T>(
    store: &Store,
    request: &Request<T>,
    want: CertKind,
) -> Result<String, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required for this call"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required for this call"))?;
    let fp = fingerprint(leaf.as_ref());
    let identity = store.identity(&fp).await?.ok_or_else(|| {
        Status::unauthenticated("client certificate was not issued by this collector")
    })?;
    if identity.revoked {
        return Err(Status::unauthenticated(format!(
            "client certificate of {} is revoked",
            identity.subject
        )));
    }
    if identity.kind != want {
        return Err(Status::permission_denied(format!(
            "{} may not make this call",
            identity.subject
        )));
    }
    Ok(identity.subject)
}

impl Shared {
    /// The report policy that rides on every enrollment response and ack.
    pub fn policy(&self) -> firstline_proto::v1::ReportPolicy {
        firstline_proto::v1::ReportPolicy {
            disk_thresholds_percent: self.engine.disk_thresholds(),
            heartbeat_seconds: self.heartbeat_seconds,
        }
    }
}
