//! The command line. Durations are humantime (`60s`, `10m`, `1h`); `--interval 0` is the
//! closed loop that measures the collector's sustained maximum.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::plan::Mode;

/// Simulated Firstline agents reporting to a collector, to measure it at fleet scale.
#[derive(Debug, Parser)]
#[command(name = "firstline-loadgen", version)]
pub struct Args {
    /// The collector's gRPC URL.
    #[arg(long, default_value = "https://127.0.0.1:7443")]
    pub collector: String,
    /// The collector's CA certificate (DATA_DIR/ca.crt).
    #[arg(long)]
    pub ca_file: PathBuf,
    /// Enrollment token with at least one use per agent to enroll
    /// (`firstline-collector token create --uses 100000 --ttl 1d`).
    #[arg(long, env = "FIRSTLINE_LOADGEN_TOKEN", default_value = "")]
    pub token: String,
    /// Simulated agents, each with its own identity and connection.
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    /// Keep enrolled identities in this directory and reuse them next time.
    #[arg(long)]
    pub identities: Option<PathBuf>,
    /// Enrollments and connection handshakes at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Time between two reports of one agent; 0: closed loop (next report on ack).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Aggregate target reports/s instead of --interval (the interval becomes agents / rate).
    #[arg(long, conflicts_with = "interval")]
    pub rate: Option<f64>,
    /// Relative jitter of the interval (0.2: ±20%).
    #[arg(long, default_value_t = 0.2)]
    pub jitter: f64,
    /// Measured time, after the warm-up.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Time before measuring starts (not counted; not used by --mode flush).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Share of reports in which a filesystem crosses 90% (it clears three reports later).
    #[arg(long, default_value_t = 0.02)]
    pub cross_share: f64,
    #[arg(long, value_enum, default_value_t = Mode::Steady)]
    pub mode: Mode,
    /// Share of agents in the storm.
    #[arg(long, default_value_t = 0.5)]
    pub storm_share: f64,
    /// How long the storm lasts (default: half the measured time, from its first quarter).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub storm_for: Option<Duration>,
    /// Flush: how long the agents were offline (their backlog, at the interval).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub offline: Duration,
    /// Local source addresses: a range (127.0.0.1-127.0.0.16), a list, or a count from
    /// 127.0.0.1. Default: the system's choice.
    #[arg(long)]
    pub sources: Option<String>,
    /// Measure the CPU and memory of this process and its descendants (repeatable).
    #[arg(long = "measure-pid")]
    pub measure_pid: Vec<u32>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub progress: Duration,
    /// Print the summary also as one JSON object, as the last line.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The interval of each agent, from --rate when given.
    pub fn effective_interval(&self) -> Duration {
        match self.rate {
            Some(rate) if rate > 0.0 => Duration::from_secs_f64(self.agents as f64 / rate),
            _ => self.interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_becomes_an_interval() {
        let a = Args::parse_from([
            "firstline-loadgen",
            "--ca-file",
            "ca.crt",
            "--agents",
            "1000",
            "--rate",
            "500",
        ]);
        assert_eq!(a.effective_interval(), Duration::from_secs(2));
        let a = Args::parse_from(["x", "--ca-file", "c", "--interval", "0"]);
        assert_eq!(a.effective_interval(), Duration::ZERO);
        assert!(
            Args::try_parse_from(["x", "--ca-file", "c", "--interval", "1s", "--rate", "1"])
                .is_err()
        );
    }
}
