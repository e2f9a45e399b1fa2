//! `segswarm seed` and `segswarm play` end to end, as separate processes over real WebRTC: the
//! tracker and the HTTP origin run in the test process (so the seeder can be stopped while HTTP
//! carries on), the seeder and the viewers are the `segswarm` binary. Media come from ffmpeg
//! (`testsrc`, H.264 in MPEG-TS), made in the test.
//!
//! Everything runs in a private network namespace with only `lo` (`unshare(CLONE_NEWNET)`), each
//! test bounded to well under a minute. Needs root (or CAP_SYS_ADMIN), `ip` and `ffmpeg`.

use crate::segswarm_proc;
use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use segswarm::core::native::origin::{Origin, OriginConfig};
use segswarm_proc::{num, strings, Proc, LOOPBACK};
use serde_json::Value;
use support::StreamSpec;

/// `segswarm seed` of `dir` (a directory or playlist), for players loading `public_url`.
fn seed(tracker: &str, public_url: &str, dir: &Path, extra: &[&str]) -> Proc {
    let mut args = strings(&["seed", "--tracker", tracker, "--public-url", public_url]);
    args.extend(strings(&LOOPBACK));
    args.extend(strings(&[
        "--json",
        "--stats-every",
        "1",
        "--rescan-ms",
        "250",
    ]));
    args.extend(strings(extra));
    args.push(dir.display().to_string());
    Proc::start("seed", &args)
}

/// [`seed`] a VOD, then wait (up to 15 s) until the seeder reports `segments` segments loaded.
fn seed_loaded(tracker: &str, public_url: &str, dir: &Path, extra: &[&str], segments: u64) -> Proc {
    let seeder = seed(tracker, public_url, dir, extra);
    let ready = seeder.wait_json(Duration::from_secs(15), |v| segments_seeded(v) >= segments);
    assert!(ready.is_some(), "the seeder did not load the VOD");
    seeder
}

/// `count` viewers `{prefix}0`, `{prefix}1`, … [`play`] `playlist` for `seconds`, started `gap`
/// apart; returns their final reports (each within 40 s).
fn play_staggered(
    prefix: &str,
    tracker: &str,
    playlist: &str,
    seconds: u32,
    count: usize,
    gap: Duration,
) -> Vec<Value> {
    let viewers: Vec<Proc> = (0..count)
        .map(|i| {
            let p = play(&format!("{prefix}{i}"), tracker, playlist, seconds);
            std::thread::sleep(gap);
            p
        })
        .collect();
    viewers
        .into_iter()
        .map(|v| v.finish(Duration::from_secs(40)))
        .collect()
}

/// `segswarm play` of `playlist` for `seconds`.
fn play(name: &str, tracker: &str, playlist: &str, seconds: u32) -> Proc {
    let mut args = strings(&["play", "--tracker", tracker, "--json", "--seconds"]);
    args.push(seconds.to_string());
    args.extend(strings(&LOOPBACK));
    args.push(playlist.to_owned());
    Proc::start(name, &args)
}

