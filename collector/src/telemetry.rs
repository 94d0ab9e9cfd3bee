//! The collector's Prometheus metrics, served at `/metrics` on the HTTP listener (`crate::web`;
//! docs/metrics.md lists every family). Two sources, rendered one after the other:
//!
//! - the collector's own health (reports, ingest and commit latency, group sizes, alert
//!   latency, feeds), recorded where it happens with the `metrics` macros into one
//!   process-global recorder that [`init`] installs once. Several collectors in one process
//!   (the in-process tests) share it, which is fine for counters of work done;
//! - the fleet gauges (hosts by status, open tickets, the oldest unacknowledged P1, agents by
//!   version), computed at scrape time from *this* collector's store (`store::fleet_stats`)
//!   into a fresh recorder used only for that render ([`metrics::with_local_recorder`]), so two
//!   collectors in one process never mix their fleets. The store's answer is kept for
//!   [`FLEET_CACHE`], so a scrape storm costs one query every couple of seconds.
//!
//! Names follow the Prometheus conventions (`firstline_` prefix, `_total` counters, `_seconds`
//! in base units) and every label set is bounded: no host names or agent ids; agent versions
//! (which agents supply) are cleaned, cut to [`MAX_LABEL_CHARS`] and limited to the
//! [`crate::store::VERSION_ROWS`] most common, the rest counted as `other`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::engine::SILENT_RULE;
use crate::store::{FleetStats, HostGroup, Store, StoreError};

/// Reports answered, by outcome (`accepted`, `refused`, `rejected`, `failed`).
pub const REPORTS: &str = "firstline_ingest_reports_total";
/// Snapshots of answered reports, by outcome (`new`, `rejected`).
pub const SNAPSHOTS: &str = "firstline_ingest_snapshots_total";
/// From a report's submission to its answer, for reports that were queued.
pub const INGEST_LATENCY: &str = "firstline_ingest_latency_seconds";
/// One group commit: applying the group and committing it.
pub const COMMIT_DURATION: &str = "firstline_store_commit_duration_seconds";
/// Reports per group commit.
pub const GROUP_REPORTS: &str = "firstline_ingest_group_reports";
/// Snapshots per group commit.
pub const GROUP_SNAPSHOTS: &str = "firstline_ingest_group_snapshots";
/// From when an agent observed a condition to when its ticket opened.
pub const ALERT_LATENCY: &str = "firstline_alert_latency_seconds";
/// Events delivered by a feed.
pub const FEED_DELIVERIES: &str = "firstline_feed_deliveries_total";
/// Failed delivery attempts of a feed.
pub const FEED_FAILURES: &str = "firstline_feed_delivery_failures_total";
/// From a ticket opening to its help-desk ticket existing, by help desk (`helpdesk:rt`).
pub const HELPDESK_LATENCY: &str = "firstline_helpdesk_ticket_latency_seconds";
/// Client certificates issued to agents, by how (`enrollment`, `renewal`).
pub const CERTIFICATES_ISSUED: &str = "firstline_agent_certificates_issued_total";
/// Calls refused by a rate limit, by limit (`agent_reports`, `reports`, `enrollments_per_ip`).
pub const RATE_LIMITED: &str = "firstline_rate_limited_total";
/// Events of the log a feed has not delivered yet.
pub const FEED_LAG: &str = "firstline_feed_lag_events";

/// Hosts by status.
pub const HOSTS: &str = "firstline_hosts";
/// Tickets in the queue by priority and rule.
pub const OPEN_TICKETS: &str = "firstline_open_tickets";
/// Age of the oldest P1 ticket not yet acknowledged (0 when there is none).
pub const OLDEST_UNACKED_P1: &str = "firstline_oldest_unacknowledged_p1_age_seconds";
/// Enrolled agents by version.
pub const AGENTS: &str = "firstline_agents";
/// Whether the store answered the fleet queries of this scrape.
pub const FLEET_UP: &str = "firstline_fleet_stats_up";

/// How long the fleet gauges' store answer is reused.
pub const FLEET_CACHE: Duration = Duration::from_secs(2);

/// Longest label value taken from outside (agent versions, rule ids, feed names).
pub const MAX_LABEL_CHARS: usize = 32;

/// Buckets of the request-scale latencies (ingest, commit), in seconds.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the alert latency: a crossing is reported at once, a spooled one much later.
const ALERT_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
];
/// Buckets of the group sizes (reports or snapshots; a group holds at most 1000 of each).
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// How often the global recorder's histograms are folded when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The global recorder's handle, once [`init`] ran (`None`: another recorder was installed).
static GLOBAL: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-global recorder of the health metrics (once; later calls do nothing).
pub fn init() {
    GLOBAL.get_or_init(install);
}

