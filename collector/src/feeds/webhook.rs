//! Webhook delivery, as an outbox. While this replica holds the duty lease, one task per
//! endpoint reads the event log after the feed's cursor, takes the events its filter matches
//! into pending deliveries and moves the cursor in one transaction
//! (`Store::queue_deliveries`), then POSTs the deliveries that are due, a few at a time. A
//! delivery is deleted once the receiver answered 2xx; a failure is retried with exponential
//! backoff and jitter ([`backoff`]), honouring `Retry-After` on 429 and 503, until
//! `max_attempts`; then, or at once for a refusal that would only repeat (a 4xx other than
//! 408 and 429), it is kept as a dead letter that `feeds dead-letters` lists and `feeds
//! replay` queues again. Everything is in the store, so a collector stopped or killed at any
//! point goes on where it was: the worst is an event delivered again, which receivers
//! recognise by `X-Firstline-Event-Id`.
//!
//! Each request carries `Content-Type: application/json`, the collector's `User-Agent`,
//! `X-Firstline-Event-Id` (the event's cursor, the idempotency key), `X-Firstline-Event-Kind`,
//! `X-Firstline-Timestamp` (Unix seconds) and, with a secret, `X-Firstline-Signature`
//! (`signature.rs`). Bodies are built in `payload.rs`. docs/feeds.md is the receiver's view.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use super::config::{WebhookConfig, WebhookFormat};
use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use super::{FeedContext, PAGE, POLL_EVERY, StatusBoard, http, payload};
use crate::clock::now_ms;
use crate::service::FeedTestOutcome;
use crate::store::{Delivery, EventFilter, Store, StoreError};

/// The header carrying the event's cursor: the same on every attempt of one event.
pub const EVENT_ID_HEADER: &str = "X-Firstline-Event-Id";
/// The header carrying the event's kind (`opened`, …, or `test`).
pub const EVENT_KIND_HEADER: &str = "X-Firstline-Event-Kind";
/// Requests in flight at once per endpoint.
pub const CONCURRENCY: usize = 4;
/// Due deliveries read from the store at a time.
const DUE_BATCH: u32 = 64;
/// How much of a refusing receiver's body is kept with the error.
const ERROR_BODY_BYTES: usize = 200;
/// How long requests in flight may finish when the collector stops; then they are dropped
/// (their deliveries stay pending and are sent after the restart).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why a webhook round stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("delivery task failed: {0}")]
    Task(String),
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Worth trying again (a 5xx, 408, 429, a timeout, a refused connection); `retry_after`
    /// is what the receiver asked for with `Retry-After`.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// A refusal that would repeat (a 4xx other than 408 and 429, a permanent redirect).
    Permanent { error: String },
}

/// Whether a response status is a refusal that would repeat on every attempt. Redirects are
/// not followed (see `http.rs`); a permanent one (301, 308) is a configuration error.
pub fn is_permanent(status: u16) -> bool {
    ((400..500).contains(&status) && status != 408 && status != 429)
        || status == 301
        || status == 308
}

/// The wait after `failures_before + 1` failed attempts: `initial` × 2^`failures_before`,
/// at most `max`, times `jitter` (drawn from [0.5, 1.5), so endpoints that failed together do
/// not all come back at once).
pub fn backoff(initial: Duration, max: Duration, failures_before: u32, jitter: f64) -> Duration {
    let base = 2u32
        .checked_pow(failures_before)
        .and_then(|factor| initial.checked_mul(factor))
        .map_or(max, |d| d.min(max));
    base.mul_f64(jitter.clamp(0.5, 1.5))
}

/// The wait before the next attempt: the backoff, or longer when the receiver asked for it
/// with `Retry-After` (never more than `max` for that).
pub fn retry_delay(
    initial: Duration,
    max: Duration,
    failures_before: u32,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let b = backoff(initial, max, failures_before, jitter);
    retry_after.map_or(b, |asked| b.max(asked.min(max)))
}

/// A `Retry-After` value (delay in seconds, or an HTTP date) as a wait from `now_secs`.
pub fn parse_retry_after(value: &str, now_secs: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now_secs)).unwrap_or(0),
    ))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) as Unix seconds.
