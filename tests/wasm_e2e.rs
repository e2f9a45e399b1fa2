//! Browser end to end: headless Chromium pages play HLS with hls.js and a P2P engine — the npm
//! p2p-media-loader v2 (`pml`) or the segswarm wasm package (`segswarm`) — through segswarm-tracker,
//! driven by `tests/js/e2e-run.mjs` (playwright-core, `/usr/bin/chromium`). Each test checks what a
//! viewer would see: the video's time advances, hls.js reports no fatal error, and the pages that
//! join later take bytes from their peers. The P2P shares are printed (`--nocapture`).
//!
//! Everything runs in a private network namespace with only `lo` (the tracker in-process, the page
//! and media server in the node driver, ffmpeg, the browser). Needs root (or CAP_SYS_ADMIN), `ip`,
//! `node`, `ffmpeg`, Chromium at /usr/bin/chromium (or `$CHROMIUM`) and `npm ci` run in tests/js;
//! the segswarm tests also need the wasm package built into wasm-peer/pkg/ (`.ci/run` does all of
//! this).

use crate::support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::StreamSpec;

/// Upper bound for one run of the node driver (its own watchdog is 4 s shorter).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(88);

fn pkg_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wasm-peer/pkg")
}

fn check_prerequisites(need_pkg: bool) {
    support::check_browser_prerequisites(&support::E2E_PACKAGES);
    if need_pkg {
        assert!(
            pkg_dir().join("package.json").exists(),
            "the segswarm wasm package is not built in {} (see wasm-peer/README.md; .ci/run builds it)",
            pkg_dir().display()
        );
    }
}

/// Runs `node e2e-run.mjs ARGS` and returns its JSON report; panics if it did not run through.
fn run_driver(args: &[String]) -> Value {
    support::run_e2e_driver(args, DRIVER_TIMEOUT)
}

/// The figures one page reported at the end of its run.
#[derive(Debug)]
struct PageResult {
    name: String,
    kind: String,
    http: u64,
    p2p: u64,
    uploaded: u64,
    peers_max: u64,
    current_time: f64,
    /// Video time gained between the first one-second sample and the last.
    advanced: f64,
    fatal: Vec<Value>,
    page_errors: Vec<Value>,
}

impl PageResult {
    fn share(&self) -> f64 {
        let total = self.http + self.p2p;
        if total == 0 {
            0.0
        } else {
            self.p2p as f64 / total as f64
        }
    }
}

/// The report's entry for page `name`.
fn page_entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["pages"]
        .as_array()
        .and_then(|pages| pages.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("page {name} missing from the report: {report}"))
}

fn page(report: &Value, name: &str) -> PageResult {
    let entry = page_entry(report, name);
    let s = &entry["stats"];
    assert!(s.is_object(), "page {name} reported nothing: {entry}");
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let times: Vec<f64> = entry["timeline"]
        .as_array()
        .map(|t| t.iter().filter_map(|x| x["currentTime"].as_f64()).collect())
        .unwrap_or_default();
    let advanced = match (times.first(), times.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0.0,
    };
    PageResult {
        name: name.to_owned(),
        kind: entry["kind"].as_str().unwrap_or("").to_owned(),
        http: n("httpBytes"),
        p2p: n("p2pBytes"),
        uploaded: n("uploadedBytes"),
        peers_max: n("peersMax"),
        current_time: s["currentTime"].as_f64().unwrap_or(0.0),
        advanced,
        fatal: s["fatalErrors"].as_array().cloned().unwrap_or_default(),
        page_errors: entry["page_errors"].as_array().cloned().unwrap_or_default(),
    }
}

/// Prints one line per page: bytes by source and the P2P share (the figures the README quotes).
fn print_shares(test: &str, pages: &[&PageResult]) {
    for p in pages {
        eprintln!(
            "{test}: page {} ({}): http {} B, p2p {} B, uploaded {} B, P2P share {:.1}%, peers max {}, played {:.1} s",
            p.name,
            p.kind,
            p.http,
            p.p2p,
            p.uploaded,
            100.0 * p.share(),
            p.peers_max,
            p.current_time
        );
    }
}

/// What a viewer sees on every page: playback advanced at least `min_played` seconds while the
/// page was sampled, no fatal hls.js error and no uncaught page error.
fn assert_played(p: &PageResult, min_played: f64) {
    assert!(
        p.advanced >= min_played,
        "page {} ({}): video time advanced only {:.1} s (to {:.1} s; expected >= {min_played} s)",
        p.name,
        p.kind,
        p.advanced,
        p.current_time
    );
    assert!(
        p.fatal.is_empty(),
        "page {} ({}): fatal hls.js errors {:?}",
        p.name,
        p.kind,
        p.fatal
    );
    assert!(
        p.page_errors.is_empty(),
        "page {} ({}): uncaught page errors {:?}",
        p.name,
        p.kind,
        p.page_errors
    );
}

