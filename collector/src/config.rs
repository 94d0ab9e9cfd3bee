//! Collector configuration: a raw TOML shape (every key optional, unknown keys refused) turned
//! into a validated [`Config`]. Layers: built-in defaults < TOML file < command-line flags.
//! Every error names the file and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use firstline_support::config_file::{finish, parse_toml, read_toml, set_duration};
use serde::Deserialize;

pub use firstline_support::config_file::ConfigError;

use crate::engine::Engine;
use crate::retention::RetentionPolicy;

/// The validated configuration the collector runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Holds the CA, keys and (by default) the SQLite file.
    pub data_dir: PathBuf,
    pub grpc_listen: SocketAddr,
    /// Extra DNS names or IP addresses for the server certificate, besides localhost.
    pub server_names: Vec<String>,
    /// A `Watch` consumer that reads nothing this long while events wait is ended.
    pub watch_stall_timeout: Duration,
    /// Empty: `sqlite://<data_dir>/firstline.db`.
    pub store_url: String,
    pub certificate_validity: Duration,
    pub heartbeat: Duration,
    /// The operator's rule file, laid over the shipped rules.
    pub rules_file: Option<PathBuf>,
    /// Rules, SLA times and reopen window, as loaded.
    pub engine: Engine,
    /// Knowledge-base articles overriding the shipped ones (`<name>.md`).
    pub kb_dir: Option<PathBuf>,
    /// The HTTP/JSON admin API; off when unset.
    pub http_listen: Option<SocketAddr>,
    /// Whether the dashboard's session cookie is marked `Secure` (`[http] secure_cookies`).
    /// Must be true whenever the HTTP listener is reached over HTTPS (a TLS proxy in front);
    /// false (the default) suits plain HTTP on loopback only.
    pub http_secure_cookies: bool,
    /// How long history is kept.
    pub retention: RetentionPolicy,
    /// Webhooks, Alertmanagers and NATS (docs/feeds.md).
    pub feeds: crate::feeds::config::FeedsConfig,
    /// Rate limits on reports and enrollment (`[limits]`).
    pub limits: crate::rate_limits::LimitsConfig,
    /// Help desks tickets are synced with (docs/helpdesk.md).
    pub helpdesk: crate::helpdesk::config::HelpdeskConfig,
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
    tickets: Option<RawTickets>,
    sla: Option<RawSla>,
    http: Option<RawHttp>,
    limits: Option<RawLimits>,
    retention: Option<RawRetention>,
    feeds: Option<crate::feeds::config::RawFeeds>,
    helpdesk: Option<crate::helpdesk::config::RawHelpdesk>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
    secure_cookies: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrpc {
    listen: Option<String>,
    server_names: Option<Vec<String>>,
    watch_stall_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    agent_reports_per_minute: Option<u32>,
    agent_report_burst: Option<u32>,
    reports_per_second: Option<u32>,
    enrollments_per_minute_per_ip: Option<u32>,
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
    file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    reopen_window: Option<String>,
    flap_window: Option<String>,
    kb_dir: Option<PathBuf>,
}

/// Response, resolve and tier-2 times per priority, e.g. `p1_response = "15m"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    p1_response: Option<String>,
    p1_resolve: Option<String>,
    p1_tier2: Option<String>,
    p2_response: Option<String>,
    p2_resolve: Option<String>,
    p2_tier2: Option<String>,
    p3_response: Option<String>,
    p3_resolve: Option<String>,
    p3_tier2: Option<String>,
    p4_response: Option<String>,
    p4_resolve: Option<String>,
    p4_tier2: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    snapshots: Option<String>,
    disk_samples_raw: Option<String>,
    disk_samples: Option<String>,
    tickets: Option<String>,
}

/// Values given on the command line; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub grpc_listen: Option<String>,
    pub store_url: Option<String>,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// A century of humantime's years (365.25 days), so the message says "100years".
const RETENTION_MAX: Duration = Duration::from_secs(100 * 31_557_600);

/// Where packages put the collector's configuration and state.
pub const PACKAGED_CONFIG: &str = "/etc/firstline/collector.toml";
pub const PACKAGED_DATA_DIR: &str = "/var/lib/firstline-collector";

/// The data directory when neither the file nor a flag (`--data-dir`, `FIRSTLINE_DATA_DIR`)
/// names one: systemd's `StateDirectory` when run as a service, the packaged directory when it
/// exists (an operator's shell on a packaged install), else `./firstline-data`.
fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return PathBuf::from(dir);
    }
    if Path::new(PACKAGED_DATA_DIR).is_dir() {
        return PathBuf::from(PACKAGED_DATA_DIR);
    }
    PathBuf::from("firstline-data")
}

