//! The mirror seeds what it mirrors over WebRTC, in a private network namespace: after one check
//! it is a peer in the video's swarm on a real segswarm-tracker (the one the video's
//! `trackerUrls` name), with the id scheme the instance's players use (`pml-2.2` for PeerTube
//! 7.2); a native viewer of the video, its origin's files made unavailable once playback has
//! started, plays it to the end with the rest of the bytes from the mirror over P2P; stopping
//! the mirror leaves the swarm. Needs root (namespace), `ip` and `ffmpeg`.

use std::time::{Duration, Instant};

use crate::peertube_origin::{make_vod_video, PeerTubeOrigin, PtResolution};
use crate::support::{
    enter_private_network_namespace, loopback_rtc, runtime, start_tracker, wait_for_tracker_peers,
};
use segswarm_core::id_scheme::IdScheme;
use segswarm_core::native::mirror::{MirrorConfig, MirrorDaemon, Strategy};

use super::{strategy, test_config, test_settings};
use segswarm_core::native::viewer::{Viewer, ViewerConfig};

/// 12 s of video in 2 s segments.
const SEGMENTS: usize = 6;

#[test]
fn seeds_what_it_mirrors_in_the_origins_swarm() {
    enter_private_network_namespace();
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let v = make_vod_video(
        src.path(),
        31,
        2 * SEGMENTS as u32,
        &[PtResolution::new(240, 160, 120, "100k")],
    );
    runtime().block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tracker, tracker_url) = start_tracker().await;
        let origin = PeerTubeOrigin::start(vec![v.clone()], "7.2.3").await;
        origin.set(|c| c.tracker_ws = Some(tracker_url.clone()));
        let config = MirrorConfig {
            admin_listen: None,
            ..test_config(
                work.path(),
                64 * 1024 * 1024,
                vec![origin.base.clone()],
                vec![strategy(Strategy::MostViews, 32 * 1024 * 1024)],
            )
        };
        let mut settings = test_settings();
        settings.swarms.driver.rtc = loopback_rtc();
        settings.swarms.rescan_interval = Duration::from_millis(200);

        tokio::time::timeout(Duration::from_secs(90), async {
            let mut daemon = MirrorDaemon::start(config, settings).await.expect("daemon");
            let report = daemon.check().await;
            assert_eq!(report.fetched, vec![v.uuid.clone()], "{report:?}");
            assert_eq!(report.seeded, vec![v.uuid.clone()], "{report:?}");
            wait_for_tracker_peers(&tracker, |n| n == 1).await;
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                let stats = daemon.seeder_stats();
                let stream = stats.get(&v.uuid).and_then(|s| s.streams.first().cloned());
                if stream.as_ref().is_some_and(|s| s.segments == SEGMENTS) {
                    break;
                }
                assert!(Instant::now() < end, "the mirror's seeder: {stats:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }

            // A viewer as PeerTube 7.2's players join: p2p-media-loader 2.2's swarm of the
            // instance's master playlist URL.
            let hls = format!("{}/static/streaming-playlists/hls/{}", origin.base, v.uuid);
            let mut vc = ViewerConfig::new(
                format!("{hls}/{}", v.master_file),
                vec![tracker_url.clone()],
            );
            vc.id_scheme = IdScheme::Pml22;
            vc.manifest_url = Some(format!("{hls}/{}", v.sha_file));
            vc.require_manifest = true;
            vc.consume_only = true;
            vc.driver.rtc = loopback_rtc();
            let mut viewer = Viewer::open(vc).await.expect("open the stream");
            let end = Instant::now() + Duration::from_secs(20);
            while viewer.stats().await.map_or(0, |s| s.peers_connected) == 0 {
                assert!(Instant::now() < end, "the viewer never met the mirror");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Once playback has started (the first segment is urgent, and urgent segments go
            // to HTTP as in p2p-media-loader), the origin's files are gone: the rest of the
            // video comes from the mirror.
            let played = viewer
                .play(None, |p| {
                    if p.playing {
                        origin.set(|c| c.origin_static_down = true);
                    }
                })
                .await
                .expect("play");
            assert!(origin.controls().origin_static_down, "{played:?}");
            assert_eq!(played.segments, SEGMENTS as u64, "{played:?}");
            assert!(played.p2p_bytes > played.http_bytes, "{played:?}");
            let uploaded = daemon.seeder_stats()[&v.uuid].uploaded_bytes();
            assert!(uploaded >= played.p2p_bytes, "{uploaded} < {played:?}");
            daemon.refresh_metrics();
            let figures = daemon.metrics().stats_json();
            assert!(
                figures["videos"][&v.uuid]["p2p_bytes"].as_u64() >= Some(uploaded),
                "{figures}"
            );
            viewer.close().await;

            // Stopping the mirror leaves the swarm.
            daemon.shutdown().await;
            wait_for_tracker_peers(&tracker, |n| n == 0).await;
        })
        .await
        .expect("within the time limit");
    });
}
