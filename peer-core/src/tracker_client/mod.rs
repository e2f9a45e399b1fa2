//! The client side of the WebTorrent WebSocket tracker protocol, sans-IO.
//!
//! One [`TrackerClient`] stands for one tracker socket carrying several swarms (info hashes) for one
//! local peer id. The driver owns the socket and the WebRTC stack:
//!
//! - it feeds [`TrackerClient::connected`], [`TrackerClient::disconnected`], every received text
//!   frame, read once by the shared codec ([`TrackerFrame::parse`], then
//!   [`TrackerClient::handle_message`]), and the timer ([`TrackerClient::handle_timeout`]);
//! - it sends what [`TrackerClient::poll_transmit`] returns and wakes at
//!   [`TrackerClient::poll_timeout`];
//! - after each input it drains [`TrackerClient::poll_event`] and acts on the [`TrackerEvent`]s:
//!   creates WebRTC offers on [`TrackerEvent::NeedOffers`] and hands them back with
//!   [`TrackerClient::offers_created`], answers relayed offers with
//!   [`TrackerClient::send_answer`], completes its own offers on [`TrackerEvent::Answer`] and
//!   closes them on [`TrackerEvent::OfferExpired`].
//!
//! Ids (`info_hash`, `peer_id`, `offer_id`) are 20 bytes and travel as "binary strings" (one
//! character per byte, U+0000..=U+00FF). Frames are read and written by the shared codec,
//! [`segswarm_ws_protocol`].

use std::time::Duration;

pub use segswarm_ws_protocol::TrackerFrame;
use segswarm_ws_protocol::{AnnounceEvent, AnswerRequest, Id20, ResponseError};

use crate::queue::take_first;
use crate::time::Instant;
use crate::vecmap::VecMap;

mod config;
mod messages;

pub use self::config::TrackerClientConfig;

/// A swarm's 20-byte info hash.
pub type InfoHash = [u8; 20];
/// A peer's 20-byte id.
pub type PeerId = [u8; 20];
/// A WebRTC offer's 20-byte id, chosen by whoever creates the offer.
pub type OfferId = [u8; 20];

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
        /// Its size ([`TrackerFrame::text_len`]).
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

impl From<ResponseError> for TrackerClientError {
    fn from(e: ResponseError) -> Self {
        match e {
            ResponseError::Json(e) => TrackerClientError::Json(e),
            ResponseError::NotAnObject => TrackerClientError::NotAnObject,
            ResponseError::MissingAction => TrackerClientError::MissingAction,
            ResponseError::UnknownAction(a) => TrackerClientError::UnknownAction(a),
            ResponseError::BadField { field, problem } => {
                TrackerClientError::BadField { field, problem }
            }
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
    /// Frames for [`TrackerClient::poll_transmit`], oldest first.
    transmit: Vec<String>,
    /// Events for [`TrackerClient::poll_event`], oldest first.
    events: Vec<TrackerEvent>,
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
            transmit: Vec::new(),
            events: Vec::new(),
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
    pub fn connected(&mut self, now: Instant) {
        self.connected = true;
        let hashes: Vec<InfoHash> = self.swarms.keys().copied().collect();
        for ih in hashes {
            if let Some(swarm) = self.swarms.get_mut(&ih) {
                if let Some(until) = swarm.refused_until.filter(|t| *t > now) {
                    swarm.next_announce = Some(until);
                    continue;
                }
            }
            self.start_announce(ih, AnnounceEvent::Started, now);
        }
    }

    /// The socket closed: drops queued frames and every unanswered offer (reported as
    /// [`TrackerEvent::OfferExpired`]). Swarms stay joined and are announced again on
    /// [`TrackerClient::connected`].
    pub fn disconnected(&mut self, _now: Instant) {
        self.connected = false;
        self.transmit.clear();
        for swarm in self.swarms.values_mut() {
            swarm.awaiting = None;
            swarm.next_announce = None;
            swarm.announce_pending = false;
        }
        self.expire_offers(|_, _| true);
    }

    /// Joins a swarm: announces `started` with offers now if connected, else once connected.
    /// Joining a swarm already joined does nothing.
    pub fn join(&mut self, info_hash: InfoHash, now: Instant) {
        if self.swarms.contains_key(&info_hash) {
            return;
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
            self.start_announce(info_hash, AnnounceEvent::Started, now);
        }
    }

    /// Leaves a swarm: announces `stopped` (if connected) and drops its unanswered offers.
    pub fn leave(&mut self, info_hash: InfoHash, _now: Instant) {
        let Some(swarm) = self.swarms.remove(&info_hash) else {
            return;
        };
        if self.connected {
            self.send_announce(info_hash, &swarm, AnnounceEvent::Stopped, &[]);
        }
        self.expire_offers(|(ih, _), _| *ih == info_hash);
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
    pub fn offers_created(
        &mut self,
        info_hash: InfoHash,
        offers: Vec<(OfferId, String)>,
        now: Instant,
    ) {
        let awaiting = match self.swarms.get_mut(&info_hash) {
            Some(swarm) if self.connected => swarm.awaiting.take(),
            _ => None,
        };
        let Some(awaiting) = awaiting else {
            self.hand_back(info_hash, offers);
            return;
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
        self.hand_back(info_hash, extra);
    }

    /// Offers the client will not use, reported as [`TrackerEvent::OfferExpired`] in the order
    /// given.
    fn hand_back(&mut self, info_hash: InfoHash, offers: Vec<(OfferId, String)>) {
        self.events.extend(
            offers
                .into_iter()
                .map(|(offer_id, _)| TrackerEvent::OfferExpired {
                    info_hash,
                    offer_id,
                }),
        );
    }

    /// Drops the unanswered offers `expire` picks (by key and deadline), reported as
    /// [`TrackerEvent::OfferExpired`] in (info hash, offer id) order.
    pub(super) fn expire_offers(
        &mut self,
        expire: impl Fn(&(InfoHash, OfferId), &Instant) -> bool,
    ) {
        let events = &mut self.events;
        self.pending_offers
            .retain(|&(info_hash, offer_id), deadline| {
                if !expire(&(info_hash, offer_id), deadline) {
                    return true;
                }
                events.push(TrackerEvent::OfferExpired {
                    info_hash,
                    offer_id,
                });
                false
            });
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
        let answer = AnswerRequest {
            info_hash: Id20(info_hash),
            peer_id: Id20(self.config.peer_id),
            to_peer_id: Id20(to_peer_id),
            offer_id: Id20(offer_id),
            sdp,
            tracker_id: self.tracker_id.as_deref(),
        };
        self.transmit.push(answer.to_json());
    }

    /// The next JSON text frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<String> {
        take_first(&mut self.transmit)
    }

    /// The next event for the driver, if any: drain them after each input.
    pub fn poll_event(&mut self) -> Option<TrackerEvent> {
        take_first(&mut self.events)
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
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_offers(|_, deadline| *deadline <= now);
        if !self.connected {
            return;
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
                    self.start_announce(ih, AnnounceEvent::Started, now);
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
                self.start_announce(ih, AnnounceEvent::Update, now);
            }
        }
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
}

#[cfg(test)]
mod tests;
