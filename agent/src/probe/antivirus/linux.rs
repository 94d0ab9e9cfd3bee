//! The Linux shell of the antivirus probe: clamd over its socket (or, when it is down, ClamAV's
//! database headers), `mdatp health`, and EDR agents by process name. Local files are read in
//! one go on the probe's `Offload`; the socket and `mdatp` are asked afterwards. clamd gets
//! most of the probe's timeout (a busy clamd reloading its databases answers late), and a
//! clamd that accepts but never answers is reported apart from one that is not running.

use std::time::Duration;

use super::clamav::{ClamdConf, DbHeader, QueryError};
use super::{AvProduct, AvSettings, clamav, edr, mdatp};
use crate::probe::command::{available, run};
use crate::probe::{Offload, ProbeError};

/// The on-access scanner's process name: real-time protection is on only while it runs.
const CLAMONACC: &str = "clamonacc";
/// Longest `source` the collector accepts.
const MAX_SOURCE: usize = 255;

/// What the probe reads from local files before it asks anything over a socket or a pipe.
struct Local {
    /// EDR products whose installation is present.
    installed: Vec<&'static str>,
    processes: Vec<String>,
    conf: ClamdConf,
    /// clamonacc runs (looked for only when clamd.conf configures on-access scanning).
    clamonacc: bool,
    /// The database directory's newest header.
    header: Option<DbHeader>,
    mdatp: bool,
}

/// Runs the probe; clamd's PING and VERSION together may take `settings.clamd_budget`.
pub async fn collect(
    settings: &AvSettings,
    offload: &Offload,
) -> Result<Vec<AvProduct>, ProbeError> {
    let deadline = tokio::time::Instant::now() + settings.clamd_budget;
    let settings = settings.clone();
    let local = offload.run(move || read_local(&settings)).await?;
    let mut products = Vec::new();
    if let Some(clam) = clamav_product(&local, deadline).await {
        products.push(clam);
    }
    if local.mdatp
        && let Ok(out) = run(
            "mdatp",
            &["health", "--output", "json"],
            Duration::from_secs(20),
        )
        .await
        && let Some(p) =
            mdatp::parse_health_json(&out.stdout).or_else(|| mdatp::parse_health_text(&out.stdout))
    {
        products.push(p);
    }
    let running = edr::detect(&local.processes);
    let stopped = edr::installed_not_running(&local.installed, &running);
    for p in running.into_iter().chain(stopped) {
        // Defender is already reported from a better source.
        if !products.iter().any(|q| q.vendor == p.vendor) {
            products.push(p);
        }
    }
    Ok(products)
}

/// Reads installation markers, the process table (only when an EDR product is installed: it
/// costs about a millisecond), clamd.conf and the ClamAV database headers. Blocks.
fn read_local(settings: &AvSettings) -> Local {
    let installed: Vec<&'static str> = edr::INSTALL_MARKERS
        .iter()
        .filter(|(path, _)| std::path::Path::new(path).exists())
        .map(|(_, name)| *name)
        .collect();
    let conf = std::fs::read_to_string(&settings.clamd_conf)
        .map(|t| clamav::parse_clamd_conf(&t))
        .unwrap_or_default();
    let processes = if installed.is_empty() && !conf.on_access {
        Vec::new()
    } else {
        process_names()
    };
    let db_dir = super::clamav_db_dir(settings, &conf);
    Local {
        installed,
        clamonacc: processes.iter().any(|p| p == CLAMONACC),
        processes,
        header: clamav::newest_db_header(&db_dir),
        conf,
        mdatp: available("mdatp"),
    }
}

async fn clamav_product(local: &Local, deadline: tokio::time::Instant) -> Option<AvProduct> {
    let conf = &local.conf;
    let header = local.header.as_ref();
    let socket = conf.socket();
    let mut version = None;
    let answer = match &socket {
        Some(socket) => match clamav::query(socket, "PING", deadline).await {
            Ok(pong) if pong.starts_with("PONG") => Ok(()),
            Ok(other) => Err(QueryError::NotAnswering(format!(
                "{socket}: unexpected reply {:?}",
                other.trim_end_matches(['\0', '\n'])
            ))),
            Err(e) => Err(e),
        },
        None => Err(QueryError::NotRunning(
            "clamd.conf names no LocalSocket or TCPSocket".into(),
        )),
    };
    let running = answer.is_ok();
    if let Some(socket) = socket.as_ref().filter(|_| running) {
        version = clamav::query(socket, "VERSION", deadline)
            .await
            .ok()
            .and_then(|v| clamav::parse_version(&v));
    }
    if !running && header.is_none() && socket.is_none() {
        return None; // ClamAV is not installed
    }
    let definitions_version = version
        .as_ref()
        .and_then(|v| v.db_version)
        .or(header.map(|h| h.version))
        .map(|v| v.to_string())
        .unwrap_or_default();
    Some(AvProduct {
        name: "ClamAV".into(),
        vendor: "Cisco".into(),
        running,
        // clamd scans on request; real-time protection is clamonacc, which must be running.
        realtime_protection: running && conf.on_access && local.clamonacc,
        definitions_version,
        definitions_updated_ms: clamav::definitions_ms(header, version.as_ref()),
        engine_version: version.map(|v| v.engine).unwrap_or_default(),
        source: match answer {
            Ok(()) => "clamd-socket".into(),
            Err(why) => bounded(format!("clamav-db-header; {why}")),
        },
    })
}

/// `text` cut to what the collector accepts, at a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_SOURCE {
        let mut end = MAX_SOURCE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Names of running processes (`/proc/<pid>/comm`).
fn process_names() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect()
}

#[cfg(test)]
#[path = "linux_tests.rs"]
mod tests;
