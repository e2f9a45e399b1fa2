//! PeerTube-style HLS with real parts, in a private network namespace: ffmpeg writes fragmented
//! MP4 as ONE file per stream (`-hls_segment_type fmp4 -hls_flags single_file`), so every segment
//! is an `#EXT-X-BYTERANGE` of `video-fragmented.mp4` and the `#EXT-X-MAP` initialization section
//! is its first bytes. The seeder (`native::seeder`) reads the ranges out of the file, writes
//! `segments-sha256.json` keyed by file name and `start-end` range as PeerTube does, and serves
//! the segments over real WebRTC; viewers (`native::viewer`) fetch ranges over HTTP with `Range`
//! from the origin (`native::origin`), fetch the init section once over HTTP, and check every
//! segment against the manifest by its range. Needs root (namespace), `ip` and `ffmpeg`.

use crate::support;

use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use segswarm_core::hls::{parse_media_playlist, MediaPlaylist};
use segswarm_core::integrity::{sha256, ByteRange, SegmentManifest};
use segswarm_core::native::origin::{Origin, OriginConfig};
use segswarm_core::native::seeder::{Seeder, SeederConfig, SeederStats, MANIFEST_FILE_NAME};
use segswarm_core::native::tracker_hub::TrackerHub;
use segswarm_core::native::viewer::{PlayReport, Viewer, ViewerConfig};
use support::{enter_private_network_namespace, runtime, start_tracker};

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
    // What the test relies on: one file, ranges, an init section at its start.
    assert!(playlist.segments.len() >= 4, "{text}");
    assert!(
        playlist
            .segments
            .iter()
            .all(|s| s.uri == MEDIA_FILE && s.byte_range.is_some() && s.init == Some(0)),
        "{text}"
    );
    assert_eq!(playlist.init_sections.len(), 1, "{text}");
    assert_eq!(
        playlist.init_sections[0]
            .byte_range
            .as_ref()
            .map(|r| r.start),
        Some(0)
    );
    playlist
}

fn slice(file: &[u8], r: &Range<u64>) -> Vec<u8> {
    file[r.start as usize..r.end as usize].to_vec()
}

async fn start_origin(dir: &Path) -> Origin {
    Origin::start(OriginConfig::new(
        dir,
        "127.0.0.1:0".parse().expect("address"),
    ))
    .await
    .expect("origin")
}

