//! `firstline-agent status`: what this agent is and what it still has to send, read from the
//! state directory (works whether or not the service is running).

use serde_json::json;

use crate::config::Config;
use crate::identity::{Identity, Policy};
use crate::spool::Spool;

/// Prints the status; returns an error when the agent is not enrolled.
pub fn status(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let identity = Identity::load(&config.state_dir)?;
    let (spooled, last_seq) = Spool::inspect(&config.state_dir.join("spool"))?;
    let policy = Policy::load(&config.state_dir);
    if as_json {
        let value = json!({
            "agent_id": identity.agent_id,
            "collector_url": identity.collector_url,
            "state_dir": config.state_dir.display().to_string(),
            "spooled_snapshots": spooled,
            "last_seq": last_seq,
            "disk_thresholds_percent": policy.as_ref().map(|p| p.disk_thresholds_percent.clone()),
            "heartbeat_seconds": policy.as_ref().map(|p| p.heartbeat_seconds),
        });
        println!("{value}");
    } else {
        println!("agent id:          {}", identity.agent_id);
        println!("collector:         {}", identity.collector_url);
        println!("state directory:   {}", config.state_dir.display());
        println!("spooled snapshots: {spooled} (waiting for the collector's ack)");
        println!("last sequence:     {last_seq}");
    }
    Ok(())
}
