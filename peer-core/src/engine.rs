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

/// An opaque handle for one HTTP request, chosen by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpHandle(pub u64);

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our 20-byte peer id (p2p-media-loader style: `-PM` + version + `-` + random).
    pub peer_id: PeerId,
    /// The swarm's info hash (see `stream`).
    pub info_hash: InfoHash,
    /// Live stream (sliding window store, live scheduling) or VOD.
    pub live: bool,
    /// HTTP base URLs: the origin first, then mirrors. Segment paths are appended.
    pub http_bases: Vec<String>,
    /// Scheduling settings (policy, windows, concurrency).
    pub scheduler: SchedulerConfig,
    /// Segment cache cap in bytes. Default 256 MiB.
    pub store_max_bytes: u64,
    /// Tracker client settings.
    pub tracker: TrackerClientConfig,
    /// Most peer connections (connected and connecting). Default 20.
    pub max_peers: usize,
    /// Upload budget in bytes/s; `None` = unlimited. Default `None`.
    pub upload_rate: Option<u64>,
    /// Upload burst allowance, bytes. Default 64 KiB.
    pub upload_burst: u64,
    /// Most peers served at once; further requests are answered with `SegmentAbsent`, so that
    /// the requester turns to another holder and each upload runs at full speed (a segment spreads
    /// fastest when every holder serves one peer at a time). Default 1.
    pub max_concurrent_uploads: usize,
    /// Requests that find all upload slots busy wait in a queue of at most this many (served in
    /// arrival order) instead of being answered `SegmentAbsent` at once. 0 turns queueing off.
    /// Default 1.
    pub max_queued_uploads: usize,
    /// A request is queued only when the bytes ahead of it, at [`EngineConfig::upload_rate`], go
    /// out within this time (below the requester's 2 s first-byte timeout); otherwise it is
    /// answered `SegmentAbsent`. Without an upload rate only the queue length bounds the wait.
    /// Default 0.5 s (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub max_upload_queue_wait: Duration,
    /// Upload nothing: answer every request with `SegmentAbsent` and announce nothing.
    /// Default false.
    pub consume_only: bool,
    /// Cut-through relay: serve a request for a segment still downloading once its size is known,
    /// streaming its bytes as they arrive (the last byte only after the integrity check), and
    /// announce segments loading from peers as loading (`p`). p2p-media-loader peers never ask
    /// for a loading segment, so nothing changes for them. Default true.
    pub relay_partial: bool,
    /// Largest data-channel message we send, bytes. Default [`MAX_MESSAGE_BYTES`] (64 KiB − 1).
    pub max_message_bytes: usize,
    /// Delay between a peer's announcement and the planning it triggers (announcements arriving
    /// meanwhile are planned together). Default 50 ms.
    pub announce_replan_delay: Duration,
    /// Largest segment accepted from a peer (`SegmentData` size), bytes; a larger one is a protocol
    /// violation. Default 64 MiB.
    pub max_segment_bytes: u64,
    /// Most `SegmentRequest`s in a row for one segment a peer may send us: a request for the
    /// segment already being sent to it is ignored, and one for the segment just sent to it is
    /// served again, both counted ([`Stats::upload_requests_repeated`]); the request after this
    /// many bans the peer (each one would queue the whole segment again). Default 4.
    pub max_repeated_requests: u32,
    /// Refuse P2P without an integrity manifest: until [`Input::Manifest`] arrives, every
    /// segment is loaded over HTTP, and nothing is served or announced to peers (browser option
    /// `requireSegmentsSha256`). Without it and without a manifest, peer bytes are trusted as they
    /// come. Default false.
    pub require_manifest: bool,
    /// With a manifest, a segment from peers that it does not list (yet: live-edge segments reach
    /// the engine before the manifest is reloaded) is neither played nor relayed; it waits this
    /// long for a manifest that lists it, then is dropped and fetched over HTTP. Default 4 s.
    pub unverified_wait: Duration,
    /// Most bytes of such segments held at once; past it the oldest is dropped and fetched over
    /// HTTP. Default 32 MiB.
    pub max_unverified_bytes: u64,
    /// Seed of the engine's random choices (offer ids, request ids, baseline randomness).
    pub seed: u64,
}

impl EngineConfig {
    /// Defaults for a peer id, a swarm and HTTP bases.
    pub fn new(peer_id: PeerId, info_hash: InfoHash, live: bool, http_bases: Vec<String>) -> Self {
        Self {
            peer_id,
            info_hash,
            live,
            http_bases,
            scheduler: SchedulerConfig::default(),
            store_max_bytes: StoreConfig::DEFAULT_MAX_BYTES,
            tracker: TrackerClientConfig::new(peer_id),
            max_peers: 20,
            upload_rate: None,
            upload_burst: 64 * 1024,
            max_concurrent_uploads: 1,
            max_queued_uploads: 1,
            max_upload_queue_wait: Duration::from_millis(500),
            consume_only: false,
            relay_partial: true,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_segment_bytes: 64 * 1024 * 1024,
            announce_replan_delay: Duration::from_millis(50),
            max_repeated_requests: 4,
            require_manifest: false,
            unverified_wait: Duration::from_secs(4),
            max_unverified_bytes: 32 * 1024 * 1024,
            seed: 0,
        }
    }
}

/// One segment of the playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// Wire id (media sequence for live, playlist index for VOD).
    pub id: SegmentId,
    /// Path appended to an HTTP base URL; its file name is the integrity manifest key.
    pub path: String,
    /// Media time of the segment's start, seconds.
    pub start: f64,
    /// Duration, seconds.
    pub duration: f64,
    /// Expected size in bytes, if known.
    pub size_hint: Option<u64>,
    /// The segment's byte range within the resource at `path` (HLS `#EXT-X-BYTERANGE`), end
    /// exclusive; `None` = the whole resource. HTTP fetches ask for this range and the integrity
    /// manifest is looked up by it.
    pub byte_range: Option<std::ops::Range<u64>>,
}

/// Where a delivered segment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySource {
    /// Already in the store.
    Cache,
    /// Loaded over HTTP (possibly resuming a P2P transfer).
    Http,
    /// Loaded from a peer.
    Peer,
}

