//! The engine loop in the page: one [`Engine`] (one swarm) driven by the browser.
//!
//! Everything the engine polls out is carried out here: tracker frames go to a `WebSocket` (reconnected with
//! exponential backoff, rotating through the tracker URLs), offers and answers are made on
//! [`RtcPeer`]s whose data channels carry the engine's messages (at most 64 KiB each, sent in
//! order through a per-peer queue that waits on `bufferedAmount`), HTTP requests are `fetch`es
//! with an `AbortController` and a `Range` when resuming, read as a stream so the scheduler sees
//! progress, and the engine's [`Engine::poll_timeout`] is a `setTimeout`.
//!
//! Each peer connection runs in its own task that owns its `RTCPeerConnection` and data channel;
//! [`RtcCommand::Close`] (or the channel closing) ends the task, which drops the connection and
//! with it every event handler it installed. The tracker socket's handlers live in
//! `TrackerWs` (in `tracker.rs`), dropped when the socket is replaced or the driver shuts down.
//!
//! Actions and IO events reach the engine only through [`Driver`]'s methods and the tasks, never while the
//! driver's state is borrowed; [`DriverEvent`]s are handed to the listener after the state is
//! released, so a listener may call back into the driver.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use segswarm_core::backoff::{Backoff, BackoffConfig};
use segswarm_core::engine::{
    DeliverySource, Engine, EngineConfig, Event as EngineEvent, HttpCommand, HttpHandle, IoEvent,
    RtcCommand, Transmit,
};
use segswarm_core::integrity::SegmentManifest;
use segswarm_core::scheduler::PeerHandle;
use segswarm_core::time::Instant;
use segswarm_core::vecmap::VecMap;
use segswarm_core::wire::SegmentId;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::error::WebError;
use crate::fetch::{fetch_from, Abort};
use crate::oneshot::{self, unless};
use crate::rtc::{DataChannel, RtcPeer, RtcSettings};
use crate::timer::{now, Timeout};
use crate::wake::Wakers;

pub use segswarm_core::engine::SegmentInfo;

mod config;
mod events;
mod http;
mod peers;
mod tracker;

pub use self::config::DriverConfig;
pub use self::events::{ByteSource, DriverEvent, LoadError};
use self::http::run_http;
use self::peers::{close_with, run_peer, PeerSlot, Role};
use self::tracker::{connect_tracker, TrackerWs};

type Listener = Box<dyn FnMut(DriverEvent)>;
type Waiter = oneshot::Sender<Result<(Bytes, DeliverySource), LoadError>>;

struct State {
    engine: Engine,
    config: DriverConfig,
    peers: VecMap<PeerHandle, Rc<PeerSlot>>,
    http: VecMap<HttpHandle, Abort>,
    tracker: Option<TrackerWs>,
    tracker_open: bool,
    tracker_index: usize,
    backoff: Backoff,
    reconnect_timer: Option<Timeout>,
    timer: Option<(Instant, Timeout)>,
    waiting: VecMap<SegmentId, Vec<Waiter>>,
    events: VecDeque<DriverEvent>,
    listener: Option<Listener>,
    /// Whether [`dispatch`] is handing events to the listener now.
    dispatching: bool,
    /// HTTP, P2P and upload bytes not yet reported.
    unreported: [u64; 3],
    /// Where stored segments came from (an HTTP base, a peer, or the page).
    origins: VecMap<SegmentId, DeliverySource>,
    shut_down: bool,
}

/// Runs one [`Engine`] in the page. Cloning gives another handle to the same driver.
#[derive(Clone)]
pub struct Driver {
    inner: Rc<RefCell<State>>,
}

impl Driver {
    /// Starts the engine and connects to the first tracker.
    pub fn new(config: DriverConfig) -> Self {
        let engine = Engine::new(config.engine.clone());
        let backoff = Backoff::new(BackoffConfig {
            initial: config.reconnect_min,
            max: config.reconnect_max,
            going_away_min: config.reconnect_after_going_away,
            ..BackoffConfig::default()
        });
        let inner = Rc::new(RefCell::new(State {
            engine,
            config,
            peers: VecMap::new(),
            http: VecMap::new(),
            tracker: None,
            tracker_open: false,
            tracker_index: 0,
            backoff,
            reconnect_timer: None,
            timer: None,
            waiting: VecMap::new(),
            events: VecDeque::new(),
            listener: None,
            dispatching: false,
            unreported: [0; 3],
            origins: VecMap::new(),
            shut_down: false,
        }));
        connect_tracker(&inner);
        Self { inner }
    }

