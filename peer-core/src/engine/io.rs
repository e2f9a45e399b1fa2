//! What comes in: the network's and the driver's IO events, and timeouts, each followed by
//! [`Engine::finish`].

use super::*;

impl Engine {
    /// Feeds what the network or the driver's IO did at `now`.
    pub fn handle_event(&mut self, event: IoEvent, now: Instant) {
        if !self.begin(now) {
            return;
        }
        // Bytes arriving do not call for planning, nor does an offer that leaves its batch
        // incomplete.
        let routine = match &event {
            IoEvent::PeerMessage { .. }
            | IoEvent::HttpChunk { .. }
            | IoEvent::HttpStarted { .. } => true,
            IoEvent::OfferCreated { peer, .. } => self.offers_pending != [*peer],
            _ => false,
        };
        if !routine {
            self.need_plan = true;
        }
        match event {
            IoEvent::TrackerConnected => {
                // Joining while disconnected only records the swarm; `connected` announces it.
                self.tracker.join(self.config.info_hash, now);
                self.tracker.connected(now);
                self.tracker_events(now);
            }
            IoEvent::TrackerDisconnected => {
                self.tracker.disconnected(now);
                self.tracker_events(now);
            }
            IoEvent::TrackerMessage(frame) => match self.tracker.handle_message(&frame, now) {
                Ok(()) => self.tracker_events(now),
                Err(e) => tracing::debug!("tracker message refused: {e}"),
            },
            IoEvent::OfferCreated { peer, sdp } => self.offer_created(peer, sdp, now),
            IoEvent::AnswerCreated { peer, sdp } => {
                if let Some(p) = self.peers.get(&peer) {
                    if let (Some(remote), Some(offer_id)) = (p.remote_id, p.offer_id) {
                        self.tracker
                            .send_answer(self.config.info_hash, remote, offer_id, &sdp);
                    }
                }
            }
            IoEvent::PeerConnected(peer) => self.peer_connected(peer, now),
            IoEvent::PeerClosed(peer) => self.drop_peer(peer, false, now),
            IoEvent::PeerSendOverrun(peer) => {
                if self.peers.contains_key(&peer) {
                    self.stats.peers_send_overrun += 1;
                    self.violation(peer, "send queue overrun", now);
                }
            }
            IoEvent::PeerMessage { peer, data } => self.peer_message(peer, &data, now),
            IoEvent::HttpStarted {
                request,
                content_length,
            } => self.http_started(request, content_length),
            IoEvent::HttpChunk { request, data } => self.http_chunk(request, &data, now),
            IoEvent::HttpCompleted(request) => self.http_completed(request, now),
            IoEvent::HttpFailed { request, reason } => self.http_failed(request, &reason, now),
        }
        self.finish(now);
    }

    /// [`Engine::poll_timeout`] was reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.begin(now) {
            return;
        }
        // A timer that only paces uploads does not call for planning.
        let plan_due = self.plan_at.is_some_and(|t| t <= now)
            || self
                .last_plan
                .and_then(|t| self.scheduler.next_wakeup(t))
                .is_none_or(|t| t <= now);
        self.need_plan |= plan_due;
        self.tracker.handle_timeout(now);
        self.tracker_events(now);
        self.finish(now);
    }
}
