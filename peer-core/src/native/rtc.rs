//! WebRTC data channels between peers, on the `webrtc` crate.
//!
//! One [`RtcPeer`] is one `RTCPeerConnection` carrying one data channel, opened the way
//! p2p-media-loader's peers (simple-peer under bittorrent-tracker) open it: the offerer creates an
//! in-band negotiated (DCEP), ordered, reliable channel with a random 40-hex-digit label, and the
//! answerer takes whatever channel arrives. Signalling is "full SDP, no trickle": an offer or answer
//! is returned only once ICE gathering is complete (or [`ChannelSettings::ice_gathering_timeout`] has
//! passed), so the tracker can relay it as one message.
//!
//! Once the channel is open, [`RtcPeer::connect`] gives an [`RtcConnection`]: binary messages of at
//! most [`ChannelSettings::max_message_bytes`] go out through [`RtcSender::send`], which waits while
//! more than [`ChannelSettings::send_buffer_bytes`] are unacknowledged (the crate's bufferedAmount
//! back-pressure), and received messages arrive on a bounded tokio channel.
//!
//! mDNS is off by default ([`RtcSettings::mdns`]): with it on, the crate needs multicast, which
//! loopback-only hosts and many containers lack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::rtc_settings::ChannelSettings;
use bytes::{Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};

pub use crate::rtc_settings::IceServer;

/// Settings of the WebRTC stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcSettings {
    /// ICE servers, signalling timeouts and data-channel limits, as in the browser.
    pub channel: ChannelSettings,
    /// Local UDP addresses to bind. A wildcard address binds every non-loopback interface.
    /// Default `0.0.0.0:0`.
    pub udp_addrs: Vec<SocketAddr>,
    /// Resolve remote `.local` mDNS candidates (needs multicast). Default `false`: mDNS is off and
    /// such candidates are ignored; local candidates are always plain IP addresses.
    pub mdns: bool,
    /// Offer loopback addresses as candidates (tests, single-host setups). Default `false`.
    pub include_loopback_candidates: bool,
    /// Received messages queued for the reader before the channel stops reading (and SCTP flow
    /// control slows the sender). Default 64.
    pub receive_queue_messages: usize,
    /// SCTP receive window (`a_rwnd`), bytes: how much unacknowledged data a peer may have in
    /// flight toward us. Raised to at least 65 536 (one whole message must fit). Default
    /// 1 MiB (the `webrtc` crate's own default).
    pub sctp_receive_window_bytes: u32,
}

impl Default for RtcSettings {
    fn default() -> Self {
        Self {
            channel: ChannelSettings::default(),
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            mdns: false,
            include_loopback_candidates: false,
            receive_queue_messages: 64,
            sctp_receive_window_bytes: 1024 * 1024,
        }
    }
}

/// What went wrong with a peer connection.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// The WebRTC stack refused an operation.
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// A message larger than [`ChannelSettings::max_message_bytes`].
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The remote description is not valid SDP.
    #[error("invalid session description: {0}")]
    BadSdp(webrtc::error::Error),
    /// No local description was produced.
    #[error("no local session description")]
    NoLocalDescription,
    /// A call out of order (e.g. an answer before an offer).
    #[error("{0}")]
    WrongState(&'static str),
    /// The data channel did not open in time.
    #[error("data channel did not open within {0:?}")]
    OpenTimeout(Duration),
    /// The connection failed or closed before the channel opened.
    #[error("peer connection {0} before the data channel opened")]
    ConnectionEnded(RtcState),
    /// The data channel is closed.
    #[error("data channel closed")]
    Closed,
}

/// State of a peer connection, as `RTCPeerConnection.connectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcState {
    /// Not started.
    New,
    /// ICE/DTLS in progress.
    Connecting,
    /// Connected.
    Connected,
    /// Temporarily lost connectivity.
    Disconnected,
    /// Failed for good.
    Failed,
    /// Closed.
    Closed,
}

impl std::fmt::Display for RtcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            RtcState::New => "new",
            RtcState::Connecting => "connecting",
            RtcState::Connected => "connected",
            RtcState::Disconnected => "disconnected",
            RtcState::Failed => "failed",
            RtcState::Closed => "closed",
        };
        f.write_str(s)
    }
}

