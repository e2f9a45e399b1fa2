//! Signalling: ids as binary strings, relayed offers answered, answers matched to our offers,
//! messages not for us ignored.

use super::*;

#[test]
fn binary_strings_round_trip() {
    let all: Vec<u8> = (0..=255).collect();
    let s = bin(&all);
    assert_eq!(s.chars().count(), 256);
    for chunk in all.chunks(20).filter(|c| c.len() == 20) {
        assert_eq!(decode(&bin(chunk)).unwrap(), chunk);
    }
    assert_eq!(decode("short"), None);
    assert_eq!(decode(&"a".repeat(21)), None);
    // 20 characters, one above U+00FF.
    assert_eq!(decode(&format!("{}\u{100}", "a".repeat(19))), None);
    // JSON carries them as in JavaScript: code points, UTF-8 on the wire.
    let json = serde_json::to_string(&bin(&IH)).unwrap();
    let back: String = serde_json::from_str(&json).unwrap();
    assert_eq!(decode(&back), Some(IH));
}

#[test]
fn relayed_offer_is_surfaced_and_answered() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    frames(&mut c);
    let msg = server_msg(serde_json::json!({
        "action": "announce", "offer": {"type": "offer", "sdp": "remote-offer"},
        "offer_id": bin(&oid(9)), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
    }));
    assert_eq!(
        recv(&mut c, &msg, now).unwrap(),
        vec![TrackerEvent::Offer {
            info_hash: IH,
            peer_id: OTHER,
            offer_id: oid(9),
            sdp: "remote-offer".into()
        }]
    );
    c.send_answer(IH, OTHER, oid(9), "my-answer");
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m["action"], "announce");
    assert_eq!(m["info_hash"], bin(&IH));
    assert_eq!(m["peer_id"], bin(&ME));
    assert_eq!(m["to_peer_id"], bin(&OTHER));
    assert_eq!(m["offer_id"], bin(&oid(9)));
    assert_eq!(
        m["answer"],
        serde_json::json!({"type": "answer", "sdp": "my-answer"})
    );
    // Not for a swarm we are not in.
    c.send_answer(IH2, OTHER, oid(9), "x");
    assert!(c.poll_transmit().is_none());
}

#[test]
fn answers_match_our_pending_offers_once() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let answer = |offer: OfferId| {
        server_msg(serde_json::json!({
            "action": "announce", "answer": {"type": "answer", "sdp": "their-answer"},
            "offer_id": bin(&offer), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
        }))
    };
    assert_eq!(
        recv(&mut c, &answer(oid(2)), now).unwrap(),
        vec![TrackerEvent::Answer {
            info_hash: IH,
            peer_id: OTHER,
            offer_id: oid(2),
            sdp: "their-answer".into()
        }]
    );
    assert_eq!(c.pending_offer_count(), 1);
    // A second answer to the same offer, or to an offer we never made, is ignored.
    assert!(recv(&mut c, &answer(oid(2)), now).unwrap().is_empty());
    assert!(recv(&mut c, &answer(oid(7)), now).unwrap().is_empty());
    // An answered offer does not expire later (interval raised so no re-announce is due).
    let resp = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "interval": 120
    }));
    assert!(recv(&mut c, &resp, now).unwrap().is_empty());
    c.handle_timeout(now + Duration::from_secs(50));
    assert_eq!(drain(&mut c), vec![expired(IH, 1)]);
    // After expiry, a late answer is ignored too.
    assert!(recv(&mut c, &answer(oid(1)), now).unwrap().is_empty());
}

#[test]
fn foreign_swarm_and_own_messages_are_ignored() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let other_swarm = server_msg(serde_json::json!({
        "action": "announce", "offer": {"type": "offer", "sdp": "x"},
        "offer_id": bin(&oid(9)), "peer_id": bin(&OTHER), "info_hash": bin(&IH2)
    }));
    assert!(recv(&mut c, &other_swarm, now).unwrap().is_empty());
    let own = server_msg(serde_json::json!({
        "action": "announce", "offer": {"type": "offer", "sdp": "x"},
        "offer_id": bin(&oid(9)), "peer_id": bin(&ME), "info_hash": bin(&IH)
    }));
    assert!(recv(&mut c, &own, now).unwrap().is_empty());
}
