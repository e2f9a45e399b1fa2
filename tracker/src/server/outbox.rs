//! A connection's bounded outbound queue: other connections push relayed offers and answers,
//! the connection's own task pushes its replies, and the task moves the queue onto its socket
//! once the previous batch is written. Starts with no allocation (a connection
//! that receives nothing costs a few dozen bytes) and frees its buffer when drained.
//!
//! A full queue drops further messages (the caller counts them) and remembers when it first
//! had to: the connection task closes the connection only if the queue is still undrained
//! `slow_consumer_timeout` later, so a peer that reads slowly loses some relays but keeps its
//! connection, and a peer that never reads goes away.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

use crate::metrics::MessageKind;

/// One queued message.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The JSON text.
    pub text: String,
    /// What it is, for the outgoing message counter.
    pub kind: MessageKind,
    /// When the offer this message relays arrived (for the relay latency histogram).
    pub offer_received: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    messages: VecDeque<Outbound>,
    /// Bytes of text in `messages`.
    bytes: usize,
    /// When a message was first dropped since the queue was last drained.
    full_since: Option<Instant>,
}

/// The queue shared between producers and the connection task.
#[derive(Debug)]
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Signalled when the queue starts dropping, for a task blocked writing to its slow socket.
    full: Notify,
    max: usize,
    max_bytes: usize,
}

/// The queue was full and the message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl Outbox {
    /// An empty queue holding at most `max` messages and `max_bytes` bytes of text (one
    /// larger message is taken while the queue is empty, so any reply can go out).
    pub fn new(max: usize, max_bytes: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            full: Notify::new(),
            max: max.max(1),
            max_bytes,
        }
    }

    /// Whether `inner` can take a message of `len` bytes.
    fn fits(&self, inner: &Inner, len: usize) -> bool {
        inner.messages.is_empty()
            || (inner.messages.len() < self.max
                && inner.bytes.saturating_add(len) <= self.max_bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message; when the queue is full the message is dropped (`Err`), and the first
    /// drop since the last drain is stamped with `now`.
    pub fn push(&self, message: Outbound, now: Instant) -> Result<(), QueueFull> {
        {
            let mut inner = self.lock();
            if !self.fits(&inner, message.text.len()) {
                self.mark_full(inner, now);
                return Err(QueueFull);
            }
            inner.bytes += message.text.len();
            inner.messages.push_back(message);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Whether the queue has room (below both bounds) for another message. A full queue counts
    /// as having dropped one
    /// at `now` (the caller will not send it), as [`Outbox::push`] does.
    pub fn has_room(&self, now: Instant) -> bool {
        let inner = self.lock();
        if !self.fits(&inner, 1) {
            self.mark_full(inner, now);
            return false;
        }
        true
    }

    fn mark_full(&self, mut inner: std::sync::MutexGuard<'_, Inner>, now: Instant) {
        let first = inner.full_since.is_none();
        if first {
            inner.full_since = Some(now);
        }
        drop(inner);
        if first {
            self.full.notify_one();
        }
    }

    /// Waits until something is queued.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Waits until the queue (possibly) started dropping; check [`Outbox::full_since`].
    pub async fn full_signal(&self) {
        self.full.notified().await;
    }

    /// When the queue first dropped a message since it was last drained.
    pub fn full_since(&self) -> Option<Instant> {
        self.lock().full_since
    }

    /// Takes everything queued, releasing the buffer; the queue is no longer full.
    pub fn take_all(&self) -> VecDeque<Outbound> {
        let mut inner = self.lock();
        inner.full_since = None;
        inner.bytes = 0;
        std::mem::take(&mut inner.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(s: &str) -> Outbound {
        Outbound {
            text: s.into(),
            kind: MessageKind::Offer,
            offer_received: None,
        }
    }

    #[tokio::test]
    async fn bounded_drops_when_full_and_recovers_when_drained() {
        let t0 = Instant::now();
        let outbox = Outbox::new(2, 1 << 20);
        assert!(outbox.push(msg("a"), t0).is_ok());
        outbox.ready().await;
        assert!(outbox.push(msg("b"), t0).is_ok());
        assert_eq!(outbox.full_since(), None);
        let t1 = t0 + Duration::from_secs(1);
        assert!(!outbox.has_room(t1));
        assert_eq!(
            outbox.push(msg("c"), t1 + Duration::from_secs(1)),
            Err(QueueFull)
        );
        outbox.full_signal().await;
        assert_eq!(
            outbox.push(msg("d"), t1 + Duration::from_secs(1)),
            Err(QueueFull)
        );
        assert_eq!(outbox.full_since(), Some(t1), "stamped at the first drop");
        let all = outbox.take_all();
        assert_eq!(all.len(), 2);
        assert_eq!(&*all[0].text, "a");
        assert_eq!(&*all[1].text, "b");
        assert_eq!(outbox.full_since(), None, "drained: no longer full");
        assert!(outbox.push(msg("e"), t1).is_ok());
    }

    #[test]
    fn bounded_in_bytes_but_any_single_message_fits_an_empty_queue() {
        let now = Instant::now();
        let outbox = Outbox::new(100, 10);
        assert!(outbox.push(msg(&"x".repeat(50)), now).is_ok(), "alone");
        assert_eq!(outbox.push(msg("y"), now), Err(QueueFull));
        assert!(!outbox.has_room(now));
        outbox.take_all();
        assert!(outbox.push(msg("123456"), now).is_ok());
        assert!(outbox.push(msg("1234"), now).is_ok());
        assert_eq!(
            outbox.push(msg("1"), now),
            Err(QueueFull),
            "10 bytes queued"
        );
    }
}
