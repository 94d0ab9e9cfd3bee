//! File watching: the agent's config (hot reload) and whatever each probe's registry binding
//! asks for (the package databases and antivirus definition folders: rerun the probe; the
//! reboot-required markers: only refresh the reboot state). A change acts at once (after a
//! short debounce, since a package install touches many files), so a state change is reported
//! within about a second instead of at the next interval.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use firstline_support::blocking;
use firstline_support::errors::chain;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::facts::ProbeId;
use crate::registry::ProbeSet;
use crate::scheduler::Wakeups;

/// What a watched path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Config,
    /// Run the probe again.
    Rerun(ProbeId),
    /// Only refresh the probe's last facts (a reboot marker: only the reboot state changes).
    Refresh(ProbeId),
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

/// What to watch for this configuration: the config file and what each probe asks for (only
/// directories that exist are watched).
pub fn specs(config: &Config, config_file: Option<&Path>, probes: &ProbeSet) -> Vec<WatchSpec> {
    let mut out = Vec::new();
    if let Some(file) = config_file {
        // Events name absolute paths: a relative `--config` would never match them.
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        out.extend(file_in_dir(&file, Target::Config));
    }
    for (id, watched) in probes.watched(config) {
        let target = if watched.refresh_only {
            Target::Refresh(id)
        } else {
            Target::Rerun(id)
        };
        if watched.whole_dir {
            out.push(WatchSpec {
                dir: watched.path,
                file: None,
                target,
            });
        } else {
            out.extend(file_in_dir(&watched.path, target));
        }
    }
    out
}

fn file_in_dir(path: &Path, target: Target) -> Option<WatchSpec> {
    let (dir, name) = (path.parent()?, path.file_name()?);
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    Some(WatchSpec {
        dir: dir.to_owned(),
        file: Some(name.to_owned()),
        target,
    })
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
/// debounced targets. Setting up the watches looks at the file system, on the blocking pool.
pub async fn start(
    specs: Vec<WatchSpec>,
) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<Target>)> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<PathBuf>();
    let dirs: Vec<PathBuf> = specs.iter().map(|s| s.dir.clone()).collect();
    let watcher = blocking::run(move || watch_dirs(dirs, raw_tx)).await?;
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
            pending.sort();
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

/// Creates the watcher and watches every directory that exists. Blocks.
fn watch_dirs(
    mut dirs: Vec<PathBuf>,
    raw_tx: mpsc::UnboundedSender<PathBuf>,
) -> notify::Result<RecommendedWatcher> {
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
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if dir.is_dir() {
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => tracing::debug!(dir = %dir.display(), "watching"),
                Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot watch"),
            }
        }
    }
    Ok(watcher)
}

/// Acts on watched changes: reruns or refreshes probes, reloads the config (keeping the old
/// one, and saying why, when the new file is invalid).
pub async fn dispatch(
    mut targets: mpsc::UnboundedReceiver<Target>,
    wakeups: Arc<Wakeups>,
    config_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    config: tokio::sync::watch::Sender<Arc<Config>>,
) {
    let mut reloads: HashMap<Target, u64> = HashMap::new();
    while let Some(target) = targets.recv().await {
        *reloads.entry(target).or_default() += 1;
        match target {
            Target::Rerun(id) => {
                tracing::debug!(probe = id.name(), "watched files changed; rerunning");
                wakeups.changed(id);
            }
            Target::Refresh(id) => {
                tracing::debug!(probe = id.name(), "watched files changed; refreshing");
                wakeups.refresh(id);
            }
            Target::Config => {
                let (file, dir) = (config_file.clone(), state_dir.clone());
                match blocking::run(move || Config::load(file.as_deref(), dir.as_deref())).await {
                    Ok(new) if *config.borrow().as_ref() == new => {}
                    Ok(new) => {
                        tracing::info!("configuration reloaded");
                        config.send_replace(Arc::new(new));
                    }
                    Err(error) => tracing::warn!(
                        error = %chain(&error),
                        "configuration not reloaded; keeping the previous one"
                    ),
                }
            }
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
        // No clamd.conf: the agent's own database folder (not this machine's clamd.conf).
        config.av_settings.clamd_conf = "/nonexistent/clamd.conf".into();
        let probes = ProbeSet::new();
        let id = |name| probes.id(name).expect("probe");
        let specs = specs(
            &config,
            Some(Path::new("/etc/firstline/agent.toml")),
            &probes,
        );
        let cases: [(&str, &[Target]); 6] = [
            ("/run/reboot-required", &[Target::Refresh(id("patches"))]),
            ("/run/other-file", &[]),
            ("/etc/firstline/agent.toml", &[Target::Config]),
            ("/var/lib/dpkg/status", &[Target::Rerun(id("patches"))]),
            ("/var/lib/dpkg/lock", &[]),
            (
                "/var/lib/clamav/daily.cld",
                &[Target::Rerun(id("antivirus"))],
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(targets_for(&specs, Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn a_relative_config_path_matches_the_events_absolute_paths() {
        let probes = ProbeSet::new();
        let specs = specs(&Config::default(), Some(Path::new("agent.toml")), &probes);
        let absolute = std::env::current_dir().expect("cwd").join("agent.toml");
        assert_eq!(targets_for(&specs, &absolute), [Target::Config]);
    }

    #[test]
    fn the_clamav_database_folder_is_the_one_clamd_conf_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clamd_conf = dir.path().join("clamd.conf");
        std::fs::write(&clamd_conf, "DatabaseDirectory /srv/clamav-db\n").expect("clamd.conf");
        let mut config = Config::default();
        config.av_settings.clamd_conf = clamd_conf.clone();
        config.av_settings.clamav_db_dir = "/opt/clamav".into();
        let probes = ProbeSet::new();
        let av = Target::Rerun(probes.id("antivirus").expect("probe"));
        let specs = specs(&config, None, &probes);
        let cases: [(&Path, &[Target]); 4] = [
            (Path::new("/srv/clamav-db/daily.cld"), &[av]),
            (Path::new("/srv/clamav-db/main.cvd"), &[av]),
            (&clamd_conf, &[av]),
            (Path::new("/var/lib/clamav/daily.cld"), &[]),
        ];
        for (path, expected) in cases {
            assert_eq!(targets_for(&specs, path), expected, "{}", path.display());
        }
        // Without DatabaseDirectory, the agent's own setting.
        std::fs::write(&clamd_conf, "LocalSocket /run/clamd.ctl\n").expect("clamd.conf");
        let specs = super::specs(&config, None, &probes);
        assert_eq!(
            targets_for(&specs, Path::new("/opt/clamav/daily.cvd")),
            [av]
        );
    }

    #[test]
    fn apt_state_is_watched_where_the_patches_settings_say() {
        let mut config = Config::default();
        config.patch_settings.dpkg_status = Some("/srv/lab/dpkg/status".into());
        config.patch_settings.apt_lists = Some("/srv/lab/lists".into());
        let probes = ProbeSet::new();
        let patches = Target::Rerun(probes.id("patches").expect("probe"));
        let specs = specs(&config, None, &probes);
        let cases: [(&str, &[Target]); 4] = [
            ("/srv/lab/dpkg/status", &[patches]),
            ("/srv/lab/lists/lab_Packages", &[patches]),
            ("/var/lib/dpkg/status", &[]),
            ("/var/lib/apt/lists/deb_Packages", &[]),
        ];
        for (path, expected) in cases {
            assert_eq!(targets_for(&specs, Path::new(path)), expected, "{path}");
        }
    }
}
