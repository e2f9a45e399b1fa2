//! Helpers shared by the end-to-end tests of the root package: a private network namespace,
//! HLS test streams made with ffmpeg (VOD, multi-variant VOD, live), a tracker on loopback and
//! child processes that are killed when dropped.
//!
//! Use from a test file with `mod support;`. Every helper is bounded in time; nothing talks to
//! anything but loopback.

#![allow(dead_code)]
// unshare(2), kill(2) and killpg(2) are FFI calls.
#![allow(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Moves the calling thread (and every thread and child process it starts afterwards) into a new
/// network namespace with only `lo`, brought up. Call it first thing in a test, before building a
/// tokio runtime, so the runtime's threads share the namespace. Panics with a clear message when
/// not permitted (needs root or CAP_SYS_ADMIN, as `.ci/run` has).
pub fn enter_private_network_namespace() {
    // SAFETY: unshare(2) with a flag constant; no memory is passed.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        panic!(
            "unshare(CLONE_NEWNET) failed: {err}. This test runs in a private network namespace \
             and needs root or CAP_SYS_ADMIN (run it as root, as .ci/run does)."
        );
    }
    // `ip` lives in /usr/sbin, which is not on every PATH.
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("ip");
    let status = Command::new(ip)
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap_or_else(|e| panic!("running `{ip} link set lo up` (package iproute2): {e}"));
    assert!(status.success(), "`ip link set lo up` failed: {status}");
}

/// A multi-threaded tokio runtime with two workers (build it after entering the namespace).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// WebRTC settings for peers in a private namespace: UDP on 127.0.0.1 only, loopback candidates
/// offered (the namespace has no other interface).
#[cfg(feature = "native")]
pub fn loopback_rtc() -> segswarm_core::native::rtc::RtcSettings {
    segswarm_core::native::rtc::RtcSettings {
        udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        include_loopback_candidates: true,
        ..Default::default()
    }
}

/// Path of the ffmpeg binary (`$FFMPEG`, else `ffmpeg` on the PATH).
pub fn ffmpeg() -> String {
    std::env::var("FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

/// Settings of a generated test stream.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Length of a VOD stream, seconds (ignored for live).
    pub seconds: u32,
    /// Target segment duration, seconds (a key frame is forced at every boundary).
    pub segment_seconds: u32,
    /// Picture size, `WxH`.
    pub size: String,
    /// Video bitrate, e.g. `"400k"`: sets the segment size (bitrate × segment duration).
    pub bitrate: String,
    /// Media playlist file name.
    pub playlist: String,
    /// Segment file name pattern (`%03d` is the segment number).
    pub segment_pattern: String,
    /// Include a sine-wave AAC audio track (hls.js plays video-only streams too).
    pub audio: bool,
    /// Fragmented MP4 in one file named `segment_pattern`, as PeerTube writes it: every segment
    /// an `#EXT-X-BYTERANGE` of that file, the `#EXT-X-MAP` init section its first bytes.
    pub single_file_fmp4: bool,
    /// Live: segments in the sliding playlist (PeerTube's live keeps 15). Default 5.
    pub live_window: u32,
}

impl Default for StreamSpec {
    fn default() -> Self {
        Self {
            seconds: 12,
            segment_seconds: 2,
            size: "320x240".into(),
            bitrate: "400k".into(),
            playlist: "index.m3u8".into(),
            segment_pattern: "seg%03d.ts".into(),
            audio: false,
            single_file_fmp4: false,
            live_window: 5,
        }
    }
}

fn ffmpeg_args(spec: &StreamSpec, dir: &Path, live: bool) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        .map(String::from)
        .to_vec();
    if live {
        args.push("-re".into());
    }
    let rate = 25;
    args.extend([
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc=size={}:rate={rate}", spec.size),
    ]);
    if spec.audio {
        args.extend(
            ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"].map(String::from),
        );
    }
    if !live {
        args.extend(["-t".into(), spec.seconds.to_string()]);
    }
    let gop = (rate * spec.segment_seconds).to_string();
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-profile:v",
            "baseline",
            "-sc_threshold",
            "0",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-b:v",
            &spec.bitrate,
            "-maxrate",
            &spec.bitrate,
            "-bufsize",
            &spec.bitrate,
        ]
        .map(String::from),
    );
    if spec.audio {
        args.extend(["-c:a", "aac", "-b:a", "64k", "-shortest"].map(String::from));
    }
    args.extend(["-f".into(), "hls".into()]);
    args.extend(["-hls_time".into(), spec.segment_seconds.to_string()]);
    let mut flags = Vec::new();
    if live {
        // A sliding window of five segments; old segments are deleted, as a live origin does.
        args.extend(["-hls_list_size".into(), spec.live_window.to_string()]);
        flags.push("delete_segments+temp_file");
    } else {
        args.extend(["-hls_playlist_type", "vod", "-hls_list_size", "0"].map(String::from));
    }
    if spec.single_file_fmp4 {
        args.extend(["-hls_segment_type", "fmp4"].map(String::from));
        flags.push("single_file");
    }
    if !flags.is_empty() {
        args.extend(["-hls_flags".into(), flags.join("+")]);
    }
    args.push("-hls_segment_filename".into());
    args.push(dir.join(&spec.segment_pattern).display().to_string());
    args.push(dir.join(&spec.playlist).display().to_string());
    args
}

