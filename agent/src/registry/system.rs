//! The system probe in the registry: host, OS, uptime, CPU, memory and the agent's own
//! footprint every `system.interval`. Reported, never a change by itself, and not judged by
//! `check`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Probe};
use crate::config::Config;
use crate::probe::system::{SystemFacts, SystemProbe};
use crate::probe::{Offload, ProbeError};

#[derive(Default)]
pub struct System {
    /// Created on the first run, on the blocking pool (it reads `/proc`); CPU use is the
    /// difference between two runs, so the state stays.
    probe: Arc<Mutex<Option<SystemProbe>>>,
    offload: Offload,
}

impl Probe for System {
    type Facts = SystemFacts;

    fn name(&self) -> &'static str {
        "system"
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        (config.system_interval, Duration::from_secs(10))
    }

    async fn collect(&self, _config: &Config, _ctx: &Context) -> Result<SystemFacts, ProbeError> {
        let probe = self.probe.clone();
        self.offload
            .run(move || {
                let mut probe = probe.lock().unwrap_or_else(|p| p.into_inner());
                probe.get_or_insert_with(SystemProbe::new).collect()
            })
            .await
    }

    fn report(&self, facts: &SystemFacts, snapshot: &mut v1::Snapshot) {
        snapshot.system = Some(system(facts.clone()));
    }
}

fn system(s: SystemFacts) -> v1::SystemFacts {
    v1::SystemFacts {
        hostname: s.hostname,
        machine_id: s.machine_id,
        os_name: s.os_name,
        os_version: s.os_version,
        os_build: s.os_build,
        architecture: s.architecture,
        uptime_seconds: s.uptime_seconds,
        cpu_percent: s.cpu_percent,
        memory_total_bytes: s.memory_total_bytes,
        memory_used_bytes: s.memory_used_bytes,
        agent_version: s.agent_version,
        agent_rss_bytes: s.agent_rss_bytes,
        agent_cpu_millis: s.agent_cpu_millis,
    }
}
