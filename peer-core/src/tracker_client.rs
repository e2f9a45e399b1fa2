//! The client side of the WebTorrent WebSocket tracker protocol, sans-IO.
//!
//! One [`TrackerClient`] stands for one tracker socket carrying several swarms (info hashes) for one
//! local peer id. The driver owns the socket and the WebRTC stack:
//!
//! - it feeds [`TrackerClient::connected`], [`TrackerClient::disconnected`], every received text
//!   frame ([`TrackerClient::handle_message`]) and the timer ([`TrackerClient::handle_timeout`]);
//! - it sends what [`TrackerClient::poll_transmit`] returns and wakes at
//!   [`TrackerClient::poll_timeout`];
//! - it acts on the returned [`TrackerEvent`]s: creates WebRTC offers on
//!   [`TrackerEvent::NeedOffers`] and hands them back with [`TrackerClient::offers_created`],
//!   answers relayed offers with [`TrackerClient::send_answer`], completes its own offers on
//!   [`TrackerEvent::Answer`] and closes them on [`TrackerEvent::OfferExpired`].
//!
//! Every input returns the events it caused. Ids (`info_hash`, `peer_id`, `offer_id`) are 20 bytes
//! and travel as "binary strings" (one character per byte, U+0000..=U+00FF), see
//! [`encode_binary_string`].

use std::collections::VecDeque;

use crate::vecmap::VecMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::time::Instant;

/// A swarm's 20-byte info hash.
pub type InfoHash = [u8; 20];
/// A peer's 20-byte id.
pub type PeerId = [u8; 20];
/// A WebRTC offer's 20-byte id, chosen by whoever creates the offer.
pub type OfferId = [u8; 20];

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
    /// Largest server message accepted, in bytes. Default 256 KiB.
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

/// What the client tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerEvent {
    /// Create up to `count` WebRTC offers (full SDP, no trickle) for this swarm and pass them to
    /// [`TrackerClient::offers_created`]; fewer (even none) is fine.
    NeedOffers {
        /// The swarm about to be announced.
        info_hash: InfoHash,
        /// Most offers wanted.
        count: usize,
    },
    /// Another peer's offer, relayed by the tracker: answer it with [`TrackerClient::send_answer`].
    Offer {
        /// The swarm.
        info_hash: InfoHash,
        /// The offering peer.
        peer_id: PeerId,
        /// The offer's id, to echo in the answer.
        offer_id: OfferId,
        /// The offer SDP.
        sdp: String,
    },
    /// A peer answered one of our offers: complete that connection.
    Answer {
        /// The swarm.
        info_hash: InfoHash,
        /// The answering peer.
        peer_id: PeerId,
        /// Which of our offers was answered.
        offer_id: OfferId,
        /// The answer SDP.
        sdp: String,
    },
    /// One of our offers was not answered in time (or can no longer be): close its connection.
    OfferExpired {
        /// The swarm.
        info_hash: InfoHash,
        /// The dropped offer.
        offer_id: OfferId,
    },
    /// The tracker accepted an announce.
    AnnounceAccepted {
        /// The swarm.
        info_hash: InfoHash,
        /// Seeders in the swarm.
        complete: u64,
        /// Leechers in the swarm.
        incomplete: u64,
        /// The re-announce interval now in use (the server's, clamped to the configured bounds).
        interval: Duration,
    },
    /// The tracker refused something (`failure reason`). When it answers an announce of a joined
    /// swarm, that swarm is not announced again for a while ([`TrackerClient::refused_until`],
    /// [`TrackerClientConfig::refused_announce_delay`]) and its unanswered offers expire.
    Failure {
        /// The swarm, when the tracker named one.
        info_hash: Option<InfoHash>,
        /// The tracker's text.
        reason: String,
    },
    /// The tracker sent a `warning message`.
    Warning {
        /// The swarm, when the tracker named one.
        info_hash: Option<InfoHash>,
        /// The tracker's text.
        message: String,
    },
}

/// A server message the client could not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerClientError {
    /// The message is larger than [`TrackerClientConfig::max_message_bytes`].
    #[error("tracker message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message is not JSON.
    #[error("tracker message is not JSON: {0}")]
    Json(String),
    /// The message is JSON but not an object.
    #[error("tracker message is not a JSON object")]
    NotAnObject,
    /// Neither `action` nor `failure reason`/`warning message`.
    #[error("tracker message has no action")]
    MissingAction,
    /// An `action` this client does not know.
    #[error("tracker message has unknown action {0:?}")]
    UnknownAction(String),
    /// A field is missing or has the wrong type or length.
    #[error("tracker message field {field}: {problem}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// What was wrong.
        problem: &'static str,
    },
}

/// Encodes bytes as a binary string: each byte becomes the character with that code point.
pub fn encode_binary_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Decodes a 20-character binary string; `None` if the length is not 20 characters or a character
/// is above U+00FF.
pub fn decode_binary_string(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut n = 0usize;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// Whether a tracker frame accepts an announce: `action` `announce`, a `complete` count and no
/// `failure reason` (what makes [`TrackerClient`] report [`TrackerEvent::AnnounceAccepted`]).
/// Drivers reset their reconnect backoff on it ([`crate::backoff`]).
pub fn is_announce_accepted(frame: &str) -> bool {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(frame) else {
        return false;
    };
    msg.get("action").and_then(Value::as_str) == Some("announce")
        && msg.get("failure reason").is_none()
        && msg.get("complete").is_some_and(Value::is_u64)
}

/// The tracker's `failure reason` of a frame answering an announce (`action` `announce`, or no
/// `action`: bittorrent-tracker's reply to a request it could not parse), with the swarm when the
/// frame names a readable one. PeerTube's tracker sends
/// `{"action":"announce","failure reason":"Unknown infoHash <hex> requested by ip <ip>","info_hash":…}`
/// for an info_hash it does not know, then closes the socket. Drivers make the close that
/// follows wait ([`crate::backoff::Backoff::refused`]).
pub fn announce_refusal(frame: &str) -> Option<(Option<InfoHash>, String)> {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(frame) else {
        return None;
    };
    let reason = msg.get("failure reason")?.as_str()?;
    match msg.get("action") {
        None => {}
        Some(a) if a.as_str() == Some("announce") => {}
        Some(_) => return None,
    }
    let info_hash = msg
        .get("info_hash")
        .and_then(Value::as_str)
        .and_then(decode_binary_string);
    Some((info_hash, reason.to_owned()))
}

/// The announce `event` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnnounceEvent {
    Started,
    Update,
    Stopped,
    Completed,
}

impl AnnounceEvent {
    fn as_str(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Update => None,
            AnnounceEvent::Stopped => Some("stopped"),
            AnnounceEvent::Completed => Some("completed"),
        }
    }
}

/// An announce waiting for the driver's offers.
#[derive(Debug, Clone, Copy)]
struct AwaitingOffers {
    event: AnnounceEvent,
    count: usize,
    deadline: Instant,
}

#[derive(Debug, Clone)]
struct Swarm {
    interval: Duration,
    next_announce: Option<Instant>,
    /// When the last announce was sent.
    last_announce: Option<Instant>,
    /// The next announce is an early one ([`TrackerClientConfig::fill_interval`]): the last
    /// announce carried offers.
    filling: bool,
    /// Offers of the last announce answered so far.
    answered: usize,
    /// Early announces in a row whose offers got no answer.
    idle_rounds: u32,
    awaiting: Option<AwaitingOffers>,
    uploaded: u64,
    downloaded: u64,
    left: Option<u64>,
    /// An announce was sent and neither accepted nor refused yet.
    announce_pending: bool,
    /// Refused announces in a row.
    refusals: u32,
    /// Not announced before this time (its announce was refused).
    refused_until: Option<Instant>,
}

impl Swarm {
    /// Time from one announce to the next: the interval, or the fill interval while filling.
    fn next_delay(&self, fill: Option<Duration>) -> Duration {
        match fill {
            Some(f) if self.filling => f.min(self.interval),
            _ => self.interval,
        }
    }

