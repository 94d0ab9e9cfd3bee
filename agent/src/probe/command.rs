//! Runs an external tool (package managers, `mdatp`, PowerShell) with a C locale, a timeout and
//! bounded output; the process is killed when it overruns, so a tool stuck on a lock cannot
//! hold the probe forever. On Unix every tool runs at the lowest CPU priority (nice 19, which
//! also puts its I/O in the lowest best-effort level, see ioprio_set(2)), so a package
//! manager's refresh yields to whatever the user is doing.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::ProbeError;

/// Most output read from one tool; the rest is discarded.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

/// The nice value tools run at: the lowest priority there is.
#[cfg(unix)]
const TOOL_NICE: i32 = 19;

/// What a tool printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Whether `program` is on PATH. Blocks (a `stat` per PATH entry): call it through the probe's
/// `Offload`.
pub fn available(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs `program args` and waits at most `timeout`.
pub async fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output, ProbeError> {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProbeError::Failed(format!("cannot run {program}: {e}")))?;
    lower_priority(program, child.id());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            s.take(MAX_OUTPUT).read_to_end(&mut out).await.ok();
        }
        if let Some(s) = stderr.as_mut() {
            s.take(MAX_OUTPUT).read_to_end(&mut err).await.ok();
        }
        let status = child.wait().await;
        (status, out, err)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((status, out, err)) => Ok(Output {
            code: status.ok().and_then(|s| s.code()),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        }),
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

/// Drops a just-started tool to [`TOOL_NICE`] before it has done any real work (its own
/// children, apt's methods or dnf's plugins, inherit it). A failure is logged, not fatal: the
/// check is still worth having at normal priority.
#[cfg(unix)]
fn lower_priority(program: &str, pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = rustix::process::setpriority_process(Some(pid), TOOL_NICE) {
        tracing::debug!(program, error = %e, "could not lower the tool's priority");
    }
}

#[cfg(not(unix))]
fn lower_priority(_program: &str, _pid: Option<u32>) {}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_exit_code_and_timeout() {
        let out = run(
            "sh",
            &["-c", "echo hi; echo err >&2; exit 3"],
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "hi\n", "err\n")
        );
        let slow = run("sleep", &["30"], Duration::from_millis(200)).await;
        assert_eq!(
            slow.err(),
            Some(ProbeError::Timeout(Duration::from_millis(200)))
        );
        assert!(matches!(
            run("no-such-tool-here", &[], Duration::from_secs(1)).await,
            Err(ProbeError::Failed(_))
        ));
        assert!(available("sh"));
    }

    /// A tool runs at nice 19: what `ps`/`top` show for it while it works.
    #[tokio::test]
    async fn tools_run_at_the_lowest_priority() {
        // Field 19 of /proc/PID/stat is the nice value; the sleep lets the parent lower it.
        let out = run(
            "sh",
            &["-c", "sleep 0.3; cut -d' ' -f19 /proc/$$/stat"],
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout.trim(), "19", "stderr: {}", out.stderr);
        assert!(!available("no-such-tool-here"));
    }
}
