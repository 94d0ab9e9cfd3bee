//! `Admin`: operator calls for the CLI and other tools, translated to the service layer.
//! Callers present an operator certificate issued by the collector's CA; the operator's name
//! is taken from it and recorded on the timeline.

use firstline_proto::v1::{
    self, CreateSilenceRequest, EndSilenceRequest, EventsSinceRequest, EventsSinceResponse,
    GetTicketRequest, HandoffReport, HandoffRequest, ListHostsRequest, ListHostsResponse,
    ListSilencesRequest, ListSilencesResponse, ListTicketsRequest, ListTicketsResponse,
    SetLabelsRequest, SilenceInfo, TicketDetail, UpdateTicketRequest, admin_server::Admin,
};
use tonic::{Request, Response, Status};

use super::convert;
use super::{State, caller, service_status};
use crate::clock::now_ms;
use crate::service::{EventQuery, SilenceRequest, TicketQuery};
use crate::store::CertKind;

/// Implements the admin service.
pub struct AdminService {
    state: State,
}

impl AdminService {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn operator<T>(&self, request: &Request<T>) -> Result<String, Status> {
        caller(&self.state, request, CertKind::Operator).await
    }
}

/// The action verb of a wire action, as the service layer names it.
fn verb(action: i32) -> &'static str {
    match v1::TicketAction::try_from(action) {
        Ok(v1::TicketAction::Acknowledge) => "acknowledge",
        Ok(v1::TicketAction::Assign) => "assign",
        Ok(v1::TicketAction::Comment) => "comment",
        Ok(v1::TicketAction::Resolve) => "resolve",
        Ok(v1::TicketAction::Reopen) => "reopen",
        Ok(v1::TicketAction::Close) => "close",
        Ok(v1::TicketAction::Unspecified) | Err(_) => "unspecified",
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        self.operator(&request).await?;
        let hosts = self
            .state
            .service
            .list_hosts(now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(ListHostsResponse {
            hosts: hosts.iter().map(convert::host_to_wire).collect(),
        }))
    }

    async fn list_tickets(
        &self,
        request: Request<ListTicketsRequest>,
    ) -> Result<Response<ListTicketsResponse>, Status> {
        self.operator(&request).await?;
        let req = request.into_inner();
        let query = TicketQuery {
            state: Some(req.state),
            host: Some(req.agent_id),
            limit: Some(req.limit),
            ..Default::default()
        };
        let tickets = self
            .state
            .service
            .list_tickets(&query)
            .await
            .map_err(service_status)?;
        Ok(Response::new(ListTicketsResponse {
            tickets: tickets.iter().map(convert::ticket_to_wire).collect(),
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<GetTicketRequest>,
    ) -> Result<Response<TicketDetail>, Status> {
        self.operator(&request).await?;
        let detail = self
            .state
            .service
            .ticket_detail(request.into_inner().id)
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::detail_to_wire(&detail)))
    }

    async fn update_ticket(
        &self,
        request: Request<UpdateTicketRequest>,
    ) -> Result<Response<TicketDetail>, Status> {
        let operator = self.operator(&request).await?;
        let req = request.into_inner();
        let detail = self
            .state
            .service
            .act(req.id, verb(req.action), &req.text, &operator, now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::detail_to_wire(&detail)))
    }

    async fn handoff(
        &self,
        request: Request<HandoffRequest>,
    ) -> Result<Response<HandoffReport>, Status> {
        self.operator(&request).await?;
        let since = request.into_inner().since_ms;
        let report = self
            .state
            .service
            .handoff(Some(since), now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::handoff_to_wire(&report)))
    }

    async fn create_silence(
        &self,
        request: Request<CreateSilenceRequest>,
    ) -> Result<Response<SilenceInfo>, Status> {
        let operator = self.operator(&request).await?;
        let r = request.into_inner();
        let req = SilenceRequest {
            host: r.host,
            label: r.label,
            rule: r.rule,
            starts_at_ms: r.starts_at_ms,
            ends_at_ms: r.ends_at_ms,
            reason: r.reason,
        };
        let s = self
            .state
            .service
            .create_silence(&req, &operator, now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::silence_to_wire(&s)))
    }

    async fn list_silences(
        &self,
        request: Request<ListSilencesRequest>,
    ) -> Result<Response<ListSilencesResponse>, Status> {
        self.operator(&request).await?;
        let list = self
            .state
            .service
            .list_silences(now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(ListSilencesResponse {
            silences: list.iter().map(convert::silence_to_wire).collect(),
        }))
    }

    async fn end_silence(
        &self,
        request: Request<EndSilenceRequest>,
    ) -> Result<Response<SilenceInfo>, Status> {
        let operator = self.operator(&request).await?;
        let s = self
            .state
            .service
            .end_silence(request.into_inner().id, &operator, now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::silence_to_wire(&s)))
    }

    async fn set_labels(
        &self,
        request: Request<SetLabelsRequest>,
    ) -> Result<Response<v1::Host>, Status> {
        self.operator(&request).await?;
        let req = request.into_inner();
        let host = self
            .state
            .service
            .set_labels(&req.host, &req.labels, now_ms())
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::host_to_wire(&host)))
    }

    async fn events_since(
        &self,
        request: Request<EventsSinceRequest>,
    ) -> Result<Response<EventsSinceResponse>, Status> {
        self.operator(&request).await?;
        let r = request.into_inner();
        let some = |s: String| (!s.is_empty()).then_some(s);
        let query = EventQuery {
            cursor: r.cursor,
            limit: Some(r.limit),
            max_priority: Some(r.max_priority),
            rule: some(r.rule),
            host: some(r.host),
            label: some(r.label),
        };
        let page = self
            .state
            .service
            .events_since(&query)
            .await
            .map_err(service_status)?;
        Ok(Response::new(convert::events_to_wire(&page)))
    }

    async fn check_now(
        &self,
        request: Request<v1::CheckNowRequest>,
    ) -> Result<Response<v1::CheckNowResponse>, Status> {
        let operator = self.operator(&request).await?;
        let host = request.into_inner().host;
        tracing::debug!(operator, host, "check now asked");
        let r = self
            .state
            .service
            .check_now(&host)
            .await
            .map_err(service_status)?;
        Ok(Response::new(super::live::check_now_to_wire(&r)))
    }

    async fn list_feeds(
        &self,
        request: Request<v1::ListFeedsRequest>,
    ) -> Result<Response<v1::ListFeedsResponse>, Status> {
        self.operator(&request).await?;
        let feeds = self.state.service.feeds().await.map_err(service_status)?;
        Ok(Response::new(v1::ListFeedsResponse {
            feeds: feeds.iter().map(convert::feed_to_wire).collect(),
        }))
    }

    async fn test_feed(
        &self,
        request: Request<v1::TestFeedRequest>,
    ) -> Result<Response<v1::TestFeedResponse>, Status> {
        self.operator(&request).await?;
        let r = request.into_inner();
        let outcome = self
            .state
            .service
            .test_feed(&r.name)
            .await
            .map_err(service_status)?;
        Ok(Response::new(v1::TestFeedResponse {
            delivered: outcome.delivered,
            detail: outcome.detail,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        self.operator(&request).await?;
        let r = request.into_inner();
        let rows = self
            .state
            .service
            .dead_letters(Some(&r.feed), Some(r.limit))
            .await
            .map_err(service_status)?;
        Ok(Response::new(v1::ListDeadLettersResponse {
            dead_letters: rows.iter().map(convert::dead_letter_to_wire).collect(),
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<v1::ReplayDeadLettersRequest>,
    ) -> Result<Response<v1::ReplayDeadLettersResponse>, Status> {
        self.operator(&request).await?;
        let r = request.into_inner();
        let replayed = self
            .state
            .service
            .replay_dead_letters(&r.feed, Some(r.event_cursor))
            .await
            .map_err(service_status)?;
        Ok(Response::new(v1::ReplayDeadLettersResponse {
            replayed: u32::try_from(replayed).unwrap_or(u32::MAX),
        }))
    }
}
