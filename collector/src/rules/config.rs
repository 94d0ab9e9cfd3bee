//! The operator's rule file: `[[rules]]` tables over the shipped defaults. A rule with a
//! default's id replaces it (`enabled = false` switches it off); new ids add rules. Every
//! error names the rule and the key, all at once.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{Rule, RuleKind, defaults};
use firstline_support::config_file::{ConfigError, finish, parse_toml, read_toml};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<String>,
    kind: Option<String>,
    enabled: Option<bool>,
    priority: Option<u32>,
    #[serde(rename = "for")]
    hold_for: Option<String>,
    title: Option<String>,
    kb: Option<String>,
    open_percent: Option<f64>,
    clear_percent: Option<f64>,
    critical_percent: Option<f64>,
    critical_priority: Option<u32>,
    max_age_days: Option<f64>,
    consecutive: Option<u32>,
    horizon_hours: Option<f64>,
    os: Option<Vec<String>>,
    realtime_required_on: Option<Vec<String>>,
}

/// Loads the rule set: the defaults, with the file (if any) laid over them.
pub fn load(file: Option<&Path>) -> Result<Vec<Rule>, ConfigError> {
    let (name, raw) = read_toml::<RawFile>(file)?;
    from_raw(name, raw)
}

/// The rule set that `text`, the contents of a rule file called `name` in errors, lays over
/// the defaults: what [`load`] does once the file is read.
pub fn from_toml(name: &str, text: &str) -> Result<Vec<Rule>, ConfigError> {
    from_raw(name.to_owned(), parse_toml::<RawFile>(name, text)?)
}

fn from_raw(name: String, raw: RawFile) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = defaults::rules();
    let mut problems = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let label = r.id.clone().unwrap_or_else(|| format!("rules[{i}]"));
        let mut say =
            |key: &str, what: String| problems.push(format!("rule {label:?}: {key}: {what}"));
        let Some(id) = r.id.clone().filter(|id| !id.is_empty() && id.len() <= 64) else {
            say("id", "is required (1 to 64 characters)".into());
            continue;
        };
        let existing = rules.iter().position(|x| x.id == id);
        if r.enabled == Some(false) {
            if let Some(pos) = existing {
                rules.remove(pos);
            }
            continue;
        }
        let base = existing.map(|p| rules[p].clone());
        match build(r, base, &mut say) {
            Some(rule) => match existing {
                Some(pos) => rules[pos] = rule,
                None => rules.push(rule),
            },
            None => continue,
        }
    }
    finish(name, rules, problems)
}

