//! The nodes' tracker sockets: frames go to the [`MemTracker`](crate::sim::tracker::MemTracker)
//! and its replies come back, each after
//! [`HarnessConfig::tracker_latency`](super::HarnessConfig::tracker_latency).

use super::{Harness, NetEvent};
use crate::engine::IoEvent;
use crate::tracker_client::TrackerFrame;

impl<E> Harness<E> {
    /// Sends a frame from `node` to the tracker.
    pub(super) fn send_tracker(&mut self, node: usize, text: String) {
        let at = self.now() + self.config.tracker_latency;
        self.push(at, NetEvent::TrackerIn(node, text));
    }

    /// A frame from `node` reaches the tracker; its replies go out. A node that left still
    /// reaches it with its last ("stopped") announce.
    pub(super) fn tracker_in(&mut self, node: usize, text: String) {
        if self.nodes[node].engine.is_none() && !text.contains("stopped") {
            return;
        }
        for (to, text) in self.tracker.handle(node, &text) {
            let Some(event) = tracker_event(&text) else {
                continue;
            };
            let at = self.now() + self.config.tracker_latency;
            self.push(at, NetEvent::Deliver(to, event));
        }
    }
}

/// A frame from the tracker as an engine input, read as a driver reads it (`None` if it is not
/// a JSON object; the in-memory tracker writes only those).
fn tracker_event(text: &str) -> Option<IoEvent> {
    TrackerFrame::parse(text).ok().map(IoEvent::TrackerMessage)
}
