//! The Linux shell of the patch probe: finds the package manager, runs it within its budget
//! (time, CPU, memory; `[patches]`), reads the reboot markers and kernel files. apt runs only
//! when its inputs changed since its last answer (`inputs`). All interpretation is in the
//! sibling parsers; every file look-up runs through the probe's `Offload`.

use std::path::Path;
use std::time::Duration;

use super::inputs::{self, Answer, Memo};
use super::{PatchFacts, PatchSettings, apt, dnf, kernel, pacman, zypper};
use crate::clock::local_to_epoch_ms;
use crate::probe::command::{self, Budget, Output, available};
use crate::probe::{Offload, ProbeError};

/// A package manager gets this long for one query (dnf may refresh metadata).
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The package manager found on PATH, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Apt,
    /// `dnf` or `yum`; whether `needs-restarting` is there too.
    Dnf(&'static str, bool),
    Zypper,
    /// `checkupdates` when installed (it does not touch pacman's database), else `pacman`.
    Pacman(bool),
    None,
}

pub async fn collect(
    settings: &PatchSettings,
    offload: &Offload,
    memo: &Memo,
    state_dir: &Path,
) -> Result<PatchFacts, ProbeError> {
    let manager = offload.run(find_manager).await?;
    let mut facts = match manager {
        Manager::Apt => apt_answer(settings, offload, memo, state_dir).await?,
        Manager::Dnf(tool, needs_restarting) => {
            dnf_updates(settings, tool, needs_restarting).await?
        }
        Manager::Zypper => zypper_updates(settings).await?,
        Manager::Pacman(checkupdates) => {
            let out = if checkupdates {
                run(settings, "checkupdates", &[]).await?
            } else {
                run(settings, "pacman", &["-Qu"]).await?
            };
            PatchFacts::from_updates("pacman", pacman::parse_updates(&out.stdout))
        }
        Manager::None => PatchFacts::default(),
    };
    let settings = settings.clone();
    let wants_history = manager == Manager::Apt;
    let wants_reboot = !facts.reboot_required;
    let (history, reboot) = offload
        .run(move || {
            let history = wants_history
                .then(|| std::fs::read_to_string(&settings.apt_history).ok())
                .flatten();
            (
                history,
                wants_reboot.then(|| reboot_reason(&settings)).flatten(),
            )
        })
        .await?;
    if let Some(history) = history {
        facts.last_update_ms = apt::last_upgrade_end(&history)
            .and_then(local_to_epoch_ms)
            .unwrap_or(0);
    }
    if let Some(reason) = reboot {
        facts.reboot_required = true;
        facts.reboot_reason = reason;
    }
    Ok(facts)
}

fn find_manager() -> Manager {
    if available("apt-get") {
        Manager::Apt
    } else if available("dnf") || available("yum") {
        let tool = if available("dnf") { "dnf" } else { "yum" };
        Manager::Dnf(tool, available("needs-restarting"))
    } else if available("zypper") {
        Manager::Zypper
    } else if available("pacman") {
        Manager::Pacman(available("checkupdates"))
    } else {
        Manager::None
    }
}

/// A package manager run within `[patches]`' budget.
async fn run(settings: &PatchSettings, tool: &str, args: &[&str]) -> Result<Output, ProbeError> {
    let budget = Budget {
        time: TOOL_TIMEOUT,
        cpu: settings.cpu_budget,
        memory: settings.memory_budget,
    };
    command::run_within(tool, args, budget).await
}

/// apt's answer: the kept one when apt's inputs are as they were when it was computed (less
/// than a day ago), else a new simulation, kept in memory and in the state folder.
async fn apt_answer(
    settings: &PatchSettings,
    offload: &Offload,
    memo: &Memo,
    state_dir: &Path,
) -> Result<PatchFacts, ProbeError> {
    let file = Answer::path(state_dir);
    let (s, f, kept) = (settings.clone(), file.clone(), memo.get());
    let (stamp, kept) = offload
        .run(move || {
            let stamp = inputs::fingerprint(&inputs::apt_inputs(&s));
            (stamp, kept.or_else(|| Answer::load(&f)))
        })
        .await?;
    let now = crate::clock::now_ms();
    if let Some(kept) = kept
        && let Some(facts) = kept.reusable(stamp, now)
    {
        tracing::debug!(
            age_s = (now - kept.taken_at_ms) / 1000,
            "apt's inputs unchanged; its last answer stands"
        );
        let facts = facts.clone();
        memo.set(kept);
        return Ok(facts);
    }
    tracing::info!("apt's inputs changed; simulating the upgrade");
    let facts = apt_updates(settings).await?;
    let answer = Answer {
        inputs: stamp,
        taken_at_ms: now,
        facts: facts.clone(),
    };
    memo.set(answer.clone());
    let error = match offload.run(move || answer.save(&file)).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(error) => Some(error.to_string()),
    };
    if let Some(error) = error {
        tracing::warn!(%error, "cannot keep apt's answer; apt runs again after a restart");
    }
    Ok(facts)
}

