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

use crate::engine::{
    Engine, EngineConfig, Event, HttpCommand, HttpHandle, IoEvent, PeerHandle, RtcCommand,
    SegmentInfo, Transmit,
};
use crate::integrity::SegmentManifest;
use crate::scheduler::Policy;
use crate::time::Instant;
use crate::tracker_client::TrackerFrame;
use crate::wire::SegmentId;
use tracker::{MemTracker, MemTrackerConfig};

mod config;
mod network;
mod player;
mod report;

pub use self::config::{Mode, SimConfig, SimPolicy};
use self::network::{Flow, Link};
use self::player::SimPlayer;
pub use self::report::{p2p_caused_stalls, Report};

#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave(usize),
    Timer(usize, u64),
    Deliver(usize, IoEvent),
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
    player: Option<SimPlayer>,
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
                player: None,
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
                    self.with_engine(v, Engine::handle_timeout);
                }
            }
            Ev::Deliver(v, input) => self.input(v, input),
            Ev::TrackerIn(v, text) => {
                if !self.alive(v) && !text.contains("stopped") {
                    return;
                }
                let out = self.tracker.handle(v, &text);
                for (to, text) in out {
                    // Read as a driver reads it; the in-memory tracker writes only JSON objects.
                    let Ok(frame) = TrackerFrame::parse(&text) else {
                        continue;
                    };
                    let t = self.now + 20_000;
                    self.push(t, Ev::Deliver(to, IoEvent::TrackerMessage(frame)));
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
                self.input(v, IoEvent::HttpChunk { request: h, data });
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
                        self.player_playlist(v, &pl);
                        let pl = pl.clone();
                        self.with_engine(v, |e, now| e.set_playlist(pl, now));
                        if self.cfg.verify {
                            let m = self.manifest.clone();
                            self.with_engine(v, |e, now| e.set_manifest(m, now));
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
                    if self.cfg.mode == Mode::Live {
                        if let Some(position) = self.player_position_if_started(v) {
                            self.latency_samples.push(edge - position);
                        }
                    }
                }
                let t = self.now + 1_000_000;
                self.push(t, Ev::Sample);
            }
            Ev::AnswerTimeout(v, h) => {
                if self.viewers[v].links.get(&h).is_some_and(|l| !l.connected) {
                    self.viewers[v].links.remove(&h);
                    self.input(v, IoEvent::PeerClosed(h));
                }
            }
        }
    }

    fn join(&mut self, v: usize) {
        let cfg = self.engine_config(v);
        let mut engine = Engine::new(cfg);
        let now = self.instant(self.now);
        let pl = self.playlist();
        engine.set_playlist(pl, now);
        if self.cfg.verify {
            engine.set_manifest(self.manifest.clone(), now);
        }
        self.viewers[v].engine = Some(engine);
        self.player_join(v);
        if self.cfg.policy != SimPolicy::HttpOnly {
            self.input(v, IoEvent::TrackerConnected);
        }
        self.player_update(v);
        let t = self.now + 200_000;
        self.push(t, Ev::PlayerTick(v));
    }

    fn leave(&mut self, v: usize) {
        if !self.alive(v) {
            return;
        }
        self.player_close(v);
        self.with_engine(v, Engine::shutdown);
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
                self.push(t, Ev::Deliver(l.other, IoEvent::PeerClosed(l.other_handle)));
            }
        }
        self.viewers[v].flows.clear();
        let engine = self.viewers[v].engine.take();
        self.viewers[v].final_stats = engine.map(|e| e.stats().clone());
        self.tracker.disconnect(v);
    }

    /// Feeds viewer `v`'s engine an IO event.
    fn input(&mut self, v: usize, event: IoEvent) {
        self.with_engine(v, |e, now| e.handle_event(event, now));
    }

    /// Calls `f` on viewer `v`'s engine (if it runs) with the current time, then carries out
    /// what the engine queued.
    pub(super) fn with_engine(&mut self, v: usize, f: impl FnOnce(&mut Engine, Instant)) {
        let now = self.instant(self.now);
        let Some(engine) = self.viewers[v].engine.as_mut() else {
            return;
        };
        f(engine, now);
        self.drain(v);
    }

    fn drain(&mut self, v: usize) {
        // The engine's queues, one kind after another; what they cause may queue more.
        loop {
            let Some(e) = self.viewers[v].engine.as_mut() else {
                return;
            };
            if let Some(t) = e.poll_transmit() {
                self.transmit(v, t);
            } else if let Some(c) = e.poll_rtc() {
                self.rtc(v, c);
            } else if let Some(c) = e.poll_http() {
                self.http(v, c);
            } else if let Some(ev) = e.poll_event() {
                self.event(v, ev);
            } else {
                break;
            }
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
}

#[cfg(test)]
mod tests;
