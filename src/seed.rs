//! `segswarm seed`: join the swarms of an HLS directory's streams as a peer holding every segment;
//! with `--http`, also serve the directory as the HTTP origin. With `--peertube URL`, the
//! directory is a verified copy of a PeerTube video, and the swarms are its players'.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::native_cli::{NetArgs, SwarmArgs};
use anyhow::{bail, Context};
use segswarm::core::native::origin::{Origin, OriginConfig};
use segswarm::core::native::peertube::{
    MirrorSettings, PeerTubeClient, PeerTubeSettings, RemoteMirror, ResolvedVideo,
};
use segswarm::core::native::seeder::{find_entry, Seeder, SeederConfig, SeederStats};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Seed a PeerTube video instead of a directory: its watch URL (`https://host/w/<id>`,
    /// `/videos/watch/<uuid>`) or API URL. The video is resolved through the instance's REST
    /// API, every segment fetched once from the instance or its mirrors and verified against
    /// its `segments-sha256.json` before it is announced, and the swarms joined are those of the
    /// instance's players, on the instance's own tracker (unless --tracker is given).
    /// Repeat for several videos: they share one socket per tracker.
    #[arg(long, value_name = "VIDEO_URL", conflicts_with_all = ["dir", "http", "public_url", "swarm_id", "peertube_uuid"])]
    peertube: Vec<String>,
    /// Where --peertube keeps its copies, one directory per video uuid. Default: the system's
    /// temporary directory, `segswarm-peertube/`.
    #[arg(long, requires = "peertube")]
    cache_dir: Option<PathBuf>,
    /// Most bytes one --peertube video may take in the cache; a larger VOD is refused before
    /// anything is fetched.
    #[arg(long, default_value_t = MirrorSettings::default().max_cache_bytes)]
    cache_bytes: u64,
    /// Also serve DIR over HTTP on this address: the origin (Range, CORS, HLS content types).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// The URL players load the playlist from; swarm ids derive from it. Default: the --http
    /// address and the playlist's name.
    #[arg(long)]
    public_url: Option<String>,
    #[command(flatten)]
    swarm: SwarmArgs,
    /// Most peer connections per stream.
    #[arg(long, default_value_t = 50)]
    max_peers: usize,
    /// Upload cap per stream, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    upload_rate: u64,
    /// Peers served at once per stream.
    #[arg(long, default_value_t = 4)]
    max_uploads: usize,
    /// WebRTC offers sent with each announce: how many viewers the seeder reaches per announce
    /// (trackers cap what they relay; segswarm-tracker and aquatic: 10).
    #[arg(long, default_value_t = 10)]
    offers_per_announce: u32,
    /// While it has room for more peers and its offers are answered, re-announce with
    /// fresh offers after S seconds instead of the tracker's interval (0: never early).
    #[arg(long, default_value_t = 30)]
    fill_announce_secs: u64,
    /// Drop an unanswered offer after S seconds, freeing its peer slot.
    #[arg(long, default_value_t = 20)]
    offer_timeout_secs: u64,
    /// Directory rescan interval, milliseconds (live streams).
    #[arg(long, default_value_t = 1000)]
    rescan_ms: u64,
    /// Do not write segments-sha256.json next to the segments.
    #[arg(long)]
    no_manifest: bool,
    /// Print statistics every S seconds (0: only at the end).
    #[arg(long, default_value_t = 5)]
    stats_every: u64,
    /// Print statistics as JSON lines (the last line is the final statistics).
    #[arg(long)]
    json: bool,
    /// Stop after S seconds (0: run until SIGINT or SIGTERM).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Test only: corrupt the segment bytes sent to peers (the manifest keeps the true hashes).
    #[arg(long, hide = true)]
    test_corrupt_uploads: bool,
    /// The HLS directory, or the playlist file players load.
    #[arg(required_unless_present = "peertube")]
    dir: Option<PathBuf>,
}

fn stats_json(stats: &SeederStats, origin: Option<&Origin>, elapsed: f64) -> serde_json::Value {
    let streams: Vec<_> = stats
        .streams
        .iter()
        .map(|s| {
            json!({
                "playlist": s.playlist,
                "stream_swarm_id": s.stream_swarm_id,
                "info_hash": s.info_hash,
                "live": s.live,
                "segments": s.segments,
                "segment_bytes": s.segment_bytes,
                "skipped": s.skipped,
                "uploaded_bytes": s.uploaded_bytes,
                "peers": s.peers,
                "peers_connected_total": s.peers_connected_total,
            })
        })
        .collect();
    let origin = origin.map(|o| {
        let s = o.stats();
        json!({"requests": s.requests, "body_bytes": s.body_bytes})
    });
    json!({
        "elapsed_s": (elapsed * 10.0).round() / 10.0,
        "uploaded_bytes": stats.uploaded_bytes(),
        "peers": stats.streams.iter().map(|s| s.peers).sum::<usize>(),
        "streams": streams,
        "problems": stats.problems,
        "origin": origin,
    })
}

