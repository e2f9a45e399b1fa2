//! A deterministic swarm simulator: N [`Engine`]s, an in-memory tracker, a simulated network, an
//! HTTP origin and a simulated player per viewer, driven by one event queue.
//!
//! Determinism: one seeded generator draws the scenario (bandwidths, latencies, reachability, join
//! and leave times) before anything runs, so every policy sees the same viewers; engines get seeds
//! derived from it; events are ordered by (time, sequence number); all maps are ordered. The wall
//! clock is read once for a base [`Instant`](crate::time::Instant); everything else is an offset
//! from it.
//!
//! Scale: segment payloads are shrunk by a constant factor (to [`SimConfig::scaled_segment_bytes`])
//! together with every bandwidth and message size, so transfer times are those of the real sizes
//! while memory and hashing stay small. Byte figures in the [`Report`] are scaled back to real bytes.
//!
//! The engines, the tracker, the network and the origin are a [`Harness`] (see its module for the
//! network model); the simulator draws the scenario, publishes segments, runs the players, samples
//! and reports. Each viewer is a harness node with an upload and a download rate and a one-way
//! latency; a share of viewers is "unreachable": two of them cannot connect to each other (their
//! ICE fails after a few seconds).

pub mod harness;
pub mod tracker;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::{Engine, EngineConfig, Event, IoEvent, SegmentInfo};
use crate::integrity::SegmentManifest;
use crate::scheduler::Policy;
use crate::wire::SegmentId;
use harness::{micros as us, Harness, HarnessConfig, Host, NodeNet, SECOND};
use tracker::{MemTracker, MemTrackerConfig};

mod config;
mod player;
mod report;

pub use self::config::{Mode, SimConfig, SimPolicy};
use self::player::SimPlayer;
pub use self::report::{p2p_caused_stalls, Report};

/// The simulator's own events, in the harness's queue.
#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave(usize),
    PlayerTick(usize),
    Publish(SegmentId),
    Sample,
}

struct Viewer {
    player: Option<SimPlayer>,
    join_at: u64,
    leave_at: Option<u64>,
    final_stats: Option<crate::engine::Stats>,
}

/// The simulator. Build with [`Simulation::new`], run with [`Simulation::run`].
pub struct Simulation {
    cfg: SimConfig,
    net: Harness<Ev>,
    viewers: Vec<Viewer>,
    scale: f64,
    segment_bytes: usize,
    chunk: usize,
    manifest: SegmentManifest,
    live_offset: f64,
    newest: SegmentId,
    vod_segments: SegmentId,
    latency_samples: Vec<f64>,
    peer_samples: (u64, u64),
    info_hash: [u8; 20],
}

const US: f64 = SECOND as f64;

