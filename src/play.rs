//! `segswarm play`: watch an HLS stream through the swarm, headless, and report where the bytes
//! came from and how playback went.

use std::time::Duration;

use crate::native_cli::{NetArgs, SwarmArgs};
use anyhow::Context;
use segswarm::core::native::rtc::IceServer;
use segswarm::core::native::viewer::{
    PlayProgress, PlayReport, VariantChoice, Viewer, ViewerConfig,
};

#[derive(clap::Args, Debug)]
pub struct PlayArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Play for this many seconds (default: a VOD to its end, a live stream until Ctrl-C).
    #[arg(long)]
    seconds: Option<f64>,
    /// Print progress as JSON lines; the last line is the final report, one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    swarm: SwarmArgs,
    /// Mirror base URL serving the media playlist's directory; repeat for several.
    #[arg(long = "mirror")]
    mirrors: Vec<String>,
    /// Variant of a multivariant playlist: `lowest`, `highest`, or its 0-based index.
    #[arg(long, default_value = "lowest")]
    variant: String,
    /// `segments-sha256.json` URL (default: the one beside the media playlist, if any).
    #[arg(long)]
    manifest: Option<String>,
    /// STUN/TURN server URL (`stun:host:port`); repeat for several.
    #[arg(long = "ice")]
    ice: Vec<String>,
    /// Upload nothing to other peers.
    #[arg(long)]
    consume_only: bool,
    /// Take nothing from peers (and share nothing) until a `segments-sha256.json` is loaded:
    /// without a manifest, peer bytes cannot be checked.
    #[arg(long)]
    require_manifest: bool,
    /// Most peer connections.
    #[arg(long, default_value_t = 20)]
    max_peers: usize,
    /// VOD: a segment no peer has is fetched over HTTP once due within this many seconds
    /// (default: the engine's, 20 s).
    #[arg(long)]
    vod_http_lead: Option<f64>,
    /// Media buffered before playback starts, seconds.
    #[arg(long, default_value_t = 2.0)]
    startup_buffer: f64,
    /// The media playlist or multivariant playlist URL.
    playlist_url: String,
}

fn parse_variant(s: &str) -> anyhow::Result<VariantChoice> {
    match s {
        "lowest" => Ok(VariantChoice::Lowest),
        "highest" => Ok(VariantChoice::Highest),
        n => n
            .parse()
            .map(VariantChoice::Index)
            .with_context(|| format!("--variant {n:?}: expected lowest, highest or an index")),
    }
}

fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what} {s}: not a duration"))
}

fn megabytes(b: u64) -> f64 {
    b as f64 / 1e6
}

fn print_progress(p: &PlayProgress, json: bool) {
    if json {
        let mut v = serde_json::to_value(p).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "progress".into());
        }
        println!("{v}");
    } else {
        println!(
            "{:6.1}s  pos {:7.1}s  buffer {:5.1}s{}  http {:8.3} MB  p2p {:8.3} MB  up {:8.3} MB  \
             peers {:2}  stalls {}",
            p.elapsed_s,
            p.position_s,
            p.buffer_s,
            if p.playing { "" } else { " (waiting)" },
            megabytes(p.http_bytes),
            megabytes(p.p2p_bytes),
            megabytes(p.uploaded_bytes),
            p.peers,
            p.stall_count,
        );
    }
}

fn print_report(r: &PlayReport, json: bool) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(r)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "report".into());
        }
        println!("{v}");
    } else {
        println!(
            "played {:.1}s in {:.1}s: http {:.3} MB, p2p {:.3} MB ({:.1}% from peers), uploaded \
             {:.3} MB; startup {}, {} stalls ({:.1}s), up to {} peers{}",
            r.played_s,
            r.wall_s,
            megabytes(r.http_bytes),
            megabytes(r.p2p_bytes),
            100.0 * r.p2p_share,
            megabytes(r.uploaded_bytes),
            r.startup_s
                .map_or_else(|| "never".to_owned(), |s| format!("{s:.2}s")),
            r.stall_count,
            r.stall_seconds,
            r.peers_max,
            r.live_latency_s
                .map(|l| format!(", live latency {l:.1}s"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

async fn run(args: PlayArgs) -> anyhow::Result<()> {
    args.swarm.check()?;
    let mut config = ViewerConfig::new(args.playlist_url.clone(), args.net.required_trackers()?);
    config.swarm_id = args.swarm.swarm_id.clone();
    config.id_scheme = args.swarm.scheme();
    config.peertube_uuid = args.swarm.peertube_uuid.clone();
    config.mirrors = args.mirrors.clone();
    config.variant = parse_variant(&args.variant)?;
    config.manifest_url = args.manifest.clone();
    config.consume_only = args.consume_only;
    config.require_manifest = args.require_manifest;
    config.max_peers = args.max_peers;
    config.play.player.startup_buffer = seconds(args.startup_buffer, "--startup-buffer")?;
    if let Some(lead) = args.vod_http_lead {
        config.scheduler.vod_http_lead = seconds(lead, "--vod-http-lead")?;
    }
    if !args.ice.is_empty() {
        config.driver.rtc.channel.ice_servers = vec![IceServer {
            urls: args.ice.clone(),
            ..IceServer::default()
        }];
    }
    args.net.apply(&mut config.driver.rtc);
    let duration = args.seconds.map(|s| seconds(s, "--seconds")).transpose()?;
    let mut viewer = Viewer::open(config)
        .await
        .with_context(|| format!("opening {}", args.playlist_url))?;
    eprintln!(
        "playing {} (swarm {}, info hash {}, {})",
        viewer.media_url(),
        viewer.identity().stream_swarm_id,
        viewer.identity().info_hash_str(),
        if viewer.playlist().live {
            "live"
        } else {
            "VOD"
        },
    );
    let json = args.json;
    let report = tokio::select! {
        r = viewer.play(duration, |p| print_progress(p, json)) => Some(r?),
        _ = tokio::signal::ctrl_c() => None,
    };
    viewer.close().await;
    match report {
        Some(r) => print_report(&r, json),
        None => {
            eprintln!("interrupted");
            Ok(())
        }
    }
}

/// Runs `segswarm play`.
pub fn run_command(args: PlayArgs) -> anyhow::Result<()> {
    crate::native_cli::run_native(run(args))
}
