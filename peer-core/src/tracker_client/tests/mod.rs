//! Unit tests of the tracker client; the property tests are in `properties.rs`.

use segswarm_ws_protocol::Id20;
use serde_json::Value;

use super::*;

/// Ids with bytes that exercise the binary-string encoding (NUL, DEL, 0x80, 0xFF, quote).
const IH: InfoHash = [
    0x00, 0x01, 0x22, 0x5c, 0x7f, 0x80, 0xff, 0xfe, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x4b, 0x4c,
];
const IH2: InfoHash = [b'b'; 20];
const ME: PeerId = *b"-PM0230-abcdefghijkl";
const OTHER: PeerId = *b"-PM0230-zyxwvutsrqpo";

fn oid(n: u8) -> OfferId {
    [n; 20]
}

/// `b` as a binary string (one character per byte).
fn bin(b: &[u8]) -> String {
    b.iter().map(|&b| char::from(b)).collect()
}

fn decode(s: &str) -> Option<[u8; 20]> {
    Id20::from_binary_str(s).map(|id| id.0)
}

fn client() -> (TrackerClient, Instant) {
    (
        TrackerClient::new(TrackerClientConfig::new(ME)),
        Instant::now(),
    )
}

fn frames(c: &mut TrackerClient) -> Vec<Value> {
    std::iter::from_fn(|| c.poll_transmit())
        .map(|t| serde_json::from_str(&t).expect("client sends JSON"))
        .collect()
}

/// Joins IH on a connected client and completes its first announce with two offers.
fn joined_with_offers(c: &mut TrackerClient, now: Instant) {
    assert!(c.connected(now).is_empty());
    assert_eq!(
        c.join(IH, now),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 5
        }]
    );
    let offers = vec![(oid(1), "sdp-1".to_owned()), (oid(2), "sdp-2".to_owned())];
    assert!(c.offers_created(IH, offers, now).is_empty());
}

fn server_msg(v: Value) -> String {
    v.to_string()
}

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
fn join_announces_started_with_the_drivers_offers() {
    let (mut c, now) = client();
    // Nothing is sent before the socket is open.
    assert!(c.join(IH, now).is_empty());
    assert!(c.poll_transmit().is_none());
    assert_eq!(
        c.connected(now),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 5
        }]
    );
    assert!(c.poll_transmit().is_none(), "waits for the offers");
    let offers = vec![
        (oid(1), "v=0 one".to_owned()),
        (oid(2), "v=0 two".to_owned()),
    ];
    assert!(c.offers_created(IH, offers, now).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m["action"], "announce");
    assert_eq!(m["info_hash"], bin(&IH));
    assert_eq!(m["peer_id"], bin(&ME));
    assert_eq!(m["event"], "started");
    assert_eq!(m["numwant"], 5);
    assert_eq!(m["uploaded"], 0);
    assert_eq!(m["downloaded"], 0);
    assert!(m.get("left").is_none(), "missing left = leecher");
    let offers = m["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0]["offer"]["type"], "offer");
    assert_eq!(offers[0]["offer"]["sdp"], "v=0 one");
    assert_eq!(offers[0]["offer_id"], bin(&oid(1)));
    assert_eq!(offers[1]["offer_id"], bin(&oid(2)));
    assert_eq!(c.pending_offer_count(), 2);
    // Joining again changes nothing.
    assert!(c.join(IH, now).is_empty());
    assert!(c.poll_transmit().is_none());
}

#[test]
fn offer_count_is_min_of_numwant_and_max_offers() {
    let mut config = TrackerClientConfig::new(ME);
    config.numwant = 3;
    let mut c = TrackerClient::new(config);
    let now = Instant::now();
    let _ = c.connected(now);
    assert_eq!(
        c.join(IH, now),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 3
        }]
    );
    // More offers than asked for: the extra one is handed back to be closed.
    let offers = (1..=4).map(|n| (oid(n), format!("sdp{n}"))).collect();
    assert_eq!(
        c.offers_created(IH, offers, now),
        vec![TrackerEvent::OfferExpired {
            info_hash: IH,
            offer_id: oid(4)
        }]
    );
    let sent = frames(&mut c);
    assert_eq!(sent[0]["offers"].as_array().unwrap().len(), 3);
    assert_eq!(sent[0]["numwant"], 3);
}

