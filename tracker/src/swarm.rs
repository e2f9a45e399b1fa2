//! The roster: who is in which swarm, and what an announce or answer must cause.
//!
//! Sans-IO: no sockets, no clock. Callers pass `now` and a random generator in and get back
//! counts and the connections that must receive a relayed offer or answer; encoding and sending
//! stay with the server. Swarms are spread over shards (a mutex each) by a hash of the info_hash, so
//! announces to different swarms rarely contend. WebSocket peers and HTTP peers of one info_hash
//! share a swarm and its seeder/leecher counts; offers only go to WebSocket peers, HTTP peer lists
//! only hold HTTP peers.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use rand::Rng;

use crate::config::Config;
use crate::protocol::http::HttpPeer;
use crate::protocol::ws::ScrapeCounts;
use crate::protocol::{AnnounceEvent, ErrorKind, Id20};

/// Identifies one WebSocket connection for the server.
pub type ConnId = u64;

/// The roster's settings (a subset of [`Config`]).
#[derive(Debug, Clone)]
pub struct RosterSettings {
    /// Most offers relayed from one announce.
    pub max_offers: usize,
    /// Relay answers only to offers delivered to the answering peer within `offer_ttl`.
    pub check_answers: bool,
    /// How long a delivered offer may be answered.
    pub offer_ttl: Duration,
    /// A peer silent this long is removed by [`Roster::expire`].
    pub peer_timeout: Duration,
    /// Most peers in one swarm.
    pub max_peers_per_swarm: usize,
    /// Most unanswered delivered offers remembered per peer (oldest dropped first).
    pub max_pending_offers: usize,
    /// Number of shards (locks).
    pub shards: usize,
}

impl RosterSettings {
    /// Takes the settings from the tracker configuration.
    pub fn from_config(config: &Config) -> RosterSettings {
        RosterSettings {
            max_offers: config.protocol.max_offers,
            check_answers: config.protocol.check_answers,
            offer_ttl: config.offer_ttl(),
            peer_timeout: config.peer_timeout(),
            max_peers_per_swarm: config.limits.max_peers_per_swarm,
            max_pending_offers: config.protocol.max_pending_offers_per_peer,
            shards: 64,
        }
    }
}

impl Default for RosterSettings {
    fn default() -> Self {
        RosterSettings::from_config(&Config::default())
    }
}

/// An offer delivered to a peer that it may answer: the roster's keyed hash of the offer id and
/// the offering peer ([`Roster::offer_key`]), so that an answer is checked by comparing one word
/// per pending offer, and when it was delivered.
#[derive(Debug, Clone, Copy)]
struct PendingOffer {
    key: u64,
    at: Instant,
}

#[derive(Debug)]
struct WsPeer {
    conn: ConnId,
    seeder: bool,
    last_seen: Instant,
    /// Offers delivered to this peer, oldest first.
    pending: VecDeque<PendingOffer>,
}

#[derive(Debug)]
struct HttpPeerEntry {
    addr: SocketAddr,
    seeder: bool,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Swarm {
    ws: IndexMap<Id20, WsPeer>,
    http: IndexMap<Id20, HttpPeerEntry>,
    seeders: u64,
    leechers: u64,
    downloaded: u64,
}

impl Swarm {
    fn len(&self) -> usize {
        self.ws.len() + self.http.len()
    }

    fn counts(&self) -> ScrapeCounts {
        ScrapeCounts {
            complete: self.seeders,
            incomplete: self.leechers,
            downloaded: self.downloaded,
        }
    }

    fn uncount(&mut self, seeder: bool) {
        if seeder {
            self.seeders = self.seeders.saturating_sub(1);
        } else {
            self.leechers = self.leechers.saturating_sub(1);
        }
    }

    fn count(&mut self, seeder: bool) {
        if seeder {
            self.seeders += 1;
        } else {
            self.leechers += 1;
        }
    }

    /// Updates the seeder flag of an existing peer (promotion only, as the reference tracker),
    /// counting a download on `completed`.
    fn promote(&mut self, was_seeder: bool, seeder: bool, event: AnnounceEvent) -> bool {
        if was_seeder {
            return true;
        }
        if seeder || event == AnnounceEvent::Completed {
            self.leechers = self.leechers.saturating_sub(1);
            self.seeders += 1;
            if event == AnnounceEvent::Completed {
                self.downloaded += 1;
            }
            return true;
        }
        false
    }

    /// Counts a new peer in, unless the swarm already holds `max_peers`; returns whether it
    /// counts as a seeder (a `completed` announce makes it one and counts a download).
    fn admit(
        &mut self,
        seeder: bool,
        event: AnnounceEvent,
        max_peers: usize,
    ) -> Result<bool, ErrorKind> {
        if self.len() >= max_peers {
            return Err(ErrorKind::SwarmFull);
        }
        let completed = event == AnnounceEvent::Completed;
        if completed {
            self.downloaded += 1;
        }
        self.count(seeder || completed);
        Ok(seeder || completed)
    }

