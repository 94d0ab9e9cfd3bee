//! The Alertmanager feed against a real Prometheus Alertmanager (API v2, its own storage,
//! clustering off, a route to a webhook receiver the test runs) and a real collector process:
//! an open ticket is an active alert with the ticket's labels; once the ticket resolves the
//! alert ends at the resolution time (also when it resolved while the feed was not running);
//! and an Alertmanager silence is respected: the silenced alert is `suppressed` and never
//! notified, while an unsilenced one in the same group is.

use std::time::Duration;

use firstline_collector::feeds::payload::rfc3339;
use firstline_proto::v1::admin_client::AdminClient;
use firstline_proto::v1::{Ticket, TicketAction};
use firstline_tests::admin;
use firstline_tests::feedlab::{Alertmanager, HookReceiver, TestHost, act};
use firstline_tests::procs::CollectorProc;
use firstline_tests::{wait_for, wait_until};
use serde_json::Value;
use tonic::transport::Channel;

/// A safety net against hangs, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(90);
/// A refresh slow enough that the pushed alert cannot lapse (4 × 30 s) while the collector
/// is restarted twice: its end can only come from the resolution in the log.
const LONG_RESEND: &str = "30s";

/// The feed's configuration, refreshing every `resend` (its alerts lapse after 4 × that).
fn feed_config(am: &Alertmanager, resend: &str) -> String {
    format!(
        "[[feeds.alertmanager]]\nname = \"am\"\nurl = {:?}\nresend = {resend:?}\n",
        am.url()
    )
}

/// The alert Alertmanager holds for ticket `id`, if any.
fn alert_of(am: &Alertmanager, id: i64) -> Option<Value> {
    let ticket = id.to_string();
    am.alerts()
        .into_iter()
        .find(|a| a["labels"]["ticket"].as_str() == Some(ticket.as_str()))
}

/// The one ticket of `host`, as it is now.
async fn ticket_of(client: &mut AdminClient<Channel>, host: &TestHost) -> Ticket {
    let tickets = admin::list_tickets(client, &host.identity.agent_id).await;
    assert_eq!(tickets.len(), 1, "one ticket of {}: {tickets:?}", host.name);
    tickets[0].clone()
}

/// Alerts of every notification the receiver got, with the notification's status.
fn notified(hook: &HookReceiver) -> Vec<Value> {
    hook.received()
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// An RFC 3339 time without trailing zeros in its fraction (Go writes `.85Z` for `.850Z`).
fn instant(text: &str) -> String {
    match text.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((whole, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{frac}Z")
            }
        }
        None => text.to_owned(),
    }
}

/// Waits until the receiver was notified of ticket `id`'s alert firing (Alertmanager only
/// sends a resolution for an alert it notified).
fn until_notified_firing(hook: &HookReceiver, id: i64) {
    let id = id.to_string();
    wait_until(
        "the firing notification",
        LIMIT,
        || hook.received(),
        |all| {
            all.iter()
                .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
                .any(|a| {
                    a["labels"]["ticket"].as_str() == Some(id.as_str()) && a["status"] == "firing"
                })
        },
    );
}