/// The sum of a Prometheus counter's samples whose series starts with `series`.
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.split_whitespace().last())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

/// The signalling of the run went through our tracker: announces came in, offers and answers went out.
fn assert_tracker_relayed(metrics: &str) {
    let announces = counter(metrics, "segswarm_messages_in_total{kind=\"announce\"}");
    let offers = counter(metrics, "segswarm_messages_out_total{kind=\"offer\"}");
    let answers = counter(metrics, "segswarm_messages_out_total{kind=\"answer\"}");
    assert!(
        announces >= 2.0,
        "announces received: {announces}\n{metrics}"
    );
    assert!(offers >= 1.0, "offers relayed: {offers}\n{metrics}");
    assert!(answers >= 1.0, "answers relayed: {answers}\n{metrics}");
}

fn vod_spec(seconds: u32) -> StreamSpec {
    StreamSpec {
        seconds,
        segment_seconds: 2,
        ..StreamSpec::default()
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Starts segswarm-tracker in-process, runs the driver with `--tracker <it> --media <media>` and
/// `args`, and returns the report and the tracker's Prometheus text after the run.
fn run_with_tracker(media: &Path, args: Vec<String>) -> (Value, String) {
    let rt = support::runtime();
    rt.block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let mut all = strings(&["--tracker", &url, "--media"]);
        all.push(media.display().to_string());
        all.extend(args);
        let report = tokio::task::spawn_blocking(move || run_driver(&all))
            .await
            .expect("driver thread");
        let metrics = tracker.metrics_text();
        tracker.shutdown().await;
        (report, metrics)
    })
}

/// Pages `a` (engine `a_kind`, `pml` or `segswarm`) and `b` (`b_kind`, joining 8 s later) play one
/// 40 s VOD through segswarm-tracker for 24 s. Checks what every such run must show — both pages
/// played at least 12 s without errors, and the tracker relayed their offers and answers — prints
/// the shares under `test`, and returns both pages' figures for the test's own checks.
fn two_pages_play_vod(test: &str, a_kind: &str, b_kind: &str) -> (PageResult, PageResult) {
    support::enter_private_network_namespace();
    check_prerequisites(a_kind == "segswarm" || b_kind == "segswarm");
    let media = tempfile::tempdir().expect("temporary directory");
    support::make_vod(media.path(), &vod_spec(40));
    let (a_page, b_page) = (format!("{a_kind}:a:0"), format!("{b_kind}:b:8"));
    let (report, metrics) = run_with_tracker(
        media.path(),
        strings(&[
            "--playlist",
            "/media/index.m3u8",
            "--page",
            &a_page,
            "--page",
            &b_page,
            "--seconds",
            "24",
        ]),
    );
    let (a, b) = (page(&report, "a"), page(&report, "b"));
    print_shares(test, &[&a, &b]);
    assert_played(&a, 12.0);
    assert_played(&b, 12.0);
    assert_tracker_relayed(&metrics);
    (a, b)
}

/// Page `b`, which joined later, took part of the video from page `a`: both met a peer, `b`
/// received P2P bytes and `a` uploaded.
fn assert_later_page_took_from_first(a: &PageResult, b: &PageResult) {
    assert!(a.peers_max >= 1 && b.peers_max >= 1, "{a:?} {b:?}");
    assert!(b.p2p > 0, "the later page got no P2P bytes: {b:?}");
    assert!(a.uploaded > 0, "the first page uploaded nothing: {a:?}");
}

/// Two p2p-media-loader v2 pages (unmodified, from npm) play one VOD through segswarm-tracker; the
/// second joins 8 s later and takes part of the video from the first. This checks the harness, our
/// tracker with a real player, and the media before the wasm engine is involved.
#[test]
fn browser_pml_pages_share_vod_through_segswarm_tracker() {
    let (a, b) = two_pages_play_vod("pml+pml VOD", "pml", "pml");
    assert_later_page_took_from_first(&a, &b);
}

/// Two segswarm pages (hls.js + the wasm package) play one VOD; the second joins 8 s later and
/// takes part of the video from the first.
#[test]
fn browser_segswarm_pages_share_vod() {
    let (a, b) = two_pages_play_vod("segswarm+segswarm VOD", "segswarm", "segswarm");
    assert_later_page_took_from_first(&a, &b);
}