/// Something the engine was told.
#[derive(Debug, Clone)]
pub enum Input {
    /// The tracker socket opened.
    TrackerConnected,
    /// The tracker socket closed.
    TrackerDisconnected,
    /// A text frame from the tracker.
    TrackerMessage(String),
    /// Offers made for [`Output::CreateOffers`]: `(handle, SDP)`; missing handles failed.
    OffersCreated(Vec<(PeerHandle, String)>),
    /// An answer made for [`Output::CreateAnswer`].
    AnswerCreated {
        /// The connection.
        peer: PeerHandle,
        /// Answer SDP.
        sdp: String,
    },
    /// A peer's data channel opened.
    PeerConnected(PeerHandle),
    /// A peer connection closed or failed.
    PeerClosed(PeerHandle),
    /// The driver's send queue to this peer went past its byte bound (the peer does not read
    /// what it asks for): the engine destroys the peer ([`Stats::peers_send_overrun`]).
    PeerSendOverrun(PeerHandle),
    /// A data-channel message from a peer.
    PeerMessage {
        /// The peer.
        peer: PeerHandle,
        /// The message.
        data: Bytes,
    },
    /// An HTTP response began; `content_length` is the number of body bytes that will follow.
    HttpStarted {
        /// The request.
        request: HttpHandle,
        /// Body bytes to follow, if known.
        content_length: Option<u64>,
    },
    /// Body bytes of an HTTP response.
    HttpChunk {
        /// The request.
        request: HttpHandle,
        /// The bytes.
        data: Bytes,
    },
    /// An HTTP response ended normally.
    HttpCompleted(HttpHandle),
    /// An HTTP request failed (status, network error).
    HttpFailed {
        /// The request.
        request: HttpHandle,
        /// Why.
        reason: String,
    },
    /// The current playlist (live: the sliding window; VOD: all segments). Replaces the previous.
    Playlist(Vec<SegmentInfo>),
    /// The integrity manifest (`segments-sha256.json`).
    Manifest(SegmentManifest),
    /// A segment this peer already holds from elsewhere (a seeder's own files): stored and
    /// announced to peers like a downloaded one, but not counted as downloaded.
    AddSegment {
        /// Segment.
        id: SegmentId,
        /// Its bytes.
        data: Bytes,
    },
    /// Where playback is now, media seconds.
    Playback(f64),
    /// The player needs this segment: answer with [`Output::SegmentReady`] or
    /// [`Output::SegmentFailed`].
    WantSegment(SegmentId),
    /// The player no longer needs this segment.
    CancelSegment(SegmentId),
    /// [`Engine::poll_timeout`] was reached.
    Timer,
    /// Leave the swarm (announce `stopped`, close peers).
    Shutdown,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a text frame to the tracker.
    TrackerSend(String),
    /// Create one WebRTC offer per handle and report them with [`Input::OffersCreated`].
    CreateOffers(Vec<PeerHandle>),
    /// Create an answer to a remote offer on a new connection `peer`; report with
    /// [`Input::AnswerCreated`].
    CreateAnswer {
        /// The new connection.
        peer: PeerHandle,
        /// The remote offer SDP.
        offer_sdp: String,
    },
    /// Apply a remote answer to our offer `peer`.
    AcceptAnswer {
        /// Our connection.
        peer: PeerHandle,
        /// The answer SDP.
        answer_sdp: String,
    },
    /// Close (destroy) a peer connection.
    ClosePeer(PeerHandle),
    /// Send a data-channel message.
    SendToPeer {
        /// The peer.
        peer: PeerHandle,
        /// The message.
        data: Bytes,
        /// Whether the message is raw segment bytes (else a command part).
        segment_bytes: bool,
    },
    /// Start an HTTP GET.
    HttpRequest {
        /// Handle to report the response with.
        request: HttpHandle,
        /// Full URL.
        url: String,
        /// `Range: bytes=N-` when resuming (counted from the start of `byte_range` if set).
        range_from: Option<u64>,
        /// The segment's byte range within the resource ([`SegmentInfo::byte_range`]), end
        /// exclusive: fetch only these bytes. `None` = the whole resource.
        byte_range: Option<std::ops::Range<u64>>,
    },
    /// Abort an HTTP request.
    HttpAbort(HttpHandle),
    /// A wanted segment is available.
    SegmentReady {
        /// Segment.
        segment: SegmentId,
        /// Its bytes.
        data: Bytes,
        /// Where it came from (the last source for resumed downloads).
        source: DeliverySource,
    },
    /// A wanted segment cannot be loaded (not in the playlist).
    SegmentFailed {
        /// Segment.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
}

/// Transfer statistics of an [`Engine`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Body bytes received over HTTP, per base URL index.
    pub http_bytes_by_base: VecMap<usize, u64>,
    /// Segment bytes received per peer.
    pub p2p_bytes_by_peer: VecMap<PeerHandle, u64>,
    /// All HTTP body bytes received.
    pub http_bytes: u64,
    /// All segment bytes received from peers.
    pub p2p_bytes: u64,
    /// Segment bytes sent to peers.
    pub uploaded_bytes: u64,
    /// Segments stored after an HTTP download.
    pub segments_http: u64,
    /// Segments stored after a P2P download.
    pub segments_p2p: u64,
    /// Segments handed to the player.
    pub segments_delivered: u64,
    /// P2P transfers moved to HTTP before their deadline (stalls avoided).
    pub stalls_avoided: u64,
    /// Peers whose data channel opened.
    pub peers_connected: u64,
    /// Peers destroyed for protocol violations or bad data.
    pub peers_destroyed: u64,
    /// Peers banned for bad hashes.
    pub peers_banned: u64,
    /// Segments whose hash did not match the manifest.
    pub hash_mismatches: u64,
    /// Upload requests that waited in the queue for a slot.
    pub upload_requests_queued: u64,
    /// Upload requests answered `SegmentAbsent` because the slots and the queue were full.
    pub upload_requests_refused: u64,
    /// `SegmentRequest`s repeating the segment being sent or just sent to the same peer
    /// (see [`EngineConfig::max_repeated_requests`]).
    pub upload_requests_repeated: u64,
    /// Peers banned for repeating requests past [`EngineConfig::max_repeated_requests`] (also
    /// counted in `peers_banned`).
    pub peers_banned_repeats: u64,
    /// Peers destroyed because the driver's send queue to them overflowed
    /// ([`Input::PeerSendOverrun`]).
    pub peers_send_overrun: u64,
    /// Segments from peers held because the manifest did not list them yet
    /// ([`EngineConfig::unverified_wait`]).
    pub segments_unverified: u64,
    /// Of those, segments dropped unverified (waited too long, or over
    /// [`EngineConfig::max_unverified_bytes`]) and fetched over HTTP.
    pub unverified_refetched: u64,
}

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

