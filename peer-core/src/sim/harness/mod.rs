//! One in-memory harness for [`Engine`]s, shared by the simulator and the engine tests: engines
//! on numbered nodes, a virtual clock with one ordered event queue, the in-memory tracker
//! ([`MemTracker`]), signalling that pairs offers with answers, peer links through a network
//! model, and an HTTP origin.
//!
//! Whoever owns a [`Harness`] implements [`Host`]: it receives the engines'
//! [`Event`](crate::engine::Event)s and its own scheduled events, and gets the harness's driving
//! methods ([`Host::with_engine`], [`Host::input`], [`Host::run_until`],
//! [`Host::remove_engine`]). Calling an engine always goes the same way: call it with the current
//! time, then drain `poll_transmit`, `poll_rtc`, `poll_http` and `poll_event` one output at a time
//! (what one output causes may queue more), route each output, and schedule the engine's next
//! timeout.
//!
//! Routing:
//! - tracker frames reach the [`MemTracker`] and its replies reach the nodes after
//!   [`HarnessConfig::tracker_latency`];
//! - offers and answers are made after [`HarnessConfig::sdp_delay`]; an accepted answer opens the
//!   data channel after three round trips, or fails after [`HarnessConfig::ice_failure_delay`] for
//!   two [unreachable](NodeNet::unreachable) nodes or a [blocked](Harness::block) pair; an answer
//!   the offerer never accepts is given up after [`HarnessConfig::answer_timeout`];
//! - peer messages cross the network model (see [`NodeNet`]): a node's messages leave one after
//!   another at its upload rate (command messages cost no time), cross both latencies and the
//!   receiver's download rate, and messages of one link keep their order;
//! - HTTP GETs are answered from the [origin](Harness::serve) after
//!   [`HarnessConfig::http_ttfb`], in chunks of [`HarnessConfig::http_chunk_bytes`] queued on
//!   the node's download rate; an unknown file fails with "404" after 1 ms.
//!
//! Times are microseconds of the virtual clock ([`SECOND`], [`MILLISECOND`]); the engines see
//! them as offsets from one [`Instant`] read when the harness is made.

mod clock;
mod config;
mod host;
mod log;
mod network;
mod origin;
mod rtc;
mod tracker_link;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;

use crate::engine::{Engine, HttpHandle, IoEvent, PeerHandle, Transmit};
use crate::time::Instant;

use super::tracker::MemTracker;
use clock::EventQueue;
pub use clock::{micros, MILLISECOND, SECOND};
pub use config::{HarnessConfig, NodeNet};
pub use host::Host;
pub use log::{Close, Delivery, HarnessLog, HttpRequest, PeerBytes};
use network::Link;
use origin::Flow;

/// Engines, their network, the tracker, the origin and the clock. `E` is the owner's own event
/// type (see [`Host`]).
#[derive(Debug)]
pub struct Harness<E> {
    config: HarnessConfig,
    base: Instant,
    queue: EventQueue<Scheduled<E>>,
    nodes: Vec<Node>,
    tracker: MemTracker,
    origin: BTreeMap<String, Bytes>,
    blocked: BTreeSet<(usize, usize)>,
    log: HarnessLog,
}

/// One node: its engine while it runs, its access link and what crosses it.
#[derive(Debug)]
struct Node {
    engine: Option<Engine>,
    net: NodeNet,
    /// When the node's upload is next free, µs.
    up_free: u64,
    /// When the node's download is next free, µs.
    down_free: u64,
    links: BTreeMap<PeerHandle, Link>,
    flows: BTreeMap<HttpHandle, Flow>,
    /// The engine's timer that is scheduled, µs.
    timer_at: Option<u64>,
}

/// An entry of the queue: one of the harness's events or one of the owner's.
#[derive(Debug)]
enum Scheduled<E> {
    Net(NetEvent),
    Own(E),
}

