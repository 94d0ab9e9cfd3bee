//! Help desks and chats reached through request templates (`[[helpdesk.webhook]]`): a
//! template says which HTTP calls create a remote ticket, add a comment, raise its priority,
//! resolve and reopen it, and (optionally) find it again by its key; each call is a method, a
//! URL, headers and a JSON body written in MiniJinja over the ticket's fields, and the remote
//! id is read from the create call's answer by a JSON pointer. Shipped templates
//! (`templates/*.toml`: Jira Service Management, ServiceNow, Zammad, GLPI, Freshservice,
//! Slack, Mattermost, Rocket.Chat, Slack-format incoming webhooks, Microsoft Teams) are
//! documented in docs/helpdesk.md.
//!
//! Bodies are rendered with JSON auto-escaping (`{{ ticket.title }}` becomes a JSON string),
//! URLs and headers without (`| urlencode` where a value goes into a path). Undefined
//! variables are errors, and every call is rendered once with a sample ticket when the
//! configuration loads, so a broken template is a configuration error that names its call.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use minijinja::{Environment, UndefinedBehavior};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::WebhookConfig;
use super::remote::{Remote, RemoteError, RemoteTicket, answer_error};
use super::render::{self, TicketView};
use crate::feeds::payload::{priority_name, rfc3339};
use crate::store::HelpdeskLink;
use crate::tickets::{EventKind, TicketEvent};

/// The shipped templates, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("jira-sm", include_str!("templates/jira-sm.toml")),
    ("servicenow", include_str!("templates/servicenow.toml")),
    ("zammad", include_str!("templates/zammad.toml")),
    ("glpi", include_str!("templates/glpi.toml")),
    ("freshservice", include_str!("templates/freshservice.toml")),
    ("slack", include_str!("templates/slack.toml")),
    (
        "slack-webhook",
        include_str!("templates/slack-webhook.toml"),
    ),
    ("mattermost", include_str!("templates/mattermost.toml")),
    ("rocketchat", include_str!("templates/rocketchat.toml")),
    ("teams", include_str!("templates/teams.toml")),
];

/// Largest template file read.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;
/// Largest rendered body sent.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Calls per action at most.
const MAX_CALLS: usize = 8;
/// How much of a refusing answer is kept with the error.
const ERROR_BODY_CHARS: usize = 300;

/// A parsed template: the calls of each action.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// One line: what the template talks to.
    pub description: String,
    /// The help desk's priority for P1 to P4 (`{{ remote_priority }}`).
    pub priorities: [String; 4],
    /// Defaults of `{{ settings.NAME }}`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Settings the operator must give (a queue, a group, a transition id).
    #[serde(default)]
    pub required_settings: Vec<String>,
    /// Called first when the help desk hands out session tokens (GLPI); `token` points at
    /// the token in its answer, `{{ session }}` in the other calls.
    pub session: Option<Call>,
    /// Finds the remote ticket of a key after a create whose answer was lost; `id` points at
    /// its id in the answer (absent or empty: none).
    pub find: Option<Call>,
    pub create: Vec<Call>,
    /// Every other event (acknowledged, assigned, comments, escalations...); none: such events
    /// are not sent.
    #[serde(default)]
    pub comment: Vec<Call>,
    /// A raised priority; none: sent as a comment.
    #[serde(default)]
    pub priority: Vec<Call>,
    /// Resolved or closed; none: sent as a comment.
    #[serde(default)]
    pub resolve: Vec<Call>,
    /// Reopened; none: sent as a comment.
    #[serde(default)]
    pub reopen: Vec<Call>,
}

/// One HTTP call of a template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    #[serde(default = "post")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON (rendered with JSON escaping); none: no body.
    pub body: Option<String>,
    /// A JSON pointer to the remote id in the answer (create, find).
    pub id: Option<String>,
    /// A JSON pointer to the session token in the answer (session).
    pub token: Option<String>,
    /// A JSON pointer that must hold `true` for the call to have worked (Slack's `/ok`: its
    /// API answers 200 to refusals).
    pub ok: Option<String>,
    /// A JSON pointer to the reason of such a refusal (Slack's `/error`).
    pub error: Option<String>,
}

fn post() -> String {
    "POST".to_owned()
}

impl Template {
    /// A shipped template.
    pub fn shipped(name: &str) -> Option<Arc<Self>> {
        let (_, text) = SHIPPED.iter().find(|(n, _)| *n == name)?;
        // The shipped templates parse: a unit test loads each one.
        Self::parse(text).ok().map(Arc::new)
    }

