//! PeerTube-style HLS end to end: ffmpeg writes fragmented MP4 as one file per stream
//! (`-hls_segment_type fmp4 -hls_flags single_file`), so each segment is an `#EXT-X-BYTERANGE` of
//! `video-fragmented.mp4` and the `#EXT-X-MAP` init section is its first bytes.
//!
//! - `segswarm seed --http` (seeder and origin in one command) and two `segswarm play` viewers, as
//!   separate processes over real WebRTC: byte ranges go over WebRTC and over HTTP `Range`.
//! - An unmodified web player (headless Chromium, hls.js + p2p-media-loader 2.3 from npm, driven by
//!   `tests/js/e2e-run.mjs`) plays the same kind of stream and takes P2P bytes from our native
//!   seeder: our wire ids for byte-range segments are the ones p2p-media-loader uses.
//!
//! Everything runs in a private network namespace with only `lo`. Needs root (or CAP_SYS_ADMIN),
//! `ip`, `ffmpeg`; the browser test also `node`, Chromium and `npm ci` in tests/js.

use crate::segswarm_proc;
use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use segswarm::core::hls::{parse_media_playlist, MediaPlaylist};
use segswarm::core::native::origin::{Origin, OriginConfig};
use segswarm::core::native::seeder::{Seeder, SeederConfig};
use segswarm_proc::{num, strings, Proc, LOOPBACK};
use serde_json::Value;

const MEDIA_FILE: &str = "video-fragmented.mp4";

/// Writes a VOD of `seconds` s (2-second segments, 500 kbit/s H.264) as single-file fMP4 HLS
/// into `dir` (`index.m3u8` + `video-fragmented.mp4`) and returns the parsed playlist.
fn make_single_file_fmp4(dir: &Path, seconds: u32) -> MediaPlaylist {
    let spec = support::StreamSpec {
        seconds,
        bitrate: "500k".into(),
        segment_pattern: MEDIA_FILE.into(),
        single_file_fmp4: true,
        ..Default::default()
    };
    let path = support::make_vod(dir, &spec);
    let text = std::fs::read_to_string(path).expect("ffmpeg wrote a playlist");
    let playlist = parse_media_playlist(&text).expect("ffmpeg's playlist parses");
    assert!(
        playlist
            .segments
            .iter()
            .all(|s| s.uri == MEDIA_FILE && s.byte_range.is_some()),
        "not a single-file byte-range playlist: {text}"
    );
    assert_eq!(playlist.init_sections.len(), 1, "{text}");
    playlist
}

