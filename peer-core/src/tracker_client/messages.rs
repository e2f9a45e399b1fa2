//! Tracker messages: handling what the server sends, building and sending announces.

use segswarm_ws_protocol::{
    AnnounceRequest, OfferRequest, TrackerAnnounce, TrackerFrame, TrackerMessage,
};

use super::*;

impl TrackerClient {
    /// Handles one text frame from the tracker.
    ///
    /// Messages for swarms not joined, our own relayed messages and answers to unknown offers are
    /// ignored (no event), as the JavaScript client does. Malformed messages are errors; the client
    /// stays usable.
    pub fn handle_message(
        &mut self,
        text: &str,
        now: Instant,
    ) -> Result<Vec<TrackerEvent>, TrackerClientError> {
        if text.len() > self.config.max_message_bytes {
            return Err(TrackerClientError::TooLarge {
                len: text.len(),
                max: self.config.max_message_bytes,
            });
        }
        let message = TrackerFrame::parse(text)?.message()?;
        let mut events = Vec::new();
        match message {
            TrackerMessage::Failure {
                info_hash,
                reason,
                to_announce,
            } => {
                let info_hash = info_hash.map(|id| id.0);
                events.push(TrackerEvent::Failure { info_hash, reason });
                if let Some(ih) = info_hash.filter(|_| to_announce) {
                    self.announce_refused(ih, now, &mut events);
                }
            }
            TrackerMessage::Warning { info_hash, message } => {
                events.push(TrackerEvent::Warning {
                    info_hash: info_hash.map(|id| id.0),
                    message,
                });
            }
            TrackerMessage::Scrape { info_hash, warning } => {
                // We never send scrapes; a scrape response is harmless.
                if let Some(message) = warning {
                    events.push(TrackerEvent::Warning {
                        info_hash: info_hash.map(|id| id.0),
                        message,
                    });
                }
            }
            TrackerMessage::Announce(announce) => {
                self.handle_announce(announce, now, &mut events)?
            }
        }
        Ok(events)
    }

