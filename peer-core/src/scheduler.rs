//! Download scheduling: for every wanted segment, which peer or which HTTP base URL, and when.
//!
//! The [`Scheduler`] is a plain state machine. The engine tells it what peers announce, how
//! downloads progress and which segments are wanted with which deadline; [`Scheduler::plan`] returns
//! the [`Action`]s to take now. Two policies share this state:
//!
//! - [`Policy::Segswarm`] plans by deadline: a segment due within the safety margin goes to HTTP, a
//!   peer is used only when its measured rate can finish the transfer in time, and a P2P transfer
//!   that falls behind is switched to HTTP, resuming from the byte already received. VOD prefetches
//!   a bounded window; live prefers the newest segments near the live edge and lets a few peers of
//!   each neighbourhood fetch a new segment over HTTP while the others wait for it from peers.
//! - [`Policy::Baseline`] reproduces p2p-media-loader v2's default scheduling (`hybrid-loader.ts`):
//!   a 15 s high-demand window loaded over HTTP first, everything else over P2P while someone has
//!   it, random HTTP downloads on a timer while peers are connected, 2 HTTP + 3 P2P downloads at
//!   once and a 2 s P2P "no bytes" timeout.
//!
//! Time is an input: every method that needs the current time takes `now`.

use std::time::Duration;

use rand::Rng;

use crate::rng::{self, CoreRng};
use crate::time::Instant;
use crate::vecmap::VecMap;
use crate::wire::SegmentId;

/// An opaque handle for one peer connection, chosen by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerHandle(pub u64);

/// Which scheduling policy a [`Scheduler`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// segswarm's deadline-aware policy.
    Segswarm,
    /// p2p-media-loader v2's default scheduling, for comparison.
    Baseline,
}

/// Settings of a [`Scheduler`]. Every limit is named here with its default.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Policy to follow. Default: [`Policy::Segswarm`].
    pub policy: Policy,
    /// Most HTTP downloads at once. Default 2 (as p2p-media-loader).
    pub max_http_downloads: usize,
    /// Most P2P downloads at once. Default 3 (as p2p-media-loader).
    pub max_p2p_downloads: usize,
    /// Segswarm: a segment whose deadline is closer than the expected HTTP download time plus this
    /// margin is loaded over HTTP. Default 3 s.
    pub safety_margin: Duration,
    /// Segswarm: how far ahead of the playhead VOD segments are prefetched. Default 60 s.
    pub vod_prefetch_window: Duration,
    /// Segswarm: how far ahead of the playhead live segments are considered. Default 120 s.
    pub live_window: Duration,
    /// Segswarm VOD: a segment nobody near us has is fetched over HTTP once it is due within this
    /// time. Default 20 s.
    pub vod_http_lead: Duration,
    /// Segswarm VOD: while no peer is connected yet and the tracker has not reported us alone,
    /// segments not yet urgent wait this long (from the first plan) for peers instead of going to
    /// HTTP at [`SchedulerConfig::vod_http_lead`]. Default 3 s.
    pub vod_peer_wait: Duration,
    /// Segswarm: while no connected peer has announced what it holds yet and one of them
    /// connected less than this long ago, segments that are not urgent are not fetched early over
    /// HTTP (urgent ones still are). Default 500 ms (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub first_announce_wait: Duration,
    /// Segswarm VOD: each peer fetches a segment nobody near it holds or loads once it is due
    /// within a random share of [`SchedulerConfig::vod_http_lead`], between `1 − this` and 1, so
    /// that viewers watching the same part do not all fetch it at once (the first relays it to
    /// the others). 0 turns it off. Default 0.5.
    pub vod_seed_spread: f64,
    /// Segswarm live: a brand-new segment is fetched over HTTP by each peer with probability
    /// `max(live_min_seeds / swarm size, live_http_seeds / 2^g, ...)`, where `g` is how many times
    /// the holders can double (peer to peer) before the segment turns urgent; the others wait for it
    /// from peers. This is the expected number of early HTTP fetches per doubling tree. Default
    /// 0.25 (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub live_http_seeds: f64,
    /// Segswarm live: how many transfer times one doubling of a segment's holders takes (holders
    /// are also busy with other segments and requests meet busy holders). Default 1.5.
    pub live_doubling_factor: f64,
    /// Segswarm live: fewest early HTTP fetches wanted in the whole swarm per segment (the swarm
    /// size comes from the tracker). Default 0 (off; [`SchedulerConfig::live_seed_spread`] gets a
    /// small swarm its one fetch per segment) (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub live_min_seeds: f64,
    /// Segswarm live: how many of the newest segments count as the live edge (seeded over HTTP by
    /// a few peers as soon as they appear). Default 2.
    pub live_edge_segments: usize,
    /// Segswarm live: a peer that did not draw an early HTTP fetch of a new segment still fetches
    /// it when, at a random point within this share of the segment's slack (time left minus HTTP
    /// time and safety margin, when first seen), none of its peers holds or loads it. In a small
    /// swarm this makes about one peer fetch each segment and relay it to the others. 0 turns it
    /// off. Default 0.5.
    pub live_seed_spread: f64,
    /// Segswarm: when no free peer holds a segment whole, ask a peer that announced it as loading
    /// (the engine relays a segment while it downloads, see `EngineConfig::relay_partial`).
    /// p2p-media-loader peers answer such requests with `SegmentAbsent`. Default true.
    pub request_from_loading: bool,
    /// A P2P download that received no byte for this long is abandoned. Default 2 s (as
    /// p2p-media-loader's `p2pNotReceivingBytesTimeoutMs`).
    pub p2p_stall_timeout: Duration,
    /// An HTTP download that received no byte for this long fails. Default 3 s (as
    /// p2p-media-loader's `httpNotReceivingBytesTimeoutMs`).
    pub http_stall_timeout: Duration,
    /// How long a failed HTTP base URL is skipped (doubled for each further failure). Default 10 s.
    pub http_base_backoff: Duration,
    /// How long a peer that answered `SegmentAbsent` is not asked again. Default 1 s.
    pub peer_busy_backoff: Duration,
    /// Weight of the newest sample in the throughput averages (0..1). Default 0.3.
    pub ewma_alpha: f64,
    /// Throughput assumed for a peer before any measurement, bytes/s. Default 250 000.
    pub initial_peer_rate: f64,
    /// Throughput assumed for an HTTP base before any measurement, bytes/s. Default 1 000 000.
    pub initial_http_rate: f64,
    /// Time to first byte assumed for a request (HTTP or P2P). Default 200 ms.
    pub request_latency: Duration,
    /// Segment size assumed when the engine knows none, bytes. Default 1 000 000.
    pub default_segment_bytes: u64,
    /// Baseline: high-demand window (loaded over HTTP first). Default 15 s.
    pub baseline_high_demand_window: Duration,
    /// Baseline: HTTP download window. Default 3000 s.
    pub baseline_http_window: Duration,
    /// Baseline: P2P download window. Default 6000 s.
    pub baseline_p2p_window: Duration,
    /// Baseline: base interval of the random HTTP download timer (the timer fires after
    /// `base + random(0..base × connected peers)`). Default 1 s.
    pub baseline_random_http_interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            policy: Policy::Segswarm,
            max_http_downloads: 2,
            max_p2p_downloads: 3,
            safety_margin: Duration::from_secs(3),
            vod_prefetch_window: Duration::from_secs(60),
            live_window: Duration::from_secs(120),
            vod_http_lead: Duration::from_secs(20),
            vod_peer_wait: Duration::from_secs(3),
            first_announce_wait: Duration::from_millis(500),
            vod_seed_spread: 0.5,
            live_http_seeds: 0.25,
            live_min_seeds: 0.0,
            live_doubling_factor: 1.5,
            live_edge_segments: 2,
            live_seed_spread: 0.5,
            request_from_loading: true,
            p2p_stall_timeout: Duration::from_secs(2),
            http_stall_timeout: Duration::from_secs(3),
            http_base_backoff: Duration::from_secs(10),
            peer_busy_backoff: Duration::from_secs(1),
            ewma_alpha: 0.3,
            initial_peer_rate: 250_000.0,
            initial_http_rate: 1_000_000.0,
            request_latency: Duration::from_millis(200),
            default_segment_bytes: 1_000_000,
            baseline_high_demand_window: Duration::from_secs(15),
            baseline_http_window: Duration::from_secs(3000),
            baseline_p2p_window: Duration::from_secs(6000),
            baseline_random_http_interval: Duration::from_secs(1),
        }
    }
}

