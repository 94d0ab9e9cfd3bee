//! The `firstline-agent` command line: argument definitions and dispatch. `main.rs` only sets
//! up logging and signals.

use std::path::{Path, PathBuf};

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use firstline_support::blocking;
use firstline_support::process::colour_wanted;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;

use crate::check;
use crate::clock::now_ms;
use crate::config::Config;
use crate::enroll::{EnrollParams, Machine, enroll_machine};
use crate::facts::{Facts, ProbeId};
use crate::identity::Identity;
use crate::registry::{Context, ProbeSet};
use crate::runner;
use crate::status::status;

/// Firstline agent: reports this machine's health to the collector.
#[derive(Debug, Parser)]
#[command(name = "firstline-agent", version)]
pub struct Cli {
    /// Configuration file (TOML). Without it: /etc/firstline/agent.toml on Linux when it
    /// exists (the packages' file), %ProgramData%\Firstline\agent.toml on Windows, else
    /// the built-in defaults.
    #[arg(long, short, global = true, env = "FIRSTLINE_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// State directory for the identity and the spool (overrides `state_dir`). Without it
    /// or `state_dir`: $STATE_DIRECTORY, else /var/lib/firstline-agent on Linux when it exists
    /// (the packages' service), %ProgramData%\Firstline\state on Windows, else
    /// ./firstline-agent-data.
    #[arg(long, global = true, env = "FIRSTLINE_AGENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll this machine with a collector using a one-time token. Each value defaults to
    /// the config's [enrollment] section and the FIRSTLINE_COLLECTOR_URL,
    /// FIRSTLINE_ENROLL_TOKEN and FIRSTLINE_CA_FILE environment variables.
    Enroll {
        /// Collector URL, e.g. https://collector.example.com:7443
        #[arg(long)]
        collector: Option<String>,
        /// Enrollment token from `firstline-collector token create`.
        #[arg(long)]
        token: Option<String>,
        /// The collector's CA certificate (its data directory's ca.crt).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Enroll again even if this machine already has an identity.
        #[arg(long)]
        force: bool,
    },
    /// Run the agent until SIGINT or SIGTERM. Without an identity, it first enrolls with the
    /// enrollment values (see `enroll`), retrying until that succeeds.
    Run,
    /// Run as a Windows service (what the MSI registers; Windows only).
    #[command(hide = true)]
    Service,
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
    let dir = cli.state_dir.clone();
    let given = cli.config.clone();
    let (file, config) = blocking::run(move || {
        let file = given.or_else(crate::platform::paths::default_config_file);
        Config::load(file.as_deref(), dir.as_deref()).map(|c| (file, c))
    })
    .await?;
    match cli.command {
        Command::Enroll {
            collector,
            token,
            ca_file,
            force,
        } => {
            let flags = EnrollFlags {
                collector,
                token,
                ca_file,
            };
            enroll_command(&config, flags, force).await?;
        }
        Command::Run | Command::Service => {
            runner::run(config, file.as_deref(), cli.state_dir.as_deref(), shutdown).await?
        }
        Command::Check { json } => return Ok(check_once(&config, json).await),
        Command::Status { json } => {
            let config = config.clone();
            blocking::run(move || status(&config, json)).await?
        }
        Command::CheckConfig => {
            println!("configuration is valid");
            println!(
                "file = {}",
                file.as_ref()
                    .map_or("none (built-in defaults)".into(), |f| f
                        .display()
                        .to_string())
            );
            println!("state_dir = {}", config.state_dir.display());
            println!(
                "disk.interval = {}",
                humantime::format_duration(config.disk_interval)
            );
            println!(
                "report.heartbeat = {}",
                humantime::format_duration(config.heartbeat)
            );
            let config = config.clone();
            let lines = blocking::run(move || enrollment_state(&config)).await;
            for line in lines {
                println!("{line}");
            }
        }
    }
    Ok(0)
}

