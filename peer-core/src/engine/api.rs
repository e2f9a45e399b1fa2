//! What goes in and out of the engine: [`IoEvent`]s in; [`Transmit`], [`RtcCommand`],
//! [`HttpCommand`] and [`Event`] out; segment descriptions, statistics.

use super::*;

/// An opaque handle for one HTTP request, chosen by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpHandle(pub u64);

/// One segment of the playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// Wire id (media sequence for live, playlist index for VOD).
    pub id: SegmentId,
    /// Path appended to an HTTP base URL; its file name is the integrity manifest key.
    pub path: String,
    /// Media time of the segment's start, seconds.
    pub start: f64,
    /// Duration, seconds.
    pub duration: f64,
    /// Expected size in bytes, if known.
    pub size_hint: Option<u64>,
    /// The segment's byte range within the resource at `path` (HLS `#EXT-X-BYTERANGE`), end
    /// exclusive; `None` = the whole resource. HTTP fetches ask for this range and the integrity
    /// manifest is looked up by it.
    pub byte_range: Option<std::ops::Range<u64>>,
}

/// Where a segment's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySource {
    /// Already in the store.
    Cache,
    /// Loaded over HTTP from the base URL with this index (the last source of a resumed download).
    Http(usize),
    /// Loaded from this peer.
    Peer(PeerHandle),
}

/// Something the network or the driver's IO did: fed to [`Engine::handle_event`].
#[derive(Debug, Clone)]
pub enum IoEvent {
    /// The tracker socket opened.
    TrackerConnected,
    /// The tracker socket closed.
    TrackerDisconnected,
    /// A text frame from the tracker, read once by the driver with [`TrackerFrame::parse`]; one
    /// longer than [`TrackerClientConfig::max_message_bytes`] is refused.
    TrackerMessage(TrackerFrame),
    /// One offer asked for with [`RtcCommand::CreateOffers`] was made (`sdp`), or failed
    /// (`None`). Every handle of the batch must be reported; the engine announces them together.
    OfferCreated {
        /// The connection.
        peer: PeerHandle,
        /// Offer SDP; `None` if it could not be made.
        sdp: Option<String>,
    },
    /// An answer made for [`RtcCommand::CreateAnswer`].
    AnswerCreated {
        /// The connection.
        peer: PeerHandle,
        /// Answer SDP.
        sdp: String,
    },
    /// A peer's data channel opened.
    PeerConnected(PeerHandle),
    /// A peer connection closed or failed.
    PeerClosed(PeerHandle),
    /// The driver's send queue to this peer went past its byte bound (the peer does not read
    /// what it asks for): the engine destroys the peer ([`Stats::peers_send_overrun`]).
    PeerSendOverrun(PeerHandle),
    /// A data-channel message from a peer.
    PeerMessage {
        /// The peer.
        peer: PeerHandle,
        /// The message.
        data: Bytes,
    },
    /// An HTTP response began; `content_length` is the number of body bytes that will follow.
    HttpStarted {
        /// The request.
        request: HttpHandle,
        /// Body bytes to follow, if known.
        content_length: Option<u64>,
    },
    /// Body bytes of an HTTP response.
    HttpChunk {
        /// The request.
        request: HttpHandle,
        /// The bytes.
        data: Bytes,
    },
    /// An HTTP response ended normally.
    HttpCompleted(HttpHandle),
    /// An HTTP request failed (status, network error).
    HttpFailed {
        /// The request.
        request: HttpHandle,
        /// Why.
        reason: String,
    },
}

/// Bytes to send: [`Engine::poll_transmit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Transmit {
    /// A text frame for the tracker.
    Tracker(String),
    /// A data-channel message for a peer.
    Peer {
        /// The peer.
        peer: PeerHandle,
        /// The message.
        data: Bytes,
        /// Whether the message is raw segment bytes (else a command part).
        segment_bytes: bool,
    },
}

/// Peer-connection work for the driver: [`Engine::poll_rtc`].
#[derive(Debug, Clone, PartialEq)]
pub enum RtcCommand {
    /// Create one WebRTC offer per handle and report each with [`IoEvent::OfferCreated`].
    CreateOffers(Vec<PeerHandle>),
    /// Create an answer to a remote offer on a new connection `peer`; report with
    /// [`IoEvent::AnswerCreated`].
    CreateAnswer {
        /// The new connection.
        peer: PeerHandle,
        /// The remote offer SDP.
        offer_sdp: String,
    },
    /// Apply a remote answer to our offer `peer`.
    AcceptAnswer {
        /// Our connection.
        peer: PeerHandle,
        /// The answer SDP.
        answer_sdp: String,
    },
    /// Close (destroy) a peer connection.
    Close(PeerHandle),
}

