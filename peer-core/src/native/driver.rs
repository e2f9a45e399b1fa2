//! The peer driver: one [`Engine`] (one swarm) run on a tokio task over real sockets.
//!
//! [`PeerDriver::spawn`] starts the task and returns a [`DriverHandle`], whose methods are the
//! engine's application actions. The task feeds the engine what happens ([`IoEvent`]s) and carries
//! out what it polls:
//!
//! - [`Transmit::Tracker`] → the shared tracker socket of each URL in [`DriverSettings::tracker_urls`]
//!   ([`TrackerHub`]: one WebSocket per URL for every engine of the process, frames routed by
//!   `info_hash`, reconnect with backoff); frames go to every connected tracker;
//! - [`RtcCommand`]s → WebRTC peer connections ([`rtc`](super::rtc)), one task each;
//!   [`Transmit::Peer`] → that peer's writer, which waits while the
//!   channel holds more than [`ChannelSettings::send_buffer_bytes`](crate::rtc_settings::ChannelSettings::send_buffer_bytes) (back-pressure); the engine
//!   already cuts messages to at most 64 KiB; bytes waiting for the writer are bounded by
//!   [`DriverSettings::max_peer_queue_bytes`], past which the peer is closed
//!   ([`IoEvent::PeerSendOverrun`]);
//! - [`HttpCommand`]s → the HTTP fetcher ([`http`](super::http)) with `Range` resume;
//!   the engine itself picks origin or mirror for each request;
//! - timers from [`Engine::poll_timeout`].
//!
//! What the application should hear arrives as [`DriverEvent`]s: segments ready or failed, peers
//! connected or closed, trackers up or down. [`DriverHandle::shutdown`] announces `stopped`,
//! closes the peers and waits for the task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::http::{FetchEvent, FetchRequest, HttpError, HttpFetcher, HttpSettings};
use super::rtc::{RtcPeer, RtcSettings};
use super::tracker_hub::{LinkEvent, TrackerHub, TrackerLink};
use crate::engine::{
    DeliverySource, Engine, EngineConfig, Event, HttpCommand, HttpHandle, IoEvent, PeerHandle,
    RtcCommand, SegmentInfo, Stats, Transmit,
};
use crate::integrity::SegmentManifest;
use crate::time::Instant;
use crate::wire::SegmentId;

/// Settings of a [`PeerDriver`] besides the engine's own.
#[derive(Debug, Clone)]
pub struct DriverSettings {
    /// WebSocket tracker URLs (`ws://`, `wss://`). Empty = no tracker: HTTP only.
    pub tracker_urls: Vec<String>,
    /// WebRTC settings (ICE servers, UDP addresses, mDNS, message size, send buffer).
    pub rtc: RtcSettings,
    /// HTTP fetcher settings (timeouts, largest body).
    pub http: HttpSettings,
    /// The tracker sockets to share; `None` = the process-wide [`TrackerHub::global`].
    pub hub: Option<TrackerHub>,
    /// Longest wait at shutdown for the `stopped` announce to be written and peers to close.
    /// Default 2 s.
    pub close_timeout: Duration,
    /// Most bytes queued for one peer's data channel beyond what the channel itself buffers
    /// ([`ChannelSettings::send_buffer_bytes`](crate::rtc_settings::ChannelSettings::send_buffer_bytes)); a peer that lets more pile up (it asks for segments
    /// and does not read them) is closed and counted in [`Stats::peers_send_overrun`].
    /// Default 32 MiB (as the browser driver's `max_peer_queue_bytes`).
    pub max_peer_queue_bytes: usize,
}

