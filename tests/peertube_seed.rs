//! `segswarm seed --peertube <watch URL>` end to end, against a PeerTube-shaped instance on
//! loopback (`tests/support/peertube_origin.rs`: PeerTube's REST API JSON, its single-file
//! fragmented-MP4 HLS layout with `#EXT-X-BYTERANGE`, its byte-range `segments-sha256.json`, a
//! mirror) whose `trackerUrls` name a segswarm-tracker the test runs: the seeder resolves the
//! video, copies it verified, joins the swarm its players use (p2p-media-loader 2.2 ids, as
//! PeerTube 7.1 to 8.x players) on the instance's tracker, and a `segswarm play` viewer with those
//! ids takes most of the video from it.
//!
//! The browser test plays the video in headless Chromium with hls.js 1.6 and the npm
//! p2p-media-loader 2.2.2 configured as PeerTube 7.1 to 8.x players configure it
//! (`tests/js/pml-2.2/`), with `segswarm seed --peertube` as its only peer.
//!
//! Everything runs in a private network namespace with only `lo` (as root); needs ffmpeg, and for
//! the browser test Chromium, node and `npm ci` in tests/js and tests/js/pml-2.2.

use crate::peertube_origin;
use crate::segswarm_proc;
use crate::support;

use std::time::Duration;

use peertube_origin::{
    live_video, make_vod_video, start_live_video, PeerTubeOrigin, PtResolution, PtVideo,
};
use segswarm_proc::{num, strings, Proc, LOOPBACK};
use serde_json::Value;

/// A 20 s VOD at one resolution, as PeerTube transcodes it.
fn video(dir: &std::path::Path) -> PtVideo {
    make_vod_video(dir, 7, 20, &[PtResolution::new(360, 480, 360, "500k")])
}

/// A PeerTube 7.2.3-shaped instance serving `videos`, its `trackerUrls` naming a segswarm-tracker
/// at `/tracker/socket` (where nginx routes it in `examples/deploy/`): the tracker, its URL and the
/// instance.
async fn instance(
    videos: Vec<PtVideo>,
) -> (
    segswarm::tracker::server::RunningServer,
    String,
    PeerTubeOrigin,
) {
    let (tracker, url) = support::start_tracker().await;
    let tracker_url = format!("{url}/tracker/socket");
    let origin = PeerTubeOrigin::start(videos, "7.2.3").await;
    origin.set(|c| c.tracker_ws = Some(tracker_url.clone()));
    (tracker, tracker_url, origin)
}

/// The master playlist URL PeerTube's API gives for `video` (the player's `swarmId`).
fn master_url(origin: &PeerTubeOrigin, video: &PtVideo) -> String {
    format!(
        "{}/static/streaming-playlists/hls/{}/{}",
        origin.base, video.uuid, video.master_file
    )
}

/// `segswarm seed --peertube URL` with its copy in `cache`.
fn seed_peertube(url: &str, cache: &std::path::Path) -> Proc {
    seed_peertube_videos(&[url], cache)
}

/// `segswarm seed --peertube URL ...` (one process for every video) with copies in `cache`.
fn seed_peertube_videos(urls: &[&str], cache: &std::path::Path) -> Proc {
    let mut args = strings(&["seed"]);
    for url in urls {
        args.extend(strings(&["--peertube", url]));
    }
    args.push("--cache-dir".into());
    args.push(cache.display().to_string());
    args.extend(strings(&LOOPBACK));
    args.extend(strings(&[
        "--json",
        "--stats-every",
        "1",
        "--rescan-ms",
        "250",
    ]));
    Proc::start("seed", &args)
}

/// `segswarm play --id-scheme pml-2.2 MASTER` for `seconds`, as a PeerTube 7.1–8.x player would
/// join: its report when it ends.
fn play_pml22(tracker_url: &str, master: &str, seconds: u32) -> Value {
    let mut args = strings(&["play", "--tracker", tracker_url, "--id-scheme", "pml-2.2"]);
    args.extend(strings(&["--json", "--seconds", &seconds.to_string()]));
    args.extend(strings(&LOOPBACK));
    args.push(master.to_owned());
    Proc::start("viewer", &args).finish(Duration::from_secs(40))
}

