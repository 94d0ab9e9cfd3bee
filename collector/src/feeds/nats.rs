//! The NATS JetStream feed (`[feeds.nats]`, docs/feeds.md "NATS JetStream"): every event of
//! the log that passes the feed's filter is published on `<subject_prefix>.p<priority>` (the
//! ticket's priority now) with Firstline's own JSON body (`payload::firstline_event`, the same
//! as a webhook's) and the headers `Nats-Msg-Id: firstline-<cursor>`, `Firstline-Event-Id:
//! <cursor>` and `Firstline-Event-Kind: <kind>`.
//!
//! Delivery is at least once from the feed's cursor (`nats` in the store): a page of events is
//! published, every `PubAck` awaited, and only then the cursor moved to the last acknowledged
//! event. A collector that dies between the acks and the cursor publishes those events again
//! when it (or another replica) goes on; the message id makes JetStream's duplicate window
//! (two minutes unless the stream says otherwise) drop them, and a consumer that reads later
//! than that can still recognise them by the id.
//!
//! The stream (`stream`, taking `<subject_prefix>.>`) is created when it is missing; an
//! existing stream is used as it is configured. While NATS cannot be reached or refuses, the
//! feed retries the same events with backoff (1 s doubling to 30 s, with jitter), never skipping
//! one, and logs only when its state changes (failing, then delivering again). It runs only
//! on the replica holding the duty lease.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use async_nats::{ConnectOptions, HeaderMap};

use super::config::{NATS_FEED, NatsConfig};
use super::{FeedContext, PAGE, POLL_EVERY, payload};
use crate::clock::now_ms;
use crate::service::FeedTestOutcome;
use crate::store::{AlertEvent, EventFilter, StoreError};
use crate::telemetry;

/// The connection name the server shows (`nats server report connections`).
const CONNECTION_NAME: &str = "firstline-collector";
/// Connecting, a JetStream API request, an acknowledgement: each at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the client pings the server, so a dead connection is noticed.
const PING_EVERY: Duration = Duration::from_secs(20);
/// The first wait after a failure; doubled each time up to [`BACKOFF_MAX`].
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Reconnect attempts the client makes by itself before it gives up (a connection the feed
/// dropped ends then too).
const MAX_RECONNECTS: usize = 10;
/// Failures in a row after which the feed drops its connection and makes a new one.
const DROP_AFTER: u32 = 5;
/// The header with the event's kind.
pub const KIND_HEADER: &str = "Firstline-Event-Kind";
/// The header with the event's cursor.
pub const EVENT_ID_HEADER: &str = "Firstline-Event-Id";

/// What can go wrong on the way to JetStream.
#[derive(Debug, thiserror::Error)]
pub enum NatsFeedError {
    #[error("credentials file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: jetstream::context::CreateStreamError,
    },
    #[error("publish event {cursor} on {subject}: {source}")]
    Publish {
        cursor: i64,
        subject: String,
        #[source]
        source: jetstream::context::PublishError,
    },
    #[error("event {cursor} on {subject} was not acknowledged: {source}")]
    Ack {
        cursor: i64,
        subject: String,
        #[source]
        source: jetstream::context::PublishError,
    },
    #[error("event {cursor} cannot be encoded: {source}")]
    Encode {
        cursor: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NatsFeedError {
    /// Whether publishing failed on a connection that was made: the stream is checked again
    /// before the next try (it may have been deleted), the connection kept (it reconnects by
    /// itself) until [`DROP_AFTER`] failures in a row.
    fn is_publishing(&self) -> bool {
        matches!(
            self,
            Self::Publish { .. } | Self::Ack { .. } | Self::Stream { .. }
        )
    }
}

/// The subject an event of a ticket with `priority` is published on.
pub fn subject(prefix: &str, priority: u32) -> String {
    format!("{prefix}.p{priority}")
}

/// The subject of `feeds test nats`: inside the stream's `<prefix>.>`, outside `<prefix>.p*`.
pub fn test_subject(prefix: &str) -> String {
    format!("{prefix}.test")
}

/// The subjects the stream takes.
pub fn stream_subjects(prefix: &str) -> String {
    format!("{prefix}.>")
}

/// The `Nats-Msg-Id` of the event with `cursor`: stable across restarts and replicas (the
/// cursor is the log's), so JetStream recognises an event published again.
pub fn message_id(cursor: i64) -> String {
    format!("firstline-{cursor}")
}

/// The wait before retry number `failures` (1 for the first retry): [`BACKOFF_INITIAL`]
/// doubled per failure up to [`BACKOFF_MAX`], then cut by up to a half by `jitter` (0 to 1),
/// so replicas or restarts do not retry in step.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let full = BACKOFF_INITIAL
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_MAX);
    full.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// A random number in 0..1 for the jitter (0 when the system has no randomness to give).
fn jitter() -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 0.0,
    }
}

