//! What a peer announced, as a sorted set of segment ids.

use crate::wire::SegmentId;

/// A set of segment ids as a sorted vector: announcements replace it whole, lookups are binary
/// searches (much cheaper than a tree for the planner's many lookups).
#[derive(Debug, Clone, Default)]
pub(super) struct SegmentSet(Vec<SegmentId>);

impl SegmentSet {
    pub(super) fn set(&mut self, ids: &[SegmentId]) {
        self.0.clear();
        self.0.extend_from_slice(ids);
        if !self.0.is_sorted() {
            self.0.sort_unstable();
        }
        self.0.dedup();
    }

    pub(super) fn contains(&self, id: &SegmentId) -> bool {
        self.0.binary_search(id).is_ok()
    }

    pub(super) fn insert(&mut self, id: SegmentId) {
        if let Err(i) = self.0.binary_search(&id) {
            self.0.insert(i, id);
        }
    }

    pub(super) fn remove(&mut self, id: &SegmentId) {
        if let Ok(i) = self.0.binary_search(id) {
            self.0.remove(i);
        }
    }
}
