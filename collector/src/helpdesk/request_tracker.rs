//! Request Tracker 5 through its REST 2 API: the calls the sync makes (find a ticket by its
//! key, create, comment, set status or priority) and the search for tickets technicians
//! changed in RT. Every answer is classified: a connection failure, a timeout, a 5xx, 408 or
//! 429 is worth another attempt; any other refusal (bad credentials, no such queue, a field RT
//! rejects) would repeat and is reported as such.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::config::SyncSettings;
use super::config::{RequestTrackerConfig, RtAuth};
use super::remote::{Remote, RemoteChange, RemoteError, RemoteTicket, answer_error};
use super::render::{self, TicketView};
use super::sync::{RT_ACTOR_PREFIX, priority_index};
use crate::store::HelpdeskLink;
use crate::tickets::{EventKind, TicketEvent};

/// Tickets read per page of a search.
const PAGE_SIZE: u32 = 100;
/// Pages of one search read at most (10 000 changed tickets per poll).
const MAX_PAGES: u32 = 100;
/// How much of a refusing answer is kept with the error.
const ERROR_BODY_CHARS: usize = 300;
/// RT's statuses that end a ticket (its default lifecycle's inactive statuses).
pub const DONE_STATUSES: [&str; 3] = ["resolved", "rejected", "deleted"];

/// A Request Tracker client for one configuration.
pub struct RequestTracker {
    config: RequestTrackerConfig,
    api: String,
    http: reqwest::Client,
}

impl RequestTracker {
    pub fn new(config: RequestTrackerConfig) -> Result<Self, String> {
        let http = crate::feeds::http::client(config.sync.timeout)?;
        Ok(Self {
            api: config.api(),
            config,
            http,
        })
    }

    pub fn config(&self) -> &RequestTrackerConfig {
        &self.config
    }