/// The packaged configuration file, when no other is given and it exists.
pub fn packaged_config() -> Option<PathBuf> {
    let path = PathBuf::from(PACKAGED_CONFIG);
    path.is_file().then_some(path)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            server_names: Vec::new(),
            watch_stall_timeout: Duration::from_secs(30),
            store_url: String::new(),
            certificate_validity: Duration::from_secs(365 * 24 * 3600),
            heartbeat: Duration::from_secs(60),
            rules_file: None,
            engine: Engine::default(),
            kb_dir: None,
            http_listen: None,
            http_secure_cookies: false,
            retention: RetentionPolicy::default(),
            feeds: Default::default(),
            helpdesk: Default::default(),
            limits: Default::default(),
        }
    }
}

impl Config {
    /// Loads the file (if any) over the defaults, then the flags, and validates the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let (name, raw) = read_toml::<RawConfig>(file)?;
        Self::from_raw(name, raw, overrides)
    }

    /// The configuration that `text`, the contents of a file called `name` in errors, gives
    /// over the defaults, then the flags: what [`Config::load`] does once the file is read
    /// (the rule file it names is still read from disk).
    pub fn from_toml(name: &str, text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw = parse_toml::<RawConfig>(name, text)?;
        Self::from_raw(name.to_owned(), raw, overrides)
    }

    fn from_raw(name: String, raw: RawConfig, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut config = Self::default();
        config.apply(raw, &mut problems);
        config.apply_overrides(overrides, &mut problems);
        config.validate(&mut problems);
        let mut config = finish(name, config, problems)?;
        // The rule file reports its own errors, naming its file, rule and key.
        config.engine.rules = crate::rules::config::load(config.rules_file.as_deref())?;
        Ok(config)
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
             [grpc]\nlisten = \"{}\"\n# Extra names or addresses agents use to reach this collector.\nserver_names = []\n# A Watch consumer that reads nothing this long while events wait is ended (it resumes by cursor).\nwatch_stall_timeout = \"{}\"\n\n\
             [http]\n# The JSON admin API (e.g. \"127.0.0.1:7080\"); off when empty. Key: data_dir/api.key.\nlisten = \"\"\n# Mark the session cookie Secure; must be true when the listener is reached over HTTPS.\nsecure_cookies = false\n\n\
             [store]\n# Empty: SQLite file firstline.db in data_dir. Or postgres://user@host/db\nurl = \"\"\n\n\
             [enrollment]\n# Lifetime of agents' certificates; agents renew theirs when two thirds of it has passed.\ncertificate_validity = \"{}\"\n\n\
             [report]\n# Longest quiet time between two reports of an agent.\nheartbeat = \"{}\"\n\n\
             [rules]\n# An operator's rule file over the shipped rules (`firstline-collector check-rules FILE`).\n# file = \"/etc/firstline/rules.toml\"\n\n\
             [tickets]\n# A condition that recurs this soon after its ticket resolved reopens that ticket.\nreopen_window = \"{}\"\n# Reopened this soon after resolving: flapping; it then resolves only after staying clear this long.\nflap_window = \"{}\"\n# Knowledge-base articles (<name>.md) overriding the shipped ones.\n# kb_dir = \"/etc/firstline/kb\"\n\n\
             [sla]\n# Per priority: acknowledge within `response`, resolve within `resolve` (else tier 2),\n# and escalate from tier 2 to tier 3 when still open `tier2` after reaching tier 2.\n{}\n\
             [retention]\n# Raw snapshots (each agent's newest is always kept), after they arrived.\nsnapshots = \"{}\"\n\
             # Disk samples at full resolution (one per 10 minutes per mount); then the last of each hour.\ndisk_samples_raw = \"{}\"\n\
             # Hourly disk samples.\ndisk_samples = \"{}\"\n\
             # Resolved and closed tickets and their events, after they resolved (open tickets: always).\ntickets = \"{}\"\n\n\
             [limits]\n# Reports one agent may send: a burst, then this many a minute (0: no limit).\nagent_reports_per_minute = {}\nagent_report_burst = {}\n\
             # Reports a second for the whole collector (0: no limit beyond the ingest queue's admission).\nreports_per_second = {}\n\
             # Enrollment calls a minute from one IP address (an IPv6 /64); 0: no limit.\nenrollments_per_minute_per_ip = {}\n\n\
             # Alert feeds (docs/feeds.md): any number of webhooks and Alertmanagers, one NATS server.\n\
             # [[feeds.webhook]]\n# name = \"ops\"\n# url = \"https://hooks.example.com/firstline\"\n\
             # secret_file = \"/etc/firstline/ops-webhook.secret\"  # HMAC-SHA256 key of the signature header\n\
             # format = \"firstline\"   # or \"alertmanager\" (Alertmanager webhook payload, version 4)\n\
             # max_priority = 2         # only P1 and P2; also rules, labels, hosts, kinds = [...]\n\
             # max_attempts = 8\n# retry_initial = \"2s\"\n# retry_max = \"10m\"\n# timeout = \"10s\"\n\n\
             # [[feeds.alertmanager]]\n# name = \"am\"\n# url = \"http://127.0.0.1:9093\"\n# resend = \"1m\"\n\n\
             # [feeds.nats]\n# url = \"nats://127.0.0.1:4222\"\n# subject_prefix = \"firstline.alerts\"  # subjects <prefix>.p1 .. <prefix>.p4\n\
             # stream = \"FIRSTLINE_ALERTS\"  # created when missing\n\n\
             # Two-way sync with Request Tracker 5 (docs/helpdesk.md).\n\
             # [helpdesk.request_tracker]\n# url = \"https://rt.example.com\"\n# queue = \"General\"\n\
             # token_file = \"/etc/firstline/rt.token\"  # or user = \"firstline\" and password_file\n\
             # priorities = [90, 70, 50, 30]  # RT priority of P1..P4\n# poll = \"30s\"  # how often RT is searched for technicians' changes\n\
             # correlated_hold = \"1m\"  # host tickets of correlated rules wait this long for an outage\n\
             # dashboard_url = \"https://firstline.example.com\"  # a link back in each RT ticket\n\n\
             # Help desks and chats through request templates: jira-sm, servicenow, zammad, glpi,\n\
             # freshservice, slack, mattermost, rocketchat, slack-webhook (any Slack-format incoming\n\
             # webhook), teams, or template_file.\n\
             # [[helpdesk.webhook]]\n# name = \"servicedesk\"\n# template = \"servicenow\"\n\
             # url = \"https://example.service-now.com\"\n# user = \"firstline\"\n# secret_file = \"/etc/firstline/sn.password\"\n\
             # settings = {{ assignment_group = \"Desktop support\" }}\n\n\
             # E-mail through an SMTP relay, routed by priority, rule, label or host.\n\
             # [helpdesk.email]\n# server = \"smtp.example.com\"\n# tls = \"starttls\"  # or tls (port 465), none (port 25)\n\
             # user = \"firstline\"\n# password_file = \"/etc/firstline/smtp.password\"\n\
             # from = \"Firstline <firstline@example.com>\"\n# quiet_hours = \"22:00-07:00\"  # only P1 at once meanwhile (quiet_bypass)\n\
             # utc_offset = \"+01:00\"\n# digest_every = \"1h\"\n\
             # [[helpdesk.email.route]]\n# name = \"oncall\"\n# to = [\"oncall@example.com\"]\n# max_priority = 2\n\
             # [[helpdesk.email.route]]\n# name = \"desk\"\n# to = [\"desk@example.com\"]\n# digest_priorities = [3, 4]  # one mail per digest_every\n",
            d.grpc_listen,
            humantime::format_duration(d.watch_stall_timeout),
            humantime::format_duration(d.certificate_validity),
            humantime::format_duration(d.heartbeat),
            humantime::format_duration(d.engine.reopen_window),
            humantime::format_duration(d.engine.flap_window),
            (0..4)
                .map(|i| format!(
                    "p{n}_response = \"{}\"\np{n}_resolve = \"{}\"\np{n}_tier2 = \"{}\"\n",
                    humantime::format_duration(d.engine.sla.response[i]),
                    humantime::format_duration(d.engine.sla.resolve[i]),
                    humantime::format_duration(d.engine.sla.tier2[i]),
                    n = i + 1
                ))
                .collect::<String>(),
            human(d.retention.snapshots),
            human(d.retention.disk_samples_raw),
            human(d.retention.disk_samples),
            human(d.retention.tickets),
            d.limits.agent_reports_per_minute,
            d.limits.agent_report_burst,
            d.limits.reports_per_second,
            d.limits.enrollments_per_minute_per_ip,
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
        if let Some(v) = grpc.watch_stall_timeout {
            set_duration(
                &mut self.watch_stall_timeout,
                "grpc.watch_stall_timeout",
                &v,
                (SECOND, HOUR),
                problems,
            );
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
                (MINUTE, 100 * 365 * DAY),
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
        self.rules_file = raw.rules.unwrap_or_default().file;
        let http = raw.http.unwrap_or_default();
        if let Some(secure) = http.secure_cookies {
            self.http_secure_cookies = secure;
        }
        if let Some(listen) = http.listen.filter(|l| !l.is_empty()) {
            let mut addr = self.grpc_listen;
            set_addr(&mut addr, "http.listen", &listen, problems);
            self.http_listen = Some(addr);
        }
        let tickets = raw.tickets.unwrap_or_default();
        self.kb_dir = tickets.kb_dir;
        if let Some(v) = tickets.flap_window {
            set_duration(
                &mut self.engine.flap_window,
                "tickets.flap_window",
                &v,
                (Duration::ZERO, DAY),
                problems,
            );
        }
        if let Some(v) = tickets.reopen_window {
            set_duration(
                &mut self.engine.reopen_window,
                "tickets.reopen_window",
                &v,
                (Duration::ZERO, 30 * DAY),
                problems,
            );
        }
        let sla = raw.sla.unwrap_or_default();
        let times = [
            (sla.p1_response, "sla.p1_response", 0, 0),
            (sla.p1_resolve, "sla.p1_resolve", 0, 1),
            (sla.p1_tier2, "sla.p1_tier2", 0, 2),
            (sla.p2_response, "sla.p2_response", 1, 0),
            (sla.p2_resolve, "sla.p2_resolve", 1, 1),
            (sla.p2_tier2, "sla.p2_tier2", 1, 2),
            (sla.p3_response, "sla.p3_response", 2, 0),
            (sla.p3_resolve, "sla.p3_resolve", 2, 1),
            (sla.p3_tier2, "sla.p3_tier2", 2, 2),
            (sla.p4_response, "sla.p4_response", 3, 0),
            (sla.p4_resolve, "sla.p4_resolve", 3, 1),
            (sla.p4_tier2, "sla.p4_tier2", 3, 2),
        ];
        for (value, key, i, which) in times {
            if let Some(v) = value {
                let slot = match which {
                    0 => &mut self.engine.sla.response[i],
                    1 => &mut self.engine.sla.resolve[i],
                    _ => &mut self.engine.sla.tier2[i],
                };
                set_duration(slot, key, &v, (SECOND, 365 * DAY), problems);
            }
        }
        self.apply_retention(raw.retention.unwrap_or_default(), problems);
        self.apply_limits(raw.limits.unwrap_or_default(), problems);
        self.feeds =
            crate::feeds::config::FeedsConfig::from_raw(raw.feeds.unwrap_or_default(), problems);
        self.helpdesk = crate::helpdesk::config::HelpdeskConfig::from_raw(
            raw.helpdesk.unwrap_or_default(),
            problems,
        );
    }

    fn apply_retention(&mut self, raw: RawRetention, problems: &mut Vec<String>) {
        let r = &mut self.retention;
        let durations = [
            (raw.snapshots, "retention.snapshots", &mut r.snapshots, HOUR),
            (
                raw.disk_samples_raw,
                "retention.disk_samples_raw",
                &mut r.disk_samples_raw,
                HOUR,
            ),
            (
                raw.disk_samples,
                "retention.disk_samples",
                &mut r.disk_samples,
                HOUR,
            ),
            (raw.tickets, "retention.tickets", &mut r.tickets, DAY),
        ];
        for (value, key, slot, min) in durations {
            if let Some(v) = value {
                set_duration(slot, key, &v, (min, RETENTION_MAX), problems);
            }
        }
    }

    fn apply_limits(&mut self, raw: RawLimits, problems: &mut Vec<String>) {
        let l = &mut self.limits;
        let values = [
            (
                raw.agent_reports_per_minute,
                "limits.agent_reports_per_minute",
                &mut l.agent_reports_per_minute,
                60_000,
            ),
            (
                raw.agent_report_burst,
                "limits.agent_report_burst",
                &mut l.agent_report_burst,
                100_000,
            ),
            (
                raw.reports_per_second,
                "limits.reports_per_second",
                &mut l.reports_per_second,
                1_000_000,
            ),
            (
                raw.enrollments_per_minute_per_ip,
                "limits.enrollments_per_minute_per_ip",
                &mut l.enrollments_per_minute_per_ip,
                60_000,
            ),
        ];
        for (value, key, slot, max) in values {
            match value {
                Some(v) if v > max => {
                    problems.push(format!(
                        "{key}: {v} is more than {max} (0 turns the limit off)"
                    ));
                }
                Some(v) => *slot = v,
                None => {}
            }
        }
        if l.agent_reports_per_minute > 0 && l.agent_report_burst == 0 {
            problems.push(
                "limits.agent_report_burst: must be at least 1 while limits.agent_reports_per_minute is on"
                    .to_owned(),
            );
        }
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
        if !self.store_url.is_empty() && crate::store::Backend::from_url(&self.store_url).is_err() {
            problems.push(format!(
                "store.url: {:?} is neither sqlite://PATH nor postgres://...",
                self.store_url
            ));
        }
        let r = &self.retention;
        if r.disk_samples < r.disk_samples_raw {
            problems.push(format!(
                "retention.disk_samples: {} is shorter than retention.disk_samples_raw ({})",
                human(r.disk_samples),
                human(r.disk_samples_raw)
            ));
        }
        if r.tickets <= self.engine.reopen_window {
            problems.push(format!(
                "retention.tickets: {} is not longer than tickets.reopen_window ({})",
                human(r.tickets),
                human(self.engine.reopen_window)
            ));
        }
        for name in &self.server_names {
            if name.is_empty() || name.len() > 253 {
                problems.push(format!("grpc.server_names: {name:?} is not a host name"));
            }
        }
    }
}

