//! The mirror daemon's loop against two PeerTube-shaped origins on loopback: it picks by
//! `most-views` and `recently-added` within each `size_bytes`, serves the picked videos over HTTP
//! byte-identical to the origin (Range included, nothing else reachable), keeps serving when an
//! origin's API is down, and after a restart serves them again at once with no new request for
//! any video file.

mod faults;
mod manual;
mod reload;
mod swarms;
mod watched_now;

use crate::peertube_origin;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use peertube_origin::{make_vod_video, PeerTubeOrigin, PtResolution, PtVideo};
use segswarm_core::native::mirror::{
    DaemonSettings, MirrorConfig, MirrorDaemon, Strategy, StrategyConfig,
};

const LIMIT: Duration = Duration::from_secs(120);

/// A valid configuration for a test working in `work`: a cache of `cache_bytes`, `origins` and
/// `strategies`, ports the system picks on loopback (the admin listener's too), no check unless the
/// test asks for one, and lifetimes as short as the strategies say.
fn test_config(
    work: &Path,
    cache_bytes: u64,
    origins: Vec<String>,
    strategies: Vec<StrategyConfig>,
) -> MirrorConfig {
    let config = MirrorConfig {
        origins,
        check_interval_secs: 3600,
        cache_dir: work.join("cache"),
        cache_bytes,
        database: work.join("state.sqlite3"),
        listen: "127.0.0.1:0".parse().expect("address"),
        admin_listen: Some("127.0.0.1:0".parse().expect("address")),
        min_lifetime_floor_secs: 1,
        strategies,
        ..MirrorConfig::default()
    };
    config.validate().expect("valid configuration");
    config
}

/// `strategy` within `size_bytes`, keeping what it picks for an hour.
fn strategy(strategy: Strategy, size_bytes: u64) -> StrategyConfig {
    StrategyConfig {
        strategy,
        size_bytes,
        min_lifetime_secs: 3600,
        min_views: None,
        min_peers: None,
    }
}

/// Daemon settings for the test videos: 256 KiB allowed beyond their files (playlists, manifest).
fn test_settings() -> DaemonSettings {
    let mut settings = DaemonSettings::default();
    settings.fetch.metadata_allowance_bytes = 256 * 1024;
    settings
}

fn video(dir: &Path, seed: u64, views: u64, published_day: u32) -> PtVideo {
    let mut v = make_vod_video(
        &dir.join(seed.to_string()),
        seed,
        4,
        &[PtResolution::new(240, 160, 120, "100k")],
    );
    v.views = views;
    v.published_at = format!("2025-06-{published_day:02}T10:00:00.000Z");
    v
}

fn bytes_of(v: &PtVideo) -> u64 {
    v.resolutions.iter().map(|r| r.size).sum()
}

fn files_of(v: &PtVideo) -> Vec<String> {
    let mut names = vec![v.master_file.clone(), v.sha_file.clone()];
    for r in &v.resolutions {
        names.push(r.playlist_file.clone());
        names.push(r.mp4_file.clone());
    }
    names
}

/// Requests for video files (origin and its redundancy), API calls excluded.
fn file_requests(o: &PeerTubeOrigin) -> usize {
    let c = o.controls();
    c.origin_requests.len() + c.mirror_requests.len()
}

