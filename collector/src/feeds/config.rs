//! The `[feeds]` part of the collector's configuration: webhooks (`[[feeds.webhook]]`),
//! Alertmanager instances (`[[feeds.alertmanager]]`) and one NATS JetStream server
//! (`[feeds.nats]`), each with its own filter. Parsed from the raw TOML shape into validated
//! values; every problem names its key (`feeds.webhook[0].url`), like the rest of the file.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use firstline_support::config_file::set_duration;
use serde::Deserialize;

use super::filter::FeedFilter;
use crate::tickets::EventKind;

/// Most webhooks and Alertmanagers that can be configured.
pub const MAX_FEEDS: usize = 32;

/// Every configured feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedsConfig {
    pub webhooks: Vec<WebhookConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
    pub nats: Option<NatsConfig>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Firstline's own JSON (docs/feeds.md).
    Firstline,
    /// The Prometheus Alertmanager webhook payload (version 4).
    Alertmanager,
}

/// One webhook endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// HMAC-SHA256 key for the signature header; empty: requests are not signed.
    pub secret: String,
    pub format: WebhookFormat,
    pub filter: FeedFilter,
    /// Per request.
    pub timeout: Duration,
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled each time up to `retry_max`, with jitter.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// One Alertmanager (API v2) that open tickets are pushed to.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    pub filter: FeedFilter,
    /// How often every open ticket is pushed again; an alert not pushed again ends after
    /// four times this.
    pub resend: Duration,
    pub timeout: Duration,
}

/// The NATS JetStream feed.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsConfig {
    /// `nats://host:port`.
    pub url: String,
    /// Subjects are `<prefix>.p<priority>`; the stream takes `<prefix>.>`.
    pub subject_prefix: String,
    /// The JetStream stream, created when missing.
    pub stream: String,
    /// A NATS credentials file (`.creds`), when the server wants one.
    pub credentials_file: Option<PathBuf>,
    pub filter: FeedFilter,
}

impl WebhookConfig {
    /// The feed's name in the store, the CLI and metrics.
    pub fn feed_name(&self) -> String {
        format!("webhook:{}", self.name)
    }
}

impl AlertmanagerConfig {
    pub fn feed_name(&self) -> String {
        format!("alertmanager:{}", self.name)
    }
}

/// The NATS feed's name.
pub const NATS_FEED: &str = "nats";

/// The filter keys every feed accepts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeeds {
    webhook: Option<Vec<RawWebhook>>,
    alertmanager: Option<Vec<RawAlertmanager>>,
    nats: Option<RawNats>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Option<String>,
    url: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    format: Option<String>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    kinds: Option<Vec<String>>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanager {
    name: Option<String>,
    url: Option<String>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    resend: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    url: Option<String>,
    subject_prefix: Option<String>,
    stream: Option<String>,
    credentials_file: Option<PathBuf>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    kinds: Option<Vec<String>>,
}

const SECOND: Duration = Duration::from_secs(1);

impl FeedsConfig {
    /// Validates the raw `[feeds]` table; problems are pushed with their keys.
    pub fn from_raw(raw: RawFeeds, problems: &mut Vec<String>) -> Self {
        let mut names = BTreeSet::new();
        let webhooks: Vec<WebhookConfig> = raw
            .webhook
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, w)| webhook(i, w, &mut names, problems))
            .collect();
        let mut am_names = BTreeSet::new();
        let alertmanagers: Vec<AlertmanagerConfig> = raw
            .alertmanager
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, a)| alertmanager(i, a, &mut am_names, problems))
            .collect();
        if webhooks.len() + alertmanagers.len() > MAX_FEEDS {
            problems.push(format!(
                "feeds: {} webhooks and Alertmanagers; at most {MAX_FEEDS}",
                webhooks.len() + alertmanagers.len()
            ));
        }
        let nats = raw.nats.and_then(|n| nats(n, problems));
        Self {
            webhooks,
            alertmanagers,
            nats,
        }
    }

    /// Whether any feed is configured.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.alertmanagers.is_empty() && self.nats.is_none()
    }
}