/// A connection and the stream, ready to publish.
struct Publisher {
    js: jetstream::Context,
    /// Whether the stream is known to exist on this connection.
    stream_checked: bool,
}

/// Connects with the configured options and makes sure the stream exists.
async fn connect(cfg: &NatsConfig) -> Result<Publisher, NatsFeedError> {
    let options = match &cfg.credentials_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| NatsFeedError::Credentials {
                path: path.display().to_string(),
                source: e,
            })?,
        None => ConnectOptions::new(),
    };
    let client = options
        .name(CONNECTION_NAME)
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .ping_interval(PING_EVERY)
        // The client reconnects by itself with this backoff, a bounded number of times; the
        // feed drops a connection that keeps failing and connects again after its own
        // backoff.
        .max_reconnects(MAX_RECONNECTS)
        .reconnect_delay_callback(|attempts| {
            backoff(u32::try_from(attempts).unwrap_or(u32::MAX), jitter())
        })
        .event_callback(|event| async move {
            tracing::debug!(feed = NATS_FEED, %event, "NATS connection event");
        })
        .connect(cfg.url.as_str())
        .await
        .map_err(|source| NatsFeedError::Connect {
            url: super::without_credentials(&cfg.url),
            source,
        })?;
    let js = jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .ack_timeout(REQUEST_TIMEOUT)
        .build(client);
    ensure_stream(&js, cfg).await?;
    Ok(Publisher {
        js,
        stream_checked: true,
    })
}

/// The feed's cursor (stored now for a new feed), then a connection.
async fn connect_from_cursor(
    cfg: &NatsConfig,
    ctx: &FeedContext,
) -> Result<Publisher, NatsFeedError> {
    ctx.start_cursor(NATS_FEED).await?;
    connect(cfg).await
}

/// Creates the stream when it is missing; an existing one is kept as it is (a warning when it
/// does not take the feed's subjects: publishing then fails with "no responders").
async fn ensure_stream(js: &jetstream::Context, cfg: &NatsConfig) -> Result<(), NatsFeedError> {
    let wanted = stream_subjects(&cfg.subject_prefix);
    let s = js
        .get_or_create_stream(stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![wanted.clone()],
            ..Default::default()
        })
        .await
        .map_err(|source| NatsFeedError::Stream {
            stream: cfg.stream.clone(),
            source,
        })?;
    let subjects = &s.cached_info().config.subjects;
    if !subjects.iter().any(|x| *x == wanted || x == ">") {
        tracing::warn!(
            feed = NATS_FEED,
            stream = cfg.stream,
            subjects = ?subjects,
            wanted,
            "the existing stream may not take the feed's subjects"
        );
    }
    Ok(())
}

/// The headers of an event's message.
fn headers(alert: &AlertEvent) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        async_nats::header::NATS_MESSAGE_ID,
        message_id(alert.event.cursor).as_str(),
    );
    h.insert(EVENT_ID_HEADER, alert.event.cursor.to_string().as_str());
    h.insert(KIND_HEADER, alert.event.kind.as_str());
    h
}

/// The cursor a page was handed on up to: its last event when nothing failed, else the last
/// event before `first_missing` (the first event not in the stream), else `cursor`.
fn handed_on(page: impl IntoIterator<Item = i64>, first_missing: Option<i64>, cursor: i64) -> i64 {
    page.into_iter()
        .filter(|c| first_missing.is_none_or(|m| *c < m))
        .max()
        .unwrap_or(cursor)
        .max(cursor)
}

/// What one pass over the log did.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    /// Nothing after the cursor: wait for new events.
    Idle,
    /// A page went out; there may be more.
    Page,
}