/// Writes a VOD HLS stream (testsrc, H.264 in MPEG-TS) into `dir`; returns the playlist path.
/// Takes a second or two for the default 12 s.
pub fn make_vod(dir: &Path, spec: &StreamSpec) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the stream directory");
    let out = Command::new(ffmpeg())
        .args(ffmpeg_args(spec, dir, false))
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running ffmpeg (Debian package ffmpeg): {e}"));
    assert!(
        out.status.success(),
        "ffmpeg failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let playlist = dir.join(&spec.playlist);
    assert!(playlist.exists(), "ffmpeg wrote no playlist");
    playlist
}

/// A fresh temporary directory, removed when dropped, holding a VOD of `seconds` seconds made with
/// the default [`StreamSpec`] (playlist `index.m3u8`).
pub fn temp_vod(seconds: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let spec = StreamSpec {
        seconds,
        ..StreamSpec::default()
    };
    make_vod(dir.path(), &spec);
    dir
}

/// One variant of a multi-variant stream: its subdirectory, picture size and bitrate.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Subdirectory of the master playlist's directory.
    pub dir: String,
    /// Picture size, `WxH`.
    pub size: String,
    /// Video bitrate, e.g. `"400k"`.
    pub bitrate: String,
    /// `BANDWIDTH` written in the master playlist, bits/s.
    pub bandwidth: u64,
}

/// Writes a VOD stream per variant into `dir/<variant.dir>/index.m3u8` and a master playlist
/// `dir/master.m3u8` listing them (H.264 baseline, `CODECS="avc1.42c015"`); returns its path.
pub fn make_multivariant_vod(dir: &Path, seconds: u32, variants: &[Variant]) -> PathBuf {
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    for v in variants {
        let spec = StreamSpec {
            seconds,
            size: v.size.clone(),
            bitrate: v.bitrate.clone(),
            ..StreamSpec::default()
        };
        make_vod(&dir.join(&v.dir), &spec);
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={},CODECS=\"avc1.42c015\"\n{}/index.m3u8\n",
            v.bandwidth, v.size, v.dir
        ));
    }
    let path = dir.join("master.m3u8");
    std::fs::write(&path, master).expect("write master.m3u8");
    path
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl ChildGuard {
    /// Wraps a started child.
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        Self {
            child,
            name: name.into(),
        }
    }

    /// Sends SIGTERM (a graceful stop) to this child.
    pub fn terminate(&self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of a child we started and have not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }

    /// Sends SIGKILL to this child.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits up to `timeout` for the child to exit; its status, or `None` if still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Starts ffmpeg writing a live HLS stream (`-re`, real time) into `dir`: segments of
/// `spec.segment_seconds`, a sliding playlist of `spec.live_window` segments, old segments deleted. Returns the
/// running ffmpeg; the playlist appears after the first segment.
pub fn start_live(dir: &Path, spec: &StreamSpec) -> ChildGuard {
    std::fs::create_dir_all(dir).expect("create the stream directory");
    let child = Command::new(ffmpeg())
        .args(ffmpeg_args(spec, dir, true))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("running ffmpeg (Debian package ffmpeg): {e}"));
    ChildGuard::new("ffmpeg (live)", child)
}

