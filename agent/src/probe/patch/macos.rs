//! macOS: pending updates from `softwareupdate --list`, in both the format of macOS 10.15 and
//! later (`* Label: ...` then `Title: ..., Version: ..., Size: ..., Recommended: YES, Action:
//! restart,`) and the older one (`   * label` then `\ttitle (version), size [recommended]`).
//! "No new software available." (on stderr) means none; `XType:` log noise is skipped.
//! Apple marks no update as security in this output; Rapid Security Responses and
//! "Security Update" titles are flagged by name.

use super::PendingUpdate;

/// Parses `softwareupdate --list` output (stdout and stderr together are fine).
pub fn parse_softwareupdate(text: &str) -> Vec<PendingUpdate> {
    let mut out: Vec<PendingUpdate> = Vec::new();
    let mut label: Option<String> = None;
    for line in text.lines() {
        if line.contains("XType:") {
            continue;
        }
        let trimmed = line.trim();
        if let Some(rest) = trimmed
            .strip_prefix("* ")
            .or_else(|| trimmed.strip_prefix("- "))
        {
            let rest = rest.strip_prefix("Label:").unwrap_or(rest).trim();
            label = Some(rest.to_owned());
            continue;
        }
        let Some(current) = label.take() else {
            continue;
        };
        let (title, version) = match trimmed.strip_prefix("Title:") {
            Some(new_style) => parse_new_style(new_style),
            None => parse_old_style(trimmed),
        };
        let name = if title.is_empty() {
            current.clone()
        } else {
            title
        };
        let security = is_security(&name) || is_security(&current);
        out.push(PendingUpdate {
            name,
            installed_version: String::new(),
            candidate_version: version,
            security,
        });
    }
    out
}

/// ` Safari, Version: 17.6, Size: 152370KiB, Recommended: YES, ` -> ("Safari", "17.6").
fn parse_new_style(rest: &str) -> (String, String) {
    let mut title = String::new();
    let mut version = String::new();
    for (i, field) in rest.split(", ").enumerate() {
        let field = field.trim().trim_end_matches(',');
        if i == 0 {
            title = field.to_owned();
        } else if let Some(v) = field.strip_prefix("Version:") {
            version = v.trim().to_owned();
        }
    }
    (title, version)
}

/// `iTunes (12.0), 160725K [recommended]` -> ("iTunes", "12.0").
fn parse_old_style(line: &str) -> (String, String) {
    let head = line.split("), ").next().unwrap_or(line);
    match head.rsplit_once(" (") {
        Some((title, version)) => (
            title.trim_end_matches(',').trim().to_owned(),
            version.trim_end_matches(')').to_owned(),
        ),
        None => (head.to_owned(), String::new()),
    }
}

fn is_security(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("security update")
        || lower.contains("security response")
        || lower.contains("background security")
}

/// `sw_vers` output into (ProductName, ProductVersion, BuildVersion).
pub fn parse_sw_vers(text: &str) -> (String, String, String) {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim_start_matches(':').trim().to_owned())
            .unwrap_or_default()
    };
    (
        field("ProductName"),
        field("ProductVersion"),
        field("BuildVersion"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, String, bool)> {
        parse_softwareupdate(text)
            .into_iter()
            .map(|u| (u.name, u.candidate_version, u.security))
            .collect()
    }

    #[test]
    fn catalina_and_later_format() {
        let got = names(include_str!(
            "../../../testdata/macos/softwareupdate-10.15.txt"
        ));
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0],
            (
                "Command Line Tools beta 5 for Xcode".into(),
                "11.0".into(),
                false
            )
        );
        assert_eq!(got[3], ("iCal".into(), "1.0.2".into(), false));
        let ventura = names(include_str!(
            "../../../testdata/macos/softwareupdate-13.txt"
        ));
        assert_eq!(
            ventura[1],
            ("macOS Ventura 13.6".into(), "13.6".into(), false)
        );
        let rsr = names(include_str!(
            "../../../testdata/macos/softwareupdate-13.2-rsr-excerpt.txt"
        ));
        assert_eq!(
            rsr,
            [(
                "macOS Security Response 13.2 (a)".into(),
                "13.2 (a)".into(),
                true
            )]
        );
        let noisy = names(include_str!(
            "../../../testdata/macos/softwareupdate-12.7-xtype-noise.txt"
        ));
        assert_eq!(noisy.len(), 3, "{noisy:?}");
    }

    #[test]
    fn pre_catalina_format() {
        let got = names(include_str!(
            "../../../testdata/macos/softwareupdate-10.14.txt"
        ));
        assert_eq!(
            got[1],
            ("macOS 10.14.1 Update".into(), "10.14.1".into(), false)
        );
        assert_eq!(got[3], ("iCal".into(), "1.0.2".into(), false));
        let yosemite = names(include_str!(
            "../../../testdata/macos/softwareupdate-10.10.txt"
        ));
        assert_eq!(yosemite[1], ("iTunes".into(), "12.0".into(), false));
    }

    #[test]
    fn nothing_available_and_empty_output() {
        assert!(
            names(include_str!(
                "../../../testdata/macos/softwareupdate-none.txt"
            ))
            .is_empty()
        );
        assert!(names("").is_empty());
        assert!(names("* Label: dangling-without-title").is_empty());
    }

    #[test]
    fn sw_vers_fields() {
        let v = parse_sw_vers(include_str!("../../../testdata/macos/sw_vers-15.0.txt"));
        assert_eq!(v, ("macOS".into(), "15.0".into(), "24A335".into()));
    }
}