/// What an upload can do next (see [`Engine::upload_step`]).
enum UploadStep {
    /// Send `SegmentData` announcing this many bytes.
    Header(usize),
    /// Send these segment bytes (or, when empty, the transfer is complete).
    Bytes(Bytes),
    /// Wait for more bytes of a segment still downloading.
    Wait,
    /// The relayed segment is gone (download failed, bad hash): answer `SegmentAbsent`.
    Absent,
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

    fn flush_tracker(&mut self) {
        while let Some(frame) = self.tracker.poll_transmit() {
            self.outputs.push_back(Output::TrackerSend(frame));
        }
    }

    fn new_handle(&mut self) -> PeerHandle {
        let h = PeerHandle(self.next_handle);
        self.next_handle += 1;
        h
    }

    fn peer_slots(&self) -> usize {
        self.config
            .max_peers
            .saturating_sub(self.peers.len() + self.offers_requested.len())
    }

    fn tracker_events(&mut self, events: Vec<TrackerEvent>, now: Instant) {
        for ev in events {
            match ev {
                TrackerEvent::NeedOffers { info_hash, count } => {
                    let n = count.min(self.peer_slots());
                    if n == 0 {
                        let ev = self.tracker.offers_created(info_hash, Vec::new(), now);
                        self.tracker_events(ev, now);
                        continue;
                    }
                    let handles: Vec<PeerHandle> = (0..n).map(|_| self.new_handle()).collect();
                    self.offers_requested = handles.clone();
                    self.outputs.push_back(Output::CreateOffers(handles));
                }
                TrackerEvent::Offer {
                    peer_id,
                    offer_id,
                    sdp,
                    ..
                } => {
                    let known = self.peers.values().any(|p| p.remote_id == Some(peer_id));
                    if known
                        || self.banned.contains(&peer_id)
                        || self.peer_slots() == 0
                        || peer_id == self.config.peer_id
                    {
                        continue;
                    }
                    let h = self.new_handle();
                    self.peers
                        .insert(h, Peer::new(Some(peer_id), Some(offer_id)));
                    self.outputs.push_back(Output::CreateAnswer {
                        peer: h,
                        offer_sdp: sdp,
                    });
                }
                TrackerEvent::Answer {
                    peer_id,
                    offer_id,
                    sdp,
                    ..
                } => {
                    let Some((&h, _)) = self
                        .peers
                        .iter()
                        .find(|(_, p)| p.offer_id == Some(offer_id) && p.remote_id.is_none())
                    else {
                        continue;
                    };
                    let dup = self.peers.values().any(|p| p.remote_id == Some(peer_id));
                    if dup || self.banned.contains(&peer_id) {
                        self.peers.remove(&h);
                        self.outputs.push_back(Output::ClosePeer(h));
                        continue;
                    }
                    if let Some(p) = self.peers.get_mut(&h) {
                        p.remote_id = Some(peer_id);
                    }
                    self.outputs.push_back(Output::AcceptAnswer {
                        peer: h,
                        answer_sdp: sdp,
                    });
                }
                TrackerEvent::OfferExpired { offer_id, .. } => {
                    if let Some((&h, _)) = self.peers.iter().find(|(_, p)| {
                        p.offer_id == Some(offer_id) && !p.connected && p.remote_id.is_none()
                    }) {
                        self.peers.remove(&h);
                        self.outputs.push_back(Output::ClosePeer(h));
                    }
                }
                TrackerEvent::AnnounceAccepted {
                    complete,
                    incomplete,
                    ..
                } => {
                    let n = complete.saturating_add(incomplete);
                    self.scheduler
                        .set_swarm_size(usize::try_from(n).unwrap_or(usize::MAX));
                }
                TrackerEvent::Failure { reason, .. } => tracing::warn!("tracker failure: {reason}"),
                TrackerEvent::Warning { message, .. } => {
                    tracing::info!("tracker warning: {message}")
                }
            }
        }
    }

    fn offers_created(&mut self, offers: Vec<(PeerHandle, String)>, now: Instant) {
        let requested = std::mem::take(&mut self.offers_requested);
        let mut list = Vec::new();
        for (h, sdp) in offers {
            if !requested.contains(&h) {
                continue;
            }
            let mut offer_id = [0u8; 20];
            self.rng.fill(&mut offer_id);
            self.peers.insert(h, Peer::new(None, Some(offer_id)));
            list.push((offer_id, sdp));
        }
        let ev = self
            .tracker
            .offers_created(self.config.info_hash, list, now);
        self.tracker_events(ev, now);
    }

