//! `firstline-collector user …`: local accounts of the dashboard and the HTTP API, on the store
//! directly (the collector may be stopped), like `token create`. The first admin is made here:
//! `user add NAME --role admin`. A password is read from standard input with
//! `--password-stdin` (first line), else asked for twice on the terminal without echo.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::output;
use crate::clock::{from_ms, now_ms};
use crate::config::Config;
use crate::service::{Role, Users};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (the first admin: `user add NAME --role admin`).
    Add {
        /// Letters, digits and . _ - @, at most 64.
        name: String,
        /// viewer (reads), technician (works tickets, silences, labels) or admin (also users,
        /// enrollment tokens, feeds).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List users with their role and whether they are disabled.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their sessions end now and their API tokens stop working.
    Disable {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Create an API token for a user (`Authorization: Bearer …`); printed once, stored hashed.
    Token {
        name: String,
        /// A note, e.g. the script that uses it.
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: crate::service::ServiceError| e.to_string())
}

pub async fn run(config: &Config, cmd: UserCommand) -> Result<()> {
    // Read the password before opening the store, so a prompt is not held up by it.
    let password = match &cmd {
        UserCommand::Add { password_stdin, .. } => Some(read_password(*password_stdin)?),
        _ => None,
    };
    let store = super::local::open_store(config).await?;
    let users = Users::new(store.clone());
    let outcome = run_on(&users, cmd, password).await;
    store.close().await;
    outcome
}

async fn run_on(users: &Users, cmd: UserCommand, password: Option<String>) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name, role, json, ..
        } => {
            let password = password.unwrap_or_default();
            let user = users.add(&name, role, &password, now_ms()).await?;
            if json {
                println!("{}", serde_json::to_string(&user)?);
            } else {
                println!("added {} ({})", user.name, user.role);
            }
        }
        UserCommand::List { json } => {
            let list = users.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.to_string(),
                            humantime::format_rfc3339_seconds(from_ms(u.created_at_ms)).to_string(),
                            if u.disabled { "disabled" } else { "active" }.to_owned(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(&["NAME", "ROLE", "CREATED", "STATE"], &rows)
                );
            }
        }
        UserCommand::Disable { name, json } => {
            let user = users.disable(&name, now_ms()).await?;
            if json {
                println!("{}", serde_json::to_string(&user)?);
            } else {
                println!(
                    "disabled {}; their sessions and API tokens no longer work",
                    user.name
                );
            }
        }
        UserCommand::Token { name, label, json } => {
            let created = users.create_token(&name, &label, now_ms()).await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!("{}", created.token);
            }
        }
    }
    Ok(())
}

/// The new password: the first line of stdin, or typed twice on the terminal without echo.
fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "standard input is not a terminal: pass --password-stdin and the password on its \
             first line"
        );
    }
    let first = prompt("Password: ")?;
    let second = prompt("Password again: ")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// Reads one line from the terminal with echo off (restored afterwards, also on error).
fn prompt(text: &str) -> Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    eprint!("{text}");
    std::io::stderr().flush().ok();
    tcsetattr(&stdin, OptionalActions::Flush, &quiet).context("turning terminal echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Flush, &saved);
    read.context("reading the password")?;
    restored.context("turning terminal echo back on")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
