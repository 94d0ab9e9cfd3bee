//! Rules turn facts into conditions. Each rule is a typed kind with its own thresholds from the
//! collector's config; the decision is a pure function of the measured value and whether a
//! ticket is open, so it is tested without a store.

pub mod disk;

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