    /// Adds or refreshes the WebSocket peer of an announce (not `stopped`).
    fn ws_join(
        &mut self,
        announce: &WsAnnounceRequest<'_>,
        conns: &impl ConnView,
        max_peers: usize,
        now: Instant,
    ) -> Result<(), ErrorKind> {
        let &WsAnnounceRequest {
            conn,
            peer_id,
            event,
            seeder,
            ..
        } = announce;
        match self.ws.get_mut(&peer_id) {
            Some(peer) => {
                if peer.conn != conn {
                    if !conns.may_take_over(peer.conn) {
                        return Err(ErrorKind::PeerIdInUse);
                    }
                    peer.conn = conn;
                    peer.pending = VecDeque::new();
                }
                let was = peer.seeder;
                peer.last_seen = now;
                let promoted = self.promote(was, seeder, event);
                if let Some(peer) = self.ws.get_mut(&peer_id) {
                    peer.seeder = promoted;
                }
            }
            None => {
                let seeder = self.admit(seeder, event, max_peers)?;
                self.ws.insert(
                    peer_id,
                    WsPeer {
                        conn,
                        seeder,
                        last_seen: now,
                        pending: VecDeque::new(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Picks distinct random other WebSocket peers for the announce's offers (those whose
    /// connection has room), remembering each delivered offer for `check_answers`.
    fn pick_offer_targets(
        &mut self,
        announce: &WsAnnounceRequest<'_>,
        conns: &impl ConnView,
        settings: &RosterSettings,
        keys: &RandomState,
        now: Instant,
        rng: &mut impl Rng,
    ) -> WsAnnounceOutcome {
        let &WsAnnounceRequest {
            peer_id, offer_ids, ..
        } = announce;
        let mut offer_targets = Vec::new();
        let mut offers_refused = 0;
        let others = self.ws.len().saturating_sub(1);
        let wanted = offer_ids.len().min(settings.max_offers).min(others);
        if wanted > 0 {
            let own = self.ws.get_index_of(&peer_id);
            offer_targets.reserve(wanted);
            for index in sample_others(rng, self.ws.len(), own, wanted) {
                let offer_index = offer_targets.len();
                if let Some((_, target)) = self.ws.get_index_mut(index) {
                    if !conns.has_room(target.conn) {
                        offers_refused += 1;
                        continue;
                    }
                    if settings.check_answers {
                        remember_offer(
                            &mut target.pending,
                            PendingOffer {
                                key: offer_key(keys, &offer_ids[offer_index], &peer_id),
                                at: now,
                            },
                            now,
                            settings.offer_ttl,
                            settings.max_pending_offers,
                        );
                    }
                    offer_targets.push((offer_index, target.conn));
                }
            }
        }
        WsAnnounceOutcome {
            complete: self.seeders,
            incomplete: self.leechers,
            offer_targets,
            offers_refused,
        }
    }

    /// Adds or refreshes the HTTP peer of an announce (not `stopped`).
    fn http_join(
        &mut self,
        peer_id: Id20,
        addr: SocketAddr,
        event: AnnounceEvent,
        seeder: bool,
        max_peers: usize,
        now: Instant,
    ) -> Result<(), ErrorKind> {
        match self.http.get_mut(&peer_id) {
            Some(peer) => {
                let was = peer.seeder;
                peer.last_seen = now;
                peer.addr = addr;
                let promoted = self.promote(was, seeder, event);
                if let Some(peer) = self.http.get_mut(&peer_id) {
                    peer.seeder = promoted;
                }
            }
            None => {
                let seeder = self.admit(seeder, event, max_peers)?;
                self.http.insert(
                    peer_id,
                    HttpPeerEntry {
                        addr,
                        seeder,
                        last_seen: now,
                    },
                );
            }
        }
        Ok(())
    }

    /// Removes the WebSocket peer `peer_id` if connection `conn` holds it; returns whether it did.
    fn remove_ws(&mut self, conn: ConnId, peer_id: Id20) -> bool {
        if self.ws.get(&peer_id).is_none_or(|p| p.conn != conn) {
            return false;
        }
        if let Some(peer) = self.ws.swap_remove(&peer_id) {
            self.uncount(peer.seeder);
        }
        true
    }
}

#[derive(Debug, Default)]
struct Shard {
    swarms: HashMap<Id20, Swarm>,
    /// The shard's swarms, seeders and leechers, kept as they change so that
    /// [`Roster::totals`] costs one visit per shard, not per swarm.
    totals: Totals,
}

impl Shard {
    /// Runs `change` on the swarm of `info_hash`, created when missing if `create` (and at
    /// least one peer is allowed per swarm); keeps the shard's totals and frees the swarm
    /// when it is left empty. `None` when there is no such swarm and none was created.
    fn change<T>(
        &mut self,
        info_hash: Id20,
        create: Option<usize>,
        change: impl FnOnce(&mut Swarm) -> T,
    ) -> Option<T> {
        let Shard { swarms, totals } = self;
        let swarm = match (swarms.get_mut(&info_hash), create) {
            (Some(swarm), _) => swarm,
            (None, Some(max_peers)) if max_peers > 0 => {
                totals.swarms += 1;
                swarms.entry(info_hash).or_default()
            }
            (None, _) => return None,
        };
        let (seeders, leechers) = (swarm.seeders, swarm.leechers);
        let out = change(swarm);
        totals.seeders = (totals.seeders + swarm.seeders).saturating_sub(seeders);
        totals.leechers = (totals.leechers + swarm.leechers).saturating_sub(leechers);
        if swarm.len() == 0 {
            swarms.remove(&info_hash);
            totals.swarms = totals.swarms.saturating_sub(1);
        }
        Some(out)
    }
}

/// A WebSocket announce as the roster needs it.
#[derive(Debug, Clone, Copy)]
pub struct WsAnnounceRequest<'a> {
    /// The connection it came on.
    pub conn: ConnId,
    /// The swarm.
    pub info_hash: Id20,
    /// The announcing peer.
    pub peer_id: Id20,
    /// Its event.
    pub event: AnnounceEvent,
    /// Whether the peer has everything (`left: 0`).
    pub seeder: bool,
    /// The ids of its offers, in order.
    pub offer_ids: &'a [Id20],
}

/// What the roster asks the runtime about connections while it handles an announce.
pub trait ConnView {
    /// Whether connection `conn` can take one more relayed message now.
    fn has_room(&self, conn: ConnId) -> bool;
    /// Whether a peer_id held by connection `holder` may pass to another connection: true only
    /// when the holder is gone or has been silent long enough to be taken for a dead socket.
    fn may_take_over(&self, holder: ConnId) -> bool;
}

/// Every connection has room and is alive: no peer_id changes connection.
#[derive(Debug, Clone, Copy)]
pub struct AllLive;

impl ConnView for AllLive {
    fn has_room(&self, _conn: ConnId) -> bool {
        true
    }

    fn may_take_over(&self, _holder: ConnId) -> bool {
        false
    }
}

/// What a WebSocket announce caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsAnnounceOutcome {
    /// Seeders in the swarm after the announce.
    pub complete: u64,
    /// Leechers in the swarm after the announce.
    pub incomplete: u64,
    /// `(offer index, connection)`: offer *i* goes to that connection's peer.
    pub offer_targets: Vec<(usize, ConnId)>,
    /// Peers chosen for an offer but passed over because they could not take one now (see
    /// [`Roster::ws_announce_with`]); those offers are not sent.
    pub offers_refused: usize,
}

/// What an HTTP announce returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnnounceOutcome {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Other HTTP peers, randomly chosen.
    pub peers: Vec<HttpPeer>,
}

/// Totals over every swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Swarms with at least one peer.
    pub swarms: u64,
    /// Seeders over all swarms.
    pub seeders: u64,
    /// Leechers over all swarms.
    pub leechers: u64,
}

/// What [`Roster::expire`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireReport {
    /// Peers removed for silence.
    pub peers: u64,
    /// Swarms freed because they became empty.
    pub swarms: u64,
}

/// The sharded roster of swarms.
#[derive(Debug)]
pub struct Roster {
    settings: RosterSettings,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Roster {
    /// An empty roster.
    pub fn new(settings: RosterSettings) -> Roster {
        let n = settings.shards.max(1);
        Roster {
            settings,
            hasher: RandomState::new(),
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &RosterSettings {
        &self.settings
    }

    fn shard(&self, info_hash: &Id20) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(info_hash) % self.shards.len() as u64) as usize;
        lock(&self.shards[index])
    }

    /// A WebSocket announce from `peer_id` on connection `conn`: joins, updates or (on `stopped`)
    /// leaves the swarm, and picks distinct random other WebSocket peers for the first
    /// `min(offer_ids.len(), max_offers)` offers. Every connection is taken to have room, and a
    /// peer_id held by another connection is refused (see [`Roster::ws_announce_with`]).
    #[allow(clippy::too_many_arguments)]
    pub fn ws_announce(
        &self,
        conn: ConnId,
        info_hash: Id20,
        peer_id: Id20,
        event: AnnounceEvent,
        seeder: bool,
        offer_ids: &[Id20],
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<WsAnnounceOutcome, ErrorKind> {
        let announce = WsAnnounceRequest {
            conn,
            info_hash,
            peer_id,
            event,
            seeder,
            offer_ids,
        };
        self.ws_announce_with(&announce, &AllLive, now, rng)
    }

    /// A WebSocket announce, asking `conns` about the connections involved:
    ///
    /// - a chosen peer whose connection has no room ([`ConnView::has_room`]) gets no offer and
    ///   no pending-offer record, and is counted in [`WsAnnounceOutcome::offers_refused`];
    /// - a peer_id held by another connection is refused with [`ErrorKind::PeerIdInUse`]
    ///   unless [`ConnView::may_take_over`] says that connection is gone or silent;
    /// - `stopped` for a peer_id this connection does not hold changes nothing and is refused
    ///   with [`ErrorKind::NotOwnPeer`].
    pub fn ws_announce_with(
        &self,
        announce: &WsAnnounceRequest<'_>,
        conns: &impl ConnView,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<WsAnnounceOutcome, ErrorKind> {
        let WsAnnounceRequest {
            conn,
            info_hash,
            peer_id,
            event,
            ..
        } = *announce;
        let mut shard = self.shard(&info_hash);
        if event == AnnounceEvent::Stopped {
            let left = shard.change(info_hash, None, |swarm| {
                (swarm.remove_ws(conn, peer_id), swarm.counts())
            });
            return match left {
                Some((true, counts)) => Ok(WsAnnounceOutcome {
                    complete: counts.complete,
                    incomplete: counts.incomplete,
                    offer_targets: Vec::new(),
                    offers_refused: 0,
                }),
                _ => Err(ErrorKind::NotOwnPeer),
            };
        }
        let max_peers = self.settings.max_peers_per_swarm;
        let settings = &self.settings;
        let keys = &self.hasher;
        shard
            .change(info_hash, Some(max_peers), |swarm| {
                swarm.ws_join(announce, conns, max_peers, now)?;
                Ok(swarm.pick_offer_targets(announce, conns, settings, keys, now, rng))
            })
            .unwrap_or(Err(ErrorKind::SwarmFull))
    }

    /// An answer from `peer_id` (on `conn`) to `to_peer_id`'s offer `offer_id`: returns the
    /// connection to relay it to. With `check_answers`, the offer must have been delivered to
    /// `peer_id` by this tracker within `offer_ttl`, and it can be answered once.
    pub fn ws_answer(
        &self,
        conn: ConnId,
        info_hash: Id20,
        peer_id: Id20,
        to_peer_id: Id20,
        offer_id: Id20,
        now: Instant,
    ) -> Result<ConnId, ErrorKind> {
        let key = offer_key(&self.hasher, &offer_id, &to_peer_id);
        let mut shard = self.shard(&info_hash);
        let check = self.settings.check_answers;
        let ttl = self.settings.offer_ttl;
        let Some(swarm) = shard.swarms.get_mut(&info_hash) else {
            return Err(if check {
                ErrorKind::UnknownOffer
            } else {
                ErrorKind::UnknownPeer
            });
        };
        match swarm.ws.get_mut(&peer_id).filter(|p| p.conn == conn) {
            Some(answerer) => {
                answerer.last_seen = now;
                if check {
                    let found = answerer
                        .pending
                        .iter()
                        .position(|p| p.key == key && now.saturating_duration_since(p.at) <= ttl);
                    match found {
                        Some(i) => {
                            answerer.pending.remove(i);
                        }
                        None => return Err(ErrorKind::UnknownOffer),
                    }
                }
            }
            None if check => return Err(ErrorKind::UnknownOffer),
            None => {}
        }
        swarm
            .ws
            .get(&to_peer_id)
            .map(|p| p.conn)
            .ok_or(ErrorKind::UnknownPeer)
    }

    /// Removes `peer_id` from the swarm if it is still held by `conn` (socket closed or the
    /// connection switched peer ids). Returns whether a peer was removed.
    pub fn ws_remove(&self, conn: ConnId, info_hash: Id20, peer_id: Id20) -> bool {
        self.shard(&info_hash)
            .change(info_hash, None, |swarm| swarm.remove_ws(conn, peer_id))
            .unwrap_or(false)
    }

    /// An HTTP announce from `addr`: joins, updates or leaves the swarm, and returns up to
    /// `numwant` other HTTP peers chosen at random.
    #[allow(clippy::too_many_arguments)]
    pub fn http_announce(
        &self,
        info_hash: Id20,
        peer_id: Id20,
        addr: SocketAddr,
        event: AnnounceEvent,
        seeder: bool,
        numwant: usize,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<HttpAnnounceOutcome, ErrorKind> {
        let mut shard = self.shard(&info_hash);
        if event == AnnounceEvent::Stopped {
            let counts = shard
                .change(info_hash, None, |swarm| {
                    if let Some(peer) = swarm.http.swap_remove(&peer_id) {
                        swarm.uncount(peer.seeder);
                    }
                    swarm.counts()
                })
                .unwrap_or_default();
            return Ok(HttpAnnounceOutcome {
                complete: counts.complete,
                incomplete: counts.incomplete,
                peers: Vec::new(),
            });
        }
        let max_peers = self.settings.max_peers_per_swarm;
        shard
            .change(info_hash, Some(max_peers), |swarm| {
                swarm.http_join(peer_id, addr, event, seeder, max_peers, now)?;
                let own = swarm.http.get_index_of(&peer_id);
                let wanted = numwant.min(swarm.http.len().saturating_sub(1));
                let mut peers = Vec::with_capacity(wanted);
                if wanted > 0 {
                    for index in sample_others(rng, swarm.http.len(), own, wanted) {
                        if let Some((id, peer)) = swarm.http.get_index(index) {
                            peers.push(HttpPeer {
                                peer_id: *id,
                                addr: peer.addr,
                            });
                        }
                    }
                }
                Ok(HttpAnnounceOutcome {
                    complete: swarm.seeders,
                    incomplete: swarm.leechers,
                    peers,
                })
            })
            .unwrap_or(Err(ErrorKind::SwarmFull))
    }

    /// Counts for the listed swarms (zeros for unknown ones), in the order given.
    pub fn scrape(&self, info_hashes: &[Id20]) -> Vec<(Id20, ScrapeCounts)> {
        info_hashes
            .iter()
            .map(|ih| {
                let shard = self.shard(ih);
                let counts = shard.swarms.get(ih).map(Swarm::counts).unwrap_or_default();
                (*ih, counts)
            })
            .collect()
    }

    /// Counts for every swarm.
    pub fn scrape_all(&self) -> Vec<(Id20, ScrapeCounts)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            out.extend(shard.swarms.iter().map(|(ih, s)| (*ih, s.counts())));
        }
        out
    }

    /// Totals over every swarm.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            totals.swarms += shard.totals.swarms;
            totals.seeders += shard.totals.seeders;
            totals.leechers += shard.totals.leechers;
        }
        totals
    }

