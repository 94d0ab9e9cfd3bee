//! E-mail notifications (`[helpdesk.email]`): tickets' events mailed through an SMTP relay
//! (lettre; STARTTLS, implicit TLS or plain, with or without authentication), routed by
//! priority, rule, label and host (`[[helpdesk.email.route]]`), with a digest for the
//! priorities a route collects instead of mailing each, and quiet hours during which only
//! the most urgent priorities are mailed at once (the rest wait for the end). Every mail has a
//! plain-text and an HTML part.
//!
//! Like a feed, the mailer runs on the duty-lease holder with its own cursor
//! (`helpdesk:email`); it takes events into the outbox (`store/email.rs`), cursor moved in the
//! same transaction, then mails what is due. Events on tickets under a silence or an outage
//! (their host tickets), and the notes help-desk syncs write, are not mailed. A mail that
//! went out is noted on the ticket's timeline; an answer worth retrying puts it off with
//! backoff; a refusal that would repeat (a rejected recipient, bad credentials) is noted and
//! dropped. The scheduling (quiet hours, digest times) is pure and takes the time as an
//! argument, and `Mailer::round` takes it too, so tests run it on a clock of their own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use firstline_support::config_file::set_duration;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::remote::RemoteError;
use super::render::{self, TicketView};
use super::sync::SYNC_ACTOR_PREFIX;
use crate::clock::now_ms;
use crate::feeds::config::{filter, secret};
use crate::feeds::filter::FeedFilter;
use crate::feeds::payload::{priority_name, rfc3339};
use crate::feeds::{FeedContext, PAGE, POLL_EVERY};
use crate::store::{
    AlertEvent, EventFilter, FLEET, OutboxEntry, OutboxRow, Store, StoreError, sync_feed,
};
use crate::tickets::lifecycle::Sla;
use crate::tickets::{EventKind, TicketEvent, TicketState};

/// The mailer's name in the store (`helpdesk:email`), metrics and the CLI.
pub const SYSTEM: &str = "email";
/// Routes at most.
const MAX_ROUTES: usize = 64;
/// Recipients of a route at most.
const MAX_RECIPIENTS: usize = 50;
/// Outbox rows handled per round.
const DUE_BATCH: u32 = 500;
/// Entries listed in one digest; the rest are counted.
const MAX_DIGEST_LINES: usize = 500;
const MINUTES_PER_DAY: i64 = 24 * 60;

/// How the relay is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (the default; port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain text (a relay on this machine, port 25).
    None,
}

/// Hours of the day (in `utc_offset`) during which only urgent priorities are mailed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after local midnight; `start > end` spans midnight.
    pub start: i64,
    pub end: i64,
}

/// One route: who gets which tickets' mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub to: Vec<String>,
    pub filter: FeedFilter,
    /// Which events are mailed.
    pub events: Vec<EventKind>,
    /// Priorities (1..4) collected into the route's digest instead of mailed one by one.
    pub digest_priorities: Vec<u32>,
}

#[derive(Clone, PartialEq)]
pub struct EmailConfig {
    pub server: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Extra CA certificates (PEM) the relay's certificate may chain to.
    pub ca_pem: Option<Vec<u8>>,
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub helo_name: String,
    pub timeout: Duration,
    pub routes: Vec<Route>,
    pub quiet_hours: Option<QuietHours>,
    /// Minutes east of UTC that quiet hours and digest times are in.
    pub utc_offset_minutes: i64,
    /// Priorities at or above this (1 = P1) are mailed at once also in quiet hours.
    pub quiet_bypass: u32,
    /// How often digests go out (aligned to local midnight).
    pub digest_every: Duration,
    pub dashboard_url: String,
    /// How long an opened host ticket of a correlated rule waits before it is mailed, so an
    /// outage that forms meanwhile is one mail (its host tickets are then not mailed).
    pub correlated_hold: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .field("routes", &self.routes)
            .field("quiet_hours", &self.quiet_hours)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    server: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    ca_file: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    helo_name: Option<String>,
    timeout: Option<String>,
    quiet_hours: Option<String>,
    utc_offset: Option<String>,
    quiet_bypass: Option<u32>,
    digest_every: Option<String>,
    dashboard_url: Option<String>,
    correlated_hold: Option<String>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<String>,
    to: Option<Vec<String>>,
    max_priority: Option<u32>,
    rules: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    events: Option<Vec<String>>,
    digest_priorities: Option<Vec<u32>>,
}

/// The events mailed when a route names none.
const DEFAULT_EVENTS: [EventKind; 5] = [
    EventKind::Opened,
    EventKind::Priority,
    EventKind::Escalated,
    EventKind::Reopened,
    EventKind::Resolved,
];

