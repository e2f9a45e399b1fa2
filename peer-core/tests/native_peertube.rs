//! `segswarm seed --peertube` foundations against a PeerTube-shaped origin on loopback: resolve a
//! watch URL through the REST API, mirror the VOD (single-file fragmented MP4 with byte ranges)
//! into a cache directory with every segment verified, fail over to the mirror, never write a
//! corrupted segment, refuse a video above the byte budget.

use crate::peertube_origin;

use std::path::Path;
use std::time::Duration;

use peertube_origin::{make_vod_video, PeerTubeOrigin, PtResolution, PtVideo};
use segswarm_core::id_scheme::IdScheme;
use segswarm_core::native::peertube::{
    MirrorError, MirrorSettings, PeerTubeClient, PeerTubeError, PeerTubeSettings, RemoteMirror,
};
use segswarm_core::peertube::version::VersionError;

const LIMIT: Duration = Duration::from_secs(60);

fn video(dir: &Path, seed: u64) -> PtVideo {
    make_vod_video(
        dir,
        seed,
        8,
        &[
            PtResolution::new(240, 320, 240, "300k"),
            PtResolution::new(360, 480, 360, "500k"),
        ],
    )
}

fn client() -> PeerTubeClient {
    PeerTubeClient::new(PeerTubeSettings {
        request_timeout: Duration::from_secs(10),
        ..PeerTubeSettings::default()
    })
    .expect("client")
}

