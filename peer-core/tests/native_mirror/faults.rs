//! Faults of the disk: a cached file truncated while the daemon is stopped is not served after
//! the restart and is fetched again at the next check; a cache budget with room for one picked
//! video only: the other is not fetched at all (reported, counted in
//! `segswarm_mirror_cache_full_total`), the budget holds, and what is cached is still served.

use segswarm_core::native::mirror::{MirrorConfig, MirrorDaemon, Strategy};

use super::{assert_served, bytes_of, get, strategy, test_config, test_settings, video, LIMIT};
use crate::peertube_origin::{PeerTubeOrigin, PtVideo};

fn config(work: &std::path::Path, origin: &str, cache_bytes: u64) -> MirrorConfig {
    MirrorConfig {
        admin_listen: None,
        ..test_config(
            work,
            cache_bytes,
            vec![origin.to_owned()],
            vec![strategy(Strategy::MostViews, cache_bytes)],
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_file_is_not_served_and_fetched_again() {
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let v = video(src.path(), 61, 10, 1);
    let o = PeerTubeOrigin::start(vec![v.clone()], "7.2.3").await;
    let config = config(work.path(), &o.base, 16 * 1024 * 1024);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    tokio::time::timeout(LIMIT, async {
        let mut daemon = MirrorDaemon::start(config.clone(), test_settings())
            .await
            .expect("daemon");
        let report = daemon.check().await;
        assert_eq!(report.fetched, [v.uuid.as_str()], "{report:?}");
        daemon.shutdown().await;

        let mp4 = &v.resolutions[0].mp4_file;
        let file = config.cache_dir.join(&v.uuid).join(mp4);
        let len = std::fs::metadata(&file).expect("cached").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_len(len / 2))
            .expect("truncate");

        let mut daemon = MirrorDaemon::start(config.clone(), test_settings())
            .await
            .expect("daemon");
        assert!(daemon.served_videos().is_empty());
        let base = daemon.base_url();
        let (status, _) = get(&http, &format!("{base}{}/{mp4}", v.uuid), None).await;
        assert_eq!(status, 404);
        let report = daemon.check().await;
        assert_eq!(report.fetched, [v.uuid.as_str()], "{report:?}");
        assert_served(&http, &base, &[&v]).await;
        daemon.shutdown().await;
    })
    .await
    .expect("within the time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_too_small_for_a_picked_video_fetches_nothing_of_it_and_keeps_serving() {
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let v1 = video(src.path(), 71, 100, 1);
    let v2 = video(src.path(), 72, 50, 2);
    let o = PeerTubeOrigin::start(vec![v1.clone(), v2.clone()], "7.2.3").await;
    let allowance = test_settings().fetch.metadata_allowance_bytes;
    let (big, small) = (
        bytes_of(&v1).max(bytes_of(&v2)),
        bytes_of(&v1).min(bytes_of(&v2)),
    );
    // Room for either video, not both: the strategy's budget (which counts the videos' sizes
    // only) takes both, the cache (which also holds their playlists and manifest, reserved as
    // the metadata allowance for each fetch) holds one.
    let config = config(work.path(), &o.base, big + allowance + small / 2);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    tokio::time::timeout(LIMIT, async {
        let mut daemon = MirrorDaemon::start(config.clone(), test_settings())
            .await
            .expect("daemon");
        let before = o.controls().origin_requests.len();
        let report = daemon.check().await;
        assert_eq!(report.fetched.len(), 1, "{report:?}");
        assert_eq!(report.cache_full.len(), 1, "{report:?}");
        let (fetched, full) = if report.fetched[0] == v1.uuid {
            (&v1, &v2)
        } else {
            (&v2, &v1)
        };
        assert_eq!(report.cache_full[0], full.uuid);
        // Not one byte of the video that does not fit was asked for.
        let asked: Vec<String> = o.controls().origin_requests[before..].to_vec();
        assert!(
            asked
                .iter()
                .all(|r| !r.contains(&full.resolutions[0].mp4_file)),
            "{asked:?}"
        );
        let usage = daemon.cache().usage();
        assert!(
            usage.stored <= usage.budget && usage.reserved == 0,
            "{usage:?}"
        );
        let text = daemon.metrics().prometheus_text();
        assert!(
            text.contains("segswarm_mirror_cache_full_total 1"),
            "{text}"
        );

        // The next check: still no room, still serving.
        daemon.make_all_due();
        let report = daemon.check().await;
        assert_eq!(report.cache_full, [full.uuid.as_str()], "{report:?}");
        assert_served(&http, &daemon.base_url(), &[fetched as &PtVideo]).await;
        daemon.shutdown().await;
    })
    .await
    .expect("within the time limit");
}
