//! The mirror seen by PeerTube's players: a PeerTube-shaped instance on loopback
//! (`tests/support/peertube_origin.rs`) whose `trackerUrls` name a segswarm-tracker the test runs;
//! the mirror daemon (`segswarm mirror`'s, in the test process) picks its video by `most-views`,
//! copies it verified and seeds it in the players' swarm (p2p-media-loader 2.2 ids, as PeerTube
//! 7.1 to 8.x players); a page in headless Chromium with hls.js 1.6 and the npm
//! p2p-media-loader 2.2.2 configured as PeerTube's player (`tests/js/pml-2.2/`) plays the video
//! and takes most of its bytes from the mirror over WebRTC.
//!
//! Runs in a private network namespace with only `lo` (as root); needs ffmpeg, Chromium, node and
//! `npm ci` in tests/js and tests/js/pml-2.2.

use crate::peertube_origin;
use crate::segswarm_proc;
use crate::support;

use std::time::{Duration, Instant};

use peertube_origin::{make_vod_video, PeerTubeOrigin, PtResolution};
use segswarm::core::native::mirror::{
    DaemonSettings, MirrorConfig, MirrorDaemon, Strategy, StrategyConfig,
};
use segswarm_proc::{num, strings};

/// 40 s of video in 2 s segments.
const SEGMENTS: usize = 20;

#[test]
fn a_peertube_player_in_the_browser_takes_most_of_a_mirrored_video_from_the_mirror() {
    support::enter_private_network_namespace();
    support::check_browser_prerequisites(&support::E2E_PACKAGES);
    assert!(
        support::js_dir()
            .join("pml-2.2/node_modules/p2p-media-loader-hlsjs")
            .exists(),
        "npm packages missing: run `npm ci` in tests/js/pml-2.2"
    );
    let media = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let video = make_vod_video(
        media.path(),
        11,
        2 * SEGMENTS as u32,
        &[PtResolution::new(360, 480, 360, "500k")],
    );
    support::runtime().block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let tracker_url = format!("{url}/tracker/socket");
        let origin = PeerTubeOrigin::start(vec![video.clone()], "7.2.3").await;
        origin.set(|c| c.tracker_ws = Some(tracker_url.clone()));
        let config = MirrorConfig {
            origins: vec![origin.base.clone()],
            check_interval_secs: 3600,
            cache_dir: work.path().join("cache"),
            cache_bytes: 256 * 1024 * 1024,
            database: work.path().join("state.sqlite3"),
            listen: "127.0.0.1:0".parse().expect("address"),
            admin_listen: None,
            min_lifetime_floor_secs: 1,
            strategies: vec![StrategyConfig {
                strategy: Strategy::MostViews,
                size_bytes: 128 * 1024 * 1024,
                min_lifetime_secs: 3600,
                min_views: None,
                min_peers: None,
            }],
            ..MirrorConfig::default()
        };
        let mut settings = DaemonSettings::default();
        settings.swarms.driver.rtc = support::loopback_rtc();
        settings.swarms.rescan_interval = Duration::from_millis(200);
        let mut daemon = MirrorDaemon::start(config, settings)
            .await
            .expect("the mirror");
        let report = daemon.check().await;
        assert_eq!(report.seeded, vec![video.uuid.clone()], "{report:?}");
        let end = Instant::now() + Duration::from_secs(30);
        while daemon
            .seeder_stats()
            .get(&video.uuid)
            .and_then(|s| s.streams.first().map(|s| s.segments))
            != Some(SEGMENTS)
        {
            assert!(Instant::now() < end, "the mirror did not load the video");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let hls = format!(
            "{}/static/streaming-playlists/hls/{}",
            origin.base, video.uuid
        );
        let args = strings(&[
            "--tracker",
            &tracker_url,
            "--playlist",
            &format!("{hls}/{}", video.master_file),
            "--segments-sha256",
            &format!("{hls}/{}", video.sha_file),
            "--page",
            "pml-2.2:peertube:0",
            "--seconds",
            "25",
        ]);
        let report =
            tokio::task::block_in_place(|| support::run_e2e_driver(&args, Duration::from_secs(70)));
        let s = &report["pages"][0]["stats"];
        let uploaded = daemon.seeder_stats()[&video.uuid].uploaded_bytes() as f64;
        let (http, p2p) = (num(s, "httpBytes"), num(s, "p2pBytes"));
        eprintln!(
            "PeerTube player (p2p-media-loader 2.2.2) + segswarm mirror: video {:.1} s, http \
             {http} B, p2p {p2p} B (share {:.2}); mirror uploaded {uploaded} B",
            num(s, "currentTime"),
            p2p / (http + p2p).max(1.0),
        );
        assert!(
            s["fatalErrors"].as_array().is_some_and(|a| a.is_empty()),
            "hls.js fatal errors: {s}"
        );
        assert!(num(s, "currentTime") >= 12.0, "the video played: {s}");
        assert_eq!(num(&s["validation"], "refused"), 0.0, "refused: {s}");
        assert!(p2p > http, "most bytes from the mirror: {s}");
        assert!(uploaded >= p2p * 0.9, "the P2P bytes came from the mirror");
        daemon.shutdown().await;
        tracker.shutdown().await;
    });
}
