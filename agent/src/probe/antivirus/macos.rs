//! macOS XProtect: its version from the bundle's property lists. macOS 14 and earlier keep it in
//! /Library/Apple/System/Library/CoreServices/XProtect.bundle; macOS 15 also in
//! /var/protected/xprotect/XProtect.bundle; the newer of the two is the one in force.

use super::AvProduct;

/// Candidate Info.plist locations, newest layout first.
pub const XPROTECT_PLISTS: &[&str] = &[
    "/var/protected/xprotect/XProtect.bundle/Contents/Info.plist",
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Resources/XProtect.meta.plist",
];

/// The value following `<key>KEY</key>` in an XML property list, as text.
pub fn plist_value(xml: &str, key: &str) -> Option<String> {
    // Property lists carry a DOCTYPE line.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).ok()?;
    let node = doc
        .descendants()
        .find(|n| n.has_tag_name("key") && n.text() == Some(key))?;
    let value = node.next_siblings().skip(1).find(|n| n.is_element())?;
    value.text().map(|t| t.trim().to_owned())
}

/// The XProtect version in one plist (`CFBundleShortVersionString`, or `Version` in
/// XProtect.meta.plist).
pub fn xprotect_version(xml: &str) -> Option<String> {
    plist_value(xml, "CFBundleShortVersionString").or_else(|| plist_value(xml, "Version"))
}

/// XProtect as a product, from the versions found in the candidate plists (newest wins).
pub fn xprotect_product(versions: &[String]) -> Option<AvProduct> {
    let newest = versions
        .iter()
        .max_by(|a, b| crate::probe::patch::kernel::compare_versions(a, b))?;
    Some(AvProduct {
        name: "XProtect".into(),
        vendor: "Apple".into(),
        running: true,
        realtime_protection: true,
        definitions_version: newest.clone(),
        source: "xprotect".into(),
        ..AvProduct::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_meta_plist_and_info_plist() {
        let meta = include_str!("../../../testdata/macos/XProtect.meta.plist-2081.plist");
        assert_eq!(xprotect_version(meta).as_deref(), Some("2081"));
        let info = r#"<?xml version="1.0"?><plist version="1.0"><dict><key>CFBundleIdentifier</key><string>com.apple.XProtectFramework.plugin-bundle</string><key>CFBundleShortVersionString</key><string>5272</string></dict></plist>"#;
        assert_eq!(xprotect_version(info).as_deref(), Some("5272"));
        assert_eq!(xprotect_version("<plist/>"), None);
        assert_eq!(xprotect_version("not xml"), None);
        let p = xprotect_product(&["5272".into(), "5287".into()]).expect("product");
        assert_eq!(p.definitions_version, "5287");
        assert!(xprotect_product(&[]).is_none());
    }
}
