//! `firstline-agent run`: wires the probe scheduler, the reporter, the spool, the uplink and the
//! file watcher together and runs them until shutdown. Everything that must outlive a restart
//! is on disk in the state directory. The uplink and the live channel run under a supervisor
//! that renews the client certificate when it is due (`renew`) and restarts both with it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use firstline_support::blocking;
use firstline_support::errors::chain;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::identity::{Identity, IdentityError, Policy};
use crate::registry::{Context, ProbeSet};
use crate::reporter::Reporter;
use crate::scheduler::{self, Wakeups};
use crate::spool::{SharedSpool, SpoolError};
use crate::uplink::live::Live;
use crate::uplink::{Uplink, UplinkError, channel};
use crate::wire::{self, UplinkDiagnosis};

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

/// Runs the agent until `shutdown` is cancelled. `config_file` is watched for hot reload.
/// Without an identity but with enrollment values, the agent enrolls first (see
/// `autoenroll`); the probes run and spool meanwhile, and the uplink starts once enrolled.
pub async fn run(
    config: Config,
    config_file: Option<&Path>,
    state_dir_flag: Option<&Path>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let dir = config.state_dir.clone();
    let wants_enrollment = config.enrollment.any();
    let (start, saved_policy, host) = blocking::run(move || {
        let start = if Identity::exists(&dir) {
            Start::Enrolled(Identity::load_for_run(&dir)?)
        } else if wants_enrollment {
            Start::Enroll {
                machine_id: crate::probe::system::machine_id(),
            }
        } else {
            let path = crate::identity::identity_path(&dir);
            return Err(RunError::Identity(IdentityError::NotEnrolled { path }));
        };
        Ok((start, Policy::load(&dir), host_identity()))
    })
    .await?;
    let spool = SharedSpool::open(config.state_dir.join("spool"), config.spool).await?;
    let counts = spool.counts().await;
    let collector_url = match &start {
        Start::Enrolled(identity) => {
            if wants_enrollment {
                // Info: after a re-install with fresh values, the journal says why nothing
                // enrolled.
                tracing::info!(
                    agent_id = identity.agent_id,
                    "already enrolled; the enrollment values are ignored"
                );
            }
            identity.collector_url.clone()
        }
        Start::Enroll { .. } => config
            .enrollment
            .collector_url
            .as_ref()
            .map(|u| u.value.clone())
            .unwrap_or_default(),
    };
    tracing::info!(
        agent_id = match &start {
            Start::Enrolled(i) => i.agent_id.as_str(),
            Start::Enroll { .. } => "(not enrolled yet)",
        },
        collector = collector_url,
        spooled = counts.waiting,
        spool_epoch = counts.epoch,
        next_seq = counts.last_seq + 1,
        "agent starting"
    );
    let policy = saved_policy.unwrap_or_else(|| Policy {
        disk_thresholds_percent: config.disk_thresholds.clone(),
        heartbeat_seconds: u32::try_from(config.heartbeat.as_secs()).unwrap_or(60),
    });
    let (policy_tx, policy_rx) = watch::channel(policy);
    let wake = Arc::new(Notify::new());
    wake.notify_one(); // whatever is already spooled goes out first
    let diagnosis = Arc::new(Mutex::new(UplinkDiagnosis::default()));
    let probes = Arc::new(ProbeSet::new());
    let wakeups = Arc::new(Wakeups::new(&probes));
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let (results_tx, results_rx) = mpsc::channel(32);
    let (checks_tx, checks_rx) = mpsc::channel(1);

    let tracker = TaskTracker::new();
    let ctx = Arc::new(Context {
        collector: collector_target(&collector_url),
        policy: Some(policy_rx.clone()),
    });
    scheduler::spawn(
        &tracker,
        probes.clone(),
        ctx,
        config_rx,
        &wakeups,
        results_tx,
        shutdown.clone(),
    );
    let reporter = Reporter {
        probes: probes.clone(),
        host: host.clone(),
        spool: spool.clone(),
        policy: policy_rx,
        wake: wake.clone(),
        diagnosis: diagnosis.clone(),
        state_dir: config.state_dir.clone(),
        wakeups: wakeups.clone(),
    };
    tracker.spawn(reporter.run(results_rx, checks_rx, shutdown.clone()));
    let parts = UplinkParts {
        spool,
        policy: policy_tx,
        state_dir: config.state_dir.clone(),
        diagnosis,
        checks: checks_tx,
        wake,
        live_channel: config.live_channel,
        check_now_min_interval: config.check_now_min_interval,
    };
    match start {
        Start::Enrolled(identity) => parts.start(identity, &tracker, &shutdown)?,
        Start::Enroll { machine_id } => {
            let (values, stop, tasks) = (config_tx.subscribe(), shutdown.clone(), tracker.clone());
            tracker.spawn(async move {
                let enrolled =
                    crate::autoenroll::until_enrolled(values, machine_id, host.hostname, stop.clone())
                        .await;
                if let Some(identity) = enrolled
                    && let Err(error) = parts.start(identity, &tasks, &stop)
                {
                    tracing::error!(error = %chain(&error), "enrolled, but the uplink cannot start");
                }
            });
        }
    }

    let specs = crate::watch::specs(&config, config_file, &probes);
    let _watcher = match crate::watch::start(specs).await {
        Ok((watcher, targets)) => {
            let dispatch = crate::watch::dispatch(
                targets,
                wakeups,
                config_file.map(Path::to_owned),
                state_dir_flag.map(Path::to_owned),
                config_tx,
            );
            let stop = shutdown.clone();
            tracker.spawn(async move {
                tokio::select! {
                    () = dispatch => {}
                    () = stop.cancelled() => {}
                }
            });
            Some(watcher)
        }
        Err(error) => {
            tracing::warn!(error = %chain(&error), "file watching unavailable; probes run on their intervals only");
            None
        }
    };
    tracker.close();
    tracker.wait().await;
    tracing::info!("agent stopped");
    Ok(())
}

