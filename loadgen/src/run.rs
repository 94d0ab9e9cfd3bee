//! One run from start to summary: check the inputs (CA file, URL, limits), get the
//! identities (saved or enrolled), connect every agent, let them report through the warm-up
//! and the measured window while a progress line is printed, then stop them and summarise,
//! with the CPU of the load generator and of every `--measure-pid` tree over the same window.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::cli::Args;
use crate::identities::{self, AgentIdentity, Saved};
use crate::plan::{Mode, Plan, Storm};
use crate::procstat::{self, TreeSample};
use crate::sim::{self, Sim};
use crate::stats::Stats;
use crate::summary::{FlushSummary, Measured, Summary, per_1000};
use crate::{enroll, fds, sources};

/// Checks, enrolls, connects, runs and prints the summary.
pub async fn run(args: Args) -> anyhow::Result<()> {
    validate(&args)?;
    let ca_pem = std::fs::read_to_string(&args.ca_file).with_context(|| {
        format!(
            "cannot read the collector's CA certificate {} (it is ca.crt in the collector's data \
             directory)",
            args.ca_file.display()
        )
    })?;
    let sources = check_limits(&args)?;
    let agents = identities_for(&args, &ca_pem).await?;
    let rss_before = rss_now();
    let channels = connect_all(&args, &ca_pem, &agents, &sources).await?;
    let per_connection = rss_now().saturating_sub(rss_before) / agents.len().max(1) as u64;
    let (plan, stats) = plan(&args);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sims = JoinSet::new();
    for (identity, channel) in agents.iter().zip(channels) {
        let sim = Sim::new(identity.n, channel, Arc::clone(&plan), Arc::clone(&stats));
        sims.spawn(sim.run(stop_rx.clone()));
    }
    eprintln!(
        "{} agents reporting ({} mode, interval {}, warm-up {}, measuring {})",
        agents.len(),
        format!("{:?}", args.mode).to_lowercase(),
        humantime::format_duration(plan.interval),
        humantime::format_duration(window_offset(&args)),
        humantime::format_duration(args.duration),
    );
    let measured = watch_window(&args, &stats).await;
    let _ = stop_tx.send(true);
    while sims.join_next().await.is_some() {}
    let mut summary = summarise(&args, &plan, &stats, measured);
    summary.loadgen_rss_per_connection_bytes = per_connection;
    println!("{}", summary.text());
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).context("summary as JSON")?
        );
    }
    Ok(())
}

fn validate(args: &Args) -> anyhow::Result<()> {
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    for (name, v) in [
        ("--jitter", args.jitter),
        ("--cross-share", args.cross_share),
        ("--storm-share", args.storm_share),
    ] {
        if !(0.0..=1.0).contains(&v) {
            bail!("{name} {v} must be between 0 and 1");
        }
    }
    let uri: tonic::codegen::http::Uri = args
        .collector
        .parse()
        .with_context(|| format!("--collector {:?} is not a URL", args.collector))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        bail!(
            "--collector {:?} must be an https:// URL with a host, e.g. https://127.0.0.1:7443",
            args.collector
        );
    }
    Ok(())
}

/// Raises the open-file limit and checks that the agents fit in it and in the source
/// addresses' ephemeral ports.
fn check_limits(args: &Args) -> anyhow::Result<Vec<IpAddr>> {
    let limit = fds::raise();
    let need = fds::needed(args.agents);
    if limit.now < need {
        bail!(
            "{} agents need about {need} open files, but the limit is {} (it was {}; raising it \
             further needs root or a higher hard limit: `ulimit -Hn`, /proc/sys/fs/nr_open)",
            args.agents,
            limit.now,
            limit.before
        );
    }
    let sources = match &args.sources {
        Some(spec) => sources::parse(spec).with_context(|| format!("--sources {spec:?}"))?,
        None => Vec::new(),
    };
    let ports = fds::ephemeral_ports();
    let addresses = sources.len().max(1) as u64;
    if args.agents as u64 > ports * addresses {
        bail!(
            "{} agents over {addresses} source address(es) need more than the {ports} ephemeral \
             ports each has: pass --sources 127.0.0.1-127.0.0.{}",
            args.agents,
            (args.agents as u64).div_ceil(ports).max(2)
        );
    }
    Ok(sources)
}

