//! E-mail notifications against a real SMTP server (aiosmtpd, STARTTLS and AUTH required,
//! `tests/src/smtp_sink.rs`): routing by priority, rule and label, the digest of low
//! priorities, quiet hours during which only P1 goes out at once, silences, the timeline
//! notes, and a refusal (a wrong password) noted rather than retried. The tickets come from
//! real reports to an in-process collector; the mailer runs on an injected clock, so a day's
//! worth of digest times and quiet hours pass in seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use firstline_collector::clock::now_ms;
use firstline_collector::feeds::{FeedContext, StatusBoard};
use firstline_collector::helpdesk::config::{HelpdeskConfig, RawHelpdesk};
use firstline_collector::helpdesk::email::{EmailConfig, Mailer};
use firstline_collector::store::{Matcher, Store};
use firstline_collector::tickets::TicketAction;
use firstline_tests::inproc::{InProcess, report_disk_as};
use firstline_tests::smtp_sink::{Mail, SmtpSink};
use tokio_util::sync::CancellationToken;

const HOUR: i64 = 3_600_000;
/// 2026-12-04T00:00:00Z: the injected clock's day.
const DAY: i64 = 1_796_342_400_000;

fn email_config(sink: &SmtpSink, password: &str) -> EmailConfig {
    configured(sink, password, "quiet_hours = \"22:00-07:00\"\n")
}

