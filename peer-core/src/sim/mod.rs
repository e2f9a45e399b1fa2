//! A deterministic swarm simulator: N [`Engine`]s, an in-memory tracker, a simulated network, an
//! HTTP origin and a simulated player per viewer, driven by one event queue.
//!
//! Determinism: one seeded generator draws the scenario (bandwidths, latencies, reachability, join
//! and leave times) before anything runs, so every policy sees the same viewers; engines get seeds
//! derived from it; events are ordered by (time, sequence number); all maps are ordered. The wall
//! clock is read once for a base [`Instant`]; everything else is an offset from it.
//!
//! Scale: segment payloads are shrunk by a constant factor (to [`SimConfig::scaled_segment_bytes`])
//! together with every bandwidth and message size, so transfer times are those of the real sizes
//! while memory and hashing stay small. Byte figures in the [`Report`] are scaled back to real bytes.
//!
//! Network model: each viewer has an upload and a download rate and a one-way latency; a message
//! leaves after the sender's earlier messages (upload FIFO), crosses both latencies and the
//! receiver's download rate, and messages of one connection keep their order. Command messages
//! cost latency only. HTTP responses come chunk by chunk through the viewer's
//! download FIFO after a time to first byte. A share of viewers is "unreachable": two of them cannot
//! connect to each other (their ICE fails after a few seconds).

pub mod tracker;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::{Engine, EngineConfig, HttpHandle, Input, Output, PeerHandle, SegmentInfo};
use crate::integrity::SegmentManifest;
use crate::scheduler::Policy;
use crate::time::Instant;
use crate::wire::SegmentId;
use tracker::{MemTracker, MemTrackerConfig};

/// Live stream or video on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live stream with a sliding playlist.
    Live,
    /// A video on demand watched from the start.
    Vod,
}

/// Which delivery the viewers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPolicy {
    /// segswarm's scheduler.
    Segswarm,
    /// p2p-media-loader v2's default scheduling.
    Baseline,
    /// No peers at all: every byte over HTTP (the reference for stall attribution).
    HttpOnly,
}

impl SimPolicy {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            SimPolicy::Segswarm => "segswarm",
            SimPolicy::Baseline => "baseline",
            SimPolicy::HttpOnly => "http-only",
        }
    }
}

/// A scenario. Every field has a documented default ([`SimConfig::default`]).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Viewers over the whole run. Default 100.
    pub viewers: usize,
    /// Live or VOD. Default live.
    pub mode: Mode,
    /// Simulated seconds. Default 300.
    pub seconds: f64,
    /// Seed of the scenario and of every engine. Default 1.
    pub seed: u64,
    /// Delivery policy. Default segswarm.
    pub policy: SimPolicy,
    /// Video bitrate, bits/s. Default 2 000 000.
    pub bitrate_bps: f64,
    /// Segment duration, seconds. Default 4.
    pub segment_seconds: f64,
    /// Mean peer upload rate as a multiple of the bitrate. Default 1.5.
    pub upload_ratio: f64,
    /// Mean download rate as a multiple of the bitrate. Default 8.
    pub download_ratio: f64,
    /// Each viewer's rates are the mean times a uniform factor in `[1 - spread, 1 + spread]`.
    /// Default 0.3.
    pub bandwidth_spread: f64,
    /// Share of viewers that cannot connect to each other (two such viewers never connect).
    /// Default 0.1.
    pub unreachable_share: f64,
    /// One-way latency of a viewer's access link, milliseconds, uniform in this range.
    /// Default 10..60.
    pub latency_ms: (f64, f64),
    /// Viewers join uniformly over this many seconds from the start. Default 60.
    pub join_window: f64,
    /// Share of viewers that leave before the end, at a uniform time after joining. Default 0.1.
    pub leave_share: f64,
    /// Live: segments in the sliding playlist. Default 15 (one minute of 4 s segments).
    pub live_playlist_segments: usize,
    /// Live: the player starts this many segments behind the live edge. Default 5.
    pub live_sync_segments: usize,
    /// The player requests segments while its buffer is shorter than this, seconds. Default 15
    /// (p2p-media-loader sets hls.js's `maxBufferLength` to its 15 s high-demand window).
    pub player_buffer_secs: f64,
    /// Seconds buffered before playback starts or resumes after a stall. Default 4.
    pub startup_buffer_secs: f64,
    /// HTTP time to first byte, milliseconds. Default 100.
    pub http_ttfb_ms: f64,
    /// Most peer connections per viewer. Default 20.
    pub max_peers: usize,
    /// Re-announce interval the tracker sends, seconds. Default 120.
    pub tracker_interval_secs: u64,
    /// Size a segment is shrunk to, bytes (see the module docs). Default 2048.
    pub scaled_segment_bytes: usize,
    /// Data-channel message size in real bytes (scaled like segments). Default 65535.
    pub message_bytes: usize,
    /// Verify peers' segments against a SHA-256 manifest. Default true.
    pub verify: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            viewers: 100,
            mode: Mode::Live,
            seconds: 300.0,
            seed: 1,
            policy: SimPolicy::Segswarm,
            bitrate_bps: 2_000_000.0,
            segment_seconds: 4.0,
            upload_ratio: 1.5,
            download_ratio: 8.0,
            bandwidth_spread: 0.3,
            unreachable_share: 0.1,
            latency_ms: (10.0, 60.0),
            join_window: 60.0,
            leave_share: 0.1,
            live_playlist_segments: 15,
            live_sync_segments: 5,
            player_buffer_secs: 15.0,
            startup_buffer_secs: 4.0,
            http_ttfb_ms: 100.0,
            max_peers: 20,
            tracker_interval_secs: 120,
            scaled_segment_bytes: 2048,
            message_bytes: 65_535,
            verify: true,
        }
    }
}

