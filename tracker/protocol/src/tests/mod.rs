//! Unit tests: parsing and encoding both ways.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::*;

mod round_trip;

#[test]
fn binary_strings_map_each_char_to_one_byte() {
    let s: String = (0u8..20).map(|b| char::from(b * 12)).collect();
    let id = Id20::from_binary_str(&s).unwrap();
    assert_eq!(id.0[19], 19 * 12);
    assert_eq!(id.to_binary_string(), s);
    let short: String = s.chars().take(19).collect();
    assert!(Id20::from_binary_str(&short).is_none());
    let mut long = s.clone();
    long.push('a');
    assert!(Id20::from_binary_str(&long).is_none());
    let high: String = "\u{0100}".repeat(20);
    assert!(Id20::from_binary_str(&high).is_none());
}

proptest::proptest! {
    /// Any string decodes as an id exactly when it is 20 characters of U+0000..=U+00FF.
    #[test]
    fn binary_strings_decode_exactly_the_byte_range(
        chars in proptest::collection::vec(
            proptest::prop_oneof![0u32..0x100, 0x100u32..0x11_0000], 0..24
        )
    ) {
        let s: String = chars.iter().filter_map(|&c| char::from_u32(c)).collect();
        let expected = (s.chars().count() == 20 && s.chars().all(|c| u32::from(c) <= 0xff))
            .then(|| Id20(std::array::from_fn(|i| s.chars().nth(i).map_or(0, |c| c as u8))));
        proptest::prop_assert_eq!(Id20::from_binary_str(&s), expected);
    }
}

#[test]
fn hex_round_trip() {
    let id = Id20([0xab; 20]);
    assert_eq!(Id20::from_hex(&id.to_hex()), Some(id));
    assert_eq!(Id20::from_hex(&"AB".repeat(20)), Some(id));
    assert!(Id20::from_hex(&"zz".repeat(20)).is_none());
}

#[test]
fn events() {
    assert_eq!(AnnounceEvent::parse("empty"), Some(AnnounceEvent::Update));
    assert_eq!(AnnounceEvent::parse("paused"), Some(AnnounceEvent::Paused));
    assert_eq!(AnnounceEvent::parse("bogus"), None);
}

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
        let msg =
            json!({"action": "announce", "info_hash": bin(2), "peer_id": bin(3), "event": event});
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
    assert!(matches!(parse(&many).unwrap(), WsRequest::Scrape(WsScrape::Some(v)) if v.len() == 2));
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
    let msg = json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "offers": many})
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
    let v: Value = serde_json::from_str(&encode_offer(&tricky, &ids[1], &ids[2], &sdp)).unwrap();
    assert_eq!(v["action"], "announce");
    assert_eq!(v["info_hash"], tricky.to_binary_string());
    assert_eq!(v["peer_id"], ids[1].to_binary_string());
    assert_eq!(v["offer_id"], ids[2].to_binary_string());
    assert_eq!(v["offer"]["sdp"], "v=0\r\n");
    let v: Value = serde_json::from_str(&encode_answer(&ids[0], &ids[1], &ids[2], &sdp)).unwrap();
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
