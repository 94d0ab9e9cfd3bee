//! `firstline-collector feeds …`: the configured alert feeds, a test delivery, dead letters
//! and their replay, through the running collector's admin API (docs/feeds.md).

use anyhow::Result;
use clap::Subcommand;
use firstline_proto::v1;

use super::ReadArgs;
use super::commands::{client, failed, print_json};
use super::output::table;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Each feed with its cursor, how many events it is behind, deliveries waiting for a
    /// retry, dead letters and its last error.
    List(ReadArgs),
    /// Send a test event to one feed now (`webhook:NAME`, `alertmanager:NAME`, `nats`, or
    /// the bare NAME when it is unique).
    Test {
        feed: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Events a webhook gave up on after its retries, newest first.
    DeadLetters {
        /// Only this feed's.
        feed: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Queue a feed's dead letters for delivery again (all, or one with --event).
    Replay {
        feed: String,
        /// Only the dead letter of this event cursor.
        #[arg(long)]
        event: Option<i64>,
        #[command(flatten)]
        read: ReadArgs,
    },
}

pub async fn run(config: &Config, cmd: FeedsCommand) -> Result<()> {
    match cmd {
        FeedsCommand::List(read) => {
            let mut c = client(config, &read).await?;
            let feeds = c
                .list_feeds(v1::ListFeedsRequest {})
                .await
                .map_err(failed)?
                .into_inner()
                .feeds;
            if read.json {
                return print_json(&feeds);
            }
            if feeds.is_empty() {
                println!("no feed is configured (see [feeds] in the configuration, docs/feeds.md)");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = feeds
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.target.clone(),
                        f.cursor.to_string(),
                        f.lag.to_string(),
                        f.pending.to_string(),
                        f.dead_letters.to_string(),
                        if f.last_error.is_empty() {
                            "-".into()
                        } else {
                            f.last_error.clone()
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "FEED",
                        "TARGET",
                        "CURSOR",
                        "BEHIND",
                        "RETRYING",
                        "DEAD",
                        "LAST ERROR"
                    ],
                    &rows
                )
            );
        }
        FeedsCommand::Test { feed, read } => {
            let mut c = client(config, &read).await?;
            let r = c
                .test_feed(v1::TestFeedRequest { name: feed.clone() })
                .await
                .map_err(failed)?
                .into_inner();
            if read.json {
                return print_json(&r);
            }
            if r.delivered {
                println!("{feed}: delivered ({})", r.detail);
            } else {
                anyhow::bail!("{feed}: not delivered: {}", r.detail);
            }
        }
        FeedsCommand::DeadLetters { feed, limit, read } => {
            let mut c = client(config, &read).await?;
            let list = c
                .list_dead_letters(v1::ListDeadLettersRequest {
                    feed: feed.unwrap_or_default(),
                    limit,
                })
                .await
                .map_err(failed)?
                .into_inner()
                .dead_letters;
            if read.json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| {
                    let (kind, ticket) =
                        d.event
                            .as_ref()
                            .map_or(("(removed)".to_owned(), String::new()), |e| {
                                (
                                    e.kind.clone(),
                                    e.ticket
                                        .as_ref()
                                        .map(|t| format!("#{} {}", t.id, t.hostname))
                                        .unwrap_or_default(),
                                )
                            });
                    vec![
                        d.feed.clone(),
                        d.event_cursor.to_string(),
                        kind,
                        ticket,
                        d.attempts.to_string(),
                        humantime::format_rfc3339_seconds(crate::clock::from_ms(d.failed_at_ms))
                            .to_string(),
                        d.last_error.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "FEED", "EVENT", "KIND", "TICKET", "ATTEMPTS", "FAILED", "ERROR"
                    ],
                    &rows
                )
            );
        }
        FeedsCommand::Replay { feed, event, read } => {
            let mut c = client(config, &read).await?;
            let r = c
                .replay_dead_letters(v1::ReplayDeadLettersRequest {
                    feed: feed.clone(),
                    event_cursor: event.unwrap_or(0),
                })
                .await
                .map_err(failed)?
                .into_inner();
            if read.json {
                return print_json(&r);
            }
            println!(
                "{feed}: {} dead letter(s) queued for delivery again",
                r.replayed
            );
        }
    }
    Ok(())
}
