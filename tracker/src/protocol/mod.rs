//! Wire formats, parsing and encoding only: the WebTorrent WebSocket JSON messages ([`ws`]) and the
//! BitTorrent HTTP announce/scrape queries with their bencoded responses ([`http`]).
//!
//! Nothing here touches sockets, clocks or the roster; every function is a pure transformation.

pub mod http;
pub mod ws;

use std::fmt;

/// A 20-byte identifier: info_hash, peer_id or offer_id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id20(pub [u8; 20]);

/// The identifier of a swarm (SHA-1 of the torrent's info dictionary, or p2p-media-loader's stream hash).
pub type InfoHash = Id20;
/// The identifier a peer chooses for itself.
pub type PeerId = Id20;
/// The identifier a peer chooses for one WebRTC offer.
pub type OfferId = Id20;

impl Id20 {
    /// Decodes a "binary string": exactly 20 characters, each U+0000..=U+00FF being one byte.
    pub fn from_binary_str(s: &str) -> Option<Id20> {
        // Characters U+0000..=U+00FF are one byte (ASCII) or two (lead byte 0xC2 or 0xC3) in UTF-8;
        // `s` is valid UTF-8, so a lead byte is always followed by its continuation byte.
        let bytes = s.as_bytes();
        if !(20..=40).contains(&bytes.len()) {
            return None;
        }
        let mut out = [0u8; 20];
        let mut n = 0;
        let mut i = 0;
        while i < bytes.len() {
            let slot = out.get_mut(n)?;
            match bytes[i] {
                b @ 0..=0x7f => {
                    *slot = b;
                    i += 1;
                }
                lead @ (0xc2 | 0xc3) => {
                    *slot = ((lead & 0x1f) << 6) | (bytes.get(i + 1)? & 0x3f);
                    i += 2;
                }
                _ => return None,
            }
            n += 1;
        }
        (n == 20).then_some(Id20(out))
    }

    /// Decodes 40 hexadecimal digits (either case).
    pub fn from_hex(s: &str) -> Option<Id20> {
        let bytes = s.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0])?;
            let lo = hex_value(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(Id20(out))
    }

    /// Copies exactly 20 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Id20> {
        <[u8; 20]>::try_from(bytes).ok().map(Id20)
    }

    /// 40 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 15)] as char);
        }
        s
    }

    /// The binary string form (each byte one character U+0000..=U+00FF).
    pub fn to_binary_string(&self) -> String {
        self.0.iter().map(|&b| char::from(b)).collect()
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

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

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// The peer joined.
    Started,
    /// The peer left.
    Stopped,
    /// The peer finished downloading.
    Completed,
    /// A periodic announce (also `empty`, `paused` and a missing event).
    Update,
    /// The peer paused (treated as an update).
    Paused,
}

impl AnnounceEvent {
    /// Parses an event name; `None` for unknown names. `""`/`empty`/`update` are updates.
    pub fn parse(name: &str) -> Option<AnnounceEvent> {
        match name {
            "started" => Some(AnnounceEvent::Started),
            "stopped" => Some(AnnounceEvent::Stopped),
            "completed" => Some(AnnounceEvent::Completed),
            "update" | "empty" | "" => Some(AnnounceEvent::Update),
            "paused" => Some(AnnounceEvent::Paused),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_strings_map_each_char_to_one_byte() {
        let s: String = (0u8..20).map(|b| char::from(b * 12)).collect();
        let id = Id20::from_binary_str(&s).unwrap();
        assert_eq!(id.0[19], 19 * 12);
        assert_eq!(id.to_binary_string(), s);
        let short: String = s.chars().take(19).collect();
        assert!(Id20::from_binary_str(&short).is_none());
        let mut long = s.clone();
        long.push('a');
        assert!(Id20::from_binary_str(&long).is_none());
        let high: String = "\u{0100}".repeat(20);
        assert!(Id20::from_binary_str(&high).is_none());
    }

    proptest::proptest! {
        /// Any string decodes as an id exactly when it is 20 characters of U+0000..=U+00FF.
        #[test]
        fn binary_strings_decode_exactly_the_byte_range(
            chars in proptest::collection::vec(
                proptest::prop_oneof![0u32..0x100, 0x100u32..0x11_0000], 0..24
            )
        ) {
            let s: String = chars.iter().filter_map(|&c| char::from_u32(c)).collect();
            let expected = (s.chars().count() == 20 && s.chars().all(|c| u32::from(c) <= 0xff))
                .then(|| Id20(std::array::from_fn(|i| s.chars().nth(i).map_or(0, |c| c as u8))));
            proptest::prop_assert_eq!(Id20::from_binary_str(&s), expected);
        }
    }

    #[test]
    fn hex_round_trip() {
        let id = Id20([0xab; 20]);
        assert_eq!(Id20::from_hex(&id.to_hex()), Some(id));
        assert_eq!(Id20::from_hex(&"AB".repeat(20)), Some(id));
        assert!(Id20::from_hex(&"zz".repeat(20)).is_none());
    }

    #[test]
    fn events() {
        assert_eq!(AnnounceEvent::parse("empty"), Some(AnnounceEvent::Update));
        assert_eq!(AnnounceEvent::parse("paused"), Some(AnnounceEvent::Paused));
        assert_eq!(AnnounceEvent::parse("bogus"), None);
    }
}
