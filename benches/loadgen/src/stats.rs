//! Counters and latency histograms shared by every simulated peer, and their summaries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::Serialize;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Event counters, updated by every peer task.
        #[derive(Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A copy of [`Counters`] at one moment.
        #[derive(Debug, Clone, Copy, Default, Serialize)]
        pub struct Snapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> Snapshot {
                Snapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl Snapshot {
            /// `self - earlier`, counter by counter (gauges included, so read gauges from `self`).
            pub fn since(&self, earlier: &Snapshot) -> Snapshot {
                Snapshot { $($name: self.$name.saturating_sub(earlier.$name),)* }
            }
        }
    };
}

counters! {
    /// WebSocket messages written to the tracker.
    msgs_sent,
    /// WebSocket text messages read from the tracker.
    msgs_recv,
    /// Announces with offers sent.
    announces_sent,
    /// Offers carried by those announces.
    offers_sent,
    /// Announce responses (`interval`/`complete`) received.
    announce_responses,
    /// Relayed offers received by a target peer.
    offers_recv,
    /// Answers sent back for relayed offers.
    answers_sent,
    /// Relayed answers received by the offering peer.
    answers_recv,
    /// `stopped` announces sent.
    stops_sent,
    /// `failure reason` messages received.
    failures,
    /// `warning message` messages received.
    warnings,
    /// Other messages (scrape responses, unknown shapes).
    other_msgs,
    /// Text messages that were not JSON.
    bad_json,
    /// Connections that failed to open (TCP, TLS or WebSocket handshake).
    connect_errors,
    /// Connections the tracker closed or broke while the peer still wanted them.
    disconnects,
    /// Messages not sent because the peer's send queue was full (the tracker is not keeping up).
    send_skipped,
    /// Connections opened successfully.
    opened,
    /// Connections finished on purpose (churn mode).
    churned,
    /// Gauge: connections open now.
    connected,
}

/// Latency histograms in microseconds, sharded so peers on different threads rarely contend.
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

const SHARDS: usize = 16;
/// Largest latency recorded (values above are clamped): 10 minutes.
const MAX_MICROS: u64 = 600_000_000;

impl Latencies {
    /// Empty histograms (3 significant digits, 1 µs to 10 min).
    pub fn new() -> Latencies {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(
                    Histogram::new_with_bounds(1, MAX_MICROS, 3)
                        .expect("static histogram bounds are valid"),
                )
            })
            .collect();
        Latencies { shards }
    }

    /// Records one latency for the peer with index `peer`.
    pub fn record(&self, peer: usize, micros: u64) {
        if let Ok(mut h) = self.shards[peer % SHARDS].lock() {
            h.saturating_record(micros.clamp(1, MAX_MICROS));
        }
    }

    /// Forgets everything recorded so far.
    pub fn reset(&self) {
        for shard in &self.shards {
            if let Ok(mut h) = shard.lock() {
                h.reset();
            }
        }
    }

    /// Percentiles over all shards.
    pub fn summary(&self) -> LatencySummary {
        let mut all =
            Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3).expect("static bounds are valid");
        for shard in &self.shards {
            if let Ok(h) = shard.lock() {
                let _ = all.add(&*h);
            }
        }
        LatencySummary {
            count: all.len(),
            p50_us: all.value_at_quantile(0.50),
            p99_us: all.value_at_quantile(0.99),
            p999_us: all.value_at_quantile(0.999),
            max_us: all.max(),
            mean_us: all.mean(),
        }
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

/// Percentiles of one latency kind, microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {} p99 {} p999 {} max {} (n={})",
            fmt_us(self.p50_us),
            fmt_us(self.p99_us),
            fmt_us(self.p999_us),
            fmt_us(self.max_us),
            self.count
        )
    }
}

/// `1234` µs → `1.23 ms`.
pub fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_all_shards() {
        let l = Latencies::new();
        for i in 0..1000u64 {
            l.record(i as usize, i + 1);
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((495..=505).contains(&s.p50_us), "p50 {}", s.p50_us);
        assert!(s.p99_us >= 985, "p99 {}", s.p99_us);
        l.reset();
        assert_eq!(l.summary().count, 0);
    }

    #[test]
    fn snapshot_difference() {
        let c = Counters::default();
        c.msgs_sent.fetch_add(5, Ordering::Relaxed);
        let a = c.snapshot();
        c.msgs_sent.fetch_add(7, Ordering::Relaxed);
        assert_eq!(c.snapshot().since(&a).msgs_sent, 7);
    }
}
