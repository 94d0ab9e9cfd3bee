//! Disk usage rule: open at `open_percent`, resolve only under `clear_percent` (hysteresis, so a
//! disk hovering at the threshold does not open and close tickets on every report).

use super::Decision;

/// Rule id stored on tickets; part of the dedupe key.
pub const RULE_ID: &str = "disk.usage";

/// Thresholds of the disk usage rule, validated by the config loader (clear < open).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsageRule {
    pub open_percent: f64,
    pub clear_percent: f64,
    pub priority: u32,
}

impl Default for DiskUsageRule {
    fn default() -> Self {
        Self {
            open_percent: 90.0,
            clear_percent: 85.0,
            priority: 2,
        }
    }
}

impl DiskUsageRule {
    /// Decides what one measurement means for one mount point.
    pub fn decide(&self, used_percent: f64, ticket_open: bool) -> Decision {
        match (ticket_open, used_percent >= self.open_percent) {
            (false, true) => Decision::Open,
            (false, false) => Decision::Quiet,
            (true, true) => Decision::Recur,
            (true, false) if used_percent < self.clear_percent => Decision::Clear,
            (true, false) => Decision::Hold,
        }
    }

    /// The ticket title for a mount point.
    pub fn title(&self, hostname: &str, mount_point: &str, used_percent: f64) -> String {
        format!("Disk {mount_point} on {hostname} is {used_percent:.1}% full")
    }

    /// The boundaries agents should report crossings of at once.
    pub fn thresholds(&self) -> Vec<f64> {
        vec![self.clear_percent, self.open_percent]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_at_threshold_and_clears_only_under_clear_threshold() {
        let rule = DiskUsageRule::default();
        let cases = [
            (89.99, false, Decision::Quiet),
            (90.0, false, Decision::Open),
            (97.0, true, Decision::Recur),
            (90.0, true, Decision::Recur),
            (89.0, true, Decision::Hold),
            (85.0, true, Decision::Hold),
            (84.99, true, Decision::Clear),
            (10.0, false, Decision::Quiet),
        ];
        for (percent, open, expected) in cases {
            assert_eq!(
                rule.decide(percent, open),
                expected,
                "{percent}% open={open}"
            );
        }
    }
}
