//! `Agent/Report`: a batch of spooled snapshots from an enrolled agent. The caller is the agent
//! named by its client certificate; the batch is checked (`report.rs`), handed to the group
//! writer (`ingest::writer`), and acknowledged after its commit with the sequence numbers now
//! stored and those rejected for good, each with its reason. When the writer's queue is full
//! the call is refused at once with RESOURCE_EXHAUSTED and `grpc-retry-pushback-ms`, the
//! delay the agent waits before sending again.

use firstline_proto::v1::{RejectedSnapshot, ReportAck, ReportRequest, agent_server::Agent};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use super::{State, caller, store_status};
use crate::clock::now_ms;
use crate::ingest::writer::SubmitError;
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
    type LiveStream = super::live::LiveStream;

    async fn live(
        &self,
        request: Request<tonic::Streaming<firstline_proto::v1::AgentLive>>,
    ) -> Result<Response<Self::LiveStream>, Status> {
        super::live::serve(&self.state, request).await
    }

    async fn report(&self, request: Request<ReportRequest>) -> Result<Response<ReportAck>, Status> {
        let agent_id = caller(&self.state, &request, CertKind::Agent).await?;
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
        }))
    }
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