    /// An announce goes out at `now`: schedules the next one. One with offers starts or
    /// continues a fill (when `fill` is set); one without ends it.
    fn announced(&mut self, now: Instant, with_offers: bool, fill: Option<Duration>) {
        self.filling = fill.is_some() && with_offers;
        if !self.filling {
            self.idle_rounds = 0;
        }
        self.answered = 0;
        self.last_announce = Some(now);
        self.next_announce = Some(now + self.next_delay(fill));
    }
}

/// Client state machine for one tracker socket. See the module documentation.
#[derive(Debug)]
pub struct TrackerClient {
    config: TrackerClientConfig,
    connected: bool,
    swarms: VecMap<InfoHash, Swarm>,
    /// Our unanswered offers and when they expire.
    pending_offers: VecMap<(InfoHash, OfferId), Instant>,
    tracker_id: Option<String>,
    transmit: VecDeque<String>,
    /// Announces refused since the client was created.
    announces_refused: u64,
}

impl TrackerClient {
    /// A client with no swarms, not yet connected.
    pub fn new(config: TrackerClientConfig) -> Self {
        Self {
            config,
            connected: false,
            swarms: VecMap::new(),
            pending_offers: VecMap::new(),
            tracker_id: None,
            transmit: VecDeque::new(),
            announces_refused: 0,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &TrackerClientConfig {
        &self.config
    }

    /// Whether the driver reported the socket open.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The swarms joined, in info-hash order.
    pub fn swarms(&self) -> impl Iterator<Item = &InfoHash> {
        self.swarms.keys()
    }

    /// Announces the tracker refused so far (see [`TrackerEvent::Failure`]).
    pub fn announces_refused(&self) -> u64 {
        self.announces_refused
    }

    /// Until when a joined swarm is not announced because the tracker refused its announce.
    pub fn refused_until(&self, info_hash: &InfoHash) -> Option<Instant> {
        self.swarms.get(info_hash).and_then(|s| s.refused_until)
    }

    /// Number of our offers still waiting for an answer.
    pub fn pending_offer_count(&self) -> usize {
        self.pending_offers.len()
    }

    /// The socket is open: announces `started` for every joined swarm (a swarm whose announce
    /// was refused waits for its [`TrackerClient::refused_until`]).
    #[must_use = "the events ask for offers"]
    pub fn connected(&mut self, now: Instant) -> Vec<TrackerEvent> {
        self.connected = true;
        let mut events = Vec::new();
        let hashes: Vec<InfoHash> = self.swarms.keys().copied().collect();
        for ih in hashes {
            if let Some(swarm) = self.swarms.get_mut(&ih) {
                if let Some(until) = swarm.refused_until.filter(|t| *t > now) {
                    swarm.next_announce = Some(until);
                    continue;
                }
            }
            self.start_announce(ih, AnnounceEvent::Started, now, &mut events);
        }
        events
    }

    /// The socket closed: drops queued frames and every unanswered offer (returned as
    /// [`TrackerEvent::OfferExpired`]). Swarms stay joined and are announced again on
    /// [`TrackerClient::connected`].
    #[must_use = "expired offers must be closed"]
    pub fn disconnected(&mut self, _now: Instant) -> Vec<TrackerEvent> {
        self.connected = false;
        self.transmit.clear();
        for swarm in self.swarms.values_mut() {
            swarm.awaiting = None;
            swarm.next_announce = None;
            swarm.announce_pending = false;
        }
        let mut events: Vec<TrackerEvent> = std::mem::take(&mut self.pending_offers)
            .into_iter()
            .map(|((info_hash, offer_id), _)| TrackerEvent::OfferExpired {
                info_hash,
                offer_id,
            })
            .collect();
        events.sort_unstable_by_key(offer_sort_key);
        events
    }

    /// Joins a swarm: announces `started` with offers now if connected, else once connected.
    /// Joining a swarm already joined does nothing.
    #[must_use = "the events ask for offers"]
    pub fn join(&mut self, info_hash: InfoHash, now: Instant) -> Vec<TrackerEvent> {
        let mut events = Vec::new();
        if self.swarms.contains_key(&info_hash) {
            return events;
        }
        self.swarms.insert(
            info_hash,
            Swarm {
                interval: self.config.default_interval,
                next_announce: None,
                last_announce: None,
                filling: false,
                answered: 0,
                idle_rounds: 0,
                awaiting: None,
                uploaded: 0,
                downloaded: 0,
                left: None,
                announce_pending: false,
                refusals: 0,
                refused_until: None,
            },
        );
        if self.connected {
            self.start_announce(info_hash, AnnounceEvent::Started, now, &mut events);
        }
        events
    }

    /// Leaves a swarm: announces `stopped` (if connected) and drops its unanswered offers.
    #[must_use = "expired offers must be closed"]
    pub fn leave(&mut self, info_hash: InfoHash, _now: Instant) -> Vec<TrackerEvent> {
        let Some(swarm) = self.swarms.remove(&info_hash) else {
            return Vec::new();
        };
        if self.connected {
            self.send_announce(info_hash, &swarm, AnnounceEvent::Stopped, &[]);
        }
        let mut events: Vec<TrackerEvent> = Vec::new();
        self.pending_offers.retain(|(ih, offer_id), _| {
            if *ih == info_hash {
                events.push(TrackerEvent::OfferExpired {
                    info_hash,
                    offer_id: *offer_id,
                });
                false
            } else {
                true
            }
        });
        events.sort_unstable_by_key(offer_sort_key);
        events
    }

    /// Records transfer totals sent with later announces (`left: None` = leecher, `Some(0)` = seeder).
    pub fn set_transfer_stats(
        &mut self,
        info_hash: InfoHash,
        uploaded: u64,
        downloaded: u64,
        left: Option<u64>,
    ) {
        if let Some(s) = self.swarms.get_mut(&info_hash) {
            s.uploaded = uploaded;
            s.downloaded = downloaded;
            s.left = left;
        }
    }

    /// The driver's offers for a swarm that asked with [`TrackerEvent::NeedOffers`]: sends the
    /// announce. Offers that cannot be used (swarm left, socket closed, more than asked for) come
    /// back as [`TrackerEvent::OfferExpired`].
    #[must_use = "expired offers must be closed"]
    pub fn offers_created(
        &mut self,
        info_hash: InfoHash,
        offers: Vec<(OfferId, String)>,
        now: Instant,
    ) -> Vec<TrackerEvent> {
        let awaiting = match self.swarms.get_mut(&info_hash) {
            Some(swarm) if self.connected => swarm.awaiting.take(),
            _ => None,
        };
        let Some(awaiting) = awaiting else {
            return offers
                .into_iter()
                .map(|(offer_id, _)| TrackerEvent::OfferExpired {
                    info_hash,
                    offer_id,
                })
                .collect();
        };
        let mut offers = offers;
        let extra = if offers.len() > awaiting.count {
            offers.split_off(awaiting.count)
        } else {
            Vec::new()
        };
        for (offer_id, _) in &offers {
            self.pending_offers
                .insert((info_hash, *offer_id), now + self.config.offer_timeout);
        }
        let fill = self.config.fill_interval;
        if let Some(swarm) = self.swarms.get_mut(&info_hash) {
            swarm.announced(now, !offers.is_empty(), fill);
            let swarm = swarm.clone();
            self.send_announce(info_hash, &swarm, awaiting.event, &offers);
        }
        extra
            .into_iter()
            .map(|(offer_id, _)| TrackerEvent::OfferExpired {
                info_hash,
                offer_id,
            })
            .collect()
    }

    /// Answers a relayed offer ([`TrackerEvent::Offer`]). Ignored when not connected or the swarm
    /// is not joined.
    pub fn send_answer(
        &mut self,
        info_hash: InfoHash,
        to_peer_id: PeerId,
        offer_id: OfferId,
        sdp: &str,
    ) {
        if !self.connected || !self.swarms.contains_key(&info_hash) {
            return;
        }
        let mut msg = Map::new();
        msg.insert("action".into(), json!("announce"));
        msg.insert("info_hash".into(), json!(encode_binary_string(&info_hash)));
        msg.insert(
            "peer_id".into(),
            json!(encode_binary_string(&self.config.peer_id)),
        );
        msg.insert(
            "to_peer_id".into(),
            json!(encode_binary_string(&to_peer_id)),
        );
        msg.insert("answer".into(), json!({"type": "answer", "sdp": sdp}));
        msg.insert("offer_id".into(), json!(encode_binary_string(&offer_id)));
        if let Some(id) = &self.tracker_id {
            msg.insert("trackerid".into(), json!(id));
        }
        self.transmit.push_back(Value::Object(msg).to_string());
    }

    /// The next JSON text frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    /// When [`TrackerClient::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let offers = self.pending_offers.values().copied().min();
        let swarms = self
            .swarms
            .values()
            .filter_map(|s| match s.awaiting {
                Some(a) => Some(a.deadline),
                None if self.connected => s.next_announce,
                None => None,
            })
            .min();
        match (offers, swarms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires offers, sends announces whose offers did not come in time, and re-announces swarms
    /// whose interval has passed.
    #[must_use = "the events ask for offers and report expired offers"]
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TrackerEvent> {
        let mut events = Vec::new();
        let mut expired: Vec<TrackerEvent> = Vec::new();
        self.pending_offers
            .retain(|(info_hash, offer_id), deadline| {
                if *deadline <= now {
                    expired.push(TrackerEvent::OfferExpired {
                        info_hash: *info_hash,
                        offer_id: *offer_id,
                    });
                    false
                } else {
                    true
                }
            });
        expired.sort_unstable_by_key(offer_sort_key);
        events.extend(expired);
        if !self.connected {
            return events;
        }
        let hashes: Vec<InfoHash> = self.swarms.keys().copied().collect();
        for ih in hashes {
            let Some(swarm) = self.swarms.get_mut(&ih) else {
                continue;
            };
            if let Some(a) = swarm.awaiting {
                if a.deadline <= now {
                    tracing::debug!("no offers created in time; announcing without offers");
                    swarm.awaiting = None;
                    swarm.announced(now, false, self.config.fill_interval);
                    let swarm = swarm.clone();
                    self.send_announce(ih, &swarm, a.event, &[]);
                }
            } else if swarm.next_announce.is_some_and(|t| t <= now) {
                if swarm.refused_until.take().is_some() {
                    // Its last announce was refused: the tracker never counted it in the swarm.
                    self.start_announce(ih, AnnounceEvent::Started, now, &mut events);
                    continue;
                }
                if swarm.filling {
                    swarm.idle_rounds = if swarm.answered == 0 {
                        swarm.idle_rounds + 1
                    } else {
                        0
                    };
                }
                if swarm.filling && swarm.idle_rounds >= self.config.fill_idle_rounds.max(1) {
                    // The last rounds' offers found no taker: back to the normal interval.
                    swarm.filling = false;
                    swarm.idle_rounds = 0;
                    let since = swarm.last_announce.unwrap_or(now);
                    swarm.next_announce = Some((since + swarm.interval).max(now));
                    if swarm.next_announce > Some(now) {
                        continue;
                    }
                }
                self.start_announce(ih, AnnounceEvent::Update, now, &mut events);
            }
        }
        events
    }

    /// Announces `completed` for a swarm (the local peer now has everything), without offers.
    pub fn completed(&mut self, info_hash: InfoHash, _now: Instant) {
        if !self.connected {
            return;
        }
        if let Some(swarm) = self.swarms.get(&info_hash) {
            let swarm = swarm.clone();
            self.send_announce(info_hash, &swarm, AnnounceEvent::Completed, &[]);
        }
    }

    /// Handles one text frame from the tracker.
    ///
    /// Messages for swarms not joined, our own relayed messages and answers to unknown offers are
    /// ignored (no event), as the JavaScript client does. Malformed messages are errors; the client
    /// stays usable.
    pub fn handle_message(
        &mut self,
        text: &str,
        now: Instant,
    ) -> Result<Vec<TrackerEvent>, TrackerClientError> {
        if text.len() > self.config.max_message_bytes {
            return Err(TrackerClientError::TooLarge {
                len: text.len(),
                max: self.config.max_message_bytes,
            });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| TrackerClientError::Json(e.to_string()))?;
        let Value::Object(msg) = value else {
            return Err(TrackerClientError::NotAnObject);
        };
        // A failure may answer a request whose info_hash was unreadable: tolerate a bad one there.
        let info_hash = match msg.get("info_hash") {
            None => None,
            Some(_) if msg.contains_key("failure reason") => msg
                .get("info_hash")
                .and_then(|v| id_field(v, "info_hash").ok()),
            Some(v) => Some(id_field(v, "info_hash")?),
        };
        let mut events = Vec::new();
        if let Some(reason) = msg.get("failure reason") {
            let reason = reason.as_str().ok_or(TrackerClientError::BadField {
                field: "failure reason",
                problem: "not a string",
            })?;
            events.push(TrackerEvent::Failure {
                info_hash,
                reason: reason.to_owned(),
            });
            let refuses_announce = matches!(
                msg.get("action").and_then(Value::as_str),
                None | Some("announce")
            );
            if let Some(ih) = info_hash.filter(|_| refuses_announce) {
                self.announce_refused(ih, now, &mut events);
            }
            return Ok(events);
        }
        if let Some(warning) = msg.get("warning message") {
            let message = warning.as_str().ok_or(TrackerClientError::BadField {
                field: "warning message",
                problem: "not a string",
            })?;
            events.push(TrackerEvent::Warning {
                info_hash,
                message: message.to_owned(),
            });
        }
        match msg.get("action") {
            None if !events.is_empty() => Ok(events),
            None => Err(TrackerClientError::MissingAction),
            Some(Value::String(a)) if a == "announce" => {
                let info_hash = info_hash.ok_or(TrackerClientError::BadField {
                    field: "info_hash",
                    problem: "missing",
                })?;
                self.handle_announce(&msg, info_hash, now, &mut events)?;
                Ok(events)
            }
            // We never send scrapes; a scrape response is harmless.
            Some(Value::String(a)) if a == "scrape" => Ok(events),
            Some(Value::String(a)) => Err(TrackerClientError::UnknownAction(
                a.chars().take(40).collect(),
            )),
            Some(_) => Err(TrackerClientError::BadField {
                field: "action",
                problem: "not a string",
            }),
        }
    }

    /// A failure answered a frame of swarm `info_hash`: if an announce of it was waiting for an
    /// answer, the announce was refused: pause the swarm and expire its unanswered offers. (A
    /// failure with no announce pending answers something else, such as an answer to a peer that
    /// left, and only is reported.)
    fn announce_refused(
        &mut self,
        info_hash: InfoHash,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) {
        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            return;
        };
        if !std::mem::take(&mut swarm.announce_pending) {
            return;
        }
        let max = self
            .config
            .refused_announce_max
            .max(self.config.refused_announce_delay);
        let mut delay = self.config.refused_announce_delay.min(max);
        for _ in 0..swarm.refusals.min(64) {
            delay = delay.saturating_mul(2).min(max);
        }
        swarm.refusals = swarm.refusals.saturating_add(1);
        let until = now + delay;
        swarm.refused_until = Some(until);
        swarm.next_announce = Some(until);
        swarm.awaiting = None;
        swarm.filling = false;
        swarm.idle_rounds = 0;
        self.announces_refused += 1;
        tracing::debug!(?delay, "announce refused; pausing the swarm");
        let mut expired = Vec::new();
        self.pending_offers.retain(|(ih, offer_id), _| {
            if *ih == info_hash {
                expired.push(TrackerEvent::OfferExpired {
                    info_hash,
                    offer_id: *offer_id,
                });
                false
            } else {
                true
            }
        });
        expired.sort_unstable_by_key(offer_sort_key);
        events.extend(expired);
    }

    fn handle_announce(
        &mut self,
        msg: &Map<String, Value>,
        info_hash: InfoHash,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) -> Result<(), TrackerClientError> {
        // Validate everything before changing state, so a bad message changes nothing.
        let peer_id = match msg.get("peer_id") {
            None => None,
            Some(v) => Some(id_field(v, "peer_id")?),
        };
        let interval = match msg.get("interval").or_else(|| msg.get("min interval")) {
            None => None,
            Some(v) => Some(count_field(v, "interval")?),
        };
        let complete = msg
            .get("complete")
            .map(|v| count_field(v, "complete"))
            .transpose()?;
        let incomplete = msg
            .get("incomplete")
            .map(|v| count_field(v, "incomplete"))
            .transpose()?;
        let tracker_id = match msg.get("tracker id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(TrackerClientError::BadField {
                    field: "tracker id",
                    problem: "not a string",
                })
            }
        };
        let offer = msg
            .get("offer")
            .map(|v| sdp_field(v, "offer", "offer"))
            .transpose()?;
        let answer = msg
            .get("answer")
            .map(|v| sdp_field(v, "answer", "answer"))
            .transpose()?;
        let offer_id = if offer.is_some() || answer.is_some() {
            let v = msg.get("offer_id").ok_or(TrackerClientError::BadField {
                field: "offer_id",
                problem: "missing",
            })?;
            Some(id_field(v, "offer_id")?)
        } else {
            None
        };

        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            tracing::debug!("ignoring tracker message for a swarm not joined");
            return Ok(());
        };
        if peer_id == Some(self.config.peer_id) {
            return Ok(());
        }
        if let Some(secs) = interval {
            let d = Duration::from_secs(secs)
                .min(self.config.max_interval)
                .max(self.config.min_interval);
            swarm.interval = d;
            if swarm.awaiting.is_none() {
                // While filling, the early announce is timed from the last announce.
                let since = match swarm.last_announce {
                    Some(t) if swarm.filling => t,
                    _ => now,
                };
                swarm.next_announce = Some(since + swarm.next_delay(self.config.fill_interval));
            }
        }
        if let Some(id) = tracker_id {
            self.tracker_id = Some(id);
        }
        if let Some(complete) = complete {
            swarm.announce_pending = false;
            swarm.refusals = 0;
            swarm.refused_until = None;
            events.push(TrackerEvent::AnnounceAccepted {
                info_hash,
                complete,
                incomplete: incomplete.unwrap_or(0),
                interval: swarm.interval,
            });
        }
        match (offer, answer, peer_id, offer_id) {
            (Some(sdp), _, Some(peer_id), Some(offer_id)) => events.push(TrackerEvent::Offer {
                info_hash,
                peer_id,
                offer_id,
                sdp,
            }),
            (None, Some(sdp), Some(peer_id), Some(offer_id)) => {
                if self.pending_offers.remove(&(info_hash, offer_id)).is_some() {
                    swarm.answered += 1;
                    events.push(TrackerEvent::Answer {
                        info_hash,
                        peer_id,
                        offer_id,
                        sdp,
                    });
                } else {
                    tracing::debug!("ignoring answer to an unknown or expired offer");
                }
            }
            (Some(_), _, None, _) | (_, Some(_), None, _) => {
                return Err(TrackerClientError::BadField {
                    field: "peer_id",
                    problem: "missing",
                })
            }
            _ => {}
        }
        Ok(())
    }

    fn start_announce(
        &mut self,
        info_hash: InfoHash,
        event: AnnounceEvent,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) {
        let count = self.config.numwant.min(self.config.max_offers) as usize;
        let deadline = now + self.config.offer_creation_timeout;
        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            return;
        };
        if count == 0 {
            swarm.announced(now, false, self.config.fill_interval);
            let swarm = swarm.clone();
            self.send_announce(info_hash, &swarm, event, &[]);
            return;
        }
        match &mut swarm.awaiting {
            // Already waiting: keep the stronger event (`started` over `update`).
            Some(a) => {
                if event == AnnounceEvent::Started {
                    a.event = event;
                }
            }
            None => {
                swarm.awaiting = Some(AwaitingOffers {
                    event,
                    count,
                    deadline,
                });
                events.push(TrackerEvent::NeedOffers { info_hash, count });
            }
        }
    }

    fn send_announce(
        &mut self,
        info_hash: InfoHash,
        swarm: &Swarm,
        event: AnnounceEvent,
        offers: &[(OfferId, String)],
    ) {
        if let Some(s) = self.swarms.get_mut(&info_hash) {
            s.announce_pending = true;
        }
        let mut msg = Map::new();
        msg.insert("action".into(), json!("announce"));
        msg.insert("info_hash".into(), json!(encode_binary_string(&info_hash)));
        msg.insert(
            "peer_id".into(),
            json!(encode_binary_string(&self.config.peer_id)),
        );
        let with_offers = matches!(event, AnnounceEvent::Started | AnnounceEvent::Update);
        let numwant = if with_offers {
            self.config.numwant.min(self.config.max_offers)
        } else {
            self.config.numwant
        };
        msg.insert("numwant".into(), json!(numwant));
        msg.insert("uploaded".into(), json!(swarm.uploaded));
        msg.insert("downloaded".into(), json!(swarm.downloaded));
        if let Some(left) = swarm.left {
            msg.insert("left".into(), json!(left));
        }
        if let Some(e) = event.as_str() {
            msg.insert("event".into(), json!(e));
        }
        if with_offers {
            let list: Vec<Value> = offers
                .iter()
                .map(|(id, sdp)| {
                    json!({
                        "offer": {"type": "offer", "sdp": sdp},
                        "offer_id": encode_binary_string(id),
                    })
                })
                .collect();
            msg.insert("offers".into(), Value::Array(list));
        }
        if let Some(id) = &self.tracker_id {
            msg.insert("trackerid".into(), json!(id));
        }
        self.transmit.push_back(Value::Object(msg).to_string());
    }
}