/// Results of one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Policy name.
    pub policy: String,
    /// "live" or "vod".
    pub mode: String,
    /// Viewers over the run.
    pub viewers: usize,
    /// Simulated seconds.
    pub seconds: f64,
    /// Bytes from peers over all bytes received.
    pub p2p_share: f64,
    /// Bytes served by the origin per viewer (real bytes).
    pub origin_bytes_per_viewer: f64,
    /// Bytes served by the origin in total (real bytes).
    pub origin_bytes: f64,
    /// Stalls (playback waiting for data after it started).
    pub stall_count: u64,
    /// Seconds spent stalled, all viewers.
    pub stall_seconds: f64,
    /// 95th percentile of the time from joining to playing, seconds.
    pub startup_p95_s: f64,
    /// Live: 95th percentile of the distance to the live edge, seconds.
    pub live_latency_p95_s: Option<f64>,
    /// Segments delivered to players.
    pub segments_delivered: u64,
    /// P2P transfers moved to HTTP before their deadline.
    pub p2p_rescued_by_http: u64,
    /// Mean open peer connections per viewer, sampled each second.
    pub mean_peers: f64,
    /// Peers destroyed for protocol violations or bad data.
    pub peers_destroyed: u64,
    /// Per viewer stall counts (index = viewer), for stall attribution.
    #[serde(skip)]
    pub stalls_per_viewer: Vec<u64>,
}

#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave(usize),
    Timer(usize, u64),
    Deliver(usize, Input),
    TrackerIn(usize, String),
    HttpNext(usize, HttpHandle),
    HttpData(usize, HttpHandle, usize, usize),
    PlayerTick(usize),
    Publish(SegmentId),
    Sample,
    AnswerTimeout(usize, PeerHandle),
}

