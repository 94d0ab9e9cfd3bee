//! The dashboard's fleet and host views: a page of the fleet searched in the store (never the
//! whole fleet at once), each host with a health colour, and one host's disk usage history with
//! the disk-full forecast line where the usage grows.

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::store::{FleetField, FleetRow};

/// Hosts per fleet page when the request does not say, and the most one page may hold.
pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 500;
/// A host that has not reported for this long is shown as stale.
pub const STALE_AFTER_MS: i64 = 30 * 60_000;
/// Days of disk history when not asked, and the most.
pub const DEFAULT_HISTORY_DAYS: u32 = 7;
pub const MAX_HISTORY_DAYS: u32 = 90;
/// The forecast reads this much recent history, as the forecast rule does.
const FORECAST_WINDOW_MS: i64 = 86_400_000;

/// A fleet search: text (optionally `name:`, `label:`, `os:` or `version:` first), a page.
#[derive(Debug, Clone, Default)]
pub struct FleetQuery {
    pub q: Option<String>,
    /// From 1.
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// One host of the fleet page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetHost {
    pub agent_id: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub last_seen_at_ms: Option<i64>,
    pub clock_skew_ms: i64,
    pub labels: Vec<String>,
    pub revoked: bool,
    pub open_tickets: u64,
    pub worst_priority: Option<u32>,
    /// `critical` (an open P1 or P2), `warning` (P3, P4), `stale` (silent for 30 minutes),
    /// `unknown` (never reported), `revoked`, or `ok`.
    pub health: &'static str,
}

/// A page of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetPage {
    pub hosts: Vec<FleetHost>,
    /// Hosts matching the search in all.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    pub pages: u64,
}

/// One disk sample as the chart draws it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiskPoint {
    pub at_ms: i64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
}

/// One mount's usage history and forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MountHistory {
    pub mount_point: String,
    pub samples: Vec<DiskPoint>,
    /// Hours until full at the last day's growth rate; `None` when not growing.
    pub hours_to_full: Option<f64>,
    /// When that is.
    pub full_at_ms: Option<i64>,
}

/// A host's disk usage history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskHistory {
    pub agent_id: String,
    pub hostname: String,
    pub days: u32,
    pub since_ms: i64,
    pub mounts: Vec<MountHistory>,
}

fn health(r: &FleetRow, now_ms: i64) -> &'static str {
    if r.revoked {
        "revoked"
    } else if matches!(r.worst_priority, Some(1 | 2)) {
        "critical"
    } else if r.worst_priority.is_some() {
        "warning"
    } else if r.last_seen_at_ms == 0 {
        "unknown"
    } else if now_ms - r.last_seen_at_ms > STALE_AFTER_MS {
        "stale"
    } else {
        "ok"
    }
}

/// The field and text of a search such as `label:lab` or `pc-1`.
fn parse_search(q: &str) -> (FleetField, &str) {
    let q = q.trim();
    for (prefix, field) in [
        ("name:", FleetField::Name),
        ("label:", FleetField::Label),
        ("os:", FleetField::Os),
        ("version:", FleetField::Version),
    ] {
        if let Some(rest) = q.strip_prefix(prefix) {
            return (field, rest.trim());
        }
    }
    (FleetField::Any, q)
}

fn percent(used: u64, available: u64) -> f64 {
    crate::facts::used_percent(used, available)
}

impl Service {
    /// One page of the fleet, by host name, at `now_ms`.
    pub async fn fleet_page(&self, q: &FleetQuery, now_ms: i64) -> ServiceResult<FleetPage> {
        let text = q.q.as_deref().unwrap_or_default();
        super::short_text("search", text, 255)?;
        let (field, text) = parse_search(text);
        let per_page = match q.per_page {
            None | Some(0) => DEFAULT_PER_PAGE,
            Some(n) => n.min(MAX_PER_PAGE),
        };
        let page = q.page.unwrap_or(1).max(1);
        let offset = u64::from(page - 1) * u64::from(per_page);
        let rows = self.store.fleet_page(field, text, per_page, offset).await?;
        Ok(FleetPage {
            hosts: rows
                .rows
                .into_iter()
                .map(|r| FleetHost {
                    health: health(&r, now_ms),
                    agent_id: r.agent_id,
                    hostname: r.hostname,
                    os: r.os,
                    agent_version: r.agent_version,
                    last_seen_at_ms: (r.last_seen_at_ms > 0).then_some(r.last_seen_at_ms),
                    clock_skew_ms: r.clock_skew_ms,
                    labels: r.labels,
                    revoked: r.revoked,
                    open_tickets: r.open_tickets,
                    worst_priority: r.worst_priority,
                })
                .collect(),
            total: rows.total,
            page,
            per_page,
            pages: rows.total.div_ceil(u64::from(per_page)),
        })
    }