fn parse_http_date(value: &str) -> Option<i64> {
    let at = httpdate::parse_http_date(value).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Runs the webhook until `ctx.shutdown`, delivering only while this replica holds the duty
/// lease.
pub async fn run(config: WebhookConfig, mut ctx: FeedContext) {
    let feed = config.feed_name();
    let client = match http::client(config.timeout) {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(feed, %error, "webhook cannot start");
            ctx.status.failed(&feed, &error);
            return;
        }
    };
    let job = Arc::new(Job {
        feed: feed.clone(),
        config,
        client,
        store: ctx.store.clone(),
        status: ctx.status.clone(),
    });
    let mut signal = ctx.store.event_signal();
    'duty: while ctx.until_duty().await {
        let mut cursor = match ctx.start_cursor(&feed).await {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(feed, %error, "webhook cannot read its cursor; trying again");
                if !ctx.sleep(POLL_EVERY).await {
                    break;
                }
                continue;
            }
        };
        tracing::info!(
            feed,
            cursor,
            url = %super::without_credentials(&job.config.url),
            "webhook delivering"
        );
        while ctx.on_duty() && !ctx.shutdown.is_cancelled() {
            let wait = match job.round(&ctx, &mut cursor).await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(feed, %error, "webhook round failed; trying again");
                    ctx.status.failed(&feed, &error.to_string());
                    POLL_EVERY
                }
            };
            if !ctx.wait(&mut signal, wait).await {
                break 'duty;
            }
        }
    }
    tracing::info!(feed, "webhook stopped");
}

/// Sends a test event (`payload::test_event`, or its Alertmanager form) once, without retries.
pub async fn test(config: &WebhookConfig) -> FeedTestOutcome {
    let client = match http::client(config.timeout) {
        Ok(c) => c,
        Err(detail) => {
            return FeedTestOutcome {
                delivered: false,
                detail,
            };
        }
    };
    let now = now_ms();
    let body = match config.format {
        WebhookFormat::Firstline => payload::test_event(now),
        WebhookFormat::Alertmanager => payload::alertmanager_test(&config.name, now),
    };
    let started = Instant::now();
    let outcome = send(&client, config, &body, 0, payload::TEST_KIND).await;
    let ms = started.elapsed().as_millis();
    match outcome {
        AttemptOutcome::Delivered { status } => FeedTestOutcome {
            delivered: true,
            detail: format!("HTTP {status} in {ms} ms"),
        },
        AttemptOutcome::Retry { error, .. } | AttemptOutcome::Permanent { error } => {
            FeedTestOutcome {
                delivered: false,
                detail: format!("{error} (after {ms} ms)"),
            }
        }
    }
}

/// One endpoint's delivery state, shared with its attempts in flight.
struct Job {
    feed: String,
    config: WebhookConfig,
    client: reqwest::Client,
    store: Store,
    status: Arc<StatusBoard>,
}

type Attempts = JoinSet<Result<(), StoreError>>;

impl Job {
    /// Queues what is new, delivers what is due; returns how long to wait before the next
    /// round (less when a retry falls due sooner than the next poll).
    async fn round(
        self: &Arc<Self>,
        ctx: &FeedContext,
        cursor: &mut i64,
    ) -> Result<Duration, WebhookError> {
        self.queue_new(ctx, cursor).await?;
        crate::telemetry::feed_lag(&self.feed, self.store.events_after(*cursor).await?);
        let attempted = self.deliver_due(ctx).await?;
        let next = self.store.next_delivery_at(&self.feed).await?;
        Ok(next_wait(next, now_ms(), attempted))
    }

