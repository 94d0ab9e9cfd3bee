//! The collector and the agent as real child processes, configured through their TOML files and
//! driven through their command lines, as an operator would. The collector binds port 0 and the
//! port it got is read from its log, so parallel tests never race for a port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::admin::Admin;
use crate::{bins, wait_for};

/// The collector's log message that carries its bound gRPC address.
const SERVING_GRPC: &str = "collector serving gRPC";

/// A `firstline-collector serve` process with its own data directory and port.
pub struct CollectorProc {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    /// The port the collector bound on its first start; restarts bind it again.
    pub port: u16,
    extra: String,
}

/// A `firstline-agent` with its own state directory and config; `run` is started on demand.
pub struct AgentProc {
    child: Option<Child>,
    pub state_dir: PathBuf,
    pub config: PathBuf,
}

/// How long a process gets to start; a safety net, not a performance assertion.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs a command to completion and returns its output.
fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run command")
}

/// Sends SIGTERM and waits for the process to exit.
fn terminate(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id())
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = child.wait();
}

/// Parses the address out of the collector's log line with `message`: `addr=127.0.0.1:PORT`,
/// or `addr=Some(127.0.0.1:PORT)` as an `Option` prints in `Debug`; colours and quotes ignored.
pub fn logged_addr(log: &str, message: &str) -> Option<SocketAddr> {
    let plain = strip_ansi(log);
    plain
        .lines()
        .filter(|l| l.contains(message))
        .find_map(|line| {
            let value = &line[line.find("addr=")? + "addr=".len()..];
            let token = value.split_whitespace().next()?.trim_matches('"');
            let token = token
                .strip_prefix("Some(")
                .and_then(|t| t.strip_suffix(')'))
                .unwrap_or(token);
            token.trim_matches('"').parse().ok()
        })
}

