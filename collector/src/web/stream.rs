//! `GET /api/stream`: the alert event log as server-sent events, for the dashboard's live
//! updates. Each event is `event: ticket`, `id: <cursor>` and the event with its ticket as
//! JSON (the `AlertEvent` schema), read with `Service::events_since` — the durable log, so a
//! browser that reconnects with `Last-Event-ID` (EventSource does so on its own) or
//! `?cursor=` misses nothing. Without a cursor the stream starts at the log's end and says
//! where with an `event: hello`. New events are read as soon as this process commits them
//! (`Store::event_signal`) and at least every second (another replica's). A connection lasts
//! at most [`LIFETIME`] and then ends, the browser reconnecting after `retry` ms; every
//! stream ends at once when the collector stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use tokio::time::Instant;

use super::auth::Role;
use super::{ApiError, Web, bad};
use crate::service::{EventQuery, Service};

/// Longest life of one stream connection.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// How often the log is read when no commit of this process signals.
const POLL: Duration = Duration::from_secs(1);
/// Events read per page.
const PAGE: u32 = 200;
/// What the browser waits before reconnecting, in ms.
const RETRY: Duration = Duration::from_millis(1000);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    cursor: Option<i64>,
}

struct Reader {
    service: Service,
    cursor: i64,
    signal: tokio::sync::watch::Receiver<u64>,
    queue: VecDeque<Event>,
    until: Instant,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Reader {
    /// The next event to send; `None` once the connection's life is over.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if Instant::now() >= self.until || self.shutdown.is_cancelled() {
                return None;
            }
            let q = EventQuery {
                cursor: self.cursor,
                limit: Some(PAGE),
                ..Default::default()
            };
            match self.service.events_since(&q).await {
                Ok(page) if !page.events.is_empty() => {
                    for e in page.events {
                        let id = e.cursor;
                        match Event::default().event("ticket").json_data(&e) {
                            Ok(ev) => self.queue.push_back(ev.id(id.to_string())),
                            Err(error) => tracing::warn!(%error, "event not serialisable"),
                        }
                    }
                    self.cursor = page.next_cursor;
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    self.queue
                        .push_back(Event::default().event("trouble").data(error.to_string()));
                }
            }
            let wait = POLL.min(self.until.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = tokio::time::timeout(wait, self.signal.changed()) => {}
                () = self.shutdown.cancelled() => return None,
            }
        }
    }
}

pub async fn stream(
    State(web): State<Web>,
    headers: HeaderMap,
    q: Result<Query<StreamParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    web.caller(&headers, &Method::GET)
        .await?
        .require(Role::Viewer)?;
    let Query(q) = bad(q)?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let cursor = match resumed.or(q.cursor).filter(|c| *c >= 0) {
        Some(c) => c,
        None => web.service.last_event_cursor().await?,
    };
    let hello = Event::default()
        .event("hello")
        .id(cursor.to_string())
        .retry(RETRY)
        .data(cursor.to_string());
    let mut signal = web.service.store().event_signal();
    signal.mark_unchanged();
    let reader = Reader {
        service: web.service.clone(),
        cursor,
        signal,
        queue: VecDeque::from([hello]),
        until: Instant::now() + LIFETIME,
        shutdown: web.shutdown.clone(),
    };
    let events = futures_util::stream::unfold(reader, |mut r| async move {
        let e = r.next().await?;
        Some((Ok::<Event, Infallible>(e), r))
    });
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))),
    ))
}
