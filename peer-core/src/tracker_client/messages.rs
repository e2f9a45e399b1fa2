//! Tracker messages: handling what the server sends, building and sending announces.

use segswarm_ws_protocol::{AnnounceRequest, OfferRequest, TrackerAnnounce, TrackerMessage};

use super::*;

impl TrackerClient {
    /// Handles one text frame from the tracker, read by the driver with [`TrackerFrame::parse`].
    ///
    /// Messages for swarms not joined, our own relayed messages and answers to unknown offers are
    /// ignored (no event), as the JavaScript client does. Malformed messages are errors and report
    /// no event; the client stays usable.
    pub fn handle_message(
        &mut self,
        frame: &TrackerFrame,
        now: Instant,
    ) -> Result<(), TrackerClientError> {
        let max = self.config.max_message_bytes;
        if frame.text_len() > max {
            return Err(TrackerClientError::TooLarge {
                len: frame.text_len(),
                max,
            });
        }
        match frame.message()? {
            TrackerMessage::Failure {
                info_hash,
                reason,
                to_announce,
            } => {
                let info_hash = info_hash.map(|id| id.0);
                self.events
                    .push(TrackerEvent::Failure { info_hash, reason });
                if let Some(ih) = info_hash.filter(|_| to_announce) {
                    self.announce_refused(ih, now);
                }
            }
            TrackerMessage::Warning { info_hash, message } => {
                self.events.push(TrackerEvent::Warning {
                    info_hash: info_hash.map(|id| id.0),
                    message,
                });
            }
            TrackerMessage::Scrape { info_hash, warning } => {
                // We never send scrapes; a scrape response is harmless.
                if let Some(message) = warning {
                    self.events.push(TrackerEvent::Warning {
                        info_hash: info_hash.map(|id| id.0),
                        message,
                    });
                }
            }
            TrackerMessage::Announce(announce) => {
                // A malformed announce reports nothing, not even its warning.
                let reported = self.events.len();
                if let Err(e) = self.handle_announce(announce, now) {
                    self.events.truncate(reported);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// A failure answered a frame of swarm `info_hash`: if an announce of it was waiting for an
    /// answer, the announce was refused: pause the swarm and expire its unanswered offers. (A
    /// failure with no announce pending answers something else, such as an answer to a peer that
    /// left, and only is reported.)
    fn announce_refused(&mut self, info_hash: InfoHash, now: Instant) {
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
        self.expire_offers(|(ih, _), _| *ih == info_hash);
    }

    fn handle_announce(
        &mut self,
        announce: TrackerAnnounce,
        now: Instant,
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
            self.events.push(TrackerEvent::Warning {
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
            self.events.push(TrackerEvent::AnnounceAccepted {
                info_hash,
                complete,
                incomplete: incomplete.unwrap_or(0),
                interval: swarm.interval,
            });
        }
        match (offer, answer, peer_id, offer_id) {
            (Some(sdp), _, Some(peer_id), Some(offer_id)) => {
                self.events.push(TrackerEvent::Offer {
                    info_hash,
                    peer_id,
                    offer_id,
                    sdp,
                })
            }
            (None, Some(sdp), Some(peer_id), Some(offer_id)) => {
                if self.pending_offers.remove(&(info_hash, offer_id)).is_some() {
                    swarm.answered += 1;
                    self.events.push(TrackerEvent::Answer {
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
                self.events
                    .push(TrackerEvent::NeedOffers { info_hash, count });
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
        self.transmit.push(announce.to_json());
    }
}
