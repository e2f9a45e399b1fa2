//! Both directions together: what a client writes the tracker reads, what the tracker writes a
//! client reads.

use super::*;

fn id(b: u8) -> Id20 {
    let mut id = Id20([b; 20]);
    // Bytes that need escapes or two UTF-8 bytes.
    id.0[0] = b'"';
    id.0[1] = b'\n';
    id.0[2] = 0xff;
    id
}

#[test]
fn client_requests_are_the_bytes_the_client_always_sent() {
    let offers = [OfferRequest {
        offer_id: Id20([b'o'; 20]),
        sdp: "v=0\r\n",
    }];
    let announce = AnnounceRequest {
        info_hash: Id20([b'i'; 20]),
        peer_id: Id20([b'p'; 20]),
        event: AnnounceEvent::Started,
        numwant: 5,
        uploaded: 1,
        downloaded: 2,
        left: Some(0),
        offers: Some(&offers),
        tracker_id: Some("t"),
    };
    let i = "i".repeat(20);
    let p = "p".repeat(20);
    let o = "o".repeat(20);
    assert_eq!(
        announce.to_json(),
        format!(
            r#"{{"action":"announce","downloaded":2,"event":"started","info_hash":"{i}","left":0,"numwant":5,"offers":[{{"offer":{{"sdp":"v=0\r\n","type":"offer"}},"offer_id":"{o}"}}],"peer_id":"{p}","trackerid":"t","uploaded":1}}"#
        )
    );
    let update = AnnounceRequest {
        event: AnnounceEvent::Update,
        left: None,
        offers: None,
        tracker_id: None,
        ..announce
    };
    assert_eq!(
        update.to_json(),
        format!(
            r#"{{"action":"announce","downloaded":2,"info_hash":"{i}","numwant":5,"peer_id":"{p}","uploaded":1}}"#
        )
    );
    let answer = AnswerRequest {
        info_hash: Id20([b'i'; 20]),
        peer_id: Id20([b'p'; 20]),
        to_peer_id: Id20([b'o'; 20]),
        offer_id: Id20([b'i'; 20]),
        sdp: "x",
        tracker_id: None,
    };
    assert_eq!(
        answer.to_json(),
        format!(
            r#"{{"action":"announce","answer":{{"sdp":"x","type":"answer"}},"info_hash":"{i}","offer_id":"{i}","peer_id":"{p}","to_peer_id":"{o}"}}"#
        )
    );
}

#[test]
fn the_tracker_reads_what_a_client_writes() {
    let offers = [OfferRequest {
        offer_id: id(3),
        sdp: "v=0\r\n",
    }];
    let text = AnnounceRequest {
        info_hash: id(1),
        peer_id: id(2),
        event: AnnounceEvent::Completed,
        numwant: 1,
        uploaded: 0,
        downloaded: 0,
        left: Some(0),
        offers: Some(&offers),
        tracker_id: None,
    }
    .to_json();
    let Ok(WsRequest::Announce(a)) = parse(&text) else {
        panic!("{text}")
    };
    assert_eq!(
        (a.info_hash, a.peer_id, a.event, a.seeder),
        (id(1), id(2), AnnounceEvent::Completed, true)
    );
    assert_eq!(a.offers[0].offer_id, id(3));
    let text = AnswerRequest {
        info_hash: id(1),
        peer_id: id(2),
        to_peer_id: id(4),
        offer_id: id(3),
        sdp: "a",
        tracker_id: None,
    }
    .to_json();
    let Ok(WsRequest::Announce(a)) = parse(&text) else {
        panic!("{text}")
    };
    let answer = a.answer.expect("an answer");
    assert_eq!((answer.to_peer_id, answer.offer_id), (id(4), id(3)));
}

