//! The tracker's side of a response: each message written in one pass into one `String`.
//!
//! Relays forward the offer or answer SDP as the raw JSON the sender wrote, and ids as the JSON
//! string literals the sender wrote ([`crate::WsAnnounce::info_hash_json`]).

use serde_json::value::RawValue;

use crate::{id_json, push_binary_string, Action, Id20};

fn push_field_id(out: &mut String, name: &str, id: &Id20) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    push_binary_string(out, &id.0);
}

/// `{"action":"announce","interval":..,"info_hash":..,"complete":..,"incomplete":..}`, plus
/// `"warning message"` when given (the announce was accepted but trimmed).
pub fn encode_announce_response(
    info_hash: &Id20,
    complete: u64,
    incomplete: u64,
    interval_secs: u64,
    warning: Option<&str>,
) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"action\":\"announce\",\"interval\":");
    out.push_str(&interval_secs.to_string());
    push_field_id(&mut out, "info_hash", info_hash);
    out.push_str(",\"complete\":");
    out.push_str(&complete.to_string());
    out.push_str(",\"incomplete\":");
    out.push_str(&incomplete.to_string());
    if let Some(warning) = warning {
        out.push_str(",\"warning message\":");
        out.push_str(&serde_json::to_string(warning).unwrap_or_else(|_| "\"\"".to_owned()));
    }
    out.push('}');
    out
}

/// Builds the relayed offers of one announce. Ids are forwarded as the JSON string literals the
/// sender wrote (see [`crate::WsAnnounce::info_hash_json`]); the sender's and the swarm's, the same in
/// each relay, are put together once.
pub struct OfferRelays {
    /// `,"peer_id":<sender>,"info_hash":<swarm>}`.
    tail: String,
}

impl OfferRelays {
    /// The relays of sender `from_json`'s offers in swarm `info_hash_json` (JSON string literals).
    pub fn new(info_hash_json: &str, from_json: &str) -> OfferRelays {
        OfferRelays {
            tail: relay_tail(from_json, info_hash_json),
        }
    }

    /// `{"action":"announce","offer":..,"offer_id":..,"peer_id":<sender>,"info_hash":..}`.
    pub fn encode(&self, offer_id_json: &str, offer: &RawValue) -> String {
        relay("offer", offer, offer_id_json, &self.tail)
    }
}

/// A relayed answer from the JSON string literals of its ids:
/// `{"action":"announce","answer":..,"offer_id":..,"peer_id":<answerer>,"info_hash":..}`.
pub fn encode_answer_json(
    info_hash_json: &str,
    from_json: &str,
    offer_id_json: &str,
    answer: &RawValue,
) -> String {
    relay(
        "answer",
        answer,
        offer_id_json,
        &relay_tail(from_json, info_hash_json),
    )
}

/// A relayed offer: `{"action":"announce","offer":..,"offer_id":..,"peer_id":<sender>,"info_hash":..}`.
pub fn encode_offer(info_hash: &Id20, from: &Id20, offer_id: &Id20, offer: &RawValue) -> String {
    OfferRelays::new(&id_json(info_hash), &id_json(from)).encode(&id_json(offer_id), offer)
}

/// A relayed answer: `{"action":"announce","answer":..,"offer_id":..,"peer_id":<answerer>,"info_hash":..}`.
pub fn encode_answer(info_hash: &Id20, from: &Id20, offer_id: &Id20, answer: &RawValue) -> String {
    encode_answer_json(
        &id_json(info_hash),
        &id_json(from),
        &id_json(offer_id),
        answer,
    )
}

fn relay_tail(from_json: &str, info_hash_json: &str) -> String {
    const PEER_ID: &str = ",\"peer_id\":";
    const INFO_HASH: &str = ",\"info_hash\":";
    let mut tail = String::with_capacity(
        PEER_ID.len() + from_json.len() + INFO_HASH.len() + info_hash_json.len() + 1,
    );
    tail.push_str(PEER_ID);
    tail.push_str(from_json);
    tail.push_str(INFO_HASH);
    tail.push_str(info_hash_json);
    tail.push('}');
    tail
}

fn relay(name: &str, sdp: &RawValue, offer_id_json: &str, tail: &str) -> String {
    const HEAD: &str = "{\"action\":\"announce\",\"";
    const OFFER_ID: &str = ",\"offer_id\":";
    let sdp = sdp.get();
    let mut out = String::with_capacity(
        HEAD.len() + name.len() + 2 + sdp.len() + OFFER_ID.len() + offer_id_json.len() + tail.len(),
    );
    out.push_str(HEAD);
    out.push_str(name);
    out.push_str("\":");
    out.push_str(sdp);
    out.push_str(OFFER_ID);
    out.push_str(offer_id_json);
    out.push_str(tail);
    out
}

/// Counts of one swarm in a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeCounts {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// `completed` events seen.
    pub downloaded: u64,
}

/// `{"action":"scrape","files":{<ih>:{"complete":..,"incomplete":..,"downloaded":..}}}`.
pub fn encode_scrape<'a>(files: impl IntoIterator<Item = &'a (Id20, ScrapeCounts)>) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"action\":\"scrape\",\"files\":{");
    for (i, (id, counts)) in files.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_binary_string(&mut out, &id.0);
        out.push_str(":{\"complete\":");
        out.push_str(&counts.complete.to_string());
        out.push_str(",\"incomplete\":");
        out.push_str(&counts.incomplete.to_string());
        out.push_str(",\"downloaded\":");
        out.push_str(&counts.downloaded.to_string());
        out.push('}');
    }
    out.push_str("}}");
    out
}

/// `{"failure reason":..,"action":..,"info_hash":..}` (action and info_hash only where known).
pub fn encode_failure(reason: &str, action: Option<Action>, info_hash: Option<&Id20>) -> String {
    let mut out = String::with_capacity(reason.len() + 96);
    out.push_str("{\"failure reason\":");
    out.push_str(&serde_json::to_string(reason).unwrap_or_else(|_| "\"error\"".to_owned()));
    if let Some(action) = action {
        out.push_str(",\"action\":\"");
        out.push_str(action.as_str());
        out.push('"');
    }
    if let Some(id) = info_hash {
        push_field_id(&mut out, "info_hash", id);
    }
    out.push('}');
    out
}
