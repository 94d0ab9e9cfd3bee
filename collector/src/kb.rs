//! Knowledge-base articles: markdown steps attached to tickets. The articles in `docs/kb/` are
//! built into the binary; an operator's directory (`tickets.kb_dir`) overrides them by name.

use std::path::Path;

const SHIPPED: &[(&str, &str)] = &[
    ("disk-full", include_str!("../../docs/kb/disk-full.md")),
    ("inodes-full", include_str!("../../docs/kb/inodes-full.md")),
    (
        "security-updates",
        include_str!("../../docs/kb/security-updates.md"),
    ),
    (
        "pending-updates",
        include_str!("../../docs/kb/pending-updates.md"),
    ),
    (
        "reboot-pending",
        include_str!("../../docs/kb/reboot-pending.md"),
    ),
    (
        "antivirus-missing",
        include_str!("../../docs/kb/antivirus-missing.md"),
    ),
    (
        "antivirus-off",
        include_str!("../../docs/kb/antivirus-off.md"),
    ),
    (
        "antivirus-definitions",
        include_str!("../../docs/kb/antivirus-definitions.md"),
    ),
    (
        "connectivity",
        include_str!("../../docs/kb/connectivity.md"),
    ),
    (
        "agent-silent",
        include_str!("../../docs/kb/agent-silent.md"),
    ),
];

/// The article `name`: the operator's copy if there is one, else the shipped one.
pub fn article(name: &str, operator_dir: Option<&Path>) -> Option<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    if let Some(dir) = operator_dir
        && let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.md")))
    {
        return Some(text);
    }
    SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| (*text).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_rule_has_an_article_and_operators_can_override() {
        for rule in crate::rules::defaults::rules() {
            assert!(
                article(&rule.kb, None).is_some(),
                "no article {} for {}",
                rule.kb,
                rule.id
            );
        }
        assert!(article("agent-silent", None).is_some());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("disk-full.md"), "# Call the storage team\n")
            .expect("write");
        assert_eq!(
            article("disk-full", Some(dir.path())).as_deref(),
            Some("# Call the storage team\n")
        );
        assert_eq!(article("../etc/passwd", Some(dir.path())), None);
        assert_eq!(article("nope", None), None);
    }
}