fn install() -> Option<PrometheusHandle> {
    let recorder = match health_builder() {
        Ok(builder) => builder.build_recorder(),
        Err(error) => {
            tracing::error!(%error, "metrics buckets refused; health metrics are off");
            return None;
        }
    };
    let handle = recorder.handle();
    if let Err(error) = metrics::set_global_recorder(recorder) {
        tracing::warn!(%error, "a metrics recorder is already installed; /metrics shows the fleet only");
        return None;
    }
    describe_health();
    // Known from the start, so `rate()` has a zero to begin from.
    for outcome in ["accepted", "refused", "rejected", "failed"] {
        counter!(REPORTS, "outcome" => outcome).increment(0);
    }
    for outcome in ["new", "rejected"] {
        counter!(SNAPSHOTS, "outcome" => outcome).increment(0);
    }
    for how in ["enrollment", "renewal"] {
        counter!(CERTIFICATES_ISSUED, "how" => how).increment(0);
    }
    for limit in ["agent_reports", "reports", "enrollments_per_ip"] {
        counter!(RATE_LIMITED, "limit" => limit).increment(0);
    }
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread; histograms fold at each scrape");
    }
    Some(handle)
}

/// The recorder settings of the health metrics: histograms with buckets.
fn health_builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    let full = |name: &str| Matcher::Full(name.to_owned());
    PrometheusBuilder::new()
        .set_buckets_for_metric(full(INGEST_LATENCY), FAST_BUCKETS)?
        .set_buckets_for_metric(full(COMMIT_DURATION), FAST_BUCKETS)?
        .set_buckets_for_metric(full(ALERT_LATENCY), ALERT_BUCKETS)?
        .set_buckets_for_metric(full(HELPDESK_LATENCY), ALERT_BUCKETS)?
        .set_buckets_for_metric(full(GROUP_REPORTS), GROUP_BUCKETS)?
        .set_buckets_for_metric(full(GROUP_SNAPSHOTS), GROUP_BUCKETS)
}

fn describe_health() {
    describe_counter!(REPORTS, "Agent reports answered, by outcome");
    describe_counter!(SNAPSHOTS, "Snapshots of answered reports, by outcome");
    describe_histogram!(
        INGEST_LATENCY,
        metrics::Unit::Seconds,
        "From a report's submission to its answer (queue, group commit)"
    );
    describe_histogram!(
        COMMIT_DURATION,
        metrics::Unit::Seconds,
        "Applying and committing one group of reports"
    );
    describe_histogram!(GROUP_REPORTS, "Reports per group commit");
    describe_histogram!(GROUP_SNAPSHOTS, "Snapshots per group commit");
    describe_histogram!(
        ALERT_LATENCY,
        metrics::Unit::Seconds,
        "From when an agent observed a condition (collector clock) to its ticket opening"
    );
    describe_histogram!(
        HELPDESK_LATENCY,
        metrics::Unit::Seconds,
        "From a ticket opening to its help-desk ticket existing"
    );
    describe_counter!(FEED_DELIVERIES, "Events delivered by a feed");
    describe_counter!(FEED_FAILURES, "Failed delivery attempts of a feed");
    describe_gauge!(FEED_LAG, "Events of the log a feed has not delivered yet");
    describe_counter!(
        CERTIFICATES_ISSUED,
        "Client certificates issued to agents, by how (enrollment, renewal)"
    );
    describe_counter!(
        RATE_LIMITED,
        "Calls refused by a rate limit ([limits]), by limit"
    );
}

/// A call was refused by the rate limit `limit` (`rate_limits::Limit::label`).
pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// A certificate was issued to an agent: `how` is `enrollment` or `renewal`.
pub fn certificate_issued(how: &'static str) {
    counter!(CERTIFICATES_ISSUED, "how" => how).increment(1);
}

// ---- recording points ----------------------------------------------------------------------

/// A report was refused before queueing (the queue is full; the agent comes back later).
pub fn report_refused() {
    counter!(REPORTS, "outcome" => "refused").increment(1);
}

/// How a queued report was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportAnswer {
    /// Stored: `new` snapshots new, `rejected` refused alone.
    Accepted { new: usize, rejected: usize },
    /// The store refused the report for good.
    Rejected,
    /// A failure that can pass (the group commit failed); the agent sends it again.
    Failed,
}

