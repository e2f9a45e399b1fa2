//! Announces: `started` with the driver's offers, how many offers, `stopped` on leave,
//! `completed`, the tracker id echoed.

use super::*;

#[test]
fn join_announces_started_with_the_drivers_offers() {
    let (mut c, now) = client();
    // Nothing is sent before the socket is open.
    c.join(IH, now);
    assert!(drain(&mut c).is_empty());
    assert!(c.poll_transmit().is_none());
    c.connected(now);
    assert_eq!(drain(&mut c), vec![need_offers(IH)]);
    assert!(c.poll_transmit().is_none(), "waits for the offers");
    let offers = vec![
        (oid(1), "v=0 one".to_owned()),
        (oid(2), "v=0 two".to_owned()),
    ];
    c.offers_created(IH, offers, now);
    assert!(drain(&mut c).is_empty());
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
    c.join(IH, now);
    assert!(drain(&mut c).is_empty());
    assert!(c.poll_transmit().is_none());
}

#[test]
fn offer_count_is_min_of_numwant_and_max_offers() {
    let mut config = TrackerClientConfig::new(ME);
    config.numwant = 3;
    let mut c = TrackerClient::new(config);
    let now = Instant::now();
    c.connected(now);
    c.join(IH, now);
    assert_eq!(
        drain(&mut c),
        vec![TrackerEvent::NeedOffers {
            info_hash: IH,
            count: 3
        }]
    );
    // More offers than asked for: the extra one is handed back to be closed.
    let offers = (1..=4).map(|n| (oid(n), format!("sdp{n}"))).collect();
    c.offers_created(IH, offers, now);
    assert_eq!(drain(&mut c), vec![expired(IH, 4)]);
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
    c.connected(now);
    c.join(IH, now);
    assert!(drain(&mut c).is_empty());
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "started");
    assert_eq!(sent[0]["offers"], serde_json::json!([]));
}

#[test]
fn leave_sends_stopped_and_drops_offers() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    c.join(IH2, now);
    drain(&mut c);
    c.offers_created(IH2, vec![(oid(5), "s".into())], now);
    assert!(drain(&mut c).is_empty());
    frames(&mut c);
    c.set_transfer_stats(IH, 1000, 2000, None);
    c.leave(IH, now);
    assert_eq!(drain(&mut c), vec![expired(IH, 1), expired(IH, 2)]);
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
    c.leave(IH, now);
    assert!(drain(&mut c).is_empty());
    assert!(c.poll_transmit().is_none());
}

#[test]
fn tracker_id_is_echoed_and_completed_is_sent() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    frames(&mut c);
    let resp = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "tracker id": "t-42", "interval": 120
    }));
    assert!(recv(&mut c, &resp, now).unwrap().is_empty());
    c.set_transfer_stats(IH, 1, 2, Some(0));
    c.completed(IH, now);
    let sent = frames(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "completed");
    assert_eq!(sent[0]["trackerid"], "t-42");
    assert_eq!(sent[0]["left"], 0);
    assert!(sent[0].get("offers").is_none());
}
