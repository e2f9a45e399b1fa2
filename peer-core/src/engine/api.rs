//! What goes in and out of the engine: [`Input`], [`Output`], segment descriptions, statistics.

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

/// Where a delivered segment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySource {
    /// Already in the store.
    Cache,
    /// Loaded over HTTP (possibly resuming a P2P transfer).
    Http,
    /// Loaded from a peer.
    Peer,
}

/// Something the engine was told.
#[derive(Debug, Clone)]
pub enum Input {
    /// The tracker socket opened.
    TrackerConnected,
    /// The tracker socket closed.
    TrackerDisconnected,
    /// A text frame from the tracker.
    TrackerMessage(String),
    /// Offers made for [`Output::CreateOffers`]: `(handle, SDP)`; missing handles failed.
    OffersCreated(Vec<(PeerHandle, String)>),
    /// An answer made for [`Output::CreateAnswer`].
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
    /// The current playlist (live: the sliding window; VOD: all segments). Replaces the previous.
    Playlist(Vec<SegmentInfo>),
    /// The integrity manifest (`segments-sha256.json`).
    Manifest(SegmentManifest),
    /// A segment this peer already holds from elsewhere (a seeder's own files): stored and
    /// announced to peers like a downloaded one, but not counted as downloaded.
    AddSegment {
        /// Segment.
        id: SegmentId,
        /// Its bytes.
        data: Bytes,
    },
    /// Where playback is now, media seconds.
    Playback(f64),
    /// The player needs this segment: answer with [`Output::SegmentReady`] or
    /// [`Output::SegmentFailed`].
    WantSegment(SegmentId),
    /// The player no longer needs this segment.
    CancelSegment(SegmentId),
    /// [`Engine::poll_timeout`] was reached.
    Timer,
    /// Leave the swarm (announce `stopped`, close peers).
    Shutdown,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a text frame to the tracker.
    TrackerSend(String),
    /// Create one WebRTC offer per handle and report them with [`Input::OffersCreated`].
    CreateOffers(Vec<PeerHandle>),
    /// Create an answer to a remote offer on a new connection `peer`; report with
    /// [`Input::AnswerCreated`].
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
    ClosePeer(PeerHandle),
    /// Send a data-channel message.
    SendToPeer {
        /// The peer.
        peer: PeerHandle,
        /// The message.
        data: Bytes,
        /// Whether the message is raw segment bytes (else a command part).
        segment_bytes: bool,
    },
    /// Start an HTTP GET.
    HttpRequest {
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
    /// Abort an HTTP request.
    HttpAbort(HttpHandle),
    /// A wanted segment is available.
    SegmentReady {
        /// Segment.
        segment: SegmentId,
        /// Its bytes.
        data: Bytes,
        /// Where it came from (the last source for resumed downloads).
        source: DeliverySource,
    },
    /// A wanted segment cannot be loaded (not in the playlist).
    SegmentFailed {
        /// Segment.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
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
    /// ([`Input::PeerSendOverrun`]).
    pub peers_send_overrun: u64,
    /// Segments from peers held because the manifest did not list them yet
    /// ([`EngineConfig::unverified_wait`]).
    pub segments_unverified: u64,
    /// Of those, segments dropped unverified (waited too long, or over
    /// [`EngineConfig::max_unverified_bytes`]) and fetched over HTTP.
    pub unverified_refetched: u64,
}
