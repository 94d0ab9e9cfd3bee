//! `firstline-agent status`: what this agent is and what it still has to send, read from the
//! state directory (works whether or not the service is running). While uploads fail, the
//! newest spooled snapshot carries the uplink's diagnosis, so `status` can say why. Blocks
//! (it reads files): the command line runs it on the blocking pool.

use serde_json::json;

use crate::config::Config;
use crate::identity::{Identity, Policy};
use crate::spool::Spool;
use crate::wire::diagnosis_in;

/// Prints the status; returns an error when the agent is not enrolled.
pub fn status(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let identity = Identity::load(&config.state_dir)?;
    let spool = Spool::inspect(&config.state_dir.join("spool"))?;
    let policy = Policy::load(&config.state_dir);
    let diagnosis = spool.newest.as_deref().and_then(diagnosis_in);
    if as_json {
        let value = json!({
            "agent_id": identity.agent_id,
            "collector_url": identity.collector_url,
            "state_dir": config.state_dir.display().to_string(),
            "spooled_snapshots": spool.waiting,
            "spool_epoch": spool.epoch,
            "last_seq": spool.last_seq,
            "rejected_pending": spool.rejected_pending,
            "last_upload_error": diagnosis.as_ref().map(|d| d.last_error.clone()),
            "disk_thresholds_percent": policy.as_ref().map(|p| p.disk_thresholds_percent.clone()),
            "heartbeat_seconds": policy.as_ref().map(|p| p.heartbeat_seconds),
        });
        println!("{value}");
    } else {
        println!("agent id:          {}", identity.agent_id);
        println!("collector:         {}", identity.collector_url);
        println!("state directory:   {}", config.state_dir.display());
        println!(
            "spooled snapshots: {} (waiting for the collector's ack)",
            spool.waiting
        );
        match spool.epoch {
            Some(epoch) => println!("last sequence:     {} (epoch {epoch})", spool.last_seq),
            None => println!("last sequence:     none yet"),
        }
        if let Some(d) = diagnosis {
            println!("last upload error: {}", d.last_error);
            println!(
                "                   ({} failures in a row when the newest snapshot was taken)",
                d.consecutive_failures
            );
        }
    }
    Ok(())
}
