//! Feed operations for operators: list the configured feeds with how far behind each is, send
//! a test event, list and replay dead letters. The feeds themselves run in `crate::feeds`;
//! this layer sees them through [`FeedDirectory`], so it does not depend on how they deliver.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::events::AlertEventView;
use super::{Service, ServiceError, ServiceResult};
use crate::clock::now_ms;

/// Most dead letters listed at once.
const MAX_DEAD_LETTERS: u32 = 1000;
const DEFAULT_DEAD_LETTERS: u32 = 100;

/// A configured feed, as the running feeds describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedDescription {
    /// `webhook:<name>`, `alertmanager:<name>` or `nats`.
    pub name: String,
    /// `webhook`, `alertmanager` or `nats`.
    pub kind: &'static str,
    /// Where it delivers, without credentials.
    pub target: String,
    /// Whether undeliverable events become dead letters (webhooks).
    pub dead_letters: bool,
}

/// What a feed remembers of its last deliveries (since this collector started).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedHealth {
    pub last_error: String,
    pub last_error_at_ms: Option<i64>,
    pub last_delivery_at_ms: Option<i64>,
}

/// The answer of a test delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedTestOutcome {
    pub delivered: bool,
    pub detail: String,
}

/// A boxed future of a test delivery.
pub type TestFuture<'a> = Pin<Box<dyn Future<Output = FeedTestOutcome> + Send + 'a>>;

/// The running feeds, as the service layer sees them.
pub trait FeedDirectory: Send + Sync {
    fn describe(&self) -> Vec<FeedDescription>;
    fn health(&self, feed: &str) -> FeedHealth;
    /// Sends a test event to the feed now (`feed` is one of [`FeedDirectory::describe`]).
    fn test<'a>(&'a self, feed: &'a str) -> TestFuture<'a>;
}

/// No feed configured (a service without running feeds, e.g. the CLI's local commands).
#[derive(Debug, Clone, Copy)]
pub struct NoFeeds;

impl FeedDirectory for NoFeeds {
    fn describe(&self) -> Vec<FeedDescription> {
        Vec::new()
    }
    fn health(&self, _feed: &str) -> FeedHealth {
        FeedHealth::default()
    }
    fn test<'a>(&'a self, _feed: &'a str) -> TestFuture<'a> {
        Box::pin(async {
            FeedTestOutcome {
                delivered: false,
                detail: "no feed is configured".into(),
            }
        })
    }
}

/// A feed with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedView {
    pub name: String,
    pub kind: &'static str,
    pub target: String,
    /// The last event cursor the feed took from the log (0 before it ran).
    pub cursor: i64,
    /// Events in the log after `cursor`.
    pub lag: i64,
    pub pending: i64,
    pub dead_letters: i64,
    pub last_error: String,
    pub last_error_at_ms: Option<i64>,
    pub last_delivery_at_ms: Option<i64>,
}

/// A delivery given up on, with its event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterView {
    pub feed: String,
    pub event_cursor: i64,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at_ms: i64,
    /// The event, unless retention removed it since.
    pub event: Option<AlertEventView>,
}

impl Service {
    /// Every configured feed with its cursor, lag, queue and last failure.
    pub async fn feeds(&self) -> ServiceResult<Vec<FeedView>> {
        let cursors = self.store.feed_cursors().await?;
        let counts = self.store.feed_counts().await?;
        let mut out = Vec::new();
        for d in self.feeds.describe() {
            let cursor = cursors
                .iter()
                .find(|(n, _)| *n == d.name)
                .map_or(0, |(_, c)| *c);
            let count = counts
                .iter()
                .find(|(n, _)| *n == d.name)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            let lag = self.store.events_after(cursor).await?;
            let health = self.feeds.health(&d.name);
            out.push(FeedView {
                name: d.name,
                kind: d.kind,
                target: d.target,
                cursor,
                lag,
                pending: count.pending,
                dead_letters: count.dead,
                last_error: health.last_error,
                last_error_at_ms: health.last_error_at_ms,
                last_delivery_at_ms: health.last_delivery_at_ms,
            });
        }
        Ok(out)
    }

    /// Sends a test event to one feed now.
    pub async fn test_feed(&self, name: &str) -> ServiceResult<FeedTestOutcome> {
        let feed = self.known_feed(name)?;
        Ok(self.feeds.test(&feed.name).await)
    }

    /// Dead letters, newest first; of one feed or of all.
    pub async fn dead_letters(
        &self,
        feed: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Vec<DeadLetterView>> {
        let feed = match feed.filter(|f| !f.is_empty()) {
            Some(name) => Some(self.known_feed(name)?.name),
            None => None,
        };
        let limit = limit
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_DEAD_LETTERS)
            .min(MAX_DEAD_LETTERS);
        let rows = self.store.dead_letters(feed.as_deref(), limit).await?;
        Ok(rows
            .into_iter()
            .map(|r| DeadLetterView {
                feed: r.feed,
                event_cursor: r.event_cursor,
                attempts: r.attempts,
                last_error: r.last_error,
                failed_at_ms: r.failed_at_ms,
                event: r.alert.map(AlertEventView::from),
            })
            .collect())
    }

    /// Queues a feed's dead letters for delivery again: one (`event_cursor`) or all.
    pub async fn replay_dead_letters(
        &self,
        feed: &str,
        event_cursor: Option<i64>,
    ) -> ServiceResult<u64> {
        let d = self.known_feed(feed)?;
        if !d.dead_letters {
            return Err(ServiceError::Invalid(format!(
                "{} keeps no dead letters (only webhooks do)",
                d.name
            )));
        }
        let event_cursor = event_cursor.filter(|c| *c != 0);
        if event_cursor.is_some_and(|c| c < 0) {
            return Err(ServiceError::Invalid(
                "event cursor must be positive".into(),
            ));
        }
        let replayed = self
            .store
            .replay_dead_letters(&d.name, event_cursor, now_ms())
            .await?;
        if replayed == 0
            && let Some(c) = event_cursor
        {
            return Err(ServiceError::NotFound(format!(
                "{} has no dead letter for event {c}",
                d.name
            )));
        }
        Ok(replayed)
    }

    fn known_feed(&self, name: &str) -> ServiceResult<FeedDescription> {
        super::short_text("feed", name, 200)?;
        let feeds = self.feeds.describe();
        // `ops` is accepted for `webhook:ops` when it names one feed.
        let found: Vec<FeedDescription> = feeds
            .iter()
            .filter(|d| d.name == name || d.name.split_once(':').is_some_and(|(_, n)| n == name))
            .cloned()
            .collect();
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ServiceError::NotFound(format!(
                "no feed {name:?}; configured: {}",
                if feeds.is_empty() {
                    "none".to_owned()
                } else {
                    feeds
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))),
            many => Err(ServiceError::Invalid(format!(
                "{name:?} names several feeds ({}); give the full name",
                many.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}