    /// A host's disk history over `days` (every mount, or `mount`), with the forecast of each
    /// mount still there, at `now_ms`.
    pub async fn disk_history(
        &self,
        host: &str,
        mount: Option<&str>,
        days: Option<u32>,
        now_ms: i64,
    ) -> ServiceResult<DiskHistory> {
        let days = days.unwrap_or(DEFAULT_HISTORY_DAYS);
        if !(1..=MAX_HISTORY_DAYS).contains(&days) {
            return Err(ServiceError::Invalid(format!(
                "days must be between 1 and {MAX_HISTORY_DAYS}"
            )));
        }
        let mount = mount.unwrap_or_default();
        super::short_text("mount", mount, 4096)?;
        let id = self.resolve_host(host).await?;
        let row = self
            .store
            .host(&id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no host {host:?}")))?;
        let since_ms = now_ms - i64::from(days) * 86_400_000;
        let samples = self
            .store
            .disk_history(&id, mount, since_ms.min(now_ms - FORECAST_WINDOW_MS))
            .await?;
        let mut mounts: Vec<MountHistory> = Vec::new();
        for (mount_point, s) in samples {
            if mounts.last().is_none_or(|m| m.mount_point != mount_point) {
                mounts.push(MountHistory {
                    mount_point,
                    samples: Vec::new(),
                    hours_to_full: None,
                    full_at_ms: None,
                });
            }
            if let Some(m) = mounts.last_mut() {
                m.samples.push(DiskPoint {
                    at_ms: s.at_ms,
                    used_bytes: s.used_bytes,
                    available_bytes: s.available_bytes,
                    used_percent: percent(s.used_bytes, s.available_bytes),
                });
            }
        }
        for fs in row
            .filesystems
            .iter()
            .filter(|f| mount.is_empty() || f.fs.mount_point == mount)
        {
            let at = mounts
                .iter()
                .position(|m| m.mount_point == fs.fs.mount_point);
            let m = match at {
                Some(i) => &mut mounts[i],
                None => {
                    mounts.push(MountHistory {
                        mount_point: fs.fs.mount_point.clone(),
                        samples: Vec::new(),
                        hours_to_full: None,
                        full_at_ms: None,
                    });
                    mounts.last_mut().expect("just pushed")
                }
            };
            let mut points: Vec<(i64, u64)> = m
                .samples
                .iter()
                .filter(|p| p.at_ms >= fs.updated_at_ms - FORECAST_WINDOW_MS)
                .map(|p| (p.at_ms, p.used_bytes))
                .collect();
            if points.last().is_none_or(|(t, _)| *t < fs.updated_at_ms) {
                points.push((fs.updated_at_ms, fs.fs.used_bytes));
            }
            m.hours_to_full = crate::rules::forecast::hours_to_full(&points, fs.fs.available_bytes)
                .filter(|h| h.is_finite());
            m.full_at_ms = m.hours_to_full.map(|h| {
                fs.updated_at_ms
                    .saturating_add((h.min(1e9) * 3_600_000.0) as i64)
            });
        }
        for m in &mut mounts {
            m.samples.retain(|p| p.at_ms >= since_ms);
        }
        Ok(DiskHistory {
            agent_id: id,
            hostname: row.hostname,
            days,
            since_ms,
            mounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_may_name_its_field() {
        assert_eq!(parse_search(" label:lab "), (FleetField::Label, "lab"));
        assert_eq!(parse_search("os:Debian"), (FleetField::Os, "Debian"));
        assert_eq!(parse_search("version:0.1"), (FleetField::Version, "0.1"));
        assert_eq!(parse_search("pc-1"), (FleetField::Any, "pc-1"));
    }
}