impl RtcState {
    fn from_webrtc(s: RTCPeerConnectionState) -> Self {
        match s {
            RTCPeerConnectionState::New => RtcState::New,
            RTCPeerConnectionState::Connecting => RtcState::Connecting,
            RTCPeerConnectionState::Connected => RtcState::Connected,
            RTCPeerConnectionState::Disconnected => RtcState::Disconnected,
            RTCPeerConnectionState::Failed => RtcState::Failed,
            RTCPeerConnectionState::Closed => RtcState::Closed,
            _ => RtcState::New,
        }
    }

    /// Whether the connection is over for good.
    pub fn is_final(self) -> bool {
        matches!(self, RtcState::Failed | RtcState::Closed)
    }
}

/// Receives the crate's callbacks and turns them into channel/watch updates. Callbacks are awaited
/// by the crate's driver, so each returns at once.
struct Handler {
    state: watch::Sender<RtcState>,
    gathering_complete: watch::Sender<bool>,
    incoming: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering_complete
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = RtcState::from_webrtc(state);
        tracing::debug!(%state, "peer connection state");
        self.state.send_replace(state);
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        // Only the first channel is used; later ones are dropped by the receiver side.
        let _ = self.incoming.send(data_channel);
    }
}

/// Which side of the offer/answer exchange this peer is on, and how far it got.
enum Role {
    Fresh,
    Offerer(Arc<dyn DataChannel>),
    Answerer,
}

/// One peer connection with one data channel, before it is open. See the module documentation.
pub struct RtcPeer {
    pc: Arc<dyn PeerConnection>,
    settings: RtcSettings,
    state: watch::Receiver<RtcState>,
    gathering_complete: watch::Receiver<bool>,
    incoming: mpsc::UnboundedReceiver<Arc<dyn DataChannel>>,
    role: Role,
    remote_set: bool,
}

