//! WebTorrent tracker messages over WebSocket (JSON text frames), as spoken by the npm
//! `bittorrent-tracker` client and p2p-media-loader.
//!
//! Ids (`info_hash`, `peer_id`, `to_peer_id`, `offer_id`) are 20-character *binary strings*: each
//! UTF-16 unit 0..=255 is one byte. Offer and answer SDP objects are kept as raw JSON and forwarded
//! byte for byte, so relaying never re-serializes them. Unknown fields are ignored.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AnnounceEvent, ErrorKind, Id20};

mod fields;

use fields::{ActionField, EventField, OffersField};

/// The `action` of a message, where it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `"announce"` (announces, offers and answers).
    Announce,
    /// `"scrape"`.
    Scrape,
}

impl Action {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Announce => "announce",
            Action::Scrape => "scrape",
        }
    }
}

/// A parsed client message.
#[derive(Debug)]
pub enum WsRequest<'a> {
    /// An announce, possibly carrying offers or an answer.
    Announce(WsAnnounce<'a>),
    /// A scrape.
    Scrape(WsScrape),
}

/// An announce message.
#[derive(Debug)]
pub struct WsAnnounce<'a> {
    /// The swarm.
    pub info_hash: Id20,
    /// `info_hash` as the JSON string literal the client wrote (relays forward it as is).
    pub info_hash_json: &'a str,
    /// The sender's id in this swarm.
    pub peer_id: Id20,
    /// `peer_id` as the JSON string literal the client wrote.
    pub peer_id_json: &'a str,
    /// The event (missing, `empty` and `update` are [`AnnounceEvent::Update`]).
    pub event: AnnounceEvent,
    /// `left == 0`: the peer has everything.
    pub seeder: bool,
    /// Offers to relay to other peers of the swarm, in order (at most [`MAX_PARSED_OFFERS`]).
    pub offers: Vec<WsOffer<'a>>,
    /// Offers in the message beyond [`MAX_PARSED_OFFERS`], not parsed.
    pub offers_unparsed: usize,
    /// An answer to relay back to the peer that made an offer.
    pub answer: Option<WsAnswer<'a>>,
}

/// One offer of an announce.
#[derive(Debug)]
pub struct WsOffer<'a> {
    /// The offer id chosen by the sender.
    pub offer_id: Id20,
    /// `offer_id` as the JSON string literal the client wrote.
    pub offer_id_json: &'a str,
    /// The SDP object, raw JSON.
    pub offer: &'a RawValue,
}

/// An answer to an offer.
#[derive(Debug)]
pub struct WsAnswer<'a> {
    /// The peer that sent the offer.
    pub to_peer_id: Id20,
    /// The offer being answered.
    pub offer_id: Id20,
    /// `offer_id` as the JSON string literal the client wrote.
    pub offer_id_json: &'a str,
    /// The SDP object, raw JSON.
    pub answer: &'a RawValue,
}

/// Which swarms a scrape asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum WsScrape {
    /// No `info_hash`: every swarm (only if full scrape is allowed).
    All,
    /// The listed swarms (a string is a list of one).
    Some(Vec<Id20>),
}

/// A message that could not be accepted, with what is known for the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsParseError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The action, if it was read.
    pub action: Option<Action>,
    /// The info_hash, if it was read.
    pub info_hash: Option<Id20>,
}

/// The fields of a message that are read, each decoded in the message's one pass; every other
/// field is skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    action: Option<ActionField>,
    #[serde(borrow, default)]
    info_hash: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer_id: Option<&'a RawValue>,
    #[serde(default)]
    event: Option<EventField>,
    #[serde(borrow, default)]
    left: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offers: Option<OffersField<'a>>,
    #[serde(borrow, default)]
    answer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to_peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer_id: Option<&'a RawValue>,
}

