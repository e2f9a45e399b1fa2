//! The tracker client's settings: [`TrackerClientConfig`] and its defaults.

use super::*;

/// Settings of a [`TrackerClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerClientConfig {
    /// The local peer id sent with every announce.
    pub peer_id: PeerId,
    /// How many peers to ask for. Default 50, as the JavaScript client (`DEFAULT_ANNOUNCE_PEERS`).
    pub numwant: u32,
    /// Most offers sent with one announce; the client asks for `min(numwant, max_offers)`.
    /// Default 5, as the JavaScript client.
    pub max_offers: u32,
    /// Offers not answered within this time are dropped ([`TrackerEvent::OfferExpired`]).
    /// Default 50 s, as the JavaScript client.
    pub offer_timeout: Duration,
    /// How long an announce waits for [`TrackerClient::offers_created`] before it is sent with the
    /// offers received so far (none). Default 10 s.
    pub offer_creation_timeout: Duration,
    /// Re-announce interval until the server names one. Default 30 s, as the JavaScript client.
    pub default_interval: Duration,
    /// Lower bound applied to the server's interval. Default 10 s.
    pub min_interval: Duration,
    /// Upper bound applied to the server's interval. Default 600 s.
    pub max_interval: Duration,
    /// Largest server message accepted, in bytes of its text ([`TrackerFrame::text_len`]).
    /// Default 256 KiB.
    pub max_message_bytes: usize,
    /// Re-announce after this time (if shorter than the interval) after an announce that carried
    /// offers, until [`TrackerClientConfig::fill_idle_rounds`] rounds in a row get no answer: a
    /// seeder reaches more peers than one announce's offers do. The tracker's rate limit must
    /// allow it. Default `None` (always the interval) (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub fill_interval: Option<Duration>,
    /// Rounds in a row without an answer that end early re-announcing (the tracker picks the
    /// peers an announce's offers go to at random, so one round can miss the few peers not yet
    /// connected). Default 2.
    pub fill_idle_rounds: u32,
    /// A swarm whose announce the tracker refused (a `failure reason` while its announce awaited
    /// an answer: a private tracker that does not know the info_hash, a rate limit, a full
    /// swarm) is not announced again for this long; each further refusal in a row doubles it, up
    /// to [`TrackerClientConfig::refused_announce_max`]; an accepted announce of the swarm ends
    /// the series. Default 10 min (PeerTube's tracker blocks the IP for 3 minutes per refusal).
    pub refused_announce_delay: Duration,
    /// Longest pause of a refused swarm. Default 1 h.
    pub refused_announce_max: Duration,
}

impl TrackerClientConfig {
    /// Defaults for the given local peer id.
    pub fn new(peer_id: PeerId) -> Self {
        Self {
            peer_id,
            numwant: 50,
            max_offers: 5,
            offer_timeout: Duration::from_secs(50),
            offer_creation_timeout: Duration::from_secs(10),
            default_interval: Duration::from_secs(30),
            min_interval: Duration::from_secs(10),
            max_interval: Duration::from_secs(600),
            max_message_bytes: 256 * 1024,
            fill_interval: None,
            fill_idle_rounds: 2,
            refused_announce_delay: Duration::from_secs(10 * 60),
            refused_announce_max: Duration::from_secs(60 * 60),
        }
    }
}
