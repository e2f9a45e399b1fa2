//! The WebSocket connection to one tracker, driving a sans-IO
//! [`TrackerClient`](crate::tracker_client::TrackerClient) on tokio.
//!
//! A [`TrackerSocket`] is one task and one WebSocket for one tracker URL, carrying every swarm the
//! local peer joins there (as the JavaScript clients pool sockets per URL); a [`TrackerPool`] keeps
//! one per URL. The task feeds the client `connected`/`disconnected`, every text frame and its
//! timers, sends what it polls out, and reports on a channel what the client and the socket say.
//! When the socket closes or cannot be opened it retries with exponential backoff
//! ([`TrackerSocketSettings::backoff_initial`] doubling up to
//! [`TrackerSocketSettings::backoff_max`], with jitter); on reconnect the client announces every
//! joined swarm again.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::time::Instant;
use crate::tracker_client::{
    InfoHash, OfferId, PeerId, TrackerClient, TrackerClientConfig, TrackerEvent,
};

/// Settings of one tracker socket.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSocketSettings {
    /// The sans-IO client's settings (peer id, offers, intervals, message limit).
    pub client: TrackerClientConfig,
    /// First retry delay after a failed or closed connection. Default 1 s.
    pub backoff_initial: Duration,
    /// Longest retry delay. Default 60 s.
    pub backoff_max: Duration,
    /// Factor applied to the delay after each failed attempt. Default 2.
    pub backoff_factor: u32,
    /// Each delay is shortened by a random share of up to this fraction, so that many clients of
    /// a restarted tracker do not reconnect in step. Default 0.25.
    pub backoff_jitter: f64,
    /// Longest wait for the TCP connect and WebSocket handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// Events queued for the application before the socket task waits for it. Default 256.
    pub event_queue: usize,
}

impl TrackerSocketSettings {
    /// Defaults for the given local peer id.
    pub fn new(peer_id: PeerId) -> Self {
        Self {
            client: TrackerClientConfig::new(peer_id),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backoff_factor: 2,
            backoff_jitter: 0.25,
            connect_timeout: Duration::from_secs(10),
            event_queue: 256,
        }
    }
}

/// What a tracker socket reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerSocketEvent {
    /// The WebSocket is open; joined swarms are being announced.
    Connected {
        /// The tracker URL.
        url: String,
    },
    /// The WebSocket closed or could not be opened; the next attempt is in `retry_in`.
    Disconnected {
        /// The tracker URL.
        url: String,
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// An event of the tracker protocol (offers wanted, relayed offers and answers, ...).
    Tracker {
        /// The tracker URL.
        url: String,
        /// The event.
        event: TrackerEvent,
    },
    /// The tracker sent a message the client could not accept (the socket stays open).
    BadMessage {
        /// The tracker URL.
        url: String,
        /// What was wrong.
        error: String,
    },
}

/// Requests from the application to the socket task.
#[derive(Debug)]
enum Command {
    Join(InfoHash),
    Leave(InfoHash),
    OffersCreated(InfoHash, Vec<(OfferId, String)>),
    Answer {
        info_hash: InfoHash,
        to_peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
    },
    TransferStats {
        info_hash: InfoHash,
        uploaded: u64,
        downloaded: u64,
        left: Option<u64>,
    },
    Completed(InfoHash),
    Shutdown,
}

/// One tracker URL's socket task. Dropping it stops the task without a goodbye; prefer
/// [`TrackerSocket::shutdown`].
#[derive(Debug)]
pub struct TrackerSocket {
    url: String,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
}

