//! The harness's settings: [`HarnessConfig`] for the whole network, [`NodeNet`] for one node's
//! access link.

use super::clock::{MILLISECOND, SECOND};

/// Delays of the tracker, signalling and the origin, and whether to keep logs. Times are
/// microseconds of the harness clock.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// One-way delay between a node and the tracker, µs. Default 20 ms.
    pub tracker_latency: u64,
    /// Time to create an offer or an answer, µs. Default 5 ms.
    pub sdp_delay: u64,
    /// After an answer is accepted between two nodes that cannot connect, both hear
    /// `PeerClosed` this much later; the answerer of an offer whose node is gone gives up this
    /// much later, µs. Default 5 s.
    pub ice_failure_delay: u64,
    /// The answerer gives up an answer that the offerer never accepts after this long, µs.
    /// Default 30 s.
    pub answer_timeout: u64,
    /// HTTP time to first byte, µs. Default 100 ms.
    pub http_ttfb: u64,
    /// HTTP bodies arrive in chunks of at most this many bytes. Default: the whole body at once.
    pub http_chunk_bytes: usize,
    /// Keep a [`HarnessLog`](super::HarnessLog) of deliveries, HTTP requests, closes and peer
    /// segment bytes. Default false.
    pub log: bool,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        Self {
            tracker_latency: 20 * MILLISECOND,
            sdp_delay: 5 * MILLISECOND,
            ice_failure_delay: 5 * SECOND,
            answer_timeout: 30 * SECOND,
            http_ttfb: 100 * MILLISECOND,
            http_chunk_bytes: usize::MAX,
            log: false,
        }
    }
}

/// One node's access link and behaviour on it.
#[derive(Debug, Clone)]
pub struct NodeNet {
    /// Upload rate of segment bytes, bytes/s; a node's messages leave one after another.
    /// Default infinite (no limit).
    pub up_rate: f64,
    /// Download rate, bytes/s: HTTP chunks queue on it, and segment bytes from peers take their
    /// size at this rate. Default infinite (no limit).
    pub down_rate: f64,
    /// One-way latency to any other node, µs. Default 0.
    pub latency: u64,
    /// Unreachable nodes (behind symmetric NATs) never connect to each other: their ICE fails
    /// after [`HarnessConfig::ice_failure_delay`]. Default false.
    pub unreachable: bool,
    /// Flip the first byte of every message of segment bytes this node sends (a lying peer).
    /// Default false.
    pub corrupt_segment_bytes: bool,
}

impl Default for NodeNet {
    fn default() -> Self {
        Self {
            up_rate: f64::INFINITY,
            down_rate: f64::INFINITY,
            latency: 0,
            unreachable: false,
            corrupt_segment_bytes: false,
        }
    }
}
