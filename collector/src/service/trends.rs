//! The dashboard's trends: which rules and hosts recur most, the outages and how many hosts
//! each touched, and per priority the time to acknowledge and to resolve against the SLA.

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::tickets::lifecycle::ms;

/// Days looked back when not asked, and the most.
pub const DEFAULT_TREND_DAYS: u32 = 30;
pub const MAX_TREND_DAYS: u32 = 366;

/// A rule that recurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrend {
    pub rule_id: String,
    /// Tickets opened or reopened in the window.
    pub openings: u64,
    /// Distinct hosts among them.
    pub hosts: u64,
}

/// A host that recurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostTrend {
    pub agent_id: String,
    pub hostname: String,
    pub openings: u64,
    /// Distinct rules among them.
    pub rules: u64,
}

/// An outage in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutageTrend {
    pub ticket_id: i64,
    pub title: String,
    pub rule_id: String,
    pub state: String,
    pub priority: u32,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    /// Hosts linked under it.
    pub hosts: u64,
}

/// How one priority's tickets were answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PriorityTrend {
    pub priority: u32,
    /// Tickets opened in the window (host tickets under an outage not counted).
    pub opened: u64,
    pub acknowledged: u64,
    pub mean_ack_ms: Option<i64>,
    /// Acknowledged by their response due time.
    pub ack_in_time: u64,
    pub response_sla_ms: i64,
    pub resolved: u64,
    pub mean_resolve_ms: Option<i64>,
    pub resolve_in_time: u64,
    pub resolve_sla_ms: i64,
}

/// The trends of the last `days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trends {
    pub generated_at_ms: i64,
    pub days: u32,
    pub since_ms: i64,
    pub rules: Vec<RuleTrend>,
    pub hosts: Vec<HostTrend>,
    pub outages: Vec<OutageTrend>,
    pub response: Vec<PriorityTrend>,
}

fn mean(total: i64, n: u64) -> Option<i64> {
    i64::try_from(n).ok().filter(|n| *n > 0).map(|n| total / n)
}

impl Service {
    /// The trends of the last `days` (default 30) at `now_ms`.
    pub async fn trends(&self, days: Option<u32>, now_ms: i64) -> ServiceResult<Trends> {
        let days = days.unwrap_or(DEFAULT_TREND_DAYS);
        if !(1..=MAX_TREND_DAYS).contains(&days) {
            return Err(ServiceError::Invalid(format!(
                "days must be between 1 and {MAX_TREND_DAYS}"
            )));
        }
        let since_ms = now_ms - i64::from(days) * 86_400_000;
        let rows = self.store.trends(since_ms).await?;
        let sla = &self.engine.sla;
        let response = (1..=4u32)
            .map(|p| {
                let r = rows
                    .response
                    .iter()
                    .find(|r| r.priority == p)
                    .copied()
                    .unwrap_or_default();
                let i = (p - 1) as usize;
                PriorityTrend {
                    priority: p,
                    opened: r.opened,
                    acknowledged: r.acknowledged,
                    mean_ack_ms: mean(r.ack_ms_total, r.acknowledged),
                    ack_in_time: r.ack_in_time,
                    response_sla_ms: ms(sla.response[i]),
                    resolved: r.resolved,
                    mean_resolve_ms: mean(r.resolve_ms_total, r.resolved),
                    resolve_in_time: r.resolve_in_time,
                    resolve_sla_ms: ms(sla.resolve[i]),
                }
            })
            .collect();
        Ok(Trends {
            generated_at_ms: now_ms,
            days,
            since_ms,
            rules: rows
                .rules
                .into_iter()
                .map(|r| RuleTrend {
                    rule_id: r.key,
                    openings: r.openings,
                    hosts: r.spread,
                })
                .collect(),
            hosts: rows
                .hosts
                .into_iter()
                .map(|r| HostTrend {
                    agent_id: r.key,
                    hostname: r.name,
                    openings: r.openings,
                    rules: r.spread,
                })
                .collect(),
            outages: rows
                .outages
                .into_iter()
                .map(|o| OutageTrend {
                    ticket_id: o.ticket_id,
                    title: o.title,
                    rule_id: o.rule_id,
                    state: o.state,
                    priority: o.priority,
                    opened_at_ms: o.opened_at_ms,
                    resolved_at_ms: o.resolved_at_ms,
                    hosts: o.hosts,
                })
                .collect(),
            response,
        })
    }
}