/// A duration as the shipped file writes it: whole days (from three) as days ("400days", not
/// humantime's "1year 1month 4days 13h 30m 36s"), whole hours as hours, else humantime's text.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 && secs >= 3 * DAY.as_secs() && secs.is_multiple_of(DAY.as_secs()) {
        format!("{}days", secs / DAY.as_secs())
    } else if d.subsec_nanos() == 0 && secs > 0 && secs.is_multiple_of(HOUR.as_secs()) {
        format!("{}h", secs / HOUR.as_secs())
    } else {
        humantime::format_duration(d).to_string()
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
    fn text_gives_what_the_file_gives() {
        let text = "[report]\nheartbeat = \"5m\"\n";
        let from_text = Config::from_toml("collector.toml", text, &Overrides::default());
        assert_eq!(from_text.expect("valid"), load(text).expect("valid"));
        let error = Config::from_toml(
            "given.toml",
            "[report]\nheartbeat = 5\n",
            &Overrides::default(),
        )
        .expect_err("invalid")
        .to_string();
        assert!(error.starts_with("given.toml: "), "{error}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            (
                "[tickets]\nreopen_windw = \"1h\"\n",
                "unknown field `reopen_windw`",
            ),
            ("bogus = 1\n", "unknown field `bogus`"),
            (
                "[sla]\np1_response = \"soon\"\n",
                "sla.p1_response: \"soon\"",
            ),
            (
                "[tickets]\nreopen_window = \"90d\"\n",
                "tickets.reopen_window: \"90d\" is not between",
            ),
            ("[grpc]\nlisten = \"nowhere\"\n", "grpc.listen: \"nowhere\""),
            (
                "[report]\nheartbeat = \"soon\"\n",
                "report.heartbeat: \"soon\"",
            ),
            ("[store]\nurl = \"mysql://x\"\n", "store.url"),
            (
                "[limits]\nagent_reports_per_minute = 70000\n",
                "limits.agent_reports_per_minute: 70000 is more than 60000",
            ),
            (
                "[limits]\nagent_report_burst = 0\n",
                "limits.agent_report_burst: must be at least 1",
            ),
            ("[limits]\nreports_per_second = -1\n", "invalid value"),
            ("[rules]\nfile = 7\n", "invalid type"),
            (
                "[retention]\nsnapshots = \"0s\"\n",
                "retention.snapshots: \"0s\" is not between",
            ),
            (
                "[retention]\ntickets = \"-3days\"\n",
                "retention.tickets: \"-3days\" is not a duration",
            ),
            (
                "[retention]\ndisk_samples_raw = \"0h\"\n",
                "retention.disk_samples_raw: \"0h\"",
            ),
            (
                "[retention]\ndisk_samples = \"1h\"\n",
                "retention.disk_samples: 1h is shorter than retention.disk_samples_raw",
            ),
            (
                "[retention]\nsnapshot = \"1d\"\n",
                "unknown field `snapshot`",
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
    fn retention_section_sets_the_policy() {
        let config = load("[retention]\nsnapshots = \"3days\"\ndisk_samples_raw = \"24h\"\n")
            .expect("loads");
        assert_eq!(config.retention.snapshots, 3 * DAY);
        assert_eq!(config.retention.disk_samples_raw, 24 * HOUR);
        assert_eq!(config.retention.tickets, RetentionPolicy::default().tickets);
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
