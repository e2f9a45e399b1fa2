//! Prometheus metrics (`/metrics`, text format) and the `/stats.json` summary.
//!
//! Names: `segswarm_connections{transport}`, `segswarm_swarms`, `segswarm_peers{kind}`,
//! `segswarm_messages_in_total{kind}`, `segswarm_messages_out_total{kind}`,
//! `segswarm_errors_total{kind}`, `segswarm_messages_dropped_total{reason}` and the histogram `segswarm_offer_relay_seconds` (from the
//! announce carrying an offer arriving to the relayed offer being written to the recipient).
//! Counters used on the hot path are resolved once, so counting is one atomic add.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::ErrorKind;
use crate::swarm::{Roster, Totals};

/// Kinds of messages counted in and out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Announce requests and responses (WebSocket and HTTP).
    Announce,
    /// Offers (in: each offer of an announce; out: each relayed offer).
    Offer,
    /// Answers.
    Answer,
    /// Scrape requests and responses.
    Scrape,
    /// Error replies (out only).
    Failure,
}

impl MessageKind {
    const ALL: [MessageKind; 5] = [
        MessageKind::Announce,
        MessageKind::Offer,
        MessageKind::Answer,
        MessageKind::Scrape,
        MessageKind::Failure,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::Announce => "announce",
            MessageKind::Offer => "offer",
            MessageKind::Answer => "answer",
            MessageKind::Scrape => "scrape",
            MessageKind::Failure => "failure",
        }
    }
}

/// Why a relayed message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The recipient's outbound queue was full (it reads too slowly).
    QueueFull,
    /// The recipient left (its connection closed, or it left the swarm) before the relay.
    RecipientGone,
    /// A ping over `limits.max_pings_per_sec` was not answered.
    ControlFlood,
}

impl DropReason {
    const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::RecipientGone,
        DropReason::ControlFlood,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::RecipientGone => "recipient_gone",
            DropReason::ControlFlood => "control_flood",
        }
    }
}

/// The tracker's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub ws_connections: IntGauge,
    /// Open HTTP (not upgraded) connections.
    pub http_connections: IntGauge,
    swarms: IntGauge,
    seeders: IntGauge,
    leechers: IntGauge,
    messages_in: Vec<IntCounter>,
    messages_out: Vec<IntCounter>,
    errors: Vec<IntCounter>,
    dropped: Vec<IntCounter>,
    /// Offer relay latency, seconds.
    pub offer_relay: Histogram,
    /// The busiest swarms of `/stats.json` and when they were ranked.
    top_swarms: Mutex<Option<(Instant, Vec<serde_json::Value>)>>,
}

/// Failure to build the registry (duplicate names; a bug).
pub type MetricsError = prometheus::Error;

