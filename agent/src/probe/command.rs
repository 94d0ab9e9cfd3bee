//! Runs an external tool (package managers, `mdatp`, PowerShell) with a C locale, a time,
//! CPU and memory budget and bounded output. On Unix the tool leads its own process group and
//! runs at the lowest CPU priority (nice 19); on Linux also in the idle scheduling class and
//! the idle I/O class (through util-linux's `chrt --idle` and `ionice -c 3`, which exec the
//! tool, where they are installed), so a package manager's refresh yields to whatever the
//! user is doing. On Linux the tool's process tree is sampled while it runs (`usage`): a tree that
//! goes over its CPU or memory budget, or a tool that overruns its time, is killed with its
//! whole group and the probe says which tool it was and what it used.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::ProbeError;

/// Most output read from one tool; the rest is discarded.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

/// The nice value tools run at: the lowest priority there is.
#[cfg(unix)]
const TOOL_NICE: i32 = 19;

/// How often a running tool's CPU and memory are looked at.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Largest resident memory any tool's process tree has had in this process, in bytes (what
/// the probe benchmark reports as the children's peak).
static PEAK_TREE_RSS: AtomicU64 = AtomicU64::new(0);

/// What a tool may use before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Wall time.
    pub time: Duration,
    /// CPU time (user + system) of the tool and everything it starts.
    pub cpu: Duration,
    /// Resident memory of the tool's process tree, in bytes.
    pub memory: u64,
}

impl Budget {
    /// `time` of wall time with the default CPU and memory budget of external tools: a
    /// minute of CPU, 1 GiB resident (a package manager's metadata load stays far below).
    pub const fn time(time: Duration) -> Self {
        Self {
            time,
            cpu: Duration::from_secs(60),
            memory: 1024 * 1024 * 1024,
        }
    }
}

/// What a tool's process tree used, as sampled while it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Duration,
    /// Largest resident memory of the whole tree at one sample, in bytes.
    pub peak_rss: u64,
}

/// What a tool printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub usage: Usage,
}

/// Whether `program` is on PATH. Blocks (a `stat` per PATH entry): call it through the probe's
/// `Offload`.
pub fn available(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The largest resident memory of any tool's process tree so far, in bytes.
pub fn peak_tree_rss() -> u64 {
    PEAK_TREE_RSS.load(Ordering::Relaxed)
}

/// Runs `program args` and waits at most `timeout`, with the default CPU and memory budget.
pub async fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output, ProbeError> {
    run_within(program, args, Budget::time(timeout)).await
}

/// Runs `program args` within `budget`.
pub async fn run_within(
    program: &str,
    args: &[&str],
    budget: Budget,
) -> Result<Output, ProbeError> {
    let mut command = idle_command(program)?;
    command
        .args(args)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| ProbeError::Failed(format!("cannot run {program}: {e}")))?;
    let pid = child.id();
    let group = Group::new(pid);
    lower_priority(program, pid);
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
    let mut meter = usage::Meter::new(pid);
    let watch = async {
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let used = meter.sample();
            if used.cpu > budget.cpu {
                return ProbeError::OverBudget(format!(
                    "{program} used {:.1} s of CPU, over its budget of {:.1} s; stopped",
                    used.cpu.as_secs_f64(),
                    budget.cpu.as_secs_f64()
                ));
            }
            if used.peak_rss > budget.memory {
                return ProbeError::OverBudget(format!(
                    "{program} used {} MiB of memory, over its budget of {} MiB; stopped",
                    used.peak_rss / (1024 * 1024),
                    budget.memory / (1024 * 1024)
                ));
            }
        }
    };
    let ended = tokio::select! {
        ended = tokio::time::timeout(budget.time, work) => ended.map_err(|_| ProbeError::Timeout(budget.time)),
        over = watch => Err(over),
    };
    let usage = meter.last();
    PEAK_TREE_RSS.fetch_max(usage.peak_rss, Ordering::Relaxed);
    match ended {
        Ok((status, out, err)) => {
            // The leader is reaped: its group id may be reused, never signal it again.
            group.disarm();
            tracing::debug!(
                program,
                cpu_ms = usage.cpu.as_millis() as u64,
                peak_rss_kib = usage.peak_rss / 1024,
                "tool finished"
            );
            Ok(Output {
                code: status.ok().and_then(|s| s.code()),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
                usage,
            })
        }
        Err(error) => {
            tracing::warn!(program, %error, "tool stopped");
            Err(error)
        }
    }
}

