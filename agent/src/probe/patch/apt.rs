//! apt (Debian, Ubuntu): pending updates from `apt-get -s dist-upgrade` (a simulation that needs
//! no lock), security ones told by their archive (`...-security`, label `Debian-Security`), and
//! the last upgrade time from `/var/log/apt/history.log`. Held packages (`apt-mark hold`,
//! `hold ok installed` in dpkg's status) are kept back by that simulation; their newer versions
//! come from a second simulation that ignores holds, run only when something is held.

use super::PendingUpdate;

/// Parses the `Inst` lines of `apt-get -s dist-upgrade`, e.g.
/// `Inst liblzma5 [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64]) []`.
/// A package installed only as a new dependency has no `[installed]` part.
pub fn parse_simulation(text: &str) -> Vec<PendingUpdate> {
    text.lines().filter_map(parse_inst_line).collect()
}

fn parse_inst_line(line: &str) -> Option<PendingUpdate> {
    let rest = line.strip_prefix("Inst ")?;
    let (name, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (installed, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (v, r) = r.split_once(']')?;
            (v.to_owned(), r.trim_start())
        }
        None => (String::new(), rest),
    };
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    let (candidate, sources) = inner.split_once(' ').unwrap_or((inner, ""));
    let security = sources.split(", ").any(is_security_source);
    Some(PendingUpdate {
        name: name.to_owned(),
        installed_version: installed,
        candidate_version: candidate.to_owned(),
        security,
    })
}

/// Parses `apt-mark showhold`: one package name per line (`name` or `name:arch`).
pub fn parse_showhold(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace))
        .map(str::to_owned)
        .collect()
}

/// The held packages' updates: the `Inst` lines of a simulation that ignored holds
/// (`-o APT::Ignore-Hold=true`) for the packages in `held`. A name matches with or without its
/// `:arch` suffix, since apt prints the suffix for foreign architectures only.
pub fn held_updates(simulation: &str, held: &[String]) -> Vec<PendingUpdate> {
    let base = |name: &str| name.split(':').next().unwrap_or(name).to_owned();
    parse_simulation(simulation)
        .into_iter()
        .filter(|u| !u.installed_version.is_empty())
        .filter(|u| {
            held.iter()
                .any(|h| *h == u.name || base(h) == base(&u.name))
        })
        .collect()
}

/// `Label:Version/Archive [arch]`: a security archive ends in `-security` (Debian, Ubuntu) or
/// carries Debian's security label.
fn is_security_source(source: &str) -> bool {
    let source = source.split(" [").next().unwrap_or(source);
    let (label, archive) = source.rsplit_once(':').unwrap_or(("", source));
    let archive = archive.rsplit('/').next().unwrap_or(archive);
    archive.ends_with("-security") || label.eq_ignore_ascii_case("Debian-Security")
}

/// The `End-Date` of the last history entry that installed or upgraded packages, as written
/// (`2026-11-22  11:48:43`, local time); converting needs the machine's UTC offset.
pub fn last_upgrade_end(history: &str) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let mut changed = false;
    let mut last = None;
    for line in history.lines() {
        if line.starts_with("Start-Date:") {
            changed = false;
        } else if line.starts_with("Upgrade:") || line.starts_with("Install:") {
            changed = true;
        } else if let Some(date) = line.strip_prefix("End-Date:")
            && changed
        {
            last = parse_date_time(date.trim()).or(last);
        }
    }
    last
}

/// `YYYY-MM-DD  HH:MM:SS` (apt writes two spaces) into its parts.
fn parse_date_time(s: &str) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let mut parts = s.split_whitespace();
    let date: Vec<&str> = parts.next()?.split('-').collect();
    let time: Vec<&str> = parts.next()?.split(':').collect();
    if date.len() != 3 || time.len() != 3 {
        return None;
    }
    Some((
        date[0].parse().ok()?,
        date[1].parse().ok()?,
        date[2].parse().ok()?,
        time[0].parse().ok()?,
        time[1].parse().ok()?,
        time[2].parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_lines_from_debian_and_a_test_repository() {
        let text = include_str!("../../../testdata/linux/apt-get-s-dist-upgrade-debian12.txt");
        let updates = parse_simulation(text);
        let got: Vec<(&str, &str, &str, bool)> = updates
            .iter()
            .map(|u| {
                (
                    u.name.as_str(),
                    u.installed_version.as_str(),
                    u.candidate_version.as_str(),
                    u.security,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("base-files", "12.4+deb12u11", "12.4+deb12u15", false),
                ("init-system-helpers", "1.65.2", "1.65.2+deb12u1", false),
                ("liblzma5", "5.4.1-1", "5.4.1-1+deb12u2", true),
                (
                    "ca-certificates",
                    "20230311+deb12u1",
                    "20250419~deb12u2",
                    true
                ),
                ("libgcrypt20", "1.10.1-3", "1.10.1-3+deb12u1", true),
                (
                    "libpam-modules-bin",
                    "1.5.2-6+deb12u1",
                    "1.5.2-6+deb12u2",
                    false
                ),
                ("firstline-demo", "1.0-1", "2.0-1", false),
                ("firstline-sec", "1.0-1", "2.0-1", true),
                ("linux-image-6.1.0-40-amd64", "", "6.1.153-1", true),
            ]
        );
    }

    #[test]
    fn nothing_pending_and_garbage_give_no_updates() {
        assert!(parse_simulation("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n").is_empty());
        assert!(parse_simulation("Inst\nInst x\nInst y [1\n").is_empty());
    }

    #[test]
    fn ubuntu_security_pocket_is_security() {
        let line = "Inst openssl [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])";
        assert!(parse_simulation(line)[0].security);
        let line = "Inst vim [2:8.2.3995-1ubuntu2] (2:8.2.3995-1ubuntu2.1 Ubuntu:22.04/jammy-updates [amd64])";
        assert!(!parse_simulation(line)[0].security);
    }

    #[test]
    fn held_packages_and_their_newer_versions() {
        let held = parse_showhold(include_str!(
            "../../../testdata/linux/apt-mark-showhold-apt2.6-lab.txt"
        ));
        assert_eq!(held, ["firstline-sec"]);
        let normal =
            include_str!("../../../testdata/linux/apt-get-s-dist-upgrade-held-apt2.6-lab.txt");
        let names: Vec<String> = parse_simulation(normal)
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["firstline-demo"], "the held package is kept back");
        let ignoring = include_str!(
            "../../../testdata/linux/apt-get-s-dist-upgrade-ignore-hold-apt2.6-lab.txt"
        );
        assert_eq!(
            held_updates(ignoring, &held),
            [PendingUpdate {
                name: "firstline-sec".into(),
                installed_version: "1.0-1".into(),
                candidate_version: "2.0-1".into(),
                security: true,
            }]
        );
        assert_eq!(
            held_updates(ignoring, &["firstline-sec:amd64".into()]).len(),
            1,
            "a name with its architecture"
        );
        assert!(held_updates(ignoring, &[]).is_empty());
        assert!(parse_showhold("\n").is_empty());
    }

    #[test]
    fn last_upgrade_is_the_last_entry_that_changed_packages() {
        let history = include_str!("../../../testdata/linux/apt-history-debian12.log");
        assert_eq!(last_upgrade_end(history), Some((2026, 11, 22, 11, 48, 43)));
        assert_eq!(last_upgrade_end(""), None);
    }
}