impl EmailConfig {
    /// Validates the raw `[helpdesk.email]` table; problems are pushed with their keys.
    pub fn from_raw(r: RawEmail, problems: &mut Vec<String>) -> Option<Self> {
        let key = "helpdesk.email";
        let before = problems.len();
        let server = r.server.unwrap_or_default();
        if server.is_empty() || server.len() > 253 || server.contains(['/', ' ', ':']) {
            problems.push(format!(
                "{key}.server: {server:?} must be the SMTP relay's host name or address"
            ));
        }
        let tls = match r.tls.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpTls::Starttls,
            "tls" => SmtpTls::Tls,
            "none" => SmtpTls::None,
            other => {
                problems.push(format!(
                    "{key}.tls: {other:?} must be starttls, tls or none"
                ));
                SmtpTls::Starttls
            }
        };
        let port = r.port.unwrap_or(match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        if port == 0 {
            problems.push(format!("{key}.port: 0 is no port"));
        }
        let ca_pem = match r.ca_file {
            Some(path) => match std::fs::read(&path) {
                Ok(pem) if Certificate::from_pem(&pem).is_ok() => Some(pem),
                Ok(_) => {
                    problems.push(format!(
                        "{key}.ca_file: {} holds no PEM certificate",
                        path.display()
                    ));
                    None
                }
                Err(e) => {
                    problems.push(format!(
                        "{key}.ca_file: cannot read {}: {e}",
                        path.display()
                    ));
                    None
                }
            },
            None => None,
        };
        let password = secret(
            &format!("{key}.password"),
            r.password,
            r.password_file,
            problems,
        );
        let credentials = match (r.user, password) {
            (Some(u), Some(p)) if !u.is_empty() && u.len() <= 200 => Some((u, p)),
            (None, None) => None,
            _ => {
                problems.push(format!(
                    "{key}: give user and password (or password_file) together"
                ));
                None
            }
        };
        if credentials.is_some() && tls == SmtpTls::None {
            problems.push(format!(
                "{key}.tls: none would send the password in clear; use starttls or tls"
            ));
        }
        let from = r.from.unwrap_or_default();
        if from.parse::<Mailbox>().is_err() {
            problems.push(format!(
                "{key}.from: {from:?} is no mail address (\"Firstline <firstline@example.com>\")"
            ));
        }
        let helo_name = r.helo_name.unwrap_or_else(|| "localhost".to_owned());
        if helo_name.is_empty() || helo_name.len() > 253 || helo_name.contains([' ', '/']) {
            problems.push(format!("{key}.helo_name: {helo_name:?} is no host name"));
        }
        let quiet_hours = r.quiet_hours.and_then(|q| match parse_quiet_hours(&q) {
            Ok(q) => Some(q),
            Err(e) => {
                problems.push(format!("{key}.quiet_hours: {e}"));
                None
            }
        });
        let utc_offset_minutes = match r.utc_offset.as_deref().map(parse_offset) {
            None => 0,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                problems.push(format!("{key}.utc_offset: {e}"));
                0
            }
        };
        let quiet_bypass = r.quiet_bypass.unwrap_or(1);
        if quiet_bypass > 4 {
            problems.push(format!(
                "{key}.quiet_bypass: {quiet_bypass} must be 0 (none) to 4"
            ));
        }
        let mut timeout = Duration::from_secs(30);
        let mut digest_every = Duration::from_secs(3600);
        let mut retry_initial = Duration::from_secs(30);
        let mut retry_max = Duration::from_secs(1800);
        let mut correlated_hold = Duration::from_secs(60);
        let durations = [
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
                (Duration::from_secs(1), Duration::from_secs(300)),
            ),
            (
                r.digest_every,
                "digest_every",
                &mut digest_every,
                (Duration::from_secs(60), Duration::from_secs(86_400)),
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
        let dashboard_url = match r.dashboard_url {
            Some(u) => {
                crate::feeds::config::http_url(&format!("{key}.dashboard_url"), Some(u), problems)
                    .trim_end_matches('/')
                    .to_owned()
            }
            None => String::new(),
        };
        if r.route.is_empty() {
            problems.push(format!(
                "{key}.route: at least one [[{key}.route]] with to = [...]"
            ));
        }
        if r.route.len() > MAX_ROUTES {
            problems.push(format!("{key}.route: at most {MAX_ROUTES} routes"));
        }
        let mut routes: Vec<Route> = Vec::new();
        for (i, raw) in r.route.into_iter().enumerate() {
            let rkey = format!("{key}.route[{i}]");
            if let Some(route) = route(&rkey, i, raw, problems) {
                if routes.iter().any(|o| o.name == route.name) {
                    problems.push(format!("{rkey}.name: {:?} is taken", route.name));
                }
                routes.push(route);
            }
        }
        (problems.len() == before).then_some(Self {
            server,
            port,
            tls,
            ca_pem,
            credentials,
            from,
            helo_name,
            timeout,
            routes,
            quiet_hours,
            utc_offset_minutes,
            quiet_bypass,
            digest_every,
            dashboard_url,
            correlated_hold,
            retry_initial,
            retry_max,
        })
    }
}