    /// Reads the log after `cursor`, page by page, and queues the matching events, moving the
    /// cursor past every event read in the same transaction.
    async fn queue_new(&self, ctx: &FeedContext, cursor: &mut i64) -> Result<(), StoreError> {
        loop {
            let page = self
                .store
                .events_since(*cursor, &EventFilter::default(), PAGE)
                .await?;
            let Some(last) = page.last().map(|a| a.event.cursor) else {
                return Ok(());
            };
            let matching: Vec<i64> = page
                .iter()
                .filter(|a| self.config.filter.matches(a))
                .map(|a| a.event.cursor)
                .collect();
            self.store
                .queue_deliveries(&self.feed, &matching, last, now_ms())
                .await?;
            if !matching.is_empty() {
                tracing::debug!(
                    feed = self.feed,
                    queued = matching.len(),
                    cursor = last,
                    "webhook queued events"
                );
            }
            *cursor = last;
            if page.len() < PAGE as usize || !ctx.on_duty() || ctx.shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Sends every due delivery, at most [`CONCURRENCY`] at once; returns how many attempts
    /// were made.
    async fn deliver_due(self: &Arc<Self>, ctx: &FeedContext) -> Result<usize, WebhookError> {
        let mut attempted = 0;
        loop {
            if !ctx.on_duty() || ctx.shutdown.is_cancelled() {
                return Ok(attempted);
            }
            let due = self
                .store
                .due_deliveries(&self.feed, now_ms(), DUE_BATCH)
                .await?;
            let full = due.len() >= DUE_BATCH as usize;
            let mut running = Attempts::new();
            let mut first_error = None;
            for d in due {
                if running.len() >= CONCURRENCY {
                    match join_one(&mut running, &ctx.shutdown).await {
                        Some(r) => keep_first(&mut first_error, r),
                        None => return stop(running, attempted).await,
                    }
                }
                if !ctx.on_duty() {
                    break;
                }
                attempted += 1;
                let job = self.clone();
                running.spawn(async move { job.attempt(d).await });
            }
            while !running.is_empty() {
                match join_one(&mut running, &ctx.shutdown).await {
                    Some(r) => keep_first(&mut first_error, r),
                    None => return stop(running, attempted).await,
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            if !full {
                return Ok(attempted);
            }
        }
    }

    /// One attempt of one delivery, and what the store keeps of it.
    async fn attempt(&self, d: Delivery) -> Result<(), StoreError> {
        let feed = self.feed.as_str();
        let cursor = d.alert.event.cursor;
        let attempt = d.attempts.saturating_add(1);
        let kind = d.alert.event.kind.as_str();
        let body = match self.config.format {
            WebhookFormat::Firstline => payload::firstline_event(&d.alert),
            WebhookFormat::Alertmanager => {
                payload::alertmanager_v4(std::slice::from_ref(&d.alert), &self.config.name)
            }
        };
        let outcome = send(&self.client, &self.config, &body, cursor, kind).await;
        let now = now_ms();
        let (error, retry_at) = match outcome {
            AttemptOutcome::Delivered { status } => {
                self.store.delivery_done(feed, cursor).await?;
                self.status.delivered(feed);
                crate::telemetry::feed_delivered(feed);
                tracing::debug!(feed, event = cursor, attempt, status, "webhook delivered");
                return Ok(());
            }
            AttemptOutcome::Retry { error, retry_after } if attempt < self.config.max_attempts => {
                let delay = retry_delay(
                    self.config.retry_initial,
                    self.config.retry_max,
                    d.attempts,
                    0.5 + fastrand::f64(),
                    retry_after,
                );
                let at = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                tracing::warn!(
                    feed,
                    event = cursor,
                    attempt,
                    %error,
                    retry_in_ms = delay.as_millis(),
                    "webhook delivery failed; will retry"
                );
                (error, Some(at))
            }
            AttemptOutcome::Retry { error, .. } => {
                tracing::error!(
                    feed,
                    event = cursor,
                    attempt,
                    %error,
                    "webhook delivery failed for the last time; kept as a dead letter"
                );
                (error, None)
            }
            AttemptOutcome::Permanent { error } => {
                tracing::error!(
                    feed,
                    event = cursor,
                    attempt,
                    %error,
                    "webhook receiver refused the event; kept as a dead letter"
                );
                (error, None)
            }
        };
        self.store
            .delivery_failed(feed, cursor, &error, retry_at, now)
            .await?;
        self.status.failed(feed, &error);
        crate::telemetry::feed_failed(feed);
        Ok(())
    }
}

/// How long to wait after a round: until the next pending delivery is due, at most
/// [`POLL_EVERY`]. A delivery that is due but was not attempted (its event is no longer in
/// the log) does not make the loop spin.
fn next_wait(next_at_ms: Option<i64>, now_ms: i64, attempted: usize) -> Duration {
    match next_at_ms {
        None => POLL_EVERY,
        Some(at) if at <= now_ms => {
            if attempted == 0 {
                POLL_EVERY
            } else {
                Duration::ZERO
            }
        }
        Some(at) => Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0)).min(POLL_EVERY),
    }
}

/// Waits for one attempt in flight; `None` when the collector is stopping.
async fn join_one(
    running: &mut Attempts,
    shutdown: &CancellationToken,
) -> Option<Result<(), WebhookError>> {
    tokio::select! {
        r = running.join_next() => Some(r.map_or(Ok(()), flatten)),
        () = shutdown.cancelled() => None,
    }
}

fn flatten(r: Result<Result<(), StoreError>, JoinError>) -> Result<(), WebhookError> {
    match r {
        Ok(inner) => inner.map_err(WebhookError::from),
        Err(e) => Err(WebhookError::Task(e.to_string())),
    }
}

fn keep_first(first: &mut Option<WebhookError>, r: Result<(), WebhookError>) {
    if let Err(e) = r
        && first.is_none()
    {
        *first = Some(e);
    }
}

/// The collector is stopping: attempts in flight get [`SHUTDOWN_GRACE`] to finish, then are
/// dropped (their deliveries stay pending).
async fn stop(mut running: Attempts, attempted: usize) -> Result<usize, WebhookError> {
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            in_flight = running.len(),
            "stopping: webhook requests still in flight are dropped and sent after the restart"
        );
        running.abort_all();
    }
    Ok(attempted)
}

