//! Raw-frame tracker sockets shared by every engine of the process.
//!
//! The [`Engine`](crate::engine::Engine) runs its own sans-IO tracker client and only needs a pipe
//! for text frames ([`Transmit::Tracker`](crate::engine::Transmit::Tracker) out,
//! [`IoEvent::TrackerMessage`](crate::engine::IoEvent::TrackerMessage) in). A [`TrackerHub`] keeps one
//! WebSocket per tracker URL and lets many engines ([`TrackerHub::join`]) use it, as the JavaScript
//! clients pool their sockets per URL: outgoing frames are written as they are, inbound frames are
//! read once ([`TrackerFrame::parse`]) and routed by their `info_hash` (a frame without one, such
//! as a bare failure, goes to every swarm of the socket; one that is not a JSON object is dropped). Two engines of the same swarm cannot share a socket (the tracker's relayed
//! offers do not say which local peer they are for), so the second one gets a socket of its own.
//!
//! A socket that closes or cannot be opened is retried after a [`Backoff`] delay (exponential,
//! full jitter, at least 30 s after a close with code 1013 or 1001); the backoff is reset only when
//! the tracker accepts an announce on the socket, not when it merely opens. A tracker that
//! *refused* us waits minutes ([`BackoffConfig::refused_min`], 3 min by default, PeerTube's IP
//! block): a close after a `failure reason` to an announce (with no accepted announce since), an
//! upgrade answered with HTTP 401/403/429 (PeerTube's `403 Forbidden` to a blocked IP), or a reset
//! during the handshake; the hub logs why at warn level. Each
//! [`TrackerLink`] hears [`LinkEvent::Connected`] / [`LinkEvent::Disconnected`] so its engine
//! re-announces on reconnect. Frames sent while disconnected are dropped (the engine's client
//! announces again on connect). The socket closes once its last link has left.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::{is_refusal_status, Backoff, BackoffConfig};
use crate::tracker_client::{InfoHash, TrackerFrame};

/// Settings of the sockets a [`TrackerHub`] opens.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerHubSettings {
    /// Retry delays after a failed or closed connection (defaults: 1 s doubling up to 30 s, full
    /// jitter, at least 30 s after a close with code 1013 or 1001, 3 min or more after a refusal).
    pub backoff: BackoffConfig,
    /// Longest wait for the TCP connect and WebSocket handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// Largest frame accepted from the tracker, bytes. Default 256 KiB.
    pub max_message_bytes: usize,
}

impl Default for TrackerHubSettings {
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::default(),
            connect_timeout: Duration::from_secs(10),
            max_message_bytes: 256 * 1024,
        }
    }
}

/// What a [`TrackerLink`] hears.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// The socket is open (sent at once when joining an open socket, and after each reconnect).
    Connected,
    /// The socket closed or could not be opened; the next attempt is in `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// A text frame for this swarm, as read by the hub (for
    /// [`IoEvent::TrackerMessage`](crate::engine::IoEvent::TrackerMessage)).
    Frame(TrackerFrame),
}

enum SocketCmd {
    Join(InfoHash, mpsc::UnboundedSender<LinkEvent>),
    Leave(InfoHash),
    Send(String),
    Flush(oneshot::Sender<()>),
}

struct Entry {
    swarms: HashSet<InfoHash>,
    cmd: mpsc::UnboundedSender<SocketCmd>,
}

#[derive(Default)]
struct HubState {
    next_id: u64,
    sockets: HashMap<String, HashMap<u64, Entry>>,
}

struct HubInner {
    settings: TrackerHubSettings,
    state: Mutex<HubState>,
}

/// One WebSocket per tracker URL, shared by the engines of a process. Cheap to clone.
#[derive(Clone)]
pub struct TrackerHub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for TrackerHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerHub")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Default for TrackerHub {
    fn default() -> Self {
        Self::new(TrackerHubSettings::default())
    }
}