fn print_stats(args: &SeedArgs, stats: &SeederStats, origin: Option<&Origin>, elapsed: f64) {
    if args.json {
        println!("{}", stats_json(stats, origin, elapsed));
        return;
    }
    let segments: usize = stats.streams.iter().map(|s| s.segments).sum();
    let peers: usize = stats.streams.iter().map(|s| s.peers).sum();
    let mut line = format!(
        "{elapsed:7.1}s  streams {}  segments {segments}  peers {peers}  uploaded {:.2} MB",
        stats.streams.len(),
        stats.uploaded_bytes() as f64 / 1e6
    );
    if let Some(o) = origin {
        line.push_str(&format!(
            "  origin {:.2} MB in {} requests",
            o.stats().body_bytes as f64 / 1e6,
            o.stats().requests
        ));
    }
    if !stats.problems.is_empty() {
        line.push_str(&format!("  problems {}", stats.problems.len()));
    }
    println!("{line}");
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A PeerTube video copied into the cache, and what it takes to follow it while it is live.
struct RemoteVideo {
    client: PeerTubeClient,
    resolved: ResolvedVideo,
    mirror: RemoteMirror,
}

impl RemoteVideo {
    /// How often a live video's playlists and manifest are fetched again: well within one of
    /// PeerTube's live segments (4 s, 2 s in small-latency mode), so the seeder holds a new
    /// segment before the players three to five segments behind the edge need it.
    const LIVE_REFRESH: Duration = Duration::from_secs(1);
    /// Every this many refreshes, the API is asked whether the live has ended.
    const API_EVERY: u32 = 15;

    /// Resolves `url`, copies the video into the cache (verified) and returns the seeder's
    /// settings for it.
    async fn open(args: &SeedArgs, url: &str) -> anyhow::Result<(RemoteVideo, SeederConfig)> {
        let client = PeerTubeClient::new(PeerTubeSettings::default())?;
        let resolved = client
            .resolve(url, args.swarm.id_scheme)
            .await
            .with_context(|| format!("resolving the PeerTube video {url}"))?;
        let details = &resolved.details;
        let dir = args
            .cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("segswarm-peertube"))
            .join(&details.uuid);
        let settings = MirrorSettings {
            max_cache_bytes: args.cache_bytes,
            ..MirrorSettings::default()
        };
        let mut mirror = RemoteMirror::new(client.clone(), &resolved, &dir, settings)?;
        let report = mirror
            .sync()
            .await
            .with_context(|| format!("copying {} into {}", resolved.master_url, dir.display()))?;
        println!(
            "peertube: {:?} on PeerTube {} ({}, id scheme {}): {} segments, {} bytes verified \
             into {}",
            details.name,
            resolved.server_version,
            if details.is_live { "live" } else { "VOD" },
            resolved.id_scheme,
            report.new_segments,
            report.cached_bytes,
            dir.display()
        );
        let trackers = if args.net.trackers.is_empty() {
            resolved.ws_trackers.clone()
        } else {
            args.net.trackers.clone()
        };
        if trackers.is_empty() {
            bail!("the instance lists no WebSocket tracker in trackerUrls: give --tracker");
        }
        let mut config =
            SeederConfig::peertube(mirror.master_playlist_path(), &resolved, resolved.id_scheme);
        config.tracker_urls = trackers;
        let video = RemoteVideo {
            client,
            resolved,
            mirror,
        };
        Ok((video, config))
    }

    /// Whether the video is a live stream.
    fn is_live(&self) -> bool {
        self.resolved.details.is_live
    }

    /// Follows a live video until it ends: new segments come into the cache (verified) for the
    /// seeder's rescan, and the end is read from the playlists or the API.
    async fn follow_live(mut self) {
        let mut refreshes = 0u32;
        while !self.mirror.ended() {
            tokio::time::sleep(Self::LIVE_REFRESH).await;
            if let Err(e) = self.mirror.sync().await {
                eprintln!("peertube: refreshing the live copy failed: {e}");
            }
            refreshes += 1;
            if refreshes % Self::API_EVERY == 0 {
                match self.client.video(&self.resolved.video_ref).await {
                    Ok(video) if video.live_ended() => self.mirror.mark_ended(),
                    Ok(_) => {}
                    Err(e) => eprintln!("peertube: asking whether the live ended failed: {e}"),
                }
            }
        }
        println!("peertube: the live {} ended", self.resolved.master_url);
    }
}