/// Three segswarm pages join a live stream (ffmpeg in real time, 2 s segments, a sliding playlist
/// of five) 4 s apart. The video advances on every page with no fatal error, and the swarm shares:
/// some page takes segments from its peers. (Three pages, because by default the engine seeds each
/// new live segment over HTTP from at least two peers of a swarm, `live_min_seeds`: in a swarm of
/// two both fetch every segment themselves.)
#[test]
fn browser_segswarm_pages_share_live() {
    support::enter_private_network_namespace();
    check_prerequisites(true);
    let media = tempfile::tempdir().expect("temporary directory");
    let spec = StreamSpec {
        segment_seconds: 2,
        ..StreamSpec::default()
    };
    let _ffmpeg = support::start_live(media.path(), &spec);
    assert!(
        support::wait_for_segments(&media.path().join("index.m3u8"), 3, Duration::from_secs(20)),
        "ffmpeg wrote no live playlist with three segments within 20 s"
    );
    let (report, metrics) = run_with_tracker(
        media.path(),
        strings(&[
            "--playlist",
            "/media/index.m3u8",
            "--page",
            "segswarm:a:0",
            "--page",
            "segswarm:b:4",
            "--page",
            "segswarm:c:8",
            "--seconds",
            "22",
        ]),
    );
    let pages = [page(&report, "a"), page(&report, "b"), page(&report, "c")];
    print_shares("segswarm live", &pages.iter().collect::<Vec<_>>());
    for p in &pages {
        assert_played(p, 10.0);
        assert!(p.peers_max >= 1, "{p:?}");
    }
    let p2p: u64 = pages.iter().map(|p| p.p2p).sum();
    assert!(
        p2p > 0,
        "no page got P2P bytes on the live stream: {pages:?}"
    );
    assert_tracker_relayed(&metrics);
}

/// The mixed swarm: a segswarm page and an unmodified p2p-media-loader v2 page play one VOD in one
/// swarm (same swarm id and info hash from the same playlist URL) and exchange segments both ways:
/// each page receives P2P bytes, which only the other page can have sent.
#[test]
fn browser_mixed_swarm_segswarm_and_pml_exchange_both_ways() {
    let (a, b) = two_pages_play_vod("mixed segswarm+pml VOD", "segswarm", "pml");
    assert!(
        b.p2p > 0,
        "the p2p-media-loader page got nothing from the segswarm page: {b:?}"
    );
    assert!(
        a.p2p > 0,
        "the segswarm page got nothing from the p2p-media-loader page: {a:?}"
    );
    assert!(a.uploaded > 0 && b.uploaded > 0, "{a:?} {b:?}");
}

/// Reads lines from a child's stdout on a thread; the lines so far are in the returned vector.
fn collect_lines(out: std::process::ChildStdout) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(mut v) = sink.lock() {
                v.push(line);
            }
        }
    });
    lines
}

/// A child started in a process group of its own (`process_group(0)`): dropping this stops the
/// whole group — SIGTERM, then SIGKILL after 3 s — so what the child started (serve.mjs's ffmpeg
/// and `segswarm seed`) ends with it even if the child cannot pass the signal on.
struct ProcessGroupGuard(support::ChildGuard);

