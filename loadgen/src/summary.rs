//! The end of a run: what the measured window showed, as text for a person and as one JSON
//! object for scripts (the same fields).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::histogram::Histogram;
use crate::stats::Inner;

/// Latency of one kind, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// CPU and memory of one measured process tree over the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measured {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub cpu_ms_per_1000_reports: f64,
    pub rss_bytes: u64,
    pub processes: usize,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: String,
    pub agents: usize,
    pub window_seconds: f64,
    pub acked_reports: u64,
    pub acked_snapshots: u64,
    pub reports_per_second: f64,
    pub snapshots_per_second: f64,
    pub latency: Latency,
    pub attempt_latency: Latency,
    pub retried_latency: Latency,
    pub resource_exhausted: u64,
    pub retried_calls: u64,
    pub rejected_snapshots: u64,
    pub missing_snapshots: u64,
    pub errors: BTreeMap<String, u64>,
    pub loadgen_cpu_seconds: f64,
    pub loadgen_cpu_ms_per_1000_reports: f64,
    pub loadgen_peak_rss_bytes: u64,
    pub loadgen_rss_per_connection_bytes: u64,
    pub measured: Vec<Measured>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush: Option<FlushSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlushSummary {
    pub backlog_per_agent: usize,
    pub agents_drained: u64,
    pub snapshots_expected: u64,
    pub snapshots_stored: u64,
    pub lost: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<f64>,
}

pub fn latency(h: &Histogram) -> Latency {
    let ms = |us: u64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
    Latency {
        count: h.count(),
        p50_ms: ms(h.quantile(0.5)),
        p99_ms: ms(h.quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

/// CPU milliseconds per 1000 reports.
pub fn per_1000(cpu: Duration, reports: u64) -> f64 {
    if reports == 0 {
        return 0.0;
    }
    (cpu.as_secs_f64() * 1e6 / reports as f64 * 100.0).round() / 100.0
}

impl Summary {
    pub fn from_window(mode: &str, agents: usize, window: Duration, s: &Inner) -> Self {
        let secs = window.as_secs_f64().max(1e-9);
        Self {
            mode: mode.to_owned(),
            agents,
            window_seconds: (secs * 100.0).round() / 100.0,
            acked_reports: s.acked_calls,
            acked_snapshots: s.acked_snapshots,
            reports_per_second: (s.acked_calls as f64 / secs * 10.0).round() / 10.0,
            snapshots_per_second: (s.acked_snapshots as f64 / secs * 10.0).round() / 10.0,
            latency: latency(&s.call_latency),
            attempt_latency: latency(&s.attempt_latency),
            retried_latency: latency(&s.retried_latency),
            resource_exhausted: s.resource_exhausted,
            retried_calls: s.retried_calls,
            rejected_snapshots: s.rejected,
            missing_snapshots: s.missing,
            errors: s.errors.clone(),
            loadgen_cpu_seconds: 0.0,
            loadgen_cpu_ms_per_1000_reports: 0.0,
            loadgen_peak_rss_bytes: 0,
            loadgen_rss_per_connection_bytes: 0,
            measured: Vec::new(),
            flush: None,
        }
    }

    /// The text a person reads.
    pub fn text(&self) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let lat = |l: &Latency| {
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} calls)",
                l.p50_ms, l.p99_ms, l.max_ms, l.count
            )
        };
        let unit = if self.mode == "floor" {
            "calls"
        } else {
            "reports"
        };
        let acknowledged = if self.mode == "floor" {
            format!(
                "  answered: {} health checks ({:.1}/s), no reports",
                self.acked_reports, self.reports_per_second
            )
        } else {
            format!(
                "  acknowledged: {} reports ({:.1}/s), {} snapshots ({:.1}/s)",
                self.acked_reports,
                self.reports_per_second,
                self.acked_snapshots,
                self.snapshots_per_second
            )
        };
        let mut out = vec![
            format!(
                "summary: {} mode, {} agents, {:.1} s measured",
                self.mode, self.agents, self.window_seconds
            ),
            acknowledged,
            format!(
                "  latency per Report call (incl. retries): {}",
                lat(&self.latency)
            ),
            format!("  latency per attempt: {}", lat(&self.attempt_latency)),
            format!(
                "  RESOURCE_EXHAUSTED: {} answers, {} calls retried ({})",
                self.resource_exhausted,
                self.retried_calls,
                lat(&self.retried_latency)
            ),
            format!(
                "  rejected snapshots: {}, unacknowledged in an ack: {}",
                self.rejected_snapshots, self.missing_snapshots
            ),
            format!("  errors by code: {}", errors(&self.errors)),
            format!(
                "  loadgen: {:.2} s CPU ({:.1} ms per 1000 {unit}), peak RSS {:.1} MiB, ~{:.1} KiB per connection",
                self.loadgen_cpu_seconds,
                self.loadgen_cpu_ms_per_1000_reports,
                mib(self.loadgen_peak_rss_bytes),
                self.loadgen_rss_per_connection_bytes as f64 / 1024.0
            ),
        ];
        for m in &self.measured {
            out.push(format!(
                "  pid {} (+{} descendants): {:.2} s CPU ({:.1} ms per 1000 {unit}), RSS {:.1} MiB",
                m.pid,
                m.processes.saturating_sub(1),
                m.cpu_seconds,
                m.cpu_ms_per_1000_reports,
                mib(m.rss_bytes)
            ));
        }
        if let Some(f) = &self.flush {
            let drain = f
                .drain_seconds
                .map_or("not drained".to_owned(), |s| format!("{s:.2} s"));
            out.push(format!(
                "  flush: backlog {} per agent, {} of {} agents drained in {drain}, {} of {} snapshots stored, {} lost",
                f.backlog_per_agent,
                f.agents_drained,
                self.agents,
                f.snapshots_stored,
                f.snapshots_expected,
                f.lost
            ));
        }
        out.join("\n")
    }
}

fn errors(e: &BTreeMap<String, u64>) -> String {
    if e.is_empty() {
        return "none".into();
    }
    e.iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_costs() {
        let mut s = Inner {
            acked_calls: 1000,
            acked_snapshots: 1500,
            ..Default::default()
        };
        s.call_latency.record(2000);
        s.errors.insert("Unavailable".into(), 2);
        let sum = Summary::from_window("steady", 10, Duration::from_secs(10), &s);
        assert_eq!(
            (sum.reports_per_second, sum.snapshots_per_second),
            (100.0, 150.0)
        );
        assert_eq!(sum.latency.p50_ms, 2.0);
        assert_eq!(per_1000(Duration::from_millis(500), 1000), 500.0);
        assert_eq!(per_1000(Duration::from_secs(1), 0), 0.0);
        let text = sum.text();
        assert!(text.contains("Unavailable 2"), "{text}");
        let json = serde_json::to_value(&sum).expect("json");
        assert_eq!(json["acked_reports"], 1000);
    }

    #[test]
    fn the_floor_run_counts_calls_not_reports() {
        let s = Inner {
            acked_calls: 500,
            acked_snapshots: 500,
            ..Default::default()
        };
        let text = Summary::from_window("floor", 10, Duration::from_secs(5), &s).text();
        assert!(
            text.contains("answered: 500 health checks (100.0/s), no reports"),
            "{text}"
        );
        assert!(text.contains("ms per 1000 calls"), "{text}");
        assert!(!text.contains("reports ("), "{text}");
    }
}