/// Publishes the next page of events after the stored cursor and moves the cursor past the
/// acknowledged ones.
async fn pass(
    cfg: &NatsConfig,
    ctx: &FeedContext,
    p: &mut Publisher,
) -> Result<Pass, NatsFeedError> {
    if !p.stream_checked {
        ensure_stream(&p.js, cfg).await?;
        p.stream_checked = true;
    }
    let cursor = ctx.start_cursor(NATS_FEED).await?;
    let page = ctx
        .store
        .events_since(cursor, &EventFilter::default(), PAGE)
        .await?;
    if page.is_empty() {
        telemetry::feed_lag(NATS_FEED, 0);
        return Ok(Pass::Idle);
    }
    // Published in log order, then each ack awaited in the same order. On a failure the
    // cursor moves to the last event before the first one not acknowledged: everything up to
    // it is in the stream or filtered out.
    let mut sent: Vec<(i64, String, PublishAckFuture)> = Vec::new();
    let mut outcome = Ok(());
    let mut first_missing: Option<i64> = None;
    for alert in &page {
        if !cfg.filter.matches(alert) {
            continue;
        }
        let c = alert.event.cursor;
        let subject = subject(&cfg.subject_prefix, alert.ticket.priority);
        let published = match serde_json::to_vec(&payload::firstline_event(alert)) {
            Ok(body) => {
                p.js.publish_with_headers(subject.clone(), headers(alert), body.into())
                    .await
                    .map_err(|source| NatsFeedError::Publish {
                        cursor: c,
                        subject: subject.clone(),
                        source,
                    })
            }
            Err(source) => Err(NatsFeedError::Encode { cursor: c, source }),
        };
        match published {
            Ok(ack) => sent.push((c, subject, ack)),
            Err(e) => {
                outcome = Err(e);
                first_missing = Some(c);
                break;
            }
        }
    }
    let published = sent.len();
    let mut duplicates = 0usize;
    let mut acked = 0usize;
    for (c, subject, ack) in sent {
        match ack.await {
            Ok(a) => {
                acked += 1;
                duplicates += usize::from(a.duplicate);
                telemetry::feed_delivered(NATS_FEED);
            }
            Err(source) => {
                // An ack that failed comes before any publish that failed.
                outcome = Err(NatsFeedError::Ack {
                    cursor: c,
                    subject,
                    source,
                });
                first_missing = Some(c);
                break;
            }
        }
    }
    let done = handed_on(page.iter().map(|a| a.event.cursor), first_missing, cursor);
    if done > cursor {
        ctx.store.set_feed_cursor(NATS_FEED, done, now_ms()).await?;
    }
    if acked > 0 {
        ctx.status.delivered(NATS_FEED);
    }
    if duplicates > 0 {
        tracing::info!(
            feed = NATS_FEED,
            duplicates,
            from = cursor,
            to = done,
            "JetStream dropped events published again as duplicates"
        );
    }
    tracing::debug!(
        feed = NATS_FEED,
        published,
        acked,
        from = cursor,
        to = done,
        "published a page of events"
    );
    telemetry::feed_lag(NATS_FEED, ctx.store.events_after(done).await?);
    outcome.map(|()| Pass::Page)
}