/// The settings for seeding a local directory, and its HTTP origin when `--http` is given.
async fn local_source(args: &SeedArgs) -> anyhow::Result<(SeederConfig, Option<Origin>)> {
    args.swarm.check()?;
    let dir = args
        .dir
        .as_ref()
        .context("give the HLS directory, or --peertube VIDEO_URL")?;
    let entry = find_entry(dir).with_context(|| format!("seeding {}", dir.display()))?;
    let origin = match args.http {
        Some(addr) => Some(
            Origin::start(OriginConfig::new(&entry.root, addr))
                .await
                .context("starting the HTTP origin")?,
        ),
        None => None,
    };
    let public_url = match (&args.public_url, &origin) {
        (Some(u), _) => u.clone(),
        (None, Some(o)) => {
            let mut addr = o.local_addr();
            if addr.ip().is_unspecified() {
                eprintln!(
                    "note: --http listens on every address; swarm ids use 127.0.0.1. Give \
                     --public-url with the URL players load."
                );
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/{}", entry.playlist)
        }
        (None, None) => bail!(
            "give --public-url (the playlist URL players load; swarm ids derive from it) or \
             --http ADDR to serve the directory"
        ),
    };
    let mut config = SeederConfig::new(dir, public_url, args.net.required_trackers()?);
    config.swarm_id = args.swarm.swarm_id.clone();
    config.id_scheme = args.swarm.scheme();
    config.peertube_uuid = args.swarm.peertube_uuid.clone();
    config.write_manifest = !args.no_manifest;
    if let Some(o) = &origin {
        println!(
            "origin: serving {} at {}",
            entry.root.display(),
            o.base_url()
        );
    }
    Ok((config, origin))
}

/// The settings every seeder of the process shares, from the command line.
fn apply_common(args: &SeedArgs, config: &mut SeederConfig) {
    config.max_peers = args.max_peers;
    config.upload_rate = (args.upload_rate > 0).then_some(args.upload_rate);
    config.max_concurrent_uploads = args.max_uploads;
    config.offers_per_announce = args.offers_per_announce;
    config.fill_announce_interval =
        (args.fill_announce_secs > 0).then(|| Duration::from_secs(args.fill_announce_secs));
    config.offer_timeout = Duration::from_secs(args.offer_timeout_secs.max(1));
    config.rescan_interval = Duration::from_millis(args.rescan_ms.max(50));
    config.corrupt_uploads = args.test_corrupt_uploads;
    args.net.apply(&mut config.driver.rtc);
}

/// The statistics of several seeders as one.
fn merged(stats: impl IntoIterator<Item = SeederStats>) -> SeederStats {
    let mut all = SeederStats::default();
    for s in stats {
        all.streams.extend(s.streams);
        all.problems.extend(s.problems);
        all.scans += s.scans;
        all.manifests_written += s.manifests_written;
    }
    all
}

async fn run(args: SeedArgs) -> anyhow::Result<()> {
    // One seeder for a directory, or one per PeerTube video (they share the process's tracker
    // sockets, one per tracker URL).
    let mut sources = Vec::new();
    let mut origin = None;
    if args.peertube.is_empty() {
        let (config, served) = local_source(&args).await?;
        origin = served;
        sources.push((config, None));
    }
    for url in &args.peertube {
        let (video, config) = RemoteVideo::open(&args, url).await?;
        sources.push((config, Some(video)));
    }
    let mut seeders = Vec::new();
    // A live PeerTube video is followed until it ends; then its seeder leaves.
    let mut lives = tokio::task::JoinSet::new();
    for (mut config, video) in sources {
        apply_common(&args, &mut config);
        let public_url = config.public_url.clone();
        let id_scheme = config.id_scheme;
        let seeder = Seeder::start(config)
            .await
            .with_context(|| format!("starting the seeder of {public_url}"))?;
        println!("seeding {public_url} (id scheme {id_scheme})");
        if let Some(video) = video.filter(RemoteVideo::is_live) {
            let index = seeders.len();
            lives.spawn(async move {
                video.follow_live().await;
                index
            });
        }
        seeders.push(Some(seeder));
    }
    let mut finished = Vec::new();
    let started = Instant::now();
    let mut announced = false;
    let stop = async {
        if args.seconds > 0 {
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        } else {
            wait_for_signal().await;
        }
    };
    tokio::pin!(stop);
    let every = Duration::from_secs(args.stats_every.max(1));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut next_print = Instant::now() + every;
    while seeders.iter().any(Option::is_some) {
        tokio::select! {
            _ = &mut stop => break,
            Some(ended) = lives.join_next() => {
                if let Some(seeder) = ended.ok().and_then(|i| seeders.get_mut(i)).and_then(Option::take) {
                    finished.push(seeder.shutdown().await);
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let stats = merged(
            seeders
                .iter()
                .flatten()
                .map(Seeder::stats)
                .chain(finished.iter().cloned()),
        );
        if !announced && !stats.streams.is_empty() {
            announced = true;
            for s in &stats.streams {
                println!(
                    "stream {}: swarm {} info_hash {}",
                    s.playlist, s.stream_swarm_id, s.info_hash
                );
            }
        }
        if args.stats_every > 0 && Instant::now() >= next_print {
            next_print += every;
            print_stats(
                &args,
                &stats,
                origin.as_ref(),
                started.elapsed().as_secs_f64(),
            );
        }
    }
    lives.abort_all();
    for seeder in seeders.into_iter().flatten() {
        finished.push(seeder.shutdown().await);
    }
    print_stats(
        &args,
        &merged(finished),
        origin.as_ref(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(o) = origin {
        o.shutdown().await;
    }
    Ok(())
}

/// Runs `segswarm seed`.
pub fn run_command(args: SeedArgs) -> anyhow::Result<()> {
    crate::native_cli::run_native(run(args))
}