fn webhook(
    i: usize,
    w: RawWebhook,
    names: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Option<WebhookConfig> {
    let key = format!("feeds.webhook[{i}]");
    let before = problems.len();
    let name = feed_name(&key, w.name, names, problems);
    let url = http_url(&format!("{key}.url"), w.url, problems);
    // An empty inline secret means none: the deliveries go unsigned.
    let inline = w.secret.filter(|s| !s.is_empty());
    let secret =
        secret(&format!("{key}.secret"), inline, w.secret_file, problems).unwrap_or_default();
    let format = match w.format.as_deref() {
        None | Some("firstline") => WebhookFormat::Firstline,
        Some("alertmanager") => WebhookFormat::Alertmanager,
        Some(other) => {
            problems.push(format!(
                "{key}.format: {other:?} is neither \"firstline\" nor \"alertmanager\""
            ));
            WebhookFormat::Firstline
        }
    };
    let filter = filter(
        &key,
        w.max_priority,
        w.rules,
        w.labels,
        w.hosts,
        w.kinds,
        problems,
    );
    let mut timeout = Duration::from_secs(10);
    if let Some(v) = w.timeout {
        set_duration(
            &mut timeout,
            &format!("{key}.timeout"),
            &v,
            (SECOND, Duration::from_secs(120)),
            problems,
        );
    }
    let max_attempts = w.max_attempts.unwrap_or(8);
    if !(1..=100).contains(&max_attempts) {
        problems.push(format!(
            "{key}.max_attempts: {max_attempts} is not between 1 and 100"
        ));
    }
    let mut retry_initial = Duration::from_secs(2);
    if let Some(v) = w.retry_initial {
        set_duration(
            &mut retry_initial,
            &format!("{key}.retry_initial"),
            &v,
            (Duration::from_millis(100), Duration::from_secs(3600)),
            problems,
        );
    }
    let mut retry_max = Duration::from_secs(600);
    if let Some(v) = w.retry_max {
        set_duration(
            &mut retry_max,
            &format!("{key}.retry_max"),
            &v,
            (Duration::from_millis(100), Duration::from_secs(86_400)),
            problems,
        );
    }
    if retry_max < retry_initial {
        problems.push(format!("{key}.retry_max: shorter than {key}.retry_initial"));
    }
    (problems.len() == before).then_some(WebhookConfig {
        name,
        url,
        secret,
        format,
        filter,
        timeout,
        max_attempts,
        retry_initial,
        retry_max,
    })
}

fn alertmanager(
    i: usize,
    a: RawAlertmanager,
    names: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Option<AlertmanagerConfig> {
    let key = format!("feeds.alertmanager[{i}]");
    let before = problems.len();
    let name = feed_name(&key, a.name, names, problems);
    let url = http_url(&format!("{key}.url"), a.url, problems);
    let filter = filter(
        &key,
        a.max_priority,
        a.rules,
        a.labels,
        a.hosts,
        None,
        problems,
    );
    let mut resend = Duration::from_secs(60);
    if let Some(v) = a.resend {
        set_duration(
            &mut resend,
            &format!("{key}.resend"),
            &v,
            (SECOND, Duration::from_secs(3600)),
            problems,
        );
    }
    let mut timeout = Duration::from_secs(10);
    if let Some(v) = a.timeout {
        set_duration(
            &mut timeout,
            &format!("{key}.timeout"),
            &v,
            (SECOND, Duration::from_secs(120)),
            problems,
        );
    }
    (problems.len() == before).then_some(AlertmanagerConfig {
        name,
        url: url.trim_end_matches('/').to_owned(),
        filter,
        resend,
        timeout,
    })
}

fn nats(n: RawNats, problems: &mut Vec<String>) -> Option<NatsConfig> {
    let key = "feeds.nats";
    let before = problems.len();
    let url = match n.url {
        Some(u) if u.starts_with("nats://") || u.starts_with("tls://") => u,
        Some(u) => {
            problems.push(format!(
                "{key}.url: {u:?} is not a nats:// or tls:// address"
            ));
            String::new()
        }
        None => {
            problems.push(format!(
                "{key}.url: missing (e.g. \"nats://127.0.0.1:4222\")"
            ));
            String::new()
        }
    };
    let subject_prefix = n
        .subject_prefix
        .unwrap_or_else(|| "firstline.alerts".into());
    if !valid_subject(&subject_prefix) {
        problems.push(format!(
            "{key}.subject_prefix: {subject_prefix:?} is not a NATS subject (tokens of letters, digits, - and _ separated by dots)"
        ));
    }
    let stream = n.stream.unwrap_or_else(|| "FIRSTLINE_ALERTS".into());
    if stream.is_empty()
        || stream.len() > 64
        || !stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(format!(
            "{key}.stream: {stream:?} is not a stream name (letters, digits, - and _)"
        ));
    }
    let filter = filter(
        key,
        n.max_priority,
        n.rules,
        n.labels,
        n.hosts,
        n.kinds,
        problems,
    );
    if let Some(path) = &n.credentials_file
        && let Err(e) = std::fs::metadata(path)
    {
        problems.push(format!(
            "{key}.credentials_file: cannot read {}: {e}",
            path.display()
        ));
    }
    (problems.len() == before).then_some(NatsConfig {
        url,
        subject_prefix,
        stream,
        credentials_file: n.credentials_file,
        filter,
    })
}

fn feed_name(
    key: &str,
    name: Option<String>,
    names: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> String {
    let Some(name) = name else {
        problems.push(format!("{key}.name: missing"));
        return String::new();
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(format!(
            "{key}.name: {name:?} must be 1 to 64 letters, digits, - or _"
        ));
    } else if !names.insert(name.clone()) {
        problems.push(format!("{key}.name: {name:?} is used twice"));
    }
    name
}

/// A secret given inline or in a file (trimmed); `None` when neither. Problems are named
/// `<key>` and `<key>_file`.
pub(crate) fn secret(
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    problems: &mut Vec<String>,
) -> Option<String> {
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            problems.push(format!("{key}: give {key} or {key}_file, not both"));
            return None;
        }
        (Some(s), None) => s,
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().to_owned(),
            Err(e) => {
                problems.push(format!("{key}_file: cannot read {}: {e}", path.display()));
                return None;
            }
        },
        (None, None) => return None,
    };
    if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
        problems.push(format!(
            "{key}: must be 1 to 1024 characters without control characters"
        ));
        return None;
    }
    Some(value)
}

