//! The tracker socket: connecting, rotating through the URLs, reconnecting with backoff.

use segswarm_core::tracker_client::TrackerFrame;

use super::*;

/// A `WebSocket` to the tracker and its handlers, released when this is dropped.
pub(super) struct TrackerWs {
    pub(super) ws: WebSocket,
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

/// Opens the tracker socket for the current tracker URL (none configured: nothing).
pub(super) fn connect_tracker(inner: &Rc<RefCell<State>>) {
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
            feed(&inner, IoEvent::TrackerConnected);
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(text) = e.data().as_string() else {
                tracing::debug!("binary tracker frame ignored");
                return;
            };
            // Read once: for the backoff here and for the engine.
            let frame = match TrackerFrame::parse(&text) {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::debug!("tracker frame dropped: {e}");
                    return;
                }
            };
            if frame.is_announce_accepted() {
                if let Some(inner) = weak.upgrade() {
                    inner.borrow_mut().backoff.reset();
                }
            }
            feed_weak(&weak, IoEvent::TrackerMessage(frame))
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
                feed(&inner, IoEvent::TrackerDisconnected);
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
