//! The scheduler's settings: [`SchedulerConfig`] and its defaults.

use super::*;

/// Settings of a [`Scheduler`]. Every limit is named here with its default.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Policy to follow. Default: [`Policy::Segswarm`].
    pub policy: Policy,
    /// Most HTTP downloads at once. Default 2 (as p2p-media-loader).
    pub max_http_downloads: usize,
    /// Most P2P downloads at once. Default 3 (as p2p-media-loader).
    pub max_p2p_downloads: usize,
    /// Segswarm: a segment whose deadline is closer than the expected HTTP download time plus this
    /// margin is loaded over HTTP. Default 3 s.
    pub safety_margin: Duration,
    /// Segswarm: how far ahead of the playhead VOD segments are prefetched. Default 60 s.
    pub vod_prefetch_window: Duration,
    /// Segswarm: how far ahead of the playhead live segments are considered. Default 120 s.
    pub live_window: Duration,
    /// Segswarm VOD: a segment nobody near us has is fetched over HTTP once it is due within this
    /// time. Default 20 s.
    pub vod_http_lead: Duration,
    /// Segswarm VOD: while no peer is connected yet and the tracker has not reported us alone,
    /// segments not yet urgent wait this long (from the first plan) for peers instead of going to
    /// HTTP at [`SchedulerConfig::vod_http_lead`]. Default 3 s.
    pub vod_peer_wait: Duration,
    /// Segswarm: while no connected peer has announced what it holds yet and one of them
    /// connected less than this long ago, segments that are not urgent are not fetched early over
    /// HTTP (urgent ones still are). Default 500 ms (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub first_announce_wait: Duration,
    /// Segswarm VOD: each peer fetches a segment nobody near it holds or loads once it is due
    /// within a random share of [`SchedulerConfig::vod_http_lead`], between `1 − this` and 1, so
    /// that viewers watching the same part do not all fetch it at once (the first relays it to
    /// the others). 0 turns it off. Default 0.5.
    pub vod_seed_spread: f64,
    /// Segswarm live: a brand-new segment is fetched over HTTP by each peer with probability
    /// `max(live_min_seeds / swarm size, live_http_seeds / 2^g, ...)`, where `g` is how many times
    /// the holders can double (peer to peer) before the segment turns urgent; the others wait for it
    /// from peers. This is the expected number of early HTTP fetches per doubling tree. Default
    /// 0.25 (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub live_http_seeds: f64,
    /// Segswarm live: how many transfer times one doubling of a segment's holders takes (holders
    /// are also busy with other segments and requests meet busy holders). Default 1.5.
    pub live_doubling_factor: f64,
    /// Segswarm live: fewest early HTTP fetches wanted in the whole swarm per segment (the swarm
    /// size comes from the tracker). Default 0 (off; [`SchedulerConfig::live_seed_spread`] gets a
    /// small swarm its one fetch per segment) (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub live_min_seeds: f64,
    /// Segswarm live: how many of the newest segments count as the live edge (seeded over HTTP by
    /// a few peers as soon as they appear). Default 2.
    pub live_edge_segments: usize,
    /// Segswarm live: a peer that did not draw an early HTTP fetch of a new segment still fetches
    /// it when, at a random point within this share of the segment's slack (time left minus HTTP
    /// time and safety margin, when first seen), none of its peers holds or loads it. In a small
    /// swarm this makes about one peer fetch each segment and relay it to the others. 0 turns it
    /// off. Default 0.5.
    pub live_seed_spread: f64,
    /// Segswarm: when no free peer holds a segment whole, ask a peer that announced it as loading
    /// (the engine relays a segment while it downloads, see `EngineConfig::relay_partial`).
    /// p2p-media-loader peers answer such requests with `SegmentAbsent`. Default true.
    pub request_from_loading: bool,
    /// A P2P download that received no byte for this long is abandoned. Default 2 s (as
    /// p2p-media-loader's `p2pNotReceivingBytesTimeoutMs`).
    pub p2p_stall_timeout: Duration,
    /// An HTTP download that received no byte for this long fails. Default 3 s (as
    /// p2p-media-loader's `httpNotReceivingBytesTimeoutMs`).
    pub http_stall_timeout: Duration,
    /// How long a failed HTTP base URL is skipped (doubled for each further failure). Default 10 s.
    pub http_base_backoff: Duration,
    /// How long a peer that answered `SegmentAbsent` is not asked again. Default 1 s.
    pub peer_busy_backoff: Duration,
    /// Weight of the newest sample in the throughput averages (0..1). Default 0.3.
    pub ewma_alpha: f64,
    /// Throughput assumed for a peer before any measurement, bytes/s. Default 250 000.
    pub initial_peer_rate: f64,
    /// Throughput assumed for an HTTP base before any measurement, bytes/s. Default 1 000 000.
    pub initial_http_rate: f64,
    /// Time to first byte assumed for a request (HTTP or P2P). Default 200 ms.
    pub request_latency: Duration,
    /// Segment size assumed when the engine knows none, bytes. Default 1 000 000.
    pub default_segment_bytes: u64,
    /// Baseline: high-demand window (loaded over HTTP first). Default 15 s.
    pub baseline_high_demand_window: Duration,
    /// Baseline: HTTP download window. Default 3000 s.
    pub baseline_http_window: Duration,
    /// Baseline: P2P download window. Default 6000 s.
    pub baseline_p2p_window: Duration,
    /// Baseline: base interval of the random HTTP download timer (the timer fires after
    /// `base + random(0..base × connected peers)`). Default 1 s.
    pub baseline_random_http_interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            policy: Policy::Segswarm,
            max_http_downloads: 2,
            max_p2p_downloads: 3,
            safety_margin: Duration::from_secs(3),
            vod_prefetch_window: Duration::from_secs(60),
            live_window: Duration::from_secs(120),
            vod_http_lead: Duration::from_secs(20),
            vod_peer_wait: Duration::from_secs(3),
            first_announce_wait: Duration::from_millis(500),
            vod_seed_spread: 0.5,
            live_http_seeds: 0.25,
            live_min_seeds: 0.0,
            live_doubling_factor: 1.5,
            live_edge_segments: 2,
            live_seed_spread: 0.5,
            request_from_loading: true,
            p2p_stall_timeout: Duration::from_secs(2),
            http_stall_timeout: Duration::from_secs(3),
            http_base_backoff: Duration::from_secs(10),
            peer_busy_backoff: Duration::from_secs(1),
            ewma_alpha: 0.3,
            initial_peer_rate: 250_000.0,
            initial_http_rate: 1_000_000.0,
            request_latency: Duration::from_millis(200),
            default_segment_bytes: 1_000_000,
            baseline_high_demand_window: Duration::from_secs(15),
            baseline_http_window: Duration::from_secs(3000),
            baseline_p2p_window: Duration::from_secs(6000),
            baseline_random_http_interval: Duration::from_secs(1),
        }
    }
}
