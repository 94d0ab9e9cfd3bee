//! Commands that work on the store and files directly, without the running collector: tokens,
//! revocation, configuration and rule checks.

use anyhow::{Context, Result, bail};
use std::path::Path;

use super::output;
use super::{CaCommand, TokenCommand};
use crate::clock::{from_ms, now_ms};
use crate::config::Config;
use crate::service::token_state;
use crate::store::Store;
use crate::tokens;

pub async fn token(config: &Config, cmd: TokenCommand) -> Result<()> {
    let store = open_store(config).await?;
    match cmd {
        TokenCommand::Create {
            uses,
            ttl,
            label,
            host_labels,
            json,
        } => {
            let created =
                tokens::create_token_with_labels(&store, &label, &host_labels, ttl, uses).await?;
            if json {
                let value = serde_json::json!({
                    "token": created.secret,
                    "uses": uses,
                    "expires_at_ms": created.row.expires_at_ms,
                    "label": label,
                    "host_labels": created.row.host_labels,
                });
                println!("{value}");
            } else {
                println!("{}", created.secret);
            }
        }
        TokenCommand::Revoke { hash } => {
            let full = store.revoke_token(&hash, now_ms()).await?;
            println!("revoked enrollment token {}", &full[..12]);
        }
        TokenCommand::List { json } => {
            let now = now_ms();
            let list = store.list_tokens().await?;
            if json {
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "hash": t.token_hash, "label": t.label, "uses_left": t.uses_left,
                            "uses_total": t.uses_total, "created_at_ms": t.created_at_ms,
                            "expires_at_ms": t.expires_at_ms, "state": token_state(t, now),
                            "host_labels": t.host_labels,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.token_hash.chars().take(12).collect(),
                            t.label.clone(),
                            t.host_labels.join(","),
                            format!("{}/{}", t.uses_left, t.uses_total),
                            humantime::format_rfc3339_seconds(from_ms(t.expires_at_ms)).to_string(),
                            token_state(t, now).to_owned(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(
                        &[
                            "HASH",
                            "LABEL",
                            "HOST LABELS",
                            "USES LEFT",
                            "EXPIRES",
                            "STATE"
                        ],
                        &rows
                    )
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

pub async fn revoke(config: &Config, agent_id: &str) -> Result<()> {
    let store = open_store(config).await?;
    let n = store.revoke_subject(agent_id, now_ms()).await?;
    store.close().await;
    if n == 0 {
        bail!("no valid certificate found for agent {agent_id}");
    }
    println!("revoked {n} certificate(s) of {agent_id}");
    Ok(())
}

pub async fn ca(config: &Config, cmd: CaCommand) -> Result<()> {
    use crate::pki::Authority;
    let dir = &config.data_dir;
    let rotating = |a: &Authority| a.rotating_since_ms();
    match cmd {
        CaCommand::Rotate => {
            Authority::load_or_create(dir, &config.server_names)?;
            let fp = Authority::rotate(dir)?;
            println!(
                "next CA made (sha256 {}); restart the collector, then wait until `ca status` \
                 counts no agent on the old CA and run `ca finish`",
                &fp[..16]
            );
        }
        CaCommand::Status | CaCommand::Finish { .. } => {
            let authority = Authority::load_or_create(dir, &config.server_names)?;
            if !Authority::rotation_started(dir) {
                if matches!(cmd, CaCommand::Finish { .. }) {
                    bail!(
                        "no CA rotation is under way (start one with `firstline-collector ca rotate`)"
                    );
                }
                println!("no CA rotation under way");
                return Ok(());
            }
            let Some(since) = rotating(&authority) else {
                bail!(
                    "the next CA is made but no collector has served with it yet: restart the \
                     collector, which then asks every agent to renew onto it"
                );
            };
            let store = open_store(config).await?;
            let left = store.agents_on_certificates_before(since, now_ms()).await?;
            if let CaCommand::Finish { force } = cmd {
                if left > 0 && !force {
                    bail!(
                        "{left} agent(s) still hold only the old CA's certificate and would have \
                         to enroll again; wait for them to renew (they do at their next report) \
                         or pass --force"
                    );
                }
                Authority::finish_rotation(dir)?;
                println!("CA rotation finished; restart the collector to serve with the new CA");
            } else {
                println!(
                    "CA rotation under way since {}; {left} agent(s) still on the old CA",
                    humantime::format_rfc3339_seconds(from_ms(since))
                );
            }
        }
    }
    Ok(())
}

pub fn check_config(config: &Config, file: Option<&Path>) {
    println!("configuration is valid");
    println!(
        "file = {}",
        file.map_or("none (built-in defaults)".into(), |f| f
            .display()
            .to_string())
    );
    println!("data_dir = {}", config.data_dir.display());
    println!("grpc.listen = {}", config.grpc_listen);
    println!("store = {}", config.effective_store_url());
    println!(
        "rules = {} ({} rules)",
        config
            .rules_file
            .as_ref()
            .map_or("shipped defaults".into(), |f| f.display().to_string()),
        config.engine.rules.len()
    );
}

pub fn check_rules(file: &Path) -> Result<()> {
    let rules = crate::rules::config::load(Some(file))?;
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.kind.name().to_owned(),
                format!("P{}", r.priority),
                humantime::format_duration(r.hold_for).to_string(),
                if r.os.is_empty() {
                    "all".into()
                } else {
                    r.os.join(",")
                },
                r.kb.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["RULE", "KIND", "PRIO", "FOR", "OS", "KB"], &rows)
    );
    Ok(())
}

/// Opens the store for commands that work on it directly, creating the data directory when
/// the store is the default SQLite file in it, so `token create` works before the first
/// `serve`.
pub(super) async fn open_store(config: &Config) -> Result<Store> {
    if config.store_url.is_empty() {
        firstline_support::files::create_private_dir(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let url = config.effective_store_url();
    Store::open(&url)
        .await
        .with_context(|| format!("opening store {url}"))
}