impl Drop for ProcessGroupGuard {
    #[allow(unsafe_code)] // killpg(2) is an FFI call.
    fn drop(&mut self) {
        let Ok(group) = i32::try_from(self.0.child.id()) else {
            return;
        };
        // SAFETY: killpg(2) on the process group our own child leads (its pid, set by
        // process_group(0)); no memory is passed.
        unsafe {
            libc::killpg(group, libc::SIGTERM);
        }
        let _ = self.0.wait_timeout(Duration::from_secs(3));
        // SAFETY: as above.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}

/// One segswarm page plays a VOD whose origin and only other peer is a native seeder
/// (`segswarm seed --http`): the page takes bytes from the seeder over WebRTC, and the seeder's own
/// statistics count them as uploaded.
#[test]
fn browser_segswarm_page_takes_from_native_seeder() {
    support::enter_private_network_namespace();
    check_prerequisites(true);
    let media = tempfile::tempdir().expect("temporary directory");
    support::make_vod(media.path(), &vod_spec(40));
    let rt = support::runtime();
    rt.block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let port = support::free_port();
        let origin: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let mut child = Command::new(env!("CARGO_BIN_EXE_segswarm"))
            .args(["seed", "--tracker", &url, "--http", &origin.to_string()])
            .args(["--udp", "127.0.0.1:0", "--loopback-candidates"])
            .args(["--json", "--stats-every", "0"])
            .arg(media.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start segswarm seed");
        let lines = collect_lines(child.stdout.take().expect("seeder stdout"));
        let mut seeder = support::ChildGuard::new("segswarm seed", child);
        assert!(
            support::wait_for_listener(origin, Duration::from_secs(20)),
            "segswarm seed did not serve HTTP on {origin}"
        );
        let playlist = format!("http://{origin}/index.m3u8");
        let args = strings(&[
            "--tracker",
            &url,
            "--playlist",
            &playlist,
            "--page",
            "segswarm:a:0",
            "--seconds",
            "20",
        ]);
        let report = tokio::task::spawn_blocking(move || run_driver(&args))
            .await
            .expect("driver thread");
        seeder.terminate();
        let status = tokio::task::spawn_blocking(move || {
            let status = seeder.wait_timeout(Duration::from_secs(10));
            (status, seeder)
        })
        .await
        .expect("seeder wait");
        assert!(
            status.0.is_some_and(|s| s.success()),
            "segswarm seed did not stop cleanly on SIGTERM: {:?}",
            status.0
        );
        let final_stats = lines
            .lock()
            .expect("lines")
            .iter()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .expect("the seeder's final JSON statistics");
        eprintln!("seeder: {final_stats}");
        let a = page(&report, "a");
        print_shares("segswarm page + native seeder VOD", &[&a]);
        assert_played(&a, 10.0);
        assert!(
            a.peers_max >= 1,
            "the page never connected to the seeder: {a:?}"
        );
        assert!(a.p2p > 0, "the page got no bytes from the seeder: {a:?}");
        let uploaded = final_stats["uploaded_bytes"].as_u64().unwrap_or(0);
        assert!(
            uploaded >= a.p2p,
            "the seeder counts {uploaded} B uploaded, the page {} B received from peers",
            a.p2p
        );
        assert_tracker_relayed(&tracker.metrics_text());
        tracker.shutdown().await;
    });
}

/// The demo (examples/web: `serve.mjs` starts ffmpeg, `segswarm seed` and the page server; the
/// tracker here is the test's own) opened twice in headless Chromium, 6 s apart: the second page's
/// chart shows bytes from peers — pixels in the chart's P2P colour — and its figures say the same.
/// The screenshot is saved as `target/segswarm-demo.png`.
#[test]
fn browser_demo_page_chart_shows_p2p_bytes() {
    support::enter_private_network_namespace();
    check_prerequisites(true);
    let rt = support::runtime();
    rt.block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let port = support::free_port();
        let serve = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web/serve.mjs");
        let mut child = Command::new("node")
            .process_group(0)
            .arg(&serve)
            .args(["--port", &port.to_string(), "--seconds", "60"])
            .args(["--tracker", &url])
            .args(["--segswarm-bin", env!("CARGO_BIN_EXE_segswarm")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start examples/web/serve.mjs");
        let lines = collect_lines(child.stdout.take().expect("serve.mjs stdout"));
        let _demo = ProcessGroupGuard(support::ChildGuard::new("serve.mjs", child));
        let ready = Instant::now() + Duration::from_secs(40);
        let started = loop {
            let found = lines
                .lock()
                .expect("lines")
                .iter()
                .find_map(|l| serde_json::from_str::<Value>(l).ok());
            if let Some(v) = found {
                break v;
            }
            assert!(
                Instant::now() < ready,
                "serve.mjs was not ready within 40 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(started["seeder"], true, "{started}");
        let page_url = started["page"].as_str().expect("page URL").to_owned();
        let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/segswarm-demo.png");
        let _ = std::fs::create_dir_all(shot.parent().expect("target"));
        let _ = std::fs::remove_file(&shot);
        let args = vec![
            "--page".to_owned(),
            format!("url={page_url}:a:0"),
            "--page".to_owned(),
            format!("url={page_url}:b:6"),
            "--seconds".to_owned(),
            "16".to_owned(),
            "--screenshot".to_owned(),
            shot.display().to_string(),
        ];
        let report = tokio::task::spawn_blocking(move || run_driver(&args))
            .await
            .expect("driver thread");
        let (a, b) = (page(&report, "a"), page(&report, "b"));
        print_shares("demo page", &[&a, &b]);
        assert_played(&a, 8.0);
        assert_played(&b, 8.0);
        assert!(b.p2p > 0, "the demo page got no P2P bytes: {b:?}");
        let chart = &page_entry(&report, "b")["chart"];
        eprintln!("demo chart pixels by colour: {chart}");
        assert!(
            chart["p2p"].as_u64().is_some_and(|n| n > 0),
            "the chart shows no P2P bytes: {chart}"
        );
        assert!(
            chart["http"].as_u64().is_some_and(|n| n > 0),
            "the chart shows no HTTP bytes: {chart}"
        );
        let png = std::fs::read(&shot).expect("the screenshot file");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "not a screenshot: {} bytes",
            png.len()
        );
        eprintln!("demo screenshot: {}", shot.display());
        tracker.shutdown().await;
    });
}
