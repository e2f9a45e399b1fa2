//! Queues kept as plain vectors and taken from the front: the engine's and the tracker client's
//! outputs. They hold a few dozen items at most between two polls, and a `Vec` per item type links
//! far less code into the browser package than a `VecDeque` per item type.

/// The oldest item of `queue`, removed.
pub(crate) fn take_first<T>(queue: &mut Vec<T>) -> Option<T> {
    (!queue.is_empty()).then(|| queue.remove(0))
}