#[test]
fn numwant_zero_announces_at_once_without_offers() {
    let mut config = TrackerClientConfig::new(ME);
    config.numwant = 0;
    let mut c = TrackerClient::new(config);
    let now = Instant::now();
    let _ = c.connected(now);
    assert!(c.join(IH, now).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "started");
    assert_eq!(sent[0]["offers"], serde_json::json!([]));
}

#[test]
fn announce_response_sets_interval_and_reannounces() {
    let (mut c, t0) = client();
    joined_with_offers(&mut c, t0);
    frames(&mut c);
    let resp = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH),
        "complete": 3, "incomplete": 7, "interval": 120
    }));
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(
        c.handle_message(&resp, t1).unwrap(),
        vec![TrackerEvent::AnnounceAccepted {
            info_hash: IH,
            complete: 3,
            incomplete: 7,
            interval: Duration::from_secs(120)
        }]
    );
    // First deadline: the offers' 50 s timeout.
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    assert!(c.handle_timeout(t0 + Duration::from_secs(49)).is_empty());
    let mut expired = c.handle_timeout(t0 + Duration::from_secs(50));
    expired.sort_by_key(offer_sort_key);
    assert_eq!(
        expired,
        vec![
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(1)
            },
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(2)
            }
        ]
    );
    assert_eq!(c.pending_offer_count(), 0);
    // Next: the re-announce 120 s after the response.
    let due = t1 + Duration::from_secs(120);
    assert_eq!(c.poll_timeout(), Some(due));
    assert!(c.handle_timeout(due - Duration::from_millis(1)).is_empty());
    assert!(c.poll_transmit().is_none());
    assert_eq!(
        c.handle_timeout(due),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 5
        }]
    );
    assert!(c
        .offers_created(IH, vec![(oid(3), "s3".into())], due)
        .is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].get("event").is_none(),
        "a periodic announce is an update"
    );
    assert_eq!(sent[0]["offers"][0]["offer_id"], bin(&oid(3)));
    // Without a response, the next announce follows the current interval.
    assert_eq!(c.poll_timeout(), Some(due + Duration::from_secs(50)));
}

#[test]
fn fill_interval_reannounces_early_while_offers_are_answered() {
    let mut config = TrackerClientConfig::new(ME);
    config.fill_interval = Some(Duration::from_secs(5));
    let mut c = TrackerClient::new(config);
    let t0 = Instant::now();
    joined_with_offers(&mut c, t0);
    frames(&mut c);
    // The tracker's 120 s interval does not postpone the early announce.
    let resp = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH),
        "complete": 1, "incomplete": 99, "interval": 120
    }));
    c.handle_message(&resp, t0 + Duration::from_secs(1))
        .unwrap();
    let answer = |offer: OfferId| {
        server_msg(serde_json::json!({
            "action": "announce", "answer": {"type": "answer", "sdp": "a"},
            "offer_id": bin(&offer), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
        }))
    };
    assert_eq!(c.handle_message(&answer(oid(1)), t0).unwrap().len(), 1);
    let t5 = t0 + Duration::from_secs(5);
    assert_eq!(c.poll_timeout(), Some(t5));
    assert!(c.handle_timeout(t5 - Duration::from_millis(1)).is_empty());
    assert_eq!(
        c.handle_timeout(t5),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 5
        }]
    );
    // Second and third rounds: offers go out, none is answered.
    assert!(c
        .offers_created(IH, vec![(oid(3), "s3".into())], t5)
        .is_empty());
    assert_eq!(frames(&mut c).len(), 1);
    let t10 = t5 + Duration::from_secs(5);
    assert_eq!(c.poll_timeout(), Some(t10));
    assert_eq!(
        c.handle_timeout(t10).len(),
        1,
        "one idle round is tolerated"
    );
    assert!(c
        .offers_created(IH, vec![(oid(4), "s4".into())], t10)
        .is_empty());
    assert_eq!(frames(&mut c).len(), 1);
    let t15 = t10 + Duration::from_secs(5);
    assert_eq!(c.poll_timeout(), Some(t15));
    // Two rounds in a row found no taker: no early announce; the interval applies.
    assert!(c.handle_timeout(t15).is_empty());
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    let _ = c.handle_timeout(t0 + Duration::from_secs(50));
    let _ = c.handle_timeout(t5 + Duration::from_secs(50));
    let _ = c.handle_timeout(t10 + Duration::from_secs(50));
    let t = t10 + Duration::from_secs(120);
    assert_eq!(c.poll_timeout(), Some(t));
    // An announce without offers (no room for peers) is not followed by an early one.
    assert_eq!(c.handle_timeout(t).len(), 1);
    assert!(c.offers_created(IH, Vec::new(), t).is_empty());
    assert_eq!(frames(&mut c).len(), 1);
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(120)));
}