struct Scheduled {
    t: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PlayState {
    NotJoined,
    Startup,
    Playing,
    Stalled,
    Ended,
    Left,
}

#[derive(Debug)]
struct Player {
    state: PlayState,
    position: f64,
    buffer_end: f64,
    next: SegmentId,
    pending: Option<SegmentId>,
    last_update: u64,
    joined_at: u64,
    startup: Option<f64>,
    stalls: u64,
    stall_secs: f64,
    stall_started: u64,
    last_playback_sent: u64,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    other: usize,
    other_handle: PeerHandle,
    connected: bool,
    /// Arrival time of the last message sent over this link (keeps messages in order).
    last_arrival: u64,
}

#[derive(Debug)]
struct Flow {
    segment: SegmentId,
    offset: usize,
    started: bool,
}

struct Viewer {
    engine: Option<Engine>,
    up_rate: f64,
    down_rate: f64,
    latency_us: u64,
    unreachable: bool,
    up_free: u64,
    down_free: u64,
    links: BTreeMap<PeerHandle, Link>,
    flows: BTreeMap<HttpHandle, Flow>,
    timer_at: Option<u64>,
    player: Player,
    join_at: u64,
    leave_at: Option<u64>,
    final_stats: Option<crate::engine::Stats>,
}

/// The simulator. Build with [`Simulation::new`], run with [`Simulation::run`].
pub struct Simulation {
    cfg: SimConfig,
    base: Instant,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    viewers: Vec<Viewer>,
    tracker: MemTracker,
    scale: f64,
    segment_bytes: usize,
    chunk: usize,
    payloads: BTreeMap<SegmentId, Bytes>,
    manifest: SegmentManifest,
    live_offset: f64,
    newest: SegmentId,
    vod_segments: SegmentId,
    latency_samples: Vec<f64>,
    peer_samples: (u64, u64),
    info_hash: [u8; 20],
}

const US: f64 = 1_000_000.0;

fn us(secs: f64) -> u64 {
    (secs.max(0.0) * US).round() as u64
}

impl Simulation {
    /// Draws the scenario. The same config (and seed) gives the same viewers for every policy.
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let real_segment = cfg.bitrate_bps / 8.0 * cfg.segment_seconds;
        let segment_bytes = cfg.scaled_segment_bytes.max(64);
        let scale = (real_segment / segment_bytes as f64).max(1.0);
        let chunk = ((cfg.message_bytes as f64 / scale).floor() as usize).max(16);
        let byte_rate = cfg.bitrate_bps / 8.0 / scale;
        let mut viewers = Vec::with_capacity(cfg.viewers);
        for i in 0..cfg.viewers {
            let f_up = 1.0 + cfg.bandwidth_spread * (2.0 * rng.random::<f64>() - 1.0);
            let f_down = 1.0 + cfg.bandwidth_spread * (2.0 * rng.random::<f64>() - 1.0);
            let lat =
                cfg.latency_ms.0 + (cfg.latency_ms.1 - cfg.latency_ms.0) * rng.random::<f64>();
            let unreachable = rng.random::<f64>() < cfg.unreachable_share;
            let join = if i == 0 {
                0.0
            } else {
                cfg.join_window * rng.random::<f64>()
            };
            let leaves = rng.random::<f64>() < cfg.leave_share;
            let leave_at = leaves.then(|| join + (cfg.seconds - join) * rng.random::<f64>());
            viewers.push(Viewer {
                engine: None,
                up_rate: byte_rate * cfg.upload_ratio * f_up,
                down_rate: byte_rate * cfg.download_ratio * f_down,
                latency_us: us(lat / 1000.0),
                unreachable,
                up_free: 0,
                down_free: 0,
                links: BTreeMap::new(),
                flows: BTreeMap::new(),
                timer_at: None,
                player: Player {
                    state: PlayState::NotJoined,
                    position: 0.0,
                    buffer_end: 0.0,
                    next: 0,
                    pending: None,
                    last_update: 0,
                    joined_at: 0,
                    startup: None,
                    stalls: 0,
                    stall_secs: 0.0,
                    stall_started: 0,
                    last_playback_sent: 0,
                },
                join_at: us(join),
                leave_at: leave_at.map(us),
                final_stats: None,
            });
        }
        let live_offset = cfg.live_playlist_segments as f64 * cfg.segment_seconds;
        let vod_segments =
            ((cfg.seconds + cfg.join_window) / cfg.segment_seconds).ceil() as SegmentId + 2;
        let seed = cfg.seed;
        Self {
            tracker: MemTracker::new(
                MemTrackerConfig {
                    interval_secs: cfg.tracker_interval_secs,
                    ..MemTrackerConfig::default()
                },
                seed ^ 0x7eac,
            ),
            cfg,
            base: Instant::now(),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            viewers,
            scale,
            segment_bytes,
            chunk,
            payloads: BTreeMap::new(),
            manifest: SegmentManifest::new(),
            live_offset,
            newest: -1,
            vod_segments,
            latency_samples: Vec::new(),
            peer_samples: (0, 0),
            info_hash: *b"segswarm-sim-swarm!!",
        }
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            t: t.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    fn instant(&self, t: u64) -> Instant {
        self.base + Duration::from_micros(t)
    }

    fn path(id: SegmentId) -> String {
        format!("seg/{id}.ts")
    }