impl std::fmt::Debug for RtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcPeer")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl RtcPeer {
    /// Creates a peer connection (binds its UDP sockets). Must run inside a tokio runtime.
    pub async fn new(settings: &RtcSettings) -> Result<Self, RtcError> {
        let ice_servers = settings
            .channel
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect();
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(ice_servers)
            .build();
        let mdns = if settings.mdns {
            MulticastDnsMode::QueryOnly
        } else {
            MulticastDnsMode::Disabled
        };
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(mdns)
            .with_include_loopback_candidate(settings.include_loopback_candidates)
            .with_sctp_max_receive_buffer_size(settings.sctp_receive_window_bytes.max(64 * 1024))
            .build();
        let (state_tx, state) = watch::channel(RtcState::New);
        let (gathering_tx, gathering_complete) = watch::channel(false);
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_setting_engine(setting_engine)
            .with_handler(Arc::new(Handler {
                state: state_tx,
                gathering_complete: gathering_tx,
                incoming: incoming_tx,
            }))
            .with_udp_addrs(settings.udp_addrs.clone())
            .with_data_channel_send_buffer_limit(settings.channel.send_buffer_bytes as usize)
            .build()
            .await?;
        Ok(Self {
            pc: Arc::new(pc),
            settings: settings.clone(),
            state,
            gathering_complete,
            incoming,
            role: Role::Fresh,
            remote_set: false,
        })
    }

    /// The connection state now.
    pub fn state(&self) -> RtcState {
        *self.state.borrow()
    }

    /// Creates the data channel and an offer; returns the offer SDP with every gathered candidate.
    pub async fn create_offer(&mut self) -> Result<String, RtcError> {
        if !matches!(self.role, Role::Fresh) {
            return Err(RtcError::WrongState("offer or answer already created"));
        }
        let label = hex::encode(rand::random::<[u8; 20]>());
        let dc = self
            .pc
            .create_data_channel(&label, Some(RTCDataChannelInit::default()))
            .await?;
        dc.set_buffered_amount_low_threshold(self.settings.channel.buffered_amount_low_threshold)
            .await?;
        self.role = Role::Offerer(dc);
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.local_sdp_after_gathering().await
    }

    /// Applies a remote offer and returns the answer SDP with every gathered candidate.
    pub async fn accept_offer(&mut self, offer_sdp: &str) -> Result<String, RtcError> {
        if !matches!(self.role, Role::Fresh) {
            return Err(RtcError::WrongState("offer or answer already created"));
        }
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(RtcError::BadSdp)?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(RtcError::BadSdp)?;
        self.role = Role::Answerer;
        self.remote_set = true;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.local_sdp_after_gathering().await
    }

    /// Applies the remote answer to our offer.
    pub async fn accept_answer(&mut self, answer_sdp: &str) -> Result<(), RtcError> {
        if !matches!(self.role, Role::Offerer(_)) || self.remote_set {
            return Err(RtcError::WrongState("no offer waiting for an answer"));
        }
        let answer =
            RTCSessionDescription::answer(answer_sdp.to_owned()).map_err(RtcError::BadSdp)?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(RtcError::BadSdp)?;
        self.remote_set = true;
        Ok(())
    }

    async fn local_sdp_after_gathering(&mut self) -> Result<String, RtcError> {
        let mut gathering = self.gathering_complete.clone();
        // Only whether it completed: the watch guard inside must not live across an await (the
        // future would not be `Send`).
        let completed = tokio::time::timeout(
            self.settings.channel.ice_gathering_timeout,
            gathering.wait_for(|done| *done),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !completed {
            tracing::debug!("ICE gathering not complete in time; sending the candidates found");
        }
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or(RtcError::NoLocalDescription)
    }

    /// Waits (up to [`ChannelSettings::open_timeout`]) for the data channel to open and returns the
    /// open connection.
    pub async fn connect(mut self) -> Result<RtcConnection, RtcError> {
        if !self.remote_set {
            return Err(RtcError::WrongState("no remote description yet"));
        }
        let timeout = self.settings.channel.open_timeout;
        let role = std::mem::replace(&mut self.role, Role::Fresh);
        let opened = tokio::time::timeout(timeout, async {
            match role {
                Role::Offerer(dc) => {
                    self.wait_open(&dc).await?;
                    Ok(dc)
                }
                Role::Answerer => self.wait_incoming().await,
                Role::Fresh => Err(RtcError::WrongState("no offer or answer")),
            }
        })
        .await;
        let dc = match opened {
            Ok(Ok(dc)) => dc,
            Ok(Err(e)) => {
                let _ = self.pc.close().await;
                return Err(e);
            }
            Err(_) => {
                let _ = self.pc.close().await;
                return Err(RtcError::OpenTimeout(timeout));
            }
        };
        let label = dc.label().await.unwrap_or_default();
        Ok(RtcConnection::start(
            self.pc,
            dc,
            self.state,
            &self.settings,
            label,
        ))
    }

    /// Waits for `OnOpen` on our own channel, or for the connection to end.
    async fn wait_open(&self, dc: &Arc<dyn DataChannel>) -> Result<(), RtcError> {
        let mut state = self.state.clone();
        loop {
            tokio::select! {
                ev = dc.poll() => match ev {
                    Some(DataChannelEvent::OnOpen) => return Ok(()),
                    Some(DataChannelEvent::OnClose) | None => return Err(RtcError::Closed),
                    Some(_) => {}
                },
                changed = state.changed() => {
                    let now = *state.borrow();
                    if changed.is_err() || now.is_final() {
                        return Err(RtcError::ConnectionEnded(now));
                    }
                }
            }
        }
    }

    /// Waits for the remote peer's channel (announced open by the crate), or for the end.
    async fn wait_incoming(&mut self) -> Result<Arc<dyn DataChannel>, RtcError> {
        let mut state = self.state.clone();
        loop {
            tokio::select! {
                dc = self.incoming.recv() => {
                    let dc = dc.ok_or(RtcError::Closed)?;
                    dc.set_buffered_amount_low_threshold(self.settings.channel.buffered_amount_low_threshold)
                        .await?;
                    return Ok(dc);
                }
                changed = state.changed() => {
                    let now = *state.borrow();
                    if changed.is_err() || now.is_final() {
                        return Err(RtcError::ConnectionEnded(now));
                    }
                }
            }
        }
    }

    /// Closes the connection without opening it (e.g. an expired offer).
    pub async fn close(self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing peer connection");
        }
    }
}

