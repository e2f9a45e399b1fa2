//! The mirror's figures, as Prometheus text (`/metrics`) and JSON (`/stats.json`).
//!
//! The daemon counts its checks ([`MirrorMetrics::record_check`]: fetches, their failures,
//! those refused for want of room in the cache, evictions) and copies what its servers count ([`MirrorMetrics::observe`]: bytes served over
//! HTTP and P2P by video, cache bytes and entries) every second and after each check. A video's
//! series stay once it was served (one per video mirrored since the start).

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use serde_json::json;

use super::daemon::CheckReport;

/// What the servers count now, cumulative since the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Body bytes served over HTTP, by video uuid.
    pub http_bytes: BTreeMap<String, u64>,
    /// Bytes sent to WebRTC peers, by video uuid (a seeder that restarted counts from 0).
    pub p2p_bytes: BTreeMap<String, u64>,
    /// Bytes of the files in the cache.
    pub cache_bytes: u64,
    /// Videos served from the cache.
    pub cache_entries: u64,
}

/// The mirror's Prometheus registry and the last figures. See the module documentation.
#[derive(Debug)]
pub struct MirrorMetrics {
    registry: Registry,
    http_bytes: IntCounterVec,
    p2p_bytes: IntCounterVec,
    cache_bytes: IntGauge,
    cache_entries: IntGauge,
    fetches: IntCounter,
    fetch_failures: IntCounter,
    cache_full: IntCounter,
    evictions: IntCounter,
    last: Mutex<Figures>,
}

impl Default for MirrorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric name");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

fn by_video(registry: &Registry, name: &str, help: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &["video"]).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

/// Adds to `counter` what `now` has more than `before` (all of `now` after a reset).
fn advance(counter: &IntCounterVec, now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) {
    for (video, &n) in now {
        let old = before.get(video).copied().unwrap_or(0);
        let delta = if n >= old { n - old } else { n };
        counter.with_label_values(&[video.as_str()]).inc_by(delta);
    }
}

impl MirrorMetrics {
    /// Every series registered, at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        Self {
            http_bytes: by_video(
                &registry,
                "segswarm_mirror_http_bytes_total",
                "Body bytes served over HTTP, by video.",
            ),
            p2p_bytes: by_video(
                &registry,
                "segswarm_mirror_p2p_bytes_total",
                "Bytes sent to WebRTC peers, by video.",
            ),
            cache_bytes: gauge(
                &registry,
                "segswarm_mirror_cache_bytes",
                "Bytes of the files in the cache.",
            ),
            cache_entries: gauge(
                &registry,
                "segswarm_mirror_cache_entries",
                "Videos served from the cache.",
            ),
            fetches: counter(
                &registry,
                "segswarm_mirror_fetches_total",
                "Video fetches attempted.",
            ),
            fetch_failures: counter(
                &registry,
                "segswarm_mirror_fetch_failures_total",
                "Video fetches that failed.",
            ),
            cache_full: counter(
                &registry,
                "segswarm_mirror_cache_full_total",
                "Video fetches not started: no room in the cache budget (counted in the failures).",
            ),
            evictions: counter(
                &registry,
                "segswarm_mirror_evictions_total",
                "Videos evicted.",
            ),
            registry,
            last: Mutex::new(Figures::default()),
        }
    }

    /// Counts what a check did.
    pub fn record_check(&self, report: &CheckReport) {
        let attempted = report.fetched.len() + report.fetch_failures.len();
        self.fetches.inc_by(attempted as u64);
        self.fetch_failures
            .inc_by(report.fetch_failures.len() as u64);
        self.cache_full.inc_by(report.cache_full.len() as u64);
        self.evictions.inc_by(report.evicted.len() as u64);
    }

    /// Takes the servers' figures now.
    pub fn observe(&self, now: Figures) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        advance(&self.http_bytes, &now.http_bytes, &last.http_bytes);
        advance(&self.p2p_bytes, &now.p2p_bytes, &last.p2p_bytes);
        self.cache_bytes
            .set(i64::try_from(now.cache_bytes).unwrap_or(i64::MAX));
        self.cache_entries
            .set(i64::try_from(now.cache_entries).unwrap_or(i64::MAX));
        *last = now;
    }

    /// The Prometheus text exposition.
    pub fn prometheus_text(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec does not fail; the metric names are valid.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The same figures as JSON (`/stats.json`).
    pub fn stats_json(&self) -> serde_json::Value {
        let total = |c: &IntCounterVec, video: &str| {
            c.get_metric_with_label_values(&[video])
                .map_or(0, |m| m.get())
        };
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let videos: serde_json::Map<String, serde_json::Value> = last
            .http_bytes
            .keys()
            .chain(last.p2p_bytes.keys())
            .map(|v| {
                let figures = json!({
                    "http_bytes": total(&self.http_bytes, v),
                    "p2p_bytes": total(&self.p2p_bytes, v),
                });
                (v.clone(), figures)
            })
            .collect();
        json!({
            "videos": videos,
            "cache": {"bytes": self.cache_bytes.get(), "entries": self.cache_entries.get()},
            "fetches": self.fetches.get(),
            "fetch_failures": self.fetch_failures.get(),
            "cache_full": self.cache_full.get(),
            "evictions": self.evictions.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_move_by_their_increase() {
        let m = MirrorMetrics::new();
        let figures = |http: u64, p2p: u64| Figures {
            http_bytes: [("v".to_owned(), http)].into(),
            p2p_bytes: [("v".to_owned(), p2p)].into(),
            cache_bytes: 10,
            cache_entries: 1,
        };
        m.observe(figures(100, 5));
        m.observe(figures(150, 5));
        // The seeder restarted: its count starts again.
        m.observe(figures(150, 3));
        m.record_check(&CheckReport {
            fetched: vec!["v".into()],
            fetch_failures: vec![("w".into(), "down".into())],
            evicted: vec!["x".into()],
            ..CheckReport::default()
        });
        let j = m.stats_json();
        assert_eq!(j["videos"]["v"]["http_bytes"], 150);
        assert_eq!(j["videos"]["v"]["p2p_bytes"], 8);
        assert_eq!(
            (j["fetches"].as_u64(), j["fetch_failures"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(j["evictions"], 1);
        assert_eq!(j["cache"]["entries"], 1);
        let text = m.prometheus_text();
        assert!(
            text.contains("segswarm_mirror_http_bytes_total{video=\"v\"} 150"),
            "{text}"
        );
        assert!(text.contains("segswarm_mirror_cache_bytes 10"), "{text}");
    }
}
