//! Seeder capacity: how many viewers at 1 Mbit/s one `segswarm seed` process serves over WebRTC
//! before their deadlines slip, its CPU, and its memory per connected peer.
//!
//! Setup, in a private network namespace (loopback only): segswarm-tracker and the HTTP origin in
//! this process; the seeder is the `segswarm seed` binary (a process of its own, so its CPU time
//! and resident memory can be read from /proc); N viewers are bare `PeerDriver`s in this process
//! that only download (`consume_only`), make no offers and keep one peer connection, so each one is
//! fed by the seeder alone. The seeder, started after them, sends 64 offers an announce (all
//! segswarm-tracker relays from one message) and re-announces with fresh offers every
//! `SEGSWARM_BENCH_FILL_SECS` while its offers are taken (`--fill-announce-secs`), so it
//! reaches every viewer over several rounds; play starts once all are connected (or after 90 s). A viewer plays the synthetic 1 Mbit/s VOD (2 s MPEG-TS segments) in
//! real time from a 6 s start-up lead with a 10 s prefetch window; what the seeder cannot deliver
//! in time the viewer fetches over HTTP. A deadline slip is a segment loaded over HTTP or a P2P
//! transfer moved to HTTP.
//!
//! ```sh
//! cargo bench -p segswarm --features native --bench seeder_capacity
//! # SEGSWARM_BENCH_VIEWERS (5,10,20,40), SEGSWARM_BENCH_SECONDS (20), SEGSWARM_BENCH_FILL_SECS (3)
//! # memory per connection instead: SEGSWARM_BENCH_MEMORY_PAIRS=25,50
//! ```
//!
//! The viewers share the machine's cores with the seeder, so the figures are a lower bound for a
//! seeder on a machine of its own. Needs root (or CAP_SYS_ADMIN) for the namespace.

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use segswarm::core::engine::EngineConfig;
use segswarm::core::hls::parse_media_playlist;
use segswarm::core::native::driver::{DriverEvent, DriverHandle, DriverSettings, PeerDriver};
use segswarm::core::native::origin::{Origin, OriginConfig};
use segswarm::core::native::rtc::{RtcPeer, RtcSettings};
use segswarm::core::stream::{peer_id_from_picks, peer_id_prefix};
use segswarm::core::tracker_client::PeerId;

const BIN: &str = env!("CARGO_BIN_EXE_segswarm");

/// Counts this process's heap: bytes live now, the most live at once, and the live bytes in
/// blocks of 64 KiB or more (packet and message buffers), for the memory measurement.
struct CountingAlloc;

static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);
static HEAP_LARGE: AtomicUsize = AtomicUsize::new(0);
const LARGE: usize = 64 * 1024;

fn count_alloc(size: usize) {
    let now = HEAP_LIVE.fetch_add(size, Ordering::Relaxed) + size;
    HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
    if size >= LARGE {
        HEAP_LARGE.fetch_add(size, Ordering::Relaxed);
    }
}