#[test]
fn a_client_reads_what_the_tracker_writes() {
    let sdp = RawValue::from_string(r#"{"type":"offer","sdp":"v=0\r\n"}"#.to_owned()).unwrap();
    let relayed = encode_offer(&id(1), &id(2), &id(3), &sdp);
    let frame = TrackerFrame::parse(&relayed).unwrap();
    assert_eq!(frame.info_hash(), Some(id(1)));
    assert_eq!(frame.text_len(), relayed.len());
    assert!(!frame.is_announce_accepted());
    let TrackerMessage::Announce(a) = frame.message().unwrap() else {
        panic!("{relayed}")
    };
    assert_eq!((a.peer_id, a.offer_id), (Some(id(2)), Some(id(3))));
    assert_eq!(a.offer.as_deref(), Some("v=0\r\n"));
    let reply = encode_announce_response(&id(1), 3, 4, 120, Some("w"));
    let frame = TrackerFrame::parse(&reply).unwrap();
    assert!(frame.is_announce_accepted());
    let TrackerMessage::Announce(a) = frame.message().unwrap() else {
        panic!("{reply}")
    };
    assert_eq!(
        (a.complete, a.incomplete, a.interval, a.warning.as_deref()),
        (Some(3), Some(4), Some(120), Some("w"))
    );
    let failure = encode_failure("no", Some(Action::Announce), Some(&id(1)));
    let frame = TrackerFrame::parse(&failure).unwrap();
    assert_eq!(frame.refusal(), Some((Some(id(1)), "no".to_owned())));
    assert_eq!(
        frame.message().unwrap(),
        TrackerMessage::Failure {
            info_hash: Some(id(1)),
            reason: "no".into(),
            to_announce: true
        }
    );
    let scrape = encode_failure("no", Some(Action::Scrape), None);
    assert_eq!(TrackerFrame::parse(&scrape).unwrap().refusal(), None);
    // The last of a repeated key counts, as in a browser's `JSON.parse`.
    let twice = r#"{"action":"scrape","action":"announce","complete":1}"#;
    assert!(TrackerFrame::parse(twice).unwrap().is_announce_accepted());
    assert_eq!(
        TrackerFrame::parse("[1]").unwrap_err(),
        ResponseError::NotAnObject
    );
    assert!(matches!(
        TrackerFrame::parse("{"),
        Err(ResponseError::Json(_))
    ));
}

#[test]
fn frames_name_their_swarm_when_it_is_a_binary_id() {
    let info_hash = |text: &str| TrackerFrame::parse(text).ok().and_then(|f| f.info_hash());
    let frame = json!({"action": "announce", "info_hash": "AAAAAAAAAAAAAAAAAAA\u{ff}"}).to_string();
    let mut want = [b'A'; 20];
    want[19] = 0xff;
    assert_eq!(info_hash(&frame), Some(Id20(want)));
    assert_eq!(
        info_hash(r#"{"info_hash":"AAAAAAAAAAAAAAAAAAA\u00ff"}"#),
        Some(Id20(want))
    );
    assert_eq!(info_hash(r#"{"failure reason":"x"}"#), None);
    assert_eq!(info_hash(r#"{"info_hash":"short"}"#), None);
    assert_eq!(
        info_hash(r#"{"info_hash":"AAAAAAAAAAAAAAAAAAA\u0100"}"#),
        None
    );
    assert_eq!(info_hash("not json"), None);
}

#[test]
fn a_bad_tracker_message_names_its_bad_field() {
    let ih = Id20([7; 20]).to_binary_string();
    let bad = |field, problem| Err(ResponseError::BadField { field, problem });
    let cases = [
        (r#"{"action":7}"#.to_owned(), bad("action", "not a string")),
        (r#"{"action":"announce"}"#.to_owned(), bad("info_hash", "missing")),
        (
            r#"{"action":"announce","info_hash":"abc"}"#.to_owned(),
            bad("info_hash", "not a 20-byte binary string"),
        ),
        (
            r#"{"action":"announce","info_hash":null}"#.to_owned(),
            bad("info_hash", "not a string"),
        ),
        (
            json!({"action": "announce", "info_hash": ih, "min interval": -1}).to_string(),
            bad("interval", "not a non-negative number"),
        ),
        (
            json!({"action": "announce", "info_hash": ih, "offer": {"type": null, "sdp": "x"}, "offer_id": ih}).to_string(),
            bad("offer", "wrong type"),
        ),
        (
            json!({"action": "announce", "info_hash": ih, "answer": {"type": "answer", "sdp": 1}, "offer_id": ih}).to_string(),
            bad("answer", "sdp missing or not a string"),
        ),
        (
            json!({"action": "announce", "info_hash": ih, "answer": {"sdp": "x"}}).to_string(),
            bad("offer_id", "missing"),
        ),
        (
            json!({"failure reason": null, "info_hash": "x"}).to_string(),
            bad("failure reason", "not a string"),
        ),
        (
            json!({"action": "x".repeat(50)}).to_string(),
            Err(ResponseError::UnknownAction("x".repeat(40))),
        ),
        ("{}".to_owned(), Err(ResponseError::MissingAction)),
    ];
    for (text, expected) in cases {
        let got = TrackerFrame::parse(&text).and_then(|f| f.message());
        assert_eq!(got, expected, "{text}");
    }
    // Counts: integers, or non-negative numbers truncated.
    let text = json!({"action": "announce", "info_hash": ih, "complete": 2.9, "incomplete": 1e3})
        .to_string();
    let Ok(TrackerMessage::Announce(a)) = TrackerFrame::parse(&text).and_then(|f| f.message())
    else {
        panic!("{text}")
    };
    assert_eq!((a.complete, a.incomplete), (Some(2), Some(1000)));
}

#[test]
fn request_strings_are_escaped_as_serde_json_escapes_them() {
    let all: String = (0u8..=255)
        .map(char::from)
        .chain("é\u{2028}😀".chars())
        .collect();
    let text = AnswerRequest {
        info_hash: Id20([0; 20]),
        peer_id: Id20(std::array::from_fn(|i| i as u8)),
        to_peer_id: Id20([b'"'; 20]),
        offer_id: Id20([0xff; 20]),
        sdp: &all,
        tracker_id: Some("\\\n"),
    }
    .to_json();
    let mut expected = serde_json::Map::new();
    let sdp = json!({"sdp": all, "type": "answer"});
    expected.insert("action".into(), json!("announce"));
    expected.insert("answer".into(), sdp);
    for (name, bytes) in [
        ("info_hash", [0u8; 20]),
        ("offer_id", [0xff; 20]),
        ("peer_id", std::array::from_fn(|i| i as u8)),
        ("to_peer_id", [b'"'; 20]),
    ] {
        expected.insert(name.into(), json!(Id20(bytes).to_binary_string()));
    }
    expected.insert("trackerid".into(), json!("\\\n"));
    assert_eq!(text, Value::Object(expected).to_string());
}