impl DriverSettings {
    /// Defaults with the given tracker URLs.
    pub fn new(tracker_urls: Vec<String>) -> Self {
        Self {
            tracker_urls,
            rtc: RtcSettings::default(),
            http: HttpSettings::default(),
            hub: None,
            close_timeout: Duration::from_secs(2),
            max_peer_queue_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What the driver reports to the application.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// A segment asked for with [`DriverControl::want_segment`] is available.
    SegmentReady {
        /// Segment id.
        segment: SegmentId,
        /// Its bytes.
        data: Bytes,
        /// Where it came from.
        source: DeliverySource,
    },
    /// A segment asked for cannot be loaded.
    SegmentFailed {
        /// Segment id.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
    /// A peer's data channel opened.
    PeerConnected(PeerHandle),
    /// An open peer connection closed (by the remote side, the network or the engine).
    PeerClosed(PeerHandle),
    /// A tracker socket opened.
    TrackerConnected {
        /// Its URL.
        url: String,
    },
    /// A tracker socket closed or could not be opened (it is retried).
    TrackerDisconnected {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Statistics of a running driver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriverStats {
    /// The engine's transfer statistics.
    pub engine: Stats,
    /// Peers with an open data channel now.
    pub peers_connected: usize,
    /// Most peers connected at once so far.
    pub peers_max: usize,
    /// Tracker sockets open now.
    pub trackers_connected: usize,
    /// Peer connections being set up or open (driver side).
    pub peer_tasks: usize,
    /// HTTP requests running.
    pub http_running: usize,
    /// Segments of the playlist that some connected peer announced as loaded.
    pub segments_on_peers: usize,
}

/// Errors of the driver API.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] HttpError),
    /// The driver task has ended (shut down, or the runtime stopped).
    #[error("the driver has ended")]
    Ended,
}

/// What the handles ask of the task: the engine's application actions, statistics, shutdown.
enum Cmd {
    Playlist(Vec<SegmentInfo>),
    Manifest(SegmentManifest),
    Playback(f64),
    Want(SegmentId),
    Cancel(SegmentId),
    Add(SegmentId, Bytes),
    Stats(oneshot::Sender<DriverStats>),
    Shutdown,
}

/// Sends inputs to a running driver and reads its statistics; cheap to clone.
#[derive(Clone)]
pub struct DriverControl {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl std::fmt::Debug for DriverControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverControl").finish_non_exhaustive()
    }
}

impl DriverControl {
    fn send(&self, cmd: Cmd) -> Result<(), DriverError> {
        self.tx.send(cmd).map_err(|_| DriverError::Ended)
    }

    /// The current playlist ([`Engine::set_playlist`]).
    pub fn set_playlist(&self, segments: Vec<SegmentInfo>) -> Result<(), DriverError> {
        self.send(Cmd::Playlist(segments))
    }

    /// The integrity manifest ([`Engine::set_manifest`]).
    pub fn set_manifest(&self, manifest: SegmentManifest) -> Result<(), DriverError> {
        self.send(Cmd::Manifest(manifest))
    }

    /// Where playback is, media seconds ([`Engine::set_playback`]).
    pub fn set_playback(&self, position: f64) -> Result<(), DriverError> {
        self.send(Cmd::Playback(position))
    }

    /// The player needs this segment: [`DriverEvent::SegmentReady`] or
    /// [`DriverEvent::SegmentFailed`] follows ([`Engine::want_segment`]).
    pub fn want_segment(&self, segment: SegmentId) -> Result<(), DriverError> {
        self.send(Cmd::Want(segment))
    }

    /// The player no longer needs this segment ([`Engine::cancel_segment`]).
    pub fn cancel_segment(&self, segment: SegmentId) -> Result<(), DriverError> {
        self.send(Cmd::Cancel(segment))
    }

    /// A segment held from elsewhere, offered to peers ([`Engine::add_segment`]).
    pub fn add_segment(&self, segment: SegmentId, data: Bytes) -> Result<(), DriverError> {
        self.send(Cmd::Add(segment, data))
    }

    /// Current statistics.
    pub async fn stats(&self) -> Result<DriverStats, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Stats(tx))
            .map_err(|_| DriverError::Ended)?;
        rx.await.map_err(|_| DriverError::Ended)
    }
}

/// A running driver: act on its engine (through [`DriverHandle::control`] or `Deref`), read events,
/// shut down.
#[derive(Debug)]
pub struct DriverHandle {
    control: DriverControl,
    events: mpsc::UnboundedReceiver<DriverEvent>,
    task: Option<JoinHandle<()>>,
}

impl std::ops::Deref for DriverHandle {
    type Target = DriverControl;

    fn deref(&self) -> &DriverControl {
        &self.control
    }
}

impl DriverHandle {
    /// A clonable handle for actions and statistics.
    pub fn control(&self) -> DriverControl {
        self.control.clone()
    }