fn count_free(size: usize) {
    HEAP_LIVE.fetch_sub(size, Ordering::Relaxed);
    if size >= LARGE {
        HEAP_LARGE.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are counted.
#[allow(unsafe_code)] // A bench-only global allocator that counts allocations.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count_free(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;
/// 1 Mbit/s in 2 s segments: 250 000 bytes, rounded down to whole MPEG-TS packets.
const SEGMENT_BYTES: usize = 250_000 / 188 * 188;
const SEGMENT_SECONDS: f64 = 2.0;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn write_vod(dir: &Path, segments: usize) {
    let mut playlist = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n");
    for i in 0..segments {
        let mut data: Vec<u8> = (0..SEGMENT_BYTES)
            .map(|b| ((b as u32).wrapping_mul(2_654_435_761) ^ i as u32).rotate_right(7) as u8)
            .collect();
        for p in data.chunks_mut(188) {
            p[0] = 0x47;
        }
        let name = format!("s{i:04}.ts");
        std::fs::write(dir.join(&name), data).expect("write segment");
        playlist.push_str(&format!("#EXTINF:{SEGMENT_SECONDS:.1},\n{name}\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(dir.join("index.m3u8"), playlist).expect("write playlist");
}

/// (user + system CPU seconds, resident bytes) of a process.
#[allow(unsafe_code)] // sysconf(3) is an FFI call.
fn proc_usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at index 2 (state).
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf with a constant name.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / tick, rss_kb * 1024)
}

struct SeedProc {
    guard: support::ChildGuard,
    last: Arc<Mutex<Option<serde_json::Value>>>,
}

/// Offers the bench tracker relays from one announce: all segswarm-tracker reads from one message.
const OFFERS_PER_ANNOUNCE: usize = 64;

fn start_seeder(
    tracker: &str,
    playlist_url: &str,
    dir: &Path,
    viewers: usize,
    fill_secs: u64,
) -> SeedProc {
    // Room for every viewer, plus the unanswered offers the tracker relays to viewers that are
    // connected already (each holds a slot until it is answered or times out).
    let peers = (2 * viewers + OFFERS_PER_ANNOUNCE).to_string();
    let uploads = (viewers + 10).to_string();
    let offers = OFFERS_PER_ANNOUNCE.to_string();
    let fill = fill_secs.to_string();
    let mut child = Command::new(BIN)
        .args(["seed", "--tracker", tracker, "--public-url", playlist_url])
        .args(["--udp", "127.0.0.1:0", "--loopback-candidates", "--json"])
        .args(["--stats-every", "1", "--max-peers", &peers])
        .args(["--max-uploads", &uploads, "--offers-per-announce", &offers])
        .args(["--fill-announce-secs", &fill, "--offer-timeout-secs", "15"])
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start segswarm seed");
    let out = child.stdout.take().expect("stdout");
    let last = Arc::new(Mutex::new(None));
    let sink = last.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Ok(mut l) = sink.lock() {
                    *l = Some(v);
                }
            }
        }
    });
    SeedProc {
        guard: support::ChildGuard::new("segswarm seed", child),
        last,
    }
}

impl SeedProc {
    fn stats(&self) -> Option<serde_json::Value> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
    fn segments(&self) -> u64 {
        self.stats()
            .and_then(|v| v["streams"][0]["segments"].as_u64())
            .unwrap_or(0)
    }
}

fn peer_id(n: u64) -> PeerId {
    let mut x = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let id = peer_id_from_picks(&peer_id_prefix(2, 3), |m| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as usize) % m
    });
    let mut out = [0u8; 20];
    out.copy_from_slice(&id.as_bytes()[..20]);
    out
}

struct Row {
    viewers: usize,
    connected: usize,
    /// Seconds from the seeder's start until the last viewer connected (or the wait ended).
    fill_s: f64,
    p2p: u64,
    http: u64,
    segments_http: u64,
    moved_to_http: u64,
    cpu_s: f64,
    /// CPU time of this process (the viewers, tracker and origin) over the same time.
    viewers_cpu_s: f64,
    /// Heap of the viewer side once connected, before any download.
    viewer_heap: usize,
    wall_s: f64,
    rss: u64,
    uploaded: u64,
}

