//! The tracker embedded as a library: `Server::start`, `local_addrs`, `reload` and `shutdown`, as a
//! program that hosts the tracker inside its own tokio runtime uses them.

use crate::common;

use common::*;
use segswarm_tracker::config::Config;
use segswarm_tracker::server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_serve_reload_and_shut_down_in_process() {
    let dir = temp_dir();
    let (a, b) = (Id::random(), Id::random());
    let allow = write_file(dir.path(), "allow.txt", &format!("{}\n", a.hex()));
    let mut config = Config::default();
    config.server.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    config.access.info_hash_allow_file = Some(allow.clone());
    let server = Server::start(config).await.expect("start");
    let addrs = server.local_addrs();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs.iter().all(|a| a.port() != 0), "real ports: {addrs:?}");

    // Both listeners serve the same swarms.
    let mut v4 = Ws::connect(addrs[0]).await;
    let mut v6 = Ws::connect(addrs[1]).await;
    v4.announce_ok(&announce(a, Id::random(), Some("started"), None))
        .await;
    assert_eq!(scrape_counts(&mut v6, a).await, (0, 1));
    let refused = v6
        .request(&announce(b, Id::random(), Some("started"), None))
        .await;
    assert_failure(&refused, "info_hash is not allowed on this tracker");

    // reload() re-reads the list, as SIGHUP does for the daemon.
    std::fs::write(&allow, format!("{}\n{}\n", a.hex(), b.hex())).unwrap();
    server.reload();
    v6.announce_ok(&announce(b, Id::random(), Some("started"), None))
        .await;

    // shutdown() closes every connection with a close frame and returns.
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .expect("shutdown returns within the grace period");
    for ws in [&mut v4, &mut v6] {
        match ws.next_event(STEP).await {
            Event::Close(_) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    assert!(
        tcp_connect(addrs[0], None).await.is_err(),
        "still accepting"
    );
}