/// Most offers read from one message; the rest are ignored (the relay uses at most `max_offers`).
pub const MAX_PARSED_OFFERS: usize = 64;

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Decodes a binary-string id from the JSON string literal of a message (as serde_json checked
/// it: quoted, escapes well formed, valid UTF-8); `None` unless it is 20 characters of
/// U+0000..=U+00FF.
pub fn id_from_json(literal: &str) -> Option<Id20> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = [0u8; 20];
    let mut n = 0;
    let mut i = 0;
    while i < inner.len() {
        let (byte, used) = match inner[i] {
            b'\\' => decode_escape(&inner[i..])?,
            ascii @ 0..=0x7f => (ascii, 1),
            // U+0080..=U+00FF in UTF-8: a lead byte 0xC2 or 0xC3 and a continuation byte.
            lead @ (0xc2 | 0xc3) => (((lead & 0x1f) << 6) | (inner.get(i + 1)? & 0x3f), 2),
            _ => return None,
        };
        *out.get_mut(n)? = byte;
        n += 1;
        i += used;
    }
    (n == 20).then_some(Id20(out))
}

/// The escape at the start of `text` (a backslash and `"`, `n`, `u00XX`, ...): its byte and its
/// length; `None` for a character above U+00FF.
fn decode_escape(text: &[u8]) -> Option<(u8, usize)> {
    let byte = match *text.get(1)? {
        escape @ (b'"' | b'\\' | b'/') => escape,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            return match text.get(2..6)? {
                [b'0', b'0', hi, lo] => Some(((hex_digit(*hi)? << 4) | hex_digit(*lo)?, 6)),
                _ => None,
            }
        }
        _ => return None,
    };
    Some((byte, 2))
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// An id field: its value and its literal (`""` when absent).
fn id_field(raw: Option<&RawValue>) -> (Option<Id20>, &str) {
    let json = raw.map_or("", RawValue::get);
    (id_from_json(json), json)
}

/// `left == 0` (a number, or a string holding one): the peer is a seeder.
fn left_is_zero(raw: &RawValue) -> bool {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<std::borrow::Cow<'_, str>>(text)
            .is_ok_and(|s| s.trim().parse::<f64>() == Ok(0.0))
    } else {
        text.parse::<f64>() == Ok(0.0)
    }
}

/// Parses one text message.
pub fn parse(text: &str) -> Result<WsRequest<'_>, WsParseError> {
    let fail = |kind, action, info_hash| WsParseError {
        kind,
        action,
        info_hash,
    };
    // Structs also deserialize from JSON arrays; only an object is a message.
    if !text.trim_start().starts_with('{') {
        return Err(fail(ErrorKind::MalformedJson, None, None));
    }
    let env: Envelope<'_> =
        serde_json::from_str(text).map_err(|_| fail(ErrorKind::MalformedJson, None, None))?;
    match env.action.and_then(|a| a.0) {
        Some(Action::Announce) => parse_announce(env),
        Some(Action::Scrape) => parse_scrape(env),
        None => Err(fail(ErrorKind::UnknownAction, None, None)),
    }
}