/// The saved identities for this collector, topped up by enrolling the missing ones.
async fn identities_for(args: &Args, ca_pem: &str) -> anyhow::Result<Vec<AgentIdentity>> {
    let mut have = match &args.identities {
        Some(dir) => identities::load(dir, &args.collector, ca_pem)?,
        None => Vec::new(),
    };
    if have.len() >= args.agents {
        have.truncate(args.agents);
        eprintln!("reusing {} saved identities", have.len());
        return Ok(have);
    }
    let missing = args.agents - have.len();
    if args.token.trim().is_empty() {
        bail!(
            "{missing} agents need enrolling ({} saved identities fit this collector): pass \
             --token (`firstline-collector token create --uses {missing} --ttl 1d`)",
            have.len()
        );
    }
    eprintln!("enrolling {missing} agents ({} reused)", have.len());
    let started = Instant::now();
    let every = (missing / 10).max(1);
    let fresh = enroll::enroll_many(
        &args.collector,
        ca_pem,
        &args.token,
        have.len(),
        missing,
        args.concurrency,
        |done| {
            if done % every == 0 {
                eprintln!("  enrolled {done}/{missing}");
            }
        },
    )
    .await?;
    eprintln!(
        "enrolled {missing} agents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    have.extend(fresh);
    if let Some(dir) = &args.identities {
        let saved = Saved {
            collector_url: args.collector.clone(),
            ca_pem: ca_pem.to_owned(),
            agents: have.clone(),
        };
        identities::save(dir, &saved)?;
        eprintln!("saved identities in {}", identities::path(dir).display());
    }
    Ok(have)
}

/// One connection per agent, `concurrency` handshakes at a time; the first failure stops.
async fn connect_all(
    args: &Args,
    ca_pem: &str,
    agents: &[AgentIdentity],
    sources: &[IpAddr],
) -> anyhow::Result<Vec<tonic::transport::Channel>> {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, identity) in agents.iter().enumerate() {
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let (url, ca, id) = (args.collector.clone(), ca_pem.to_owned(), identity.clone());
        let source = sources::for_agent(sources, i);
        tasks.spawn(async move {
            let result = sim::connect(&url, &ca, &id, source).await;
            drop(permit);
            (i, source, result)
        });
    }
    let mut channels: Vec<Option<tonic::transport::Channel>> = vec![None; agents.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, source, result) = done.context("a connect task panicked")?;
        let channel = result.map_err(anyhow::Error::new).with_context(|| {
            let from = source.map_or(String::new(), |s| format!(" from {s}"));
            format!(
                "agent load-{} cannot connect to {}{from}",
                agents[i].n, args.collector
            )
        })?;
        channels[i] = Some(channel);
    }
    eprintln!(
        "connected {} agents in {:.1} s",
        agents.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(channels.into_iter().flatten().collect())
}

/// How long after the start measuring begins.
fn window_offset(args: &Args) -> Duration {
    if args.mode == Mode::Flush {
        Duration::ZERO
    } else {
        args.warmup
    }
}

fn plan(args: &Args) -> (Arc<Plan>, Arc<Stats>) {
    let start = Instant::now();
    let window_start = start + window_offset(args);
    let window_end = window_start + args.duration;
    let storm = (args.mode == Mode::Storm).then(|| {
        let from = window_start + args.duration / 4;
        Storm {
            from,
            until: from + args.storm_for.unwrap_or(args.duration / 2),
            share: args.storm_share,
        }
    });
    let epoch = u64::try_from(sim::now_ms()).unwrap_or(1).max(1);
    let plan = Plan {
        mode: args.mode,
        start,
        interval: args.effective_interval(),
        jitter: args.jitter,
        cross_share: args.cross_share,
        epoch,
        seed: epoch,
        offline: args.offline,
        storm,
    };
    let stats = Stats::new(window_start, window_end);
    (Arc::new(plan), Arc::new(stats))
}

/// CPU samples at the window's two ends.
struct WindowCpu {
    own: (Duration, Duration),
    trees: Vec<(u32, Option<TreeSample>, Option<TreeSample>)>,
}