    /// One call; the answer's JSON (`null` for an empty body) or why it failed.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, RemoteError> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.api), query).map_err(
            |e| RemoteError::Permanent {
                error: format!("{method} {path}: not a URL: {e}"),
            },
        )?;
        let mut req = self.http.request(method.clone(), url);
        req = match &self.config.auth {
            RtAuth::Token(t) => req.header("Authorization", format!("token {t}")),
            RtAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.map_err(|e| RemoteError::Transient {
            error: format!("{method} {path}: {}", crate::feeds::http::error_chain(&e)),
            retry_after: None,
        })?;
        let status = response.status();
        let retry_after = super::remote::retry_after(&response);
        let text = response.text().await.map_err(|e| RemoteError::Transient {
            error: format!("{method} {path}: reading the answer: {e}"),
            retry_after: None,
        })?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| RemoteError::Permanent {
                error: format!(
                    "{method} {path}: HTTP {status} with an answer that is not JSON: {e}"
                ),
            });
        }
        let shown: String = text.chars().take(ERROR_BODY_CHARS).collect();
        Err(answer_error(
            &format!("{method} {path}"),
            status,
            shown.trim(),
            retry_after,
        ))
    }

    /// A TicketSQL string literal.
    fn quoted(s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    /// The ticket of our queue whose subject carries `key`, if RT has one.
    pub async fn find_key(&self, key: &str) -> Result<Option<RemoteTicket>, RemoteError> {
        let query = format!(
            "Queue = {} AND Subject LIKE {}",
            Self::quoted(&self.config.queue),
            Self::quoted(key)
        );
        let page = self
            .call(
                Method::GET,
                "/tickets",
                &[
                    ("query", query),
                    ("fields", "Subject,Status,Owner".to_owned()),
                    ("orderby", "id".to_owned()),
                    ("order", "ASC".to_owned()),
                ],
                None,
            )
            .await?;
        Ok(items(&page)
            .iter()
            .find(|t| t["Subject"].as_str().is_some_and(|s| s.contains(key)))
            .map(remote_ticket))
    }

    /// Creates a ticket in the configured queue; returns its id.
    pub async fn create_ticket(
        &self,
        subject: &str,
        body: &str,
        priority: u32,
    ) -> Result<RemoteTicket, RemoteError> {
        let answer = self
            .call(
                Method::POST,
                "/ticket",
                &[],
                Some(json!({
                    "Queue": self.config.queue,
                    "Subject": subject,
                    "Priority": priority,
                    "Content": body,
                    "ContentType": "text/plain",
                })),
            )
            .await?;
        let id = id_of(&answer["id"]).ok_or_else(|| RemoteError::Permanent {
            error: format!("POST /ticket: no ticket id in the answer {answer}"),
        })?;
        Ok(RemoteTicket {
            id,
            status: "new".to_owned(),
            owner: "Nobody".to_owned(),
        })
    }

    /// Adds an internal comment (not mailed to requestors).
    pub async fn comment(&self, id: &str, text: &str) -> Result<(), RemoteError> {
        self.call(
            Method::POST,
            &format!("/ticket/{}/comment", path_id(id)?),
            &[],
            Some(json!({ "Content": text, "ContentType": "text/plain" })),
        )
        .await
        .map(drop)
    }

    /// Sets fields (`Status`, `Priority`). RT answers 200 also when it refused a change, with
    /// the reason among its messages; such an answer is a refusal.
    pub async fn update(&self, id: &str, fields: Value) -> Result<(), RemoteError> {
        let path = format!("/ticket/{}", path_id(id)?);
        let answer = self.call(Method::PUT, &path, &[], Some(fields)).await?;
        match refusal(&answer) {
            Some(why) => Err(RemoteError::Permanent {
                error: format!("PUT {path}: {why}"),
            }),
            None => Ok(()),
        }
    }

    /// Tickets of our queue updated since `since_ms` (RT's times are whole seconds, so the
    /// search starts a second early): their status and owner now.
    pub async fn changed_since_ms(&self, since_ms: i64) -> Result<Vec<RemoteTicket>, RemoteError> {
        let since = ticketsql_time(since_ms.saturating_sub(1000));
        let query = format!(
            "Queue = {} AND LastUpdated >= {}",
            Self::quoted(&self.config.queue),
            Self::quoted(&since)
        );
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let answer = self
                .call(
                    Method::GET,
                    "/tickets",
                    &[
                        ("query", query.clone()),
                        ("fields", "Status,Owner,LastUpdated".to_owned()),
                        ("orderby", "id".to_owned()),
                        ("per_page", PAGE_SIZE.to_string()),
                        ("page", page.to_string()),
                    ],
                    None,
                )
                .await?;
            out.extend(items(&answer).iter().map(remote_ticket));
            if !more_pages(&answer, page) {
                break;
            }
        }
        Ok(out)
    }

    /// Who made the latest change of `field` (`Status`, `Owner`) on a ticket: the RT user
    /// name of its transaction's creator.
    pub async fn last_changed_by(
        &self,
        id: &str,
        field: &str,
    ) -> Result<Option<String>, RemoteError> {
        let path = format!("/ticket/{}/history", path_id(id)?);
        let mut who = None;
        for page in 1..=MAX_PAGES {
            let answer = self
                .call(
                    Method::GET,
                    &path,
                    &[
                        ("fields", "Type,Field,Creator".to_owned()),
                        ("orderby", "id".to_owned()),
                        ("per_page", PAGE_SIZE.to_string()),
                        ("page", page.to_string()),
                    ],
                    None,
                )
                .await?;
            if let Some(name) = items(&answer)
                .iter()
                .rev()
                .find(|t| t["Field"].as_str() == Some(field) || t["Type"].as_str() == Some(field))
                .and_then(|t| user_name(&t["Creator"]))
            {
                who = Some(name);
            }
            if !more_pages(&answer, page) {
                break;
            }
        }
        Ok(who)
    }
}

impl Remote for RequestTracker {
    fn label(&self) -> &str {
        "Request Tracker"
    }