impl Metrics {
    /// A fresh registry with every metric registered and every label pre-created.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let connections = IntGaugeVec::new(
            Opts::new("segswarm_connections", "Open connections by transport"),
            &["transport"],
        )?;
        let swarms = IntGauge::new("segswarm_swarms", "Swarms with at least one peer")?;
        let peers = IntGaugeVec::new(
            Opts::new("segswarm_peers", "Peers by kind (seeder or leecher)"),
            &["kind"],
        )?;
        let messages_in = IntCounterVec::new(
            Opts::new("segswarm_messages_in_total", "Messages received by kind"),
            &["kind"],
        )?;
        let messages_out = IntCounterVec::new(
            Opts::new("segswarm_messages_out_total", "Messages sent by kind"),
            &["kind"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "segswarm_errors_total",
                "Refused requests and dropped connections by kind",
            ),
            &["kind"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "segswarm_messages_dropped_total",
                "Relayed offers and answers not delivered, by reason",
            ),
            &["reason"],
        )?;
        let offer_relay = Histogram::with_opts(
            HistogramOpts::new(
                "segswarm_offer_relay_seconds",
                "Time from receiving an offer to writing it to the recipient",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(swarms.clone()))?;
        registry.register(Box::new(peers.clone()))?;
        registry.register(Box::new(messages_in.clone()))?;
        registry.register(Box::new(messages_out.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(offer_relay.clone()))?;
        let by_kind = |vec: &IntCounterVec| {
            MessageKind::ALL
                .iter()
                .map(|k| vec.with_label_values(&[k.label()]))
                .collect::<Vec<_>>()
        };
        Ok(Metrics {
            ws_connections: connections.with_label_values(&["ws"]),
            http_connections: connections.with_label_values(&["http"]),
            swarms,
            seeders: peers.with_label_values(&["seeder"]),
            leechers: peers.with_label_values(&["leecher"]),
            messages_in: by_kind(&messages_in),
            messages_out: by_kind(&messages_out),
            errors: ErrorKind::ALL
                .iter()
                .map(|k| errors.with_label_values(&[k.label()]))
                .collect(),
            dropped: DropReason::ALL
                .iter()
                .map(|r| dropped.with_label_values(&[r.label()]))
                .collect(),
            offer_relay,
            registry,
            top_swarms: Mutex::new(None),
        })
    }

    fn kind_index(kind: MessageKind) -> usize {
        MessageKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0)
    }

    /// Counts `n` received messages.
    pub fn message_in(&self, kind: MessageKind, n: u64) {
        self.messages_in[Self::kind_index(kind)].inc_by(n);
    }

    /// Counts `n` sent messages.
    pub fn message_out(&self, kind: MessageKind, n: u64) {
        self.messages_out[Self::kind_index(kind)].inc_by(n);
    }

    /// Counts an error.
    pub fn error(&self, kind: ErrorKind) {
        let index = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.errors[index].inc();
    }

    /// Counts a relayed message that was not delivered.
    pub fn dropped(&self, reason: DropReason) {
        let index = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.dropped[index].inc();
    }

    /// Total of one error kind so far.
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        let index = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.errors[index].get()
    }

    /// Total messages received and sent so far.
    pub fn message_totals(&self) -> (u64, u64) {
        (
            self.messages_in.iter().map(IntCounter::get).sum(),
            self.messages_out.iter().map(IntCounter::get).sum(),
        )
    }

    /// Total errors so far.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().map(IntCounter::get).sum()
    }

    /// Sets the swarm and peer gauges from roster totals.
    pub fn set_totals(&self, totals: &Totals) {
        self.swarms.set(totals.swarms as i64);
        self.seeders.set(totals.seeders as i64);
        self.leechers.set(totals.leechers as i64);
    }

    /// The Prometheus text exposition, with gauges refreshed from the roster.
    pub fn render(&self, roster: &Roster) -> String {
        self.set_totals(&roster.totals());
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// `/stats.json`: totals and the `top` busiest swarms, ranked at most once per
    /// `cache_for` (the ranking visits every swarm; the totals do not).
    pub fn stats_json(
        &self,
        roster: &Roster,
        top: usize,
        cache_for: Duration,
        now: Instant,
    ) -> String {
        let totals = roster.totals();
        self.set_totals(&totals);
        let top_swarms = {
            let mut cached = self.top_swarms.lock().unwrap_or_else(|e| e.into_inner());
            match &*cached {
                Some((at, list)) if now.saturating_duration_since(*at) < cache_for => list.clone(),
                _ => {
                    let list: Vec<serde_json::Value> = roster
                        .top_swarms(top)
                        .into_iter()
                        .map(|(ih, seeders, leechers)| {
                            serde_json::json!({"info_hash": ih.to_hex(), "seeders": seeders, "leechers": leechers})
                        })
                        .collect();
                    *cached = Some((now, list.clone()));
                    list
                }
            }
        };
        serde_json::json!({
            "connections": self.ws_connections.get() + self.http_connections.get(),
            "ws_connections": self.ws_connections.get(),
            "http_connections": self.http_connections.get(),
            "swarms": totals.swarms,
            "seeders": totals.seeders,
            "leechers": totals.leechers,
            "peers": totals.seeders + totals.leechers,
            "top_swarms": top_swarms,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AnnounceEvent, Id20};
    use crate::swarm::RosterSettings;
    use std::time::Instant;

    #[test]
    fn render_has_contract_names() {
        let m = Metrics::new().unwrap();
        m.message_in(MessageKind::Offer, 3);
        m.error(ErrorKind::UnknownOffer);
        m.offer_relay.observe(0.001);
        m.dropped(DropReason::QueueFull);
        m.dropped(DropReason::QueueFull);
        let text = m.render(&Roster::new(RosterSettings::default()));
        for needle in [
            "segswarm_connections{transport=\"ws\"} 0",
            "segswarm_swarms 0",
            "segswarm_peers{kind=\"seeder\"} 0",
            "segswarm_messages_in_total{kind=\"offer\"} 3",
            "segswarm_messages_out_total{kind=\"announce\"} 0",
            "segswarm_errors_total{kind=\"unknown_offer\"} 1",
            "segswarm_errors_total{kind=\"malformed_json\"} 0",
            "segswarm_offer_relay_seconds_count 1",
            "segswarm_messages_dropped_total{reason=\"queue_full\"} 2",
            "segswarm_messages_dropped_total{reason=\"recipient_gone\"} 0",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }

    #[test]
    fn stats_json_lists_busiest_swarms() {
        let m = Metrics::new().unwrap();
        let r = Roster::new(RosterSettings::default());
        let now = Instant::now();
        let mut rng = rand::rng();
        for (conn, (ih, peer)) in [(1u8, 1u8), (2, 2), (2, 3)].into_iter().enumerate() {
            r.ws_announce(
                conn as u64,
                Id20([ih; 20]),
                Id20([peer; 20]),
                AnnounceEvent::Started,
                false,
                &[],
                now,
                &mut rng,
            )
            .unwrap();
        }
        let v: serde_json::Value =
            serde_json::from_str(&m.stats_json(&r, 1, Duration::ZERO, Instant::now())).unwrap();
        assert_eq!(v["swarms"], 2);
        assert_eq!(v["peers"], 3);
        assert_eq!(v["leechers"], 3);
        assert_eq!(v["top_swarms"][0]["info_hash"], "02".repeat(20));
        assert_eq!(v["top_swarms"][0]["leechers"], 2);
        assert_eq!(v["top_swarms"].as_array().unwrap().len(), 1);
    }
}