/// The sending half of an open data channel; cheap to clone.
#[derive(Clone)]
pub struct RtcSender {
    dc: Arc<dyn DataChannel>,
    max_message_bytes: usize,
}

impl std::fmt::Debug for RtcSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcSender")
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl RtcSender {
    /// Sends one binary message. Waits while the channel holds more than
    /// [`ChannelSettings::send_buffer_bytes`] unacknowledged bytes.
    pub async fn send(&self, data: &[u8]) -> Result<(), RtcError> {
        if data.len() > self.max_message_bytes {
            return Err(RtcError::MessageTooLarge {
                len: data.len(),
                max: self.max_message_bytes,
            });
        }
        match self.dc.send(BytesMut::from(data)).await {
            Ok(()) => Ok(()),
            Err(webrtc::error::Error::ErrDataChannelClosed) => Err(RtcError::Closed),
            Err(e) => Err(RtcError::WebRtc(e)),
        }
    }

    /// Bytes handed to [`RtcSender::send`] and not yet acknowledged by the peer.
    pub async fn buffered_amount(&self) -> usize {
        self.dc.outstanding_bytes().await.unwrap_or(0)
    }

    /// Largest message [`RtcSender::send`] accepts.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }
}

/// An open data channel: send with [`RtcConnection::sender`], receive with
/// [`RtcConnection::recv`]. Dropping it closes the connection.
pub struct RtcConnection {
    pc: Arc<dyn PeerConnection>,
    sender: RtcSender,
    incoming: mpsc::Receiver<Bytes>,
    state: watch::Receiver<RtcState>,
    pump: JoinHandle<()>,
    label: String,
}

impl std::fmt::Debug for RtcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcConnection")
            .field("label", &self.label)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl RtcConnection {
    fn start(
        pc: Arc<dyn PeerConnection>,
        dc: Arc<dyn DataChannel>,
        state: watch::Receiver<RtcState>,
        settings: &RtcSettings,
        label: String,
    ) -> Self {
        let (tx, incoming) = mpsc::channel(settings.receive_queue_messages.max(1));
        let pump = tokio::spawn(pump(
            dc.clone(),
            state.clone(),
            tx,
            settings.channel.max_message_bytes,
        ));
        Self {
            pc,
            sender: RtcSender {
                dc,
                max_message_bytes: settings.channel.max_message_bytes,
            },
            incoming,
            state,
            pump,
            label,
        }
    }

    /// The data channel's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A handle for sending.
    pub fn sender(&self) -> RtcSender {
        self.sender.clone()
    }

    /// The next received binary message; `None` once the channel or connection has closed.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.incoming.recv().await
    }

    /// The connection state now.
    pub fn state(&self) -> RtcState {
        *self.state.borrow()
    }

    /// Closes the channel and the connection.
    pub async fn close(&self) {
        if let Err(e) = self.sender.dc.close().await {
            tracing::debug!(error = %e, "closing data channel");
        }
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing peer connection");
        }
        self.pump.abort();
    }
}

impl Drop for RtcConnection {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Moves the channel's messages to the reader until the channel or the connection ends.
async fn pump(
    dc: Arc<dyn DataChannel>,
    mut state: watch::Receiver<RtcState>,
    tx: mpsc::Sender<Bytes>,
    max_message_bytes: usize,
) {
    loop {
        tokio::select! {
            ev = dc.poll() => match ev {
                Some(DataChannelEvent::OnMessage(msg)) => {
                    if msg.is_string {
                        tracing::debug!("ignoring a text message on the data channel");
                        continue;
                    }
                    if msg.data.len() > max_message_bytes {
                        tracing::debug!(len = msg.data.len(), "message over the size limit; closing");
                        break;
                    }
                    if tx.send(msg.data.freeze()).await.is_err() {
                        break;
                    }
                }
                Some(DataChannelEvent::OnClose) | None => break,
                Some(_) => {}
            },
            changed = state.changed() => {
                if changed.is_err() || state.borrow().is_final() {
                    break;
                }
            }
        }
    }
    tracing::debug!("data channel reader finished");
}
