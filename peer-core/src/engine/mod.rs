//! The peer engine: one sans-IO state machine tying the store, integrity checks, the scheduler, the
//! wire protocol and the tracker client together.
//!
//! The driver feeds [`Input`]s with the current time ([`Engine::handle_input`]), carries out every
//! [`Output`] ([`Engine::poll_output`]) and calls [`Engine::handle_input`] with [`Input::Timer`]
//! when [`Engine::poll_timeout`] is reached. The engine never reads a clock and never does IO.
//!
//! Rules taken from p2p-media-loader: one download and one upload per peer at a time; a byte-count
//! mismatch, a protocol violation or a failed segment validation destroys the peer; a segment whose
//! hash does not match the manifest bans the sending peer for the session and is fetched again over
//! HTTP. Loaded and HTTP-loading segments are announced to every peer on connect and on change.
//!
//! Beyond p2p-media-loader (see [`EngineConfig::relay_partial`]): a segment still downloading is
//! announced as loading and served to peers that ask for it, its bytes relayed as they arrive, so
//! a new live segment crosses the swarm in a few hops' latency instead of one whole transfer per
//! hop.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::integrity::{file_name_of, SegmentManifest, Verification};
use crate::rng::CoreRng;
use crate::scheduler::{
    Action, Policy, Scheduler, SchedulerConfig, Source, UploadBudget, WantedSegment,
};
use crate::store::{EvictionMode, SegmentStore, StoreConfig, StreamKey};
use crate::time::Instant;
use crate::tracker_client::{
    InfoHash, OfferId, PeerId, TrackerClient, TrackerClientConfig, TrackerEvent,
};
use crate::vecmap::VecMap;
use crate::wire::{
    encode_command_with_max, Command, Incoming, MessageDecoder, RequestId, SegmentId,
    MAX_MESSAGE_BYTES,
};

pub use crate::scheduler::PeerHandle;

mod api;
mod config;
mod downloads;
mod peers;
mod signalling;
mod uploads;

pub use self::api::{DeliverySource, HttpHandle, Input, Output, SegmentInfo, Stats};
pub use self::config::EngineConfig;

#[derive(Debug)]
struct PeerDownload {
    segment: SegmentId,
    request: RequestId,
    /// Total bytes announced by `SegmentData`, once received.
    expected: Option<u64>,
    received: u64,
}

#[derive(Debug)]
struct Upload {
    segment: SegmentId,
    request: RequestId,
    /// First byte of the segment asked for (`SegmentRequest`'s byte offset).
    from: usize,
    /// Bytes sent so far, counted from `from`.
    offset: usize,
    /// Bytes announced in `SegmentData` (segment size − `from`), once the size is known.
    size: Option<usize>,
    /// The stored (verified) segment from `from` on; `None` while relaying a segment that is still
    /// downloading, whose bytes are read from the partial download as they arrive.
    data: Option<Bytes>,
    header_sent: bool,
    /// Waiting for an upload slot: its place in the queue (lower is served first).
    queued: Option<u64>,
    /// For a relay: the [`Partial::generation`] it reads; another generation ends it.
    generation: Option<u64>,
}

#[derive(Debug)]
struct Peer {
    remote_id: Option<PeerId>,
    offer_id: Option<OfferId>,
    connected: bool,
    decoder: MessageDecoder,
    download: Option<PeerDownload>,
    upload: Option<Upload>,
    /// The segment last asked for by this peer and how many requests in a row named it.
    asked: Option<(SegmentId, u32)>,
}

#[derive(Debug)]
struct HttpReq {
    segment: SegmentId,
    base: usize,
    from_byte: u64,
}

#[derive(Debug, Default)]
struct Partial {
    data: Vec<u8>,
    total: Option<u64>,
    /// Changes whenever bytes are dropped (the download starts over, possibly from another
    /// source): a relay reading an older generation must end, or it would splice two sources.
    generation: u64,
    /// Peers that supplied bytes of `data`, in order (their id when known): blamed for a hash
    /// mismatch, whatever source completed the segment.
    peers: Vec<(PeerHandle, Option<PeerId>)>,
}

impl Partial {
    /// Keeps the first `len` bytes; a new generation if that drops any.
    fn truncate(&mut self, len: usize, next_generation: &mut u64) {
        if len < self.data.len() {
            self.data.truncate(len);
            *next_generation += 1;
            self.generation = *next_generation;
            if len == 0 {
                self.peers.clear();
            }
        }
    }
}

