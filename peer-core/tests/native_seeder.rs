//! The seeder (`native::seeder`) with real parts, in a private network namespace: segswarm-tracker
//! on loopback, the HTTP origin (`native::origin`), the seeder over real WebRTC, and a viewer made
//! of a bare `PeerDriver` that asks for every segment and checks what it gets.
//!
//! The test media are synthetic MPEG-TS files (whole 188-byte packets), so the tests need no
//! ffmpeg; the root package's `seed_play` tests use real ffmpeg streams.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use segswarm_core::engine::{DeliverySource, EngineConfig};
use segswarm_core::hls::parse_media_playlist;
use segswarm_core::integrity::SegmentManifest;
use segswarm_core::native::driver::{DriverEvent, DriverSettings, PeerDriver};
use segswarm_core::native::origin::{Origin, OriginConfig};
use segswarm_core::native::seeder::{Seeder, SeederConfig, SeederStats, MANIFEST_FILE_NAME};
use segswarm_core::native::tracker_hub::TrackerHub;
use segswarm_core::stream::{
    generate_peer_id, generate_stream_short_id, ShortIdProps, StreamIdentity, StreamType,
};
use support::{enter_private_network_namespace, runtime, start_tracker};

/// An MPEG-TS-shaped segment: `packets` whole packets, contents depending on `seed`.
fn ts_segment(packets: usize, seed: u32) -> Vec<u8> {
    let mut v: Vec<u8> = (0..packets * 188)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed).rotate_right(11) as u8)
        .collect();
    for p in v.chunks_mut(188) {
        p[0] = 0x47;
    }
    v
}

fn media_playlist(seq: u64, names: &[String], ended: bool) -> String {
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq}\n"
    );
    for n in names {
        s.push_str(&format!("#EXTINF:2.000000,\n{n}\n"));
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

/// Writes a VOD of `count` segments into `dir`; returns the segments' bytes by name.
fn write_vod(dir: &Path, count: usize, packets: usize) -> BTreeMap<String, Vec<u8>> {
    let mut segs = BTreeMap::new();
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("seg{i:03}.ts");
        let data = ts_segment(packets, i as u32 + 1);
        std::fs::write(dir.join(&name), &data).unwrap();
        segs.insert(name.clone(), data);
        names.push(name);
    }
    std::fs::write(dir.join("index.m3u8"), media_playlist(0, &names, true)).unwrap();
    segs
}

async fn wait_for<F: FnMut(&SeederStats) -> bool>(
    seeder: &Seeder,
    timeout: Duration,
    mut ok: F,
) -> SeederStats {
    let end = Instant::now() + timeout;
    loop {
        let s = seeder.stats();
        if ok(&s) || Instant::now() > end {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct ViewerResult {
    delivered: BTreeMap<i64, (Bytes, DeliverySource)>,
    stats: segswarm_core::engine::Stats,
}

/// A bare viewer: one driver on the seeder's swarm that wants every segment of the VOD. The
/// playhead is put 30 s before the first segment, so nothing is urgent and peers are preferred.
async fn view(
    origin: &Origin,
    tracker: &str,
    seeder: &SeederStats,
    timeout: Duration,
) -> ViewerResult {
    let base = origin.base_url();
    let http = reqwest_get(&format!("{base}index.m3u8")).await;
    let playlist = parse_media_playlist(std::str::from_utf8(&http).unwrap()).unwrap();
    let manifest =
        SegmentManifest::from_json(&reqwest_get(&format!("{base}{MANIFEST_FILE_NAME}")).await)
            .expect("the seeder's manifest, served by the origin");
    let mut info_hash = [0u8; 20];
    info_hash.copy_from_slice(seeder.streams[0].info_hash.as_bytes());
    let mut peer_id = [0u8; 20];
    peer_id.copy_from_slice(generate_peer_id(&mut rand::rng()).as_bytes());
    let config = EngineConfig::new(peer_id, info_hash, false, vec![base.clone()]);
    let mut settings = DriverSettings::new(vec![tracker.to_owned()]);
    settings.rtc = support::loopback_rtc();
    let mut driver = PeerDriver::spawn(config, settings).expect("viewer driver");
    driver.set_playlist(playlist.segment_infos()).unwrap();
    driver.set_manifest(manifest).unwrap();
    // Wait for the seeder's data channel, so peers are an option from the start.
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(200), driver.next_event()).await {
            Ok(Some(DriverEvent::PeerConnected(_))) => break,
            _ => continue,
        }
    }
    driver.set_playback(-30.0).unwrap();
    for s in &playlist.segments {
        driver.want_segment(s.id).unwrap();
    }
    let mut delivered = BTreeMap::new();
    let end = Instant::now() + timeout;
    while delivered.len() < playlist.segments.len() && Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(200), driver.next_event()).await {
            Ok(Some(DriverEvent::SegmentReady {
                segment,
                data,
                source,
            })) => {
                delivered.insert(segment, (data, source));
            }
            Ok(Some(DriverEvent::SegmentFailed { segment, reason })) => {
                panic!("segment {segment} failed: {reason}")
            }
            _ => {}
        }
    }
    let stats = driver.stats().await.unwrap().engine;
    driver.shutdown().await;
    ViewerResult { delivered, stats }
}

