//! The simulation's scenario: [`Mode`], [`SimPolicy`], [`SimConfig`] and its defaults.

/// Live stream or video on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live stream with a sliding playlist.
    Live,
    /// A video on demand watched from the start.
    Vod,
}

/// Which delivery the viewers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPolicy {
    /// segswarm's scheduler.
    Segswarm,
    /// p2p-media-loader v2's default scheduling.
    Baseline,
    /// No peers at all: every byte over HTTP (the reference for stall attribution).
    HttpOnly,
}

impl SimPolicy {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            SimPolicy::Segswarm => "segswarm",
            SimPolicy::Baseline => "baseline",
            SimPolicy::HttpOnly => "http-only",
        }
    }
}

/// A scenario. Every field has a documented default ([`SimConfig::default`]).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Viewers over the whole run. Default 100.
    pub viewers: usize,
    /// Live or VOD. Default live.
    pub mode: Mode,
    /// Simulated seconds. Default 300.
    pub seconds: f64,
    /// Seed of the scenario and of every engine. Default 1.
    pub seed: u64,
    /// Delivery policy. Default segswarm.
    pub policy: SimPolicy,
    /// Video bitrate, bits/s. Default 2 000 000.
    pub bitrate_bps: f64,
    /// Segment duration, seconds. Default 4.
    pub segment_seconds: f64,
    /// Mean peer upload rate as a multiple of the bitrate. Default 1.5.
    pub upload_ratio: f64,
    /// Mean download rate as a multiple of the bitrate. Default 8.
    pub download_ratio: f64,
    /// Each viewer's rates are the mean times a uniform factor in `[1 - spread, 1 + spread]`.
    /// Default 0.3.
    pub bandwidth_spread: f64,
    /// Share of viewers that cannot connect to each other (two such viewers never connect).
    /// Default 0.1.
    pub unreachable_share: f64,
    /// One-way latency of a viewer's access link, milliseconds, uniform in this range.
    /// Default 10..60.
    pub latency_ms: (f64, f64),
    /// Viewers join uniformly over this many seconds from the start. Default 60.
    pub join_window: f64,
    /// Share of viewers that leave before the end, at a uniform time after joining. Default 0.1.
    pub leave_share: f64,
    /// Live: segments in the sliding playlist. Default 15 (one minute of 4 s segments).
    pub live_playlist_segments: usize,
    /// Live: the player starts this many segments behind the live edge. Default 5.
    pub live_sync_segments: usize,
    /// The player requests segments while its buffer is shorter than this, seconds. Default 15
    /// (p2p-media-loader sets hls.js's `maxBufferLength` to its 15 s high-demand window).
    pub player_buffer_secs: f64,
    /// Seconds buffered before playback starts or resumes after a stall. Default 4.
    pub startup_buffer_secs: f64,
    /// HTTP time to first byte, milliseconds. Default 100.
    pub http_ttfb_ms: f64,
    /// Most peer connections per viewer. Default 20.
    pub max_peers: usize,
    /// Re-announce interval the tracker sends, seconds. Default 120.
    pub tracker_interval_secs: u64,
    /// Size a segment is shrunk to, bytes (see the module docs). Default 2048.
    pub scaled_segment_bytes: usize,
    /// Data-channel message size in real bytes (scaled like segments). Default 65535.
    pub message_bytes: usize,
    /// Verify peers' segments against a SHA-256 manifest. Default true.
    pub verify: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            viewers: 100,
            mode: Mode::Live,
            seconds: 300.0,
            seed: 1,
            policy: SimPolicy::Segswarm,
            bitrate_bps: 2_000_000.0,
            segment_seconds: 4.0,
            upload_ratio: 1.5,
            download_ratio: 8.0,
            bandwidth_spread: 0.3,
            unreachable_share: 0.1,
            latency_ms: (10.0, 60.0),
            join_window: 60.0,
            leave_share: 0.1,
            live_playlist_segments: 15,
            live_sync_segments: 5,
            player_buffer_secs: 15.0,
            startup_buffer_secs: 4.0,
            http_ttfb_ms: 100.0,
            max_peers: 20,
            tracker_interval_secs: 120,
            scaled_segment_bytes: 2048,
            message_bytes: 65_535,
            verify: true,
        }
    }
}