    fn payload(&mut self, id: SegmentId) -> Bytes {
        if let Some(p) = self.payloads.get(&id) {
            return p.clone();
        }
        let mut r =
            StdRng::seed_from_u64(self.cfg.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut v = vec![0u8; self.segment_bytes];
        r.fill(&mut v[..]);
        let b = Bytes::from(v);
        self.manifest
            .insert(crate::integrity::file_name_of(&Self::path(id)), None, &b);
        self.payloads.insert(id, b.clone());
        b
    }

    fn segment_info(&mut self, id: SegmentId) -> SegmentInfo {
        self.payload(id);
        SegmentInfo {
            id,
            path: Self::path(id),
            start: id as f64 * self.cfg.segment_seconds,
            duration: self.cfg.segment_seconds,
            size_hint: Some(self.segment_bytes as u64),
            byte_range: None,
        }
    }

    fn playlist(&mut self) -> Vec<SegmentInfo> {
        match self.cfg.mode {
            Mode::Live => {
                let first = (self.newest - self.cfg.live_playlist_segments as SegmentId + 1).max(0);
                (first..=self.newest)
                    .map(|i| self.segment_info(i))
                    .collect()
            }
            Mode::Vod => (0..self.vod_segments)
                .map(|i| self.segment_info(i))
                .collect(),
        }
    }

    fn engine_config(&self, v: usize) -> EngineConfig {
        let mut peer_id = *b"-PM0203-000000000000";
        let digits = format!("{v:012}");
        peer_id[8..20].copy_from_slice(&digits.as_bytes()[digits.len() - 12..]);
        let mut c = EngineConfig::new(
            peer_id,
            self.info_hash,
            self.cfg.mode == Mode::Live,
            vec!["http://origin.sim/".into()],
        );
        c.scheduler.policy = match self.cfg.policy {
            SimPolicy::Baseline => Policy::Baseline,
            _ => Policy::Segswarm,
        };
        // The baseline models p2p-media-loader peers: they serve only stored segments.
        c.relay_partial = self.cfg.policy == SimPolicy::Segswarm;
        c.scheduler.request_from_loading = c.relay_partial;
        let byte_rate = self.cfg.bitrate_bps / 8.0 / self.scale;
        c.scheduler.initial_peer_rate = byte_rate * self.cfg.upload_ratio * 0.5;
        c.scheduler.initial_http_rate = byte_rate * self.cfg.download_ratio;
        c.scheduler.default_segment_bytes = self.segment_bytes as u64;
        c.store_max_bytes = match self.cfg.mode {
            Mode::Live => (self.cfg.live_playlist_segments as u64 + 5) * self.segment_bytes as u64,
            Mode::Vod => (self.vod_segments as u64 + 5) * self.segment_bytes as u64,
        };
        c.max_peers = self.cfg.max_peers;
        c.max_message_bytes = self.chunk;
        c.upload_rate = Some(self.viewers[v].up_rate.max(1.0) as u64);
        c.upload_burst = (2 * self.chunk) as u64;
        // p2p-media-loader peers answer a busy request with `SegmentAbsent` at once.
        if self.cfg.policy != SimPolicy::Segswarm {
            c.max_queued_uploads = 0;
        }
        c.seed = self.cfg.seed.wrapping_mul(1_000_003).wrapping_add(v as u64);
        c
    }

    /// Runs the scenario to the end and reports.
    pub fn run(mut self) -> Report {
        let end = us(self.cfg.seconds);
        for v in 0..self.viewers.len() {
            let t = self.viewers[v].join_at;
            self.push(t, Ev::Join(v));
            if let Some(l) = self.viewers[v].leave_at {
                self.push(l, Ev::Leave(v));
            }
        }
        if self.cfg.mode == Mode::Live {
            // Segments up to the live edge exist at the start.
            self.newest = self.cfg.live_playlist_segments as SegmentId - 1;
            let next = self.newest + 1;
            let t = self.publish_time(next);
            self.push(t, Ev::Publish(next));
        }
        self.push(us(1.0), Ev::Sample);
        while let Some(s) = self.queue.pop() {
            if s.t > end {
                break;
            }
            self.now = s.t;
            self.dispatch(s.ev);
        }
        self.now = end;
        self.report()
    }

    fn publish_time(&self, id: SegmentId) -> u64 {
        us((id + 1) as f64 * self.cfg.segment_seconds - self.live_offset)
    }

    fn alive(&self, v: usize) -> bool {
        self.viewers[v].engine.is_some()
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Join(v) => self.join(v),
            Ev::Leave(v) => self.leave(v),
            Ev::Timer(v, t) => {
                if self.viewers[v].timer_at == Some(t) {
                    self.viewers[v].timer_at = None;
                    self.input(v, Input::Timer);
                }
            }
            Ev::Deliver(v, input) => self.input(v, input),
            Ev::TrackerIn(v, text) => {
                if !self.alive(v) && !text.contains("stopped") {
                    return;
                }
                let out = self.tracker.handle(v, &text);
                for (to, frame) in out {
                    let t = self.now + 20_000;
                    self.push(t, Ev::Deliver(to, Input::TrackerMessage(frame)));
                }
            }
            Ev::HttpNext(v, h) => self.http_next(v, h),
            Ev::HttpData(v, h, offset, len) => {
                let Some(flow) = self.viewers[v].flows.get(&h) else {
                    return;
                };
                let seg = flow.segment;
                let data = self.payload(seg).slice(offset..offset + len);
                if let Some(f) = self.viewers[v].flows.get_mut(&h) {
                    f.offset = offset + len;
                }
                self.input(v, Input::HttpChunk { request: h, data });
                self.http_next(v, h);
            }
            Ev::PlayerTick(v) => {
                if self.alive(v) {
                    self.player_update(v);
                    let t = self.now + 200_000;
                    self.push(t, Ev::PlayerTick(v));
                }
            }
            Ev::Publish(id) => {
                self.newest = id;
                let pl = self.playlist();
                for v in 0..self.viewers.len() {
                    if self.alive(v) {
                        self.input(v, Input::Playlist(pl.clone()));
                        if self.cfg.verify {
                            let m = self.manifest.clone();
                            self.input(v, Input::Manifest(m));
                        }
                    }
                }
                let t = self.publish_time(id + 1);
                self.push(t, Ev::Publish(id + 1));
            }
            Ev::Sample => {
                let edge = self.now as f64 / US + self.live_offset;
                for v in 0..self.viewers.len() {
                    let Some(e) = self.viewers[v].engine.as_ref() else {
                        continue;
                    };
                    self.peer_samples.0 += e.connected_peers() as u64;
                    self.peer_samples.1 += 1;
                    let p = &self.viewers[v].player;
                    if self.cfg.mode == Mode::Live
                        && matches!(p.state, PlayState::Playing | PlayState::Stalled)
                    {
                        self.latency_samples.push(edge - p.position);
                    }
                }
                let t = self.now + 1_000_000;
                self.push(t, Ev::Sample);
            }
            Ev::AnswerTimeout(v, h) => {
                if self.viewers[v].links.get(&h).is_some_and(|l| !l.connected) {
                    self.viewers[v].links.remove(&h);
                    self.input(v, Input::PeerClosed(h));
                }
            }
        }
    }

