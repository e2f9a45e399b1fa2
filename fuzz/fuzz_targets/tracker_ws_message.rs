//! Fuzzes the tracker's WebSocket message parser (`segswarm_tracker::protocol::ws::parse`) with
//! the input as one text frame. Nothing may panic, and what the tracker sends because of a message
//! must carry the parsed fields faithfully:
//!
//! - a refused message: the failure reply (`encode_failure`) is a JSON object with the error's
//!   reason, action and info_hash;
//! - an announce: re-encoded the way a client sends it, it parses to the same fields; each offer
//!   relayed with `encode_offer` parses again as an announce from the offering peer in the same
//!   swarm, and a client reads from it the offer byte for byte and the same `offer_id`, `peer_id`
//!   and `info_hash`; a relayed answer (`encode_answer`) likewise gives a client its fields, and
//!   the tracker's own parser refuses it with `InvalidToPeerId` (it has no `to_peer_id`);
//! - a scrape: re-encoded, it parses to the same swarms, and the scrape reply lists each of them.
//!
//! Input layout: the whole input is the text frame (invalid UTF-8 replaced, since the WebSocket
//! layer only hands over valid UTF-8 text).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use segswarm_tracker::protocol::ws::{
    encode_announce_response, encode_answer, encode_failure, encode_offer, encode_scrape, parse,
    push_binary_string, Action, ScrapeCounts, WsAnnounce, WsParseError, WsRequest, WsScrape,
};
use segswarm_tracker::protocol::{AnnounceEvent, ErrorKind, Id20};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON string field read as a binary-string id, as a client reads the tracker's messages.
fn id_field(v: &Value, name: &str) -> Option<Id20> {
    v.get(name)?.as_str().and_then(Id20::from_binary_str)
}

fn event_name(event: AnnounceEvent) -> &'static str {
    match event {
        AnnounceEvent::Started => "started",
        AnnounceEvent::Stopped => "stopped",
        AnnounceEvent::Completed => "completed",
        AnnounceEvent::Update => "update",
        AnnounceEvent::Paused => "paused",
    }
}

fn push_id(out: &mut String, name: &str, id: &Id20) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    push_binary_string(out, &id.0);
}

/// The announce as a client would send it (offers as objects, ids as binary strings).
fn client_announce(a: &WsAnnounce<'_>) -> String {
    let mut out = String::from("{\"action\":\"announce\"");
    push_id(&mut out, "info_hash", &a.info_hash);
    push_id(&mut out, "peer_id", &a.peer_id);
    out.push_str(",\"event\":\"");
    out.push_str(event_name(a.event));
    out.push_str(if a.seeder {
        "\",\"left\":0"
    } else {
        "\",\"left\":1"
    });
    out.push_str(",\"offers\":[");
    for (i, offer) in a.offers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"offer\":");
        out.push_str(offer.offer.get());
        push_id(&mut out, "offer_id", &offer.offer_id);
        out.push('}');
    }
    out.push(']');
    if let Some(answer) = &a.answer {
        out.push_str(",\"answer\":");
        out.push_str(answer.answer.get());
        push_id(&mut out, "to_peer_id", &answer.to_peer_id);
        push_id(&mut out, "offer_id", &answer.offer_id);
    }
    out.push('}');
    out
}

/// The top-level fields of a relayed message, raw: a client gets the SDP byte for byte, however
/// deeply nested (a `serde_json::Value` would stop at 128 levels; a browser's `JSON.parse` does
/// not).
fn fields(text: &str) -> BTreeMap<String, &RawValue> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("relayed message {text}: {e}"))
}

/// A raw JSON string read as a binary-string id.
fn raw_id(raw: &RawValue) -> Option<Id20> {
    serde_json::from_str::<String>(raw.get())
        .ok()
        .and_then(|s| Id20::from_binary_str(&s))
}

