//! A whole segment arrived: checked against the manifest (or held until one lists it), stored,
//! and handed to the player with its source; a mismatch bans the sender and goes to HTTP.

use super::*;

impl Engine {
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
}
