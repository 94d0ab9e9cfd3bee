//! `Agent/Report`: a batch of spooled snapshots from an enrolled agent. The caller is the agent
//! named by its client certificate; the batch is checked (`report.rs`), handed to the group
//! writer (`ingest::writer`), and acknowledged after its commit with the sequence numbers now
//! stored and those rejected for good, each with its reason. When the writer's queue is full
//! the call is refused at once with RESOURCE_EXHAUSTED and `grpc-retry-pushback-ms`, the
//! delay the agent waits before sending again.
//!
//! `Agent/Renew`: a CSR for a new key pair becomes a new certificate for the calling agent,
//! authenticated by its current one (no enrollment token). Renewals are bounded: an agent
//! issued a certificate less than [`renewal_gap`] ago is refused with RESOURCE_EXHAUSTED and
//! the pushback header, and a revoked agent gets nothing. During a CA rotation, an agent
//! whose certificate is older than the rotation is told to renew (`ReportAck`) and may, once.

use std::time::Duration;

use firstline_proto::limits;
use firstline_proto::v1::{
    RejectedSnapshot, RenewRequest, RenewResponse, ReportAck, ReportRequest, agent_server::Agent,
};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use super::{State, caller_identity, store_status};
use crate::clock::{now_ms, to_ms};
use crate::ingest::writer::SubmitError;
use crate::report::Batch;
use crate::store::{CertKind, NewCertificate, Renewal};

/// Implements the agent service.
pub struct AgentService {
    state: State,
}

impl AgentService {
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    type LiveStream = super::live::LiveStream;

    async fn live(
        &self,
        request: Request<tonic::Streaming<firstline_proto::v1::AgentLive>>,
    ) -> Result<Response<Self::LiveStream>, Status> {
        super::live::serve(&self.state, request).await
    }

