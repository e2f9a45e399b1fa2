//! The headless player: one model of a video player's playhead, buffer and stalls, used by the
//! simulator and by `segswarm play`, so that their startup times and stall counts mean the same
//! thing.
//!
//! It is sans-IO: the driver gives it the playlist ([`HeadlessPlayer::set_playlist`]), the
//! segments that arrived or failed, and the time ([`HeadlessPlayer::advance`]); it says which
//! segments to ask for ([`HeadlessPlayer::requests`]) and where the playhead is (for
//! [`crate::engine::Engine::set_playback`]). Playback starts once [`PlayerSettings::startup_buffer`]
//! of media is buffered without a gap, advances with the clock and stalls (counted, with their
//! duration) whenever the playhead reaches the end of the buffered media; it resumes when
//! [`PlayerSettings::rebuffer`] is buffered again. Live, it starts
//! [`PlayerSettings::live_sync_segments`] target durations behind the edge (hls.js's
//! `liveSyncDurationCount`) and jumps forward when the window slides past the playhead.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::engine::SegmentInfo;
use crate::time::Instant;
use crate::wire::SegmentId;

/// Settings of the headless player.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerSettings {
    /// Media buffered before playback starts. Default 2 s.
    pub startup_buffer: Duration,
    /// Media buffered before playback resumes after a stall. Default 1 s.
    pub rebuffer: Duration,
    /// How far ahead of the playhead segments are requested. Default 30 s (hls.js
    /// `maxBufferLength`).
    pub buffer_ahead: Duration,
    /// Live: start this many target durations behind the live edge. Default 3 (hls.js
    /// `liveSyncDurationCount`).
    pub live_sync_segments: u32,
    /// Most segments asked for and not yet arrived; hls.js loads one at a time. Default
    /// unlimited (every segment within [`PlayerSettings::buffer_ahead`]).
    pub max_pending: usize,
    /// A segment that failed is asked for again after this long. Default 500 ms.
    pub retry_after: Duration,
}

impl Default for PlayerSettings {
    fn default() -> Self {
        Self {
            startup_buffer: Duration::from_secs(2),
            rebuffer: Duration::from_secs(1),
            buffer_ahead: Duration::from_secs(30),
            live_sync_segments: 3,
            max_pending: usize::MAX,
            retry_after: Duration::from_millis(500),
        }
    }
}

/// What the playhead is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayState {
    /// Waiting for the startup buffer.
    Starting,
    /// Advancing with the clock (at the end of a VOD it stays here).
    Playing,
    /// Reached the end of the buffered media; waits for the rebuffer.
    Stalled,
    /// [`HeadlessPlayer::close`] was called.
    Closed,
}

/// What the player measured so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerStats {
    /// From the player's creation to the start of playback (`None` before).
    pub startup: Option<Duration>,
    /// Times the playhead reached the end of the buffer after playback had started.
    pub stall_count: u64,
    /// Seconds spent stalled.
    pub stall_seconds: f64,
    /// Media seconds played.
    pub played_seconds: f64,
    /// Segments that arrived (each counted once).
    pub segments_loaded: u64,
    /// Live: the playhead fell out of the playlist window and jumped forward this often.
    pub live_skips: u64,
    /// Live: sum of the playhead's distances to the live edge, one sample per advance while
    /// playing, seconds.
    pub live_latency_sum: f64,
    /// Live: largest such distance, seconds.
    pub live_latency_max: f64,
    /// Live: samples in [`PlayerStats::live_latency_sum`].
    pub live_latency_samples: u64,
}

/// One segment on the playlist's timeline.
#[derive(Debug, Clone, Copy)]
struct Span {
    id: SegmentId,
    start: f64,
    duration: f64,
}

