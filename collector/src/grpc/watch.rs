//! `firstline.v1.Feed/Watch`: the event log as a server stream. Each call gets a task that
//! reads the durable log through the service layer (`events_since`) from the caller's cursor
//! and hands events to a bounded queue the stream drains; it reads the next page only when
//! the queue has room, so a consumer never makes the collector buffer more than
//! [`WATCH_QUEUE`] events. New events are noticed at once when this collector committed them
//! (the store's event signal) and within [`crate::feeds::POLL_EVERY`] when another replica
//! did. A consumer that takes nothing for `grpc.watch_stall_timeout` (30 s) while events wait is ended with
//! RESOURCE_EXHAUSTED, after the events already queued, naming the cursor to resume from.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use firstline_proto::v1::{self, WatchRequest, feed_server::Feed};
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::Stream;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::convert::alert_to_wire;
use super::{State, caller, service_status};
use crate::service::EventQuery;
use crate::store::CertKind;

/// Events queued for one consumer at most.
pub const WATCH_QUEUE: usize = 256;
/// Events read from the log at a time.
const PAGE: u32 = 200;
/// The trailer naming the cursor to resume from.
pub const RESUME_TRAILER: &str = "firstline-resume-cursor";

/// The gRPC `Feed` service.
pub struct FeedService {
    state: State,
}

impl FeedService {
    pub fn new(state: State) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Feed for FeedService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let who = caller(&self.state, &request, CertKind::Operator).await?;
        let r = request.into_inner();
        let some = |s: String| (!s.is_empty()).then_some(s);
        let service = self.state.service.clone();
        let mut query = EventQuery {
            cursor: r.cursor,
            limit: Some(PAGE),
            max_priority: Some(r.max_priority),
            rule: some(r.rule),
            host: some(r.host),
            label: some(r.label),
        };
        if r.from_now {
            query.cursor = service
                .store()
                .last_cursor()
                .await
                .map_err(super::store_status)?;
        }
        // Listening starts before the first read, so an event committed in between is not
        // left for the next poll.
        let mut signal = service.store().event_signal();
        // The first page is read here, so a bad request is answered before the stream starts.
        let first = service.events_since(&query).await.map_err(service_status)?;
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let end = Arc::new(Mutex::new(None));
        let stream = WatchStream {
            rx,
            end: end.clone(),
            done: false,
        };
        let stall = self.state.watch_stall_timeout;
        tracing::debug!(operator = %who, cursor = query.cursor, "watch started");
        tokio::spawn(async move {
            let mut page = first;
            loop {
                let full = page.events.len() >= PAGE as usize;
                for event in &page.events {
                    match tx.send_timeout(alert_to_wire(event), stall).await {
                        Ok(()) => query.cursor = event.cursor,
                        Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                            tracing::info!(
                                operator = %who,
                                cursor = query.cursor,
                                "watch consumer too slow; ended"
                            );
                            let mut status = Status::resource_exhausted(format!(
                                "this consumer read nothing for {}s while events waited; \
                                 resume from cursor {}",
                                stall.as_secs(),
                                query.cursor
                            ));
                            if let Ok(v) = MetadataValue::try_from(query.cursor.to_string()) {
                                status.metadata_mut().insert(RESUME_TRAILER, v);
                            }
                            *end.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                            return;
                        }
                        // The consumer went away.
                        Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                    }
                }
                if !full {
                    tokio::select! {
                        _ = signal.changed() => {}
                        () = tokio::time::sleep(crate::feeds::POLL_EVERY) => {}
                        () = tx.closed() => return,
                    }
                }
                page = match service.events_since(&query).await {
                    Ok(p) => p,
                    Err(error) => {
                        let status = service_status(error);
                        tracing::warn!(error = %status.message(), "watch cannot read the event log");
                        let mut status = Status::unavailable(format!(
                            "{}; resume from cursor {}",
                            status.message(),
                            query.cursor
                        ));
                        if let Ok(v) = MetadataValue::try_from(query.cursor.to_string()) {
                            status.metadata_mut().insert(RESUME_TRAILER, v);
                        }
                        *end.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                        return;
                    }
                };
            }
        });
        Ok(Response::new(stream))
    }
}

/// The events queued for one consumer, then the status that ended the stream, if any.
pub struct WatchStream {
    rx: mpsc::Receiver<v1::AlertEvent>,
    end: Arc<Mutex<Option<Status>>>,
    done: bool,
}

impl Stream for WatchStream {
    type Item = Result<v1::AlertEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(None) => {
                self.done = true;
                let end = self.end.lock().unwrap_or_else(|e| e.into_inner()).take();
                Poll::Ready(end.map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
