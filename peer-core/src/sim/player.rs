//! Each viewer's player: the shared [`HeadlessPlayer`] (the one `segswarm play` runs) on the
//! simulated clock, loading one segment at a time as hls.js does.

use super::*;
use crate::player::{HeadlessPlayer, PlayState, PlayerSettings};
use crate::time::secs;

/// A viewer's player and when its engine last heard the playhead.
#[derive(Debug)]
pub(super) struct SimPlayer {
    pub(super) player: HeadlessPlayer,
    /// Simulated time the playhead was last given to the engine (0: never).
    last_playback_sent: u64,
}

impl Simulation {
    /// The player's settings from the scenario's.
    fn player_settings(&self) -> PlayerSettings {
        // Playback starts, and resumes after a stall, once this much is buffered.
        let threshold = secs(self.cfg.startup_buffer_secs.min(self.cfg.segment_seconds));
        PlayerSettings {
            startup_buffer: threshold,
            rebuffer: threshold,
            buffer_ahead: secs(self.cfg.player_buffer_secs),
            live_sync_segments: self.cfg.live_sync_segments as u32,
            max_pending: 1,
            ..PlayerSettings::default()
        }
    }

    /// Viewer `v` joins: its player starts on the current playlist.
    pub(super) fn player_join(&mut self, v: usize) {
        let playlist = self.playlist();
        let player = HeadlessPlayer::new(
            self.player_settings(),
            &playlist,
            self.cfg.mode == Mode::Live,
            self.cfg.segment_seconds,
            self.net.now_instant(),
        );
        self.viewers[v].player = Some(SimPlayer {
            player,
            last_playback_sent: 0,
        });
    }

    /// Moves viewer `v`'s playhead to now, asks for what it lacks and tells the engine where the
    /// playhead is (every second, and whenever it starts or stops).
    pub(super) fn player_update(&mut self, v: usize) {
        if !self.alive(v) {
            return;
        }
        let now = self.net.now_instant();
        let sim_now = self.net.now();
        let Some(p) = self.viewers[v].player.as_mut() else {
            return;
        };
        let before = p.player.state();
        p.player.advance(now);
        let wants = p.player.requests(now);
        let changed = before != p.player.state();
        let position = p.player.position();
        let tell =
            changed || sim_now >= p.last_playback_sent + 1_000_000 || p.last_playback_sent == 0;
        if tell {
            p.last_playback_sent = sim_now.max(1);
        }
        for id in wants {
            self.with_engine(v, |e, now| e.want_segment(id, now));
        }
        if tell {
            self.with_engine(v, |e, now| e.set_playback(position, now));
        }
    }

    /// Viewer `v`'s engine delivered or gave up on a segment.
    pub(super) fn player_segment(&mut self, v: usize, segment: SegmentId, loaded: bool) {
        let now = self.net.now_instant();
        if let Some(p) = self.viewers[v].player.as_mut() {
            if loaded {
                p.player.segment_loaded(segment);
            } else {
                p.player.segment_failed(segment, now);
            }
        }
        if loaded {
            self.player_update(v);
        }
    }

    /// Viewer `v`'s playlist changed.
    pub(super) fn player_playlist(&mut self, v: usize, playlist: &[SegmentInfo]) {
        if let Some(p) = self.viewers[v].player.as_mut() {
            p.player.set_playlist(playlist);
        }
    }

    /// Viewer `v` leaves (or the run ends): a stall in progress ends now.
    pub(super) fn player_close(&mut self, v: usize) {
        let now = self.net.now_instant();
        if let Some(p) = self.viewers[v].player.as_mut() {
            p.player.close(now);
        }
    }

    /// Viewer `v`'s playhead while it plays or is stalled (for the latency samples).
    pub(super) fn player_position_if_started(&self, v: usize) -> Option<f64> {
        let p = &self.viewers[v].player.as_ref()?.player;
        matches!(p.state(), PlayState::Playing | PlayState::Stalled).then(|| p.position())
    }

    /// What the player does with its engine's events.
    pub(super) fn event(&mut self, v: usize, e: Event) {
        match e {
            Event::SegmentReady { segment, .. } => self.player_segment(v, segment, true),
            Event::SegmentFailed { segment, .. } => self.player_segment(v, segment, false),
            _ => {}
        }
    }
}
