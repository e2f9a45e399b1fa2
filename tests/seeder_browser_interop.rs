//! Interop with an unmodified web player: headless Chromium plays our HLS with hls.js and the npm
//! p2p-media-loader v2 (2.3, pinned in tests/js/package.json) through segswarm-tracker, and takes
//! P2P bytes from our native seeder. The page derives its swarm id from the playlist URL it loads
//! from our origin; the seeder derives the same from `--public-url`, so the two meet in one swarm
//! and speak the p2p-media-loader wire protocol.
//!
//! In-process: the tracker, the HTTP origin (`native::origin`) and the seeder (`native::seeder`);
//! the page is driven by `tests/js/e2e-run.mjs` (playwright-core). Everything runs in a private
//! network namespace with only `lo`. Needs root (or CAP_SYS_ADMIN), `ip`, `node`, `ffmpeg`,
//! Chromium at /usr/bin/chromium (or `$CHROMIUM`) and `npm ci` run in tests/js.

use crate::support;

use std::time::{Duration, Instant};

use segswarm::core::native::origin::{Origin, OriginConfig};
use segswarm::core::native::seeder::{Seeder, SeederConfig};
use serde_json::Value;
use support::StreamSpec;

/// Upper bound for the node driver (its own watchdog is 4 s shorter).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(70);

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

#[test]
fn browser_pml_player_takes_p2p_bytes_from_native_seeder() {
    support::enter_private_network_namespace();
    support::check_browser_prerequisites(&support::E2E_PACKAGES);
    let media = tempfile::tempdir().expect("temporary directory");
    support::make_vod(
        media.path(),
        &StreamSpec {
            seconds: 40,
            segment_seconds: 2,
            ..StreamSpec::default()
        },
    );
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
        let end = Instant::now() + Duration::from_secs(10);
        while seeder
            .stats()
            .streams
            .first()
            .is_none_or(|s| s.segments < 20)
        {
            assert!(Instant::now() < end, "seeder: {:?}", seeder.stats());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let args: Vec<String> = [
            "--tracker",
            &url,
            "--playlist",
            &playlist_url,
            "--page",
            "pml:viewer:0",
            "--seconds",
            "25",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
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
        let (http, p2p) = (num(&s["httpBytes"]), num(&s["p2pBytes"]));
        eprintln!(
            "pml viewer + native seeder: video {:.1}s, http {http} B, p2p {p2p} B (share {:.2}), \
             seeder uploaded {} B to {} peer(s); origin sent {origin_bytes} B",
            num(&s["currentTime"]),
            if http + p2p > 0.0 {
                p2p / (http + p2p)
            } else {
                0.0
            },
            stats.uploaded_bytes(),
            stats.streams[0].peers_connected_total,
        );
        assert!(
            s["fatalErrors"].as_array().is_some_and(|a| a.is_empty()),
            "hls.js fatal errors: {s}"
        );
        assert!(num(&s["currentTime"]) >= 12.0, "the video played: {s}");
        assert!(num(&s["peersMax"]) >= 1.0, "the page met the seeder: {s}");
        assert!(p2p > 0.0, "the page took no P2P bytes: {s}");
        assert!(
            stats.uploaded_bytes() as f64 >= p2p * 0.9,
            "the P2P bytes came from our seeder: uploaded {} vs page p2p {p2p}",
            stats.uploaded_bytes()
        );
    });
}