/// Waits for the resolved notification of ticket `id` and checks it ended when the ticket
/// resolved (not when a lapse would have ended it).
fn assert_ended_at_resolution(hook: &HookReceiver, ticket: &Ticket) {
    let id = ticket.id.to_string();
    let is_it = |a: &Value| {
        a["labels"]["ticket"].as_str() == Some(id.as_str()) && a["status"] == "resolved"
    };
    let seen = wait_until(
        "the resolved notification",
        LIMIT,
        || hook.received(),
        |all| {
            all.iter()
                .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
                .any(|a| is_it(&a))
        },
    );
    let resolved = seen
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| is_it(a))
        .unwrap_or_default();
    assert!(ticket.resolved_at_ms > 0, "{ticket:?}");
    assert_eq!(
        instant(resolved["endsAt"].as_str().unwrap_or_default()),
        instant(&rfc3339(ticket.resolved_at_ms)),
        "{resolved:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_ticket_is_an_active_alert_until_it_resolves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookReceiver::start();
    let am = Alertmanager::start(&dir.path().join("am"), &hook.url());
    let collector = CollectorProc::start(dir.path(), &feed_config(&am, "2s"));
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    let mut host = TestHost::enroll(&collector, &dir.path().join("hosts"), "pc-am").await;
    host.report_disk(93).await;
    let ticket = ticket_of(&mut client, &host).await;

    let alert = wait_until(
        "the ticket's alert to be active",
        LIMIT,
        || alert_of(&am, ticket.id),
        |a| a.as_ref().is_some_and(|a| a["status"]["state"] == "active"),
    )
    .unwrap_or_default();
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], ticket.rule_id.as_str(), "{alert:#}");
    assert_eq!(labels["rule"], ticket.rule_id.as_str());
    assert_eq!(labels["host"], "pc-am");
    assert_eq!(labels["instance"], "pc-am");
    assert_eq!(labels["priority"], format!("P{}", ticket.priority).as_str());
    assert_eq!(labels["agent_id"], host.identity.agent_id.as_str());
    assert_eq!(labels["subject"], "/");
    assert_eq!(alert["annotations"]["summary"], ticket.title.as_str());
    assert_eq!(
        instant(alert["startsAt"].as_str().unwrap_or_default()),
        instant(&rfc3339(ticket.opened_at_ms))
    );

    // `feeds test` asks Alertmanager for its status.
    let out = collector.cli(&["feeds", "test", "alertmanager:am"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("Alertmanager 0.") && said.contains("disabled"),
        "feeds test: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    until_notified_firing(&hook, ticket.id);
    act(&mut client, ticket.id, TicketAction::Resolve, "freed space")
        .await
        .expect("resolve");
    wait_for("the alert to end", LIMIT, || {
        alert_of(&am, ticket.id).is_none().then_some(())
    });
    let resolved = ticket_of(&mut client, &host).await;
    assert_ended_at_resolution(&hook, &resolved);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_resolved_while_the_feed_was_not_running_ends_at_its_resolution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookReceiver::start();
    let am = Alertmanager::start(&dir.path().join("am"), &hook.url());
    let hosts = dir.path().join("hosts");
    let mut collector = CollectorProc::start(dir.path(), &feed_config(&am, LONG_RESEND));
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    let mut host = TestHost::enroll(&collector, &hosts, "pc-later").await;
    host.report_disk(93).await;
    let ticket = ticket_of(&mut client, &host).await;
    wait_until(
        "the ticket's alert to be active",
        LIMIT,
        || alert_of(&am, ticket.id),
        |a| a.as_ref().is_some_and(|a| a["status"]["state"] == "active"),
    );
    until_notified_firing(&hook, ticket.id);
    collector.stop();

    // The same store without the feed: the ticket resolves while nothing pushes.
    let mut without = CollectorProc::start(dir.path(), "");
    let mut client = admin::connect(&without.url(), &without.data_dir).await;
    act(
        &mut client,
        ticket.id,
        TicketAction::Resolve,
        "fixed meanwhile",
    )
    .await
    .expect("resolve");
    let resolved = ticket_of(&mut client, &host).await;
    without.stop();

    let _back = CollectorProc::start(dir.path(), &feed_config(&am, LONG_RESEND));
    assert_ended_at_resolution(&hook, &resolved);
    assert!(alert_of(&am, ticket.id).is_none(), "{:#?}", am.alerts());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silenced_alert_is_suppressed_and_never_notified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookReceiver::start();
    let am = Alertmanager::start(&dir.path().join("am"), &hook.url());
    let silence = am.silence("host", "pc-quiet");
    let collector = CollectorProc::start(dir.path(), &feed_config(&am, "2s"));
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    let hosts = dir.path().join("hosts");

    let mut quiet = TestHost::enroll(&collector, &hosts, "pc-quiet").await;
    quiet.report_disk(93).await;
    let quiet_ticket = ticket_of(&mut client, &quiet).await;
    let alert = wait_until(
        "the silenced alert to be suppressed",
        LIMIT,
        || alert_of(&am, quiet_ticket.id),
        |a| {
            a.as_ref()
                .is_some_and(|a| a["status"]["state"] == "suppressed")
        },
    )
    .unwrap_or_default();
    assert_eq!(
        alert["status"]["silencedBy"],
        serde_json::json!([silence]),
        "{alert:#}"
    );

    // An unsilenced alert of the same rule (the same Alertmanager group) is notified; the
    // silenced one is not in any notification.
    let mut loud = TestHost::enroll(&collector, &hosts, "pc-loud").await;
    loud.report_disk(93).await;
    wait_for("the unsilenced alert's notification", LIMIT, || {
        notified(&hook)
            .iter()
            .any(|a| a["labels"]["host"] == "pc-loud" && a["status"] == "firing")
            .then_some(())
    });
    let leaked: Vec<Value> = notified(&hook)
        .into_iter()
        .filter(|a| a["labels"]["host"] == "pc-quiet")
        .collect();
    assert!(
        leaked.is_empty(),
        "the silenced alert was notified: {leaked:#?}"
    );
    let still = alert_of(&am, quiet_ticket.id).unwrap_or_default();
    assert_eq!(still["status"]["state"], "suppressed", "{still:#}");
}
