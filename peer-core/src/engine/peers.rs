//! The peer protocol: announcements, incoming messages and commands, dropping peers.

use super::*;

impl Engine {
    pub(super) fn announcement(&self) -> Command {
        Command::SegmentsAnnouncement {
            loaded: self.store.segment_ids(STREAM),
            loading_http: self.loading(),
        }
    }

    /// Segments announced as loading: HTTP downloads, plus peer downloads when relaying partial
    /// segments ([`EngineConfig::relay_partial`]).
    pub(super) fn loading(&self) -> Vec<SegmentId> {
        self.downloads.loading(!self.config.relay_partial)
    }

    pub(super) fn flush_announcements(&mut self) {
        if !self.announce_dirty || self.config.consume_only || self.p2p_refused() {
            return;
        }
        self.announce_dirty = false;
        let loaded = self.store.segment_ids(STREAM);
        let loading = self.loading();
        if self.last_announced.as_ref() == Some(&(loaded.clone(), loading.clone())) {
            return;
        }
        self.last_announced = Some((loaded.clone(), loading.clone()));
        let cmd = Command::SegmentsAnnouncement {
            loaded,
            loading_http: loading,
        };
        let peers: Vec<PeerHandle> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(h, _)| *h)
            .collect();
        for h in peers {
            self.send_command(h, &cmd);
        }
    }

    /// Destroys a peer: closes it (when `close`), forgets its downloads and uploads.
    pub(super) fn drop_peer(&mut self, peer: PeerHandle, close: bool, now: Instant) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        self.need_plan = true;
        if close {
            self.out.rtc.push(RtcCommand::Close(peer));
        }
        if p.connected {
            self.out.events.push(Event::PeerClosed(peer));
        }
        if let Some((seg, _)) = self.downloads.from_peer(peer) {
            self.downloads.remove(seg);
            self.announce_dirty |= self.config.relay_partial;
        }
        self.scheduler.remove_peer(peer);
        if self.upload_cursor == Some(peer) {
            self.upload_cursor = None;
        }
        let _ = now;
    }

    pub(super) fn violation(&mut self, peer: PeerHandle, what: &str, now: Instant) {
        tracing::debug!(?peer, "peer destroyed: {what}");
        self.stats.peers_destroyed += 1;
        self.drop_peer(peer, true, now);
    }

    pub(super) fn peer_message(&mut self, peer: PeerHandle, data: &[u8], now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !p.connected {
            return;
        }
        let incoming = match p.decoder.push(data) {
            Ok(Some(i)) => i,
            Ok(None) => return,
            Err(e) => {
                self.violation(peer, &format!("bad message: {e}"), now);
                return;
            }
        };
        match incoming {
            Incoming::SegmentBytes(bytes) => self.peer_bytes(peer, &bytes, now),
            Incoming::Command(cmd) => self.peer_command(peer, cmd, now),
        }
    }

    /// The transfer from `peer` on request `request` (any request when `None`): its segment and
    /// its [`Request::Peer`] counters `(expected, received)`.
    fn peer_transfer(
        &self,
        peer: PeerHandle,
        request: Option<(SegmentId, RequestId)>,
    ) -> Option<(SegmentId, Option<u64>, u64)> {
        let (seg, t) = self.downloads.from_peer(peer)?;
        let Request::Peer {
            id,
            expected,
            received,
        } = t.request
        else {
            return None;
        };
        match request {
            Some(r) if r != (seg, id) => None,
            _ => Some((seg, expected, received)),
        }
    }

    /// Sets the [`Request::Peer`] counters of `segment`'s transfer.
    fn set_peer_counters(&mut self, segment: SegmentId, expected: Option<u64>, received: u64) {
        let t = self
            .downloads
            .get_mut(segment)
            .and_then(|d| d.transfer.as_mut());
        if let Some(Request::Peer {
            expected: e,
            received: r,
            ..
        }) = t.map(|t| &mut t.request)
        {
            *e = expected;
            *r = received;
        }
    }

    fn peer_bytes(&mut self, peer: PeerHandle, bytes: &[u8], now: Instant) {
        // Bytes outside an answered request (e.g. after we cancelled) are ignored.
        let Some((seg, Some(expected), received)) = self.peer_transfer(peer, None) else {
            return;
        };
        let received = received + bytes.len() as u64;
        if received > expected {
            self.violation(peer, "more bytes than announced", now);
            return;
        }
        self.set_peer_counters(seg, Some(expected), received);
        let done = received == expected;
        let remote = self.peers.get(&peer).and_then(|p| p.remote_id);
        let part = self.downloads.entry(seg);
        if !part.contributors.iter().any(|(h, _)| *h == peer) {
            part.contributors.push((peer, remote));
        }
        part.data.extend_from_slice(bytes);
        self.downloads.progressed(seg, now);
        self.stats.p2p_bytes += bytes.len() as u64;
        *self.stats.p2p_bytes_by_peer.get_or_insert_with(peer, || 0) += bytes.len() as u64;
        self.out.events.push(Event::BytesReceived {
            source: DeliverySource::Peer(peer),
            bytes: bytes.len() as u64,
        });
        if done {
            self.segment_loaded(seg, Some(peer), now);
        }
    }

    fn peer_command(&mut self, peer: PeerHandle, cmd: Command, now: Instant) {
        match cmd {
            Command::SegmentsAnnouncement {
                loaded,
                loading_http,
            } => {
                tracing::trace!(?peer, ?loaded, ?loading_http, "peer announcement");
                self.scheduler.announce(peer, &loaded, &loading_http);
                // Announcements come in bursts: plan once shortly after, not after each.
                if self.plan_at.is_none() {
                    self.plan_at = Some(now + self.config.announce_replan_delay);
                }
            }
            Command::SegmentRequest {
                segment,
                request,
                byte_from,
            } => self.upload_request(peer, segment, request, byte_from, now),
            Command::CancelSegmentRequest { segment, request } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    if p.upload
                        .as_ref()
                        .is_some_and(|u| u.segment == segment && u.request == request)
                    {
                        p.upload = None;
                        // A cancelled transfer may honestly be asked for again.
                        p.asked = None;
                    }
                }
            }
            Command::SegmentData {
                segment,
                request,
                size,
            } => {
                let Some((_, expected, received)) =
                    self.peer_transfer(peer, Some((segment, request)))
                else {
                    // Answer to a cancelled request: ignore (its bytes are ignored too).
                    return;
                };
                if expected.is_some() {
                    self.violation(peer, "second SegmentData", now);
                    return;
                }
                self.set_peer_counters(segment, Some(size), received);
                let from = self.downloads.get(segment).map_or(0, Download::held);
                if size == 0 || from.saturating_add(size) > self.config.max_segment_bytes {
                    self.violation(peer, "SegmentData size out of bounds", now);
                    return;
                }
                self.downloads.entry(segment).total = Some(from + size);
                if from > 0 {
                    // A resumed transfer counts as progressing from here.
                    self.downloads.progressed(segment, now);
                }
            }
            Command::SegmentDataSendingCompleted { segment, request } => {
                if let Some((_, expected, received)) =
                    self.peer_transfer(peer, Some((segment, request)))
                {
                    // All bytes would have completed the download already.
                    if expected.is_none_or(|e| received < e) {
                        self.violation(peer, "byte count mismatch", now);
                    }
                }
            }
            Command::SegmentAbsent { segment, request } => {
                if self.peer_transfer(peer, Some((segment, request))).is_some() {
                    self.downloads.remove(segment);
                    self.scheduler.absent(peer, now);
                    self.need_plan = true;
                    self.announce_dirty |= self.config.relay_partial;
                }
            }
        }
    }
}

impl Peer {
    pub(super) fn new(remote_id: Option<PeerId>, offer_id: Option<OfferId>) -> Self {
        Self {
            remote_id,
            offer_id,
            connected: false,
            decoder: MessageDecoder::new(),
            upload: None,
            asked: None,
        }
    }
}
