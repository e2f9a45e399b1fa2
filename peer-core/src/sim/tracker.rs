//! An in-memory WebTorrent tracker for the simulator and for tests: it reads the same JSON frames
//! a real tracker reads and relays offers and answers the way bittorrent-tracker does (offer `i`
//! to the `i`-th randomly chosen other peer of the swarm, answers to `to_peer_id`).

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::tracker_client::{decode_binary_string, encode_binary_string, InfoHash, PeerId};

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
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
            out.push((
                client,
                json!({"failure reason": "invalid JSON"}).to_string(),
            ));
            return out;
        };
        let field = |name: &str| -> Option<[u8; 20]> {
            msg.get(name)
                .and_then(Value::as_str)
                .and_then(decode_binary_string)
        };
        if msg.get("action").and_then(Value::as_str) != Some("announce") {
            out.push((
                client,
                json!({"failure reason": "unsupported action"}).to_string(),
            ));
            return out;
        }
        let (Some(info_hash), Some(peer_id)) = (field("info_hash"), field("peer_id")) else {
            out.push((
                client,
                json!({"failure reason": "invalid info_hash or peer_id"}).to_string(),
            ));
            return out;
        };
        let ih = encode_binary_string(&info_hash);
        let pid = encode_binary_string(&peer_id);
        if let Some(answer) = msg.get("answer") {
            let (Some(to), Some(offer_id)) = (
                field("to_peer_id"),
                msg.get("offer_id").and_then(Value::as_str),
            ) else {
                return out;
            };
            if let Some(&target) = self.swarms.get(&info_hash).and_then(|s| s.get(&to)) {
                let m = json!({"action": "announce", "answer": answer, "offer_id": offer_id, "peer_id": pid, "info_hash": ih});
                out.push((target, m.to_string()));
            }
            return out;
        }
        let event = msg.get("event").and_then(Value::as_str).unwrap_or("update");
        if event == "stopped" {
            if let Some(s) = self.swarms.get_mut(&info_hash) {
                s.remove(&peer_id);
            }
            return out;
        }
        let swarm = self.swarms.entry(info_hash).or_default();
        swarm.insert(peer_id, client);
        let n = swarm.len() as u64;
        let resp = json!({"action": "announce", "info_hash": ih, "interval": self.config.interval_secs, "complete": 0, "incomplete": n});
        out.push((client, resp.to_string()));
        if let Some(Value::Array(offers)) = msg.get("offers") {
            let others: Vec<(PeerId, usize)> = swarm
                .iter()
                .filter(|(p, _)| **p != peer_id)
                .map(|(p, c)| (*p, *c))
                .collect();
            let k = offers.len().min(self.config.max_offers).min(others.len());
            let mut chosen = BTreeSet::new();
            let mut picks = Vec::new();
            while picks.len() < k {
                let i = self.rng.random_range(0..others.len());
                if chosen.insert(i) {
                    picks.push(others[i].1);
                }
            }
            for (offer, target) in offers.iter().zip(picks) {
                let mut m = Map::new();
                m.insert("action".into(), json!("announce"));
                m.insert(
                    "offer".into(),
                    offer.get("offer").cloned().unwrap_or(Value::Null),
                );
                m.insert(
                    "offer_id".into(),
                    offer.get("offer_id").cloned().unwrap_or(Value::Null),
                );
                m.insert("peer_id".into(), json!(pid));
                m.insert("info_hash".into(), json!(ih));
                out.push((target, Value::Object(m).to_string()));
            }
        }
        out
    }
}