    fn join(&mut self, v: usize) {
        let cfg = self.engine_config(v);
        let mut engine = Engine::new(cfg);
        let now = self.instant(self.now);
        let pl = self.playlist();
        engine.handle_input(Input::Playlist(pl), now);
        if self.cfg.verify {
            engine.handle_input(Input::Manifest(self.manifest.clone()), now);
        }
        self.viewers[v].engine = Some(engine);
        let d = self.cfg.segment_seconds;
        let start = match self.cfg.mode {
            Mode::Live => (self.newest - self.cfg.live_sync_segments as SegmentId + 1).max(0),
            Mode::Vod => 0,
        };
        let p = &mut self.viewers[v].player;
        p.state = PlayState::Startup;
        p.next = start;
        p.position = start as f64 * d;
        p.buffer_end = p.position;
        p.joined_at = self.now;
        p.last_update = self.now;
        if self.cfg.policy != SimPolicy::HttpOnly {
            self.input(v, Input::TrackerConnected);
        }
        self.player_update(v);
        let t = self.now + 200_000;
        self.push(t, Ev::PlayerTick(v));
    }

    fn leave(&mut self, v: usize) {
        if !self.alive(v) {
            return;
        }
        self.player_advance(v);
        let p = &mut self.viewers[v].player;
        if p.state == PlayState::Stalled {
            p.stall_secs += (self.now - p.stall_started) as f64 / US;
        }
        p.state = PlayState::Left;
        self.input(v, Input::Shutdown);
        let links: Vec<(PeerHandle, Link)> = std::mem::take(&mut self.viewers[v].links)
            .into_iter()
            .collect();
        for (_, l) in links {
            if self.viewers[l.other]
                .links
                .remove(&l.other_handle)
                .is_some()
            {
                let t = self.now + self.viewers[v].latency_us + self.viewers[l.other].latency_us;
                self.push(t, Ev::Deliver(l.other, Input::PeerClosed(l.other_handle)));
            }
        }
        self.viewers[v].flows.clear();
        let engine = self.viewers[v].engine.take();
        self.viewers[v].final_stats = engine.map(|e| e.stats().clone());
        self.tracker.disconnect(v);
    }

    fn input(&mut self, v: usize, input: Input) {
        let now = self.instant(self.now);
        let Some(engine) = self.viewers[v].engine.as_mut() else {
            return;
        };
        engine.handle_input(input, now);
        self.drain(v);
    }

    fn drain(&mut self, v: usize) {
        loop {
            let Some(out) = self.viewers[v]
                .engine
                .as_mut()
                .and_then(|e| e.poll_output())
            else {
                break;
            };
            self.output(v, out);
        }
        let Some(engine) = self.viewers[v].engine.as_mut() else {
            return;
        };
        if let Some(t) = engine.poll_timeout() {
            let t = us(t.saturating_duration_since(self.base).as_secs_f64()).max(self.now + 1000);
            let cur = self.viewers[v].timer_at;
            if cur.is_none_or(|c| t < c || c < self.now) {
                self.viewers[v].timer_at = Some(t);
                self.push(t, Ev::Timer(v, t));
            }
        }
    }

    fn parse_sdp(sdp: &str) -> Option<(usize, PeerHandle)> {
        let mut it = sdp.split(':').skip(1);
        let v = it.next()?.parse().ok()?;
        let h = it.next()?.parse().ok()?;
        Some((v, PeerHandle(h)))
    }