fn lock(state: &Mutex<HubState>) -> std::sync::MutexGuard<'_, HubState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TrackerHub {
    /// A hub of its own (tests, or sockets with other settings).
    pub fn new(settings: TrackerHubSettings) -> Self {
        Self {
            inner: Arc::new(HubInner {
                settings,
                state: Mutex::new(HubState::default()),
            }),
        }
    }

    /// The process-wide hub (default settings), used by drivers not given one. Its sockets run
    /// on the tokio runtime that opened them: a process with several runtimes (tests with a
    /// runtime each) should give each its own hub.
    pub fn global() -> Self {
        static GLOBAL: OnceLock<TrackerHub> = OnceLock::new();
        GLOBAL.get_or_init(TrackerHub::default).clone()
    }

    /// Sockets to `url` in use by at least one swarm (for tests and statistics; a socket whose
    /// last swarm left closes shortly after).
    pub fn socket_count(&self, url: &str) -> usize {
        lock(&self.inner.state).sockets.get(url).map_or(0, |list| {
            list.values().filter(|e| !e.swarms.is_empty()).count()
        })
    }

    /// Joins swarm `info_hash` on the tracker at `url` (`ws://` or `wss://`): the shared socket
    /// for that URL, opened on first use (or a new one if that socket already carries this swarm).
    /// Returns the link (to send and leave) and its events. Must run inside a tokio runtime.
    pub fn join(&self, url: &str, info_hash: InfoHash) -> (TrackerLink, LinkEvents) {
        let (tx, events) = mpsc::unbounded_channel();
        let mut state = lock(&self.inner.state);
        let reusable = state.sockets.get_mut(url).and_then(|list| {
            list.iter_mut()
                .find(|(_, e)| !e.swarms.contains(&info_hash) && !e.cmd.is_closed())
                .map(|(id, e)| (*id, e))
        });
        let (id, cmd, new_socket) = match reusable {
            Some((id, entry)) => {
                entry.swarms.insert(info_hash);
                (id, entry.cmd.clone(), None)
            }
            None => {
                let id = state.next_id;
                state.next_id += 1;
                let (cmd, rx) = mpsc::unbounded_channel();
                let entry = Entry {
                    swarms: HashSet::from([info_hash]),
                    cmd: cmd.clone(),
                };
                state
                    .sockets
                    .entry(url.to_owned())
                    .or_default()
                    .insert(id, entry);
                (id, cmd, Some(rx))
            }
        };
        // Queued before a new socket's task starts: the outcome of its first attempt reaches
        // this swarm even when that attempt fails at once.
        let _ = cmd.send(SocketCmd::Join(info_hash, tx));
        if let Some(rx) = new_socket {
            tokio::spawn(run_socket(self.clone(), url.to_owned(), id, rx));
        }
        drop(state);
        let link = TrackerLink {
            hub: self.clone(),
            url: url.to_owned(),
            socket: id,
            info_hash,
            cmd,
            left: false,
        };
        (link, events)
    }

    /// Removes `info_hash` from socket `id`; `true` if the socket has no swarm left (and was
    /// removed from the hub, so no one joins it any more).
    fn leave(&self, url: &str, id: u64, info_hash: InfoHash) -> bool {
        let mut state = lock(&self.inner.state);
        let Some(list) = state.sockets.get_mut(url) else {
            return true;
        };
        let Some(entry) = list.get_mut(&id) else {
            return true;
        };
        entry.swarms.remove(&info_hash);
        entry.swarms.is_empty()
    }

    /// Called by the socket task when it has no route left: removes the entry unless someone
    /// joined meanwhile. `true` if the task may end.
    fn retire(&self, url: &str, id: u64) -> bool {
        let mut state = lock(&self.inner.state);
        let Some(list) = state.sockets.get_mut(url) else {
            return true;
        };
        if list.get(&id).is_some_and(|e| !e.swarms.is_empty()) {
            return false;
        }
        list.remove(&id);
        if list.is_empty() {
            state.sockets.remove(url);
        }
        true
    }
}

/// One swarm's use of a shared tracker socket. Dropping it leaves the swarm (prefer
/// [`TrackerLink::close`], which first waits for queued frames to be written).
#[derive(Debug)]
pub struct TrackerLink {
    hub: TrackerHub,
    url: String,
    socket: u64,
    info_hash: InfoHash,
    cmd: mpsc::UnboundedSender<SocketCmd>,
    left: bool,
}

/// The events of one [`TrackerLink`]; `None` from `recv` once the socket task has ended.
pub type LinkEvents = mpsc::UnboundedReceiver<LinkEvent>;

