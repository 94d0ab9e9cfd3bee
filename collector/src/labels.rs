//! Host labels (`lab`, `floor-2`, `os:windows`): the one check every way of setting them goes
//! through (`label`, `SetLabels`, the dashboard, an enrollment token's host labels).

/// Most labels on one host, and the longest label.
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_BYTES: usize = 64;

/// Host labels as given, checked (at most 32, each 1 to 64 letters, digits, `- _ . : /`) and
/// with repeats dropped; the error says which label is wrong.
pub fn checked_labels(labels: &[String]) -> Result<Vec<String>, String> {
    if labels.len() > MAX_LABELS {
        return Err(format!("a host has at most {MAX_LABELS} labels"));
    }
    let mut unique: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        let ok = !l.is_empty()
            && l.len() <= MAX_LABEL_BYTES
            && l.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
        if !ok {
            return Err(format!(
                "label {l:?}: 1 to {MAX_LABEL_BYTES} letters, digits, - _ . : /"
            ));
        }
        if !unique.contains(l) {
            unique.push(l.clone());
        }
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_and_repeats_dropped() {
        let given = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            checked_labels(&given(&["lab", "floor-2", "lab"])),
            Ok(given(&["lab", "floor-2"]))
        );
        assert!(
            checked_labels(&given(&["no spaces"]))
                .expect_err("space")
                .contains("\"no spaces\"")
        );
        assert!(checked_labels(&given(&[""])).is_err());
        assert!(checked_labels(&vec!["x".to_owned(); MAX_LABELS + 1]).is_err());
    }
}
