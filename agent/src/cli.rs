//! The `firstline-agent` command line: argument definitions and dispatch. `main.rs` only sets
//! up logging and signals.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use firstline_support::blocking;
use firstline_support::process::colour_wanted;
use tokio_util::sync::CancellationToken;

use crate::check;
use crate::clock::now_ms;
use crate::config::Config;
use crate::enroll::{EnrollParams, Machine, enroll_machine};
use crate::facts::Facts;
use crate::identity::Identity;
use crate::registry::{Context, ProbeSet};
use crate::runner;
use crate::status::status;

/// Firstline agent: reports this machine's health to the collector.
#[derive(Debug, Parser)]
#[command(name = "firstline-agent", version)]
pub struct Cli {
    /// Configuration file (TOML). Without it, the built-in defaults apply.
    #[arg(long, short, global = true, env = "FIRSTLINE_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// State directory for the identity and the spool (overrides `state_dir`).
    #[arg(long, global = true, env = "FIRSTLINE_AGENT_STATE_DIR")]
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
    let (file, dir) = (cli.config.clone(), cli.state_dir.clone());
    let config = blocking::run(move || Config::load(file.as_deref(), dir.as_deref())).await?;
    match cli.command {
        Command::Enroll {
            collector,
            token,
            ca_file,
            force,
        } => enroll_command(&config, &collector, &token, ca_file, force).await?,
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
        Command::Status { json } => {
            let config = config.clone();
            blocking::run(move || status(&config, json)).await?
        }
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

/// `enroll`: reads the CA file and this machine's names off the async thread, enrolls, and
/// prints the collector's warning (if any) to stderr.
async fn enroll_command(
    config: &Config,
    collector: &str,
    token: &str,
    ca_file: PathBuf,
    force: bool,
) -> Result<()> {
    let path = ca_file.clone();
    let (ca_pem, hostname, machine_id) = blocking::run(move || {
        let ca_pem = read_ca(&path)?;
        Ok::<_, anyhow::Error>((
            ca_pem,
            crate::probe::system::hostname(),
            crate::probe::system::machine_id(),
        ))
    })
    .await?;
    let machine = Machine {
        machine_id,
        ca_file: Some(ca_file),
    };
    let params = EnrollParams {
        collector_url: collector,
        token,
        ca_pem: &ca_pem,
        hostname: &hostname,
        force,
    };
    let enrolled = enroll_machine(&config.state_dir, &params, &machine).await?;
    if let Some(warning) = &enrolled.warning {
        eprintln!("warning: {warning}");
    }
    println!(
        "enrolled as {} with {}; identity saved in {}",
        enrolled.identity.agent_id,
        enrolled.identity.collector_url,
        config.state_dir.display()
    );
    Ok(())
}

/// The CA certificate file, refused early when it holds no PEM certificate.
fn read_ca(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the CA certificate", path.display()))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!(
            "{}: not a PEM certificate (copy ca.crt from the collector's data directory)",
            path.display()
        );
    }
    Ok(text)
}

/// Runs every probe once, concurrently, and prints the judgement.
async fn check_once(config: &Config, json: bool) -> u8 {
    let dir = config.state_dir.clone();
    let collector = blocking::run(move || Identity::load(&dir).ok())
        .await
        .and_then(|i| runner::collector_target(&i.collector_url));
    let ctx = Context { collector };
    let probes = ProbeSet::new();
    let runs = probes.ids().map(|id| {
        let (ctx, probes) = (&ctx, &probes);
        async move { (id, probes.run_once(id, config, ctx).await) }
    });
    let mut facts = Facts::default();
    for (id, result) in futures_util::future::join_all(runs).await {
        facts.apply(id, result);
    }
    let mut snapshot = crate::wire::snapshot(
        &probes,
        &facts,
        &crate::wire::Identity::default(),
        firstline_proto::v1::Trigger::Unspecified,
        now_ms(),
        None,
    );
    let host = snapshot
        .system
        .as_ref()
        .map(|s| s.hostname.clone())
        .unwrap_or_default();
    snapshot.hostname.clone_from(&host);
    let findings = check::evaluate(&probes, &facts, &check::Limits::default(), now_ms());
    if json {
        let facts_json = serde_json::to_value(&snapshot).unwrap_or_default();
        println!("{}", check::render_json(&host, &findings, facts_json));
    } else {
        use std::io::IsTerminal;
        let colour = colour_wanted(std::io::stdout().is_terminal());
        print!("{}", check::render_text(&host, &findings, colour));
    }
    check::overall(&findings).exit_code()
}
