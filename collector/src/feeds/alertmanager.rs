//! The Alertmanager feed (`[[feeds.alertmanager]]`, docs/feeds.md "Alertmanager"): every open
//! ticket that passes the feed's filter is an alert pushed to `POST {url}/api/v2/alerts`, with
//! the labels and annotations a webhook in Alertmanager format carries
//! (`payload::alert_labels`, `payload::alert_annotations`), so silences, inhibitions and routes
//! written for one match the other.
//!
//! Alertmanager forgets an alert whose `endsAt` passed, so while a ticket is open its alert is
//! pushed with `endsAt` = now + 4 × `resend` and pushed again every `resend` (a collector that
//! dies lets its alerts lapse after four missed refreshes, never sooner). When a ticket
//! resolves or closes (or goes under an outage) its alert is pushed once more with `endsAt` =
//! the resolution time, which ends it in Alertmanager at once. Resolutions are taken from the
//! event log from the feed's cursor (`alertmanager:<name>`), moved only after Alertmanager
//! accepted the round, so a restart still ends the alerts of tickets resolved meanwhile. A
//! new event (a local commit, or one seen on the poll of the log) pushes the tickets it is
//! about at once; the full refresh lists every open ticket.
//!
//! The feed also remembers (in memory) the labels it pushed per ticket: when they change (a
//! priority raise, new host labels) or a ticket stops matching the filter, the old alert is
//! ended rather than left to lapse. Posts carry at most [`BATCH`] alerts. A failed round is
//! logged (once, until a round goes through again), shown by `feeds list` and tried again on
//! the next refresh. Runs only on the replica holding the duty lease.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::AlertmanagerConfig;
use super::filter::FeedFilter;
use super::{FeedContext, PAGE, POLL_EVERY, payload};
use crate::clock::now_ms;
use crate::service::FeedTestOutcome;
use crate::store::{AlertEvent, EventFilter, StoreError};
use crate::telemetry;

/// Most alerts in one request.
pub const BATCH: usize = 500;
/// An open ticket's alert lasts this many refreshes without being pushed again.
pub const LAPSE_AFTER_REFRESHES: u32 = 4;
/// Pages of the log read in one round; the rest waits for the next one.
const MAX_LOG_PAGES: usize = 20;
/// Longest part of a refusal's body kept in the error.
const MAX_BODY_CHARS: usize = 300;

