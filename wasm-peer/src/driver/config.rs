//! The driver's settings: [`DriverConfig`] and its defaults.

use super::*;

/// Settings of a [`Driver`].
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The engine's settings (swarm, HTTP bases, limits).
    pub engine: EngineConfig,
    /// Tracker WebSocket URLs; one is used at a time, the next after a failed connection.
    /// Empty = no tracker (HTTP only).
    pub trackers: Vec<String>,
    /// WebRTC settings (ICE servers, timeouts, message size, send buffer).
    pub rtc: RtcSettings,
    /// Cap of the first delay before reconnecting to the tracker (full jitter: the delay is
    /// random below the cap). Default 1 s.
    pub reconnect_min: Duration,
    /// Largest cap of the reconnect delay (it doubles with each failure in a row, and is reset only
    /// once the tracker accepted an announce). Default 30 s.
    pub reconnect_max: Duration,
    /// Least delay after the tracker closed with code 1013 (try again later) or 1001 (going away).
    /// Default 30 s.
    pub reconnect_after_going_away: Duration,
    /// Most bytes queued for one peer and not yet handed to its data channel; a peer that falls
    /// further behind is closed. Default 32 MiB.
    pub max_peer_queue_bytes: usize,
}

impl DriverConfig {
    /// Defaults around an engine configuration.
    pub fn new(engine: EngineConfig, trackers: Vec<String>) -> Self {
        Self {
            engine,
            trackers,
            rtc: RtcSettings::default(),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            reconnect_after_going_away: Duration::from_secs(30),
            max_peer_queue_bytes: 32 * 1024 * 1024,
        }
    }
}
