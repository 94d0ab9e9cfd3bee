//! CPU and memory of processes from `/proc`: the load generator's own (so its cost per report
//! is known and can be told apart from the collector's), and that of each `--measure-pid` with
//! all its descendants (the collector, or PostgreSQL's postmaster and its backends).
//!
//! A tree's CPU is, over its live processes, `utime + stime` plus `cutime + cstime`: the
//! second pair holds the children that exited and were reaped (PostgreSQL backends that
//! ended with their connection), so nothing is counted twice and nothing that ended is lost.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

/// The fields of `/proc/PID/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub own_ticks: u64,
    /// cutime + cstime (reaped children), in clock ticks.
    pub children_ticks: u64,
}

/// CPU time and resident memory of a process tree at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TreeSample {
    pub cpu: Duration,
    pub rss_bytes: u64,
    pub processes: usize,
}

/// Parses one `/proc/PID/stat` line. The command name is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let pid = line.split_whitespace().next()?.parse().ok()?;
    let rest = &line[line.rfind(')')? + 1..];
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    let signed = |n: usize| -> Option<u64> {
        let v: i64 = f.get(n - 3)?.parse().ok()?;
        Some(v.max(0) as u64)
    };
    Some(Stat {
        pid,
        ppid: u32::try_from(field(4)?).ok()?,
        own_ticks: field(14)? + field(15)?,
        children_ticks: signed(16)? + signed(17)?,
    })
}

/// `VmRSS` (or another `kB` field such as `VmHWM`) of a `/proc/PID/status` text, in bytes.
pub fn status_kb_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let value = l.strip_prefix(name)?.strip_prefix(':')?;
        let kb: u64 = value.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// The pids of `root` and all its descendants among `stats`.
pub fn tree(root: u32, stats: &[Stat]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in stats {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut out = Vec::new();
    if !stats.iter().any(|s| s.pid == root) {
        return out;
    }
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        out.push(pid);
        if let Some(c) = children.get(&pid) {
            todo.extend(c.iter().copied().filter(|c| *c != pid));
        }
    }
    out
}

/// The CPU ticks of a tree (see the module doc).
pub fn tree_ticks(root: u32, stats: &[Stat]) -> u64 {
    let by_pid: HashMap<u32, &Stat> = stats.iter().map(|s| (s.pid, s)).collect();
    tree(root, stats)
        .iter()
        .filter_map(|p| by_pid.get(p))
        .map(|s| s.own_ticks + s.children_ticks)
        .sum()
}

/// Every process's stat line now; processes that vanish meanwhile are skipped.
pub fn all_stats() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|l| parse_stat(&l))
        .collect()
}

/// CPU time and summed `VmRSS` of `root` and its descendants; `None` when `root` is gone.
pub fn sample_tree(root: u32) -> Option<TreeSample> {
    let stats = all_stats();
    let pids = tree(root, &stats);
    if pids.is_empty() {
        return None;
    }
    let rss_bytes = pids
        .iter()
        .filter_map(|p| fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| status_kb_field(&s, "VmRSS"))
        .sum();
    Some(TreeSample {
        cpu: ticks(tree_ticks(root, &stats)),
        rss_bytes,
        processes: pids.len(),
    })
}

/// This process's CPU time (all threads, user + system) and peak resident memory, the same
/// numbers `getrusage(RUSAGE_SELF)` gives.
pub fn own() -> (Duration, u64) {
    let cpu = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|l| parse_stat(&l))
        .map_or(Duration::ZERO, |s| ticks(s.own_ticks));
    let peak = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_kb_field(&s, "VmHWM"))
        .unwrap_or(0);
    (cpu, peak)
}

/// Clock ticks per second of `/proc/PID/stat`: Linux reports these times in `USER_HZ`, which
/// is 100 on every architecture it runs on here (x86, arm64, riscv), whatever the kernel's HZ.
const USER_HZ: u64 = 100;

fn ticks(t: u64) -> Duration {
    Duration::from_micros(t.saturating_mul(1_000_000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL backend's line as Linux 6.x prints it (trimmed after field 24).
    const PG_LINE: &str = "4242 (postgres: postgres bench 127.0.0.1(5) idle) S 4100 4100 4100 0 -1 \
        4194560 1200 0 0 0 157 43 12 8 20 0 1 0 987654 221184000 3000";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let s = parse_stat(PG_LINE).expect("parses");
        assert_eq!(
            s,
            Stat {
                pid: 4242,
                ppid: 4100,
                own_ticks: 200,
                children_ticks: 20
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("12 (x) S"), None);
    }

    #[test]
    fn status_fields_in_bytes() {
        let status = "Name:\tcollector\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kb_field(status, "VmRSS"), Some(10 * 1024 * 1024));
        assert_eq!(status_kb_field(status, "VmHWM"), Some(20 * 1024 * 1024));
        assert_eq!(status_kb_field(status, "VmSwap"), None);
    }

    #[test]
    fn a_tree_sums_live_descendants_and_their_reaped_children() {
        let s = |pid, ppid, own, children| Stat {
            pid,
            ppid,
            own_ticks: own,
            children_ticks: children,
        };
        let stats = [
            s(1, 0, 1000, 0),
            s(10, 1, 100, 50), // the root: 50 ticks of backends that ended
            s(11, 10, 7, 0),
            s(12, 11, 3, 0),
            s(20, 1, 999, 0), // not ours
        ];
        let mut pids = tree(10, &stats);
        pids.sort_unstable();
        assert_eq!(pids, vec![10, 11, 12]);
        assert_eq!(tree_ticks(10, &stats), 160);
        assert_eq!(tree_ticks(99, &stats), 0);
    }

    #[test]
    fn own_numbers_are_plausible() {
        let (_cpu, peak) = own();
        assert!(peak > 0);
        assert!(sample_tree(std::process::id()).is_some_and(|t| t.rss_bytes > 0));
    }
}
