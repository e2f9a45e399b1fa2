//! The tracker transport: a browser `WebSocket` driving a sans-IO
//! [`TrackerClient`](segswarm_core::tracker_client::TrackerClient).
//!
//! [`TrackerSocket::connect`] opens the socket; the handlers feed the client (`open` →
//! `connected`, text frames → `handle_message`, `close` → `disconnected`), a [`Timeout`] fires at
//! the client's `poll_timeout`, and every frame the client wants to send goes out at once. What
//! the client reports is queued as [`SocketEvent`]s for [`TrackerSocket::next_event`]. Reconnecting
//! is the caller's job for now: a closed socket stays closed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::Poll;

use segswarm_core::tracker_client::{
    InfoHash, OfferId, PeerId, TrackerClient, TrackerClientConfig, TrackerEvent,
};
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::error::WebError;
use crate::timer::{now, Timeout};
use crate::wake::Wakers;

/// What the tracker socket reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// The socket opened (announces for joined swarms are under way).
    Open,
    /// An event of the tracker protocol.
    Tracker(TrackerEvent),
    /// A frame the client refused (malformed, too large); the socket stays open.
    BadMessage(String),
    /// The socket closed.
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

struct Shared {
    client: TrackerClient,
    ws: WebSocket,
    events: VecDeque<SocketEvent>,
    closed: bool,
    timer: Option<Timeout>,
    wakers: Wakers,
}

impl Shared {
    /// Sends what the client queued, queues its events, and re-arms the timer.
    fn after_input(this: &Rc<RefCell<Shared>>, events: Vec<TrackerEvent>) {
        let mut s = this.borrow_mut();
        if s.ws.ready_state() == WebSocket::OPEN {
            while let Some(frame) = s.client.poll_transmit() {
                if let Err(e) = s.ws.send_with_str(&frame) {
                    tracing::debug!(error = %crate::error::js_message(&e), "tracker send failed");
                }
            }
        }
        s.events
            .extend(events.into_iter().map(SocketEvent::Tracker));
        let next = s.client.poll_timeout();
        s.timer = next.map(|at| {
            let weak: Weak<RefCell<Shared>> = Rc::downgrade(this);
            Timeout::new(at.saturating_duration_since(now()), move || {
                if let Some(this) = weak.upgrade() {
                    let events = this.borrow_mut().client.handle_timeout(now());
                    Shared::after_input(&this, events);
                }
            })
        });
        s.wakers.wake_all();
    }
}