    async fn report(&self, request: Request<ReportRequest>) -> Result<Response<ReportAck>, Status> {
        let identity = caller_identity(&self.state, &request, CertKind::Agent).await?;
        // During a CA rotation, a certificate older than it is the retiring CA's.
        let renew_certificate = self
            .state
            .authority
            .rotating_since_ms()
            .is_some_and(|since| identity.issued_at_ms < since);
        let agent_id = identity.subject;
        if let Err(refusal) = self.state.limits.report(&agent_id) {
            tracing::debug!(
                agent_id,
                limit = refusal.limit.label(),
                "report refused: rate limit"
            );
            return Err(super::rate_limited_status(refusal));
        }
        let now = now_ms();
        let size = request.get_ref().encoded_len();
        let batch = Batch::from_wire(request.into_inner(), now).map_err(|error| {
            tracing::warn!(%error, agent_id, "report refused");
            Status::invalid_argument(error.to_string())
        })?;
        let snapshots = batch.entries.len();
        let outcome = self
            .state
            .writer
            .submit(agent_id.clone(), batch, size, now)
            .await
            .map_err(|error| submit_status(&agent_id, error))?;
        tracing::debug!(
            agent_id,
            snapshots,
            new = outcome.new_snapshots,
            rejected = outcome.rejected.len(),
            opened = outcome.tickets_opened,
            resolved = outcome.tickets_resolved,
            "report stored"
        );
        Ok(Response::new(ReportAck {
            stored_seqs: outcome.stored_seqs,
            policy: Some(self.state.policy()),
            rejected: outcome
                .rejected
                .into_iter()
                .map(|(seq, reason)| RejectedSnapshot { seq, reason })
                .collect(),
            renew_certificate,
        }))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<RenewResponse>, Status> {
        let identity = caller_identity(&self.state, &request, CertKind::Agent).await?;
        let agent_id = identity.subject;
        let csr_pem = request.into_inner().csr_pem;
        if csr_pem.len() > limits::MAX_CSR_BYTES {
            return Err(Status::invalid_argument(format!(
                "csr_pem is {} bytes, the limit is {}",
                csr_pem.len(),
                limits::MAX_CSR_BYTES
            )));
        }
        let validity = self.state.certificate_validity;
        let now = now_ms();
        let gap = renewal_gap(validity);
        let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
        // A certificate of the CA being retired is renewed at once: only what was issued since
        // the rotation (or within the gap) counts against it.
        let issued_after_ms = match self.state.authority.rotating_since_ms() {
            Some(since) if identity.issued_at_ms < since => {
                since.saturating_sub(1).max(now.saturating_sub(gap_ms))
            }
            _ => now.saturating_sub(gap_ms),
        };
        // The CSR is judged first (a bad one is the caller's to fix); then a refusal is told
        // with a read, before the write transaction.
        let issued = self
            .state
            .authority
            .sign_agent_csr(&csr_pem, &agent_id, validity)
            .map_err(super::signing_status)?;
        let early = self
            .state
            .store()
            .renewal_standing(&agent_id, issued_after_ms)
            .await
            .map_err(store_status)?;
        let renewal = match early {
            Renewal::Recorded => {
                let cert = NewCertificate {
                    fingerprint: issued.fingerprint.clone(),
                    kind: CertKind::Agent,
                    subject: agent_id.clone(),
                    issued_at_ms: now,
                    not_after_ms: to_ms(issued.not_after),
                };
                let recorded = self
                    .state
                    .store()
                    .renew_certificate(&cert, issued_after_ms)
                    .await
                    .map_err(store_status)?;
                (recorded, Some((issued, cert)))
            }
            refused => (refused, None),
        };
        match renewal {
            (Renewal::Recorded, Some((issued, cert))) => {
                crate::telemetry::certificate_issued("renewal");
                tracing::info!(
                    agent_id,
                    fingerprint = issued.fingerprint,
                    not_after_ms = cert.not_after_ms,
                    "agent certificate renewed"
                );
                Ok(Response::new(RenewResponse {
                    certificate_pem: issued.cert_pem,
                    ca_certificate_pem: self.state.authority.ca_cert_pem().to_owned(),
                }))
            }
            (Renewal::TooSoon { last_issued_ms }, _) => {
                let wait_ms = last_issued_ms
                    .saturating_add(gap_ms)
                    .saturating_sub(now)
                    .max(1);
                tracing::warn!(agent_id, wait_ms, "certificate renewal refused: too soon");
                let mut metadata = MetadataMap::new();
                if let Ok(value) = MetadataValue::try_from(wait_ms.to_string()) {
                    metadata.insert(PUSHBACK, value);
                }
                Err(Status::with_metadata(
                    Code::ResourceExhausted,
                    format!(
                        "{agent_id} was issued a certificate less than {} ago; renew again in \
                         {wait_ms} ms",
                        humantime::format_duration(gap)
                    ),
                    metadata,
                ))
            }
            (Renewal::Revoked, _) => Err(Status::unauthenticated(format!(
                "client certificate of {agent_id} is revoked"
            ))),
            (Renewal::Recorded, None) => {
                Err(Status::internal("renewal recorded without a certificate"))
            }
        }
    }
}

/// The shortest time between two certificates of one agent: a quarter of their validity, at
/// most an hour. Agents renew at two thirds of the validity, so a renewal whose answer was
/// lost can be made again well before the certificate expires.
pub fn renewal_gap(validity: Duration) -> Duration {
    (validity / 4).min(Duration::from_secs(3600))
}

/// The status of a report the writer did not store.
fn submit_status(agent_id: &str, error: SubmitError) -> Status {
    match error {
        SubmitError::Busy {
            queued,
            retry_after,
        } => {
            let millis = retry_after.as_millis();
            tracing::debug!(
                agent_id,
                queued,
                retry_after_ms = millis as u64,
                "report refused: queue full"
            );
            let mut metadata = MetadataMap::new();
            if let Ok(value) = MetadataValue::try_from(millis.to_string()) {
                metadata.insert(PUSHBACK, value);
            }
            Status::with_metadata(
                Code::ResourceExhausted,
                format!("the collector is busy ({queued} snapshots waiting); retry in {millis} ms"),
                metadata,
            )
        }
        SubmitError::Stopped => Status::unavailable("the collector is shutting down"),
        SubmitError::Store(error) => store_status(error),
    }
}

/// The gRPC retry pushback header: how long the client waits before trying again.
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";
