//! What the driver reports: [`DriverEvent`]s, [`ByteSource`]s and [`LoadError`]s.

use super::*;

/// Where a byte count came from (see [`DriverEvent::Bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteSource {
    /// Downloaded over HTTP.
    Http,
    /// Downloaded from peers.
    P2p,
    /// Uploaded to peers.
    Upload,
}

impl ByteSource {
    /// `"http"`, `"p2p"` or `"upload"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ByteSource::Http => "http",
            ByteSource::P2p => "p2p",
            ByteSource::Upload => "upload",
        }
    }
}

/// What the driver reports to its listener.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// Bytes moved since the previous report.
    Bytes {
        /// Which way and from where.
        source: ByteSource,
        /// How many.
        bytes: u64,
    },
    /// A peer's data channel opened.
    PeerConnected(PeerHandle),
    /// A connected peer went away.
    PeerClosed(PeerHandle),
    /// A requested segment was handed over.
    SegmentLoaded {
        /// Segment id.
        segment: SegmentId,
        /// How it was delivered (`Cache`: it was stored before it was asked for).
        source: DeliverySource,
        /// Where its bytes came from over the network (`Http` or `Peer`), when known (see
        /// [`Driver::segment_origin`]).
        origin: Option<DeliverySource>,
        /// Its size.
        bytes: u64,
    },
    /// A requested segment could not be loaded.
    SegmentFailed {
        /// Segment id.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
    /// The tracker socket opened.
    TrackerConnected(String),
    /// The tracker socket closed or failed to open.
    TrackerDisconnected(String),
}

/// Why [`Driver::load_segment`] gave no segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The engine could not load it (e.g. not in the playlist).
    #[error("segment failed: {0}")]
    Failed(String),
    /// The request was cancelled or the driver shut down.
    #[error("segment request cancelled")]
    Cancelled,
}
