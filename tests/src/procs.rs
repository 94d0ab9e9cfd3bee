//! The collector and the agent as real child processes, configured through their TOML files and
//! driven through their command lines, as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{bins, free_port, wait_for};

/// A `firstline-collector serve` process with its own data directory and port.
pub struct CollectorProc {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
}

/// A `firstline-agent` with its own state directory and config; `run` is started on demand.
pub struct AgentProc {
    child: Option<Child>,
    pub state_dir: PathBuf,
    pub config: PathBuf,
}

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

impl CollectorProc {
    /// Writes a config (listen port, data dir, plus `extra` TOML) in `dir` and starts serving.
    pub fn start(dir: &Path, extra: &str) -> Self {
        let port = free_port();
        let data_dir = dir.join("collector");
        let config = dir.join("collector.toml");
        let text = format!(
            "data_dir = {:?}\n{extra}\n[grpc]\nlisten = \"127.0.0.1:{port}\"\n",
            data_dir.display().to_string()
        );
        std::fs::write(&config, text).expect("write collector config");
        let mut me = Self {
            child: None,
            data_dir,
            config,
            port,
        };
        me.restart();
        me
    }

    /// Starts (again) on the same port and data directory; returns once the admin API answers.
    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.config.with_extension("log")).expect("log file");
        let child = Command::new(bins::collector())
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start collector");
        self.child = Some(child);
        wait_for("the collector to answer", Duration::from_secs(60), || {
            self.cli(&["hosts"]).status.success().then_some(())
        });
    }

    /// Stops the process (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
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
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
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
