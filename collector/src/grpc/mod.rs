//! The collector's gRPC services: enrollment (no client certificate), agent reports and admin
//! calls (client certificate required). Prost types stop here: requests become domain types
//! (`report.rs` for reports, `convert` for the rest), admin calls go to the service layer, and
//! the one mapping from service and store errors to gRPC codes lives in this module.

mod admin;
mod agent;
pub mod convert;
mod enrollment;
mod identities;
pub mod live;
pub mod status_remap;
mod watch;

use std::sync::Arc;

use tonic::{Request, Status};

pub use admin::AdminService;
pub use agent::AgentService;
pub use enrollment::EnrollmentService;
pub use identities::{IDENTITY_TTL, Identities};
pub use live::{LiveRegistry, MAX_LIVE_AGENTS};
pub use watch::FeedService;

use crate::pki::{Authority, PkiError, fingerprint};
use crate::service::{Service, ServiceError};
use crate::store::{CertKind, Store, StoreError};

/// What every service needs.
pub struct Shared {
    pub service: Service,
    /// The group-commit writer every report goes through.
    pub writer: crate::ingest::writer::Writer,
    /// Agents' certificates, remembered for a few seconds.
    pub identities: Identities,
    pub authority: Authority,
    pub certificate_validity: std::time::Duration,
    pub heartbeat_seconds: u32,
    /// Whether this replica holds the duty lease (`duty.rs` keeps it current; feeds wait on
    /// it).
    pub duty: tokio::sync::watch::Sender<bool>,
    /// See `Config::watch_stall_timeout`.
    pub watch_stall_timeout: std::time::Duration,
    /// Agents' live channels ("check now"); the service layer holds the same registry.
    pub live: Arc<LiveRegistry>,
    /// Reports per agent and in all, enrollments per address (`[limits]`).
    pub limits: crate::rate_limits::RateLimits,
}

/// Shared state handle passed to each service.
pub type State = Arc<Shared>;

impl Shared {
    pub fn store(&self) -> &Store {
        self.service.store()
    }

    /// The report policy that rides on every enrollment response and ack.
    pub fn policy(&self) -> firstline_proto::v1::ReportPolicy {
        firstline_proto::v1::ReportPolicy {
            disk_thresholds_percent: self.service.engine().disk_thresholds(),
            heartbeat_seconds: self.heartbeat_seconds,
        }
    }
}

/// The gRPC status of a service error.
pub fn service_status(error: ServiceError) -> Status {
    match error {
        ServiceError::Invalid(m) => Status::invalid_argument(m),
        ServiceError::NotFound(m) => Status::not_found(m),
        ServiceError::Conflict(m) => Status::failed_precondition(m),
        ServiceError::Internal(m) => Status::internal(m),
        e @ ServiceError::Unavailable(_) => Status::unavailable(e.to_string()),
    }
}

/// The gRPC status of a store error: only failures that can pass are UNAVAILABLE (the agent
/// retries those for ever); the rest say what is wrong.
pub fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::TokenUnknown => Status::unauthenticated(error.to_string()),
        StoreError::TokenExpired | StoreError::TokenUsedUp | StoreError::TokenRevoked => {
            Status::permission_denied(error.to_string())
        }
        other => service_status(ServiceError::from(other)),
    }
}

/// The status of a call over a rate limit: RESOURCE_EXHAUSTED with the wait in the pushback
/// header, a failure that passes.
pub fn rate_limited_status(refusal: crate::rate_limits::Refusal) -> Status {
    use crate::rate_limits::Limit;
    let millis = refusal.retry_after.as_millis().max(1);
    let what = match refusal.limit {
        Limit::AgentReports => "this agent is sending reports faster than its limit",
        Limit::Reports => "the collector is taking reports at its limit",
        Limit::EnrollmentsPerIp => "too many enrollment calls from this address",
    };
    let mut metadata = tonic::metadata::MetadataMap::new();
    if let Ok(value) = tonic::metadata::MetadataValue::try_from(millis.to_string()) {
        metadata.insert(agent::PUSHBACK, value);
    }
    Status::with_metadata(
        tonic::Code::ResourceExhausted,
        format!(
            "{what} (limits.{}); retry in {millis} ms",
            refusal.limit.label()
        ),
        metadata,
    )
}

/// The gRPC status of a CSR the CA would not sign: the caller's fault, or the collector's.
pub fn signing_status(error: PkiError) -> Status {
    match error {
        PkiError::BadCsr(_) | PkiError::CsrAlgorithm => Status::invalid_argument(error.to_string()),
        other => {
            tracing::error!(error = %other, "cannot sign an agent certificate");
            Status::internal(other.to_string())
        }
    }
}

/// Finds who is calling from the TLS client certificate, and checks it is of the wanted kind.
/// The identity never comes from the message. Agents' identities come from memory when
/// recently looked up (see `identities`); operators' are read every time.
pub async fn caller<T>(
    shared: &Shared,
    request: &Request<T>,
    want: CertKind,
) -> Result<String, Status> {
    caller_identity(shared, request, want)
        .await
        .map(|identity| identity.subject)
}

/// [`caller`], with the whole identity behind the certificate.
pub async fn caller_identity<T>(
    shared: &Shared,
    request: &Request<T>,
    want: CertKind,
) -> Result<crate::store::Identity, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required for this call"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required for this call"))?;
    let fp = fingerprint(leaf.as_ref());
    let found = match want {
        CertKind::Agent => shared.identities.lookup(shared.store(), &fp).await,
        CertKind::Operator => shared.store().identity(&fp).await,
    };
    let identity = found.map_err(store_status)?.ok_or_else(|| {
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
    Ok(identity)
}
