//! Relay mode: C long-lived peers announce with offers on a fixed interval and answer every relayed
//! offer; after a warmup, throughput and relay latency are measured over a fixed window.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::peer::{drive, Peer, Plan, Shared};
use crate::procfs::{self, ProcSample};
use crate::stats::{LatencySummary, Snapshot};
use crate::swarms::Swarms;
use crate::target::Target;

/// What to run.
pub struct RelayOptions {
    /// Connections (peers) to open.
    pub connections: usize,
    /// Re-announce interval; `None` announces once.
    pub announce_every: Option<Duration>,
    /// Unmeasured time after all connections are open.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
    /// Connection attempts in flight at once.
    pub connect_concurrency: usize,
    /// Give up waiting for the connect phase after this long.
    pub connect_timeout: Duration,
    /// Tracker process to read memory and CPU from.
    pub tracker_pid: Option<u32>,
    /// Seed for swarm choice and phases.
    pub seed: u64,
    /// Fraction of peers that are seeders (`left: 0`).
    pub seeder_fraction: f64,
}

/// Per-second rates over the measured window.
#[derive(Debug, Serialize)]
pub struct Rates {
    /// WebSocket messages sent by all peers.
    pub msgs_sent_per_s: f64,
    /// WebSocket messages received by all peers.
    pub msgs_recv_per_s: f64,
    /// Sent + received.
    pub msgs_total_per_s: f64,
    /// Announces (with offers) sent.
    pub announces_per_s: f64,
    /// Announce responses received.
    pub announce_responses_per_s: f64,
    /// Offers sent inside announces.
    pub offers_sent_per_s: f64,
    /// Offers relayed by the tracker and received by a target peer.
    pub offers_relayed_per_s: f64,
    /// Answers sent.
    pub answers_sent_per_s: f64,
    /// Answers relayed back and received by the offering peer.
    pub answers_relayed_per_s: f64,
}

/// Memory and CPU of the tracker process.
#[derive(Debug, Serialize)]
pub struct TrackerUsage {
    /// Before any connection.
    pub idle: ProcSample,
    /// All connections open, after warmup.
    pub loaded: ProcSample,
    /// End of the measured window.
    pub end: ProcSample,
    /// A few seconds after every connection closed.
    pub after_close: Option<ProcSample>,
    /// (RSS at end of window − idle RSS) / open connections, bytes.
    pub rss_bytes_per_connection: f64,
    /// Tracker CPU seconds used during the window.
    pub cpu_secs: f64,
    /// Tracker CPU use during the window, percent of one core.
    pub cpu_percent: f64,
}

/// Everything a relay run measured.
#[derive(Debug, Serialize)]
pub struct RelayReport {
    /// Connections asked for.
    pub connections_target: usize,
    /// Connections open at the end of the window.
    pub connections_open: u64,
    /// Seconds the connect phase took.
    pub connect_secs: f64,
    /// Measured window, seconds.
    pub window_secs: f64,
    /// Rates over the window.
    pub rates: Rates,
    /// Offer sent → offer received by its target.
    pub offer_latency: LatencySummary,
    /// Answer sent → answer received by the offerer.
    pub answer_latency: LatencySummary,
    /// Offer sent → answer received (signalling round trip).
    pub offer_answer_rtt: LatencySummary,
    /// Counters over the window.
    pub window: Snapshot,
    /// Counters over the whole run.
    pub totals: Snapshot,
    /// Distinct failure reasons seen.
    pub failure_reasons: Vec<String>,
    /// Tracker memory and CPU, with `--tracker-pid`.
    pub tracker: Option<TrackerUsage>,
    /// CPU seconds this load generator used during the window.
    pub loadgen_cpu_secs: f64,
}

fn sample(pid: Option<u32>) -> Option<ProcSample> {
    pid.and_then(|p| procfs::sample(p).ok())
}

