//! Domain types to gRPC messages and back. The admin service sends these; the CLI, which talks
//! to the admin service, turns them back into the domain types so that its `--json` output is
//! the same document the HTTP API serves.

use firstline_proto::v1;

use crate::facts::{self, ProbeFacts};
use crate::service::{
    AlertEventView, DeadLetterView, EventPage, FeedView, FilesystemView, Handoff, HandoffCuts,
    Host, PendingCondition, SilenceView, TicketDetail,
};
use crate::tickets::{EventKind, Ticket, TicketEvent, TicketState};

/// A wire message that does not make a domain value (only from a collector of another version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the collector sent {0}")]
pub struct BadMessage(String);

pub fn ticket_to_wire(t: &Ticket) -> v1::Ticket {
    v1::Ticket {
        id: t.id,
        agent_id: t.agent_id.clone(),
        hostname: t.hostname.clone(),
        rule_id: t.rule_id.clone(),
        subject: t.subject.clone(),
        state: t.state.as_str().to_owned(),
        priority: t.priority,
        title: t.title.clone(),
        occurrences: t.occurrences,
        opened_at_ms: t.opened_at_ms,
        last_seen_at_ms: t.last_seen_at_ms,
        resolved_at_ms: t.resolved_at_ms.unwrap_or(0),
        last_value: t.last_value,
        tier: t.tier,
        assignee: t.assignee.clone(),
        acknowledged_at_ms: t.acknowledged_at_ms.unwrap_or(0),
        response_due_ms: t.response_due_ms,
        resolve_due_ms: t.resolve_due_ms,
        kb: t.kb.clone(),
        flapping: t.flapping,
        parent_id: t.parent_id.unwrap_or(0),
        linked_hosts: t.linked_hosts,
        escalated_at_ms: t.escalated_at_ms.unwrap_or(0),
        opened_priority: t.opened_priority,
    }
}

pub fn ticket_from_wire(t: v1::Ticket) -> Result<Ticket, BadMessage> {
    let opt = |ms: i64| (ms != 0).then_some(ms);
    Ok(Ticket {
        id: t.id,
        dedupe_key: String::new(),
        state: TicketState::parse(&t.state).map_err(|e| BadMessage(e.to_string()))?,
        agent_id: t.agent_id,
        hostname: t.hostname,
        rule_id: t.rule_id,
        subject: t.subject,
        priority: t.priority,
        opened_priority: t.opened_priority,
        title: t.title,
        occurrences: t.occurrences,
        opened_at_ms: t.opened_at_ms,
        last_seen_at_ms: t.last_seen_at_ms,
        resolved_at_ms: opt(t.resolved_at_ms),
        last_value: t.last_value,
        tier: t.tier,
        escalated_at_ms: opt(t.escalated_at_ms),
        assignee: t.assignee,
        acknowledged_at_ms: opt(t.acknowledged_at_ms),
        response_due_ms: t.response_due_ms,
        resolve_due_ms: t.resolve_due_ms,
        kb: t.kb,
        flapping: t.flapping,
        clear_since_ms: None,
        parent_id: opt(t.parent_id),
        linked_hosts: t.linked_hosts,
    })
}

pub fn event_to_wire(e: &TicketEvent) -> v1::TicketEvent {
    v1::TicketEvent {
        cursor: e.cursor,
        at_ms: e.at_ms,
        kind: e.kind.as_str().to_owned(),
        actor: e.actor.clone(),
        detail: e.detail.clone(),
        ticket_id: e.ticket_id,
        observed_at_ms: e.observed_at_ms,
    }
}

fn event_from_wire(e: v1::TicketEvent) -> Result<TicketEvent, BadMessage> {
    Ok(TicketEvent {
        cursor: e.cursor,
        ticket_id: e.ticket_id,
        at_ms: e.at_ms,
        kind: EventKind::parse(&e.kind).map_err(|e| BadMessage(e.to_string()))?,
        actor: e.actor,
        detail: e.detail,
        observed_at_ms: e.observed_at_ms,
    })
}

pub fn detail_to_wire(d: &TicketDetail) -> v1::TicketDetail {
    v1::TicketDetail {
        ticket: Some(ticket_to_wire(&d.ticket)),
        timeline: d.timeline.iter().map(event_to_wire).collect(),
        kb_markdown: d.kb_markdown.clone(),
        linked: d.linked.iter().map(ticket_to_wire).collect(),
    }
}

