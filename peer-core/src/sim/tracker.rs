//! An in-memory WebTorrent tracker for the simulator and for tests: it reads and writes frames with
//! the real tracker's codec ([`segswarm_ws_protocol`]) and relays offers and answers the way
//! bittorrent-tracker does (offer `i` to the `i`-th randomly chosen other peer of the swarm,
//! answers to `to_peer_id`).

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use segswarm_ws_protocol::{
    encode_announce_response, encode_answer_json, encode_failure, parse, Action, AnnounceEvent,
    OfferRelays, WsRequest,
};

use crate::tracker_client::{InfoHash, PeerId};

/// Settings of a [`MemTracker`].
#[derive(Debug, Clone)]
pub struct MemTrackerConfig {
    /// Most offers relayed from one announce. Default 10 (as aquatic_ws).
    pub max_offers: usize,
    /// Re-announce interval sent to clients, seconds. Default 120 (as bittorrent-tracker).
    pub interval_secs: u64,
}

impl Default for MemTrackerConfig {
    fn default() -> Self {
        Self {
            max_offers: 10,
            interval_secs: 120,
        }
    }
}

/// The tracker: clients are numbered by the caller (one number per socket).
#[derive(Debug)]
pub struct MemTracker {
    config: MemTrackerConfig,
    swarms: BTreeMap<InfoHash, BTreeMap<PeerId, usize>>,
    rng: StdRng,
}

impl MemTracker {
    /// An empty tracker with a seeded random generator.
    pub fn new(config: MemTrackerConfig, seed: u64) -> Self {
        Self {
            config,
            swarms: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Number of peers in a swarm.
    pub fn swarm_size(&self, info_hash: &InfoHash) -> usize {
        self.swarms.get(info_hash).map_or(0, |s| s.len())
    }

    /// A client's socket closed: it leaves every swarm.
    pub fn disconnect(&mut self, client: usize) {
        for swarm in self.swarms.values_mut() {
            swarm.retain(|_, c| *c != client);
        }
    }

    /// One text frame from `client`; returns the frames to send, as `(client, text)`.
    pub fn handle(&mut self, client: usize, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let announce = match parse(text) {
            Ok(WsRequest::Announce(announce)) => announce,
            Ok(WsRequest::Scrape(_)) => {
                let reply = encode_failure("unsupported action", Some(Action::Scrape), None);
                out.push((client, reply));
                return out;
            }
            Err(e) => {
                let reply = encode_failure(e.kind.reason(), e.action, e.info_hash.as_ref());
                out.push((client, reply));
                return out;
            }
        };
        let (info_hash, peer_id) = (announce.info_hash.0, announce.peer_id.0);
        if let Some(answer) = &announce.answer {
            let to = answer.to_peer_id.0;
            if let Some(&target) = self.swarms.get(&info_hash).and_then(|s| s.get(&to)) {
                let relay = encode_answer_json(
                    announce.info_hash_json,
                    announce.peer_id_json,
                    answer.offer_id_json,
                    answer.answer,
                );
                out.push((target, relay));
            }
            return out;
        }
        if announce.event == AnnounceEvent::Stopped {
            if let Some(s) = self.swarms.get_mut(&info_hash) {
                s.remove(&peer_id);
            }
            return out;
        }
        let swarm = self.swarms.entry(info_hash).or_default();
        swarm.insert(peer_id, client);
        let n = swarm.len() as u64;
        let reply =
            encode_announce_response(&announce.info_hash, 0, n, self.config.interval_secs, None);
        out.push((client, reply));
        let others: Vec<(PeerId, usize)> = swarm
            .iter()
            .filter(|(p, _)| **p != peer_id)
            .map(|(p, c)| (*p, *c))
            .collect();
        let k = announce
            .offers
            .len()
            .min(self.config.max_offers)
            .min(others.len());
        let mut chosen = BTreeSet::new();
        let mut picks = Vec::new();
        while picks.len() < k {
            let i = self.rng.random_range(0..others.len());
            if chosen.insert(i) {
                picks.push(others[i].1);
            }
        }
        let relays = OfferRelays::new(announce.info_hash_json, announce.peer_id_json);
        for (offer, target) in announce.offers.iter().zip(picks) {
            out.push((target, relays.encode(offer.offer_id_json, offer.offer)));
        }
        out
    }
}
