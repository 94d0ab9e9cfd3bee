//! `Agent/Report`: a batch of spooled snapshots from an enrolled agent. The caller is the agent
//! named by its client certificate; the batch is checked (`report.rs`), stored in one
//! transaction, and acknowledged with the sequence numbers now stored and those rejected for
//! good, each with its reason.

use firstline_proto::v1::{RejectedSnapshot, ReportAck, ReportRequest, agent_server::Agent};
use tonic::{Request, Response, Status};

use super::{State, caller, store_status};
use crate::clock::now_ms;
use crate::ingest::ingest;
use crate::report::Batch;
use crate::store::CertKind;

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
    async fn report(&self, request: Request<ReportRequest>) -> Result<Response<ReportAck>, Status> {
        let agent_id = caller(self.state.store(), &request, CertKind::Agent).await?;
        let now = now_ms();
        let batch = Batch::from_wire(request.into_inner(), now).map_err(|error| {
            tracing::warn!(%error, agent_id, "report refused");
            Status::invalid_argument(error.to_string())
        })?;
        let outcome = ingest(
            self.state.store(),
            self.state.service.engine(),
            &agent_id,
            &batch,
            now,
        )
        .await
        .map_err(store_status)?;
        tracing::debug!(
            agent_id,
            snapshots = batch.entries.len(),
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
        }))
    }
}
