//! Tracker signalling: announces, offers and answers, new peer connections.

use super::*;

impl Engine {
    pub(super) fn flush_tracker(&mut self) {
        while let Some(frame) = self.tracker.poll_transmit() {
            self.outputs.push_back(Output::TrackerSend(frame));
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
            .saturating_sub(self.peers.len() + self.offers_requested.len())
    }

    pub(super) fn tracker_events(&mut self, events: Vec<TrackerEvent>, now: Instant) {
        for ev in events {
            match ev {
                TrackerEvent::NeedOffers { info_hash, count } => {
                    let n = count.min(self.peer_slots());
                    if n == 0 {
                        let ev = self.tracker.offers_created(info_hash, Vec::new(), now);
                        self.tracker_events(ev, now);
                        continue;
                    }
                    let handles: Vec<PeerHandle> = (0..n).map(|_| self.new_handle()).collect();
                    self.offers_requested = handles.clone();
                    self.outputs.push_back(Output::CreateOffers(handles));
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
                    self.outputs.push_back(Output::CreateAnswer {
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
                        self.outputs.push_back(Output::ClosePeer(h));
                        continue;
                    }
                    if let Some(p) = self.peers.get_mut(&h) {
                        p.remote_id = Some(peer_id);
                    }
                    self.outputs.push_back(Output::AcceptAnswer {
                        peer: h,
                        answer_sdp: sdp,
                    });
                }
                TrackerEvent::OfferExpired { offer_id, .. } => {
                    if let Some((&h, _)) = self.peers.iter().find(|(_, p)| {
                        p.offer_id == Some(offer_id) && !p.connected && p.remote_id.is_none()
                    }) {
                        self.peers.remove(&h);
                        self.outputs.push_back(Output::ClosePeer(h));
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

    pub(super) fn offers_created(&mut self, offers: Vec<(PeerHandle, String)>, now: Instant) {
        let requested = std::mem::take(&mut self.offers_requested);
        let mut list = Vec::new();
        for (h, sdp) in offers {
            if !requested.contains(&h) {
                continue;
            }
            let mut offer_id = [0u8; 20];
            self.rng.fill(&mut offer_id);
            self.peers.insert(h, Peer::new(None, Some(offer_id)));
            list.push((offer_id, sdp));
        }
        let ev = self
            .tracker
            .offers_created(self.config.info_hash, list, now);
        self.tracker_events(ev, now);
    }

    pub(super) fn peer_connected(&mut self, peer: PeerHandle, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            // Unknown (already closed) connection.
            self.outputs.push_back(Output::ClosePeer(peer));
            return;
        };
        if p.connected {
            return;
        }
        p.connected = true;
        self.stats.peers_connected += 1;
        self.scheduler.add_peer(peer, now);
        if !self.config.consume_only && !self.p2p_refused() {
            let cmd = self.announcement();
            self.send_command(peer, &cmd);
        }
    }
}
