//! [`ErrorKind`]: why a tracker refuses a request, as a metric label and a `failure reason`.

use std::fmt;

/// Why a request was refused: the metric label (`segswarm_errors_total{kind}`) and the
/// `failure reason` text sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Text that is not a JSON object.
    MalformedJson,
    /// A binary WebSocket frame (the protocol is JSON text only).
    BinaryFrame,
    /// A message or frame above the configured size.
    OversizedMessage,
    /// `action` missing or not `announce`/`scrape`.
    UnknownAction,
    /// `info_hash` is not a 20-character binary string.
    InvalidInfoHash,
    /// `peer_id` is not a 20-character binary string.
    InvalidPeerId,
    /// `to_peer_id` missing or invalid on an answer.
    InvalidToPeerId,
    /// `offer_id` missing or invalid.
    InvalidOfferId,
    /// `offers` is not a list of `{offer, offer_id}` objects.
    InvalidOffers,
    /// `event` is not one of the known events.
    InvalidEvent,
    /// An answer to an offer the tracker did not deliver to that peer (or it expired).
    UnknownOffer,
    /// An answer to a peer that is no longer in the swarm.
    UnknownPeer,
    /// Too many requests from one connection.
    RateLimited,
    /// The connection joined `limits.max_swarms_per_connection` swarms already.
    TooManySwarms,
    /// The swarm holds `limits.max_peers_per_swarm` peers already.
    SwarmFull,
    /// The info_hash is on the deny list or missing from the allow list.
    DeniedInfoHash,
    /// The WebSocket `Origin` is not allowed.
    OriginDenied,
    /// Too many connections in total or from one IP address.
    ConnectionLimit,
    /// A scrape without info_hash while `allow_full_scrape` is off.
    FullScrapeDisabled,
    /// An HTTP request without a required or with an invalid parameter.
    InvalidRequest,
    /// A connection closed because its outbound queue stayed full for
    /// `limits.slow_consumer_timeout_secs` (it does not read).
    QueueFull,
    /// `stopped` for a peer_id that this connection does not hold in that swarm.
    NotOwnPeer,
    /// An announce with a peer_id that another live connection holds in that swarm.
    PeerIdInUse,
    /// A scrape listing more distinct info_hashes than `limits.max_scrape_info_hashes`.
    TooManyInfoHashes,
    /// A TLS connection closed at accept: `server.max_tls_handshakes` are in progress.
    TlsHandshakesFull,
}

impl ErrorKind {
    /// Every kind, for pre-registering metric labels.
    pub const ALL: [ErrorKind; 25] = [
        ErrorKind::MalformedJson,
        ErrorKind::BinaryFrame,
        ErrorKind::OversizedMessage,
        ErrorKind::UnknownAction,
        ErrorKind::InvalidInfoHash,
        ErrorKind::InvalidPeerId,
        ErrorKind::InvalidToPeerId,
        ErrorKind::InvalidOfferId,
        ErrorKind::InvalidOffers,
        ErrorKind::InvalidEvent,
        ErrorKind::UnknownOffer,
        ErrorKind::UnknownPeer,
        ErrorKind::RateLimited,
        ErrorKind::TooManySwarms,
        ErrorKind::SwarmFull,
        ErrorKind::DeniedInfoHash,
        ErrorKind::OriginDenied,
        ErrorKind::ConnectionLimit,
        ErrorKind::FullScrapeDisabled,
        ErrorKind::InvalidRequest,
        ErrorKind::QueueFull,
        ErrorKind::NotOwnPeer,
        ErrorKind::PeerIdInUse,
        ErrorKind::TooManyInfoHashes,
        ErrorKind::TlsHandshakesFull,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::MalformedJson => "malformed_json",
            ErrorKind::BinaryFrame => "binary_frame",
            ErrorKind::OversizedMessage => "oversized_message",
            ErrorKind::UnknownAction => "unknown_action",
            ErrorKind::InvalidInfoHash => "invalid_info_hash",
            ErrorKind::InvalidPeerId => "invalid_peer_id",
            ErrorKind::InvalidToPeerId => "invalid_to_peer_id",
            ErrorKind::InvalidOfferId => "invalid_offer_id",
            ErrorKind::InvalidOffers => "invalid_offers",
            ErrorKind::InvalidEvent => "invalid_event",
            ErrorKind::UnknownOffer => "unknown_offer",
            ErrorKind::UnknownPeer => "unknown_peer",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::TooManySwarms => "too_many_swarms",
            ErrorKind::SwarmFull => "swarm_full",
            ErrorKind::DeniedInfoHash => "denied_info_hash",
            ErrorKind::OriginDenied => "origin_denied",
            ErrorKind::ConnectionLimit => "connection_limit",
            ErrorKind::FullScrapeDisabled => "full_scrape_disabled",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::NotOwnPeer => "not_own_peer",
            ErrorKind::PeerIdInUse => "peer_id_in_use",
            ErrorKind::TooManyInfoHashes => "too_many_info_hashes",
            ErrorKind::TlsHandshakesFull => "tls_handshakes_full",
        }
    }

    /// The `failure reason` text sent to the client.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::MalformedJson => "malformed JSON: expected a JSON object",
            ErrorKind::BinaryFrame => "binary frames are not supported: send JSON text",
            ErrorKind::OversizedMessage => "message too large",
            ErrorKind::UnknownAction => "invalid action: expected announce or scrape",
            ErrorKind::InvalidInfoHash => "invalid info_hash",
            ErrorKind::InvalidPeerId => "invalid peer_id",
            ErrorKind::InvalidToPeerId => "invalid `to_peer_id` (required with `answer`)",
            ErrorKind::InvalidOfferId => "invalid offer_id",
            ErrorKind::InvalidOffers => "invalid offers",
            ErrorKind::InvalidEvent => "invalid event",
            ErrorKind::UnknownOffer => "answer to an unknown or expired offer",
            ErrorKind::UnknownPeer => "no peer with that `to_peer_id`",
            ErrorKind::RateLimited => "rate limit exceeded: announce less often",
            ErrorKind::TooManySwarms => "too many swarms on this connection",
            ErrorKind::SwarmFull => "swarm is full",
            ErrorKind::DeniedInfoHash => "info_hash is not allowed on this tracker",
            ErrorKind::OriginDenied => "origin not allowed",
            ErrorKind::ConnectionLimit => "too many connections",
            ErrorKind::FullScrapeDisabled => "full scrape is disabled: give info_hash",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::QueueFull => "connection too slow: outbound queue stayed full",
            ErrorKind::NotOwnPeer => "stopped for a peer_id this connection does not hold",
            ErrorKind::PeerIdInUse => "peer_id is in use by another connection",
            ErrorKind::TooManyInfoHashes => "too many info_hashes in one scrape",
            ErrorKind::TlsHandshakesFull => "too many TLS handshakes in progress",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ErrorKind {}