fn segments_seeded(stats: &Value) -> u64 {
    stats["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["segments"].as_u64()).sum())
        .unwrap_or(0)
}

#[test]
fn a_peertube_video_is_seeded_to_its_players_swarm_on_the_instance_tracker() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let video = video(media.path());
    support::runtime().block_on(async {
        let (tracker, tracker_url, origin) = instance(vec![video.clone()]).await;
        let master = master_url(&origin, &video);
        let watch = origin.watch_url(0);
        let (report, seeded) = tokio::task::block_in_place(|| {
            // No --tracker: the instance's own, from its API.
            let seeder = seed_peertube(&watch, cache.path());
            let ready = seeder.wait_json(Duration::from_secs(30), |v| segments_seeded(v) >= 10);
            assert!(
                ready.is_some(),
                "the seeder did not load the PeerTube video"
            );
            let report = play_pml22(&tracker_url, &master, 12);
            (report, seeder.stop(Duration::from_secs(8)))
        });
        eprintln!("viewer: {report}\nseeder: {seeded}");
        // The seeder announced the info hashes of p2p-media-loader 2.2 for the master URL.
        let stream = &seeded["streams"][0];
        assert_eq!(
            stream["info_hash"], report["info_hash"],
            "seeder and viewer in one swarm"
        );
        assert!(
            stream["stream_swarm_id"]
                .as_str()
                .is_some_and(|id| id == format!("v2-{master}-main-0")),
            "pml-2.2 swarm id of the master playlist: {stream}"
        );
        assert_eq!(num(&report, "stall_count"), 0.0, "{report}");
        assert_eq!(num(&report, "hash_mismatches"), 0.0, "{report}");
        assert!(
            num(&report, "p2p_bytes") > num(&report, "http_bytes"),
            "most bytes from the seeder: {report}"
        );
        // Each segment crossed from the instance to the seeder once.
        let copied: u64 = origin
            .controls()
            .origin_requests
            .iter()
            .filter(|p| p.ends_with("-fragmented.mp4"))
            .count() as u64;
        assert!(
            copied >= 1,
            "the seeder fetched the video from the instance"
        );
        tracker.shutdown().await;
    });
}

/// Plays `video` for 25 s in headless Chromium with hls.js + p2p-media-loader 2.2.2 configured as
/// PeerTube's player (`tests/js/pml-2.2`), fed by `segswarm seed --peertube`; returns the page's
/// figures and the seeder's final statistics.
fn peertube_player_with_seeder(video: &PtVideo, seeded_first: u64) -> (Value, Value) {
    support::check_browser_prerequisites(&support::E2E_PACKAGES);
    let pml22 = support::js_dir().join("pml-2.2/node_modules/p2p-media-loader-hlsjs");
    assert!(
        pml22.exists(),
        "npm packages missing: run `npm ci` in tests/js/pml-2.2"
    );
    let cache = tempfile::tempdir().expect("tempdir");
    support::runtime().block_on(async {
        let (tracker, tracker_url, origin) = instance(vec![video.clone()]).await;
        let master = master_url(&origin, video);
        let manifest = format!(
            "{}/static/streaming-playlists/hls/{}/{}",
            origin.base, video.uuid, video.sha_file
        );
        let watch = origin.watch_url(0);
        let (report, seeded) = tokio::task::block_in_place(|| {
            let seeder = seed_peertube(&watch, cache.path());
            let ready = seeder.wait_json(Duration::from_secs(30), |v| {
                segments_seeded(v) >= seeded_first
            });
            assert!(
                ready.is_some(),
                "the seeder did not load the PeerTube video"
            );
            let mut args = strings(&[
                "--tracker",
                &tracker_url,
                "--playlist",
                &master,
                "--segments-sha256",
                &manifest,
                "--page",
                "pml-2.2:peertube:0",
                "--seconds",
                "25",
            ]);
            if video.live {
                args.push("--live".into());
            }
            let report = support::run_e2e_driver(&args, Duration::from_secs(70));
            (report, seeder.stop(Duration::from_secs(8)))
        });
        tracker.shutdown().await;
        (report["pages"][0]["stats"].clone(), seeded)
    })
}