    fn peer_connected(&mut self, peer: PeerHandle, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            // Unknown (already closed) connection.
            self.outputs.push_back(Output::ClosePeer(peer));
            return;
        };
        if p.connected {
            return;
        }
        p.connected = true;
        self.stats.peers_connected += 1;
        self.scheduler.add_peer(peer, now);
        if !self.config.consume_only && !self.p2p_refused() {
            let cmd = self.announcement();
            self.send_command(peer, &cmd);
        }
    }

    fn announcement(&self) -> Command {
        Command::SegmentsAnnouncement {
            loaded: self.store.segment_ids(STREAM),
            loading_http: self.loading(),
        }
    }

    /// Segments announced as loading: HTTP downloads, plus peer downloads when relaying partial
    /// segments ([`EngineConfig::relay_partial`]).
    fn loading(&self) -> Vec<SegmentId> {
        if self.config.relay_partial {
            self.scheduler.loading()
        } else {
            self.scheduler.http_loading()
        }
    }

    fn flush_announcements(&mut self) {
        if !self.announce_dirty || self.config.consume_only || self.p2p_refused() {
            return;
        }
        self.announce_dirty = false;
        let loaded = self.store.segment_ids(STREAM);
        let loading = self.loading();
        if self.last_announced.as_ref() == Some(&(loaded.clone(), loading.clone())) {
            return;
        }
        self.last_announced = Some((loaded.clone(), loading.clone()));
        let cmd = Command::SegmentsAnnouncement {
            loaded,
            loading_http: loading,
        };
        let peers: Vec<PeerHandle> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(h, _)| *h)
            .collect();
        for h in peers {
            self.send_command(h, &cmd);
        }
    }

    fn send_command(&mut self, peer: PeerHandle, cmd: &Command) {
        for part in encode_command_with_max(cmd, self.config.max_message_bytes) {
            self.outputs.push_back(Output::SendToPeer {
                peer,
                data: Bytes::from(part),
                segment_bytes: false,
            });
        }
    }

    /// Destroys a peer: closes it (when `close`), forgets its downloads and uploads.
    fn drop_peer(&mut self, peer: PeerHandle, close: bool, now: Instant) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        self.need_plan = true;
        if close {
            self.outputs.push_back(Output::ClosePeer(peer));
        }
        if let Some(d) = p.download {
            self.partials.remove(&d.segment);
            self.announce_dirty |= self.config.relay_partial;
        }
        if let Some(seg) = self.scheduler.remove_peer(peer) {
            self.partials.remove(&seg);
        }
        if self.upload_cursor == Some(peer) {
            self.upload_cursor = None;
        }
        let _ = now;
    }

    fn violation(&mut self, peer: PeerHandle, what: &str, now: Instant) {
        tracing::debug!(?peer, "peer destroyed: {what}");
        self.stats.peers_destroyed += 1;
        self.drop_peer(peer, true, now);
    }

    fn peer_message(&mut self, peer: PeerHandle, data: &[u8], now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !p.connected {
            return;
        }
        let incoming = match p.decoder.push(data) {
            Ok(Some(i)) => i,
            Ok(None) => return,
            Err(e) => {
                self.violation(peer, &format!("bad message: {e}"), now);
                return;
            }
        };
        match incoming {
            Incoming::SegmentBytes(bytes) => self.peer_bytes(peer, &bytes, now),
            Incoming::Command(cmd) => self.peer_command(peer, cmd, now),
        }
    }

    fn peer_bytes(&mut self, peer: PeerHandle, bytes: &[u8], now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // Bytes outside an answered request (e.g. after we cancelled) are ignored.
        let Some(d) = p.download.as_mut() else {
            return;
        };
        let Some(expected) = d.expected else {
            return;
        };
        d.received += bytes.len() as u64;
        let seg = d.segment;
        if d.received > expected {
            self.violation(peer, "more bytes than announced", now);
            return;
        }
        let done = d.received == expected;
        let remote = p.remote_id;
        let part = partial_entry(&mut self.partials, &mut self.next_generation, seg);
        if !part.peers.iter().any(|(h, _)| *h == peer) {
            part.peers.push((peer, remote));
        }
        part.data.extend_from_slice(bytes);
        let have = part.data.len() as u64;
        let total = part.total;
        self.stats.p2p_bytes += bytes.len() as u64;
        *self.stats.p2p_bytes_by_peer.get_or_insert_with(peer, || 0) += bytes.len() as u64;
        self.scheduler.progress(seg, have, total, now);
        if done {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.download = None;
            }
            self.segment_loaded(seg, Some(peer), now);
        }
    }

    fn peer_command(&mut self, peer: PeerHandle, cmd: Command, now: Instant) {
        match cmd {
            Command::SegmentsAnnouncement {
                loaded,
                loading_http,
            } => {
                tracing::trace!(?peer, ?loaded, ?loading_http, "peer announcement");
                self.scheduler.announce(peer, &loaded, &loading_http);
                // Announcements come in bursts: plan once shortly after, not after each.
                if self.plan_at.is_none() {
                    self.plan_at = Some(now + self.config.announce_replan_delay);
                }
            }
            Command::SegmentRequest {
                segment,
                request,
                byte_from,
            } => self.upload_request(peer, segment, request, byte_from, now),
            Command::CancelSegmentRequest { segment, request } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    if p.upload
                        .as_ref()
                        .is_some_and(|u| u.segment == segment && u.request == request)
                    {
                        p.upload = None;
                        // A cancelled transfer may honestly be asked for again.
                        p.asked = None;
                    }
                }
            }
            Command::SegmentData {
                segment,
                request,
                size,
            } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                let Some(d) = p
                    .download
                    .as_mut()
                    .filter(|d| d.segment == segment && d.request == request)
                else {
                    // Answer to a cancelled request: ignore (its bytes are ignored too).
                    return;
                };
                if d.expected.is_some() {
                    self.violation(peer, "second SegmentData", now);
                    return;
                }
                let from = self
                    .partials
                    .get(&segment)
                    .map_or(0, |p| p.data.len() as u64);
                d.expected = Some(size);
                if size == 0 || from.saturating_add(size) > self.config.max_segment_bytes {
                    self.violation(peer, "SegmentData size out of bounds", now);
                    return;
                }
                let part = partial_entry(&mut self.partials, &mut self.next_generation, segment);
                part.total = Some(from + size);
                let total = part.total;
                self.scheduler.progress(segment, from, total, now);
            }
            Command::SegmentDataSendingCompleted { segment, request } => {
                let Some(p) = self.peers.get(&peer) else {
                    return;
                };
                if let Some(d) = p
                    .download
                    .as_ref()
                    .filter(|d| d.segment == segment && d.request == request)
                {
                    // All bytes would have completed the download already.
                    let short = d.expected.is_none_or(|e| d.received < e);
                    if short {
                        self.violation(peer, "byte count mismatch", now);
                        self.scheduler.forget(segment);
                    }
                }
            }
            Command::SegmentAbsent { segment, request } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                if p.download
                    .as_ref()
                    .is_some_and(|d| d.segment == segment && d.request == request)
                {
                    p.download = None;
                    self.partials.remove(&segment);
                    self.scheduler.absent(segment, now);
                    self.need_plan = true;
                    self.announce_dirty |= self.config.relay_partial;
                }
            }
        }
    }

    fn upload_request(
        &mut self,
        peer: PeerHandle,
        segment: SegmentId,
        request: RequestId,
        byte_from: Option<u64>,
        now: Instant,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // Requests in a row for one segment we are sending or sent to this peer: each would queue
        // the whole segment again. (Requests we answered `SegmentAbsent` do not count.)
        let repeats = match p.asked.take() {
            Some((s, n)) if s == segment => n.saturating_add(1),
            _ => 1,
        };
        if repeats > 1 {
            self.stats.upload_requests_repeated += 1;
            if repeats > self.config.max_repeated_requests.saturating_add(1) {
                if let Some(id) = p.remote_id {
                    self.banned.insert(id);
                }
                self.stats.peers_banned += 1;
                self.stats.peers_banned_repeats += 1;
                self.violation(peer, "repeated requests for one segment", now);
                return;
            }
            // The segment is being sent to it now: the new request adds nothing.
            if p.upload
                .as_ref()
                .is_some_and(|u| u.segment == segment && u.queued.is_none())
            {
                p.asked = Some((segment, repeats));
                return;
            }
        }
        // One upload per peer: a new request replaces the previous one.
        p.upload = None;
        let refuse = self.config.consume_only || self.p2p_refused();
        let stored = if refuse {
            None
        } else {
            self.store.peek(STREAM, segment)
        };
        let relay =
            stored.is_none() && !refuse && self.config.relay_partial && self.relayable(segment);
        if stored.is_none() && !relay {
            self.send_command(peer, &Command::SegmentAbsent { segment, request });
            return;
        }
        let from = usize::try_from(byte_from.unwrap_or(0)).unwrap_or(usize::MAX);
        let size = match &stored {
            Some(d) => Some(d.len().saturating_sub(from)),
            None => self
                .partials
                .get(&segment)
                .and_then(|p| p.total)
                .and_then(|t| usize::try_from(t).ok())
                .map(|t| t.saturating_sub(from)),
        };
        let active = self
            .peers
            .values()
            .filter(|p| p.upload.as_ref().is_some_and(|u| u.queued.is_none()))
            .count();
        let queued = if active < self.config.max_concurrent_uploads {
            None
        } else if self.may_queue(size) {
            self.next_queue_seq += 1;
            self.stats.upload_requests_queued += 1;
            Some(self.next_queue_seq)
        } else {
            self.stats.upload_requests_refused += 1;
            self.send_command(peer, &Command::SegmentAbsent { segment, request });
            return;
        };
        let data = stored.map(|d| d.slice(from.min(d.len())..));
        let generation = match data {
            Some(_) => None,
            None => self.partials.get(&segment).map(|p| p.generation),
        };
        if let Some(p) = self.peers.get_mut(&peer) {
            p.asked = Some((segment, repeats));
            p.upload = Some(Upload {
                segment,
                request,
                from,
                offset: 0,
                size: data.as_ref().map(Bytes::len),
                data,
                header_sent: false,
                queued,
                generation,
            });
        }
    }

    /// Whether a request for `size` bytes (when known) may wait in the upload queue (see
    /// [`EngineConfig::max_queued_uploads`] and [`EngineConfig::max_upload_queue_wait`]).
    fn may_queue(&self, size: Option<usize>) -> bool {
        let uploads = || self.peers.values().filter_map(|p| p.upload.as_ref());
        let waiting = uploads().filter(|u| u.queued.is_some()).count();
        if waiting >= self.config.max_queued_uploads {
            return false;
        }
        let Some(rate) = self.config.upload_rate else {
            return true;
        };
        // Bytes that go out before this request's first byte; unknown sizes count as this one's.
        let guess = size.unwrap_or(0);
        let ahead: usize = uploads()
            .map(|u| u.size.unwrap_or(guess).saturating_sub(u.offset))
            .sum();
        let slots = self.config.max_concurrent_uploads.max(1) as f64;
        let wait = ahead as f64 / slots / rate.max(1) as f64;
        wait <= self.config.max_upload_queue_wait.as_secs_f64()
    }

    /// Moves the oldest queued requests into free upload slots.
    fn start_queued_uploads(&mut self) {
        loop {
            let active = self
                .peers
                .values()
                .filter(|p| p.upload.as_ref().is_some_and(|u| u.queued.is_none()))
                .count();
            if active >= self.config.max_concurrent_uploads {
                return;
            }
            let next = self
                .peers
                .values_mut()
                .filter_map(|p| p.upload.as_mut())
                .filter(|u| u.queued.is_some())
                .min_by_key(|u| u.queued);
            match next {
                Some(u) => u.queued = None,
                None => return,
            }
        }
    }

    /// Whether `segment` is downloading now with bytes to relay (see
    /// [`EngineConfig::relay_partial`]).
    fn relayable(&self, segment: SegmentId) -> bool {
        self.partials.contains_key(&segment)
            && self.scheduler.download_source(segment).is_some()
            && self.hash_known(segment)
    }

    /// The next step of the upload to `peer` (at most `max` bytes), without side effects other
    /// than noting the segment's size and switching a relay to the stored segment once complete.
    fn upload_step(&mut self, peer: PeerHandle, max: usize) -> Option<UploadStep> {
        let relayable = self
            .peers
            .get(&peer)
            .and_then(|p| p.upload.as_ref())
            .map(|u| u.data.is_none() && self.relayable(u.segment))?;
        let p = self.peers.get_mut(&peer)?;
        let u = p.upload.as_mut()?;
        if u.data.is_none() {
            if let Some(stored) = self.store.peek(STREAM, u.segment) {
                if u.from > stored.len() || u.size.is_some_and(|s| s != stored.len() - u.from) {
                    return Some(UploadStep::Absent);
                }
                u.size = Some(stored.len() - u.from);
                u.data = Some(stored.slice(u.from..));
            } else if !relayable {
                return Some(UploadStep::Absent);
            }
        }
        // Bytes of the segment (from `from`) that may go out now.
        let (available, partial) = match &u.data {
            Some(d) => (d.len(), None),
            None => {
                let Some(part) = self.partials.get(&u.segment) else {
                    return Some(UploadStep::Absent);
                };
                if u.generation != Some(part.generation) {
                    // The bytes it relayed were dropped: going on would splice two sources.
                    return Some(UploadStep::Absent);
                }
                let Some(total) = part.total.and_then(|t| usize::try_from(t).ok()) else {
                    return Some(UploadStep::Wait);
                };
                if u.from >= total || u.size.is_some_and(|s| s != total - u.from) {
                    return Some(UploadStep::Absent);
                }
                u.size = Some(total - u.from);
                // Hold the last byte back until the segment is verified and stored.
                let upto = part.data.len().min(total - 1);
                (upto.saturating_sub(u.from), Some(part))
            }
        };
        if !u.header_sent {
            return Some(match u.size {
                Some(size) => UploadStep::Header(size),
                None => UploadStep::Wait,
            });
        }
        let n = available.saturating_sub(u.offset).min(max);
        if n == 0 {
            return Some(if u.data.is_some() {
                UploadStep::Bytes(Bytes::new())
            } else {
                UploadStep::Wait
            });
        }
        let start = u.offset;
        Some(UploadStep::Bytes(match (&u.data, partial) {
            (Some(d), _) => d.slice(start..start + n),
            (None, Some(part)) => {
                Bytes::copy_from_slice(&part.data[u.from + start..u.from + start + n])
            }
            (None, None) => return Some(UploadStep::Wait),
        }))
    }

    /// Ends relays of `segment` (its bytes turned out bad) with `SegmentAbsent`.
    fn abort_relays(&mut self, segment: SegmentId) {
        self.end_relays(segment, None);
    }

    /// Ends relays of `segment` with `SegmentAbsent`, except those reading generation `keep`.
    fn end_relays(&mut self, segment: SegmentId, keep: Option<u64>) {
        let relays: Vec<(PeerHandle, RequestId)> = self
            .peers
            .iter_mut()
            .filter_map(|(h, p)| {
                let u = p.upload.take_if(|u| {
                    u.segment == segment
                        && u.data.is_none()
                        && (keep.is_none() || u.generation != keep)
                })?;
                p.asked = None;
                Some((*h, u.request))
            })
            .collect();
        for (h, request) in relays {
            self.send_command(h, &Command::SegmentAbsent { segment, request });
        }
    }

    fn pump_uploads(&mut self, now: Instant) {
        loop {
            self.start_queued_uploads();
            let order: Vec<PeerHandle> = self
                .peers
                .iter()
                .filter(|(_, p)| p.upload.as_ref().is_some_and(|u| u.queued.is_none()))
                .map(|(h, _)| *h)
                .collect();
            if order.is_empty() {
                return;
            }
            // Round robin, starting after the last peer served.
            let start = self
                .upload_cursor
                .and_then(|c| order.iter().position(|h| *h > c))
                .unwrap_or(0);
            let mut progressed = false;
            let mut blocked = false;
            for i in 0..order.len() {
                let h = order[(start + i) % order.len()];
                let max = self.config.max_message_bytes;
                let Some(step) = self.upload_step(h, max) else {
                    continue;
                };
                let Some(u) = self.peers.get_mut(&h).and_then(|p| p.upload.as_mut()) else {
                    continue;
                };
                let (seg, req) = (u.segment, u.request);
                match step {
                    UploadStep::Wait => continue,
                    UploadStep::Absent => {
                        if let Some(p) = self.peers.get_mut(&h) {
                            p.upload = None;
                            p.asked = None;
                        }
                        self.send_command(
                            h,
                            &Command::SegmentAbsent {
                                segment: seg,
                                request: req,
                            },
                        );
                    }
                    UploadStep::Header(size) => {
                        // `SegmentData` goes out at once; the budget paces the bytes.
                        u.header_sent = true;
                        self.send_command(
                            h,
                            &Command::SegmentData {
                                segment: seg,
                                request: req,
                                size: size as u64,
                            },
                        );
                    }
                    UploadStep::Bytes(chunk) => {
                        let n = chunk.len();
                        // Out of budget: headers and endings of other uploads still go out.
                        if n > 0 && (blocked || !self.budget.try_take(n, now)) {
                            blocked = true;
                            continue;
                        }
                        u.offset += n;
                        let finished = u.data.is_some() && u.size.is_some_and(|s| u.offset >= s);
                        if finished {
                            if let Some(p) = self.peers.get_mut(&h) {
                                p.upload = None;
                            }
                        }
                        if n > 0 {
                            self.stats.uploaded_bytes += n as u64;
                            self.outputs.push_back(Output::SendToPeer {
                                peer: h,
                                data: chunk,
                                segment_bytes: true,
                            });
                        }
                        if finished {
                            self.send_command(
                                h,
                                &Command::SegmentDataSendingCompleted {
                                    segment: seg,
                                    request: req,
                                },
                            );
                        }
                    }
                }
                progressed = true;
                self.upload_cursor = Some(h);
            }
            if !progressed || blocked {
                return;
            }
        }
    }

    fn http_chunk(&mut self, request: HttpHandle, data: &[u8], now: Instant) {
        let Some(r) = self.http.get(&request) else {
            return;
        };
        let (seg, base) = (r.segment, r.base);
        let part = partial_entry(&mut self.partials, &mut self.next_generation, seg);
        part.data.extend_from_slice(data);
        let have = part.data.len() as u64;
        let total = part.total;
        self.stats.http_bytes += data.len() as u64;
        *self.stats.http_bytes_by_base.get_or_insert_with(base, || 0) += data.len() as u64;
        self.scheduler.progress(seg, have, total, now);
    }

    fn http_completed(&mut self, request: HttpHandle, now: Instant) {
        let Some(r) = self.http.remove(&request) else {
            return;
        };
        self.http_by_segment.remove(&r.segment);
        let complete = self
            .partials
            .get(&r.segment)
            .is_some_and(|p| p.total.is_none_or(|t| t == p.data.len() as u64));
        if !complete {
            self.partials.remove(&r.segment);
            self.scheduler.failed(r.segment, now);
            return;
        }
        self.segment_loaded(r.segment, None, now);
    }

    /// A segment's bytes are complete: verify, store, deliver, announce.
    fn segment_loaded(&mut self, seg: SegmentId, from_peer: Option<PeerHandle>, now: Instant) {
        let Some(part) = self.partials.remove(&seg) else {
            return;
        };
        // Relays that read an earlier generation of these bytes must not finish with these.
        self.end_relays(seg, Some(part.generation));
        let mut contributors = part.peers;
        if let Some(peer) = from_peer {
            if !contributors.iter().any(|(h, _)| *h == peer) {
                let id = self.peers.get(&peer).and_then(|p| p.remote_id);
                contributors.push((peer, id));
            }
        }
        let data = Bytes::from(part.data);
        match self.verify(seg, &data) {
            Some(Verification::Mismatch) => self.mismatch(seg, contributors, now),
            // A manifest is configured but does not list the segment (yet): bytes from peers wait
            // for a manifest that does, and are neither played nor relayed meanwhile.
            Some(Verification::Unknown) if !contributors.is_empty() => {
                self.hold_unverified(seg, data, contributors, from_peer, now)
            }
            _ => self.accept_segment(seg, data, from_peer, now),
        }
    }

    /// The segment's bytes checked against the manifest; `None` without a manifest (or for a
    /// segment not in the playlist).
    fn verify(&self, seg: SegmentId, data: &[u8]) -> Option<Verification> {
        let manifest = self.manifest.as_ref()?;
        let info = self.playlist.get(&seg)?;
        Some(manifest.verify(file_name_of(&info.path), manifest_range(info), data))
    }

    /// Whether the manifest lists the segment's hash (always true without a manifest).
    fn hash_known(&self, seg: SegmentId) -> bool {
        let Some(manifest) = &self.manifest else {
            return true;
        };
        self.playlist.get(&seg).is_some_and(|info| {
            manifest
                .digest(file_name_of(&info.path), manifest_range(info))
                .is_some()
        })
    }

    /// P2P is refused: [`EngineConfig::require_manifest`] and no manifest yet.
    fn p2p_refused(&self) -> bool {
        self.config.require_manifest && self.manifest.is_none()
    }

    /// A segment failed the manifest: bans every peer that supplied bytes (the one that completed
    /// it and the one whose prefix a resumed download continued) and fetches it over HTTP.
    fn mismatch(
        &mut self,
        seg: SegmentId,
        blamed: Vec<(PeerHandle, Option<PeerId>)>,
        now: Instant,
    ) {
        self.stats.hash_mismatches += 1;
        self.abort_relays(seg);
        self.scheduler.forget(seg);
        if blamed.is_empty() {
            tracing::warn!(segment = seg, "HTTP segment does not match the manifest");
            return;
        }
        for (peer, id) in blamed {
            let id = id.or_else(|| self.peers.get(&peer).and_then(|p| p.remote_id));
            if let Some(id) = id {
                if self.banned.insert(id) {
                    self.stats.peers_banned += 1;
                }
            }
            if self.peers.contains_key(&peer) {
                self.violation(peer, "segment hash mismatch", now);
            }
        }
        // Fetch it again over HTTP right away.
        let action = self.scheduler.start_http_now(seg, now);
        self.execute(action, now);
    }

    /// Holds a peer segment the manifest does not list yet (see
    /// [`EngineConfig::unverified_wait`]), within [`EngineConfig::max_unverified_bytes`].
    fn hold_unverified(
        &mut self,
        seg: SegmentId,
        data: Bytes,
        contributors: Vec<(PeerHandle, Option<PeerId>)>,
        from_peer: Option<PeerHandle>,
        now: Instant,
    ) {
        self.stats.segments_unverified += 1;
        self.abort_relays(seg);
        self.scheduler.forget(seg);
        self.unverified.insert(
            seg,
            Unverified {
                data,
                contributors,
                from_peer,
                until: now + self.config.unverified_wait,
            },
        );
        loop {
            let held: u64 = self.unverified.values().map(|u| u.data.len() as u64).sum();
            if held <= self.config.max_unverified_bytes {
                break;
            }
            let Some(oldest) = self
                .unverified
                .iter()
                .min_by_key(|(_, u)| u.until)
                .map(|(s, _)| *s)
            else {
                break;
            };
            self.refetch_unverified(oldest, now);
        }
    }

    /// Drops a held segment and fetches it over HTTP.
    fn refetch_unverified(&mut self, seg: SegmentId, now: Instant) {
        if self.unverified.remove(&seg).is_some() {
            self.stats.unverified_refetched += 1;
            let action = self.scheduler.start_http_now(seg, now);
            self.execute(action, now);
        }
    }

    /// Held segments: checked again against a new manifest, refetched once waited too long.
    fn check_unverified(&mut self, now: Instant) {
        let segs: Vec<SegmentId> = self.unverified.keys().copied().collect();
        for seg in segs {
            let Some(u) = self.unverified.get(&seg) else {
                continue;
            };
            match self.verify(seg, &u.data) {
                Some(Verification::Valid) => {
                    if let Some(u) = self.unverified.remove(&seg) {
                        self.accept_segment(seg, u.data, u.from_peer, now);
                    }
                }
                Some(Verification::Mismatch) => {
                    if let Some(u) = self.unverified.remove(&seg) {
                        self.mismatch(seg, u.contributors, now);
                    }
                }
                _ if u.until <= now || !self.playlist.contains_key(&seg) => {
                    self.refetch_unverified(seg, now)
                }
                _ => {}
            }
        }
    }

    /// Stores a verified (or unverifiable, where that is allowed) segment, delivers it to the
    /// player if wanted and announces it.
    fn accept_segment(
        &mut self,
        seg: SegmentId,
        data: Bytes,
        from_peer: Option<PeerHandle>,
        now: Instant,
    ) {
        match from_peer {
            Some(_) => self.stats.segments_p2p += 1,
            None => self.stats.segments_http += 1,
        }
        self.scheduler.completed(seg, now);
        if let Err(e) = self.store.insert(STREAM, seg, data.clone()) {
            tracing::warn!("segment not stored: {e}");
        }
        self.announce_dirty = true;
        self.need_plan = true;
        if self.player_wants.remove(&seg).is_some() {
            self.stats.segments_delivered += 1;
            let source = if from_peer.is_some() {
                DeliverySource::Peer
            } else {
                DeliverySource::Http
            };
            self.outputs.push_back(Output::SegmentReady {
                segment: seg,
                data,
                source,
            });
        }
    }

    fn wanted(&self, now: Instant) -> Vec<WantedSegment> {
        let horizon = self.scheduler.horizon().as_secs_f64();
        let Some((pos, at)) = self.playback else {
            // Without a playhead only the player's explicit requests count, due now.
            return self
                .player_wants
                .keys()
                .filter(|id| !self.unverified.contains_key(id))
                .filter_map(|id| self.playlist.get(id))
                .map(|s| WantedSegment {
                    id: s.id,
                    deadline: now,
                    size_hint: s.size_hint,
                    player_requested: true,
                })
                .collect();
        };
        let entry = |s: &SegmentInfo| WantedSegment {
            id: s.id,
            deadline: crate::time::after(at, s.start - pos),
            size_hint: s.size_hint,
            player_requested: self.player_wants.contains_key(&s.id),
        };
        // Playlist order is playback order: skip what is played, stop at the horizon.
        let mut wanted: Vec<WantedSegment> = self
            .playlist
            .values()
            .skip_while(|s| s.start + s.duration <= pos + 0.05)
            .take_while(|s| s.start - pos <= horizon)
            .filter(|s| !self.store.contains(STREAM, s.id) && !self.unverified.contains_key(&s.id))
            .map(entry)
            .collect();
        let extra: Vec<WantedSegment> = self
            .player_wants
            .keys()
            .filter(|id| !wanted.iter().any(|w| w.id == **id))
            .filter_map(|id| self.playlist.get(id))
            .filter(|s| !self.store.contains(STREAM, s.id) && !self.unverified.contains_key(&s.id))
            .map(entry)
            .collect();
        if !extra.is_empty() {
            wanted.extend(extra);
            // Ids are distinct: an unstable sort gives the same order (and links less code).
            wanted.sort_unstable_by_key(|w| w.id);
        }
        wanted
    }

    fn plan(&mut self, now: Instant) {
        self.plan_at = None;
        self.last_plan = Some(now);
        let wanted = self.wanted(now);
        let actions = self.scheduler.plan(&wanted, now);
        for a in actions {
            self.execute(a, now);
        }
    }

    fn url_for(&self, seg: SegmentId, base: usize) -> Option<String> {
        let info = self.playlist.get(&seg)?;
        let b = self
            .config
            .http_bases
            .get(base)
            .or(self.config.http_bases.first())?;
        Some(format!(
            "{}/{}",
            b.trim_end_matches('/'),
            info.path.trim_start_matches('/')
        ))
    }

    fn execute(&mut self, action: Action, now: Instant) {
        tracing::debug!(
            ?action,
            peers = self.scheduler.peer_count(),
            "scheduler action"
        );
        match action {
            Action::StartHttp {
                segment,
                base,
                from_byte,
            } => {
                let from = usize::try_from(from_byte).unwrap_or(usize::MAX);
                partial_entry(&mut self.partials, &mut self.next_generation, segment)
                    .truncate(from, &mut self.next_generation);
                self.open_http(segment, base, from_byte, now);
            }
            Action::SwitchToHttp {
                segment,
                peer,
                base,
                from_byte,
            } => {
                self.stats.stalls_avoided += 1;
                self.cancel_peer_download(peer, segment);
                let have = self
                    .partials
                    .get(&segment)
                    .map_or(0, |p| p.data.len() as u64);
                let from = from_byte.min(have);
                if let Some(p) = self.partials.get_mut(&segment) {
                    let from = usize::try_from(from).unwrap_or(usize::MAX);
                    p.truncate(from, &mut self.next_generation);
                }
                self.open_http(segment, base, from, now);
            }
            Action::StartP2p { segment, .. } if self.p2p_refused() => {
                let action = self.scheduler.start_http_now(segment, now);
                self.execute(action, now);
            }
            Action::StartP2p { segment, peer } => {
                let request = self.next_request;
                self.next_request += 1;
                let Some(p) = self.peers.get_mut(&peer) else {
                    self.scheduler.forget(segment);
                    return;
                };
                if p.download.is_some() {
                    self.scheduler.forget(segment);
                    return;
                }
                let have = self
                    .partials
                    .get(&segment)
                    .map_or(0, |p| p.data.len() as u64);
                p.download = Some(PeerDownload {
                    segment,
                    request,
                    expected: None,
                    received: 0,
                });
                let byte_from = (have > 0).then_some(have);
                // Announced as loading when relaying partial segments.
                self.announce_dirty |= self.config.relay_partial;
                self.send_command(
                    peer,
                    &Command::SegmentRequest {
                        segment,
                        request,
                        byte_from,
                    },
                );
            }
            Action::Abort { segment } => {
                if let Some(h) = self.http_by_segment.remove(&segment) {
                    self.http.remove(&h);
                    self.outputs.push_back(Output::HttpAbort(h));
                    self.announce_dirty = true;
                }
                let peer = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.download.as_ref().is_some_and(|d| d.segment == segment))
                    .map(|(h, _)| *h);
                if let Some(peer) = peer {
                    self.cancel_peer_download(peer, segment);
                    self.announce_dirty |= self.config.relay_partial;
                }
                self.partials.remove(&segment);
            }
        }
    }

    fn cancel_peer_download(&mut self, peer: PeerHandle, segment: SegmentId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(d) = p.download.take_if(|d| d.segment == segment) {
            self.send_command(
                peer,
                &Command::CancelSegmentRequest {
                    segment,
                    request: d.request,
                },
            );
        }
    }

    fn open_http(&mut self, segment: SegmentId, base: usize, from_byte: u64, _now: Instant) {
        let Some(url) = self.url_for(segment, base) else {
            self.scheduler.forget(segment);
            return;
        };
        if let Some(old) = self.http_by_segment.remove(&segment) {
            self.http.remove(&old);
            self.outputs.push_back(Output::HttpAbort(old));
        }
        let byte_range = self
            .playlist
            .get(&segment)
            .and_then(|i| i.byte_range.clone());
        let h = HttpHandle(self.next_handle);
        self.next_handle += 1;
        self.http.insert(
            h,
            HttpReq {
                segment,
                base,
                from_byte,
            },
        );
        self.http_by_segment.insert(segment, h);
        self.announce_dirty = true;
        self.outputs.push_back(Output::HttpRequest {
            request: h,
            url,
            range_from: (from_byte > 0).then_some(from_byte),
            byte_range,
        });
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

impl Peer {
    fn new(remote_id: Option<PeerId>, offer_id: Option<OfferId>) -> Self {
        Self {
            remote_id,
            offer_id,
            connected: false,
            decoder: MessageDecoder::new(),
            download: None,
            upload: None,
            asked: None,
        }
    }
}
