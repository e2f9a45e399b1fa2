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
        if self.config.relay_partial {
            self.scheduler.loading()
        } else {
            self.scheduler.http_loading()
        }
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

    pub(super) fn send_command(&mut self, peer: PeerHandle, cmd: &Command) {
        for part in encode_command_with_max(cmd, self.config.max_message_bytes) {
            self.outputs.push_back(Output::SendToPeer {
                peer,
                data: Bytes::from(part),
                segment_bytes: false,
            });
        }
    }

    /// Destroys a peer: closes it (when `close`), forgets its downloads and uploads.
    pub(super) fn drop_peer(&mut self, peer: PeerHandle, close: bool, now: Instant) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        self.need_plan = true;
        if close {
            self.outputs.push_back(Output::ClosePeer(peer));
        }
        if let Some(d) = p.download {
            self.partials.remove(&d.segment);
            self.announce_dirty |= self.config.relay_partial;
        }
        if let Some(seg) = self.scheduler.remove_peer(peer) {
            self.partials.remove(&seg);
        }
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

    fn peer_bytes(&mut self, peer: PeerHandle, bytes: &[u8], now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // Bytes outside an answered request (e.g. after we cancelled) are ignored.
        let Some(d) = p.download.as_mut() else {
            return;
        };
        let Some(expected) = d.expected else {
            return;
        };
        d.received += bytes.len() as u64;
        let seg = d.segment;
        if d.received > expected {
            self.violation(peer, "more bytes than announced", now);
            return;
        }
        let done = d.received == expected;
        let remote = p.remote_id;
        let part = partial_entry(&mut self.partials, &mut self.next_generation, seg);
        if !part.peers.iter().any(|(h, _)| *h == peer) {
            part.peers.push((peer, remote));
        }
        part.data.extend_from_slice(bytes);
        let have = part.data.len() as u64;
        let total = part.total;
        self.stats.p2p_bytes += bytes.len() as u64;
        *self.stats.p2p_bytes_by_peer.get_or_insert_with(peer, || 0) += bytes.len() as u64;
        self.scheduler.progress(seg, have, total, now);
        if done {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.download = None;
            }
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
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                let Some(d) = p
                    .download
                    .as_mut()
                    .filter(|d| d.segment == segment && d.request == request)
                else {
                    // Answer to a cancelled request: ignore (its bytes are ignored too).
                    return;
                };
                if d.expected.is_some() {
                    self.violation(peer, "second SegmentData", now);
                    return;
                }
                let from = self
                    .partials
                    .get(&segment)
                    .map_or(0, |p| p.data.len() as u64);
                d.expected = Some(size);
                if size == 0 || from.saturating_add(size) > self.config.max_segment_bytes {
                    self.violation(peer, "SegmentData size out of bounds", now);
                    return;
                }
                let part = partial_entry(&mut self.partials, &mut self.next_generation, segment);
                part.total = Some(from + size);
                let total = part.total;
                self.scheduler.progress(segment, from, total, now);
            }
            Command::SegmentDataSendingCompleted { segment, request } => {
                let Some(p) = self.peers.get(&peer) else {
                    return;
                };
                if let Some(d) = p
                    .download
                    .as_ref()
                    .filter(|d| d.segment == segment && d.request == request)
                {
                    // All bytes would have completed the download already.
                    let short = d.expected.is_none_or(|e| d.received < e);
                    if short {
                        self.violation(peer, "byte count mismatch", now);
                        self.scheduler.forget(segment);
                    }
                }
            }
            Command::SegmentAbsent { segment, request } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                if p.download
                    .as_ref()
                    .is_some_and(|d| d.segment == segment && d.request == request)
                {
                    p.download = None;
                    self.partials.remove(&segment);
                    self.scheduler.absent(segment, now);
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
            download: None,
            upload: None,
            asked: None,
        }
    }
}
