//! The antivirus probe in the registry: every product found (running, real-time protection and
//! definitions count as a change), judged stale after a few days, and ClamAV's database folder
//! (the one clamd.conf names, else `antivirus.clamav_db_dir`) and clamd.conf watched so new
//! definitions are reported at once.

use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Level, Limits, Probe, Watched};
use crate::config::Config;
use crate::facts::Signature;
use crate::probe::antivirus::{self, AvProduct};
use crate::probe::{Offload, ProbeError};

#[derive(Default)]
pub struct Antivirus {
    offload: Offload,
}

impl Probe for Antivirus {
    type Facts = Vec<AvProduct>;

    fn name(&self) -> &'static str {
        "antivirus"
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        (config.antivirus.interval, config.antivirus.timeout)
    }

    async fn collect(&self, config: &Config, _ctx: &Context) -> Result<Vec<AvProduct>, ProbeError> {
        antivirus::collect(&config.av_settings, &self.offload).await
    }

    fn signature(&self, products: &Vec<AvProduct>, _thresholds: &[f64], signature: &mut Signature) {
        for a in products {
            signature.other.push(format!(
                "av {} {} {} {}",
                a.name, a.running, a.realtime_protection, a.definitions_version
            ));
        }
    }

    fn report(&self, products: &Vec<AvProduct>, snapshot: &mut v1::Snapshot) {
        snapshot.antivirus = Some(v1::AntivirusState {
            products: products.iter().cloned().map(product).collect(),
        });
    }

    fn judge(
        &self,
        products: &Vec<AvProduct>,
        limits: &Limits,
        now_ms: i64,
    ) -> Vec<(Level, String)> {
        if products.is_empty() {
            return vec![(Level::Critical, "no antivirus product found".into())];
        }
        products
            .iter()
            .map(|a| judge_av(a, limits, now_ms))
            .collect()
    }

    /// Reads clamd.conf (one small file, when the watcher is set up at start) for the folder
    /// the probe reads.
    fn watched(&self, config: &Config) -> Vec<Watched> {
        let settings = &config.av_settings;
        let conf = std::fs::read_to_string(&settings.clamd_conf)
            .map(|t| antivirus::clamav::parse_clamd_conf(&t))
            .unwrap_or_default();
        vec![
            Watched::dir(antivirus::clamav_db_dir(settings, &conf)),
            Watched::file(&settings.clamd_conf),
        ]
    }
}

fn judge_av(a: &AvProduct, limits: &Limits, now_ms: i64) -> (Level, String) {
    let age_days =
        (a.definitions_updated_ms > 0).then(|| (now_ms - a.definitions_updated_ms) / 86_400_000);
    let age = age_days
        .map(|d| format!(", {d} days old"))
        .unwrap_or_default();
    let base = format!(
        "{} definitions {}{age}",
        a.name,
        if a.definitions_version.is_empty() {
            "unknown"
        } else {
            &a.definitions_version
        }
    );
    if !a.running {
        // The probe says why after the source ("clamav-db-header; clamd not answering: ...").
        let why = a
            .source
            .split_once("; ")
            .map_or("not running", |(_, why)| why);
        (Level::Critical, format!("{base}: {why}"))
    } else if !a.realtime_protection && a.source != "clamd-socket" {
        (Level::Critical, format!("{base}: real-time protection off"))
    } else if age_days.is_some_and(|d| d > limits.definitions_max_age_days) {
        (Level::Warning, format!("{base}: definitions out of date"))
    } else {
        (Level::Ok, format!("{base}: running"))
    }
}

fn product(a: AvProduct) -> v1::AntivirusProduct {
    v1::AntivirusProduct {
        name: a.name,
        vendor: a.vendor,
        running: a.running,
        realtime_protection: a.realtime_protection,
        definitions_version: a.definitions_version,
        definitions_updated_ms: a.definitions_updated_ms,
        engine_version: a.engine_version,
        source: a.source,
    }
}