/// A queued report was answered `latency` after it was submitted.
pub fn report_answered(answer: ReportAnswer, latency: Duration) {
    let outcome = match answer {
        ReportAnswer::Accepted { new, rejected } => {
            counter!(SNAPSHOTS, "outcome" => "new").increment(new as u64);
            counter!(SNAPSHOTS, "outcome" => "rejected").increment(rejected as u64);
            "accepted"
        }
        ReportAnswer::Rejected => "rejected",
        ReportAnswer::Failed => "failed",
    };
    counter!(REPORTS, "outcome" => outcome).increment(1);
    histogram!(INGEST_LATENCY).record(latency.as_secs_f64());
}

/// A group of `reports` reports holding `snapshots` snapshots was applied and committed (or
/// failed) in `duration`.
pub fn group_committed(reports: usize, snapshots: usize, duration: Duration) {
    histogram!(COMMIT_DURATION).record(duration.as_secs_f64());
    histogram!(GROUP_REPORTS).record(reports as f64);
    histogram!(GROUP_SNAPSHOTS).record(snapshots as f64);
}

/// A ticket opened (or reopened) from a report, committed at `now_ms`, for a condition the
/// agent observed at `observed_at_ms` (the snapshot's time, skew-corrected by `report`).
pub fn alert_opened(observed_at_ms: i64, now_ms: i64) {
    let seconds = (now_ms.saturating_sub(observed_at_ms)).max(0) as f64 / 1000.0;
    histogram!(ALERT_LATENCY).record(seconds);
}

/// A feed delivered an event.
pub fn feed_delivered(feed: &str) {
    counter!(FEED_DELIVERIES, "feed" => label(feed)).increment(1);
}

/// A help desk got its ticket for a Firstline ticket `ms` after that ticket opened.
pub fn helpdesk_opened(feed: &str, ms: i64) {
    histogram!(HELPDESK_LATENCY, "feed" => label(feed)).record(ms.max(0) as f64 / 1000.0);
}

/// A feed's delivery attempt failed.
pub fn feed_failed(feed: &str) {
    counter!(FEED_FAILURES, "feed" => label(feed)).increment(1);
}

/// A feed has `events` events of the log still to deliver.
pub fn feed_lag(feed: &str, events: i64) {
    gauge!(FEED_LAG, "feed" => label(feed)).set(events.max(0) as f64);
}

// ---- the fleet gauges ----------------------------------------------------------------------

/// A host's status, as the fleet gauges count it. Decided from what the store holds and the
/// sweep already decided (it opens the "agent silent" ticket after three report intervals
/// without a report, and the next report resolves it), never from a second timer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    /// Reports, and no "agent silent" ticket is open.
    Reporting,
    /// An "agent silent" ticket is open.
    Silent,
    /// Enrolled, never reported.
    NeverReported,
    /// No valid certificate left: it cannot report.
    Revoked,
}

impl HostStatus {
    pub const ALL: [Self; 4] = [
        Self::Reporting,
        Self::Silent,
        Self::NeverReported,
        Self::Revoked,
    ];

    /// The status of the hosts of one group.
    pub fn of(group: &HostGroup) -> Self {
        if group.revoked {
            Self::Revoked
        } else if !group.reported {
            Self::NeverReported
        } else if group.silent_ticket {
            Self::Silent
        } else {
            Self::Reporting
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reporting => "reporting",
            Self::Silent => "silent",
            Self::NeverReported => "never_reported",
            Self::Revoked => "revoked",
        }
    }
}

/// A label value from outside: letters, digits and `. _ + -` kept, anything else `_`, at
/// most [`MAX_LABEL_CHARS`] characters, `unknown` when empty.
pub fn label(raw: &str) -> String {
    let cleaned: String = raw
        .trim()
        .chars()
        .take(MAX_LABEL_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

/// Agents by version label: the versions read (the most common ones, raw) cleaned and merged,
/// everything else of `total` as `other`.
pub fn version_labels(versions: &[(String, i64)], total: i64) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for (raw, n) in versions.iter().take(crate::store::VERSION_ROWS as usize) {
        let name = label(raw);
        match out.iter_mut().find(|(v, _)| *v == name) {
            Some((_, count)) => *count += n,
            None => out.push((name, *n)),
        }
    }
    let listed: i64 = versions
        .iter()
        .take(crate::store::VERSION_ROWS as usize)
        .map(|(_, n)| n)
        .sum();
    if total > listed {
        match out.iter_mut().find(|(v, _)| v == "other") {
            Some((_, count)) => *count += total - listed,
            None => out.push(("other".to_owned(), total - listed)),
        }
    }
    out
}

/// The fleet gauges of one collector, with the store's last answer.
#[derive(Debug, Default)]
pub struct FleetGauges {
    /// When the store was last asked, and its answer (`None`: it failed). The lock is held
    /// during the query, so concurrent scrapes wait for one query instead of each sending one.
    last: tokio::sync::Mutex<Option<(Instant, Option<FleetStats>)>>,
}

impl FleetGauges {
    /// The fleet in numbers, from the store at most every [`FLEET_CACHE`].
    async fn stats(&self, store: &Store) -> Option<FleetStats> {
        let mut last = self.last.lock().await;
        if let Some((at, stats)) = last.as_ref()
            && at.elapsed() < FLEET_CACHE
        {
            return stats.clone();
        }
        let stats = match store.fleet_stats(SILENT_RULE).await {
            Ok(stats) => Some(stats),
            Err(error) => {
                warn_store(&error);
                None
            }
        };
        *last = Some((Instant::now(), stats.clone()));
        stats
    }
}

fn warn_store(error: &StoreError) {
    tracing::warn!(%error, "fleet metrics: the store did not answer; serving health metrics only");
}

/// The whole `/metrics` answer at `now_ms`: the health metrics, then this collector's fleet.
pub async fn render(fleet: &FleetGauges, store: &Store, now_ms: i64) -> String {
    let stats = fleet.stats(store).await;
    let mut out = GLOBAL
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&render_fleet(stats.as_ref(), now_ms));
    out
}