    fn output(&mut self, v: usize, out: Output) {
        let now = self.now;
        match out {
            Output::TrackerSend(text) => {
                let t = now + 20_000;
                self.push(t, Ev::TrackerIn(v, text));
            }
            Output::CreateOffers(handles) => {
                let offers = handles
                    .into_iter()
                    .map(|h| (h, format!("o:{v}:{}", h.0)))
                    .collect();
                self.push(now + 5_000, Ev::Deliver(v, Input::OffersCreated(offers)));
            }
            Output::CreateAnswer { peer, offer_sdp } => {
                let Some((o, oh)) = Self::parse_sdp(&offer_sdp) else {
                    return;
                };
                if o >= self.viewers.len() || !self.alive(o) {
                    self.push(now + 5_000_000, Ev::AnswerTimeout(v, peer));
                    self.viewers[v].links.insert(
                        peer,
                        Link {
                            other: o,
                            other_handle: oh,
                            connected: false,
                            last_arrival: 0,
                        },
                    );
                    return;
                }
                self.viewers[v].links.insert(
                    peer,
                    Link {
                        other: o,
                        other_handle: oh,
                        connected: false,
                        last_arrival: 0,
                    },
                );
                self.viewers[o].links.insert(
                    oh,
                    Link {
                        other: v,
                        other_handle: peer,
                        connected: false,
                        last_arrival: 0,
                    },
                );
                self.push(
                    now + 5_000,
                    Ev::Deliver(
                        v,
                        Input::AnswerCreated {
                            peer,
                            sdp: format!("a:{v}:{}", peer.0),
                        },
                    ),
                );
                self.push(now + 30_000_000, Ev::AnswerTimeout(v, peer));
            }
            Output::AcceptAnswer { peer, answer_sdp } => {
                let Some((a, ah)) = Self::parse_sdp(&answer_sdp) else {
                    return;
                };
                let ok_link = self.viewers[v]
                    .links
                    .get(&peer)
                    .is_some_and(|l| l.other == a && l.other_handle == ah);
                if !ok_link || !self.alive(a) {
                    self.viewers[v].links.remove(&peer);
                    self.push(now + 1_000_000, Ev::Deliver(v, Input::PeerClosed(peer)));
                    return;
                }
                let rtt = self.viewers[v].latency_us + self.viewers[a].latency_us;
                if self.viewers[v].unreachable && self.viewers[a].unreachable {
                    self.viewers[v].links.remove(&peer);
                    self.viewers[a].links.remove(&ah);
                    self.push(now + 5_000_000, Ev::Deliver(v, Input::PeerClosed(peer)));
                    self.push(now + 5_000_000, Ev::Deliver(a, Input::PeerClosed(ah)));
                    return;
                }
                for (x, hx) in [(v, peer), (a, ah)] {
                    if let Some(l) = self.viewers[x].links.get_mut(&hx) {
                        l.connected = true;
                    }
                }
                let t = now + rtt * 3;
                self.push(t, Ev::Deliver(v, Input::PeerConnected(peer)));
                self.push(t, Ev::Deliver(a, Input::PeerConnected(ah)));
            }
            Output::ClosePeer(h) => {
                if let Some(l) = self.viewers[v].links.remove(&h) {
                    if self.viewers[l.other]
                        .links
                        .remove(&l.other_handle)
                        .is_some()
                    {
                        let t = now + self.viewers[v].latency_us + self.viewers[l.other].latency_us;
                        self.push(t, Ev::Deliver(l.other, Input::PeerClosed(l.other_handle)));
                    }
                }
            }
            Output::SendToPeer {
                peer,
                data,
                segment_bytes,
            } => {
                let Some(l) = self.viewers[v].links.get(&peer).copied() else {
                    return;
                };
                if !l.connected {
                    return;
                }
                let w = l.other;
                let cost = if segment_bytes {
                    data.len() as f64
                } else {
                    0.0
                };
                let up = &mut self.viewers[v];
                let depart = up.up_free.max(now) + us(cost / up.up_rate);
                up.up_free = depart;
                let lat = up.latency_us + self.viewers[w].latency_us;
                // The download side is not a shared queue for peer messages (it is much faster than
                // the uploads feeding it); messages of one link keep their order.
                let mut arrive = depart + lat + us(cost / self.viewers[w].down_rate);
                if let Some(link) = self.viewers[v].links.get_mut(&peer) {
                    arrive = arrive.max(link.last_arrival);
                    link.last_arrival = arrive;
                }
                self.push(
                    arrive,
                    Ev::Deliver(
                        w,
                        Input::PeerMessage {
                            peer: l.other_handle,
                            data,
                        },
                    ),
                );
            }
            Output::HttpRequest {
                request,
                url,
                range_from,
                ..
            } => {
                let id: Option<SegmentId> = url
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.strip_suffix(".ts"))
                    .and_then(|n| n.parse().ok());
                let Some(id) = id else {
                    self.push(
                        now + 1000,
                        Ev::Deliver(
                            v,
                            Input::HttpFailed {
                                request,
                                reason: "404".into(),
                            },
                        ),
                    );
                    return;
                };
                let offset = (range_from.unwrap_or(0) as usize).min(self.segment_bytes);
                self.viewers[v].flows.insert(
                    request,
                    Flow {
                        segment: id,
                        offset,
                        started: false,
                    },
                );
                let t = now + us(self.cfg.http_ttfb_ms / 1000.0);
                self.push(t, Ev::HttpNext(v, request));
            }
            Output::HttpAbort(h) => {
                self.viewers[v].flows.remove(&h);
            }
            Output::SegmentReady { segment, .. } => {
                let p = &mut self.viewers[v].player;
                if p.pending == Some(segment) {
                    p.pending = None;
                    p.buffer_end += self.cfg.segment_seconds;
                    p.next = segment + 1;
                }
                self.player_update(v);
            }
            Output::SegmentFailed { segment, .. } => {
                let p = &mut self.viewers[v].player;
                if p.pending == Some(segment) {
                    // Fell out of the live window: skip ahead.
                    p.pending = None;
                    p.next = segment + 1;
                    p.buffer_end = p.buffer_end.max(p.next as f64 * self.cfg.segment_seconds);
                    p.position = p.position.max(segment as f64 * self.cfg.segment_seconds);
                }
            }
        }
    }