    /// A failure answered a frame of swarm `info_hash`: if an announce of it was waiting for an
    /// answer, the announce was refused: pause the swarm and expire its unanswered offers. (A
    /// failure with no announce pending answers something else, such as an answer to a peer that
    /// left, and only is reported.)
    fn announce_refused(
        &mut self,
        info_hash: InfoHash,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) {
        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            return;
        };
        if !std::mem::take(&mut swarm.announce_pending) {
            return;
        }
        let max = self
            .config
            .refused_announce_max
            .max(self.config.refused_announce_delay);
        let mut delay = self.config.refused_announce_delay.min(max);
        for _ in 0..swarm.refusals.min(64) {
            delay = delay.saturating_mul(2).min(max);
        }
        swarm.refusals = swarm.refusals.saturating_add(1);
        let until = now + delay;
        swarm.refused_until = Some(until);
        swarm.next_announce = Some(until);
        swarm.awaiting = None;
        swarm.filling = false;
        swarm.idle_rounds = 0;
        self.announces_refused += 1;
        tracing::debug!(?delay, "announce refused; pausing the swarm");
        let mut expired = Vec::new();
        self.pending_offers.retain(|(ih, offer_id), _| {
            if *ih == info_hash {
                expired.push(TrackerEvent::OfferExpired {
                    info_hash,
                    offer_id: *offer_id,
                });
                false
            } else {
                true
            }
        });
        expired.sort_unstable_by_key(offer_sort_key);
        events.extend(expired);
    }

    fn handle_announce(
        &mut self,
        announce: TrackerAnnounce,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) -> Result<(), TrackerClientError> {
        let TrackerAnnounce {
            info_hash,
            warning,
            peer_id,
            interval,
            complete,
            incomplete,
            tracker_id,
            offer,
            answer,
            offer_id,
        } = announce;
        let info_hash = info_hash.0;
        let peer_id = peer_id.map(|id| id.0);
        let offer_id = offer_id.map(|id| id.0);
        if let Some(message) = warning {
            events.push(TrackerEvent::Warning {
                info_hash: Some(info_hash),
                message,
            });
        }
        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            tracing::debug!("ignoring tracker message for a swarm not joined");
            return Ok(());
        };
        if peer_id == Some(self.config.peer_id) {
            return Ok(());
        }
        if let Some(secs) = interval {
            let d = Duration::from_secs(secs)
                .min(self.config.max_interval)
                .max(self.config.min_interval);
            swarm.interval = d;
            if swarm.awaiting.is_none() {
                // While filling, the early announce is timed from the last announce.
                let since = match swarm.last_announce {
                    Some(t) if swarm.filling => t,
                    _ => now,
                };
                swarm.next_announce = Some(since + swarm.next_delay(self.config.fill_interval));
            }
        }
        if let Some(id) = tracker_id {
            self.tracker_id = Some(id);
        }
        if let Some(complete) = complete {
            swarm.announce_pending = false;
            swarm.refusals = 0;
            swarm.refused_until = None;
            events.push(TrackerEvent::AnnounceAccepted {
                info_hash,
                complete,
                incomplete: incomplete.unwrap_or(0),
                interval: swarm.interval,
            });
        }
        match (offer, answer, peer_id, offer_id) {
            (Some(sdp), _, Some(peer_id), Some(offer_id)) => events.push(TrackerEvent::Offer {
                info_hash,
                peer_id,
                offer_id,
                sdp,
            }),
            (None, Some(sdp), Some(peer_id), Some(offer_id)) => {
                if self.pending_offers.remove(&(info_hash, offer_id)).is_some() {
                    swarm.answered += 1;
                    events.push(TrackerEvent::Answer {
                        info_hash,
                        peer_id,
                        offer_id,
                        sdp,
                    });
                } else {
                    tracing::debug!("ignoring answer to an unknown or expired offer");
                }
            }
            (Some(_), _, None, _) | (_, Some(_), None, _) => {
                return Err(TrackerClientError::BadField {
                    field: "peer_id",
                    problem: "missing",
                })
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn start_announce(
        &mut self,
        info_hash: InfoHash,
        event: AnnounceEvent,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) {
        let count = self.config.numwant.min(self.config.max_offers) as usize;
        let deadline = now + self.config.offer_creation_timeout;
        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            return;
        };
        if count == 0 {
            swarm.announced(now, false, self.config.fill_interval);
            let swarm = swarm.clone();
            self.send_announce(info_hash, &swarm, event, &[]);
            return;
        }
        match &mut swarm.awaiting {
            // Already waiting: keep the stronger event (`started` over `update`).
            Some(a) => {
                if event == AnnounceEvent::Started {
                    a.event = event;
                }
            }
            None => {
                swarm.awaiting = Some(AwaitingOffers {
                    event,
                    count,
                    deadline,
                });
                events.push(TrackerEvent::NeedOffers { info_hash, count });
            }
        }
    }

    pub(super) fn send_announce(
        &mut self,
        info_hash: InfoHash,
        swarm: &Swarm,
        event: AnnounceEvent,
        offers: &[(OfferId, String)],
    ) {
        if let Some(s) = self.swarms.get_mut(&info_hash) {
            s.announce_pending = true;
        }
        let with_offers = matches!(event, AnnounceEvent::Started | AnnounceEvent::Update);
        let numwant = if with_offers {
            self.config.numwant.min(self.config.max_offers)
        } else {
            self.config.numwant
        };
        let offers: Vec<OfferRequest<'_>> = offers
            .iter()
            .map(|(id, sdp)| OfferRequest {
                offer_id: Id20(*id),
                sdp,
            })
            .collect();
        let announce = AnnounceRequest {
            info_hash: Id20(info_hash),
            peer_id: Id20(self.config.peer_id),
            event,
            numwant,
            uploaded: swarm.uploaded,
            downloaded: swarm.downloaded,
            left: swarm.left,
            offers: with_offers.then_some(offers.as_slice()),
            tracker_id: self.tracker_id.as_deref(),
        };
        self.transmit.push_back(announce.to_json());
    }
}
