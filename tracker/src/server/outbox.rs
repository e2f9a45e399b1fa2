//! A connection's bounded outbound queue: other connections push relayed offers and answers,
//! the connection's task drains them onto its socket. Starts with no allocation (a connection
//! that receives nothing costs a few dozen bytes) and frees its buffer when drained.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

use crate::metrics::MessageKind;

/// One queued message.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The JSON text.
    pub text: Box<str>,
    /// What it is, for the outgoing message counter.
    pub kind: MessageKind,
    /// When the offer this message relays arrived (for the relay latency histogram).
    pub offer_received: Option<Instant>,
}

/// The queue shared between producers and the connection task.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<Outbound>>,
    notify: Notify,
    /// Signalled once on overflow, for a task blocked writing to its slow socket.
    overflow: Notify,
    overflowed: AtomicBool,
    max: usize,
}

/// The queue was full: the recipient is too slow and will be disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl Outbox {
    /// An empty queue holding at most `max` messages.
    pub fn new(max: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            overflow: Notify::new(),
            overflowed: AtomicBool::new(false),
            max: max.max(1),
        }
    }

    /// Queues a message; on overflow the queue is marked and the message dropped. Returns
    /// `Err` only for the push that overflowed first.
    pub fn push(&self, message: Outbound) -> Result<(), QueueFull> {
        if self.overflowed.load(Ordering::Relaxed) {
            return Ok(());
        }
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.len() >= self.max {
                drop(queue);
                let first = !self.overflowed.swap(true, Ordering::Relaxed);
                self.notify.notify_one();
                self.overflow.notify_one();
                return if first { Err(QueueFull) } else { Ok(()) };
            }
            queue.push_back(message);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Waits until something is queued (or the queue overflowed).
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Waits until the queue overflows.
    pub async fn overflowed_signal(&self) {
        if !self.overflowed() {
            self.overflow.notified().await;
        }
    }

    /// Whether the queue overflowed.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Takes everything queued, releasing the buffer.
    pub fn take_all(&self) -> VecDeque<Outbound> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Outbound {
        Outbound {
            text: s.into(),
            kind: MessageKind::Offer,
            offer_received: None,
        }
    }

    #[tokio::test]
    async fn bounded_and_wakes_the_reader() {
        let outbox = Outbox::new(2);
        assert!(outbox.push(msg("a")).is_ok());
        outbox.ready().await;
        assert!(outbox.push(msg("b")).is_ok());
        assert_eq!(outbox.push(msg("c")), Err(QueueFull));
        assert_eq!(outbox.push(msg("d")), Ok(()), "reported once");
        assert!(outbox.overflowed());
        let all = outbox.take_all();
        assert_eq!(all.len(), 2);
        assert_eq!(&*all[0].text, "a");
    }
}