#[test]
fn server_interval_is_clamped() {
    for (secs, expected) in [(1u64, 10u64), (0, 10), (100_000, 600), (45, 45)] {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let resp = server_msg(serde_json::json!({
            "action": "announce", "info_hash": bin(&IH),
            "complete": 0, "incomplete": 1, "interval": secs
        }));
        let ev = c.handle_message(&resp, now).unwrap();
        assert!(
            matches!(ev[0], TrackerEvent::AnnounceAccepted { interval, .. } if interval == Duration::from_secs(expected)),
            "{secs}: {ev:?}"
        );
    }
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
        c.handle_message(&msg, now).unwrap(),
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
        c.handle_message(&answer(oid(2)), now).unwrap(),
        vec![TrackerEvent::Answer {
            info_hash: IH,
            peer_id: OTHER,
            offer_id: oid(2),
            sdp: "their-answer".into()
        }]
    );
    assert_eq!(c.pending_offer_count(), 1);
    // A second answer to the same offer, or to an offer we never made, is ignored.
    assert!(c.handle_message(&answer(oid(2)), now).unwrap().is_empty());
    assert!(c.handle_message(&answer(oid(7)), now).unwrap().is_empty());
    // An answered offer does not expire later (interval raised so no re-announce is due).
    let resp = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "interval": 120
    }));
    assert!(c.handle_message(&resp, now).unwrap().is_empty());
    let ev = c.handle_timeout(now + Duration::from_secs(50));
    assert_eq!(
        ev,
        vec![TrackerEvent::OfferExpired {
            info_hash: IH,
            offer_id: oid(1)
        }]
    );
    // After expiry, a late answer is ignored too.
    assert!(c.handle_message(&answer(oid(1)), now).unwrap().is_empty());
}

#[test]
fn foreign_swarm_and_own_messages_are_ignored() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let other_swarm = server_msg(serde_json::json!({
        "action": "announce", "offer": {"type": "offer", "sdp": "x"},
        "offer_id": bin(&oid(9)), "peer_id": bin(&OTHER), "info_hash": bin(&IH2)
    }));
    assert!(c.handle_message(&other_swarm, now).unwrap().is_empty());
    let own = server_msg(serde_json::json!({
        "action": "announce", "offer": {"type": "offer", "sdp": "x"},
        "offer_id": bin(&oid(9)), "peer_id": bin(&ME), "info_hash": bin(&IH)
    }));
    assert!(c.handle_message(&own, now).unwrap().is_empty());
}

#[test]
fn leave_sends_stopped_and_drops_offers() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let _ = c.join(IH2, now);
    assert!(c
        .offers_created(IH2, vec![(oid(5), "s".into())], now)
        .is_empty());
    frames(&mut c);
    c.set_transfer_stats(IH, 1000, 2000, None);
    let mut ev = c.leave(IH, now);
    ev.sort_by_key(offer_sort_key);
    assert_eq!(
        ev,
        vec![
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(1)
            },
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(2)
            }
        ]
    );
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "stopped");
    assert_eq!(sent[0]["info_hash"], bin(&IH));
    assert_eq!(sent[0]["uploaded"], 1000);
    assert_eq!(sent[0]["downloaded"], 2000);
    assert!(sent[0].get("offers").is_none(), "no offers with stopped");
    assert_eq!(c.pending_offer_count(), 1, "the other swarm's offer stays");
    assert_eq!(c.swarms().copied().collect::<Vec<_>>(), vec![IH2]);
    // Leaving twice, or a swarm never joined, sends nothing.
    assert!(c.leave(IH, now).is_empty());
    assert!(c.poll_transmit().is_none());
}

/// PeerTube's answer to an info_hash it does not know (`server/core/controllers/tracker.ts`).
fn peertube_refusal(ih: &InfoHash) -> String {
    let hex: String = ih.iter().map(|b| format!("{b:02x}")).collect();
    server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(ih),
        "failure reason": format!("Unknown infoHash {hex} requested by ip 192.0.2.7"),
    }))
}

