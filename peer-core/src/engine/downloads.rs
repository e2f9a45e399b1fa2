//! Downloading segments: HTTP and peer transfers, integrity checks, the scheduler's plan.

use super::*;

impl Engine {
    pub(super) fn http_chunk(&mut self, request: HttpHandle, data: &[u8], now: Instant) {
        let Some(r) = self.http.get(&request) else {
            return;
        };
        let (seg, base) = (r.segment, r.base);
        let part = partial_entry(&mut self.partials, &mut self.next_generation, seg);
        part.data.extend_from_slice(data);
        let have = part.data.len() as u64;
        let total = part.total;
        self.stats.http_bytes += data.len() as u64;
        *self.stats.http_bytes_by_base.get_or_insert_with(base, || 0) += data.len() as u64;
        self.scheduler.progress(seg, have, total, now);
    }

    pub(super) fn http_completed(&mut self, request: HttpHandle, now: Instant) {
        let Some(r) = self.http.remove(&request) else {
            return;
        };
        self.http_by_segment.remove(&r.segment);
        let complete = self
            .partials
            .get(&r.segment)
            .is_some_and(|p| p.total.is_none_or(|t| t == p.data.len() as u64));
        if !complete {
            self.partials.remove(&r.segment);
            self.scheduler.failed(r.segment, now);
            return;
        }
        self.segment_loaded(r.segment, None, now);
    }

    /// A segment's bytes are complete: verify, store, deliver, announce.
    pub(super) fn segment_loaded(
        &mut self,
        seg: SegmentId,
        from_peer: Option<PeerHandle>,
        now: Instant,
    ) {
        let Some(part) = self.partials.remove(&seg) else {
            return;
        };
        // Relays that read an earlier generation of these bytes must not finish with these.
        self.end_relays(seg, Some(part.generation));
        let mut contributors = part.peers;
        if let Some(peer) = from_peer {
            if !contributors.iter().any(|(h, _)| *h == peer) {
                let id = self.peers.get(&peer).and_then(|p| p.remote_id);
                contributors.push((peer, id));
            }
        }
        let data = Bytes::from(part.data);
        match self.verify(seg, &data) {
            Some(Verification::Mismatch) => self.mismatch(seg, contributors, now),
            // A manifest is configured but does not list the segment (yet): bytes from peers wait
            // for a manifest that does, and are neither played nor relayed meanwhile.
            Some(Verification::Unknown) if !contributors.is_empty() => {
                self.hold_unverified(seg, data, contributors, from_peer, now)
            }
            _ => self.accept_segment(seg, data, from_peer, now),
        }
    }

    /// The segment's bytes checked against the manifest; `None` without a manifest (or for a
    /// segment not in the playlist).
    fn verify(&self, seg: SegmentId, data: &[u8]) -> Option<Verification> {
        let manifest = self.manifest.as_ref()?;
        let info = self.playlist.get(&seg)?;
        Some(manifest.verify(file_name_of(&info.path), manifest_range(info), data))
    }

    /// Whether the manifest lists the segment's hash (always true without a manifest).
    pub(super) fn hash_known(&self, seg: SegmentId) -> bool {
        let Some(manifest) = &self.manifest else {
            return true;
        };
        self.playlist.get(&seg).is_some_and(|info| {
            manifest
                .digest(file_name_of(&info.path), manifest_range(info))
                .is_some()
        })
    }

    /// P2P is refused: [`EngineConfig::require_manifest`] and no manifest yet.
    pub(super) fn p2p_refused(&self) -> bool {
        self.config.require_manifest && self.manifest.is_none()
    }