impl Simulation {
    /// Draws the scenario. The same config (and seed) gives the same viewers for every policy.
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let real_segment = cfg.bitrate_bps / 8.0 * cfg.segment_seconds;
        let segment_bytes = cfg.scaled_segment_bytes.max(64);
        let scale = (real_segment / segment_bytes as f64).max(1.0);
        let chunk = ((cfg.message_bytes as f64 / scale).floor() as usize).max(16);
        let byte_rate = cfg.bitrate_bps / 8.0 / scale;
        let tracker = MemTracker::new(
            MemTrackerConfig {
                interval_secs: cfg.tracker_interval_secs,
                ..MemTrackerConfig::default()
            },
            cfg.seed ^ 0x7eac,
        );
        let harness_config = HarnessConfig {
            http_ttfb: us(cfg.http_ttfb_ms / 1000.0),
            http_chunk_bytes: chunk,
            ..HarnessConfig::default()
        };
        let mut net = Harness::new(harness_config, tracker);
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
            net.add_node(NodeNet {
                up_rate: byte_rate * cfg.upload_ratio * f_up,
                down_rate: byte_rate * cfg.download_ratio * f_down,
                latency: us(lat / 1000.0),
                unreachable,
                corrupt_segment_bytes: false,
            });
            viewers.push(Viewer {
                player: None,
                join_at: us(join),
                leave_at: leave_at.map(us),
                final_stats: None,
            });
        }
        let live_offset = cfg.live_playlist_segments as f64 * cfg.segment_seconds;
        let vod_segments =
            ((cfg.seconds + cfg.join_window) / cfg.segment_seconds).ceil() as SegmentId + 2;
        Self {
            cfg,
            net,
            viewers,
            scale,
            segment_bytes,
            chunk,
            manifest: SegmentManifest::new(),
            live_offset,
            newest: -1,
            vod_segments,
            latency_samples: Vec::new(),
            peer_samples: (0, 0),
            info_hash: *b"segswarm-sim-swarm!!",
        }
    }

    fn path(id: SegmentId) -> String {
        format!("seg/{id}.ts")
    }

    /// Makes segment `id`'s bytes once: the origin serves them and the manifest lists them.
    fn make_payload(&mut self, id: SegmentId, path: &str) {
        let file = crate::integrity::file_name_of(path);
        if self.net.served(file).is_some() {
            return;
        }
        let mut r =
            StdRng::seed_from_u64(self.cfg.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut v = vec![0u8; self.segment_bytes];
        r.fill(&mut v[..]);
        let b = Bytes::from(v);
        self.manifest.insert(file, None, &b);
        self.net.serve(file, b);
    }

    fn segment_info(&mut self, id: SegmentId) -> SegmentInfo {
        let path = Self::path(id);
        self.make_payload(id, &path);
        SegmentInfo {
            id,
            path,
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
        c.upload_rate = Some(self.net.node(v).up_rate.max(1.0) as u64);
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
            self.net.schedule(t, Ev::Join(v));
            if let Some(l) = self.viewers[v].leave_at {
                self.net.schedule(l, Ev::Leave(v));
            }
        }
        if self.cfg.mode == Mode::Live {
            // Segments up to the live edge exist at the start.
            self.newest = self.cfg.live_playlist_segments as SegmentId - 1;
            let next = self.newest + 1;
            let t = self.publish_time(next);
            self.net.schedule(t, Ev::Publish(next));
        }
        self.net.schedule(us(1.0), Ev::Sample);
        self.run_until(end);
        self.report()
    }

    fn publish_time(&self, id: SegmentId) -> u64 {
        us((id + 1) as f64 * self.cfg.segment_seconds - self.live_offset)
    }

    fn alive(&self, v: usize) -> bool {
        self.net.engine(v).is_some()
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Join(v) => self.join(v),
            Ev::Leave(v) => self.leave(v),
            Ev::PlayerTick(v) => {
                if self.alive(v) {
                    self.player_update(v);
                    let t = self.net.now() + 200_000;
                    self.net.schedule(t, Ev::PlayerTick(v));
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
                self.net.schedule(t, Ev::Publish(id + 1));
            }
            Ev::Sample => {
                let edge = self.net.now() as f64 / US + self.live_offset;
                for v in 0..self.viewers.len() {
                    let Some(e) = self.net.engine(v) else {
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
                let t = self.net.now() + 1_000_000;
                self.net.schedule(t, Ev::Sample);
            }
        }
    }

    fn join(&mut self, v: usize) {
        let cfg = self.engine_config(v);
        let mut engine = Engine::new(cfg);
        let now = self.net.now_instant();
        let pl = self.playlist();
        engine.set_playlist(pl, now);
        if self.cfg.verify {
            engine.set_manifest(self.manifest.clone(), now);
        }
        self.net.insert_engine(v, engine);
        self.player_join(v);
        if self.cfg.policy != SimPolicy::HttpOnly {
            self.input(v, IoEvent::TrackerConnected);
        }
        self.player_update(v);
        let t = self.net.now() + 200_000;
        self.net.schedule(t, Ev::PlayerTick(v));
    }

    fn leave(&mut self, v: usize) {
        if !self.alive(v) {
            return;
        }
        self.player_close(v);
        let engine = self.remove_engine(v);
        self.viewers[v].final_stats = engine.map(|e| e.stats().clone());
    }
}

impl Host<Ev> for Simulation {
    fn harness(&mut self) -> &mut Harness<Ev> {
        &mut self.net
    }

    fn engine_event(&mut self, v: usize, event: Event) {
        self.event(v, event);
    }

    fn own_event(&mut self, event: Ev) {
        self.dispatch(event);
    }
}

#[cfg(test)]
mod tests;
