//! What goes out: the engine's output queues, one per kind, and the `poll_*` methods that drain
//! them, with the next timeout.

use super::*;

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

impl Engine {
    /// The next frame or message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        take_first(&mut self.out.transmits)
    }

    /// The next peer-connection command, if any.
    pub fn poll_rtc(&mut self) -> Option<RtcCommand> {
        take_first(&mut self.out.rtc)
    }

    /// The next HTTP command, if any.
    pub fn poll_http(&mut self) -> Option<HttpCommand> {
        take_first(&mut self.out.http)
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        take_first(&mut self.out.events)
    }

    /// When to call [`Engine::handle_timeout`] next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        let Some(now) = self.last_now else {
            return self.tracker.poll_timeout();
        };
        let mut t = self.tracker.poll_timeout();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        let http_running = self
            .downloads
            .running()
            .any(|(_, t)| matches!(t.source, Source::Http(_)));
        if self.playback.is_some() || http_running || !self.player_wants.is_empty() {
            // Plan periodically while playing or downloading.
            consider(self.scheduler.next_wakeup(self.last_plan.unwrap_or(now)));
        }
        consider(self.plan_at);
        consider(self.unverified.values().map(|u| u.until).min());
        if let Some(next) = self.next_upload_bytes() {
            consider(Some(self.budget.ready_at(next, now).unwrap_or(now)));
        }
        t
    }

    /// Queues `cmd` for `peer`, split into messages of at most
    /// [`EngineConfig::max_message_bytes`].
    pub(super) fn send_command(&mut self, peer: PeerHandle, cmd: &Command) {
        for part in encode_command_with_max(cmd, self.config.max_message_bytes) {
            self.out.transmits.push(Transmit::Peer {
                peer,
                data: Bytes::from(part),
                segment_bytes: false,
            });
        }
    }
}
