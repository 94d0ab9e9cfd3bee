//! The agent's current picture of the machine: the latest result of every probe, and a
//! signature of what matters for reporting (a disk crossing a threshold, a new security
//! update, antivirus stopping, a check starting to fail) so a change is sent at once while
//! everything else waits for the heartbeat. Which probes exist and what each contributes is
//! the registry's business (`registry`); this module only holds the results.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::probe::ProbeError;

/// Names one probe of the registry: its place in report order and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId {
    index: usize,
    name: &'static str,
}

/// One probe's result, whatever its type; the probe that made it knows the type.
#[derive(Clone)]
pub struct ProbeOutput(Arc<dyn Any + Send + Sync>);

/// The latest result of each probe; a failed run keeps the previous facts and records why.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    outputs: BTreeMap<ProbeId, ProbeOutput>,
    pub errors: BTreeMap<ProbeId, ProbeError>,
}

/// What is compared between two reports to decide whether something notable changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// (mount point, threshold bucket), sorted.
    pub disk: Vec<(String, usize)>,
    /// Everything else that counts as a change of state, as comparable text.
    pub other: Vec<String>,
}

impl ProbeId {
    /// The id of the probe at `index` in the registry, called `name`.
    pub const fn new(index: usize, name: &'static str) -> Self {
        Self { index, name }
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    /// Position in report order.
    pub fn index(self) -> usize {
        self.index
    }
}

impl ProbeOutput {
    pub fn new<T: Any + Send + Sync>(facts: T) -> Self {
        Self(Arc::new(facts))
    }

    /// The facts, if they are of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for ProbeOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProbeOutput(..)")
    }
}

impl Facts {
    /// Takes in one probe's result.
    pub fn apply(&mut self, id: ProbeId, result: Result<ProbeOutput, ProbeError>) {
        match result {
            Ok(output) => {
                self.errors.remove(&id);
                self.outputs.insert(id, output);
            }
            Err(error) => {
                self.errors.insert(id, error);
            }
        }
    }

    /// The latest facts of one probe.
    pub fn get(&self, id: ProbeId) -> Option<&ProbeOutput> {
        self.outputs.get(&id)
    }

    /// The probes that have reported facts so far, in report order.
    pub fn reported(&self) -> impl Iterator<Item = ProbeId> + '_ {
        self.outputs.keys().copied()
    }

    /// The signature part that every probe shares: which probes are failing, and how.
    pub fn error_signature(&self, signature: &mut Signature) {
        for (id, error) in &self.errors {
            signature
                .other
                .push(format!("error {} {}", id.name(), error.state()));
        }
    }
}

/// How many thresholds a usage has reached.
pub fn bucket(used_percent: f64, thresholds: &[f64]) -> usize {
    thresholds.iter().filter(|t| used_percent >= **t).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ProbeId = ProbeId::new(0, "a");
    const B: ProbeId = ProbeId::new(1, "b");

    #[test]
    fn a_failed_run_keeps_old_facts_and_records_the_error() {
        let mut facts = Facts::default();
        facts.apply(A, Ok(ProbeOutput::new(7u32)));
        facts.apply(
            A,
            Err(ProbeError::Timeout(std::time::Duration::from_secs(1))),
        );
        assert_eq!(facts.get(A).and_then(|o| o.get::<u32>()), Some(&7));
        assert_eq!(facts.get(A).and_then(|o| o.get::<u64>()), None);
        let mut signature = Signature::default();
        facts.error_signature(&mut signature);
        assert_eq!(signature.other, ["error a timeout"]);
        facts.apply(A, Ok(ProbeOutput::new(8u32)));
        assert!(facts.errors.is_empty());
    }

    #[test]
    fn probes_are_listed_in_report_order() {
        let mut facts = Facts::default();
        facts.apply(B, Ok(ProbeOutput::new(())));
        facts.apply(A, Ok(ProbeOutput::new(())));
        assert_eq!(
            facts.reported().map(ProbeId::name).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn buckets_count_reached_thresholds() {
        let t = [85.0, 90.0];
        let cases = [
            (0.0, 0),
            (84.9, 0),
            (85.0, 1),
            (89.99, 1),
            (90.0, 2),
            (100.0, 2),
        ];
        for (used, expected) in cases {
            assert_eq!(bucket(used, &t), expected, "{used}%");
        }
        assert_eq!(bucket(99.0, &[]), 0);
    }
}