/// What can go wrong pushing to Alertmanager.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    #[error("{0}")]
    Client(String),
    #[error("{method} {url}: {source}")]
    Request {
        method: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: HTTP {status}: {body}")]
    Refused {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: not an Alertmanager status: {source}")]
    Status {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One alert as API v2 takes it (`postableAlert`). `generatorURL` is left out: the collector
/// has no address of its own to link back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
}

/// A ticket's labels as pushed.
type Labels = BTreeMap<String, String>;

/// `endsAt` of an open ticket's alert pushed at `now_ms`.
pub fn firing_ends_at(now_ms: i64, resend: Duration) -> i64 {
    let lapse = resend.saturating_mul(LAPSE_AFTER_REFRESHES);
    now_ms.saturating_add(i64::try_from(lapse.as_millis()).unwrap_or(i64::MAX))
}

/// `endsAt` of a ticket that is no longer open: when it resolved (a closed ticket that never
/// resolved, or one put under an outage: its latest event), never before it opened
/// (Alertmanager refuses an alert that ends before it starts).
pub fn ended_at(alert: &AlertEvent) -> i64 {
    alert
        .ticket
        .resolved_at_ms
        .unwrap_or(alert.event.at_ms)
        .max(alert.ticket.opened_at_ms)
}

/// The labels of an alert, without empty values (Alertmanager treats them as absent).
fn labels_of(alert: &AlertEvent) -> Labels {
    let mut labels = payload::alert_labels(alert);
    labels.retain(|_, v| !v.is_empty());
    labels
}

/// The alert of `alert`'s ticket ending at `ends_at_ms`, with `labels`.
fn postable(alert: &AlertEvent, labels: Labels, ends_at_ms: i64) -> PostableAlert {
    let mut annotations = payload::alert_annotations(alert);
    annotations.retain(|_, v| !v.is_empty());
    PostableAlert {
        labels,
        annotations,
        starts_at: payload::rfc3339(alert.ticket.opened_at_ms),
        ends_at: payload::rfc3339(ends_at_ms.max(alert.ticket.opened_at_ms)),
    }
}

/// What one round pushes, and what the feed remembers once Alertmanager took it.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    alerts: Vec<PostableAlert>,
    /// The labels of every alert pushed as firing, per ticket, after this round.
    pushed: HashMap<i64, Labels>,
}

/// Decides a round. `open`: every open ticket (a full refresh) or nothing (a round for new
/// events only); `touched`: the tickets of the events read from the log, latest state;
/// `pushed`: what earlier rounds pushed as firing.
fn plan(
    open: &[AlertEvent],
    touched: &[AlertEvent],
    pushed: &HashMap<i64, Labels>,
    full: bool,
    filter: &FeedFilter,
    now_ms: i64,
    resend: Duration,
) -> Plan {
    let firing_until = firing_ends_at(now_ms, resend);
    let mut out = Plan::default();
    let mut ended: HashMap<i64, i64> = HashMap::new();
    let firing = open
        .iter()
        .chain(touched.iter().filter(|a| a.ticket.state.is_open()))
        .filter(|a| filter.matches(a));
    for a in firing {
        let id = a.ticket.id;
        if out.pushed.contains_key(&id) {
            continue;
        }
        let labels = labels_of(a);
        out.alerts.push(postable(a, labels.clone(), firing_until));
        out.pushed.insert(id, labels);
    }
    for a in touched.iter().filter(|a| !a.ticket.state.is_open()) {
        let at = ended_at(a);
        ended.insert(a.ticket.id, at);
        if filter.matches(a) {
            out.alerts.push(postable(a, labels_of(a), at));
        }
    }
    // What was pushed before under other labels, or is no longer pushed at all, ends too: at
    // its ticket's resolution when that is known, else now. A round for new events only looks
    // at the tickets they are about.
    let mut stale: Vec<(&i64, &Labels)> = pushed
        .iter()
        .filter(|(id, _)| full || touched.iter().any(|a| a.ticket.id == **id))
        .filter(|(id, labels)| out.pushed.get(id) != Some(labels))
        .collect();
    stale.sort_by_key(|(id, _)| **id);
    for (id, labels) in stale {
        let Some(a) = open.iter().chain(touched).find(|a| a.ticket.id == *id) else {
            // The ticket is gone from what was read (deleted, or not open in a full
            // refresh without an event since): end it now with what was pushed.
            out.alerts.push(PostableAlert {
                labels: labels.clone(),
                annotations: BTreeMap::new(),
                starts_at: payload::rfc3339(now_ms),
                ends_at: payload::rfc3339(now_ms),
            });
            continue;
        };
        let at = ended.get(id).copied().unwrap_or(now_ms);
        if ended.contains_key(id) && labels_of(a) == *labels && filter.matches(a) {
            continue; // already ended above with these labels
        }
        out.alerts.push(postable(a, labels.clone(), at));
    }
    // Tickets pushed before and untouched by a round for new events stay remembered.
    if !full {
        for (id, labels) in pushed {
            if !ended.contains_key(id) && !touched.iter().any(|a| a.ticket.id == *id) {
                out.pushed.entry(*id).or_insert_with(|| labels.clone());
            }
        }
    }
    out
}

/// What the feed keeps between rounds.
#[derive(Debug, Default)]
struct State {
    pushed: HashMap<i64, Labels>,
    /// Whether the last round failed (failures are logged once).
    failing: bool,
}

/// What a round did.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Nothing new, nothing due.
    Idle,
    /// Alertmanager took this many alerts.
    Pushed(usize),
}

