//! Agent configuration: a raw TOML shape (every key optional, unknown keys refused) turned into
//! a validated [`Config`]; every error names the file and the key. The collector's policy
//! (thresholds, heartbeat) arrives with each ack and overrides the local report settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firstline_support::config_file::{finish, read_toml, set_duration};
use serde::Deserialize;

pub use firstline_support::config_file::ConfigError;

use crate::probe::disk::DiskFilter;
use crate::spool::SpoolLimits;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Identity (key, certificates) and spool live here.
    pub state_dir: PathBuf,
    /// How often disks are measured; a threshold crossing is sent at once.
    pub disk_interval: Duration,
    pub disk_filter: DiskFilter,
    /// Heartbeat until the collector says otherwise.
    pub heartbeat: Duration,
    /// Disk usage boundaries until the collector says otherwise.
    pub disk_thresholds: Vec<f64>,
    pub spool: SpoolLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    disk: Option<RawDisk>,
    report: Option<RawReport>,
    spool: Option<RawSpool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisk {
    interval: Option<String>,
    exclude_fs_types: Option<Vec<String>>,
    exclude_mount_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    heartbeat: Option<String>,
    disk_thresholds_percent: Option<Vec<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    max_snapshots: Option<usize>,
    max_bytes: Option<u64>,
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("firstline-agent-data"))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            disk_interval: Duration::from_millis(500),
            disk_filter: DiskFilter::default(),
            heartbeat: Duration::from_secs(60),
            disk_thresholds: vec![85.0, 90.0, 95.0],
            spool: SpoolLimits {
                max_entries: 20_000,
                max_bytes: 64 * 1024 * 1024,
            },
        }
    }
}

impl Config {
    /// Loads the file (if any) over the defaults, then `state_dir` from the command line.
    pub fn load(file: Option<&Path>, state_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let (name, raw) = read_toml::<RawConfig>(file)?;
        let mut problems = Vec::new();
        let mut config = Self::default();
        config.apply(raw, &mut problems);
        if let Some(dir) = state_dir {
            config.state_dir = dir.to_owned();
        }
        finish(name, config, problems)
    }

    fn apply(&mut self, raw: RawConfig, problems: &mut Vec<String>) {
        if let Some(dir) = raw.state_dir {
            self.state_dir = dir;
        }
        let disk = raw.disk.unwrap_or_default();
        if let Some(v) = disk.interval {
            set_duration(
                &mut self.disk_interval,
                "disk.interval",
                &v,
                (Duration::from_millis(100), Duration::from_secs(3600)),
                problems,
            );
        }
        if let Some(v) = disk.exclude_fs_types {
            self.disk_filter.exclude_fs_types = v;
        }
        if let Some(v) = disk.exclude_mount_prefixes {
            self.disk_filter.exclude_mount_prefixes = v;
        }
        let report = raw.report.unwrap_or_default();
        if let Some(v) = report.heartbeat {
            set_duration(
                &mut self.heartbeat,
                "report.heartbeat",
                &v,
                (Duration::from_secs(1), Duration::from_secs(86_400)),
                problems,
            );
        }
        if let Some(v) = report.disk_thresholds_percent {
            if v.len() > 16 || v.iter().any(|p| !(0.0..=100.0).contains(p)) {
                problems.push(
                    "report.disk_thresholds_percent: at most 16 percentages between 0 and 100"
                        .into(),
                );
            } else {
                self.disk_thresholds = v;
            }
        }
        let spool = raw.spool.unwrap_or_default();
        if let Some(v) = spool.max_snapshots {
            if (1..=1_000_000).contains(&v) {
                self.spool.max_entries = v;
            } else {
                problems.push(format!(
                    "spool.max_snapshots: {v} is not between 1 and 1000000"
                ));
            }
        }
        if let Some(v) = spool.max_bytes {
            if (64 * 1024..=16 * 1024 * 1024 * 1024).contains(&v) {
                self.spool.max_bytes = v;
            } else {
                problems.push(format!(
                    "spool.max_bytes: {v} is not between 64 KiB and 16 GiB"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(Some(&path), None).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            ("[disk]\nintervall = \"1s\"\n", "unknown field `intervall`"),
            ("[disk]\ninterval = \"fast\"\n", "disk.interval: \"fast\""),
            (
                "[disk]\ninterval = \"1ms\"\n",
                "disk.interval: \"1ms\" is not between",
            ),
            ("[spool]\nmax_snapshots = 0\n", "spool.max_snapshots: 0"),
            (
                "[report]\ndisk_thresholds_percent = [101.0]\n",
                "report.disk_thresholds_percent",
            ),
            ("[report]\nheartbeat = 5\n", "invalid type"),
        ];
        for (text, expected) in cases {
            let error = load(text).expect_err(text);
            assert!(error.contains("agent.toml"), "{error}");
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn values_in_the_file_replace_defaults() {
        let config =
            load("[disk]\ninterval = \"2s\"\n[report]\nheartbeat = \"10s\"\n").expect("valid");
        assert_eq!(config.disk_interval, Duration::from_secs(2));
        assert_eq!(config.heartbeat, Duration::from_secs(10));
        assert_eq!(config.spool, Config::default().spool);
    }
}