/// Checks what a PeerTube player saw: it played without a fatal error or a refused segment, and
/// took most of its bytes from the seeder.
fn assert_mostly_from_seeder(what: &str, s: &Value, seeded: &Value) {
    let (http, p2p) = (num(s, "httpBytes"), num(s, "p2pBytes"));
    eprintln!(
        "{what}: PeerTube player (p2p-media-loader 2.2.2) + segswarm seed --peertube: video \
         {:.1} s, http {http} B, p2p {p2p} B (share {:.2}), validated {}, refused {}; seeder \
         uploaded {} B",
        num(s, "currentTime"),
        p2p / (http + p2p).max(1.0),
        s["validation"]["ok"],
        s["validation"]["refused"],
        seeded["uploaded_bytes"]
    );
    assert!(
        s["fatalErrors"].as_array().is_some_and(|a| a.is_empty()),
        "hls.js fatal errors: {s}"
    );
    assert!(num(s, "currentTime") >= 12.0, "the video played: {s}");
    assert_eq!(
        num(&s["validation"], "refused"),
        0.0,
        "refused segments: {s}"
    );
    assert!(
        num(&s["validation"], "ok") >= 1.0,
        "P2P segments validated: {s}"
    );
    assert!(p2p > http, "most bytes from the seeder: {s}");
    assert!(
        num(seeded, "uploaded_bytes") >= p2p * 0.9,
        "the P2P bytes came from the seeder: {seeded}"
    );
}

#[test]
fn a_peertube_player_in_the_browser_takes_most_of_a_vod_from_the_seeder() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let video = make_vod_video(
        media.path(),
        11,
        40,
        &[PtResolution::new(360, 480, 360, "500k")],
    );
    let (stats, seeded) = peertube_player_with_seeder(&video, 20);
    assert_mostly_from_seeder("VOD", &stats, &seeded);
}

#[test]
fn a_peertube_player_in_the_browser_takes_most_of_a_live_stream_from_the_seeder() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let video = live_video(media.path(), 31, PtResolution::new(360, 480, 360, "400k"));
    let ffmpeg = start_live_video(&video, 4);
    let variant = media.path().join(&video.resolutions[0].playlist_file);
    // The player starts five segments behind the edge (PeerTube's `liveSyncDurationCount`):
    // a stream of six segments lets it start there rather than at the stream's first segment.
    assert!(
        support::wait_for_segments(&variant, 6, Duration::from_secs(40)),
        "ffmpeg wrote no live segments"
    );
    let (stats, seeded) = peertube_player_with_seeder(&video, 5);
    assert_mostly_from_seeder("live", &stats, &seeded);
    drop(ffmpeg);
}

#[test]
fn a_live_peertube_video_is_followed_shared_and_left_when_it_ends() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let video = live_video(media.path(), 21, PtResolution::new(360, 480, 360, "400k"));
    // PeerTube's live segments: 4 s.
    let ffmpeg = start_live_video(&video, 4);
    let variant = media.path().join(&video.resolutions[0].playlist_file);
    assert!(
        support::wait_for_segments(&variant, 3, Duration::from_secs(30)),
        "ffmpeg wrote no live segments"
    );
    support::runtime().block_on(async {
        let (tracker, tracker_url, origin) = instance(vec![video.clone()]).await;
        let master = master_url(&origin, &video);
        let watch = origin.watch_url(0);
        let (report, seeded) = tokio::task::block_in_place(|| {
            let seeder = seed_peertube(&watch, cache.path());
            let ready = seeder.wait_json(Duration::from_secs(30), |v| segments_seeded(v) >= 2);
            assert!(ready.is_some(), "the seeder did not follow the live video");
            let report = play_pml22(&tracker_url, &master, 24);
            // The live ends: ffmpeg closes the playlists with #EXT-X-ENDLIST, the API says so,
            // and the seeder leaves by itself.
            ffmpeg.terminate();
            origin.set(|c| c.live_ended = true);
            (report, seeder.finish(Duration::from_secs(30)))
        });
        eprintln!("live viewer: {report}\nseeder: {seeded}");
        assert_eq!(num(&report, "hash_mismatches"), 0.0, "{report}");
        assert!(num(&report, "played_s") >= 18.0, "{report}");
        assert!(
            num(&report, "p2p_bytes") > 0.0,
            "the live viewer took segments from the seeder: {report}"
        );
        assert!(num(&seeded, "uploaded_bytes") > 0.0, "{seeded}");
        tracker.shutdown().await;
    });
    drop(ffmpeg);
}

