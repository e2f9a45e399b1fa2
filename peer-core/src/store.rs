//! The segment cache: segments kept in memory, bounded in bytes (not in count).
//!
//! A segment is addressed by a [`StreamKey`] (which stream/variant it belongs to; the engine hands
//! out one small number per stream it plays) and its wire [`SegmentId`]. Two eviction modes:
//!
//! - [`EvictionMode::Vod`]: least recently used first, where "used" means inserted or read with
//!   [`SegmentStore::get`];
//! - [`EvictionMode::Live`]: a sliding window that keeps the newest segments (highest ids) and drops
//!   the oldest (lowest ids) first. Reads do not change the order. Across streams the lowest id goes
//!   first (live variants of one HLS stream share media sequence numbers), ties broken by stream key.

use bytes::Bytes;

use crate::vecmap::VecMap;
use crate::wire::SegmentId;

/// Identifies one stream (one variant or media playlist) inside the store.
///
/// The engine assigns these; the store only compares them. A number rather than the swarm id string
/// keeps keys `Copy` and cheap to hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey(pub u32);

/// One stored segment's address: its stream and its wire id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentKey {
    /// The stream the segment belongs to.
    pub stream: StreamKey,
    /// The segment's wire id (media sequence for live, playlist index for VOD).
    pub id: SegmentId,
}

/// Which segments leave first when the store is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionMode {
    /// Least recently used first (inserted or read). For video on demand.
    #[default]
    Vod,
    /// Oldest segment (lowest id) first: a sliding window at the live edge.
    Live,
}

/// Settings of a [`SegmentStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Upper bound on the sum of the stored segments' sizes, in bytes.
    /// Default: [`StoreConfig::DEFAULT_MAX_BYTES`] (256 MiB).
    pub max_bytes: u64,
    /// Eviction policy. Default: [`EvictionMode::Vod`].
    pub mode: EvictionMode,
}

impl StoreConfig {
    /// Default byte cap: 256 MiB, about 10 minutes of 3.5 Mbit/s video.
    pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            mode: EvictionMode::default(),
        }
    }
}

/// Why a segment could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The segment alone is larger than the store's byte cap.
    #[error("segment {id} of stream {stream} is {size} bytes, more than the store cap of {max_bytes} bytes")]
    TooLarge {
        /// Stream of the refused segment.
        stream: u32,
        /// Id of the refused segment.
        id: SegmentId,
        /// Its size in bytes.
        size: u64,
        /// The store's cap.
        max_bytes: u64,
    },
}

/// Position of an entry in the eviction order (smallest leaves first).
type OrderKey = (i64, u64);

#[derive(Debug)]
struct Entry {
    data: Bytes,
    order: OrderKey,
}

/// A byte-bounded segment cache. See the module documentation for the eviction rules.
#[derive(Debug)]
pub struct SegmentStore {
    config: StoreConfig,
    entries: VecMap<SegmentKey, Entry>,
    /// Eviction order: VOD `(access tick, 0)`, live `(segment id, stream)`.
    order: VecMap<OrderKey, SegmentKey>,
    /// Sorted ids per stream, for announcements.
    by_stream: VecMap<StreamKey, Vec<SegmentId>>,
    used_bytes: u64,
    tick: u64,
}

