//! Benchmark: CPU time one probe cycle costs on this machine, measured with the process CPU
//! clock (user + system, all threads) over repeated runs of the real probes:
//! - disk + antivirus (the frequent cycle),
//! - a connectivity round (gateway, a TCP connect to a local listener standing in for the
//!   collector, VPN interfaces),
//! - the system facts,
//! - the package-manager probe (reported separately: it runs the package tool).
//!
//! Run: `cargo bench -p firstline-agent --bench probe_cost` (`FIRSTLINE_BENCH_ROUNDS=N`).

use std::time::{Duration, Instant};

use firstline_agent::probe::Offload;
use firstline_agent::probe::antivirus::{self, AvSettings};
use firstline_agent::probe::connectivity::{self, ConnSettings};
use firstline_agent::probe::disk::{self, DiskFilter};
use firstline_agent::probe::patch::{self, PatchSettings};
use firstline_agent::probe::system::SystemProbe;

fn cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
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
    let per_cpu = (cpu() - cpu0) / rounds;
    let per_wall = wall0.elapsed() / rounds;
    println!(
        "{name}: {:.3} ms CPU per cycle ({:.3} ms wall), {rounds} cycles",
        per_cpu.as_secs_f64() * 1000.0,
        per_wall.as_secs_f64() * 1000.0
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
        measure("package-manager probe", 3, || async {
            let _ = patch::collect(&patches, &offload).await;
        })
        .await;
    });
}
