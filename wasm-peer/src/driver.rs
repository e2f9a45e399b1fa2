//! The engine loop in the page: one [`Engine`] (one swarm) driven by the browser.
//!
//! Every [`Output`] is carried out here: tracker frames go to a `WebSocket` (reconnected with
//! exponential backoff, rotating through the tracker URLs), offers and answers are made on
//! [`RtcPeer`]s whose data channels carry the engine's messages (at most 64 KiB each, sent in
//! order through a per-peer queue that waits on `bufferedAmount`), HTTP requests are `fetch`es
//! with an `AbortController` and a `Range` when resuming, read as a stream so the scheduler sees
//! progress, and the engine's [`Engine::poll_timeout`] is a `setTimeout`.
//!
//! Each peer connection runs in its own task that owns its `RTCPeerConnection` and data channel;
//! [`Output::ClosePeer`] (or the channel closing) ends the task, which drops the connection and
//! with it every event handler it installed. The tracker socket's handlers live in
//! [`TrackerWs`], dropped when the socket is replaced or the driver shuts down.
//!
//! Inputs reach the engine only through [`Driver`]'s methods and the tasks, never while the
//! driver's state is borrowed; [`DriverEvent`]s are handed to the listener after the state is
//! released, so a listener may call back into the driver.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use segswarm_core::backoff::{Backoff, BackoffConfig};
use segswarm_core::engine::{DeliverySource, Engine, EngineConfig, HttpHandle, Input, Output};
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

/// Settings of a [`Driver`].
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The engine's settings (swarm, HTTP bases, limits).
    pub engine: EngineConfig,
    /// Tracker WebSocket URLs; one is used at a time, the next after a failed connection.
    /// Empty = no tracker (HTTP only).
    pub trackers: Vec<String>,
    /// WebRTC settings (ICE servers, timeouts, message size, send buffer).
    pub rtc: RtcSettings,
    /// Cap of the first delay before reconnecting to the tracker (full jitter: the delay is
    /// random below the cap). Default 1 s.
    pub reconnect_min: Duration,
    /// Largest cap of the reconnect delay (it doubles with each failure in a row, and is reset only
    /// once the tracker accepted an announce). Default 30 s.
    pub reconnect_max: Duration,
    /// Least delay after the tracker closed with code 1013 (try again later) or 1001 (going away).
    /// Default 30 s.
    pub reconnect_after_going_away: Duration,
    /// Most bytes queued for one peer and not yet handed to its data channel; a peer that falls
    /// further behind is closed. Default 32 MiB.
    pub max_peer_queue_bytes: usize,
}

impl DriverConfig {
    /// Defaults around an engine configuration.
    pub fn new(engine: EngineConfig, trackers: Vec<String>) -> Self {
        Self {
            engine,
            trackers,
            rtc: RtcSettings::default(),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            reconnect_after_going_away: Duration::from_secs(30),
            max_peer_queue_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Where a byte count came from (see [`DriverEvent::Bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteSource {
    /// Downloaded over HTTP.
    Http,
    /// Downloaded from peers.
    P2p,
    /// Uploaded to peers.
    Upload,
}

impl ByteSource {
    /// `"http"`, `"p2p"` or `"upload"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ByteSource::Http => "http",
            ByteSource::P2p => "p2p",
            ByteSource::Upload => "upload",
        }
    }
}

/// What the driver reports to its listener.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// Bytes moved since the previous report.
    Bytes {
        /// Which way and from where.
        source: ByteSource,
        /// How many.
        bytes: u64,
    },
    /// A peer's data channel opened.
    PeerConnected(PeerHandle),
    /// A connected peer went away.
    PeerClosed(PeerHandle),
    /// A requested segment was handed over.
    SegmentLoaded {
        /// Segment id.
        segment: SegmentId,
        /// How it was delivered (`Cache`: it was stored before it was asked for).
        source: DeliverySource,
        /// Where its bytes came from over the network (`Http` or `Peer`), when known (see
        /// [`Driver::segment_origin`]).
        origin: Option<DeliverySource>,
        /// Its size.
        bytes: u64,
    },
    /// A requested segment could not be loaded.
    SegmentFailed {
        /// Segment id.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
    /// The tracker socket opened.
    TrackerConnected(String),
    /// The tracker socket closed or failed to open.
    TrackerDisconnected(String),
}

/// Why [`Driver::load_segment`] gave no segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The engine could not load it (e.g. not in the playlist).
    #[error("segment failed: {0}")]
    Failed(String),
    /// The request was cancelled or the driver shut down.
    #[error("segment request cancelled")]
    Cancelled,
}

type Listener = Box<dyn FnMut(DriverEvent)>;
type Waiter = oneshot::Sender<Result<(Bytes, DeliverySource), LoadError>>;

/// Shared state of one peer connection between the driver and the connection's tasks.
struct PeerSlot {
    handle: PeerHandle,
    state: RefCell<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// Set by whoever ends the connection first (the engine or the channel).
    closed: bool,
    connected: bool,
    answer: Option<String>,
    outbox: VecDeque<Bytes>,
    outbox_bytes: usize,
    wakers: Wakers,
}

impl PeerSlot {
    fn new(handle: PeerHandle) -> Rc<Self> {
        Rc::new(Self {
            handle,
            state: RefCell::new(SlotState::default()),
        })
    }