pub(crate) fn http_url(key: &str, url: Option<String>, problems: &mut Vec<String>) -> String {
    match url {
        Some(u)
            if (u.starts_with("http://") || u.starts_with("https://"))
                && u.len() <= 2048
                && u.parse::<axum::http::Uri>().is_ok() =>
        {
            u
        }
        Some(u) => {
            problems.push(format!("{key}: {u:?} is not an http:// or https:// URL"));
            String::new()
        }
        None => {
            problems.push(format!("{key}: missing"));
            String::new()
        }
    }
}

fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn filter(
    key: &str,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    kinds: Option<Vec<String>>,
    problems: &mut Vec<String>,
) -> FeedFilter {
    let max_priority = max_priority.unwrap_or(0);
    if max_priority > 4 {
        problems.push(format!(
            "{key}.max_priority: {max_priority} is not between 1 and 4"
        ));
    }
    let mut kind_set = Vec::new();
    for k in kinds.unwrap_or_default() {
        match EventKind::parse(&k) {
            Ok(kind) => kind_set.push(kind),
            Err(_) => problems.push(format!(
                "{key}.kinds: {k:?} is not an event kind ({})",
                EventKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    let lists = [
        ("rules", rules.unwrap_or_default()),
        ("labels", labels.unwrap_or_default()),
        ("hosts", hosts.unwrap_or_default()),
    ];
    for (what, list) in &lists {
        if list.len() > 256 || list.iter().any(|v| v.is_empty() || v.len() > 255) {
            problems.push(format!(
                "{key}.{what}: at most 256 entries of 1 to 255 characters"
            ));
        }
    }
    let [(_, rules), (_, labels), (_, hosts)] = lists;
    FeedFilter {
        max_priority,
        rules,
        labels,
        hosts,
        kinds: kind_set,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (FeedsConfig, Vec<String>) {
        let raw: RawFeeds = toml::from_str(text).expect("toml");
        let mut problems = Vec::new();
        let config = FeedsConfig::from_raw(raw, &mut problems);
        (config, problems)
    }

    #[test]
    fn a_full_feeds_table_parses_with_defaults_filled_in() {
        let (c, problems) = parse(
            r#"
[[webhook]]
name = "ops"
url = "https://hooks.example.com/x"
secret = "s3"
format = "alertmanager"
max_priority = 2
kinds = ["opened", "resolved"]

[[alertmanager]]
name = "am"
url = "http://127.0.0.1:9093/"

[nats]
url = "nats://127.0.0.1:4222"
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let w = &c.webhooks[0];
        assert_eq!(w.feed_name(), "webhook:ops");
        assert_eq!(w.format, WebhookFormat::Alertmanager);
        assert_eq!(w.filter.max_priority, 2);
        assert_eq!(w.filter.kinds, vec![EventKind::Opened, EventKind::Resolved]);
        assert_eq!(w.max_attempts, 8);
        assert_eq!(c.alertmanagers[0].url, "http://127.0.0.1:9093");
        let n = c.nats.expect("nats");
        assert_eq!(n.subject_prefix, "firstline.alerts");
        assert_eq!(n.stream, "FIRSTLINE_ALERTS");
    }

    #[test]
    fn problems_name_the_feed_and_key() {
        let cases = [
            (
                "[[webhook]]\nurl = \"http://x/\"\n",
                "feeds.webhook[0].name: missing",
            ),
            (
                "[[webhook]]\nname = \"a\"\nurl = \"ftp://x\"\n",
                "feeds.webhook[0].url: \"ftp://x\"",
            ),
            (
                "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\n[[webhook]]\nname = \"a\"\nurl = \"http://y/\"\n",
                "feeds.webhook[1].name: \"a\" is used twice",
            ),
            (
                "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\nkinds = [\"exploded\"]\n",
                "feeds.webhook[0].kinds: \"exploded\"",
            ),
            (
                "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\nformat = \"slack\"\n",
                "feeds.webhook[0].format",
            ),
            (
                "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\nmax_attempts = 0\n",
                "feeds.webhook[0].max_attempts",
            ),
            (
                "[[webhook]]\nname = \"a\"\nurl = \"http://x/\"\nsecret_file = \"/nonexistent/s\"\n",
                "feeds.webhook[0].secret_file: cannot read /nonexistent/s",
            ),
            (
                "[[alertmanager]]\nname = \"am\"\nurl = \"http://x\"\nresend = \"0s\"\n",
                "feeds.alertmanager[0].resend",
            ),
            ("[nats]\nurl = \"http://x\"\n", "feeds.nats.url"),
            (
                "[nats]\nurl = \"nats://x:4222\"\nsubject_prefix = \"a..b\"\n",
                "feeds.nats.subject_prefix",
            ),
        ];
        for (text, expected) in cases {
            let (_, problems) = parse(text);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{text}: {problems:?} should mention {expected:?}"
            );
        }
    }
}