    /// The `n` swarms with the most peers, busiest first: `(info_hash, seeders, leechers)`.
    pub fn top_swarms(&self, n: usize) -> Vec<(Id20, u64, u64)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            all.extend(
                shard
                    .swarms
                    .iter()
                    .map(|(ih, s)| (*ih, s.seeders, s.leechers)),
            );
        }
        all.sort_unstable_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// Removes peers silent for `peer_timeout`, forgets expired offers and frees empty swarms.
    pub fn expire(&self, now: Instant) -> ExpireReport {
        let timeout = self.settings.peer_timeout;
        let ttl = self.settings.offer_ttl;
        let mut report = ExpireReport::default();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.swarms.retain(|_, swarm| {
                let before = swarm.len();
                let mut removed_seeders = 0;
                let mut removed_leechers = 0;
                let mut tally = |seeder: bool| {
                    if seeder {
                        removed_seeders += 1;
                    } else {
                        removed_leechers += 1;
                    }
                };
                swarm.ws.retain(|_, peer| {
                    let alive = now.saturating_duration_since(peer.last_seen) < timeout;
                    if alive {
                        peer.pending
                            .retain(|p| now.saturating_duration_since(p.at) <= ttl);
                        if peer.pending.is_empty() && peer.pending.capacity() > 0 {
                            peer.pending = VecDeque::new();
                        }
                    } else {
                        tally(peer.seeder);
                    }
                    alive
                });
                swarm.http.retain(|_, peer| {
                    let alive = now.saturating_duration_since(peer.last_seen) < timeout;
                    if !alive {
                        tally(peer.seeder);
                    }
                    alive
                });
                swarm.seeders = swarm.seeders.saturating_sub(removed_seeders);
                swarm.leechers = swarm.leechers.saturating_sub(removed_leechers);
                report.peers += (before - swarm.len()) as u64;
                if swarm.ws.capacity() > 16 && swarm.ws.capacity() > swarm.ws.len() * 4 {
                    swarm.ws.shrink_to_fit();
                }
                if swarm.http.capacity() > 16 && swarm.http.capacity() > swarm.http.len() * 4 {
                    swarm.http.shrink_to_fit();
                }
                let keep = swarm.len() > 0;
                if !keep {
                    report.swarms += 1;
                }
                keep
            });
            shard.totals = Totals {
                swarms: shard.swarms.len() as u64,
                seeders: shard.swarms.values().map(|s| s.seeders).sum(),
                leechers: shard.swarms.values().map(|s| s.leechers).sum(),
            };
            if shard.swarms.capacity() > 64 && shard.swarms.capacity() > shard.swarms.len() * 4 {
                shard.swarms.shrink_to_fit();
            }
        }
        report
    }
}