async fn reqwest_get(url: &str) -> Bytes {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::get(url).await.expect("GET");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.unwrap()
}

/// The HTTP origin on `dir`, on an ephemeral loopback port.
async fn start_origin(dir: &Path) -> Origin {
    Origin::start(OriginConfig::new(
        dir,
        "127.0.0.1:0".parse().expect("address"),
    ))
    .await
    .expect("origin")
}

fn seeder_config(dir: &Path, origin: &Origin, tracker: &str) -> SeederConfig {
    let mut c = SeederConfig::new(
        dir,
        format!("{}index.m3u8", origin.base_url()),
        vec![tracker.to_owned()],
    );
    c.driver.rtc = support::loopback_rtc();
    c.rescan_interval = Duration::from_millis(200);
    c
}

#[test]
fn seeder_serves_a_vod_to_a_viewer_over_webrtc() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let files = write_vod(dir.path(), 6, 1000);
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        let seeder = Seeder::start(seeder_config(dir.path(), &origin, &url))
            .await
            .unwrap();
        let stats = wait_for(&seeder, Duration::from_secs(10), |s| {
            s.streams.first().is_some_and(|s| s.segments == 6)
        })
        .await;
        assert_eq!(stats.streams.len(), 1, "{stats:?}");
        assert!(stats.problems.is_empty(), "{:?}", stats.problems);
        assert_eq!(stats.streams[0].segment_bytes, 6 * 1000 * 188);
        // The manifest is on disk, next to the segments.
        let manifest = SegmentManifest::from_json(
            &std::fs::read(dir.path().join(MANIFEST_FILE_NAME)).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest.len(), 6);

        let http_before = origin.stats().body_bytes;
        let result = view(&origin, &url, &stats, Duration::from_secs(30)).await;
        assert_eq!(result.delivered.len(), 6, "every segment delivered");
        for (i, (name, data)) in files.iter().enumerate() {
            let (got, _) = &result.delivered[&(i as i64)];
            assert_eq!(got.as_ref(), data.as_slice(), "segment {name} intact");
        }
        let from_peer = result
            .delivered
            .values()
            .filter(|(_, s)| matches!(s, DeliverySource::Peer(_)))
            .count();
        assert!(
            from_peer >= 5,
            "segments from the seeder: {from_peer} of 6 ({:?})",
            result.stats
        );
        let segment_http = origin.stats().body_bytes - http_before;
        assert!(
            segment_http < 2 * 188_000,
            "origin carried {segment_http} bytes of segments"
        );
        let after = wait_for(&seeder, Duration::from_secs(5), |s| {
            s.uploaded_bytes() >= 5 * 188_000
        })
        .await;
        assert!(after.uploaded_bytes() >= 5 * 188_000, "{after:?}");
        assert_eq!(result.stats.peers_banned, 0);
        assert!(after.streams[0].peers_connected_total >= 1);

        // The VOD is re-encoded in place: the seeder notices, rejoins, and serves the new bytes
        // (which match the rewritten manifest) to the next viewer.
        let new_first = ts_segment(1000, 777);
        std::fs::write(dir.path().join("seg000.ts"), &new_first).unwrap();
        let old_manifest = manifest;
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let m = std::fs::read(dir.path().join(MANIFEST_FILE_NAME)).unwrap();
            if SegmentManifest::from_json(&m).unwrap() != old_manifest {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stats = wait_for(&seeder, Duration::from_secs(5), |s| {
            s.streams.first().is_some_and(|s| s.segments == 6)
        })
        .await;
        let again = view(&origin, &url, &stats, Duration::from_secs(30)).await;
        let (got, source) = &again.delivered[&0];
        assert_eq!(got.as_ref(), new_first.as_slice(), "the new bytes");
        assert!(matches!(*source, DeliverySource::Peer(_)));
        assert_eq!(again.stats.hash_mismatches, 0, "{:?}", again.stats);

        seeder.shutdown().await;
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn corrupting_seeder_is_banned_and_segments_come_over_http() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let files = write_vod(dir.path(), 4, 800);
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        let mut config = seeder_config(dir.path(), &origin, &url);
        config.corrupt_uploads = true;
        let seeder = Seeder::start(config).await.unwrap();
        let stats = wait_for(&seeder, Duration::from_secs(10), |s| {
            s.streams.first().is_some_and(|s| s.segments == 4)
        })
        .await;
        let result = view(&origin, &url, &stats, Duration::from_secs(30)).await;
        assert_eq!(
            result.delivered.len(),
            4,
            "every segment delivered: {:?}",
            result.stats
        );
        for (i, data) in files.values().enumerate() {
            let (got, source) = &result.delivered[&(i as i64)];
            assert_eq!(got.as_ref(), data.as_slice(), "segment {i} is the true one");
            assert!(
                matches!(*source, DeliverySource::Http(_)),
                "segment {i} came over HTTP"
            );
        }
        assert!(result.stats.hash_mismatches >= 1, "{:?}", result.stats);
        assert_eq!(result.stats.peers_banned, 1, "{:?}", result.stats);
        seeder.shutdown().await;
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn live_directory_is_followed_and_manifest_tracks_the_window() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        // Nothing written yet: the seeder starts anyway and waits for the playlist.
        let mut config = seeder_config(&dir.path().join("index.m3u8"), &origin, &url);
        config.rescan_interval = Duration::from_millis(100);
        let seeder = Seeder::start(config).await.unwrap();
        let s = wait_for(&seeder, Duration::from_secs(2), |s| !s.problems.is_empty()).await;
        assert!(s.problems[0].contains("index.m3u8"), "{:?}", s.problems);

        // A packager writing 0.3-second "segments" into a window of three, deleting old ones.
        let window = 3u64;
        for seq in 0..8u64 {
            let name = format!("live{seq}.ts");
            std::fs::write(dir.path().join(&name), ts_segment(50, seq as u32)).unwrap();
            let first = (seq + 1).saturating_sub(window);
            if first > 0 {
                let _ = std::fs::remove_file(dir.path().join(format!("live{}.ts", first - 1)));
            }
            let names: Vec<String> = (first..=seq).map(|i| format!("live{i}.ts")).collect();
            let tmp = dir.path().join("index.m3u8.tmp");
            std::fs::write(&tmp, media_playlist(first, &names, false)).unwrap();
            std::fs::rename(&tmp, dir.path().join("index.m3u8")).unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let s = wait_for(&seeder, Duration::from_secs(3), |s| {
            s.streams
                .first()
                .is_some_and(|st| st.segments == 3 && st.live)
        })
        .await;
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let st = &s.streams[0];
        assert!(st.live);
        assert_eq!(st.segments, 3, "{s:?}");
        let manifest = std::fs::read_to_string(dir.path().join(MANIFEST_FILE_NAME)).unwrap();
        let m = SegmentManifest::from_json(manifest.as_bytes()).unwrap();
        assert_eq!(m.len(), 3, "{manifest}");
        for seq in 5..8 {
            assert!(manifest.contains(&format!("live{seq}.ts")), "{manifest}");
        }
        assert!(
            s.manifests_written >= 5,
            "rewritten as the window slid: {}",
            s.manifests_written
        );

        // A half-written segment appears in the playlist: reported and skipped.
        let mut cut = ts_segment(50, 99);
        cut.truncate(3000);
        std::fs::write(dir.path().join("live8.ts"), &cut).unwrap();
        let names: Vec<String> = (6..=8).map(|i| format!("live{i}.ts")).collect();
        // Written as packagers do (a temporary file renamed over the playlist), so the seeder never
        // reads a half-written playlist here.
        let tmp = dir.path().join("index.m3u8.tmp");
        std::fs::write(&tmp, media_playlist(6, &names, false)).unwrap();
        std::fs::rename(&tmp, dir.path().join("index.m3u8")).unwrap();
        let s = wait_for(&seeder, Duration::from_secs(3), |s| {
            s.problems.iter().any(|p| p.contains("live8.ts"))
        })
        .await;
        assert!(
            s.problems
                .iter()
                .any(|p| p.contains("live8.ts") && p.contains("half-written")),
            "{:?}",
            s.problems
        );
        assert_eq!(s.streams[0].skipped, 1);
        let manifest = std::fs::read_to_string(dir.path().join(MANIFEST_FILE_NAME)).unwrap();
        assert!(
            !manifest.contains("live8.ts"),
            "never vouched for: {manifest}"
        );
        // Completed: taken.
        std::fs::write(dir.path().join("live8.ts"), ts_segment(50, 99)).unwrap();
        let s = wait_for(&seeder, Duration::from_secs(3), |s| s.problems.is_empty()).await;
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert!(std::fs::read_to_string(dir.path().join(MANIFEST_FILE_NAME))
            .unwrap()
            .contains("live8.ts"));

        // Graceful stop: the swarm empties on the tracker.
        let swarm_gauge = |t: &segswarm_tracker::server::RunningServer| {
            t.metrics_text()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("segswarm_swarms ")
                        .map(|v| v.trim().parse::<f64>().unwrap_or(-1.0))
                })
                .unwrap_or(-1.0)
        };
        assert_eq!(swarm_gauge(&tracker), 1.0);
        seeder.shutdown().await;
        let end = Instant::now() + Duration::from_secs(5);
        while swarm_gauge(&tracker) != 0.0 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(swarm_gauge(&tracker), 0.0, "the seeder left its swarm");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

