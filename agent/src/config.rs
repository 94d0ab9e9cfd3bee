//! Agent configuration: a raw TOML shape (every key optional, unknown keys refused) turned into
//! a validated [`Config`]; every error names the file and the key. The collector's policy
//! (thresholds, heartbeat) arrives with each ack and overrides the local report settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firstline_support::config_file::{finish, parse_toml, read_toml, set_duration};
use serde::Deserialize;

pub use firstline_support::config_file::ConfigError;

use crate::enrollment::{Enrollment, RawEnrollment, process_env};
use crate::probe::antivirus::AvSettings;
use crate::probe::connectivity::ConnSettings;
use crate::probe::disk::DiskFilter;
use crate::probe::patch::PatchSettings;
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
    pub system_interval: Duration,
    pub patches: Timing,
    pub patch_settings: PatchSettings,
    pub antivirus: Timing,
    pub av_settings: AvSettings,
    pub connectivity: Timing,
    /// Targets; `collector` is filled in from the identity at run time.
    pub conn_settings: ConnSettings,
    /// Whether to keep the live channel ("check now") open (`report.live_channel`).
    pub live_channel: bool,
    /// At most one "check now" per this long (`report.check_now_min_interval`).
    pub check_now_min_interval: Duration,
    /// How `run` enrolls this machine when it has no identity yet (`[enrollment]`, env).
    pub enrollment: Enrollment,
}

/// How often a probe runs and how long one run may take before it is cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    disk: Option<RawDisk>,
    report: Option<RawReport>,
    spool: Option<RawSpool>,
    system: Option<RawSystem>,
    patches: Option<RawPatches>,
    antivirus: Option<RawAntivirus>,
    connectivity: Option<RawConnectivity>,
    enrollment: Option<RawEnrollment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPatches {
    interval: Option<String>,
    timeout: Option<String>,
    reboot_markers: Option<Vec<PathBuf>>,
    apt_history: Option<PathBuf>,
    /// apt's configuration file, as `APT_CONFIG` would name it.
    apt_config: Option<PathBuf>,
    /// dpkg's status file and apt's lists folder: passed to apt and watched.
    dpkg_status: Option<PathBuf>,
    apt_lists: Option<PathBuf>,
    /// Least time between reruns for changed package databases.
    rerun_gap: Option<String>,
    /// CPU time and resident memory a package-manager run may use before it is stopped.
    cpu_budget: Option<String>,
    memory_budget_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAntivirus {
    interval: Option<String>,
    timeout: Option<String>,
    clamd_conf: Option<PathBuf>,
    clamav_db_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnectivity {
    interval: Option<String>,
    /// Per check.
    timeout: Option<String>,
    dns_names: Option<Vec<String>>,
    dns_servers: Option<Vec<String>>,
    tcp_targets: Option<Vec<String>>,
    https_urls: Option<Vec<String>>,
    /// PEM files of CAs trusted by the HTTPS checks besides the web PKI roots.
    https_ca_files: Option<Vec<PathBuf>>,
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
    live_channel: Option<bool>,
    check_now_min_interval: Option<String>,
    disk_thresholds_percent: Option<Vec<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    max_snapshots: Option<usize>,
    max_bytes: Option<u64>,
}

/// `$STATE_DIRECTORY` (systemd's), else this OS's default (see `platform::paths`).
fn default_state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::platform::paths::Defaults::here().state_dir)
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
            system_interval: Duration::from_secs(300),
            patches: Timing {
                interval: Duration::from_secs(3600),
                timeout: Duration::from_secs(300),
            },
            patch_settings: PatchSettings::default(),
            antivirus: Timing {
                interval: Duration::from_secs(300),
                timeout: Duration::from_secs(30),
            },
            av_settings: AvSettings::default(),
            connectivity: Timing {
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(3),
            },
            conn_settings: ConnSettings::default(),
            live_channel: true,
            check_now_min_interval: Duration::from_secs(5),
            enrollment: Enrollment::default(),
        }
    }
}