/// The manifest key range of a segment ([`SegmentInfo::byte_range`]).
fn manifest_range(info: &SegmentInfo) -> Option<crate::integrity::ByteRange> {
    info.byte_range.as_ref().and_then(|r| {
        crate::integrity::ByteRange::from_offset_length(r.start, r.end.saturating_sub(r.start))
    })
}

/// A segment from peers waiting for a manifest that lists it.
#[derive(Debug)]
struct Unverified {
    data: Bytes,
    contributors: Vec<(PeerHandle, Option<PeerId>)>,
    from_peer: Option<PeerHandle>,
    /// Dropped and fetched over HTTP at this time.
    until: Instant,
}

/// The partial download of `seg`, created (with a fresh generation) if there is none.
fn partial_entry<'a>(
    partials: &'a mut VecMap<SegmentId, Partial>,
    next_generation: &mut u64,
    seg: SegmentId,
) -> &'a mut Partial {
    partials.get_or_insert_with(seg, || {
        *next_generation += 1;
        Partial {
            generation: *next_generation,
            ..Partial::default()
        }
    })
}

/// The peer engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    scheduler: Scheduler,
    store: SegmentStore,
    tracker: TrackerClient,
    manifest: Option<SegmentManifest>,
    playlist: VecMap<SegmentId, SegmentInfo>,
    playback: Option<(f64, Instant)>,
    player_wants: VecMap<SegmentId, ()>,
    peers: VecMap<PeerHandle, Peer>,
    /// Offers waiting for [`Input::OffersCreated`].
    offers_requested: Vec<PeerHandle>,
    banned: BTreeSet<PeerId>,
    http: VecMap<HttpHandle, HttpReq>,
    http_by_segment: VecMap<SegmentId, HttpHandle>,
    partials: VecMap<SegmentId, Partial>,
    /// Last [`Partial::generation`] handed out.
    next_generation: u64,
    /// Segments from peers waiting for a manifest that lists them.
    unverified: VecMap<SegmentId, Unverified>,
    budget: UploadBudget,
    upload_cursor: Option<PeerHandle>,
    outputs: VecDeque<Output>,
    rng: CoreRng,
    next_handle: u64,
    next_request: RequestId,
    next_queue_seq: u64,
    announce_dirty: bool,
    last_announced: Option<(Vec<SegmentId>, Vec<SegmentId>)>,
    stats: Stats,
    shut_down: bool,
    last_now: Option<Instant>,
    need_plan: bool,
    plan_at: Option<Instant>,
    last_plan: Option<Instant>,
}

const STREAM: StreamKey = StreamKey(0);

/// `x` clamped to ±[`crate::time::MAX_SPAN_SECS`]; NaN is 0.
fn finite_or_zero(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-crate::time::MAX_SPAN_SECS, crate::time::MAX_SPAN_SECS)
    }
}