/// Every file of the video's directory is in `cache`, byte for byte.
fn assert_identical(v: &PtVideo, cache: &Path) {
    let mut names = vec![v.master_file.clone(), v.sha_file.clone()];
    for r in &v.resolutions {
        names.push(r.playlist_file.clone());
        names.push(r.mp4_file.clone());
    }
    for n in names {
        let a = std::fs::read(v.dir.join(&n)).expect("origin file");
        let b = std::fs::read(cache.join(&n)).unwrap_or_else(|e| panic!("cached {n}: {e}"));
        assert!(a == b, "{n} differs from the origin's");
    }
    let leftovers: Vec<_> = std::fs::read_dir(cache)
        .expect("cache dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".segswarm-part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn segments_of(v: &PtVideo) -> u64 {
    v.resolutions
        .iter()
        .map(|r| {
            std::fs::read_to_string(v.dir.join(&r.playlist_file))
                .expect("playlist")
                .matches("#EXTINF")
                .count() as u64
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_watch_urls_and_mirrors_a_vod_verified() {
    let src = tempfile::tempdir().expect("tempdir");
    let v = video(src.path(), 1);
    let origin = PeerTubeOrigin::start(vec![v.clone()], "7.2.3").await;
    let c = client();
    tokio::time::timeout(LIMIT, async {
        // The three URL forms name the same video.
        for url in [
            origin.watch_url(0),
            format!("{}/videos/watch/{}/", origin.base, v.uuid),
            format!("{}/api/v1/videos/{}?x=1", origin.base, v.id),
        ] {
            let r = c
                .resolve(&url, None)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(r.details.uuid, v.uuid, "{url}");
            assert_eq!(r.details.short_uuid.as_deref(), Some(v.short_uuid.as_str()));
        }
        let r = c
            .resolve(&origin.watch_url(0), None)
            .await
            .expect("resolve");
        assert_eq!(r.server_version, "7.2.3");
        assert_eq!(
            r.id_scheme,
            IdScheme::Pml22,
            "PeerTube 7.2 players use p2p-media-loader 2.2"
        );
        assert!(r.master_url.ends_with(&v.master_file));
        assert!(r
            .segments_sha256_url
            .as_deref()
            .unwrap()
            .ends_with(&v.sha_file));
        assert_eq!(r.mirrors.len(), 1);
        assert_eq!(r.ws_trackers.len(), 1);
        assert!(r.ws_trackers[0].ends_with("/tracker/socket"));
        assert_eq!(r.details.hls().unwrap().files.len(), 2);

        let cache = tempfile::tempdir().expect("tempdir");
        let mut m = RemoteMirror::new(c.clone(), &r, cache.path(), MirrorSettings::default())
            .expect("mirror");
        let report = m.sync().await.expect("sync");
        assert!(report.ended, "a VOD is complete after one sync");
        assert_eq!(report.new_segments, segments_of(&v));
        assert_identical(&v, cache.path());
        assert_eq!(m.master_playlist_path(), cache.path().join(&v.master_file));
        let s = m.stats().clone();
        assert_eq!(s.segments_verified, segments_of(&v));
        assert_eq!(s.init_sections_unverified, 2);
        assert_eq!((s.mismatches, s.failovers), (0, 0));
        assert!(s.bases[0].bytes > 0 && s.bases[1].bytes == 0, "{s:?}");
        assert!(origin.controls().mirror_requests.is_empty());

        // A second sync finds everything cached and verified: no segment fetched again.
        let before = origin.controls().origin_requests.len();
        let again = m.sync().await.expect("second sync");
        assert_eq!(again.new_segments, 0);
        let fetched: Vec<String> = origin.controls().origin_requests[before..].to_vec();
        assert!(
            fetched.iter().all(|p| !p.ends_with(".mp4")),
            "segments fetched again: {fetched:?}"
        );
    })
    .await
    .expect("within the time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_mirror_when_the_origin_is_down() {
    let src = tempfile::tempdir().expect("tempdir");
    let v = video(src.path(), 2);
    let origin = PeerTubeOrigin::start(vec![v.clone()], "8.0.1").await;
    let c = client();
    tokio::time::timeout(LIMIT, async {
        let r = c
            .resolve(&origin.watch_url(0), None)
            .await
            .expect("resolve");
        origin.set(|c| c.origin_static_down = true);
        let cache = tempfile::tempdir().expect("tempdir");
        let mut m = RemoteMirror::new(c.clone(), &r, cache.path(), MirrorSettings::default())
            .expect("mirror");
        m.sync().await.expect("sync through the mirror");
        assert_identical(&v, cache.path());
        let s = m.stats();
        assert!(s.failovers >= 1, "{s:?}");
        assert_eq!(
            s.bases[0].failures, 1,
            "the origin is tried once, then skipped: {s:?}"
        );
        assert!(s.bases[1].bytes > 0);
        assert_eq!(origin.controls().origin_requests.len(), 1);

        // Origin and mirror down: a clear error, nothing half-written.
        origin.set(|c| c.mirror_down = true);
        let cache2 = tempfile::tempdir().expect("tempdir");
        let mut m2 = RemoteMirror::new(c.clone(), &r, cache2.path(), MirrorSettings::default())
            .expect("mirror");
        let err = m2.sync().await.unwrap_err();
        assert!(matches!(err, MirrorError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(std::fs::read_dir(cache2.path()).unwrap().count(), 0);
    })
    .await
    .expect("within the time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_writes_a_corrupted_segment() {
    let src = tempfile::tempdir().expect("tempdir");
    let v = video(src.path(), 3);
    let origin = PeerTubeOrigin::start(vec![v.clone()], "7.1.0").await;
    let c = client();
    // A byte in the middle of the 240p file (inside a media segment, past the init section).
    let r240 = v.resolutions.iter().find(|r| r.resolution == 240).unwrap();
    let target = (r240.mp4_file.clone(), r240.size / 2);
    tokio::time::timeout(LIMIT, async {
        let r = c
            .resolve(&origin.watch_url(0), None)
            .await
            .expect("resolve");
        origin.set(|c| c.corrupt = Some(target.clone()));

        // With the mirror: the bad range is refetched there, the result is the true file.
        let cache = tempfile::tempdir().expect("tempdir");
        let mut m = RemoteMirror::new(c.clone(), &r, cache.path(), MirrorSettings::default())
            .expect("mirror");
        m.sync().await.expect("sync");
        assert_identical(&v, cache.path());
        let s = m.stats();
        assert_eq!(s.mismatches, 1, "{s:?}");
        assert_eq!(s.bases[0].mismatches, 1);
        assert!(s.failovers >= 1);
        assert_eq!(
            origin.controls().mirror_requests.len(),
            1,
            "only the bad range from the mirror"
        );

        // Without the mirror: refused, and the file is not in the cache.
        origin.set(|c| c.mirror_down = true);
        let cache2 = tempfile::tempdir().expect("tempdir");
        let mut m2 = RemoteMirror::new(c.clone(), &r, cache2.path(), MirrorSettings::default())
            .expect("mirror");
        let err = m2.sync().await.unwrap_err();
        assert!(err.to_string().contains("segments-sha256.json"), "{err}");
        assert!(!cache2.path().join(&target.0).exists());
        let names: Vec<String> = std::fs::read_dir(cache2.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("240-fragmented")),
            "corrupted file or its temporary left: {names:?}"
        );
        assert!(
            !names.contains(&v.master_file),
            "no playlist without its segments"
        );
    })
    .await
    .expect("within the time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_video_above_the_budget_and_old_instances() {
    let src = tempfile::tempdir().expect("tempdir");
    let v = video(src.path(), 4);
    let origin = PeerTubeOrigin::start(vec![v.clone()], "6.3.3").await;
    let c = client();
    tokio::time::timeout(LIMIT, async {
        let err = c.resolve(&origin.watch_url(0), None).await.unwrap_err();
        assert!(
            matches!(err, PeerTubeError::Version(VersionError::TooOld(_))),
            "{err}"
        );
        assert!(err.to_string().contains("7.1 or newer"), "{err}");
        // --id-scheme overrides the choice.
        let r = c
            .resolve(&origin.watch_url(0), Some(IdScheme::PeerTube))
            .await
            .expect("resolve with an override");
        assert_eq!(r.id_scheme, IdScheme::PeerTube);
        origin.set(|c| c.server_version = "9.1.0".into());
        let r = c
            .resolve(&origin.watch_url(0), None)
            .await
            .expect("resolve");
        assert_eq!(r.id_scheme, IdScheme::PeerTube);

        let total: u64 = v.resolutions.iter().map(|r| r.size).sum();
        let cache = tempfile::tempdir().expect("tempdir");
        let settings = MirrorSettings {
            max_cache_bytes: total / 2,
            ..MirrorSettings::default()
        };
        let mut m = RemoteMirror::new(c.clone(), &r, cache.path(), settings).expect("mirror");
        let err = m.sync().await.unwrap_err();
        match &err {
            MirrorError::TooLarge { needed, budget } => {
                assert_eq!(*budget, total / 2);
                assert!(*needed >= total);
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        assert!(err.to_string().contains("--cache-bytes"), "{err}");
        assert!(
            origin.controls().origin_requests.is_empty(),
            "refused before fetching"
        );

        // Unknown videos and non-video URLs: clear errors.
        let missing = format!(
            "{}/w/{}",
            origin.base,
            peertube_origin::short_uuid(&peertube_origin::test_uuid(99))
        );
        let err = c.resolve(&missing, None).await.unwrap_err();
        assert!(
            matches!(err, PeerTubeError::Status { status: 404, .. }),
            "{err}"
        );
        let err = c
            .resolve(&format!("{}/about", origin.base), None)
            .await
            .unwrap_err();
        assert!(matches!(err, PeerTubeError::Url(_)), "{err}");
    })
    .await
    .expect("within the time limit");
}
