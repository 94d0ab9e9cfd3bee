//! The `[helpdesk]` part of the collector's configuration: the Request Tracker that tickets
//! are synced with (`[helpdesk.request_tracker]`), the help desks and chats reached through
//! request templates (`[[helpdesk.webhook]]`) and e-mail (`[helpdesk.email]`, `email.rs`). Parsed from the raw TOML shape into
//! validated values; every problem names its key, like the rest of the file.

use std::path::PathBuf;
use std::time::Duration;

use firstline_support::config_file::set_duration;
use serde::Deserialize;

use super::template::Template;
use crate::feeds::config::{filter, http_url, secret};
use crate::feeds::filter::FeedFilter;

/// Every configured help desk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HelpdeskConfig {
    pub request_tracker: Option<RequestTrackerConfig>,
    pub webhooks: Vec<WebhookConfig>,
    pub email: Option<super::email::EmailConfig>,
}

/// How RT is reached: an auth token (RT 5's `Authorization: token …`) or a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum RtAuth {
    Token(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for RtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(…)"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, …)"),
        }
    }
}

/// What every synced help desk is configured with besides how it is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// The sync's name: its cursor and links in the store (`helpdesk:<system>`), metrics and
    /// the CLI (`rt` for Request Tracker, the `name` of a templated webhook).
    pub system: String,
    /// The tag of the key every remote ticket carries, `[<tag> #<id>]`: how a remote ticket
    /// is found again for its Firstline ticket. Two collectors sharing one help desk need
    /// different tags.
    pub tag: String,
    /// Which tickets get a remote ticket (the other events of a synced ticket always follow
    /// it).
    pub filter: FeedFilter,
    /// How often the help desk is searched for tickets technicians changed there (two-way
    /// help desks only).
    pub poll: Duration,
    /// How long a host ticket of a correlated rule waits before its remote ticket is created,
    /// so an outage that forms meanwhile becomes one remote ticket listing its hosts.
    pub correlated_hold: Duration,
    /// The dashboard's address, for a link back in each remote ticket (empty: none).
    pub dashboard_url: String,
    /// Per request.
    pub timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// Two-way sync with one Request Tracker 5 (REST 2 API).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTrackerConfig {
    /// RT's base URL (`WebBaseURL`), e.g. `https://rt.example.com`; the API is under
    /// `/REST/2.0`.
    pub url: String,
    pub auth: RtAuth,
    /// The queue tickets are created in, and searched for changes.
    pub queue: String,
    /// RT's priority for P1 to P4.
    pub priorities: [u32; 4],
    pub sync: SyncSettings,
}