impl Config {
    /// Loads the file (if any) over the defaults, then the environment's enrollment values,
    /// then `state_dir` from the command line.
    pub fn load(file: Option<&Path>, state_dir: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, state_dir, &process_env)
    }

    /// [`Config::load`] with `env` looking up environment variables.
    pub fn load_with_env(
        file: Option<&Path>,
        state_dir: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (name, raw) = read_toml::<RawConfig>(file)?;
        Self::from_raw(name, raw, state_dir, env)
    }

    /// The configuration that `text`, the contents of a file called `name` in errors, gives
    /// over the defaults, with the environment's enrollment values looked up in `env`: what
    /// [`Config::load_with_env`] does once the file is read.
    pub fn from_toml(
        name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw = parse_toml::<RawConfig>(name, text)?;
        Self::from_raw(name.to_owned(), raw, None, env)
    }

    fn from_raw(
        name: String,
        mut raw: RawConfig,
        state_dir: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut config = Self {
            enrollment: Enrollment::resolve(raw.enrollment.take(), env, &mut problems),
            ..Self::default()
        };
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
        if let Some(v) = report.live_channel {
            self.live_channel = v;
        }
        if let Some(v) = report.check_now_min_interval {
            set_duration(
                &mut self.check_now_min_interval,
                "report.check_now_min_interval",
                &v,
                (Duration::from_secs(1), Duration::from_secs(3600)),
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
        self.apply_probes(
            &raw.system,
            &raw.patches,
            &raw.antivirus,
            raw.connectivity,
            problems,
        );
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

    fn apply_probes(
        &mut self,
        system: &Option<RawSystem>,
        patches: &Option<RawPatches>,
        antivirus: &Option<RawAntivirus>,
        connectivity: Option<RawConnectivity>,
        problems: &mut Vec<String>,
    ) {
        const MIN: Duration = Duration::from_secs(1);
        const DAY: Duration = Duration::from_secs(86_400);
        if let Some(v) = system.as_ref().and_then(|s| s.interval.as_ref()) {
            set_duration(
                &mut self.system_interval,
                "system.interval",
                v,
                (MIN, DAY),
                problems,
            );
        }
        if let Some(p) = patches {
            set_timing(
                &mut self.patches,
                "patches",
                &p.interval,
                &p.timeout,
                problems,
            );
            if let Some(m) = &p.reboot_markers {
                self.patch_settings.reboot_markers = m.clone();
            }
            if let Some(h) = &p.apt_history {
                self.patch_settings.apt_history = h.clone();
            }
            self.apply_apt_paths(p, problems);
            self.apply_patch_budget(p, problems);
        }
        if let Some(a) = antivirus {
            set_timing(
                &mut self.antivirus,
                "antivirus",
                &a.interval,
                &a.timeout,
                problems,
            );
            self.av_settings.clamd_budget = AvSettings::clamd_budget(self.antivirus.timeout);
            if let Some(c) = &a.clamd_conf {
                self.av_settings.clamd_conf = c.clone();
            }
            if let Some(d) = &a.clamav_db_dir {
                self.av_settings.clamav_db_dir = d.clone();
            }
        }
        let Some(c) = connectivity else { return };
        set_timing(
            &mut self.connectivity,
            "connectivity",
            &c.interval,
            &c.timeout,
            problems,
        );
        self.conn_settings.timeout = self.connectivity.timeout;
        let bounded = |key: &str,
                       list: Option<Vec<String>>,
                       problems: &mut Vec<String>,
                       valid: &dyn Fn(&str) -> bool| {
            let list = list.unwrap_or_default();
            if list.len() > firstline_proto::limits::MAX_ITEMS {
                problems.push(format!(
                    "connectivity.{key}: at most {} entries",
                    firstline_proto::limits::MAX_ITEMS
                ));
                return Vec::new();
            }
            for item in &list {
                if !valid(item) {
                    problems.push(format!("connectivity.{key}: {item:?} is not valid"));
                }
            }
            list
        };
        self.conn_settings.dns_names = bounded("dns_names", c.dns_names, problems, &|n| {
            !n.is_empty() && n.len() <= 253
        });
        self.conn_settings.tcp_targets = bounded("tcp_targets", c.tcp_targets, problems, &|t| {
            t.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        });
        self.conn_settings.https_urls = bounded("https_urls", c.https_urls, problems, &|u| {
            crate::probe::connectivity::checks::split_url(u).is_some()
        });
        let servers = bounded("dns_servers", c.dns_servers, problems, &|s| {
            s.parse::<std::net::IpAddr>().is_ok()
        });
        self.conn_settings.dns_servers = servers.iter().filter_map(|s| s.parse().ok()).collect();
        self.conn_settings.https_ca_files =
            ca_files(c.https_ca_files.unwrap_or_default(), problems);
    }
}

impl Config {
    /// `patches.rerun_gap`, `patches.cpu_budget` and `patches.memory_budget_mib`.
    fn apply_patch_budget(&mut self, p: &RawPatches, problems: &mut Vec<String>) {
        const HOUR: Duration = Duration::from_secs(3600);
        let settings = &mut self.patch_settings;
        if let Some(v) = &p.rerun_gap {
            let range = (Duration::ZERO, Duration::from_secs(86_400));
            set_duration(
                &mut settings.rerun_gap,
                "patches.rerun_gap",
                v,
                range,
                problems,
            );
        }
        if let Some(v) = &p.cpu_budget {
            let range = (Duration::from_secs(1), HOUR);
            set_duration(
                &mut settings.cpu_budget,
                "patches.cpu_budget",
                v,
                range,
                problems,
            );
        }
        match p.memory_budget_mib {
            Some(mib @ 16..=65_536) => settings.memory_budget = mib * 1024 * 1024,
            Some(mib) => problems.push(format!(
                "patches.memory_budget_mib: {mib} is not between 16 and 65536"
            )),
            None => {}
        }
    }

    /// `patches.apt_config`, `patches.dpkg_status` (files) and `patches.apt_lists` (a folder):
    /// each must exist as such when set. Looks at the file system (the config is loaded on the
    /// blocking pool).
    fn apply_apt_paths(&mut self, p: &RawPatches, problems: &mut Vec<String>) {
        let checks = [
            (
                "apt_config",
                &p.apt_config,
                false,
                &mut self.patch_settings.apt_config,
            ),
            (
                "dpkg_status",
                &p.dpkg_status,
                false,
                &mut self.patch_settings.dpkg_status,
            ),
            (
                "apt_lists",
                &p.apt_lists,
                true,
                &mut self.patch_settings.apt_lists,
            ),
        ];
        for (key, value, dir, slot) in checks {
            let Some(path) = value else { continue };
            let ok = if dir { path.is_dir() } else { path.is_file() };
            if ok {
                *slot = Some(path.clone());
            } else {
                let what = if dir { "folder" } else { "file" };
                problems.push(format!(
                    "patches.{key}: {} is not a {what} (or cannot be read)",
                    path.display()
                ));
            }
        }
    }
}

/// `connectivity.https_ca_files`: each file must hold at least one PEM certificate now (the
/// probe reads them again every round, so a renewed CA needs no reload). Reads the files: the
/// config is loaded on the blocking pool.
fn ca_files(files: Vec<PathBuf>, problems: &mut Vec<String>) -> Vec<PathBuf> {
    const KEY: &str = "connectivity.https_ca_files";
    if files.len() > firstline_proto::limits::MAX_ITEMS {
        problems.push(format!(
            "{KEY}: at most {} entries",
            firstline_proto::limits::MAX_ITEMS
        ));
        return Vec::new();
    }
    for file in &files {
        if let Err(e) = crate::probe::connectivity::checks::read_ca_file(file) {
            problems.push(format!("{KEY}: {}: {e}", file.display()));
        }
    }
    files
}

fn set_timing(
    slot: &mut Timing,
    section: &str,
    interval: &Option<String>,
    timeout: &Option<String>,
    problems: &mut Vec<String>,
) {
    const SECOND: Duration = Duration::from_secs(1);
    if let Some(v) = interval {
        set_duration(
            &mut slot.interval,
            &format!("{section}.interval"),
            v,
            (SECOND, Duration::from_secs(86_400)),
            problems,
        );
    }
    if let Some(v) = timeout {
        set_duration(
            &mut slot.timeout,
            &format!("{section}.timeout"),
            v,
            (Duration::from_millis(100), Duration::from_secs(3600)),
            problems,
        );
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
            (
                "[connectivity]\ntcp_targets = [\"nohost\"]\n",
                "connectivity.tcp_targets: \"nohost\"",
            ),
            (
                "[connectivity]\nhttps_urls = [\"http://x\"]\n",
                "connectivity.https_urls",
            ),
            (
                "[connectivity]\ndns_servers = [\"dns.example\"]\n",
                "connectivity.dns_servers",
            ),
            ("[patches]\ntimeout = \"forever\"\n", "patches.timeout"),
            (
                "[patches]\napt_config = \"/nonexistent/apt.conf\"\n",
                "patches.apt_config: /nonexistent/apt.conf is not a file",
            ),
            (
                "[patches]\ndpkg_status = \"/\"\n",
                "patches.dpkg_status: / is not a file",
            ),
            (
                "[patches]\napt_lists = \"/nonexistent/lists\"\n",
                "patches.apt_lists: /nonexistent/lists is not a folder",
            ),
            (
                "[patches]\ncpu_budget = \"0s\"\n",
                "patches.cpu_budget: \"0s\" is not between 1s and 1h",
            ),
            (
                "[patches]\nmemory_budget_mib = 1\n",
                "patches.memory_budget_mib: 1 is not between 16 and 65536",
            ),
            (
                "[patches]\nrerun_gap = \"soon\"\n",
                "patches.rerun_gap: \"soon\" is not a duration",
            ),
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

    /// A CA certificate (PEM) made for the test.
    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("certificate").pem()
    }

    /// Loads `[connectivity] https_ca_files` naming `files` (name, contents; `None`: the file
    /// does not exist), all in one directory, which is returned with the outcome.
    fn load_with_ca_files(
        files: &[(&str, Option<String>)],
    ) -> (tempfile::TempDir, Result<Config, String>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut paths = Vec::new();
        for (name, contents) in files {
            let path = dir.path().join(name);
            if let Some(text) = contents {
                std::fs::write(&path, text).expect("write CA file");
            }
            paths.push(path.display().to_string());
        }
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!("[connectivity]\nhttps_ca_files = {paths:?}\n"),
        )
        .expect("write config");
        let loaded = Config::load(Some(&config), None).map_err(|e| e.to_string());
        (dir, loaded)
    }

    #[test]
    fn https_ca_files_must_hold_certificates() {
        let key_only = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let cases: [(&str, Option<String>, &str); 6] = [
            ("missing.pem", None, "cannot read"),
            ("empty.pem", Some(String::new()), "no PEM certificate in it"),
            ("key.pem", Some(key_only), "no PEM certificate in it"),
            (
                "prose.pem",
                Some("our CA is on the wiki\n".into()),
                "no PEM certificate in it",
            ),
            (
                "cut.pem",
                Some("-----BEGIN CERTIFICATE-----\nMIIB\n".into()),
                "not a PEM file",
            ),
            (
                "junk.pem",
                Some("-----BEGIN CERTIFICATE-----\nanVuaw==\n-----END CERTIFICATE-----\n".into()),
                "certificate 1 cannot be trusted",
            ),
        ];
        for (name, contents, expected) in cases {
            let (_dir, loaded) =
                load_with_ca_files(&[("good.pem", Some(ca_pem("good"))), (name, contents)]);
            let error = loaded.expect_err(name);
            assert!(error.contains("agent.toml: "), "the config file: {error}");
            assert!(
                error.contains("connectivity.https_ca_files: "),
                "the key: {error}"
            );
            assert!(
                error.contains(&format!("{name}: {expected}")),
                "{error:?} should name {name} and say {expected:?}"
            );
            assert!(!error.contains("good.pem"), "only the bad file: {error}");
        }
    }

    #[test]
    fn https_ca_files_may_hold_several_certificates() {
        let bundle = format!("{}{}", ca_pem("root"), ca_pem("issuing"));
        let with_key = format!(
            "{}{}",
            rcgen::KeyPair::generate().expect("key").serialize_pem(),
            ca_pem("other")
        );
        let (_dir, loaded) =
            load_with_ca_files(&[("bundle.pem", Some(bundle)), ("other.pem", Some(with_key))]);
        let config = loaded.expect("valid CA files");
        assert_eq!(config.conn_settings.https_ca_files.len(), 2);
        let read = crate::probe::connectivity::checks::read_ca_file(
            &config.conn_settings.https_ca_files[0],
        )
        .expect("bundle");
        assert_eq!(read.len(), 2, "both certificates of the bundle");
        assert!(
            crate::probe::connectivity::checks::tls_config(&config.conn_settings.https_ca_files)
                .is_ok()
        );
        assert_eq!(
            Config::default().conn_settings.https_ca_files,
            Vec::<PathBuf>::new(),
            "the web PKI roots only, by default"
        );
    }

    #[test]
    fn shipped_config_file_is_the_defaults() {
        let shipped =
            load(include_str!("../../deploy/agent/agent.toml")).expect("shipped config loads");
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn text_gives_what_the_file_gives() {
        let text = "[disk]\ninterval = \"2s\"\n[spool]\nmax_snapshots = 10\n";
        let from_text = Config::from_toml("agent.toml", text, &|_| None).expect("valid");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write");
        let from_file = Config::load_with_env(Some(&path), None, &|_| None).expect("valid");
        assert_eq!(from_text, from_file);
        let error = Config::from_toml("given.toml", "[spool]\nmax_snapshots = 0\n", &|_| None)
            .expect_err("invalid")
            .to_string();
        assert!(
            error.starts_with("given.toml: spool.max_snapshots"),
            "{error}"
        );
    }

    #[test]
    fn values_in_the_file_replace_defaults() {
        let config =
            load("[disk]\ninterval = \"2s\"\n[report]\nheartbeat = \"10s\"\n").expect("valid");
        assert_eq!(config.disk_interval, Duration::from_secs(2));
        assert_eq!(config.heartbeat, Duration::from_secs(10));
        assert_eq!(config.spool, Config::default().spool);
    }

    #[test]
    fn enrollment_comes_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "[enrollment]\ncollector_url = \"https://file.example:7443\"\ntoken_file = \"/etc/t\"\n",
        )
        .expect("write");
        let env =
            |name: &str| (name == crate::enrollment::ENV_CA_FILE).then(|| "/env/ca.crt".to_owned());
        let config = Config::load_with_env(Some(&path), None, &env).expect("valid");
        let ready = config.enrollment.ready().expect("all three values");
        assert_eq!(ready.collector_url, "https://file.example:7443");
        assert_eq!(ready.ca_file.value, PathBuf::from("/env/ca.crt"));
        let none = |_: &str| None;
        let config = Config::load_with_env(Some(&path), None, &none).expect("valid");
        assert_eq!(config.enrollment.missing(), ["ca_file"]);
        let bad = |name: &str| {
            (name == crate::enrollment::ENV_COLLECTOR_URL).then(|| "collector:7443".to_owned())
        };
        let error = Config::load_with_env(Some(&path), None, &bad)
            .expect_err("not https")
            .to_string();
        assert!(
            error.contains("agent.toml: FIRSTLINE_COLLECTOR_URL (environment): "),
            "{error}"
        );
    }
}