fn build(r: RawRule, base: Option<Rule>, say: &mut dyn FnMut(&str, String)) -> Option<Rule> {
    let kind_name = r
        .kind
        .clone()
        .or_else(|| base.as_ref().map(|b| b.kind.name().to_owned()));
    let Some(kind_name) = kind_name else {
        say("kind", "is required for a new rule".into());
        return None;
    };
    let percent = |key: &str, v: Option<f64>, default: f64, say: &mut dyn FnMut(&str, String)| {
        let v = v.unwrap_or(default);
        if !(0.0..=100.0).contains(&v) {
            say(key, format!("{v} is not a percentage"));
        }
        v
    };
    let base_kind = base.as_ref().map(|b| b.kind.clone());
    let kind = match (kind_name.as_str(), base_kind) {
        ("disk_usage", b) => {
            let (o, c, cp, cpr) = match b {
                Some(RuleKind::DiskUsage {
                    open_percent,
                    clear_percent,
                    critical_percent,
                    critical_priority,
                }) => (
                    open_percent,
                    clear_percent,
                    critical_percent,
                    critical_priority,
                ),
                _ => (90.0, 85.0, 101.0, 1),
            };
            let open_percent = percent("open_percent", r.open_percent, o, say);
            let clear_percent = percent("clear_percent", r.clear_percent, c, say);
            if clear_percent >= open_percent {
                say(
                    "clear_percent",
                    format!("{clear_percent} must be below open_percent {open_percent}"),
                );
            }
            RuleKind::DiskUsage {
                open_percent,
                clear_percent,
                critical_percent: r.critical_percent.unwrap_or(cp),
                critical_priority: r.critical_priority.unwrap_or(cpr),
            }
        }
        ("inode_usage", b) => {
            let (o, c) = match b {
                Some(RuleKind::InodeUsage {
                    open_percent,
                    clear_percent,
                }) => (open_percent, clear_percent),
                _ => (90.0, 85.0),
            };
            let open_percent = percent("open_percent", r.open_percent, o, say);
            let clear_percent = percent("clear_percent", r.clear_percent, c, say);
            if clear_percent >= open_percent {
                say(
                    "clear_percent",
                    format!("{clear_percent} must be below open_percent {open_percent}"),
                );
            }
            RuleKind::InodeUsage {
                open_percent,
                clear_percent,
            }
        }
        ("disk_forecast", b) => {
            let h = match b {
                Some(RuleKind::DiskForecast { horizon_hours }) => horizon_hours,
                _ => 72.0,
            };
            let horizon_hours = r.horizon_hours.unwrap_or(h);
            within(say, "horizon_hours", horizon_hours, 1.0, 8760.0);
            RuleKind::DiskForecast { horizon_hours }
        }
        ("security_updates_pending", _) => RuleKind::SecurityUpdatesPending,
        ("updates_pending", _) => RuleKind::UpdatesPending,
        ("reboot_pending", _) => RuleKind::RebootPending,
        ("no_antivirus", _) => RuleKind::NoAntivirus,
        ("antivirus_off", b) => {
            let base = match b {
                Some(RuleKind::AntivirusOff {
                    realtime_required_on,
                }) => realtime_required_on,
                _ => super::defaults::realtime_required_on(),
            };
            let list = r.realtime_required_on.clone().unwrap_or(base);
            os_list(say, "realtime_required_on", &list);
            RuleKind::AntivirusOff {
                realtime_required_on: list,
            }
        }
        ("definitions_old", b) => {
            let d = match b {
                Some(RuleKind::DefinitionsOld { max_age_days }) => max_age_days,
                _ => 3.0,
            };
            let max_age_days = r.max_age_days.unwrap_or(d);
            within(say, "max_age_days", max_age_days, 0.0, 365.0);
            RuleKind::DefinitionsOld { max_age_days }
        }
        ("connectivity_failure", b) => {
            let n = match b {
                Some(RuleKind::ConnectivityFailure { consecutive }) => consecutive,
                _ => 3,
            };
            let consecutive = r.consecutive.unwrap_or(n);
            within(say, "consecutive", consecutive, 1, 1000);
            RuleKind::ConnectivityFailure { consecutive }
        }
        (other, _) => {
            say("kind", format!("{other:?} is not a rule kind"));
            return None;
        }
    };
    let priority = r
        .priority
        .or(base.as_ref().map(|b| b.priority))
        .unwrap_or(3);
    if !(1..=4).contains(&priority) {
        say("priority", format!("{priority} is not between 1 and 4"));
    }
    let hold_for = match r.hold_for {
        Some(text) => humantime::parse_duration(&text).unwrap_or_else(|e| {
            say("for", format!("{text:?} is not a duration ({e})"));
            Duration::ZERO
        }),
        None => base.as_ref().map(|b| b.hold_for).unwrap_or_default(),
    };
    let title = r
        .title
        .or(base.as_ref().map(|b| b.title.clone()))
        .unwrap_or_else(|| "{subject} on {host}".into());
    if title.is_empty() || title.len() > 200 {
        say("title", "must be 1 to 200 characters".into());
    }
    let kb =
        r.kb.or(base.as_ref().map(|b| b.kb.clone()))
            .unwrap_or_default();
    if !kb.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        say(
            "kb",
            format!("{kb:?} must be an article name (letters, digits, dashes)"),
        );
    }
    let os =
        r.os.or(base.as_ref().map(|b| b.os.clone()))
            .unwrap_or_default();
    os_list(say, "os", &os);
    Some(Rule {
        id: base.map(|b| b.id).or(r.id).unwrap_or_default(),
        kind,
        priority,
        hold_for,
        title,
        kb,
        os,
    })
}