/// `check-config`'s enrollment lines: the values (never the token), and whether an identity
/// exists, which decides whether `run` uses them. Blocks.
fn enrollment_state(config: &Config) -> Vec<String> {
    let mut lines = config.enrollment.describe();
    let identity = if Identity::exists(&config.state_dir) {
        match Identity::load(&config.state_dir) {
            Ok(i) => format!(
                "identity: enrolled as {} with {} (enrollment values are ignored)",
                i.agent_id, i.collector_url
            ),
            Err(e) => format!(
                "identity: present but unreadable: {}",
                firstline_support::errors::chain(&e)
            ),
        }
    } else if config.enrollment.ready().is_some() {
        "identity: none yet; `run` enrolls with the values above".to_owned()
    } else if config.enrollment.any() {
        format!(
            "identity: none yet; `run` waits for the missing enrollment values: {}",
            config.enrollment.missing().join(", ")
        )
    } else {
        "identity: none; run `firstline-agent enroll` or set [enrollment]".to_owned()
    };
    lines.push(identity);
    lines
}

/// `enroll`'s flags; each one missing falls back to the config's enrollment values.
struct EnrollFlags {
    collector: Option<String>,
    token: Option<String>,
    ca_file: Option<PathBuf>,
}

/// `enroll`: takes each value from the flags, else the enrollment values; reads the token
/// file, the CA file and this machine's names off the async thread, enrolls, and prints the
/// collector's warning (if any) to stderr.
async fn enroll_command(config: &Config, flags: EnrollFlags, force: bool) -> Result<()> {
    use crate::enrollment::{Origin, Sourced, TokenSource};
    let values = &config.enrollment;
    let missing = |what: &str, key: &str, env: &str| {
        anyhow::anyhow!(
            "no {what}: pass --{}, set enrollment.{key} in the config file, or {env}",
            key.replace('_', "-")
        )
    };
    let collector = match flags.collector {
        Some(url) => url,
        None => values
            .collector_url
            .as_ref()
            .map(|u| u.value.clone())
            .ok_or_else(|| {
                missing(
                    "collector URL",
                    "collector_url",
                    crate::enrollment::ENV_COLLECTOR_URL,
                )
            })?,
    };
    let token = match flags.token {
        Some(t) => Sourced::new(TokenSource::Inline(t), Origin::File("token")),
        None => values
            .token
            .clone()
            .ok_or_else(|| missing("enrollment token", "token", crate::enrollment::ENV_TOKEN))?,
    };
    let ca_file = match flags.ca_file {
        Some(path) => path,
        None => values
            .ca_file
            .as_ref()
            .map(|c| c.value.clone())
            .ok_or_else(|| missing("CA certificate", "ca_file", crate::enrollment::ENV_CA_FILE))?,
    };
    let path = ca_file.clone();
    let (token, ca_pem, hostname, machine_id) = blocking::run(move || {
        let ca_pem = read_ca(&path)?;
        Ok::<_, anyhow::Error>((
            token.read()?,
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
        collector_url: &collector,
        token: &token,
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

/// Runs every probe once, concurrently, and prints the judgement: in text, each probe's
/// findings as soon as it finishes, then the summary. A slow probe the running agent ran within
/// its interval is not run again: its kept result is shown, with its age.
async fn check_once(config: &Config, json: bool) -> u8 {
    let dir = config.state_dir.clone();
    let collector = blocking::run(move || Identity::load(&dir).ok())
        .await
        .and_then(|i| runner::collector_target(&i.collector_url));
    let ctx = Context {
        collector,
        policy: None,
    };
    let probes = ProbeSet::new();
    let kept = kept_results(&probes, config).await;
    let colour = (!json).then(|| colour_wanted(std::io::stdout().is_terminal()));
    if colour.is_some() {
        let names: Vec<&str> = probes.ids().map(ProbeId::name).collect();
        say(&format!("Checking {}...\n", names.join(", ")));
    }
    let facts = run_probes(&probes, config, &ctx, &kept, colour).await;
    let findings = with_kept(
        check::evaluate(&probes, &facts, &check::Limits::default(), now_ms()),
        &kept,
    );
    match colour {
        Some(colour) => {
            let host = host_of(&probes, &facts).hostname;
            say(&format!(
                "\n{}",
                check::render_summary(&host, &findings, colour)
            ));
        }
        None => {
            let mut snapshot = host_of(&probes, &facts);
            let mut facts_json = serde_json::to_value(&snapshot).unwrap_or_default();
            for (_, k) in &kept {
                check::cache::merge(&mut facts_json, &k.facts);
            }
            let host = std::mem::take(&mut snapshot.hostname);
            println!("{}", check::render_json(&host, &findings, facts_json));
        }
    }
    check::overall(&findings).exit_code()
}

/// Runs the probes that have no kept result, concurrently; in text (`colour` is `Some`),
/// prints the kept results, then each probe's findings as it finishes.
async fn run_probes(
    probes: &ProbeSet,
    config: &Config,
    ctx: &Context,
    kept: &[(ProbeId, check::cache::Kept)],
    colour: Option<bool>,
) -> Facts {
    let started = std::time::Instant::now();
    let mut runs: FuturesUnordered<_> = probes
        .ids()
        .filter(|id| !kept.iter().any(|(k, _)| k == id))
        .map(|id| async move { (id, probes.run_once(id, config, ctx).await) })
        .collect();
    if let Some(colour) = colour {
        for (id, k) in kept {
            let title = format!("{}  (the running agent's)", id.name().to_uppercase());
            say(&check::render_section(
                &title,
                &k.findings(*id, now_ms()),
                colour,
            ));
        }
    }
    let mut facts = Facts::default();
    while let Some((id, result)) = runs.next().await {
        if let Some(colour) = colour {
            let mut one = Facts::default();
            one.apply(id, result.clone());
            let found = check::evaluate(probes, &one, &check::Limits::default(), now_ms());
            let secs = started.elapsed().as_secs_f64();
            let title = format!("{}  ({secs:.1} s)", id.name().to_uppercase());
            say(&check::render_section(&title, &found, colour));
        }
        facts.apply(id, result);
    }
    facts
}

/// Prints at once (the next probe may take seconds).
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The snapshot of `facts`, with the host name the system probe found.
fn host_of(probes: &ProbeSet, facts: &Facts) -> firstline_proto::v1::Snapshot {
    let mut snapshot = crate::wire::snapshot(
        probes,
        facts,
        &crate::wire::Identity::default(),
        firstline_proto::v1::Trigger::Unspecified,
        now_ms(),
        None,
    );
    snapshot.hostname = snapshot
        .system
        .as_ref()
        .map(|s| s.hostname.clone())
        .unwrap_or_default();
    snapshot
}

/// The slow probes' results the running agent kept, fresher than each probe's interval.
async fn kept_results(probes: &ProbeSet, config: &Config) -> Vec<(ProbeId, check::cache::Kept)> {
    let wanted: Vec<(ProbeId, std::time::Duration)> = check::cache::SLOW_PROBES
        .iter()
        .filter_map(|name| probes.id(name))
        .map(|id| (id, probes.timing(id, config).0))
        .collect();
    let dir = config.state_dir.clone();
    blocking::run(move || {
        wanted
            .into_iter()
            .filter_map(|(id, interval)| {
                check::cache::Kept::load(&dir, id.name(), interval, now_ms()).map(|k| (id, k))
            })
            .collect()
    })
    .await
}

/// `findings` with the kept probes' findings in their probe's place of the report order.
fn with_kept(
    mut findings: Vec<check::Finding>,
    kept: &[(ProbeId, check::cache::Kept)],
) -> Vec<check::Finding> {
    for (id, k) in kept {
        let at = findings
            .iter()
            .position(|f| f.section.index() > id.index())
            .unwrap_or(findings.len());
        findings.splice(at..at, k.findings(*id, now_ms()));
    }
    findings
}