pub fn detail_from_wire(d: v1::TicketDetail) -> Result<TicketDetail, BadMessage> {
    Ok(TicketDetail {
        ticket: ticket_from_wire(d.ticket.ok_or_else(|| BadMessage("no ticket".into()))?)?,
        timeline: d
            .timeline
            .into_iter()
            .map(event_from_wire)
            .collect::<Result<_, _>>()?,
        kb_markdown: d.kb_markdown,
        linked: d
            .linked
            .into_iter()
            .map(ticket_from_wire)
            .collect::<Result<_, _>>()?,
    })
}

pub fn tickets_from_wire(list: Vec<v1::Ticket>) -> Result<Vec<Ticket>, BadMessage> {
    list.into_iter().map(ticket_from_wire).collect()
}

pub fn handoff_to_wire(h: &Handoff) -> v1::HandoffReport {
    let wire = |v: &[Ticket]| v.iter().map(ticket_to_wire).collect();
    v1::HandoffReport {
        generated_at_ms: h.generated_at_ms,
        critical_open: wire(&h.critical_open),
        escalated: wire(&h.escalated),
        resolved_since: wire(&h.resolved_since),
        since_ms: h.since_ms,
        cut: Some(v1::HandoffCuts {
            critical_open: h.cut.critical_open,
            escalated: h.cut.escalated,
            resolved_since: h.cut.resolved_since,
        }),
    }
}

pub fn handoff_from_wire(h: v1::HandoffReport) -> Result<Handoff, BadMessage> {
    Ok(Handoff {
        generated_at_ms: h.generated_at_ms,
        since_ms: h.since_ms,
        critical_open: tickets_from_wire(h.critical_open)?,
        escalated: tickets_from_wire(h.escalated)?,
        resolved_since: tickets_from_wire(h.resolved_since)?,
        cut: h
            .cut
            .map(|c| HandoffCuts {
                critical_open: c.critical_open,
                escalated: c.escalated,
                resolved_since: c.resolved_since,
            })
            .unwrap_or_default(),
    })
}

pub fn silence_to_wire(s: &SilenceView) -> v1::SilenceInfo {
    v1::SilenceInfo {
        id: s.id,
        matcher_kind: s.matcher_kind.clone(),
        matcher_value: s.matcher_value.clone(),
        starts_at_ms: s.starts_at_ms,
        ends_at_ms: s.ends_at_ms,
        reason: s.reason.clone(),
        created_by: s.created_by.clone(),
    }
}

pub fn silence_from_wire(s: v1::SilenceInfo) -> SilenceView {
    SilenceView {
        id: s.id,
        matcher_kind: s.matcher_kind,
        matcher_value: s.matcher_value,
        starts_at_ms: s.starts_at_ms,
        ends_at_ms: s.ends_at_ms,
        reason: s.reason,
        created_by: s.created_by,
    }
}

pub fn events_to_wire(page: &EventPage) -> v1::EventsSinceResponse {
    v1::EventsSinceResponse {
        events: page.events.iter().map(alert_to_wire).collect(),
        next_cursor: page.next_cursor,
    }
}

pub fn alert_to_wire(e: &AlertEventView) -> v1::AlertEvent {
    v1::AlertEvent {
        cursor: e.cursor,
        at_ms: e.at_ms,
        kind: e.kind.as_str().to_owned(),
        actor: e.actor.clone(),
        detail: e.detail.clone(),
        ticket: Some(ticket_to_wire(&e.ticket)),
        observed_at_ms: e.observed_at_ms,
        labels: e.labels.clone(),
    }
}

pub fn feed_to_wire(f: &FeedView) -> v1::FeedInfo {
    v1::FeedInfo {
        name: f.name.clone(),
        kind: f.kind.to_owned(),
        target: f.target.clone(),
        cursor: f.cursor,
        lag: f.lag,
        pending: f.pending,
        dead_letters: f.dead_letters,
        last_error: f.last_error.clone(),
        last_error_at_ms: f.last_error_at_ms.unwrap_or(0),
        last_delivery_at_ms: f.last_delivery_at_ms.unwrap_or(0),
    }
}

pub fn dead_letter_to_wire(d: &DeadLetterView) -> v1::DeadLetter {
    v1::DeadLetter {
        feed: d.feed.clone(),
        event_cursor: d.event_cursor,
        attempts: d.attempts,
        last_error: d.last_error.clone(),
        failed_at_ms: d.failed_at_ms,
        event: d.event.as_ref().map(alert_to_wire),
    }
}

