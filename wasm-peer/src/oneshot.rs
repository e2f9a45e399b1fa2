//! Small single-threaded futures helpers: a one-value channel and a race against a close signal.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    sender_gone: bool,
    waker: Option<Waker>,
}

/// The sending half of [`channel`].
pub(crate) struct Sender<T>(Rc<RefCell<Slot<T>>>);

/// The receiving half of [`channel`]: resolves to the value, or `None` if the sender was dropped.
pub(crate) struct Receiver<T>(Rc<RefCell<Slot<T>>>);

/// A channel carrying one value.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        sender_gone: false,
        waker: None,
    }));
    (Sender(Rc::clone(&slot)), Receiver(slot))
}

impl<T> Sender<T> {
    /// Hands the value over and wakes the receiver.
    pub(crate) fn send(self, value: T) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.sender_gone = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value; `None` when the sender was dropped without sending.
    pub(crate) async fn recv(self) -> Option<T> {
        std::future::poll_fn(move |cx| {
            let mut s = self.0.borrow_mut();
            if let Some(v) = s.value.take() {
                Poll::Ready(Some(v))
            } else if s.sender_gone {
                Poll::Ready(None)
            } else {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Runs `fut` until it completes or `stop` resolves first (then `None`).
pub(crate) async fn unless<F: Future, S: Future>(stop: S, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut stop = std::pin::pin!(stop);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