    /// Marks the slot closed; `true` if it was open.
    fn close(&self) -> bool {
        let mut s = self.state.borrow_mut();
        let was_open = !s.closed;
        s.closed = true;
        s.outbox.clear();
        s.outbox_bytes = 0;
        s.wakers.wake_all();
        was_open
    }

    /// Resolves once the slot is closed.
    async fn closed(self: Rc<Self>) {
        std::future::poll_fn(move |cx| {
            let mut s = self.state.borrow_mut();
            if s.closed {
                Poll::Ready(())
            } else {
                s.wakers.register(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Resolves with the remote answer (offerer side).
    async fn answer(self: Rc<Self>) -> String {
        std::future::poll_fn(move |cx| {
            let mut s = self.state.borrow_mut();
            match s.answer.take() {
                Some(a) => Poll::Ready(a),
                None => {
                    s.wakers.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The next message to send; `None` once closed.
    async fn next_outgoing(self: Rc<Self>) -> Option<Bytes> {
        std::future::poll_fn(move |cx| {
            let mut s = self.state.borrow_mut();
            if s.closed {
                return Poll::Ready(None);
            }
            match s.outbox.pop_front() {
                Some(m) => {
                    s.outbox_bytes -= m.len();
                    Poll::Ready(Some(m))
                }
                None => {
                    s.wakers.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Offers being made for one [`Output::CreateOffers`], reported together.
struct OfferBatch {
    remaining: usize,
    offers: Vec<(PeerHandle, String)>,
}

/// A `WebSocket` to the tracker and its handlers, released when this is dropped.
struct TrackerWs {
    ws: WebSocket,
    url: String,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for TrackerWs {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

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
    /// HTTP, P2P and upload byte totals last reported.
    reported: [u64; 3],
    /// Ids of the current playlist.
    playlist_ids: Vec<SegmentId>,
    /// Where stored segments came from (HTTP or a peer).
    origins: VecMap<SegmentId, DeliverySource>,
    /// The engine's counts of segments stored after HTTP and P2P downloads, last seen.
    stored: (u64, u64),
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
            reported: [0; 3],
            playlist_ids: Vec::new(),
            origins: VecMap::new(),
            stored: (0, 0),
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
        {
            let mut s = self.inner.borrow_mut();
            s.playlist_ids = segments.iter().map(|x| x.id).collect();
            s.playlist_ids.sort_unstable();
            let State {
                origins,
                playlist_ids,
                ..
            } = &mut *s;
            origins.retain(|id, _| playlist_ids.binary_search(id).is_ok());
        }
        feed(&self.inner, Input::Playlist(segments));
    }

    /// Where a stored segment's bytes came from: `Http` or `Peer` (also for segments prefetched
    /// before the player asked), `None` when unknown or not stored.
    pub fn segment_origin(&self, segment: SegmentId) -> Option<DeliverySource> {
        self.inner.borrow().origins.get(&segment).copied()
    }

    /// The integrity manifest (`segments-sha256.json` text).
    pub fn set_manifest(&self, manifest: SegmentManifest) {
        feed(&self.inner, Input::Manifest(manifest));
    }

    /// Where playback is, media seconds.
    pub fn set_playback(&self, position: f64) {
        feed(&self.inner, Input::Playback(position));
    }

    /// A segment the page holds from elsewhere, offered to peers.
    pub fn add_segment(&self, segment: SegmentId, data: Bytes) {
        feed(&self.inner, Input::AddSegment { id: segment, data });
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
        feed(&self.inner, Input::WantSegment(segment));
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
        feed(&self.inner, Input::CancelSegment(segment));
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
        feed(&self.inner, Input::Shutdown);
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

/// Feeds one input, carries out the outputs, then hands events to the listener.
fn feed(inner: &Rc<RefCell<State>>, input: Input) {
    {
        let mut s = inner.borrow_mut();
        if s.shut_down {
            return;
        }
        s.engine.handle_input(input, now());
        drain(&mut s, inner);
    }
    dispatch(inner);
}

fn feed_weak(weak: &Weak<RefCell<State>>, input: Input) {
    if let Some(inner) = weak.upgrade() {
        feed(&inner, input);
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

/// Carries out every output of the engine, re-arms the timer and queues byte counts.
fn drain(s: &mut State, inner: &Rc<RefCell<State>>) {
    while let Some(output) = s.engine.poll_output() {
        execute(s, inner, output);
    }
    track_origins(s);
    let stats = s.engine.stats();
    let totals = [stats.http_bytes, stats.p2p_bytes, stats.uploaded_bytes];
    for (i, source) in [ByteSource::Http, ByteSource::P2p, ByteSource::Upload]
        .into_iter()
        .enumerate()
    {
        let delta = totals[i].saturating_sub(s.reported[i]);
        if delta > 0 {
            s.events.push_back(DriverEvent::Bytes {
                source,
                bytes: delta,
            });
        }
    }
    s.reported = totals;
    arm_timer(s, inner);
}

/// Records where newly stored segments came from: when the engine's count of segments stored
/// after HTTP or P2P downloads grew, the playlist's stored segments without an origin are the
/// new ones (both counts growing in one step is ambiguous: HTTP is assumed).
fn track_origins(s: &mut State) {
    let stats = s.engine.stats();
    let now = (stats.segments_http, stats.segments_p2p);
    if now == s.stored {
        return;
    }
    let origin = if now.0 == s.stored.0 {
        DeliverySource::Peer
    } else {
        DeliverySource::Http
    };
    s.stored = now;
    let State {
        engine,
        origins,
        playlist_ids,
        ..
    } = s;
    for id in playlist_ids.iter() {
        let stored = engine.has_segment(*id);
        if !stored {
            origins.remove(id);
        } else if !origins.contains_key(id) {
            origins.insert(*id, origin);
        }
    }
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
                feed(&inner, Input::Timer);
                drop(spent);
            }
        }),
    ));
}

fn execute(s: &mut State, inner: &Rc<RefCell<State>>, output: Output) {
    let weak = Rc::downgrade(inner);
    match output {
        Output::TrackerSend(frame) => {
            if let Some(t) = s.tracker.as_ref().filter(|_| s.tracker_open) {
                if let Err(e) = t.ws.send_with_str(&frame) {
                    tracing::debug!(error = %crate::error::js_message(&e), "tracker send failed");
                }
            }
        }
        Output::CreateOffers(handles) => {
            let batch = Rc::new(RefCell::new(OfferBatch {
                remaining: handles.len(),
                offers: Vec::new(),
            }));
            for h in handles {
                let slot = PeerSlot::new(h);
                s.peers.insert(h, Rc::clone(&slot));
                spawn_local(run_peer(
                    weak.clone(),
                    slot,
                    Role::Offer(Rc::clone(&batch)),
                    s.config.rtc.clone(),
                ));
            }
        }
        Output::CreateAnswer { peer, offer_sdp } => {
            let slot = PeerSlot::new(peer);
            s.peers.insert(peer, Rc::clone(&slot));
            spawn_local(run_peer(
                weak,
                slot,
                Role::Answer(offer_sdp),
                s.config.rtc.clone(),
            ));
        }
        Output::AcceptAnswer { peer, answer_sdp } => {
            if let Some(slot) = s.peers.get(&peer) {
                let mut st = slot.state.borrow_mut();
                st.answer = Some(answer_sdp);
                st.wakers.wake_all();
            }
        }
        Output::ClosePeer(peer) => {
            if let Some(slot) = s.peers.remove(&peer) {
                let was_connected = slot.state.borrow().connected;
                if slot.close() && was_connected {
                    s.events.push_back(DriverEvent::PeerClosed(peer));
                }
            }
        }
        Output::SendToPeer { peer, data, .. } => {
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
                close_with(s, &slot, &weak, Input::PeerSendOverrun(peer));
            }
        }
        Output::HttpRequest {
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
                    feed_weak(&weak, Input::HttpFailed { request, reason });
                });
            }
        },
        Output::HttpAbort(request) => {
            // Dropping the controller aborts the fetch; its task then ends quietly.
            s.http.remove(&request);
        }
        Output::SegmentReady {
            segment,
            data,
            source,
        } => {
            let origin = match source {
                DeliverySource::Cache => s.origins.get(&segment).copied(),
                other => {
                    s.origins.insert(segment, other);
                    Some(other)
                }
            };
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
        Output::SegmentFailed { segment, reason } => {
            s.events.push_back(DriverEvent::SegmentFailed {
                segment,
                reason: reason.clone(),
            });
            for w in s.waiting.remove(&segment).unwrap_or_default() {
                w.send(Err(LoadError::Failed(reason.clone())));
            }
        }
    }
}

/// Closes a peer the engine still knows: the slot now, `PeerClosed` to the engine soon after
/// (not from inside the current step).
/// Closes a peer from the driver side and tells the engine `why` (`PeerClosed`, or
/// `PeerSendOverrun` when the peer let its send queue overflow).
fn close_with(s: &mut State, slot: &Rc<PeerSlot>, weak: &Weak<RefCell<State>>, why: Input) {
    s.peers.remove(&slot.handle);
    let was_connected = slot.state.borrow().connected;
    if slot.close() {
        if was_connected {
            s.events.push_back(DriverEvent::PeerClosed(slot.handle));
        }
        let weak = weak.clone();
        spawn_local(async move { feed_weak(&weak, why) });
    }
}

enum Role {
    Offer(Rc<RefCell<OfferBatch>>),
    Answer(String),
}

/// Reports one offer (or its failure, `None`) to the batch; the last one feeds the engine.
fn offer_done(
    weak: &Weak<RefCell<State>>,
    batch: &Rc<RefCell<OfferBatch>>,
    offer: Option<(PeerHandle, String)>,
) {
    let ready = {
        let mut b = batch.borrow_mut();
        if let Some(o) = offer {
            b.offers.push(o);
        }
        b.remaining = b.remaining.saturating_sub(1);
        (b.remaining == 0).then(|| std::mem::take(&mut b.offers))
    };
    if let Some(offers) = ready {
        feed_weak(weak, Input::OffersCreated(offers));
    }
}

/// One peer connection from signalling to close. Owns the `RTCPeerConnection` and its channel,
/// so everything it installed is released when it returns.
async fn run_peer(
    weak: Weak<RefCell<State>>,
    slot: Rc<PeerSlot>,
    role: Role,
    settings: RtcSettings,
) {
    let h = slot.handle;
    let result = connect_peer(&weak, &slot, role, settings).await;
    match result {
        Ok(Some((pc, dc))) => {
            let dc = Rc::new(dc);
            {
                let mut st = slot.state.borrow_mut();
                st.connected = true;
            }
            if let Some(inner) = weak.upgrade() {
                inner
                    .borrow_mut()
                    .events
                    .push_back(DriverEvent::PeerConnected(h));
                feed(&inner, Input::PeerConnected(h));
            }
            spawn_local(send_loop(weak.clone(), Rc::clone(&slot), Rc::clone(&dc)));
            while let Some(Some(message)) = unless(Rc::clone(&slot).closed(), dc.recv()).await {
                feed_weak(
                    &weak,
                    Input::PeerMessage {
                        peer: h,
                        data: Bytes::from(message),
                    },
                );
            }
            if let Some(e) = dc.error() {
                tracing::debug!(peer = h.0, error = %e, "data channel closed");
            }
            end_peer(&weak, &slot);
            drop(dc);
            drop(pc);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(peer = h.0, error = %e, "peer connection failed");
            end_peer(&weak, &slot);
        }
    }
}

/// The connection ended on this side: tell the engine unless it closed the peer itself.
fn end_peer(weak: &Weak<RefCell<State>>, slot: &Rc<PeerSlot>) {
    if !slot.close() {
        return;
    }
    let h = slot.handle;
    if let Some(inner) = weak.upgrade() {
        {
            let mut s = inner.borrow_mut();
            s.peers.remove(&h);
            if slot.state.borrow().connected {
                s.events.push_back(DriverEvent::PeerClosed(h));
            }
        }
        feed(&inner, Input::PeerClosed(h));
    }
}

/// Signalling and channel opening. `Ok(None)` when the engine closed the peer meanwhile.
async fn connect_peer(
    weak: &Weak<RefCell<State>>,
    slot: &Rc<PeerSlot>,
    role: Role,
    settings: RtcSettings,
) -> Result<Option<(RtcPeer, DataChannel)>, WebError> {
    let h = slot.handle;
    let mut pc = match RtcPeer::new(settings) {
        Ok(pc) => pc,
        Err(e) => {
            if let Role::Offer(batch) = &role {
                offer_done(weak, batch, None);
            }
            return Err(e);
        }
    };
    match role {
        Role::Offer(batch) => {
            let sdp = unless(Rc::clone(slot).closed(), pc.create_offer()).await;
            match sdp {
                Some(Ok(sdp)) => offer_done(weak, &batch, Some((h, sdp))),
                Some(Err(e)) => {
                    offer_done(weak, &batch, None);
                    return Err(e);
                }
                None => {
                    offer_done(weak, &batch, None);
                    return Ok(None);
                }
            }
            let Some(answer) = unless(Rc::clone(slot).closed(), Rc::clone(slot).answer()).await
            else {
                return Ok(None);
            };
            pc.accept_answer(&answer).await?;
        }
        Role::Answer(offer) => {
            let Some(sdp) = unless(Rc::clone(slot).closed(), pc.accept_offer(&offer)).await else {
                return Ok(None);
            };
            feed_weak(weak, Input::AnswerCreated { peer: h, sdp: sdp? });
        }
    }
    match unless(Rc::clone(slot).closed(), pc.open_channel()).await {
        Some(Ok(dc)) => Ok(Some((pc, dc))),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

/// Hands a peer's queued messages to its channel in order, waiting on `bufferedAmount`.
async fn send_loop(weak: Weak<RefCell<State>>, slot: Rc<PeerSlot>, dc: Rc<DataChannel>) {
    while let Some(message) = Rc::clone(&slot).next_outgoing().await {
        match unless(Rc::clone(&slot).closed(), dc.send(&message)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::debug!(peer = slot.handle.0, error = %e, "send failed");
                end_peer(&weak, &slot);
                return;
            }
            None => return,
        }
    }
}

/// One HTTP request: headers → [`Input::HttpStarted`], body pieces → [`Input::HttpChunk`], then
/// completed or failed. An aborted request ends quietly (the engine already forgot it).
async fn run_http(
    weak: Weak<RefCell<State>>,
    request: HttpHandle,
    url: String,
    range: (u64, Option<u64>),
    signal: web_sys::AbortSignal,
) {
    let result = http_body(&weak, request, &url, range, &signal).await;
    let input = match result {
        Ok(()) => Input::HttpCompleted(request),
        Err(WebError::Aborted) => return,
        Err(e) => Input::HttpFailed {
            request,
            reason: e.to_string(),
        },
    };
    let still_wanted = weak
        .upgrade()
        .is_some_and(|inner| inner.borrow_mut().http.remove(&request).is_some());
    if still_wanted {
        feed_weak(&weak, input);
    }
}

async fn http_body(
    weak: &Weak<RefCell<State>>,
    request: HttpHandle,
    url: &str,
    (from, end): (u64, Option<u64>),
    signal: &web_sys::AbortSignal,
) -> Result<(), WebError> {
    let mut body = fetch_from(url, from, end, signal).await?;
    feed_weak(
        weak,
        Input::HttpStarted {
            request,
            content_length: body.content_length,
        },
    );
    while let Some(chunk) = body.next_chunk().await? {
        if signal.aborted() {
            return Err(WebError::Aborted);
        }
        feed_weak(
            weak,
            Input::HttpChunk {
                request,
                data: Bytes::from(chunk),
            },
        );
    }
    Ok(())
}

/// Opens the tracker socket for the current tracker URL (none configured: nothing).
fn connect_tracker(inner: &Rc<RefCell<State>>) {
    let mut s = inner.borrow_mut();
    if s.shut_down || s.config.trackers.is_empty() {
        return;
    }
    let url = s.config.trackers[s.tracker_index % s.config.trackers.len()].clone();
    s.tracker = None;
    s.tracker_open = false;
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!(%url, error = %crate::error::js_message(&e), "tracker URL refused");
            drop(s);
            schedule_reconnect(inner, None);
            return;
        }
    };
    let weak = Rc::downgrade(inner);
    let on_open = {
        let weak = weak.clone();
        let url = url.clone();
        Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
            let Some(inner) = weak.upgrade() else { return };
            {
                let mut s = inner.borrow_mut();
                // The backoff is reset by an accepted announce, not by the socket opening.
                s.tracker_open = true;
                s.events
                    .push_back(DriverEvent::TrackerConnected(url.clone()));
            }
            feed(&inner, Input::TrackerConnected);
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| match e.data().as_string() {
            Some(text) => {
                if segswarm_core::tracker_client::is_announce_accepted(&text) {
                    if let Some(inner) = weak.upgrade() {
                        inner.borrow_mut().backoff.reset();
                    }
                }
                feed_weak(&weak, Input::TrackerMessage(text))
            }
            None => tracing::debug!("binary tracker frame ignored"),
        })
    };
    let on_close = {
        let weak = weak.clone();
        let url = url.clone();
        Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let code = e.code();
            let was_open = {
                let mut s = inner.borrow_mut();
                let was_open = s.tracker_open;
                s.tracker_open = false;
                if !was_open {
                    // Never opened: try the next URL.
                    s.tracker_index = s.tracker_index.wrapping_add(1);
                }
                s.events
                    .push_back(DriverEvent::TrackerDisconnected(url.clone()));
                was_open
            };
            if was_open {
                feed(&inner, Input::TrackerDisconnected);
            } else {
                dispatch(&inner);
            }
            schedule_reconnect(&inner, Some(code));
        })
    };
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    s.tracker = Some(TrackerWs {
        ws,
        url,
        _on_open: on_open,
        _on_message: on_message,
        _on_close: on_close,
    });
}

/// Reconnects after the next backoff delay (full jitter; at least
/// [`DriverConfig::reconnect_after_going_away`] after a close with code 1013 or 1001).
fn schedule_reconnect(inner: &Rc<RefCell<State>>, close_code: Option<u16>) {
    let mut s = inner.borrow_mut();
    if s.shut_down {
        return;
    }
    let delay = s.backoff.next_delay(close_code, js_sys::Math::random());
    let weak = Rc::downgrade(inner);
    tracing::debug!(
        url = s.tracker.as_ref().map(|t| t.url.as_str()),
        ?delay,
        "tracker reconnect scheduled"
    );
    s.reconnect_timer = Some(Timeout::new(delay, move || {
        if let Some(inner) = weak.upgrade() {
            let spent = inner.borrow_mut().reconnect_timer.take();
            connect_tracker(&inner);
            drop(spent);
        }
    }));
}