fn accepted(ih: &InfoHash) -> String {
    server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(ih), "interval": 120,
        "complete": 1, "incomplete": 0
    }))
}

#[test]
fn a_refused_swarm_is_not_announced_again_for_a_while() {
    let (mut c, t0) = client();
    joined_with_offers(&mut c, t0);
    assert_eq!(c.join(IH2, t0).len(), 1);
    assert!(c.offers_created(IH2, Vec::new(), t0).is_empty());
    frames(&mut c);
    assert!(
        announce_refusal(&peertube_refusal(&IH)).is_some_and(|(ih, reason)| {
            ih == Some(IH) && reason.starts_with("Unknown infoHash 0001225c")
        })
    );
    let ev = c.handle_message(&peertube_refusal(&IH), t0).unwrap();
    assert!(matches!(&ev[0], TrackerEvent::Failure { info_hash: Some(ih), .. } if *ih == IH));
    assert_eq!(ev.len(), 3, "the two offers expire: {ev:?}");
    assert_eq!(c.announces_refused(), 1);
    assert_eq!(c.pending_offer_count(), 0);
    let pause = Duration::from_secs(600);
    assert_eq!(c.refused_until(&IH), Some(t0 + pause));
    assert_eq!(c.refused_until(&IH2), None);
    // The other swarm goes on: accepted, re-announced at its interval; IH stays quiet.
    assert_eq!(c.handle_message(&accepted(&IH2), t0).unwrap().len(), 1);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    let ev = c.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(
        ev,
        vec![TrackerEvent::NeedOffers {
            info_hash: IH2,
            count: 5
        }]
    );
    assert!(c
        .offers_created(IH2, Vec::new(), t0 + Duration::from_secs(120))
        .is_empty());
    assert!(frames(&mut c).iter().all(|f| f["info_hash"] == bin(&IH2)));
    // PeerTube closes the socket; on reconnect only IH2 is announced.
    let t1 = t0 + Duration::from_secs(200);
    let _ = c.disconnected(t1);
    assert_eq!(
        c.connected(t1),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH2,
            count: 5
        }]
    );
    assert!(c.offers_created(IH2, Vec::new(), t1).is_empty());
    frames(&mut c);
    assert_eq!(c.handle_message(&accepted(&IH2), t1).unwrap().len(), 1);
    assert!(c.leave(IH2, t1).is_empty());
    frames(&mut c);
    // Once the pause is over IH is announced `started` again (it never joined the swarm).
    assert_eq!(c.poll_timeout(), Some(t0 + pause));
    assert_eq!(
        c.handle_timeout(t0 + pause),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 5
        }]
    );
    assert!(c.offers_created(IH, Vec::new(), t0 + pause).is_empty());
    let f = frames(&mut c);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["event"], "started");
    // Refused again: the pause doubles. Accepted later: the series ends.
    let t2 = t0 + pause;
    let _ = c.handle_message(&peertube_refusal(&IH), t2).unwrap();
    assert_eq!(c.refused_until(&IH), Some(t2 + 2 * pause));
    assert_eq!(c.announces_refused(), 2);
    let t3 = t2 + 2 * pause;
    let _ = c.handle_timeout(t3);
    assert!(c.offers_created(IH, Vec::new(), t3).is_empty());
    assert_eq!(c.handle_message(&accepted(&IH), t3).unwrap().len(), 1);
    assert_eq!(c.refused_until(&IH), None);
    let _ = c.handle_timeout(t3 + Duration::from_secs(120));
    assert!(c
        .offers_created(IH, Vec::new(), t3 + Duration::from_secs(120))
        .is_empty());
    let _ = c.handle_message(&peertube_refusal(&IH), t3 + Duration::from_secs(120));
    assert_eq!(
        c.refused_until(&IH),
        Some(t3 + Duration::from_secs(120) + pause)
    );
}

