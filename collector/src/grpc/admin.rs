//! `Admin`: operator reads of hosts and tickets, for the CLI and other tools. Callers present an
//! operator certificate issued by the collector's CA.

use firstline_proto::v1::{
    self, CreateSilenceRequest, GetTicketRequest, HandoffReport, HandoffRequest, ListHostsRequest,
    ListHostsResponse, ListSilencesRequest, ListSilencesResponse, ListTicketsRequest,
    ListTicketsResponse, SilenceInfo, TicketDetail, UpdateTicketRequest, admin_server::Admin,
};
use prost::Message;
use tonic::{Request, Response, Status};

use super::{State, caller};
use crate::clock::now_ms;
use crate::report::Filesystem;
use crate::store::{CertKind, HostRow, Matcher, Silence, TicketAction, TicketFilter, TicketRow};

/// Tickets returned when the request does not say, and the most it may ask for.
const DEFAULT_TICKETS: u32 = 200;
const MAX_TICKETS: u32 = 1000;

/// Implements the admin service.
pub struct AdminService {
    state: State,
}

impl AdminService {
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        caller(&self.state.store, &request, CertKind::Operator).await?;
        let hosts = self.state.store.list_hosts().await?;
        Ok(Response::new(ListHostsResponse {
            hosts: hosts.into_iter().map(host_to_wire).collect(),
        }))
    }

    async fn list_tickets(
        &self,
        request: Request<ListTicketsRequest>,
    ) -> Result<Response<ListTicketsResponse>, Status> {
        caller(&self.state.store, &request, CertKind::Operator).await?;
        let req = request.into_inner();
        let open = match req.state.as_str() {
            "" | "all" => None,
            "open" => Some(true),
            "resolved" => Some(false),
            other => {
                return Err(Status::invalid_argument(format!(
                    "state {other:?} is not one of open, resolved, all"
                )));
            }
        };
        if req.agent_id.len() > 64 {
            return Err(Status::invalid_argument("agent_id is too long"));
        }
        let filter = TicketFilter {
            open,
            agent_id: (!req.agent_id.is_empty()).then_some(req.agent_id),
            limit: match req.limit {
                0 => DEFAULT_TICKETS,
                n => n.min(MAX_TICKETS),
            },
        };
        let tickets = self.state.store.list_tickets(&filter).await?;
        Ok(Response::new(ListTicketsResponse {
            tickets: tickets.into_iter().map(ticket_to_wire).collect(),
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<GetTicketRequest>,
    ) -> Result<Response<TicketDetail>, Status> {
        caller(&self.state.store, &request, CertKind::Operator).await?;
        Ok(Response::new(self.detail(request.into_inner().id).await?))
    }

    async fn update_ticket(
        &self,
        request: Request<UpdateTicketRequest>,
    ) -> Result<Response<TicketDetail>, Status> {
        let operator = caller(&self.state.store, &request, CertKind::Operator).await?;
        let req = request.into_inner();
        let action = action_from(&req)?;
        let kind = self
            .state
            .store
            .act(req.id, &action, &operator, now_ms())
            .await?;
        tracing::info!(ticket = req.id, operator, action = kind, "ticket updated");
        Ok(Response::new(self.detail(req.id).await?))
    }

    async fn handoff(
        &self,
        request: Request<HandoffRequest>,
    ) -> Result<Response<HandoffReport>, Status> {
        caller(&self.state.store, &request, CertKind::Operator).await?;
        let now = now_ms();
        let since = match request.into_inner().since_ms {
            0 => now - 12 * 3_600_000,
            s => s,
        };
        let (critical, escalated, resolved) = self.state.store.handoff(since).await?;
        let wire = |v: Vec<TicketRow>| v.into_iter().map(ticket_to_wire).collect();
        Ok(Response::new(HandoffReport {
            generated_at_ms: now,
            critical_open: wire(critical),
            escalated: wire(escalated),
            resolved_since: wire(resolved),
        }))
    }

    async fn create_silence(
        &self,
        request: Request<CreateSilenceRequest>,
    ) -> Result<Response<SilenceInfo>, Status> {
        let operator = caller(&self.state.store, &request, CertKind::Operator).await?;
        let req = request.into_inner();
        let now = now_ms();
        let (matcher, starts, ends) = silence_from(&req, now)?;
        let reason = req.reason.trim().to_owned();
        let id = self
            .state
            .store
            .create_silence(&matcher, starts, ends, &reason, &operator)
            .await?;
        tracing::info!(silence = id, operator, ?matcher, "silence created");
        let silence = Silence {
            id,
            matcher,
            starts_at_ms: starts,
            ends_at_ms: ends,
            reason,
            created_by: operator,
        };
        Ok(Response::new(silence_to_wire(silence)))
    }

    async fn list_silences(
        &self,
        request: Request<ListSilencesRequest>,
    ) -> Result<Response<ListSilencesResponse>, Status> {
        caller(&self.state.store, &request, CertKind::Operator).await?;
        let silences = self.state.store.current_silences(now_ms()).await?;
        Ok(Response::new(ListSilencesResponse {
            silences: silences.into_iter().map(silence_to_wire).collect(),
        }))
    }
}

impl AdminService {
    async fn detail(&self, id: i64) -> Result<TicketDetail, Status> {
        let ticket = self
            .state
            .store
            .ticket(id)
            .await?
            .ok_or_else(|| Status::not_found(format!("ticket {id} not found")))?;
        let timeline = self.state.store.timeline(id).await?;
        let kb_markdown =
            crate::kb::article(&ticket.kb, self.state.kb_dir.as_deref()).unwrap_or_default();
        Ok(TicketDetail {
            ticket: Some(ticket_to_wire(ticket)),
            timeline: timeline
                .into_iter()
                .map(|e| v1::TicketEvent {
                    cursor: e.cursor,
                    at_ms: e.at_ms,
                    kind: e.kind,
                    actor: e.actor,
                    detail: e.detail,
                })
                .collect(),
            kb_markdown,
        })
    }
}

/// The operator's action from the request, with its text checked.
fn action_from(req: &UpdateTicketRequest) -> Result<TicketAction, Status> {
    let text = req.text.trim().to_owned();
    if text.len() > 4096 || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Status::invalid_argument(
            "text must be at most 4096 printable characters",
        ));
    }
    let needs_text = |what: &str| {
        if text.is_empty() {
            Err(Status::invalid_argument(format!("{what} needs a text")))
        } else {
            Ok(text.clone())
        }
    };
    Ok(match v1::TicketAction::try_from(req.action) {
        Ok(v1::TicketAction::Acknowledge) => TicketAction::Acknowledge,
        Ok(v1::TicketAction::Assign) => TicketAction::Assign(needs_text("assign")?),
        Ok(v1::TicketAction::Comment) => TicketAction::Comment(needs_text("comment")?),
        Ok(v1::TicketAction::Resolve) => TicketAction::Resolve(text),
        Ok(v1::TicketAction::Reopen) => TicketAction::Reopen(text),
        Ok(v1::TicketAction::Close) => TicketAction::Close,
        _ => return Err(Status::invalid_argument("action is missing or unknown")),
    })
}

