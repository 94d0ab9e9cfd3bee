//! Open-file limits. Every simulated agent holds one socket, so 100k agents need 100k file
//! descriptors: the soft limit is raised to the hard one, and as root the hard one as far as
//! the kernel allows (`/proc/sys/fs/nr_open`). When that is still too few the run stops with
//! the numbers, instead of failing later with "too many open files".

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors besides the agents' sockets (enrollment channels, /proc reads, stdio, runtime).
pub const SPARE: u64 = 256;

/// What the limit is now, and what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub now: u64,
}

/// Raises `RLIMIT_NOFILE` as far as allowed and returns the resulting soft limit.
pub fn raise() -> FdLimit {
    let old = getrlimit(Resource::Nofile);
    let before = old.current.unwrap_or(u64::MAX);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    // First try the kernel's ceiling (works as root), then the hard limit we have.
    let hard = old.maximum.unwrap_or(u64::MAX);
    let mut tries = Vec::new();
    if let Some(n) = nr_open.filter(|n| *n > hard) {
        tries.push(n);
    }
    tries.push(hard);
    for limit in tries {
        let new = Rlimit {
            current: Some(limit),
            maximum: Some(limit.max(hard)),
        };
        if setrlimit(Resource::Nofile, new).is_ok() {
            break;
        }
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    FdLimit { before, now }
}

/// The descriptors `agents` simulated agents need.
pub fn needed(agents: usize) -> u64 {
    agents as u64 + SPARE
}

/// Ephemeral ports per source address towards one collector address, from
/// `/proc/sys/net/ipv4/ip_local_port_range` (Linux default 32768–60999).
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| parse_port_range(&s))
        .unwrap_or(28_232)
}

pub fn parse_port_range(text: &str) -> Option<u64> {
    let mut it = text.split_whitespace().map(|p| p.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (hi >= lo).then(|| hi - lo + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 1024"), Some(1));
        assert_eq!(parse_port_range("9 1"), None);
        assert_eq!(parse_port_range(""), None);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let l = raise();
        assert!(l.now >= l.before.min(1024));
    }
}