/// Starts a seeder on `dir` and waits (up to 15 s) until it holds `segments` segments.
async fn start_seeder(
    dir: &Path,
    origin: &Origin,
    tracker: &str,
    segments: usize,
    corrupt: bool,
) -> (Seeder, SeederStats) {
    let mut c = SeederConfig::new(
        dir,
        format!("{}index.m3u8", origin.base_url()),
        vec![tracker.to_owned()],
    );
    c.driver.rtc = support::loopback_rtc();
    c.rescan_interval = Duration::from_millis(200);
    c.corrupt_uploads = corrupt;
    let seeder = Seeder::start(c).await.expect("seeder");
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let s = seeder.stats();
        if s.streams.first().is_some_and(|s| s.segments == segments) {
            return (seeder, s);
        }
        assert!(
            Instant::now() < end,
            "the seeder did not load the VOD: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn viewer_config(origin: &Origin, tracker: &str, hub: &TrackerHub) -> ViewerConfig {
    let mut c = ViewerConfig::new(
        format!("{}index.m3u8", origin.base_url()),
        vec![tracker.to_owned()],
    );
    c.driver.rtc = support::loopback_rtc();
    c.driver.hub = Some(hub.clone());
    c
}

/// Plays the whole VOD, then checks what the viewer holds against the file: every segment (from
/// its store) is exactly its byte range, and the init section exactly the `#EXT-X-MAP` range.
async fn watch_and_check(
    config: ViewerConfig,
    file: Vec<u8>,
    playlist: MediaPlaylist,
) -> PlayReport {
    let mut v = Viewer::open(config).await.expect("open the stream");
    let init_range = playlist.init_sections[0]
        .byte_range
        .clone()
        .expect("MAP range");
    assert_eq!(
        v.init_section(0).map(|b| b.to_vec()),
        Some(slice(&file, &init_range)),
        "the init section is the file's first bytes"
    );
    let report = v.play(None, |_| {}).await.expect("play");
    for s in &playlist.segments {
        let data = v
            .segment(s.id, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("segment {}: {e}", s.id));
        let range = s.byte_range.clone().expect("range");
        assert!(
            data.as_ref() == slice(&file, &range).as_slice(),
            "segment {} is not bytes {range:?} of the file",
            s.id
        );
    }
    v.close().await;
    report
}

/// The seeder loads the byte ranges of one fMP4 file, writes PeerTube's range-keyed manifest,
/// and two viewers play the VOD without a stall, taking bytes over WebRTC (from the seeder and
/// each other) and the rest over HTTP with Range requests; the init section comes over HTTP once
/// per viewer.
#[test]
fn single_file_fmp4_is_seeded_and_shared_by_byte_range() {
    enter_private_network_namespace();
    let dir = tempfile::tempdir().expect("tempdir");
    let playlist = make_single_file_fmp4(dir.path(), 16);
    let file = std::fs::read(dir.path().join(MEDIA_FILE)).expect("media file");
    let n = playlist.segments.len();
    runtime().block_on(async {
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        let (seeder, stats) = start_seeder(dir.path(), &origin, &url, n, false).await;
        assert!(stats.problems.is_empty(), "{:?}", stats.problems);
        let ranges_len: u64 = playlist
            .segments
            .iter()
            .filter_map(|s| s.byte_range.as_ref().map(|r| r.end - r.start))
            .sum();
        assert_eq!(stats.streams[0].segment_bytes, ranges_len);

        // The manifest as PeerTube writes it: {"video-fragmented.mp4": {"<start>-<end>": hash}}.
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(MANIFEST_FILE_NAME)).expect("manifest written"),
        )
        .expect("manifest is JSON");
        let ranges = json[MEDIA_FILE].as_object().expect("ranges of the file");
        assert_eq!(ranges.len(), n, "{json}");
        for s in &playlist.segments {
            let r = s.byte_range.clone().expect("range");
            let key = format!("{}-{}", r.start, r.end - 1);
            let hex: String = sha256(&slice(&file, &r))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(ranges[&key].as_str(), Some(hex.as_str()), "range {key}");
        }
        let manifest = SegmentManifest::from_json(json.to_string().as_bytes()).expect("parses");
        let first = playlist.segments[0].byte_range.clone().expect("range");
        let br = ByteRange::from_offset_length(first.start, first.end - first.start);
        assert!(manifest.digest(MEDIA_FILE, br).is_some());

        let hub = TrackerHub::default();
        let mut tasks = Vec::new();
        for i in 0..2u64 {
            let config = viewer_config(&origin, &url, &hub);
            let (file, playlist) = (file.clone(), playlist.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3 * i)).await;
                watch_and_check(config, file, playlist).await
            }));
        }
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await.expect("viewer task"));
        }
        let init_len = playlist.init_sections[0]
            .byte_range
            .as_ref()
            .map_or(0, |r| r.end - r.start);
        for (i, r) in reports.iter().enumerate() {
            eprintln!(
                "viewer {i}: {}",
                serde_json::to_string(r).unwrap_or_default()
            );
            assert_eq!(r.stall_count, 0, "viewer {i} stalled: {r:?}");
            assert_eq!(r.segments, n as u64, "viewer {i}: {r:?}");
            assert_eq!(r.hash_mismatches, 0, "viewer {i}: {r:?}");
            assert_eq!(r.init_bytes, init_len, "viewer {i}: init once: {r:?}");
            assert!(r.peers_max >= 1, "viewer {i} met no peer: {r:?}");
            // Every segment byte arrived exactly once, by HTTP or by WebRTC.
            assert_eq!(r.http_bytes + r.p2p_bytes, ranges_len, "viewer {i}: {r:?}");
        }
        let p2p: u64 = reports.iter().map(|r| r.p2p_bytes).sum();
        let http: u64 = reports.iter().map(|r| r.http_bytes).sum();
        let seeded = seeder.shutdown().await;
        eprintln!(
            "two viewers: http {http} B, p2p {p2p} B, share {:.2}; seeder uploaded {} B; \
             origin sent {} B in {} requests",
            p2p as f64 / (http + p2p).max(1) as f64,
            seeded.uploaded_bytes(),
            origin.stats().body_bytes,
            origin.stats().requests
        );
        assert!(p2p > 0, "no byte-range segment went over WebRTC");
        assert!(seeded.uploaded_bytes() > 0, "the seeder served nothing");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

/// A seeder that corrupts what it uploads: the viewer's range-keyed integrity check catches it,
/// bans the seeder and fetches the ranges again over HTTP; what the viewer ends with is exact.
#[test]
fn corrupt_byte_range_segments_are_caught_by_range_hash() {
    enter_private_network_namespace();
    let dir = tempfile::tempdir().expect("tempdir");
    let playlist = make_single_file_fmp4(dir.path(), 8);
    let file = std::fs::read(dir.path().join(MEDIA_FILE)).expect("media file");
    let n = playlist.segments.len();
    runtime().block_on(async {
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        let (seeder, _) = start_seeder(dir.path(), &origin, &url, n, true).await;
        let hub = TrackerHub::default();
        let mut v = Viewer::open(viewer_config(&origin, &url, &hub))
            .await
            .expect("open");
        // Wait for the seeder's data channel, so the segments are asked of it.
        let end = Instant::now() + Duration::from_secs(15);
        while v.stats().await.expect("stats").peers_connected == 0 {
            assert!(Instant::now() < end, "the seeder never connected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for s in &playlist.segments {
            let data = v
                .segment(s.id, Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| panic!("segment {}: {e}", s.id));
            let range = s.byte_range.clone().expect("range");
            assert!(
                data.as_ref() == slice(&file, &range).as_slice(),
                "segment {} is not bytes {range:?} of the file",
                s.id
            );
        }
        let e = v.stats().await.expect("stats").engine;
        eprintln!(
            "corrupting seeder: mismatches {}, banned {}, http {} B, p2p {} B",
            e.hash_mismatches, e.peers_banned, e.http_bytes, e.p2p_bytes
        );
        assert!(e.hash_mismatches >= 1, "{e:?}");
        assert_eq!(e.peers_banned, 1, "{e:?}");
        v.close().await;
        seeder.shutdown().await;
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}