/// The key under which an offer `offer_id` from `from` is remembered: a hash keyed with the
/// roster's random state, so that no client can make another offer's key collide with its own.
fn offer_key(keys: &RandomState, offer_id: &Id20, from: &Id20) -> u64 {
    keys.hash_one((offer_id, from))
}

/// Records a delivered offer, dropping expired ones and the oldest beyond `max`. Offers are
/// recorded in the order they are delivered, so the expired ones are at the front (offers
/// recorded by two workers at nearly the same instant may be a few microseconds out of order;
/// such an entry goes at a later call or the next [`Roster::expire`]).
fn remember_offer(
    pending: &mut VecDeque<PendingOffer>,
    offer: PendingOffer,
    now: Instant,
    ttl: Duration,
    max: usize,
) {
    if max == 0 {
        return;
    }
    while pending
        .front()
        .is_some_and(|p| now.saturating_duration_since(p.at) > ttl)
    {
        pending.pop_front();
    }
    if pending.len() >= max {
        pending.pop_front();
    }
    pending.push_back(offer);
}

/// Indices of up to `wanted` distinct entries among `len`, chosen at random, never `own`.
fn sample_others(
    rng: &mut impl Rng,
    len: usize,
    own: Option<usize>,
    wanted: usize,
) -> impl Iterator<Item = usize> {
    rand::seq::index::sample(rng, len, (wanted + 1).min(len))
        .into_iter()
        .filter(move |&i| Some(i) != own)
        .take(wanted)
}

