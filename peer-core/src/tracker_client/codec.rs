//! Questions drivers ask of a tracker frame before the client reads it, on the shared codec's
//! [`TrackerFrame`].

use segswarm_ws_protocol::TrackerFrame;

use super::InfoHash;

/// Whether a tracker frame accepts an announce: `action` `announce`, an integer `complete` and no
/// `failure reason` (what makes [`super::TrackerClient`] report
/// [`super::TrackerEvent::AnnounceAccepted`]). Drivers reset their reconnect backoff on it
/// ([`crate::backoff`]).
pub fn is_announce_accepted(frame: &str) -> bool {
    TrackerFrame::parse(frame).is_ok_and(|f| f.is_announce_accepted())
}

/// The tracker's `failure reason` of a frame answering an announce (`action` `announce`, or no
/// `action`: bittorrent-tracker's reply to a request it could not parse), with the swarm when the
/// frame names a readable one. PeerTube's tracker sends
/// `{"action":"announce","failure reason":"Unknown infoHash <hex> requested by ip <ip>","info_hash":…}`
/// for an info_hash it does not know, then closes the socket. Drivers make the close that
/// follows wait ([`crate::backoff::Backoff::refused`]).
pub fn announce_refusal(frame: &str) -> Option<(Option<InfoHash>, String)> {
    let (info_hash, reason) = TrackerFrame::parse(frame).ok()?.refusal()?;
    Some((info_hash.map(|id| id.0), reason))
}