/// One segment the engine wants, with the time playback reaches it.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedSegment {
    /// Wire id.
    pub id: SegmentId,
    /// When playback reaches the segment's start.
    pub deadline: Instant,
    /// Expected size in bytes, if known.
    pub size_hint: Option<u64>,
    /// The player itself asked for it (not only a prefetch).
    pub player_requested: bool,
}

/// Where a download gets its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// HTTP from the base URL with this index.
    Http(usize),
    /// The peer with this handle.
    Peer(PeerHandle),
}

/// What the engine should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an HTTP download of `segment` from base URL `base`, from byte `from_byte`.
    StartHttp {
        /// Segment.
        segment: SegmentId,
        /// Index of the base URL.
        base: usize,
        /// First byte wanted (0 for the whole segment).
        from_byte: u64,
    },
    /// Ask `peer` for `segment`.
    StartP2p {
        /// Segment.
        segment: SegmentId,
        /// Peer to ask.
        peer: PeerHandle,
    },
    /// Stop the P2P download of `segment` and continue it over HTTP from `from_byte`, keeping the
    /// bytes already received.
    SwitchToHttp {
        /// Segment.
        segment: SegmentId,
        /// Peer that was too slow.
        peer: PeerHandle,
        /// Index of the base URL.
        base: usize,
        /// First byte still missing.
        from_byte: u64,
    },
    /// Abort the download of `segment` (whatever its source) and drop its bytes.
    Abort {
        /// Segment.
        segment: SegmentId,
    },
}

/// An exponentially weighted moving average of a throughput, bytes/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    value: f64,
    samples: u32,
}

impl Ewma {
    /// An average that reports `initial` until the first sample.
    pub fn new(initial: f64) -> Self {
        Self {
            value: initial,
            samples: 0,
        }
    }

