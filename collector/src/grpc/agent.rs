//! `Agent/Report`: a batch of spooled snapshots from an enrolled agent. The caller is the agent
//! named by its client certificate; the batch is validated whole, stored in one transaction and
//! acknowledged with the sequence numbers now stored.

use firstline_proto::v1::{ReportAck, ReportRequest, agent_server::Agent};
use tonic::{Request, Response, Status};

use super::{State, caller};
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
        let agent_id = caller(&self.state.store, &request, CertKind::Agent).await?;
        let batch = Batch::try_from(request.into_inner()).map_err(|error| {
            tracing::warn!(%error, agent_id, "report refused");
            Status::invalid_argument(error.to_string())
        })?;
        let outcome = ingest(
            &self.state.store,
            &self.state.engine,
            &agent_id,
            &batch,
            now_ms(),
        )
        .await?;
        tracing::debug!(
            agent_id,
            snapshots = batch.snapshots.len(),
            new = outcome.new_snapshots,
            opened = outcome.tickets_opened,
            resolved = outcome.tickets_resolved,
            "report stored"
        );
        Ok(Response::new(ReportAck {
            stored_seqs: outcome.stored_seqs,
            policy: Some(self.state.policy()),
        }))
    }
}
