//! Interop with a client this project did not write: the npm `bittorrent-tracker` client, bundled
//! for the browser, runs in two headless Chromium pages (driven by `tests/js/tracker-interop.mjs`
//! through playwright-core). Both announce one info_hash to segswarm-tracker, exchange a WebRTC
//! offer and answer through it, open a data channel and pass a message each way, then scrape.
//!
//! The test process first moves into a network namespace of its own with only `lo` up, so the
//! tracker, the pages and the WebRTC traffic stay on a private loopback. Needs root (or
//! CAP_SYS_ADMIN), `ip`, `node`, Chromium at /usr/bin/chromium (or `$CHROMIUM`) and
//! `npm ci` run in tests/js (`.ci/run` does all of this).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use segswarm_tracker::config::Config;
use segswarm_tracker::server::Server;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for the node script (it has its own 60 s watchdog).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Moves this process (the current thread and every thread or child it starts afterwards) into a
/// new network namespace and brings its loopback interface up.
fn enter_private_network_namespace() {
    // SAFETY: unshare(2) with a flag constant; no memory is passed.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        panic!(
            "unshare(CLONE_NEWNET) failed: {err}. This test runs the browser in a private network \
             namespace and needs root or CAP_SYS_ADMIN (run it as root, as .ci/run does)."
        );
    }
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap_or_else(|e| panic!("running `ip link set lo up` (package iproute2): {e}"));
    assert!(status.success(), "`ip link set lo up` failed: {status}");
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn check_prerequisites() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium} (apt-get install chromium, or set CHROMIUM)"
    );
    assert!(
        js_dir().join("node_modules/playwright-core").exists()
            && js_dir().join("node_modules/bittorrent-tracker").exists(),
        "npm packages missing: run `npm ci` in {}",
        js_dir().display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` is needed to run tests/js/tracker-interop.mjs: {node:?}"
    );
}

/// Runs the interop script against `url` and returns its JSON report and exit status.
fn run_script(url: &str) -> (Value, std::process::ExitStatus) {
    let mut child = Command::new("node")
        .arg("tracker-interop.mjs")
        .arg(url)
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tracker-interop.mjs did not finish within {SCRIPT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout)
        .expect("read the script's output");
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no JSON report from the script (status {status}): {stdout}"));
    (report, status)
}

/// GET `path` over plain HTTP/1.1.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("HTTP response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_owned()
}

/// The value of one Prometheus sample, e.g. `segswarm_messages_out_total{kind="offer"}`.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn browser_webtorrent_clients_connect_through_segswarm_tracker() {
    enter_private_network_namespace();
    check_prerequisites();
    // Built after unshare, so its threads share the new namespace.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut config = Config::default();
        config.server.listen = vec!["127.0.0.1:0".parse().unwrap()];
        let server = Server::start(config).await.expect("start the tracker");
        let addr = server.local_addrs()[0];
        let url = format!("ws://{addr}");

        let (report, status) = tokio::task::spawn_blocking(move || run_script(&url))
            .await
            .expect("script thread");
        eprintln!("interop report: {report:#}");
        assert!(
            status.success(),
            "tracker-interop.mjs failed ({status}): {report}"
        );
        assert_eq!(report["ok"], true, "{report}");
        let peers = report["peers"].as_array().expect("peers");
        assert_eq!(peers.len(), 2, "{report}");
        for (me, other) in [(&peers[0], &peers[1]), (&peers[1], &peers[0])] {
            assert_eq!(me["announced"], true, "announce answered: {me}");
            assert_eq!(me["connected"], true, "data channel open: {me}");
            assert_eq!(
                me["peer_id"], other["peerId"],
                "connected to the other page: {me}"
            );
            assert_eq!(
                me["received"].as_str(),
                Some(format!("hello from {}", other["name"].as_str().unwrap()).as_str()),
                "message over the data channel: {me}"
            );
            // The client's own scrape, answered by our tracker and parsed by the npm client.
            assert_eq!(
                me["scrape"]["info_hash"], report["info_hash"],
                "scrape: {me}"
            );
            assert!(
                me["scrape"]["incomplete"].as_u64().is_some_and(|n| n >= 1),
                "scrape counts this swarm's leechers: {me}"
            );
        }

        // The signalling went through our tracker.
        let metrics = http_get(addr, "/metrics").await;
        let announces = sample(&metrics, "segswarm_messages_in_total{kind=\"announce\"}");
        let offers_out = sample(&metrics, "segswarm_messages_out_total{kind=\"offer\"}");
        let answers_out = sample(&metrics, "segswarm_messages_out_total{kind=\"answer\"}");
        assert!(
            announces >= 2.0,
            "announces received: {announces}\n{metrics}"
        );
        assert!(offers_out >= 1.0, "offers relayed: {offers_out}\n{metrics}");
        assert!(
            answers_out >= 1.0,
            "answers relayed: {answers_out}\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, "segswarm_errors_total{kind=\"unknown_offer\"}"),
            0.0,
            "the browser's answer matched an offer the tracker delivered"
        );
        let stats: Value =
            serde_json::from_str(&http_get(addr, "/stats.json").await).expect("stats.json");
        eprintln!("stats after the run: {stats}");

        server.shutdown().await;
    });
}