impl std::fmt::Debug for SocketCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketCmd::Join(..) => f.write_str("Join"),
            SocketCmd::Leave(_) => f.write_str("Leave"),
            SocketCmd::Send(_) => f.write_str("Send"),
            SocketCmd::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl TrackerLink {
    /// The tracker URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes a text frame (dropped while the socket is down).
    pub fn send(&self, frame: String) {
        let _ = self.cmd.send(SocketCmd::Send(frame));
    }

    /// Waits (at most `timeout`) until the frames sent so far are written, then leaves.
    pub async fn close(mut self, timeout: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(SocketCmd::Flush(tx)).is_ok() {
            let _ = tokio::time::timeout(timeout, rx).await;
        }
        self.leave();
    }

    fn leave(&mut self) {
        if self.left {
            return;
        }
        self.left = true;
        self.hub.leave(&self.url, self.socket, self.info_hash);
        let _ = self.cmd.send(SocketCmd::Leave(self.info_hash));
    }
}

impl Drop for TrackerLink {
    fn drop(&mut self) {
        self.leave();
    }
}

/// An info_hash for the log: 40 hex digits, or `(unnamed)`.
fn info_hash_label(ih: Option<&InfoHash>) -> String {
    match ih {
        Some(ih) => ih.iter().map(|b| format!("{b:02x}")).collect(),
        None => "(unnamed)".to_owned(),
    }
}

/// Whether a failed connect means the tracker refuses us: the upgrade answered with
/// [`is_refusal_status`], or the connection reset during the handshake (how a blocked IP may
/// see it). A refused TCP connect (no tracker listening) is not a refusal.
fn connect_refused(e: &tokio_tungstenite::tungstenite::Error) -> bool {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(resp) => is_refusal_status(resp.status().as_u16()),
        Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        _ => false,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct SocketTask {
    hub: TrackerHub,
    url: String,
    id: u64,
    routes: HashMap<InfoHash, mpsc::UnboundedSender<LinkEvent>>,
    connected: bool,
    backoff: Backoff,
    /// The last refusal of an announce on this socket not followed by an accepted announce:
    /// the swarm (if named) and the tracker's reason.
    refusal: Option<(Option<InfoHash>, String)>,
}

enum Step {
    Continue,
    /// No route left: the task ends.
    Done,
}

impl SocketTask {
    fn broadcast(&mut self, ev: &LinkEvent) {
        self.routes.retain(|_, tx| tx.send(ev.clone()).is_ok());
    }

    /// Applies a command; frames to write are returned.
    fn apply(&mut self, cmd: SocketCmd) -> (Step, Option<String>) {
        match cmd {
            SocketCmd::Join(ih, tx) => {
                if self.connected {
                    let _ = tx.send(LinkEvent::Connected);
                }
                self.routes.insert(ih, tx);
                (Step::Continue, None)
            }
            SocketCmd::Leave(ih) => {
                self.routes.remove(&ih);
                if self.routes.is_empty() && self.hub.retire(&self.url, self.id) {
                    (Step::Done, None)
                } else {
                    (Step::Continue, None)
                }
            }
            SocketCmd::Send(frame) => (Step::Continue, self.connected.then_some(frame)),
            SocketCmd::Flush(ack) => {
                // Commands are handled in order: every earlier frame has been written.
                let _ = ack.send(());
                (Step::Continue, None)
            }
        }
    }

    /// Reads an inbound frame once, notes what the backoff needs and routes the frame by its
    /// `info_hash`.
    fn route(&mut self, text: &str) {
        let frame = match TrackerFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(url = %self.url, "tracker frame dropped: {e}");
                return;
            }
        };
        if frame.is_announce_accepted() {
            self.backoff.reset();
            self.refusal = None;
        } else if let Some((ih, reason)) = frame.refusal() {
            let ih = ih.map(|id| id.0);
            tracing::debug!(url = %self.url, info_hash = %info_hash_label(ih.as_ref()), %reason,
                "tracker refused an announce");
            self.backoff.refused();
            self.refusal = Some((ih, reason));
        }
        match frame.info_hash().map(|id| id.0) {
            Some(ih) => match self.routes.get(&ih) {
                Some(tx) => {
                    if tx.send(LinkEvent::Frame(frame)).is_err() {
                        self.routes.remove(&ih);
                    }
                }
                None => tracing::debug!(url = %self.url, "tracker frame for a swarm not joined"),
            },
            None => self.broadcast(&LinkEvent::Frame(frame)),
        }
    }

    /// Runs one open socket until it ends: `Ok` = no route left, `Err((reason, close code))` =
    /// lost.
    async fn session(
        &mut self,
        ws: &mut Ws,
        rx: &mut mpsc::UnboundedReceiver<SocketCmd>,
    ) -> Result<(), (String, Option<u16>)> {
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.route(text.as_str()),
                    Some(Ok(Message::Close(frame))) => {
                        return Err(match frame {
                            None => ("closed by tracker".to_owned(), None),
                            Some(f) => {
                                let code = u16::from(f.code);
                                (format!("closed by tracker ({code}: {})", f.reason), Some(code))
                            }
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err((format!("read failed: {e}"), None)),
                    None => return Err(("connection closed".to_owned(), None)),
                },
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    let (step, frame) = self.apply(cmd);
                    if let Some(frame) = frame {
                        ws.send(Message::Text(frame.into()))
                            .await
                            .map_err(|e| (format!("send failed: {e}"), None))?;
                    }
                    if let Step::Done = step {
                        let _ = ws.close(None).await;
                        return Ok(());
                    }
                }
            }
        }
    }
}

