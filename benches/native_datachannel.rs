//! Data-channel throughput between two native segswarm peers (the `webrtc` crate) on loopback.
//!
//! Run: `cargo bench -p segswarm --features native --bench native_datachannel`
//! Environment: `SEGSWARM_BENCH_MB` (megabytes per run, default 200), `SEGSWARM_BENCH_RUNS`
//! (runs per message size, default 3), `SEGSWARM_BENCH_MSG` (comma-separated message sizes,
//! default `16384,65535`), and, to try tunings, overrides of `RtcSettings` fields (unset: the
//! segswarm default): `SEGSWARM_BENCH_SEND_BUFFER_KIB` (`send_buffer_bytes`),
//! `SEGSWARM_BENCH_LOW_THRESHOLD_KIB` (`buffered_amount_low_threshold`),
//! `SEGSWARM_BENCH_RECV_QUEUE` (`receive_queue_messages`).
//!
//! Both peers live in this process, in a private network namespace when the process may create
//! one (else on the host's loopback). For each message size it prints the wall-clock throughput
//! from the first send to the last byte received, and the CPU time of the whole process (sender
//! and receiver together, user + system, from `getrusage`) per gigabyte moved.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use segswarm_core::native::rtc::{RtcConnection, RtcPeer, RtcSettings};

#[allow(unsafe_code)] // unshare(2) is an FFI call.
fn private_netns() -> bool {
    // SAFETY: unshare only changes this thread's namespace membership.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[allow(unsafe_code)] // getrusage(2) is an FFI call.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

async fn pair(settings: &RtcSettings) -> (RtcConnection, RtcConnection) {
    let mut a = RtcPeer::new(settings).await.expect("peer a");
    let mut b = RtcPeer::new(settings).await.expect("peer b");
    let offer = a.create_offer().await.expect("offer");
    let answer = b.accept_offer(&offer).await.expect("answer");
    a.accept_answer(&answer).await.expect("apply answer");
    let (a, b) = tokio::join!(a.connect(), b.connect());
    (a.expect("a opens"), b.expect("b opens"))
}

/// Moves `total` bytes in messages of `msg` bytes; returns (seconds, cpu seconds), or `None`
/// when the connection closed or stalled (reported, and left out of the medians).
async fn run_once(settings: &RtcSettings, msg: usize, total: usize) -> Option<(f64, f64)> {
    let (a, mut b) = pair(settings).await;
    let payload = vec![0xA5u8; msg];
    let sender = a.sender();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let send = tokio::spawn(async move {
        let mut sent = 0;
        while sent < total {
            let n = msg.min(total - sent);
            if let Err(e) = sender.send(&payload[..n]).await {
                eprintln!("send failed after {sent} bytes: {e}");
                return;
            }
            sent += n;
        }
    });
    let mut got = 0usize;
    while got < total {
        match tokio::time::timeout(Duration::from_secs(30), b.recv()).await {
            Ok(Some(m)) => got += m.len(),
            other => {
                eprintln!("receive stalled or closed after {got} bytes: {other:?}");
                send.abort();
                a.close().await;
                return None;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    send.await.expect("sender");
    a.close().await;
    Some((secs, cpu))
}

fn main() {
    let mb: usize = std::env::var("SEGSWARM_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runs: usize = std::env::var("SEGSWARM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // `cargo bench` passes `--bench`. Built as a test (`cargo test --all-targets`, nextest, which
    // lists with `--list`), this binary has no tests and exits at once.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let netns = private_netns();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut settings = RtcSettings {
        udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        include_loopback_candidates: true,
        ..RtcSettings::default()
    };
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    if let Some(kib) = env("SEGSWARM_BENCH_SEND_BUFFER_KIB") {
        settings.channel.send_buffer_bytes = u32::try_from(kib * 1024).unwrap_or(u32::MAX);
    }
    if let Some(kib) = env("SEGSWARM_BENCH_LOW_THRESHOLD_KIB") {
        settings.channel.buffered_amount_low_threshold =
            u32::try_from(kib * 1024).unwrap_or(u32::MAX);
    }
    if let Some(n) = env("SEGSWARM_BENCH_RECV_QUEUE") {
        settings.receive_queue_messages = n;
    }
    let sizes: Vec<usize> = std::env::var("SEGSWARM_BENCH_MSG")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16 * 1024, 64 * 1024 - 1]);
    let total = mb * 1_000_000;
    println!(
        "native data channel, webrtc crate 0.21, loopback ({}), {} MB per run, {} runs, 2 tokio \
         workers, send buffer {} KiB, low threshold {} KiB, receive queue {}",
        if netns {
            "private network namespace"
        } else {
            "host loopback"
        },
        mb,
        runs,
        settings.channel.send_buffer_bytes / 1024,
        settings.channel.buffered_amount_low_threshold / 1024,
        settings.receive_queue_messages,
    );
    println!("msg_bytes  run  MB/s    cpu_s_per_GB");
    for msg in sizes {
        let mut rates = Vec::new();
        let mut cpus = Vec::new();
        for run in 0..runs {
            let Some((secs, cpu)) = rt.block_on(run_once(&settings, msg, total)) else {
                println!("{msg:>9}  {run:>3}  failed");
                continue;
            };
            let rate = total as f64 / 1e6 / secs;
            let cpu_per_gb = cpu / (total as f64 / 1e9);
            println!("{msg:>9}  {run:>3}  {rate:>6.1}  {cpu_per_gb:>6.2}");
            rates.push(rate);
            cpus.push(cpu_per_gb);
        }
        if rates.is_empty() {
            continue;
        }
        rates.sort_by(f64::total_cmp);
        cpus.sort_by(f64::total_cmp);
        println!(
            "RESULT msg_bytes={msg} median_MBps={:.1} median_cpu_s_per_GB={:.2}",
            rates[rates.len() / 2],
            cpus[cpus.len() / 2]
        );
    }
}
