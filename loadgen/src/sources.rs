//! Local source addresses for the simulated agents' connections. One loopback address has
//! only about 28,000 ephemeral ports towards one collector port, so a fleet of 100k agents
//! is spread over several addresses of 127.0.0.0/8 (all local on Linux without setup).
//! `--sources` takes a range `127.0.0.1-127.0.0.16`, a list `127.0.0.1,127.0.0.2`, or a count
//! `16` (that many addresses from 127.0.0.1 up).

use std::net::{IpAddr, Ipv4Addr};

/// The most addresses one `--sources` may name (a typo such as `127.0.0.1-127.9.0.1` would
/// otherwise allocate millions).
const MAX_SOURCES: u32 = 65_536;

/// Why a `--sources` value is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcesError {
    #[error("{0:?} is not an IP address")]
    Address(String),
    #[error("range {0} - {1} runs backwards")]
    Backwards(Ipv4Addr, Ipv4Addr),
    #[error("a range must join two IPv4 addresses: {0:?}")]
    RangeFamily(String),
    #[error("{0} addresses is too many (at most {MAX_SOURCES})")]
    TooMany(u64),
    #[error("no source addresses given")]
    Empty,
}

/// Parses a `--sources` value into the list of addresses, in order.
pub fn parse(spec: &str) -> Result<Vec<IpAddr>, SourcesError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(SourcesError::Empty);
    }
    if let Ok(count) = spec.parse::<u64>() {
        return count_from_loopback(count);
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((from, to)) => out.extend(range(part, from.trim(), to.trim())?),
            None => out.push(address(part)?),
        }
        if out.len() as u64 > u64::from(MAX_SOURCES) {
            return Err(SourcesError::TooMany(out.len() as u64));
        }
    }
    if out.is_empty() {
        return Err(SourcesError::Empty);
    }
    Ok(out)
}

/// The source address of agent `n`: agents are dealt round-robin over the addresses.
pub fn for_agent(sources: &[IpAddr], n: usize) -> Option<IpAddr> {
    (!sources.is_empty()).then(|| sources[n % sources.len()])
}

fn count_from_loopback(count: u64) -> Result<Vec<IpAddr>, SourcesError> {
    if count == 0 {
        return Err(SourcesError::Empty);
    }
    if count > u64::from(MAX_SOURCES) {
        return Err(SourcesError::TooMany(count));
    }
    let first = u32::from(Ipv4Addr::new(127, 0, 0, 1));
    Ok((0..count as u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(first + i)))
        .collect())
}

fn address(text: &str) -> Result<IpAddr, SourcesError> {
    text.parse()
        .map_err(|_| SourcesError::Address(text.to_owned()))
}

fn range(whole: &str, from: &str, to: &str) -> Result<Vec<IpAddr>, SourcesError> {
    let (IpAddr::V4(a), IpAddr::V4(b)) = (address(from)?, address(to)?) else {
        return Err(SourcesError::RangeFamily(whole.to_owned()));
    };
    let (lo, hi) = (u32::from(a), u32::from(b));
    if hi < lo {
        return Err(SourcesError::Backwards(a, b));
    }
    let n = u64::from(hi - lo) + 1;
    if n > u64::from(MAX_SOURCES) {
        return Err(SourcesError::TooMany(n));
    }
    Ok((lo..=hi).map(|v| IpAddr::V4(Ipv4Addr::from(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<&[&str], SourcesError>) {
        let got = parse(spec).map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>());
        let expected = expected.map(|v| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{spec}");
    }

    #[test]
    fn ranges_lists_and_counts() {
        check("127.0.0.1", Ok(&["127.0.0.1"]));
        check(
            "127.0.0.1-127.0.0.3",
            Ok(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]),
        );
        check("127.0.0.255-127.0.1.0", Ok(&["127.0.0.255", "127.0.1.0"]));
        check("127.0.0.5, ::1", Ok(&["127.0.0.5", "::1"]));
        check("2", Ok(&["127.0.0.1", "127.0.0.2"]));
        check(
            "127.0.0.1-127.0.0.2,127.0.0.9",
            Ok(&["127.0.0.1", "127.0.0.2", "127.0.0.9"]),
        );
    }

    #[test]
    fn mistakes_are_named() {
        check("0", Err(SourcesError::Empty));
        check(" ", Err(SourcesError::Empty));
        check("localhost", Err(SourcesError::Address("localhost".into())));
        check(
            "127.0.0.3-127.0.0.1",
            Err(SourcesError::Backwards(
                Ipv4Addr::new(127, 0, 0, 3),
                Ipv4Addr::new(127, 0, 0, 1),
            )),
        );
        check(
            "127.0.0.1-::1",
            Err(SourcesError::RangeFamily("127.0.0.1-::1".into())),
        );
        check("127.0.0.0-127.9.0.0", Err(SourcesError::TooMany(589_825)));
        check("100000", Err(SourcesError::TooMany(100_000)));
    }

    #[test]
    fn agents_are_dealt_round_robin() {
        let s = parse("127.0.0.1-127.0.0.2").expect("valid");
        assert_eq!(for_agent(&s, 0), Some(s[0]));
        assert_eq!(for_agent(&s, 3), Some(s[1]));
        assert_eq!(for_agent(&[], 3), None);
    }
}
