//! Tracker messages: handling what the server sends, building and sending announces.

use super::codec::{count_field, id_field, sdp_field};
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
        let value: Value =
            serde_json::from_str(text).map_err(|e| TrackerClientError::Json(e.to_string()))?;
        let Value::Object(msg) = value else {
            return Err(TrackerClientError::NotAnObject);
        };
        // A failure may answer a request whose info_hash was unreadable: tolerate a bad one there.
        let info_hash = match msg.get("info_hash") {
            None => None,
            Some(_) if msg.contains_key("failure reason") => msg
                .get("info_hash")
                .and_then(|v| id_field(v, "info_hash").ok()),
            Some(v) => Some(id_field(v, "info_hash")?),
        };
        let mut events = Vec::new();
        if let Some(reason) = msg.get("failure reason") {
            let reason = reason.as_str().ok_or(TrackerClientError::BadField {
                field: "failure reason",
                problem: "not a string",
            })?;
            events.push(TrackerEvent::Failure {
                info_hash,
                reason: reason.to_owned(),
            });
            let refuses_announce = matches!(
                msg.get("action").and_then(Value::as_str),
                None | Some("announce")
            );
            if let Some(ih) = info_hash.filter(|_| refuses_announce) {
                self.announce_refused(ih, now, &mut events);
            }
            return Ok(events);
        }
        if let Some(warning) = msg.get("warning message") {
            let message = warning.as_str().ok_or(TrackerClientError::BadField {
                field: "warning message",
                problem: "not a string",
            })?;
            events.push(TrackerEvent::Warning {
                info_hash,
                message: message.to_owned(),
            });
        }
        match msg.get("action") {
            None if !events.is_empty() => Ok(events),
            None => Err(TrackerClientError::MissingAction),
            Some(Value::String(a)) if a == "announce" => {
                let info_hash = info_hash.ok_or(TrackerClientError::BadField {
                    field: "info_hash",
                    problem: "missing",
                })?;
                self.handle_announce(&msg, info_hash, now, &mut events)?;
                Ok(events)
            }
            // We never send scrapes; a scrape response is harmless.
            Some(Value::String(a)) if a == "scrape" => Ok(events),
            Some(Value::String(a)) => Err(TrackerClientError::UnknownAction(
                a.chars().take(40).collect(),
            )),
            Some(_) => Err(TrackerClientError::BadField {
                field: "action",
                problem: "not a string",
            }),
        }
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
        msg: &Map<String, Value>,
        info_hash: InfoHash,
        now: Instant,
        events: &mut Vec<TrackerEvent>,
    ) -> Result<(), TrackerClientError> {
        // Validate everything before changing state, so a bad message changes nothing.
        let peer_id = match msg.get("peer_id") {
            None => None,
            Some(v) => Some(id_field(v, "peer_id")?),
        };
        let interval = match msg.get("interval").or_else(|| msg.get("min interval")) {
            None => None,
            Some(v) => Some(count_field(v, "interval")?),
        };
        let complete = msg
            .get("complete")
            .map(|v| count_field(v, "complete"))
            .transpose()?;
        let incomplete = msg
            .get("incomplete")
            .map(|v| count_field(v, "incomplete"))
            .transpose()?;
        let tracker_id = match msg.get("tracker id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(TrackerClientError::BadField {
                    field: "tracker id",
                    problem: "not a string",
                })
            }
        };
        let offer = msg
            .get("offer")
            .map(|v| sdp_field(v, "offer", "offer"))
            .transpose()?;
        let answer = msg
            .get("answer")
            .map(|v| sdp_field(v, "answer", "answer"))
            .transpose()?;
        let offer_id = if offer.is_some() || answer.is_some() {
            let v = msg.get("offer_id").ok_or(TrackerClientError::BadField {
                field: "offer_id",
                problem: "missing",
            })?;
            Some(id_field(v, "offer_id")?)
        } else {
            None
        };

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
        let mut msg = Map::new();
        msg.insert("action".into(), json!("announce"));
        msg.insert("info_hash".into(), json!(encode_binary_string(&info_hash)));
        msg.insert(
            "peer_id".into(),
            json!(encode_binary_string(&self.config.peer_id)),
        );
        let with_offers = matches!(event, AnnounceEvent::Started | AnnounceEvent::Update);
        let numwant = if with_offers {
            self.config.numwant.min(self.config.max_offers)
        } else {
            self.config.numwant
        };
        msg.insert("numwant".into(), json!(numwant));
        msg.insert("uploaded".into(), json!(swarm.uploaded));
        msg.insert("downloaded".into(), json!(swarm.downloaded));
        if let Some(left) = swarm.left {
            msg.insert("left".into(), json!(left));
        }
        if let Some(e) = event.as_str() {
            msg.insert("event".into(), json!(e));
        }
        if with_offers {
            let list: Vec<Value> = offers
                .iter()
                .map(|(id, sdp)| {
                    json!({
                        "offer": {"type": "offer", "sdp": sdp},
                        "offer_id": encode_binary_string(id),
                    })
                })
                .collect();
            msg.insert("offers".into(), Value::Array(list));
        }
        if let Some(id) = &self.tracker_id {
            msg.insert("trackerid".into(), json!(id));
        }
        self.transmit.push_back(Value::Object(msg).to_string());
    }
}