async fn get(http: &reqwest::Client, url: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = http.get(url);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// The admin listener's `/stats.json` and `/metrics`: three fetches, three entries, and the
/// HTTP bytes of a video grow by what one more request of its file carried.
async fn assert_figures_move(http: &reqwest::Client, daemon: &MirrorDaemon, v: &PtVideo) {
    let admin = format!("http://{}", daemon.admin_addr().expect("admin listener"));
    let stats = |body: Vec<u8>| -> serde_json::Value {
        serde_json::from_slice(&body).expect("stats.json is JSON")
    };
    daemon.refresh_metrics();
    let (status, body) = get(http, &format!("{admin}/stats.json"), None).await;
    assert_eq!(status, 200);
    let before = stats(body);
    assert_eq!(before["fetches"], 3, "{before}");
    assert_eq!(before["fetch_failures"], 0, "{before}");
    assert_eq!(before["cache"]["entries"], 3, "{before}");
    assert!(before["cache"]["bytes"].as_u64() > Some(0), "{before}");
    let http_before = before["videos"][&v.uuid]["http_bytes"]
        .as_u64()
        .unwrap_or(0);
    let mp4 = &v.resolutions[0].mp4_file;
    let (_, got) = get(
        http,
        &format!("{}{}/{mp4}", daemon.base_url(), v.uuid),
        None,
    )
    .await;
    daemon.refresh_metrics();
    let after = stats(get(http, &format!("{admin}/stats.json"), None).await.1);
    assert_eq!(
        after["videos"][&v.uuid]["http_bytes"].as_u64(),
        Some(http_before + got.len() as u64),
        "{after}"
    );
    let (status, text) = get(http, &format!("{admin}/metrics"), None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).expect("text");
    let line = format!(
        "segswarm_mirror_http_bytes_total{{video=\"{}\"}} {}",
        v.uuid,
        http_before + got.len() as u64
    );
    assert!(text.contains(&line), "{line} not in\n{text}");
    assert!(text.contains("segswarm_mirror_fetches_total 3"), "{text}");
}

/// Every file of each video is served under `<base><uuid>/`, identical to the origin's.
async fn assert_served(http: &reqwest::Client, base: &str, videos: &[&PtVideo]) {
    for v in videos {
        for name in files_of(v) {
            let want = std::fs::read(v.dir.join(&name)).expect("origin file");
            let (status, got) = get(http, &format!("{base}{}/{name}", v.uuid), None).await;
            assert_eq!(status, 200, "{}/{name}", v.uuid);
            assert!(got == want, "{}/{name} differs from the origin's", v.uuid);
        }
        let mp4 = &v.resolutions[0].mp4_file;
        let want = std::fs::read(v.dir.join(mp4)).expect("mp4");
        let (status, got) = get(
            http,
            &format!("{base}{}/{mp4}", v.uuid),
            Some("bytes=10-99"),
        )
        .await;
        assert_eq!((status, got.as_slice()), (206, &want[10..100]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picks_by_strategy_serves_and_restarts_without_refetching() {
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    // Origin A: most viewed a1, newest a3. Origin B: second most viewed b1.
    let a1 = video(src.path(), 11, 100, 1);
    let a2 = video(src.path(), 12, 50, 2);
    let a3 = video(src.path(), 13, 5, 9);
    let b1 = video(src.path(), 21, 80, 1);
    let b2 = video(src.path(), 22, 1, 8);
    let b3 = video(src.path(), 23, 30, 3);
    let all = [&a1, &a2, &a3, &b1, &b2, &b3];
    let smallest = all.iter().map(|v| bytes_of(v)).min().expect("videos");
    let slack = smallest / 2;
    let a = PeerTubeOrigin::start(vec![a1.clone(), a2.clone(), a3.clone()], "7.2.3").await;
    let b = PeerTubeOrigin::start(vec![b1.clone(), b2.clone(), b3.clone()], "7.2.3").await;

    let config = test_config(
        work.path(),
        16 * 1024 * 1024,
        vec![a.base.clone(), b.base.clone()],
        vec![
            strategy(Strategy::MostViews, bytes_of(&a1) + bytes_of(&b1) + slack),
            StrategyConfig {
                min_views: Some(0),
                ..strategy(Strategy::RecentlyAdded, bytes_of(&a3) + slack)
            },
        ],
    );
    let settings = test_settings();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let picked: BTreeSet<String> = [&a1, &b1, &a3].iter().map(|v| v.uuid.clone()).collect();

    tokio::time::timeout(LIMIT, async {
        let mut daemon = MirrorDaemon::start(config.clone(), settings.clone())
            .await
            .expect("daemon");
        let report = daemon.check().await;
        assert!(report.origin_failures.is_empty(), "{report:?}");
        assert!(report.fetch_failures.is_empty(), "{report:?}");
        assert_eq!(
            report.fetched.iter().cloned().collect::<BTreeSet<_>>(),
            picked
        );
        assert_eq!(daemon.served_videos(), picked);
        let usage = daemon.cache().usage();
        assert!(
            usage.stored <= usage.budget && usage.reserved == 0,
            "{usage:?}"
        );
        let base = daemon.base_url();
        assert_served(&http, &base, &[&a1, &b1, &a3]).await;
        // Not picked, or not a recorded file: not served.
        let (status, _) = get(
            &http,
            &format!("{base}{}/{}", a2.uuid, a2.master_file),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = get(&http, &format!("{base}.fetching/{}", a1.uuid), None).await;
        assert_eq!(status, 404);
        assert_figures_move(&http, &daemon, &a1).await;

        // An origin whose API is down: reported, the cache still served, nothing evicted.
        b.set(|c| c.api_down = true);
        daemon.make_all_due();
        let report = daemon.check().await;
        assert_eq!(report.origin_failures.len(), 1, "{report:?}");
        assert!(report.origin_failures[0].1.contains(&b.base), "{report:?}");
        assert!(
            report.evicted.is_empty() && report.fetched.is_empty(),
            "{report:?}"
        );
        assert_served(&http, &base, &[&b1]).await;
        b.set(|c| c.api_down = false);
        daemon.shutdown().await;

        // Restart: served at once, no video file asked of either origin again.
        let before = (file_requests(&a), file_requests(&b));
        let mut daemon = MirrorDaemon::start(config.clone(), settings.clone())
            .await
            .expect("daemon");
        assert_eq!(daemon.served_videos(), picked);
        let base = daemon.base_url();
        assert_served(&http, &base, &[&a1, &b1, &a3]).await;
        let report = daemon.check().await;
        assert!(
            report.fetched.is_empty() && report.evicted.is_empty(),
            "{report:?}"
        );
        assert_eq!((file_requests(&a), file_requests(&b)), before);
        // No video's details asked again for what is held.
        let details_asked = a
            .controls()
            .api_requests
            .iter()
            .filter(|r| r.contains(&a1.uuid))
            .count();
        assert_eq!(
            details_asked, 3,
            "details and the fetch's resolve, once each; after the restart, the resolve that \
             seeds it"
        );
        daemon.shutdown().await;
    })
    .await
    .expect("within the time limit");
}