    /// Adds a sample with weight `alpha` (the first sample replaces the initial value).
    pub fn add(&mut self, sample: f64, alpha: f64) {
        if !sample.is_finite() || sample <= 0.0 {
            return;
        }
        if self.samples == 0 {
            self.value = sample;
        } else {
            self.value = alpha * sample + (1.0 - alpha) * self.value;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The current estimate.
    pub fn get(&self) -> f64 {
        self.value
    }

    /// How many samples were added.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}

/// A token bucket limiting upload to a byte rate, with a burst allowance.
#[derive(Debug, Clone)]
pub struct UploadBudget {
    rate: Option<f64>,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl UploadBudget {
    /// A bucket refilled at `rate` bytes/s holding at most `burst` bytes; `None` means unlimited.
    pub fn new(rate: Option<u64>, burst: u64) -> Self {
        Self {
            rate: rate.map(|r| r as f64),
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let (Some(rate), Some(last)) = (self.rate, self.last) {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * rate).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Takes `bytes` tokens if available (a message larger than the burst is allowed when the bucket
    /// is full). Returns whether the bytes may be sent now.
    pub fn try_take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill(now);
        let need = (bytes as f64).min(self.burst);
        if self.tokens >= need {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    /// When `bytes` tokens will be available, if they are not now.
    pub fn ready_at(&mut self, bytes: usize, now: Instant) -> Option<Instant> {
        let rate = self.rate?;
        self.refill(now);
        let need = (bytes as f64).min(self.burst);
        if self.tokens >= need || rate <= 0.0 {
            return None;
        }
        let wait = (need - self.tokens) / rate;
        Some(now + crate::time::secs(wait.min(3600.0)))
    }
}

/// A set of segment ids as a sorted vector: announcements replace it whole, lookups are binary
/// searches (much cheaper than a tree for the planner's many lookups).
#[derive(Debug, Clone, Default)]
struct SegmentSet(Vec<SegmentId>);

impl SegmentSet {
    fn set(&mut self, ids: &[SegmentId]) {
        self.0.clear();
        self.0.extend_from_slice(ids);
        if !self.0.is_sorted() {
            self.0.sort_unstable();
        }
        self.0.dedup();
    }

    fn contains(&self, id: &SegmentId) -> bool {
        self.0.binary_search(id).is_ok()
    }

    fn insert(&mut self, id: SegmentId) {
        if let Err(i) = self.0.binary_search(&id) {
            self.0.insert(i, id);
        }
    }

    fn remove(&mut self, id: &SegmentId) {
        if let Ok(i) = self.0.binary_search(id) {
            self.0.remove(i);
        }
    }
}

#[derive(Debug, Clone)]
struct PeerState {
    loaded: SegmentSet,
    http_loading: SegmentSet,
    rate: Ewma,
    downloading: Option<SegmentId>,
    /// The peer said it is busy (or lacks a segment): not asked again before this time.
    busy_until: Option<Instant>,
    /// When its data channel opened, until its first announcement (then `None`).
    awaiting_announce_since: Option<Instant>,
}

#[derive(Debug, Clone)]
struct HttpBase {
    rate: Ewma,
    failures: u32,
    backoff_until: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Download {
    source: Source,
    started: Instant,
    /// Byte the current source started from.
    from_byte: u64,
    /// Bytes held in total (including bytes from an earlier source).
    received: u64,
    total: Option<u64>,
    last_progress: Instant,
    /// When the first byte from the current source arrived, and the bytes held then.
    first_byte: Option<(Instant, u64)>,
}

/// A live segment's seeding draw: the uniform number drawn and when the segment was first seen.
#[derive(Debug, Clone, Copy)]
struct SeedDraw {
    u: f64,
    first_seen: Instant,
    /// Slack (time left minus HTTP time and safety margin) when first seen, seconds.
    slack: f64,
}

/// Per-segment scheduling state and the peers' and HTTP bases' view, see the module docs.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    live: bool,
    peers: VecMap<PeerHandle, PeerState>,
    bases: Vec<HttpBase>,
    downloads: VecMap<SegmentId, Download>,
    /// Live seed decisions already drawn (segment → fetch over HTTP early).
    seed_decisions: VecMap<SegmentId, SeedDraw>,
    rng: CoreRng,
    next_random_http: Option<Instant>,
    swarm_size: Option<usize>,
    /// The first plan's time (VOD waits for peers a little after it).
    first_plan: Option<Instant>,
}

fn secs_until(deadline: Instant, now: Instant) -> f64 {
    if deadline >= now {
        deadline.duration_since(now).as_secs_f64()
    } else {
        -now.duration_since(deadline).as_secs_f64()
    }
}

impl Scheduler {
    /// A scheduler for a stream with `http_bases` base URLs (origin first, then mirrors).
    pub fn new(config: SchedulerConfig, http_bases: usize, live: bool, seed: u64) -> Self {
        let bases = (0..http_bases.max(1))
            .map(|_| HttpBase {
                rate: Ewma::new(config.initial_http_rate),
                failures: 0,
                backoff_until: None,
            })
            .collect();
        Self {
            config,
            live,
            peers: VecMap::new(),
            bases,
            downloads: VecMap::new(),
            seed_decisions: VecMap::new(),
            rng: rng::seeded(seed),
            next_random_http: None,
            swarm_size: None,
            first_plan: None,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Marks the stream as live or VOD.
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
    }

    /// A peer connected at `now` (its first announcement is awaited, see
    /// [`SchedulerConfig::first_announce_wait`]).
    pub fn add_peer(&mut self, peer: PeerHandle, now: Instant) {
        self.peers.get_or_insert_with(peer, || PeerState {
            loaded: SegmentSet::default(),
            http_loading: SegmentSet::default(),
            rate: Ewma::new(self.config.initial_peer_rate),
            downloading: None,
            busy_until: None,
            awaiting_announce_since: Some(now),
        });
    }

    /// A peer left; returns the segment that was being downloaded from it (that download is
    /// forgotten, its bytes should be dropped).
    pub fn remove_peer(&mut self, peer: PeerHandle) -> Option<SegmentId> {
        let state = self.peers.remove(&peer)?;
        let seg = state.downloading?;
        if matches!(self.downloads.get(&seg), Some(d) if d.source == Source::Peer(peer)) {
            self.downloads.remove(&seg);
            return Some(seg);
        }
        None
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// A peer's full announcement (p2p-media-loader sends the full lists each time).
    pub fn announce(&mut self, peer: PeerHandle, loaded: &[SegmentId], http_loading: &[SegmentId]) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.loaded.set(loaded);
            p.http_loading.set(http_loading);
            p.awaiting_announce_since = None;
        }
    }

    /// Whether some connected peer announced `segment` as loaded.
    pub fn someone_has(&self, segment: SegmentId) -> bool {
        self.peers.values().any(|p| p.loaded.contains(&segment))
    }

    /// The current source of `segment`'s download, if one runs.
    pub fn download_source(&self, segment: SegmentId) -> Option<Source> {
        self.downloads.get(&segment).map(|d| d.source)
    }

    /// Segments currently loading over HTTP (announced to peers as `p`).
    pub fn http_loading(&self) -> Vec<SegmentId> {
        self.downloads
            .iter()
            .filter(|(_, d)| matches!(d.source, Source::Http(_)))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Segments downloading now, from HTTP or from peers.
    pub fn loading(&self) -> Vec<SegmentId> {
        self.downloads.keys().copied().collect()
    }

    /// Number of running downloads from HTTP and from peers.
    pub fn running(&self) -> (usize, usize) {
        let http = self
            .downloads
            .values()
            .filter(|d| matches!(d.source, Source::Http(_)))
            .count();
        (http, self.downloads.len() - http)
    }

    /// Measured (or assumed) throughput of a peer, bytes/s.
    pub fn peer_rate(&self, peer: PeerHandle) -> Option<f64> {
        self.peers.get(&peer).map(|p| p.rate.get())
    }

    /// Bytes arrived for `segment`: `received` is the total held now (all sources), `total` the full
    /// segment size once known.
    pub fn progress(
        &mut self,
        segment: SegmentId,
        received: u64,
        total: Option<u64>,
        now: Instant,
    ) {
        if let Some(d) = self.downloads.get_mut(&segment) {
            if received > d.received {
                d.last_progress = now;
                if d.first_byte.is_none() {
                    d.first_byte = Some((now, received));
                }
            }
            d.received = received;
            if total.is_some() {
                d.total = total;
            }
        }
    }

    /// The download of `segment` finished with all bytes; updates the source's throughput.
    pub fn completed(&mut self, segment: SegmentId, now: Instant) {
        let Some(d) = self.downloads.remove(&segment) else {
            return;
        };
        let secs = now
            .saturating_duration_since(d.started)
            .as_secs_f64()
            .max(1e-3);
        let sample = d.received.saturating_sub(d.from_byte) as f64 / secs;
        let alpha = self.config.ewma_alpha;
        match d.source {
            Source::Http(b) => {
                if let Some(base) = self.bases.get_mut(b) {
                    base.rate.add(sample, alpha);
                    base.failures = 0;
                }
            }
            Source::Peer(p) => {
                if let Some(peer) = self.peers.get_mut(&p) {
                    peer.rate.add(sample, alpha);
                    peer.downloading = None;
                    peer.loaded.insert(segment);
                }
            }
        }
    }

    /// The download of `segment` failed (HTTP error, peer said absent, bad data). HTTP failures back
    /// the base URL off; a peer failure forgets that the peer has the segment.
    pub fn failed(&mut self, segment: SegmentId, now: Instant) {
        let Some(d) = self.downloads.remove(&segment) else {
            return;
        };
        match d.source {
            Source::Http(b) => self.fail_base(b, now),
            Source::Peer(p) => {
                if let Some(peer) = self.peers.get_mut(&p) {
                    peer.downloading = None;
                    peer.loaded.remove(&segment);
                    // A failed transfer counts as a very slow one.
                    let slow = peer.rate.get() * 0.25;
                    peer.rate.add(slow, self.config.ewma_alpha);
                }
            }
        }
    }

    /// The peer answered `SegmentAbsent` (it is at its upload limit, or dropped the segment): the
    /// download ends and the peer is not asked again for [`SchedulerConfig::peer_busy_backoff`].
    pub fn absent(&mut self, segment: SegmentId, now: Instant) {
        let Some(d) = self.downloads.remove(&segment) else {
            return;
        };
        match d.source {
            Source::Http(b) => self.fail_base(b, now),
            Source::Peer(p) => {
                if let Some(peer) = self.peers.get_mut(&p) {
                    peer.downloading = None;
                    peer.busy_until = Some(now + self.config.peer_busy_backoff);
                }
            }
        }
    }

    /// Forgets the download of `segment` without judging its source (the engine aborted it).
    pub fn forget(&mut self, segment: SegmentId) {
        if let Some(d) = self.downloads.remove(&segment) {
            if let Source::Peer(p) = d.source {
                if let Some(peer) = self.peers.get_mut(&p) {
                    peer.downloading = None;
                }
            }
        }
    }

    fn fail_base(&mut self, b: usize, now: Instant) {
        if let Some(base) = self.bases.get_mut(b) {
            base.failures = base.failures.saturating_add(1);
            let factor = 1u32 << base.failures.min(6).saturating_sub(1);
            base.backoff_until = Some(now + self.config.http_base_backoff * factor);
        }
    }

    /// The HTTP base URL to use now: the first one (origin, then mirrors) not backed off; when all
    /// are backed off, the one whose back-off ends first.
    pub fn pick_base(&self, now: Instant) -> usize {
        let mut best = 0;
        let mut best_until: Option<Instant> = None;
        for (i, b) in self.bases.iter().enumerate() {
            match b.backoff_until {
                None => return i,
                Some(t) if t <= now => return i,
                Some(t) => {
                    if best_until.is_none_or(|u| t < u) {
                        best = i;
                        best_until = Some(t);
                    }
                }
            }
        }
        best
    }

    fn http_rate(&self, now: Instant) -> f64 {
        self.bases
            .get(self.pick_base(now))
            .map(|b| b.rate.get())
            .unwrap_or(self.config.initial_http_rate)
            .max(1.0)
    }

    fn size_of(&self, w: &WantedSegment) -> u64 {
        w.size_hint.unwrap_or(self.config.default_segment_bytes)
    }

    fn expected_http_secs(&self, bytes: u64, now: Instant) -> f64 {
        self.config.request_latency.as_secs_f64() + bytes as f64 / self.http_rate(now)
    }

    /// Starts an HTTP download of `segment` now, outside [`Scheduler::plan`] (e.g. after a peer sent
    /// a segment with a bad hash). Returns the action to carry out.
    pub fn start_http_now(&mut self, segment: SegmentId, now: Instant) -> Action {
        self.forget(segment);
        self.start_http(segment, 0, now)
    }

    fn start_http(&mut self, segment: SegmentId, from_byte: u64, now: Instant) -> Action {
        let base = self.pick_base(now);
        self.downloads.insert(
            segment,
            Download {
                source: Source::Http(base),
                started: now,
                from_byte,
                received: from_byte,
                total: None,
                last_progress: now,
                first_byte: None,
            },
        );
        Action::StartHttp {
            segment,
            base,
            from_byte,
        }
    }

    fn start_p2p(&mut self, segment: SegmentId, peer: PeerHandle, now: Instant) -> Action {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.downloading = Some(segment);
        }
        self.downloads.insert(
            segment,
            Download {
                source: Source::Peer(peer),
                started: now,
                from_byte: 0,
                received: 0,
                total: None,
                last_progress: now,
                first_byte: None,
            },
        );
        Action::StartP2p { segment, peer }
    }

    /// Free peers that announced `segment` as loaded, fastest first (ties by handle).
    fn free_holders(&self, segment: SegmentId, now: Instant) -> Vec<(PeerHandle, f64)> {
        let mut v: Vec<(PeerHandle, f64)> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.downloading.is_none()
                    && p.loaded.contains(&segment)
                    && p.busy_until.is_none_or(|t| t <= now)
            })
            .map(|(h, p)| (*h, p.rate.get()))
            .collect();
        // Handles are distinct, so the order is total and an unstable sort gives the same.
        v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Free peers that announced `segment` as loading (not yet whole), fastest first.
    fn free_loading_holders(&self, segment: SegmentId, now: Instant) -> Vec<(PeerHandle, f64)> {
        let mut v: Vec<(PeerHandle, f64)> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.downloading.is_none()
                    && p.http_loading.contains(&segment)
                    && !p.loaded.contains(&segment)
                    && p.busy_until.is_none_or(|t| t <= now)
            })
            .map(|(h, p)| (*h, p.rate.get()))
            .collect();
        // Handles are distinct, so the order is total and an unstable sort gives the same.
        v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    fn someone_loading_or_has(&self, segment: SegmentId) -> bool {
        self.peers
            .values()
            .any(|p| p.loaded.contains(&segment) || p.http_loading.contains(&segment))
    }

    /// Decides what to do now. `wanted` lists the segments from the playhead on that are not yet
    /// stored, in playback order, each with its deadline. Downloads of segments no longer wanted
    /// are aborted.
    pub fn plan(&mut self, wanted: &[WantedSegment], now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        // Drop downloads of segments that are no longer wanted.
        let mut wanted_ids: Vec<SegmentId> = wanted.iter().map(|w| w.id).collect();
        if !wanted_ids.is_sorted() {
            wanted_ids.sort_unstable();
        }
        let stale: Vec<SegmentId> = self
            .downloads
            .keys()
            .filter(|s| wanted_ids.binary_search(s).is_err())
            .copied()
            .collect();
        for s in stale {
            self.forget(s);
            actions.push(Action::Abort { segment: s });
        }
        if let Some(first) = wanted.first() {
            self.seed_decisions.retain(|s, _| *s >= first.id);
        }
        self.check_http_stalls(now, &mut actions);
        self.first_plan.get_or_insert(now);
        match self.config.policy {
            Policy::Segswarm => self.plan_segswarm(wanted, now, &mut actions),
            Policy::Baseline => self.plan_baseline(wanted, now, &mut actions),
        }
        actions
    }

    fn check_http_stalls(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let timeout = self.config.http_stall_timeout;
        self.abort_silent(now, timeout, |s| matches!(s, Source::Http(_)), actions);
    }

    /// Aborts (as failed) the downloads from sources matching `of_kind` that received nothing
    /// for longer than `timeout`.
    fn abort_silent(
        &mut self,
        now: Instant,
        timeout: Duration,
        of_kind: impl Fn(&Source) -> bool,
        actions: &mut Vec<Action>,
    ) {
        let stalled: Vec<SegmentId> = self
            .downloads
            .iter()
            .filter(|(_, d)| {
                of_kind(&d.source) && now.saturating_duration_since(d.last_progress) > timeout
            })
            .map(|(s, _)| *s)
            .collect();
        for s in stalled {
            self.failed(s, now);
            actions.push(Action::Abort { segment: s });
        }
    }

    fn window_end(&self, now: Instant) -> Instant {
        now + if self.live {
            self.config.live_window
        } else {
            self.config.vod_prefetch_window
        }
    }

    fn plan_segswarm(&mut self, wanted: &[WantedSegment], now: Instant, actions: &mut Vec<Action>) {
        let margin = self.config.safety_margin.as_secs_f64();
        let latency = self.config.request_latency.as_secs_f64();
        // 1. P2P transfers that can no longer finish in time move to HTTP (resuming).
        for w in wanted {
            let Some(d) = self.downloads.get(&w.id) else {
                continue;
            };
            let Source::Peer(peer) = d.source else {
                continue;
            };
            let size = d.total.unwrap_or_else(|| self.size_of(w));
            let left_bytes = size.saturating_sub(d.received);
            let estimate = self
                .peers
                .get(&peer)
                .map(|p| p.rate.get())
                .unwrap_or(self.config.initial_peer_rate);
            // The rate since the first byte, once it spans half a second; the estimate before.
            let measured = match d.first_byte {
                Some((t, b)) if now.saturating_duration_since(t).as_secs_f64() >= 0.5 => {
                    d.received.saturating_sub(b) as f64
                        / now.saturating_duration_since(t).as_secs_f64()
                }
                _ => estimate,
            };
            let eta = left_bytes as f64 / measured.max(1.0);
            let time_left = secs_until(w.deadline, now);
            let stalled =
                now.saturating_duration_since(d.last_progress) > self.config.p2p_stall_timeout;
            let http_eta = self.expected_http_secs(left_bytes, now);
            // Predicted to finish later than half the safety margin before the deadline, and HTTP
            // would be faster for the bytes left.
            let too_slow = eta > time_left - margin * 0.5 && http_eta < eta;
            if stalled || too_slow {
                let from_byte = d.received;
                let (http_running, _) = self.running();
                if http_running >= self.config.max_http_downloads
                    && !self.preempt_http(wanted, w, now, actions)
                {
                    if stalled {
                        // No HTTP slot: drop the stalled transfer, retry later.
                        self.failed(w.id, now);
                        actions.push(Action::Abort { segment: w.id });
                    }
                    continue;
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.downloading = None;
                    let slow = if stalled {
                        p.rate.get() * 0.25
                    } else {
                        measured
                    };
                    p.rate.add(slow, self.config.ewma_alpha);
                }
                self.downloads.remove(&w.id);
                let base = self.pick_base(now);
                self.downloads.insert(
                    w.id,
                    Download {
                        source: Source::Http(base),
                        started: now,
                        from_byte,
                        received: from_byte,
                        total: Some(size),
                        last_progress: now,
                        first_byte: None,
                    },
                );
                actions.push(Action::SwitchToHttp {
                    segment: w.id,
                    peer,
                    base,
                    from_byte,
                });
            }
        }

        // 2. New downloads, earliest deadline first. Live: only the newest segments (the live edge)
        // are fetched early over HTTP to seed the swarm; older ones come from peers.
        let window_end = self.window_end(now);
        let order: Vec<&WantedSegment> = wanted
            .iter()
            .filter(|w| w.deadline <= window_end || w.player_requested)
            .collect();
        let live_edge = wanted.iter().map(|w| w.id).max().unwrap_or(0)
            - self.config.live_edge_segments as SegmentId
            + 1;
        let awaiting_announce = self.awaiting_first_announce(now);
        for w in order {
            if self.downloads.contains_key(&w.id) {
                continue;
            }
            let size = self.size_of(w);
            let time_left = secs_until(w.deadline, now);
            let http_eta = self.expected_http_secs(size, now);
            let slack = time_left - http_eta - margin;
            let (http_running, p2p_running) = self.running();
            if slack <= 0.0 {
                if http_running < self.config.max_http_downloads
                    || self.preempt_http(wanted, w, now, actions)
                {
                    let a = self.start_http(w.id, 0, now);
                    actions.push(a);
                }
                continue;
            }
            // A peer that can deliver within the slack.
            if p2p_running < self.config.max_p2p_downloads {
                // Any holder fast enough to finish half the safety margin before the deadline (a
                // late transfer moves to HTTP keeping its bytes), picked at random so that requesters
                // spread over the holders instead of queueing at the fastest one. Without one, a
                // peer still loading the segment relays it.
                let fits = |(_, rate): &(PeerHandle, f64)| {
                    latency + size as f64 / rate.max(1.0) <= time_left - margin * 0.5
                };
                let mut fit: Vec<PeerHandle> = self
                    .free_holders(w.id, now)
                    .into_iter()
                    .filter(fits)
                    .map(|(p, _)| p)
                    .collect();
                if fit.is_empty() && self.config.request_from_loading {
                    fit = self
                        .free_loading_holders(w.id, now)
                        .into_iter()
                        .filter(fits)
                        .map(|(p, _)| p)
                        .collect();
                }
                if !fit.is_empty() {
                    let peer = fit[self.rng.random_range(0..fit.len())];
                    let a = self.start_p2p(w.id, peer, now);
                    actions.push(a);
                    continue;
                }
            }
            // Early HTTP: live, the newest segments (a few peers seed them); VOD, a segment due
            // within the lead time. Cheap tests first: this loop runs on every plan.
            let early = if self.live {
                w.id >= live_edge
            } else {
                time_left <= self.config.vod_http_lead.as_secs_f64()
                    && !self.vod_waits_for_peers(now)
                    && {
                        let rng = &mut self.rng;
                        let draw = *self.seed_decisions.get_or_insert_with(w.id, || SeedDraw {
                            u: rng.random::<f64>(),
                            first_seen: now,
                            slack,
                        });
                        let lead = self.config.vod_http_lead.as_secs_f64();
                        time_left <= lead * (1.0 - self.config.vod_seed_spread * draw.u)
                    }
            };
            if !early || http_running >= self.config.max_http_downloads || awaiting_announce {
                continue;
            }
            if self.someone_loading_or_has(w.id) {
                continue; // it will come from a peer, or from HTTP once urgent
            }
            let fetch_now = if self.live {
                let p = self.seed_probability(size, time_left, now);
                let rng = &mut self.rng;
                let draw = *self.seed_decisions.get_or_insert_with(w.id, || SeedDraw {
                    u: rng.random::<f64>(),
                    first_seen: now,
                    slack,
                });
                let spread = self.config.live_seed_spread * draw.slack.max(0.0) * draw.u;
                draw.u < p
                    || (self.config.live_seed_spread > 0.0
                        && now.saturating_duration_since(draw.first_seen).as_secs_f64() >= spread)
            } else {
                true
            };
            if fetch_now {
                let a = self.start_http(w.id, 0, now);
                actions.push(a);
            }
        }
    }

    /// Probability that this peer fetches a new live segment over HTTP right away (see
    /// [`SchedulerConfig::live_http_seeds`]).
    fn seed_probability(&self, size: u64, time_left: f64, now: Instant) -> f64 {
        let n = self.peers.len();
        if n == 0 {
            return 1.0;
        }
        let budget = time_left
            - self.expected_http_secs(size, now)
            - self.config.safety_margin.as_secs_f64();
        let mean_rate = self.peers.values().map(|p| p.rate.get()).sum::<f64>() / n as f64;
        let transfer = self.config.request_latency.as_secs_f64() + size as f64 / mean_rate.max(1.0);
        let doublings = (budget / (transfer * self.config.live_doubling_factor))
            .floor()
            .clamp(0.0, 30.0);
        let tree = self.config.live_http_seeds / 2f64.powf(doublings);
        let swarm = self.swarm_size.unwrap_or(n + 1).max(n + 1) as f64;
        let floor = self.config.live_min_seeds / swarm;
        tree.max(floor).min(1.0)
    }

    /// No connected peer has announced what it holds yet, and one connected within
    /// [`SchedulerConfig::first_announce_wait`].
    fn awaiting_first_announce(&self, now: Instant) -> bool {
        let wait = self.config.first_announce_wait;
        let mut recent = false;
        for p in self.peers.values() {
            match p.awaiting_announce_since {
                None => return false,
                Some(t) => recent |= now < t + wait,
            }
        }
        recent
    }

    /// VOD: no peer yet, the tracker did not report us alone, and the swarm is young (see
    /// [`SchedulerConfig::vod_peer_wait`]).
    fn vod_waits_for_peers(&self, now: Instant) -> bool {
        self.peers.is_empty()
            && self.swarm_size.is_none_or(|n| n > 1)
            && self
                .first_plan
                .is_some_and(|t| now < t + self.config.vod_peer_wait)
    }

    /// The swarm's size as the tracker reports it (seeders + leechers), used for live seeding.
    pub fn set_swarm_size(&mut self, peers: usize) {
        self.swarm_size = Some(peers);
    }

    fn is_urgent(&self, w: &WantedSegment, now: Instant, margin: f64) -> bool {
        secs_until(w.deadline, now) - self.expected_http_secs(self.size_of(w), now) - margin <= 0.0
    }

    /// Frees an HTTP slot for `urgent` by aborting the HTTP download of a later, non-urgent segment.
    fn preempt_http(
        &mut self,
        wanted: &[WantedSegment],
        urgent: &WantedSegment,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> bool {
        let margin = self.config.safety_margin.as_secs_f64();
        let victim = wanted
            .iter()
            .rev()
            .filter(|w| w.deadline > urgent.deadline && !self.is_urgent(w, now, margin))
            .find(|w| matches!(self.downloads.get(&w.id), Some(d) if matches!(d.source, Source::Http(_))))
            .map(|w| w.id);
        if let Some(v) = victim {
            self.forget(v);
            actions.push(Action::Abort { segment: v });
            true
        } else {
            false
        }
    }

    fn plan_baseline(&mut self, wanted: &[WantedSegment], now: Instant, actions: &mut Vec<Action>) {
        let high = self.config.baseline_high_demand_window;
        let http_window = self.config.baseline_http_window;
        let p2p_window = self.config.baseline_p2p_window;
        // P2P "no bytes" timeout.
        let timeout = self.config.p2p_stall_timeout;
        self.abort_silent(now, timeout, |s| matches!(s, Source::Peer(_)), actions);
        // The player's request gets no special treatment (p2p-media-loader starts it at once only
        // after a seek); the queue below covers it.
        for (i, w) in wanted.iter().enumerate() {
            let ahead = w.deadline.saturating_duration_since(now);
            let in_high = ahead <= high;
            if in_high {
                match self.downloads.get(&w.id).map(|d| (d.source, d.received)) {
                    Some((Source::Peer(peer), received)) => {
                        let (h, _) = self.running();
                        if h < self.config.max_http_downloads
                            || self.abort_last_after(wanted, i, true, actions)
                        {
                            if let Some(p) = self.peers.get_mut(&peer) {
                                p.downloading = None;
                            }
                            self.downloads.remove(&w.id);
                            let base = self.pick_base(now);
                            self.downloads.insert(
                                w.id,
                                Download {
                                    source: Source::Http(base),
                                    started: now,
                                    from_byte: received,
                                    received,
                                    total: None,
                                    last_progress: now,
                                    first_byte: None,
                                },
                            );
                            actions.push(Action::SwitchToHttp {
                                segment: w.id,
                                peer,
                                base,
                                from_byte: received,
                            });
                        }
                    }
                    Some((Source::Http(_), _)) => {}
                    None => {
                        let (h, _) = self.running();
                        if h < self.config.max_http_downloads
                            || self.abort_last_after(wanted, i, true, actions)
                        {
                            let a = self.start_http(w.id, 0, now);
                            actions.push(a);
                            continue;
                        }
                        let (_, p) = self.running();
                        if self.someone_has(w.id)
                            && (p < self.config.max_p2p_downloads
                                || self.abort_last_after(wanted, i, false, actions))
                        {
                            if let Some(peer) = self.pick_weighted_holder(w.id, now) {
                                let a = self.start_p2p(w.id, peer, now);
                                actions.push(a);
                            }
                        }
                    }
                }
            } else if ahead <= p2p_window
                && !self.downloads.contains_key(&w.id)
                && self.someone_loading_or_has(w.id)
            {
                let (_, p) = self.running();
                if p < self.config.max_p2p_downloads {
                    if let Some(peer) = self.pick_weighted_holder(w.id, now) {
                        let a = self.start_p2p(w.id, peer, now);
                        actions.push(a);
                    }
                }
            }
        }
        // Random HTTP downloads on a timer, only while peers are connected.
        let interval = self.config.baseline_random_http_interval.as_secs_f64();
        match self.next_random_http {
            None => {
                let n = self.peers.len() as f64;
                let wait = self.rng.random::<f64>() * interval * n + interval;
                self.next_random_http = Some(now + Duration::from_secs_f64(wait));
            }
            Some(t) if t <= now => {
                self.random_http(wanted, now, http_window, actions);
                let n = self.peers.len() as f64;
                let wait = self.rng.random::<f64>() * interval * n + interval;
                self.next_random_http = Some(now + Duration::from_secs_f64(wait));
            }
            Some(_) => {}
        }
    }

    fn random_http(
        &mut self,
        wanted: &[WantedSegment],
        now: Instant,
        http_window: Duration,
        actions: &mut Vec<Action>,
    ) {
        let max_http = self.config.max_http_downloads;
        if self.peers.is_empty() || self.running().0 >= max_http {
            return;
        }
        let candidates: Vec<SegmentId> = wanted
            .iter()
            .filter(|w| w.deadline.saturating_duration_since(now) <= http_window)
            .filter(|w| !self.someone_loading_or_has(w.id) && !self.downloads.contains_key(&w.id))
            .map(|w| w.id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let peers_count = self.peers.len() + 1;
        let count = candidates.len().min(max_http * peers_count);
        let mut idx: Vec<usize> = (0..count).collect();
        // Fisher-Yates shuffle with our seeded generator.
        for i in (1..idx.len()).rev() {
            let j = self.rng.random_range(0..=i);
            idx.swap(i, j);
        }
        let mut probability = count as f64 / peers_count as f64;
        for i in idx {
            if self.running().0 >= max_http {
                break;
            }
            if probability >= 1.0 || self.rng.random::<f64>() <= probability {
                let a = self.start_http(candidates[i], 0, now);
                actions.push(a);
            }
            probability -= 1.0;
            if probability <= 0.0 {
                break;
            }
        }
    }

    /// Baseline peer choice: weighted random by measured download bandwidth, unproven peers at a
    /// tenth of the best (as p2p-media-loader's `downloadSegment`).
    fn pick_weighted_holder(&mut self, segment: SegmentId, now: Instant) -> Option<PeerHandle> {
        let holders = self.free_holders(segment, now);
        if holders.is_empty() {
            return None;
        }
        if holders.len() == 1 {
            return Some(holders[0].0);
        }
        let measured: Vec<(PeerHandle, f64)> = holders
            .iter()
            .map(|(h, _)| {
                let p = &self.peers[h];
                (
                    *h,
                    if p.rate.samples() > 0 {
                        p.rate.get()
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        let max = measured.iter().map(|m| m.1).fold(0.0, f64::max);
        if max <= 0.0 {
            let i = self.rng.random_range(0..measured.len());
            return Some(measured[i].0);
        }
        let base = (max * 0.1).max(1.0);
        let unproven = measured.iter().filter(|m| m.1 <= base).count() as f64;
        let proven: f64 = measured.iter().filter(|m| m.1 > base).map(|m| m.1).sum();
        let adjusted = if unproven > 0.0 && proven > 0.0 && unproven * base > proven {
            proven / unproven
        } else {
            base
        };
        let weights: Vec<f64> = measured.iter().map(|m| m.1.max(adjusted)).collect();
        let total: f64 = weights.iter().sum();
        let mut x = self.rng.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Some(measured[i].0);
            }
            x -= w;
        }
        measured.last().map(|m| m.0)
    }

    /// Baseline: abort the last download of the given kind queued after position `i`.
    fn abort_last_after(
        &mut self,
        wanted: &[WantedSegment],
        i: usize,
        http: bool,
        actions: &mut Vec<Action>,
    ) -> bool {
        let victim = wanted[i + 1..]
            .iter()
            .rev()
            .find(|w| match self.downloads.get(&w.id) {
                Some(d) => matches!(d.source, Source::Http(_)) == http,
                None => false,
            })
            .map(|w| w.id);
        if let Some(v) = victim {
            self.forget(v);
            actions.push(Action::Abort { segment: v });
            true
        } else {
            false
        }
    }

    /// How far ahead of the playhead segments can matter to the policy: callers may leave later
    /// segments out of the wanted list.
    pub fn horizon(&self) -> Duration {
        match self.config.policy {
            Policy::Segswarm if self.live => self.config.live_window,
            Policy::Segswarm => self.config.vod_prefetch_window,
            Policy::Baseline => self
                .config
                .baseline_p2p_window
                .max(self.config.baseline_http_window),
        }
    }

    /// The next time [`Scheduler::plan`] should run even without new input.
    pub fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let tick = now + Duration::from_millis(250);
        match self.next_random_http {
            Some(t) if t < tick && self.config.policy == Policy::Baseline => Some(t.max(now)),
            _ => Some(tick),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn seg(id: SegmentId, now: Instant, secs: f64, size: u64) -> WantedSegment {
        WantedSegment {
            id,
            deadline: now + Duration::from_secs_f64(secs),
            size_hint: Some(size),
            player_requested: false,
        }
    }

    #[test]
    fn urgent_segment_goes_to_http_even_when_a_peer_has_it() {
        let now = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 1, false, 1);
        s.add_peer(PeerHandle(1), now);
        s.announce(PeerHandle(1), &[5], &[]);
        let a = s.plan(&[seg(5, now, 2.0, 500_000)], now);
        assert_eq!(
            a,
            vec![Action::StartHttp {
                segment: 5,
                base: 0,
                from_byte: 0
            }]
        );
    }

    #[test]
    fn distant_segment_comes_from_the_peer_that_has_it() {
        let now = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 1, false, 1);
        s.add_peer(PeerHandle(1), now);
        s.add_peer(PeerHandle(2), now);
        s.announce(PeerHandle(2), &[5], &[]);
        let a = s.plan(&[seg(5, now, 30.0, 500_000)], now);
        assert_eq!(
            a,
            vec![Action::StartP2p {
                segment: 5,
                peer: PeerHandle(2)
            }]
        );
        // One download per peer: a second segment of the same peer waits.
        s.announce(PeerHandle(2), &[5, 6], &[]);
        let a = s.plan(
            &[seg(5, now, 30.0, 500_000), seg(6, now, 34.0, 500_000)],
            now,
        );
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn slow_peer_transfer_switches_to_http_resuming_from_received_bytes() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 2, false, 1);
        s.add_peer(PeerHandle(1), t0);
        s.announce(PeerHandle(1), &[7], &[]);
        let w = [seg(7, t0, 12.0, 1_000_000)];
        assert_eq!(
            s.plan(&w, t0),
            vec![Action::StartP2p {
                segment: 7,
                peer: PeerHandle(1)
            }]
        );
        // First bytes after 0.5 s, then only 100 kB by 4 s: 900 kB left at about 23 kB/s cannot
        // finish in the 8 s left.
        s.progress(7, 20_000, Some(1_000_000), t0 + Duration::from_millis(500));
        let t1 = t0 + Duration::from_secs(4);
        s.progress(7, 100_000, Some(1_000_000), t1);
        let a = s.plan(&w, t1);
        assert_eq!(
            a,
            vec![Action::SwitchToHttp {
                segment: 7,
                peer: PeerHandle(1),
                base: 0,
                from_byte: 100_000
            }]
        );
        assert_eq!(s.download_source(7), Some(Source::Http(0)));
    }

    #[test]
    fn a_segment_only_loading_at_a_peer_is_asked_of_it_unless_relays_are_off() {
        let now = Instant::now();
        for relays in [true, false] {
            let cfg = SchedulerConfig {
                request_from_loading: relays,
                ..SchedulerConfig::default()
            };
            let mut s = Scheduler::new(cfg, 1, false, 1);
            s.add_peer(PeerHandle(1), now);
            s.announce(PeerHandle(1), &[], &[5]);
            let a = s.plan(&[seg(5, now, 30.0, 500_000)], now);
            let expected = if relays {
                vec![Action::StartP2p {
                    segment: 5,
                    peer: PeerHandle(1),
                }]
            } else {
                vec![]
            };
            assert_eq!(a, expected, "relays {relays}");
        }
    }

    #[test]
    fn fast_peer_transfer_is_kept() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 1, false, 1);
        s.add_peer(PeerHandle(1), t0);
        s.announce(PeerHandle(1), &[7], &[]);
        let w = [seg(7, t0, 12.0, 1_000_000)];
        s.plan(&w, t0);
        let t1 = t0 + Duration::from_secs(1);
        s.progress(7, 600_000, Some(1_000_000), t1);
        assert!(s.plan(&w, t1).is_empty());
    }

    #[test]
    fn failed_base_is_backed_off_and_mirror_used() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 2, false, 1);
        let w = [seg(1, t0, 1.0, 1000)];
        assert_eq!(
            s.plan(&w, t0),
            vec![Action::StartHttp {
                segment: 1,
                base: 0,
                from_byte: 0
            }]
        );
        s.failed(1, t0);
        assert_eq!(
            s.plan(&w, t0),
            vec![Action::StartHttp {
                segment: 1,
                base: 1,
                from_byte: 0
            }]
        );
        // After the back-off the origin is preferred again.
        s.completed(1, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(s.pick_base(later), 0);
    }

    #[test]
    fn vod_prefetch_is_bounded_by_the_window() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 1, false, 1);
        s.add_peer(PeerHandle(1), t0);
        let ids: Vec<SegmentId> = (0..100).collect();
        s.announce(PeerHandle(1), &ids, &[]);
        let wanted: Vec<WantedSegment> = (0..100)
            .map(|i| seg(i, t0, 10.0 + 4.0 * i as f64, 100_000))
            .collect();
        let mut started = 0;
        // Even with all downloads completing instantly, nothing beyond 60 s ahead is fetched.
        let mut done = BTreeSet::new();
        for _ in 0..50 {
            let left: Vec<WantedSegment> = wanted
                .iter()
                .filter(|w| !done.contains(&w.id))
                .cloned()
                .collect();
            for a in s.plan(&left, t0) {
                if let Action::StartP2p { segment, .. } | Action::StartHttp { segment, .. } = a {
                    started += 1;
                    assert!(segment <= 12, "segment {segment} is beyond the window");
                    s.completed(segment, t0);
                    done.insert(segment);
                }
            }
        }
        assert!(started >= 10);
    }

    #[test]
    fn concurrency_limits_hold() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(SchedulerConfig::default(), 1, false, 1);
        for p in 0..10 {
            s.add_peer(PeerHandle(p), t0);
            s.announce(PeerHandle(p), &(0..20).collect::<Vec<_>>(), &[]);
        }
        let wanted: Vec<WantedSegment> = (0..20)
            .map(|i| seg(i, t0, if i < 5 { 1.0 } else { 30.0 }, 100_000))
            .collect();
        s.plan(&wanted, t0);
        let (h, p) = s.running();
        assert_eq!((h, p), (2, 3));
    }

    #[test]
    fn upload_budget_limits_rate() {
        let t0 = Instant::now();
        let mut b = UploadBudget::new(Some(1000), 1000);
        assert!(b.try_take(1000, t0));
        assert!(!b.try_take(500, t0));
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.try_take(500, t1));
        assert!(!b.try_take(500, t1));
        assert_eq!(b.ready_at(500, t1), Some(t1 + Duration::from_millis(500)));
    }

    #[test]
    fn baseline_loads_high_demand_over_http_and_the_rest_from_peers() {
        let t0 = Instant::now();
        let cfg = SchedulerConfig {
            policy: Policy::Baseline,
            ..SchedulerConfig::default()
        };
        let mut s = Scheduler::new(cfg, 1, false, 1);
        s.add_peer(PeerHandle(1), t0);
        s.announce(PeerHandle(1), &[10], &[]);
        let a = s.plan(&[seg(1, t0, 5.0, 1000), seg(10, t0, 40.0, 1000)], t0);
        assert!(a.contains(&Action::StartHttp {
            segment: 1,
            base: 0,
            from_byte: 0
        }));
        assert!(a.contains(&Action::StartP2p {
            segment: 10,
            peer: PeerHandle(1)
        }));
    }

    #[test]
    fn early_http_waits_for_a_new_peers_first_announcement() {
        let t0 = Instant::now();
        let http_starts = |a: &[Action]| {
            a.iter()
                .filter_map(|a| match a {
                    Action::StartHttp { segment, .. } => Some(*segment),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        for live in [false, true] {
            // Segment 0 is urgent, 3 is due in 10 s (within the VOD HTTP lead, and at the live
            // edge): the channel to a peer just opened, its announcement is on the way.
            let wanted = [seg(0, t0, 0.5, 100_000), seg(3, t0, 10.0, 100_000)];
            let mut s = Scheduler::new(SchedulerConfig::default(), 1, live, 1);
            s.add_peer(PeerHandle(1), t0);
            assert_eq!(http_starts(&s.plan(&wanted, t0)), vec![0], "live {live}");
            // It announces 3: that comes from the peer.
            let t1 = t0 + Duration::from_millis(20);
            s.completed(0, t1);
            s.announce(PeerHandle(1), &[3], &[]);
            assert_eq!(
                s.plan(&wanted[1..], t1),
                vec![Action::StartP2p {
                    segment: 3,
                    peer: PeerHandle(1)
                }],
                "live {live}"
            );
            // A peer that never announces holds nothing back for longer than the wait (VOD, where
            // an unannounced segment within the lead goes to HTTP at once).
            if !live {
                let mut s = Scheduler::new(SchedulerConfig::default(), 1, live, 1);
                s.add_peer(PeerHandle(1), t0);
                assert!(http_starts(&s.plan(&wanted[1..], t0)).is_empty());
                let late = t0 + SchedulerConfig::default().first_announce_wait;
                let wanted_late = [seg(3, late, 9.5, 100_000)];
                assert_eq!(http_starts(&s.plan(&wanted_late, late)), vec![3]);
                // Once some peer has announced, a newcomer's silence holds nothing back.
                let mut s = Scheduler::new(SchedulerConfig::default(), 1, live, 1);
                s.add_peer(PeerHandle(1), t0);
                s.announce(PeerHandle(1), &[], &[]);
                s.add_peer(PeerHandle(2), t0);
                assert_eq!(http_starts(&s.plan(&wanted[1..], t0)), vec![3]);
            }
        }
    }
}
