//! Download scheduling: for every wanted segment, which peer or which HTTP base URL, and when.
//!
//! The [`Scheduler`] is a policy over the engine's download table
//! ([`DownloadTable`](crate::download_table::DownloadTable)): the engine tells it what peers
//! announce and how each finished transfer went (its sources' throughput), and
//! [`Scheduler::plan`] reads the wanted segments and the table ([`PlanView`]) and returns the
//! [`Action`]s to take now; the engine carries them out and keeps the table. Two policies share
//! this state:
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

use crate::download_table::Transfer;
use crate::rng::{self, CoreRng};
use crate::time::Instant;
use crate::vecmap::VecMap;
use crate::wire::SegmentId;

mod baseline;
mod budget;
mod config;
mod ewma;
mod pass;
mod segment_set;
mod segswarm;

pub use self::budget::UploadBudget;
pub use self::config::SchedulerConfig;
pub use self::ewma::Ewma;
pub use self::pass::PlanView;
use self::pass::{Pass, Running};
use self::segment_set::SegmentSet;

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

#[derive(Debug, Clone)]
struct PeerState {
    loaded: SegmentSet,
    http_loading: SegmentSet,
    rate: Ewma,
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
            busy_until: None,
            awaiting_announce_since: Some(now),
        });
    }

    /// A peer left (the engine drops its download).
    pub fn remove_peer(&mut self, peer: PeerHandle) {
        self.peers.remove(&peer);
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

    /// Measured (or assumed) throughput of a peer, bytes/s.
    pub fn peer_rate(&self, peer: PeerHandle) -> Option<f64> {
        self.peers.get(&peer).map(|p| p.rate.get())
    }

    /// A transfer of `segment` ended with all `held` bytes; updates its source's throughput (and
    /// notes that a peer source holds the segment).
    pub fn completed(&mut self, segment: SegmentId, transfer: &Transfer, held: u64, now: Instant) {
        let secs = now
            .saturating_duration_since(transfer.started)
            .as_secs_f64()
            .max(1e-3);
        let sample = held.saturating_sub(transfer.from_byte) as f64 / secs;
        let alpha = self.config.ewma_alpha;
        match transfer.source {
            Source::Http(b) => {
                if let Some(base) = self.bases.get_mut(b) {
                    base.rate.add(sample, alpha);
                    base.failures = 0;
                }
            }
            Source::Peer(p) => {
                if let Some(peer) = self.peers.get_mut(&p) {
                    peer.rate.add(sample, alpha);
                    peer.loaded.insert(segment);
                }
            }
        }
    }

    /// A transfer of `segment` from `source` failed (HTTP error, bad data). HTTP failures back the
    /// base URL off; a peer failure forgets that the peer has the segment and counts as a very
    /// slow transfer.
    pub fn failed(&mut self, segment: SegmentId, source: Source, now: Instant) {
        match source {
            Source::Http(b) => self.fail_base(b, now),
            Source::Peer(p) => {
                if let Some(peer) = self.peers.get_mut(&p) {
                    peer.loaded.remove(&segment);
                    let slow = peer.rate.get() * 0.25;
                    peer.rate.add(slow, self.config.ewma_alpha);
                }
            }
        }
    }

    /// The peer answered `SegmentAbsent` (it is at its upload limit, or dropped the segment): it
    /// is not asked again for [`SchedulerConfig::peer_busy_backoff`].
    pub fn absent(&mut self, peer: PeerHandle, now: Instant) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.busy_until = Some(now + self.config.peer_busy_backoff);
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

    /// An HTTP download of `segment` from its start, to begin now outside [`Scheduler::plan`]
    /// (e.g. after a peer sent a segment with a bad hash).
    pub fn http_now(&self, segment: SegmentId, now: Instant) -> Action {
        Action::StartHttp {
            segment,
            base: self.pick_base(now),
            from_byte: 0,
        }
    }

    fn start_http(&self, pass: &mut Pass, segment: SegmentId, from_byte: u64, now: Instant) {
        let base = self.pick_base(now);
        pass.running.insert(
            segment,
            Running::starting(Source::Http(base), from_byte, None, now),
        );
        pass.actions.push(Action::StartHttp {
            segment,
            base,
            from_byte,
        });
    }

    /// Moves `segment`'s peer transfer to HTTP from `from_byte`, keeping its bytes.
    fn switch_to_http(
        &self,
        pass: &mut Pass,
        segment: SegmentId,
        peer: PeerHandle,
        from_byte: u64,
        total: Option<u64>,
        now: Instant,
    ) {
        let base = self.pick_base(now);
        pass.running.insert(
            segment,
            Running::starting(Source::Http(base), from_byte, total, now),
        );
        pass.actions.push(Action::SwitchToHttp {
            segment,
            peer,
            base,
            from_byte,
        });
    }

    fn start_p2p(pass: &mut Pass, segment: SegmentId, peer: PeerHandle, now: Instant) {
        pass.running
            .insert(segment, Running::starting(Source::Peer(peer), 0, None, now));
        pass.actions.push(Action::StartP2p { segment, peer });
    }

    /// Free peers that announced `segment` as loaded, fastest first (ties by handle).
    fn free_holders(
        &self,
        pass: &Pass,
        segment: SegmentId,
        now: Instant,
    ) -> Vec<(PeerHandle, f64)> {
        let mut v: Vec<(PeerHandle, f64)> = self
            .peers
            .iter()
            .filter(|(h, p)| {
                !pass.busy(**h)
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
    fn free_loading_holders(
        &self,
        pass: &Pass,
        segment: SegmentId,
        now: Instant,
    ) -> Vec<(PeerHandle, f64)> {
        let mut v: Vec<(PeerHandle, f64)> = self
            .peers
            .iter()
            .filter(|(h, p)| {
                !pass.busy(**h)
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

    /// Decides what to do now from the wanted segments and the downloads in flight. Downloads of
    /// segments no longer wanted are aborted.
    pub fn plan(&mut self, view: &PlanView, now: Instant) -> Vec<Action> {
        let wanted = view.wanted;
        let mut pass = Pass::new(view.downloads);
        // Drop downloads of segments that are no longer wanted.
        let mut wanted_ids: Vec<SegmentId> = wanted.iter().map(|w| w.id).collect();
        if !wanted_ids.is_sorted() {
            wanted_ids.sort_unstable();
        }
        let stale: Vec<SegmentId> = pass
            .running
            .keys()
            .filter(|s| wanted_ids.binary_search(s).is_err())
            .copied()
            .collect();
        for s in stale {
            pass.abort(s);
        }
        if let Some(first) = wanted.first() {
            self.seed_decisions.retain(|s, _| *s >= first.id);
        }
        let timeout = self.config.http_stall_timeout;
        self.abort_silent(&mut pass, now, timeout, |s| matches!(s, Source::Http(_)));
        self.first_plan.get_or_insert(now);
        match self.config.policy {
            Policy::Segswarm => self.plan_segswarm(wanted, now, &mut pass),
            Policy::Baseline => self.plan_baseline(wanted, now, &mut pass),
        }
        pass.actions
    }

    /// Aborts (as failed) the downloads from sources matching `of_kind` that received nothing
    /// for longer than `timeout`.
    fn abort_silent(
        &mut self,
        pass: &mut Pass,
        now: Instant,
        timeout: Duration,
        of_kind: impl Fn(&Source) -> bool,
    ) {
        let stalled: Vec<SegmentId> = pass
            .running
            .iter()
            .filter(|(_, d)| {
                of_kind(&d.source) && now.saturating_duration_since(d.last_progress) > timeout
            })
            .map(|(s, _)| *s)
            .collect();
        for s in stalled {
            self.fail_in_pass(pass, s, now);
        }
    }

    /// Aborts `segment`'s download as failed ([`Scheduler::failed`]).
    fn fail_in_pass(&mut self, pass: &mut Pass, segment: SegmentId, now: Instant) {
        if let Some(d) = pass.abort(segment) {
            self.failed(segment, d.source, now);
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
