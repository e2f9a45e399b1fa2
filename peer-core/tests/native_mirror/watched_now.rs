//! `most-watched-now` in a private network namespace: with two viewers in one video's swarm on a
//! real segswarm-tracker (the one the videos' `trackerUrls` name), the mirror's first check
//! scrapes the tracker and picks that video, the least viewed of three, and seeds it; once the
//! viewers are gone (the mirror's own peer not counted) and its lifetime is over, a check evicts
//! it and the mirror leaves its swarm. Needs root (namespace), `ip` and `ffmpeg`.

use std::time::Duration;

use crate::peertube_origin::{make_vod_video, PeerTubeOrigin, PtResolution, PtVideo};
use crate::support::{
    enter_private_network_namespace, loopback_rtc, runtime, start_tracker, wait_for_tracker_peers,
};
use segswarm_core::id_scheme::IdScheme;
use segswarm_core::native::mirror::{MirrorConfig, MirrorDaemon, Strategy, StrategyConfig};

use super::{strategy, test_config, test_settings};
use segswarm_core::native::viewer::{Viewer, ViewerConfig};

fn video(dir: &std::path::Path, seed: u64, views: u64) -> PtVideo {
    let mut v = make_vod_video(
        &dir.join(seed.to_string()),
        seed,
        4,
        &[PtResolution::new(240, 160, 120, "100k")],
    );
    v.views = views;
    v
}

#[test]
fn most_watched_now_picks_the_video_with_viewers() {
    enter_private_network_namespace();
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let videos = [
        video(src.path(), 41, 900),
        video(src.path(), 42, 500),
        video(src.path(), 43, 2),
    ];
    let watched = videos[2].clone();
    runtime().block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tracker, tracker_url) = start_tracker().await;
        let origin = PeerTubeOrigin::start(videos.to_vec(), "7.2.3").await;
        origin.set(|c| c.tracker_ws = Some(tracker_url.clone()));
        tokio::time::timeout(Duration::from_secs(60), async {
            // Two viewers as PeerTube 7.2's players, in the least viewed video's swarm.
            let hls = format!(
                "{}/static/streaming-playlists/hls/{}",
                origin.base, watched.uuid
            );
            let mut viewers = Vec::new();
            for _ in 0..2 {
                let mut vc = ViewerConfig::new(
                    format!("{hls}/{}", watched.master_file),
                    vec![tracker_url.clone()],
                );
                vc.id_scheme = IdScheme::Pml22;
                vc.driver.rtc = loopback_rtc();
                viewers.push(Viewer::open(vc).await.expect("open the stream"));
            }
            wait_for_tracker_peers(&tracker, |n| n == 2).await;

            let one_video = videos
                .iter()
                .map(|v| v.resolutions[0].size)
                .max()
                .unwrap_or(0)
                + 256 * 1024;
            let config = MirrorConfig {
                admin_listen: None,
                ..test_config(
                    work.path(),
                    64 * 1024 * 1024,
                    vec![origin.base.clone()],
                    vec![StrategyConfig {
                        min_lifetime_secs: 1,
                        min_peers: Some(1),
                        ..strategy(Strategy::MostWatchedNow, one_video)
                    }],
                )
            };
            let mut settings = test_settings();
            settings.fetch.metadata_allowance_bytes = 128 * 1024;
            settings.swarms.driver.rtc = loopback_rtc();
            let mut daemon = MirrorDaemon::start(config, settings).await.expect("daemon");
            let report = daemon.check().await;
            assert!(report.origin_failures.is_empty(), "{report:?}");
            assert_eq!(report.fetched, vec![watched.uuid.clone()], "{report:?}");
            assert_eq!(report.seeded, vec![watched.uuid.clone()], "{report:?}");
            wait_for_tracker_peers(&tracker, |n| n == 3).await;

            for v in viewers {
                v.close().await;
            }
            wait_for_tracker_peers(&tracker, |n| n == 1).await;
            tokio::time::sleep(Duration::from_millis(1100)).await;
            daemon.make_all_due();
            let report = daemon.check().await;
            assert_eq!(report.evicted, vec![watched.uuid.clone()], "{report:?}");
            assert!(report.fetched.is_empty(), "{report:?}");
            wait_for_tracker_peers(&tracker, |n| n == 0).await;
            assert!(daemon.served_videos().is_empty());
            daemon.shutdown().await;
        })
        .await
        .expect("within the time limit");
    });
}