fn check_announce(a: &WsAnnounce<'_>) {
    // Re-encoded as a client sends it: the same fields.
    let text = client_announce(a);
    let Ok(WsRequest::Announce(b)) = parse(&text) else {
        panic!("re-encoded announce refused: {text}");
    };
    assert_eq!(
        (b.info_hash, b.peer_id, b.event, b.seeder),
        (a.info_hash, a.peer_id, a.event, a.seeder)
    );
    assert_eq!(b.offers.len(), a.offers.len());
    assert_eq!(b.offers_unparsed, 0);
    for (x, y) in a.offers.iter().zip(&b.offers) {
        assert_eq!((x.offer_id, x.offer.get()), (y.offer_id, y.offer.get()));
    }
    match (&a.answer, &b.answer) {
        (None, None) => {}
        (Some(x), Some(y)) => assert_eq!(
            (x.to_peer_id, x.offer_id, x.answer.get()),
            (y.to_peer_id, y.offer_id, y.answer.get())
        ),
        _ => panic!("answer lost or gained: {text}"),
    }

    // Each offer as the tracker relays it to another peer of the swarm.
    for offer in &a.offers {
        let relayed = encode_offer(&a.info_hash, &a.peer_id, &offer.offer_id, offer.offer);
        let Ok(WsRequest::Announce(r)) = parse(&relayed) else {
            panic!("relayed offer does not parse as an announce: {relayed}");
        };
        assert_eq!((r.info_hash, r.peer_id), (a.info_hash, a.peer_id));
        assert_eq!(r.event, AnnounceEvent::Update);
        assert!(!r.seeder && r.offers.is_empty() && r.answer.is_none());
        let f = fields(&relayed);
        assert_eq!(f["action"].get(), "\"announce\"");
        assert_eq!(raw_id(f["info_hash"]), Some(a.info_hash));
        assert_eq!(raw_id(f["peer_id"]), Some(a.peer_id));
        assert_eq!(raw_id(f["offer_id"]), Some(offer.offer_id));
        assert_eq!(f["offer"].get(), offer.offer.get());
    }

    // The answer as the tracker relays it to the offering peer.
    if let Some(answer) = &a.answer {
        let relayed = encode_answer(&a.info_hash, &a.peer_id, &answer.offer_id, answer.answer);
        assert_eq!(
            parse(&relayed).unwrap_err(),
            WsParseError {
                kind: ErrorKind::InvalidToPeerId,
                action: Some(Action::Announce),
                info_hash: Some(a.info_hash),
            }
        );
        let f = fields(&relayed);
        assert_eq!(f["action"].get(), "\"announce\"");
        assert_eq!(raw_id(f["info_hash"]), Some(a.info_hash));
        assert_eq!(raw_id(f["peer_id"]), Some(a.peer_id));
        assert_eq!(raw_id(f["offer_id"]), Some(answer.offer_id));
        assert_eq!(f["answer"].get(), answer.answer.get());
    }

    // The reply to the announcer, with the warning the tracker adds for unparsed offers.
    let warning = format!("{} offers ignored \"\\", a.offers_unparsed);
    let reply = encode_announce_response(&a.info_hash, 1, 2, 120, Some(&warning));
    let v: Value = serde_json::from_str(&reply).expect("announce reply is JSON");
    assert_eq!(id_field(&v, "info_hash"), Some(a.info_hash));
    assert_eq!(v["warning message"], warning.as_str());
}

fn check_scrape(scrape: &WsScrape) {
    let mut text = String::from("{\"action\":\"scrape\"");
    if let WsScrape::Some(ids) = scrape {
        text.push_str(",\"info_hash\":[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            push_binary_string(&mut text, &id.0);
        }
        text.push(']');
    }
    text.push('}');
    match parse(&text) {
        Ok(WsRequest::Scrape(again)) => assert_eq!(&again, scrape),
        other => panic!("re-encoded scrape {text} parsed as {other:?}"),
    }
    if let WsScrape::Some(ids) = scrape {
        let files: Vec<(Id20, ScrapeCounts)> = ids
            .iter()
            .map(|id| (*id, ScrapeCounts::default()))
            .collect();
        let v: Value = serde_json::from_str(&encode_scrape(&files)).expect("scrape reply is JSON");
        let listed = v["files"].as_object().expect("files is an object");
        let mut got: Vec<Id20> = listed
            .keys()
            .map(|k| Id20::from_binary_str(k).expect("file key is a binary id"))
            .collect();
        let mut want = ids.clone();
        got.sort_unstable();
        want.sort_unstable();
        want.dedup();
        assert_eq!(got, want);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text) {
        Ok(WsRequest::Announce(a)) => check_announce(&a),
        Ok(WsRequest::Scrape(s)) => check_scrape(&s),
        Err(e) => {
            let reply = encode_failure(e.kind.reason(), e.action, e.info_hash.as_ref());
            let v: Value = serde_json::from_str(&reply).expect("failure reply is JSON");
            assert_eq!(v["failure reason"], e.kind.reason());
            assert_eq!(
                v.get("action").and_then(Value::as_str),
                e.action.map(Action::as_str)
            );
            assert_eq!(id_field(&v, "info_hash"), e.info_hash);
        }
    }
});
