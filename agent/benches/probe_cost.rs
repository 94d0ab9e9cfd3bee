//! Benchmark: CPU time one probe cycle costs on this machine, the whole process tree: the
//! process CPU clock (user + system, all threads) plus the CPU of the tools the probes ran
//! (the children's times, `cutime + cstime`, once reaped), and the largest resident memory a
//! tool's process tree reached. Over repeated runs of the real probes:
//! - disk + antivirus (the frequent cycle),
//! - a connectivity round (gateway, a TCP connect to a local listener standing in for the
//!   collector, VPN interfaces),
//! - the system facts,
//! - the package-manager probe, twice: when the package databases changed (the tool runs),
//!   and when they did not (its last answer stands).
//!
//! Run: `cargo bench -p firstline-agent --bench probe_cost` (`FIRSTLINE_BENCH_ROUNDS=N`).

use std::time::{Duration, Instant};

use firstline_agent::probe::antivirus::{self, AvSettings};
use firstline_agent::probe::connectivity::{self, ConnSettings};
use firstline_agent::probe::disk::{self, DiskFilter};
use firstline_agent::probe::patch::{self, PatchSettings};
use firstline_agent::probe::system::SystemProbe;
use firstline_agent::probe::{Offload, command};

/// This process's CPU time and its reaped children's.
fn cpu() -> (Duration, Duration) {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let own = Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    );
    (own, children_cpu())
}

/// `cutime + cstime` of /proc/self/stat (fields 16 and 17; the name in field 2 may hold spaces).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(13)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_millis(fields.iter().sum::<u64>() * 1000 / hz)
}

async fn measure<F, Fut>(name: &str, rounds: u32, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm caches and lazy initialisation
    let (cpu0, wall0) = (cpu(), Instant::now());
    for _ in 0..rounds {
        f().await;
    }
    let cpu1 = cpu();
    let own = (cpu1.0 - cpu0.0) / rounds;
    let children = (cpu1.1 - cpu0.1) / rounds;
    let per_wall = wall0.elapsed() / rounds;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: {:.3} ms CPU per cycle (agent {:.3} + tools {:.3}; {:.3} ms wall), tools' peak RSS so far {:.1} MiB, {rounds} cycles",
        ms(own + children),
        ms(own),
        ms(children),
        ms(per_wall),
        command::peak_tree_rss() as f64 / (1024.0 * 1024.0)
    );
}

fn main() {
    let rounds: u32 = std::env::var("FIRSTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let collector = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let filter = DiskFilter::default();
        let av = AvSettings::default();
        let offload = Offload::default();
        measure("disk + antivirus", rounds, || async {
            let _ = disk::collect(&filter);
            let _ = antivirus::collect(&av, &offload).await;
        })
        .await;
        let conn = ConnSettings {
            collector: Some(collector),
            ..ConnSettings::default()
        };
        measure("connectivity round", rounds, || async {
            let _ = connectivity::collect(&conn, &offload).await;
        })
        .await;
        let mut system = SystemProbe::new();
        measure("system facts", rounds / 10 + 1, || {
            let _ = system.collect();
            async {}
        })
        .await;
        let patches = PatchSettings::default();
        let state = tempfile::tempdir().expect("tempdir");
        measure("package-manager probe, databases changed", 3, || async {
            // A fresh memory and state folder: nothing to reuse, the tool runs.
            let fresh = tempfile::tempdir().expect("tempdir");
            let memo = patch::inputs::Memo::default();
            let _ = patch::collect(&patches, &offload, &memo, fresh.path()).await;
        })
        .await;
        let memo = patch::inputs::Memo::default();
        measure("package-manager probe, databases unchanged", 20, || async {
            let _ = patch::collect(&patches, &offload, &memo, state.path()).await;
        })
        .await;
    });
}
