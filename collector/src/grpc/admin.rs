//! `Admin`: operator reads of hosts and tickets, for the CLI and other tools. Callers present an
//! operator certificate issued by the collector's CA.

use firstline_proto::v1::{
    self, ListHostsRequest, ListHostsResponse, ListTicketsRequest, ListTicketsResponse,
    admin_server::Admin,
};
use prost::Message;
use tonic::{Request, Response, Status};

use super::{State, caller};
use crate::report::Filesystem;
use crate::store::{CertKind, HostRow, TicketFilter, TicketRow};

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

fn host_to_wire(h: HostRow) -> v1::Host {
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

fn ticket_to_wire(t: TicketRow) -> v1::Ticket {
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
    }
}
