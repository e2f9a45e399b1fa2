//! Peer connections: one task per `RTCPeerConnection`, its offer or answer, its send queue.

use super::*;

/// Shared state of one peer connection between the driver and the connection's tasks.
pub(super) struct PeerSlot {
    handle: PeerHandle,
    pub(super) state: RefCell<SlotState>,
}

#[derive(Default)]
pub(super) struct SlotState {
    /// Set by whoever ends the connection first (the engine or the channel).
    pub(super) closed: bool,
    pub(super) connected: bool,
    pub(super) answer: Option<String>,
    pub(super) outbox: VecDeque<Bytes>,
    pub(super) outbox_bytes: usize,
    pub(super) wakers: Wakers,
}

impl PeerSlot {
    pub(super) fn new(handle: PeerHandle) -> Rc<Self> {
        Rc::new(Self {
            handle,
            state: RefCell::new(SlotState::default()),
        })
    }

    /// Marks the slot closed; `true` if it was open.
    pub(super) fn close(&self) -> bool {
        let mut s = self.state.borrow_mut();
        let was_open = !s.closed;
        s.closed = true;
        s.outbox.clear();
        s.outbox_bytes = 0;
        s.wakers.wake_all();
        was_open
    }

    /// Resolves once the slot is closed.
    pub(super) async fn closed(self: Rc<Self>) {
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
    pub(super) async fn answer(self: Rc<Self>) -> String {
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

/// Closes a peer from the driver side and tells the engine `why` (`PeerClosed`, or
/// `PeerSendOverrun` when the peer let its send queue overflow) soon after, not from inside the
/// current step.
pub(super) fn close_with(
    s: &mut State,
    slot: &Rc<PeerSlot>,
    weak: &Weak<RefCell<State>>,
    why: IoEvent,
) {
    s.peers.remove(&slot.handle);
    if slot.close() {
        let weak = weak.clone();
        spawn_local(async move { feed_weak(&weak, why) });
    }
}

pub(super) enum Role {
    Offer,
    Answer(String),
}

/// Reports one offer (or its failure, `None`) to the engine.
fn offer_done(weak: &Weak<RefCell<State>>, peer: PeerHandle, sdp: Option<String>) {
    feed_weak(weak, IoEvent::OfferCreated { peer, sdp });
}

/// One peer connection from signalling to close. Owns the `RTCPeerConnection` and its channel,
/// so everything it installed is released when it returns.
pub(super) async fn run_peer(
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
            feed_weak(&weak, IoEvent::PeerConnected(h));
            spawn_local(send_loop(weak.clone(), Rc::clone(&slot), Rc::clone(&dc)));
            while let Some(Some(message)) = unless(Rc::clone(&slot).closed(), dc.recv()).await {
                feed_weak(
                    &weak,
                    IoEvent::PeerMessage {
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
        inner.borrow_mut().peers.remove(&h);
        feed(&inner, IoEvent::PeerClosed(h));
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
            if let Role::Offer = role {
                offer_done(weak, h, None);
            }
            return Err(e);
        }
    };
    match role {
        Role::Offer => {
            let sdp = unless(Rc::clone(slot).closed(), pc.create_offer()).await;
            match sdp {
                Some(Ok(sdp)) => offer_done(weak, h, Some(sdp)),
                Some(Err(e)) => {
                    offer_done(weak, h, None);
                    return Err(e);
                }
                None => {
                    offer_done(weak, h, None);
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
            feed_weak(weak, IoEvent::AnswerCreated { peer: h, sdp: sdp? });
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
