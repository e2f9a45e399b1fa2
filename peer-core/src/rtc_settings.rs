//! WebRTC settings both drivers share: the ICE servers, the signalling timeouts and the
//! data-channel limits ([`ChannelSettings`]), which each driver's `RtcSettings` holds as
//! `channel` beside what only that driver has.

use std::time::Duration;

/// A STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, ...
    pub urls: Vec<String>,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN credential (empty for STUN).
    pub credential: String,
}

/// Longest wait for ICE gathering before an offer or answer goes out with the candidates found so
/// far: 5 s (simple-peer's `iceCompleteTimeout`).
pub const ICE_GATHERING_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for the data channel to open once signalling is done: 15 s.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest data-channel message sent or accepted, bytes: 64 KiB (p2p-media-loader never sends
/// more, and some stacks drop larger ones).
pub const MAX_CHANNEL_MESSAGE_BYTES: usize = 64 * 1024;

/// Unacknowledged bytes a channel may hold before a send waits: 1 MiB.
pub const SEND_BUFFER_BYTES: u32 = 1024 * 1024;

/// `bufferedAmountLowThreshold`, bytes: the level at which waiting sends resume. 64 KiB (as
/// simple-peer).
pub const BUFFERED_AMOUNT_LOW_THRESHOLD: u32 = 64 * 1024;

/// The WebRTC settings both drivers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// STUN/TURN servers. Default none: host candidates only (a server with a public address needs
    /// nothing more; viewers behind NAT should be given a STUN server).
    pub ice_servers: Vec<IceServer>,
    /// Longest wait for ICE gathering before the offer or answer goes out with the candidates
    /// found so far. Default [`ICE_GATHERING_TIMEOUT`].
    pub ice_gathering_timeout: Duration,
    /// Longest wait, once signalling is done, for the data channel to open. Default
    /// [`OPEN_TIMEOUT`].
    pub open_timeout: Duration,
    /// Largest message sent or accepted, bytes. Default [`MAX_CHANNEL_MESSAGE_BYTES`].
    pub max_message_bytes: usize,
    /// Unacknowledged bytes a channel may hold before a send waits. Default
    /// [`SEND_BUFFER_BYTES`].
    pub send_buffer_bytes: u32,
    /// The channel's `bufferedAmountLowThreshold`, bytes. Default
    /// [`BUFFERED_AMOUNT_LOW_THRESHOLD`].
    pub buffered_amount_low_threshold: u32,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            ice_gathering_timeout: ICE_GATHERING_TIMEOUT,
            open_timeout: OPEN_TIMEOUT,
            max_message_bytes: MAX_CHANNEL_MESSAGE_BYTES,
            send_buffer_bytes: SEND_BUFFER_BYTES,
            buffered_amount_low_threshold: BUFFERED_AMOUNT_LOW_THRESHOLD,
        }
    }
}
