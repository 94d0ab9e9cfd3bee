//! Rate limits (`[limits]`) as an operator sees them: an agent over its report limit is told
//! when to come back and nothing of its is stored twice or lost, other agents are unaffected,
//! enrollment calls from one address are limited before any token is looked at, and every
//! refusal is counted in `/metrics`.

use std::time::Duration;

use firstline_agent::identity::Identity;
use firstline_collector::store::CountedTable;
use firstline_tests::inproc::{InProcess, report_one};
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{http_get, wait_for, wait_until};
use tonic::Code;

async fn report(identity: &Identity, seq: u64) -> Result<(), tonic::Status> {
    report_one(identity, seq, "limited").await.map(|_| ())
}

/// The value of `firstline_rate_limited_total{limit="<limit>"}` in a `/metrics` body.
fn refused(metrics: &str, limit: &str) -> f64 {
    let series = format!("firstline_rate_limited_total{{limit=\"{limit}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{metrics}"))
}

fn pushback_ms(status: &tonic::Status) -> u64 {
    status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pushback header: {status:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_and_enrollments_over_their_limits_are_refused_and_counted() {
    let (c, http) = InProcess::start_with_http_configured(|config| {
        config.limits.agent_reports_per_minute = 60;
        config.limits.agent_report_burst = 2;
        config.limits.enrollments_per_minute_per_ip = 3;
    })
    .await;
    let metrics = || http_get(http, "/metrics").expect("GET /metrics").1;
    let before = metrics();

    let a = c.enroll("pc-a").await; // enrollment call 1
    report(&a, 1).await.expect("first report");
    report(&a, 2)
        .await
        .expect("second report, within the burst");
    let status = report(&a, 3).await.expect_err("over the burst");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("limits.agent_reports"),
        "{status:?}"
    );
    let wait = pushback_ms(&status);
    assert!((1..=1000).contains(&wait), "one report a second: {wait}");
    assert_eq!(
        c.store
            .count_rows(CountedTable::Snapshots)
            .await
            .expect("count"),
        2,
        "the refused report stored nothing"
    );
    // Another agent has a limit of its own.
    let b = c.enroll("pc-b").await; // enrollment call 2
    report(&b, 1).await.expect("another agent reports");
    // After the wait, the limited agent is taken again.
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    report(&a, 3).await.expect("after the pushback");

    // Enrollment: limited by address before the token is even looked at.
    let status = c
        .enroll_with("not-a-token", "pc-c")
        .await
        .expect_err("unknown token"); // call 3
    assert!(
        format!("{status:?}").contains("not known"),
        "the third call is judged on its token: {status:?}"
    );
    let status = match c.enroll_with("not-a-token", "pc-d").await {
        Err(firstline_agent::enroll::EnrollError::Refused(status)) => status,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("too many enrollment calls"),
        "{status:?}"
    );
    assert!(pushback_ms(&status) > 0);

    let after = metrics();
    for limit in ["agent_reports", "enrollments_per_ip"] {
        assert!(
            refused(&after, limit) >= refused(&before, limit) + 1.0,
            "{limit} refusals are counted"
        );
    }
    // The global limit is off by default, and its series is there from the start.
    refused(&after, "reports");
}

#[test]
fn an_agent_over_its_limit_waits_as_told_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One report every 5 s for an agent that takes a snapshot every second.
    let collector = CollectorProc::start(
        dir.path(),
        "[report]\nheartbeat = \"1s\"\n[limits]\nagent_reports_per_minute = 12\nagent_report_burst = 1\n",
    );
    let mut agent = AgentProc::new(dir.path(), "");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    wait_until(
        "the agent to be told to wait",
        Duration::from_secs(60),
        || agent.log(),
        |log| log.contains("collector busy; sending again when it asked"),
    );
    let taken = agent.status()["last_seq"].as_u64().expect("last_seq");
    // Everything taken so far arrives, in the batches the limit allows.
    let stored = wait_for(
        "the spooled snapshots to arrive",
        Duration::from_secs(60),
        || collector.host_last_seq(&agent_id).filter(|s| *s >= taken),
    );
    assert!(stored >= taken);
    let log = agent.log();
    assert!(
        !log.contains("rejected a snapshot") && !log.contains("retrying until fixed"),
        "a rate limit is neither a rejection nor a failure for a person:\n{log}"
    );
    let status = agent.status();
    assert_eq!(status["rejected_pending"], 0, "{status}");
}