/// Prints progress until the window ends (or Ctrl-C), sampling CPU at both ends.
async fn watch_window(args: &Args, stats: &Stats) -> WindowCpu {
    let (window_start, window_end) = stats.window();
    let started = Instant::now();
    let mut own_start = None;
    let mut trees_start = None;
    let mut last = (Instant::now(), 0u64);
    let mut tick = tokio::time::interval(args.progress.max(Duration::from_millis(200)));
    tick.tick().await;
    loop {
        let next_stop = if own_start.is_none() {
            window_start
        } else {
            window_end
        };
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                let acked = stats.total_acked.load(Ordering::Relaxed);
                let rate = (acked - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
                eprintln!(
                    "[{:>6.1}s] acked {acked} reports ({rate:.0}/s), errors {}{}",
                    (now - started).as_secs_f64(),
                    stats.total_errors.load(Ordering::Relaxed),
                    if now < window_start { " (warm-up)" } else { "" }
                );
                last = (now, acked);
            }
            () = tokio::time::sleep_until(next_stop.into()) => {
                if own_start.is_none() {
                    own_start = Some(procstat::own().0);
                    trees_start = Some(sample_trees(&args.measure_pid));
                } else {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: summarising what was measured");
                break;
            }
        }
    }
    let own_end = procstat::own().0;
    let ends = sample_trees(&args.measure_pid);
    let starts = trees_start.unwrap_or_else(|| ends.clone());
    WindowCpu {
        own: (own_start.unwrap_or(own_end), own_end),
        trees: args
            .measure_pid
            .iter()
            .zip(starts.into_iter().zip(ends))
            .map(|(pid, (a, b))| (*pid, a, b))
            .collect(),
    }
}

fn sample_trees(pids: &[u32]) -> Vec<Option<TreeSample>> {
    pids.iter().map(|p| procstat::sample_tree(*p)).collect()
}

fn summarise(args: &Args, plan: &Plan, stats: &Stats, cpu: WindowCpu) -> Summary {
    let (window_start, window_end) = stats.window();
    let window = Instant::now()
        .min(window_end)
        .saturating_duration_since(window_start);
    let inner = stats.snapshot();
    let mode = format!("{:?}", args.mode).to_lowercase();
    let mut s = Summary::from_window(&mode, args.agents, window, &inner);
    let own_cpu = cpu.own.1.saturating_sub(cpu.own.0);
    s.loadgen_cpu_seconds = own_cpu.as_secs_f64();
    s.loadgen_cpu_ms_per_1000_reports = per_1000(own_cpu, inner.acked_calls);
    s.loadgen_peak_rss_bytes = procstat::own().1;
    for (pid, start, end) in cpu.trees {
        match (start, end) {
            (Some(a), Some(b)) => {
                let used = b.cpu.saturating_sub(a.cpu);
                s.measured.push(Measured {
                    pid,
                    cpu_seconds: used.as_secs_f64(),
                    cpu_ms_per_1000_reports: per_1000(used, inner.acked_calls),
                    rss_bytes: b.rss_bytes,
                    processes: b.processes,
                });
            }
            _ => eprintln!("--measure-pid {pid}: no such process at the window's start or end"),
        }
    }
    if args.mode == Mode::Flush {
        let f = &inner.flush;
        s.flush = Some(FlushSummary {
            backlog_per_agent: plan.backlog(),
            agents_drained: f.agents_drained,
            snapshots_expected: (plan.backlog() * args.agents) as u64,
            snapshots_stored: f.snapshots_stored,
            lost: f.snapshots_expected.saturating_sub(f.snapshots_stored),
            drain_seconds: (f.agents_drained == args.agents as u64)
                .then(|| f.last_ack.map(|d| d.as_secs_f64()))
                .flatten(),
        });
    }
    for reason in &inner.rejected_reasons {
        eprintln!("rejected: {reason}");
    }
    for error in &inner.first_errors {
        eprintln!("error: {error}");
    }
    s
}

fn rss_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| procstat::status_kb_field(&s, "VmRSS"))
        .unwrap_or(0)
}
