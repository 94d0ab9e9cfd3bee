//! pacman (Arch): pending updates from `checkupdates` (pacman-contrib, uses a private database
//! copy so it needs no lock) or `pacman -Qu`: `name old -> new`, `[ignored]` ones skipped.
//! Arch publishes no security metadata through pacman, so none is flagged security.

use super::PendingUpdate;

pub fn parse_updates(text: &str) -> Vec<PendingUpdate> {
    text.lines()
        .filter(|l| !l.trim_end().ends_with("[ignored]"))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            match fields.as_slice() {
                [name, old, "->", new, ..] => Some(PendingUpdate {
                    name: (*name).to_owned(),
                    installed_version: (*old).to_owned(),
                    candidate_version: (*new).to_owned(),
                    security: false,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkupdates_and_pacman_qu() {
        let arch = parse_updates(include_str!(
            "../../../testdata/linux/checkupdates-arch-2025-12.txt"
        ));
        assert_eq!(
            (
                arch[0].name.as_str(),
                arch[0].installed_version.as_str(),
                arch[0].candidate_version.as_str()
            ),
            ("bash", "5.3.3-2", "5.3.8-1")
        );
        assert!(
            parse_updates(include_str!(
                "../../../testdata/linux/checkupdates-none.txt"
            ))
            .is_empty()
        );
        assert!(
            parse_updates(include_str!(
                "../../../testdata/linux/pacman-Qu-ignored.txt"
            ))
            .is_empty()
        );
        assert!(
            !parse_updates(include_str!(
                "../../../testdata/linux/pacman-Qu-arch-2017.txt"
            ))
            .is_empty()
        );
    }
}