/// What `run` starts with.
enum Start {
    Enrolled(Identity),
    /// Not enrolled yet; enrollment values are present.
    Enroll {
        machine_id: String,
    },
}

/// What the uplink and the live channel need besides the identity, gathered so that they can
/// start later, once enrollment succeeded.
struct UplinkParts {
    spool: SharedSpool,
    policy: watch::Sender<Policy>,
    state_dir: std::path::PathBuf,
    diagnosis: Arc<Mutex<UplinkDiagnosis>>,
    checks: mpsc::Sender<crate::uplink::live::CheckRequest>,
    wake: Arc<Notify>,
    live_channel: bool,
    check_now_min_interval: std::time::Duration,
}

impl UplinkParts {
    /// Starts the uplink (and the live channel, when configured) on `tracker`, under the
    /// supervisor that renews the certificate.
    fn start(
        self,
        identity: Identity,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Result<(), UplinkError> {
        let first = channel(&identity)?;
        tracker.spawn(self.supervise(identity, first, shutdown.clone()));
        Ok(())
    }

    /// Runs the uplink and the live channel with `identity` until its certificate is renewed,
    /// then again with the new one, until `shutdown`. A round stops between two uploads (an
    /// upload under way finishes first), so nothing spooled is lost or sent twice.
    async fn supervise(
        self,
        mut identity: Identity,
        mut uplink_channel: tonic::transport::Channel,
        shutdown: CancellationToken,
    ) {
        loop {
            let round = shutdown.child_token();
            let tasks = TaskTracker::new();
            // Of this round only: an ask made for the certificate being replaced is void.
            let renew_now = Arc::new(Notify::new());
            self.spawn_round(uplink_channel.clone(), &renew_now, &tasks, &round);
            tasks.close();
            let renewed = crate::renew::until_renewed(
                &identity,
                &self.state_dir,
                uplink_channel.clone(),
                &renew_now,
                &shutdown,
            )
            .await;
            round.cancel();
            tasks.wait().await;
            let Some(renewed) = renewed else { return };
            match channel(&renewed) {
                Ok(next) => {
                    tracing::info!(
                        agent_id = renewed.agent_id,
                        "reconnecting with the renewed certificate"
                    );
                    identity = renewed;
                    uplink_channel = next;
                }
                Err(error) => {
                    // The URL did not change, so this cannot happen; keep the old channel.
                    tracing::error!(error = %chain(&error), "the renewed identity cannot connect");
                    identity = renewed;
                }
            }
        }
    }

    /// One round of the uplink (and the live channel) over `uplink_channel`.
    fn spawn_round(
        &self,
        uplink_channel: tonic::transport::Channel,
        renew_now: &Arc<Notify>,
        tasks: &TaskTracker,
        stop: &CancellationToken,
    ) {
        let uplink = Uplink::new(
            uplink_channel.clone(),
            self.spool.clone(),
            self.policy.clone(),
            self.state_dir.clone(),
            self.diagnosis.clone(),
        )
        .renewing(renew_now.clone());
        if self.live_channel {
            // The live channel shares the uplink's connection (and its HTTP/2 keepalive).
            let live = Live::new(
                uplink_channel,
                self.checks.clone(),
                uplink.acked(),
                self.check_now_min_interval,
            )
            .telling(uplink.reachable());
            tasks.spawn(live.run(stop.clone()));
        }
        self.wake.notify_one(); // what was spooled before (enrollment, renewal) goes out now
        tasks.spawn(uplink.run(self.wake.clone(), stop.clone()));
    }
}

/// The host name and OS every snapshot carries. Blocks (reads `/proc` and `/etc`).
fn host_identity() -> wire::Identity {
    let facts = crate::probe::system::SystemProbe::new().collect();
    wire::Identity {
        hostname: facts.hostname,
        os: format!(
            "{} {} ({})",
            facts.os_name, facts.os_version, facts.os_build
        )
        .trim()
        .to_owned(),
        machine_id: facts.machine_id,
        boot_id: crate::probe::system::boot_id(),
    }
}

/// `host:port` of the collector from its URL.
pub fn collector_target(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    Some(
        if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:443")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_target_from_url() {
        assert_eq!(
            collector_target("https://127.0.0.1:7443").as_deref(),
            Some("127.0.0.1:7443")
        );
        assert_eq!(
            collector_target("https://collector.example.com/").as_deref(),
            Some("collector.example.com:443")
        );
        assert_eq!(collector_target("https://"), None);
    }
}