impl Engine {
    /// A new engine; it joins the swarm once [`Input::TrackerConnected`] arrives.
    pub fn new(config: EngineConfig) -> Self {
        let store = SegmentStore::new(StoreConfig {
            max_bytes: config.store_max_bytes,
            mode: if config.live {
                EvictionMode::Live
            } else {
                EvictionMode::Vod
            },
        });
        let tracker = TrackerClient::new(config.tracker.clone());
        let mut scheduler = Scheduler::new(
            config.scheduler.clone(),
            config.http_bases.len(),
            config.live,
            config.seed ^ 0x5eed,
        );
        scheduler.set_live(config.live);
        Self {
            budget: UploadBudget::new(config.upload_rate, config.upload_burst),
            rng: crate::rng::seeded(config.seed),
            config,
            scheduler,
            store,
            tracker,
            manifest: None,
            playlist: VecMap::new(),
            playback: None,
            player_wants: VecMap::new(),
            peers: VecMap::new(),
            offers_requested: Vec::new(),
            banned: BTreeSet::new(),
            http: VecMap::new(),
            http_by_segment: VecMap::new(),
            partials: VecMap::new(),
            next_generation: 0,
            unverified: VecMap::new(),
            upload_cursor: None,
            outputs: VecDeque::new(),
            next_handle: 1,
            next_request: 1,
            next_queue_seq: 0,
            announce_dirty: false,
            last_announced: None,
            stats: Stats::default(),
            shut_down: false,
            last_now: None,
            need_plan: true,
            plan_at: None,
            last_plan: None,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Transfer statistics so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of peers with an open data channel.
    pub fn connected_peers(&self) -> usize {
        self.peers.values().filter(|p| p.connected).count()
    }

    /// Whether the segment is in the store.
    pub fn has_segment(&self, segment: SegmentId) -> bool {
        self.store.contains(STREAM, segment)
    }

    /// Peer ids banned for this session.
    pub fn banned(&self) -> &BTreeSet<PeerId> {
        &self.banned
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to send [`Input::Timer`] next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        let Some(now) = self.last_now else {
            return self.tracker.poll_timeout();
        };
        let mut t = self.tracker.poll_timeout();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.playback.is_some() || !self.http.is_empty() || !self.player_wants.is_empty() {
            // Plan periodically while playing or downloading.
            consider(self.scheduler.next_wakeup(self.last_plan.unwrap_or(now)));
        }
        consider(self.plan_at);
        consider(self.unverified.values().map(|u| u.until).min());
        if let Some(next) = self.next_upload_bytes() {
            consider(Some(self.budget.ready_at(next, now).unwrap_or(now)));
        }
        t
    }

    /// Bytes the next upload message will carry (0: a command can go now), if any upload can move.
    fn next_upload_bytes(&self) -> Option<usize> {
        let max = self.config.max_message_bytes;
        self.peers
            .values()
            .filter_map(|p| p.upload.as_ref())
            .filter(|u| u.queued.is_none())
            .filter_map(|u| {
                let available = match &u.data {
                    Some(d) => d.len(),
                    None => {
                        let part = self.partials.get(&u.segment)?;
                        let total = usize::try_from(part.total?).ok()?;
                        part.data
                            .len()
                            .min(total.saturating_sub(1))
                            .saturating_sub(u.from)
                    }
                };
                if !u.header_sent {
                    return u.size.map(|_| 0);
                }
                match available.saturating_sub(u.offset).min(max) {
                    0 if u.data.is_some() => Some(0),
                    0 => None,
                    n => Some(n),
                }
            })
            .min()
    }

    /// Handles one input at time `now`.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        self.last_now = Some(now);
        if self.shut_down {
            return;
        }
        // Bytes arriving do not call for planning; nor does a timer that only paces uploads.
        let plan_due = self.plan_at.is_some_and(|t| t <= now)
            || self
                .last_plan
                .and_then(|t| self.scheduler.next_wakeup(t))
                .is_none_or(|t| t <= now);
        let routine = match input {
            Input::PeerMessage { .. } | Input::HttpChunk { .. } | Input::HttpStarted { .. } => true,
            Input::Timer => !plan_due,
            _ => false,
        };
        if !routine {
            self.need_plan = true;
        }
        match input {
            Input::TrackerConnected => {
                // Joining while disconnected only records the swarm; `connected` announces it.
                let mut ev = self.tracker.join(self.config.info_hash, now);
                ev.extend(self.tracker.connected(now));
                self.tracker_events(ev, now);
            }
            Input::TrackerDisconnected => {
                let ev = self.tracker.disconnected(now);
                self.tracker_events(ev, now);
            }
            Input::TrackerMessage(text) => match self.tracker.handle_message(&text, now) {
                Ok(ev) => self.tracker_events(ev, now),
                Err(e) => tracing::debug!("tracker message refused: {e}"),
            },
            Input::OffersCreated(offers) => self.offers_created(offers, now),
            Input::AnswerCreated { peer, sdp } => {
                if let Some(p) = self.peers.get(&peer) {
                    if let (Some(remote), Some(offer_id)) = (p.remote_id, p.offer_id) {
                        self.tracker
                            .send_answer(self.config.info_hash, remote, offer_id, &sdp);
                    }
                }
            }
            Input::PeerConnected(peer) => self.peer_connected(peer, now),
            Input::PeerClosed(peer) => self.drop_peer(peer, false, now),
            Input::PeerSendOverrun(peer) => {
                if self.peers.contains_key(&peer) {
                    self.stats.peers_send_overrun += 1;
                    self.violation(peer, "send queue overrun", now);
                }
            }
            Input::PeerMessage { peer, data } => self.peer_message(peer, &data, now),
            Input::HttpStarted {
                request,
                content_length,
            } => {
                if let Some(r) = self.http.get(&request) {
                    let seg = r.segment;
                    let total = content_length.map(|l| l + r.from_byte);
                    let from = usize::try_from(r.from_byte).unwrap_or(usize::MAX);
                    let p = partial_entry(&mut self.partials, &mut self.next_generation, seg);
                    p.total = total;
                    p.truncate(from, &mut self.next_generation);
                    let have = p.data.len() as u64;
                    self.scheduler.progress(seg, have, total, now);
                }
            }
            Input::HttpChunk { request, data } => self.http_chunk(request, &data, now),
            Input::HttpCompleted(request) => self.http_completed(request, now),
            Input::HttpFailed { request, reason } => {
                if let Some(r) = self.http.remove(&request) {
                    tracing::debug!(segment = r.segment, "HTTP failed: {reason}");
                    self.http_by_segment.remove(&r.segment);
                    self.scheduler.failed(r.segment, now);
                    self.announce_dirty = true;
                }
            }
            Input::Playlist(segments) => {
                self.playlist = segments
                    .into_iter()
                    .map(|mut s| {
                        // Remote numbers: keep them finite so that no time arithmetic overflows.
                        s.start = finite_or_zero(s.start);
                        s.duration = finite_or_zero(s.duration).max(0.0);
                        (s.id, s)
                    })
                    .collect();
                let failed: Vec<SegmentId> = self
                    .player_wants
                    .keys()
                    .filter(|s| !self.playlist.contains_key(s) && !self.store.contains(STREAM, **s))
                    .copied()
                    .collect();
                for s in failed {
                    self.player_wants.remove(&s);
                    self.outputs.push_back(Output::SegmentFailed {
                        segment: s,
                        reason: "not in the playlist".into(),
                    });
                }
            }
            Input::Manifest(m) => {
                self.manifest = Some(m);
                // Announcements were held back if P2P waited for the manifest.
                self.announce_dirty = true;
                self.check_unverified(now);
            }
            Input::AddSegment { id, data } => match self.store.insert(STREAM, id, data) {
                Ok(_) => self.announce_dirty = true,
                Err(e) => tracing::warn!(segment = id, "segment not added: {e}"),
            },
            Input::Playback(pos) => self.playback = Some((pos, now)),
            Input::WantSegment(seg) => {
                if let Some(data) = self.store.get(STREAM, seg) {
                    self.stats.segments_delivered += 1;
                    self.outputs.push_back(Output::SegmentReady {
                        segment: seg,
                        data,
                        source: DeliverySource::Cache,
                    });
                } else if !self.playlist.contains_key(&seg) {
                    self.outputs.push_back(Output::SegmentFailed {
                        segment: seg,
                        reason: "not in the playlist".into(),
                    });
                } else {
                    self.player_wants.insert(seg, ());
                }
            }
            Input::CancelSegment(seg) => {
                self.player_wants.remove(&seg);
            }
            Input::Timer => {
                let ev = self.tracker.handle_timeout(now);
                self.tracker_events(ev, now);
            }
            Input::Shutdown => {
                let ev = self.tracker.leave(self.config.info_hash, now);
                self.tracker_events(ev, now);
                let peers: Vec<PeerHandle> = self.peers.keys().copied().collect();
                for p in peers {
                    self.outputs.push_back(Output::ClosePeer(p));
                }
                self.peers.clear();
                let reqs: Vec<HttpHandle> = self.http.keys().copied().collect();
                for r in reqs {
                    self.outputs.push_back(Output::HttpAbort(r));
                }
                self.http.clear();
                self.flush_tracker();
                self.shut_down = true;
                return;
            }
        }
        if self.unverified.values().any(|u| u.until <= now) {
            self.check_unverified(now);
        }
        if self.need_plan {
            self.need_plan = false;
            self.plan(now);
        }
        self.pump_uploads(now);
        self.flush_announcements();
        self.flush_tracker();
    }

    /// The scheduler policy in use.
    pub fn policy(&self) -> Policy {
        self.config.scheduler.policy
    }

    /// The source of a running download, if any.
    pub fn download_source(&self, segment: SegmentId) -> Option<Source> {
        self.scheduler.download_source(segment)
    }
}
