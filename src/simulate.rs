//! `segswarm simulate`: run the deterministic swarm simulator and print offload and stalls.

use std::time::Instant;

use clap::ValueEnum;
use segswarm::core::sim::{p2p_caused_stalls, Mode, Report, SimConfig, SimPolicy, Simulation};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Live,
    Vod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    Segswarm,
    Baseline,
    Both,
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Number of viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Live stream or video on demand.
    #[arg(long, value_enum, default_value_t = ModeArg::Live)]
    mode: ModeArg,
    /// Simulated seconds.
    #[arg(long, default_value_t = 300.0)]
    seconds: f64,
    /// Seed: the same seed gives the same result.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Which scheduling policy to run (both = segswarm and the p2p-media-loader baseline).
    #[arg(long, value_enum, default_value_t = PolicyArg::Both)]
    policy: PolicyArg,
    /// Video bitrate in bits/s.
    #[arg(long, default_value_t = 2_000_000.0)]
    bitrate: f64,
    /// Mean peer upload rate as a multiple of the bitrate.
    #[arg(long, default_value_t = 1.5)]
    upload_ratio: f64,
    /// Mean download rate as a multiple of the bitrate.
    #[arg(long, default_value_t = 8.0)]
    download_ratio: f64,
    /// Segment duration in seconds.
    #[arg(long, default_value_t = 4.0)]
    segment_seconds: f64,
    /// Share of viewers that cannot connect to each other (0..1).
    #[arg(long, default_value_t = 0.1)]
    unreachable_share: f64,
    /// Share of viewers that leave before the end (0..1).
    #[arg(long, default_value_t = 0.1)]
    leave_share: f64,
    /// Viewers join uniformly over this many seconds.
    #[arg(long, default_value_t = 60.0)]
    join_window: f64,
    /// Live: the player starts this many segments behind the live edge.
    #[arg(long, default_value_t = 5)]
    live_sync_segments: usize,
    /// Most peer connections per viewer.
    #[arg(long, default_value_t = 20)]
    max_peers: usize,
    /// Skip the HTTP-only reference run used to attribute stalls to P2P.
    #[arg(long)]
    no_reference: bool,
}

fn run(cfg: &SimConfig, policy: SimPolicy) -> (Report, f64) {
    let started = Instant::now();
    let report = Simulation::new(SimConfig {
        policy,
        ..cfg.clone()
    })
    .run();
    (report, started.elapsed().as_secs_f64())
}

fn report_json(r: &Report, p2p_caused: Option<u64>) -> Map<String, Value> {
    let mut m = match serde_json::to_value(r) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if r.live_latency_p95_s.is_none() {
        m.remove("live_latency_p95_s");
    }
    if let Some(c) = p2p_caused {
        m.insert("p2p_caused_stalls".into(), json!(c));
    }
    m
}

pub fn run_command(args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.viewers > 0, "--viewers must be at least 1");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(
        args.segment_seconds > 0.0,
        "--segment-seconds must be positive"
    );
    anyhow::ensure!(args.bitrate > 0.0, "--bitrate must be positive");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.unreachable_share) && (0.0..=1.0).contains(&args.leave_share),
        "shares must be between 0 and 1"
    );
    let cfg = SimConfig {
        viewers: args.viewers,
        mode: match args.mode {
            ModeArg::Live => Mode::Live,
            ModeArg::Vod => Mode::Vod,
        },
        seconds: args.seconds,
        seed: args.seed,
        bitrate_bps: args.bitrate,
        segment_seconds: args.segment_seconds,
        upload_ratio: args.upload_ratio,
        download_ratio: args.download_ratio,
        unreachable_share: args.unreachable_share,
        leave_share: args.leave_share,
        join_window: args.join_window,
        live_sync_segments: args.live_sync_segments,
        max_peers: args.max_peers,
        ..SimConfig::default()
    };
    let policies = match args.policy {
        PolicyArg::Segswarm => vec![SimPolicy::Segswarm],
        PolicyArg::Baseline => vec![SimPolicy::Baseline],
        PolicyArg::Both => vec![SimPolicy::Segswarm, SimPolicy::Baseline],
    };
    // Independent runs of the same scenario: run them side by side.
    let mut results: Vec<(Report, f64)> = std::thread::scope(|s| {
        let cfg = &cfg;
        let handles: Vec<_> = policies
            .iter()
            .map(|&p| s.spawn(move || run(cfg, p)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("simulation thread panicked"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    // The HTTP-only reference only matters to attribute stalls: a policy without stalls caused
    // none, so the reference runs only when some policy stalled.
    if !args.no_reference && results.iter().any(|(r, _)| r.stall_count > 0) {
        results.push(run(&cfg, SimPolicy::HttpOnly));
    }
    let caused_of = |r: &Report, reference: Option<&Report>| {
        if r.policy == SimPolicy::HttpOnly.name() {
            None
        } else if r.stall_count == 0 {
            Some(0)
        } else {
            reference.map(|re| p2p_caused_stalls(r, re))
        }
    };
    let reference = results
        .iter()
        .find(|(r, _)| r.policy == SimPolicy::HttpOnly.name())
        .map(|(r, _)| r.clone());

    println!(
        "segswarm simulate: {} viewers, {}, {} s, seed {}, bitrate {} bit/s, upload {}x, {} s segments, {:.0}% unreachable",
        cfg.viewers,
        match cfg.mode {
            Mode::Live => "live",
            Mode::Vod => "vod",
        },
        cfg.seconds,
        cfg.seed,
        cfg.bitrate_bps,
        cfg.upload_ratio,
        cfg.segment_seconds,
        cfg.unreachable_share * 100.0
    );
    println!(
        "{:<10} {:>9} {:>14} {:>7} {:>9} {:>10} {:>11} {:>9} {:>7} {:>8}",
        "policy",
        "p2p_share",
        "origin_MB/view",
        "stalls",
        "stall_s",
        "p2p_stalls",
        "startup_p95",
        "lat_p95",
        "peers",
        "wall_s"
    );
    for (r, wall) in &results {
        let caused = caused_of(r, reference.as_ref());
        println!(
            "{:<10} {:>9.3} {:>14.2} {:>7} {:>9.1} {:>10} {:>11.2} {:>9} {:>7.1} {:>8.1}",
            r.policy,
            r.p2p_share,
            r.origin_bytes_per_viewer / 1e6,
            r.stall_count,
            r.stall_seconds,
            caused.map_or("-".to_string(), |c| c.to_string()),
            r.startup_p95_s,
            r.live_latency_p95_s
                .map_or("-".to_string(), |l| format!("{l:.1}")),
            r.mean_peers,
            wall
        );
    }
    if args.json {
        let mut per_policy = Map::new();
        for (r, _) in &results {
            let caused = caused_of(r, reference.as_ref());
            per_policy.insert(r.policy.clone(), Value::Object(report_json(r, caused)));
        }
        let (main, _) = &results[0];
        let caused = caused_of(main, reference.as_ref());
        let mut top = report_json(main, caused);
        top.insert("seed".into(), json!(cfg.seed));
        top.insert("policies".into(), Value::Object(per_policy));
        println!("{}", Value::Object(top));
    }
    Ok(())
}