    /// Sets the function events are handed to (replacing any previous one).
    pub fn set_listener(&self, listener: impl FnMut(DriverEvent) + 'static) {
        self.inner.borrow_mut().listener = Some(Box::new(listener));
    }

    /// The current playlist (live: the sliding window; VOD: every segment).
    pub fn set_playlist(&self, segments: Vec<SegmentInfo>) {
        call(&self.inner, Call::Playlist(segments));
    }

    /// Where a stored segment's bytes came from: an HTTP base or a peer (also for segments
    /// prefetched before the player asked), `Cache` for one the page added, `None` when not
    /// stored.
    pub fn segment_origin(&self, segment: SegmentId) -> Option<DeliverySource> {
        let s = self.inner.borrow();
        s.origins
            .get(&segment)
            .copied()
            .filter(|_| s.engine.has_segment(segment))
    }

    /// The integrity manifest (`segments-sha256.json` text).
    pub fn set_manifest(&self, manifest: SegmentManifest) {
        call(&self.inner, Call::Manifest(manifest));
    }

    /// Where playback is, media seconds.
    pub fn set_playback(&self, position: f64) {
        call(&self.inner, Call::Playback(position));
    }

    /// A segment the page holds from elsewhere, offered to peers.
    pub fn add_segment(&self, segment: SegmentId, data: Bytes) {
        call(&self.inner, Call::Add(segment, data));
        let mut s = self.inner.borrow_mut();
        if s.engine.has_segment(segment) {
            s.origins.insert(segment, DeliverySource::Cache);
        }
    }

    /// Loads a segment of the playlist: from the cache, peers or HTTP, as the scheduler decides
    /// (peers only while they can make the deadline the playback position sets).
    pub async fn load_segment(
        &self,
        segment: SegmentId,
    ) -> Result<(Bytes, DeliverySource), LoadError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.inner.borrow_mut();
            if s.shut_down {
                return Err(LoadError::Cancelled);
            }
            s.waiting.get_or_insert_with(segment, Vec::new).push(tx);
        }
        call(&self.inner, Call::Want(segment));
        rx.recv().await.unwrap_or(Err(LoadError::Cancelled))
    }

    /// Gives up a segment asked for with [`Driver::load_segment`]: every waiter gets
    /// [`LoadError::Cancelled`].
    pub fn cancel_segment(&self, segment: SegmentId) {
        let waiters = self.inner.borrow_mut().waiting.remove(&segment);
        if let Some(waiters) = waiters {
            for w in waiters {
                w.send(Err(LoadError::Cancelled));
            }
        }
        call(&self.inner, Call::Cancel(segment));
    }

    /// The engine's transfer statistics.
    pub fn stats(&self) -> segswarm_core::engine::Stats {
        self.inner.borrow().engine.stats().clone()
    }

    /// Peers with an open data channel.
    pub fn connected_peers(&self) -> usize {
        self.inner.borrow().engine.connected_peers()
    }

    /// Whether the tracker socket is open.
    pub fn tracker_connected(&self) -> bool {
        self.inner.borrow().tracker_open
    }

    /// Whether the segment is in the store.
    pub fn has_segment(&self, segment: SegmentId) -> bool {
        self.inner.borrow().engine.has_segment(segment)
    }

    /// Leaves the swarm: `stopped` to the tracker, peers and downloads closed, waiters cancelled.
    pub fn shutdown(&self) {
        if self.inner.borrow().shut_down {
            return;
        }
        call(&self.inner, Call::Shutdown);
        let (waiting, tracker, peers) = {
            let mut s = self.inner.borrow_mut();
            s.shut_down = true;
            s.timer = None;
            s.reconnect_timer = None;
            s.http.clear();
            (
                std::mem::take(&mut s.waiting),
                s.tracker.take(),
                std::mem::take(&mut s.peers),
            )
        };
        for slot in peers.values() {
            slot.close();
        }
        drop(tracker);
        for w in waiting.into_values().flatten() {
            w.send(Err(LoadError::Cancelled));
        }
    }
}

/// One engine entry point, carried to [`call`] (one function with a match keeps the package
/// smaller than a closure per call site).
enum Call {
    Io(IoEvent),
    Timeout,
    Playlist(Vec<SegmentInfo>),
    Manifest(SegmentManifest),
    Playback(f64),
    Add(SegmentId, Bytes),
    Want(SegmentId),
    Cancel(SegmentId),
    Shutdown,
}

