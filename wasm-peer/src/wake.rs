//! A list of wakers shared between JavaScript event handlers and the futures waiting on them.

use std::task::Waker;

/// Futures waiting for a change of some shared state; event handlers wake them all.
#[derive(Debug, Default)]
pub(crate) struct Wakers(Vec<Waker>);

impl Wakers {
    /// Registers a waiting task (once per task).
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    /// Wakes every waiting task.
    pub(crate) fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}
