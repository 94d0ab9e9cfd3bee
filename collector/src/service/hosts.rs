//! Host operations: the fleet list, naming a host by agent id or host name, labels, and
//! revoking a host's agent (every certificate of it, as `firstline-collector revoke`).

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::facts::{Filesystem, ProbeFacts, used_percent};
use crate::store::{HostRow, TrackedCondition};
use crate::tickets::lifecycle::ms;

pub use crate::labels::checked_labels;

/// A host as every interface shows it (field names as in the gRPC `Host` message).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub agent_id: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub enrolled_at_ms: i64,
    pub last_seen_at_ms: Option<i64>,
    pub last_seq: u64,
    pub spool_epoch: u64,
    pub snapshots_stored: u64,
    pub dropped_snapshots: u64,
    pub rejected_snapshots: u64,
    pub clock_adjusted_snapshots: u64,
    /// The agent's clock minus the collector's, when measured.
    pub clock_skew_ms: i64,
    pub revoked: bool,
    pub labels: Vec<String>,
    /// Other agent ids that reported the same OS machine id.
    pub same_machine_as: Vec<String>,
    /// When a snapshot last showed another machine (or a restored copy) using this agent's
    /// identity (such snapshots are rejected), and what it showed; `ingest::instance`.
    pub identity_conflict_at_ms: Option<i64>,
    pub identity_conflict: String,
    pub filesystems: Vec<FilesystemView>,
    /// Conditions that hold but have not opened a ticket yet (a `for` duration or a count of
    /// reports still to go): what will open if nothing changes.
    pub pending: Vec<PendingCondition>,
    #[serde(flatten)]
    pub facts: ProbeFacts,
}

/// The answer of [`Service::revoke_host`] (`POST /api/hosts/{host}/revoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub agent_id: String,
    pub hostname: String,
    /// Certificates of the agent that were valid and are revoked now.
    pub revoked_certificates: u64,
}

/// A condition on its way to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingCondition {
    pub rule_id: String,
    pub subject: String,
    pub priority: u32,
    /// Since when the condition holds.
    pub since_ms: i64,
    /// When the ticket opens if the condition still holds (the rule's `for`).
    pub opens_at_ms: i64,
    /// Reports in a row still needed (rules that count consecutive failures).
    pub reports_to_go: u32,
}

/// A filesystem with its usage as `df` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesystemView {
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
    pub total_inodes: u64,
    pub used_inodes: u64,
    pub updated_at_ms: i64,
}

impl FilesystemView {
    /// A filesystem's facts as measured at `updated_at_ms`.
    pub fn new(fs: Filesystem, updated_at_ms: i64) -> Self {
        Self {
            used_percent: used_percent(fs.used_bytes, fs.available_bytes),
            mount_point: fs.mount_point,
            device: fs.device,
            fs_type: fs.fs_type,
            total_bytes: fs.total_bytes,
            used_bytes: fs.used_bytes,
            available_bytes: fs.available_bytes,
            total_inodes: fs.total_inodes,
            used_inodes: fs.used_inodes,
            updated_at_ms,
        }
    }
}

impl From<HostRow> for Host {
    fn from(h: HostRow) -> Self {
        Self {
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
            identity_conflict_at_ms: h.identity_conflict_at_ms,
            identity_conflict: h.identity_conflict,
            filesystems: h
                .filesystems
                .into_iter()
                .map(|f| FilesystemView::new(f.fs, f.updated_at_ms))
                .collect(),
            pending: Vec::new(),
            facts: h.facts,
        }
    }
}

impl Service {
    /// Every enrolled host, by host name, at `now_ms`.
    pub async fn list_hosts(&self, now_ms: i64) -> ServiceResult<Vec<Host>> {
        let rows = self.store.list_hosts().await?;
        let mut hosts: Vec<Host> = rows.into_iter().map(Host::from).collect();
        let tracked = self.store.tracked_conditions("").await?;
        for h in &mut hosts {
            h.pending = self.pending(&h.agent_id, &tracked, now_ms);
        }
        Ok(hosts)
    }