fn configured(sink: &SmtpSink, password: &str, extra: &str) -> EmailConfig {
    let text = format!(
        "[email]\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\nca_file = {ca:?}\n\
         user = \"firstline\"\npassword = {password:?}\nfrom = \"Firstline <firstline@example.com>\"\n\
         {extra}utc_offset = \"+00:00\"\nquiet_bypass = 1\ndigest_every = \"1h\"\n\
         dashboard_url = \"https://firstline.example.com\"\nretry_initial = \"1s\"\n\
         [[email.route]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\nmax_priority = 2\n\
         [[email.route]]\nname = \"desk\"\nto = [\"desk@example.com\", \"lead@example.com\"]\ndigest_priorities = [3, 4]\n\
         [[email.route]]\nname = \"db-team\"\nto = [\"db@example.com\"]\nlabels = [\"db\"]\n\
         [[email.route]]\nname = \"patching\"\nto = [\"patch@example.com\"]\nrules = [\"patch.security\"]\n",
        port = sink.port,
        ca = sink.ca_file.display().to_string(),
    );
    let raw: RawHelpdesk = toml::from_str(&text).expect("valid toml");
    let mut problems = Vec::new();
    let config = HelpdeskConfig::from_raw(raw, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    config.email.expect("e-mail configured")
}

/// A mailer on a clock the test moves.
struct Clocked {
    mailer: Mailer,
    clock: Arc<AtomicI64>,
    ctx: FeedContext,
    cursor: i64,
    _duty: tokio::sync::watch::Sender<bool>,
}

impl Clocked {
    fn new(config: EmailConfig, store: &Store, at: i64) -> Self {
        Self::correlating(config, store, at, vec!["connectivity.failure".into()])
    }

    fn correlating(config: EmailConfig, store: &Store, at: i64, correlated: Vec<String>) -> Self {
        let clock = Arc::new(AtomicI64::new(at));
        let read = clock.clone();
        let sla = firstline_collector::config::Config::default().engine.sla;
        let mailer = Mailer::new(config, sla, correlated, None)
            .expect("mailer")
            .with_clock(Arc::new(move || read.load(Ordering::SeqCst)));
        let (duty, rx) = tokio::sync::watch::channel(true);
        let ctx = FeedContext::new(
            store.clone(),
            rx,
            Arc::new(StatusBoard::default()),
            CancellationToken::new(),
        );
        Self {
            mailer,
            clock,
            ctx,
            cursor: 0,
            _duty: duty,
        }
    }

    fn set(&self, at: i64) {
        self.clock.store(at, Ordering::SeqCst);
    }

    async fn round(&mut self) {
        self.mailer
            .round(&self.ctx, &mut self.cursor)
            .await
            .expect("a round of the mailer");
    }
}

/// The mails after the first `seen`, as `(first recipient, subject)`, sorted.
fn new_mails(sink: &SmtpSink, seen: &mut usize) -> Vec<Mail> {
    let all = sink.mails();
    let out = all[*seen..].to_vec();
    *seen = all.len();
    out
}

fn summary(mails: &[Mail]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = mails
        .iter()
        .map(|m| (m.to.join(","), m.subject.clone()))
        .collect();
    out.sort();
    out
}

async fn ticket_of(store: &Store, host: &str) -> i64 {
    store
        .list_tickets(&Default::default())
        .await
        .expect("tickets")
        .into_iter()
        .find(|t| t.hostname == host)
        .unwrap_or_else(|| panic!("no ticket of {host}"))
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_routed_digested_held_in_quiet_hours_and_noted() {
    let sink = SmtpSink::start("firstline", "mail-pass");
    // Disk tickets open as P3 here (P1 past 95%), so one rule gives both a digested and an
    // urgent priority.
    let collector = InProcess::start_configured(|c| {
        for r in &mut c.engine.rules {
            if r.id == "disk.usage" {
                r.priority = 3;
            }
        }
    })
    .await;
    let store = collector.store.clone();
    let mut m = Clocked::new(email_config(&sink, "mail-pass"), &store, DAY + 12 * HOUR);
    let mut seen = 0;

    // 12:00: web-1 at 97% (P1) and db-1 (label db) at 93% (P3).
    collector.report_disk("web-1", 97).await;
    let db = collector.enroll_labelled("db-1", &["db"]).await;
    report_disk_as(&db, "db-1", 93).await;
    m.round().await;
    let mails = new_mails(&sink, &mut seen);
    let (web1, db1) = (
        ticket_of(&store, "web-1").await,
        ticket_of(&store, "db-1").await,
    );
    assert_eq!(
        summary(&mails),
        [
            (
                "db@example.com".to_owned(),
                format!("[P3] Opened: Disk / on db-1 is 93.0% full [firstline #{db1}]")
            ),
            (
                "desk@example.com,lead@example.com".to_owned(),
                format!("[P1] Opened: Disk / on web-1 is 97.0% full [firstline #{web1}]")
            ),
            (
                "oncall@example.com".to_owned(),
                format!("[P1] Opened: Disk / on web-1 is 97.0% full [firstline #{web1}]")
            ),
        ],
        "P1 to oncall and desk at once, P3 of a db host to db-team at once and to desk's \
         digest, nothing to the patching route"
    );
    let oncall = mails
        .iter()
        .find(|m| m.to == ["oncall@example.com"])
        .expect("valid");
    assert!(oncall.tls, "sent after STARTTLS");
    assert_eq!(oncall.user, "firstline");
    assert_eq!(oncall.from, "firstline@example.com");
    assert!(oncall.plain.contains("Host: web-1"), "{}", oncall.plain);
    assert!(
        oncall
            .plain
            .contains(&format!("https://firstline.example.com/tickets/{web1}"))
    );
    assert!(
        oncall.html.contains("<table>") && oncall.html.contains("web-1"),
        "{}",
        oncall.html
    );
    assert!(oncall.html.contains("Open in Firstline"));

    // 12:59: the digest is not due yet; 13:00: desk's digest lists db-1.
    m.set(DAY + 13 * HOUR - 60_000);
    m.round().await;
    assert!(new_mails(&sink, &mut seen).is_empty());
    m.set(DAY + 13 * HOUR);
    m.round().await;
    let mails = new_mails(&sink, &mut seen);
    assert_eq!(
        summary(&mails),
        [(
            "desk@example.com,lead@example.com".to_owned(),
            "Firstline digest: 1 update on 1 ticket (route desk)".to_owned()
        )]
    );
    assert!(
        mails[0].plain.contains(&format!("[P3] #{db1} Opened:")),
        "{}",
        mails[0].plain
    );

    // 23:00, quiet hours: web-2 at 93% (P3) waits for the morning; web-3 at 97% (P1) goes at
    // once.
    m.set(DAY + 23 * HOUR);
    collector.report_disk("web-2", 93).await;
    collector.report_disk("web-3", 97).await;
    m.round().await;
    let web3 = ticket_of(&store, "web-3").await;
    assert_eq!(
        summary(&new_mails(&sink, &mut seen)),
        [
            (
                "desk@example.com,lead@example.com".to_owned(),
                format!("[P1] Opened: Disk / on web-3 is 97.0% full [firstline #{web3}]")
            ),
            (
                "oncall@example.com".to_owned(),
                format!("[P1] Opened: Disk / on web-3 is 97.0% full [firstline #{web3}]")
            ),
        ]
    );
    // Midnight's digest falls in quiet hours: still nothing at 06:59.
    m.set(DAY + 31 * HOUR - 60_000);
    m.round().await;
    assert!(new_mails(&sink, &mut seen).is_empty());
    // 07:00: the digest with web-2.
    m.set(DAY + 31 * HOUR);
    m.round().await;
    let web2 = ticket_of(&store, "web-2").await;
    let mails = new_mails(&sink, &mut seen);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].plain.contains(&format!("#{web2} Opened")),
        "{}",
        mails[0].plain
    );

    // A resolution is mailed to the routes of the ticket.
    let sla = firstline_collector::config::Config::default().engine.sla;
    let mut tx = store.begin_write().await.expect("tx");
    tx.ticket_action(
        web1,
        &TicketAction::Resolve("cleaned up".into()),
        "alice",
        now_ms(),
        &sla,
    )
    .await
    .expect("resolve");
    tx.commit().await.expect("commit");
    m.round().await;
    let mails = new_mails(&sink, &mut seen);
    assert_eq!(
        summary(&mails)
            .iter()
            .map(|(to, s)| (to.as_str(), s.starts_with("[P1] Resolved:")))
            .collect::<Vec<_>>(),
        [
            ("desk@example.com,lead@example.com", true),
            ("oncall@example.com", true)
        ]
    );

    // A silence over a host: its ticket is mailed to no one.
    let clock = DAY + 31 * HOUR;
    store
        .create_silence(
            &Matcher::Host("web-4".into()),
            clock - HOUR,
            clock + HOUR,
            "patching",
            "alice",
        )
        .await
        .expect("silence");
    collector.report_disk("web-4", 97).await;
    m.round().await;
    assert!(
        new_mails(&sink, &mut seen).is_empty(),
        "a silenced host's ticket was mailed"
    );

    // The timeline says who was mailed.
    let timeline = store.timeline(web1).await.expect("timeline");
    let notes: Vec<&str> = timeline
        .iter()
        .filter(|e| e.actor == "helpdesk:email")
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        notes.contains(&"E-mailed to oncall@example.com (route oncall)"),
        "{notes:?}"
    );
    let timeline = store.timeline(db1).await.expect("timeline");
    assert!(
        timeline.iter().any(|e| e.detail
            == "In the e-mail digest to desk@example.com, lead@example.com (route desk)"),
        "{timeline:#?}"
    );

    // A wrong password is a refusal that would repeat: noted on the ticket, not retried.
    let mut wrong = Clocked::new(email_config(&sink, "not-the-password"), &store, clock);
    wrong.cursor = m.cursor;
    collector.report_disk("web-5", 97).await;
    wrong.round().await;
    assert!(new_mails(&sink, &mut seen).is_empty());
    let web5 = ticket_of(&store, "web-5").await;
    let refused: Vec<String> = store
        .timeline(web5)
        .await
        .expect("timeline")
        .into_iter()
        .filter(|e| e.actor == "helpdesk:email")
        .map(|e| e.detail)
        .collect();
    assert_eq!(refused.len(), 2, "one note per route: {refused:#?}");
    assert!(
        refused
            .iter()
            .all(|n| n.contains("refused") && n.contains("535")),
        "{refused:#?}"
    );
    assert_eq!(
        store.email_backlog().await.expect("backlog"),
        0,
        "dropped, not retried"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_one_mail_not_one_per_host() {
    let sink = SmtpSink::start("firstline", "mail-pass");
    let collector = InProcess::start_configured(|c| {
        c.engine.correlation.rules = vec!["disk.usage".into()];
        c.engine.correlation.min_hosts = 3;
    })
    .await;
    let store = collector.store.clone();
    let start = now_ms();
    let mut m = Clocked::correlating(
        configured(&sink, "mail-pass", "correlated_hold = \"1m\"\n"),
        &store,
        start,
        vec!["disk.usage".into()],
    );
    let mut seen = 0;
    for host in ["pc-1", "pc-2", "pc-3"] {
        collector.report_disk(host, 97).await;
    }
    m.round().await;
    let mails = new_mails(&sink, &mut seen);
    // The outage's ticket goes at once; the hosts' tickets wait for the hold...
    let tickets = store
        .list_tickets(&Default::default())
        .await
        .expect("tickets");
    let events = store
        .events_since(0, &Default::default(), 100)
        .await
        .expect("events");
    let backlog = store.email_backlog().await.expect("backlog");
    assert!(
        !mails.is_empty(),
        "the outage was not mailed; backlog {backlog}, events {:#?}; tickets: {:#?}",
        events
            .iter()
            .map(|a| (
                a.event.cursor,
                a.ticket.id,
                a.event.kind,
                a.event.actor.clone()
            ))
            .collect::<Vec<_>>(),
        tickets
            .iter()
            .map(|t| (
                t.id,
                t.hostname.clone(),
                t.parent_id,
                t.linked_hosts,
                t.priority
            ))
            .collect::<Vec<_>>()
    );
    assert!(
        mails.iter().all(|m| !m.subject.contains("pc-")),
        "a host ticket was mailed during the hold: {:#?}",
        summary(&mails)
    );
    // ...and once they are part of the outage, they are not mailed at all.
    m.set(start + 2 * 60_000);
    m.round().await;
    let later = new_mails(&sink, &mut seen);
    assert!(later.is_empty(), "{:#?}", summary(&later));
    assert_eq!(store.email_backlog().await.expect("backlog"), 0);
    let tickets = store
        .list_tickets(&Default::default())
        .await
        .expect("tickets");
    let outage = tickets
        .iter()
        .find(|t| t.linked_hosts == 3)
        .expect("an outage of three hosts");
    assert!(
        mails
            .iter()
            .all(|m| m.subject.contains(&format!("[firstline #{}]", outage.id))),
        "{:#?}",
        summary(&mails)
    );
    assert!(
        mails
            .iter()
            .any(|m| m.plain.contains("pc-1") && m.plain.contains("pc-3"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waits_while_the_relay_is_away_and_goes_when_it_is_back() {
    let mut sink = SmtpSink::start("firstline", "mail-pass");
    let collector = InProcess::start().await;
    let store = collector.store.clone();
    let at = DAY + 12 * HOUR;
    let mut m = Clocked::new(email_config(&sink, "mail-pass"), &store, at);
    let mut seen = 0;
    sink.stop();
    collector.report_disk("web-1", 97).await;
    m.round().await;
    // Two mails (oncall and desk) wait; neither was dropped nor noted as refused.
    assert_eq!(store.email_backlog().await.expect("backlog"), 2);
    let web1 = ticket_of(&store, "web-1").await;
    let notes: Vec<String> = store
        .timeline(web1)
        .await
        .expect("timeline")
        .into_iter()
        .filter(|e| e.actor == "helpdesk:email")
        .map(|e| e.detail)
        .collect();
    assert!(notes.is_empty(), "{notes:#?}");
    // Not yet due again: nothing is tried.
    m.round().await;
    sink.start_again();
    m.set(at + 60_000);
    m.round().await;
    let mails = new_mails(&sink, &mut seen);
    assert_eq!(
        summary(&mails)
            .iter()
            .map(|(to, _)| to.as_str())
            .collect::<Vec<_>>(),
        ["desk@example.com,lead@example.com", "oncall@example.com"]
    );
    assert_eq!(store.email_backlog().await.expect("backlog"), 0);
}
