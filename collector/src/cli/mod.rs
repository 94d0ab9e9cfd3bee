//! The `firstline-collector` command line: argument definitions and dispatch. `main.rs` only
//! parses, sets up logging and signals, and calls [`run`]. Commands that read or change
//! tickets, hosts, silences and events talk to the running collector's admin API (`commands`);
//! those that manage enrollment and identity work on the store directly, so they work before
//! the first `serve` and while the collector is down (`local`). `--help` says which is which.

mod admin_client;
mod check_now;
mod commands;
mod feeds;
mod local;
pub mod output;
mod package_config;
mod users;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Overrides};
use crate::server::Collector;

/// Firstline collector: enrolls agents, stores their reports, and turns problems into tickets.
#[derive(Debug, Parser)]
#[command(name = "firstline-collector", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (TOML). Default: /etc/firstline/collector.toml when it exists, else
    /// the built-in defaults.
    #[arg(long, short, global = true, env = "FIRSTLINE_COLLECTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the CA, keys and the SQLite file (overrides `data_dir`). Default: the
    /// config's, else $STATE_DIRECTORY, else /var/lib/firstline-collector when it exists,
    /// else ./firstline-data.
    #[arg(long, global = true, env = "FIRSTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store URL: sqlite://PATH or postgres://... (overrides `store.url`).
    #[arg(long, global = true, env = "FIRSTLINE_STORE_URL")]
    pub store_url: Option<String>,
    /// gRPC listen address (overrides `grpc.listen`).
    #[arg(long, global = true)]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector until SIGINT or SIGTERM.
    Serve,
    /// Manage enrollment tokens (works on the store; the collector may be stopped).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Rotate the collector's CA without cutting agents off (docs/operations.md): `ca rotate`,
    /// wait until `ca status` counts no agent left on the old CA, then `ca finish`. Each step
    /// takes effect when the collector next starts.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Manage the users of the dashboard and the HTTP API: add (the first admin:
    /// `user add NAME --role admin`), list, disable, create API tokens (works on the store;
    /// the collector may be stopped).
    #[command(subcommand)]
    User(users::UserCommand),
    /// List enrolled hosts with their latest facts (needs the running collector).
    Hosts(ReadArgs),
    /// List tickets, open ones first by priority (needs the running collector).
    Tickets(TicketArgs),
    /// Show one ticket with its timeline and knowledge-base steps, or act on it (needs the
    /// running collector).
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// End-of-shift summary: open P1/P2 tickets with SLA left, escalations, resolved tickets
    /// (needs the running collector).
    Handoff(HandoffArgs),
    /// Silence a host, a label or a rule for a while (maintenance): conditions are tracked but
    /// open no ticket; `silence end ID` ends one early (needs the running collector).
    Silence(SilenceArgs),
    /// List current and upcoming silences (needs the running collector).
    Silences(ReadArgs),
    /// Set a host's labels, replacing the old ones; no labels clears them (needs the running
    /// collector).
    Label {
        /// Agent id or host name.
        host: String,
        labels: Vec<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// The alert event log after a cursor, oldest first (needs the running collector).
    Events(EventArgs),
    /// Ask a host's agent to run every probe and report now; waits (up to 10 s) until the fresh
    /// report is stored. Says "offline" when the agent has no live channel to this collector
    /// (needs the running collector).
    CheckNow {
        /// Agent id or host name.
        host: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Alert feeds: list them, send a test event, list and replay dead letters (needs the
    /// running collector).
    #[command(subcommand)]
    Feeds(feeds::FeedsCommand),
    /// Revoke every certificate of an agent; its reports are refused from then on (works on
    /// the store; the collector may be stopped).
    Revoke {
        /// The agent id, as `hosts` shows it.
        agent_id: String,
    },
    /// Validate the configuration and print the effective values.
    CheckConfig,
    /// Validate a rule file (over the shipped rules) and list the resulting rules.
    CheckRules {
        /// The rule file (TOML, `[[rules]]` tables).
        file: PathBuf,
    },
    /// Print the default configuration file.
    PrintDefaultConfig,
    /// Print each OS's agent install command with this collector's URL, a fresh enrollment
    /// token and the CA embedded (works on the store; the collector may be stopped).
    PackageConfig(package_config::PackageConfigArgs),
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Make the next CA: agents are given it and renew onto it, while the current one serves.
    Rotate,
    /// Whether a rotation is under way, and how many agents still hold only the old CA's
    /// certificate.
    Status,
    /// End the rotation: the next CA becomes the only one. Agents that did not renew must
    /// enroll again.
    Finish {
        /// Finish even though agents still hold only the old CA's certificate.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an enrollment token; it is printed once and stored only as a hash.
    Create {
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it stays valid, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// A note for operators, e.g. the batch of machines it is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Host labels every agent enrolled with it starts with (its group), e.g. lab,floor-2.
        #[arg(long, value_delimiter = ',')]
        host_labels: Vec<String>,
        /// Print JSON instead of the bare token.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (their hashes, expiry, remaining uses and state).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token before it is used up or expires: enrollment with it is refused.
    Revoke {
        /// The token's hash as `token list` shows it (its first 12 characters are enough).
        hash: String,
    },
}

/// Options of commands that talk to the running collector.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Print JSON (the same documents the HTTP API serves).
    #[arg(long)]
    pub json: bool,
    /// Collector URL; default: the configured listen address on this machine.
    #[arg(long)]
    pub collector: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Show the ticket, its timeline and its knowledge-base steps.
    Show(TicketRef),
    /// Acknowledge (stops the response SLA).
    #[command(visible_alias = "ack")]
    Acknowledge(TicketRef),
    /// Assign to a technician.
    Assign {
        #[command(flatten)]
        ticket: TicketRef,
        /// Who takes it.
        who: String,
    },
    /// Add a comment to the timeline.
    Comment {
        #[command(flatten)]
        ticket: TicketRef,
        text: String,
    },
    /// Resolve by hand.
    Resolve {
        #[command(flatten)]
        ticket: TicketRef,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Reopen a resolved or closed ticket.
    Reopen {
        #[command(flatten)]
        ticket: TicketRef,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Close a resolved ticket.
    Close(TicketRef),
}

#[derive(Debug, Args)]
pub struct TicketRef {
    /// The ticket id, as `tickets` shows it.
    pub id: i64,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub end: Option<SilenceCommand>,
    /// An agent id or host name.
    #[arg(long, group = "matcher")]
    pub host: Option<String>,
    /// A host label.
    #[arg(long, group = "matcher")]
    pub label: Option<String>,
    /// A rule id.
    #[arg(long, group = "matcher")]
    pub rule: Option<String>,
    /// How long, e.g. 2h, 3days.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// End a silence now.
    End {
        /// The silence id, as `silences` shows it.
        id: i64,
        #[command(flatten)]
        read: ReadArgs,
    },
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// List tickets resolved in this past period.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub since: Duration,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct TicketArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// open, resolved or all.
    #[arg(long, default_value = "all")]
    pub state: String,
    /// Only this host's tickets: an agent id or a host name.
    #[arg(long, visible_alias = "agent")]
    pub host: Option<String>,
    /// At most this many tickets (the collector caps it at 1000).
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct EventArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// Events after this cursor.
    #[arg(long, default_value_t = 0)]
    pub cursor: i64,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Runs a parsed command. `shutdown` stops `serve`.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> Result<()> {
    let overrides = Overrides {
        data_dir: cli.global.data_dir.clone(),
        grpc_listen: cli.global.listen.clone(),
        store_url: cli.global.store_url.clone(),
    };
    match &cli.command {
        Command::PrintDefaultConfig => {
            print!("{}", Config::default_toml());
            return Ok(());
        }
        Command::CheckRules { file } => return local::check_rules(file),
        _ => {}
    }
    let config_file = cli
        .global
        .config
        .clone()
        .or_else(crate::config::packaged_config);
    let config = Config::load(config_file.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve => {
            let collector = Collector::start(&config).await?;
            collector.run(shutdown).await?;
        }
        Command::Token(cmd) => local::token(&config, cmd).await?,
        Command::Ca(cmd) => local::ca(&config, cmd).await?,
        Command::User(cmd) => users::run(&config, cmd).await?,
        Command::Revoke { agent_id } => local::revoke(&config, &agent_id).await?,
        Command::CheckConfig => local::check_config(&config, config_file.as_deref()),
        Command::Hosts(args) => commands::hosts(&config, &args).await?,
        Command::Tickets(args) => commands::tickets(&config, &args).await?,
        Command::Ticket(cmd) => commands::ticket(&config, cmd).await?,
        Command::Handoff(args) => commands::handoff(&config, &args).await?,
        Command::Silence(args) => commands::silence(&config, args).await?,
        Command::Silences(args) => commands::silences(&config, &args).await?,
        Command::Label { host, labels, read } => {
            commands::label(&config, &host, labels, &read).await?;
        }
        Command::Events(args) => commands::events(&config, &args).await?,
        Command::Feeds(cmd) => feeds::run(&config, cmd).await?,
        Command::CheckNow { host, read } => check_now::run(&config, &host, &read).await?,
        Command::PackageConfig(args) => package_config::run(&config, args).await?,
        Command::PrintDefaultConfig | Command::CheckRules { .. } => {}
    }
    Ok(())
}