/// `text` without ANSI escape sequences (ESC [ ... final byte).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// Live processes (zombies aside) whose environment holds `marker` (`NAME=value`): what a
/// command started with that variable left running, its children's children included.
pub fn processes_with_env(marker: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        })
        .filter(|pid| {
            // The state follows the command name in parentheses; Z and X are gone.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X']))
            })
        })
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (pid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

impl CollectorProc {
    /// Writes a config (data dir, plus `extra` TOML, listening on port 0) in `dir` and starts
    /// serving; the config is then rewritten with the port the collector got, so the CLI (which
    /// finds the collector through the config) and restarts use it.
    pub fn start(dir: &Path, extra: &str) -> Self {
        let mut me = Self {
            child: None,
            data_dir: dir.join("collector"),
            config: dir.join("collector.toml"),
            port: 0,
            extra: extra.to_owned(),
        };
        me.restart();
        me
    }

    /// Replaces the extra TOML the next `restart` writes into the config.
    pub fn set_extra(&mut self, extra: &str) {
        extra.clone_into(&mut self.extra);
    }

    /// Starts (again) with the same data directory, on the port of the first start (the
    /// enrolled agents know it); returns once the admin API answers.
    pub fn restart(&mut self) {
        self.write_config();
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let child = Command::new(bins::collector())
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start collector");
        // Kept in `self` first, so a panic below still stops it (on drop).
        self.child = Some(child);
        let log_path = self.log_path();
        let addr = wait_for("the collector's gRPC address in its log", LIMIT, || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the collector exited ({status}) before serving:\n{log}");
            }
            logged_addr(&log, SERVING_GRPC)
        });
        if self.port == 0 {
            self.port = addr.port();
            self.write_config();
        }
        assert_eq!(
            addr.port(),
            self.port,
            "the collector did not bind its port"
        );
        wait_for("the collector to answer", LIMIT, || {
            self.cli(&["hosts"]).status.success().then_some(())
        });
    }

    fn write_config(&self) {
        let text = format!(
            "data_dir = {:?}\n{}\n[grpc]\nlisten = \"127.0.0.1:{}\"\n",
            self.data_dir.display().to_string(),
            self.extra,
            self.port
        );
        std::fs::write(&self.config, text).expect("write collector config");
    }

    fn log_path(&self) -> PathBuf {
        self.config.with_extension("log")
    }

    /// Stops the process (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Kills the process (SIGKILL: no shutdown, nothing released on purpose) and waits for it,
    /// as a crash or an OOM kill would end it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `firstline-collector --config <file> ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        output(
            Command::new(bins::collector())
                .arg("--config")
                .arg(&self.config)
                .args(args),
        )
    }

    /// Runs a CLI command that must succeed and prints JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "firstline-collector {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// The newest sequence number the collector stored for `agent_id` (`hosts --json`).
    pub fn host_last_seq(&self, agent_id: &str) -> Option<u64> {
        let hosts = self.json(&["hosts", "--json"]);
        let host = hosts
            .as_array()?
            .iter()
            .find(|h| h["agent_id"] == agent_id)?;
        host["last_seq"].as_u64()
    }

    /// A fresh one-use enrollment token.
    pub fn token(&self) -> String {
        let out = self.cli(&["token", "create", "--label", "test"]);
        assert!(
            out.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The SQLite store URL of this collector, for reading it directly.
    pub fn store_url(&self) -> String {
        format!("sqlite://{}", self.data_dir.join("firstline.db").display())
    }

    /// The collector's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A client of the admin API (what the CLI uses), for typed reads of hosts and tickets.
    pub fn admin(&self) -> Admin {
        Admin::connect(&self.url(), &self.data_dir)
    }
}

impl Drop for CollectorProc {
    fn drop(&mut self) {
        self.stop();
    }
}

impl AgentProc {
    /// Writes the agent config (`extra` TOML) in `dir`.
    pub fn new(dir: &Path, extra: &str) -> Self {
        let state_dir = dir.join("agent");
        let config = dir.join("agent.toml");
        let text = format!(
            "state_dir = {:?}\n{extra}\n",
            state_dir.display().to_string()
        );
        std::fs::write(&config, text).expect("write agent config");
        Self {
            child: None,
            state_dir,
            config,
        }
    }

    /// Runs `firstline-agent --config <file> ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        output(
            Command::new(bins::agent())
                .arg("--config")
                .arg(&self.config)
                .args(args),
        )
    }

    /// Enrolls with the collector using a fresh token.
    pub fn enroll(&self, collector: &CollectorProc) {
        let token = collector.token();
        let ca = collector.data_dir.join("ca.crt").display().to_string();
        let url = collector.url();
        let out = self.cli(&[
            "enroll",
            "--collector",
            &url,
            "--token",
            &token,
            "--ca-file",
            &ca,
        ]);
        assert!(
            out.status.success(),
            "enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `run`.
    pub fn start(&mut self) {
        self.start_with_env(&[]);
    }

    /// Starts `run` with extra environment variables (e.g. `APT_CONFIG`).
    pub fn start_with_env(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.with_extension("log"))
            .expect("log file");
        let child = Command::new(bins::agent())
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("RUST_LOG", "info,firstline_agent=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start agent");
        self.child = Some(child);
    }

    /// Stops `run` (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Kills `run` (SIGKILL: no shutdown, as a crash, an OOM kill or a power cut ends it) and
    /// waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// The agent id from `status`.
    pub fn agent_id(&self) -> String {
        self.status()["agent_id"]
            .as_str()
            .expect("agent_id")
            .to_owned()
    }

    /// The agent's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_address_is_read_from_the_log_in_either_form() {
        let addr: SocketAddr = "127.0.0.1:40123".parse().expect("addr");
        let cases = [
            "2025-01-01T00:00:00Z  INFO firstline_collector::server: collector serving gRPC addr=127.0.0.1:40123",
            "2025-01-01T00:00:00Z  INFO firstline_collector::server: collector serving gRPC addr=Some(127.0.0.1:40123)",
            "\u{1b}[2m2025\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m collector serving gRPC \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0mSome(127.0.0.1:40123)",
            "collector serving gRPC addr=\"127.0.0.1:40123\" tls=true",
        ];
        for line in cases {
            let log =
                format!("starting\n{line}\ncollector serving the HTTP API addr=127.0.0.1:1\n");
            assert_eq!(logged_addr(&log, SERVING_GRPC), Some(addr), "{line}");
        }
        assert_eq!(logged_addr("collector starting\n", SERVING_GRPC), None);
        assert_eq!(
            logged_addr("collector serving gRPC addr=None\n", SERVING_GRPC),
            None
        );
    }
}
