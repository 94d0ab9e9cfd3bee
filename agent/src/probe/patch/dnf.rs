//! dnf and yum (RHEL, Fedora, Rocky, Alma): pending updates from `dnf check-update` (exit code
//! 100 when updates exist), security ones from `dnf updateinfo list --security`, reboot need from
//! `needs-restarting -r`.

use std::collections::HashSet;

use super::PendingUpdate;

/// Parses `dnf check-update` / `yum check-update`: `name.arch  version  repo` rows, where yum
/// wraps a long name onto its own line. Stops at the "Obsoleting Packages" section.
pub fn parse_check_update(text: &str) -> Vec<PendingUpdate> {
    let mut out = Vec::new();
    let mut carried: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("Obsoleting Packages") {
            break;
        }
        let continuation = carried.is_some() && line.starts_with(' ');
        if (line.starts_with(' ') && !continuation)
            || line.starts_with("Last metadata")
            || line.starts_with("Loaded plugins")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name_arch, version) = match (fields.as_slice(), carried.take()) {
            ([version, _repo], Some(name)) => (name, (*version).to_owned()),
            ([name], None) if looks_like_name_arch(name) => {
                carried = Some((*name).to_owned());
                continue;
            }
            ([name, version, _repo], _) if looks_like_name_arch(name) => {
                ((*name).to_owned(), (*version).to_owned())
            }
            _ => continue,
        };
        let name = name_arch
            .rsplit_once('.')
            .map(|(n, _)| n)
            .unwrap_or(&name_arch);
        out.push(PendingUpdate {
            name: name.to_owned(),
            candidate_version: version,
            ..PendingUpdate::default()
        });
    }
    out
}

fn looks_like_name_arch(s: &str) -> bool {
    const ARCHES: &[&str] = &[
        "x86_64", "noarch", "i686", "i386", "aarch64", "ppc64le", "s390x", "armv7hl", "src",
    ];
    s.rsplit_once('.')
        .is_some_and(|(_, arch)| ARCHES.contains(&arch))
}

/// Package names with a pending security advisory, from `dnf updateinfo list --security` (dnf4:
/// `ADVISORY  Severity/Sec.  nvra`; dnf5: a table whose Type column says `security`).
pub fn parse_security_advisories(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let nvra = match fields.as_slice() {
            [_, kind, _severity, nvra, ..] if kind.eq_ignore_ascii_case("security") => *nvra,
            [_, severity, nvra, ..] if severity.ends_with("/Sec.") => *nvra,
            _ => continue,
        };
        if let Some(name) = name_from_nvra(nvra) {
            names.insert(name.to_owned());
        }
    }
    names
}

/// `glibc-2.26-20.fc27.x86_64` -> `glibc`: drop arch, release and version.
pub fn name_from_nvra(nvra: &str) -> Option<&str> {
    let nvr = nvra.rsplit_once('.').map(|(n, _)| n)?;
    let mut parts = nvr.rsplitn(3, '-');
    let _release = parts.next()?;
    let _version = parts.next()?;
    parts.next().filter(|n| !n.is_empty())
}

/// Whether `needs-restarting -r` says a reboot is required.
pub fn needs_restarting_says_reboot(text: &str) -> bool {
    text.contains("Reboot is required")
}

/// Marks the updates named in `security` as security updates.
pub fn mark_security(updates: &mut [PendingUpdate], security: &HashSet<String>) {
    for u in updates {
        u.security = security.contains(&u.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_update_rows_including_wrapped_names() {
        let fedora = parse_check_update(include_str!(
            "../../../testdata/linux/dnf-check-update-fedora25.txt"
        ));
        assert!(fedora.len() >= 3, "{fedora:?}");
        assert_eq!(
            (
                fedora[0].name.as_str(),
                fedora[0].candidate_version.as_str()
            ),
            ("PackageKit", "1.1.4-2.fc25")
        );
        let wrapped = "Last metadata expiration check: 0:01:02 ago.\n\nselinux-policy-targeted-very-long-name.noarch\n                   3.13.1-102.el7_3.16     updates\ntar.x86_64   2:1.26-34.el7   base\nObsoleting Packages\ngrub2.x86_64  1:2.02-0.65  base\n";
        let got: Vec<(String, String)> = parse_check_update(wrapped)
            .into_iter()
            .map(|u| (u.name, u.candidate_version))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "selinux-policy-targeted-very-long-name".into(),
                    "3.13.1-102.el7_3.16".into()
                ),
                ("tar".into(), "2:1.26-34.el7".into())
            ]
        );
    }

    #[test]
    fn security_advisories_from_dnf4_yum_and_dnf5() {
        let dnf4 = parse_security_advisories(include_str!(
            "../../../testdata/linux/dnf-updateinfo-list-sec-fedora27.txt"
        ));
        assert!(dnf4.contains("TurboGears"), "{dnf4:?}");
        let yum = parse_security_advisories(include_str!(
            "../../../testdata/linux/yum-updateinfo-list-security-all-el7.txt"
        ));
        assert!(
            yum.contains("389-ds-base") && yum.contains("389-ds-base-libs"),
            "{yum:?}"
        );
        let dnf5 = parse_security_advisories(
            "Name Type Severity Package Issued\nFEDORA-2024-1 security Important openssl-3.2.1-2.fc40.x86_64 2024-03-01 00:00:00\nFEDORA-2018-3 enhancement Moderate flac-1.4.0-1.fc29.x86_64 2019-01-19 00:00:00\n",
        );
        assert_eq!(dnf5.into_iter().collect::<Vec<_>>(), ["openssl"]);
        assert_eq!(
            name_from_nvra("kernel-core-6.8.5-301.fc40.x86_64"),
            Some("kernel-core")
        );
        assert_eq!(name_from_nvra("garbage"), None);
    }

    #[test]
    fn needs_restarting_outputs() {
        for (file, expected) in [
            (
                include_str!("../../../testdata/linux/needs-restarting-r-reboot-required-el8.txt"),
                true,
            ),
            (
                include_str!("../../../testdata/linux/needs-restarting-r-reboot-required-el7.txt"),
                true,
            ),
            (
                include_str!("../../../testdata/linux/needs-restarting-r-no-reboot-dnf4.txt"),
                false,
            ),
            (
                include_str!("../../../testdata/linux/needs-restarting-r-no-reboot-el7.txt"),
                false,
            ),
        ] {
            assert_eq!(needs_restarting_says_reboot(file), expected, "{file}");
        }
    }
}
