//! The engine's output queues, one per kind, drained by the `poll_*` methods.

use super::{Event, HttpCommand, RtcCommand, Transmit};

/// What the engine has queued for the driver and the application: plain vectors taken from the
/// front ([`crate::queue`]).
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
