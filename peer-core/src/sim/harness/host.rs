//! Driving engines: the [`Host`] trait, whose provided methods call an engine and carry out what
//! it queued, and the dispatch of the harness's own events.

use super::{origin, Harness, NetEvent, Scheduled};
use crate::engine::{Engine, Event, IoEvent};
use crate::time::Instant;

/// The owner of a [`Harness`]: the simulator, or a test. It reacts to the engines' events and to
/// its own scheduled events of type `E` ([`Harness::schedule`]), and drives the engines through
/// the provided methods.
pub trait Host<E>: Sized {
    /// The harness.
    fn harness(&mut self) -> &mut Harness<E>;

    /// `node`'s engine emitted `event`. Called while the engine's outputs are drained, so it may
    /// call engines again.
    fn engine_event(&mut self, node: usize, event: Event);

    /// One of the owner's events is due.
    fn own_event(&mut self, event: E);

    /// Calls `f` on `node`'s engine (if it runs) with the current time, then carries out what the
    /// engine queued.
    fn with_engine(&mut self, node: usize, f: impl FnOnce(&mut Engine, Instant)) {
        let harness = self.harness();
        let now = harness.now_instant();
        let Some(engine) = harness.nodes[node].engine.as_mut() else {
            return;
        };
        f(engine, now);
        drain(self, node);
    }

    /// Feeds `node`'s engine an IO event now.
    fn input(&mut self, node: usize, event: IoEvent) {
        self.with_engine(node, |e, now| e.handle_event(event, now));
    }

    /// Handles every event due by `end` (µs) in order, then moves the clock to `end`.
    fn run_until(&mut self, end: u64) {
        while let Some(event) = self.harness().queue.pop_until(end) {
            match event {
                Scheduled::Net(event) => handle(self, event),
                Scheduled::Own(event) => self.own_event(event),
            }
        }
        self.harness().queue.advance_to(end);
    }

    /// `node`'s engine shuts down and leaves the network: its peers hear `PeerClosed`, its HTTP
    /// responses stop and the tracker forgets it. Returns the engine (`None` if it did not run).
    fn remove_engine(&mut self, node: usize) -> Option<Engine> {
        self.harness().engine(node)?;
        self.with_engine(node, Engine::shutdown);
        let harness = self.harness();
        for link in std::mem::take(&mut harness.nodes[node].links).into_values() {
            harness.hang_up(node, link);
        }
        harness.nodes[node].flows.clear();
        harness.tracker.disconnect(node);
        harness.nodes[node].engine.take()
    }

    /// The connection between `a` and `b` fails now: both engines hear `PeerClosed`.
    fn cut(&mut self, a: usize, b: usize) {
        let Some((ha, hb)) = self.harness().unlink(a, b) else {
            return;
        };
        self.input(a, IoEvent::PeerClosed(ha));
        self.input(b, IoEvent::PeerClosed(hb));
    }
}

/// Carries out what `node`'s engine queued, one output at a time, then schedules its timer.
fn drain<E, H: Host<E>>(host: &mut H, node: usize) {
    loop {
        let harness = host.harness();
        let Some(engine) = harness.nodes[node].engine.as_mut() else {
            return;
        };
        if let Some(t) = engine.poll_transmit() {
            harness.transmit(node, t);
        } else if let Some(c) = engine.poll_rtc() {
            harness.rtc(node, c);
        } else if let Some(c) = engine.poll_http() {
            harness.http(node, c);
        } else if let Some(event) = engine.poll_event() {
            harness.log_event(node, &event);
            host.engine_event(node, event);
        } else {
            break;
        }
    }
    host.harness().schedule_timer(node);
}

/// Handles one of the harness's own events.
fn handle<E, H: Host<E>>(host: &mut H, event: NetEvent) {
    match event {
        NetEvent::Timer { node, at } => {
            let timer = &mut host.harness().nodes[node].timer_at;
            if *timer == Some(at) {
                *timer = None;
                host.with_engine(node, Engine::handle_timeout);
            }
        }
        NetEvent::Deliver(node, input) => host.input(node, input),
        NetEvent::TrackerIn(node, text) => host.harness().tracker_in(node, text),
        NetEvent::HttpNext(node, request) => origin::http_next(host, node, request),
        NetEvent::HttpData {
            node,
            request,
            offset,
            len,
        } => origin::http_data(host, node, request, offset, len),
        NetEvent::AnswerTimeout(node, peer) => {
            if host.harness().give_up_answer(node, peer) {
                host.input(node, IoEvent::PeerClosed(peer));
            }
        }
    }
}