/// The fleet gauges in the text format, rendered by a recorder of their own.
pub fn render_fleet(stats: Option<&FleetStats>, now_ms: i64) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!(
            FLEET_UP,
            "1 when the store answered the fleet queries of this scrape"
        );
        gauge!(FLEET_UP).set(if stats.is_some() { 1.0 } else { 0.0 });
        let Some(stats) = stats else {
            return;
        };
        describe_gauge!(HOSTS, "Enrolled hosts by status");
        for status in HostStatus::ALL {
            let n: i64 = stats
                .hosts
                .iter()
                .filter(|g| HostStatus::of(g) == status)
                .map(|g| g.hosts)
                .sum();
            gauge!(HOSTS, "status" => status.as_str()).set(n as f64);
        }
        describe_gauge!(
            OPEN_TICKETS,
            "Tickets in the queue (new or acknowledged) by priority and rule"
        );
        for t in &stats.open_tickets {
            gauge!(OPEN_TICKETS, "priority" => format!("P{}", t.priority), "rule" => label(&t.rule_id))
                .increment(t.tickets as f64);
        }
        describe_gauge!(
            OLDEST_UNACKED_P1,
            metrics::Unit::Seconds,
            "Age of the oldest P1 ticket not acknowledged yet (0 when there is none)"
        );
        let age_ms = stats
            .oldest_unacknowledged_p1_ms
            .map_or(0, |at| now_ms.saturating_sub(at).max(0));
        gauge!(OLDEST_UNACKED_P1).set(age_ms as f64 / 1000.0);
        describe_gauge!(AGENTS, "Enrolled agents by the version they reported");
        for (version, n) in version_labels(&stats.versions, stats.agents_total) {
            gauge!(AGENTS, "version" => version).set(n as f64);
        }
    });
    recorder.handle().render()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::OpenTickets;

    fn stats() -> FleetStats {
        FleetStats {
            hosts: vec![
                HostGroup {
                    revoked: false,
                    reported: true,
                    silent_ticket: false,
                    hosts: 5,
                },
                HostGroup {
                    revoked: false,
                    reported: true,
                    silent_ticket: true,
                    hosts: 2,
                },
                HostGroup {
                    revoked: true,
                    reported: true,
                    silent_ticket: true,
                    hosts: 1,
                },
            ],
            open_tickets: vec![
                OpenTickets {
                    priority: 1,
                    rule_id: "disk.usage".into(),
                    tickets: 1,
                },
                OpenTickets {
                    priority: 2,
                    rule_id: "disk.usage".into(),
                    tickets: 3,
                },
            ],
            oldest_unacknowledged_p1_ms: Some(1_000),
            versions: vec![("0.1.0".into(), 7), (String::new(), 1)],
            agents_total: 8,
        }
    }

    /// The metric families (`# TYPE name kind`) of a render, each once.
    fn families(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect()
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn the_fleet_render_holds_every_family_with_its_counts() {
        let text = render_fleet(Some(&stats()), 61_000);
        let names: BTreeSet<String> = families(&text).into_iter().collect();
        for family in [HOSTS, OPEN_TICKETS, OLDEST_UNACKED_P1, AGENTS, FLEET_UP] {
            assert!(names.contains(family), "{family} missing:\n{text}");
        }
        assert_eq!(
            value(&text, "firstline_hosts{status=\"reporting\"}"),
            Some(5.0)
        );
        assert_eq!(
            value(&text, "firstline_hosts{status=\"silent\"}"),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "firstline_hosts{status=\"revoked\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "firstline_hosts{status=\"never_reported\"}"),
            Some(0.0)
        );
        assert_eq!(
            value(
                &text,
                "firstline_open_tickets{priority=\"P2\",rule=\"disk.usage\"}"
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(value(&text, OLDEST_UNACKED_P1), Some(60.0));
        assert_eq!(
            value(&text, "firstline_agents{version=\"unknown\"}"),
            Some(1.0)
        );
        assert_eq!(value(&text, FLEET_UP), Some(1.0));
    }

    #[test]
    fn a_failed_store_leaves_only_the_up_gauge_at_zero() {
        let text = render_fleet(None, 0);
        assert_eq!(families(&text), vec![FLEET_UP.to_owned()]);
        assert_eq!(value(&text, FLEET_UP), Some(0.0));
    }

    #[tokio::test]
    async fn health_and_fleet_render_together_each_family_once() {
        init();
        report_answered(
            ReportAnswer::Accepted {
                new: 1,
                rejected: 0,
            },
            Duration::from_millis(3),
        );
        report_refused();
        group_committed(1, 1, Duration::from_millis(2));
        alert_opened(1_000, 3_500);
        feed_delivered("pager");
        feed_failed("pager");
        feed_lag("pager", 4);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("m.db").display()))
            .await
            .expect("store");
        let fleet = FleetGauges::default();
        let text = render(&fleet, &store, crate::clock::now_ms()).await;
        let all = families(&text);
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "a family twice:\n{text}");
        for family in [
            REPORTS,
            SNAPSHOTS,
            INGEST_LATENCY,
            COMMIT_DURATION,
            GROUP_REPORTS,
            GROUP_SNAPSHOTS,
            ALERT_LATENCY,
            FEED_DELIVERIES,
            FEED_FAILURES,
            FEED_LAG,
            HOSTS,
            OLDEST_UNACKED_P1,
            FLEET_UP,
        ] {
            assert!(
                unique.contains(&family.to_owned()),
                "{family} missing:\n{text}"
            );
        }
        // An empty store has no ticket and no agent to count: no series (PromQL: `or vector(0)`).
        assert!(!unique.contains(&OPEN_TICKETS.to_owned()), "{text}");
        assert!(
            text.contains("firstline_alert_latency_seconds_bucket{le=\"5\"}"),
            "the alert latency is a histogram with buckets:\n{text}"
        );
        assert_eq!(
            value(&text, "firstline_hosts{status=\"reporting\"}"),
            Some(0.0)
        );
        assert_eq!(value(&text, FLEET_UP), Some(1.0));
        // A second scrape within the cache time answers from it.
        let again = render(&fleet, &store, crate::clock::now_ms()).await;
        assert_eq!(value(&again, FLEET_UP), Some(1.0));
    }

    #[test]
    fn version_labels_are_bounded_and_cleaned() {
        let versions: Vec<(String, i64)> = (0..50)
            .map(|i| (format!("1.{i}.0\"}} evil\n{}", "x".repeat(100)), 1))
            .collect();
        let labels = version_labels(&versions, 60);
        assert!(
            labels.len() <= crate::store::VERSION_ROWS as usize + 1,
            "{labels:?}"
        );
        assert_eq!(labels.iter().map(|(_, n)| n).sum::<i64>(), 60);
        assert_eq!(labels.last(), Some(&("other".to_owned(), 40)));
        for (v, _) in &labels {
            assert!(v.chars().count() <= MAX_LABEL_CHARS, "{v}");
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)),
                "{v}"
            );
        }
        // Two raw versions that clean to one label are one series.
        let merged = version_labels(&[("1.0 ".into(), 2), ("1.0".into(), 3)], 5);
        assert_eq!(merged, vec![("1.0".to_owned(), 5)]);
        assert_eq!(label(""), "unknown");
    }

    #[test]
    fn a_host_status_follows_revocation_first_then_reports_then_the_silent_ticket() {
        let g = |revoked, reported, silent_ticket| HostGroup {
            revoked,
            reported,
            silent_ticket,
            hosts: 1,
        };
        assert_eq!(HostStatus::of(&g(true, true, false)), HostStatus::Revoked);
        assert_eq!(
            HostStatus::of(&g(false, false, false)),
            HostStatus::NeverReported
        );
        assert_eq!(HostStatus::of(&g(false, true, true)), HostStatus::Silent);
        assert_eq!(
            HostStatus::of(&g(false, true, false)),
            HostStatus::Reporting
        );
    }
}
