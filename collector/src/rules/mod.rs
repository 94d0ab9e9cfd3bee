//! Rules turn facts into conditions. A rule is a typed kind with its parameters (see `kinds`),
//! an id, a priority, a `for` duration the condition must hold before a ticket opens, a title
//! template and a knowledge-base article. Typed kinds were chosen over an expression language:
//! every default rule needs hysteresis, counting or time that an expression would have to
//! re-encode, and a typed kind gives precise validation errors (`check-rules`). Evaluation is
//! a pure function of a snapshot's facts, tested without a store.

pub mod config;
pub mod defaults;
pub mod forecast;
pub mod kinds;

pub use kinds::{Observation, Rule, RuleKind, Verdict};

/// The OS families a rule can be limited to (`os = [...]` in a rule file).
pub const OS_FAMILIES: [&str; 3] = ["linux", "windows", "macos"];

/// What a rule decides for one subject (for example one mount point) after a new measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The condition holds and no ticket is open: open one.
    Open,
    /// The condition holds again on an open ticket: count one more occurrence.
    Recur,
    /// A ticket is open and the value is between the clear and the open threshold: keep it.
    Hold,
    /// The clear condition holds on an open ticket: resolve it.
    Clear,
    /// Nothing is open and nothing is wrong.
    Quiet,
}
