//! The vocabulary of `check`'s judgement, which each probe's binding speaks: how bad a finding
//! is, the limits it is judged against, and one finding under its probe's section.

use crate::facts::ProbeId;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

/// One line of the report, under its probe's section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub section: ProbeId,
    pub level: Level,
    pub text: String,
}

/// Limits the judgement uses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub disk_warning: f64,
    pub disk_critical: f64,
    pub definitions_max_age_days: i64,
    pub certificate_warning_days: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            disk_warning: 90.0,
            disk_critical: 95.0,
            definitions_max_age_days: 3,
            certificate_warning_days: 14,
        }
    }
}

impl Level {
    /// The process exit code for this overall level (the monitoring-plugin convention).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
        }
    }
}

impl Finding {
    pub fn new(section: ProbeId, level: Level, text: String) -> Self {
        Self {
            section,
            level,
            text,
        }
    }
}