async fn run_socket(
    hub: TrackerHub,
    url: String,
    id: u64,
    mut rx: mpsc::UnboundedReceiver<SocketCmd>,
) {
    let settings = hub.inner.settings.clone();
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(settings.max_message_bytes))
        .max_frame_size(Some(settings.max_message_bytes));
    let mut task = SocketTask {
        hub,
        url: url.clone(),
        id,
        routes: HashMap::new(),
        connected: false,
        backoff: Backoff::new(settings.backoff.clone()),
        refusal: None,
    };
    loop {
        let attempt = tokio::time::timeout(
            settings.connect_timeout,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), false),
        )
        .await;
        let (reason, code) = match attempt {
            Ok(Ok((mut ws, _))) => {
                // The backoff is reset by an accepted announce (`route`), not by the socket opening.
                tracing::debug!(%url, "tracker connected");
                // Register the swarms that joined while connecting before saying so: a tracker
                // that closes at once would otherwise be reported to no one.
                while let Ok(cmd) = rx.try_recv() {
                    if let (Step::Done, _) = task.apply(cmd) {
                        let _ = ws.close(None).await;
                        return;
                    }
                }
                task.connected = true;
                task.broadcast(&LinkEvent::Connected);
                let end = task.session(&mut ws, &mut rx).await;
                task.connected = false;
                match end {
                    Ok(()) => return,
                    Err(lost) => lost,
                }
            }
            Ok(Err(e)) => {
                if connect_refused(&e) {
                    task.backoff.refused();
                }
                (format!("connect failed: {e}"), None)
            }
            Err(_) => (
                format!("connect timed out after {:?}", settings.connect_timeout),
                None,
            ),
        };
        // Swarms that joined while connecting hear why too (as they hear `Connected`).
        while let Ok(cmd) = rx.try_recv() {
            if let (Step::Done, _) = task.apply(cmd) {
                return;
            }
        }
        let refused = task.backoff.is_refused();
        let refusal = task.refusal.take().filter(|_| refused);
        let delay = task.backoff.next_delay(code, rand::random::<f64>());
        let reason = match refusal {
            Some((ih, why)) => {
                let ih = info_hash_label(ih.as_ref());
                tracing::warn!(
                    "tracker {url} refused info_hash {ih}: {why}; retrying in {} s",
                    delay.as_secs()
                );
                format!("refused info_hash {ih}: {why}; {reason}")
            }
            None if refused => {
                tracing::warn!(
                    "tracker {url} refused the connection ({reason}); retrying in {} s",
                    delay.as_secs()
                );
                format!("refused: {reason}")
            }
            None => {
                tracing::debug!(%url, %reason, ?delay, "tracker disconnected; retrying");
                reason
            }
        };
        task.broadcast(&LinkEvent::Disconnected {
            reason,
            retry_in: delay,
        });
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    if let (Step::Done, _) = task.apply(cmd) {
                        return;
                    }
                }
            }
        }
    }
}
