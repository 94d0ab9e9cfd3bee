//! The patch probe in the registry: pending updates (security ones count as a change), the
//! reboot state, and the package databases and reboot markers it watches. A reboot marker
//! only needs the reboot state looked at again, not the package manager run.

use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Level, Limits, Probe, Watched};
use crate::config::Config;
use crate::facts::Signature;
use crate::probe::patch::{self, PatchFacts};
use crate::probe::{Offload, ProbeError};

/// Package databases whose change means the updates may have changed.
const DATABASE_DIRS: [&str; 3] = [
    "/var/lib/rpm",
    "/var/lib/pacman/local",
    "/var/lib/apt/lists",
];

#[derive(Default)]
pub struct Patches {
    offload: Offload,
}

impl Probe for Patches {
    type Facts = PatchFacts;

    fn name(&self) -> &'static str {
        "patches"
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        (config.patches.interval, config.patches.timeout)
    }

    async fn collect(&self, config: &Config, _ctx: &Context) -> Result<PatchFacts, ProbeError> {
        patch::collect(&config.patch_settings, &self.offload).await
    }

    fn signature(&self, p: &PatchFacts, _thresholds: &[f64], signature: &mut Signature) {
        signature.other.push(format!(
            "patches {} {} {}",
            p.pending_count, p.security_count, p.reboot_required
        ));
    }

    fn report(&self, p: &PatchFacts, snapshot: &mut v1::Snapshot) {
        snapshot.patches = Some(patches(p.clone()));
    }

    fn judge(&self, p: &PatchFacts, _limits: &Limits, _now_ms: i64) -> Vec<(Level, String)> {
        let manager = if p.package_manager.is_empty() {
            "no package manager found"
        } else {
            &p.package_manager
        };
        let level = if p.security_count > 0 {
            Level::Warning
        } else {
            Level::Ok
        };
        let mut out = vec![(
            level,
            format!(
                "{manager}: {} updates pending, {} security",
                p.pending_count, p.security_count
            ),
        )];
        for u in p.updates.iter().filter(|u| u.security).take(5) {
            out.push((
                Level::Warning,
                format!(
                    "security: {} {} -> {}",
                    u.name, u.installed_version, u.candidate_version
                ),
            ));
        }
        if p.reboot_required {
            out.push((
                Level::Warning,
                format!("reboot required ({})", p.reboot_reason),
            ));
        }
        out
    }

    fn watched(&self, config: &Config) -> Vec<Watched> {
        let markers = config.patch_settings.reboot_markers.iter();
        markers
            .map(|m| Watched::file(m).refresh_only())
            .chain([Watched::file("/var/lib/dpkg/status")])
            .chain(DATABASE_DIRS.map(Watched::dir))
            .collect()
    }

    async fn refresh(&self, facts: &PatchFacts, config: &Config) -> Option<PatchFacts> {
        let (mut facts, settings) = (facts.clone(), config.patch_settings.clone());
        self.offload
            .run(move || {
                patch::refresh_reboot(&mut facts, &settings);
                facts
            })
            .await
            .ok()
    }
}

fn patches(p: PatchFacts) -> v1::PatchState {
    v1::PatchState {
        package_manager: p.package_manager,
        pending_count: p.pending_count,
        security_count: p.security_count,
        updates: p
            .updates
            .into_iter()
            .map(|u| v1::PendingUpdate {
                name: u.name,
                installed_version: u.installed_version,
                candidate_version: u.candidate_version,
                security: u.security,
            })
            .collect(),
        updates_truncated: p.updates_truncated,
        held_count: 0,
        held: Vec::new(),
        reboot_required: p.reboot_required,
        reboot_reason: p.reboot_reason,
        last_update_ms: p.last_update_ms,
    }
}