fn parse_announce(env: Envelope<'_>) -> Result<WsRequest<'_>, WsParseError> {
    let action = Some(Action::Announce);
    let (Some(info_hash), info_hash_json) = id_field(env.info_hash) else {
        return Err(WsParseError {
            kind: ErrorKind::InvalidInfoHash,
            action,
            info_hash: None,
        });
    };
    let fail = |kind| WsParseError {
        kind,
        action,
        info_hash: Some(info_hash),
    };
    let (peer_id, peer_id_json) = id_field(env.peer_id);
    let peer_id = peer_id.ok_or(fail(ErrorKind::InvalidPeerId))?;
    let event = match env.event {
        None => AnnounceEvent::Update,
        Some(EventField(event)) => event.ok_or(fail(ErrorKind::InvalidEvent))?,
    };
    let seeder = env.left.is_some_and(left_is_zero);
    let answer = match env.answer.filter(|raw| !is_null(raw)) {
        None => None,
        Some(answer) => {
            let to_peer_id = id_field(env.to_peer_id)
                .0
                .ok_or(fail(ErrorKind::InvalidToPeerId))?;
            let (offer_id, offer_id_json) = id_field(env.offer_id);
            let offer_id = offer_id.ok_or(fail(ErrorKind::InvalidOfferId))?;
            Some(WsAnswer {
                to_peer_id,
                offer_id,
                offer_id_json,
                answer,
            })
        }
    };
    let (offers, offers_unparsed) = match env.offers {
        None => (Vec::new(), 0),
        Some(field) => (field.offers.map_err(fail)?, field.unparsed),
    };
    Ok(WsRequest::Announce(WsAnnounce {
        info_hash,
        info_hash_json,
        peer_id,
        peer_id_json,
        event,
        seeder,
        offers,
        offers_unparsed,
        answer,
    }))
}

fn parse_scrape(env: Envelope<'_>) -> Result<WsRequest<'_>, WsParseError> {
    let invalid = WsParseError {
        kind: ErrorKind::InvalidInfoHash,
        action: Some(Action::Scrape),
        info_hash: None,
    };
    let Some(raw) = env.info_hash else {
        return Ok(WsRequest::Scrape(WsScrape::All));
    };
    if !raw.get().starts_with('[') {
        let id = id_from_json(raw.get()).ok_or(invalid)?;
        return Ok(WsRequest::Scrape(WsScrape::Some(vec![id])));
    }
    let list: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| invalid)?;
    let ids = list
        .iter()
        .map(|raw| id_from_json(raw.get()).ok_or(invalid))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WsRequest::Scrape(WsScrape::Some(ids)))
}

/// Appends `bytes` as a JSON string literal in binary-string form.
pub fn push_binary_string(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Encoded 20 bytes at a time into a buffer that fits the longest encoding (6 bytes each).
    for chunk in bytes.chunks(20) {
        let mut buf = [0u8; 120];
        let mut n = 0;
        for &b in chunk {
            match b {
                b'"' | b'\\' => {
                    buf[n..n + 2].copy_from_slice(&[b'\\', b]);
                    n += 2;
                }
                0..=0x1f => {
                    let escape = [
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ];
                    buf[n..n + 6].copy_from_slice(&escape);
                    n += 6;
                }
                0x20..=0x7f => {
                    buf[n] = b;
                    n += 1;
                }
                // U+0080..=U+00FF in UTF-8.
                _ => {
                    buf[n..n + 2].copy_from_slice(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]);
                    n += 2;
                }
            }
        }
        // Always valid UTF-8: ASCII and complete two-byte sequences only.
        if let Ok(text) = std::str::from_utf8(&buf[..n]) {
            out.push_str(text);
        }
    }
    out.push('"');
}

