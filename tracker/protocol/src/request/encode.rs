//! The client's side of a request: [`AnnounceRequest`] and [`AnswerRequest`] as JSON text.
//!
//! Keys are written in alphabetical order and strings escaped as `serde_json` escapes them: the
//! bytes the peers' client has always sent (it built them as `serde_json::Value`s).

use std::fmt::Write as _;

use crate::{AnnounceEvent, Id20};

/// An announce as a client sends it.
#[derive(Debug, Clone, Copy)]
pub struct AnnounceRequest<'a> {
    /// The swarm.
    pub info_hash: Id20,
    /// The sender's id.
    pub peer_id: Id20,
    /// The event; [`AnnounceEvent::Update`] leaves the field out.
    pub event: AnnounceEvent,
    /// Peers wanted.
    pub numwant: u32,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes left (`Some(0)`: a seeder; `None`: the field is left out).
    pub left: Option<u64>,
    /// Offers for the tracker to relay (`None`: no `offers` field).
    pub offers: Option<&'a [OfferRequest<'a>]>,
    /// The `tracker id` the tracker gave, echoed as `trackerid`.
    pub tracker_id: Option<&'a str>,
}

/// One offer of an [`AnnounceRequest`].
#[derive(Debug, Clone, Copy)]
pub struct OfferRequest<'a> {
    /// The offer's id.
    pub offer_id: Id20,
    /// The offer SDP.
    pub sdp: &'a str,
}

/// An answer to a relayed offer, as a client sends it.
#[derive(Debug, Clone, Copy)]
pub struct AnswerRequest<'a> {
    /// The swarm.
    pub info_hash: Id20,
    /// The answering peer (the sender).
    pub peer_id: Id20,
    /// The peer that made the offer.
    pub to_peer_id: Id20,
    /// The offer answered.
    pub offer_id: Id20,
    /// The answer SDP.
    pub sdp: &'a str,
    /// The `tracker id` the tracker gave, echoed as `trackerid`.
    pub tracker_id: Option<&'a str>,
}

impl AnnounceRequest<'_> {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        let sdp_len: usize = self
            .offers
            .map_or(0, |o| o.iter().map(|o| o.sdp.len() + 96).sum());
        let mut out = String::with_capacity(200 + sdp_len);
        out.push_str("{\"action\":\"announce\",\"downloaded\":");
        push_number(&mut out, self.downloaded);
        if !self.event.is_update() {
            out.push_str(",\"event\":\"");
            out.push_str(self.event.name());
            out.push('"');
        }
        push_id_field(&mut out, "info_hash", &self.info_hash);
        if let Some(left) = self.left {
            out.push_str(",\"left\":");
            push_number(&mut out, left);
        }
        out.push_str(",\"numwant\":");
        push_number(&mut out, u64::from(self.numwant));
        if let Some(offers) = self.offers {
            out.push_str(",\"offers\":[");
            for (i, offer) in offers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"offer\":");
                push_sdp(&mut out, offer.sdp, "offer");
                push_id_field(&mut out, "offer_id", &offer.offer_id);
                out.push('}');
            }
            out.push(']');
        }
        push_id_field(&mut out, "peer_id", &self.peer_id);
        push_tracker_id(&mut out, self.tracker_id);
        out.push_str(",\"uploaded\":");
        push_number(&mut out, self.uploaded);
        out.push('}');
        out
    }
}

impl AnswerRequest<'_> {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(200 + self.sdp.len());
        out.push_str("{\"action\":\"announce\",\"answer\":");
        push_sdp(&mut out, self.sdp, "answer");
        push_id_field(&mut out, "info_hash", &self.info_hash);
        push_id_field(&mut out, "offer_id", &self.offer_id);
        push_id_field(&mut out, "peer_id", &self.peer_id);
        push_id_field(&mut out, "to_peer_id", &self.to_peer_id);
        push_tracker_id(&mut out, self.tracker_id);
        out.push('}');
        out
    }
}

fn push_number(out: &mut String, n: u64) {
    let _ = write!(out, "{n}");
}

/// `,"<name>":<id as a binary string>`.
fn push_id_field(out: &mut String, name: &str, id: &Id20) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    push_json_str(out, &id.to_binary_string());
}

/// `,"trackerid":..` when there is one.
fn push_tracker_id(out: &mut String, tracker_id: Option<&str>) {
    if let Some(id) = tracker_id {
        out.push_str(",\"trackerid\":");
        push_json_str(out, id);
    }
}

/// An SDP object: `{"sdp":..,"type":..}`.
fn push_sdp(out: &mut String, sdp: &str, kind: &str) {
    out.push_str("{\"sdp\":");
    push_json_str(out, sdp);
    out.push_str(",\"type\":\"");
    out.push_str(kind);
    out.push_str("\"}");
}

/// Appends `s` as a JSON string literal, escaped as `serde_json` escapes it.
fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\u{1f}' => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