    /// The next event; `None` once the driver has ended. Events queue without bound until read.
    pub async fn next_event(&mut self) -> Option<DriverEvent> {
        self.events.recv().await
    }

    /// The next event if one is queued.
    pub fn try_event(&mut self) -> Option<DriverEvent> {
        self.events.try_recv().ok()
    }

    /// Leaves the swarm: the engine announces `stopped` (written before the tracker link is
    /// released), peers are closed, HTTP requests aborted; waits for the task to end.
    pub async fn shutdown(mut self) {
        let _ = self.control.tx.send(Cmd::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        // The task sees its command channel close and shuts down on its own.
        let _ = self.control.tx.send(Cmd::Shutdown);
    }
}

/// Starts drivers. See the module documentation.
#[derive(Debug)]
pub struct PeerDriver;

impl PeerDriver {
    /// Starts a driver for one engine. Must run inside a tokio runtime. The engine joins the
    /// swarm on each tracker as soon as its socket is open.
    pub fn spawn(
        config: EngineConfig,
        settings: DriverSettings,
    ) -> Result<DriverHandle, DriverError> {
        let fetcher = HttpFetcher::new(&[], settings.http.clone())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let hub = settings.hub.clone().unwrap_or_else(TrackerHub::global);
        let mut links = Vec::new();
        for (i, url) in settings.tracker_urls.iter().enumerate() {
            let (link, mut link_events) = hub.join(url, config.info_hash);
            let itx = internal_tx.clone();
            tokio::spawn(async move {
                while let Some(ev) = link_events.recv().await {
                    if itx.send(Internal::Link(i, ev)).is_err() {
                        break;
                    }
                }
            });
            links.push((link, false));
        }
        let task = Task {
            engine: Engine::new(config),
            settings,
            fetcher,
            links,
            events: events_tx,
            internal_tx,
            peers: HashMap::new(),
            http: HashMap::new(),
            peers_max: 0,
            deferred: Vec::new(),
        };
        let join = tokio::spawn(task.run(rx, internal_rx));
        Ok(DriverHandle {
            control: DriverControl { tx },
            events,
            task: Some(join),
        })
    }
}

/// What the IO tasks tell the driver task.
enum Internal {
    OfferMade {
        peer: PeerHandle,
        sdp: Option<String>,
    },
    AnswerMade {
        peer: PeerHandle,
        sdp: String,
    },
    PeerOpen(PeerHandle, PeerWriter),
    PeerMessage(PeerHandle, Bytes),
    PeerEnded(PeerHandle, String),
    Http(HttpHandle, FetchEvent),
    Link(usize, LinkEvent),
}

enum PeerCtl {
    Answer(String),
    Close,
}

/// The way to a peer's data-channel writer, with the bytes queued for it.
struct PeerWriter {
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes handed to the writer and not yet accepted by the data channel.
    queued: Arc<AtomicUsize>,
}

impl PeerWriter {
    /// Queues `data`; `false` (nothing queued) if that would pass `max` bytes.
    fn send(&self, data: Bytes, max: usize) -> bool {
        let n = data.len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > max {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        if self.tx.send(data).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
        }
        true
    }
}

struct PeerSlot {
    ctl: mpsc::UnboundedSender<PeerCtl>,
    writer: Option<PeerWriter>,
    task: JoinHandle<()>,
}

struct HttpSlot {
    resume_from: u64,
    task: JoinHandle<()>,
}

struct Task {
    engine: Engine,
    settings: DriverSettings,
    fetcher: HttpFetcher,
    /// Tracker links and whether each is connected.
    links: Vec<(TrackerLink, bool)>,
    events: mpsc::UnboundedSender<DriverEvent>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    peers: HashMap<PeerHandle, PeerSlot>,
    http: HashMap<HttpHandle, HttpSlot>,
    peers_max: usize,
    /// IO events raised while carrying out commands, fed once those are done.
    deferred: Vec<IoEvent>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Cmd>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        loop {
            let wake = self.engine.poll_timeout();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Cmd::Playlist(segments)) => self.act(|e, now| e.set_playlist(segments, now)),
                    Some(Cmd::Manifest(m)) => self.act(|e, now| e.set_manifest(m, now)),
                    Some(Cmd::Playback(position)) => self.act(|e, now| e.set_playback(position, now)),
                    Some(Cmd::Want(segment)) => self.act(|e, now| e.want_segment(segment, now)),
                    Some(Cmd::Cancel(segment)) => self.act(|e, now| e.cancel_segment(segment, now)),
                    Some(Cmd::Add(segment, data)) => self.act(|e, now| e.add_segment(segment, data, now)),
                    Some(Cmd::Stats(reply)) => {
                        let _ = reply.send(self.stats());
                    }
                    Some(Cmd::Shutdown) | None => break,
                },
                Some(ev) = internal.recv() => self.internal(ev),
                _ = sleep => self.act(Engine::handle_timeout),
            }
        }
        self.shutdown().await;
    }

    fn stats(&self) -> DriverStats {
        DriverStats {
            engine: self.engine.stats().clone(),
            peers_connected: self.engine.connected_peers(),
            peers_max: self.peers_max,
            trackers_connected: self.links.iter().filter(|(_, c)| *c).count(),
            peer_tasks: self.peers.len(),
            http_running: self.http.len(),
            segments_on_peers: self.engine.segments_on_peers(),
        }
    }

    fn emit(&self, ev: DriverEvent) {
        let _ = self.events.send(ev);
    }

    /// Feeds one IO event and carries out everything the engine asks for.
    fn feed(&mut self, event: IoEvent) {
        self.act(|e, now| e.handle_event(event, now));
    }

    /// Runs `f` on the engine with the current time, then carries out what the engine queued and
    /// feeds the IO events that raised.
    fn act(&mut self, f: impl FnOnce(&mut Engine, Instant)) {
        f(&mut self.engine, Instant::now());
        self.drain();
        while let Some(event) = self.deferred.pop() {
            self.engine.handle_event(event, Instant::now());
            self.drain();
        }
        self.peers_max = self.peers_max.max(self.engine.connected_peers());
    }

    /// Carries out every transmit and command the engine queued, and reports its events.
    fn drain(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            self.transmit(t);
        }
        while let Some(c) = self.engine.poll_rtc() {
            self.rtc(c);
        }
        while let Some(c) = self.engine.poll_http() {
            self.http_command(c);
        }
        while let Some(ev) = self.engine.poll_event() {
            let ev = match ev {
                Event::SegmentReady {
                    segment,
                    data,
                    source,
                } => DriverEvent::SegmentReady {
                    segment,
                    data,
                    source,
                },
                Event::SegmentFailed { segment, reason } => {
                    DriverEvent::SegmentFailed { segment, reason }
                }
                Event::PeerConnected(peer) => DriverEvent::PeerConnected(peer),
                Event::PeerClosed(peer) => DriverEvent::PeerClosed(peer),
                // Byte counts and stored segments are read from the statistics.
                _ => continue,
            };
            self.emit(ev);
        }
    }

    fn transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Tracker(frame) => {
                for (link, connected) in &self.links {
                    if *connected {
                        link.send(frame.clone());
                    }
                }
            }
            Transmit::Peer { peer, data, .. } => {
                let max = self.settings.max_peer_queue_bytes;
                let Some(w) = self.peers.get(&peer).and_then(|s| s.writer.as_ref()) else {
                    return;
                };
                if !w.send(data, max) {
                    tracing::debug!(?peer, max, "peer send queue overrun; closing");
                    if let Some(slot) = self.peers.remove(&peer) {
                        let _ = slot.ctl.send(PeerCtl::Close);
                    }
                    self.deferred.push(IoEvent::PeerSendOverrun(peer));
                }
            }
        }
    }

    fn rtc(&mut self, c: RtcCommand) {
        match c {
            RtcCommand::CreateOffers(handles) => {
                for h in handles {
                    self.spawn_peer(h, Role::Offer);
                }
            }
            RtcCommand::CreateAnswer { peer, offer_sdp } => {
                self.spawn_peer(peer, Role::Answer { offer_sdp });
            }
            RtcCommand::AcceptAnswer { peer, answer_sdp } => {
                if let Some(slot) = self.peers.get(&peer) {
                    let _ = slot.ctl.send(PeerCtl::Answer(answer_sdp));
                }
            }
            RtcCommand::Close(peer) => {
                if let Some(slot) = self.peers.remove(&peer) {
                    // The task closes the connection and ends on its own.
                    let _ = slot.ctl.send(PeerCtl::Close);
                }
            }
        }
    }

    fn http_command(&mut self, c: HttpCommand) {
        match c {
            HttpCommand::Get {
                request,
                url,
                range_from,
                byte_range,
            } => {
                let resume_from = range_from.unwrap_or(0);
                let mut fetch = self.fetcher.fetch(FetchRequest {
                    path: url,
                    byte_range,
                    resume_from,
                });
                let tx = self.internal_tx.clone();
                let task = tokio::spawn(async move {
                    while let Some(ev) = fetch.next().await {
                        if tx.send(Internal::Http(request, ev)).is_err() {
                            break;
                        }
                    }
                });
                self.http.insert(request, HttpSlot { resume_from, task });
            }
            HttpCommand::Abort(request) => {
                if let Some(slot) = self.http.remove(&request) {
                    slot.task.abort();
                }
            }
        }
    }

    fn spawn_peer(&mut self, handle: PeerHandle, role: Role) {
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(peer_task(
            handle,
            role,
            self.settings.rtc.clone(),
            ctl_rx,
            self.internal_tx.clone(),
        ));
        self.peers.insert(
            handle,
            PeerSlot {
                ctl,
                writer: None,
                task,
            },
        );
    }

    fn internal(&mut self, ev: Internal) {
        match ev {
            Internal::OfferMade { peer, sdp } => self.feed(IoEvent::OfferCreated { peer, sdp }),
            Internal::AnswerMade { peer, sdp } => {
                if self.peers.contains_key(&peer) {
                    self.feed(IoEvent::AnswerCreated { peer, sdp });
                }
            }
            Internal::PeerOpen(peer, writer) => {
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                slot.writer = Some(writer);
                self.feed(IoEvent::PeerConnected(peer));
            }
            Internal::PeerMessage(peer, data) => {
                if self.peers.contains_key(&peer) {
                    self.feed(IoEvent::PeerMessage { peer, data });
                }
            }
            Internal::PeerEnded(peer, reason) => {
                if self.peers.remove(&peer).is_none() {
                    return;
                }
                tracing::debug!(?peer, %reason, "peer connection ended");
                self.feed(IoEvent::PeerClosed(peer));
            }
            Internal::Http(request, ev) => self.http_event(request, ev),
            Internal::Link(i, ev) => self.link_event(i, ev),
        }
    }

    fn http_event(&mut self, request: HttpHandle, ev: FetchEvent) {
        let Some(slot) = self.http.get(&request) else {
            return;
        };
        match ev {
            FetchEvent::Response { total, .. } => {
                let content_length = total.map(|t| t.saturating_sub(slot.resume_from));
                self.feed(IoEvent::HttpStarted {
                    request,
                    content_length,
                });
            }
            FetchEvent::Chunk { data, .. } => self.feed(IoEvent::HttpChunk { request, data }),
            FetchEvent::Failover { .. } => {}
            FetchEvent::Done { .. } => {
                self.http.remove(&request);
                self.feed(IoEvent::HttpCompleted(request));
            }
            FetchEvent::Failed(e) => {
                self.http.remove(&request);
                self.feed(IoEvent::HttpFailed {
                    request,
                    reason: e.to_string(),
                });
            }
        }
    }

    fn link_event(&mut self, i: usize, ev: LinkEvent) {
        let Some((link, connected)) = self.links.get_mut(i) else {
            return;
        };
        let url = link.url().to_owned();
        match ev {
            LinkEvent::Connected => {
                *connected = true;
                self.emit(DriverEvent::TrackerConnected { url });
                // (Re-)announces on every connected tracker, the new one included.
                self.feed(IoEvent::TrackerConnected);
            }
            LinkEvent::Disconnected { reason, .. } => {
                let was = std::mem::replace(connected, false);
                self.emit(DriverEvent::TrackerDisconnected { url, reason });
                if was && !self.links.iter().any(|(_, c)| *c) {
                    self.feed(IoEvent::TrackerDisconnected);
                }
            }
            LinkEvent::Frame(frame) => {
                if *connected {
                    self.feed(IoEvent::TrackerMessage(frame));
                }
            }
        }
    }

    async fn shutdown(mut self) {
        self.act(Engine::shutdown);
        let timeout = self.settings.close_timeout;
        for (link, _) in std::mem::take(&mut self.links) {
            link.close(timeout).await;
        }
        for (_, slot) in self.http.drain() {
            slot.task.abort();
        }
        let tasks: Vec<JoinHandle<()>> = self
            .peers
            .drain()
            .map(|(_, slot)| {
                let _ = slot.ctl.send(PeerCtl::Close);
                slot.task
            })
            .collect();
        let _ = tokio::time::timeout(timeout, async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
    }
}

