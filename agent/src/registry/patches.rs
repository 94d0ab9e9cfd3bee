//! The patch probe in the registry: pending updates (security ones count as a change), held
//! packages with newer versions (reported apart from the pending ones), the reboot state, and
//! the package databases (dpkg's status and apt's lists where `[patches]` says) and reboot
//! markers it watches. A reboot marker only needs the reboot state looked at again, not the
//! package manager run.

use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Level, Limits, Probe, Watched};
use crate::config::Config;
use crate::facts::Signature;
use crate::probe::patch::{self, PatchFacts};
use crate::probe::{Offload, ProbeError};

/// Package databases besides apt's (which `[patches]` names) whose change means the updates
/// may have changed.
const DATABASE_DIRS: [&str; 2] = ["/var/lib/rpm", "/var/lib/pacman/local"];

#[derive(Default)]
pub struct Patches {
    offload: Offload,
    memo: patch::inputs::Memo,
}

impl Probe for Patches {
    type Facts = PatchFacts;

    fn name(&self) -> &'static str {
        "patches"
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        (config.patches.interval, config.patches.timeout)
    }

    fn rerun_gap(&self, config: &Config) -> Duration {
        config.patch_settings.rerun_gap
    }

    async fn collect(&self, config: &Config, _ctx: &Context) -> Result<PatchFacts, ProbeError> {
        patch::collect(
            &config.patch_settings,
            &self.offload,
            &self.memo,
            &config.state_dir,
        )
        .await
    }

    fn signature(&self, p: &PatchFacts, _thresholds: &[f64], signature: &mut Signature) {
        signature.other.push(format!(
            "patches {} {} {} {} {}",
            p.pending_count,
            p.security_count,
            p.held_count,
            p.held.iter().filter(|u| u.security).count(),
            p.reboot_required
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
        if p.held_count > 0 {
            let security: Vec<&str> = p
                .held
                .iter()
                .filter(|u| u.security)
                .map(|u| u.name.as_str())
                .collect();
            let (level, fixes) = if security.is_empty() {
                (Level::Ok, String::new())
            } else {
                (
                    Level::Warning,
                    format!(", security fixes held: {}", security.join(", ")),
                )
            };
            out.push((
                level,
                format!("held: {} packages with newer versions{fixes}", p.held_count),
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
        let settings = &config.patch_settings;
        let markers = settings.reboot_markers.iter();
        markers
            .map(|m| Watched::file(m).refresh_only())
            .chain([
                Watched::file(settings.dpkg_status_file()),
                Watched::dir(settings.apt_lists_dir()),
            ])
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

fn update(u: patch::PendingUpdate) -> v1::PendingUpdate {
    v1::PendingUpdate {
        name: u.name,
        installed_version: u.installed_version,
        candidate_version: u.candidate_version,
        security: u.security,
    }
}

fn patches(p: PatchFacts) -> v1::PatchState {
    v1::PatchState {
        package_manager: p.package_manager,
        pending_count: p.pending_count,
        security_count: p.security_count,
        updates: p.updates.into_iter().map(update).collect(),
        updates_truncated: p.updates_truncated,
        held_count: p.held_count,
        held: p.held.into_iter().map(update).collect(),
        reboot_required: p.reboot_required,
        reboot_reason: p.reboot_reason,
        last_update_ms: p.last_update_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::patch::PendingUpdate;

    #[test]
    fn held_packages_go_into_the_snapshot_and_a_held_security_fix_is_a_warning() {
        let fix = |name: &str, security| PendingUpdate {
            name: name.into(),
            installed_version: "1.0-1".into(),
            candidate_version: "2.0-1".into(),
            security,
        };
        let mut facts = PatchFacts::from_updates("apt", vec![fix("firstline-demo", false)]);
        facts.set_held(vec![fix("firstline-sec", true)]);
        let state = patches(facts.clone());
        assert_eq!((state.pending_count, state.held_count), (1, 1));
        assert_eq!(state.held[0].name, "firstline-sec");
        assert!(state.held[0].security);
        let findings = Patches::default().judge(&facts, &Limits::default(), 0);
        assert!(
            findings.contains(&(
                Level::Warning,
                "held: 1 packages with newer versions, security fixes held: firstline-sec".into()
            )),
            "{findings:?}"
        );
    }
}