/// Pending updates from apt's simulation; held packages (only when `apt-mark showhold` names
/// some) from a second simulation that ignores holds.
async fn apt_updates(settings: &PatchSettings) -> Result<PatchFacts, ProbeError> {
    let out = apt(settings, "apt-get", &["-s", "dist-upgrade"]).await?;
    let mut facts = PatchFacts::from_updates("apt", apt::parse_simulation(&out));
    // The pending updates stand even when the held ones cannot be learned.
    let held = async {
        let held = apt::parse_showhold(&apt(settings, "apt-mark", &["showhold"]).await?);
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let ignoring = ["-s", "-o", "APT::Ignore-Hold=true", "dist-upgrade"];
        let simulation = apt(settings, "apt-get", &ignoring).await?;
        Ok::<_, ProbeError>(apt::held_updates(&simulation, &held))
    };
    match held.await {
        Ok(held) => facts.set_held(held),
        Err(error) => tracing::warn!(%error, "held packages unknown"),
    }
    Ok(facts)
}

/// Runs an apt tool with the agent's apt settings and returns its output; a failure names
/// the command. `[patches] apt_config` is handed over as `APT_CONFIG` through `env` (the
/// shared runner sets only the locale); without it, the agent's own `APT_CONFIG` applies.
async fn apt(settings: &PatchSettings, tool: &str, args: &[&str]) -> Result<String, ProbeError> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(conf) = &settings.apt_config {
        argv.push(format!("APT_CONFIG={}", conf.display()));
    }
    argv.push(tool.to_owned());
    argv.extend(["-o".to_owned(), "Debug::NoLocking=1".to_owned()]);
    for (key, path) in [
        ("Dir::State::status", &settings.dpkg_status),
        ("Dir::State::lists", &settings.apt_lists),
    ] {
        if let Some(path) = path {
            argv.extend(["-o".to_owned(), format!("{key}={}", path.display())]);
        }
    }
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(settings, "env", &argv).await?;
    if out.code != Some(0) {
        return Err(ProbeError::Failed(format!(
            "{tool} {} failed: {}",
            args.join(" "),
            first_line(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

async fn dnf_updates(
    settings: &PatchSettings,
    tool: &'static str,
    needs_restarting: bool,
) -> Result<PatchFacts, ProbeError> {
    let out = run(settings, tool, &["-q", "check-update"]).await?;
    if !matches!(out.code, Some(0) | Some(100)) {
        return Err(ProbeError::Failed(format!(
            "{tool} check-update failed: {}",
            first_line(&out.stderr)
        )));
    }
    let mut updates = dnf::parse_check_update(&out.stdout);
    if let Ok(sec) = run(settings, tool, &["-q", "updateinfo", "list", "--security"]).await {
        dnf::mark_security(&mut updates, &dnf::parse_security_advisories(&sec.stdout));
    }
    let mut facts = PatchFacts::from_updates(tool, updates);
    if needs_restarting
        && let Ok(nr) = run(settings, "needs-restarting", &["-r"]).await
        && dnf::needs_restarting_says_reboot(&nr.stdout)
    {
        facts.reboot_required = true;
        facts.reboot_reason = "needs-restarting -r".into();
    }
    Ok(facts)
}

async fn zypper_updates(settings: &PatchSettings) -> Result<PatchFacts, ProbeError> {
    let out = run(
        settings,
        "zypper",
        &["--non-interactive", "--xmlout", "list-updates"],
    )
    .await?;
    let mut facts = PatchFacts::from_updates("zypper", zypper::parse_list_updates(&out.stdout));
    if let Ok(p) = run(
        settings,
        "zypper",
        &[
            "--non-interactive",
            "--xmlout",
            "list-patches",
            "--category",
            "security",
        ],
    )
    .await
    {
        facts.security_count = zypper::count_security_patches(&p.stdout);
    }
    Ok(facts)
}

/// A reboot marker file, or a kernel newer than the running one. Blocks (file checks).
pub fn reboot_reason(settings: &PatchSettings) -> Option<String> {
    if let Some(marker) = settings.reboot_markers.iter().find(|p| p.exists()) {
        return Some(format!("{} exists", marker.display()));
    }
    kernel_reboot_reason()
}

/// A newer kernel in /boot than the running one, or the running kernel's modules removed (Arch
/// removes them on upgrade).
fn kernel_reboot_reason() -> Option<String> {
    let running = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let names: Vec<String> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    if let Some(newer) = kernel::newer_installed(&kernel::releases_from_boot(&names), &running) {
        return Some(format!("kernel {newer} installed, {running} running"));
    }
    let modules = std::path::Path::new("/usr/lib/modules");
    if modules.is_dir()
        && !modules.join(&running).exists()
        && names.iter().any(|n| n == "vmlinuz-linux")
    {
        return Some(format!(
            "modules of the running kernel {running} were removed by an upgrade"
        ));
    }
    None
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
}