async fn run_once(
    media: &Path,
    viewers: usize,
    seconds: f64,
    run: u64,
    baseline_rss: u64,
    fill_secs: u64,
) -> Option<Row> {
    let mut config = segswarm::tracker::config::Config::default();
    config.server.listen = vec!["127.0.0.1:0".parse().ok()?];
    // The seeder offers 64 connections an announce (re-announcing every `fill_secs` while its
    // offers are taken; the tracker's interval stays 120 s): let the tracker relay that many, in
    // a message that large (about 1 KB of SDP an offer).
    config.protocol.max_offers = OFFERS_PER_ANNOUNCE;
    config.limits.max_message_bytes = 8 << 20;
    config.limits.max_frame_bytes = 8 << 20;
    let tracker = segswarm::tracker::server::Server::start(config)
        .await
        .ok()?;
    let url = format!("ws://{}", tracker.local_addrs()[0]);
    let origin = Origin::start(OriginConfig::new(media, "127.0.0.1:0".parse().ok()?))
        .await
        .ok()?;
    let playlist_url = format!("{}index.m3u8", origin.base_url());
    let playlist =
        parse_media_playlist(&std::fs::read_to_string(media.join("index.m3u8")).ok()?).ok()?;
    let info_hash = segswarm::core::stream::StreamIdentity::new(
        None,
        &playlist_url,
        segswarm::core::stream::StreamType::Main,
        segswarm::core::stream::generate_stream_short_id(&segswarm::core::stream::ShortIdProps {
            bitrate: Some(0.0),
            ..Default::default()
        }),
    )
    .info_hash;

    // Viewers first: they announce without offers and wait for the seeder's.
    let heap_before = HEAP_LIVE.load(Ordering::Relaxed);
    let mut drivers: Vec<DriverHandle> = Vec::new();
    for i in 0..viewers {
        let mut c = EngineConfig::new(
            peer_id(run * 10_000 + i as u64),
            info_hash,
            false,
            vec![origin.base_url()],
        );
        c.consume_only = true;
        c.max_peers = 1;
        c.tracker.max_offers = 0;
        c.scheduler.vod_prefetch_window = Duration::from_secs(10);
        c.seed = run * 10_000 + i as u64;
        let mut s = DriverSettings::new(vec![url.clone()]);
        s.rtc = support::loopback_rtc();
        let d = PeerDriver::spawn(c, s).ok()?;
        d.set_playlist(playlist.segment_infos()).ok()?;
        drivers.push(d);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seeder = start_seeder(&url, &playlist_url, media, viewers, fill_secs);
    let pid = seeder.guard.child.id();
    let started = Instant::now();
    let end = started + Duration::from_secs(90);
    let mut connected = vec![false; viewers];
    let mut fill_s = 0.0;
    while connected.iter().any(|c| !c) && Instant::now() < end {
        for (i, d) in drivers.iter_mut().enumerate() {
            while let Some(ev) = d.try_event() {
                if matches!(ev, DriverEvent::PeerConnected(_)) {
                    connected[i] = true;
                    fill_s = started.elapsed().as_secs_f64();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = connected.iter().filter(|c| **c).count();
    // This process's heap with the viewers connected and nothing downloaded yet: their drivers,
    // engines and WebRTC connections (the tracker's share is small).
    let viewer_heap = HEAP_LIVE
        .load(Ordering::Relaxed)
        .saturating_sub(heap_before);
    while seeder.segments() < playlist.segments.len() as u64 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu0, _) = proc_usage(pid);
    let (own0, _) = proc_usage(std::process::id());
    let t0 = Instant::now();
    // Play: the playhead starts 6 s before the first segment and moves in real time.
    while t0.elapsed().as_secs_f64() < seconds {
        let pos = t0.elapsed().as_secs_f64() - 6.0;
        for d in &mut drivers {
            let _ = d.set_playback(pos);
            while d.try_event().is_some() {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let (cpu1, rss) = proc_usage(pid);
    let (own1, _) = proc_usage(std::process::id());
    let mut row = Row {
        viewers,
        connected,
        fill_s,
        p2p: 0,
        http: 0,
        segments_http: 0,
        moved_to_http: 0,
        cpu_s: cpu1 - cpu0,
        viewers_cpu_s: own1 - own0,
        viewer_heap,
        wall_s,
        rss: rss.saturating_sub(baseline_rss),
        uploaded: 0,
    };
    for d in &drivers {
        if let Ok(s) = d.stats().await {
            row.p2p += s.engine.p2p_bytes;
            row.http += s.engine.http_bytes;
            row.segments_http += s.engine.segments_http;
            row.moved_to_http += s.engine.stalls_avoided;
        }
    }
    row.uploaded = seeder
        .stats()
        .and_then(|v| v["uploaded_bytes"].as_u64())
        .unwrap_or(0);
    for d in drivers {
        d.shutdown().await;
    }
    drop(seeder);
    origin.shutdown().await;
    tracker.shutdown().await;
    Some(row)
}

/// One open data channel pair (both ends in this process).
type Pair = (
    segswarm::core::native::rtc::RtcConnection,
    segswarm::core::native::rtc::RtcConnection,
);

async fn open_pair(s: RtcSettings) -> Option<Pair> {
    let mut a = RtcPeer::new(&s).await.ok()?;
    let mut b = RtcPeer::new(&s).await.ok()?;
    let offer = a.create_offer().await.ok()?;
    let answer = b.accept_offer(&offer).await.ok()?;
    a.accept_answer(&answer).await.ok()?;
    let (ca, cb) = tokio::join!(a.connect(), b.connect());
    Some((ca.ok()?, cb.ok()?))
}

fn heap() -> (usize, usize) {
    (
        HEAP_LIVE.load(Ordering::Relaxed),
        HEAP_LARGE.load(Ordering::Relaxed),
    )
}

fn self_rss() -> u64 {
    proc_usage(std::process::id()).1
}

/// Memory per WebRTC connection end: `n` data-channel pairs in this process (the `webrtc` crate
/// alone, no engine), idle and then while each pair carries one 1 Mbit/s segment (250 KB in
/// 64 KiB messages) from the offerer's end to the answerer's, the way a seeder sends.
async fn memory_row(label: &str, settings: RtcSettings, n: usize) {
    let (h0, l0) = heap();
    let r0 = self_rss();
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(tokio::spawn(open_pair(settings.clone())));
    }
    let mut pairs = Vec::new();
    for t in tasks {
        if let Ok(Some(p)) = t.await {
            pairs.push(p);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ends = (2 * pairs.len()).max(1) as f64;
    let (h1, l1) = heap();
    let r1 = self_rss();
    HEAP_PEAK.store(h1, Ordering::Relaxed);
    // Send every segment at once (one per pair), as a seeder serving all its viewers would.
    let message = vec![0x47u8; 63 * 1024];
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (a, mut b) in pairs {
        let tx = a.sender();
        let msg = message.clone();
        senders.push(tokio::spawn(async move {
            for _ in 0..(SEGMENT_BYTES / msg.len()) {
                if tx.send(&msg).await.is_err() {
                    break;
                }
            }
            a
        }));
        receivers.push(tokio::spawn(async move {
            let mut got = 0;
            let want = SEGMENT_BYTES / (63 * 1024) * 63 * 1024;
            while got < want {
                match tokio::time::timeout(Duration::from_secs(20), b.recv()).await {
                    Ok(Some(m)) => got += m.len(),
                    _ => break,
                }
            }
            (b, got)
        }));
    }
    let mut senders_done = Vec::new();
    for t in senders {
        if let Ok(a) = t.await {
            senders_done.push(a);
        }
    }
    let (h2, l2) = heap();
    let peak = HEAP_PEAK.load(Ordering::Relaxed);
    let mut received = 0usize;
    let mut receivers_done = Vec::new();
    for t in receivers {
        if let Ok((b, got)) = t.await {
            received += got;
            receivers_done.push(b);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (h3, l3) = heap();
    let r3 = self_rss();
    for c in senders_done.iter().chain(receivers_done.iter()) {
        c.close().await;
    }
    drop(senders_done);
    drop(receivers_done);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (h4, _) = heap();
    let kib = |b: usize, a: usize| (b as f64 - a as f64) / 1024.0 / ends;
    println!(
        "| {label} | {} | {:.0} KiB ({:.0} KiB in blocks >= 64 KiB) | {:.0} KiB | {:.0} KiB \
         ({:.0} KiB large) | {:.0} KiB | {:.0} KiB ({:.0} KiB large) | {:.0} KiB | {:.1} MB | {:.0} KiB |",
        ends as usize,
        kib(h1, h0),
        kib(l1, l0),
        (r1 as f64 - r0 as f64) / 1024.0 / ends,
        kib(h2, h0),
        kib(l2, l0),
        kib(peak, h0),
        kib(h3, h0),
        kib(l3, l0),
        (r3 as f64 - r0 as f64) / 1024.0 / ends,
        received as f64 / 1e6,
        kib(h4, h0),
    );
}

fn memory(counts: &[usize]) {
    let rt = support::runtime();
    println!(
        "memory per WebRTC connection end (the webrtc crate alone, both ends in this process; \
         heap counted by a global allocator, RSS from /proc)"
    );
    println!(
        "| settings | connection ends | heap idle | RSS idle | heap right after sending \
         | heap peak while sending | heap after delivery | RSS after delivery | bytes delivered \
         | heap left after close |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let base = support::loopback_rtc();
    let variants: Vec<(String, RtcSettings)> = vec![
        (
            "defaults (send buffer 1 MiB, SCTP window 1 MiB)".into(),
            base.clone(),
        ),
        ("send buffer 256 KiB".into(), {
            let mut s = base.clone();
            s.channel.send_buffer_bytes = 256 * 1024;
            s
        }),
        (
            "send buffer 256 KiB, SCTP window 256 KiB".into(),
            RtcSettings {
                sctp_receive_window_bytes: 256 * 1024,
                ..{
                    let mut s = base.clone();
                    s.channel.send_buffer_bytes = 256 * 1024;
                    s
                }
            },
        ),
    ];
    for (label, s) in variants {
        for &n in counts {
            rt.block_on(memory_row(&label, s.clone(), n));
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`. Run any other way (`cargo test --all-targets`, nextest
    // listing with `--list`), this binary has no tests and exits at once.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    support::enter_private_network_namespace();
    let memory_counts = env_list("SEGSWARM_BENCH_MEMORY_PAIRS", "");
    if !memory_counts.is_empty() {
        memory(&memory_counts);
        return;
    }
    let counts = env_list("SEGSWARM_BENCH_VIEWERS", "5,10,20,40");
    let seconds = env_list("SEGSWARM_BENCH_SECONDS", "20")
        .first()
        .copied()
        .unwrap_or(20) as f64;
    let fill_secs = env_list("SEGSWARM_BENCH_FILL_SECS", "3")
        .first()
        .copied()
        .unwrap_or(3) as u64;
    let media = tempfile::tempdir().expect("tempdir");
    // Enough video for the run, the start-up lead and the prefetch window.
    let segments = ((seconds + 20.0) / SEGMENT_SECONDS).ceil() as usize;
    write_vod(media.path(), segments);
    let rt = support::runtime();
    // The seeder's resident memory with the VOD loaded and no peer.
    let baseline_rss = rt.block_on(async {
        let (tracker, url) = support::start_tracker().await;
        let seeder = start_seeder(&url, "http://127.0.0.1:1/index.m3u8", media.path(), 0, 0);
        let end = Instant::now() + Duration::from_secs(10);
        while seeder.segments() < segments as u64 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, rss) = proc_usage(seeder.guard.child.id());
        drop(seeder);
        tracker.shutdown().await;
        rss
    });
    println!(
        "seeder capacity: 1 Mbit/s VOD ({SEGMENT_BYTES} B segments of {SEGMENT_SECONDS} s), \
         {seconds} s of play per run; {OFFERS_PER_ANNOUNCE} offers an announce, re-announced every \
         {fill_secs} s while taken; seeder RSS with the VOD loaded and no peer: {:.1} MiB",
        baseline_rss as f64 / 1048576.0
    );
    println!(
        "| viewers | connected to seeder | all connected after | P2P share | segments over HTTP | \
         P2P moved to HTTP | seeder upload Mbit/s | seeder CPU % of a core | viewers' CPU % of a core | \
         seeder RSS growth / peer | viewer heap / peer, connected | load average |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (run, &n) in counts.iter().enumerate() {
        let Some(r) = rt.block_on(run_once(
            media.path(),
            n,
            seconds,
            run as u64 + 1,
            baseline_rss,
            fill_secs,
        )) else {
            println!("| {n} | run failed to start | | | | | | | | | | |");
            continue;
        };
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load.split_whitespace().next().unwrap_or("?").to_owned();
        let total = (r.p2p + r.http).max(1) as f64;
        println!(
            "| {} | {} | {:.1} s | {:.3} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} KiB | {:.0} KiB | {} |",
            r.viewers,
            r.connected,
            r.fill_s,
            r.p2p as f64 / total,
            r.segments_http,
            r.moved_to_http,
            r.uploaded as f64 * 8.0 / 1e6 / r.wall_s,
            100.0 * r.cpu_s / r.wall_s,
            100.0 * r.viewers_cpu_s / r.wall_s,
            r.rss as f64 / 1024.0 / r.connected.max(1) as f64,
            r.viewer_heap as f64 / 1024.0 / r.connected.max(1) as f64,
            load,
        );
    }
}
