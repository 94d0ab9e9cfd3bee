//! Collector configuration: a raw TOML shape (every key optional, unknown keys refused) turned
//! into a validated [`Config`]. Layers: built-in defaults < TOML file < command-line flags.
//! Every error names the file and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use firstline_support::config_file::{finish, read_toml, set_duration};
use serde::Deserialize;

pub use firstline_support::config_file::ConfigError;

use crate::rules::disk::DiskUsageRule;

/// The validated configuration the collector runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Holds the CA, keys and (by default) the SQLite file.
    pub data_dir: PathBuf,
    pub grpc_listen: SocketAddr,
    /// Extra DNS names or IP addresses for the server certificate, besides localhost.
    pub server_names: Vec<String>,
    /// Empty: `sqlite://<data_dir>/firstline.db`.
    pub store_url: String,
    pub certificate_validity: Duration,
    pub heartbeat: Duration,
    pub disk_usage: DiskUsageRule,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    grpc: Option<RawGrpc>,
    store: Option<RawStore>,
    enrollment: Option<RawEnrollment>,
    report: Option<RawReport>,
    rules: Option<RawRules>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrpc {
    listen: Option<String>,
    server_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnrollment {
    certificate_validity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    heartbeat: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    disk_usage: Option<RawDiskUsage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiskUsage {
    open_percent: Option<f64>,
    clear_percent: Option<f64>,
    priority: Option<u32>,
}

/// Values given on the command line; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub grpc_listen: Option<String>,
    pub store_url: Option<String>,
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The data directory when neither the file nor a flag names one: systemd's `StateDirectory`
/// when run as a service, else `./firstline-data`.
fn default_data_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("firstline-data"))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            server_names: Vec::new(),
            store_url: String::new(),
            certificate_validity: Duration::from_secs(365 * 24 * 3600),
            heartbeat: Duration::from_secs(60),
            disk_usage: DiskUsageRule::default(),
        }
    }
}

