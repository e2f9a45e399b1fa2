//! A configuration reloaded while running: a larger strategy budget picks one more video at
//! the next check, a changed listen address is reported as waiting for a restart (the base URL
//! unchanged), an invalid configuration changes nothing, and an origin added through the
//! running loop's reloader (what SIGHUP does) is read and mirrored at once.

use segswarm_core::native::mirror::{MirrorConfig, MirrorDaemon, Strategy, StrategyConfig};

use super::{assert_served, bytes_of, strategy, test_config, test_settings, video, LIMIT};
use crate::peertube_origin::PeerTubeOrigin;

fn most_views(size_bytes: u64) -> StrategyConfig {
    strategy(Strategy::MostViews, size_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_strategies_and_origins_and_reports_restart_settings() {
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let a1 = video(src.path(), 41, 100, 1);
    let a2 = video(src.path(), 42, 50, 2);
    let b1 = video(src.path(), 51, 80, 1);
    let slack = bytes_of(&a1).min(bytes_of(&a2)) / 2;
    let a = PeerTubeOrigin::start(vec![a1.clone(), a2.clone()], "7.2.3").await;
    let b = PeerTubeOrigin::start(vec![b1.clone()], "7.2.3").await;
    let config = MirrorConfig {
        admin_listen: None,
        ..test_config(
            work.path(),
            16 * 1024 * 1024,
            vec![a.base.clone()],
            vec![most_views(bytes_of(&a1) + slack)],
        )
    };
    let settings = test_settings();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    tokio::time::timeout(LIMIT, async {
        let mut daemon = MirrorDaemon::start(config.clone(), settings.clone())
            .await
            .expect("daemon");
        let report = daemon.check().await;
        assert_eq!(report.fetched, [a1.uuid.as_str()], "{report:?}");

        // A larger budget applies at once; the listen address waits for a restart.
        let base = daemon.base_url();
        let bigger = MirrorConfig {
            strategies: vec![most_views(bytes_of(&a1) + bytes_of(&a2) + slack)],
            listen: "127.0.0.1:1".parse().expect("address"),
            ..config.clone()
        };
        let reloaded = daemon.reload(bigger.clone()).expect("reload");
        assert_eq!(reloaded.applied, ["strategies"]);
        assert_eq!(reloaded.ignored_until_restart, ["listen"]);
        assert_eq!(daemon.base_url(), base);
        daemon.make_all_due();
        let report = daemon.check().await;
        assert_eq!(report.fetched, [a2.uuid.as_str()], "{report:?}");

        // Invalid: refused, nothing changed.
        let invalid = MirrorConfig {
            cache_bytes: 0,
            ..bigger.clone()
        };
        assert!(daemon.reload(invalid).is_err());
        assert_eq!(daemon.cache().usage().budget, config.cache_bytes);

        // Through the running loop: origin B added, read and mirrored at once.
        let mut checks = daemon.checks();
        let done = *checks.borrow();
        let reloader = daemon.reloader();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async {
            let _ = stopped.await;
        }));
        let with_b = MirrorConfig {
            origins: vec![a.base.clone(), b.base.clone()],
            strategies: vec![most_views(
                bytes_of(&a1) + bytes_of(&a2) + bytes_of(&b1) + slack,
            )],
            ..bigger
        };
        reloader.send(with_b).await.expect("loop running");
        checks
            .wait_for(|n| *n > done)
            .await
            .expect("daemon running");
        assert_served(&http, &base, &[&a1, &a2, &b1]).await;
        let _ = stop.send(());
        task.await.expect("loop");
    })
    .await
    .expect("within the time limit");
}
