//! str0m data-channel throughput between two peers in one process, on loopback UDP, measured as
//! `benches/native_datachannel.rs` measures the `webrtc` crate: the same message sizes
//! (16 KiB and 64 KiB − 1), the same bytes per run, loopback in a private network namespace when
//! the process may create one, wall-clock MB/s from the first write to the last byte received, and
//! process CPU seconds (user + system, `getrusage`, both peers together) per GB; median of runs.
//!
//! Run (see Cargo.toml for the two crypto builds):
//! `cd benches/str0m-compare && cargo run --release`
//! Environment: `SEGSWARM_BENCH_MB` (200), `SEGSWARM_BENCH_RUNS` (3),
//! `SEGSWARM_BENCH_SEND_BUFFER_KIB` (1024: str0m's `sctp_max_buffered_amount`, the equal of
//! segswarm's `RtcSettings::send_buffer_bytes`), `SEGSWARM_BENCH_MSG` (comma-separated message
//! sizes, default `16384,65535`), `SEGSWARM_BENCH_VERBOSE` (set: print per-peer datagram and
//! wake-up counters, to check the loop does not spin).
//!
//! Each peer runs on its own thread (the webrtc bench gives tokio two workers) and is driven the
//! way str0m is meant to be driven: a non-blocking UDP socket; `poll_output` until it returns
//! `Timeout`; every datagram that is waiting is fed as its own `Input::Receive`; the thread sleeps
//! in `ppoll` until the socket is readable or str0m's deadline, which it then feeds as
//! `Input::Timeout`. Every mutation (one datagram, one timeout, one `Channel::write`) is followed
//! by a full drain, as str0m's run-loop contract requires. The sender writes while
//! `Channel::write` accepts and then waits for `Event::ChannelBufferedAmountLow` (threshold: half
//! the send buffer) — no busy re-polling.

#[cfg(all(feature = "aws-lc-rs", feature = "rust-crypto"))]
compile_error!(
    "pick one crypto build: default (aws-lc-rs) or --no-default-features --features rust-crypto"
);

#[cfg(feature = "rust-crypto")]
extern crate str0m_rc as str0m;

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

#[cfg(feature = "rust-crypto")]
const STACK: &str = "str0m 0.24.1 (rust-crypto)";
#[cfg(not(feature = "rust-crypto"))]
const STACK: &str = "str0m 0.25.0 (aws-lc-rs)";

