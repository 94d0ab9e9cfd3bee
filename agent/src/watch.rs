//! File watching: the agent's config (hot reload), the reboot-required markers, the package
//! databases and the antivirus definition folders. A change reruns the affected probe at once
//! (after a short debounce, since a package install touches many files), so a state change is
//! reported within about a second instead of at the next interval.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};

use crate::config::Config;
use crate::facts::ProbeKind;

/// What a watched path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Config,
    Probe(ProbeKind),
    /// A reboot marker: only the reboot state needs checking again.
    RebootMarker,
}

/// A directory to watch, optionally only for one file name in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    pub dir: PathBuf,
    pub file: Option<OsString>,
    pub target: Target,
}

/// Quiet time after the last event before acting on a burst.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// Longest wait from the first event of a burst to acting on it.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// What to watch for this configuration (only directories that exist are watched).
pub fn specs(config: &Config, config_file: Option<&Path>) -> Vec<WatchSpec> {
    let mut out = Vec::new();
    let mut file_in_dir = |path: &Path, target| {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            out.push(WatchSpec {
                dir: dir.to_owned(),
                file: Some(name.to_owned()),
                target,
            });
        }
    };
    if let Some(file) = config_file {
        file_in_dir(file, Target::Config);
    }
    for marker in &config.patch_settings.reboot_markers {
        file_in_dir(marker, Target::RebootMarker);
    }
    file_in_dir(
        Path::new("/var/lib/dpkg/status"),
        Target::Probe(ProbeKind::Patches),
    );
    for dir in [
        "/var/lib/rpm",
        "/var/lib/pacman/local",
        "/var/lib/apt/lists",
    ] {
        out.push(WatchSpec {
            dir: dir.into(),
            file: None,
            target: Target::Probe(ProbeKind::Patches),
        });
    }
    out.push(WatchSpec {
        dir: config.av_settings.clamav_db_dir.clone(),
        file: None,
        target: Target::Probe(ProbeKind::Antivirus),
    });
    out
}

/// Which targets an event on `path` concerns.
pub fn targets_for(specs: &[WatchSpec], path: &Path) -> Vec<Target> {
    let mut out: Vec<Target> = specs
        .iter()
        .filter(|s| {
            path.parent() == Some(s.dir.as_path())
                && s.file
                    .as_ref()
                    .is_none_or(|f| Some(f.as_os_str()) == path.file_name())
        })
        .map(|s| s.target)
        .collect();
    out.dedup();
    out
}

/// Starts watching; returns the watcher (watching stops when it is dropped) and a receiver of
/// debounced targets.
pub fn start(
    specs: Vec<WatchSpec>,
) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<Target>)> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading a file is not a change (and the probes themselves read these files).
        if let Ok(event) = event
            && matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            )
        {
            for path in event.paths {
                let _ = raw_tx.send(path);
            }
        }
    })?;
    let mut dirs: Vec<&PathBuf> = specs.iter().map(|s| &s.dir).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if dir.is_dir() {
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => tracing::debug!(dir = %dir.display(), "watching"),
                Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot watch"),
            }
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(first) = raw_rx.recv().await {
            let mut pending: Vec<Target> = targets_for(&specs, &first);
            // Collect the rest of the burst, but act within a second even if it goes on.
            let deadline = tokio::time::Instant::now() + MAX_DELAY;
            while let Ok(Some(path)) = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + DEBOUNCE),
                raw_rx.recv(),
            )
            .await
            {
                pending.extend(targets_for(&specs, &path));
            }
            pending.sort_by_key(|t| format!("{t:?}"));
            pending.dedup();
            for target in pending {
                if tx.send(target).is_err() {
                    return;
                }
            }
        }
    });
    Ok((watcher, rx))
}

/// Acts on watched changes: reruns probes, reloads the config (keeping the old one, and saying
/// why, when the new file is invalid).
pub async fn dispatch(
    mut targets: mpsc::UnboundedReceiver<Target>,
    rerun: [Arc<Notify>; 5],
    reboot: Arc<Notify>,
    config_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    config: tokio::sync::watch::Sender<Arc<Config>>,
) {
    let mut reloads: HashMap<Target, u64> = HashMap::new();
    while let Some(target) = targets.recv().await {
        *reloads.entry(target).or_default() += 1;
        match target {
            Target::Probe(kind) => {
                tracing::debug!(probe = kind.name(), "watched files changed; rerunning");
                rerun[kind as usize].notify_one();
            }
            Target::RebootMarker => {
                tracing::debug!("reboot marker changed; checking the reboot state");
                reboot.notify_one();
            }
            Target::Config => match Config::load(config_file.as_deref(), state_dir.as_deref()) {
                Ok(new) if *config.borrow().as_ref() == new => {}
                Ok(new) => {
                    tracing::info!("configuration reloaded");
                    config.send_replace(Arc::new(new));
                }
                Err(error) => {
                    tracing::warn!(%error, "configuration not reloaded; keeping the previous one")
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_the_probe_that_reads_the_file() {
        let mut config = Config::default();
        config.patch_settings.reboot_markers = vec!["/run/reboot-required".into()];
        let specs = specs(&config, Some(Path::new("/etc/firstline/agent.toml")));
        assert_eq!(
            targets_for(&specs, Path::new("/run/reboot-required")),
            [Target::RebootMarker]
        );
        assert!(targets_for(&specs, Path::new("/run/other-file")).is_empty());
        assert_eq!(
            targets_for(&specs, Path::new("/etc/firstline/agent.toml")),
            [Target::Config]
        );
        assert_eq!(
            targets_for(&specs, Path::new("/var/lib/dpkg/status")),
            [Target::Probe(ProbeKind::Patches)]
        );
        assert!(targets_for(&specs, Path::new("/var/lib/dpkg/lock")).is_empty());
        assert_eq!(
            targets_for(&specs, Path::new("/var/lib/clamav/daily.cld")),
            [Target::Probe(ProbeKind::Antivirus)]
        );
    }
}
