//! The `[helpdesk]` part of the collector's configuration: the Request Tracker that tickets
//! are synced with (`[helpdesk.request_tracker]`). Parsed from the raw TOML shape into
//! validated values; every problem names its key, like the rest of the file.

use std::path::PathBuf;
use std::time::Duration;

use firstline_support::config_file::set_duration;
use serde::Deserialize;

use crate::feeds::config::{filter, http_url};
use crate::feeds::filter::FeedFilter;

/// Every configured help desk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HelpdeskConfig {
    pub request_tracker: Option<RequestTrackerConfig>,
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

/// Two-way sync with one Request Tracker 5 (REST 2 API).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTrackerConfig {
    /// RT's base URL (`WebBaseURL`), e.g. `https://rt.example.com`; the API is under
    /// `/REST/2.0`.
    pub url: String,
    pub auth: RtAuth,
    /// The queue tickets are created in, and searched for changes.
    pub queue: String,
    /// The tag in every subject, `[<tag> #<id>]`: how an RT ticket is found again for its
    /// Firstline ticket. Two collectors sharing one RT need different tags.
    pub tag: String,
    /// RT's priority for P1 to P4.
    pub priorities: [u32; 4],
    /// Which tickets get an RT ticket (the other events of a synced ticket always follow it).
    pub filter: FeedFilter,
    /// How often RT is searched for tickets technicians changed there.
    pub poll: Duration,
    /// How long a host ticket of a correlated rule waits before its RT ticket is created, so
    /// an outage that forms meanwhile becomes one RT ticket listing its hosts.
    pub correlated_hold: Duration,
    /// The dashboard's address, for a link back in each RT ticket (empty: none).
    pub dashboard_url: String,
    /// Per request.
    pub timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
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

/// RT's priorities for P1..P4 when none are configured (RT's scale is 0 to 99 by default).
pub const DEFAULT_PRIORITIES: [u32; 4] = [90, 70, 50, 30];

impl HelpdeskConfig {
    /// Validates the raw `[helpdesk]` table; problems are pushed with their keys.
    pub fn from_raw(raw: RawHelpdesk, problems: &mut Vec<String>) -> Self {
        Self {
            request_tracker: raw
                .request_tracker
                .and_then(|r| request_tracker(r, problems)),
        }
    }
}

/// A secret given inline or in a file (trimmed); `None` when neither.
fn secret(
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
    let auth = auth?;
    (problems.len() == before).then_some(RequestTrackerConfig {
        url: url.trim_end_matches('/').to_owned(),
        auth,
        queue,
        tag,
        priorities,
        filter,
        poll,
        correlated_hold,
        dashboard_url: dashboard_url.trim_end_matches('/').to_owned(),
        timeout,
        retry_initial,
        retry_max,
    })
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
        assert_eq!(rt.poll, Duration::from_secs(30));
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