#[test]
fn a_failure_with_no_announce_pending_does_not_pause_the_swarm() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    assert_eq!(c.handle_message(&accepted(&IH), now).unwrap().len(), 1);
    // segswarm-tracker's failure to an answer whose offerer left names the swarm too.
    let f = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "failure reason": "unknown offer"
    }));
    assert_eq!(c.handle_message(&f, now).unwrap().len(), 1);
    assert_eq!(c.refused_until(&IH), None);
    assert_eq!(c.announces_refused(), 0);
    assert_eq!(c.pending_offer_count(), 2);
    // Failures to scrapes, or for swarms not joined, pause nothing either.
    assert_eq!(
        announce_refusal(r#"{"action":"scrape","failure reason":"x"}"#),
        None
    );
    assert_eq!(
        announce_refusal(r#"{"failure reason":"bad request"}"#),
        Some((None, "bad request".into()))
    );
    assert_eq!(announce_refusal(&accepted(&IH)), None);
    assert_eq!(announce_refusal("not json"), None);
    let other = peertube_refusal(&IH2);
    assert_eq!(c.handle_message(&other, now).unwrap().len(), 1);
    assert_eq!(c.announces_refused(), 0);
}

#[test]
fn failures_and_warnings_become_events() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let failure = server_msg(serde_json::json!({
        "action": "announce", "failure reason": "info_hash not allowed", "info_hash": bin(&IH)
    }));
    // It refuses the announce: its unanswered offers expire.
    assert_eq!(
        c.handle_message(&failure, now).unwrap(),
        vec![
            TrackerEvent::Failure {
                info_hash: Some(IH),
                reason: "info_hash not allowed".into()
            },
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(1)
            },
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(2)
            },
        ]
    );
    // The reference server's reply to an unparsable request: no action, no info_hash.
    assert_eq!(
        c.handle_message(r#"{"failure reason":"invalid info_hash"}"#, now)
            .unwrap(),
        vec![TrackerEvent::Failure {
            info_hash: None,
            reason: "invalid info_hash".into()
        }]
    );
    // A failure naming an unreadable info_hash is still surfaced.
    assert_eq!(
        c.handle_message(r#"{"failure reason":"x","info_hash":"short"}"#, now)
            .unwrap(),
        vec![TrackerEvent::Failure {
            info_hash: None,
            reason: "x".into()
        }]
    );
    let warn = server_msg(serde_json::json!({
        "action": "announce", "warning message": "slow down", "info_hash": bin(&IH),
        "complete": 1, "incomplete": 2, "interval": 60
    }));
    assert_eq!(
        c.handle_message(&warn, now).unwrap(),
        vec![
            TrackerEvent::Warning {
                info_hash: Some(IH),
                message: "slow down".into()
            },
            TrackerEvent::AnnounceAccepted {
                info_hash: IH,
                complete: 1,
                incomplete: 2,
                interval: Duration::from_secs(60)
            }
        ]
    );
}

#[test]
fn malformed_messages_are_errors_and_leave_the_client_usable() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let ih = bin(&IH);
    let other = bin(&OTHER);
    let o = bin(&oid(9));
    let cases: Vec<(String, TrackerClientError)> = vec![
        ("not json".into(), TrackerClientError::Json(String::new())),
        ("[1]".into(), TrackerClientError::NotAnObject),
        ("{}".into(), TrackerClientError::MissingAction),
        (
            r#"{"action":"dance"}"#.into(),
            TrackerClientError::UnknownAction("dance".into()),
        ),
        (
            r#"{"action":7}"#.into(),
            TrackerClientError::BadField { field: "action", problem: "not a string" },
        ),
        (
            r#"{"action":"announce"}"#.into(),
            TrackerClientError::BadField { field: "info_hash", problem: "missing" },
        ),
        (
            r#"{"action":"announce","info_hash":"abc"}"#.into(),
            TrackerClientError::BadField { field: "info_hash", problem: "not a 20-byte binary string" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":"\u{263a}".repeat(20)}).to_string(),
            TrackerClientError::BadField { field: "info_hash", problem: "not a 20-byte binary string" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"complete":-1}).to_string(),
            TrackerClientError::BadField { field: "complete", problem: "not a non-negative number" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"interval":"soon"}).to_string(),
            TrackerClientError::BadField { field: "interval", problem: "not a non-negative number" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":{"type":"offer"},"offer_id":o,"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer", problem: "sdp missing or not a string" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":{"type":"answer","sdp":"x"},"offer_id":o,"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer", problem: "wrong type" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":"x","offer_id":o,"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer", problem: "not an object" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":{"sdp":"x"},"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer_id", problem: "missing" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"answer":{"sdp":"x"},"offer_id":o}).to_string(),
            TrackerClientError::BadField { field: "peer_id", problem: "missing" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"failure reason":5}).to_string(),
            TrackerClientError::BadField { field: "failure reason", problem: "not a string" },
        ),
    ];
    for (text, expected) in cases {
        let err = c.handle_message(&text, now).unwrap_err();
        match (&err, &expected) {
            (TrackerClientError::Json(_), TrackerClientError::Json(_)) => {}
            _ => assert_eq!(err, expected, "{text}"),
        }
        assert!(!err.to_string().is_empty());
    }
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(300 * 1024));
    assert!(matches!(
        c.handle_message(&big, now),
        Err(TrackerClientError::TooLarge { .. })
    ));
    // Nothing changed: both offers still pending, still usable.
    assert_eq!(c.pending_offer_count(), 2);
    let ok = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "complete": 0, "incomplete": 1, "interval": 120
    }));
    assert_eq!(c.handle_message(&ok, now).unwrap().len(), 1);
    // Unknown fields are tolerated; a scrape response is accepted silently.
    let extra = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "x-custom": [1, 2]
    }));
    assert!(c.handle_message(&extra, now).unwrap().is_empty());
    assert!(c
        .handle_message(r#"{"action":"scrape","files":{}}"#, now)
        .unwrap()
        .is_empty());
}