impl Span {
    fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// The headless player. See the module documentation.
#[derive(Debug)]
pub struct HeadlessPlayer {
    settings: PlayerSettings,
    created_at: Instant,
    timeline: Vec<Span>,
    live: bool,
    state: PlayState,
    position: f64,
    last: Option<Instant>,
    stall_started: Option<Instant>,
    loaded: BTreeSet<SegmentId>,
    /// Asked for and not to be asked for again (arrived, pending, or waiting for a retry).
    requested: BTreeSet<SegmentId>,
    /// Asked for and neither arrived nor failed.
    pending: BTreeSet<SegmentId>,
    retry: Vec<(SegmentId, Instant)>,
    stats: PlayerStats,
}

impl HeadlessPlayer {
    /// A player of `playlist` (`live`: a sliding window; `target_duration`, seconds, places a live
    /// start) created at `now`.
    pub fn new(
        settings: PlayerSettings,
        playlist: &[SegmentInfo],
        live: bool,
        target_duration: f64,
        now: Instant,
    ) -> Self {
        let mut player = Self {
            settings,
            created_at: now,
            timeline: Vec::new(),
            live,
            state: PlayState::Starting,
            position: 0.0,
            last: None,
            stall_started: None,
            loaded: BTreeSet::new(),
            requested: BTreeSet::new(),
            pending: BTreeSet::new(),
            retry: Vec::new(),
            stats: PlayerStats::default(),
        };
        player.set_playlist(playlist);
        let first = player.timeline.first().map_or(0.0, |s| s.start);
        player.position = if live {
            // `live_sync_segments` target durations behind the edge, at a segment start.
            let sync = f64::from(player.settings.live_sync_segments) * target_duration.max(0.0);
            let target = player.end() - sync;
            player
                .timeline
                .iter()
                .rev()
                .find(|s| s.start <= target)
                .map_or(first, |s| s.start)
        } else {
            first
        };
        player
    }

    /// The playlist changed (a live reload): segments that left the window are forgotten.
    pub fn set_playlist(&mut self, playlist: &[SegmentInfo]) {
        self.timeline = playlist
            .iter()
            .map(|s| Span {
                id: s.id,
                start: s.start,
                duration: s.duration,
            })
            .collect();
        let listed = |id: &SegmentId| self.timeline.iter().any(|s| s.id == *id);
        self.requested
            .retain(|id| listed(id) || self.loaded.contains(id));
        self.pending.retain(listed);
    }

    /// Segment `id` arrived.
    pub fn segment_loaded(&mut self, id: SegmentId) {
        self.pending.remove(&id);
        if self.loaded.insert(id) {
            self.stats.segments_loaded += 1;
        }
    }

    /// Segment `id` failed at `now`: it is asked for again after [`PlayerSettings::retry_after`].
    pub fn segment_failed(&mut self, id: SegmentId, now: Instant) {
        if self.pending.remove(&id) {
            self.retry.push((id, now + self.settings.retry_after));
        }
    }

    /// Moves the playhead to `now`: starts, plays, stalls or resumes.
    pub fn advance(&mut self, now: Instant) {
        if self.state == PlayState::Closed {
            return;
        }
        let dt = self.last.map_or(0.0, |l| (now - l).as_secs_f64());
        self.last = Some(now);
        // Live: a playhead left behind the window jumps to its start, as hls.js does.
        if let Some(first) = self.timeline.first() {
            if self.live && self.position < first.start - 1e-6 {
                self.position = first.start;
                self.stats.live_skips += 1;
            }
        }
        let end_of_stream = self.end();
        let buffered = self.buffered_end();
        if self.state == PlayState::Playing {
            let step = dt.min((buffered - self.position).max(0.0));
            self.position += step;
            self.stats.played_seconds += step;
            if !self.live && self.position >= end_of_stream - 1e-3 {
                return;
            }
            if self.position >= buffered - 1e-6 && dt > 0.0 {
                self.state = PlayState::Stalled;
                self.stats.stall_count += 1;
                self.stall_started = Some(now);
            } else if self.live {
                let latency = (end_of_stream - self.position).max(0.0);
                self.stats.live_latency_sum += latency;
                self.stats.live_latency_max = self.stats.live_latency_max.max(latency);
                self.stats.live_latency_samples += 1;
            }
            return;
        }
        let need = match self.state {
            PlayState::Starting => self.settings.startup_buffer,
            _ => self.settings.rebuffer,
        }
        .as_secs_f64();
        let ahead = buffered - self.position;
        let all_in = !self.live && buffered >= end_of_stream - 1e-3;
        if ahead > 0.0 && (ahead >= need - 1e-6 || all_in) {
            if self.state == PlayState::Starting {
                self.stats.startup = Some(now - self.created_at);
            }
            self.state = PlayState::Playing;
            if let Some(s) = self.stall_started.take() {
                self.stats.stall_seconds += (now - s).as_secs_f64();
            }
        }
    }