pub fn events_from_wire(r: v1::EventsSinceResponse) -> Result<EventPage, BadMessage> {
    let events = r
        .events
        .into_iter()
        .map(|e| {
            Ok(AlertEventView {
                cursor: e.cursor,
                at_ms: e.at_ms,
                kind: EventKind::parse(&e.kind).map_err(|e| BadMessage(e.to_string()))?,
                actor: e.actor,
                detail: e.detail,
                observed_at_ms: e.observed_at_ms,
                labels: e.labels,
                ticket: ticket_from_wire(e.ticket.ok_or_else(|| BadMessage("no ticket".into()))?)?,
            })
        })
        .collect::<Result<_, BadMessage>>()?;
    Ok(EventPage {
        events,
        next_cursor: r.next_cursor,
    })
}

pub fn host_to_wire(h: &Host) -> v1::Host {
    let f = &h.facts;
    v1::Host {
        agent_id: h.agent_id.clone(),
        hostname: h.hostname.clone(),
        os: h.os.clone(),
        agent_version: h.agent_version.clone(),
        enrolled_at_ms: h.enrolled_at_ms,
        last_seen_at_ms: h.last_seen_at_ms.unwrap_or(0),
        last_seq: h.last_seq,
        snapshots_stored: h.snapshots_stored,
        dropped_snapshots: h.dropped_snapshots,
        filesystems: h
            .filesystems
            .iter()
            .map(|fs| v1::Filesystem {
                mount_point: fs.mount_point.clone(),
                device: fs.device.clone(),
                fs_type: fs.fs_type.clone(),
                total_bytes: fs.total_bytes,
                used_bytes: fs.used_bytes,
                available_bytes: fs.available_bytes,
                total_inodes: fs.total_inodes,
                used_inodes: fs.used_inodes,
            })
            .collect(),
        revoked: h.revoked,
        system: f.system.as_ref().map(system_to_wire),
        patches: f.patches.as_ref().map(patches_to_wire),
        antivirus: f.antivirus.as_ref().map(antivirus_to_wire),
        connectivity: f.connectivity.as_ref().map(connectivity_to_wire),
        probe_status: f
            .probe_status
            .iter()
            .map(|p| v1::ProbeStatus {
                probe: p.probe.clone(),
                state: p.state.clone(),
                message: p.message.clone(),
            })
            .collect(),
        uplink: f.uplink.as_ref().map(uplink_to_wire),
        last_uplink_failure: f.last_uplink_failure.as_ref().map(uplink_to_wire),
        uplink_recovered_at_ms: f.uplink_recovered_at_ms,
        labels: h.labels.clone(),
        clock_skew_ms: h.clock_skew_ms,
        same_machine_as: h.same_machine_as.clone(),
        identity_conflict_at_ms: h.identity_conflict_at_ms.unwrap_or(0),
        identity_conflict: h.identity_conflict.clone(),
        rejected_snapshots: h.rejected_snapshots,
        clock_adjusted_snapshots: h.clock_adjusted_snapshots,
        spool_epoch: h.spool_epoch,
        pending: h
            .pending
            .iter()
            .map(|p| v1::PendingCondition {
                rule_id: p.rule_id.clone(),
                subject: p.subject.clone(),
                priority: p.priority,
                since_ms: p.since_ms,
                opens_at_ms: p.opens_at_ms,
                reports_to_go: p.reports_to_go,
            })
            .collect(),
    }
}

pub fn host_from_wire(h: v1::Host) -> Result<Host, BadMessage> {
    let mut facts: ProbeFacts = crate::report::probe_facts(
        h.system,
        h.patches,
        h.antivirus,
        h.connectivity,
        h.probe_status,
        h.uplink,
    )
    .map_err(BadMessage)?;
    facts.last_uplink_failure = h
        .last_uplink_failure
        .map(crate::report::uplink)
        .transpose()
        .map_err(BadMessage)?;
    facts.uplink_recovered_at_ms = h.uplink_recovered_at_ms;
    let filesystems = h
        .filesystems
        .into_iter()
        .map(|fs| {
            let fs = crate::report::filesystem(fs).map_err(BadMessage)?;
            Ok(FilesystemView::new(fs, h.last_seen_at_ms))
        })
        .collect::<Result<_, BadMessage>>()?;
    Ok(Host {
        agent_id: h.agent_id,
        hostname: h.hostname,
        os: h.os,
        agent_version: h.agent_version,
        enrolled_at_ms: h.enrolled_at_ms,
        last_seen_at_ms: (h.last_seen_at_ms > 0).then_some(h.last_seen_at_ms),
        last_seq: h.last_seq,
        spool_epoch: h.spool_epoch,
        snapshots_stored: h.snapshots_stored,
        dropped_snapshots: h.dropped_snapshots,
        rejected_snapshots: h.rejected_snapshots,
        clock_adjusted_snapshots: h.clock_adjusted_snapshots,
        clock_skew_ms: h.clock_skew_ms,
        revoked: h.revoked,
        labels: h.labels,
        same_machine_as: h.same_machine_as,
        identity_conflict_at_ms: (h.identity_conflict_at_ms > 0)
            .then_some(h.identity_conflict_at_ms),
        identity_conflict: h.identity_conflict,
        filesystems,
        pending: h
            .pending
            .into_iter()
            .map(|p| PendingCondition {
                rule_id: p.rule_id,
                subject: p.subject,
                priority: p.priority,
                since_ms: p.since_ms,
                opens_at_ms: p.opens_at_ms,
                reports_to_go: p.reports_to_go,
            })
            .collect(),
        facts,
    })
}

