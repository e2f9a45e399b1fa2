//! The download table: every segment being downloaded, kept once — its bytes, the source feeding
//! it, the request, and what relays read. The engine writes it as requests start and bytes arrive;
//! the scheduler reads it to plan ([`crate::scheduler::PlanView`]).

use crate::engine::HttpHandle;
use crate::scheduler::{PeerHandle, Source};
use crate::time::Instant;
use crate::tracker_client::PeerId;
use crate::vecmap::VecMap;
use crate::wire::{RequestId, SegmentId};

/// The request a [`Transfer`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// An HTTP request.
    Http(HttpHandle),
    /// A `SegmentRequest` to the peer of [`Transfer::source`].
    Peer {
        /// Its id.
        id: RequestId,
        /// Bytes the peer announced in `SegmentData`, once it did.
        expected: Option<u64>,
        /// Bytes received on this request.
        received: u64,
    },
}

/// The source feeding a [`Download`] now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transfer {
    /// Where the bytes come from.
    pub source: Source,
    /// The request.
    pub request: Request,
    /// When this source started.
    pub started: Instant,
    /// The byte this source started from.
    pub from_byte: u64,
    /// When bytes last arrived (or the source started).
    pub last_progress: Instant,
    /// When the first byte from this source arrived, and the bytes held then.
    pub first_byte: Option<(Instant, u64)>,
}

/// One segment in flight.
#[derive(Debug, Default)]
pub struct Download {
    /// The bytes held so far: a prefix of the segment.
    pub data: Vec<u8>,
    /// The segment's full size, once a source said it.
    pub total: Option<u64>,
    /// Changes whenever bytes are dropped (the download starts over, possibly from another
    /// source): a relay reading an older generation must end, or it would splice two sources.
    pub generation: u64,
    /// Peers that supplied bytes of `data`, in order (their id when known): blamed for a hash
    /// mismatch, whatever source completed the segment.
    pub contributors: Vec<(PeerHandle, Option<PeerId>)>,
    /// The source feeding it now; `None` while it waits (its bytes kept for a resume).
    pub transfer: Option<Transfer>,
}

impl Download {
    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.data.len() as u64
    }
}

/// Every segment in flight, by id. See the module documentation.
#[derive(Debug, Default)]
pub struct DownloadTable {
    entries: VecMap<SegmentId, Download>,
    /// Last [`Download::generation`] handed out.
    last_generation: u64,
}

impl DownloadTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The download of `segment`, if any.
    pub fn get(&self, segment: SegmentId) -> Option<&Download> {
        self.entries.get(&segment)
    }

    /// The download of `segment`, for changes.
    pub fn get_mut(&mut self, segment: SegmentId) -> Option<&mut Download> {
        self.entries.get_mut(&segment)
    }

    /// The download of `segment`, created (with a fresh generation) if there is none.
    pub fn entry(&mut self, segment: SegmentId) -> &mut Download {
        let next = &mut self.last_generation;
        self.entries.get_or_insert_with(segment, || {
            *next += 1;
            Download {
                generation: *next,
                ..Download::default()
            }
        })
    }

    /// Forgets `segment`'s download and its bytes.
    pub fn remove(&mut self, segment: SegmentId) -> Option<Download> {
        self.entries.remove(&segment)
    }

    /// Keeps the first `len` bytes of `segment`'s download; a new generation if that drops any.
    pub fn truncate(&mut self, segment: SegmentId, len: u64) {
        let Some(d) = self.entries.get_mut(&segment) else {
            return;
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len < d.data.len() {
            d.data.truncate(len);
            self.last_generation += 1;
            d.generation = self.last_generation;
            if len == 0 {
                d.contributors.clear();
            }
        }
    }

    /// Starts `source` on `segment` from byte `from_byte` (bytes past it are dropped).
    pub fn start(
        &mut self,
        segment: SegmentId,
        source: Source,
        request: Request,
        from_byte: u64,
        now: Instant,
    ) {
        self.entry(segment);
        self.truncate(segment, from_byte);
        let d = self.entry(segment);
        d.transfer = Some(Transfer {
            source,
            request,
            started: now,
            from_byte,
            last_progress: now,
            first_byte: None,
        });
    }

    /// Bytes were appended to `segment`'s download at `now`.
    pub fn progressed(&mut self, segment: SegmentId, now: Instant) {
        if let Some(d) = self.entries.get_mut(&segment) {
            let held = d.held();
            if let Some(t) = d.transfer.as_mut() {
                t.last_progress = now;
                t.first_byte.get_or_insert((now, held));
            }
        }
    }

    /// Ends the source of `segment`'s download, keeping its bytes; returns what it was.
    pub fn stop(&mut self, segment: SegmentId) -> Option<Transfer> {
        self.entries.get_mut(&segment)?.transfer.take()
    }

    /// Every download, by segment id.
    pub fn iter(&self) -> impl Iterator<Item = (SegmentId, &Download)> {
        self.entries.iter().map(|(s, d)| (*s, d))
    }

    /// The running transfers, by segment id.
    pub fn running(&self) -> impl Iterator<Item = (SegmentId, &Transfer)> {
        self.iter()
            .filter_map(|(s, d)| d.transfer.as_ref().map(|t| (s, t)))
    }

    /// The segment whose transfer runs on HTTP request `request`.
    pub fn by_http(&self, request: HttpHandle) -> Option<SegmentId> {
        self.find(|t| t.request == Request::Http(request))
            .map(|(s, _)| s)
    }

    /// The segment downloading from `peer`, with its transfer.
    pub fn from_peer(&self, peer: PeerHandle) -> Option<(SegmentId, &Transfer)> {
        self.find(|t| t.source == Source::Peer(peer))
    }

    /// The first running transfer `matches` accepts.
    fn find(&self, matches: impl Fn(&Transfer) -> bool) -> Option<(SegmentId, &Transfer)> {
        for (s, d) in self.entries.iter() {
            if let Some(t) = d.transfer.as_ref().filter(|t| matches(t)) {
                return Some((*s, t));
            }
        }
        None
    }

    /// Segments downloading now: over HTTP only, or from any source.
    pub fn loading(&self, http_only: bool) -> Vec<SegmentId> {
        self.running()
            .filter(|(_, t)| !http_only || matches!(t.source, Source::Http(_)))
            .map(|(s, _)| s)
            .collect()
    }
}
