//! `firstline-agent run`: wires the sampler, the spool and the uplink together and runs them
//! until shutdown. Everything that must outlive a restart is on disk in the state directory.

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::identity::{Identity, IdentityError, Policy};
use crate::sampler::{HostFacts, Sampler};
use crate::spool::{Spool, SpoolError};
use crate::uplink::{Uplink, UplinkError, channel};

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Uplink(#[from] UplinkError),
}

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(config: &Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let identity = Identity::load(&config.state_dir)?;
    let spool = Spool::open(&config.state_dir.join("spool"), config.spool)?;
    tracing::info!(
        agent_id = identity.agent_id,
        collector = identity.collector_url,
        spooled = spool.len(),
        next_seq = spool.last_seq() + 1,
        "agent starting"
    );
    let spool = Arc::new(Mutex::new(spool));
    let policy = Policy::load(&config.state_dir).unwrap_or_else(|| Policy {
        disk_thresholds_percent: config.disk_thresholds.clone(),
        heartbeat_seconds: u32::try_from(config.heartbeat.as_secs()).unwrap_or(60),
    });
    let (policy_tx, policy_rx) = watch::channel(policy);
    let wake = Arc::new(Notify::new());
    // Whatever is already spooled goes out first.
    wake.notify_one();

    let tracker = TaskTracker::new();
    let sampler = Sampler {
        interval: config.disk_interval,
        filter: config.disk_filter.clone(),
        facts: HostFacts::detect(),
        spool: spool.clone(),
        policy: policy_rx,
        wake: wake.clone(),
    };
    tracker.spawn(sampler.run(shutdown.clone()));
    let uplink = Uplink::new(
        channel(&identity)?,
        spool,
        policy_tx,
        config.state_dir.clone(),
    );
    tracker.spawn(uplink.run(wake, shutdown.clone()));
    tracker.close();
    tracker.wait().await;
    tracing::info!("agent stopped");
    Ok(())
}