/// Longest a run may take before it is reported as stalled.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes the sender may keep buffered (env `SEGSWARM_BENCH_SEND_BUFFER_KIB`, default 1024).
fn send_buffer() -> usize {
    env_usize("SEGSWARM_BENCH_SEND_BUFFER_KIB", 1024) * 1024
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

/// Resident set size of this process in KiB (from /proc/self/status).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Sleeps until `fd` has the `events` or `timeout` passes; returns whether it became ready.
fn wait_fd(fd: i32, events: i16, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    n > 0
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    buf: Vec<u8>,
    events: Vec<Event>,
    /// Datagrams sent and received (for the report).
    tx: u64,
    rx: u64,
    /// Timeouts fed because str0m's deadline had already passed, and after a wait.
    due: u64,
    waited: u64,
    /// Waits that ended with a readable socket.
    woke: u64,
}

impl Peer {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
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
            buf: vec![0; 2048],
            events: Vec::new(),
            tx: 0,
            rx: 0,
            due: 0,
            waited: 0,
            woke: 0,
        }
    }

    /// Polls output until str0m returns its next deadline; sends every datagram, keeps events.
    fn flush(&mut self) -> Result<Instant, RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Transmit(t) => {
                    self.tx += 1;
                    loop {
                        match self.socket.send_to(&t.contents, t.destination) {
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                wait_fd(
                                    self.socket.as_raw_fd(),
                                    libc::POLLOUT,
                                    Duration::from_millis(10),
                                );
                            }
                            // A datagram lost locally is recovered by SCTP, as on a network.
                            _ => break,
                        }
                    }
                }
                Output::Timeout(t) => return Ok(t),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    /// Feeds one waiting datagram, if any; returns whether there was one.
    fn read_one(&mut self) -> Result<bool, RtcError> {
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, source)) => {
                self.rx += 1;
                let Ok(contents) = self.buf[..n].try_into() else {
                    return Ok(true);
                };
                self.rtc.handle_input(Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.addr,
                        contents,
                    },
                ))?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// Runs the peer until `role` says it is done or `stop` is set.
    fn drive(&mut self, role: &mut dyn Role, stop: &AtomicBool) -> Result<(), RtcError> {
        let limit = Instant::now() + RUN_LIMIT;
        loop {
            let deadline = self.flush()?;
            if !self.events.is_empty() {
                let events = std::mem::take(&mut self.events);
                role.on_events(&mut self.rtc, events);
            }
            // str0m's contract: one mutation, then drain `poll_output` to `Timeout`. So the
            // sender writes one message per turn of this loop.
            if role.write_one(&mut self.rtc) {
                continue;
            }
            if role.done() || stop.load(Ordering::Relaxed) || Instant::now() > limit {
                return Ok(());
            }
            if self.read_one()? {
                continue;
            }
            let now = Instant::now();
            if deadline > now {
                // Wake for the socket, str0m's deadline, or every 20 ms to check `stop`.
                let wait = (deadline - now).min(Duration::from_millis(20));
                if wait_fd(self.socket.as_raw_fd(), libc::POLLIN, wait) {
                    self.woke += 1;
                    continue;
                }
                self.waited += 1;
            } else {
                self.due += 1;
            }
            self.rtc.handle_input(Input::Timeout(Instant::now()))?;
        }
    }
}

/// What one side does with its events.
trait Role {
    /// Handles events (without mutating `rtc` beyond channel settings).
    fn on_events(&mut self, rtc: &mut Rtc, events: Vec<Event>);
    /// Writes at most one message; returns true when it did.
    fn write_one(&mut self, _rtc: &mut Rtc) -> bool {
        false
    }
    /// Whether this side has finished.
    fn done(&self) -> bool;
}

struct Sender {
    cid: ChannelId,
    payload: Vec<u8>,
    total: usize,
    sent: usize,
    /// The channel is open and the last write was accepted (or the buffered amount went low
    /// since it was refused).
    writable: bool,
    start: Arc<Mutex<Option<(Instant, f64)>>>,
}

impl Role for Sender {
    fn on_events(&mut self, rtc: &mut Rtc, events: Vec<Event>) {
        for e in events {
            match e {
                Event::ChannelOpen(id, _) if id == self.cid => {
                    if let Some(mut ch) = rtc.channel(self.cid) {
                        ch.set_buffered_amount_low_threshold(send_buffer() / 2);
                    }
                    *self.start.lock().expect("start") = Some((Instant::now(), cpu_seconds()));
                    self.writable = true;
                }
                Event::ChannelBufferedAmountLow(id) if id == self.cid => self.writable = true,
                _ => {}
            }
        }
    }
    fn write_one(&mut self, rtc: &mut Rtc) -> bool {
        if !self.writable || self.sent >= self.total {
            return false;
        }
        let Some(mut ch) = rtc.channel(self.cid) else {
            return false;
        };
        let n = self.payload.len().min(self.total - self.sent);
        if ch.write(true, &self.payload[..n]).expect("write") {
            self.sent += n;
            true
        } else {
            // Full: wait for ChannelBufferedAmountLow.
            self.writable = false;
            false
        }
    }
    fn done(&self) -> bool {
        false // keeps answering SACKs until the receiver has everything
    }
}

struct Receiver {
    total: usize,
    got: usize,
    end: Option<(Instant, f64)>,
}

