//! The peer engine: one sans-IO state machine tying the store, integrity checks, the scheduler, the
//! wire protocol and the tracker client together.
//!
//! As in quinn-proto, the application acts through methods ([`Engine::want_segment`],
//! [`Engine::set_playback`], [`Engine::add_segment`], ...), the network and the driver's IO come in
//! through one path ([`Engine::handle_event`] with an [`IoEvent`]), time through
//! [`Engine::handle_timeout`] when [`Engine::poll_timeout`] is reached, and everything comes out
//! through `poll_*`: [`Transmit`]s to peers and the tracker, [`RtcCommand`]s, [`HttpCommand`]s and
//! application [`Event`]s. Every entry point takes `now`; the engine never reads a clock and never
//! does IO.
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
//!
//! Files, in the order a segment request passes them: this file (the state and the application
//! methods, e.g. [`Engine::want_segment`]) → `requests.rs` (the scheduler's plan over the download
//! table, carried out) → `outbox.rs` (what goes out: `poll_*`) → `io.rs` (what comes in:
//! [`Engine::handle_event`]) → `peers.rs` / `http_responses.rs` (bytes into the download table) →
//! `arrivals.rs` (verified, stored, [`Event::SegmentReady`]). Beside the route: `signalling.rs`
//! (tracker and peer connections), `uploads.rs` (serving peers), `api.rs` and `config.rs` (types).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::download_table::{Download, DownloadTable, Request};
use crate::integrity::{file_name_of, SegmentManifest, Verification};
use crate::queue::take_first;
use crate::rng::CoreRng;
use crate::scheduler::{
    Action, PlanView, Policy, Scheduler, SchedulerConfig, Source, UploadBudget, WantedSegment,
};
use crate::store::{EvictionMode, SegmentStore, StoreConfig, StreamKey};
use crate::time::Instant;
use crate::tracker_client::{
    InfoHash, OfferId, PeerId, TrackerClient, TrackerClientConfig, TrackerEvent, TrackerFrame,
};
use crate::vecmap::VecMap;
use crate::wire::{
    encode_command_with_max, Command, Incoming, MessageDecoder, RequestId, SegmentId,
    MAX_MESSAGE_BYTES,
};

pub use crate::scheduler::PeerHandle;

mod api;
mod arrivals;
mod config;
mod http_responses;
mod io;
mod outbox;
mod peers;
mod requests;
mod signalling;
mod uploads;

use self::outbox::Outbox;

pub use self::api::{
    DeliverySource, Event, HttpCommand, HttpHandle, IoEvent, RtcCommand, SegmentInfo, Stats,
    Transmit,
};
pub use self::config::EngineConfig;

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
    /// For a relay: the [`Download::generation`] it reads; another generation ends it.
    generation: Option<u64>,
}

#[derive(Debug)]
struct Peer {
    remote_id: Option<PeerId>,
    offer_id: Option<OfferId>,
    connected: bool,
    decoder: MessageDecoder,
    upload: Option<Upload>,
    /// The segment last asked for by this peer and how many requests in a row named it.
    asked: Option<(SegmentId, u32)>,
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
    /// Where its bytes came from.
    source: DeliverySource,
    /// Dropped and fetched over HTTP at this time.
    until: Instant,
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
    /// Offers asked for with [`RtcCommand::CreateOffers`] and not yet reported
    /// ([`IoEvent::OfferCreated`]).
    offers_pending: Vec<PeerHandle>,
    /// Offers of the current batch made so far: `(handle, SDP)`.
    offers_made: Vec<(PeerHandle, String)>,
    banned: BTreeSet<PeerId>,
    /// Every segment in flight: its bytes, source and request.
    downloads: DownloadTable,
    /// Segments from peers waiting for a manifest that lists them.
    unverified: VecMap<SegmentId, Unverified>,
    budget: UploadBudget,
    upload_cursor: Option<PeerHandle>,
    out: Outbox,
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
    /// A new engine; it joins the swarm once [`IoEvent::TrackerConnected`] arrives.
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
            offers_pending: Vec::new(),
            offers_made: Vec::new(),
            banned: BTreeSet::new(),
            downloads: DownloadTable::new(),
            unverified: VecMap::new(),
            upload_cursor: None,
            out: Outbox::default(),
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