/// Locks a shard; a poisoned lock (a panic elsewhere) still yields the data.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn id(b: u8) -> Id20 {
        Id20([b; 20])
    }

    fn roster(settings: impl FnOnce(&mut RosterSettings)) -> Roster {
        let mut s = RosterSettings::default();
        settings(&mut s);
        Roster::new(s)
    }

    fn join(
        r: &Roster,
        conn: ConnId,
        ih: u8,
        peer: u8,
        seeder: bool,
        now: Instant,
    ) -> WsAnnounceOutcome {
        let mut rng = StdRng::seed_from_u64(conn);
        r.ws_announce(
            conn,
            id(ih),
            id(peer),
            AnnounceEvent::Started,
            seeder,
            &[],
            now,
            &mut rng,
        )
        .unwrap()
    }

    #[test]
    fn counts_follow_joins_completion_and_leaves() {
        let r = roster(|_| {});
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(join(&r, 1, 9, 1, false, now).incomplete, 1);
        let out = join(&r, 2, 9, 2, true, now);
        assert_eq!((out.complete, out.incomplete), (1, 1));
        let out = r
            .ws_announce(
                1,
                id(9),
                id(1),
                AnnounceEvent::Completed,
                true,
                &[],
                now,
                &mut rng,
            )
            .unwrap();
        assert_eq!((out.complete, out.incomplete), (2, 0));
        assert_eq!(r.scrape(&[id(9)])[0].1.downloaded, 1);
        let out = r
            .ws_announce(
                2,
                id(9),
                id(2),
                AnnounceEvent::Stopped,
                true,
                &[],
                now,
                &mut rng,
            )
            .unwrap();
        assert_eq!((out.complete, out.incomplete), (1, 0));
        assert!(r.ws_remove(1, id(9), id(1)));
        assert_eq!(r.totals(), Totals::default(), "empty swarm freed");
    }

    #[test]
    fn offers_go_to_distinct_other_peers_capped_by_max_offers() {
        let r = roster(|s| s.max_offers = 3);
        let now = Instant::now();
        for p in 1..=10u8 {
            join(&r, u64::from(p), 5, p, false, now);
        }
        let offers: Vec<Id20> = (100..110).map(id).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let out = r
            .ws_announce(
                1,
                id(5),
                id(1),
                AnnounceEvent::Update,
                false,
                &offers,
                now,
                &mut rng,
            )
            .unwrap();
        assert_eq!(out.offer_targets.len(), 3);
        let targets: HashSet<ConnId> = out.offer_targets.iter().map(|t| t.1).collect();
        assert_eq!(targets.len(), 3, "distinct");
        assert!(!targets.contains(&1), "never to the sender");
        let indices: Vec<usize> = out.offer_targets.iter().map(|t| t.0).collect();
        assert_eq!(indices, vec![0, 1, 2]);
    }

    #[test]
    fn peers_that_cannot_take_an_offer_are_passed_over_and_not_remembered() {
        let r = roster(|_| {});
        let now = Instant::now();
        for p in 1..=3u8 {
            join(&r, u64::from(p), 5, p, false, now);
        }
        let offers: Vec<Id20> = (100..102).map(id).collect();
        let mut rng = StdRng::seed_from_u64(3);
        // Peer 2's connection cannot take more: only peer 3 gets an offer, the first one.
        let out = r
            .ws_announce_with(
                &WsAnnounceRequest {
                    conn: 1,
                    info_hash: id(5),
                    peer_id: id(1),
                    event: AnnounceEvent::Update,
                    seeder: false,
                    offer_ids: &offers,
                },
                &View {
                    full: Some(2),
                    gone: None,
                },
                now,
                &mut rng,
            )
            .unwrap();
        assert_eq!(out.offer_targets, vec![(0, 3)]);
        assert_eq!(out.offers_refused, 1);
        // Peer 3 can answer its offer; peer 2 was never sent one, so its answer is refused.
        assert_eq!(r.ws_answer(3, id(5), id(3), id(1), id(100), now), Ok(1));
        for offer in [100, 101] {
            assert_eq!(
                r.ws_answer(2, id(5), id(2), id(1), id(offer), now),
                Err(ErrorKind::UnknownOffer)
            );
        }
    }

    #[test]
    fn offers_limited_by_swarm_size() {
        let r = roster(|_| {});
        let now = Instant::now();
        join(&r, 1, 5, 1, false, now);
        join(&r, 2, 5, 2, false, now);
        let mut rng = StdRng::seed_from_u64(3);
        let offers: Vec<Id20> = (100..105).map(id).collect();
        let out = r
            .ws_announce(
                1,
                id(5),
                id(1),
                AnnounceEvent::Update,
                false,
                &offers,
                now,
                &mut rng,
            )
            .unwrap();
        assert_eq!(out.offer_targets, vec![(0, 2)]);
    }

    #[test]
    fn answers_need_a_delivered_unexpired_offer() {
        let r = roster(|s| s.offer_ttl = Duration::from_secs(10));
        let now = Instant::now();
        join(&r, 1, 5, 1, false, now);
        join(&r, 2, 5, 2, false, now);
        let mut rng = StdRng::seed_from_u64(3);
        r.ws_announce(
            1,
            id(5),
            id(1),
            AnnounceEvent::Update,
            false,
            &[id(50), id(51)],
            now,
            &mut rng,
        )
        .unwrap();
        // Offer 50 went to peer 2 (conn 2); offer 51 went nowhere.
        assert_eq!(
            r.ws_answer(2, id(5), id(2), id(1), id(51), now),
            Err(ErrorKind::UnknownOffer)
        );
        assert_eq!(
            r.ws_answer(2, id(5), id(2), id(9), id(50), now),
            Err(ErrorKind::UnknownOffer)
        );
        assert_eq!(
            r.ws_answer(3, id(5), id(2), id(1), id(50), now),
            Err(ErrorKind::UnknownOffer),
            "wrong connection"
        );
        assert_eq!(r.ws_answer(2, id(5), id(2), id(1), id(50), now), Ok(1));
        assert_eq!(
            r.ws_answer(2, id(5), id(2), id(1), id(50), now),
            Err(ErrorKind::UnknownOffer),
            "answered once"
        );
        r.ws_announce(
            1,
            id(5),
            id(1),
            AnnounceEvent::Update,
            false,
            &[id(52)],
            now,
            &mut rng,
        )
        .unwrap();
        let late = now + Duration::from_secs(11);
        assert_eq!(
            r.ws_answer(2, id(5), id(2), id(1), id(52), late),
            Err(ErrorKind::UnknownOffer),
            "expired"
        );
    }

    #[test]
    fn unchecked_answers_go_to_any_present_peer() {
        let r = roster(|s| s.check_answers = false);
        let now = Instant::now();
        join(&r, 1, 5, 1, false, now);
        join(&r, 2, 5, 2, false, now);
        assert_eq!(r.ws_answer(2, id(5), id(2), id(1), id(77), now), Ok(1));
        assert_eq!(
            r.ws_answer(2, id(5), id(2), id(8), id(77), now),
            Err(ErrorKind::UnknownPeer)
        );
    }

    /// A runtime view: connection `full` has no room, connection `gone` may be taken over.
    struct View {
        full: Option<ConnId>,
        gone: Option<ConnId>,
    }

    impl ConnView for View {
        fn has_room(&self, conn: ConnId) -> bool {
            self.full != Some(conn)
        }
        fn may_take_over(&self, holder: ConnId) -> bool {
            self.gone == Some(holder)
        }
    }

    fn started(conn: ConnId, ih: u8, peer: u8) -> WsAnnounceRequest<'static> {
        WsAnnounceRequest {
            conn,
            info_hash: id(ih),
            peer_id: id(peer),
            event: AnnounceEvent::Started,
            seeder: false,
            offer_ids: &[],
        }
    }

    #[test]
    fn a_peer_id_moves_to_another_connection_only_from_a_dead_one() {
        let r = roster(|_| {});
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        join(&r, 1, 5, 1, false, now);
        let live = View {
            full: None,
            gone: None,
        };
        assert_eq!(
            r.ws_announce_with(&started(2, 5, 1), &live, now, &mut rng),
            Err(ErrorKind::PeerIdInUse)
        );
        let mut stop = started(2, 5, 1);
        stop.event = AnnounceEvent::Stopped;
        assert_eq!(
            r.ws_announce_with(&stop, &live, now, &mut rng),
            Err(ErrorKind::NotOwnPeer),
            "another connection cannot stop it"
        );
        assert_eq!(r.totals().leechers, 1);
        let dead = View {
            full: None,
            gone: Some(1),
        };
        r.ws_announce_with(&started(2, 5, 1), &dead, now, &mut rng)
            .expect("taken over from a dead connection");
        assert_eq!(r.totals().leechers, 1);
        assert!(
            !r.ws_remove(1, id(5), id(1)),
            "old connection no longer owns it"
        );
        assert!(r.ws_remove(2, id(5), id(1)));
        assert_eq!(r.totals(), Totals::default());
    }

    #[test]
    fn totals_kept_per_shard_match_a_recount() {
        let r = roster(|s| s.shards = 4);
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(9);
        for step in 0..2000u32 {
            let conn = u64::from(rng.random_range(1..40u8));
            let ih = rng.random_range(1..12u8);
            let peer = conn as u8;
            let event = match rng.random_range(0..4) {
                0 => AnnounceEvent::Stopped,
                1 => AnnounceEvent::Completed,
                _ => AnnounceEvent::Started,
            };
            let mut request = started(conn, ih, peer);
            request.event = event;
            request.seeder = rng.random_bool(0.3);
            let _ = r.ws_announce_with(&request, &AllLive, now, &mut rng);
            if step % 7 == 0 {
                let addr = SocketAddr::from(([127, 0, 0, peer], 6881));
                let _ =
                    r.http_announce(id(ih), id(peer + 100), addr, event, false, 5, now, &mut rng);
            }
            if step % 500 == 0 {
                r.ws_remove(conn, id(ih), id(peer));
            }
            let kept = r.totals();
            let all = r.scrape_all();
            assert_eq!(kept.swarms, all.len() as u64);
            assert_eq!(
                kept.seeders,
                all.iter().map(|(_, c)| c.complete).sum::<u64>()
            );
            assert_eq!(
                kept.leechers,
                all.iter().map(|(_, c)| c.incomplete).sum::<u64>()
            );
        }
    }

    #[test]
    fn swarm_full_refuses_new_peers_only() {
        let r = roster(|s| s.max_peers_per_swarm = 2);
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        join(&r, 1, 5, 1, false, now);
        join(&r, 2, 5, 2, false, now);
        let err = r.ws_announce(
            3,
            id(5),
            id(3),
            AnnounceEvent::Started,
            false,
            &[],
            now,
            &mut rng,
        );
        assert_eq!(err, Err(ErrorKind::SwarmFull));
        let err = r.http_announce(
            id(5),
            id(4),
            "1.2.3.4:5".parse().unwrap(),
            AnnounceEvent::Started,
            false,
            5,
            now,
            &mut rng,
        );
        assert_eq!(err, Err(ErrorKind::SwarmFull));
        assert!(r
            .ws_announce(
                1,
                id(5),
                id(1),
                AnnounceEvent::Update,
                false,
                &[],
                now,
                &mut rng
            )
            .is_ok());
    }

    #[test]
    fn expiry_removes_silent_peers_and_frees_swarms() {
        let r = roster(|s| s.peer_timeout = Duration::from_secs(5));
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        join(&r, 1, 5, 1, false, t0);
        join(&r, 2, 6, 2, true, t0);
        r.http_announce(
            id(6),
            id(3),
            "1.2.3.4:5".parse().unwrap(),
            AnnounceEvent::Started,
            false,
            5,
            t0,
            &mut rng,
        )
        .unwrap();
        let t1 = t0 + Duration::from_secs(4);
        join(&r, 1, 5, 1, false, t1);
        let report = r.expire(t0 + Duration::from_secs(6));
        assert_eq!(
            report,
            ExpireReport {
                peers: 2,
                swarms: 1
            }
        );
        assert_eq!(
            r.totals(),
            Totals {
                swarms: 1,
                seeders: 0,
                leechers: 1
            }
        );
    }

    #[test]
    fn http_and_ws_peers_share_counts_but_not_peer_lists() {
        let r = roster(|_| {});
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        join(&r, 1, 5, 1, true, now);
        let a = r
            .http_announce(
                id(5),
                id(2),
                "10.0.0.1:1000".parse().unwrap(),
                AnnounceEvent::Started,
                false,
                50,
                now,
                &mut rng,
            )
            .unwrap();
        assert!(a.peers.is_empty());
        let b = r
            .http_announce(
                id(5),
                id(3),
                "[::1]:2000".parse().unwrap(),
                AnnounceEvent::Started,
                false,
                50,
                now,
                &mut rng,
            )
            .unwrap();
        assert_eq!((b.complete, b.incomplete), (1, 2));
        assert_eq!(
            b.peers,
            vec![HttpPeer {
                peer_id: id(2),
                addr: "10.0.0.1:1000".parse().unwrap()
            }]
        );
        let all = r.scrape_all();
        assert_eq!(all.len(), 1);
        assert_eq!(r.top_swarms(5), vec![(id(5), 1, 2)]);
    }

    #[test]
    fn pending_offers_are_bounded() {
        let r = roster(|s| s.max_pending_offers = 2);
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        join(&r, 1, 5, 1, false, now);
        join(&r, 2, 5, 2, false, now);
        for o in 10..13u8 {
            r.ws_announce(
                1,
                id(5),
                id(1),
                AnnounceEvent::Update,
                false,
                &[id(o)],
                now,
                &mut rng,
            )
            .unwrap();
        }
        assert_eq!(
            r.ws_answer(2, id(5), id(2), id(1), id(10), now),
            Err(ErrorKind::UnknownOffer)
        );
        assert_eq!(r.ws_answer(2, id(5), id(2), id(1), id(12), now), Ok(1));
    }
}