    fn http_next(&mut self, v: usize, h: HttpHandle) {
        let size = self.segment_bytes;
        let Some(flow) = self.viewers[v].flows.get_mut(&h) else {
            return;
        };
        if !flow.started {
            flow.started = true;
            let len = (size - flow.offset) as u64;
            self.input(
                v,
                Input::HttpStarted {
                    request: h,
                    content_length: Some(len),
                },
            );
        }
        let Some(flow) = self.viewers[v].flows.get(&h) else {
            return;
        };
        if flow.offset >= size {
            self.viewers[v].flows.remove(&h);
            self.input(v, Input::HttpCompleted(h));
            return;
        }
        let offset = flow.offset;
        let len = self.chunk.min(size - offset);
        let viewer = &mut self.viewers[v];
        viewer.down_free = viewer.down_free.max(self.now) + us(len as f64 / viewer.down_rate);
        let t = viewer.down_free;
        self.push(t, Ev::HttpData(v, h, offset, len));
    }

    fn player_advance(&mut self, v: usize) {
        let now = self.now;
        let d = self.cfg.segment_seconds;
        let end_of_video = self.vod_segments as f64 * d;
        let mode = self.cfg.mode;
        let p = &mut self.viewers[v].player;
        let dt = (now - p.last_update) as f64 / US;
        p.last_update = now;
        match p.state {
            PlayState::Startup
                if p.buffer_end - p.position >= self.cfg.startup_buffer_secs.min(d) - 1e-9 =>
            {
                p.state = PlayState::Playing;
                p.startup = Some((now - p.joined_at) as f64 / US);
            }
            PlayState::Playing => {
                p.position += dt;
                if mode == Mode::Vod && p.position >= end_of_video {
                    p.state = PlayState::Ended;
                } else if p.position >= p.buffer_end {
                    p.position = p.buffer_end;
                    p.state = PlayState::Stalled;
                    p.stalls += 1;
                    p.stall_started = now;
                }
            }
            PlayState::Stalled
                if p.buffer_end - p.position >= self.cfg.startup_buffer_secs.min(d) - 1e-9 =>
            {
                p.state = PlayState::Playing;
                p.stall_secs += (now - p.stall_started) as f64 / US;
            }
            _ => {}
        }
    }

    fn player_update(&mut self, v: usize) {
        if !self.alive(v) {
            return;
        }
        let before = self.viewers[v].player.state;
        self.player_advance(v);
        let d = self.cfg.segment_seconds;
        let (state, position, buffer_end, pending, next, last_sent) = {
            let p = &self.viewers[v].player;
            (
                p.state,
                p.position,
                p.buffer_end,
                p.pending,
                p.next,
                p.last_playback_sent,
            )
        };
        if matches!(
            state,
            PlayState::Left | PlayState::NotJoined | PlayState::Ended
        ) {
            return;
        }
        let available = match self.cfg.mode {
            Mode::Live => next <= self.newest,
            Mode::Vod => next < self.vod_segments,
        };
        if pending.is_none() && available && buffer_end - position < self.cfg.player_buffer_secs {
            self.viewers[v].player.pending = Some(next);
            self.input(v, Input::WantSegment(next));
        }
        let changed = before != self.viewers[v].player.state;
        if changed || self.now >= last_sent + 1_000_000 || last_sent == 0 {
            self.viewers[v].player.last_playback_sent = self.now.max(1);
            // While starting or stalled the playhead waits at `position`.
            let _ = d;
            self.input(v, Input::Playback(self.viewers[v].player.position));
        }
    }

