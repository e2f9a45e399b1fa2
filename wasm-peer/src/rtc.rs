//! WebRTC data channels in the browser: one [`RtcPeer`] is one `RTCPeerConnection` with one
//! `RTCDataChannel`, opened the way p2p-media-loader's peers open it (the offerer creates an
//! ordered, reliable, in-band negotiated channel with a random 40-hex-digit label; the answerer
//! takes the channel that arrives).
//!
//! Signalling is full SDP, no trickle: [`RtcPeer::create_offer`] and [`RtcPeer::accept_offer`]
//! return the SDP only once ICE gathering is complete (or [`ChannelSettings::ice_gathering_timeout`]
//! has passed), so the tracker can relay it as one message.
//!
//! A [`DataChannel`] sends binary messages of at most [`ChannelSettings::max_message_bytes`];
//! [`DataChannel::send`] waits while `bufferedAmount` is above [`ChannelSettings::send_buffer_bytes`]
//! until the browser's `bufferedamountlow` event (threshold
//! [`ChannelSettings::buffered_amount_low_threshold`]). Received messages are queued, bounded by
//! [`RtcSettings::receive_queue_bytes`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Poll;

use segswarm_core::rtc_settings::ChannelSettings;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelState, RtcDataChannelType, RtcIceGatheringState, RtcIceServer, RtcPeerConnection,
    RtcSdpType, RtcSessionDescriptionInit,
};

use crate::error::WebError;
use crate::timer;
use crate::wake::Wakers;

pub use segswarm_core::rtc_settings::IceServer;

/// Settings of an [`RtcPeer`] and its [`DataChannel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcSettings {
    /// ICE servers, signalling timeouts and data-channel limits, as natively.
    pub channel: ChannelSettings,
    /// Most received bytes queued before the channel is closed as overrun. Default 16 MiB.
    pub receive_queue_bytes: usize,
}