/// A help desk reached through a request template (`[[helpdesk.webhook]]`): Jira Service
/// Management, ServiceNow, Zammad, GLPI, Freshservice, Slack, Teams or one of the operator's.
#[derive(Clone, PartialEq)]
pub struct WebhookConfig {
    /// The template's name (a shipped one) or its file.
    pub template_name: String,
    pub template: std::sync::Arc<Template>,
    /// The help desk's base URL (`{{ url }}` in the template), without a trailing slash.
    pub url: String,
    /// `{{ user }}` and `{{ secret }}` (an API token, a password, a webhook's secret URL);
    /// a template that sends a secret none was configured for fails its check.
    pub user: String,
    pub secret: Option<String>,
    /// `{{ settings.NAME }}`: the template's defaults with the operator's values over them.
    pub settings: std::collections::BTreeMap<String, String>,
    /// The help desk's priority for P1 to P4 (`{{ remote_priority }}`).
    pub priorities: [String; 4],
    pub sync: SyncSettings,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("template", &self.template_name)
            .field("url", &crate::feeds::without_credentials(&self.url))
            .field("user", &self.user)
            .field("settings", &self.settings)
            .field("priorities", &self.priorities)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl RequestTrackerConfig {
    /// The sync's name in the store (its cursor), metrics and the CLI.
    pub const SYSTEM: &'static str = "rt";

    /// The REST 2 API's base.
    pub fn api(&self) -> String {
        format!("{}/REST/2.0", self.url.trim_end_matches('/'))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHelpdesk {
    request_tracker: Option<RawRequestTracker>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
    email: Option<super::email::RawEmail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequestTracker {
    url: Option<String>,
    queue: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    tag: Option<String>,
    priorities: Option<Vec<u32>>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    poll: Option<String>,
    correlated_hold: Option<String>,
    dashboard_url: Option<String>,
    timeout: Option<String>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Option<String>,
    template: Option<String>,
    template_file: Option<PathBuf>,
    url: Option<String>,
    user: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default)]
    settings: std::collections::BTreeMap<String, String>,
    priorities: Option<Vec<String>>,
    tag: Option<String>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    correlated_hold: Option<String>,
    dashboard_url: Option<String>,
    timeout: Option<String>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
}

/// What every help desk's raw table has in common.
struct RawSync {
    tag: Option<String>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    poll: Option<String>,
    correlated_hold: Option<String>,
    dashboard_url: Option<String>,
    timeout: Option<String>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
}

/// RT's priorities for P1..P4 when none are configured (RT's scale is 0 to 99 by default).
pub const DEFAULT_PRIORITIES: [u32; 4] = [90, 70, 50, 30];

impl HelpdeskConfig {
    /// Validates the raw `[helpdesk]` table; problems are pushed with their keys.
    pub fn from_raw(raw: RawHelpdesk, problems: &mut Vec<String>) -> Self {
        let request_tracker = raw
            .request_tracker
            .and_then(|r| request_tracker(r, problems));
        let mut webhooks: Vec<WebhookConfig> = Vec::new();
        for (i, w) in raw.webhook.into_iter().enumerate() {
            let key = format!("helpdesk.webhook[{i}]");
            if let Some(w) = webhook(&key, w, problems) {
                let taken = webhooks.iter().any(|o| o.sync.system == w.sync.system)
                    || RESERVED_NAMES.contains(&w.sync.system.as_str());
                if taken {
                    problems.push(format!(
                        "{key}.name: {:?} is taken (by another webhook, or as one of {RESERVED_NAMES:?})",
                        w.sync.system
                    ));
                } else {
                    webhooks.push(w);
                }
            }
        }
        if webhooks.len() > MAX_WEBHOOKS {
            problems.push(format!(
                "helpdesk.webhook: {} webhooks; at most {MAX_WEBHOOKS}",
                webhooks.len()
            ));
        }
        let email = raw
            .email
            .and_then(|e| super::email::EmailConfig::from_raw(e, problems));
        Self {
            request_tracker,
            webhooks,
            email,
        }
    }
}

/// Names a templated webhook cannot take: the other help-desk channels'.
const RESERVED_NAMES: [&str; 2] = [RequestTrackerConfig::SYSTEM, "email"];
/// Templated webhooks at most.
const MAX_WEBHOOKS: usize = 32;

fn request_tracker(
    r: RawRequestTracker,
    problems: &mut Vec<String>,
) -> Option<RequestTrackerConfig> {
    let key = "helpdesk.request_tracker";
    let before = problems.len();
    let url = http_url(&format!("{key}.url"), r.url, problems);
    let token = secret(&format!("{key}.token"), r.token, r.token_file, problems);
    let password = secret(
        &format!("{key}.password"),
        r.password,
        r.password_file,
        problems,
    );
    let auth = match (token, r.user, password) {
        (Some(t), None, None) => Some(RtAuth::Token(t)),
        (None, Some(user), Some(password)) if !user.is_empty() && user.len() <= 200 => {
            Some(RtAuth::Basic { user, password })
        }
        (None, None, None) => {
            problems.push(format!(
                "{key}: missing credentials: token (or token_file), or user and password (or password_file)"
            ));
            None
        }
        _ => {
            problems.push(format!(
                "{key}: give either token (or token_file), or user and password (or password_file)"
            ));
            None
        }
    };
    let queue = r.queue.unwrap_or_else(|| "General".to_owned());
    if queue.is_empty()
        || queue.len() > 200
        || queue.contains(['\'', '\\'])
        || queue.chars().any(char::is_control)
    {
        problems.push(format!(
            "{key}.queue: {queue:?} must be 1 to 200 characters without quotes, backslashes or control characters"
        ));
    }
    let priorities = match r.priorities.as_deref() {
        None => DEFAULT_PRIORITIES,
        Some(&[a, b, c, d]) if [a, b, c, d].iter().all(|p| *p <= 1000) => [a, b, c, d],
        Some(other) => {
            problems.push(format!(
                "{key}.priorities: {other:?} must be four numbers (P1 to P4) from 0 to 1000"
            ));
            DEFAULT_PRIORITIES
        }
    };
    let sync = sync_settings(
        key,
        RequestTrackerConfig::SYSTEM,
        RawSync {
            tag: r.tag,
            max_priority: r.max_priority,
            rules: r.rules,
            labels: r.labels,
            hosts: r.hosts,
            poll: r.poll,
            correlated_hold: r.correlated_hold,
            dashboard_url: r.dashboard_url,
            timeout: r.timeout,
            retry_initial: r.retry_initial,
            retry_max: r.retry_max,
        },
        problems,
    );
    let auth = auth?;
    (problems.len() == before).then_some(RequestTrackerConfig {
        url: url.trim_end_matches('/').to_owned(),
        auth,
        queue,
        priorities,
        sync,
    })
}

fn webhook(key: &str, w: RawWebhook, problems: &mut Vec<String>) -> Option<WebhookConfig> {
    let before = problems.len();
    let name = w.name.unwrap_or_default();
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        problems.push(format!(
            "{key}.name: {name:?} must be 1 to 32 lower-case letters, digits, - or _"
        ));
    }
    let (template_name, template) = match (w.template, w.template_file) {
        (Some(_), Some(_)) => {
            problems.push(format!("{key}: give template or template_file, not both"));
            return None;
        }
        (None, None) => {
            problems.push(format!(
                "{key}.template: missing: one of {:?}, or template_file",
                super::template::SHIPPED
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
            ));
            return None;
        }
        (Some(n), None) => match super::template::Template::shipped(&n) {
            Some(t) => (n, t),
            None => {
                problems.push(format!(
                    "{key}.template: {n:?} is not a shipped template; one of {:?}, or template_file",
                    super::template::SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>()
                ));
                return None;
            }
        },
        (None, Some(path)) => match super::template::Template::load(&path) {
            Ok(t) => (path.display().to_string(), t),
            Err(e) => {
                problems.push(format!("{key}.template_file: {e}"));
                return None;
            }
        },
    };
    // A template that calls `{{ url }}` or sends `{{ secret }}` without them configured fails
    // the check below, naming the variable.
    let url = match w.url {
        Some(u) => http_url(&format!("{key}.url"), Some(u), problems)
            .trim_end_matches('/')
            .to_owned(),
        None => String::new(),
    };
    let secret = secret(&format!("{key}.secret"), w.secret, w.secret_file, problems);
    let user = w.user.unwrap_or_default();
    if user.len() > 200 || user.chars().any(char::is_control) {
        problems.push(format!(
            "{key}.user: must be at most 200 characters without control characters"
        ));
    }
    let mut settings = template.settings.clone();
    for (k, v) in w.settings {
        if v.len() > 4096 || v.chars().any(char::is_control) {
            problems.push(format!(
                "{key}.settings.{k}: must be at most 4096 characters without control characters"
            ));
        }
        settings.insert(k, v);
    }
    for required in &template.required_settings {
        if settings.get(required).is_none_or(String::is_empty) {
            problems.push(format!(
                "{key}.settings.{required}: missing: template {template_name:?} needs it"
            ));
        }
    }
    let priorities = match w.priorities {
        None => template.priorities.clone(),
        Some(p) => match <[String; 4]>::try_from(p) {
            Ok(p) if p.iter().all(|v| v.len() <= 100) => p,
            _ => {
                problems.push(format!(
                    "{key}.priorities: must be four values (P1 to P4) of at most 100 characters"
                ));
                template.priorities.clone()
            }
        },
    };
    let sync = sync_settings(
        key,
        &name,
        RawSync {
            tag: w.tag,
            max_priority: w.max_priority,
            rules: w.rules,
            labels: w.labels,
            hosts: w.hosts,
            poll: None,
            correlated_hold: w.correlated_hold,
            dashboard_url: w.dashboard_url,
            timeout: w.timeout,
            retry_initial: w.retry_initial,
            retry_max: w.retry_max,
        },
        problems,
    );
    if problems.len() != before {
        return None;
    }
    let config = WebhookConfig {
        template_name,
        template,
        url,
        user,
        secret,
        settings,
        priorities,
        sync,
    };
    // Every call renders with a sample ticket now, so a template that cannot render (an
    // unknown variable, a body that is not JSON) is a configuration error, not a refusal later.
    if let Err(e) = super::template::check(&config) {
        // What the configuration lacks is named by its own key, the rest by the template's.
        let own = ["user:", "secret:", "url:"]
            .iter()
            .any(|k| e.starts_with(k));
        if own {
            problems.push(format!("{key}.{e}"));
        } else {
            problems.push(format!("{key}.template: {e}"));
        }
        return None;
    }
    Some(config)
}

/// The settings every help desk shares, with their defaults; problems named under `key`.
fn sync_settings(key: &str, system: &str, r: RawSync, problems: &mut Vec<String>) -> SyncSettings {
    let tag = r.tag.unwrap_or_else(|| "firstline".to_owned());
    if tag.is_empty()
        || tag.len() > 32
        || !tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(format!(
            "{key}.tag: {tag:?} must be 1 to 32 letters, digits, - or _"
        ));
    }
    let filter = filter(
        key,
        r.max_priority,
        r.rules,
        r.labels,
        r.hosts,
        None,
        problems,
    );
    let dashboard_url = match r.dashboard_url {
        Some(u) => http_url(&format!("{key}.dashboard_url"), Some(u), problems),
        None => String::new(),
    };
    let mut poll = Duration::from_secs(30);
    let mut correlated_hold = Duration::from_secs(60);
    let mut timeout = Duration::from_secs(10);
    let mut retry_initial = Duration::from_secs(5);
    let mut retry_max = Duration::from_secs(600);
    let durations = [
        (
            r.poll,
            "poll",
            &mut poll,
            (Duration::from_secs(1), Duration::from_secs(3600)),
        ),
        (
            r.correlated_hold,
            "correlated_hold",
            &mut correlated_hold,
            (Duration::ZERO, Duration::from_secs(3600)),
        ),
        (
            r.timeout,
            "timeout",
            &mut timeout,
            (Duration::from_secs(1), Duration::from_secs(120)),
        ),
        (
            r.retry_initial,
            "retry_initial",
            &mut retry_initial,
            (Duration::from_millis(100), Duration::from_secs(3600)),
        ),
        (
            r.retry_max,
            "retry_max",
            &mut retry_max,
            (Duration::from_millis(100), Duration::from_secs(86_400)),
        ),
    ];
    for (value, name, slot, range) in durations {
        if let Some(v) = value {
            set_duration(slot, &format!("{key}.{name}"), &v, range, problems);
        }
    }
    if retry_max < retry_initial {
        problems.push(format!("{key}.retry_max: shorter than {key}.retry_initial"));
    }
    SyncSettings {
        system: system.to_owned(),
        tag,
        filter,
        poll,
        correlated_hold,
        dashboard_url: dashboard_url.trim_end_matches('/').to_owned(),
        timeout,
        retry_initial,
        retry_max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> (HelpdeskConfig, Vec<String>) {
        let raw: RawHelpdesk = toml::from_str(toml_text).expect("valid toml");
        let mut problems = Vec::new();
        let c = HelpdeskConfig::from_raw(raw, &mut problems);
        (c, problems)
    }

    #[test]
    fn a_token_and_url_are_enough() {
        let (c, problems) =
            parse("[request_tracker]\nurl = \"http://127.0.0.1:8080/\"\ntoken = \"1-14-abc\"\n");
        assert!(problems.is_empty(), "{problems:?}");
        let rt = c.request_tracker.expect("configured");
        assert_eq!(rt.api(), "http://127.0.0.1:8080/REST/2.0");
        assert_eq!(rt.queue, "General");
        assert_eq!(rt.priorities, DEFAULT_PRIORITIES);
        assert_eq!(rt.auth, RtAuth::Token("1-14-abc".into()));
        assert_eq!(rt.sync.poll, Duration::from_secs(30));
        assert_eq!(rt.sync.system, "rt");
    }

    #[test]
    fn every_problem_names_its_key() {
        let (c, problems) = parse(
            "[request_tracker]\nurl = \"ftp://x\"\ntoken = \"t\"\nuser = \"u\"\n\
             queue = \"it's\"\ntag = \"a b\"\npriorities = [1, 2]\npoll = \"0s\"\n",
        );
        assert!(c.request_tracker.is_none());
        let all = problems.join("\n");
        for key in [
            "helpdesk.request_tracker.url",
            "helpdesk.request_tracker: give either token",
            "helpdesk.request_tracker.queue",
            "helpdesk.request_tracker.tag",
            "helpdesk.request_tracker.priorities",
            "helpdesk.request_tracker.poll",
        ] {
            assert!(all.contains(key), "{key} missing from {all}");
        }
    }

    #[test]
    fn every_shipped_template_renders_with_its_settings() {
        for (name, _) in crate::helpdesk::template::SHIPPED {
            let t = Template::shipped(name).expect("shipped");
            let settings: String = t
                .required_settings
                .iter()
                .map(|s| format!("{s} = \"10\"\n"))
                .collect();
            let (c, problems) = parse(&format!(
                "[[webhook]]\nname = \"{name}\"\ntemplate = \"{name}\"\n\
                 url = \"https://hd.example.com\"\nuser = \"u\"\n\
                 secret = \"https://hooks.example.com/T/B/x\"\n[webhook.settings]\n{settings}"
            ));
            assert!(problems.is_empty(), "{name}: {problems:?}");
            assert_eq!(c.webhooks.len(), 1, "{name}");
        }
    }

    #[test]
    fn a_webhook_missing_what_its_template_needs_is_refused_by_key() {
        let (c, problems) =
            parse("[[webhook]]\nname = \"sd\"\ntemplate = \"jira-sm\"\nurl = \"https://x\"\n");
        assert!(c.webhooks.is_empty());
        let all = problems.join("\n");
        assert!(
            all.contains("helpdesk.webhook[0].settings.service_desk_id: missing"),
            "{all}"
        );
        let (_, problems) = parse(
            "[[webhook]]\nname = \"z\"\ntemplate = \"zammad\"\nurl = \"https://x\"\n\
             [webhook.settings]\ncustomer = \"c\"\n",
        );
        let all = problems.join("\n");
        assert!(all.contains("helpdesk.webhook[0].secret: missing"), "{all}");
        let (_, problems) = parse("[[webhook]]\nname = \"rt\"\ntemplate = \"nope\"\n");
        let all = problems.join("\n");
        assert!(
            all.contains("helpdesk.webhook[0].template: \"nope\" is not a shipped template"),
            "{all}"
        );
    }

    #[test]
    fn credentials_are_required_and_never_printed() {
        let (_, problems) = parse("[request_tracker]\nurl = \"http://rt\"\n");
        assert!(problems[0].contains("missing credentials"), "{problems:?}");
        let (c, problems) = parse(
            "[request_tracker]\nurl = \"http://rt\"\nuser = \"firstline\"\npassword = \"s3cret\"\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
