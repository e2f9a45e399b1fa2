//! Choosing and starting downloads: the wanted segments and the download table handed to the
//! scheduler as a [`PlanView`], and its actions carried out (peer requests, HTTP GETs).

use super::*;

impl Engine {
    pub(super) fn wanted(&self, now: Instant) -> Vec<WantedSegment> {
        let horizon = self.scheduler.horizon().as_secs_f64();
        let Some((pos, at)) = self.playback else {
            // Without a playhead only the player's explicit requests count, due now.
            return self
                .player_wants
                .keys()
                .filter(|id| !self.unverified.contains_key(id))
                .filter_map(|id| self.playlist.get(id))
                .map(|s| WantedSegment {
                    id: s.id,
                    deadline: now,
                    size_hint: s.size_hint,
                    player_requested: true,
                })
                .collect();
        };
        let entry = |s: &SegmentInfo| WantedSegment {
            id: s.id,
            deadline: crate::time::after(at, s.start - pos),
            size_hint: s.size_hint,
            player_requested: self.player_wants.contains_key(&s.id),
        };
        // Playlist order is playback order: skip what is played, stop at the horizon.
        let mut wanted: Vec<WantedSegment> = self
            .playlist
            .values()
            .skip_while(|s| s.start + s.duration <= pos + 0.05)
            .take_while(|s| s.start - pos <= horizon)
            .filter(|s| !self.store.contains(STREAM, s.id) && !self.unverified.contains_key(&s.id))
            .map(entry)
            .collect();
        let extra: Vec<WantedSegment> = self
            .player_wants
            .keys()
            .filter(|id| !wanted.iter().any(|w| w.id == **id))
            .filter_map(|id| self.playlist.get(id))
            .filter(|s| !self.store.contains(STREAM, s.id) && !self.unverified.contains_key(&s.id))
            .map(entry)
            .collect();
        if !extra.is_empty() {
            wanted.extend(extra);
            // Ids are distinct: an unstable sort gives the same order (and links less code).
            wanted.sort_unstable_by_key(|w| w.id);
        }
        wanted
    }

    pub(super) fn plan(&mut self, now: Instant) {
        self.plan_at = None;
        self.last_plan = Some(now);
        let wanted = self.wanted(now);
        let view = PlanView {
            wanted: &wanted,
            downloads: &self.downloads,
        };
        let actions = self.scheduler.plan(&view, now);
        for a in actions {
            self.execute(a, now);
        }
    }

    fn url_for(&self, seg: SegmentId, base: usize) -> Option<String> {
        let info = self.playlist.get(&seg)?;
        let b = self
            .config
            .http_bases
            .get(base)
            .or(self.config.http_bases.first())?;
        Some(format!(
            "{}/{}",
            b.trim_end_matches('/'),
            info.path.trim_start_matches('/')
        ))
    }

    pub(super) fn execute(&mut self, action: Action, now: Instant) {
        tracing::debug!(
            ?action,
            peers = self.scheduler.peer_count(),
            "scheduler action"
        );
        match action {
            Action::StartHttp {
                segment,
                base,
                from_byte,
            } => {
                self.end_transfer(segment);
                self.open_http(segment, base, from_byte, now);
            }
            Action::SwitchToHttp {
                segment,
                base,
                from_byte,
                ..
            } => {
                self.stats.stalls_avoided += 1;
                self.end_transfer(segment);
                let have = self.downloads.get(segment).map_or(0, Download::held);
                self.open_http(segment, base, from_byte.min(have), now);
            }
            Action::StartP2p { segment, .. } if self.p2p_refused() => {
                let action = self.scheduler.http_now(segment, now);
                self.execute(action, now);
            }
            Action::StartP2p { segment, peer } => {
                if !self.peers.contains_key(&peer) || self.downloads.from_peer(peer).is_some() {
                    return;
                }
                self.end_transfer(segment);
                let id = self.next_request;
                self.next_request += 1;
                let have = self.downloads.get(segment).map_or(0, Download::held);
                let request = Request::Peer {
                    id,
                    expected: None,
                    received: 0,
                };
                self.downloads
                    .start(segment, Source::Peer(peer), request, have, now);
                let byte_from = (have > 0).then_some(have);
                // Announced as loading when relaying partial segments.
                self.announce_dirty |= self.config.relay_partial;
                self.send_command(
                    peer,
                    &Command::SegmentRequest {
                        segment,
                        request: id,
                        byte_from,
                    },
                );
            }
            Action::Abort { segment } => {
                self.end_transfer(segment);
                self.downloads.remove(segment);
            }
        }
    }

    /// Stops `segment`'s running transfer, if any (HTTP aborted, peer request cancelled), keeping
    /// its bytes.
    fn end_transfer(&mut self, segment: SegmentId) {
        let Some(t) = self.downloads.stop(segment) else {
            return;
        };
        match (t.source, t.request) {
            (_, Request::Http(h)) => {
                self.out.http.push(HttpCommand::Abort(h));
                self.announce_dirty = true;
            }
            (Source::Peer(peer), Request::Peer { id, .. }) => {
                if self.peers.contains_key(&peer) {
                    self.send_command(
                        peer,
                        &Command::CancelSegmentRequest {
                            segment,
                            request: id,
                        },
                    );
                }
                self.announce_dirty |= self.config.relay_partial;
            }
            (Source::Http(_), Request::Peer { .. }) => {}
        }
    }

    fn open_http(&mut self, segment: SegmentId, base: usize, from_byte: u64, now: Instant) {
        let Some(url) = self.url_for(segment, base) else {
            return;
        };
        let byte_range = self
            .playlist
            .get(&segment)
            .and_then(|i| i.byte_range.clone());
        let h = HttpHandle(self.next_handle);
        self.next_handle += 1;
        self.downloads.start(
            segment,
            Source::Http(base),
            Request::Http(h),
            from_byte,
            now,
        );
        self.announce_dirty = true;
        self.out.http.push(HttpCommand::Get {
            request: h,
            url,
            range_from: (from_byte > 0).then_some(from_byte),
            byte_range,
        });
    }
}
