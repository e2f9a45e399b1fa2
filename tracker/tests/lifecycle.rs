//! The daemon as an operator runs it: `--print-config`, config errors with file and line, JSON
//! logs, and graceful shutdown on SIGTERM and SIGINT with close frames.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;
use segswarm_tracker::config::Config;

fn tracker_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_segswarm-tracker"));
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

#[test]
fn print_config_prints_every_default_and_the_file_overrides() {
    let out = tracker_command()
        .arg("--print-config")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    for section in [
        "[server]",
        "[protocol]",
        "[limits]",
        "[access]",
        "[metrics]",
    ] {
        assert!(text.contains(section), "{section} missing from:\n{text}");
    }
    let printed = Config::from_toml(&text).expect("--print-config output is a valid config");
    assert_eq!(printed, Config::default());
    assert!(text.contains("max_offers = 10"), "{text}");
    assert!(text.contains("0.0.0.0:8000"), "{text}");

    let dir = temp_dir();
    let path = write_file(
        dir.path(),
        "t.toml",
        "[protocol]\nmax_offers = 3\n[limits]\nmax_peers_per_swarm = 77\n",
    );
    let out = tracker_command()
        .arg("--config")
        .arg(&path)
        .args([
            "--listen",
            "127.0.0.1:9999",
            "--listen",
            "[::1]:9998",
            "--print-config",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let printed = Config::from_toml(&String::from_utf8(out.stdout).unwrap()).expect("valid");
    let mut expected = Config::default();
    expected.protocol.max_offers = 3;
    expected.limits.max_peers_per_swarm = 77;
    expected.server.listen = vec![
        "127.0.0.1:9999".parse().unwrap(),
        "[::1]:9998".parse().unwrap(),
    ];
    assert_eq!(printed, expected);
}

#[test]
fn a_bad_config_file_is_reported_with_file_and_line() {
    let dir = temp_dir();
    let path = write_file(
        dir.path(),
        "bad.toml",
        "[protocol]\nmax_offers = 3\nmax_oferz = 4\n",
    );
    let out = tracker_command()
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "a bad config must not start the daemon"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3", path.display())),
        "file and line in: {stderr}"
    );
    assert!(stderr.contains("max_oferz"), "{stderr}");
}

#[tokio::test]
async fn json_logs_are_one_json_object_a_line() {
    let tracker =
        Tracker::start_with_args(temp_dir(), "", &["127.0.0.1:0"], &["--log-format", "json"]);
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(Id::random(), Id::random(), Some("started"), None))
        .await;
    let lines = tracker.log_lines();
    assert!(!lines.is_empty());
    for line in lines {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
    }
}

async fn graceful_shutdown_on(signal: libc::c_int) {
    let mut tracker = Tracker::start("[server]\nshutdown_grace_secs = 3\n");
    let ih = Id::random();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = tracker.ws().await;
        ws.announce_ok(&announce(ih, Id::random(), Some("started"), None))
            .await;
        clients.push(ws);
    }
    tracker.signal(signal);
    for (i, ws) in clients.iter_mut().enumerate() {
        match ws.next_event(STEP).await {
            Event::Close(_) => {}
            other => panic!("client {i}: expected a close frame on shutdown, got {other:?}"),
        }
    }
    let status = tracker.wait_exit(Duration::from_secs(6)).await;
    assert!(
        status.success(),
        "exit status after signal {signal}: {status}"
    );
    // The final counters are in the log: at least our 3 announces came in.
    let messages_in = tracker
        .wait_log("final counters logged", |l| l.contains("messages_in="))
        .await;
    let value: u64 = messages_in
        .split("messages_in=")
        .nth(1)
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a count after messages_in= in {messages_in}"));
    assert!(value >= 3, "{messages_in}");
    // No new connections once it is gone.
    assert!(tcp_connect(tracker.addr(), None).await.is_err());
}

#[tokio::test]
async fn sigterm_sends_close_frames_and_exits_cleanly() {
    graceful_shutdown_on(libc::SIGTERM).await;
}

#[tokio::test]
async fn sigint_sends_close_frames_and_exits_cleanly() {
    graceful_shutdown_on(libc::SIGINT).await;
}

#[tokio::test]
async fn the_workers_setting_is_used() {
    let tracker = Tracker::start("[server]\nworkers = 3\n");
    let line = tracker
        .wait_log("the started line names the workers", |l| {
            l.contains("workers=")
        })
        .await;
    assert!(line.contains("workers=3"), "{line}");
}