#[test]
fn master_playlist_joins_one_swarm_per_variant() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let master = "#EXTM3U\n\
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240,CODECS=\"avc1.42c015\"\nlow/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x480,CODECS=\"avc1.42c01e\"\nhigh/index.m3u8\n";
        std::fs::write(dir.path().join("master.m3u8"), master).unwrap();
        for v in ["low", "high"] {
            std::fs::create_dir(dir.path().join(v)).unwrap();
            write_vod(&dir.path().join(v), 3, 100);
        }
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        let public = format!("{}master.m3u8", origin.base_url());
        let mut config = SeederConfig::new(dir.path(), public.clone(), vec![url.clone()]);
        config.driver.rtc = support::loopback_rtc();
        let seeder = Seeder::start(config).await.unwrap();
        let s = wait_for(&seeder, Duration::from_secs(10), |s| {
            s.streams.len() == 2 && s.streams.iter().all(|st| st.segments == 3)
        })
        .await;
        assert_eq!(s.streams.len(), 2, "{s:?}");
        let expected: Vec<String> = segswarm_core::stream::master_playlist_streams(master)
            .iter()
            .map(|p| {
                segswarm_core::stream::StreamIdentity::new(
                    None,
                    &public,
                    p.stream_type,
                    p.short_id(),
                )
                .stream_swarm_id
            })
            .collect();
        let got: Vec<String> = s
            .streams
            .iter()
            .map(|st| st.stream_swarm_id.clone())
            .collect();
        assert_eq!(got, expected);
        // One manifest beside each variant's segments.
        for v in ["low", "high"] {
            let m = std::fs::read(dir.path().join(v).join(MANIFEST_FILE_NAME)).unwrap();
            assert_eq!(SegmentManifest::from_json(&m).unwrap().len(), 3, "{v}");
        }
        // Two swarms on the tracker.
        let end = Instant::now() + Duration::from_secs(5);
        let swarms = loop {
            let n = tracker
                .metrics_text()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("segswarm_swarms ")
                        .map(|v| v.trim().to_owned())
                })
                .unwrap_or_default();
            if n == "2" || Instant::now() > end {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(swarms, "2");
        seeder.shutdown().await;
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

/// Starts `n` bare viewers on `info_hash` that only wait for offers (they make none, keep one
/// connection and download nothing), each with its own tracker socket; returns once each
/// has announced.
async fn waiting_viewers(
    n: usize,
    info_hash: [u8; 20],
    server: &segswarm_tracker::server::RunningServer,
    tracker: &str,
) -> Vec<segswarm_core::native::driver::DriverHandle> {
    let mut viewers = Vec::new();
    for _ in 0..n {
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(generate_peer_id(&mut rand::rng()).as_bytes());
        let mut config = EngineConfig::new(peer_id, info_hash, false, vec![]);
        config.consume_only = true;
        config.max_peers = 1;
        config.tracker.max_offers = 0;
        let mut settings = DriverSettings::new(vec![tracker.to_owned()]);
        settings.rtc = support::loopback_rtc();
        // A socket of its own, as separate viewers have.
        settings.hub = Some(TrackerHub::default());
        viewers.push(PeerDriver::spawn(config, settings).expect("viewer driver"));
    }
    for v in &mut viewers {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            match tokio::time::timeout(Duration::from_millis(200), v.next_event()).await {
                Ok(Some(DriverEvent::TrackerConnected { .. })) => break,
                _ => continue,
            }
        }
    }
    // Their `started` announces reach the tracker.
    support::wait_for_tracker_peers(server, |peers| peers >= n as u64).await;
    viewers
}