    /// Segments of the playlist that some connected peer announced as loaded.
    pub fn segments_on_peers(&self) -> usize {
        self.playlist
            .keys()
            .filter(|&&id| self.scheduler.someone_has(id))
            .count()
    }

    /// Whether the segment is in the store.
    pub fn has_segment(&self, segment: SegmentId) -> bool {
        self.store.contains(STREAM, segment)
    }

    /// Peer ids banned for this session.
    pub fn banned(&self) -> &BTreeSet<PeerId> {
        &self.banned
    }

    /// Records `now`; whether the engine still runs (after [`Engine::shutdown`] nothing does).
    fn begin(&mut self, now: Instant) -> bool {
        self.last_now = Some(now);
        !self.shut_down
    }

    /// What every entry point ends with: held segments checked, a plan if one is due, uploads
    /// moved, announcements and tracker frames queued.
    fn finish(&mut self, now: Instant) {
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

    /// The current playlist (live: the sliding window; VOD: all segments), replacing the previous.
    /// Wanted segments it no longer lists fail.
    pub fn set_playlist(&mut self, segments: Vec<SegmentInfo>, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.need_plan = true;
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
            self.out.events.push(Event::SegmentFailed {
                segment: s,
                reason: "not in the playlist".into(),
            });
        }
        self.finish(now);
    }

    /// The integrity manifest (`segments-sha256.json`).
    pub fn set_manifest(&mut self, manifest: SegmentManifest, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.need_plan = true;
        self.manifest = Some(manifest);
        // Announcements were held back if P2P waited for the manifest.
        self.announce_dirty = true;
        self.check_unverified(now);
        self.finish(now);
    }

    /// A segment this peer already holds from elsewhere (a seeder's own files): stored and
    /// announced to peers like a downloaded one, but not counted as downloaded.
    pub fn add_segment(&mut self, id: SegmentId, data: Bytes, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.need_plan = true;
        match self.store.insert(STREAM, id, data) {
            Ok(_) => self.announce_dirty = true,
            Err(e) => tracing::warn!(segment = id, "segment not added: {e}"),
        }
        self.finish(now);
    }

    /// Where playback is now, media seconds.
    pub fn set_playback(&mut self, position: f64, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.need_plan = true;
        self.playback = Some((position, now));
        self.finish(now);
    }

    /// The player needs this segment: answered with [`Event::SegmentReady`] or
    /// [`Event::SegmentFailed`].
    pub fn want_segment(&mut self, segment: SegmentId, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.need_plan = true;
        if let Some(data) = self.store.get(STREAM, segment) {
            self.stats.segments_delivered += 1;
            self.out.events.push(Event::SegmentReady {
                segment,
                data,
                source: DeliverySource::Cache,
            });
        } else if !self.playlist.contains_key(&segment) {
            self.out.events.push(Event::SegmentFailed {
                segment,
                reason: "not in the playlist".into(),
            });
        } else {
            self.player_wants.insert(segment, ());
        }
        self.finish(now);
    }

    /// The player no longer needs this segment.
    pub fn cancel_segment(&mut self, segment: SegmentId, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.need_plan = true;
        self.player_wants.remove(&segment);
        self.finish(now);
    }

    /// Leaves the swarm: `stopped` to the tracker, every peer closed, every request aborted.
    /// The engine does nothing after this.
    pub fn shutdown(&mut self, now: Instant) {
        if !self.begin(now) {
            return;
        }
        self.tracker.leave(self.config.info_hash, now);
        self.tracker_events(now);
        for (&h, p) in self.peers.iter() {
            self.out.rtc.push(RtcCommand::Close(h));
            if p.connected {
                self.out.events.push(Event::PeerClosed(h));
            }
        }
        self.peers.clear();
        for (_, t) in self.downloads.running() {
            if let Request::Http(r) = t.request {
                self.out.http.push(HttpCommand::Abort(r));
            }
        }
        self.downloads = DownloadTable::new();
        self.flush_tracker();
        self.shut_down = true;
    }

    /// The scheduler policy in use.
    pub fn policy(&self) -> Policy {
        self.config.scheduler.policy
    }

    /// The source of a running download, if any.
    pub fn download_source(&self, segment: SegmentId) -> Option<Source> {
        self.downloads
            .get(segment)
            .and_then(|d| d.transfer.as_ref())
            .map(|t| t.source)
    }
}
