//! The harness's virtual clock and its one event queue: events in time order, ties in the order
//! they were scheduled.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One millisecond on the harness clock, whose unit is the microsecond.
pub const MILLISECOND: u64 = 1_000;

/// One second on the harness clock, whose unit is the microsecond.
pub const SECOND: u64 = 1_000_000;

/// `secs` seconds in whole microseconds (rounded; negative is zero).
pub fn micros(secs: f64) -> u64 {
    (secs.max(0.0) * SECOND as f64).round() as u64
}

/// The queue and the clock: the clock reads the time of the event being handled.
#[derive(Debug)]
pub(super) struct EventQueue<E> {
    now: u64,
    seq: u64,
    heap: BinaryHeap<Scheduled<E>>,
}

impl<E> EventQueue<E> {
    pub(super) fn new() -> Self {
        Self {
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }

    /// The current time, microseconds since the harness started.
    pub(super) fn now(&self) -> u64 {
        self.now
    }

    /// Schedules `event` at `at` (µs), or now if `at` is past.
    pub(super) fn push(&mut self, at: u64, event: E) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            event,
        });
    }

    /// The next event if it is due by `end` (µs), with the clock moved to its time.
    pub(super) fn pop_until(&mut self, end: u64) -> Option<E> {
        if self.heap.peek()?.at > end {
            return None;
        }
        let next = self.heap.pop()?;
        self.now = next.at;
        Some(next.event)
    }

    /// Moves the clock to `t` (µs) if that is later.
    pub(super) fn advance_to(&mut self, t: u64) {
        self.now = self.now.max(t);
    }
}

#[derive(Debug)]
struct Scheduled<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Reversed, so that the max-heap pops the earliest event first.
impl<E> Ord for Scheduled<E> {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}