#[test]
fn a_seeder_whose_instance_is_down_copies_from_the_mirror_and_seeds() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let video = video(media.path());
    support::runtime().block_on(async {
        let (tracker, tracker_url, origin) = instance(vec![video.clone()]).await;
        origin.set(|c| {
            c.origin_static_down = true;
        });
        let master = master_url(&origin, &video);
        let watch = origin.watch_url(0);
        let (report, seeded) = tokio::task::block_in_place(|| {
            let seeder = seed_peertube(&watch, cache.path());
            let ready = seeder.wait_json(Duration::from_secs(30), |v| segments_seeded(v) >= 10);
            assert!(
                ready.is_some(),
                "the seeder did not load the video from the mirror"
            );
            // The instance's files come back for the viewer's playlist and HTTP fallback.
            origin.set(|c| c.origin_static_down = false);
            let report = play_pml22(&tracker_url, &master, 12);
            (report, seeder.stop(Duration::from_secs(8)))
        });
        eprintln!("viewer: {report}\nseeder: {seeded}");
        let mirror_files = origin
            .controls()
            .mirror_requests
            .iter()
            .filter(|p| p.ends_with("-fragmented.mp4"))
            .count();
        assert!(mirror_files >= 1, "the copy came from the mirror");
        assert!(
            num(&report, "p2p_bytes") > 0.0,
            "the viewer took from the seeder: {report}"
        );
        assert_eq!(num(&report, "stall_count"), 0.0, "{report}");
        tracker.shutdown().await;
    });
}

#[test]
fn several_videos_in_one_process_share_one_tracker_socket() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let resolution = [PtResolution::new(240, 320, 240, "300k")];
    let a = make_vod_video(&media.path().join("a"), 41, 8, &resolution);
    let b = make_vod_video(&media.path().join("b"), 42, 8, &resolution);
    support::runtime().block_on(async {
        let (tracker, _, origin) = instance(vec![a, b]).await;
        let (watch_a, watch_b) = (origin.watch_url(0), origin.watch_url(1));
        let seeder = tokio::task::block_in_place(|| {
            let seeder = seed_peertube_videos(&[&watch_a, &watch_b], cache.path());
            let ready = seeder.wait_json(Duration::from_secs(30), |v| {
                v["streams"].as_array().is_some_and(|s| s.len() == 2) && segments_seeded(v) >= 8
            });
            assert!(ready.is_some(), "the seeder did not load both videos");
            seeder
        });
        let metrics = tracker.metrics_text();
        let value = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        eprintln!("{metrics}");
        assert_eq!(value("segswarm_swarms "), Some(2.0), "both videos' swarms");
        assert_eq!(
            value("segswarm_connections{transport=\"ws\"}"),
            Some(1.0),
            "one socket to the instance's tracker"
        );
        tokio::task::block_in_place(|| seeder.stop(Duration::from_secs(8)));
        tracker.shutdown().await;
    });
}

#[test]
fn a_segment_that_does_not_match_the_manifest_is_never_seeded() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let video = video(media.path());
    support::runtime().block_on(async {
        let (tracker, _, origin) = instance(vec![video.clone()]).await;
        let mp4 = video.resolutions[0].mp4_file.clone();
        origin.set(|c| {
            c.corrupt = Some((mp4, 5000));
            c.mirror_down = true;
        });
        let watch = origin.watch_url(0);
        let (status, out) = tokio::task::block_in_place(|| {
            let mut args = strings(&["seed", "--peertube", &watch, "--cache-dir"]);
            args.push(cache.path().display().to_string());
            args.extend(strings(&LOOPBACK));
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_segswarm"))
                .args(&args)
                .output()
                .expect("run segswarm seed");
            let text = String::from_utf8_lossy(&output.stderr).into_owned()
                + &String::from_utf8_lossy(&output.stdout);
            (output.status, text)
        });
        eprintln!("{out}");
        assert!(
            !status.success(),
            "a copy that cannot be verified is refused"
        );
        assert!(
            out.contains("sha256") || out.contains("manifest") || out.contains("mismatch"),
            "says why: {out}"
        );
        // Nothing of the video was written where a seeder would read it.
        let playlists = walk(cache.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "m3u8" || e == "mp4"))
            .count();
        assert_eq!(playlists, 0, "no playlist or segment file in the cache");
        tracker.shutdown().await;
    });
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