#[test]
fn only_an_accepted_announce_resets_the_backoff() {
    assert!(is_announce_accepted(
        r#"{"action":"announce","info_hash":"x","interval":120,"complete":0,"incomplete":1}"#
    ));
    assert!(!is_announce_accepted(
        r#"{"action":"announce","failure reason":"full","complete":0}"#
    ));
    assert!(!is_announce_accepted(
        r#"{"action":"announce","offer":{"type":"offer","sdp":"x"},"offer_id":"y"}"#
    ));
    assert!(!is_announce_accepted(r#"{"action":"scrape","complete":1}"#));
    assert!(!is_announce_accepted("not json"));
}

#[test]
fn reconnect_rejoins_every_swarm() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let _ = c.join(IH2, now);
    c.send_answer(IH, OTHER, oid(9), "queued but never sent");
    let mut ev = c.disconnected(now);
    ev.sort_by_key(offer_sort_key);
    assert_eq!(
        ev,
        vec![
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(1)
            },
            TrackerEvent::OfferExpired {
                info_hash: IH,
                offer_id: oid(2)
            }
        ]
    );
    assert!(
        c.poll_transmit().is_none(),
        "queued frames die with the socket"
    );
    assert_eq!(c.poll_timeout(), None, "no announces while disconnected");
    // Offers that arrive for the old socket's announce are handed back.
    assert_eq!(
        c.offers_created(IH2, vec![(oid(6), "late".into())], now),
        vec![TrackerEvent::OfferExpired {
            info_hash: IH2,
            offer_id: oid(6)
        }]
    );
    let later = now + Duration::from_secs(30);
    assert_eq!(
        c.connected(later),
        vec![
            TrackerEvent::NeedOffers {
                info_hash: IH,
                count: 5
            },
            TrackerEvent::NeedOffers {
                info_hash: IH2,
                count: 5
            },
        ]
    );
    assert!(c.offers_created(IH, vec![], later).is_empty());
    assert!(c.offers_created(IH2, vec![], later).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m["event"] == "started"));
}

#[test]
fn announce_goes_out_without_offers_if_the_driver_is_late() {
    let (mut c, now) = client();
    let _ = c.connected(now);
    let _ = c.join(IH, now);
    let deadline = now + Duration::from_secs(10);
    assert_eq!(c.poll_timeout(), Some(deadline));
    assert!(c.handle_timeout(deadline).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "started");
    assert_eq!(sent[0]["offers"], serde_json::json!([]));
    assert_eq!(
        c.offers_created(IH, vec![(oid(1), "late".into())], deadline),
        vec![TrackerEvent::OfferExpired {
            info_hash: IH,
            offer_id: oid(1)
        }]
    );
    assert_eq!(c.pending_offer_count(), 0);
}

#[test]
fn tracker_id_is_echoed_and_completed_is_sent() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    frames(&mut c);
    let resp = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "tracker id": "t-42", "interval": 120
    }));
    assert!(c.handle_message(&resp, now).unwrap().is_empty());
    c.set_transfer_stats(IH, 1, 2, Some(0));
    c.completed(IH, now);
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "completed");
    assert_eq!(sent[0]["trackerid"], "t-42");
    assert_eq!(sent[0]["left"], 0);
    assert!(sent[0].get("offers").is_none());
}

mod properties;
