//! WebTorrent tracker messages over WebSocket (JSON text frames), as spoken by the npm
//! `bittorrent-tracker` client and p2p-media-loader.
//!
//! Ids (`info_hash`, `peer_id`, `to_peer_id`, `offer_id`) are 20-character *binary strings*: each
//! UTF-16 unit 0..=255 is one byte. Offer and answer SDP objects are kept as raw JSON and forwarded
//! byte for byte, so relaying never re-serializes them. Unknown fields are ignored.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AnnounceEvent, ErrorKind, Id20};

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
    /// The sender's id in this swarm.
    pub peer_id: Id20,
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

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    action: Option<&'a RawValue>,
    #[serde(borrow, default)]
    info_hash: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    left: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    answer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to_peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawOffer<'a> {
    #[serde(borrow, default)]
    offer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer_id: Option<&'a RawValue>,
}

/// Most offers read from one message; the rest are ignored (the relay uses at most `max_offers`).
pub const MAX_PARSED_OFFERS: usize = 64;

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Reads a raw JSON value as a string (borrowed when it has no escapes).
fn raw_str(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    serde_json::from_str::<std::borrow::Cow<'_, str>>(raw.get()).ok()
}

fn raw_id(raw: Option<&RawValue>) -> Option<Id20> {
    raw.and_then(raw_str)
        .and_then(|s| Id20::from_binary_str(&s))
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
    let action = env.action.and_then(raw_str);
    match action.as_deref() {
        Some("announce") => parse_announce(env),
        Some("scrape") => parse_scrape(env),
        _ => Err(fail(ErrorKind::UnknownAction, None, None)),
    }
}

fn parse_announce(env: Envelope<'_>) -> Result<WsRequest<'_>, WsParseError> {
    let action = Some(Action::Announce);
    let info_hash = raw_id(env.info_hash).ok_or(WsParseError {
        kind: ErrorKind::InvalidInfoHash,
        action,
        info_hash: None,
    })?;
    let fail = |kind| WsParseError {
        kind,
        action,
        info_hash: Some(info_hash),
    };
    let peer_id = raw_id(env.peer_id).ok_or(fail(ErrorKind::InvalidPeerId))?;
    let event = match env.event.filter(|raw| !is_null(raw)) {
        None => AnnounceEvent::Update,
        Some(raw) => raw_str(raw)
            .and_then(|s| AnnounceEvent::parse(&s))
            .ok_or(fail(ErrorKind::InvalidEvent))?,
    };
    let seeder = env.left.is_some_and(|raw| {
        let text = raw.get();
        match raw_str(raw) {
            Some(s) => s.trim().parse::<f64>() == Ok(0.0),
            None => text.parse::<f64>() == Ok(0.0),
        }
    });
    let answer = match env.answer.filter(|raw| !is_null(raw)) {
        None => None,
        Some(answer) => {
            let to_peer_id = raw_id(env.to_peer_id).ok_or(fail(ErrorKind::InvalidToPeerId))?;
            let offer_id = raw_id(env.offer_id).ok_or(fail(ErrorKind::InvalidOfferId))?;
            Some(WsAnswer {
                to_peer_id,
                offer_id,
                answer,
            })
        }
    };
    let mut offers = Vec::new();
    let mut offers_unparsed = 0;
    if let Some(raw) = env.offers.filter(|raw| !is_null(raw)) {
        let list: Vec<RawOffer<'_>> =
            serde_json::from_str(raw.get()).map_err(|_| fail(ErrorKind::InvalidOffers))?;
        offers_unparsed = list.len().saturating_sub(MAX_PARSED_OFFERS);
        offers.reserve(list.len().min(MAX_PARSED_OFFERS));
        for item in list.into_iter().take(MAX_PARSED_OFFERS) {
            let offer = item
                .offer
                .filter(|raw| !is_null(raw))
                .ok_or(fail(ErrorKind::InvalidOffers))?;
            let offer_id = raw_id(item.offer_id).ok_or(fail(ErrorKind::InvalidOfferId))?;
            offers.push(WsOffer { offer_id, offer });
        }
    }
    Ok(WsRequest::Announce(WsAnnounce {
        info_hash,
        peer_id,
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
    let Some(raw) = env.info_hash.filter(|raw| !is_null(raw)) else {
        return Ok(WsRequest::Scrape(WsScrape::All));
    };
    if let Some(id) = raw_str(raw) {
        let id = Id20::from_binary_str(&id).ok_or(invalid)?;
        return Ok(WsRequest::Scrape(WsScrape::Some(vec![id])));
    }
    let list: Vec<std::borrow::Cow<'_, str>> =
        serde_json::from_str(raw.get()).map_err(|_| invalid)?;
    let ids = list
        .iter()
        .map(|s| Id20::from_binary_str(s).ok_or(invalid))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WsRequest::Scrape(WsScrape::Some(ids)))
}

/// Appends `bytes` as a JSON string literal in binary-string form.
pub fn push_binary_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            _ => out.push(char::from(b)),
        }
    }
    out.push('"');
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

/// A relayed offer: `{"action":"announce","offer":..,"offer_id":..,"peer_id":<sender>,"info_hash":..}`.
pub fn encode_offer(info_hash: &Id20, from: &Id20, offer_id: &Id20, offer: &RawValue) -> String {
    relay("offer", offer, offer_id, from, info_hash)
}

/// A relayed answer: `{"action":"announce","answer":..,"offer_id":..,"peer_id":<answerer>,"info_hash":..}`.
pub fn encode_answer(info_hash: &Id20, from: &Id20, offer_id: &Id20, answer: &RawValue) -> String {
    relay("answer", answer, offer_id, from, info_hash)
}

fn relay(name: &str, sdp: &RawValue, offer_id: &Id20, from: &Id20, info_hash: &Id20) -> String {
    let mut out = String::with_capacity(sdp.get().len() + 160);
    out.push_str("{\"action\":\"announce\",\"");
    out.push_str(name);
    out.push_str("\":");
    out.push_str(sdp.get());
    push_field_id(&mut out, "offer_id", offer_id);
    push_field_id(&mut out, "peer_id", from);
    push_field_id(&mut out, "info_hash", info_hash);
    out.push('}');
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