fn segments_seeded(stats: &Value) -> u64 {
    stats["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["segments"].as_u64()).sum())
        .unwrap_or(0)
}

/// `segswarm seed --http` on a single-file fMP4 VOD and two `segswarm play` viewers: no stall,
/// every viewer gets the init section once over HTTP and no hash mismatch against the seeder's
/// range-keyed manifest, and byte-range segments travel over WebRTC.
#[test]
fn seed_http_and_play_share_byte_range_segments() {
    support::enter_private_network_namespace();
    let media = tempfile::tempdir().expect("tempdir");
    let playlist = make_single_file_fmp4(media.path(), 30);
    let n = playlist.segments.len() as u64;
    let init_len = playlist.init_sections[0]
        .byte_range
        .as_ref()
        .map_or(0, |r| r.end - r.start);
    let ranges_len: u64 = playlist
        .segments
        .iter()
        .filter_map(|s| s.byte_range.as_ref().map(|r| r.end - r.start))
        .sum();
    let rt = support::runtime();
    let (tracker, url) = rt.block_on(support::start_tracker());
    let port = support::free_port();
    let http = format!("127.0.0.1:{port}");
    let mut args = strings(&["seed", "--tracker", &url, "--http", &http]);
    args.extend(strings(&LOOPBACK));
    args.extend(strings(&[
        "--json",
        "--stats-every",
        "1",
        "--rescan-ms",
        "250",
    ]));
    args.push(media.path().display().to_string());
    let seeder = Proc::start("seed", &args);
    let end = Instant::now() + Duration::from_secs(20);
    while seeder.last_json().is_none_or(|v| segments_seeded(&v) < n) {
        assert!(Instant::now() < end, "the seeder did not load the VOD");
        std::thread::sleep(Duration::from_millis(100));
    }
    let playlist_url = format!("http://{http}/index.m3u8");
    let viewers: Vec<Proc> = (0..2)
        .map(|i| {
            let mut args = strings(&["play", "--tracker", &url, "--json", "--seconds", "20"]);
            args.extend(strings(&LOOPBACK));
            args.push(playlist_url.clone());
            let p = Proc::start(&format!("viewer{i}"), &args);
            std::thread::sleep(Duration::from_secs(3));
            p
        })
        .collect();
    let reports: Vec<Value> = viewers
        .into_iter()
        .map(|v| v.finish(Duration::from_secs(45)))
        .collect();
    let seeded = seeder.stop(Duration::from_secs(10));
    rt.block_on(tracker.shutdown());

    let (mut http_bytes, mut p2p) = (0.0, 0.0);
    for (i, r) in reports.iter().enumerate() {
        eprintln!(
            "viewer{i}: http {} p2p {} share {:.2} stalls {} startup {:?} init {} peers_max {}",
            r["http_bytes"],
            r["p2p_bytes"],
            num(r, "p2p_share"),
            r["stall_count"],
            r["startup_s"],
            r["init_bytes"],
            r["peers_max"]
        );
        assert_eq!(num(r, "stall_count"), 0.0, "viewer{i} stalled: {r}");
        assert!(num(r, "played_s") >= 15.0, "viewer{i} played: {r}");
        assert_eq!(num(r, "hash_mismatches"), 0.0, "viewer{i}: {r}");
        assert_eq!(num(r, "init_bytes"), init_len as f64, "viewer{i}: {r}");
        assert!(num(r, "peers_max") >= 1.0, "viewer{i} met no peer: {r}");
        assert!(
            num(r, "http_bytes") + num(r, "p2p_bytes") <= ranges_len as f64,
            "viewer{i} received more than the segments' bytes: {r}"
        );
        http_bytes += num(r, "http_bytes");
        p2p += num(r, "p2p_bytes");
    }
    eprintln!(
        "two viewers: http {http_bytes} B, p2p {p2p} B, share {:.2}; seeder uploaded {} B",
        p2p / (http_bytes + p2p),
        seeded["uploaded_bytes"]
    );
    assert!(p2p > 0.0, "no byte-range segment went over WebRTC");
    assert!(num(&seeded, "uploaded_bytes") > 0.0, "{seeded}");
}

/// Upper bound for the node driver (its own watchdog is 4 s shorter).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(70);

/// hls.js + p2p-media-loader 2.3 in Chromium plays the single-file fMP4 stream from our origin
/// and takes byte-range segments over WebRTC from our native seeder.
#[test]
fn browser_pml_player_takes_byte_range_segments_from_native_seeder() {
    support::enter_private_network_namespace();
    support::check_browser_prerequisites(&support::E2E_PACKAGES);
    let media = tempfile::tempdir().expect("tempdir");
    let playlist = make_single_file_fmp4(media.path(), 40);
    let n = playlist.segments.len();
    let rt = support::runtime();
    rt.block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let origin = Origin::start(OriginConfig::new(
            media.path(),
            "127.0.0.1:0".parse().expect("address"),
        ))
        .await
        .expect("origin");
        let playlist_url = format!("{}index.m3u8", origin.base_url());
        let mut config = SeederConfig::new(media.path(), playlist_url.clone(), vec![url.clone()]);
        config.driver.rtc = support::loopback_rtc();
        let seeder = Seeder::start(config).await.expect("seeder");
        let end = Instant::now() + Duration::from_secs(15);
        while seeder
            .stats()
            .streams
            .first()
            .is_none_or(|s| s.segments < n)
        {
            assert!(Instant::now() < end, "seeder: {:?}", seeder.stats());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = strings(&[
            "--tracker",
            &url,
            "--playlist",
            &playlist_url,
            "--page",
            "pml:viewer:0",
            "--seconds",
            "25",
        ]);
        let report =
            tokio::task::spawn_blocking(move || support::run_e2e_driver(&args, DRIVER_TIMEOUT))
                .await
                .expect("driver thread");
        let stats = seeder.shutdown().await;
        let origin_bytes = origin.stats().body_bytes;
        origin.shutdown().await;
        tracker.shutdown().await;

        let page = report["pages"]
            .as_array()
            .and_then(|p| p.first())
            .cloned()
            .expect("one page");
        let s = &page["stats"];
        let (http, p2p) = (
            s["httpBytes"].as_f64().unwrap_or(0.0),
            s["p2pBytes"].as_f64().unwrap_or(0.0),
        );
        eprintln!(
            "pml viewer + native seeder, single-file fMP4: video {:.1}s, http {http} B, \
             p2p {p2p} B, seeder uploaded {} B to {} peer(s); origin sent {origin_bytes} B",
            s["currentTime"].as_f64().unwrap_or(0.0),
            stats.uploaded_bytes(),
            stats.streams[0].peers_connected_total,
        );
        assert!(
            s["fatalErrors"].as_array().is_some_and(|a| a.is_empty()),
            "hls.js fatal errors: {s}"
        );
        assert!(
            s["currentTime"].as_f64().unwrap_or(0.0) >= 12.0,
            "the video played: {s}"
        );
        assert!(p2p > 0.0, "the page took no P2P bytes: {s}");
        assert!(
            stats.uploaded_bytes() as f64 >= p2p * 0.9,
            "the P2P bytes came from our seeder: uploaded {} vs page p2p {p2p}",
            stats.uploaded_bytes()
        );
    });
}