/// The length of [`push_binary_string`]'s output for `bytes`, quotes included.
pub fn binary_string_len(bytes: &[u8]) -> usize {
    2 + bytes
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | 0x80.. => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

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
/// sender wrote (see [`WsAnnounce::info_hash_json`]); the sender's and the swarm's, the same in
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

/// `id` as a JSON string literal in binary-string form.
pub fn id_json(id: &Id20) -> String {
    let mut out = String::with_capacity(binary_string_len(&id.0));
    push_binary_string(&mut out, &id.0);
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn bin(b: u8) -> String {
        Id20([b; 20]).to_binary_string()
    }

    #[test]
    fn announce_with_offers_parses() {
        let msg = json!({
            "action": "announce", "info_hash": bin(0xff), "peer_id": bin(1),
            "numwant": 2, "uploaded": 0, "downloaded": 0, "left": 0, "event": "started",
            "unknown_field": [1, 2],
            "offers": [{"offer": {"type": "offer", "sdp": "v=0"}, "offer_id": bin(7)}]
        })
        .to_string();
        let WsRequest::Announce(a) = parse(&msg).unwrap() else {
            panic!("not an announce")
        };
        assert_eq!(a.info_hash, Id20([0xff; 20]));
        assert_eq!(a.peer_id, Id20([1; 20]));
        assert_eq!(a.event, AnnounceEvent::Started);
        assert!(a.seeder);
        assert_eq!(a.offers.len(), 1);
        assert_eq!(a.offers[0].offer_id, Id20([7; 20]));
        let offer: Value = serde_json::from_str(a.offers[0].offer.get()).unwrap();
        assert_eq!(offer["sdp"], "v=0");
    }

    #[test]
    fn leecher_when_left_missing_or_positive() {
        for left in [json!(null), json!(100), json!("5")] {
            let msg =
                json!({"action": "announce", "info_hash": bin(2), "peer_id": bin(3), "left": left})
                    .to_string();
            let WsRequest::Announce(a) = parse(&msg).unwrap() else {
                panic!()
            };
            assert!(!a.seeder, "{left}");
        }
    }

    #[test]
    fn every_event_is_accepted() {
        for event in [
            "started",
            "stopped",
            "completed",
            "update",
            "paused",
            "empty",
        ] {
            let msg = json!({"action": "announce", "info_hash": bin(2), "peer_id": bin(3), "event": event});
            assert!(parse(&msg.to_string()).is_ok(), "{event}");
        }
        let msg =
            json!({"action": "announce", "info_hash": bin(2), "peer_id": bin(3), "event": "nope"});
        assert_eq!(
            parse(&msg.to_string()).unwrap_err().kind,
            ErrorKind::InvalidEvent
        );
    }

    #[test]
    fn bad_inputs_give_their_error() {
        let long = "a".repeat(21);
        let high = "\u{0100}".repeat(20);
        let cases = [
            ("not json".to_owned(), ErrorKind::MalformedJson),
            ("[1,2]".to_owned(), ErrorKind::MalformedJson),
            (json!({"action": "nope"}).to_string(), ErrorKind::UnknownAction),
            (json!({"info_hash": bin(1)}).to_string(), ErrorKind::UnknownAction),
            (json!({"action": "announce", "info_hash": long, "peer_id": bin(1)}).to_string(), ErrorKind::InvalidInfoHash),
            (json!({"action": "announce", "info_hash": high, "peer_id": bin(1)}).to_string(), ErrorKind::InvalidInfoHash),
            (json!({"action": "announce", "info_hash": 5, "peer_id": bin(1)}).to_string(), ErrorKind::InvalidInfoHash),
            (json!({"action": "announce", "info_hash": bin(1), "peer_id": "short"}).to_string(), ErrorKind::InvalidPeerId),
            (json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "answer": {"sdp": "x"}}).to_string(), ErrorKind::InvalidToPeerId),
            (json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "answer": {"sdp": "x"}, "to_peer_id": bin(2)}).to_string(), ErrorKind::InvalidOfferId),
            (json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "offers": 3}).to_string(), ErrorKind::InvalidOffers),
            (json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "offers": [{"offer_id": bin(1)}]}).to_string(), ErrorKind::InvalidOffers),
            (json!({"action": "scrape", "info_hash": [bin(1), "x"]}).to_string(), ErrorKind::InvalidInfoHash),
        ];
        for (text, kind) in cases {
            assert_eq!(parse(&text).unwrap_err().kind, kind, "{text}");
        }
    }

    #[test]
    fn error_keeps_known_info_hash() {
        let msg = json!({"action": "announce", "info_hash": bin(9), "peer_id": "x"}).to_string();
        let err = parse(&msg).unwrap_err();
        assert_eq!(err.info_hash, Some(Id20([9; 20])));
        let v: Value = serde_json::from_str(&encode_failure(
            err.kind.reason(),
            err.action,
            err.info_hash.as_ref(),
        ))
        .unwrap();
        assert_eq!(v["failure reason"], "invalid peer_id");
        assert_eq!(v["action"], "announce");
        assert_eq!(v["info_hash"], bin(9));
    }

    #[test]
    fn scrape_forms() {
        let one = json!({"action": "scrape", "info_hash": bin(1)}).to_string();
        assert!(
            matches!(parse(&one).unwrap(), WsRequest::Scrape(WsScrape::Some(v)) if v == vec![Id20([1; 20])])
        );
        let many = json!({"action": "scrape", "info_hash": [bin(1), bin(2)]}).to_string();
        assert!(
            matches!(parse(&many).unwrap(), WsRequest::Scrape(WsScrape::Some(v)) if v.len() == 2)
        );
        let all = json!({"action": "scrape"}).to_string();
        assert!(matches!(
            parse(&all).unwrap(),
            WsRequest::Scrape(WsScrape::All)
        ));
    }

    proptest::proptest! {
        /// Every id encodes to a JSON string of the predicted length that decodes back to it.
        #[test]
        fn binary_string_round_trip(bytes in proptest::array::uniform20(proptest::num::u8::ANY)) {
            let mut out = String::new();
            push_binary_string(&mut out, &bytes);
            proptest::prop_assert_eq!(out.len(), binary_string_len(&bytes));
            let decoded: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(Id20::from_binary_str(&decoded), Some(Id20(bytes)));
        }
    }

    proptest::proptest! {
        /// However a client escapes an id's characters, the literal decodes as serde_json reads
        /// it, and relays carry that literal so receivers read the same id.
        #[test]
        fn id_literals_decode_as_json_does(
            chars in proptest::collection::vec(
                (proptest::prop_oneof![40 => 0u32..0x100, 1 => 0x100u32..0x180], 0u8..3),
                18..22,
            )
        ) {
            let mut literal = String::from("\"");
            for &(c, style) in &chars {
                let c = char::from_u32(c).unwrap_or('a');
                match (style, c) {
                    (0, '"' | '\\' | '\0'..='\u{1f}') | (1, _) => {
                        literal.push_str(&format!("\\u{:04X}", u32::from(c)))
                    }
                    (2, '\n') => literal.push_str("\\n"),
                    (2, '/') => literal.push_str("\\/"),
                    (_, '"' | '\\' | '\0'..='\u{1f}') => {
                        literal.push_str(&format!("\\u{:04x}", u32::from(c)))
                    }
                    _ => literal.push(c),
                }
            }
            literal.push('"');
            let decoded: String = serde_json::from_str(&literal).unwrap();
            let expected = Id20::from_binary_str(&decoded);
            proptest::prop_assert_eq!(id_from_json(&literal), expected);
            if let Some(id) = expected {
                let sdp = RawValue::from_string("{}".to_owned()).unwrap();
                let relay: Value = serde_json::from_str(
                    &OfferRelays::new(&literal, &literal).encode(&literal, &sdp),
                )
                .unwrap();
                for field in ["offer_id", "peer_id", "info_hash"] {
                    proptest::prop_assert_eq!(relay[field].as_str().and_then(Id20::from_binary_str), Some(id));
                }
            }
        }
    }

    #[test]
    fn lenient_fields_give_their_own_error() {
        let many: Vec<Value> = (0..70)
            .map(|i| json!({"offer_id": bin(i), "offer": {"type": "offer", "sdp": "v=0"}}))
            .collect();
        let msg =
            json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "offers": many})
                .to_string();
        let WsRequest::Announce(a) = parse(&msg).unwrap() else {
            panic!("not an announce")
        };
        assert_eq!((a.offers.len(), a.offers_unparsed), (MAX_PARSED_OFFERS, 6));
        assert_eq!(a.offers[63].offer_id, Id20([63; 20]));
        let base = || json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2)});
        let with = |key: &str, value: Value| {
            let mut msg = base();
            msg[key] = value;
            parse(&msg.to_string()).map(|_| ()).map_err(|e| e.kind)
        };
        let offer = |id: Value| json!({"offer_id": id, "offer": {"sdp": "v=0"}});
        let cases = [
            ("offers", json!("x"), Err(ErrorKind::InvalidOffers)),
            ("offers", json!({"a": [1]}), Err(ErrorKind::InvalidOffers)),
            (
                "offers",
                json!([offer(json!(bin(3))), 4]),
                Err(ErrorKind::InvalidOffers),
            ),
            (
                "offers",
                json!([[bin(3), {"sdp": "v=0"}]]),
                Err(ErrorKind::InvalidOffers),
            ),
            (
                "offers",
                json!([{"offer_id": bin(3), "offer": null}]),
                Err(ErrorKind::InvalidOffers),
            ),
            (
                "offers",
                json!([offer(json!(null))]),
                Err(ErrorKind::InvalidOfferId),
            ),
            (
                "offers",
                json!([offer(json!([1, 2]))]),
                Err(ErrorKind::InvalidOfferId),
            ),
            // The first bad offer decides the error.
            (
                "offers",
                json!([offer(json!(7)), 4]),
                Err(ErrorKind::InvalidOfferId),
            ),
            ("offers", json!(null), Ok(())),
            (
                "action",
                json!({"announce": 1}),
                Err(ErrorKind::UnknownAction),
            ),
            (
                "info_hash",
                json!([bin(1)]),
                Err(ErrorKind::InvalidInfoHash),
            ),
            (
                "peer_id",
                json!({"x": bin(1)}),
                Err(ErrorKind::InvalidPeerId),
            ),
            ("event", json!(["started"]), Err(ErrorKind::InvalidEvent)),
            ("event", json!(null), Ok(())),
            ("left", json!("abc"), Ok(())),
        ];
        for (key, value, expected) in cases {
            assert_eq!(with(key, value.clone()), expected, "{key}: {value}");
        }
        let scrape = json!({"action": "scrape", "info_hash": [bin(1), null]}).to_string();
        assert_eq!(parse(&scrape).unwrap_err().kind, ErrorKind::InvalidInfoHash);
        // Syntax errors anywhere, even inside a skipped value, are malformed JSON.
        let broken = r#"{"action":"announce","numwant":[1,}"#;
        assert_eq!(parse(broken).unwrap_err().kind, ErrorKind::MalformedJson);
    }

    #[test]
    fn encoded_messages_are_json_with_binary_ids() {
        let ids: Vec<Id20> = (0..3u8).map(|i| Id20([i * 100 + 5; 20])).collect();
        let mut all = [0u8; 20];
        for (i, b) in all.iter_mut().enumerate() {
            *b = [0, b'"', b'\\', 0x1f, 0x7f, 0x80, 0xff][i % 7];
        }
        let tricky = Id20(all);
        let sdp = RawValue::from_string(r#"{"type":"offer","sdp":"v=0\r\n"}"#.to_owned()).unwrap();
        let v: Value =
            serde_json::from_str(&encode_offer(&tricky, &ids[1], &ids[2], &sdp)).unwrap();
        assert_eq!(v["action"], "announce");
        assert_eq!(v["info_hash"], tricky.to_binary_string());
        assert_eq!(v["peer_id"], ids[1].to_binary_string());
        assert_eq!(v["offer_id"], ids[2].to_binary_string());
        assert_eq!(v["offer"]["sdp"], "v=0\r\n");
        let v: Value =
            serde_json::from_str(&encode_answer(&ids[0], &ids[1], &ids[2], &sdp)).unwrap();
        assert_eq!(v["answer"]["type"], "offer");
        let v: Value =
            serde_json::from_str(&encode_announce_response(&tricky, 3, 4, 120, None)).unwrap();
        assert!(v.get("warning message").is_none(), "{v}");
        let w: Value = serde_json::from_str(&encode_announce_response(
            &tricky,
            3,
            4,
            120,
            Some("12 \"offers\""),
        ))
        .unwrap();
        assert_eq!(w["warning message"], "12 \"offers\"");
        assert_eq!(
            (
                v["complete"].as_u64(),
                v["incomplete"].as_u64(),
                v["interval"].as_u64()
            ),
            (Some(3), Some(4), Some(120))
        );
        let files = [(
            tricky,
            ScrapeCounts {
                complete: 1,
                incomplete: 2,
                downloaded: 3,
            },
        )];
        let v: Value = serde_json::from_str(&encode_scrape(&files)).unwrap();
        assert_eq!(v["files"][tricky.to_binary_string()]["downloaded"], 3);
    }
}