fn route(key: &str, i: usize, r: RawRoute, problems: &mut Vec<String>) -> Option<Route> {
    let before = problems.len();
    let name = r.name.unwrap_or_else(|| format!("route-{i}"));
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        problems.push(format!("{key}.name: must be 1 to 64 characters"));
    }
    let to = r.to.unwrap_or_default();
    if to.is_empty() || to.len() > MAX_RECIPIENTS {
        problems.push(format!("{key}.to: 1 to {MAX_RECIPIENTS} addresses"));
    }
    for a in &to {
        if a.parse::<Mailbox>().is_err() {
            problems.push(format!("{key}.to: {a:?} is no mail address"));
        }
    }
    let events = match r.events {
        None => DEFAULT_EVENTS.to_vec(),
        Some(names) => names
            .iter()
            .filter_map(|n| match EventKind::parse(n) {
                Ok(k) => Some(k),
                Err(_) => {
                    problems.push(format!("{key}.events: {n:?} is no event kind"));
                    None
                }
            })
            .collect(),
    };
    let digest_priorities = r.digest_priorities.unwrap_or_default();
    if digest_priorities.iter().any(|p| !(1..=4).contains(p)) {
        problems.push(format!(
            "{key}.digest_priorities: {digest_priorities:?} must be priorities 1 to 4"
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
    (problems.len() == before).then_some(Route {
        name,
        to,
        filter,
        events,
        digest_priorities,
    })
}

/// `22:00-07:00` as minutes after midnight.
pub fn parse_quiet_hours(s: &str) -> Result<QuietHours, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} must be HH:MM-HH:MM, e.g. 22:00-07:00"))?;
    let minutes = |t: &str| -> Result<i64, String> {
        let (h, m) = t
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{t:?} must be HH:MM"))?;
        let h: i64 = h.parse().map_err(|_| format!("{t:?} must be HH:MM"))?;
        let m: i64 = m.parse().map_err(|_| format!("{t:?} must be HH:MM"))?;
        if !(0..24).contains(&h) || !(0..60).contains(&m) {
            return Err(format!("{t:?} is no time of day"));
        }
        Ok(h * 60 + m)
    };
    let (start, end) = (minutes(a)?, minutes(b)?);
    if start == end {
        return Err(format!("{s:?} is empty: start and end are the same"));
    }
    Ok(QuietHours { start, end })
}

/// `+01:00`, `-05:30`, `Z` as minutes east of UTC.
pub fn parse_offset(s: &str) -> Result<i64, String> {
    if s == "Z" || s == "UTC" {
        return Ok(0);
    }
    let bad = || format!("{s:?} must be like +01:00 or -05:30");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(bad());
    }
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

/// When the quiet hours `now_ms` falls in end; `None` outside them.
pub fn quiet_until(q: QuietHours, offset_minutes: i64, now_ms: i64) -> Option<i64> {
    let local_ms = now_ms + offset_minutes * 60_000;
    let minute = local_ms.div_euclid(60_000).rem_euclid(MINUTES_PER_DAY);
    let inside = if q.start < q.end {
        (q.start..q.end).contains(&minute)
    } else {
        minute >= q.start || minute < q.end
    };
    if !inside {
        return None;
    }
    let day_start = local_ms - local_ms.rem_euclid(MINUTES_PER_DAY * 60_000);
    let mut end = day_start + q.end * 60_000;
    if end <= local_ms {
        end += MINUTES_PER_DAY * 60_000;
    }
    Some(end - offset_minutes * 60_000)
}

/// The next digest time after `now_ms`: multiples of `every` after local midnight.
pub fn next_digest(every: Duration, offset_minutes: i64, now_ms: i64) -> i64 {
    let every = i64::try_from(every.as_millis())
        .unwrap_or(i64::MAX)
        .max(60_000);
    let local = now_ms + offset_minutes * 60_000;
    let day_start = local - local.rem_euclid(MINUTES_PER_DAY * 60_000);
    let since = local - day_start;
    let next = day_start + (since / every + 1) * every;
    // A digest interval that does not divide the day restarts at midnight.
    let next = next.min(day_start + MINUTES_PER_DAY * 60_000);
    next - offset_minutes * 60_000
}

