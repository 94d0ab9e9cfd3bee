//! `firstline-collector check-now HOST`: asks the host's agent, through the running
//! collector's admin API (`Admin/CheckNow`), to run every probe and report now, and prints the
//! answer once the fresh report is stored; the same answer as `POST /api/hosts/{host}/check`.
//! Exits non-zero unless the answer is "done".

use std::time::SystemTime;

use anyhow::{Result, bail};
use firstline_proto::v1;

use super::ReadArgs;
use super::commands::{client, failed, print_json};
use crate::config::Config;
use crate::grpc::live::check_now_from_wire;
use crate::service::CheckNowResult;

pub async fn run(config: &Config, host: &str, read: &ReadArgs) -> Result<()> {
    let mut c = client(config, read).await?;
    let wire = c
        .check_now(v1::CheckNowRequest {
            host: host.to_owned(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    let result = check_now_from_wire(wire);
    if read.json {
        print_json(&result)?;
    } else {
        println!("{}", line(&result));
    }
    if result.status != "done" {
        bail!("{}: {}", who(&result), result.status);
    }
    Ok(())
}

/// The one-line answer.
fn line(r: &CheckNowResult) -> String {
    let who = who(r);
    let now = SystemTime::now();
    let at =
        |ms: Option<i64>| ms.map_or_else(|| "never".to_owned(), |ms| super::output::age(ms, now));
    match r.status {
        "done" => format!(
            "{who}: done in {:.2}s, snapshot taken {}",
            r.seconds,
            at(r.snapshot_at_ms)
        ),
        "offline" => format!("{who}: offline (last seen {})", at(r.last_seen_at_ms)),
        other => format!("{who}: {other}: {}", r.detail),
    }
}

/// The host's name, or its agent id when it never reported one.
fn who(r: &CheckNowResult) -> &str {
    if r.hostname.is_empty() {
        &r.agent_id
    } else {
        &r.hostname
    }
}