impl Role for Receiver {
    fn on_events(&mut self, _rtc: &mut Rtc, events: Vec<Event>) {
        for e in events {
            if let Event::ChannelData(d) = e {
                self.got += d.data.len();
                if self.got >= self.total && self.end.is_none() {
                    self.end = Some((Instant::now(), cpu_seconds()));
                }
            }
        }
    }
    fn done(&self) -> bool {
        self.end.is_some()
    }
}

/// One run: returns (seconds, cpu seconds, RSS growth KiB for the connected pair), or None if it
/// stalled.
fn run_once(msg: usize, total: usize) -> Option<(f64, f64, u64)> {
    let rss0 = rss_kib();
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
    let stop = Arc::new(AtomicBool::new(false));

    let (s, st) = (start.clone(), stop.clone());
    let sender = thread::spawn(move || {
        let mut role = Sender {
            cid,
            payload: vec![0xA5u8; msg],
            total,
            sent: 0,
            writable: false,
            start: s,
        };
        l.drive(&mut role, &st).expect("sender");
        (l, role.sent)
    });
    let st = stop.clone();
    let receiver = thread::spawn(move || {
        let mut role = Receiver {
            total,
            got: 0,
            end: None,
        };
        r.drive(&mut role, &st).expect("receiver");
        st.store(true, Ordering::Relaxed);
        (r, role)
    });
    let (r, role) = receiver.join().expect("receiver");
    let rss = rss_kib().saturating_sub(rss0);
    let (l, _sent) = sender.join().expect("sender");
    let Some((t1, cpu1)) = role.end else {
        eprintln!("stalled after {} of {total} bytes", role.got);
        return None;
    };
    let (t0, cpu0) = start.lock().expect("start").expect("sender started");
    if std::env::var_os("SEGSWARM_BENCH_VERBOSE").is_some() {
        for (name, p) in [("sender", &l), ("receiver", &r)] {
            eprintln!(
                "  {name}: datagrams tx {} rx {}; timeouts due {} after wait {}; woken {}",
                p.tx, p.rx, p.due, p.waited, p.woke
            );
        }
    }
    Some(((t1 - t0).as_secs_f64(), cpu1 - cpu0, rss))
}

fn main() {
    let mb = env_usize("SEGSWARM_BENCH_MB", 200);
    let runs = env_usize("SEGSWARM_BENCH_RUNS", 3);
    let sizes: Vec<usize> = std::env::var("SEGSWARM_BENCH_MSG")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16 * 1024, 64 * 1024 - 1]);
    let netns = private_netns();
    str0m::crypto::from_feature_flags().install_process_default();
    let total = mb * 1_000_000;
    println!(
        "{STACK} data channel, loopback ({}), {mb} MB per run, {runs} runs, one thread per peer, \
         send buffer {} KiB",
        if netns {
            "private network namespace"
        } else {
            "host loopback"
        },
        send_buffer() / 1024
    );
    println!("msg_bytes  run  MB/s    cpu_s_per_GB  rss_growth_KiB");
    for msg in sizes {
        let mut rates = Vec::new();
        let mut cpus = Vec::new();
        for run in 0..runs {
            let Some((secs, cpu, rss)) = run_once(msg, total) else {
                println!("{msg:>9}  {run:>3}  stalled");
                continue;
            };
            let rate = total as f64 / 1e6 / secs;
            let cpu_per_gb = cpu / (total as f64 / 1e9);
            println!("{msg:>9}  {run:>3}  {rate:>6.1}  {cpu_per_gb:>6.2}  {rss:>8}");
            rates.push(rate);
            cpus.push(cpu_per_gb);
        }
        if rates.is_empty() {
            continue;
        }
        rates.sort_by(f64::total_cmp);
        cpus.sort_by(f64::total_cmp);
        println!(
            "RESULT stack=\"{STACK}\" msg_bytes={msg} median_MBps={:.1} median_cpu_s_per_GB={:.2}",
            rates[rates.len() / 2],
            cpus[cpus.len() / 2]
        );
    }
}