impl Config {
    /// Loads the file (if any) over the defaults, then the flags, and validates the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let (name, raw) = read_toml::<RawConfig>(file)?;
        let mut problems = Vec::new();
        let mut config = Self::default();
        config.apply(raw, &mut problems);
        config.apply_overrides(overrides, &mut problems);
        config.validate(&mut problems);
        finish(name, config, problems)
    }

    /// The store URL actually used.
    pub fn effective_store_url(&self) -> String {
        if self.store_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("firstline.db").display())
        } else {
            self.store_url.clone()
        }
    }

    /// The default configuration as TOML, as shipped in `deploy/collector/collector.toml`.
    pub fn default_toml() -> String {
        let d = Self::default();
        format!(
            "# Firstline collector configuration. Every key is optional; shown are the defaults.\n\
             # data_dir = \"/var/lib/firstline-collector\"  # default: $STATE_DIRECTORY or ./firstline-data\n\n\
             [grpc]\nlisten = \"{}\"\n# Extra names or addresses agents use to reach this collector.\nserver_names = []\n\n\
             [store]\n# Empty: SQLite file firstline.db in data_dir. Or postgres://user@host/db\nurl = \"\"\n\n\
             [enrollment]\ncertificate_validity = \"{}\"\n\n\
             [report]\n# Longest quiet time between two reports of an agent.\nheartbeat = \"{}\"\n\n\
             [rules.disk_usage]\nopen_percent = {:?}\nclear_percent = {:?}\npriority = {}\n",
            d.grpc_listen,
            humantime::format_duration(d.certificate_validity),
            humantime::format_duration(d.heartbeat),
            d.disk_usage.open_percent,
            d.disk_usage.clear_percent,
            d.disk_usage.priority,
        )
    }

    fn apply(&mut self, raw: RawConfig, problems: &mut Vec<String>) {
        if let Some(dir) = raw.data_dir {
            self.data_dir = dir;
        }
        let grpc = raw.grpc.unwrap_or_default();
        if let Some(listen) = grpc.listen {
            set_addr(&mut self.grpc_listen, "grpc.listen", &listen, problems);
        }
        if let Some(names) = grpc.server_names {
            self.server_names = names;
        }
        if let Some(url) = raw.store.unwrap_or_default().url {
            self.store_url = url;
        }
        let enrollment = raw.enrollment.unwrap_or_default();
        if let Some(v) = enrollment.certificate_validity {
            set_duration(
                &mut self.certificate_validity,
                "enrollment.certificate_validity",
                &v,
                (HOUR, 100 * 365 * DAY),
                problems,
            );
        }
        if let Some(v) = raw.report.unwrap_or_default().heartbeat {
            set_duration(
                &mut self.heartbeat,
                "report.heartbeat",
                &v,
                (SECOND, DAY),
                problems,
            );
        }
        let disk = raw.rules.unwrap_or_default().disk_usage.unwrap_or_default();
        let rule = &mut self.disk_usage;
        rule.open_percent = disk.open_percent.unwrap_or(rule.open_percent);
        rule.clear_percent = disk.clear_percent.unwrap_or(rule.clear_percent);
        rule.priority = disk.priority.unwrap_or(rule.priority);
    }

    fn apply_overrides(&mut self, o: &Overrides, problems: &mut Vec<String>) {
        if let Some(dir) = &o.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(listen) = &o.grpc_listen {
            set_addr(&mut self.grpc_listen, "--listen", listen, problems);
        }
        if let Some(url) = &o.store_url {
            self.store_url = url.clone();
        }
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let rule = &self.disk_usage;
        for (key, value) in [
            ("rules.disk_usage.open_percent", rule.open_percent),
            ("rules.disk_usage.clear_percent", rule.clear_percent),
        ] {
            if !(0.0..=100.0).contains(&value) {
                problems.push(format!(
                    "{key}: {value} is not a percentage between 0 and 100"
                ));
            }
        }
        if rule.clear_percent >= rule.open_percent {
            problems.push(format!(
                "rules.disk_usage.clear_percent: {} must be below open_percent {}",
                rule.clear_percent, rule.open_percent
            ));
        }
        if !(1..=4).contains(&rule.priority) {
            problems.push(format!(
                "rules.disk_usage.priority: {} is not a priority between 1 and 4",
                rule.priority
            ));
        }
        if !self.store_url.is_empty() && crate::store::Backend::from_url(&self.store_url).is_err() {
            problems.push(format!(
                "store.url: {:?} is neither sqlite://PATH nor postgres://...",
                self.store_url
            ));
        }
        for name in &self.server_names {
            if name.is_empty() || name.len() > 253 {
                problems.push(format!("grpc.server_names: {name:?} is not a host name"));
            }
        }
    }
}

fn set_addr(slot: &mut SocketAddr, key: &str, value: &str, problems: &mut Vec<String>) {
    match value.parse() {
        Ok(addr) => *slot = addr,
        Err(_) => problems.push(format!(
            "{key}: {value:?} is not an address like 127.0.0.1:7443"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(Some(&path), &Overrides::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn shipped_default_file_parses_to_the_defaults() {
        let parsed = load(&Config::default_toml()).expect("default config loads");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            (
                "[rules.disk_usage]\nopne_percent = 80\n",
                "unknown field `opne_percent`",
            ),
            ("bogus = 1\n", "unknown field `bogus`"),
            (
                "[rules.disk_usage]\nclear_percent = 95.0\n",
                "rules.disk_usage.clear_percent: 95 must be below",
            ),
            (
                "[rules.disk_usage]\nopen_percent = 120.0\n",
                "rules.disk_usage.open_percent: 120",
            ),
            ("[grpc]\nlisten = \"nowhere\"\n", "grpc.listen: \"nowhere\""),
            (
                "[report]\nheartbeat = \"soon\"\n",
                "report.heartbeat: \"soon\"",
            ),
            ("[store]\nurl = \"mysql://x\"\n", "store.url"),
            (
                "[rules.disk_usage]\npriority = 7\n",
                "rules.disk_usage.priority: 7",
            ),
        ];
        for (text, expected) in cases {
            let error = load(text).expect_err(text);
            assert!(error.contains("collector.toml"), "{error}");
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn flags_override_the_file() {
        let overrides = Overrides {
            grpc_listen: Some("127.0.0.1:9000".into()),
            ..Overrides::default()
        };
        let config = Config::load(None, &overrides).expect("loads");
        assert_eq!(config.grpc_listen.port(), 9000);
    }
}