/// Posts `alerts` in batches.
async fn post(
    client: &reqwest::Client,
    url: &str,
    alerts: &[PostableAlert],
) -> Result<(), AlertmanagerError> {
    for batch in alerts.chunks(BATCH) {
        let resp = client
            .post(url)
            .json(batch)
            .send()
            .await
            .map_err(|source| AlertmanagerError::Request {
                method: "POST",
                url: url.to_owned(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(AlertmanagerError::Refused {
                method: "POST",
                url: url.to_owned(),
                status: status.as_u16(),
                body: body.trim().chars().take(MAX_BODY_CHARS).collect(),
            });
        }
    }
    Ok(())
}

/// One round: the events after the feed's cursor, the open tickets on a full refresh, one
/// push, then the cursor.
async fn round(
    cfg: &AlertmanagerConfig,
    ctx: &FeedContext,
    client: &reqwest::Client,
    state: &mut State,
    full: bool,
) -> Result<Round, AlertmanagerError> {
    let feed = cfg.feed_name();
    let cursor = ctx.start_cursor(&feed).await?;
    let mut touched: BTreeMap<i64, AlertEvent> = BTreeMap::new();
    let mut read_to = cursor;
    for _ in 0..MAX_LOG_PAGES {
        let page = ctx
            .store
            .events_since(read_to, &EventFilter::default(), PAGE)
            .await?;
        let Some(last) = page.last().map(|a| a.event.cursor) else {
            break;
        };
        read_to = last;
        let short = page.len() < PAGE as usize;
        for a in page {
            // The ticket is as it is now in every row; the latest event is kept.
            touched.insert(a.ticket.id, a);
        }
        if short {
            break;
        }
    }
    if !full && touched.is_empty() {
        return Ok(Round::Idle);
    }
    let mut open = Vec::new();
    if full {
        let mut after = 0;
        loop {
            let page = ctx.store.open_alerts(after, PAGE).await?;
            let Some(last) = page.last().map(|a| a.ticket.id) else {
                break;
            };
            after = last;
            let short = page.len() < PAGE as usize;
            open.extend(page);
            if short {
                break;
            }
        }
    }
    let touched: Vec<AlertEvent> = touched.into_values().collect();
    let plan = plan(
        &open,
        &touched,
        &state.pushed,
        full,
        &cfg.filter,
        now_ms(),
        cfg.resend,
    );
    if !plan.alerts.is_empty() {
        post(client, &format!("{}/api/v2/alerts", cfg.url), &plan.alerts).await?;
    }
    state.pushed = plan.pushed;
    if read_to > cursor {
        ctx.store.set_feed_cursor(&feed, read_to, now_ms()).await?;
    }
    for _ in &plan.alerts {
        telemetry::feed_delivered(&feed);
    }
    telemetry::feed_lag(&feed, ctx.store.events_after(read_to).await?);
    tracing::debug!(
        feed,
        full,
        alerts = plan.alerts.len(),
        firing = state.pushed.len(),
        cursor = read_to,
        "pushed alerts to Alertmanager"
    );
    Ok(Round::Pushed(plan.alerts.len()))
}

/// Runs the feed until shutdown: pushes while this replica holds the duty lease.
pub async fn run(cfg: AlertmanagerConfig, mut ctx: FeedContext) {
    let feed = cfg.feed_name();
    let client = super::http::client(cfg.timeout).map_err(AlertmanagerError::Client);
    let mut events = ctx.store.event_signal();
    let mut state = State::default();
    let mut next_full = Instant::now();
    loop {
        if !ctx.on_duty() {
            // Another replica pushes now; what this one pushed is no longer its to end.
            state.pushed.clear();
            if !ctx.until_duty().await {
                return;
            }
            next_full = Instant::now();
        }
        let now = Instant::now();
        let full = now >= next_full;
        // After a failure, the next try is the next refresh.
        if state.failing && !full {
            if !ctx.wait(&mut events, next_full - now).await {
                return;
            }
            continue;
        }
        let result = match &client {
            Ok(client) => round(&cfg, &ctx, client, &mut state, full).await,
            Err(e) => Err(AlertmanagerError::Client(e.to_string())),
        };
        if full {
            next_full = Instant::now() + cfg.resend;
        }
        match result {
            Ok(r) => {
                if state.failing {
                    tracing::info!(feed, url = %cfg.url, "Alertmanager takes alerts again");
                    state.failing = false;
                }
                if matches!(r, Round::Pushed(n) if n > 0) {
                    ctx.status.delivered(&feed);
                }
            }
            Err(e) => {
                let error = firstline_support::errors::chain(&e);
                if !state.failing {
                    tracing::warn!(
                        feed,
                        error,
                        retry_in = ?cfg.resend,
                        "cannot push alerts to Alertmanager; trying again on the next refresh"
                    );
                    state.failing = true;
                } else {
                    tracing::debug!(feed, error, "Alertmanager still failing");
                }
                ctx.status.failed(&feed, &error);
                telemetry::feed_failed(&feed);
                next_full = Instant::now() + cfg.resend;
            }
        }
        let until_full = next_full.saturating_duration_since(Instant::now());
        if !ctx.wait(&mut events, POLL_EVERY.min(until_full)).await {
            return;
        }
    }
}

/// The parts of `GET /api/v2/status` the test reports.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmStatus {
    #[serde(default)]
    version_info: BTreeMap<String, String>,
    cluster: AmCluster,
    #[serde(default)]
    uptime: String,
}

#[derive(Debug, serde::Deserialize)]
struct AmCluster {
    status: String,
    #[serde(default)]
    peers: Vec<serde_json::Value>,
}

/// `feeds test alertmanager:NAME`: asks `GET {url}/api/v2/status` and reports the version and
/// the cluster's state. Pushes no alert.
pub async fn test(cfg: &AlertmanagerConfig) -> FeedTestOutcome {
    match status(cfg).await {
        Ok(s) => FeedTestOutcome {
            delivered: true,
            detail: format!(
                "Alertmanager {} answers; cluster {} ({} peers), up since {}",
                s.version_info
                    .get("version")
                    .map_or("(version unknown)", String::as_str),
                s.cluster.status,
                s.cluster.peers.len(),
                if s.uptime.is_empty() {
                    "(unknown)"
                } else {
                    &s.uptime
                }
            ),
        },
        Err(e) => FeedTestOutcome {
            delivered: false,
            detail: firstline_support::errors::chain(&e),
        },
    }
}

async fn status(cfg: &AlertmanagerConfig) -> Result<AmStatus, AlertmanagerError> {
    let client = super::http::client(cfg.timeout).map_err(AlertmanagerError::Client)?;
    let url = format!("{}/api/v2/status", cfg.url);
    let shown = super::without_credentials(&url);
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|source| AlertmanagerError::Request {
            method: "GET",
            url: shown.clone(),
            source,
        })?;
    let code = resp.status();
    if !code.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(AlertmanagerError::Refused {
            method: "GET",
            url: shown,
            status: code.as_u16(),
            body: body.trim().chars().take(MAX_BODY_CHARS).collect(),
        });
    }
    resp.json::<AmStatus>()
        .await
        .map_err(|source| AlertmanagerError::Status { url: shown, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{EventKind, Ticket, TicketEvent, TicketState};

    /// 2023-11-14T22:13:20Z
    const T0: i64 = 1_700_000_000_000;
    const RESEND: Duration = Duration::from_secs(60);

    fn alert(id: i64, state: TicketState, priority: u32) -> AlertEvent {
        let resolved = !state.is_open() && state != TicketState::Suppressed;
        AlertEvent {
            event: TicketEvent {
                cursor: id * 10,
                ticket_id: id,
                at_ms: T0 + 30_000,
                observed_at_ms: T0 + 30_000,
                kind: if resolved {
                    EventKind::Resolved
                } else {
                    EventKind::Opened
                },
                actor: "rules".into(),
                detail: String::new(),
            },
            ticket: Ticket {
                id,
                dedupe_key: String::new(),
                agent_id: format!("agent-{id}"),
                hostname: format!("pc-{id}"),
                rule_id: "disk.usage".into(),
                subject: "/".into(),
                state,
                priority,
                opened_priority: priority,
                title: "Disk / almost full".into(),
                occurrences: 1,
                opened_at_ms: T0,
                last_seen_at_ms: T0,
                resolved_at_ms: resolved.then_some(T0 + 20_000),
                last_value: 93.0,
                tier: 1,
                escalated_at_ms: None,
                assignee: String::new(),
                acknowledged_at_ms: None,
                response_due_ms: 0,
                resolve_due_ms: 0,
                kb: String::new(),
                flapping: false,
                clear_since_ms: None,
                parent_id: None,
                linked_hosts: 0,
            },
            labels: Vec::new(),
        }
    }

    fn ticket_of(a: &PostableAlert) -> &str {
        a.labels.get("ticket").map_or("", String::as_str)
    }

    #[test]
    fn an_open_alert_lasts_four_refreshes() {
        assert_eq!(firing_ends_at(T0, RESEND), T0 + 240_000);
        assert_eq!(firing_ends_at(i64::MAX - 1, RESEND), i64::MAX);
    }

    #[test]
    fn an_ended_alert_ends_when_its_ticket_resolved_never_before_it_opened() {
        let a = alert(1, TicketState::Resolved, 2);
        assert_eq!(ended_at(&a), T0 + 20_000);
        let mut closed = alert(1, TicketState::Closed, 2);
        closed.ticket.resolved_at_ms = None;
        assert_eq!(ended_at(&closed), T0 + 30_000);
        closed.event.at_ms = T0 - 5;
        assert_eq!(ended_at(&closed), T0);
    }

    #[test]
    fn the_alert_has_the_api_v2_shape() {
        let a = postable(
            &alert(7, TicketState::New, 2),
            labels_of(&alert(7, TicketState::New, 2)),
            firing_ends_at(T0, RESEND),
        );
        let v = serde_json::to_value(&a).expect("json");
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["endsAt"], "2023-11-14T22:17:20.000Z");
        assert_eq!(v["labels"]["alertname"], "disk.usage");
        assert_eq!(v["labels"]["host"], "pc-7");
        assert_eq!(v["labels"]["priority"], "P2");
        assert_eq!(v["labels"]["ticket"], "7");
        assert_eq!(v["annotations"]["summary"], "Disk / almost full");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["annotations", "endsAt", "labels", "startsAt"]);
    }

    #[test]
    fn a_full_refresh_pushes_every_open_ticket_and_ends_resolved_ones() {
        let open = [
            alert(1, TicketState::New, 2),
            alert(2, TicketState::Acknowledged, 1),
        ];
        let touched = [
            alert(3, TicketState::Resolved, 2),
            alert(2, TicketState::Acknowledged, 1),
        ];
        let p = plan(
            &open,
            &touched,
            &HashMap::new(),
            true,
            &FeedFilter::default(),
            T0,
            RESEND,
        );
        let firing: Vec<(&str, &str)> = p
            .alerts
            .iter()
            .map(|a| (ticket_of(a), a.ends_at.as_str()))
            .collect();
        assert_eq!(
            firing,
            [
                ("1", "2023-11-14T22:17:20.000Z"),
                ("2", "2023-11-14T22:17:20.000Z"),
                ("3", "2023-11-14T22:13:40.000Z"),
            ]
        );
        assert_eq!(p.pushed.len(), 2);
        assert!(p.pushed.contains_key(&1) && p.pushed.contains_key(&2));
    }

    #[test]
    fn the_filter_decides_what_is_pushed() {
        let open = [alert(1, TicketState::New, 2), alert(2, TicketState::New, 4)];
        let filter = FeedFilter {
            max_priority: 2,
            ..FeedFilter::default()
        };
        let p = plan(&open, &[], &HashMap::new(), true, &filter, T0, RESEND);
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(ticket_of(&p.alerts[0]), "1");
    }

    #[test]
    fn changed_labels_end_the_old_alert_now() {
        let before = plan(
            &[alert(1, TicketState::New, 2)],
            &[],
            &HashMap::new(),
            true,
            &FeedFilter::default(),
            T0,
            RESEND,
        );
        // Raised to P1 (an event about the ticket): the P2 alert ends, the P1 one fires.
        let later = T0 + 10_000;
        let p = plan(
            &[],
            &[alert(1, TicketState::New, 1)],
            &before.pushed,
            false,
            &FeedFilter::default(),
            later,
            RESEND,
        );
        let seen: Vec<(&str, &str)> = p
            .alerts
            .iter()
            .map(|a| (a.labels["priority"].as_str(), a.ends_at.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("P1", "2023-11-14T22:17:30.000Z"),
                ("P2", "2023-11-14T22:13:30.000Z"),
            ]
        );
        assert_eq!(p.pushed[&1]["priority"], "P1");
    }

    #[test]
    fn a_round_for_new_events_keeps_the_rest_and_ends_what_resolved() {
        let before = plan(
            &[alert(1, TicketState::New, 2), alert(2, TicketState::New, 2)],
            &[],
            &HashMap::new(),
            true,
            &FeedFilter::default(),
            T0,
            RESEND,
        );
        let p = plan(
            &[],
            &[alert(2, TicketState::Resolved, 2)],
            &before.pushed,
            false,
            &FeedFilter::default(),
            T0 + 40_000,
            RESEND,
        );
        assert_eq!(p.alerts.len(), 1, "{:?}", p.alerts);
        assert_eq!(ticket_of(&p.alerts[0]), "2");
        assert_eq!(p.alerts[0].ends_at, "2023-11-14T22:13:40.000Z");
        assert_eq!(p.pushed.keys().collect::<Vec<_>>(), [&1]);
    }

    #[test]
    fn a_full_refresh_ends_what_is_no_longer_open() {
        let before = plan(
            &[alert(1, TicketState::New, 2), alert(2, TicketState::New, 2)],
            &[],
            &HashMap::new(),
            true,
            &FeedFilter::default(),
            T0,
            RESEND,
        );
        // Ticket 2 is no longer listed open and no event said why (another replica ended it).
        let p = plan(
            &[alert(1, TicketState::New, 2)],
            &[],
            &before.pushed,
            true,
            &FeedFilter::default(),
            T0 + 1_000,
            RESEND,
        );
        let ended: Vec<&PostableAlert> = p.alerts.iter().filter(|a| ticket_of(a) == "2").collect();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].ends_at, "2023-11-14T22:13:21.000Z");
        assert!(!p.pushed.contains_key(&2));
    }
}