/// `program` behind the idle-priority wrappers this machine has (Linux: `ionice -c 3 -t`,
/// `chrt --idle 0`; each execs the next, so no process is added). A tool not on PATH is an
/// error here, as spawning it directly would be.
fn idle_command(program: &str) -> Result<Command, ProbeError> {
    #[cfg(target_os = "linux")]
    {
        static WRAPPERS: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
        let (ionice, chrt) = *WRAPPERS.get_or_init(|| (available("ionice"), available("chrt")));
        if !(ionice || chrt) {
            return Ok(Command::new(program));
        }
        if !available(program) && !std::path::Path::new(program).is_file() {
            return Err(ProbeError::Failed(format!(
                "cannot run {program}: not found on PATH"
            )));
        }
        let mut argv: Vec<&str> = Vec::new();
        if ionice {
            argv.extend(["ionice", "-c", "3", "-t"]);
        }
        if chrt {
            argv.extend(["chrt", "--idle", "0"]);
        }
        let mut command = Command::new(argv[0]);
        command.args(&argv[1..]).arg(program);
        Ok(command)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(Command::new(program))
}

/// The tool's process group, killed as a whole when the run ends before the tool did
/// (timeout, budget, the probe cut off): a package manager's helpers go with it.
struct Group {
    #[cfg(unix)]
    leader: Option<rustix::process::Pid>,
}

impl Group {
    fn new(pid: Option<u32>) -> Self {
        #[cfg(unix)]
        {
            Self {
                leader: pid
                    .and_then(|p| i32::try_from(p).ok())
                    .and_then(rustix::process::Pid::from_raw),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = pid;
            Self {}
        }
    }

    fn disarm(mut self) {
        #[cfg(unix)]
        {
            self.leader = None;
        }
        #[cfg(not(unix))]
        let _ = &mut self;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The leader is not reaped yet (the child handle still lives in `run_within`'s frame
        // or was just dropped with kill_on_drop, which kills but reaps later), so the group id
        // is still this tool's.
        #[cfg(unix)]
        if let Some(leader) = self.leader {
            let _ = rustix::process::kill_process_group(leader, rustix::process::Signal::KILL);
        }
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

/// Sampling a process tree's CPU and memory from `/proc` (Linux; elsewhere nothing is
/// sampled and only the time budget holds). The parsers are pure and compiled everywhere.
pub mod usage {
    use std::time::Duration;

    use super::Usage;

    /// CPU ticks (utime + stime + cutime + cstime) from a `/proc/PID/stat` line: the tool and
    /// the children it has already reaped.
    pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3 of stat(5), utime 14 … cstime 17.
        let tick = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        Some(tick(14)? + tick(15)? + tick(16)? + tick(17)?)
    }

    /// `VmRSS` from `/proc/PID/status`, in bytes (absent for a zombie: 0).
    pub fn parse_status_rss(status: &str) -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    /// The pids in a `/proc/PID/task/TID/children` file.
    pub fn parse_children(text: &str) -> Vec<u32> {
        text.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Samples one tool's tree; remembers the largest figures seen.
    #[derive(Debug)]
    pub struct Meter {
        #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
        root: Option<u32>,
        last: Usage,
    }

    impl Meter {
        pub fn new(root: Option<u32>) -> Self {
            Self {
                root,
                last: Usage::default(),
            }
        }

        /// The largest figures so far.
        pub fn last(&self) -> Usage {
            self.last
        }

        /// Reads the tree now (a few small `/proc` files; they never wait on a disk). Each
        /// process of the tree counts its own CPU and its reaped children's, so every process
        /// that ever ran is counted once: alive (or a zombie) by itself, reaped in its parent.
        #[cfg(target_os = "linux")]
        pub fn sample(&mut self) -> Usage {
            let Some(root) = self.root else {
                return self.last;
            };
            let (mut ticks, mut rss) = (0, 0);
            let mut todo = vec![root];
            let mut seen = 0;
            while let Some(pid) = todo.pop() {
                seen += 1;
                if seen > 4096 {
                    break;
                }
                let dir = format!("/proc/{pid}");
                ticks += std::fs::read_to_string(format!("{dir}/stat"))
                    .ok()
                    .as_deref()
                    .and_then(parse_stat_ticks)
                    .unwrap_or(0);
                rss += std::fs::read_to_string(format!("{dir}/status"))
                    .map(|s| parse_status_rss(&s))
                    .unwrap_or(0);
                if let Ok(text) = std::fs::read_to_string(format!("{dir}/task/{pid}/children")) {
                    todo.extend(parse_children(&text));
                }
            }
            let hz = rustix::param::clock_ticks_per_second().max(1);
            self.last = Usage {
                cpu: self.last.cpu.max(Duration::from_millis(ticks * 1000 / hz)),
                peak_rss: self.last.peak_rss.max(rss),
            };
            self.last
        }

        #[cfg(not(target_os = "linux"))]
        pub fn sample(&mut self) -> Usage {
            self.last
        }
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

    /// On Linux a tool runs in the idle CPU scheduling class (SCHED_IDLE, policy 5: field 41
    /// of /proc/PID/stat) and the idle I/O class, as `ionice` shows it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn tools_run_in_the_idle_cpu_and_io_classes() {
        assert!(
            available("ionice") && available("chrt"),
            "util-linux is installed"
        );
        let out = run(
            "sh",
            &["-c", "ionice -p $$; cut -d' ' -f41 /proc/$$/stat"],
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout, "idle\n5\n", "stderr: {}", out.stderr);
    }

    #[test]
    fn proc_parsers() {
        // stat(5): a name with a space and a parenthesis; utime 250, stime 50, cutime 7,
        // cstime 3 (fields 14-17).
        let stat = "4242 (apt get) x) S 1 4242 4242 0 -1 4194560 2810 0 0 0 250 50 7 3 39 19 1 0 \
                    123 85000000 20000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(usage::parse_stat_ticks(stat), Some(310));
        assert_eq!(usage::parse_stat_ticks("garbage"), None);
        assert_eq!(usage::parse_stat_ticks("1 (x) S 1 2"), None);
        let status =
            "Name:\tapt-get\nVmPeak:\t  90000 kB\nVmHWM:\t   83000 kB\nVmRSS:\t   81234 kB\n";
        assert_eq!(usage::parse_status_rss(status), 81234 * 1024);
        assert_eq!(usage::parse_status_rss("Name:\tzombie\nState:\tZ\n"), 0);
        assert_eq!(usage::parse_children("12 13 \n"), [12, 13]);
        assert!(usage::parse_children("").is_empty());
    }

    /// A tool that spins past its CPU budget is stopped, with its children, and the error
    /// says which tool and what it used.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_tool_over_its_cpu_budget_is_stopped() {
        let budget = Budget {
            cpu: Duration::from_millis(300),
            ..Budget::time(Duration::from_secs(60))
        };
        let started = std::time::Instant::now();
        // The spinning child runs in the tool's group: it goes too.
        let err = run_within(
            "sh",
            &["-c", "sh -c 'while :; do :; done' & while :; do :; done"],
            budget,
        )
        .await
        .expect_err("stopped");
        let ProbeError::OverBudget(text) = &err else {
            panic!("{err:?}");
        };
        assert!(text.starts_with("sh used "), "{text}");
        assert!(
            text.contains("s of CPU, over its budget of 0.3 s"),
            "{text}"
        );
        assert_eq!(err.state(), "over_budget");
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "not the wall timeout"
        );
    }

    /// A tool whose memory grows past its budget is stopped.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_tool_over_its_memory_budget_is_stopped() {
        let budget = Budget {
            memory: 64 * 1024 * 1024,
            ..Budget::time(Duration::from_secs(60))
        };
        let err = run_within(
            "python3",
            &[
                "-c",
                "import time\nx = bytearray(256 << 20)\ntime.sleep(30)",
            ],
            budget,
        )
        .await
        .expect_err("stopped");
        let ProbeError::OverBudget(text) = &err else {
            panic!("{err:?}");
        };
        assert!(text.starts_with("python3 used "), "{text}");
        assert!(
            text.ends_with("MiB of memory, over its budget of 64 MiB; stopped"),
            "{text}"
        );
    }

    /// What a finished tool used is measured from its tree.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_finished_tool_reports_what_it_used() {
        let out = run_within(
            "python3",
            &[
                "-c",
                "import time\nx = bytearray(48 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n",
            ],
            Budget::time(Duration::from_secs(60)),
        )
        .await
        .expect("runs");
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.usage.peak_rss >= 40 * 1024 * 1024, "{:?}", out.usage);
        assert!(
            out.usage.cpu >= Duration::from_millis(200),
            "{:?}",
            out.usage
        );
        assert!(peak_tree_rss() >= out.usage.peak_rss);
    }
}
