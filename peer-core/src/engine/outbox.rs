//! The engine's output queues, one per kind, drained by the `poll_*` methods.

use std::collections::VecDeque;

use super::{Event, HttpCommand, RtcCommand, Transmit};

/// What the engine has queued for the driver and the application.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// For [`super::Engine::poll_transmit`].
    pub(super) transmits: VecDeque<Transmit>,
    /// For [`super::Engine::poll_rtc`].
    pub(super) rtc: VecDeque<RtcCommand>,
    /// For [`super::Engine::poll_http`].
    pub(super) http: VecDeque<HttpCommand>,
    /// For [`super::Engine::poll_event`].
    pub(super) events: VecDeque<Event>,
}