    /// A template file of the operator's.
    pub fn load(path: &Path) -> Result<Arc<Self>, String> {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        if size > MAX_TEMPLATE_BYTES {
            return Err(format!(
                "{}: {size} bytes; templates are at most {MAX_TEMPLATE_BYTES}",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text)
            .map(Arc::new)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let t: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if t.create.is_empty() {
            return Err("create: at least one call".to_owned());
        }
        for (action, calls) in t.actions() {
            if calls.len() > MAX_CALLS {
                return Err(format!("{action}: at most {MAX_CALLS} calls"));
            }
            for (i, c) in calls.iter().enumerate() {
                Method::from_bytes(c.method.as_bytes())
                    .map_err(|_| format!("{action}[{i}].method: {:?} is no method", c.method))?;
                for p in [&c.id, &c.token, &c.ok, &c.error].into_iter().flatten() {
                    if !p.is_empty() && !p.starts_with('/') {
                        return Err(format!(
                            "{action}[{i}]: {p:?} is no JSON pointer (they start with /)"
                        ));
                    }
                }
            }
        }
        if t.session.as_ref().is_some_and(|s| s.token.is_none()) {
            return Err("session.token: missing: where the token is in the answer".to_owned());
        }
        if t.find.as_ref().is_some_and(|f| f.id.is_none()) {
            return Err("find.id: missing: where the id is in the answer".to_owned());
        }
        Ok(t)
    }

    /// Every action with its calls, by name.
    fn actions(&self) -> Vec<(&'static str, &[Call])> {
        vec![
            ("session", self.session.as_slice()),
            ("find", self.find.as_slice()),
            ("create", &self.create),
            ("comment", &self.comment),
            ("priority", &self.priority),
            ("resolve", &self.resolve),
            ("reopen", &self.reopen),
        ]
    }
}

/// Renders every call of a configured template with a sample ticket: what would fail later
/// (an undefined variable, a body that is not JSON, a relative URL) fails now.
pub fn check(config: &WebhookConfig) -> Result<(), String> {
    let sources: String = config
        .template
        .actions()
        .iter()
        .flat_map(|(_, calls)| calls.iter())
        .flat_map(|c| {
            std::iter::once(c.url.as_str())
                .chain(c.headers.values().map(String::as_str))
                .chain(c.body.as_deref())
        })
        .collect::<Vec<_>>()
        .join("\n");
    let uses = |name: &str| {
        sources.match_indices(name).any(|(i, _)| {
            let before = sources[..i].chars().next_back();
            let after = sources[i + name.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    if config.user.is_empty() && uses("basic_auth") {
        return Err("user: missing: the template sends user and secret (basic_auth)".to_owned());
    }
    if config.secret.is_none() && (uses("secret") || uses("basic_auth")) {
        return Err("secret: missing (or secret_file): the template sends it".to_owned());
    }
    // `url` is a common word in bodies ("url": ...): only a URL that starts with it counts.
    let calls_url = config
        .template
        .actions()
        .iter()
        .flat_map(|(_, calls)| calls.iter())
        .any(|c| {
            c.url
                .trim_start()
                .trim_start_matches("{{")
                .trim_start()
                .starts_with("url")
        });
    if config.url.is_empty() && calls_url {
        return Err("url: missing: the help desk's address, which the template calls".to_owned());
    }
    let engine = Engine::new(config)?;
    let view = TicketView {
        ticket: crate::tickets::Ticket {
            id: 1,
            title: "Disk / is 93% full".to_owned(),
            hostname: "sample-host".to_owned(),
            rule_id: "disk-usage".to_owned(),
            priority: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let event = TicketEvent {
        kind: EventKind::Comment,
        detail: "sample".to_owned(),
        ..Default::default()
    };
    let ctx = engine.context(&view, Some(&event), Some("1"), Some("session"));
    for (action, calls) in config.template.actions() {
        for i in 0..calls.len() {
            engine
                .request(action, i, &ctx)
                .map_err(|e| format!("{action}[{i}]: {e}"))?;
        }
    }
    Ok(())
}

/// A call rendered and ready to send.
#[derive(Debug)]
struct Request {
    method: Method,
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

/// The compiled templates of one configuration.
struct Engine {
    env: Environment<'static>,
    config: WebhookConfig,
}

impl Engine {
    fn new(config: &WebhookConfig) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("b64", |s: String| {
            base64::engine::general_purpose::STANDARD.encode(s)
        });
        env.add_filter("html", |s: String| html_lines(&s));
        env.add_filter("slack", |s: String| slack_text(&s));
        for (action, calls) in config.template.actions() {
            for (i, c) in calls.iter().enumerate() {
                let mut add = |part: String, source: &str| {
                    env.add_template_owned(format!("{action}[{i}].{part}"), source.to_owned())
                        .map_err(|e| format!("{action}[{i}].{part}: {e}"))
                };
                add("url".to_owned(), &c.url)?;
                for (name, value) in &c.headers {
                    add(format!("headers.{name}"), value)?;
                }
                if let Some(body) = &c.body {
                    add("body.json".to_owned(), body)?;
                }
            }
        }
        Ok(Self {
            env,
            config: config.clone(),
        })
    }

    /// What the templates see.
    fn context(
        &self,
        view: &TicketView,
        event: Option<&TicketEvent>,
        remote_id: Option<&str>,
        session: Option<&str>,
    ) -> Value {
        let c = &self.config;
        let t = &view.ticket;
        let key = render::sync_key(&c.sync.tag, t.id);
        let mut ctx = json!({
            "ticket": {
                "id": t.id,
                "title": t.title,
                "host": t.hostname,
                "rule": t.rule_id,
                "subject": t.subject,
                "priority": t.priority,
                "priority_name": priority_name(t.priority),
                "state": t.state.as_str(),
                "opened_at": rfc3339(t.opened_at_ms),
                "last_seen_at": rfc3339(t.last_seen_at_ms),
                "occurrences": t.occurrences,
                "last_value": t.last_value,
                "assignee": t.assignee,
                "labels": view.labels,
                "hosts": view.linked.iter().map(|h| h.hostname.clone()).collect::<Vec<_>>(),
                "link": if view.dashboard_url.is_empty() {
                    String::new()
                } else {
                    format!("{}/tickets/{}", view.dashboard_url, t.id)
                },
            },
            "key": key,
            "summary": render::subject(view, &key),
            "description": render::create_body(view),
            "remote_priority": c.priorities[super::sync::priority_index(t.priority)],
            "url": c.url,
            "user": c.user,
            "settings": c.settings,
        });
        if let Some(secret) = &c.secret {
            ctx["secret"] = json!(secret);
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", c.user));
            ctx["basic_auth"] = json!(basic);
        }
        if c.url.is_empty()
            && let Some(o) = ctx.as_object_mut()
        {
            o.remove("url");
        }
        if let Some(e) = event {
            ctx["event"] = json!({
                "kind": e.kind.as_str(),
                "actor": e.actor,
                "detail": e.detail,
                "at": rfc3339(e.at_ms),
                "text": render::comment(view, e),
            });
        }
        if let Some(id) = remote_id {
            ctx["remote_id"] = json!(id);
        }
        if let Some(s) = session {
            ctx["session"] = json!(s);
        }
        ctx
    }

    fn call(&self, action: &str, i: usize) -> &Call {
        let calls = self
            .config
            .template
            .actions()
            .into_iter()
            .find(|(a, _)| *a == action)
            .map(|(_, c)| c)
            .unwrap_or_default();
        &calls[i]
    }

    fn render(&self, name: &str, ctx: &Value) -> Result<String, String> {
        let t = self.env.get_template(name).map_err(|e| e.to_string())?;
        t.render(minijinja::Value::from_serialize(ctx))
            .map_err(|e| describe(&e))
    }

    /// Renders one call.
    fn request(&self, action: &str, i: usize, ctx: &Value) -> Result<Request, String> {
        let call = self.call(action, i);
        let prefix = format!("{action}[{i}]");
        let url_text = self.render(&format!("{prefix}.url"), ctx)?;
        let url = reqwest::Url::parse(url_text.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                format!(
                    "url renders as {:?}, not an http(s) URL (is url set?)",
                    self.redact(&url_text)
                )
            })?;
        let mut headers = Vec::new();
        for name in call.headers.keys() {
            let value = self.render(&format!("{prefix}.headers.{name}"), ctx)?;
            // A header that renders empty (an optional setting left out) is not sent.
            if value.trim().is_empty() {
                continue;
            }
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is no header name"))?;
            reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| format!("headers.{name}: renders as no header value"))?;
            headers.push((name.clone(), value));
        }
        let body = match &call.body {
            Some(_) => {
                let text = self.render(&format!("{prefix}.body.json"), ctx)?;
                if text.len() > MAX_BODY_BYTES {
                    return Err(format!(
                        "body: {} bytes; at most {MAX_BODY_BYTES}",
                        text.len()
                    ));
                }
                Some(
                    serde_json::from_str::<Value>(&text)
                        .map_err(|e| format!("body renders as no JSON ({e})"))?,
                )
            }
            None => None,
        };
        Ok(Request {
            method: Method::from_bytes(call.method.as_bytes()).unwrap_or(Method::POST),
            url,
            headers,
            body,
        })
    }

    /// A text with the secret taken out, as it is and in the forms templates send it in
    /// (URL-encoded, base64 alone or with the user): errors and notes must not carry it.
    fn redact(&self, text: &str) -> String {
        let Some(secret) = self.config.secret.as_deref().filter(|s| !s.is_empty()) else {
            return text.to_owned();
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let forms = [
            secret.to_owned(),
            percent_encoded(secret),
            b64(secret),
            b64(&format!("{}:{secret}", self.config.user)),
            b64(&format!("{secret}:X")),
        ];
        let mut out = text.to_owned();
        for f in forms.iter().filter(|f| f.len() >= 4) {
            out = out.replace(f.as_str(), "…");
        }
        out
    }

    /// How a call's target is shown in errors: its path, or only scheme and host when the
    /// URL itself carries the secret (a chat webhook's URL is its credential).
    fn shown_target(&self, action: &str, i: usize, url: &reqwest::Url) -> String {
        let carries_secret = self.call(action, i).url.contains("secret");
        if carries_secret {
            format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("?"))
        } else {
            self.redact(url.path())
        }
    }
}

/// Text as HTML: escaped, lines kept (`| html`, for help desks whose descriptions are HTML).
fn html_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>\n"),
            c => out.push(c),
        }
    }
    out
}

/// `s` with every byte but letters, digits and `-._~` percent-encoded, as `| urlencode` does.
fn percent_encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text for Slack's mrkdwn (`| slack`): `&`, `<` and `>` escaped as Slack asks, so a host
/// name or title cannot mention `<!channel>` or make a link.
fn slack_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A MiniJinja error with the place it names.
fn describe(e: &minijinja::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

/// A help desk reached through a template.
pub struct TemplateRemote {
    engine: Engine,
    http: reqwest::Client,
    session: Mutex<Option<String>>,
    label: String,
}

impl TemplateRemote {
    pub fn new(config: WebhookConfig) -> Result<Self, String> {
        let http = crate::feeds::http::client(config.sync.timeout)?;
        let label = format!("{} ({})", config.sync.system, config.template_name);
        Ok(Self {
            engine: Engine::new(&config)?,
            http,
            session: Mutex::new(None),
            label,
        })
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.engine.config
    }

    /// The session token, asking for one when there is none.
    /// The session token, and whether it was opened just now.
    async fn session(&self, view: &TicketView) -> Result<Option<(String, bool)>, RemoteError> {
        if self.config().template.session.is_none() {
            return Ok(None);
        }
        if let Some(s) = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(Some((s, false)));
        }
        let ctx = self.engine.context(view, None, None, None);
        let answer = self.send("session", 0, &ctx, false).await?;
        let pointer = self
            .engine
            .call("session", 0)
            .token
            .clone()
            .unwrap_or_default();
        let token = text_at(&answer, &pointer).ok_or_else(|| RemoteError::Permanent {
            error: format!("session: no token at {pointer} in the answer"),
        })?;
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(Some((token, true)))
    }

    /// Runs the calls of an action in order; returns the id the last one with an `id`
    /// pointer captured.
    async fn run(
        &self,
        action: &str,
        view: &TicketView,
        event: Option<&TicketEvent>,
        remote_id: Option<&str>,
    ) -> Result<Option<String>, RemoteError> {
        let count = self
            .config()
            .template
            .actions()
            .into_iter()
            .find(|(a, _)| *a == action)
            .map_or(0, |(_, c)| c.len());
        let session = self.session(view).await?;
        let fresh = session.as_ref().is_some_and(|(_, fresh)| *fresh);
        let session = session.map(|(token, _)| token);
        let mut id = remote_id.map(str::to_owned);
        let mut captured = None;
        for i in 0..count {
            let ctx = self
                .engine
                .context(view, event, id.as_deref(), session.as_deref());
            let answer = self.send(action, i, &ctx, fresh).await?;
            if let Some(pointer) = &self.engine.call(action, i).id {
                let found = text_at(&answer, pointer);
                if action != "find" && found.is_none() {
                    // The answer stays out of the error: the error is compared to tell a
                    // refusal already noted from a new one.
                    tracing::warn!(
                        feed = self.config().sync.system,
                        answer = self.engine.redact(&shorten(&answer.to_string())),
                        "{action}[{i}]: no id at {pointer} in the answer"
                    );
                    return Err(RemoteError::Permanent {
                        error: format!(
                            "{action}[{i}]: the answer has no id at {pointer} (see the collector's log)"
                        ),
                    });
                }
                if found.is_some() {
                    id.clone_from(&found);
                    captured = found;
                }
            }
        }
        Ok(captured)
    }

    /// One call: its answer's JSON (`null` when it is empty or not JSON), or why it failed.
    /// `fresh`: the session was opened for this action, so a 401 is not its end.
    async fn send(
        &self,
        action: &str,
        i: usize,
        ctx: &Value,
        fresh: bool,
    ) -> Result<Value, RemoteError> {
        let what = format!("{action}[{i}]");
        let r = self
            .engine
            .request(action, i, ctx)
            .map_err(|e| RemoteError::Permanent {
                error: format!("{what}: {e}"),
            })?;
        let shown = format!(
            "{what} {} {}",
            r.method,
            self.engine.shown_target(action, i, &r.url)
        );
        let mut req = self.http.request(r.method, r.url);
        for (name, value) in &r.headers {
            req = req.header(name, value);
        }
        if let Some(body) = &r.body {
            req = req.json(body);
        }
        let response = req.send().await.map_err(|e| RemoteError::Transient {
            error: self
                .engine
                .redact(&format!("{shown}: {}", crate::feeds::http::error_chain(&e))),
            retry_after: None,
        })?;
        let status = response.status();
        let retry_after = super::remote::retry_after(&response);
        let text = response.text().await.map_err(|e| RemoteError::Transient {
            error: format!("{shown}: reading the answer: {e}"),
            retry_after: None,
        })?;
        if status == reqwest::StatusCode::UNAUTHORIZED && self.config().template.session.is_some() {
            // The session ended: the next attempt asks for a new one (a 401 with a session
            // opened just now would repeat, and is a refusal like any other).
            if action != "session" && !fresh {
                *self.session.lock().unwrap_or_else(PoisonError::into_inner) = None;
                return Err(RemoteError::Transient {
                    error: format!("{shown}: HTTP 401: the session ended"),
                    retry_after: None,
                });
            }
        }
        if !status.is_success() {
            return Err(answer_error(
                &shown,
                status,
                &self.engine.redact(&shorten(&text)),
                retry_after,
            ));
        }
        let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
        let call = self.engine.call(action, i);
        if let Some(ok) = &call.ok
            && answer.pointer(ok) != Some(&Value::Bool(true))
        {
            let why = call
                .error
                .as_deref()
                .and_then(|p| text_at(&answer, p))
                .unwrap_or_else(|| shorten(&text));
            return Err(RemoteError::Permanent {
                error: format!("{shown}: refused: {}", self.engine.redact(&why)),
            });
        }
        Ok(answer)
    }
}

/// The string or number at `pointer`, when there is a non-empty one.
fn text_at(answer: &Value, pointer: &str) -> Option<String> {
    match answer.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn shorten(text: &str) -> String {
    text.chars()
        .take(ERROR_BODY_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

impl Remote for TemplateRemote {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> &'static str {
        "webhook-template"
    }

    fn settings(&self) -> &super::config::SyncSettings {
        &self.config().sync
    }

    fn target(&self) -> String {
        let url = if self.config().url.is_empty() {
            "(the URL in its secret)".to_owned()
        } else {
            crate::feeds::without_credentials(&self.config().url)
        };
        format!("{url}, template {}", self.config().template_name)
    }

    async fn find(
        &self,
        _key: &str,
        view: &TicketView,
    ) -> Result<Option<RemoteTicket>, RemoteError> {
        if self.config().template.find.is_none() {
            return Ok(None);
        }
        Ok(self
            .run("find", view, None, None)
            .await?
            .map(|id| RemoteTicket {
                id,
                status: "open".to_owned(),
                owner: String::new(),
            }))
    }

    async fn create(&self, view: &TicketView, key: &str) -> Result<RemoteTicket, RemoteError> {
        let id = self.run("create", view, None, None).await?;
        Ok(RemoteTicket {
            // A chat webhook answers no id: the key stands for the message.
            id: id.unwrap_or_else(|| key.to_owned()),
            status: "open".to_owned(),
            owner: String::new(),
        })
    }

    async fn apply(
        &self,
        view: &TicketView,
        e: &TicketEvent,
        link: &mut HelpdeskLink,
    ) -> Result<(), RemoteError> {
        let t = &self.config().template;
        let done = link.remote_status == "resolved";
        let action = match e.kind {
            EventKind::Opened => return Ok(()),
            EventKind::Resolved | EventKind::Closed if !done && !t.resolve.is_empty() => "resolve",
            EventKind::Reopened if done && !t.reopen.is_empty() => "reopen",
            EventKind::Priority if !t.priority.is_empty() => "priority",
            _ => "comment",
        };
        self.run(action, view, Some(e), Some(&link.remote_id))
            .await?;
        match e.kind {
            EventKind::Resolved | EventKind::Closed => link.remote_status = "resolved".to_owned(),
            EventKind::Reopened => link.remote_status = "open".to_owned(),
            _ => {}
        }
        Ok(())
    }

    async fn probe(&self) -> Result<String, RemoteError> {
        let view = TicketView::default();
        match self.session(&view).await? {
            Some(_) => Ok("a session was opened".to_owned()),
            None => Ok(format!(
                "template {} renders; no call is made without a ticket",
                self.config().template_name
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses() {
        for (name, text) in SHIPPED {
            let t = Template::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!t.description.is_empty(), "{name}");
            assert!(Template::shipped(name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_template_without_create_or_with_a_bad_pointer_is_refused() {
        let e = Template::parse(
            "description = \"x\"\npriorities = [\"1\",\"2\",\"3\",\"4\"]\ncreate = []\n",
        )
        .expect_err("refused");
        assert!(e.contains("create"), "{e}");
        let e = Template::parse(
            "description = \"x\"\npriorities = [\"1\",\"2\",\"3\",\"4\"]\n[[create]]\nurl = \"http://x\"\nid = \"id\"\n",
        )
        .expect_err("refused");
        assert!(e.contains("JSON pointer"), "{e}");
    }

    fn configured(text: &str) -> WebhookConfig {
        let raw: super::super::config::RawHelpdesk = toml::from_str(text).expect("toml");
        let mut problems = Vec::new();
        let c = super::super::config::HelpdeskConfig::from_raw(raw, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        c.webhooks.into_iter().next().expect("a webhook")
    }

    #[test]
    fn errors_never_carry_the_secret_in_any_form() {
        let hook = "https://hooks.slack.com/services/T0/B0/XyZsecretToken123";
        let c = configured(&format!(
            "[[webhook]]\nname = \"chat\"\ntemplate = \"slack-webhook\"\nsecret = {hook:?}\n"
        ));
        let engine = Engine::new(&c).expect("engine");
        let url = reqwest::Url::parse(hook).expect("url");
        assert_eq!(
            engine.shown_target("create", 0, &url),
            "https://hooks.slack.com/…"
        );
        let c = configured(
            "[[webhook]]\nname = \"sn\"\ntemplate = \"servicenow\"\nurl = \"https://sn.example.com\"\n\
             user = \"firstline\"\nsecret = \"p@ss word/1\"\n",
        );
        let engine = Engine::new(&c).expect("engine");
        let b64 = base64::engine::general_purpose::STANDARD.encode("firstline:p@ss word/1");
        let text = format!("p@ss word/1 p%40ss%20word%2F1 {b64}");
        assert_eq!(engine.redact(&text), "… … …");
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            slack_text("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn text_is_read_at_a_pointer() {
        let v = json!({"result": {"sys_id": "abc", "n": 7, "e": ""}});
        assert_eq!(text_at(&v, "/result/sys_id").as_deref(), Some("abc"));
        assert_eq!(text_at(&v, "/result/n").as_deref(), Some("7"));
        assert_eq!(text_at(&v, "/result/e"), None);
        assert_eq!(text_at(&v, "/missing"), None);
    }
}
