//! Access control of the real daemon: info_hash allow list (private mode) and deny list, both
//! reloaded on SIGHUP with a broken file keeping the previous list; Origin allow and deny lists.

use crate::common;

use common::*;
use serde_json::Value;

const DENIED: &str = "info_hash is not allowed on this tracker";

/// Announces `ih` on a fresh connection and returns the reply.
async fn try_announce(tracker: &Tracker, ih: Id) -> Value {
    let mut ws = tracker.ws().await;
    ws.request(&announce(ih, Id::random(), Some("started"), None))
        .await
}

fn is_ok(reply: &Value) -> bool {
    reply.get("failure reason").is_none() && reply["action"] == "announce"
}

#[tokio::test]
async fn private_mode_allow_list_is_reloaded_on_sighup_and_a_bad_file_keeps_the_old_list() {
    let dir = temp_dir();
    let a = Id::random();
    // b is written in the 20-character form clients send, so it must be printable ASCII.
    let b = Id(*b"segswarm-allowlist-b");
    let c = Id::random();
    let allow = write_file(
        dir.path(),
        "allow.txt",
        &format!("# videos of this instance\n{}  # first video\n\n", a.hex()),
    );
    let config = format!(
        "[access]\ninfo_hash_allow_file = {:?}\n",
        allow.display().to_string()
    );
    let tracker = Tracker::start_in(dir, &config, &["127.0.0.1:0"]);

    assert!(is_ok(&try_announce(&tracker, a).await));
    let refused = try_announce(&tracker, b).await;
    assert_failure(&refused, DENIED);
    assert_eq!(refused["info_hash"], b.bin(), "{refused}");
    assert_eq!(refused["action"], "announce", "{refused}");
    assert!(wait_errors(&tracker, "denied_info_hash", 1.0).await >= 1.0);

    // The HTTP tracker obeys the same list.
    let http = tracker
        .get(&format!(
            "/announce?info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left=0&compact=1",
            b.url(),
            Id::random().url()
        ))
        .await;
    let body = http.bencode();
    assert_eq!(
        body.get("failure reason").and_then(|v| v.as_str()),
        Some(DENIED),
        "{body:?}"
    );

    // Add b (as its 20-character string) and reload.
    std::fs::write(&allow, format!("{}\n{}\n", a.hex(), b.bin())).unwrap();
    tracker.signal(libc::SIGHUP);
    eventually("b allowed after SIGHUP", STEP, || async {
        is_ok(&try_announce(&tracker, b).await).then_some(())
    })
    .await;
    assert_failure(&try_announce(&tracker, c).await, DENIED);

    // A broken file: reported with file and line, and the previous list stays in force.
    std::fs::write(
        &allow,
        format!("{}\nnot-an-info-hash\n{}\n", a.hex(), c.hex()),
    )
    .unwrap();
    tracker.signal(libc::SIGHUP);
    let where_ = format!("{}:2", allow.display());
    let line = tracker
        .wait_log("the bad line reported", |l| l.contains(&where_))
        .await;
    assert!(line.contains("not-an-info-hash"), "{line}");
    assert!(is_ok(&try_announce(&tracker, a).await));
    assert!(is_ok(&try_announce(&tracker, b).await));
    assert_failure(&try_announce(&tracker, c).await, DENIED);
}

#[tokio::test]
async fn deny_list_refuses_listed_info_hashes_and_is_reloaded_on_sighup() {
    let dir = temp_dir();
    let (d, e) = (Id::random(), Id::random());
    let deny = write_file(
        dir.path(),
        "deny.txt",
        &format!("{}\n", d.hex().to_uppercase()),
    );
    let config = format!(
        "[access]\ninfo_hash_deny_file = {:?}\n",
        deny.display().to_string()
    );
    let tracker = Tracker::start_in(dir, &config, &["127.0.0.1:0"]);

    assert_failure(&try_announce(&tracker, d).await, DENIED);
    assert!(is_ok(&try_announce(&tracker, e).await));

    std::fs::write(&deny, format!("{}\n{}\n", d.hex(), e.hex())).unwrap();
    tracker.signal(libc::SIGHUP);
    eventually("e denied after SIGHUP", STEP, || async {
        let reply = try_announce(&tracker, e).await;
        (reply.get("failure reason").and_then(Value::as_str) == Some(DENIED)).then_some(())
    })
    .await;

    // A broken deny file keeps d and e denied.
    std::fs::write(&deny, "0123\n").unwrap();
    tracker.signal(libc::SIGHUP);
    let where_ = format!("{}:1", deny.display());
    tracker
        .wait_log("the bad line reported", |l| l.contains(&where_))
        .await;
    assert_failure(&try_announce(&tracker, d).await, DENIED);
    assert_failure(&try_announce(&tracker, e).await, DENIED);
    assert!(is_ok(&try_announce(&tracker, Id::random()).await));
    assert!(tracker.metrics().await.errors("denied_info_hash") >= 4.0);
}

#[tokio::test]
async fn origin_allow_list_admits_only_listed_origins() {
    let tracker = Tracker::start(
        "[access]\norigin_allow = [\"https://video.example\", \"http://localhost:9000\"]\n",
    );
    let probe = announce(Id::random(), Id::random(), Some("started"), None);
    for origin in ["https://video.example", "http://localhost:9000"] {
        // A peer of its own per connection: the previous socket may not be closed on the
        // tracker's side yet, and a live peer_id is refused to another connection.
        let probe = announce(Id::random(), Id::random(), Some("started"), None);
        let mut ws = Ws::try_connect(
            tracker.addr(),
            WsOptions {
                origin: Some(origin),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("origin {origin}: {e}"));
        ws.announce_ok(&probe).await;
    }
    for origin in ["https://evil.example", "https://video.example.evil.example"] {
        let attempt = Ws::try_connect(
            tracker.addr(),
            WsOptions {
                origin: Some(origin),
                ..Default::default()
            },
        )
        .await;
        assert_refused(attempt, "origin not allowed", &probe).await;
    }
    assert!(wait_errors(&tracker, "origin_denied", 2.0).await >= 2.0);
}

#[tokio::test]
async fn origin_deny_list_refuses_listed_origins() {
    let tracker = Tracker::start("[access]\norigin_deny = [\"https://leech.example\"]\n");
    let probe = announce(Id::random(), Id::random(), Some("started"), None);
    let attempt = Ws::try_connect(
        tracker.addr(),
        WsOptions {
            origin: Some("https://leech.example"),
            ..Default::default()
        },
    )
    .await;
    assert_refused(attempt, "origin not allowed", &probe).await;
    // Other origins, and clients that send none (native apps), are served.
    let mut ok = Ws::try_connect(
        tracker.addr(),
        WsOptions {
            origin: Some("https://fine.example"),
            ..Default::default()
        },
    )
    .await
    .expect("another origin");
    ok.announce_ok(&probe).await;
    let mut native = tracker.ws().await;
    native
        .announce_ok(&announce(Id::random(), Id::random(), None, None))
        .await;
    assert!(wait_errors(&tracker, "origin_denied", 1.0).await >= 1.0);
}
