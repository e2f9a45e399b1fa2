//! Manual entries through the admin listener of a running daemon: a video added by watch URL is
//! served after the check the add triggers, is listed as `manual` with no expiry, survives a
//! restart, and once removed is no longer served nor listed; bad requests get clear errors; a
//! manual entry of the configuration is fetched at the first check; a request the loop cannot
//! take at once is answered `202` and done when it can.

use std::net::SocketAddr;

use segswarm_core::native::mirror::admin_client::send;
use segswarm_core::native::mirror::{AdminCommand, DaemonSettings, MirrorConfig, MirrorDaemon};
use tokio::sync::oneshot;

use super::{assert_served, get, test_config, test_settings, video, LIMIT};
use crate::peertube_origin::PeerTubeOrigin;

/// A daemon running its loop, stopped by [`Running::stop`].
struct Running {
    base: String,
    admin: SocketAddr,
    checks: tokio::sync::watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(config: &MirrorConfig, settings: &DaemonSettings) -> Self {
        let daemon = MirrorDaemon::start(config.clone(), settings.clone())
            .await
            .expect("daemon");
        let (stop, stopped) = oneshot::channel::<()>();
        Self {
            base: daemon.base_url(),
            admin: daemon.admin_addr().expect("admin listener"),
            checks: daemon.checks(),
            stop,
            task: tokio::spawn(daemon.run(async {
                let _ = stopped.await;
            })),
        }
    }

    /// Waits until `n` checks are done.
    async fn checked(&mut self, n: u64) {
        self.checks
            .wait_for(|c| *c >= n)
            .await
            .expect("daemon running");
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("daemon loop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_entry_added_served_kept_across_restart_and_removed() {
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let v1 = video(src.path(), 31, 1, 1);
    let v2 = video(src.path(), 32, 2, 2);
    let o = PeerTubeOrigin::start(vec![v1.clone(), v2.clone()], "7.2.3").await;
    let config = test_config(
        work.path(),
        16 * 1024 * 1024,
        vec![o.base.clone()],
        Vec::new(),
    );
    let settings = test_settings();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    tokio::time::timeout(LIMIT, async {
        let mut d = Running::start(&config, &settings).await;
        d.checked(1).await;
        let listed = send(d.admin, &AdminCommand::List).await.expect("list");
        assert_eq!(listed, serde_json::json!([]));

        // Added by its /w/<shortUUID> URL: recorded, fetched at the check it triggers, served.
        let added = send(d.admin, &AdminCommand::Add(o.watch_url(0)))
            .await
            .expect("add");
        assert_eq!(added["added"], v1.uuid.as_str(), "{added}");
        d.checked(2).await;
        assert_served(&http, &d.base, &[&v1]).await;
        let listed = send(d.admin, &AdminCommand::List).await.expect("list");
        let row = &listed[0];
        // Every GET of assert_served: its files and one Range request.
        assert_eq!(row["hits"], super::files_of(&v1).len() + 1, "{listed}");
        assert_eq!(
            (
                &row["uuid"],
                &row["strategy"],
                &row["until"],
                &row["served"]
            ),
            (
                &serde_json::json!(v1.uuid),
                &serde_json::json!("manual"),
                &serde_json::Value::Null,
                &serde_json::json!(true)
            ),
            "{listed}"
        );

        // Clear errors: not a video URL, an instance not followed, a video not manual.
        for (command, want) in [
            (AdminCommand::Add("not a url".into()), "400"),
            (
                AdminCommand::Add(format!("http://elsewhere.example/videos/watch/{}", v1.uuid)),
                "not a followed origin",
            ),
            (AdminCommand::Remove(o.watch_url(1)), "not a manual entry"),
        ] {
            let err = send(d.admin, &command).await.expect_err("refused");
            assert!(err.to_string().contains(want), "{err}");
        }
        d.stop().await;

        // Restart: still manual, served at once.
        let mut d = Running::start(&config, &settings).await;
        assert_served(&http, &d.base, &[&v1]).await;
        d.checked(1).await;
        let listed = send(d.admin, &AdminCommand::List).await.expect("list");
        assert_eq!(listed[0]["strategy"], "manual", "{listed}");

        // Removed: no longer served nor listed, and not back after a restart.
        let removed = send(d.admin, &AdminCommand::Remove(o.watch_url(0)))
            .await
            .expect("remove");
        assert_eq!(removed["removed"], v1.uuid.as_str(), "{removed}");
        let url = format!("{}{}/{}", d.base, v1.uuid, v1.master_file);
        assert_eq!(get(&http, &url, None).await.0, 404);
        d.stop().await;
        let d = Running::start(&config, &settings).await;
        let listed = send(d.admin, &AdminCommand::List).await.expect("list");
        assert_eq!(listed, serde_json::json!([]));
        let url = format!("{}{}/{}", d.base, v1.uuid, v1.master_file);
        assert_eq!(get(&http, &url, None).await.0, 404);
        d.stop().await;

        // A manual entry of the configuration: recorded and fetched at the first check.
        let config = MirrorConfig {
            manual: vec![o.watch_url(1)],
            ..config.clone()
        };
        let mut d = Running::start(&config, &settings).await;
        d.checked(1).await;
        assert_served(&http, &d.base, &[&v2]).await;
        // A body over `max_body_bytes`: refused.
        let big = "x".repeat(settings.admin.max_body_bytes + 1);
        let resp = http
            .post(format!("http://{}/mirrors", d.admin))
            .body(big)
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status().as_u16(), 413);
        d.stop().await;
    })
    .await
    .expect("within the time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_the_loop_cannot_take_at_once_is_queued_and_done() {
    let src = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let v = video(src.path(), 35, 1, 1);
    let o = PeerTubeOrigin::start(vec![v.clone()], "7.2.3").await;
    let config = test_config(
        work.path(),
        16 * 1024 * 1024,
        vec![o.base.clone()],
        Vec::new(),
    );
    let mut settings = test_settings();
    settings.admin.command_wait = std::time::Duration::ZERO;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    tokio::time::timeout(LIMIT, async {
        // The loop is not running yet: the add waits in the queue.
        let daemon = MirrorDaemon::start(config.clone(), settings.clone())
            .await
            .expect("daemon");
        let admin = daemon.admin_addr().expect("admin listener");
        let queued = send(admin, &AdminCommand::Add(o.watch_url(0)))
            .await
            .expect("queued");
        assert_eq!(queued["queued"], true, "{queued}");
        let base = daemon.base_url();
        let mut checks = daemon.checks();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async {
            let _ = stopped.await;
        }));
        // Served after a check (the first one, or the one the add triggers when the loop took
        // the add first).
        let master = format!("{base}{}/{}", v.uuid, v.master_file);
        loop {
            checks.changed().await.expect("daemon running");
            if get(&http, &master, None).await.0 == 200 {
                break;
            }
        }
        assert_served(&http, &base, &[&v]).await;
        let _ = stop.send(());
        task.await.expect("daemon loop");
    })
    .await
    .expect("within the time limit");
}