    /// A segment failed the manifest: bans every peer that supplied bytes (the one that completed
    /// it and the one whose prefix a resumed download continued) and fetches it over HTTP.
    pub(super) fn mismatch(
        &mut self,
        seg: SegmentId,
        blamed: Vec<(PeerHandle, Option<PeerId>)>,
        now: Instant,
    ) {
        self.stats.hash_mismatches += 1;
        self.abort_relays(seg);
        self.scheduler.forget(seg);
        if blamed.is_empty() {
            tracing::warn!(segment = seg, "HTTP segment does not match the manifest");
            return;
        }
        for (peer, id) in blamed {
            let id = id.or_else(|| self.peers.get(&peer).and_then(|p| p.remote_id));
            if let Some(id) = id {
                if self.banned.insert(id) {
                    self.stats.peers_banned += 1;
                }
            }
            if self.peers.contains_key(&peer) {
                self.violation(peer, "segment hash mismatch", now);
            }
        }
        // Fetch it again over HTTP right away.
        let action = self.scheduler.start_http_now(seg, now);
        self.execute(action, now);
    }

    /// Holds a peer segment the manifest does not list yet (see
    /// [`EngineConfig::unverified_wait`]), within [`EngineConfig::max_unverified_bytes`].
    fn hold_unverified(
        &mut self,
        seg: SegmentId,
        data: Bytes,
        contributors: Vec<(PeerHandle, Option<PeerId>)>,
        from_peer: Option<PeerHandle>,
        now: Instant,
    ) {
        self.stats.segments_unverified += 1;
        self.abort_relays(seg);
        self.scheduler.forget(seg);
        self.unverified.insert(
            seg,
            Unverified {
                data,
                contributors,
                from_peer,
                until: now + self.config.unverified_wait,
            },
        );
        loop {
            let held: u64 = self.unverified.values().map(|u| u.data.len() as u64).sum();
            if held <= self.config.max_unverified_bytes {
                break;
            }
            let Some(oldest) = self
                .unverified
                .iter()
                .min_by_key(|(_, u)| u.until)
                .map(|(s, _)| *s)
            else {
                break;
            };
            self.refetch_unverified(oldest, now);
        }
    }

    /// Drops a held segment and fetches it over HTTP.
    fn refetch_unverified(&mut self, seg: SegmentId, now: Instant) {
        if self.unverified.remove(&seg).is_some() {
            self.stats.unverified_refetched += 1;
            let action = self.scheduler.start_http_now(seg, now);
            self.execute(action, now);
        }
    }

    /// Held segments: checked again against a new manifest, refetched once waited too long.
    pub(super) fn check_unverified(&mut self, now: Instant) {
        let segs: Vec<SegmentId> = self.unverified.keys().copied().collect();
        for seg in segs {
            let Some(u) = self.unverified.get(&seg) else {
                continue;
            };
            match self.verify(seg, &u.data) {
                Some(Verification::Valid) => {
                    if let Some(u) = self.unverified.remove(&seg) {
                        self.accept_segment(seg, u.data, u.from_peer, now);
                    }
                }
                Some(Verification::Mismatch) => {
                    if let Some(u) = self.unverified.remove(&seg) {
                        self.mismatch(seg, u.contributors, now);
                    }
                }
                _ if u.until <= now || !self.playlist.contains_key(&seg) => {
                    self.refetch_unverified(seg, now)
                }
                _ => {}
            }
        }
    }

    /// Stores a verified (or unverifiable, where that is allowed) segment, delivers it to the
    /// player if wanted and announces it.
    fn accept_segment(
        &mut self,
        seg: SegmentId,
        data: Bytes,
        from_peer: Option<PeerHandle>,
        now: Instant,
    ) {
        match from_peer {
            Some(_) => self.stats.segments_p2p += 1,
            None => self.stats.segments_http += 1,
        }
        self.scheduler.completed(seg, now);
        if let Err(e) = self.store.insert(STREAM, seg, data.clone()) {
            tracing::warn!("segment not stored: {e}");
        }
        self.announce_dirty = true;
        self.need_plan = true;
        if self.player_wants.remove(&seg).is_some() {
            self.stats.segments_delivered += 1;
            let source = if from_peer.is_some() {
                DeliverySource::Peer
            } else {
                DeliverySource::Http
            };
            self.outputs.push_back(Output::SegmentReady {
                segment: seg,
                data,
                source,
            });
        }
    }

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
        let actions = self.scheduler.plan(&wanted, now);
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

