//! str0m data-channel throughput between two peers in one process, on loopback UDP, measured as
//! `benches/native_datachannel.rs` measures the `webrtc` crate: wall-clock MB/s from the first
//! write to the last byte received, and process CPU seconds (user + system, `getrusage`) per GB.
//!
//! Run: `cd benches/str0m-compare && cargo run --release` (env `SEGSWARM_BENCH_MB`, default 200;
//! `SEGSWARM_BENCH_RUNS`, default 3). Each peer is driven by its own thread with a blocking UDP
//! socket, as in str0m's examples; the sender keeps at most 1 MiB buffered, like the webrtc bench.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

/// Bytes the sender keeps buffered (env `SEGSWARM_BENCH_SEND_BUFFER_KIB`, default 1024).
fn send_buffer() -> usize {
    std::env::var("SEGSWARM_BENCH_SEND_BUFFER_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024)
        * 1024
}

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

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl Peer {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("addr");
        let mut rtc = Rtc::builder()
            .set_sctp_max_buffered_amount(send_buffer())
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"))
            .expect("add candidate");
        Self {
            rtc,
            socket,
            addr,
            buf: vec![0; 2000],
        }
    }

    /// Sends every pending datagram; returns the next timeout and the events.
    fn drain(&mut self, events: &mut Vec<Event>) -> Result<Instant, RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Timeout(t) => return Ok(t),
                Output::Event(e) => events.push(e),
            }
        }
    }

    /// Waits for one datagram until `until` (at most 5 ms) and feeds it, or the timeout.
    fn read(&mut self, until: Instant) -> Result<(), RtcError> {
        let wait = until
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_micros(50), Duration::from_millis(5));
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        self.buf.resize(2000, 0);
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, source)) => {
                let Ok(contents) = self.buf[..n].try_into() else {
                    return Ok(());
                };
                self.rtc.handle_input(Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.addr,
                        contents,
                    },
                ))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.rtc.handle_input(Input::Timeout(Instant::now()))
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn run_once(msg: usize, total: usize) -> (f64, f64) {
    let mut l = Peer::new();
    let mut r = Peer::new();
    let mut change = l.rtc.sdp_api();
    let cid: ChannelId = change.add_channel("bench".into());
    let (offer, pending) = change.apply().expect("offer");
    let answer = r.rtc.sdp_api().accept_offer(offer).expect("answer");
    l.rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("apply answer");

    let start: Arc<Mutex<Option<(Instant, f64)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));

    let (s, d) = (start.clone(), done.clone());
    let sender = thread::spawn(move || {
        let payload = vec![0xA5u8; msg];
        let limit = send_buffer();
        let mut open = false;
        let mut sent = 0usize;
        let mut events = Vec::new();
        while !d.load(Ordering::Relaxed) {
            let t = l.drain(&mut events).expect("drain");
            open |= events
                .drain(..)
                .any(|e| matches!(e, Event::ChannelOpen(..)));
            if open && sent < total {
                let mut s = s.lock().expect("start");
                if s.is_none() {
                    *s = Some((Instant::now(), cpu_seconds()));
                }
                drop(s);
                if let Some(mut ch) = l.rtc.channel(cid) {
                    while sent < total && ch.buffered_amount() < limit {
                        let n = msg.min(total - sent);
                        if !ch.write(true, &payload[..n]).expect("write") {
                            break;
                        }
                        sent += n;
                    }
                }
                l.drain(&mut events).expect("drain");
            }
            l.read(t).expect("read");
        }
    });
    let receiver = thread::spawn(move || {
        let mut got = 0usize;
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while got < total {
            assert!(Instant::now() < deadline, "stalled after {got} bytes");
            let t = r.drain(&mut events).expect("drain");
            for e in events.drain(..) {
                if let Event::ChannelData(data) = e {
                    got += data.data.len();
                }
            }
            if got >= total {
                break;
            }
            r.read(t).expect("read");
        }
        let (t0, cpu0) = start.lock().expect("start").expect("sender started");
        let result = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        done.store(true, Ordering::Relaxed);
        result
    });
    let result = receiver.join().expect("receiver");
    sender.join().expect("sender");
    result
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
    let netns = private_netns();
    str0m::crypto::from_feature_flags().install_process_default();
    let total = mb * 1_000_000;
    println!(
        "str0m 0.24 (rust-crypto) data channel, loopback ({}), {mb} MB per run, {runs} runs, one thread per peer",
        if netns { "private network namespace" } else { "host loopback" }
    );
    println!("msg_bytes  run  MB/s    cpu_s_per_GB");
    for msg in [16 * 1024, 64 * 1024 - 1] {
        let mut rates = Vec::new();
        let mut cpus = Vec::new();
        for run in 0..runs {
            let (secs, cpu) = run_once(msg, total);
            let rate = total as f64 / 1e6 / secs;
            let cpu_per_gb = cpu / (total as f64 / 1e9);
            println!("{msg:>9}  {run:>3}  {rate:>6.1}  {cpu_per_gb:>6.2}");
            rates.push(rate);
            cpus.push(cpu_per_gb);
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
