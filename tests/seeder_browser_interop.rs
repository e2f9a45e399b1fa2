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

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use segswarm::core::native::origin::{Origin, OriginConfig};
use segswarm::core::native::rtc::RtcSettings;
use segswarm::core::native::seeder::{Seeder, SeederConfig};
use serde_json::Value;
use support::StreamSpec;

/// Upper bound for the node driver (its own watchdog is a little shorter).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(70);
const DRIVER_WATCHDOG_MS: &str = "65000";

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn check_prerequisites() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium} (apt-get install chromium, or set CHROMIUM)"
    );
    for package in [
        "playwright-core",
        "esbuild",
        "hls.js",
        "p2p-media-loader-hlsjs",
    ] {
        assert!(
            js_dir().join("node_modules").join(package).exists(),
            "npm package {package} missing: run `npm ci` in {}",
            js_dir().display()
        );
    }
}

/// Runs `node e2e-run.mjs ARGS` and returns its JSON report.
fn run_driver(args: &[String]) -> Value {
    let mut child = Command::new("node")
        .arg("e2e-run.mjs")
        .args(["--timeout-ms", DRIVER_WATCHDOG_MS])
        .args(args)
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node (is Node.js installed?)");
    let deadline = Instant::now() + DRIVER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("e2e-run.mjs did not finish within {DRIVER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout).expect("read the driver's output");
    }
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no JSON report from e2e-run.mjs (status {status}): {stdout}"));
    assert!(
        status.success() && report["ok"] == true,
        "e2e-run.mjs failed ({status}): {}",
        report["error"]
    );
    report
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

#[test]
fn browser_pml_player_takes_p2p_bytes_from_native_seeder() {
    support::enter_private_network_namespace();
    check_prerequisites();
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
        config.driver.rtc = RtcSettings {
            udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            include_loopback_candidates: true,
            ..RtcSettings::default()
        };
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
        let report = tokio::task::spawn_blocking(move || run_driver(&args))
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