/// Runs the feed until shutdown: publishes while this replica holds the duty lease.
pub async fn run(cfg: NatsConfig, mut ctx: FeedContext) {
    let mut events = ctx.store.event_signal();
    let mut publisher: Option<Publisher> = None;
    // Consecutive failures; the first one and the recovery are logged, not every retry.
    let mut failures: u32 = 0;
    loop {
        if !ctx.on_duty() {
            // A standby replica holds no connection.
            publisher = None;
        }
        if !ctx.until_duty().await {
            return;
        }
        let result = match &mut publisher {
            Some(p) => pass(&cfg, &ctx, p).await,
            // The cursor is taken before connecting, so a feed configured for the first
            // time starts where the log was when it started, even while NATS is down.
            None => match connect_from_cursor(&cfg, &ctx).await {
                Ok(mut p) => {
                    tracing::debug!(feed = NATS_FEED, url = %super::without_credentials(&cfg.url), "connected to NATS");
                    let r = pass(&cfg, &ctx, &mut p).await;
                    publisher = Some(p);
                    r
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(pass) => {
                if failures > 0 {
                    tracing::info!(feed = NATS_FEED, failures, "NATS feed delivering again");
                    failures = 0;
                }
                if pass == Pass::Idle && !ctx.wait(&mut events, POLL_EVERY).await {
                    return;
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures, jitter());
                let error = firstline_support::errors::chain(&e);
                if failures == 1 {
                    tracing::warn!(
                        feed = NATS_FEED,
                        error,
                        retry_in = ?delay,
                        "NATS feed failing; retrying the same events with backoff"
                    );
                } else {
                    tracing::debug!(feed = NATS_FEED, error, failures, retry_in = ?delay, "NATS feed still failing");
                }
                ctx.status.failed(NATS_FEED, &error);
                telemetry::feed_failed(NATS_FEED);
                if e.is_publishing()
                    && let Some(p) = &mut publisher
                {
                    p.stream_checked = false;
                }
                if failures >= DROP_AFTER {
                    publisher = None;
                }
                if !ctx.sleep(delay).await {
                    return;
                }
            }
        }
    }
}

/// `feeds test nats`: connects, checks (or creates) the stream and publishes a test message on
/// `<prefix>.test`, which the stream takes; reports the acknowledgement.
pub async fn test(cfg: &NatsConfig) -> FeedTestOutcome {
    let attempt = async {
        let p = connect(cfg).await?;
        let subject = test_subject(&cfg.subject_prefix);
        let now = now_ms();
        let mut h = HeaderMap::new();
        h.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("firstline-test-{now}").as_str(),
        );
        h.insert(KIND_HEADER, payload::TEST_KIND);
        let body = serde_json::to_vec(&payload::test_event(now))
            .map_err(|source| NatsFeedError::Encode { cursor: 0, source })?;
        let ack =
            p.js.publish_with_headers(subject.clone(), h, body.into())
                .await
                .map_err(|source| NatsFeedError::Publish {
                    cursor: 0,
                    subject: subject.clone(),
                    source,
                })?
                .await
                .map_err(|source| NatsFeedError::Ack {
                    cursor: 0,
                    subject: subject.clone(),
                    source,
                })?;
        Ok::<_, NatsFeedError>(format!(
            "stream {} acknowledged the test message on {subject} as sequence {}",
            ack.stream, ack.sequence
        ))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT * 3, attempt).await {
        Ok(Ok(detail)) => FeedTestOutcome {
            delivered: true,
            detail,
        },
        Ok(Err(e)) => FeedTestOutcome {
            delivered: false,
            detail: firstline_support::errors::chain(&e),
        },
        Err(_) => FeedTestOutcome {
            delivered: false,
            detail: format!("no answer from NATS in {:?}", REQUEST_TIMEOUT * 3),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_prefix_and_priority() {
        assert_eq!(subject("firstline.alerts", 1), "firstline.alerts.p1");
        assert_eq!(subject("ops", 4), "ops.p4");
        assert_eq!(stream_subjects("firstline.alerts"), "firstline.alerts.>");
        assert_eq!(test_subject("firstline.alerts"), "firstline.alerts.test");
    }

    #[test]
    fn the_message_id_is_the_cursor() {
        assert_eq!(message_id(42), "firstline-42");
        assert_ne!(message_id(42), message_id(43));
    }

    #[test]
    fn the_cursor_moves_only_past_what_is_in_the_stream() {
        assert_eq!(handed_on([11, 12, 15], None, 10), 15);
        assert_eq!(handed_on([11, 12, 15], Some(15), 10), 12);
        assert_eq!(handed_on([11, 12, 15], Some(11), 10), 10);
        assert_eq!(handed_on([], None, 10), 10);
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_only_shortens() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 0.0), Duration::from_secs(16));
        assert_eq!(backoff(6, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(0, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(6, 1.0), Duration::from_secs(15));
        assert_eq!(backoff(6, 7.0), Duration::from_secs(15));
        let j = jitter();
        assert!((0.0..=1.0).contains(&j), "{j}");
    }

    #[test]
    fn the_headers_carry_the_id_and_kind() {
        use crate::tickets::{EventKind, Ticket, TicketEvent, TicketState};
        let alert = AlertEvent {
            event: TicketEvent {
                cursor: 7,
                ticket_id: 1,
                at_ms: 0,
                observed_at_ms: 0,
                kind: EventKind::Comment,
                actor: String::new(),
                detail: String::new(),
            },
            ticket: Ticket {
                id: 1,
                dedupe_key: String::new(),
                agent_id: String::new(),
                hostname: String::new(),
                rule_id: String::new(),
                subject: String::new(),
                state: TicketState::New,
                priority: 2,
                opened_priority: 2,
                title: String::new(),
                occurrences: 1,
                opened_at_ms: 0,
                last_seen_at_ms: 0,
                resolved_at_ms: None,
                last_value: 0.0,
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
        };
        let h = headers(&alert);
        let get = |k: &str| h.get(k).map(|v| v.as_str().to_owned());
        assert_eq!(get("Nats-Msg-Id").as_deref(), Some("firstline-7"));
        assert_eq!(get(EVENT_ID_HEADER).as_deref(), Some("7"));
        assert_eq!(get(KIND_HEADER).as_deref(), Some("comment"));
    }
}
