//! The engine's output queues, one per kind, drained by the `poll_*` methods.

use super::{Event, HttpCommand, RtcCommand, Transmit};

/// What the engine has queued for the driver and the application. Plain vectors taken from the
/// front: the queues hold a few dozen items at most between two polls, and a `Vec` per kind links
/// far less code into the browser package than a `VecDeque` per kind.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// For [`super::Engine::poll_transmit`].
    pub(super) transmits: Vec<Transmit>,
    /// For [`super::Engine::poll_rtc`].
    pub(super) rtc: Vec<RtcCommand>,
    /// For [`super::Engine::poll_http`].
    pub(super) http: Vec<HttpCommand>,
    /// For [`super::Engine::poll_event`].
    pub(super) events: Vec<Event>,
}

/// The oldest item of `queue`, removed.
pub(super) fn take_first<T>(queue: &mut Vec<T>) -> Option<T> {
    (!queue.is_empty()).then(|| queue.remove(0))
}
