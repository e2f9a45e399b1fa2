//! The WebTorrent tracker messages a browser peer sends, with fake but realistic SDP bodies, and
//! the fields the load generator reads from what the tracker sends back.
//!
//! Timestamps ride inside the messages so latency can be measured at the receiving peer: an offer's
//! `offer_id` starts with 16 hex digits of microseconds since the run began, and an answer's SDP
//! carries its send time as the session id of its `o=` line.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::de::IgnoredAny;
use serde::Deserialize;

/// Builds an SDP body of about `target_len` bytes (before JSON escaping), shaped like a Chromium
/// data-channel-only offer or answer: session, one `m=application` section, ICE, DTLS, candidates.
/// The `o=` line carries `session_id`.
pub fn fake_sdp(answer: bool, session_id: u64, target_len: usize) -> String {
    let mut lines: Vec<String> = vec![
        "v=0".into(),
        format!("o=- {session_id} 2 IN IP4 127.0.0.1"),
        "s=-".into(),
        "t=0 0".into(),
        "a=group:BUNDLE 0".into(),
        "a=extmap-allow-mixed".into(),
        "a=msid-semantic: WMS".into(),
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel".into(),
        "c=IN IP4 0.0.0.0".into(),
        "a=ice-ufrag:k9Zq".into(),
        "a=ice-pwd:Xf3q8LmN2vB7cR1tY6wP0sDa".into(),
        "a=ice-options:trickle".into(),
        "a=fingerprint:sha-256 4F:A2:19:C7:3B:8E:D0:55:6A:F1:20:9C:E4:7B:13:88:D6:2F:A9:50:1C:E7:84:3D:B2:6F:0A:95:C8:71:3E:DA".into(),
        format!("a=setup:{}", if answer { "active" } else { "actpass" }),
        "a=mid:0".into(),
        "a=sctp-port:5000".into(),
        "a=max-message-size:262144".into(),
    ];
    let mut len: usize = lines.iter().map(|l| l.len() + 2).sum();
    let mut n = 0u32;
    while len < target_len {
        let line = format!(
            "a=candidate:{} 1 udp {} 192.168.{}.{} {} typ host generation 0 network-id {}",
            1_467_250_027u32.wrapping_add(n * 7919),
            2_122_260_223u32 - n,
            n % 250,
            (n * 37) % 250 + 2,
            50_000 + n * 13,
            n + 1
        );
        len += line.len() + 2;
        lines.push(line);
        n += 1;
    }
    let mut sdp = lines.join("\r\n");
    sdp.push_str("\r\n");
    sdp
}

/// Appends `s` to `out` as a JSON string literal (with quotes).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An offer id carrying its send time: 16 hex digits of microseconds, then 4 of a sequence number.
pub fn offer_id(sent_micros: u64, seq: u32) -> String {
    format!("{sent_micros:016x}{:04x}", seq & 0xffff)
}

/// The send time carried by an [`offer_id`], if the id is one of ours.
pub fn offer_id_micros(id: &str) -> Option<u64> {
    u64::from_str_radix(id.get(..16)?, 16).ok()
}

/// The session id of an SDP's `o=` line (the answer's send time), if present.
pub fn sdp_session_micros(sdp: &str) -> Option<u64> {
    let rest = &sdp[sdp.find("o=- ")? + 4..];
    rest.split(' ').next()?.parse().ok()
}

/// One offer of an announce: its id and its SDP.
pub struct Offer<'a> {
    /// 20-character offer id.
    pub id: &'a str,
    /// SDP text (unescaped).
    pub sdp: &'a str,
}

