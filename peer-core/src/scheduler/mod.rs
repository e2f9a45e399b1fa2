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

mod baseline;
mod budget;
mod config;
mod segswarm;

pub use self::budget::UploadBudget;
pub use self::config::SchedulerConfig;

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

    /// The swarm's size as the tracker reports it (seeders + leechers), used for live seeding.
    pub fn set_swarm_size(&mut self, peers: usize) {
        self.swarm_size = Some(peers);
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
mod tests;