    /// Segments to ask for at `now`, in playback order: those within
    /// [`PlayerSettings::buffer_ahead`] of the playhead that are neither here nor asked for,
    /// at most [`PlayerSettings::max_pending`] outstanding.
    pub fn requests(&mut self, now: Instant) -> Vec<SegmentId> {
        if self.state == PlayState::Closed {
            return Vec::new();
        }
        let requested = &mut self.requested;
        self.retry.retain(|&(id, at)| {
            let due = at <= now;
            if due {
                requested.remove(&id);
            }
            !due
        });
        let horizon = self.position + self.settings.buffer_ahead.as_secs_f64();
        let mut out = Vec::new();
        for s in self
            .timeline
            .iter()
            .skip_while(|s| s.end() <= self.position + 1e-6)
            .take_while(|s| s.start < horizon)
        {
            if self.pending.len() >= self.settings.max_pending {
                break;
            }
            if !self.loaded.contains(&s.id) && self.requested.insert(s.id) {
                self.pending.insert(s.id);
                out.push(s.id);
            }
        }
        out
    }

    /// Stops the player at `now`: a stall in progress ends here. Later calls change nothing.
    pub fn close(&mut self, now: Instant) {
        if self.state == PlayState::Closed {
            return;
        }
        self.advance(now);
        if let Some(s) = self.stall_started.take() {
            self.stats.stall_seconds += (now - s).as_secs_f64();
        }
        self.state = PlayState::Closed;
    }

    /// The playhead, seconds on the playlist's timeline.
    pub fn position(&self) -> f64 {
        self.position
    }

    /// What the playhead is doing.
    pub fn state(&self) -> PlayState {
        self.state
    }

    /// What the player measured so far.
    pub fn stats(&self) -> &PlayerStats {
        &self.stats
    }

    /// When the player was created.
    pub fn created_at(&self) -> Instant {
        self.created_at
    }

    /// Seconds of media buffered in front of the playhead without a gap.
    pub fn buffer_ahead(&self) -> f64 {
        self.buffered_end() - self.position
    }

    /// A VOD whose playhead reached the end of the last segment.
    pub fn at_end(&self) -> bool {
        !self.live && self.position >= self.end() - 1e-3
    }

    /// The end of the last segment listed (the live edge), seconds.
    fn end(&self) -> f64 {
        self.timeline.last().map_or(0.0, Span::end)
    }