    /// The not-yet-due conditions of one host among `tracked`.
    fn pending(
        &self,
        agent_id: &str,
        tracked: &[TrackedCondition],
        now_ms: i64,
    ) -> Vec<PendingCondition> {
        tracked
            .iter()
            .filter(|t| t.agent_id == agent_id)
            .filter_map(|t| {
                let rule = self.engine.rules.iter().find(|r| r.id == t.rule_id)?;
                let opens_at_ms = t.condition.since_ms.saturating_add(ms(rule.hold_for));
                let needed = i64::from(rule.kind.consecutive());
                let reports_to_go =
                    u32::try_from((needed - t.condition.holds_count).max(0)).unwrap_or(0);
                (opens_at_ms > now_ms || reports_to_go > 0).then(|| PendingCondition {
                    rule_id: t.rule_id.clone(),
                    subject: t.condition.subject.clone(),
                    priority: rule.priority,
                    since_ms: t.condition.since_ms,
                    opens_at_ms,
                    reports_to_go,
                })
            })
            .collect()
    }

    /// One host, named by agent id or host name, at `now_ms`.
    pub async fn host(&self, name: &str, now_ms: i64) -> ServiceResult<Host> {
        let id = self.resolve_host(name).await?;
        let row = self
            .store
            .host(&id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no host {name:?}")))?;
        let mut host = Host::from(row);
        let tracked = self.store.tracked_conditions(&id).await?;
        host.pending = self.pending(&id, &tracked, now_ms);
        Ok(host)
    }

    /// The agent id of a host named by agent id or host name; an unknown or ambiguous name is
    /// an error that says so.
    pub async fn resolve_host(&self, name: &str) -> ServiceResult<String> {
        super::short_text("host", name, 255)?;
        let ids = self.store.find_hosts(name).await?;
        if let Some(exact) = ids.iter().find(|id| *id == name) {
            return Ok(exact.clone());
        }
        match ids.as_slice() {
            [] => Err(ServiceError::NotFound(format!(
                "no host {name:?}: not an agent id or host name of an enrolled host"
            ))),
            [one] => Ok(one.clone()),
            many => Err(ServiceError::Invalid(format!(
                "host name {name:?} matches {} agents ({}); name one by its agent id",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    /// Revokes every valid certificate of a host's agent (named by agent id or host name), the
    /// same store change as `firstline-collector revoke AGENT_ID`: its next call (a report, its
    /// live channel) is refused once the gRPC edge's identity memory expires (seconds). A host
    /// with no valid certificate left is a conflict that says so.
    pub async fn revoke_host(&self, name: &str, now_ms: i64) -> ServiceResult<Revoked> {
        let id = self.resolve_host(name).await?;
        let hostname = self
            .store
            .host(&id)
            .await?
            .map(|h| h.hostname)
            .unwrap_or_default();
        let n = self.store.revoke_subject(&id, now_ms).await?;
        if n == 0 {
            return Err(ServiceError::Conflict(format!(
                "agent {id} has no valid certificate left (already revoked)"
            )));
        }
        // Its live channel on this collector ends now; on reconnecting it is refused.
        let disconnected = self.live.disconnect(&id);
        tracing::info!(
            agent_id = id,
            certificates = n,
            disconnected,
            "agent revoked"
        );
        Ok(Revoked {
            agent_id: id,
            hostname,
            revoked_certificates: n,
        })
    }

    /// Replaces a host's labels; returns the host.
    pub async fn set_labels(
        &self,
        name: &str,
        labels: &[String],
        now_ms: i64,
    ) -> ServiceResult<Host> {
        let unique = checked_labels(labels).map_err(ServiceError::Invalid)?;
        let id = self.resolve_host(name).await?;
        self.store.set_labels(&id, &unique).await?;
        self.host(&id, now_ms).await
    }
}