/// Calls the engine with the current time, carries out what it queued, then hands events to the
/// listener.
fn call(inner: &Rc<RefCell<State>>, call: Call) {
    {
        let mut s = inner.borrow_mut();
        if s.shut_down {
            return;
        }
        let (e, now) = (&mut s.engine, now());
        match call {
            Call::Io(event) => e.handle_event(event, now),
            Call::Timeout => e.handle_timeout(now),
            Call::Playlist(segments) => e.set_playlist(segments, now),
            Call::Manifest(m) => e.set_manifest(m, now),
            Call::Playback(position) => e.set_playback(position, now),
            Call::Add(segment, data) => e.add_segment(segment, data, now),
            Call::Want(segment) => e.want_segment(segment, now),
            Call::Cancel(segment) => e.cancel_segment(segment, now),
            Call::Shutdown => e.shutdown(now),
        }
        drain(&mut s, inner);
    }
    dispatch(inner);
}

/// Feeds one IO event ([`call`]).
fn feed(inner: &Rc<RefCell<State>>, event: IoEvent) {
    call(inner, Call::Io(event));
}

fn feed_weak(weak: &Weak<RefCell<State>>, event: IoEvent) {
    if let Some(inner) = weak.upgrade() {
        feed(&inner, event);
    }
}

/// Hands queued events to the listener, outside any borrow of the state. A listener that feeds
/// the driver again does not see events re-entrantly: the outer call hands them over in order.
fn dispatch(inner: &Rc<RefCell<State>>) {
    {
        let mut s = inner.borrow_mut();
        if s.dispatching {
            return;
        }
        if s.listener.is_none() {
            s.events.clear();
            return;
        }
        s.dispatching = true;
    }
    loop {
        let (event, listener) = {
            let mut s = inner.borrow_mut();
            let Some(event) = s.events.pop_front() else {
                s.dispatching = false;
                return;
            };
            (event, s.listener.take())
        };
        let Some(mut listener) = listener else {
            let mut s = inner.borrow_mut();
            s.events.clear();
            s.dispatching = false;
            return;
        };
        listener(event);
        let mut s = inner.borrow_mut();
        // A listener set meanwhile (by the listener itself) wins.
        if s.listener.is_none() {
            s.listener = Some(listener);
        }
    }
}

/// Carries out everything the engine queued, queues its events for the listener (byte counts
/// summed into one event per kind) and re-arms the timer.
fn drain(s: &mut State, inner: &Rc<RefCell<State>>) {
    while let Some(t) = s.engine.poll_transmit() {
        transmit(s, inner, t);
    }
    while let Some(c) = s.engine.poll_rtc() {
        rtc(s, inner, c);
    }
    while let Some(c) = s.engine.poll_http() {
        http(s, inner, c);
    }
    while let Some(ev) = s.engine.poll_event() {
        event(s, ev);
    }
    for (i, source) in [ByteSource::Http, ByteSource::P2p, ByteSource::Upload]
        .into_iter()
        .enumerate()
    {
        let bytes = std::mem::take(&mut s.unreported[i]);
        if bytes > 0 {
            s.events.push_back(DriverEvent::Bytes { source, bytes });
        }
    }
    arm_timer(s, inner);
}

fn arm_timer(s: &mut State, inner: &Rc<RefCell<State>>) {
    let Some(at) = s.engine.poll_timeout() else {
        s.timer = None;
        return;
    };
    if s.timer.as_ref().is_some_and(|(t, _)| *t == at) {
        return;
    }
    // Round up to the next millisecond so the timer never fires before `at`.
    let delay = at.saturating_duration_since(now()) + Duration::from_millis(1);
    let weak = Rc::downgrade(inner);
    s.timer = Some((
        at,
        Timeout::new(delay, move || {
            if let Some(inner) = weak.upgrade() {
                // The timer that is running is spent: forget it before arming the next.
                let spent = inner.borrow_mut().timer.take();
                call(&inner, Call::Timeout);
                drop(spent);
            }
        }),
    ));
}