    fn kind(&self) -> &'static str {
        "request-tracker"
    }

    fn settings(&self) -> &SyncSettings {
        &self.config.sync
    }

    fn target(&self) -> String {
        format!(
            "{} (queue {})",
            crate::feeds::without_credentials(&self.config.url),
            self.config.queue
        )
    }

    fn actor_prefix(&self) -> Option<&str> {
        Some(RT_ACTOR_PREFIX)
    }

    async fn find(
        &self,
        key: &str,
        _view: &TicketView,
    ) -> Result<Option<RemoteTicket>, RemoteError> {
        self.find_key(key).await
    }

    async fn create(&self, view: &TicketView, key: &str) -> Result<RemoteTicket, RemoteError> {
        let priority = self.config.priorities[priority_index(view.ticket.priority)];
        self.create_ticket(
            &render::subject(view, key),
            &render::create_body(view),
            priority,
        )
        .await
    }

    /// A comment per event, and the status or priority it changes.
    async fn apply(
        &self,
        view: &TicketView,
        e: &TicketEvent,
        link: &mut HelpdeskLink,
    ) -> Result<(), RemoteError> {
        let id = link.remote_id.clone();
        let done = DONE_STATUSES.contains(&link.remote_status.as_str());
        match e.kind {
            EventKind::Opened => return Ok(()),
            EventKind::Reopened if done => {
                self.update(&id, json!({ "Status": "open" })).await?;
                link.remote_status = "open".to_owned();
            }
            EventKind::Priority => {
                let p = self.config.priorities[priority_index(view.ticket.priority)];
                self.update(&id, json!({ "Priority": p })).await?;
            }
            _ => {}
        }
        self.comment(&id, &render::comment(view, e)).await?;
        if matches!(e.kind, EventKind::Resolved | EventKind::Closed) && !done {
            self.update(&id, json!({ "Status": "resolved" })).await?;
            link.remote_status = "resolved".to_owned();
        }
        Ok(())
    }

    async fn changed_since(&self, since_ms: i64) -> Result<Vec<RemoteTicket>, RemoteError> {
        self.changed_since_ms(since_ms).await
    }

    fn changes(&self, remote: &RemoteTicket, link: &HelpdeskLink) -> Vec<RemoteChange> {
        changes(remote, &link.remote_status, &link.remote_owner)
    }

    async fn changed_by(&self, id: &str, field: &str) -> Result<Option<String>, RemoteError> {
        self.last_changed_by(id, field).await
    }

    async fn probe(&self) -> Result<String, RemoteError> {
        let answer = self.call(Method::GET, "/rt", &[], None).await?;
        Ok(format!(
            "Request Tracker {}",
            answer["Version"].as_str().unwrap_or("unknown")
        ))
    }
}

/// What RT changes mean for the Firstline ticket: a new owner first, then a status that
/// ended (or, after ending, came back to life).
pub fn changes(remote: &RemoteTicket, was_status: &str, was_owner: &str) -> Vec<RemoteChange> {
    let mut out = Vec::new();
    if remote.owner != was_owner && !remote.owner.is_empty() && remote.owner != "Nobody" {
        out.push(RemoteChange::Taken(remote.owner.clone()));
    }
    if remote.status != was_status && !remote.status.is_empty() {
        let done = DONE_STATUSES.contains(&remote.status.as_str());
        let was_done = DONE_STATUSES.contains(&was_status);
        if done && !was_done {
            out.push(RemoteChange::Resolved);
        } else if !done && was_done {
            out.push(RemoteChange::Reopened);
        }
    }
    out
}

/// A time as TicketSQL takes it (`$Timezone` must be UTC, or RT reads it as local time).
pub fn ticketsql_time(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    let t = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string();
    // 2026-12-01T20:28:58Z -> 2026-12-01 20:28:58
    t.trim_end_matches('Z').replacen('T', " ", 1)
}

/// Whether a search answer has pages after `page` (RT gives `pages` as a number, sometimes
/// with a fraction: `0.0` for no results).
fn more_pages(answer: &Value, page: u32) -> bool {
    answer["pages"].as_f64().unwrap_or(1.0) > f64::from(page)
}