fn offer_sort_key(e: &TrackerEvent) -> (InfoHash, OfferId) {
    match e {
        TrackerEvent::OfferExpired {
            info_hash,
            offer_id,
        } => (*info_hash, *offer_id),
        _ => ([0; 20], [0; 20]),
    }
}

fn id_field(v: &Value, field: &'static str) -> Result<[u8; 20], TrackerClientError> {
    let s = v.as_str().ok_or(TrackerClientError::BadField {
        field,
        problem: "not a string",
    })?;
    decode_binary_string(s).ok_or(TrackerClientError::BadField {
        field,
        problem: "not a 20-byte binary string",
    })
}

fn count_field(v: &Value, field: &'static str) -> Result<u64, TrackerClientError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 => Ok(f as u64),
        _ => Err(TrackerClientError::BadField {
            field,
            problem: "not a non-negative number",
        }),
    }
}

fn sdp_field(
    v: &Value,
    field: &'static str,
    expected_type: &str,
) -> Result<String, TrackerClientError> {
    let obj = v.as_object().ok_or(TrackerClientError::BadField {
        field,
        problem: "not an object",
    })?;
    if let Some(t) = obj.get("type") {
        if t.as_str() != Some(expected_type) {
            return Err(TrackerClientError::BadField {
                field,
                problem: "wrong type",
            });
        }
    }
    let sdp = obj
        .get("sdp")
        .and_then(Value::as_str)
        .ok_or(TrackerClientError::BadField {
            field,
            problem: "sdp missing or not a string",
        })?;
    Ok(sdp.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ids with bytes that exercise the binary-string encoding (NUL, DEL, 0x80, 0xFF, quote).
    const IH: InfoHash = [
        0x00, 0x01, 0x22, 0x5c, 0x7f, 0x80, 0xff, 0xfe, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        0x48, 0x49, 0x4a, 0x4b, 0x4c,
    ];
    const IH2: InfoHash = [b'b'; 20];
    const ME: PeerId = *b"-PM0230-abcdefghijkl";
    const OTHER: PeerId = *b"-PM0230-zyxwvutsrqpo";

    fn oid(n: u8) -> OfferId {
        [n; 20]
    }

    fn bin(b: &[u8]) -> String {
        encode_binary_string(b)
    }

    fn client() -> (TrackerClient, Instant) {
        (
            TrackerClient::new(TrackerClientConfig::new(ME)),
            Instant::now(),
        )
    }

    fn frames(c: &mut TrackerClient) -> Vec<Value> {
        std::iter::from_fn(|| c.poll_transmit())
            .map(|t| serde_json::from_str(&t).expect("client sends JSON"))
            .collect()
    }

    /// Joins IH on a connected client and completes its first announce with two offers.
    fn joined_with_offers(c: &mut TrackerClient, now: Instant) {
        assert!(c.connected(now).is_empty());
        assert_eq!(
            c.join(IH, now),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 5
            }]
        );
        let offers = vec![(oid(1), "sdp-1".to_owned()), (oid(2), "sdp-2".to_owned())];
        assert!(c.offers_created(IH, offers, now).is_empty());
    }

    fn server_msg(v: Value) -> String {
        v.to_string()
    }

    #[test]
    fn binary_strings_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        let s = encode_binary_string(&all);
        assert_eq!(s.chars().count(), 256);
        for chunk in all.chunks(20).filter(|c| c.len() == 20) {
            assert_eq!(
                decode_binary_string(&encode_binary_string(chunk)).unwrap(),
                chunk
            );
        }
        assert_eq!(decode_binary_string("short"), None);
        assert_eq!(decode_binary_string(&"a".repeat(21)), None);
        // 20 characters, one above U+00FF.
        assert_eq!(
            decode_binary_string(&format!("{}\u{100}", "a".repeat(19))),
            None
        );
        // JSON carries them as in JavaScript: code points, UTF-8 on the wire.
        let json = serde_json::to_string(&bin(&IH)).unwrap();
        let back: String = serde_json::from_str(&json).unwrap();
        assert_eq!(decode_binary_string(&back), Some(IH));
    }

    #[test]
    fn join_announces_started_with_the_drivers_offers() {
        let (mut c, now) = client();
        // Nothing is sent before the socket is open.
        assert!(c.join(IH, now).is_empty());
        assert!(c.poll_transmit().is_none());
        assert_eq!(
            c.connected(now),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 5
            }]
        );
        assert!(c.poll_transmit().is_none(), "waits for the offers");
        let offers = vec![
            (oid(1), "v=0 one".to_owned()),
            (oid(2), "v=0 two".to_owned()),
        ];
        assert!(c.offers_created(IH, offers, now).is_empty());
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        let m = &sent[0];
        assert_eq!(m["action"], "announce");
        assert_eq!(m["info_hash"], bin(&IH));
        assert_eq!(m["peer_id"], bin(&ME));
        assert_eq!(m["event"], "started");
        assert_eq!(m["numwant"], 5);
        assert_eq!(m["uploaded"], 0);
        assert_eq!(m["downloaded"], 0);
        assert!(m.get("left").is_none(), "missing left = leecher");
        let offers = m["offers"].as_array().unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0]["offer"]["type"], "offer");
        assert_eq!(offers[0]["offer"]["sdp"], "v=0 one");
        assert_eq!(offers[0]["offer_id"], bin(&oid(1)));
        assert_eq!(offers[1]["offer_id"], bin(&oid(2)));
        assert_eq!(c.pending_offer_count(), 2);
        // Joining again changes nothing.
        assert!(c.join(IH, now).is_empty());
        assert!(c.poll_transmit().is_none());
    }

    #[test]
    fn offer_count_is_min_of_numwant_and_max_offers() {
        let mut config = TrackerClientConfig::new(ME);
        config.numwant = 3;
        let mut c = TrackerClient::new(config);
        let now = Instant::now();
        let _ = c.connected(now);
        assert_eq!(
            c.join(IH, now),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 3
            }]
        );
        // More offers than asked for: the extra one is handed back to be closed.
        let offers = (1..=4).map(|n| (oid(n), format!("sdp{n}"))).collect();
        assert_eq!(
            c.offers_created(IH, offers, now),
            vec![TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(4)
            }]
        );
        let sent = frames(&mut c);
        assert_eq!(sent[0]["offers"].as_array().unwrap().len(), 3);
        assert_eq!(sent[0]["numwant"], 3);
    }

    #[test]
    fn numwant_zero_announces_at_once_without_offers() {
        let mut config = TrackerClientConfig::new(ME);
        config.numwant = 0;
        let mut c = TrackerClient::new(config);
        let now = Instant::now();
        let _ = c.connected(now);
        assert!(c.join(IH, now).is_empty());
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["event"], "started");
        assert_eq!(sent[0]["offers"], serde_json::json!([]));
    }

    #[test]
    fn announce_response_sets_interval_and_reannounces() {
        let (mut c, t0) = client();
        joined_with_offers(&mut c, t0);
        frames(&mut c);
        let resp = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH),
            "complete": 3, "incomplete": 7, "interval": 120
        }));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            c.handle_message(&resp, t1).unwrap(),
            vec![TrackerEvent::AnnounceAccepted {
                info_hash: IH,
                complete: 3,
                incomplete: 7,
                interval: Duration::from_secs(120)
            }]
        );
        // First deadline: the offers' 50 s timeout.
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(50)));
        assert!(c.handle_timeout(t0 + Duration::from_secs(49)).is_empty());
        let mut expired = c.handle_timeout(t0 + Duration::from_secs(50));
        expired.sort_by_key(offer_sort_key);
        assert_eq!(
            expired,
            vec![
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(1)
                },
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(2)
                }
            ]
        );
        assert_eq!(c.pending_offer_count(), 0);
        // Next: the re-announce 120 s after the response.
        let due = t1 + Duration::from_secs(120);
        assert_eq!(c.poll_timeout(), Some(due));
        assert!(c.handle_timeout(due - Duration::from_millis(1)).is_empty());
        assert!(c.poll_transmit().is_none());
        assert_eq!(
            c.handle_timeout(due),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 5
            }]
        );
        assert!(c
            .offers_created(IH, vec![(oid(3), "s3".into())], due)
            .is_empty());
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].get("event").is_none(),
            "a periodic announce is an update"
        );
        assert_eq!(sent[0]["offers"][0]["offer_id"], bin(&oid(3)));
        // Without a response, the next announce follows the current interval.
        assert_eq!(c.poll_timeout(), Some(due + Duration::from_secs(50)));
    }

    #[test]
    fn fill_interval_reannounces_early_while_offers_are_answered() {
        let mut config = TrackerClientConfig::new(ME);
        config.fill_interval = Some(Duration::from_secs(5));
        let mut c = TrackerClient::new(config);
        let t0 = Instant::now();
        joined_with_offers(&mut c, t0);
        frames(&mut c);
        // The tracker's 120 s interval does not postpone the early announce.
        let resp = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH),
            "complete": 1, "incomplete": 99, "interval": 120
        }));
        c.handle_message(&resp, t0 + Duration::from_secs(1))
            .unwrap();
        let answer = |offer: OfferId| {
            server_msg(serde_json::json!({
                "action": "announce", "answer": {"type": "answer", "sdp": "a"},
                "offer_id": bin(&offer), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
            }))
        };
        assert_eq!(c.handle_message(&answer(oid(1)), t0).unwrap().len(), 1);
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(c.poll_timeout(), Some(t5));
        assert!(c.handle_timeout(t5 - Duration::from_millis(1)).is_empty());
        assert_eq!(
            c.handle_timeout(t5),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 5
            }]
        );
        // Second and third rounds: offers go out, none is answered.
        assert!(c
            .offers_created(IH, vec![(oid(3), "s3".into())], t5)
            .is_empty());
        assert_eq!(frames(&mut c).len(), 1);
        let t10 = t5 + Duration::from_secs(5);
        assert_eq!(c.poll_timeout(), Some(t10));
        assert_eq!(
            c.handle_timeout(t10).len(),
            1,
            "one idle round is tolerated"
        );
        assert!(c
            .offers_created(IH, vec![(oid(4), "s4".into())], t10)
            .is_empty());
        assert_eq!(frames(&mut c).len(), 1);
        let t15 = t10 + Duration::from_secs(5);
        assert_eq!(c.poll_timeout(), Some(t15));
        // Two rounds in a row found no taker: no early announce; the interval applies.
        assert!(c.handle_timeout(t15).is_empty());
        assert!(c.poll_transmit().is_none());
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(50)));
        let _ = c.handle_timeout(t0 + Duration::from_secs(50));
        let _ = c.handle_timeout(t5 + Duration::from_secs(50));
        let _ = c.handle_timeout(t10 + Duration::from_secs(50));
        let t = t10 + Duration::from_secs(120);
        assert_eq!(c.poll_timeout(), Some(t));
        // An announce without offers (no room for peers) is not followed by an early one.
        assert_eq!(c.handle_timeout(t).len(), 1);
        assert!(c.offers_created(IH, Vec::new(), t).is_empty());
        assert_eq!(frames(&mut c).len(), 1);
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(120)));
    }

    #[test]
    fn server_interval_is_clamped() {
        for (secs, expected) in [(1u64, 10u64), (0, 10), (100_000, 600), (45, 45)] {
            let (mut c, now) = client();
            joined_with_offers(&mut c, now);
            let resp = server_msg(serde_json::json!({
                "action": "announce", "info_hash": bin(&IH),
                "complete": 0, "incomplete": 1, "interval": secs
            }));
            let ev = c.handle_message(&resp, now).unwrap();
            assert!(
                matches!(ev[0], TrackerEvent::AnnounceAccepted { interval, .. } if interval == Duration::from_secs(expected)),
                "{secs}: {ev:?}"
            );
        }
    }

    #[test]
    fn relayed_offer_is_surfaced_and_answered() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        frames(&mut c);
        let msg = server_msg(serde_json::json!({
            "action": "announce", "offer": {"type": "offer", "sdp": "remote-offer"},
            "offer_id": bin(&oid(9)), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
        }));
        assert_eq!(
            c.handle_message(&msg, now).unwrap(),
            vec![TrackerEvent::Offer {
                info_hash: IH,
                peer_id: OTHER,
                offer_id: oid(9),
                sdp: "remote-offer".into()
            }]
        );
        c.send_answer(IH, OTHER, oid(9), "my-answer");
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        let m = &sent[0];
        assert_eq!(m["action"], "announce");
        assert_eq!(m["info_hash"], bin(&IH));
        assert_eq!(m["peer_id"], bin(&ME));
        assert_eq!(m["to_peer_id"], bin(&OTHER));
        assert_eq!(m["offer_id"], bin(&oid(9)));
        assert_eq!(
            m["answer"],
            serde_json::json!({"type": "answer", "sdp": "my-answer"})
        );
        // Not for a swarm we are not in.
        c.send_answer(IH2, OTHER, oid(9), "x");
        assert!(c.poll_transmit().is_none());
    }

    #[test]
    fn answers_match_our_pending_offers_once() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let answer = |offer: OfferId| {
            server_msg(serde_json::json!({
                "action": "announce", "answer": {"type": "answer", "sdp": "their-answer"},
                "offer_id": bin(&offer), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
            }))
        };
        assert_eq!(
            c.handle_message(&answer(oid(2)), now).unwrap(),
            vec![TrackerEvent::Answer {
                info_hash: IH,
                peer_id: OTHER,
                offer_id: oid(2),
                sdp: "their-answer".into()
            }]
        );
        assert_eq!(c.pending_offer_count(), 1);
        // A second answer to the same offer, or to an offer we never made, is ignored.
        assert!(c.handle_message(&answer(oid(2)), now).unwrap().is_empty());
        assert!(c.handle_message(&answer(oid(7)), now).unwrap().is_empty());
        // An answered offer does not expire later (interval raised so no re-announce is due).
        let resp = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH), "interval": 120
        }));
        assert!(c.handle_message(&resp, now).unwrap().is_empty());
        let ev = c.handle_timeout(now + Duration::from_secs(50));
        assert_eq!(
            ev,
            vec![TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(1)
            }]
        );
        // After expiry, a late answer is ignored too.
        assert!(c.handle_message(&answer(oid(1)), now).unwrap().is_empty());
    }

    #[test]
    fn foreign_swarm_and_own_messages_are_ignored() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let other_swarm = server_msg(serde_json::json!({
            "action": "announce", "offer": {"type": "offer", "sdp": "x"},
            "offer_id": bin(&oid(9)), "peer_id": bin(&OTHER), "info_hash": bin(&IH2)
        }));
        assert!(c.handle_message(&other_swarm, now).unwrap().is_empty());
        let own = server_msg(serde_json::json!({
            "action": "announce", "offer": {"type": "offer", "sdp": "x"},
            "offer_id": bin(&oid(9)), "peer_id": bin(&ME), "info_hash": bin(&IH)
        }));
        assert!(c.handle_message(&own, now).unwrap().is_empty());
    }

    #[test]
    fn leave_sends_stopped_and_drops_offers() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let _ = c.join(IH2, now);
        assert!(c
            .offers_created(IH2, vec![(oid(5), "s".into())], now)
            .is_empty());
        frames(&mut c);
        c.set_transfer_stats(IH, 1000, 2000, None);
        let mut ev = c.leave(IH, now);
        ev.sort_by_key(offer_sort_key);
        assert_eq!(
            ev,
            vec![
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(1)
                },
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(2)
                }
            ]
        );
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["event"], "stopped");
        assert_eq!(sent[0]["info_hash"], bin(&IH));
        assert_eq!(sent[0]["uploaded"], 1000);
        assert_eq!(sent[0]["downloaded"], 2000);
        assert!(sent[0].get("offers").is_none(), "no offers with stopped");
        assert_eq!(c.pending_offer_count(), 1, "the other swarm's offer stays");
        assert_eq!(c.swarms().copied().collect::<Vec<_>>(), vec![IH2]);
        // Leaving twice, or a swarm never joined, sends nothing.
        assert!(c.leave(IH, now).is_empty());
        assert!(c.poll_transmit().is_none());
    }

    /// PeerTube's answer to an info_hash it does not know (`server/core/controllers/tracker.ts`).
    fn peertube_refusal(ih: &InfoHash) -> String {
        let hex: String = ih.iter().map(|b| format!("{b:02x}")).collect();
        server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(ih),
            "failure reason": format!("Unknown infoHash {hex} requested by ip 192.0.2.7"),
        }))
    }

    fn accepted(ih: &InfoHash) -> String {
        server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(ih), "interval": 120,
            "complete": 1, "incomplete": 0
        }))
    }

    #[test]
    fn a_refused_swarm_is_not_announced_again_for_a_while() {
        let (mut c, t0) = client();
        joined_with_offers(&mut c, t0);
        assert_eq!(c.join(IH2, t0).len(), 1);
        assert!(c.offers_created(IH2, Vec::new(), t0).is_empty());
        frames(&mut c);
        assert!(
            announce_refusal(&peertube_refusal(&IH)).is_some_and(|(ih, reason)| {
                ih == Some(IH) && reason.starts_with("Unknown infoHash 0001225c")
            })
        );
        let ev = c.handle_message(&peertube_refusal(&IH), t0).unwrap();
        assert!(matches!(&ev[0], TrackerEvent::Failure { info_hash: Some(ih), .. } if *ih == IH));
        assert_eq!(ev.len(), 3, "the two offers expire: {ev:?}");
        assert_eq!(c.announces_refused(), 1);
        assert_eq!(c.pending_offer_count(), 0);
        let pause = Duration::from_secs(600);
        assert_eq!(c.refused_until(&IH), Some(t0 + pause));
        assert_eq!(c.refused_until(&IH2), None);
        // The other swarm goes on: accepted, re-announced at its interval; IH stays quiet.
        assert_eq!(c.handle_message(&accepted(&IH2), t0).unwrap().len(), 1);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(120)));
        let ev = c.handle_timeout(t0 + Duration::from_secs(120));
        assert_eq!(
            ev,
            vec![TrackerEvent::NeedOffers {
                info_hash: IH2,
                count: 5
            }]
        );
        assert!(c
            .offers_created(IH2, Vec::new(), t0 + Duration::from_secs(120))
            .is_empty());
        assert!(frames(&mut c).iter().all(|f| f["info_hash"] == bin(&IH2)));
        // PeerTube closes the socket; on reconnect only IH2 is announced.
        let t1 = t0 + Duration::from_secs(200);
        let _ = c.disconnected(t1);
        assert_eq!(
            c.connected(t1),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH2,
                count: 5
            }]
        );
        assert!(c.offers_created(IH2, Vec::new(), t1).is_empty());
        frames(&mut c);
        assert_eq!(c.handle_message(&accepted(&IH2), t1).unwrap().len(), 1);
        assert!(c.leave(IH2, t1).is_empty());
        frames(&mut c);
        // Once the pause is over IH is announced `started` again (it never joined the swarm).
        assert_eq!(c.poll_timeout(), Some(t0 + pause));
        assert_eq!(
            c.handle_timeout(t0 + pause),
            vec![TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 5
            }]
        );
        assert!(c.offers_created(IH, Vec::new(), t0 + pause).is_empty());
        let f = frames(&mut c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0]["event"], "started");
        // Refused again: the pause doubles. Accepted later: the series ends.
        let t2 = t0 + pause;
        let _ = c.handle_message(&peertube_refusal(&IH), t2).unwrap();
        assert_eq!(c.refused_until(&IH), Some(t2 + 2 * pause));
        assert_eq!(c.announces_refused(), 2);
        let t3 = t2 + 2 * pause;
        let _ = c.handle_timeout(t3);
        assert!(c.offers_created(IH, Vec::new(), t3).is_empty());
        assert_eq!(c.handle_message(&accepted(&IH), t3).unwrap().len(), 1);
        assert_eq!(c.refused_until(&IH), None);
        let _ = c.handle_timeout(t3 + Duration::from_secs(120));
        assert!(c
            .offers_created(IH, Vec::new(), t3 + Duration::from_secs(120))
            .is_empty());
        let _ = c.handle_message(&peertube_refusal(&IH), t3 + Duration::from_secs(120));
        assert_eq!(
            c.refused_until(&IH),
            Some(t3 + Duration::from_secs(120) + pause)
        );
    }

    #[test]
    fn a_failure_with_no_announce_pending_does_not_pause_the_swarm() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        assert_eq!(c.handle_message(&accepted(&IH), now).unwrap().len(), 1);
        // segswarm-tracker's failure to an answer whose offerer left names the swarm too.
        let f = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH), "failure reason": "unknown offer"
        }));
        assert_eq!(c.handle_message(&f, now).unwrap().len(), 1);
        assert_eq!(c.refused_until(&IH), None);
        assert_eq!(c.announces_refused(), 0);
        assert_eq!(c.pending_offer_count(), 2);
        // Failures to scrapes, or for swarms not joined, pause nothing either.
        assert_eq!(
            announce_refusal(r#"{"action":"scrape","failure reason":"x"}"#),
            None
        );
        assert_eq!(
            announce_refusal(r#"{"failure reason":"bad request"}"#),
            Some((None, "bad request".into()))
        );
        assert_eq!(announce_refusal(&accepted(&IH)), None);
        assert_eq!(announce_refusal("not json"), None);
        let other = peertube_refusal(&IH2);
        assert_eq!(c.handle_message(&other, now).unwrap().len(), 1);
        assert_eq!(c.announces_refused(), 0);
    }

    #[test]
    fn failures_and_warnings_become_events() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let failure = server_msg(serde_json::json!({
            "action": "announce", "failure reason": "info_hash not allowed", "info_hash": bin(&IH)
        }));
        // It refuses the announce: its unanswered offers expire.
        assert_eq!(
            c.handle_message(&failure, now).unwrap(),
            vec![
                TrackerEvent::Failure {
                    info_hash: Some(IH),
                    reason: "info_hash not allowed".into()
                },
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(1)
                },
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(2)
                },
            ]
        );
        // The reference server's reply to an unparsable request: no action, no info_hash.
        assert_eq!(
            c.handle_message(r#"{"failure reason":"invalid info_hash"}"#, now)
                .unwrap(),
            vec![TrackerEvent::Failure {
                info_hash: None,
                reason: "invalid info_hash".into()
            }]
        );
        // A failure naming an unreadable info_hash is still surfaced.
        assert_eq!(
            c.handle_message(r#"{"failure reason":"x","info_hash":"short"}"#, now)
                .unwrap(),
            vec![TrackerEvent::Failure {
                info_hash: None,
                reason: "x".into()
            }]
        );
        let warn = server_msg(serde_json::json!({
            "action": "announce", "warning message": "slow down", "info_hash": bin(&IH),
            "complete": 1, "incomplete": 2, "interval": 60
        }));
        assert_eq!(
            c.handle_message(&warn, now).unwrap(),
            vec![
                TrackerEvent::Warning {
                    info_hash: Some(IH),
                    message: "slow down".into()
                },
                TrackerEvent::AnnounceAccepted {
                    info_hash: IH,
                    complete: 1,
                    incomplete: 2,
                    interval: Duration::from_secs(60)
                }
            ]
        );
    }

    #[test]
    fn malformed_messages_are_errors_and_leave_the_client_usable() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let ih = bin(&IH);
        let other = bin(&OTHER);
        let o = bin(&oid(9));
        let cases: Vec<(String, TrackerClientError)> = vec![
            ("not json".into(), TrackerClientError::Json(String::new())),
            ("[1]".into(), TrackerClientError::NotAnObject),
            ("{}".into(), TrackerClientError::MissingAction),
            (
                r#"{"action":"dance"}"#.into(),
                TrackerClientError::UnknownAction("dance".into()),
            ),
            (
                r#"{"action":7}"#.into(),
                TrackerClientError::BadField { field: "action", problem: "not a string" },
            ),
            (
                r#"{"action":"announce"}"#.into(),
                TrackerClientError::BadField { field: "info_hash", problem: "missing" },
            ),
            (
                r#"{"action":"announce","info_hash":"abc"}"#.into(),
                TrackerClientError::BadField { field: "info_hash", problem: "not a 20-byte binary string" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":"\u{263a}".repeat(20)}).to_string(),
                TrackerClientError::BadField { field: "info_hash", problem: "not a 20-byte binary string" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"complete":-1}).to_string(),
                TrackerClientError::BadField { field: "complete", problem: "not a non-negative number" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"interval":"soon"}).to_string(),
                TrackerClientError::BadField { field: "interval", problem: "not a non-negative number" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"offer":{"type":"offer"},"offer_id":o,"peer_id":other}).to_string(),
                TrackerClientError::BadField { field: "offer", problem: "sdp missing or not a string" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"offer":{"type":"answer","sdp":"x"},"offer_id":o,"peer_id":other}).to_string(),
                TrackerClientError::BadField { field: "offer", problem: "wrong type" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"offer":"x","offer_id":o,"peer_id":other}).to_string(),
                TrackerClientError::BadField { field: "offer", problem: "not an object" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"offer":{"sdp":"x"},"peer_id":other}).to_string(),
                TrackerClientError::BadField { field: "offer_id", problem: "missing" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"answer":{"sdp":"x"},"offer_id":o}).to_string(),
                TrackerClientError::BadField { field: "peer_id", problem: "missing" },
            ),
            (
                serde_json::json!({"action":"announce","info_hash":ih,"failure reason":5}).to_string(),
                TrackerClientError::BadField { field: "failure reason", problem: "not a string" },
            ),
        ];
        for (text, expected) in cases {
            let err = c.handle_message(&text, now).unwrap_err();
            match (&err, &expected) {
                (TrackerClientError::Json(_), TrackerClientError::Json(_)) => {}
                _ => assert_eq!(err, expected, "{text}"),
            }
            assert!(!err.to_string().is_empty());
        }
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(300 * 1024));
        assert!(matches!(
            c.handle_message(&big, now),
            Err(TrackerClientError::TooLarge { .. })
        ));
        // Nothing changed: both offers still pending, still usable.
        assert_eq!(c.pending_offer_count(), 2);
        let ok = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH), "complete": 0, "incomplete": 1, "interval": 120
        }));
        assert_eq!(c.handle_message(&ok, now).unwrap().len(), 1);
        // Unknown fields are tolerated; a scrape response is accepted silently.
        let extra = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH), "x-custom": [1, 2]
        }));
        assert!(c.handle_message(&extra, now).unwrap().is_empty());
        assert!(c
            .handle_message(r#"{"action":"scrape","files":{}}"#, now)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_an_accepted_announce_resets_the_backoff() {
        assert!(is_announce_accepted(
            r#"{"action":"announce","info_hash":"x","interval":120,"complete":0,"incomplete":1}"#
        ));
        assert!(!is_announce_accepted(
            r#"{"action":"announce","failure reason":"full","complete":0}"#
        ));
        assert!(!is_announce_accepted(
            r#"{"action":"announce","offer":{"type":"offer","sdp":"x"},"offer_id":"y"}"#
        ));
        assert!(!is_announce_accepted(r#"{"action":"scrape","complete":1}"#));
        assert!(!is_announce_accepted("not json"));
    }

    #[test]
    fn reconnect_rejoins_every_swarm() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let _ = c.join(IH2, now);
        c.send_answer(IH, OTHER, oid(9), "queued but never sent");
        let mut ev = c.disconnected(now);
        ev.sort_by_key(offer_sort_key);
        assert_eq!(
            ev,
            vec![
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(1)
                },
                TrackerEvent::OfferExpired {
                    info_hash: IH,
                    offer_id: oid(2)
                }
            ]
        );
        assert!(
            c.poll_transmit().is_none(),
            "queued frames die with the socket"
        );
        assert_eq!(c.poll_timeout(), None, "no announces while disconnected");
        // Offers that arrive for the old socket's announce are handed back.
        assert_eq!(
            c.offers_created(IH2, vec![(oid(6), "late".into())], now),
            vec![TrackerEvent::OfferExpired {
                info_hash: IH2,
                offer_id: oid(6)
            }]
        );
        let later = now + Duration::from_secs(30);
        assert_eq!(
            c.connected(later),
            vec![
                TrackerEvent::NeedOffers {
                    info_hash: IH,
                    count: 5
                },
                TrackerEvent::NeedOffers {
                    info_hash: IH2,
                    count: 5
                },
            ]
        );
        assert!(c.offers_created(IH, vec![], later).is_empty());
        assert!(c.offers_created(IH2, vec![], later).is_empty());
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|m| m["event"] == "started"));
    }

    #[test]
    fn announce_goes_out_without_offers_if_the_driver_is_late() {
        let (mut c, now) = client();
        let _ = c.connected(now);
        let _ = c.join(IH, now);
        let deadline = now + Duration::from_secs(10);
        assert_eq!(c.poll_timeout(), Some(deadline));
        assert!(c.handle_timeout(deadline).is_empty());
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["event"], "started");
        assert_eq!(sent[0]["offers"], serde_json::json!([]));
        assert_eq!(
            c.offers_created(IH, vec![(oid(1), "late".into())], deadline),
            vec![TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(1)
            }]
        );
        assert_eq!(c.pending_offer_count(), 0);
    }

    #[test]
    fn tracker_id_is_echoed_and_completed_is_sent() {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        frames(&mut c);
        let resp = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH), "tracker id": "t-42", "interval": 120
        }));
        assert!(c.handle_message(&resp, now).unwrap().is_empty());
        c.set_transfer_stats(IH, 1, 2, Some(0));
        c.completed(IH, now);
        let sent = frames(&mut c);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["event"], "completed");
        assert_eq!(sent[0]["trackerid"], "t-42");
        assert_eq!(sent[0]["left"], 0);
        assert!(sent[0].get("offers").is_none());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "[ -~]{0,8}".prop_map(Value::String),
            Just(Value::String(bin(&IH))),
            Just(Value::String(bin(&OTHER))),
            Just(Value::String(bin(&oid(1)))),
            Just(Value::String(bin(&ME))),
            Just(Value::String("announce".into())),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![Just("type".to_owned()), Just("sdp".to_owned())],
                    inner,
                    0..3
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn field_name() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            "action",
            "info_hash",
            "peer_id",
            "offer_id",
            "offer",
            "answer",
            "complete",
            "incomplete",
            "interval",
            "min interval",
            "tracker id",
            "failure reason",
            "warning message",
            "to_peer_id",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let (mut c, now) = client();
            joined_with_offers(&mut c, now);
            let _ = c.handle_message(&text, now);
        }

        #[test]
        fn arbitrary_protocol_shaped_objects_never_panic(
            fields in proptest::collection::btree_map(field_name(), json_value(), 0..8)
        ) {
            let (mut c, now) = client();
            joined_with_offers(&mut c, now);
            let msg = Value::Object(fields.into_iter().collect()).to_string();
            let _ = c.handle_message(&msg, now);
            let _ = c.handle_timeout(now + Duration::from_secs(3600));
        }

        /// Random driver behaviour: every offer handed to the client comes back exactly once, as
        /// an answer or an expiry; nothing is sent while disconnected; the timer never stays due.
        #[test]
        fn offers_are_conserved_and_timers_advance(ops in proptest::collection::vec(driver_op(), 0..80)) {
            let (mut c, t0) = client();
            let mut now = t0;
            let mut next_offer = 0u16;
            let mut given = std::collections::HashSet::new();
            let mut returned = std::collections::HashSet::new();
            let mut asked: Vec<InfoHash> = Vec::new();
            let mut relayed: Vec<(InfoHash, OfferId)> = Vec::new();
            let swarms = [IH, IH2];
            let mut events = Vec::new();
            for op in ops {
                match op {
                    DriverOp::Connect => events.extend(c.connected(now)),
                    DriverOp::Disconnect => events.extend(c.disconnected(now)),
                    DriverOp::Join(i) => events.extend(c.join(swarms[i], now)),
                    DriverOp::Leave(i) => events.extend(c.leave(swarms[i], now)),
                    DriverOp::Offers(i, n) => {
                        let ih = asked.get(i % asked.len().max(1)).copied().unwrap_or(swarms[i % 2]);
                        let offers: Vec<(OfferId, String)> = (0..n)
                            .map(|_| {
                                next_offer += 1;
                                let mut id = [0u8; 20];
                                id[..2].copy_from_slice(&next_offer.to_be_bytes());
                                given.insert((ih, id));
                                (id, "sdp".to_owned())
                            })
                            .collect();
                        events.extend(c.offers_created(ih, offers, now));
                    }
                    DriverOp::Answer(k) => {
                        if let Some(&(ih, id)) = given.iter().nth(k % given.len().max(1)) {
                            let msg = serde_json::json!({
                                "action": "announce", "answer": {"type": "answer", "sdp": "a"},
                                "offer_id": bin(&id), "peer_id": bin(&OTHER), "info_hash": bin(&ih)
                            });
                            events.extend(c.handle_message(&msg.to_string(), now).unwrap());
                            relayed.push((ih, id));
                        }
                    }
                    DriverOp::Advance(secs) => {
                        now += Duration::from_secs(secs);
                        if c.poll_timeout().is_some_and(|t| t <= now) {
                            events.extend(c.handle_timeout(now));
                            prop_assert!(c.poll_timeout().is_none_or(|t| t > now), "timer still due");
                        }
                    }
                }
                if !c.is_connected() {
                    prop_assert!(c.poll_transmit().is_none(), "sent while disconnected");
                }
                while c.poll_transmit().is_some() {}
                for e in events.drain(..) {
                    match e {
                        TrackerEvent::NeedOffers { info_hash, count } => {
                            prop_assert!(count <= 5);
                            asked.push(info_hash);
                        }
                        TrackerEvent::OfferExpired { info_hash, offer_id }
                        | TrackerEvent::Answer { info_hash, offer_id, .. } => {
                            prop_assert!(given.contains(&(info_hash, offer_id)), "unknown offer returned");
                            prop_assert!(returned.insert((info_hash, offer_id)), "offer returned twice");
                        }
                        _ => {}
                    }
                }
            }
            for e in c.disconnected(now) {
                if let TrackerEvent::OfferExpired { info_hash, offer_id } = e {
                    prop_assert!(returned.insert((info_hash, offer_id)), "offer returned twice");
                }
            }
            prop_assert_eq!(c.pending_offer_count(), 0);
            prop_assert_eq!(returned.len(), given.len(), "every offer comes back exactly once");
        }
    }

    #[derive(Debug, Clone)]
    enum DriverOp {
        Connect,
        Disconnect,
        Join(usize),
        Leave(usize),
        Offers(usize, usize),
        Answer(usize),
        Advance(u64),
    }

    fn driver_op() -> impl Strategy<Value = DriverOp> {
        prop_oneof![
            1 => Just(DriverOp::Connect),
            1 => Just(DriverOp::Disconnect),
            2 => (0usize..2).prop_map(DriverOp::Join),
            1 => (0usize..2).prop_map(DriverOp::Leave),
            3 => (0usize..4, 0usize..7).prop_map(|(i, n)| DriverOp::Offers(i, n)),
            2 => (0usize..50).prop_map(DriverOp::Answer),
            3 => (0u64..70).prop_map(DriverOp::Advance),
        ]
    }
}
