//! The `firstline-collector` command line: argument definitions and what each command does.
//! `main.rs` only parses, sets up logging and signals, and calls [`run`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use firstline_proto::v1::{ListHostsRequest, ListTicketsRequest};
use tokio_util::sync::CancellationToken;

use crate::admin_client;
use crate::clock::{from_ms, now_ms};
use crate::config::{Config, Overrides};
use crate::output;
use crate::server::Collector;
use crate::store::Store;
use crate::tokens;

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
    /// Configuration file (TOML). Without it, the built-in defaults apply.
    #[arg(long, short, global = true, env = "FIRSTLINE_COLLECTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the CA, keys and the SQLite file (overrides `data_dir`).
    #[arg(long, global = true)]
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
    /// Manage enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// List enrolled hosts with their latest disk facts.
    Hosts(ReadArgs),
    /// List tickets, open ones first by priority.
    Tickets(TicketArgs),
    /// Show one ticket with its timeline and knowledge-base steps, or act on it.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// End-of-shift summary: open P1/P2 tickets with SLA left, escalations, resolved tickets.
    Handoff(HandoffArgs),
    /// Silence a host, a label or a rule for a while (maintenance): conditions are tracked but
    /// open no ticket.
    Silence(SilenceArgs),
    /// List current and upcoming silences.
    Silences(ReadArgs),
    /// Set a host's labels (replacing the old ones), for silences by label.
    Label {
        agent_id: String,
        labels: Vec<String>,
    },
    /// Revoke every certificate of an agent; its reports are refused from then on.
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
        /// Print JSON instead of the bare token.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (their hashes, expiry and remaining uses).
    List,
}

/// Options of read commands that talk to the running collector.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Print JSON.
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
    Ack(TicketRef),
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
pub struct SilenceArgs {
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
    pub duration: Duration,
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub read: ReadArgs,
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
    /// Only this agent's tickets.
    #[arg(long)]
    pub agent: Option<String>,
    /// At most this many tickets (the collector caps it at 1000).
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
}

/// Runs a parsed command. `shutdown` stops `serve`.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> Result<()> {
    let overrides = Overrides {
        data_dir: cli.global.data_dir.clone(),
        grpc_listen: cli.global.listen.clone(),
        store_url: cli.global.store_url.clone(),
    };
    if let Command::PrintDefaultConfig = cli.command {
        print!("{}", Config::default_toml());
        return Ok(());
    }
    if let Command::CheckRules { file } = &cli.command {
        let rules = crate::rules::config::load(Some(file))?;
        let rows: Vec<Vec<String>> = rules
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.kind.name().to_owned(),
                    format!("P{}", r.priority),
                    humantime::format_duration(r.hold_for).to_string(),
                    r.kb.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["RULE", "KIND", "PRIO", "FOR", "KB"], &rows)
        );
        return Ok(());
    }
    let config = Config::load(cli.global.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve => {
            let collector = Collector::start(&config).await?;
            collector.run(shutdown).await?;
        }
        Command::Token(cmd) => token(&config, cmd).await?,
        Command::Hosts(args) => hosts(&config, &args).await?,
        Command::Tickets(args) => tickets(&config, &args).await?,
        Command::Ticket(cmd) => ticket(&config, cmd).await?,
        Command::Handoff(args) => handoff(&config, &args).await?,
        Command::Silence(args) => silence(&config, &args).await?,
        Command::Silences(args) => silences(&config, &args).await?,
        Command::Label { agent_id, labels } => {
            if labels
                .iter()
                .any(|l| l.is_empty() || l.len() > 64 || l.contains(','))
            {
                bail!("labels are 1 to 64 characters without commas");
            }
            let store = open_store(&config).await?;
            if !store.set_labels(&agent_id, &labels).await? {
                bail!("no agent {agent_id}");
            }
            println!("labels of {agent_id}: {}", labels.join(", "));
        }
        Command::Revoke { agent_id } => {
            let store = open_store(&config).await?;
            let n = store.revoke_subject(&agent_id, now_ms()).await?;
            if n == 0 {
                bail!("no valid certificate found for agent {agent_id}");
            }
            println!("revoked {n} certificate(s) of {agent_id}");
        }
        Command::CheckConfig => {
            println!("configuration is valid");
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
        Command::PrintDefaultConfig | Command::CheckRules { .. } => {}
    }
    Ok(())
}