/// What the harness schedules for itself.
#[derive(Debug)]
enum NetEvent {
    /// The engine's timer set for this time (µs) fires, unless a newer one replaced it.
    Timer { node: usize, at: u64 },
    /// An input reaches the engine.
    Deliver(usize, IoEvent),
    /// A frame from a node reaches the tracker.
    TrackerIn(usize, String),
    /// An HTTP response goes on: it starts, sends its next chunk or completes.
    HttpNext(usize, HttpHandle),
    /// A chunk of an HTTP body arrives.
    HttpData {
        node: usize,
        request: HttpHandle,
        offset: usize,
        len: usize,
    },
    /// The answerer gives up its answer if the data channel is not open by now.
    AnswerTimeout(usize, PeerHandle),
}

impl<E> Harness<E> {
    /// An empty harness (no nodes, nothing served) at time 0.
    pub fn new(config: HarnessConfig, tracker: MemTracker) -> Self {
        Self {
            config,
            base: Instant::now(),
            queue: EventQueue::new(),
            nodes: Vec::new(),
            tracker,
            origin: BTreeMap::new(),
            blocked: BTreeSet::new(),
            log: HarnessLog::default(),
        }
    }

    /// The settings, to change while running.
    pub fn config_mut(&mut self) -> &mut HarnessConfig {
        &mut self.config
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds a node without an engine; returns its number (0, 1, …).
    pub fn add_node(&mut self, net: NodeNet) -> usize {
        self.nodes.push(Node {
            engine: None,
            net,
            up_free: 0,
            down_free: 0,
            links: BTreeMap::new(),
            flows: BTreeMap::new(),
            timer_at: None,
        });
        self.nodes.len() - 1
    }

    /// Starts `engine` on `node`. What it has queued is carried out at its next call.
    pub fn insert_engine(&mut self, node: usize, engine: Engine) {
        self.nodes[node].engine = Some(engine);
    }

    /// The engine of `node`, if it runs.
    pub fn engine(&self, node: usize) -> Option<&Engine> {
        self.nodes[node].engine.as_ref()
    }

    /// The access link of `node`.
    pub fn node(&self, node: usize) -> &NodeNet {
        &self.nodes[node].net
    }

    /// The access link of `node`, to change.
    pub fn node_mut(&mut self, node: usize) -> &mut NodeNet {
        &mut self.nodes[node].net
    }

    /// The current time, µs since the harness was made.
    pub fn now(&self) -> u64 {
        self.queue.now()
    }

    /// The engines' [`Instant`] for harness time `at` (µs).
    pub fn instant(&self, at: u64) -> Instant {
        self.base + Duration::from_micros(at)
    }

    /// The engines' [`Instant`] for now.
    pub fn now_instant(&self) -> Instant {
        self.instant(self.now())
    }

    /// Schedules one of the owner's events at `at` (µs), or now if that is past; it reaches
    /// [`Host::own_event`]. Events at one time come in the order they were scheduled.
    pub fn schedule(&mut self, at: u64, event: E) {
        self.queue.push(at, Scheduled::Own(event));
    }

    /// What was logged (empty unless [`HarnessConfig::log`]).
    pub fn log(&self) -> &HarnessLog {
        &self.log
    }

    fn push(&mut self, at: u64, event: NetEvent) {
        self.queue.push(at, Scheduled::Net(event));
    }

    /// Routes one transmit of `node`'s engine.
    fn transmit(&mut self, node: usize, transmit: Transmit) {
        match transmit {
            Transmit::Tracker(text) => self.send_tracker(node, text),
            Transmit::Peer {
                peer,
                data,
                segment_bytes,
            } => self.send_peer(node, peer, data, segment_bytes),
        }
    }

    /// Schedules `node`'s engine timer, unless an earlier one is already scheduled.
    fn schedule_timer(&mut self, node: usize) {
        let now = self.now();
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let Some(t) = engine.poll_timeout() else {
            return;
        };
        let at =
            micros(t.saturating_duration_since(self.base).as_secs_f64()).max(now + MILLISECOND);
        let current = self.nodes[node].timer_at;
        if current.is_none_or(|c| at < c || c < now) {
            self.nodes[node].timer_at = Some(at);
            self.push(at, NetEvent::Timer { node, at });
        }
    }
}
