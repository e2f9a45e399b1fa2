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

/// Offers being made for one [`Output::CreateOffers`], reported together.
pub(super) struct OfferBatch {
    pub(super) remaining: usize,
    pub(super) offers: Vec<(PeerHandle, String)>,
}

/// Closes a peer the engine still knows: the slot now, `PeerClosed` to the engine soon after
/// (not from inside the current step).
/// Closes a peer from the driver side and tells the engine `why` (`PeerClosed`, or
/// `PeerSendOverrun` when the peer let its send queue overflow).
pub(super) fn close_with(
    s: &mut State,
    slot: &Rc<PeerSlot>,
    weak: &Weak<RefCell<State>>,
    why: Input,
) {
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

pub(super) enum Role {
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
