//! Runs an external tool (package managers, `mdatp`, PowerShell) with a C locale, a timeout and
//! bounded output; the process is killed when it overruns, so a tool stuck on a lock cannot
//! hold the probe forever.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::ProbeError;

/// Most output read from one tool; the rest is discarded.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

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
        assert!(!available("no-such-tool-here"));
    }
}