    fn execute(&mut self, action: Action, now: Instant) {
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
                let from = usize::try_from(from_byte).unwrap_or(usize::MAX);
                partial_entry(&mut self.partials, &mut self.next_generation, segment)
                    .truncate(from, &mut self.next_generation);
                self.open_http(segment, base, from_byte, now);
            }
            Action::SwitchToHttp {
                segment,
                peer,
                base,
                from_byte,
            } => {
                self.stats.stalls_avoided += 1;
                self.cancel_peer_download(peer, segment);
                let have = self
                    .partials
                    .get(&segment)
                    .map_or(0, |p| p.data.len() as u64);
                let from = from_byte.min(have);
                if let Some(p) = self.partials.get_mut(&segment) {
                    let from = usize::try_from(from).unwrap_or(usize::MAX);
                    p.truncate(from, &mut self.next_generation);
                }
                self.open_http(segment, base, from, now);
            }
            Action::StartP2p { segment, .. } if self.p2p_refused() => {
                let action = self.scheduler.start_http_now(segment, now);
                self.execute(action, now);
            }
            Action::StartP2p { segment, peer } => {
                let request = self.next_request;
                self.next_request += 1;
                let Some(p) = self.peers.get_mut(&peer) else {
                    self.scheduler.forget(segment);
                    return;
                };
                if p.download.is_some() {
                    self.scheduler.forget(segment);
                    return;
                }
                let have = self
                    .partials
                    .get(&segment)
                    .map_or(0, |p| p.data.len() as u64);
                p.download = Some(PeerDownload {
                    segment,
                    request,
                    expected: None,
                    received: 0,
                });
                let byte_from = (have > 0).then_some(have);
                // Announced as loading when relaying partial segments.
                self.announce_dirty |= self.config.relay_partial;
                self.send_command(
                    peer,
                    &Command::SegmentRequest {
                        segment,
                        request,
                        byte_from,
                    },
                );
            }
            Action::Abort { segment } => {
                if let Some(h) = self.http_by_segment.remove(&segment) {
                    self.http.remove(&h);
                    self.outputs.push_back(Output::HttpAbort(h));
                    self.announce_dirty = true;
                }
                let peer = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.download.as_ref().is_some_and(|d| d.segment == segment))
                    .map(|(h, _)| *h);
                if let Some(peer) = peer {
                    self.cancel_peer_download(peer, segment);
                    self.announce_dirty |= self.config.relay_partial;
                }
                self.partials.remove(&segment);
            }
        }
    }

    fn cancel_peer_download(&mut self, peer: PeerHandle, segment: SegmentId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(d) = p.download.take_if(|d| d.segment == segment) {
            self.send_command(
                peer,
                &Command::CancelSegmentRequest {
                    segment,
                    request: d.request,
                },
            );
        }
    }

    fn open_http(&mut self, segment: SegmentId, base: usize, from_byte: u64, _now: Instant) {
        let Some(url) = self.url_for(segment, base) else {
            self.scheduler.forget(segment);
            return;
        };
        if let Some(old) = self.http_by_segment.remove(&segment) {
            self.http.remove(&old);
            self.outputs.push_back(Output::HttpAbort(old));
        }
        let byte_range = self
            .playlist
            .get(&segment)
            .and_then(|i| i.byte_range.clone());
        let h = HttpHandle(self.next_handle);
        self.next_handle += 1;
        self.http.insert(
            h,
            HttpReq {
                segment,
                base,
                from_byte,
            },
        );
        self.http_by_segment.insert(segment, h);
        self.announce_dirty = true;
        self.outputs.push_back(Output::HttpRequest {
            request: h,
            url,
            range_from: (from_byte > 0).then_some(from_byte),
            byte_range,
        });
    }
}
