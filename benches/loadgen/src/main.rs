//! `segswarm-loadgen`: a load generator for WebTorrent WebSocket trackers (segswarm-tracker,
//! aquatic_ws, bittorrent-tracker). Loopback only, bounded in time.
//!
//! `relay` mode (default) opens C connections, each a browser-like peer announcing with offers in
//! one of S swarms of Zipf popularity and answering every offer relayed to it; it prints message
//! rates, offer/answer relay latency percentiles and the tracker's resident memory per connection.
//! `churn` mode keeps peers arriving and leaving and samples the tracker's memory periodically.

mod churn;
mod peer;
mod procfs;
mod relay;
mod stats;
mod swarms;
mod target;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use crate::peer::Shared;
use crate::swarms::Swarms;
use crate::target::Target;

/// Longest run accepted, seconds (measured window or churn time).
const MAX_DURATION_SECS: u64 = 7200;

/// Load generator for WebTorrent (WebSocket) trackers; loopback only.
#[derive(Debug, Parser)]
#[command(name = "segswarm-loadgen", version)]
struct Args {
    /// Tracker URL: ws://127.0.0.1:PORT or wss://127.0.0.1:PORT (must be loopback).
    #[arg(long, default_value = "ws://127.0.0.1:8000")]
    url: String,
    /// `relay`: fixed population, measure throughput and latency. `churn`: peers come and go.
    #[arg(long, value_enum, default_value_t = Mode::Relay)]
    mode: Mode,
    /// Connections (relay), or most peers alive at once (churn).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Number of swarms (info hashes).
    #[arg(long, default_value_t = 100)]
    swarms: usize,
    /// Zipf exponent of swarm popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    skew: f64,
    /// Offers in each announce (browser clients send min(numwant, 5)).
    #[arg(long, default_value_t = 5)]
    offers_per_announce: usize,
    /// Approximate size of each fake SDP, bytes.
    #[arg(long, default_value_t = 600)]
    sdp_bytes: usize,
    /// Measured window (relay) or total churn time, seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Unmeasured seconds after all connections are open (relay).
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Each peer re-announces with fresh offers this often, ms; 0 = announce once (relay).
    #[arg(long, default_value_t = 2000)]
    announce_interval_ms: u64,
    /// Fraction of peers that are seeders (`left: 0`).
    #[arg(long, default_value_t = 0.25)]
    seeder_fraction: f64,
    /// Tracker process id: read VmRSS/VmHWM and CPU time from /proc/PID.
    #[arg(long)]
    tracker_pid: Option<u32>,
    /// Print the report as JSON (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// For wss://: accept any server certificate.
    #[arg(long)]
    insecure: bool,
    /// For wss://: PEM file of CA certificates to trust.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Runtime worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Give up waiting for all connections after this many seconds (relay).
    #[arg(long, default_value_t = 120)]
    connect_timeout: u64,
    /// New connections per second (churn).
    #[arg(long, default_value_t = 200.0)]
    churn_rate: f64,
    /// Mean life of a churning peer, ms (each lives 0.5–1.5 times this).
    #[arg(long, default_value_t = 5000)]
    churn_hold_ms: u64,
    /// Swarm generations rotate this often in churn mode, seconds, so old swarms empty out.
    #[arg(long, default_value_t = 60)]
    swarm_rotate_secs: u64,
    /// Tracker memory sampling period in churn mode, seconds.
    #[arg(long, default_value_t = 30)]
    sample_interval: u64,
    /// Random seed (swarm choice, phases).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Relay,
    Churn,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.duration == 0 || args.duration > MAX_DURATION_SECS {
        bail!("--duration must be 1..={MAX_DURATION_SECS} seconds");
    }
    if args.warmup > 600 || args.connect_timeout > 600 {
        bail!("--warmup and --connect-timeout are at most 600 seconds");
    }
    if args.connections == 0 || args.connections > 1_000_000 {
        bail!("--connections must be 1..=1000000");
    }
    if !(0.0..=1.0).contains(&args.seeder_fraction) {
        bail!("--seeder-fraction must be within 0..=1");
    }
    if args.mode == Mode::Churn && !(args.churn_rate > 0.0 && args.churn_rate <= 10_000.0) {
        bail!("--churn-rate must be within (0, 10000]");
    }
    let nofile = procfs::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    if (nofile as usize) < args.connections + 64 {
        eprintln!(
            "warning: open-file limit {nofile} is below --connections {}; raise the hard limit (ulimit -Hn)",
            args.connections
        );
    }
    let target = Arc::new(Target::new(
        &args.url,
        args.insecure,
        args.ca_file.as_deref(),
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("building the runtime")?;
    // Hard bound on the whole run, whatever happens inside.
    let bound = Duration::from_secs(args.connect_timeout + args.warmup + args.duration + 120);
    runtime.block_on(async move {
        tokio::time::timeout(bound, run(args, target))
            .await
            .context("run exceeded its time bound")?
    })
}

async fn run(args: Args, target: Arc<Target>) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(args.offers_per_announce, args.sdp_bytes));
    let swarms = Swarms::new(args.swarms, args.skew);
    eprintln!(
        "segswarm-loadgen {:?} -> {} ({}): {} connections, {} swarms (zipf {}), {} offers/announce",
        args.mode,
        args.url,
        target.addr(),
        args.connections,
        swarms.len(),
        args.skew,
        args.offers_per_announce
    );
    let params = serde_json::json!({
        "url": args.url, "mode": format!("{:?}", args.mode).to_lowercase(),
        "connections": args.connections, "swarms": args.swarms, "skew": args.skew,
        "offers_per_announce": args.offers_per_announce, "sdp_bytes": args.sdp_bytes,
        "duration_s": args.duration, "warmup_s": args.warmup,
        "announce_interval_ms": args.announce_interval_ms, "threads": args.threads,
        "churn_rate": args.churn_rate, "churn_hold_ms": args.churn_hold_ms,
    });
    match args.mode {
        Mode::Relay => {
            let options = relay::RelayOptions {
                connections: args.connections,
                announce_every: (args.announce_interval_ms > 0)
                    .then(|| Duration::from_millis(args.announce_interval_ms)),
                warmup: Duration::from_secs(args.warmup),
                duration: Duration::from_secs(args.duration),
                connect_concurrency: args.connect_concurrency,
                connect_timeout: Duration::from_secs(args.connect_timeout),
                tracker_pid: args.tracker_pid,
                seed: args.seed,
                seeder_fraction: args.seeder_fraction,
            };
            let report = relay::run(target, shared, &swarms, &options).await;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"params": params, "report": report})
                    )?
                );
            } else {
                relay::print(&report);
            }
        }
        Mode::Churn => {
            let options = churn::ChurnOptions {
                max_live: args.connections,
                rate: args.churn_rate,
                hold: Duration::from_millis(args.churn_hold_ms),
                duration: Duration::from_secs(args.duration),
                sample_every: Duration::from_secs(args.sample_interval.max(1)),
                rotate: Duration::from_secs(args.swarm_rotate_secs.max(1)),
                tracker_pid: args.tracker_pid,
                seed: args.seed,
            };
            let report = churn::run(target, shared, &swarms, &options).await;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"params": params, "report": report})
                    )?
                );
            } else {
                churn::print(&report);
            }
        }
    }
    Ok(())
}