fn segments_seeded(stats: &Value) -> u64 {
    stats["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["segments"].as_u64()).sum())
        .unwrap_or(0)
}

/// Starts the origin on `dir` and returns it with its playlist URL.
async fn origin(dir: &Path) -> (Origin, String) {
    let o = Origin::start(OriginConfig::new(dir, "127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("origin");
    let url = format!("{}index.m3u8", o.base_url());
    (o, url)
}

fn vod(dir: &Path, seconds: u32) {
    support::make_vod(
        dir,
        &StreamSpec {
            seconds,
            segment_seconds: 2,
            bitrate: "500k".into(),
            ..StreamSpec::default()
        },
    );
}

#[test]
fn three_viewers_take_most_bytes_from_peers_without_stalls() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    // 60 s: the viewers' policy loads what is due within 20 s over HTTP until a peer holds it,
    // so a short video would go over HTTP before the first data channel opens.
    vod(media.path(), 60);
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let (origin, playlist) = origin(media.path()).await;
        let (reports, seeded) = tokio::task::block_in_place(|| {
            let seeder = seed_loaded(&url, &playlist, media.path(), &[], 30);
            let reports =
                play_staggered("viewer", &url, &playlist, 20, 3, Duration::from_millis(700));
            (reports, seeder.stop(Duration::from_secs(10)))
        });
        let (mut http, mut p2p) = (0.0, 0.0);
        for (i, r) in reports.iter().enumerate() {
            eprintln!(
                "viewer{i}: http {} p2p {} share {:.2} stalls {} startup {:?} peers_max {}",
                r["http_bytes"],
                r["p2p_bytes"],
                num(r, "p2p_share"),
                r["stall_count"],
                r["startup_s"],
                r["peers_max"]
            );
            assert_eq!(num(r, "stall_count"), 0.0, "viewer{i} stalled: {r}");
            assert!(num(r, "played_s") >= 15.0, "viewer{i} played: {r}");
            assert!(num(r, "peers_max") >= 1.0, "viewer{i} met no peer: {r}");
            http += num(r, "http_bytes");
            p2p += num(r, "p2p_bytes");
        }
        eprintln!(
            "three viewers: http {http} B, p2p {p2p} B, share {:.2}; seeder uploaded {} B; \
             origin sent {} B",
            p2p / (http + p2p),
            seeded["uploaded_bytes"],
            origin.stats().body_bytes
        );
        assert!(p2p > http, "most bytes from peers: http {http}, p2p {p2p}");
        assert!(num(&seeded, "uploaded_bytes") > 0.0, "{seeded}");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn seeder_stopped_mid_stream_viewer_finishes_from_http() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    vod(media.path(), 60);
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let (origin, playlist) = origin(media.path()).await;
        // Upload capped near the stream's rate (500 kbit/s), so the viewer cannot take the whole
        // video from the seeder in the first seconds: stopping it matters.
        let seeder = tokio::task::block_in_place(|| {
            seed_loaded(
                &url,
                &playlist,
                media.path(),
                &["--upload-rate", "80000"],
                30,
            )
        });
        let viewer = play("viewer", &url, &playlist, 24);
        let up = tokio::task::block_in_place(|| {
            seeder.wait_json(Duration::from_secs(15), |v| {
                v["uploaded_bytes"].as_u64().is_some_and(|b| b > 200_000)
            })
        });
        assert!(up.is_some(), "the viewer took nothing from the seeder");
        // SIGTERM: a graceful stop (the seeder leaves its swarm and prints its final statistics).
        let stopped_at = Instant::now();
        let seeded = tokio::task::block_in_place(|| seeder.stop(Duration::from_secs(8)));
        eprintln!(
            "seeder stopped in {:?} after uploading {} B",
            stopped_at.elapsed(),
            seeded["uploaded_bytes"]
        );
        let http_at_stop = origin.stats().body_bytes;
        let r = tokio::task::block_in_place(|| viewer.finish(Duration::from_secs(40)));
        eprintln!("viewer: {r}");
        assert_eq!(num(&r, "stall_count"), 0.0, "stalled: {r}");
        assert!(num(&r, "played_s") >= 22.0, "played: {r}");
        // The seeder had sent over 200 kB; what was still in flight when it stopped is lost
        // (counted as uploaded by the seeder, never received whole by the viewer).
        assert!(num(&r, "p2p_bytes") > 100_000.0, "{r}");
        let after = origin.stats().body_bytes - http_at_stop;
        assert!(
            after > 300_000,
            "after the stop the origin carried only {after} B: {r}"
        );
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn corrupting_seeder_is_banned_and_viewer_plays_from_http() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    // Longer than the viewer's 20 s HTTP lead, so later segments are asked of the seeder.
    vod(media.path(), 40);
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let (origin, playlist) = origin(media.path()).await;
        let (r, seeded) = tokio::task::block_in_place(|| {
            let seeder = seed_loaded(
                &url,
                &playlist,
                media.path(),
                &["--test-corrupt-uploads"],
                20,
            );
            let r = play("viewer", &url, &playlist, 14).finish(Duration::from_secs(40));
            (r, seeder.stop(Duration::from_secs(8)))
        });
        eprintln!("viewer: {r}\nseeder: {seeded}");
        assert!(num(&r, "hash_mismatches") >= 1.0, "{r}");
        assert_eq!(num(&r, "peers_banned"), 1.0, "{r}");
        assert!(
            num(&seeded, "uploaded_bytes") > 0.0,
            "the bad peer did send: {seeded}"
        );
        assert_eq!(num(&r, "stall_count"), 0.0, "{r}");
        assert!(num(&r, "played_s") >= 12.0, "{r}");
        // What was played came over HTTP, intact (the viewer verifies every segment).
        assert!(num(&r, "http_bytes") >= 500_000.0, "{r}");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn single_viewer_of_a_short_vod_takes_most_of_it_from_the_seeder() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    // 20 s: only what is due before the seeder's data channel opens and announces (the first
    // segment or two) should come over HTTP.
    vod(media.path(), 20);
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let (origin, playlist) = origin(media.path()).await;
        let (r, seeded) = tokio::task::block_in_place(|| {
            let seeder = seed_loaded(&url, &playlist, media.path(), &[], 10);
            let r = play("viewer", &url, &playlist, 12).finish(Duration::from_secs(40));
            (r, seeder.stop(Duration::from_secs(8)))
        });
        eprintln!(
            "single viewer, 20 s VOD: http {} p2p {} share {:.2} stalls {} startup {}; seeder \
             uploaded {}",
            r["http_bytes"],
            r["p2p_bytes"],
            num(&r, "p2p_share"),
            r["stall_count"],
            r["startup_s"],
            seeded["uploaded_bytes"]
        );
        assert_eq!(num(&r, "stall_count"), 0.0, "{r}");
        assert!(num(&r, "played_s") >= 10.0, "{r}");
        assert!(
            num(&r, "p2p_bytes") > num(&r, "http_bytes"),
            "most bytes from the seeder: {r}"
        );
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn a_viewer_that_requires_a_manifest_takes_nothing_from_peers_without_one() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    vod(media.path(), 20);
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let (origin, playlist) = origin(media.path()).await;
        // No `segments-sha256.json` anywhere: peer bytes cannot be checked.
        let (careful, trusting) = tokio::task::block_in_place(|| {
            let seeder = seed_loaded(&url, &playlist, media.path(), &["--no-manifest"], 10);
            let mut args = strings(&["play", "--tracker", &url, "--json", "--seconds", "10"]);
            args.extend(strings(&LOOPBACK));
            args.extend(strings(&["--require-manifest", &playlist]));
            let careful = Proc::start("careful", &args);
            let trusting = play("trusting", &url, &playlist, 10);
            let reports = (
                careful.finish(Duration::from_secs(40)),
                trusting.finish(Duration::from_secs(40)),
            );
            seeder.stop(Duration::from_secs(8));
            reports
        });
        eprintln!("--require-manifest: {careful}\nwithout: {trusting}");
        assert_eq!(num(&careful, "p2p_bytes"), 0.0, "{careful}");
        assert_eq!(num(&careful, "stall_count"), 0.0, "{careful}");
        assert!(num(&careful, "played_s") >= 8.0, "{careful}");
        // The same swarm served a viewer that trusts its peers.
        assert!(num(&trusting, "p2p_bytes") > 0.0, "{trusting}");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

/// Live: segments of 4 s in a sliding playlist of 5, viewers join a running stream. Each starts
/// three segments behind the edge (hls.js's `liveSyncDurationCount`), so a new segment is due
/// about 8 s after it appears: time for the seeder to announce it and for peers to relay it,
/// with the engine's 3 s HTTP safety margin to spare. (Viewers of a younger stream start at
/// its first segment, closer to the edge, where the margin leaves no time for peers.)
#[test]
fn live_viewers_stay_within_three_segments_of_the_edge() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let segment_s = 4.0;
    let spec = StreamSpec {
        segment_seconds: 4,
        bitrate: "400k".into(),
        ..StreamSpec::default()
    };
    let playlist_path = media.path().join("index.m3u8");
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let (origin, playlist) = origin(media.path()).await;
        let _ffmpeg = support::start_live(media.path(), &spec);
        // The seeder starts before ffmpeg has written anything, and waits for the playlist.
        let seeder = seed(&url, &playlist, &playlist_path, &[]);
        // Four segments: three behind the edge and the one being played.
        let ok = tokio::task::block_in_place(|| {
            support::wait_for_segments(&playlist_path, 4, Duration::from_secs(40))
        });
        assert!(ok, "ffmpeg wrote no live playlist of four segments");
        let (reports, seeded) = tokio::task::block_in_place(|| {
            let reports =
                play_staggered("live", &url, &playlist, 20, 3, Duration::from_millis(500));
            (reports, seeder.stop(Duration::from_secs(8)))
        });
        eprintln!("seeder: {seeded}");
        let (mut http, mut p2p) = (0.0, 0.0);
        for (i, r) in reports.iter().enumerate() {
            eprintln!(
                "live{i}: latency mean {} max {} startup {} stalls {} http {} p2p {} share {:.2}",
                r["live_latency_s"],
                r["live_latency_max_s"],
                r["startup_s"],
                r["stall_count"],
                r["http_bytes"],
                r["p2p_bytes"],
                num(r, "p2p_share")
            );
            assert_eq!(r["live"], true, "{r}");
            assert!(num(r, "played_s") >= 15.0, "live{i} played: {r}");
            assert_eq!(num(r, "stall_count"), 0.0, "live{i} stalled: {r}");
            assert_eq!(num(r, "live_skips"), 0.0, "live{i}: {r}");
            // Latency is measured from the newest segment's end in the playlist the viewer has.
            // It starts at three segments and grows only by the startup time (no stall): the
            // playhead is always in one of the newest three segments, or just past their start.
            assert!(
                num(r, "live_latency_s") <= 3.0 * segment_s,
                "live{i} is on average more than three segments behind the edge: {r}"
            );
            assert!(
                num(r, "live_latency_max_s") <= 3.0 * segment_s + num(r, "startup_s") + 0.5,
                "live{i} fell more than three segments (plus its startup) behind the edge: {r}"
            );
            assert!(num(r, "p2p_bytes") > 0.0, "live{i} took nothing from peers: {r}");
            http += num(r, "http_bytes");
            p2p += num(r, "p2p_bytes");
        }
        let share = p2p / (http + p2p);
        eprintln!(
            "three live viewers: http {http} B, p2p {p2p} B, share {share:.2}; seeder uploaded {} B",
            seeded["uploaded_bytes"]
        );
        assert!(share >= 0.4, "a clear share from peers: {share:.2}");
        let seg_stats = &seeded["streams"][0];
        assert_eq!(seg_stats["live"], true, "{seeded}");
        assert!(num(&seeded, "uploaded_bytes") > 0.0, "{seeded}");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}