fn transmit(s: &mut State, inner: &Rc<RefCell<State>>, t: Transmit) {
    match t {
        Transmit::Tracker(frame) => {
            if let Some(t) = s.tracker.as_ref().filter(|_| s.tracker_open) {
                if let Err(e) = t.ws.send_with_str(&frame) {
                    tracing::debug!(error = %crate::error::js_message(&e), "tracker send failed");
                }
            }
        }
        Transmit::Peer { peer, data, .. } => {
            let limit = s.config.max_peer_queue_bytes;
            let Some(slot) = s.peers.get(&peer) else {
                return;
            };
            let overrun = {
                let mut st = slot.state.borrow_mut();
                if st.closed {
                    return;
                }
                st.outbox_bytes += data.len();
                st.outbox.push_back(data);
                st.wakers.wake_all();
                st.outbox_bytes > limit
            };
            if overrun {
                tracing::debug!(?peer, "peer send queue overrun; closing");
                let slot = Rc::clone(slot);
                close_with(
                    s,
                    &slot,
                    &Rc::downgrade(inner),
                    IoEvent::PeerSendOverrun(peer),
                );
            }
        }
    }
}

fn rtc(s: &mut State, inner: &Rc<RefCell<State>>, c: RtcCommand) {
    let weak = Rc::downgrade(inner);
    match c {
        RtcCommand::CreateOffers(handles) => {
            for h in handles {
                let slot = PeerSlot::new(h);
                s.peers.insert(h, Rc::clone(&slot));
                spawn_local(run_peer(
                    weak.clone(),
                    slot,
                    Role::Offer,
                    s.config.rtc.clone(),
                ));
            }
        }
        RtcCommand::CreateAnswer { peer, offer_sdp } => {
            let slot = PeerSlot::new(peer);
            s.peers.insert(peer, Rc::clone(&slot));
            spawn_local(run_peer(
                weak,
                slot,
                Role::Answer(offer_sdp),
                s.config.rtc.clone(),
            ));
        }
        RtcCommand::AcceptAnswer { peer, answer_sdp } => {
            if let Some(slot) = s.peers.get(&peer) {
                let mut st = slot.state.borrow_mut();
                st.answer = Some(answer_sdp);
                st.wakers.wake_all();
            }
        }
        RtcCommand::Close(peer) => {
            if let Some(slot) = s.peers.remove(&peer) {
                slot.close();
            }
        }
    }
}

fn http(s: &mut State, inner: &Rc<RefCell<State>>, c: HttpCommand) {
    let weak = Rc::downgrade(inner);
    match c {
        HttpCommand::Get {
            request,
            url,
            range_from,
            byte_range,
        } => match Abort::new() {
            Ok(abort) => {
                let signal = abort.signal();
                s.http.insert(request, abort);
                // A byte-range segment: its bytes of the file, resumed from `range_from` in it.
                let base = byte_range.as_ref().map_or(0, |r| r.start);
                let from = base + range_from.unwrap_or(0);
                let end = byte_range.map(|r| r.end);
                spawn_local(run_http(weak, request, url, (from, end), signal));
            }
            Err(e) => {
                let reason = e.to_string();
                spawn_local(async move {
                    feed_weak(&weak, IoEvent::HttpFailed { request, reason });
                });
            }
        },
        HttpCommand::Abort(request) => {
            // Dropping the controller aborts the fetch; its task then ends quietly.
            s.http.remove(&request);
        }
    }
}

/// Turns an engine event into what the listener and the waiters hear.
fn event(s: &mut State, ev: EngineEvent) {
    match ev {
        EngineEvent::SegmentReady {
            segment,
            data,
            source,
        } => {
            let origin = s.origins.get(&segment).copied();
            s.events.push_back(DriverEvent::SegmentLoaded {
                segment,
                source,
                origin,
                bytes: data.len() as u64,
            });
            for w in s.waiting.remove(&segment).unwrap_or_default() {
                w.send(Ok((data.clone(), source)));
            }
        }
        EngineEvent::SegmentFailed { segment, reason } => {
            s.events.push_back(DriverEvent::SegmentFailed {
                segment,
                reason: reason.clone(),
            });
            for w in s.waiting.remove(&segment).unwrap_or_default() {
                w.send(Err(LoadError::Failed(reason.clone())));
            }
        }
        EngineEvent::SegmentStored { segment, source } => {
            // Evicted segments' origins go (the store is small: this stays cheap).
            let State {
                engine, origins, ..
            } = s;
            origins.retain(|id, _| engine.has_segment(*id));
            origins.insert(segment, source);
        }
        EngineEvent::BytesReceived { source, bytes } => {
            let i = usize::from(!matches!(source, DeliverySource::Http(_)));
            s.unreported[i] += bytes;
        }
        EngineEvent::BytesSent { bytes, .. } => s.unreported[2] += bytes,
        EngineEvent::PeerConnected(peer) => s.events.push_back(DriverEvent::PeerConnected(peer)),
        EngineEvent::PeerClosed(peer) => s.events.push_back(DriverEvent::PeerClosed(peer)),
    }
}