    fn report(mut self) -> Report {
        let mut p2p = 0u64;
        let mut http = 0u64;
        let mut delivered = 0;
        let mut rescued = 0;
        let mut destroyed = 0;
        let mut stalls = 0;
        let mut stall_secs = 0.0;
        let mut startups = Vec::new();
        let mut per_viewer = Vec::new();
        let end = self.now;
        for v in 0..self.viewers.len() {
            if self.alive(v) {
                self.player_advance(v);
                let p = &mut self.viewers[v].player;
                if p.state == PlayState::Stalled {
                    p.stall_secs += (end - p.stall_started) as f64 / US;
                }
            }
            let vw = &self.viewers[v];
            let stats = vw
                .engine
                .as_ref()
                .map(|e| e.stats().clone())
                .or_else(|| vw.final_stats.clone())
                .unwrap_or_default();
            p2p += stats.p2p_bytes;
            http += stats.http_bytes;
            delivered += stats.segments_delivered;
            rescued += stats.stalls_avoided;
            destroyed += stats.peers_destroyed;
            stalls += vw.player.stalls;
            stall_secs += vw.player.stall_secs;
            per_viewer.push(vw.player.stalls);
            if let Some(s) = vw.player.startup {
                startups.push(s);
            } else if vw.player.state == PlayState::Startup {
                // Still starting at the end: count the time waited so far.
                startups.push((end - vw.player.joined_at) as f64 / US);
            }
        }
        let total = (p2p + http).max(1) as f64;
        let origin = http as f64 * self.scale;
        let latency =
            (self.cfg.mode == Mode::Live).then(|| percentile(&mut self.latency_samples, 0.95));
        Report {
            policy: self.cfg.policy.name().into(),
            mode: match self.cfg.mode {
                Mode::Live => "live".into(),
                Mode::Vod => "vod".into(),
            },
            viewers: self.cfg.viewers,
            seconds: self.cfg.seconds,
            p2p_share: p2p as f64 / total,
            origin_bytes_per_viewer: origin / self.cfg.viewers.max(1) as f64,
            origin_bytes: origin,
            stall_count: stalls,
            stall_seconds: (stall_secs * 1000.0).round() / 1000.0,
            startup_p95_s: percentile(&mut startups, 0.95),
            live_latency_p95_s: latency,
            segments_delivered: delivered,
            p2p_rescued_by_http: rescued,
            mean_peers: self.peer_samples.0 as f64 / self.peer_samples.1.max(1) as f64,
            peers_destroyed: destroyed,
            stalls_per_viewer: per_viewer,
        }
    }
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Stalls of `run` beyond those the HTTP-only `reference` had for the same viewer: the stalls P2P
/// caused.
pub fn p2p_caused_stalls(run: &Report, reference: &Report) -> u64 {
    run.stalls_per_viewer
        .iter()
        .zip(
            reference
                .stalls_per_viewer
                .iter()
                .chain(std::iter::repeat(&0)),
        )
        .map(|(a, b)| a.saturating_sub(*b))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(policy: SimPolicy, mode: Mode) -> SimConfig {
        SimConfig {
            viewers: 8,
            mode,
            seconds: 60.0,
            seed: 7,
            policy,
            join_window: 10.0,
            ..SimConfig::default()
        }
    }

    #[test]
    fn small_live_swarm_shares_segments_and_is_deterministic() {
        let a = Simulation::new(small(SimPolicy::Segswarm, Mode::Live)).run();
        let b = Simulation::new(small(SimPolicy::Segswarm, Mode::Live)).run();
        assert_eq!(a, b);
        assert!(a.segments_delivered > 8 * 10, "{a:?}");
        assert!(a.p2p_share > 0.2, "{a:?}");
        assert!(a.live_latency_p95_s.is_some());
    }

    /// Two to five viewers of a live stream, all reachable, watching the same edge: about one
    /// HTTP fetch per segment, relayed to the others (the ideal share is (N − 1) / N).
    #[test]
    fn tiny_live_swarms_fetch_each_segment_about_once() {
        for n in [2usize, 3, 5] {
            let r = Simulation::new(SimConfig {
                viewers: n,
                mode: Mode::Live,
                seconds: 120.0,
                seed: 1,
                join_window: 5.0,
                unreachable_share: 0.0,
                leave_share: 0.0,
                ..SimConfig::default()
            })
            .run();
            let ideal = (n - 1) as f64 / n as f64;
            assert_eq!(r.stall_count, 0, "N = {n}: {r:?}");
            assert!(r.p2p_share >= 0.6 * ideal, "N = {n}: {r:?}");
        }
    }

    #[test]
    fn http_only_reference_uses_no_peers() {
        let r = Simulation::new(small(SimPolicy::HttpOnly, Mode::Vod)).run();
        assert_eq!(r.p2p_share, 0.0);
        assert!(r.segments_delivered > 8 * 10, "{r:?}");
        assert!(r.origin_bytes_per_viewer > 0.0);
    }

    #[test]
    fn baseline_runs_vod() {
        let r = Simulation::new(small(SimPolicy::Baseline, Mode::Vod)).run();
        assert!(r.segments_delivered > 8 * 10, "{r:?}");
        assert!(r.p2p_share > 0.0, "{r:?}");
    }
}