async fn token(config: &Config, cmd: TokenCommand) -> Result<()> {
    let store = open_store(config).await?;
    match cmd {
        TokenCommand::Create {
            uses,
            ttl,
            label,
            json,
        } => {
            let created = tokens::create_token(&store, &label, ttl, uses).await?;
            if json {
                let value = serde_json::json!({
                    "token": created.secret,
                    "uses": uses,
                    "expires_at": output::time_json(created.row.expires_at_ms),
                    "label": label,
                });
                println!("{value}");
            } else {
                println!("{}", created.secret);
            }
        }
        TokenCommand::List => {
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = store
                .list_tokens()
                .await?
                .into_iter()
                .map(|t| {
                    let expired = from_ms(t.expires_at_ms) <= now;
                    vec![
                        t.token_hash[..12].to_owned(),
                        t.label,
                        format!("{}/{}", t.uses_left, t.uses_total),
                        humantime::format_rfc3339_seconds(from_ms(t.expires_at_ms)).to_string(),
                        if expired { "expired" } else { "valid" }.to_owned(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["HASH", "LABEL", "USES LEFT", "EXPIRES", "STATE"], &rows)
            );
        }
    }
    store.close().await;
    Ok(())
}

/// Opens the store for commands that work on it directly (tokens, revocation), creating the
/// data directory when the store is the default SQLite file in it, so `token create` works
/// before the first `serve`.
async fn open_store(config: &Config) -> Result<Store> {
    if config.store_url.is_empty() {
        firstline_support::files::create_private_dir(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let url = config.effective_store_url();
    Store::open(&url)
        .await
        .with_context(|| format!("opening store {url}"))
}

fn collector_url(config: &Config, args: &ReadArgs) -> String {
    args.collector
        .clone()
        .unwrap_or_else(|| admin_client::default_url(config.grpc_listen))
}

async fn hosts(config: &Config, args: &ReadArgs) -> Result<()> {
    let mut client = admin_client::connect(&collector_url(config, args), &config.data_dir).await?;
    let hosts = client
        .list_hosts(ListHostsRequest {})
        .await?
        .into_inner()
        .hosts;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::hosts_json(&hosts))?
        );
    } else {
        print!("{}", output::hosts_table(&hosts, SystemTime::now()));
    }
    Ok(())
}

async fn tickets(config: &Config, args: &TicketArgs) -> Result<()> {
    let mut client =
        admin_client::connect(&collector_url(config, &args.read), &config.data_dir).await?;
    let request = ListTicketsRequest {
        state: args.state.clone(),
        agent_id: args.agent.clone().unwrap_or_default(),
        limit: args.limit,
    };
    let tickets = client.list_tickets(request).await?.into_inner().tickets;
    if args.read.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::tickets_json(&tickets))?
        );
    } else {
        print!("{}", output::tickets_table(&tickets, SystemTime::now()));
    }
    Ok(())
}

async fn ticket(config: &Config, cmd: TicketCommand) -> Result<()> {
    use firstline_proto::v1::{GetTicketRequest, TicketAction, UpdateTicketRequest};
    let (r, action, text) = match cmd {
        TicketCommand::Show(r) => (r, None, String::new()),
        TicketCommand::Ack(r) => (r, Some(TicketAction::Acknowledge), String::new()),
        TicketCommand::Assign { ticket, who } => (ticket, Some(TicketAction::Assign), who),
        TicketCommand::Comment { ticket, text } => (ticket, Some(TicketAction::Comment), text),
        TicketCommand::Resolve { ticket, reason } => (ticket, Some(TicketAction::Resolve), reason),
        TicketCommand::Reopen { ticket, reason } => (ticket, Some(TicketAction::Reopen), reason),
        TicketCommand::Close(r) => (r, Some(TicketAction::Close), String::new()),
    };
    let mut client =
        admin_client::connect(&collector_url(config, &r.read), &config.data_dir).await?;
    let detail = match action {
        None => client.get_ticket(GetTicketRequest { id: r.id }).await,
        Some(a) => {
            client
                .update_ticket(UpdateTicketRequest {
                    id: r.id,
                    action: a as i32,
                    text,
                })
                .await
        }
    }
    .map_err(|s| anyhow::anyhow!("{}", s.message()))?
    .into_inner();
    if r.read.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        print!("{}", output::ticket_detail(&detail, SystemTime::now()));
    }
    Ok(())
}

async fn handoff(config: &Config, args: &HandoffArgs) -> Result<()> {
    use firstline_proto::v1::HandoffRequest;
    let mut client =
        admin_client::connect(&collector_url(config, &args.read), &config.data_dir).await?;
    let since_ms = now_ms() - i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX);
    let report = client
        .handoff(HandoffRequest { since_ms })
        .await?
        .into_inner();
    if args.read.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!(
            "{}",
            output::handoff(&report, SystemTime::now(), args.since)
        );
    }
    Ok(())
}

async fn silence(config: &Config, args: &SilenceArgs) -> Result<()> {
    use firstline_proto::v1::CreateSilenceRequest;
    let mut client =
        admin_client::connect(&collector_url(config, &args.read), &config.data_dir).await?;
    let ends_at_ms = now_ms() + i64::try_from(args.duration.as_millis()).unwrap_or(i64::MAX);
    let request = CreateSilenceRequest {
        host: args.host.clone().unwrap_or_default(),
        label: args.label.clone().unwrap_or_default(),
        rule: args.rule.clone().unwrap_or_default(),
        starts_at_ms: 0,
        ends_at_ms,
        reason: args.reason.clone(),
    };
    let s = client
        .create_silence(request)
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    if args.read.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "silence {} on {} {} until {}",
            s.id,
            s.matcher_kind,
            s.matcher_value,
            humantime::format_rfc3339_seconds(from_ms(s.ends_at_ms))
        );
    }
    Ok(())
}

async fn silences(config: &Config, args: &ReadArgs) -> Result<()> {
    use firstline_proto::v1::ListSilencesRequest;
    let mut client = admin_client::connect(&collector_url(config, args), &config.data_dir).await?;
    let list = client
        .list_silences(ListSilencesRequest {})
        .await?
        .into_inner()
        .silences;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|s| {
                vec![
                    s.id.to_string(),
                    format!("{} {}", s.matcher_kind, s.matcher_value),
                    humantime::format_rfc3339_seconds(from_ms(s.starts_at_ms)).to_string(),
                    humantime::format_rfc3339_seconds(from_ms(s.ends_at_ms)).to_string(),
                    s.created_by.clone(),
                    s.reason.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["ID", "MATCHES", "FROM", "UNTIL", "BY", "REASON"], &rows)
        );
    }
    Ok(())
}
