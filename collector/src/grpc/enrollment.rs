//! `Enrollment/Enroll`: a one-time token and a CSR become a signed client certificate and an
//! agent id. Nothing is stored unless the token is valid and the CSR is acceptable.

use firstline_proto::limits;
use firstline_proto::v1::{EnrollRequest, EnrollResponse, enrollment_server::Enrollment};
use tonic::{Request, Response, Status};

use super::State;
use crate::clock::{now_ms, to_ms};
use crate::store::{CertKind, NewAgent, NewCertificate};
use crate::tokens::hash_token;

/// Implements the enrollment service.
pub struct EnrollmentService {
    state: State,
}

impl EnrollmentService {
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let peer = request.remote_addr();
        if let Err(refusal) = self.state.limits.enrollment(peer.map(|p| p.ip())) {
            tracing::warn!(peer = ?peer, "enrollment refused: rate limit");
            return Err(super::rate_limited_status(refusal));
        }
        let req = request.into_inner();
        if req.token.is_empty() || req.token.len() > 256 {
            return Err(Status::unauthenticated(
                "enrollment token is missing or malformed",
            ));
        }
        if req.csr_pem.len() > limits::MAX_CSR_BYTES {
            return Err(Status::invalid_argument(format!(
                "csr_pem is {} bytes, the limit is {}",
                req.csr_pem.len(),
                limits::MAX_CSR_BYTES
            )));
        }
        let hostname = req.hostname.trim();
        if hostname.is_empty() || hostname.len() > 255 || hostname.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "hostname must be 1 to 255 printable characters",
            ));
        }
        let machine_id = req.machine_id.trim();
        if machine_id.len() > 255 || machine_id.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "machine_id must be at most 255 printable characters",
            ));
        }
        let agent_id = uuid::Uuid::new_v4().to_string();
        let issued = self
            .state
            .authority
            .sign_agent_csr(&req.csr_pem, &agent_id, self.state.certificate_validity)
            .map_err(super::signing_status)?;
        let now = now_ms();
        let not_after_ms = to_ms(issued.not_after);
        let result = self
            .state
            .store()
            .enroll(
                &hash_token(&req.token),
                now,
                &NewAgent {
                    agent_id: agent_id.clone(),
                    hostname: hostname.to_owned(),
                    machine_id: machine_id.to_owned(),
                    enrolled_at_ms: now,
                },
                &NewCertificate {
                    fingerprint: issued.fingerprint.clone(),
                    kind: CertKind::Agent,
                    subject: agent_id.clone(),
                    issued_at_ms: now,
                    not_after_ms,
                },
            )
            .await;
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        let enrolled = match result {
            Ok(enrolled) => enrolled,
            Err(error) => {
                tracing::warn!(%error, peer, hostname, "enrollment refused");
                return Err(super::store_status(error));
            }
        };
        let warning = if enrolled.same_machine_as.is_empty() {
            String::new()
        } else {
            let others: Vec<String> = enrolled
                .same_machine_as
                .iter()
                .map(|(id, host)| format!("{id} ({host})"))
                .collect();
            tracing::warn!(agent_id, hostname, others = %others.join(", "), "machine enrolled again");
            format!(
                "this machine is already enrolled as {}; revoke the stale agent with `firstline-collector revoke AGENT_ID` unless both are meant to run",
                others.join(", ")
            )
        };
        crate::telemetry::certificate_issued("enrollment");
        tracing::info!(agent_id, hostname, peer, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_pem: issued.cert_pem,
            ca_certificate_pem: self.state.authority.ca_cert_pem().to_owned(),
            policy: Some(self.state.policy()),
            warning,
        }))
    }
}
