//! One planning pass: what [`Scheduler::plan`](super::Scheduler::plan) reads, and the running
//! transfers as the pass changes them.

use super::{Action, PeerHandle, Source, WantedSegment};
use crate::download_table::DownloadTable;
use crate::time::Instant;
use crate::vecmap::VecMap;
use crate::wire::SegmentId;

/// What [`Scheduler::plan`](super::Scheduler::plan) reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanView<'a> {
    /// The segments from the playhead on that are not yet stored, in playback order, each with
    /// its deadline.
    pub wanted: &'a [WantedSegment],
    /// The segments in flight.
    pub downloads: &'a DownloadTable,
}

/// A running transfer as one planning pass sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Running {
    pub(super) source: Source,
    /// Bytes held in total (including bytes from an earlier source).
    pub(super) received: u64,
    pub(super) total: Option<u64>,
    pub(super) last_progress: Instant,
    /// When the first byte from the current source arrived, and the bytes held then.
    pub(super) first_byte: Option<(Instant, u64)>,
}

impl Running {
    /// A transfer from `source` starting at `now` with `received` bytes held.
    pub(super) fn starting(
        source: Source,
        received: u64,
        total: Option<u64>,
        now: Instant,
    ) -> Self {
        Self {
            source,
            received,
            total,
            last_progress: now,
            first_byte: None,
        }
    }
}

/// One planning pass: the running transfers as the pass changes them, and the actions taken.
#[derive(Debug, Default)]
pub(super) struct Pass {
    pub(super) running: VecMap<SegmentId, Running>,
    pub(super) actions: Vec<Action>,
}

impl Pass {
    pub(super) fn new(downloads: &DownloadTable) -> Self {
        let running = downloads
            .iter()
            .filter_map(|(s, d)| {
                let t = d.transfer.as_ref()?;
                Some((
                    s,
                    Running {
                        source: t.source,
                        received: d.held(),
                        total: d.total,
                        last_progress: t.last_progress,
                        first_byte: t.first_byte,
                    },
                ))
            })
            .collect();
        Self {
            running,
            actions: Vec::new(),
        }
    }

    /// Number of running downloads from HTTP and from peers.
    pub(super) fn counts(&self) -> (usize, usize) {
        let http = self
            .running
            .values()
            .filter(|d| matches!(d.source, Source::Http(_)))
            .count();
        (http, self.running.len() - http)
    }

    /// Whether a download from `peer` runs.
    pub(super) fn busy(&self, peer: PeerHandle) -> bool {
        self.running
            .values()
            .any(|d| d.source == Source::Peer(peer))
    }

    pub(super) fn is_http(&self, segment: SegmentId) -> bool {
        matches!(self.running.get(&segment), Some(d) if matches!(d.source, Source::Http(_)))
    }

    /// Drops `segment`'s download from the pass and asks the engine to abort it.
    pub(super) fn abort(&mut self, segment: SegmentId) -> Option<Running> {
        self.actions.push(Action::Abort { segment });
        self.running.remove(&segment)
    }
}