fn uplink_to_wire(u: &facts::UplinkDiagnosis) -> v1::UplinkDiagnosis {
    v1::UplinkDiagnosis {
        consecutive_failures: u.consecutive_failures,
        failing_since_ms: u.failing_since_ms,
        last_code: u.last_code.clone(),
        last_error: u.last_error.clone(),
    }
}

fn system_to_wire(s: &facts::SystemFacts) -> v1::SystemFacts {
    v1::SystemFacts {
        hostname: s.hostname.clone(),
        machine_id: s.machine_id.clone(),
        os_name: s.os_name.clone(),
        os_version: s.os_version.clone(),
        os_build: s.os_build.clone(),
        architecture: s.architecture.clone(),
        uptime_seconds: s.uptime_seconds,
        cpu_percent: s.cpu_percent,
        memory_total_bytes: s.memory_total_bytes,
        memory_used_bytes: s.memory_used_bytes,
        agent_version: s.agent_version.clone(),
        agent_rss_bytes: s.agent_rss_bytes,
        agent_cpu_millis: s.agent_cpu_millis,
    }
}

fn updates_to_wire(list: &[facts::PendingUpdate]) -> Vec<v1::PendingUpdate> {
    list.iter()
        .map(|u| v1::PendingUpdate {
            name: u.name.clone(),
            installed_version: u.installed_version.clone(),
            candidate_version: u.candidate_version.clone(),
            security: u.security,
        })
        .collect()
}

fn patches_to_wire(p: &facts::PatchState) -> v1::PatchState {
    v1::PatchState {
        package_manager: p.package_manager.clone(),
        pending_count: p.pending_count,
        security_count: p.security_count,
        updates: updates_to_wire(&p.updates),
        held_count: p.held_count,
        held: updates_to_wire(&p.held),
        updates_truncated: p.updates_truncated,
        reboot_required: p.reboot_required,
        reboot_reason: p.reboot_reason.clone(),
        last_update_ms: p.last_update_ms,
    }
}

fn antivirus_to_wire(a: &facts::AntivirusState) -> v1::AntivirusState {
    v1::AntivirusState {
        products: a
            .products
            .iter()
            .map(|p| v1::AntivirusProduct {
                name: p.name.clone(),
                vendor: p.vendor.clone(),
                running: p.running,
                realtime_protection: p.realtime_protection,
                definitions_version: p.definitions_version.clone(),
                definitions_updated_ms: p.definitions_updated_ms,
                engine_version: p.engine_version.clone(),
                source: p.source.clone(),
            })
            .collect(),
    }
}

fn named_to_wire(c: &facts::NamedCheck) -> v1::NamedCheck {
    v1::NamedCheck {
        target: c.target.clone(),
        ok: c.ok,
        millis: c.millis,
        failure: c.failure.clone(),
        detail: c.detail.clone(),
        resolver: c.resolver.clone(),
    }
}

fn connectivity_to_wire(c: &facts::Connectivity) -> v1::Connectivity {
    v1::Connectivity {
        gateway: c.gateway.as_ref().map(|g| v1::GatewayCheck {
            present: g.present,
            address: g.address.clone(),
            interface: g.interface.clone(),
            reachable: g.reachable,
        }),
        dns: c.dns.iter().map(named_to_wire).collect(),
        tcp: c.tcp.iter().map(named_to_wire).collect(),
        https: c
            .https
            .iter()
            .map(|h| v1::HttpsCheck {
                url: h.url.clone(),
                ok: h.ok,
                millis: h.millis,
                status: h.status,
                certificate_days_left: h.certificate_days_left,
                failure: h.failure.clone(),
                detail: h.detail.clone(),
                certificate_not_after_ms: h.certificate_not_after_ms,
            })
            .collect(),
        collector: c.collector.as_ref().map(named_to_wire),
        vpn: c
            .vpn
            .iter()
            .map(|v| v1::VpnInterface {
                name: v.name.clone(),
                up: v.up,
            })
            .collect(),
    }
}
