//! What the other tasks of a server see of one open WebSocket connection: the outbox they push
//! relayed offers and answers into, and when the connection was last heard from (a peer_id it
//! holds passes to a reconnecting client only once it has gone silent).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::outbox::Outbox;

/// One open WebSocket connection, shared through `Shared::conns`.
#[derive(Debug)]
pub(crate) struct OpenConn {
    /// Messages for the connection.
    pub outbox: Outbox,
    /// When the connection opened; `heard_ms` counts from here.
    opened: Instant,
    /// Milliseconds after `opened` at which the last frame arrived.
    heard_ms: AtomicU64,
}

impl OpenConn {
    /// A connection opened at `now` with `outbox`.
    pub fn new(outbox: Outbox, now: Instant) -> OpenConn {
        OpenConn {
            outbox,
            opened: now,
            heard_ms: AtomicU64::new(0),
        }
    }

    /// Records that a frame (any frame, a pong included) arrived at `now`.
    pub fn heard(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.opened).as_millis();
        self.heard_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How long the connection has sent nothing, as of `now`.
    pub fn silent_for(&self, now: Instant) -> Duration {
        let heard = self.opened + Duration::from_millis(self.heard_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(heard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_from_the_last_frame() {
        let t0 = Instant::now();
        let conn = OpenConn::new(Outbox::new(1, 1024), t0);
        assert_eq!(
            conn.silent_for(t0 + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        conn.heard(t0 + Duration::from_secs(2));
        assert_eq!(
            conn.silent_for(t0 + Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(conn.silent_for(t0), Duration::ZERO);
    }
}
