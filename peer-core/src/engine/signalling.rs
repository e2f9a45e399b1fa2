//! Tracker signalling: announces, offers and answers, new peer connections.

use super::*;

impl Engine {
    pub(super) fn flush_tracker(&mut self) {
        while let Some(frame) = self.tracker.poll_transmit() {
            self.out.transmits.push(Transmit::Tracker(frame));
        }
    }

    fn new_handle(&mut self) -> PeerHandle {
        let h = PeerHandle(self.next_handle);
        self.next_handle += 1;
        h
    }

    fn peer_slots(&self) -> usize {
        self.config
            .max_peers
            .saturating_sub(self.peers.len() + self.offers_pending.len())
    }

    /// Acts on every event the tracker client queued.
    pub(super) fn tracker_events(&mut self, now: Instant) {
        while let Some(ev) = self.tracker.poll_event() {
            match ev {
                TrackerEvent::NeedOffers { info_hash, count } => {
                    let n = count.min(self.peer_slots());
                    if n == 0 {
                        // No room for peers: the announce goes out without offers.
                        self.tracker.offers_created(info_hash, Vec::new(), now);
                        continue;
                    }
                    let handles: Vec<PeerHandle> = (0..n).map(|_| self.new_handle()).collect();
                    // A new batch replaces one still being made: its offers are dropped.
                    self.offers_pending = handles.clone();
                    self.offers_made.clear();
                    self.out.rtc.push(RtcCommand::CreateOffers(handles));
                }
                TrackerEvent::Offer {
                    peer_id,
                    offer_id,
                    sdp,
                    ..
                } => {
                    let known = self.peers.values().any(|p| p.remote_id == Some(peer_id));
                    if known
                        || self.banned.contains(&peer_id)
                        || self.peer_slots() == 0
                        || peer_id == self.config.peer_id
                    {
                        continue;
                    }
                    let h = self.new_handle();
                    self.peers
                        .insert(h, Peer::new(Some(peer_id), Some(offer_id)));
                    self.out.rtc.push(RtcCommand::CreateAnswer {
                        peer: h,
                        offer_sdp: sdp,
                    });
                }
                TrackerEvent::Answer {
                    peer_id,
                    offer_id,
                    sdp,
                    ..
                } => {
                    let Some((&h, _)) = self
                        .peers
                        .iter()
                        .find(|(_, p)| p.offer_id == Some(offer_id) && p.remote_id.is_none())
                    else {
                        continue;
                    };
                    let dup = self.peers.values().any(|p| p.remote_id == Some(peer_id));
                    if dup || self.banned.contains(&peer_id) {
                        self.peers.remove(&h);
                        self.out.rtc.push(RtcCommand::Close(h));
                        continue;
                    }
                    if let Some(p) = self.peers.get_mut(&h) {
                        p.remote_id = Some(peer_id);
                    }
                    self.out.rtc.push(RtcCommand::AcceptAnswer {
                        peer: h,
                        answer_sdp: sdp,
                    });
                }
                TrackerEvent::OfferExpired { offer_id, .. } => {
                    if let Some((&h, _)) = self.peers.iter().find(|(_, p)| {
                        p.offer_id == Some(offer_id) && !p.connected && p.remote_id.is_none()
                    }) {
                        self.peers.remove(&h);
                        self.out.rtc.push(RtcCommand::Close(h));
                    }
                }
                TrackerEvent::AnnounceAccepted {
                    complete,
                    incomplete,
                    ..
                } => {
                    let n = complete.saturating_add(incomplete);
                    self.scheduler
                        .set_swarm_size(usize::try_from(n).unwrap_or(usize::MAX));
                }
                TrackerEvent::Failure { reason, .. } => tracing::warn!("tracker failure: {reason}"),
                TrackerEvent::Warning { message, .. } => {
                    tracing::info!("tracker warning: {message}")
                }
            }
        }
    }

    /// Collects one offer of the batch; the last one sends them all to the tracker.
    pub(super) fn offer_created(&mut self, peer: PeerHandle, sdp: Option<String>, now: Instant) {
        let Some(i) = self.offers_pending.iter().position(|h| *h == peer) else {
            return;
        };
        self.offers_pending.remove(i);
        if let Some(sdp) = sdp {
            self.offers_made.push((peer, sdp));
        }
        if self.offers_pending.is_empty() {
            let made = std::mem::take(&mut self.offers_made);
            self.offers_created(made, now);
        }
    }

    fn offers_created(&mut self, offers: Vec<(PeerHandle, String)>, now: Instant) {
        let mut list = Vec::new();
        for (h, sdp) in offers {
            let mut offer_id = [0u8; 20];
            self.rng.fill(&mut offer_id);
            self.peers.insert(h, Peer::new(None, Some(offer_id)));
            list.push((offer_id, sdp));
        }
        self.tracker
            .offers_created(self.config.info_hash, list, now);
        self.tracker_events(now);
    }

    pub(super) fn peer_connected(&mut self, peer: PeerHandle, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            // Unknown (already closed) connection.
            self.out.rtc.push(RtcCommand::Close(peer));
            return;
        };
        if p.connected {
            return;
        }
        p.connected = true;
        self.stats.peers_connected += 1;
        self.out.events.push(Event::PeerConnected(peer));
        self.scheduler.add_peer(peer, now);
        if !self.config.consume_only && !self.p2p_refused() {
            let cmd = self.announcement();
            self.send_command(peer, &cmd);
        }
    }
}