/// The reason among a PUT's messages when RT refused the change.
fn refusal(answer: &Value) -> Option<String> {
    const REFUSED: [&str; 5] = [
        "Permission Denied",
        "isn't a valid",
        "You can only",
        "not allowed",
        "Could not",
    ];
    answer
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|m| REFUSED.iter().any(|r| m.contains(r)).then(|| m.to_owned()))
}

fn items(page: &Value) -> &[Value] {
    page["items"].as_array().map_or(&[], Vec::as_slice)
}

/// An id RT gives as a string (create answers) or a number (ticket answers).
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
            Some(s.clone())
        }
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// A ticket id fit for a path; anything else is refused (it came from the store).
fn path_id(id: &str) -> Result<&str, RemoteError> {
    if !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(RemoteError::Permanent {
            error: format!("{id:?} is not a Request Tracker ticket id"),
        })
    }
}

/// A user as RT gives it: an object `{"id": "bob", "type": "user", …}` or a plain name.
fn user_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(|id| match id {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        _ => None,
    }
}

fn remote_ticket(item: &Value) -> RemoteTicket {
    RemoteTicket {
        id: id_of(&item["id"]).unwrap_or_default(),
        status: item["Status"].as_str().unwrap_or_default().to_owned(),
        owner: user_name(&item["Owner"]).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticketsql_times_are_utc_seconds() {
        assert_eq!(ticketsql_time(1_796_156_938_123), "2026-12-01 20:28:58");
    }

    #[test]
    fn a_put_answered_200_can_still_be_a_refusal() {
        let ok = json!(["Ticket 1: Status changed from 'open' to 'resolved'"]);
        assert_eq!(refusal(&ok), None);
        let refused = json!(["Ticket 2: You can only take tickets that are unowned"]);
        assert_eq!(
            refusal(&refused).as_deref(),
            Some("Ticket 2: You can only take tickets that are unowned")
        );
        assert!(more_pages(&json!({"pages": 3.0}), 2));
        assert!(!more_pages(&json!({"pages": 0.0}), 1));
    }

    #[test]
    fn ticketsql_literals_are_escaped() {
        assert_eq!(RequestTracker::quoted("it's"), "'it\\'s'");
    }

    #[test]
    fn search_items_are_read_as_rt_sends_them() {
        let page: Value = serde_json::from_str(
            r#"{"count":1,"pages":1,"items":[{"id":"7","type":"ticket","Status":"resolved",
                "Owner":{"id":"bob","type":"user","_url":"http://rt/REST/2.0/user/bob"}}]}"#,
        )
        .expect("json");
        assert_eq!(
            remote_ticket(&items(&page)[0]),
            RemoteTicket {
                id: "7".into(),
                status: "resolved".into(),
                owner: "bob".into()
            }
        );
    }

    #[test]
    fn a_resolution_a_reopening_or_a_new_owner_is_a_change() {
        let t = |status: &str, owner: &str| RemoteTicket {
            id: "1".into(),
            status: status.into(),
            owner: owner.into(),
        };
        assert_eq!(
            changes(&t("resolved", "Nobody"), "open", "Nobody"),
            [RemoteChange::Resolved]
        );
        assert_eq!(
            changes(&t("open", "bob"), "new", "Nobody"),
            [RemoteChange::Taken("bob".into())]
        );
        assert_eq!(
            changes(&t("resolved", "bob"), "new", "Nobody"),
            [RemoteChange::Taken("bob".into()), RemoteChange::Resolved]
        );
        assert_eq!(
            changes(&t("open", "Nobody"), "resolved", "Nobody"),
            [RemoteChange::Reopened]
        );
        assert!(changes(&t("open", "Nobody"), "new", "Nobody").is_empty());
        assert!(changes(&t("resolved", "Nobody"), "resolved", "Nobody").is_empty());
    }
}