/// Waits until `path` exists and contains at least `segments` `#EXTINF` lines, up to `timeout`.
pub fn wait_for_segments(path: &Path, segments: usize, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.matches("#EXTINF").count() >= segments {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Starts segswarm-tracker on 127.0.0.1 (an ephemeral port); returns it and its `ws://` URL.
pub async fn start_tracker() -> (segswarm_tracker::server::RunningServer, String) {
    let mut config = segswarm_tracker::config::Config::default();
    config.server.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.server.workers = 1;
    let server = segswarm_tracker::server::Server::start(config)
        .await
        .expect("start the tracker");
    let addr: SocketAddr = server.local_addrs()[0];
    (server, format!("ws://{addr}"))
}

/// Peers the tracker holds in all swarms, from its metrics (`segswarm_peers` over both kinds).
pub fn tracker_peers(server: &segswarm_tracker::server::RunningServer) -> u64 {
    server
        .metrics_text()
        .lines()
        .filter_map(|l| l.strip_prefix("segswarm_peers{"))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<u64>().ok())
        .sum()
}

/// Waits (at most 10 s) until the number of peers the tracker holds satisfies `done` (their
/// announces, or their `stopped`, were handled).
pub async fn wait_for_tracker_peers(
    server: &segswarm_tracker::server::RunningServer,
    done: impl Fn(u64) -> bool,
) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(tracker_peers(server)) {
        assert!(
            std::time::Instant::now() < end,
            "the tracker holds {} peers",
            tracker_peers(server)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough in a private namespace).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Waits until something accepts TCP connections on `addr`, up to `timeout`.
pub fn wait_for_listener(addr: SocketAddr, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The Node.js test scripts and their npm packages (`tests/js` of the root package).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Asserts that a browser test can run: Chromium at `$CHROMIUM` (else /usr/bin/chromium), `node`,
/// and the npm `packages` installed in [`js_dir`].
pub fn check_browser_prerequisites(packages: &[&str]) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium} (apt-get install chromium, or set CHROMIUM)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` is needed to run the scripts in tests/js: {node:?}"
    );
    for package in packages {
        assert!(
            js_dir().join("node_modules").join(package).exists(),
            "npm package {package} missing: run `npm ci` in {}",
            js_dir().display()
        );
    }
}

/// Runs `node SCRIPT ARGS` in [`js_dir`] in a process group of its own, so that past `timeout` the
/// whole group (the browser with it) is killed and the test fails. Returns the last JSON line the
/// script printed and its exit status; panics if it printed none.
pub fn run_node_script(
    script: &str,
    args: &[String],
    timeout: Duration,
) -> (serde_json::Value, std::process::ExitStatus) {
    use std::os::unix::process::CommandExt;

    let mut child = Command::new("node")
        .process_group(0)
        .arg(script)
        .args(args)
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node (is Node.js installed?)");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            if let Ok(group) = i32::try_from(child.id()) {
                // SAFETY: killpg(2) on the process group our own child leads; no memory is passed.
                unsafe {
                    libc::killpg(group, libc::SIGKILL);
                }
            }
            let _ = child.wait();
            panic!("{script} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout).expect("read the script's output");
    }
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_else(|| panic!("no JSON report from {script} (status {status}): {stdout}"));
    (report, status)
}

/// The npm packages `tests/js/e2e-run.mjs` needs.
pub const E2E_PACKAGES: [&str; 4] = [
    "playwright-core",
    "esbuild",
    "hls.js",
    "p2p-media-loader-hlsjs",
];

/// Runs the browser playback driver `tests/js/e2e-run.mjs ARGS` (its own watchdog set 4 s inside
/// `timeout`) and returns its JSON report; panics unless it ran through with `"ok": true`.
pub fn run_e2e_driver(args: &[String], timeout: Duration) -> serde_json::Value {
    let watchdog = timeout.saturating_sub(Duration::from_secs(4));
    let mut all = vec!["--timeout-ms".to_owned(), watchdog.as_millis().to_string()];
    all.extend_from_slice(args);
    let (report, status) = run_node_script("e2e-run.mjs", &all, timeout);
    assert!(
        status.success() && report["ok"] == true,
        "e2e-run.mjs failed ({status}): {}",
        report["error"]
    );
    report
}