/// HTTP work for the driver: [`Engine::poll_http`].
#[derive(Debug, Clone, PartialEq)]
pub enum HttpCommand {
    /// Start a GET; report it with the `Http*` [`IoEvent`]s.
    Get {
        /// Handle to report the response with.
        request: HttpHandle,
        /// Full URL.
        url: String,
        /// `Range: bytes=N-` when resuming (counted from the start of `byte_range` if set).
        range_from: Option<u64>,
        /// The segment's byte range within the resource ([`SegmentInfo::byte_range`]), end
        /// exclusive: fetch only these bytes. `None` = the whole resource.
        byte_range: Option<std::ops::Range<u64>>,
    },
    /// Abort a request.
    Abort(HttpHandle),
}

/// What happened, for the application: [`Engine::poll_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A segment asked for with [`Engine::want_segment`] is available.
    SegmentReady {
        /// Segment.
        segment: SegmentId,
        /// Its bytes.
        data: Bytes,
        /// Where it came from.
        source: DeliverySource,
    },
    /// A segment asked for cannot be loaded (not in the playlist).
    SegmentFailed {
        /// Segment.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
    /// A downloaded segment passed its checks and was stored (wanted or prefetched).
    SegmentStored {
        /// Segment.
        segment: SegmentId,
        /// Where its bytes came from (never [`DeliverySource::Cache`]).
        source: DeliverySource,
    },
    /// Segment bytes received from an HTTP base or a peer.
    BytesReceived {
        /// The HTTP base or the peer.
        source: DeliverySource,
        /// How many.
        bytes: u64,
    },
    /// Segment bytes sent to a peer.
    BytesSent {
        /// The peer.
        peer: PeerHandle,
        /// How many.
        bytes: u64,
    },
    /// A peer's data channel opened.
    PeerConnected(PeerHandle),
    /// A connected peer closed or was destroyed.
    PeerClosed(PeerHandle),
}

/// Transfer statistics of an [`Engine`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Body bytes received over HTTP, per base URL index.
    pub http_bytes_by_base: VecMap<usize, u64>,
    /// Segment bytes received per peer.
    pub p2p_bytes_by_peer: VecMap<PeerHandle, u64>,
    /// All HTTP body bytes received.
    pub http_bytes: u64,
    /// All segment bytes received from peers.
    pub p2p_bytes: u64,
    /// Segment bytes sent to peers.
    pub uploaded_bytes: u64,
    /// Segments stored after an HTTP download.
    pub segments_http: u64,
    /// Segments stored after a P2P download.
    pub segments_p2p: u64,
    /// Segments handed to the player.
    pub segments_delivered: u64,
    /// P2P transfers moved to HTTP before their deadline (stalls avoided).
    pub stalls_avoided: u64,
    /// Peers whose data channel opened.
    pub peers_connected: u64,
    /// Peers destroyed for protocol violations or bad data.
    pub peers_destroyed: u64,
    /// Peers banned for bad hashes.
    pub peers_banned: u64,
    /// Segments whose hash did not match the manifest.
    pub hash_mismatches: u64,
    /// Upload requests that waited in the queue for a slot.
    pub upload_requests_queued: u64,
    /// Upload requests answered `SegmentAbsent` because the slots and the queue were full.
    pub upload_requests_refused: u64,
    /// `SegmentRequest`s repeating the segment being sent or just sent to the same peer
    /// (see [`EngineConfig::max_repeated_requests`]).
    pub upload_requests_repeated: u64,
    /// Peers banned for repeating requests past [`EngineConfig::max_repeated_requests`] (also
    /// counted in `peers_banned`).
    pub peers_banned_repeats: u64,
    /// Peers destroyed because the driver's send queue to them overflowed
    /// ([`IoEvent::PeerSendOverrun`]).
    pub peers_send_overrun: u64,
    /// Segments from peers held because the manifest did not list them yet
    /// ([`EngineConfig::unverified_wait`]).
    pub segments_unverified: u64,
    /// Of those, segments dropped unverified (waited too long, or over
    /// [`EngineConfig::max_unverified_bytes`]) and fetched over HTTP.
    pub unverified_refetched: u64,
}
