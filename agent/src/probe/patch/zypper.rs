//! zypper (SUSE): pending package updates from `zypper --xmlout list-updates` and needed
//! security patches from `zypper --xmlout list-patches --category security`. Patches name no
//! single package, so the security count is the number of needed security patches.

use super::PendingUpdate;

/// Package updates from `list-updates` XML.
pub fn parse_list_updates(xml: &str) -> Vec<PendingUpdate> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("update") && n.attribute("kind").unwrap_or("package") == "package"
        })
        .filter_map(|n| {
            Some(PendingUpdate {
                name: n.attribute("name")?.to_owned(),
                installed_version: n.attribute("edition-old").unwrap_or_default().to_owned(),
                candidate_version: n.attribute("edition").unwrap_or_default().to_owned(),
                security: false,
            })
        })
        .collect()
}

/// Needed security patches from `list-patches` XML.
pub fn count_security_patches(xml: &str) -> u32 {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return 0;
    };
    let n = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("update")
                && n.attribute("kind") == Some("patch")
                && n.attribute("category") == Some("security")
                && matches!(n.attribute("status"), None | Some("needed"))
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_and_security_patches_from_xml() {
        let sle = parse_list_updates(include_str!(
            "../../../testdata/linux/zypper-xmlout-list-updates-sle12sp1.xml"
        ));
        assert_eq!(
            (sle[0].name.as_str(), sle[0].candidate_version.as_str()),
            ("SUSEConnect", "0.2.33-7.1")
        );
        let leap = parse_list_updates(include_str!(
            "../../../testdata/linux/zypper-xmlout-list-updates-leap16.0-aarch64.xml"
        ));
        assert!(!leap.is_empty());
        let patches = include_str!(
            "../../../testdata/linux/zypper-xmlout-list-patches-security-leap16.0-first-patch.xml"
        );
        assert_eq!(count_security_patches(patches), 1);
        assert!(parse_list_updates("<not xml").is_empty());
        assert_eq!(count_security_patches(""), 0);
    }
}
