//! Time-driven work of a running collector: the sweep (silent agents, SLA escalation) every
//! 15 seconds and history retention every hour. With several replicas on one PostgreSQL only
//! the holder of the duty lease (`store::Lease`) does it; every replica asks for the lease
//! every two seconds, so when the holder dies another takes over within seconds. Each change
//! is its own transaction and idempotent, so a hand-over in the middle of a pass loses nothing
//! and does nothing twice that matters.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::grpc::Shared;
use crate::retention::RetentionPolicy;

/// How often a replica asks for (or confirms) the lease.
pub const LEASE_EVERY: Duration = Duration::from_secs(2);
/// How often the sweep runs on the holder.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How often retention runs on the holder; the first pass a minute after taking the lease.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
const RETENTION_FIRST: Duration = Duration::from_secs(60);

/// Runs the time-driven work until shutdown. An agent is silent after three report
/// intervals.
pub async fn run(shared: Arc<Shared>, retention: RetentionPolicy, shutdown: CancellationToken) {
    let silent_after = Duration::from_secs(u64::from(shared.heartbeat_seconds) * 3);
    let mut lease = shared.store().duty_lease();
    let mut tick = tokio::time::interval(LEASE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held = false;
    let mut next_sweep = Instant::now();
    let mut next_retention = Instant::now();
    let mut pruning: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let now_held = match lease.hold().await {
            Ok(h) => h,
            Err(error) => {
                tracing::warn!(%error, "cannot ask for the duty lease; retrying");
                false
            }
        };
        if now_held != held {
            held = now_held;
            shared.duty.send_replace(held);
            if held {
                tracing::info!("this collector now runs the time-driven work (sweep, retention)");
                next_sweep = Instant::now();
                next_retention = Instant::now() + RETENTION_FIRST;
            } else {
                tracing::info!("another collector runs the time-driven work");
            }
        }
        if !held {
            continue;
        }
        let now = Instant::now();
        if now >= next_sweep {
            next_sweep = now + SWEEP_EVERY;
            sweep(&shared, silent_after).await;
        }
        if now >= next_retention && pruning.as_ref().is_none_or(|p| p.is_finished()) {
            next_retention = now + RETENTION_EVERY;
            let store = shared.store().clone();
            let policy = retention;
            pruning = Some(tokio::spawn(async move {
                match crate::retention::run(&store, &policy, now_ms()).await {
                    Ok(o) => tracing::info!(
                        snapshots = o.snapshots,
                        disk_samples_thinned = o.disk_samples_thinned,
                        disk_samples = o.disk_samples,
                        tickets = o.tickets,
                        ticket_events = o.ticket_events,
                        "retention pass done"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "retention pass failed; next pass in an hour")
                    }
                }
            }));
        }
    }
    if let Some(p) = pruning {
        p.abort();
    }
    shared.duty.send_replace(false);
    lease.release().await;
}

async fn sweep(shared: &Shared, silent_after: Duration) {
    let engine = shared.service.engine();
    match crate::sweep::sweep(shared.store(), engine, silent_after, now_ms()).await {
        Ok(o) if o.escalated + o.silent_opened > 0 => {
            tracing::info!(
                escalated = o.escalated,
                silent = o.silent_opened,
                "sweep changed tickets"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "sweep failed"),
    }
}
