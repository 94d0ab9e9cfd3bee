//! Reboot detection by kernel: a newer kernel installed than the one running means the updates
//! take effect only after a reboot. Versions compare segment by segment, numbers as numbers.

use std::cmp::Ordering;

/// The newest installed kernel release if it is newer than `running`.
pub fn newer_installed(installed: &[String], running: &str) -> Option<String> {
    installed
        .iter()
        .filter(|k| compare_versions(k, running) == Ordering::Greater)
        .max_by(|a, b| compare_versions(a, b))
        .cloned()
}

/// Kernel releases from `/boot` file names (`vmlinuz-6.1.0-40-amd64` -> `6.1.0-40-amd64`).
pub fn releases_from_boot(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| n.strip_prefix("vmlinuz-"))
        .filter(|r| r.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

/// Compares dotted/dashed version strings: digit runs numerically, other runs as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (sa, sb) = (segments(a), segments(b));
    for (x, y) in sa.iter().zip(&sb) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    sa.len().cmp(&sb.len())
}

fn segments(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut digits = false;
    for (i, c) in s.char_indices() {
        let is_sep = !c.is_ascii_alphanumeric();
        let is_digit = c.is_ascii_digit();
        match start {
            Some(st) if is_sep || is_digit != digits => {
                out.push(&s[st..i]);
                start = (!is_sep).then_some(i);
            }
            None if !is_sep => start = Some(i),
            _ => {}
        }
        digits = is_digit;
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_newer_kernel_numerically() {
        let installed = releases_from_boot(&[
            "vmlinuz-6.1.0-9-amd64".into(),
            "vmlinuz-6.1.0-40-amd64".into(),
            "vmlinuz-6.1.0-10-amd64".into(),
            "vmlinuz-linux".into(),
            "config-6.1.0-40-amd64".into(),
        ]);
        assert_eq!(
            newer_installed(&installed, "6.1.0-10-amd64").as_deref(),
            Some("6.1.0-40-amd64")
        );
        assert_eq!(newer_installed(&installed, "6.1.0-40-amd64"), None);
        assert_eq!(
            compare_versions("5.14.0-427.el9", "5.14.0-70.el9"),
            Ordering::Greater
        );
        assert_eq!(compare_versions("6.8.0", "6.8.0"), Ordering::Equal);
    }
}
