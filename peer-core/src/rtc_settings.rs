//! WebRTC settings both drivers share: the ICE server description and the defaults of the
//! data-channel limits that each driver's `RtcSettings` starts from.

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
