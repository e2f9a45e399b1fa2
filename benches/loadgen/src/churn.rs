//! Churn mode: peers keep arriving at a bounded rate, announce with offers, answer what they get,
//! and leave after a short life (with a `stopped` announce, a close frame, or a dropped socket);
//! the tracker's resident memory is sampled on a fixed period so growth shows.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::peer::{drive, Peer, Plan, Shared};
use crate::procfs::{self, ProcSample};
use crate::stats::{LatencySummary, Snapshot};
use crate::swarms::Swarms;
use crate::target::Target;

/// What to run.
pub struct ChurnOptions {
    /// Most peers alive at once.
    pub max_live: usize,
    /// New connections per second.
    pub rate: f64,
    /// Mean life of a peer (each lives 0.5–1.5 times this).
    pub hold: Duration,
    /// Total churn time.
    pub duration: Duration,
    /// RSS sampling period.
    pub sample_every: Duration,
    /// Swarm generations rotate this often, so old swarms empty out.
    pub rotate: Duration,
    /// Tracker process to sample.
    pub tracker_pid: Option<u32>,
    /// Seed.
    pub seed: u64,
}

/// One periodic sample.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnSample {
    /// Seconds since churn started.
    pub t_s: u64,
    /// Tracker RSS, KiB.
    pub rss_kib: Option<u64>,
    /// Peers alive now.
    pub live: u64,
    /// Connections opened so far.
    pub opened: u64,
    /// Peers that left on purpose so far.
    pub churned: u64,
    /// Connect errors so far.
    pub connect_errors: u64,
    /// Failure reasons received so far.
    pub failures: u64,
}

/// Everything a churn run measured.
#[derive(Debug, Serialize)]
pub struct ChurnReport {
    /// Periodic samples, the first before any connection.
    pub samples: Vec<ChurnSample>,
    /// Tracker usage a few seconds after the last peer left.
    pub after_drain: Option<ProcSample>,
    /// Arrivals skipped because `max_live` peers were alive.
    pub arrivals_skipped: u64,
    /// Counters over the run.
    pub totals: Snapshot,
    /// Offer relay latency over the run.
    pub offer_latency: LatencySummary,
    /// Distinct failure reasons.
    pub failure_reasons: Vec<String>,
}

fn take_sample(shared: &Shared, pid: Option<u32>, t0: Instant) -> ChurnSample {
    let s = shared.counters.snapshot();
    let sample = ChurnSample {
        t_s: t0.elapsed().as_secs(),
        rss_kib: pid.and_then(|p| procfs::sample(p).ok()).map(|p| p.rss_kib),
        live: s.connected,
        opened: s.opened,
        churned: s.churned,
        connect_errors: s.connect_errors,
        failures: s.failures,
    };
    eprintln!(
        "churn t={:>5}s rss={} KiB live={} opened={} churned={} connect_errors={} failures={}",
        sample.t_s,
        sample
            .rss_kib
            .map(|r| r.to_string())
            .unwrap_or_else(|| "?".into()),
        sample.live,
        sample.opened,
        sample.churned,
        sample.connect_errors,
        sample.failures
    );
    sample
}

/// Runs churn mode to completion.
pub async fn run(
    target: Arc<Target>,
    shared: Arc<Shared>,
    swarms: &Swarms,
    o: &ChurnOptions,
) -> ChurnReport {
    shared.measuring.store(true, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let live = Arc::new(Semaphore::new(o.max_live.max(1)));
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut tasks = JoinSet::new();
    let t0 = Instant::now();
    let mut samples = vec![take_sample(&shared, o.tracker_pid, t0)];
    let mut next_sample = t0 + o.sample_every;
    let mut arrivals = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate.max(0.01)));
    arrivals.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut skipped = 0u64;
    let mut next_id = 0u64;
    while t0.elapsed() < o.duration {
        arrivals.tick().await;
        while tasks.try_join_next().is_some() {}
        if Instant::now() >= next_sample {
            samples.push(take_sample(&shared, o.tracker_pid, t0));
            next_sample += o.sample_every;
        }
        let Ok(permit) = live.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let epoch = t0.elapsed().as_secs() / o.rotate.as_secs().max(1);
        let info_hash = swarms.info_hash(swarms.pick(rng.random::<f64>()), epoch);
        let peer = Peer::new(next_id as usize, next_id, info_hash, rng.random_bool(0.25));
        next_id += 1;
        let leaving = rng.random::<f64>();
        let plan = Plan {
            announce_every: None,
            first_reannounce_in: Duration::ZERO,
            leave_at: Some(Instant::now() + o.hold.mul_f64(0.5 + rng.random::<f64>())),
            send_stopped: leaving < 0.5,
            abrupt: leaving >= 0.75,
        };
        let (target, shared, stop) = (target.clone(), shared.clone(), stop_rx.clone());
        tasks.spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(Duration::from_secs(30), target.connect()).await {
                Ok(Ok(ws)) => {
                    drive(ws, peer, shared, stop, plan).await;
                }
                _ => {
                    shared
                        .counters
                        .connect_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    samples.push(take_sample(&shared, o.tracker_pid, t0));
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_drain = o.tracker_pid.and_then(|p| procfs::sample(p).ok());
    shared.measuring.store(false, Ordering::Relaxed);
    ChurnReport {
        samples,
        after_drain,
        arrivals_skipped: skipped,
        totals: shared.counters.snapshot(),
        offer_latency: shared.offer_latency.summary(),
        failure_reasons: shared
            .failure_reasons
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default(),
    }
}

/// Prints a churn report for people.
pub fn print(r: &ChurnReport) {
    println!("== segswarm-loadgen churn report ==");
    println!("    t(s)    RSS(KiB)     live    opened   churned");
    for s in &r.samples {
        println!(
            "{:>8} {:>11} {:>8} {:>9} {:>9}",
            s.t_s,
            s.rss_kib
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into()),
            s.live,
            s.opened,
            s.churned
        );
    }
    if let Some(a) = &r.after_drain {
        println!(
            "after all peers left: RSS {} KiB (peak {} KiB)",
            a.rss_kib, a.hwm_kib
        );
    }
    let t = &r.totals;
    println!(
        "connections opened {}  left on purpose {}  connect errors {}  disconnects {}  arrivals skipped (max live) {}",
        t.opened, t.churned, t.connect_errors, t.disconnects, r.arrivals_skipped
    );
    println!(
        "announces {}  stopped {}  offers relayed {}  answers relayed {}  failures {}",
        t.announces_sent, t.stops_sent, t.offers_recv, t.answers_recv, t.failures
    );
    println!("offer relay        {}", r.offer_latency);
    for reason in &r.failure_reasons {
        println!("  failure reason: {reason}");
    }
}
