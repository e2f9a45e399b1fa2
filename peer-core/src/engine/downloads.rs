//! Downloading segments: HTTP and peer transfers, integrity checks, the scheduler's plan.

use super::*;

impl Engine {
    /// The running HTTP transfer on `request`: its segment, base URL index and first byte.
    fn http_transfer(&self, request: HttpHandle) -> Option<(SegmentId, usize, u64)> {
        let seg = self.downloads.by_http(request)?;
        let t = self.downloads.get(seg)?.transfer.as_ref()?;
        match t.source {
            Source::Http(base) => Some((seg, base, t.from_byte)),
            Source::Peer(_) => None,
        }
    }

    pub(super) fn http_started(&mut self, request: HttpHandle, content_length: Option<u64>) {
        if let Some((seg, _, from_byte)) = self.http_transfer(request) {
            self.downloads.truncate(seg, from_byte);
            if let Some(d) = self.downloads.get_mut(seg) {
                d.total = content_length.map(|l| l + from_byte);
            }
        }
    }

    pub(super) fn http_failed(&mut self, request: HttpHandle, reason: &str, now: Instant) {
        if let Some((seg, base, _)) = self.http_transfer(request) {
            tracing::debug!(segment = seg, "HTTP failed: {reason}");
            self.downloads.stop(seg);
            self.scheduler.failed(seg, Source::Http(base), now);
            self.announce_dirty = true;
        }
    }

    pub(super) fn http_chunk(&mut self, request: HttpHandle, data: &[u8], now: Instant) {
        let Some((seg, base, _)) = self.http_transfer(request) else {
            return;
        };
        self.downloads.entry(seg).data.extend_from_slice(data);
        self.downloads.progressed(seg, now);
        self.stats.http_bytes += data.len() as u64;
        *self.stats.http_bytes_by_base.get_or_insert_with(base, || 0) += data.len() as u64;
        self.out.events.push(Event::BytesReceived {
            source: DeliverySource::Http(base),
            bytes: data.len() as u64,
        });
    }

    pub(super) fn http_completed(&mut self, request: HttpHandle, now: Instant) {
        let Some((seg, base, _)) = self.http_transfer(request) else {
            return;
        };
        let complete = self
            .downloads
            .get(seg)
            .is_some_and(|d| d.total.is_none_or(|t| t == d.held()));
        if !complete {
            self.downloads.remove(seg);
            self.scheduler.failed(seg, Source::Http(base), now);
            return;
        }
        self.segment_loaded(seg, None, now);
    }

    /// A segment's bytes are complete: verify, store, deliver, announce.
    pub(super) fn segment_loaded(
        &mut self,
        seg: SegmentId,
        from_peer: Option<PeerHandle>,
        now: Instant,
    ) {
        let Some(part) = self.downloads.remove(seg) else {
            return;
        };
        // Relays that read an earlier generation of these bytes must not finish with these.
        self.end_relays(seg, Some(part.generation));
        let held = part.held();
        let source = match (from_peer, part.transfer.map(|t| t.source)) {
            (Some(peer), _) => DeliverySource::Peer(peer),
            (None, Some(Source::Http(base))) => DeliverySource::Http(base),
            (None, _) => DeliverySource::Http(0),
        };
        let mut contributors = part.contributors;
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
                self.hold_unverified(seg, data, contributors, source, now)
            }
            _ => {
                if let Some(t) = &part.transfer {
                    self.scheduler.completed(seg, t, held, now);
                }
                self.accept_segment(seg, data, source)
            }
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
        let action = self.scheduler.http_now(seg, now);
        self.execute(action, now);
    }

    /// Holds a peer segment the manifest does not list yet (see
    /// [`EngineConfig::unverified_wait`]), within [`EngineConfig::max_unverified_bytes`].
    fn hold_unverified(
        &mut self,
        seg: SegmentId,
        data: Bytes,
        contributors: Vec<(PeerHandle, Option<PeerId>)>,
        source: DeliverySource,
        now: Instant,
    ) {
        self.stats.segments_unverified += 1;
        self.abort_relays(seg);
        self.unverified.insert(
            seg,
            Unverified {
                data,
                contributors,
                source,
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
            let action = self.scheduler.http_now(seg, now);
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
                        self.accept_segment(seg, u.data, u.source);
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
    fn accept_segment(&mut self, seg: SegmentId, data: Bytes, source: DeliverySource) {
        match source {
            DeliverySource::Peer(_) => self.stats.segments_p2p += 1,
            _ => self.stats.segments_http += 1,
        }
        if let Err(e) = self.store.insert(STREAM, seg, data.clone()) {
            tracing::warn!("segment not stored: {e}");
        }
        self.announce_dirty = true;
        self.need_plan = true;
        self.out.events.push(Event::SegmentStored {
            segment: seg,
            source,
        });
        if self.player_wants.remove(&seg).is_some() {
            self.stats.segments_delivered += 1;
            self.out.events.push(Event::SegmentReady {
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
    pub(super) fn end_transfer(&mut self, segment: SegmentId) {
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