impl TrackerSocket {
    /// Starts the task for `url` (`ws://` or `wss://`), reporting on `events`. Must run inside a
    /// tokio runtime.
    pub fn spawn(
        url: &str,
        settings: TrackerSocketSettings,
        events: mpsc::Sender<TrackerSocketEvent>,
    ) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(url.to_owned(), settings, rx, events));
        Self {
            url: url.to_owned(),
            commands,
            task: Some(task),
        }
    }

    /// The tracker URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn command(&self, c: Command) {
        if self.commands.send(c).is_err() {
            tracing::debug!(url = %self.url, "tracker socket task has ended");
        }
    }

    /// Joins a swarm (announced now if connected, else on connect).
    pub fn join(&self, info_hash: InfoHash) {
        self.command(Command::Join(info_hash));
    }

    /// Leaves a swarm (`stopped` is sent if connected).
    pub fn leave(&self, info_hash: InfoHash) {
        self.command(Command::Leave(info_hash));
    }

    /// Hands over the offers asked for by [`TrackerEvent::NeedOffers`].
    pub fn offers_created(&self, info_hash: InfoHash, offers: Vec<(OfferId, String)>) {
        self.command(Command::OffersCreated(info_hash, offers));
    }

    /// Answers a relayed [`TrackerEvent::Offer`].
    pub fn send_answer(
        &self,
        info_hash: InfoHash,
        to_peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
    ) {
        self.command(Command::Answer {
            info_hash,
            to_peer_id,
            offer_id,
            sdp,
        });
    }

    /// Updates the totals sent with later announces.
    pub fn set_transfer_stats(
        &self,
        info_hash: InfoHash,
        uploaded: u64,
        downloaded: u64,
        left: Option<u64>,
    ) {
        self.command(Command::TransferStats {
            info_hash,
            uploaded,
            downloaded,
            left,
        });
    }

    /// Announces `completed` for a swarm.
    pub fn completed(&self, info_hash: InfoHash) {
        self.command(Command::Completed(info_hash));
    }

    /// Leaves every swarm (sending `stopped` if connected), closes the WebSocket and waits for the
    /// task to end.
    pub async fn shutdown(mut self) {
        self.command(Command::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TrackerSocket {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One [`TrackerSocket`] per tracker URL, all reporting on one channel.
#[derive(Debug)]
pub struct TrackerPool {
    settings: TrackerSocketSettings,
    events: mpsc::Sender<TrackerSocketEvent>,
    sockets: HashMap<String, TrackerSocket>,
}

impl TrackerPool {
    /// An empty pool; every socket it opens uses `settings` and reports on `events`.
    pub fn new(settings: TrackerSocketSettings, events: mpsc::Sender<TrackerSocketEvent>) -> Self {
        Self {
            settings,
            events,
            sockets: HashMap::new(),
        }
    }

    /// The socket for `url`, started on first use.
    pub fn socket(&mut self, url: &str) -> &TrackerSocket {
        self.sockets.entry(url.to_owned()).or_insert_with(|| {
            TrackerSocket::spawn(url, self.settings.clone(), self.events.clone())
        })
    }

    /// The socket for `url` if started.
    pub fn get(&self, url: &str) -> Option<&TrackerSocket> {
        self.sockets.get(url)
    }

    /// Shuts every socket down gracefully.
    pub async fn shutdown(self) {
        for (_, socket) in self.sockets {
            socket.shutdown().await;
        }
    }
}

/// Why a connected session ended.
enum SessionEnd {
    Shutdown,
    EventsDropped,
    Lost(String),
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Driver {
    url: String,
    client: TrackerClient,
    events: mpsc::Sender<TrackerSocketEvent>,
}

impl Driver {
    /// Forwards events; `false` when the application dropped the receiver.
    async fn emit(&self, event: TrackerSocketEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    async fn forward(&self, events: Vec<TrackerEvent>) -> bool {
        for event in events {
            let ev = TrackerSocketEvent::Tracker {
                url: self.url.clone(),
                event,
            };
            if !self.emit(ev).await {
                return false;
            }
        }
        true
    }

    /// Applies a command; returns `Some(end)` if the task must stop.
    async fn apply(&mut self, c: Command) -> Result<(), SessionEnd> {
        let now = Instant::now();
        let events = match c {
            Command::Join(ih) => self.client.join(ih, now),
            Command::Leave(ih) => self.client.leave(ih, now),
            Command::OffersCreated(ih, offers) => self.client.offers_created(ih, offers, now),
            Command::Answer {
                info_hash,
                to_peer_id,
                offer_id,
                sdp,
            } => {
                self.client
                    .send_answer(info_hash, to_peer_id, offer_id, &sdp);
                Vec::new()
            }
            Command::TransferStats {
                info_hash,
                uploaded,
                downloaded,
                left,
            } => {
                self.client
                    .set_transfer_stats(info_hash, uploaded, downloaded, left);
                Vec::new()
            }
            Command::Completed(ih) => {
                self.client.completed(ih, now);
                Vec::new()
            }
            Command::Shutdown => {
                let hashes: Vec<InfoHash> = self.client.swarms().copied().collect();
                let mut events = Vec::new();
                for ih in hashes {
                    events.extend(self.client.leave(ih, now));
                }
                // Expired offers still go out so the application closes their connections.
                let _ = self.forward(events).await;
                return Err(SessionEnd::Shutdown);
            }
        };
        if self.forward(events).await {
            Ok(())
        } else {
            Err(SessionEnd::EventsDropped)
        }
    }

    async fn timeout(&mut self) -> Result<(), SessionEnd> {
        let events = self.client.handle_timeout(Instant::now());
        if self.forward(events).await {
            Ok(())
        } else {
            Err(SessionEnd::EventsDropped)
        }
    }

    async fn flush(&mut self, ws: &mut Ws) -> Result<(), SessionEnd> {
        while let Some(frame) = self.client.poll_transmit() {
            ws.send(Message::Text(frame.into()))
                .await
                .map_err(|e| SessionEnd::Lost(format!("send failed: {e}")))?;
        }
        Ok(())
    }

    /// Runs one open WebSocket until it ends.
    async fn session(
        &mut self,
        ws: &mut Ws,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> SessionEnd {
        let events = self.client.connected(Instant::now());
        if !self.forward(events).await {
            return SessionEnd::EventsDropped;
        }
        loop {
            if let Err(end) = self.flush(ws).await {
                return end;
            }
            let wake = self.client.poll_timeout();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        match self.client.handle_message(text.as_str(), Instant::now()) {
                            Ok(events) => {
                                if !self.forward(events).await {
                                    return SessionEnd::EventsDropped;
                                }
                            }
                            Err(e) => {
                                tracing::debug!(url = %self.url, error = %e, "bad tracker message");
                                let ev = TrackerSocketEvent::BadMessage {
                                    url: self.url.clone(),
                                    error: e.to_string(),
                                };
                                if !self.emit(ev).await {
                                    return SessionEnd::EventsDropped;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame
                            .map(|f| format!("closed by tracker ({}: {})", u16::from(f.code), f.reason))
                            .unwrap_or_else(|| "closed by tracker".to_owned());
                        return SessionEnd::Lost(reason);
                    }
                    // Pings are answered by tungstenite on the next read or write.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return SessionEnd::Lost(format!("read failed: {e}")),
                    None => return SessionEnd::Lost("connection closed".to_owned()),
                },
                cmd = commands.recv() => {
                    let cmd = cmd.unwrap_or(Command::Shutdown);
                    if let Err(end) = self.apply(cmd).await {
                        if matches!(end, SessionEnd::Shutdown) {
                            let _ = self.flush(ws).await;
                            let _ = ws.close(None).await;
                        }
                        return end;
                    }
                }
                _ = sleep => {
                    if let Err(end) = self.timeout().await {
                        return end;
                    }
                }
            }
        }
    }

    /// Waits out a backoff delay while still taking commands and timers (offers expire while
    /// disconnected). `Err` if the task must stop.
    async fn wait_backoff(
        &mut self,
        delay: Duration,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), SessionEnd> {
        let until = tokio::time::Instant::now() + delay;
        loop {
            let wake = self.client.poll_timeout();
            let timer = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                cmd = commands.recv() => {
                    self.apply(cmd.unwrap_or(Command::Shutdown)).await?;
                    // Nothing can be sent while disconnected; the client re-announces on connect.
                    while self.client.poll_transmit().is_some() {}
                }
                _ = timer => self.timeout().await?,
            }
        }
    }
}

fn jittered(delay: Duration, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    let cut = rand::random::<f64>() * jitter;
    delay.mul_f64(1.0 - cut)
}

async fn run(
    url: String,
    settings: TrackerSocketSettings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<TrackerSocketEvent>,
) {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(settings.client.max_message_bytes))
        .max_frame_size(Some(settings.client.max_message_bytes));
    let mut driver = Driver {
        url: url.clone(),
        client: TrackerClient::new(settings.client.clone()),
        events,
    };
    let mut backoff = settings.backoff_initial;
    loop {
        let attempt = tokio::time::timeout(
            settings.connect_timeout,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), false),
        )
        .await;
        let reason = match attempt {
            Ok(Ok((mut ws, _response))) => {
                tracing::debug!(%url, "tracker connected");
                backoff = settings.backoff_initial;
                if !driver
                    .emit(TrackerSocketEvent::Connected { url: url.clone() })
                    .await
                {
                    return;
                }
                let end = driver.session(&mut ws, &mut commands).await;
                let expired = driver.client.disconnected(Instant::now());
                let alive = driver.forward(expired).await;
                match end {
                    SessionEnd::Shutdown | SessionEnd::EventsDropped => return,
                    SessionEnd::Lost(_) if !alive => return,
                    SessionEnd::Lost(reason) => reason,
                }
            }
            Ok(Err(e)) => format!("connect failed: {e}"),
            Err(_) => format!("connect timed out after {:?}", settings.connect_timeout),
        };
        let delay = jittered(backoff, settings.backoff_jitter);
        tracing::debug!(%url, %reason, ?delay, "tracker disconnected; retrying");
        let ev = TrackerSocketEvent::Disconnected {
            url: url.clone(),
            reason,
            retry_in: delay,
        };
        if !driver.emit(ev).await {
            return;
        }
        if driver.wait_backoff(delay, &mut commands).await.is_err() {
            return;
        }
        backoff = backoff
            .saturating_mul(settings.backoff_factor.max(1))
            .min(settings.backoff_max);
    }
}
