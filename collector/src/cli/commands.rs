//! Commands that talk to the running collector's admin API. Answers come back as gRPC
//! messages and are turned into the domain types (`grpc::convert`), so `--json` prints the
//! same documents as the HTTP API and the tables are drawn from the same fields.

use std::time::SystemTime;

use anyhow::{Result, anyhow, bail};
use firstline_proto::v1::{self, admin_client::AdminClient};
use serde::Serialize;
use tonic::transport::Channel;

use super::{
    EventArgs, HandoffArgs, ReadArgs, SilenceArgs, SilenceCommand, TicketArgs, TicketCommand,
    admin_client, output,
};
use crate::clock::now_ms;
use crate::config::Config;
use crate::grpc::convert;

/// A call's failure in the collector's own words.
pub(super) fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow!("{}", status.message())
}

pub(super) async fn client(config: &Config, args: &ReadArgs) -> Result<AdminClient<Channel>> {
    let url = args
        .collector
        .clone()
        .unwrap_or_else(|| admin_client::default_url(config.grpc_listen));
    Ok(admin_client::connect(&url, &config.data_dir).await?)
}

pub(super) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn hosts(config: &Config, args: &ReadArgs) -> Result<()> {
    let mut c = client(config, args).await?;
    let wire = c
        .list_hosts(v1::ListHostsRequest {})
        .await
        .map_err(failed)?
        .into_inner()
        .hosts;
    let hosts = wire
        .into_iter()
        .map(convert::host_from_wire)
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        print_json(&hosts)
    } else {
        print!("{}", output::hosts_table(&hosts, SystemTime::now()));
        Ok(())
    }
}

pub async fn tickets(config: &Config, args: &TicketArgs) -> Result<()> {
    let mut c = client(config, &args.read).await?;
    let request = v1::ListTicketsRequest {
        state: args.state.clone(),
        agent_id: args.host.clone().unwrap_or_default(),
        limit: args.limit,
    };
    let wire = c.list_tickets(request).await.map_err(failed)?.into_inner();
    let tickets = convert::tickets_from_wire(wire.tickets)?;
    if args.read.json {
        print_json(&tickets)
    } else {
        print!("{}", output::tickets_table(&tickets, SystemTime::now()));
        Ok(())
    }
}

pub async fn ticket(config: &Config, cmd: TicketCommand) -> Result<()> {
    use v1::TicketAction as A;
    let (r, action, text) = match cmd {
        TicketCommand::Show(r) => (r, None, String::new()),
        TicketCommand::Acknowledge(r) => (r, Some(A::Acknowledge), String::new()),
        TicketCommand::Assign { ticket, who } => (ticket, Some(A::Assign), who),
        TicketCommand::Comment { ticket, text } => (ticket, Some(A::Comment), text),
        TicketCommand::Resolve { ticket, reason } => (ticket, Some(A::Resolve), reason),
        TicketCommand::Reopen { ticket, reason } => (ticket, Some(A::Reopen), reason),
        TicketCommand::Close(r) => (r, Some(A::Close), String::new()),
    };
    let mut c = client(config, &r.read).await?;
    let wire = match action {
        None => c.get_ticket(v1::GetTicketRequest { id: r.id }).await,
        Some(a) => {
            c.update_ticket(v1::UpdateTicketRequest {
                id: r.id,
                action: a as i32,
                text,
            })
            .await
        }
    }
    .map_err(failed)?
    .into_inner();
    let detail = convert::detail_from_wire(wire)?;
    if r.read.json {
        print_json(&detail)
    } else {
        print!("{}", output::ticket_detail(&detail, SystemTime::now()));
        Ok(())
    }
}

pub async fn handoff(config: &Config, args: &HandoffArgs) -> Result<()> {
    let mut c = client(config, &args.read).await?;
    let since_ms = now_ms() - i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX);
    let wire = c
        .handoff(v1::HandoffRequest { since_ms })
        .await
        .map_err(failed)?
        .into_inner();
    let report = convert::handoff_from_wire(wire)?;
    if args.read.json {
        print_json(&report)
    } else {
        print!(
            "{}",
            output::handoff(&report, SystemTime::now(), args.since)
        );
        Ok(())
    }
}

pub async fn silence(config: &Config, args: SilenceArgs) -> Result<()> {
    if let Some(SilenceCommand::End { id, read }) = args.end {
        let mut c = client(config, &read).await?;
        let s = c
            .end_silence(v1::EndSilenceRequest { id })
            .await
            .map_err(failed)?
            .into_inner();
        let s = convert::silence_from_wire(s);
        if read.json {
            return print_json(&s);
        }
        println!(
            "silence {} on {} {} ended",
            s.id, s.matcher_kind, s.matcher_value
        );
        return Ok(());
    }
    let Some(duration) = args.duration else {
        bail!("give --for DURATION (e.g. --for 2h), or `silence end ID` to end one");
    };
    let mut c = client(config, &args.read).await?;
    let ends_at_ms = now_ms() + i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    let request = v1::CreateSilenceRequest {
        host: args.host.unwrap_or_default(),
        label: args.label.unwrap_or_default(),
        rule: args.rule.unwrap_or_default(),
        starts_at_ms: 0,
        ends_at_ms,
        reason: args.reason,
    };
    let s = c
        .create_silence(request)
        .await
        .map_err(failed)?
        .into_inner();
    let s = convert::silence_from_wire(s);
    if args.read.json {
        return print_json(&s);
    }
    println!(
        "silence {} on {} {} until {}",
        s.id,
        s.matcher_kind,
        s.matcher_value,
        humantime::format_rfc3339_seconds(crate::clock::from_ms(s.ends_at_ms))
    );
    Ok(())
}

pub async fn silences(config: &Config, args: &ReadArgs) -> Result<()> {
    let mut c = client(config, args).await?;
    let list: Vec<_> = c
        .list_silences(v1::ListSilencesRequest {})
        .await
        .map_err(failed)?
        .into_inner()
        .silences
        .into_iter()
        .map(convert::silence_from_wire)
        .collect();
    if args.json {
        print_json(&list)
    } else {
        print!("{}", output::silences_table(&list));
        Ok(())
    }
}

pub async fn label(
    config: &Config,
    host: &str,
    labels: Vec<String>,
    args: &ReadArgs,
) -> Result<()> {
    let mut c = client(config, args).await?;
    let wire = c
        .set_labels(v1::SetLabelsRequest {
            host: host.to_owned(),
            labels,
        })
        .await
        .map_err(failed)?
        .into_inner();
    let h = convert::host_from_wire(wire)?;
    if args.json {
        return print_json(&h);
    }
    println!(
        "labels of {} ({}): {}",
        h.hostname,
        h.agent_id,
        if h.labels.is_empty() {
            "none".into()
        } else {
            h.labels.join(", ")
        }
    );
    Ok(())
}

pub async fn events(config: &Config, args: &EventArgs) -> Result<()> {
    let mut c = client(config, &args.read).await?;
    let wire = c
        .events_since(v1::EventsSinceRequest {
            cursor: args.cursor,
            limit: args.limit,
            ..Default::default()
        })
        .await
        .map_err(failed)?
        .into_inner();
    let page = convert::events_from_wire(wire)?;
    if args.read.json {
        print_json(&page)
    } else {
        print!("{}", output::events_table(&page));
        Ok(())
    }
}