/// Runs relay mode to completion.
pub async fn run(
    target: Arc<Target>,
    shared: Arc<Shared>,
    swarms: &Swarms,
    o: &RelayOptions,
) -> RelayReport {
    let idle = sample(o.tracker_pid);
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(o.connect_concurrency.max(1)));
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut tasks = JoinSet::new();
    let t_connect = Instant::now();
    for i in 0..o.connections {
        let info_hash = swarms.info_hash(swarms.pick(rng.random::<f64>()), 0);
        let peer = Peer::new(i, i as u64, info_hash, rng.random_bool(o.seeder_fraction));
        let plan = Plan {
            announce_every: o.announce_every,
            first_reannounce_in: o
                .announce_every
                .map(|p| p + p.mul_f64(rng.random::<f64>()))
                .unwrap_or_default(),
            leave_at: None,
            send_stopped: false,
            abrupt: false,
        };
        let (target, shared, stop, gate) = (
            target.clone(),
            shared.clone(),
            stop_rx.clone(),
            gate.clone(),
        );
        tasks.spawn(async move {
            let Ok(permit) = gate.acquire_owned().await else {
                return;
            };
            let ws = match tokio::time::timeout(Duration::from_secs(30), target.connect()).await {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => {
                    if shared
                        .counters
                        .connect_errors
                        .fetch_add(1, Ordering::Relaxed)
                        < 3
                    {
                        eprintln!("connect error: {e:#}");
                    }
                    return;
                }
                Err(_) => {
                    shared
                        .counters
                        .connect_errors
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            drop(permit);
            drive(ws, peer, shared, stop, plan).await;
        });
    }

    // Connect phase.
    let deadline = Instant::now() + o.connect_timeout;
    let mut last_print = Instant::now();
    loop {
        let s = shared.counters.snapshot();
        if s.opened + s.connect_errors >= o.connections as u64 || Instant::now() >= deadline {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            eprintln!("connecting: {} open, {} errors", s.opened, s.connect_errors);
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    let s = shared.counters.snapshot();
    eprintln!(
        "connected {} of {} in {:.1} s ({} errors); warming up {} s",
        s.connected,
        o.connections,
        connect_secs,
        s.connect_errors,
        o.warmup.as_secs()
    );
    tokio::time::sleep(o.warmup).await;

    // Measured window.
    let loaded = sample(o.tracker_pid);
    let me = std::process::id();
    let self0 = procfs::sample(me).ok();
    for l in [
        &shared.offer_latency,
        &shared.answer_latency,
        &shared.offer_rtt,
    ] {
        l.reset();
    }
    shared.measuring.store(true, Ordering::Relaxed);
    let w0 = shared.counters.snapshot();
    let t0 = Instant::now();
    let mut prev = w0;
    let step = Duration::from_secs(5);
    while t0.elapsed() < o.duration {
        let left = o.duration.saturating_sub(t0.elapsed());
        tokio::time::sleep(left.min(step)).await;
        let now = shared.counters.snapshot();
        let d = now.since(&prev);
        let secs = step.min(left).as_secs_f64().max(0.001);
        eprintln!(
            "t={:>4.0}s open {:>6}  sent {:>8.0}/s recv {:>8.0}/s  offers relayed {:>8.0}/s answers {:>8.0}/s  failures {} skipped {}",
            t0.elapsed().as_secs_f64(),
            now.connected,
            d.msgs_sent as f64 / secs,
            d.msgs_recv as f64 / secs,
            d.offers_recv as f64 / secs,
            d.answers_recv as f64 / secs,
            d.failures,
            d.send_skipped,
        );
        prev = now;
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let window_secs = t0.elapsed().as_secs_f64();
    let w1 = shared.counters.snapshot();
    let end = sample(o.tracker_pid);
    let self1 = procfs::sample(me).ok();
    let w = w1.since(&w0);
    let per_s = |n: u64| n as f64 / window_secs;
    let rates = Rates {
        msgs_sent_per_s: per_s(w.msgs_sent),
        msgs_recv_per_s: per_s(w.msgs_recv),
        msgs_total_per_s: per_s(w.msgs_sent + w.msgs_recv),
        announces_per_s: per_s(w.announces_sent),
        announce_responses_per_s: per_s(w.announce_responses),
        offers_sent_per_s: per_s(w.offers_sent),
        offers_relayed_per_s: per_s(w.offers_recv),
        answers_sent_per_s: per_s(w.answers_sent),
        answers_relayed_per_s: per_s(w.answers_recv),
    };
    let offer_latency = shared.offer_latency.summary();
    let answer_latency = shared.answer_latency.summary();
    let offer_answer_rtt = shared.offer_rtt.summary();

    // Close everything (close frames), then see what memory the tracker gives back.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let after_close = if o.tracker_pid.is_some() {
        tokio::time::sleep(Duration::from_secs(3)).await;
        sample(o.tracker_pid)
    } else {
        None
    };

    let tracker = match (idle, loaded, end) {
        (Some(idle), Some(loaded), Some(end)) => Some(TrackerUsage {
            rss_bytes_per_connection: (end.rss_kib.saturating_sub(idle.rss_kib) * 1024) as f64
                / (w1.connected.max(1)) as f64,
            cpu_secs: end.cpu_secs - loaded.cpu_secs,
            cpu_percent: 100.0 * (end.cpu_secs - loaded.cpu_secs) / window_secs,
            idle,
            loaded,
            end,
            after_close,
        }),
        _ => None,
    };
    RelayReport {
        connections_target: o.connections,
        connections_open: w1.connected,
        connect_secs,
        window_secs,
        rates,
        offer_latency,
        answer_latency,
        offer_answer_rtt,
        window: w,
        totals: shared.counters.snapshot(),
        failure_reasons: shared
            .failure_reasons
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default(),
        tracker,
        loadgen_cpu_secs: match (self0, self1) {
            (Some(a), Some(b)) => b.cpu_secs - a.cpu_secs,
            _ => 0.0,
        },
    }
}

/// Prints a relay report for people.
pub fn print(r: &RelayReport) {
    let x = &r.rates;
    println!("== segswarm-loadgen relay report ==");
    println!(
        "connections        {} open of {} (connect phase {:.1} s)",
        r.connections_open, r.connections_target, r.connect_secs
    );
    println!("window             {:.1} s", r.window_secs);
    println!(
        "messages           sent {:.0}/s  received {:.0}/s  total {:.0}/s",
        x.msgs_sent_per_s, x.msgs_recv_per_s, x.msgs_total_per_s
    );
    println!(
        "announces          {:.0}/s (responses {:.0}/s)",
        x.announces_per_s, x.announce_responses_per_s
    );
    println!(
        "offers             sent {:.0}/s  relayed {:.0}/s",
        x.offers_sent_per_s, x.offers_relayed_per_s
    );
    println!(
        "answers            sent {:.0}/s  relayed {:.0}/s",
        x.answers_sent_per_s, x.answers_relayed_per_s
    );
    println!("offer relay        {}", r.offer_latency);
    println!("answer relay       {}", r.answer_latency);
    println!("offer→answer rtt   {}", r.offer_answer_rtt);
    let w = &r.window;
    println!(
        "errors (window)    failures {}  warnings {}  bad json {}  disconnects {}  send skipped {}",
        w.failures, w.warnings, w.bad_json, w.disconnects, w.send_skipped
    );
    println!(
        "errors (run)       connect {}  failures {}  disconnects {}",
        r.totals.connect_errors, r.totals.failures, r.totals.disconnects
    );
    for reason in &r.failure_reasons {
        println!("  failure reason: {reason}");
    }
    if let Some(t) = &r.tracker {
        println!(
            "tracker RSS        idle {} KiB  loaded {} KiB  end {} KiB  peak {} KiB{}",
            t.idle.rss_kib,
            t.loaded.rss_kib,
            t.end.rss_kib,
            t.end.hwm_kib,
            t.after_close
                .map(|a| format!("  after close {} KiB", a.rss_kib))
                .unwrap_or_default()
        );
        println!(
            "tracker RSS/conn   {:.0} bytes ({:.2} KiB)",
            t.rss_bytes_per_connection,
            t.rss_bytes_per_connection / 1024.0
        );
        println!(
            "tracker CPU        {:.1} s in window ({:.0} % of one core)",
            t.cpu_secs, t.cpu_percent
        );
    }
    println!(
        "loadgen CPU        {:.1} s in window ({:.0} % of one core)",
        r.loadgen_cpu_secs,
        100.0 * r.loadgen_cpu_secs / r.window_secs.max(0.001)
    );
}
