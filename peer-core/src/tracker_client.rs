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

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// The tracker refused something (`failure reason`).
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
    awaiting: Option<AwaitingOffers>,
    uploaded: u64,
    downloaded: u64,
    left: Option<u64>,
}

/// Client state machine for one tracker socket. See the module documentation.
#[derive(Debug)]
pub struct TrackerClient {
    config: TrackerClientConfig,
    connected: bool,
    swarms: BTreeMap<InfoHash, Swarm>,
    /// Our unanswered offers and when they expire.
    pending_offers: HashMap<(InfoHash, OfferId), Instant>,
    tracker_id: Option<String>,
    transmit: VecDeque<String>,
}

impl TrackerClient {
    /// A client with no swarms, not yet connected.
    pub fn new(config: TrackerClientConfig) -> Self {
        Self {
            config,
            connected: false,
            swarms: BTreeMap::new(),
            pending_offers: HashMap::new(),
            tracker_id: None,
            transmit: VecDeque::new(),
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

    /// Number of our offers still waiting for an answer.
    pub fn pending_offer_count(&self) -> usize {
        self.pending_offers.len()
    }

    /// The socket is open: announces `started` for every joined swarm.
    #[must_use = "the events ask for offers"]
    pub fn connected(&mut self, now: Instant) -> Vec<TrackerEvent> {
        self.connected = true;
        let mut events = Vec::new();
        let hashes: Vec<InfoHash> = self.swarms.keys().copied().collect();
        for ih in hashes {
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
        }
        let mut events: Vec<TrackerEvent> = self
            .pending_offers
            .drain()
            .map(|((info_hash, offer_id), _)| TrackerEvent::OfferExpired {
                info_hash,
                offer_id,
            })
            .collect();
        events.sort_by_key(offer_sort_key);
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
                awaiting: None,
                uploaded: 0,
                downloaded: 0,
                left: None,
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
        events.sort_by_key(offer_sort_key);
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
        if let Some(swarm) = self.swarms.get_mut(&info_hash) {
            swarm.next_announce = Some(now + swarm.interval);
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
        expired.sort_by_key(offer_sort_key);
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
                    swarm.next_announce = Some(now + swarm.interval);
                    let swarm = swarm.clone();
                    self.send_announce(ih, &swarm, a.event, &[]);
                }
            } else if swarm.next_announce.is_some_and(|t| t <= now) {
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
        let info_hash = match msg.get("info_hash") {
            None => None,
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
            let d =
                Duration::from_secs(secs).clamp(self.config.min_interval, self.config.max_interval);
            swarm.interval = d;
            if swarm.awaiting.is_none() {
                swarm.next_announce = Some(now + d);
            }
        }
        if let Some(id) = tracker_id {
            self.tracker_id = Some(id);
        }
        if let Some(complete) = complete {
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
            swarm.next_announce = Some(now + swarm.interval);
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
