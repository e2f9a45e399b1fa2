//! When the client announces again and what expires: the interval (clamped), early re-announces
//! while filling, late offers, reconnects.

use super::*;

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
        recv(&mut c, &resp, t1).unwrap(),
        vec![TrackerEvent::AnnounceAccepted {
            info_hash: IH,
            complete: 3,
            incomplete: 7,
            interval: Duration::from_secs(120)
        }]
    );
    // First deadline: the offers' 50 s timeout.
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    c.handle_timeout(t0 + Duration::from_secs(49));
    assert!(drain(&mut c).is_empty());
    c.handle_timeout(t0 + Duration::from_secs(50));
    assert_eq!(drain(&mut c), vec![expired(IH, 1), expired(IH, 2)]);
    assert_eq!(c.pending_offer_count(), 0);
    // Next: the re-announce 120 s after the response.
    let due = t1 + Duration::from_secs(120);
    assert_eq!(c.poll_timeout(), Some(due));
    c.handle_timeout(due - Duration::from_millis(1));
    assert!(drain(&mut c).is_empty());
    assert!(c.poll_transmit().is_none());
    c.handle_timeout(due);
    assert_eq!(drain(&mut c), vec![need_offers(IH)]);
    c.offers_created(IH, vec![(oid(3), "s3".into())], due);
    assert!(drain(&mut c).is_empty());
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
    recv(&mut c, &resp, t0 + Duration::from_secs(1)).unwrap();
    let answer = |offer: OfferId| {
        server_msg(serde_json::json!({
            "action": "announce", "answer": {"type": "answer", "sdp": "a"},
            "offer_id": bin(&offer), "peer_id": bin(&OTHER), "info_hash": bin(&IH)
        }))
    };
    assert_eq!(recv(&mut c, &answer(oid(1)), t0).unwrap().len(), 1);
    let t5 = t0 + Duration::from_secs(5);
    assert_eq!(c.poll_timeout(), Some(t5));
    c.handle_timeout(t5 - Duration::from_millis(1));
    assert!(drain(&mut c).is_empty());
    c.handle_timeout(t5);
    assert_eq!(drain(&mut c), vec![need_offers(IH)]);
    // Second and third rounds: offers go out, none is answered.
    c.offers_created(IH, vec![(oid(3), "s3".into())], t5);
    assert!(drain(&mut c).is_empty());
    assert_eq!(frames(&mut c).len(), 1);
    let t10 = t5 + Duration::from_secs(5);
    assert_eq!(c.poll_timeout(), Some(t10));
    c.handle_timeout(t10);
    assert_eq!(drain(&mut c).len(), 1, "one idle round is tolerated");
    c.offers_created(IH, vec![(oid(4), "s4".into())], t10);
    assert!(drain(&mut c).is_empty());
    assert_eq!(frames(&mut c).len(), 1);
    let t15 = t10 + Duration::from_secs(5);
    assert_eq!(c.poll_timeout(), Some(t15));
    // Two rounds in a row found no taker: no early announce; the interval applies.
    c.handle_timeout(t15);
    assert!(drain(&mut c).is_empty());
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    c.handle_timeout(t0 + Duration::from_secs(50));
    c.handle_timeout(t5 + Duration::from_secs(50));
    c.handle_timeout(t10 + Duration::from_secs(50));
    drain(&mut c);
    let t = t10 + Duration::from_secs(120);
    assert_eq!(c.poll_timeout(), Some(t));
    // An announce without offers (no room for peers) is not followed by an early one.
    c.handle_timeout(t);
    assert_eq!(drain(&mut c).len(), 1);
    c.offers_created(IH, Vec::new(), t);
    assert!(drain(&mut c).is_empty());
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
        let ev = recv(&mut c, &resp, now).unwrap();
        assert!(
            matches!(ev[0], TrackerEvent::AnnounceAccepted { interval, .. } if interval == Duration::from_secs(expected)),
            "{secs}: {ev:?}"
        );
    }
}

#[test]
fn announce_goes_out_without_offers_if_the_driver_is_late() {
    let (mut c, now) = client();
    c.connected(now);
    c.join(IH, now);
    drain(&mut c);
    let deadline = now + Duration::from_secs(10);
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline);
    assert!(drain(&mut c).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "started");
    assert_eq!(sent[0]["offers"], serde_json::json!([]));
    c.offers_created(IH, vec![(oid(1), "late".into())], deadline);
    assert_eq!(drain(&mut c), vec![expired(IH, 1)]);
    assert_eq!(c.pending_offer_count(), 0);
}

#[test]
fn reconnect_rejoins_every_swarm() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    c.join(IH2, now);
    drain(&mut c);
    c.send_answer(IH, OTHER, oid(9), "queued but never sent");
    c.disconnected(now);
    assert_eq!(drain(&mut c), vec![expired(IH, 1), expired(IH, 2)]);
    assert!(
        c.poll_transmit().is_none(),
        "queued frames die with the socket"
    );
    assert_eq!(c.poll_timeout(), None, "no announces while disconnected");
    // Offers that arrive for the old socket's announce are handed back.
    c.offers_created(IH2, vec![(oid(6), "late".into())], now);
    assert_eq!(drain(&mut c), vec![expired(IH2, 6)]);
    let later = now + Duration::from_secs(30);
    c.connected(later);
    assert_eq!(drain(&mut c), vec![need_offers(IH), need_offers(IH2)]);
    c.offers_created(IH, vec![], later);
    c.offers_created(IH2, vec![], later);
    assert!(drain(&mut c).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m["event"] == "started"));
}