/// The handlers a [`TrackerSocket`] installed, released with it.
/// Never read: holding them keeps the JavaScript handlers callable.
struct Handlers {
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// One WebSocket to one tracker URL, carrying every swarm of one local peer. Dropping it sends
/// nothing more, closes the socket and releases its handlers and timer.
pub struct TrackerSocket {
    shared: Rc<RefCell<Shared>>,
    _handlers: Handlers,
}

impl TrackerSocket {
    /// Opens a socket to `url` (`ws://` or `wss://`).
    pub fn connect(url: &str, config: TrackerClientConfig) -> Result<Self, WebError> {
        let ws = WebSocket::new(url).map_err(|e| WebError::js("new WebSocket", &e))?;
        let shared = Rc::new(RefCell::new(Shared {
            client: TrackerClient::new(config),
            ws: ws.clone(),
            events: VecDeque::new(),
            closed: false,
            timer: None,
            wakers: Wakers::default(),
        }));
        let on_open = {
            let shared = Rc::clone(&shared);
            Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                shared.borrow_mut().events.push_back(SocketEvent::Open);
                let events = shared.borrow_mut().client.connected(now());
                Shared::after_input(&shared, events);
            })
        };
        let on_message = {
            let shared = Rc::clone(&shared);
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let Some(text) = e.data().as_string() else {
                    tracing::debug!("binary tracker frame ignored");
                    return;
                };
                let result = shared.borrow_mut().client.handle_message(&text, now());
                match result {
                    Ok(events) => Shared::after_input(&shared, events),
                    Err(error) => {
                        let mut s = shared.borrow_mut();
                        s.events
                            .push_back(SocketEvent::BadMessage(error.to_string()));
                        s.wakers.wake_all();
                    }
                }
            })
        };
        let on_close = {
            let shared = Rc::clone(&shared);
            Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
                let events = {
                    let mut s = shared.borrow_mut();
                    s.closed = true;
                    s.client.disconnected(now())
                };
                Shared::after_input(&shared, events);
                let mut s = shared.borrow_mut();
                s.events.push_back(SocketEvent::Closed {
                    code: e.code(),
                    reason: e.reason(),
                });
                s.wakers.wake_all();
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            shared,
            _handlers: Handlers {
                _on_open: on_open,
                _on_message: on_message,
                _on_close: on_close,
            },
        })
    }

    /// The next event; `None` once the socket has closed and every event was taken.
    pub async fn next_event(&self) -> Option<SocketEvent> {
        let shared = Rc::clone(&self.shared);
        std::future::poll_fn(move |cx| {
            let mut s = shared.borrow_mut();
            if let Some(e) = s.events.pop_front() {
                Poll::Ready(Some(e))
            } else if s.closed {
                Poll::Ready(None)
            } else {
                s.wakers.register(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Whether the socket is open.
    pub fn is_open(&self) -> bool {
        self.shared.borrow().client.is_connected()
    }

    /// Joins a swarm (announced now if open, else once open).
    pub fn join(&self, info_hash: InfoHash) {
        let events = self.shared.borrow_mut().client.join(info_hash, now());
        Shared::after_input(&self.shared, events);
    }

    /// Leaves a swarm (`stopped`).
    pub fn leave(&self, info_hash: InfoHash) {
        let events = self.shared.borrow_mut().client.leave(info_hash, now());
        Shared::after_input(&self.shared, events);
    }

    /// Hands over the offers asked for by [`TrackerEvent::NeedOffers`].
    pub fn offers_created(&self, info_hash: InfoHash, offers: Vec<(OfferId, String)>) {
        let events = self
            .shared
            .borrow_mut()
            .client
            .offers_created(info_hash, offers, now());
        Shared::after_input(&self.shared, events);
    }

    /// Answers a relayed offer ([`TrackerEvent::Offer`]).
    pub fn send_answer(&self, info_hash: InfoHash, to: PeerId, offer_id: OfferId, sdp: &str) {
        self.shared
            .borrow_mut()
            .client
            .send_answer(info_hash, to, offer_id, sdp);
        Shared::after_input(&self.shared, Vec::new());
    }

    /// Records transfer totals for later announces.
    pub fn set_transfer_stats(
        &self,
        info_hash: InfoHash,
        uploaded: u64,
        downloaded: u64,
        left: Option<u64>,
    ) {
        self.shared
            .borrow_mut()
            .client
            .set_transfer_stats(info_hash, uploaded, downloaded, left);
    }

    /// Leaves every swarm (`stopped` frames are sent) and closes the socket (also done on drop).
    pub fn close(self) {}
}

impl Drop for TrackerSocket {
    fn drop(&mut self) {
        let hashes: Vec<InfoHash> = self.shared.borrow().client.swarms().copied().collect();
        for ih in hashes {
            let _expired = self.shared.borrow_mut().client.leave(ih, now());
        }
        let mut s = self.shared.borrow_mut();
        if s.ws.ready_state() == WebSocket::OPEN {
            while let Some(frame) = s.client.poll_transmit() {
                let _ = s.ws.send_with_str(&frame);
            }
        }
        s.ws.set_onopen(None);
        s.ws.set_onmessage(None);
        s.ws.set_onclose(None);
        let _ = s.ws.close();
        s.timer = None;
        s.closed = true;
        s.wakers.wake_all();
    }
}
