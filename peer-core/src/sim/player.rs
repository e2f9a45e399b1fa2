//! The player model: startup, playback and stalls of each viewer's player.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PlayState {
    NotJoined,
    Startup,
    Playing,
    Stalled,
    Ended,
    Left,
}

#[derive(Debug)]
pub(super) struct Player {
    pub(super) state: PlayState,
    pub(super) position: f64,
    pub(super) buffer_end: f64,
    pub(super) next: SegmentId,
    pub(super) pending: Option<SegmentId>,
    pub(super) last_update: u64,
    pub(super) joined_at: u64,
    pub(super) startup: Option<f64>,
    pub(super) stalls: u64,
    pub(super) stall_secs: f64,
    pub(super) stall_started: u64,
    pub(super) last_playback_sent: u64,
}

impl Simulation {
    pub(super) fn player_advance(&mut self, v: usize) {
        let now = self.net.now();
        let d = self.cfg.segment_seconds;
        let end_of_video = self.vod_segments as f64 * d;
        let mode = self.cfg.mode;
        let p = &mut self.viewers[v].player;
        let dt = (now - p.last_update) as f64 / US;
        p.last_update = now;
        match p.state {
            PlayState::Startup
                if p.buffer_end - p.position >= self.cfg.startup_buffer_secs.min(d) - 1e-9 =>
            {
                p.state = PlayState::Playing;
                p.startup = Some((now - p.joined_at) as f64 / US);
            }
            PlayState::Playing => {
                p.position += dt;
                if mode == Mode::Vod && p.position >= end_of_video {
                    p.state = PlayState::Ended;
                } else if p.position >= p.buffer_end {
                    p.position = p.buffer_end;
                    p.state = PlayState::Stalled;
                    p.stalls += 1;
                    p.stall_started = now;
                }
            }
            PlayState::Stalled
                if p.buffer_end - p.position >= self.cfg.startup_buffer_secs.min(d) - 1e-9 =>
            {
                p.state = PlayState::Playing;
                p.stall_secs += (now - p.stall_started) as f64 / US;
            }
            _ => {}
        }
    }

    pub(super) fn player_update(&mut self, v: usize) {
        if !self.alive(v) {
            return;
        }
        let before = self.viewers[v].player.state;
        self.player_advance(v);
        let d = self.cfg.segment_seconds;
        let (state, position, buffer_end, pending, next, last_sent) = {
            let p = &self.viewers[v].player;
            (
                p.state,
                p.position,
                p.buffer_end,
                p.pending,
                p.next,
                p.last_playback_sent,
            )
        };
        if matches!(
            state,
            PlayState::Left | PlayState::NotJoined | PlayState::Ended
        ) {
            return;
        }
        let available = match self.cfg.mode {
            Mode::Live => next <= self.newest,
            Mode::Vod => next < self.vod_segments,
        };
        if pending.is_none() && available && buffer_end - position < self.cfg.player_buffer_secs {
            self.viewers[v].player.pending = Some(next);
            self.with_engine(v, |e, now| e.want_segment(next, now));
        }
        let changed = before != self.viewers[v].player.state;
        if changed || self.net.now() >= last_sent + 1_000_000 || last_sent == 0 {
            self.viewers[v].player.last_playback_sent = self.net.now().max(1);
            // While starting or stalled the playhead waits at `position`.
            let _ = d;
            let position = self.viewers[v].player.position;
            self.with_engine(v, |e, now| e.set_playback(position, now));
        }
    }
}

impl Simulation {
    /// What the player does with its engine's events.
    pub(super) fn event(&mut self, v: usize, e: Event) {
        match e {
            Event::SegmentReady { segment, .. } => {
                let p = &mut self.viewers[v].player;
                if p.pending == Some(segment) {
                    p.pending = None;
                    p.buffer_end += self.cfg.segment_seconds;
                    p.next = segment + 1;
                }
                self.player_update(v);
            }
            Event::SegmentFailed { segment, .. } => {
                let p = &mut self.viewers[v].player;
                if p.pending == Some(segment) {
                    // Fell out of the live window: skip ahead.
                    p.pending = None;
                    p.next = segment + 1;
                    p.buffer_end = p.buffer_end.max(p.next as f64 * self.cfg.segment_seconds);
                    p.position = p.position.max(segment as f64 * self.cfg.segment_seconds);
                }
            }
            _ => {}
        }
    }
}
