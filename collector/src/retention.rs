//! History retention: how long each kind of history is kept, and one pass that applies it, so
//! the store stays bounded however long the collector runs. The pass is meant to run
//! periodically on one replica at a time (under the leader lease); running it twice deletes
//! nothing the second time. The SQL, its chunking and what is always kept (each agent's newest
//! snapshot, open tickets) are in `store::retention`.
//!
//! - raw snapshots: `snapshots` (7 days) after they arrived;
//! - disk samples: raw (one per 10 minutes per mount) for `disk_samples_raw` (48 hours), then
//!   the last sample of each hour until `disk_samples` (90 days);
//! - resolved and closed tickets with their events: `tickets` (400 days) after they resolved.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::store::{RETENTION_CHUNK, Store, StoreError};
use crate::tickets::lifecycle::ms;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// How long each kind of history is kept (the `[retention]` section of the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Raw snapshots, after their arrival.
    #[serde(with = "humantime_text")]
    pub snapshots: Duration,
    /// Disk samples at full resolution; older ones are thinned to one per hour per mount.
    #[serde(with = "humantime_text")]
    pub disk_samples_raw: Duration,
    /// Hourly disk samples.
    #[serde(with = "humantime_text")]
    pub disk_samples: Duration,
    /// Resolved and closed tickets and their events, after they resolved.
    #[serde(with = "humantime_text")]
    pub tickets: Duration,
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionOutcome {
    pub snapshots: u64,
    /// Raw disk samples removed by thinning to one per hour.
    pub disk_samples_thinned: u64,
    /// Hourly disk samples past their retention.
    pub disk_samples: u64,
    pub tickets: u64,
    pub ticket_events: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            snapshots: 7 * DAY,
            disk_samples_raw: 48 * HOUR,
            disk_samples: 90 * DAY,
            tickets: 400 * DAY,
        }
    }
}

impl RetentionOutcome {
    /// Whether the pass deleted anything.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Applies `policy` at `now_ms`, deleting in chunks of the default size.
pub async fn run(
    store: &Store,
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Result<RetentionOutcome, StoreError> {
    run_in_chunks(store, policy, now_ms, RETENTION_CHUNK).await
}

/// [`run`] with `chunk` rows per statement (tests use small chunks to cross chunk borders).
pub async fn run_in_chunks(
    store: &Store,
    policy: &RetentionPolicy,
    now_ms: i64,
    chunk: u32,
) -> Result<RetentionOutcome, StoreError> {
    let started = Instant::now();
    let cutoff = |d: Duration| now_ms.saturating_sub(ms(d));
    let snapshots = store
        .prune_snapshots(cutoff(policy.snapshots), chunk)
        .await?;
    let disk_samples_thinned = store
        .downsample_disk_samples(cutoff(policy.disk_samples_raw), chunk)
        .await?;
    let disk_samples = store
        .prune_disk_samples(cutoff(policy.disk_samples), chunk)
        .await?;
    let tickets = store.prune_tickets(cutoff(policy.tickets), chunk).await?;
    let outcome = RetentionOutcome {
        snapshots,
        disk_samples_thinned,
        disk_samples,
        tickets: tickets.tickets,
        ticket_events: tickets.events,
    };
    tracing::info!(
        snapshots = outcome.snapshots,
        disk_samples_thinned = outcome.disk_samples_thinned,
        disk_samples = outcome.disk_samples,
        tickets = outcome.tickets,
        ticket_events = outcome.ticket_events,
        elapsed_ms = started.elapsed().as_millis(),
        "retention pass done"
    );
    Ok(outcome)
}

/// Durations as human text ("7days", "48h"), as everywhere in the configuration.
mod humantime_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reads_and_writes_human_durations() {
        let policy: RetentionPolicy =
            serde_json::from_str(r#"{"snapshots": "3days", "tickets": "1year"}"#).expect("parses");
        assert_eq!(policy.snapshots, 3 * DAY);
        assert_eq!(policy.disk_samples_raw, 48 * HOUR, "default kept");
        let text = serde_json::to_string(&RetentionPolicy::default()).expect("serialises");
        assert!(text.contains(r#""snapshots":"7days""#), "{text}");
        let back: RetentionPolicy = serde_json::from_str(&text).expect("round trip");
        assert_eq!(back, RetentionPolicy::default());
        assert!(serde_json::from_str::<RetentionPolicy>(r#"{"snapshot": "1d"}"#).is_err());
    }
}
