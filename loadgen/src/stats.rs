//! What the simulated agents measure, shared by all of them: acknowledged calls and
//! snapshots, call latency (start to ack, including the waits and retries after
//! `RESOURCE_EXHAUSTED`) and attempt latency (one RPC), errors by gRPC code, and the flush
//! bookkeeping. Only calls that end inside the measured window count; the progress line reads
//! the running totals.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::histogram::Histogram;

/// The shared counters.
#[derive(Debug)]
pub struct Stats {
    window: (Instant, Instant),
    inner: Mutex<Inner>,
    /// Running totals for the progress line (whole run, warm-up included).
    pub total_acked: AtomicU64,
    pub total_errors: AtomicU64,
}

/// The numbers of the measured window.
#[derive(Debug, Default, Clone)]
pub struct Inner {
    pub acked_calls: u64,
    pub acked_snapshots: u64,
    /// Calls that needed at least one retry after `RESOURCE_EXHAUSTED`.
    pub retried_calls: u64,
    pub resource_exhausted: u64,
    /// Snapshots the collector rejected, and the first reasons seen.
    pub rejected: u64,
    pub rejected_reasons: Vec<String>,
    /// Snapshots sent, neither stored nor rejected in the ack.
    pub missing: u64,
    pub errors: BTreeMap<String, u64>,
    pub first_errors: Vec<String>,
    pub call_latency: Histogram,
    pub retried_latency: Histogram,
    pub attempt_latency: Histogram,
    pub flush: Flush,
}

/// The backlog drain of `--mode flush`.
#[derive(Debug, Default, Clone)]
pub struct Flush {
    pub agents_drained: u64,
    pub snapshots_expected: u64,
    pub snapshots_stored: u64,
    /// Since the flush start, when the last backlog was acknowledged.
    pub last_ack: Option<Duration>,
}

/// How one Report call (with its retries) ended.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub ended: Instant,
    pub latency: Duration,
    pub snapshots: u64,
    pub stored: u64,
    pub rejected: Vec<String>,
    pub resource_exhausted: u64,
}

const KEEP_REASONS: usize = 5;

impl Stats {
    pub fn new(window_start: Instant, window_end: Instant) -> Self {
        Self {
            window: (window_start, window_end),
            inner: Mutex::new(Inner::default()),
            total_acked: AtomicU64::new(0),
            total_errors: AtomicU64::new(0),
        }
    }

    pub fn window(&self) -> (Instant, Instant) {
        self.window
    }

    fn in_window(&self, at: Instant) -> bool {
        at >= self.window.0 && at <= self.window.1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One RPC attempt's round trip, whatever its answer.
    pub fn attempt(&self, ended: Instant, took: Duration) {
        if self.in_window(ended) {
            self.lock().attempt_latency.record(micros(took));
        }
    }

    /// A failed attempt with its gRPC code name and message.
    pub fn error(&self, ended: Instant, code: &str, message: &str) {
        self.total_errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.lock();
        if s.first_errors.len() < KEEP_REASONS {
            s.first_errors.push(format!("{code}: {message}"));
        }
        if self.in_window(ended) {
            *s.errors.entry(code.to_owned()).or_default() += 1;
        }
    }

    /// An acknowledged call.
    pub fn acked(&self, o: &CallOutcome) {
        self.total_acked.fetch_add(1, Ordering::Relaxed);
        let mut s = self.lock();
        for reason in &o.rejected {
            if s.rejected_reasons.len() < KEEP_REASONS {
                s.rejected_reasons.push(reason.clone());
            }
        }
        if !self.in_window(o.ended) {
            return;
        }
        s.acked_calls += 1;
        s.acked_snapshots += o.stored;
        s.rejected += o.rejected.len() as u64;
        s.missing += o
            .snapshots
            .saturating_sub(o.stored + o.rejected.len() as u64);
        s.resource_exhausted += o.resource_exhausted;
        s.call_latency.record(micros(o.latency));
        if o.resource_exhausted > 0 {
            s.retried_calls += 1;
            s.retried_latency.record(micros(o.latency));
        }
    }

    /// An agent's flush backlog: how many snapshots it held and how many were stored.
    pub fn flushed(&self, since_start: Duration, expected: u64, stored: u64) {
        let mut s = self.lock();
        let f = &mut s.flush;
        f.agents_drained += 1;
        f.snapshots_expected += expected;
        f.snapshots_stored += stored;
        f.last_ack = Some(f.last_ack.map_or(since_start, |l| l.max(since_start)));
    }

    pub fn snapshot(&self) -> Inner {
        self.lock().clone()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