/// POSTs `body` with the webhook's headers and says what came of it.
async fn send(
    client: &reqwest::Client,
    config: &WebhookConfig,
    body: &serde_json::Value,
    event_id: i64,
    kind: &str,
) -> AttemptOutcome {
    let body = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            return AttemptOutcome::Permanent {
                error: format!("cannot encode the body: {e}"),
            };
        }
    };
    let timestamp = now_ms().div_euclid(1000);
    let mut request = client
        .post(&config.url)
        .header(CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, event_id.to_string())
        .header(EVENT_KIND_HEADER, kind)
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    if !config.secret.is_empty() {
        request = request.header(
            SIGNATURE_HEADER,
            sign(config.secret.as_bytes(), timestamp, &body),
        );
    }
    match request.body(body).send().await {
        Ok(response) => outcome_of(response).await,
        Err(e) => AttemptOutcome::Retry {
            error: firstline_support::errors::chain(&e),
            retry_after: None,
        },
    }
}

/// What a response means for the delivery.
async fn outcome_of(mut response: reqwest::Response) -> AttemptOutcome {
    let status = response.status();
    if status.is_success() {
        return AttemptOutcome::Delivered {
            status: status.as_u16(),
        };
    }
    let retry_after =
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now_ms().div_euclid(1000)))
        } else {
            None
        };
    let mut head = Vec::new();
    while head.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    head.truncate(ERROR_BODY_BYTES);
    let text = String::from_utf8_lossy(&head);
    let text = text.trim();
    let error = if text.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {text}", status.as_u16())
    };
    if is_permanent(status.as_u16()) {
        AttemptOutcome::Permanent { error }
    } else {
        AttemptOutcome::Retry { error, retry_after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (initial, max) = (MS(200), MS(1000));
        let waits: Vec<Duration> = (0..6).map(|n| backoff(initial, max, n, 1.0)).collect();
        assert_eq!(
            waits,
            [MS(200), MS(400), MS(800), MS(1000), MS(1000), MS(1000)]
        );
        // No overflow however many attempts came before.
        assert_eq!(backoff(initial, max, 40, 1.0), max);
        assert_eq!(backoff(initial, max, u32::MAX, 1.0), max);
        assert_eq!(
            backoff(
                Duration::from_secs(3600),
                Duration::from_secs(86_400),
                31,
                1.0
            ),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn jitter_spreads_the_wait_between_half_and_one_and_a_half() {
        let (initial, max) = (MS(200), MS(1000));
        assert_eq!(backoff(initial, max, 1, 0.5), MS(200));
        assert_eq!(backoff(initial, max, 1, 1.499), MS(400).mul_f64(1.499));
        // Out of range factors are held to the range.
        assert_eq!(backoff(initial, max, 1, 0.0), MS(200));
        assert_eq!(backoff(initial, max, 1, 9.0), MS(600));
        for _ in 0..1000 {
            let w = backoff(initial, max, 2, 0.5 + fastrand::f64());
            assert!(w >= MS(400) && w < MS(1200), "{w:?}");
        }
    }

    #[test]
    fn retry_after_lengthens_the_wait_within_the_maximum() {
        let (initial, max) = (MS(200), Duration::from_secs(10));
        assert_eq!(retry_delay(initial, max, 0, 1.0, None), MS(200));
        assert_eq!(
            retry_delay(initial, max, 0, 1.0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_delay(initial, max, 0, 1.0, Some(Duration::from_secs(3600))),
            max
        );
        // A shorter Retry-After does not make the wait shorter than the backoff.
        assert_eq!(retry_delay(initial, max, 3, 1.0, Some(MS(0))), MS(1600));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        // 1994-11-06T08:49:37Z
        let at = 784_111_777;
        assert_eq!(parse_retry_after("120", at), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 30),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 30),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, at), None, "{bad:?}");
        }
    }

    #[test]
    fn only_refusals_that_would_repeat_are_permanent() {
        for s in [400, 401, 403, 404, 410, 413, 422, 301, 308] {
            assert!(is_permanent(s), "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 302, 307] {
            assert!(!is_permanent(s), "{s}");
        }
    }

    #[test]
    fn the_loop_waits_for_the_next_due_delivery_at_most_a_poll() {
        assert_eq!(next_wait(None, 1000, 0), POLL_EVERY);
        assert_eq!(next_wait(Some(1300), 1000, 0), MS(300));
        assert_eq!(next_wait(Some(60_000), 1000, 0), POLL_EVERY);
        assert_eq!(next_wait(Some(900), 1000, 2), Duration::ZERO);
        // Due but nothing was attempted (its event is gone): no busy loop.
        assert_eq!(next_wait(Some(900), 1000, 0), POLL_EVERY);
    }
}