/// Records a problem for every entry that is not an OS family.
fn os_list(say: &mut dyn FnMut(&str, String), key: &str, list: &[String]) {
    for os in list {
        if !super::OS_FAMILIES.contains(&os.as_str()) {
            say(
                key,
                format!("{os:?} is not one of {}", super::OS_FAMILIES.join(", ")),
            );
        }
    }
}

/// Records a problem when `value` lies outside `lo..=hi`.
fn within<T: PartialOrd + std::fmt::Display>(
    say: &mut dyn FnMut(&str, String),
    key: &str,
    value: T,
    lo: T,
    hi: T,
) {
    if value < lo || value > hi {
        say(key, format!("{value} is not between {lo} and {hi}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Vec<Rule>, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).expect("write");
        load(Some(&path)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_can_be_changed_switched_off_and_extended() {
        let rules = load_text(
            "[[rules]]\nid = \"disk.usage\"\nopen_percent = 80.0\nclear_percent = 70.0\n\n\
             [[rules]]\nid = \"updates.any\"\nenabled = false\n\n\
             [[rules]]\nid = \"dns.slow\"\nkind = \"connectivity_failure\"\nconsecutive = 5\npriority = 4\ntitle = \"{subject} flaky on {host}\"\n",
        )
        .expect("valid");
        let disk = rules
            .iter()
            .find(|r| r.id == "disk.usage")
            .expect("disk rule");
        assert!(
            matches!(disk.kind, RuleKind::DiskUsage { open_percent, clear_percent, .. } if open_percent == 80.0 && clear_percent == 70.0)
        );
        assert_eq!(disk.priority, 2, "unchanged keys keep the default");
        assert!(!rules.iter().any(|r| r.id == "updates.any"));
        let dns = rules.iter().find(|r| r.id == "dns.slow").expect("new rule");
        assert_eq!((dns.priority, dns.kind.consecutive()), (4, 5));
        assert_eq!(
            load_text("").expect("empty file").len(),
            defaults::rules().len()
        );
    }

    #[test]
    fn text_gives_what_the_file_gives() {
        let text = "[[rules]]\nid = \"disk.usage\"\nopen_percent = 80.0\nclear_percent = 70.0\n";
        let from_text = from_toml("rules.toml", text).expect("valid");
        assert_eq!(from_text, load_text(text).expect("valid"));
        let error = from_toml("given.toml", "[[rules]]\nkind = \"disk_usage\"\n")
            .expect_err("no id")
            .to_string();
        assert!(error.starts_with("given.toml: "), "{error}");
    }

    #[test]
    fn every_error_names_the_rule_and_the_key() {
        let error = load_text(
            "[[rules]]\nid = \"disk.usage\"\nclear_percent = 95.0\n\n\
             [[rules]]\nid = \"x\"\nkind = \"moon_phase\"\n\n\
             [[rules]]\nid = \"y\"\nkind = \"reboot_pending\"\npriority = 9\nfor = \"soon\"\n",
        )
        .expect_err("invalid");
        for expected in [
            "rule \"disk.usage\": clear_percent: 95 must be below open_percent 90",
            "rule \"x\": kind: \"moon_phase\" is not a rule kind",
            "rule \"y\": priority: 9 is not between 1 and 4",
            "rule \"y\": for: \"soon\" is not a duration",
        ] {
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
        assert!(
            load_text("[[rules]]\nid = \"a\"\nkind = \"no_antivirus\"\nbogus = 1\n")
                .expect_err("unknown key")
                .contains("unknown field `bogus`")
        );
    }
}