enum Role {
    Offer,
    Answer { offer_sdp: String },
}

/// One peer connection from creation to close.
async fn peer_task(
    handle: PeerHandle,
    role: Role,
    settings: RtcSettings,
    mut ctl: mpsc::UnboundedReceiver<PeerCtl>,
    tx: mpsc::UnboundedSender<Internal>,
) {
    let ended = |reason: String| {
        let _ = tx.send(Internal::PeerEnded(handle, reason));
    };
    let mut peer = match RtcPeer::new(&settings).await {
        Ok(p) => p,
        Err(e) => {
            if let Role::Offer = role {
                let _ = tx.send(Internal::OfferMade {
                    peer: handle,
                    sdp: None,
                });
            }
            return ended(format!("peer connection not created: {e}"));
        }
    };
    match role {
        Role::Offer => {
            let sdp = peer.create_offer().await;
            let _ = tx.send(Internal::OfferMade {
                peer: handle,
                sdp: sdp.as_ref().ok().cloned(),
            });
            if let Err(e) = sdp {
                peer.close().await;
                return ended(format!("offer failed: {e}"));
            }
            // Wait for the answer (the engine closes expired offers).
            let answer = match ctl.recv().await {
                Some(PeerCtl::Answer(sdp)) => sdp,
                Some(PeerCtl::Close) | None => {
                    peer.close().await;
                    return;
                }
            };
            if let Err(e) = peer.accept_answer(&answer).await {
                peer.close().await;
                return ended(format!("answer refused: {e}"));
            }
        }
        Role::Answer { offer_sdp } => match peer.accept_offer(&offer_sdp).await {
            Ok(sdp) => {
                let _ = tx.send(Internal::AnswerMade { peer: handle, sdp });
            }
            Err(e) => {
                peer.close().await;
                return ended(format!("offer refused: {e}"));
            }
        },
    }
    let conn = tokio::select! {
        c = peer.connect() => c,
        _ = ctl.recv() => return,
    };
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => return ended(format!("data channel did not open: {e}")),
    };
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Bytes>();
    let queued = Arc::new(AtomicUsize::new(0));
    let sender = conn.sender();
    let writer = {
        let queued = queued.clone();
        tokio::spawn(async move {
            while let Some(data) = wrx.recv().await {
                let sent = sender.send(&data).await;
                queued.fetch_sub(data.len(), Ordering::AcqRel);
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "data channel send failed");
                    break;
                }
            }
        })
    };
    let open = PeerWriter { tx: wtx, queued };
    if tx.send(Internal::PeerOpen(handle, open)).is_err() {
        conn.close().await;
        writer.abort();
        return;
    }
    let reason = loop {
        tokio::select! {
            msg = conn.recv() => match msg {
                Some(data) => {
                    if tx.send(Internal::PeerMessage(handle, data)).is_err() {
                        break "driver ended".to_owned();
                    }
                }
                None => break "data channel closed".to_owned(),
            },
            c = ctl.recv() => match c {
                Some(PeerCtl::Answer(_)) => {}
                Some(PeerCtl::Close) | None => {
                    writer.abort();
                    conn.close().await;
                    return;
                }
            },
        }
    };
    writer.abort();
    conn.close().await;
    ended(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_writer_refuses_bytes_past_its_bound() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let w = PeerWriter {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        assert!(w.send(Bytes::from(vec![0; 60]), 100));
        assert!(!w.send(Bytes::from(vec![0; 60]), 100));
        assert_eq!(w.queued.load(Ordering::Acquire), 60);
        assert_eq!(rx.try_recv().map(|b| b.len()).ok(), Some(60));
        assert!(rx.try_recv().is_err());
    }
}