/// An announce as the bittorrent-tracker browser client sends it.
pub fn announce(
    info_hash: &str,
    peer_id: &str,
    event: Option<&str>,
    left: u64,
    offers: &[Offer<'_>],
) -> String {
    let mut m = String::with_capacity(160 + offers.iter().map(|o| o.sdp.len() + 96).sum::<usize>());
    m.push_str("{\"action\":\"announce\",\"info_hash\":");
    push_json_str(&mut m, info_hash);
    m.push_str(",\"peer_id\":");
    push_json_str(&mut m, peer_id);
    let _ = write!(
        m,
        ",\"numwant\":{},\"uploaded\":0,\"downloaded\":0,\"left\":{left}",
        offers.len()
    );
    if let Some(event) = event {
        m.push_str(",\"event\":");
        push_json_str(&mut m, event);
    }
    m.push_str(",\"offers\":[");
    for (i, offer) in offers.iter().enumerate() {
        if i > 0 {
            m.push(',');
        }
        m.push_str("{\"offer\":{\"type\":\"offer\",\"sdp\":");
        push_json_str(&mut m, offer.sdp);
        m.push_str("},\"offer_id\":");
        push_json_str(&mut m, offer.id);
        m.push('}');
    }
    m.push_str("]}");
    m
}

/// A `stopped` announce (leaving a swarm), without offers.
pub fn stopped(info_hash: &str, peer_id: &str) -> String {
    let mut m = String::with_capacity(160);
    m.push_str("{\"action\":\"announce\",\"info_hash\":");
    push_json_str(&mut m, info_hash);
    m.push_str(",\"peer_id\":");
    push_json_str(&mut m, peer_id);
    m.push_str(",\"numwant\":0,\"uploaded\":0,\"downloaded\":0,\"left\":0,\"event\":\"stopped\"}");
    m
}

/// An answer to a relayed offer, addressed to the offering peer.
pub fn answer(
    info_hash: &str,
    peer_id: &str,
    to_peer_id: &str,
    offer_id: &str,
    sdp: &str,
) -> String {
    let mut m = String::with_capacity(sdp.len() + 200);
    m.push_str("{\"action\":\"announce\",\"info_hash\":");
    push_json_str(&mut m, info_hash);
    m.push_str(",\"peer_id\":");
    push_json_str(&mut m, peer_id);
    m.push_str(",\"to_peer_id\":");
    push_json_str(&mut m, to_peer_id);
    m.push_str(",\"answer\":{\"type\":\"answer\",\"sdp\":");
    push_json_str(&mut m, sdp);
    m.push_str("},\"offer_id\":");
    push_json_str(&mut m, offer_id);
    m.push('}');
    m
}

/// The fields of a tracker message that the load generator looks at; everything else is ignored.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    /// `announce` or `scrape`.
    #[serde(borrow)]
    pub action: Option<Cow<'a, str>>,
    /// Swarm of a relayed offer/answer.
    #[serde(borrow)]
    pub info_hash: Option<Cow<'a, str>>,
    /// Sender of a relayed offer/answer.
    #[serde(borrow)]
    pub peer_id: Option<Cow<'a, str>>,
    /// Id of a relayed offer/answer.
    #[serde(borrow)]
    pub offer_id: Option<Cow<'a, str>>,
    /// Present on a relayed offer.
    pub offer: Option<IgnoredAny>,
    /// Present on a relayed answer.
    #[serde(borrow)]
    pub answer: Option<SdpBody<'a>>,
    /// Present on an announce response.
    pub interval: Option<IgnoredAny>,
    /// Present on an announce response.
    pub complete: Option<IgnoredAny>,
    /// An error from the tracker.
    #[serde(rename = "failure reason", borrow)]
    pub failure: Option<Cow<'a, str>>,
    /// A warning from the tracker.
    #[serde(rename = "warning message")]
    pub warning: Option<IgnoredAny>,
}

/// `{type, sdp}` of an offer or answer.
#[derive(Debug, Deserialize)]
pub struct SdpBody<'a> {
    /// The SDP text.
    #[serde(borrow)]
    pub sdp: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_has_requested_size_and_session_id() {
        let sdp = fake_sdp(false, 123_456, 600);
        assert!(sdp.len() >= 600 && sdp.len() < 700, "len {}", sdp.len());
        assert_eq!(sdp_session_micros(&sdp), Some(123_456));
    }

    #[test]
    fn offer_id_round_trips_time() {
        let id = offer_id(987_654_321, 70_000);
        assert_eq!(id.len(), 20);
        assert_eq!(offer_id_micros(&id), Some(987_654_321));
    }

    #[test]
    fn announce_is_valid_json_with_offers() {
        let sdp = fake_sdp(false, 1, 600);
        let id = offer_id(5, 1);
        let text = announce(
            "ssbench0000000000001",
            "-LG0001-000000000001",
            Some("started"),
            100,
            &[Offer { id: &id, sdp: &sdp }],
        );
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(v["offers"][0]["offer"]["sdp"].as_str(), Some(sdp.as_str()));
        assert_eq!(v["offers"][0]["offer_id"].as_str(), Some(id.as_str()));
        assert_eq!(v["event"], "started");
        assert_eq!(v["numwant"], 1);
    }

    #[test]
    fn answer_parses_back_as_incoming() {
        let sdp = fake_sdp(true, 77, 600);
        let text = answer("ih", "me", "you", "oid", &sdp);
        let m: Incoming<'_> = serde_json::from_str(&text).expect("parse");
        let body = m.answer.expect("answer");
        assert_eq!(
            sdp_session_micros(body.sdp.as_deref().unwrap_or("")),
            Some(77)
        );
        assert_eq!(m.offer_id.as_deref(), Some("oid"));
    }

    #[test]
    fn json_strings_escape_binary_ids() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"\u{1}\u{ff}");
        let back: String = serde_json::from_str(&out).expect("parse");
        assert_eq!(back, "a\"\u{1}\u{ff}");
    }
}
