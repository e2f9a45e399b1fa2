//! The [`Report`]: offload, stalls and startup figures of a run.

use super::*;

/// Results of one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Policy name.
    pub policy: String,
    /// "live" or "vod".
    pub mode: String,
    /// Viewers over the run.
    pub viewers: usize,
    /// Simulated seconds.
    pub seconds: f64,
    /// Bytes from peers over all bytes received.
    pub p2p_share: f64,
    /// Bytes served by the origin per viewer (real bytes).
    pub origin_bytes_per_viewer: f64,
    /// Bytes served by the origin in total (real bytes).
    pub origin_bytes: f64,
    /// Stalls (playback waiting for data after it started).
    pub stall_count: u64,
    /// Seconds spent stalled, all viewers.
    pub stall_seconds: f64,
    /// 95th percentile of the time from joining to playing, seconds.
    pub startup_p95_s: f64,
    /// Live: 95th percentile of the distance to the live edge, seconds.
    pub live_latency_p95_s: Option<f64>,
    /// Segments delivered to players.
    pub segments_delivered: u64,
    /// P2P transfers moved to HTTP before their deadline.
    pub p2p_rescued_by_http: u64,
    /// Mean open peer connections per viewer, sampled each second.
    pub mean_peers: f64,
    /// Peers destroyed for protocol violations or bad data.
    pub peers_destroyed: u64,
    /// Per viewer stall counts (index = viewer), for stall attribution.
    #[serde(skip)]
    pub stalls_per_viewer: Vec<u64>,
}

impl Simulation {
    pub(super) fn report(mut self) -> Report {
        let mut p2p = 0u64;
        let mut http = 0u64;
        let mut delivered = 0;
        let mut rescued = 0;
        let mut destroyed = 0;
        let mut stalls = 0;
        let mut stall_secs = 0.0;
        let mut startups = Vec::new();
        let mut per_viewer = Vec::new();
        let end = self.net.now();
        for v in 0..self.viewers.len() {
            let watching = self.alive(v);
            if watching {
                self.player_close(v);
            }
            let vw = &self.viewers[v];
            let stats = self
                .net
                .engine(v)
                .map(|e| e.stats().clone())
                .or_else(|| vw.final_stats.clone())
                .unwrap_or_default();
            p2p += stats.p2p_bytes;
            http += stats.http_bytes;
            delivered += stats.segments_delivered;
            rescued += stats.stalls_avoided;
            destroyed += stats.peers_destroyed;
            let Some(player) = vw.player.as_ref().map(|p| &p.player) else {
                per_viewer.push(0);
                continue;
            };
            let played = player.stats();
            stalls += played.stall_count;
            stall_secs += played.stall_seconds;
            per_viewer.push(played.stall_count);
            if let Some(s) = played.startup {
                startups.push(s.as_secs_f64());
            } else if watching {
                // Still starting at the end: count the time waited so far.
                startups.push((self.net.instant(end) - player.created_at()).as_secs_f64());
            }
        }
        let total = (p2p + http).max(1) as f64;
        let origin = http as f64 * self.scale;
        let latency =
            (self.cfg.mode == Mode::Live).then(|| percentile(&mut self.latency_samples, 0.95));
        Report {
            policy: self.cfg.policy.name().into(),
            mode: match self.cfg.mode {
                Mode::Live => "live".into(),
                Mode::Vod => "vod".into(),
            },
            viewers: self.cfg.viewers,
            seconds: self.cfg.seconds,
            p2p_share: p2p as f64 / total,
            origin_bytes_per_viewer: origin / self.cfg.viewers.max(1) as f64,
            origin_bytes: origin,
            stall_count: stalls,
            stall_seconds: (stall_secs * 1000.0).round() / 1000.0,
            startup_p95_s: percentile(&mut startups, 0.95),
            live_latency_p95_s: latency,
            segments_delivered: delivered,
            p2p_rescued_by_http: rescued,
            mean_peers: self.peer_samples.0 as f64 / self.peer_samples.1.max(1) as f64,
            peers_destroyed: destroyed,
            stalls_per_viewer: per_viewer,
        }
    }
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Stalls of `run` beyond those the HTTP-only `reference` had for the same viewer: the stalls P2P
/// caused.
pub fn p2p_caused_stalls(run: &Report, reference: &Report) -> u64 {
    run.stalls_per_viewer
        .iter()
        .zip(
            reference
                .stalls_per_viewer
                .iter()
                .chain(std::iter::repeat(&0)),
        )
        .map(|(a, b)| a.saturating_sub(*b))
        .sum()
}