impl Default for RtcSettings {
    fn default() -> Self {
        Self {
            channel: ChannelSettings::default(),
            receive_queue_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Default)]
struct PeerShared {
    gathering_complete: bool,
    /// The channel, once created (offerer) or received (answerer), until taken.
    channel: Option<DataChannel>,
    wakers: Wakers,
}

/// One `RTCPeerConnection` carrying one data channel. Dropping it closes the connection and
/// releases its event handlers.
pub struct RtcPeer {
    pc: RtcPeerConnection,
    settings: RtcSettings,
    shared: Rc<RefCell<PeerShared>>,
    /// Handlers installed on `pc`, held (never read) until drop.
    _on_ice_gathering: Closure<dyn FnMut(Event)>,
    _on_datachannel: Closure<dyn FnMut(RtcDataChannelEvent)>,
}

impl RtcPeer {
    /// A new peer connection with the given settings.
    pub fn new(settings: RtcSettings) -> Result<Self, WebError> {
        let config = RtcConfiguration::new();
        let servers = js_sys::Array::new();
        for s in &settings.channel.ice_servers {
            let server = RtcIceServer::new();
            let urls: js_sys::Array = s.urls.iter().map(|u| JsValue::from_str(u)).collect();
            server.set_urls(&urls);
            if !s.username.is_empty() {
                server.set_username(&s.username);
            }
            if !s.credential.is_empty() {
                server.set_credential(&s.credential);
            }
            servers.push(&server);
        }
        config.set_ice_servers(&servers);
        let pc = RtcPeerConnection::new_with_configuration(&config)
            .map_err(|e| WebError::js("new RTCPeerConnection", &e))?;
        let shared = Rc::new(RefCell::new(PeerShared::default()));

        let on_ice_gathering = {
            let shared = Rc::clone(&shared);
            let pc = pc.clone();
            Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
                    let mut s = shared.borrow_mut();
                    s.gathering_complete = true;
                    s.wakers.wake_all();
                }
            })
        };
        pc.set_onicegatheringstatechange(Some(on_ice_gathering.as_ref().unchecked_ref()));

        let on_datachannel = {
            let shared = Rc::clone(&shared);
            let settings = settings.clone();
            Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |e: RtcDataChannelEvent| {
                let mut s = shared.borrow_mut();
                if s.channel.is_some() {
                    tracing::debug!("extra data channel refused");
                    e.channel().close();
                    return;
                }
                s.channel = Some(DataChannel::attach(e.channel(), &settings));
                s.wakers.wake_all();
            })
        };
        pc.set_ondatachannel(Some(on_datachannel.as_ref().unchecked_ref()));

        Ok(Self {
            pc,
            settings,
            shared,
            _on_ice_gathering: on_ice_gathering,
            _on_datachannel: on_datachannel,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &RtcSettings {
        &self.settings
    }

    /// The underlying `RTCPeerConnection`.
    pub fn connection(&self) -> &RtcPeerConnection {
        &self.pc
    }

    /// `connectionState` as the browser spells it (`new`, `connecting`, `connected`, ...).
    pub fn connection_state(&self) -> String {
        js_sys::Reflect::get(&self.pc, &JsValue::from_str("connectionState"))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    }

    /// Offerer: creates the data channel and the offer; returns the offer SDP with every ICE
    /// candidate gathered.
    pub async fn create_offer(&mut self) -> Result<String, WebError> {
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        let dc = self
            .pc
            .create_data_channel_with_data_channel_dict(&random_label()?, &init);
        self.shared.borrow_mut().channel = Some(DataChannel::attach(dc, &self.settings));
        let offer = JsFuture::from(self.pc.create_offer())
            .await
            .map_err(|e| WebError::js("createOffer", &e))?;
        let offer: RtcSessionDescriptionInit = offer.unchecked_into();
        JsFuture::from(self.pc.set_local_description(&offer))
            .await
            .map_err(|e| WebError::js("setLocalDescription(offer)", &e))?;
        self.gathered_sdp().await
    }

    /// Answerer: applies a remote offer; returns the answer SDP with every ICE candidate gathered.
    pub async fn accept_offer(&mut self, offer_sdp: &str) -> Result<String, WebError> {
        let offer = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        offer.set_sdp(offer_sdp);
        JsFuture::from(self.pc.set_remote_description(&offer))
            .await
            .map_err(|e| WebError::js("setRemoteDescription(offer)", &e))?;
        let answer = JsFuture::from(self.pc.create_answer())
            .await
            .map_err(|e| WebError::js("createAnswer", &e))?;
        let answer: RtcSessionDescriptionInit = answer.unchecked_into();
        JsFuture::from(self.pc.set_local_description(&answer))
            .await
            .map_err(|e| WebError::js("setLocalDescription(answer)", &e))?;
        self.gathered_sdp().await
    }

    /// Offerer: applies the remote answer.
    pub async fn accept_answer(&mut self, answer_sdp: &str) -> Result<(), WebError> {
        let answer = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        answer.set_sdp(answer_sdp);
        JsFuture::from(self.pc.set_remote_description(&answer))
            .await
            .map_err(|e| WebError::js("setRemoteDescription(answer)", &e))?;
        Ok(())
    }

    /// Waits (at most [`ChannelSettings::open_timeout`]) for the data channel to exist and open, and
    /// hands it out. The channel lives on when the caller keeps it, but closes with this peer.
    pub async fn open_channel(&mut self) -> Result<DataChannel, WebError> {
        let shared = Rc::clone(&self.shared);
        let wait = async move {
            let channel = std::future::poll_fn(|cx| {
                let mut s = shared.borrow_mut();
                match s.channel.take() {
                    Some(c) => Poll::Ready(c),
                    None => {
                        s.wakers.register(cx.waker());
                        Poll::Pending
                    }
                }
            })
            .await;
            channel.opened().await.map(|()| channel)
        };
        timer::timeout(self.settings.channel.open_timeout, wait)
            .await
            .unwrap_or(Err(WebError::Timeout("the data channel to open")))
    }

    /// Closes the connection (also done on drop).
    pub fn close(self) {}

    async fn gathered_sdp(&mut self) -> Result<String, WebError> {
        if self.pc.ice_gathering_state() == RtcIceGatheringState::Complete {
            self.shared.borrow_mut().gathering_complete = true;
        }
        let shared = Rc::clone(&self.shared);
        let gathered = std::future::poll_fn(move |cx| {
            let mut s = shared.borrow_mut();
            if s.gathering_complete {
                Poll::Ready(())
            } else {
                s.wakers.register(cx.waker());
                Poll::Pending
            }
        });
        if timer::timeout(self.settings.channel.ice_gathering_timeout, gathered)
            .await
            .is_none()
        {
            tracing::debug!("ICE gathering not complete in time; using the candidates so far");
        }
        self.pc
            .local_description()
            .map(|d| d.sdp())
            .ok_or(WebError::Js {
                what: "localDescription",
                message: "none after setLocalDescription".into(),
            })
    }
}

impl Drop for RtcPeer {
    fn drop(&mut self) {
        self.pc.set_onicegatheringstatechange(None);
        self.pc.set_ondatachannel(None);
        // A channel not handed out goes with the peer.
        self.shared.borrow_mut().channel = None;
        self.pc.close();
        // The closures are dropped after this, with the handlers already unset.
    }
}

/// 40 random hex digits, the label p2p-media-loader's peers give their channel.
fn random_label() -> Result<String, WebError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Js {
        what: "crypto.getRandomValues",
        message: e.to_string(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Default)]
struct ChannelShared {
    open: bool,
    closed: bool,
    error: Option<WebError>,
    inbox: VecDeque<Vec<u8>>,
    inbox_bytes: usize,
    wakers: Wakers,
}

/// The handlers a [`DataChannel`] installed, released with it.
/// Never read: holding them keeps the JavaScript handlers callable.
struct ChannelHandlers {
    _on_open: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_low: Closure<dyn FnMut(Event)>,
}

/// An `RTCDataChannel` carrying binary messages. Dropping it closes the channel and releases its
/// event handlers.
pub struct DataChannel {
    dc: RtcDataChannel,
    shared: Rc<RefCell<ChannelShared>>,
    max_message_bytes: usize,
    send_buffer_bytes: u32,
    _handlers: ChannelHandlers,
}

impl DataChannel {
    fn attach(dc: RtcDataChannel, settings: &RtcSettings) -> Self {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(settings.channel.buffered_amount_low_threshold);
        let shared = Rc::new(RefCell::new(ChannelShared {
            open: dc.ready_state() == RtcDataChannelState::Open,
            ..ChannelShared::default()
        }));
        let on_open = {
            let shared = Rc::clone(&shared);
            Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                let mut s = shared.borrow_mut();
                s.open = true;
                s.wakers.wake_all();
            })
        };
        let on_close = {
            let shared = Rc::clone(&shared);
            Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                let mut s = shared.borrow_mut();
                s.closed = true;
                s.wakers.wake_all();
            })
        };
        let on_low = {
            let shared = Rc::clone(&shared);
            Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                shared.borrow_mut().wakers.wake_all();
            })
        };
        let on_message = {
            let shared = Rc::clone(&shared);
            let dc = dc.clone();
            let max_message = settings.channel.max_message_bytes;
            let max_queue = settings.receive_queue_bytes;
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let data = e.data();
                let bytes = if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                    js_sys::Uint8Array::new(buf).to_vec()
                } else if let Some(text) = data.as_string() {
                    text.into_bytes()
                } else {
                    tracing::debug!("data channel message of an unexpected type ignored");
                    return;
                };
                let mut s = shared.borrow_mut();
                let error = if bytes.len() > max_message {
                    Some(WebError::TooLarge {
                        len: bytes.len(),
                        max: max_message,
                    })
                } else if s.inbox_bytes + bytes.len() > max_queue {
                    Some(WebError::ReceiveQueueFull(max_queue))
                } else {
                    None
                };
                if let Some(error) = error {
                    tracing::debug!(%error, "closing data channel");
                    s.error = Some(error);
                    s.closed = true;
                    dc.close();
                } else {
                    s.inbox_bytes += bytes.len();
                    s.inbox.push_back(bytes);
                }
                s.wakers.wake_all();
            })
        };
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Self {
            dc,
            shared,
            max_message_bytes: settings.channel.max_message_bytes,
            send_buffer_bytes: settings.channel.send_buffer_bytes,
            _handlers: ChannelHandlers {
                _on_open: on_open,
                _on_close: on_close,
                _on_message: on_message,
                _on_low: on_low,
            },
        }
    }

    /// The channel's label.
    pub fn label(&self) -> String {
        self.dc.label()
    }

    /// Bytes queued by the browser and not yet sent.
    pub fn buffered_amount(&self) -> u32 {
        self.dc.buffered_amount()
    }

    /// Whether the channel has closed (either side, or an overrun).
    pub fn is_closed(&self) -> bool {
        self.shared.borrow().closed
    }

    /// Resolves once the channel is open; an error if it closed first.
    pub async fn opened(&self) -> Result<(), WebError> {
        let shared = Rc::clone(&self.shared);
        std::future::poll_fn(move |cx| {
            let mut s = shared.borrow_mut();
            if s.closed {
                Poll::Ready(Err(s.error.clone().unwrap_or(WebError::ChannelClosed)))
            } else if s.open {
                Poll::Ready(Ok(()))
            } else {
                s.wakers.register(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Sends one binary message, first waiting while more than
    /// [`ChannelSettings::send_buffer_bytes`] are buffered.
    pub async fn send(&self, data: &[u8]) -> Result<(), WebError> {
        if data.len() > self.max_message_bytes {
            return Err(WebError::TooLarge {
                len: data.len(),
                max: self.max_message_bytes,
            });
        }
        let shared = Rc::clone(&self.shared);
        let dc = self.dc.clone();
        let limit = self.send_buffer_bytes;
        std::future::poll_fn(move |cx| {
            let mut s = shared.borrow_mut();
            if s.closed || dc.ready_state() != RtcDataChannelState::Open {
                Poll::Ready(Err(s.error.clone().unwrap_or(WebError::ChannelClosed)))
            } else if dc.buffered_amount() <= limit {
                Poll::Ready(Ok(()))
            } else {
                s.wakers.register(cx.waker());
                Poll::Pending
            }
        })
        .await?;
        self.dc
            .send_with_u8_array(data)
            .map_err(|e| WebError::js("RTCDataChannel.send", &e))
    }

    /// The next received message; `None` once the channel is closed and the queue is empty.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        let shared = Rc::clone(&self.shared);
        std::future::poll_fn(move |cx| {
            let mut s = shared.borrow_mut();
            if let Some(m) = s.inbox.pop_front() {
                s.inbox_bytes -= m.len();
                Poll::Ready(Some(m))
            } else if s.closed {
                Poll::Ready(None)
            } else {
                s.wakers.register(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Why the channel closed, when it was closed by this side for a violation (overrun, oversize).
    pub fn error(&self) -> Option<WebError> {
        self.shared.borrow().error.clone()
    }

    /// Closes the channel (also done on drop).
    pub fn close(self) {}
}

impl Drop for DataChannel {
    fn drop(&mut self) {
        self.dc.set_onopen(None);
        self.dc.set_onclose(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.set_onmessage(None);
        self.dc.close();
        let mut s = self.shared.borrow_mut();
        s.closed = true;
        s.wakers.wake_all();
    }
}