impl SegmentStore {
    /// An empty store with the given settings.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            entries: VecMap::new(),
            order: VecMap::new(),
            by_stream: VecMap::new(),
            used_bytes: 0,
            tick: 0,
        }
    }

    /// The settings this store was made with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Stores a segment, replacing any previous data under the same key, and evicts segments until
    /// the store fits its byte cap again.
    ///
    /// Returns the evicted segments. In [`EvictionMode::Live`] this can include the inserted segment
    /// itself when it is older than everything kept (it is then not stored). A segment larger than
    /// the whole cap is refused with [`StoreError::TooLarge`] and the store is left unchanged.
    pub fn insert(
        &mut self,
        stream: StreamKey,
        id: SegmentId,
        data: Bytes,
    ) -> Result<Vec<SegmentKey>, StoreError> {
        let size = data.len() as u64;
        if size > self.config.max_bytes {
            return Err(StoreError::TooLarge {
                stream: stream.0,
                id,
                size,
                max_bytes: self.config.max_bytes,
            });
        }
        let key = SegmentKey { stream, id };
        self.remove_key(key);
        let order = self.order_key_for(key);
        self.entries.insert(key, Entry { data, order });
        self.order.insert(order, key);
        let ids = self.by_stream.get_or_insert_with(stream, Vec::new);
        if let Err(i) = ids.binary_search(&id) {
            ids.insert(i, id);
        }
        self.used_bytes += size;
        Ok(self.evict_to(self.config.max_bytes))
    }

    /// The segment's bytes, if stored. In VOD mode this marks it as most recently used.
    pub fn get(&mut self, stream: StreamKey, id: SegmentId) -> Option<Bytes> {
        let key = SegmentKey { stream, id };
        let new_order = match self.config.mode {
            EvictionMode::Vod => Some(self.next_tick_key()),
            EvictionMode::Live => None,
        };
        let entry = self.entries.get_mut(&key)?;
        if let Some(new_order) = new_order {
            self.order.remove(&entry.order);
            entry.order = new_order;
            self.order.insert(new_order, key);
        }
        Some(entry.data.clone())
    }

    /// The segment's bytes, if stored, without changing the eviction order.
    pub fn peek(&self, stream: StreamKey, id: SegmentId) -> Option<Bytes> {
        self.entries
            .get(&SegmentKey { stream, id })
            .map(|e| e.data.clone())
    }

    /// Whether the segment is stored.
    pub fn contains(&self, stream: StreamKey, id: SegmentId) -> bool {
        self.entries.contains_key(&SegmentKey { stream, id })
    }

    /// The stored segment ids of one stream, ascending (what a peer announces as loaded).
    pub fn segment_ids(&self, stream: StreamKey) -> Vec<SegmentId> {
        self.by_stream.get(&stream).cloned().unwrap_or_default()
    }

    /// Removes one segment; returns its bytes if it was stored.
    pub fn remove(&mut self, stream: StreamKey, id: SegmentId) -> Option<Bytes> {
        self.remove_key(SegmentKey { stream, id })
    }

    /// Removes every segment of a stream; returns how many were removed.
    pub fn remove_stream(&mut self, stream: StreamKey) -> usize {
        let ids = self.segment_ids(stream);
        for id in &ids {
            self.remove_key(SegmentKey { stream, id: *id });
        }
        ids.len()
    }

    /// Changes the byte cap, evicting as needed; returns the evicted segments.
    pub fn set_max_bytes(&mut self, max_bytes: u64) -> Vec<SegmentKey> {
        self.config.max_bytes = max_bytes;
        self.evict_to(max_bytes)
    }

    /// Sum of the stored segments' sizes in bytes; never above the cap.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Number of stored segments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn next_tick_key(&mut self) -> OrderKey {
        self.tick += 1;
        // Ticks count operations; they cannot realistically reach i64::MAX.
        (i64::try_from(self.tick).unwrap_or(i64::MAX), 0)
    }

    fn order_key_for(&mut self, key: SegmentKey) -> OrderKey {
        match self.config.mode {
            EvictionMode::Vod => self.next_tick_key(),
            EvictionMode::Live => (key.id, u64::from(key.stream.0)),
        }
    }

    fn remove_key(&mut self, key: SegmentKey) -> Option<Bytes> {
        let entry = self.entries.remove(&key)?;
        self.order.remove(&entry.order);
        if let Some(ids) = self.by_stream.get_mut(&key.stream) {
            if let Ok(i) = ids.binary_search(&key.id) {
                ids.remove(i);
            }
            if ids.is_empty() {
                self.by_stream.remove(&key.stream);
            }
        }
        self.used_bytes -= entry.data.len() as u64;
        Some(entry.data)
    }

    fn evict_to(&mut self, max_bytes: u64) -> Vec<SegmentKey> {
        let mut evicted = Vec::new();
        while self.used_bytes > max_bytes {
            let Some((_, key)) = self.order.first_key_value() else {
                break;
            };
            let key = *key;
            self.remove_key(key);
            evicted.push(key);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: StreamKey = StreamKey(1);

    fn seg(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    fn store(max_bytes: u64, mode: EvictionMode) -> SegmentStore {
        SegmentStore::new(StoreConfig { max_bytes, mode })
    }

    #[test]
    fn insert_get_contains_remove() {
        let mut s = store(1000, EvictionMode::Vod);
        assert!(s.insert(S, 7, seg(100, 7)).unwrap().is_empty());
        assert!(s.contains(S, 7));
        assert!(!s.contains(StreamKey(2), 7));
        assert_eq!(s.get(S, 7).unwrap(), seg(100, 7));
        assert_eq!(s.used_bytes(), 100);
        assert_eq!(s.remove(S, 7).unwrap(), seg(100, 7));
        assert!(!s.contains(S, 7));
        assert_eq!(s.used_bytes(), 0);
        assert!(s.is_empty());
        assert!(s.remove(S, 7).is_none());
    }

    #[test]
    fn replacing_a_segment_counts_its_bytes_once() {
        let mut s = store(1000, EvictionMode::Vod);
        s.insert(S, 1, seg(300, 1)).unwrap();
        s.insert(S, 1, seg(200, 2)).unwrap();
        assert_eq!(s.used_bytes(), 200);
        assert_eq!(s.len(), 1);
        assert_eq!(s.peek(S, 1).unwrap(), seg(200, 2));
    }

    #[test]
    fn too_large_segment_is_refused_and_store_unchanged() {
        let mut s = store(100, EvictionMode::Vod);
        s.insert(S, 1, seg(60, 1)).unwrap();
        let err = s.insert(S, 2, seg(101, 2)).unwrap_err();
        assert_eq!(
            err,
            StoreError::TooLarge {
                stream: 1,
                id: 2,
                size: 101,
                max_bytes: 100
            }
        );
        assert!(err.to_string().contains("101 bytes"));
        assert!(s.contains(S, 1));
        assert_eq!(s.used_bytes(), 60);
        // Exactly the cap fits.
        assert_eq!(
            s.insert(S, 3, seg(100, 3)).unwrap(),
            vec![SegmentKey { stream: S, id: 1 }]
        );
    }

    #[test]
    fn vod_evicts_least_recently_used() {
        let mut s = store(300, EvictionMode::Vod);
        s.insert(S, 1, seg(100, 1)).unwrap();
        s.insert(S, 2, seg(100, 2)).unwrap();
        s.insert(S, 3, seg(100, 3)).unwrap();
        // Touch 1: now 2 is the least recently used.
        assert!(s.get(S, 1).is_some());
        let evicted = s.insert(S, 4, seg(100, 4)).unwrap();
        assert_eq!(evicted, vec![SegmentKey { stream: S, id: 2 }]);
        assert_eq!(s.segment_ids(S), vec![1, 3, 4]);
        // peek does not touch: 3 goes next, then 1.
        assert!(s.peek(S, 3).is_some());
        let evicted = s.insert(S, 5, seg(200, 5)).unwrap();
        assert_eq!(
            evicted,
            vec![
                SegmentKey { stream: S, id: 3 },
                SegmentKey { stream: S, id: 1 }
            ]
        );
        assert_eq!(s.segment_ids(S), vec![4, 5]);
    }

    #[test]
    fn live_keeps_the_newest_window() {
        let mut s = store(300, EvictionMode::Live);
        // Out of order arrival; reads must not protect old segments.
        s.insert(S, 11, seg(100, 11)).unwrap();
        s.insert(S, 10, seg(100, 10)).unwrap();
        s.insert(S, 12, seg(100, 12)).unwrap();
        assert!(s.get(S, 10).is_some());
        let evicted = s.insert(S, 13, seg(100, 13)).unwrap();
        assert_eq!(evicted, vec![SegmentKey { stream: S, id: 10 }]);
        assert_eq!(s.segment_ids(S), vec![11, 12, 13]);
        // A segment older than the whole window is not kept.
        let evicted = s.insert(S, 5, seg(100, 5)).unwrap();
        assert_eq!(evicted, vec![SegmentKey { stream: S, id: 5 }]);
        assert_eq!(s.segment_ids(S), vec![11, 12, 13]);
        assert_eq!(s.used_bytes(), 300);
    }

    #[test]
    fn live_across_streams_drops_lowest_id_first() {
        let mut s = store(300, EvictionMode::Live);
        let a = StreamKey(1);
        let b = StreamKey(2);
        s.insert(a, 20, seg(100, 0)).unwrap();
        s.insert(b, 19, seg(100, 0)).unwrap();
        s.insert(b, 21, seg(100, 0)).unwrap();
        let evicted = s.insert(a, 22, seg(100, 0)).unwrap();
        assert_eq!(evicted, vec![SegmentKey { stream: b, id: 19 }]);
        assert_eq!(s.segment_ids(a), vec![20, 22]);
        assert_eq!(s.segment_ids(b), vec![21]);
    }

    #[test]
    fn segment_ids_sorted_per_stream_and_remove_stream() {
        let mut s = store(10_000, EvictionMode::Vod);
        for id in [5, -1, 3, 100, 0] {
            s.insert(S, id, seg(10, 0)).unwrap();
        }
        s.insert(StreamKey(9), 4, seg(10, 0)).unwrap();
        assert_eq!(s.segment_ids(S), vec![-1, 0, 3, 5, 100]);
        assert_eq!(s.segment_ids(StreamKey(9)), vec![4]);
        assert_eq!(s.segment_ids(StreamKey(42)), Vec::<SegmentId>::new());
        assert_eq!(s.remove_stream(S), 5);
        assert_eq!(s.used_bytes(), 10);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn shrinking_the_cap_evicts() {
        let mut s = store(300, EvictionMode::Vod);
        for id in 0..3 {
            s.insert(S, id, seg(100, 0)).unwrap();
        }
        let evicted = s.set_max_bytes(150);
        assert_eq!(
            evicted,
            vec![
                SegmentKey { stream: S, id: 0 },
                SegmentKey { stream: S, id: 1 }
            ]
        );
        assert_eq!(s.used_bytes(), 100);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, i64, usize),
        Get(u32, i64),
        Remove(u32, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..3, 0i64..40, 0usize..700).prop_map(|(s, i, n)| Op::Insert(s, i, n)),
            2 => (0u32..3, 0i64..40).prop_map(|(s, i)| Op::Get(s, i)),
            1 => (0u32..3, 0i64..40).prop_map(|(s, i)| Op::Remove(s, i)),
        ]
    }

    proptest! {
        #[test]
        fn used_bytes_never_exceeds_cap_and_matches_contents(
            max_bytes in 0u64..2000,
            live in any::<bool>(),
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mode = if live { EvictionMode::Live } else { EvictionMode::Vod };
            let mut s = store(max_bytes, mode);
            for op in ops {
                match op {
                    Op::Insert(st, id, n) => {
                        let r = s.insert(StreamKey(st), id, seg(n, 0));
                        prop_assert_eq!(r.is_err(), n as u64 > max_bytes);
                        if let Ok(evicted) = r {
                            for k in evicted {
                                prop_assert!(!s.contains(k.stream, k.id));
                            }
                        }
                    }
                    Op::Get(st, id) => { s.get(StreamKey(st), id); }
                    Op::Remove(st, id) => { s.remove(StreamKey(st), id); }
                }
                prop_assert!(s.used_bytes() <= max_bytes);
                let mut total = 0u64;
                let mut count = 0usize;
                for st in 0..3 {
                    for id in s.segment_ids(StreamKey(st)) {
                        total += s.peek(StreamKey(st), id).map(|b| b.len() as u64).unwrap_or(u64::MAX / 4);
                        count += 1;
                    }
                }
                prop_assert_eq!(total, s.used_bytes());
                prop_assert_eq!(count, s.len());
            }
        }

        #[test]
        fn live_keeps_only_newer_than_what_it_evicted(
            sizes in proptest::collection::vec(1usize..300, 1..60),
        ) {
            // Inserting ids in increasing order: everything kept is newer than everything evicted.
            let mut s = store(1000, EvictionMode::Live);
            let mut max_evicted = i64::MIN;
            for (id, n) in sizes.into_iter().enumerate() {
                for k in s.insert(S, id as i64, seg(n, 0)).unwrap() {
                    max_evicted = max_evicted.max(k.id);
                }
            }
            let kept = s.segment_ids(S);
            prop_assert!(!kept.is_empty());
            prop_assert!(kept.iter().all(|id| *id > max_evicted));
        }
    }
}
