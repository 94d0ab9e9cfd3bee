//! The `firstline-agent` command line: argument definitions and dispatch. `main.rs` only sets
//! up logging and signals.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::check;
use crate::clock::now_ms;
use crate::config::Config;
use crate::enroll::{EnrollParams, enroll};
use crate::facts::{Facts, ProbeKind};
use crate::identity::Identity;
use crate::runner;
use crate::scheduler::{self, ProbeContext};
use crate::status::status;

/// Firstline agent: reports this machine's health to the collector.
#[derive(Debug, Parser)]
#[command(name = "firstline-agent", version)]
pub struct Cli {
    /// Configuration file (TOML). Without it, the built-in defaults apply.
    #[arg(long, short, global = true, env = "FIRSTLINE_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// State directory for the identity and the spool (overrides `state_dir`).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll this machine with a collector using a one-time token.
    Enroll {
        /// Collector URL, e.g. https://collector.example.com:7443
        #[arg(long)]
        collector: String,
        /// Enrollment token from `firstline-collector token create`.
        #[arg(long, env = "FIRSTLINE_ENROLL_TOKEN")]
        token: String,
        /// The collector's CA certificate (its data directory's ca.crt).
        #[arg(long)]
        ca_file: PathBuf,
        /// Enroll again even if this machine already has an identity.
        #[arg(long)]
        force: bool,
    },
    /// Run the agent until SIGINT or SIGTERM.
    Run,
    /// Check this machine once and print a health report (exit 0 healthy, 1 warnings,
    /// 2 critical, 3 when the check itself failed). Needs no enrollment.
    Check {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show this agent's identity and what is waiting to be sent.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Validate the configuration.
    CheckConfig,
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> Result<u8> {
    let config = Config::load(cli.config.as_deref(), cli.state_dir.as_deref())?;
    match cli.command {
        Command::Enroll {
            collector,
            token,
            ca_file,
            force,
        } => {
            let ca_pem = std::fs::read_to_string(&ca_file).with_context(|| {
                format!("{}: cannot read the CA certificate", ca_file.display())
            })?;
            let hostname = crate::probe::system::SystemProbe::new().collect().hostname;
            let identity = enroll(
                &config.state_dir,
                &EnrollParams {
                    collector_url: &collector,
                    token: &token,
                    ca_pem: &ca_pem,
                    hostname: &hostname,
                    force,
                },
            )
            .await?;
            println!(
                "enrolled as {} with {}; identity saved in {}",
                identity.agent_id,
                identity.collector_url,
                config.state_dir.display()
            );
        }
        Command::Run => {
            runner::run(
                config,
                cli.config.as_deref(),
                cli.state_dir.as_deref(),
                shutdown,
            )
            .await?
        }
        Command::Check { json } => return Ok(check_once(&config, json).await),
        Command::Status { json } => status(&config, json)?,
        Command::CheckConfig => {
            println!("configuration is valid");
            println!("state_dir = {}", config.state_dir.display());
            println!(
                "disk.interval = {}",
                humantime::format_duration(config.disk_interval)
            );
            println!(
                "report.heartbeat = {}",
                humantime::format_duration(config.heartbeat)
            );
        }
    }
    Ok(0)
}

/// Runs every probe once, concurrently, and prints the judgement.
async fn check_once(config: &Config, json: bool) -> u8 {
    use std::io::IsTerminal;
    let collector = Identity::load(&config.state_dir)
        .ok()
        .and_then(|i| runner::collector_target(&i.collector_url));
    let ctx = ProbeContext::new(collector);
    let runs = ProbeKind::ALL.map(|kind| {
        let ctx = &ctx;
        async move { (kind, scheduler::run_once(kind, config, ctx).await) }
    });
    let mut facts = Facts::default();
    for (kind, result) in futures_util::future::join_all(runs).await {
        facts.apply(kind, result);
    }
    let host = facts
        .system
        .as_ref()
        .map(|s| s.hostname.clone())
        .unwrap_or_default();
    let findings = check::evaluate(&facts, &check::Limits::default(), now_ms());
    if json {
        let snapshot = crate::wire::snapshot(
            &facts,
            &crate::wire::Identity {
                hostname: host.clone(),
                os: String::new(),
            },
            firstline_proto::v1::Trigger::Unspecified,
            now_ms(),
            None,
        );
        let facts_json = serde_json::to_value(&snapshot).unwrap_or_default();
        println!("{}", check::render_json(&host, &findings, facts_json));
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", check::render_text(&host, &findings, colour));
    }
    check::overall(&findings).exit_code()
}