/// Longest silence: a maintenance window, not a way to switch monitoring off.
const MAX_SILENCE_MS: i64 = 90 * 86_400_000;

/// The silence a request asks for, checked.
pub fn silence_from(req: &CreateSilenceRequest, now: i64) -> Result<(Matcher, i64, i64), Status> {
    let given: Vec<Matcher> = [
        (!req.host.is_empty()).then(|| Matcher::Host(req.host.clone())),
        (!req.label.is_empty()).then(|| Matcher::Label(req.label.clone())),
        (!req.rule.is_empty()).then(|| Matcher::Rule(req.rule.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let [matcher] = given.as_slice() else {
        return Err(Status::invalid_argument(
            "give exactly one of host, label, rule",
        ));
    };
    if [&req.host, &req.label, &req.rule]
        .iter()
        .any(|v| v.len() > 255)
        || req.reason.len() > 1024
    {
        return Err(Status::invalid_argument(
            "host, label and rule are at most 255 bytes, reason 1024",
        ));
    }
    let starts = if req.starts_at_ms == 0 {
        now
    } else {
        req.starts_at_ms
    };
    if req.ends_at_ms <= starts || req.ends_at_ms <= now {
        return Err(Status::invalid_argument(
            "ends_at_ms must be after the start and in the future",
        ));
    }
    if req.ends_at_ms - starts > MAX_SILENCE_MS {
        return Err(Status::invalid_argument("a silence lasts at most 90 days"));
    }
    Ok((matcher.clone(), starts, req.ends_at_ms))
}

pub fn silence_to_wire(s: Silence) -> SilenceInfo {
    let (kind, value) = match s.matcher {
        Matcher::Host(v) => ("host", v),
        Matcher::Label(v) => ("label", v),
        Matcher::Rule(v) => ("rule", v),
    };
    SilenceInfo {
        id: s.id,
        matcher_kind: kind.into(),
        matcher_value: value,
        starts_at_ms: s.starts_at_ms,
        ends_at_ms: s.ends_at_ms,
        reason: s.reason,
        created_by: s.created_by,
    }
}

fn fs_to_wire(fs: Filesystem) -> v1::Filesystem {
    v1::Filesystem {
        mount_point: fs.mount_point,
        device: fs.device,
        fs_type: fs.fs_type,
        total_bytes: fs.total_bytes,
        used_bytes: fs.used_bytes,
        available_bytes: fs.available_bytes,
        total_inodes: fs.total_inodes,
        used_inodes: fs.used_inodes,
    }
}

pub fn host_to_wire(h: HostRow) -> v1::Host {
    let facts = v1::Snapshot::decode(h.facts.as_slice()).unwrap_or_default();
    v1::Host {
        system: facts.system,
        patches: facts.patches,
        antivirus: facts.antivirus,
        connectivity: facts.connectivity,
        probe_status: facts.probe_status,
        uplink: facts.uplink,
        agent_id: h.agent_id,
        hostname: h.hostname,
        os: h.os,
        agent_version: h.agent_version,
        enrolled_at_ms: h.enrolled_at_ms,
        last_seen_at_ms: h.last_seen_at_ms,
        last_seq: h.last_seq,
        snapshots_stored: h.snapshots_stored,
        dropped_snapshots: h.dropped_snapshots,
        filesystems: h
            .filesystems
            .into_iter()
            .map(|f| fs_to_wire(f.fs))
            .collect(),
        revoked: h.revoked,
    }
}

pub fn ticket_to_wire(t: TicketRow) -> v1::Ticket {
    v1::Ticket {
        id: t.id,
        agent_id: t.agent_id,
        hostname: t.hostname,
        rule_id: t.rule_id,
        subject: t.subject,
        state: t.state.as_str().to_owned(),
        priority: t.priority,
        title: t.title,
        occurrences: t.occurrences,
        opened_at_ms: t.opened_at_ms,
        last_seen_at_ms: t.last_seen_at_ms,
        resolved_at_ms: t.resolved_at_ms.unwrap_or(0),
        last_value: t.last_value,
        tier: t.tier,
        assignee: t.assignee,
        acknowledged_at_ms: t.acknowledged_at_ms.unwrap_or(0),
        response_due_ms: t.response_due_ms,
        resolve_due_ms: t.resolve_due_ms,
        kb: t.kb,
        flapping: t.flapping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_requests_are_checked() {
        let now = 1_800_000_000_000;
        let req = |host: &str, rule: &str, ends: i64| CreateSilenceRequest {
            host: host.into(),
            rule: rule.into(),
            ends_at_ms: ends,
            ..Default::default()
        };
        assert!(silence_from(&req("pc-1", "", now + 3_600_000), now).is_ok());
        for (bad, why) in [
            (req("", "", now + 1000), "exactly one"),
            (req("pc-1", "disk.usage", now + 1000), "exactly one"),
            (req("pc-1", "", now - 1), "after the start"),
            (req("pc-1", "", now + 91 * 86_400_000), "90 days"),
        ] {
            let status = silence_from(&bad, now).expect_err(why);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains(why), "{status:?}");
        }
    }
}