/// When an event of priority `priority` for `route` is mailed, and whether in the digest.
pub fn schedule(config: &EmailConfig, route: &Route, priority: u32, now_ms: i64) -> (bool, i64) {
    let digest = route.digest_priorities.contains(&priority);
    let at = if digest {
        next_digest(config.digest_every, config.utc_offset_minutes, now_ms)
    } else {
        now_ms
    };
    let urgent = config.quiet_bypass > 0 && priority <= config.quiet_bypass;
    let at = match config.quiet_hours {
        Some(q) if !urgent => quiet_until(q, config.utc_offset_minutes, at).unwrap_or(at),
        _ => at,
    };
    (digest, at)
}

/// The clock the mailer reads (milliseconds since the epoch).
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// The e-mail notifications of one configuration.
pub struct Mailer {
    config: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    feed: String,
    actor: String,
    sla: Sla,
    /// Rules whose host tickets may become an outage.
    correlated: Vec<String>,
    kb_dir: Option<PathBuf>,
    clock: Clock,
}

impl Mailer {
    pub fn new(
        config: EmailConfig,
        sla: Sla,
        correlated: Vec<String>,
        kb_dir: Option<PathBuf>,
    ) -> Result<Self, String> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.server.clone())
            .port(config.port)
            .timeout(Some(config.timeout))
            .hello_name(ClientId::Domain(config.helo_name.clone()));
        if config.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(config.server.clone());
            if let Some(pem) = &config.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("e-mail TLS setup: {e}"))?;
            b = b.tls(match config.tls {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let Some((user, password)) = &config.credentials {
            b = b.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: b.build(),
            feed: sync_feed(SYSTEM),
            actor: format!("{SYNC_ACTOR_PREFIX}{SYSTEM}"),
            config,
            sla,
            correlated,
            kb_dir,
            clock: std::sync::Arc::new(now_ms),
        })
    }

    /// The same mailer on another clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn target(&self) -> String {
        format!(
            "smtp://{}:{} ({} routes)",
            self.config.server,
            self.config.port,
            self.config.routes.len()
        )
    }

    /// Whether the relay answers and takes the credentials (`feeds test helpdesk:email`).
    pub async fn probe(&self) -> Result<String, RemoteError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(format!("SMTP relay {} answered", self.config.server)),
            Ok(false) => Err(RemoteError::Transient {
                error: format!("SMTP relay {} did not answer", self.config.server),
                retry_after: None,
            }),
            Err(e) => Err(classify(&e)),
        }
    }

    /// Runs until `ctx.shutdown`, mailing only while this replica holds the duty lease.
    pub async fn run(&self, mut ctx: FeedContext) {
        let mut signal = ctx.store.event_signal();
        'duty: while ctx.until_duty().await {
            let mut cursor = match ctx.start_cursor(&self.feed).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(feed = self.feed, %error, "e-mail notifications cannot read their cursor; trying again");
                    if !ctx.sleep(POLL_EVERY).await {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(
                feed = self.feed,
                cursor,
                target = self.target(),
                "e-mail notifications running"
            );
            while ctx.on_duty() && !ctx.shutdown.is_cancelled() {
                let wait = match self.round(&ctx, &mut cursor).await {
                    Ok(wait) => wait,
                    Err(error) => {
                        tracing::warn!(feed = self.feed, %error, "e-mail round failed; trying again");
                        ctx.status.failed(&self.feed, &error.to_string());
                        POLL_EVERY
                    }
                };
                if !ctx.wait(&mut signal, wait).await {
                    break 'duty;
                }
            }
        }
        tracing::info!(feed = self.feed, "e-mail notifications stopped");
    }

    /// Takes new events into the outbox and mails what is due now (on the mailer's clock);
    /// returns how long until something falls due.
    pub async fn round(&self, ctx: &FeedContext, cursor: &mut i64) -> Result<Duration, StoreError> {
        self.take_events(&ctx.store, cursor).await?;
        crate::telemetry::feed_lag(&self.feed, ctx.store.email_backlog().await?);
        self.send_due(ctx).await?;
        let now = (self.clock)();
        Ok(ctx
            .store
            .next_email_at()
            .await?
            .map_or(POLL_EVERY, |at| {
                Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
            })
            .min(POLL_EVERY))
    }

    /// Events after `cursor` into the outbox, page by page, for each route they go to.
    async fn take_events(&self, store: &Store, cursor: &mut i64) -> Result<(), StoreError> {
        loop {
            let page = store
                .events_since(*cursor, &EventFilter::default(), PAGE)
                .await?;
            let Some(last) = page.last().map(|a| a.event.cursor) else {
                return Ok(());
            };
            let now = (self.clock)();
            let silences = store.current_silences(now).await?;
            let mut rows = Vec::new();
            for a in &page {
                if !self.mailable(a) {
                    continue;
                }
                let silenced = silences.iter().any(|s| {
                    s.starts_at_ms <= now
                        && s.matcher.covers(
                            &a.ticket.agent_id,
                            &a.ticket.hostname,
                            &a.labels,
                            &a.ticket.rule_id,
                        )
                });
                if silenced {
                    continue;
                }
                for route in &self.config.routes {
                    if route.events.contains(&a.event.kind) && route.filter.matches(a) {
                        // The hold first, so quiet hours apply to when it ends.
                        let from = if self.held(a) {
                            let hold = i64::try_from(self.config.correlated_hold.as_millis())
                                .unwrap_or(i64::MAX);
                            now.max(a.ticket.opened_at_ms.saturating_add(hold))
                        } else {
                            now
                        };
                        let (digest, due_at_ms) =
                            schedule(&self.config, route, a.ticket.priority, from);
                        rows.push(OutboxRow {
                            route: route.name.clone(),
                            ticket_id: a.ticket.id,
                            event_cursor: a.event.cursor,
                            digest,
                            due_at_ms,
                        });
                    }
                }
            }
            store.queue_email(&self.feed, &rows, last, now_ms()).await?;
            *cursor = last;
            if page.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    /// Whether an event is one to mail at all: not a sync's note, not on a host ticket under
    /// an outage (the outage is mailed), not on a suppressed ticket.
    fn mailable(&self, a: &AlertEvent) -> bool {
        !a.event.actor.starts_with(SYNC_ACTOR_PREFIX)
            && a.ticket.parent_id.is_none()
            && !(a.ticket.state == TicketState::Suppressed && a.event.kind != EventKind::Resolved)
    }

    /// Whether an event waits for an outage that may form: the opening of a host ticket of a
    /// correlated rule.
    fn held(&self, a: &AlertEvent) -> bool {
        a.event.kind == EventKind::Opened
            && a.ticket.agent_id != FLEET
            && self.correlated.contains(&a.ticket.rule_id)
    }

    /// Mails the due rows: each on its own, or a route's digest rows in one mail.
    async fn send_due(&self, ctx: &FeedContext) -> Result<(), StoreError> {
        let now = (self.clock)();
        let due = ctx.store.due_email(now, DUE_BATCH).await?;
        let mut digests: BTreeMap<String, Vec<OutboxEntry>> = BTreeMap::new();
        let mut due = due.into_iter();
        while let Some(entry) = due.next() {
            if !ctx.on_duty() || ctx.shutdown.is_cancelled() {
                return Ok(());
            }
            if entry.row.digest {
                digests
                    .entry(entry.row.route.clone())
                    .or_default()
                    .push(entry);
            } else if let Some(at) = self.send_one(ctx, entry).await? {
                // The relay is away: the rest waits as long, rather than each mail waiting
                // out its own timeout now.
                let rest: Vec<i64> = due
                    .map(|e| e.id)
                    .chain(digests.values().flatten().map(|e| e.id))
                    .collect();
                return ctx.store.put_off_email(&rest, at).await;
            }
        }
        let mut digests = digests.into_iter();
        while let Some((route, entries)) = digests.next() {
            if let Some(at) = self.send_digest(ctx, &route, entries).await? {
                let rest: Vec<i64> = digests.flat_map(|(_, e)| e).map(|e| e.id).collect();
                return ctx.store.put_off_email(&rest, at).await;
            }
        }
        Ok(())
    }

    fn route(&self, name: &str) -> Option<&Route> {
        self.config.routes.iter().find(|r| r.name == name)
    }

    /// The ticket and event of an outbox row, if both are still there.
    async fn load(
        &self,
        store: &Store,
        row: &OutboxRow,
    ) -> Result<Option<(TicketView, TicketEvent)>, StoreError> {
        let Some(ticket) = store.ticket(row.ticket_id).await? else {
            return Ok(None);
        };
        // A host ticket that became part of an outage while it waited: the outage is mailed.
        if ticket.parent_id.is_some() {
            return Ok(None);
        }
        let Some(event) = store
            .ticket_events_after(row.ticket_id, row.event_cursor - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.cursor == row.event_cursor)
        else {
            return Ok(None);
        };
        let labels = store.agent_labels(&ticket.agent_id).await?;
        let linked = if ticket.linked_hosts > 0 {
            store.linked_tickets(ticket.id).await?
        } else {
            Vec::new()
        };
        let kb_markdown = if event.kind == EventKind::Opened {
            crate::kb::article(&ticket.kb, self.kb_dir.as_deref()).unwrap_or_default()
        } else {
            String::new()
        };
        let opened_detail = if event.kind == EventKind::Opened {
            event.detail.clone()
        } else {
            String::new()
        };
        Ok(Some((
            TicketView {
                ticket,
                labels,
                linked,
                opened_detail,
                kb_markdown,
                dashboard_url: self.config.dashboard_url.clone(),
            },
            event,
        )))
    }

    /// Mails one row; `Some(time)` when the relay could not be reached and the row waits
    /// until then.
    async fn send_one(
        &self,
        ctx: &FeedContext,
        entry: OutboxEntry,
    ) -> Result<Option<i64>, StoreError> {
        let Some(route) = self.route(&entry.row.route) else {
            // A route taken out of the configuration: its rows go with it.
            return ctx.store.email_done(&[entry.id]).await.map(|()| None);
        };
        let Some((view, event)) = self.load(&ctx.store, &entry.row).await? else {
            return ctx.store.email_done(&[entry.id]).await.map(|()| None);
        };
        let (subject, plain, html) = compose_one(&view, &event);
        let outcome = self.send(route, &subject, plain, html).await;
        let tickets = [view.ticket.id];
        self.settle(ctx, route, &[entry], &tickets, outcome, false)
            .await
    }

    /// Mails a route's digest rows as one mail; `Some(time)` as for `send_one`.
    async fn send_digest(
        &self,
        ctx: &FeedContext,
        route_name: &str,
        entries: Vec<OutboxEntry>,
    ) -> Result<Option<i64>, StoreError> {
        let Some(route) = self.route(route_name) else {
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            return ctx.store.email_done(&ids).await.map(|()| None);
        };
        let mut items = Vec::new();
        for e in &entries {
            if let Some(item) = self.load(&ctx.store, &e.row).await? {
                items.push(item);
            }
        }
        let mut tickets: Vec<i64> = items.iter().map(|(v, _)| v.ticket.id).collect();
        tickets.sort_unstable();
        tickets.dedup();
        if items.is_empty() {
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            return ctx.store.email_done(&ids).await.map(|()| None);
        }
        let (subject, plain, html) = compose_digest(route_name, &items);
        let outcome = self.send(route, &subject, plain, html).await;
        self.settle(ctx, route, &entries, &tickets, outcome, true)
            .await
    }

    async fn send(
        &self,
        route: &Route,
        subject: &str,
        plain: String,
        html: String,
    ) -> Result<(), RemoteError> {
        let permanent = |error: String| RemoteError::Permanent { error };
        let from: Mailbox = self
            .config
            .from
            .parse()
            .map_err(|e| permanent(format!("from: {e}")))?;
        let mut b = Message::builder().from(from).subject(subject);
        for to in &route.to {
            b = b.to(to.parse().map_err(|e| permanent(format!("to {to}: {e}")))?);
        }
        let message = b
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| permanent(format!("composing the mail: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| classify(&e))
    }

    /// After a send: rows done and the tickets' timelines told, or rows put off (returns until
    /// when), or (a refusal that would repeat) rows dropped with the reason on the timelines.
    async fn settle(
        &self,
        ctx: &FeedContext,
        route: &Route,
        entries: &[OutboxEntry],
        tickets: &[i64],
        outcome: Result<(), RemoteError>,
        digest: bool,
    ) -> Result<Option<i64>, StoreError> {
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let to = route.to.join(", ");
        match outcome {
            Ok(()) => {
                ctx.store.email_done(&ids).await?;
                ctx.status.delivered(&self.feed);
                crate::telemetry::feed_delivered(&self.feed);
                tracing::info!(
                    feed = self.feed,
                    route = route.name,
                    mails = 1,
                    events = ids.len(),
                    digest,
                    "e-mail sent"
                );
                let note = if digest {
                    format!("In the e-mail digest to {to} (route {})", route.name)
                } else {
                    format!("E-mailed to {to} (route {})", route.name)
                };
                for t in tickets {
                    self.note(&ctx.store, *t, &note).await?;
                }
                Ok(None)
            }
            Err(RemoteError::Transient { error, retry_after }) => {
                ctx.status.failed(&self.feed, &error);
                crate::telemetry::feed_failed(&self.feed);
                let attempts = entries.iter().map(|e| e.attempts).max().unwrap_or(0);
                let delay = crate::feeds::webhook::retry_delay(
                    self.config.retry_initial,
                    self.config.retry_max,
                    attempts,
                    0.5 + fastrand::f64(),
                    retry_after,
                );
                tracing::warn!(feed = self.feed, route = route.name, %error, retry_in_ms = delay.as_millis(), "e-mail not sent; will retry");
                let at = (self.clock)()
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                ctx.store
                    .reschedule_email(&ids, at, attempts.saturating_add(1))
                    .await?;
                Ok(Some(at))
            }
            Err(RemoteError::Permanent { error }) => {
                ctx.status.failed(&self.feed, &error);
                crate::telemetry::feed_failed(&self.feed);
                tracing::error!(feed = self.feed, route = route.name, %error, "the SMTP relay refused an e-mail; it is dropped");
                ctx.store.email_done(&ids).await?;
                let note = format!("E-mail to {to} refused: {error}");
                for t in tickets {
                    self.note(&ctx.store, *t, &note).await?;
                }
                Ok(None)
            }
        }
    }

    /// A note on a ticket's timeline by the mailer (mailed to no one).
    async fn note(&self, store: &Store, ticket: i64, text: &str) -> Result<(), StoreError> {
        super::sync::note(store, ticket, &self.actor, text, &self.sla).await
    }
}

/// An SMTP failure classified: a 4xx answer, a timeout, a broken connection or a failed TLS
/// handshake (a relay restarting looks like a certificate refused, so the mail is kept and
/// the failure shows in `feeds list` and the metrics) is worth another attempt; a 5xx answer
/// (recipient refused, authentication failed) or a mail the client cannot build would repeat.
fn classify(e: &lettre::transport::smtp::Error) -> RemoteError {
    let error = crate::feeds::http::error_chain(e);
    if e.is_permanent() || e.is_client() {
        RemoteError::Permanent { error }
    } else {
        RemoteError::Transient {
            error,
            retry_after: None,
        }
    }
}

/// What an event is called in a subject.
fn headline(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Opened => "Opened",
        EventKind::Priority => "Priority raised",
        EventKind::Escalated => "Escalated",
        EventKind::Reopened => "Reopened",
        EventKind::Resolved => "Resolved",
        EventKind::Closed => "Closed",
        EventKind::Acknowledged => "Acknowledged",
        EventKind::Assigned => "Assigned",
        EventKind::Comment => "Comment",
        _ => "Update",
    }
}

/// One event's mail: subject, plain text, HTML.
pub fn compose_one(view: &TicketView, e: &TicketEvent) -> (String, String, String) {
    let t = &view.ticket;
    let key = format!("[firstline #{}]", t.id);
    let subject = format!(
        "[{}] {}: {}",
        priority_name(t.priority),
        headline(e.kind),
        render::subject(view, &key)
    );
    let mut plain = render::comment(view, e);
    plain.push_str("\n\n");
    if e.kind == EventKind::Opened {
        plain.push_str(&render::create_body(view));
    } else {
        let _ = writeln!(plain, "Ticket: #{} {}", t.id, t.title);
        let _ = writeln!(plain, "Host: {}", t.hostname);
        let _ = writeln!(plain, "State: {}", t.state.as_str());
        if !view.dashboard_url.is_empty() {
            let _ = writeln!(plain, "Dashboard: {}/tickets/{}", view.dashboard_url, t.id);
        }
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{} {}</h2>",
        escape(&priority_name(t.priority)),
        escape(&t.title)
    );
    let _ = write!(
        html,
        "<p><b>{}</b>: {}</p>",
        headline(e.kind),
        escape(&render::comment(view, e))
    );
    let _ = write!(html, "<table>");
    let host = if t.agent_id == FLEET {
        "fleet"
    } else {
        &t.hostname
    };
    for (k, v) in [
        ("Ticket", format!("#{}", t.id)),
        ("Host", host.to_owned()),
        ("Rule", t.rule_id.clone()),
        ("State", t.state.as_str().to_owned()),
        ("Opened", rfc3339(t.opened_at_ms)),
        ("Occurrences", t.occurrences.to_string()),
    ] {
        let _ = write!(
            html,
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            escape(&v)
        );
    }
    let _ = write!(html, "</table>");
    if !view.linked.is_empty() {
        let _ = write!(html, "<p>Affected hosts ({}):</p><ul>", view.linked.len());
        for h in view.linked.iter().take(200) {
            let _ = write!(html, "<li>{}</li>", escape(&h.hostname));
        }
        let _ = write!(html, "</ul>");
    }
    if !view.kb_markdown.trim().is_empty() {
        let _ = write!(
            html,
            "<h3>What to do</h3><pre>{}</pre>",
            escape(view.kb_markdown.trim())
        );
    }
    if !view.dashboard_url.is_empty() {
        let link = format!("{}/tickets/{}", view.dashboard_url, t.id);
        let _ = write!(
            html,
            "<p><a href=\"{}\">Open in Firstline</a></p>",
            escape(&link)
        );
    }
    html.push_str("</body></html>");
    (subject, plain, html)
}

/// A route's digest: one line per event, grouped by ticket order of arrival.
pub fn compose_digest(
    route: &str,
    items: &[(TicketView, TicketEvent)],
) -> (String, String, String) {
    let mut tickets: Vec<i64> = items.iter().map(|(v, _)| v.ticket.id).collect();
    tickets.sort_unstable();
    tickets.dedup();
    let subject = format!(
        "Firstline digest: {} update{} on {} ticket{} (route {route})",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        tickets.len(),
        if tickets.len() == 1 { "" } else { "s" },
    );
    let mut plain = String::new();
    let mut html =
        String::from("<!doctype html><html><body style=\"font-family:sans-serif\"><table>");
    let _ = writeln!(
        html,
        "<tr><th>Priority</th><th>Ticket</th><th>Event</th><th>Host</th><th>At</th></tr>"
    );
    for (view, e) in items.iter().take(MAX_DIGEST_LINES) {
        let t = &view.ticket;
        let line = format!(
            "[{}] #{} {}: {} on {} at {}",
            priority_name(t.priority),
            t.id,
            headline(e.kind),
            t.title,
            t.hostname,
            rfc3339(e.at_ms)
        );
        let _ = writeln!(plain, "{line}");
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>#{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&priority_name(t.priority)),
            t.id,
            escape(&t.title),
            headline(e.kind),
            escape(&t.hostname),
            escape(&rfc3339(e.at_ms))
        );
    }
    if items.len() > MAX_DIGEST_LINES {
        let _ = writeln!(plain, "and {} more", items.len() - MAX_DIGEST_LINES);
    }
    html.push_str("</table></body></html>");
    (subject, plain, html)
}

/// Text for HTML.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    /// 2026-12-04T00:00:00Z.
    const MIDNIGHT: i64 = 1_796_342_400_000;

    #[test]
    fn quiet_hours_spanning_midnight_end_in_the_morning() {
        let q = parse_quiet_hours("22:00-07:00").expect("valid");
        assert_eq!(quiet_until(q, 0, MIDNIGHT + 12 * HOUR), None);
        assert_eq!(
            quiet_until(q, 0, MIDNIGHT + 23 * HOUR),
            Some(MIDNIGHT + 31 * HOUR)
        );
        assert_eq!(
            quiet_until(q, 0, MIDNIGHT + 3 * HOUR),
            Some(MIDNIGHT + 7 * HOUR)
        );
        assert_eq!(quiet_until(q, 0, MIDNIGHT + 7 * HOUR), None);
        // In UTC+01:00, 22:00 local is 21:00 UTC.
        assert_eq!(
            quiet_until(q, 60, MIDNIGHT + 21 * HOUR),
            Some(MIDNIGHT + 30 * HOUR)
        );
        assert_eq!(quiet_until(q, 60, MIDNIGHT + 20 * HOUR), None);
    }

    #[test]
    fn quiet_hours_within_a_day() {
        let q = parse_quiet_hours("12:00-13:30").expect("valid");
        assert_eq!(
            quiet_until(q, 0, MIDNIGHT + 12 * HOUR),
            Some(MIDNIGHT + 13 * HOUR + HOUR / 2)
        );
        assert_eq!(quiet_until(q, 0, MIDNIGHT + 14 * HOUR), None);
    }

    #[test]
    fn bad_quiet_hours_and_offsets_are_refused() {
        assert!(parse_quiet_hours("22-07").is_err());
        assert!(parse_quiet_hours("25:00-07:00").is_err());
        assert!(parse_quiet_hours("07:00-07:00").is_err());
        assert_eq!(parse_offset("+05:30"), Ok(330));
        assert_eq!(parse_offset("-01:00"), Ok(-60));
        assert!(parse_offset("0100").is_err());
        assert!(parse_offset("+01:-30").is_err());
        assert!(parse_offset("+-5:00").is_err());
    }

    #[test]
    fn digests_go_at_multiples_of_the_interval_after_local_midnight() {
        let h = Duration::from_secs(3600);
        assert_eq!(
            next_digest(h, 0, MIDNIGHT + 10 * HOUR + 1),
            MIDNIGHT + 11 * HOUR
        );
        assert_eq!(
            next_digest(h, 0, MIDNIGHT + 10 * HOUR),
            MIDNIGHT + 11 * HOUR
        );
        let day = Duration::from_secs(86_400);
        assert_eq!(
            next_digest(day, 60, MIDNIGHT + 10 * HOUR),
            MIDNIGHT + 23 * HOUR
        );
        // 7 h does not divide the day: the last digest of a day is at midnight.
        let seven = Duration::from_secs(7 * 3600);
        assert_eq!(
            next_digest(seven, 0, MIDNIGHT + 22 * HOUR),
            MIDNIGHT + 24 * HOUR
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