    /// End of the media buffered without a gap from the playhead.
    fn buffered_end(&self) -> f64 {
        let mut end = self.position;
        for s in self
            .timeline
            .iter()
            .skip_while(|s| s.end() <= self.position + 1e-6)
        {
            if s.start > end + 0.1 || !self.loaded.contains(&s.id) {
                break;
            }
            end = s.end();
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(first: SegmentId, n: usize, duration: f64) -> Vec<SegmentInfo> {
        (first..first + n as SegmentId)
            .map(|id| SegmentInfo {
                id,
                path: format!("s{id}.ts"),
                start: id as f64 * duration,
                duration,
                size_hint: None,
                byte_range: None,
            })
            .collect()
    }

    #[test]
    fn starts_after_the_startup_buffer_and_counts_stalls() {
        let t0 = Instant::now();
        let mut pl = HeadlessPlayer::new(
            PlayerSettings::default(),
            &segments(0, 4, 2.0),
            false,
            2.0,
            t0,
        );
        pl.advance(t0);
        assert_eq!(pl.requests(t0), vec![0, 1, 2, 3]);
        assert_eq!(pl.state(), PlayState::Starting);
        pl.segment_loaded(0);
        let t1 = t0 + Duration::from_millis(500);
        pl.advance(t1);
        assert_eq!(
            pl.state(),
            PlayState::Playing,
            "2 s buffered = the startup buffer"
        );
        assert_eq!(pl.stats().startup, Some(Duration::from_millis(500)));
        // Segment 1 is late: the playhead reaches 2 s and stalls.
        let t2 = t1 + Duration::from_millis(2500);
        pl.advance(t2);
        assert_eq!(pl.state(), PlayState::Stalled);
        assert_eq!(pl.stats().stall_count, 1);
        assert!((pl.position() - 2.0).abs() < 1e-9);
        pl.segment_loaded(1);
        let t3 = t2 + Duration::from_millis(700);
        pl.advance(t3);
        assert_eq!(pl.state(), PlayState::Playing);
        assert!((pl.stats().stall_seconds - 0.7).abs() < 1e-6);
        pl.segment_loaded(2);
        pl.segment_loaded(3);
        pl.advance(t3 + Duration::from_secs(10));
        assert!(pl.at_end());
        assert_eq!(pl.stats().stall_count, 1);
        assert!((pl.stats().played_seconds - 8.0).abs() < 1e-6);
    }

    #[test]
    fn live_starts_behind_the_edge_and_skips_forward() {
        let t0 = Instant::now();
        // Segments 10..15 of 2 s: the edge at 30 s, three target durations behind it is 24 s.
        let mut pl = HeadlessPlayer::new(
            PlayerSettings::default(),
            &segments(10, 5, 2.0),
            true,
            2.0,
            t0,
        );
        assert_eq!(pl.position(), 24.0);
        assert_eq!(pl.requests(t0), vec![12, 13, 14]);
        // The window slides past the playhead: it jumps to the window's start.
        pl.set_playlist(&segments(15, 5, 2.0));
        pl.advance(t0);
        assert_eq!(pl.position(), 30.0);
        assert_eq!(pl.stats().live_skips, 1);
    }

    #[test]
    fn one_pending_request_at_a_time_as_hls_js_loads() {
        let t0 = Instant::now();
        let settings = PlayerSettings {
            max_pending: 1,
            ..PlayerSettings::default()
        };
        let mut pl = HeadlessPlayer::new(settings, &segments(0, 4, 2.0), false, 2.0, t0);
        assert_eq!(pl.requests(t0), vec![0]);
        assert_eq!(pl.requests(t0), Vec::<SegmentId>::new());
        pl.segment_loaded(0);
        assert_eq!(pl.requests(t0), vec![1]);
    }

    #[test]
    fn a_failed_segment_is_asked_for_again_after_the_retry_delay() {
        let t0 = Instant::now();
        let mut pl = HeadlessPlayer::new(
            PlayerSettings::default(),
            &segments(0, 2, 2.0),
            false,
            2.0,
            t0,
        );
        assert_eq!(pl.requests(t0), vec![0, 1]);
        pl.segment_failed(1, t0);
        assert_eq!(
            pl.requests(t0 + Duration::from_millis(499)),
            Vec::<SegmentId>::new()
        );
        assert_eq!(pl.requests(t0 + Duration::from_millis(500)), vec![1]);
    }

    #[test]
    fn close_ends_a_stall_in_progress() {
        let t0 = Instant::now();
        let mut pl = HeadlessPlayer::new(
            PlayerSettings::default(),
            &segments(0, 3, 2.0),
            false,
            2.0,
            t0,
        );
        pl.segment_loaded(0);
        pl.advance(t0);
        pl.advance(t0 + Duration::from_secs(3));
        assert_eq!(pl.state(), PlayState::Stalled);
        pl.close(t0 + Duration::from_secs(4));
        assert_eq!(pl.state(), PlayState::Closed);
        assert!((pl.stats().stall_seconds - 1.0).abs() < 1e-6);
        pl.close(t0 + Duration::from_secs(9));
        assert!((pl.stats().stall_seconds - 1.0).abs() < 1e-6);
    }
}