/// How many of `viewers` have a peer connection open, waiting up to `timeout` for `want`.
async fn connected_viewers(
    viewers: &[segswarm_core::native::driver::DriverHandle],
    want: usize,
    timeout: Duration,
) -> usize {
    let end = Instant::now() + timeout;
    loop {
        let mut n = 0;
        for v in viewers {
            if v.stats().await.is_ok_and(|s| s.peers_connected > 0) {
                n += 1;
            }
        }
        if n >= want || Instant::now() > end {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn seeder_fills_up_over_several_announce_rounds() {
    enter_private_network_namespace();
    runtime().block_on(async {
        const VIEWERS: usize = 8;
        const OFFERS: u32 = 3;
        // segswarm-tracker with its defaults: 120 s announce interval, 10 offers relayed.
        let (tracker, url) = start_tracker().await;
        let mut results = Vec::new();
        for fill in [None, Some(Duration::from_secs(1))] {
            let dir = tempfile::tempdir().unwrap();
            write_vod(dir.path(), 2, 100);
            let origin = start_origin(dir.path()).await;
            let mut config = seeder_config(dir.path(), &origin, &url);
            config.offers_per_announce = OFFERS;
            config.max_peers = 20;
            config.fill_announce_interval = fill;
            // 3 offers to random peers of 8 (+ the seeder): with one viewer left, a round misses
            // it with p = 0.625, so the default of 2 idle rounds would often end the fill first.
            config.fill_idle_rounds = 30;
            config.offer_timeout = Duration::from_secs(5);
            config.driver.hub = Some(TrackerHub::default());
            // The swarm of each run is its own (the origin's port differs): the one
            // p2p-media-loader derives from a media playlist URL loaded directly.
            let info_hash = StreamIdentity::new(
                None,
                &config.public_url,
                StreamType::Main,
                generate_stream_short_id(&ShortIdProps {
                    bitrate: Some(0.0),
                    ..Default::default()
                }),
            )
            .info_hash;
            // Viewers first: each waits for an offer from the seeder.
            let viewers = waiting_viewers(VIEWERS, info_hash, &tracker, &url).await;
            let seeder = Seeder::start(config).await.unwrap();
            let wait = if fill.is_some() { 30 } else { 8 };
            let connected = connected_viewers(&viewers, VIEWERS, Duration::from_secs(wait)).await;
            // The two ends see a data channel open at slightly different times.
            let mut seeder_peers = seeder.stats().streams[0].peers;
            let settle = Instant::now() + Duration::from_secs(5);
            while seeder_peers < connected && Instant::now() < settle {
                tokio::time::sleep(Duration::from_millis(100)).await;
                seeder_peers = seeder.stats().streams[0].peers;
            }
            results.push((fill, connected, seeder_peers));
            for v in viewers {
                v.shutdown().await;
            }
            seeder.shutdown().await;
            origin.shutdown().await;
            // Every `stopped` handled: the next round's viewers are counted alone.
            support::wait_for_tracker_peers(&tracker, |peers| peers == 0).await;
        }
        // With the tracker's interval alone, one announce reaches at most OFFERS viewers.
        let (_, once, _) = results[0];
        assert!(once <= OFFERS as usize, "{results:?}");
        // Re-announcing with fresh offers reaches every viewer.
        let (_, filled, seeder_peers) = results[1];
        assert_eq!(filled, VIEWERS, "{results:?}");
        assert_eq!(seeder_peers, VIEWERS, "{results:?}");
        tracker.shutdown().await;
    });
}

/// `(complete, incomplete)` of `info_hash` in the tracker's HTTP scrape (`/scrape`), 0s when the
/// tracker does not know it.
async fn scrape(tracker_ws_url: &str, info_hash: &[u8; 20]) -> (u64, u64) {
    let addr = tracker_ws_url.trim_start_matches("ws://");
    let query: String = info_hash.iter().map(|b| format!("%{b:02X}")).collect();
    let body = reqwest_get(&format!("http://{addr}/scrape?info_hash={query}")).await;
    // d5:filesd20:<ih>d8:completei<c>e10:downloadedi<d>e10:incompletei<n>eeee
    let mut key = b"20:".to_vec();
    key.extend_from_slice(info_hash);
    let Some(at) = body.windows(key.len()).position(|w| w == key.as_slice()) else {
        return (0, 0);
    };
    let int_after = |name: &str| -> u64 {
        let tag = format!("{}:{name}i", name.len());
        let rest = &body[at..];
        let p = rest
            .windows(tag.len())
            .position(|w| w == tag.as_bytes())
            .unwrap_or_else(|| panic!("no {name} in {body:?}"));
        let digits: Vec<u8> = rest[p + tag.len()..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        String::from_utf8(digits).unwrap().parse().unwrap()
    };
    (int_after("complete"), int_after("incomplete"))
}

/// With `id_scheme: pml-2.2` the seeder announces p2p-media-loader 2.2's info hashes (MD5 of
/// `v2-<public URL>-<type>-<index>`, its first byte dropped) and not 2.3's; with `peertube`, the
/// hashes of `pt-v2-<uuid>-main-default-<resolution>`. Checked through segswarm-tracker's scrape.
#[test]
fn seeder_announces_the_info_hashes_of_its_id_scheme() {
    use segswarm_core::id_scheme::{md5_info_hash, IdScheme};
    enter_private_network_namespace();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let master = "#EXTM3U\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",LANGUAGE=\"en\",URI=\"audio/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240,CODECS=\"avc1.42c015,mp4a.40.2\",AUDIO=\"a\"\nlow/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=1280x720,CODECS=\"avc1.42c01e,mp4a.40.2\",AUDIO=\"a\"\nhigh/index.m3u8\n";
        std::fs::write(dir.path().join("master.m3u8"), master).unwrap();
        for v in ["low", "high", "audio"] {
            std::fs::create_dir(dir.path().join(v)).unwrap();
            write_vod(&dir.path().join(v), 2, 50);
        }
        let (tracker, url) = start_tracker().await;
        let origin = start_origin(dir.path()).await;
        let public = format!("{}master.m3u8", origin.base_url());
        let uuid = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
        let cases = [
            (
                IdScheme::Pml22,
                [
                    format!("v2-{public}-main-0"),
                    format!("v2-{public}-main-1"),
                    format!("v2-{public}-secondary-0"),
                ],
            ),
            (
                IdScheme::PeerTube,
                [
                    format!("pt-v2-{uuid}-main-default-240"),
                    format!("pt-v2-{uuid}-main-default-720"),
                    format!("pt-v2-{uuid}-secondary-default-default"),
                ],
            ),
        ];
        for (scheme, ids) in cases {
            let mut config = SeederConfig::new(dir.path(), public.clone(), vec![url.clone()]);
            config.driver.rtc = support::loopback_rtc();
            config.id_scheme = scheme;
            config.peertube_uuid = Some(uuid.to_owned()).filter(|_| scheme == IdScheme::PeerTube);
            let seeder = Seeder::start(config).await.unwrap();
            let s = wait_for(&seeder, Duration::from_secs(10), |s| s.streams.len() == 3).await;
            let got: Vec<&str> = s.streams.iter().map(|st| st.stream_swarm_id.as_str()).collect();
            assert_eq!(got, ids, "{scheme}");
            for id in &ids {
                let expected = match scheme {
                    IdScheme::Pml22 => md5_info_hash(id),
                    _ => segswarm_core::stream::info_hash(id),
                };
                let end = Instant::now() + Duration::from_secs(10);
                let mut counts = scrape(&url, &expected).await;
                while counts == (0, 0) && Instant::now() < end {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    counts = scrape(&url, &expected).await;
                }
                assert_eq!(counts.0 + counts.1, 1, "{scheme} {id}: {counts:?}");
            }
            // Not the 2.3 swarms of the same streams.
            for p in segswarm_core::stream::master_playlist_streams(master) {
                let id23 = StreamIdentity::new(None, &public, p.stream_type, p.short_id());
                assert_eq!(scrape(&url, &id23.info_hash).await, (0, 0), "{scheme}");
            }
            seeder.shutdown().await;
        }
        // Without the uuid, the peertube scheme refuses to start.
        let mut config = SeederConfig::new(dir.path(), public.clone(), vec![url.clone()]);
        config.id_scheme = IdScheme::PeerTube;
        let Err(err) = Seeder::start(config).await else {
            panic!("the peertube scheme started without a uuid");
        };
        assert!(err.to_string().contains("uuid"), "{err}");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}
