//! The running agent's latest result of its slow probes (the package check takes seconds), kept
//! in `state_dir/last/<probe>.json` so that `firstline-agent check` can show it, saying how old it
//! is, instead of waiting for the probe again. The agent writes it atomically on the blocking
//! pool after each run; `check` takes it only while it is fresher than the probe's interval.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firstline_proto::v1;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::facts::{Facts, ProbeId, ProbeOutput};
use crate::registry::{Finding, Level, Limits, ProbeSet};

/// The probes whose results the running agent keeps for `check`.
pub const SLOW_PROBES: &[&str] = &["patches"];

/// One probe's kept result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub probe: String,
    /// When the probe ran, ms since the epoch.
    pub taken_at_ms: i64,
    /// (level, text) as `check` judged it then; the level as in `--json` ("warning").
    pub findings: Vec<(String, String)>,
    /// The probe's part of a snapshot, as `--json` shows it under `facts`.
    pub facts: Value,
}

/// Where `probe`'s kept result lives.
pub fn path(state_dir: &Path, probe: &str) -> PathBuf {
    state_dir.join("last").join(format!("{probe}.json"))
}

/// The level as `--json` writes it.
pub fn word(level: Level) -> &'static str {
    match level {
        Level::Ok => "healthy",
        Level::Warning => "warning",
        Level::Critical => "critical",
    }
}

fn level(word: &str) -> Option<Level> {
    match word {
        "healthy" => Some(Level::Ok),
        "warning" => Some(Level::Warning),
        "critical" => Some(Level::Critical),
        _ => None,
    }
}

impl Kept {
    /// `id`'s result `output`, judged and put in snapshot form, taken at `now_ms`.
    pub fn new(probes: &ProbeSet, id: ProbeId, output: ProbeOutput, now_ms: i64) -> Self {
        let mut facts = Facts::default();
        facts.apply(id, Ok(output));
        let findings = probes
            .judge(&facts, &Limits::default(), now_ms)
            .into_iter()
            .map(|f| (word(f.level).to_owned(), f.text))
            .collect();
        let mut snapshot = v1::Snapshot::default();
        probes.report(&facts, &mut snapshot);
        Self {
            probe: id.name().to_owned(),
            taken_at_ms: now_ms,
            findings,
            facts: part(&snapshot),
        }
    }

    /// The findings under `id`'s section, and one that says where they come from.
    pub fn findings(&self, id: ProbeId, now_ms: i64) -> Vec<Finding> {
        let age = Duration::from_secs(
            u64::try_from(now_ms.saturating_sub(self.taken_at_ms) / 1000).unwrap_or(0),
        );
        let mut out: Vec<Finding> = self
            .findings
            .iter()
            .filter_map(|(l, text)| Some(Finding::new(id, level(l)?, text.clone())))
            .collect();
        out.push(Finding::new(
            id,
            Level::Ok,
            format!(
                "as the running agent found {} ago",
                humantime::format_duration(age)
            ),
        ));
        out
    }

    /// Writes it atomically (private file). Blocks: call it on the blocking pool.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let file = path(state_dir, &self.probe);
        if let Some(dir) = file.parent() {
            firstline_support::files::create_private_dir(dir)?;
        }
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        firstline_support::files::write_atomic(&file, &json, 0o600)
    }

    /// `probe`'s kept result if there is one younger than `max_age` at `now_ms`. Blocks.
    pub fn load(state_dir: &Path, probe: &str, max_age: Duration, now_ms: i64) -> Option<Self> {
        let bytes = std::fs::read(path(state_dir, probe)).ok()?;
        let kept: Self = serde_json::from_slice(&bytes).ok()?;
        let age_ms = now_ms.checked_sub(kept.taken_at_ms)?;
        let fresh = age_ms >= 0 && u128::try_from(age_ms).ok()? < max_age.as_millis();
        (fresh && kept.probe == probe).then_some(kept)
    }
}

/// The fields of `snapshot` that are not at their defaults: one probe's part.
fn part(snapshot: &v1::Snapshot) -> Value {
    let (Ok(Value::Object(mut all)), Ok(Value::Object(empty))) = (
        serde_json::to_value(snapshot),
        serde_json::to_value(v1::Snapshot::default()),
    ) else {
        return Value::Null;
    };
    all.retain(|key, value| empty.get(key) != Some(value));
    Value::Object(all)
}

/// Puts a kept part into `--json`'s `facts`.
pub fn merge(facts: &mut Value, part: &Value) {
    if let (Value::Object(facts), Value::Object(part)) = (facts, part) {
        for (key, value) in part {
            facts.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::patch::PatchFacts;

    #[test]
    fn a_kept_result_is_read_back_while_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let probes = ProbeSet::new();
        let id = probes.id("patches").expect("patches probe");
        let now = 1_800_000_000_000;
        let output = ProbeOutput::new(PatchFacts::from_updates("apt", Vec::new()));
        let kept = Kept::new(&probes, id, output, now);
        assert!(!kept.findings.is_empty(), "{kept:?}");
        assert!(kept.facts.get("patches").is_some(), "{}", kept.facts);
        assert_eq!(kept.facts.as_object().map(|o| o.len()), Some(1));
        kept.save(dir.path()).expect("save");
        let hour = Duration::from_secs(3600);
        let cases = [
            (now + 60_000, hour, true),
            (now + 3_600_000, hour, false),
            (now - 1, hour, false),
        ];
        for (at, max_age, fresh) in cases {
            let loaded = Kept::load(dir.path(), "patches", max_age, at);
            assert_eq!(loaded.as_ref() == Some(&kept), fresh, "{at} {max_age:?}");
        }
        let findings = kept.findings(id, now + 240_000);
        assert!(
            findings
                .last()
                .is_some_and(|f| f.text == "as the running agent found 4m ago"),
            "{findings:?}"
        );
        assert!(Kept::load(dir.path(), "disk", hour, now).is_none());
    }
}
