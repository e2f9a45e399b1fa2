//! WebTorrent WebSocket protocol conformance against the real `segswarm-tracker` daemon:
//! announce events and the counts they yield, offer and answer relays, scrapes, socket close,
//! peer expiry and idle connections.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Sends `event` for `peer` with `left` and checks the (complete, incomplete) in the response.
async fn step(
    ws: &mut Ws,
    ih: Id,
    peer: Id,
    event: Option<&str>,
    left: Option<u64>,
    expect: (u64, u64),
) {
    let reply = ws.announce_ok(&announce(ih, peer, event, left)).await;
    assert_eq!(
        (
            reply["complete"].as_u64().expect("complete"),
            reply["incomplete"].as_u64().expect("incomplete")
        ),
        expect,
        "after event {event:?} left {left:?}: {reply}"
    );
    assert!(reply["interval"].as_u64().is_some(), "interval in {reply}");
}

#[tokio::test]
async fn every_announce_event_yields_the_expected_counts() {
    let tracker = Tracker::start("[protocol]\nannounce_interval_secs = 77\n");
    let ih = Id::random();
    let (p1, p2, p3, p4) = (Id::random(), Id::random(), Id::random(), Id::random());
    // Each peer on its own socket, as browsers do; one more socket only scrapes.
    let mut s1 = tracker.ws().await;
    let mut s2 = tracker.ws().await;
    let mut s3 = tracker.ws().await;
    let mut s4 = tracker.ws().await;
    let mut observer = tracker.ws().await;

    let first = s1
        .announce_ok(&announce(ih, p1, Some("started"), Some(100)))
        .await;
    assert_eq!(first["interval"], 77, "configured interval: {first}");
    assert_eq!(
        (first["complete"].as_u64(), first["incomplete"].as_u64()),
        (Some(0), Some(1))
    );

    step(&mut s2, ih, p2, Some("started"), Some(0), (1, 1)).await; // a seeder joins
    step(&mut s1, ih, p1, Some("update"), Some(50), (1, 1)).await; // progress, still leecher
    step(&mut s1, ih, p1, Some("completed"), Some(0), (2, 0)).await; // leecher -> seeder
    step(&mut s3, ih, p3, None, None, (2, 1)).await; // no event, no left: joins as leecher
    step(&mut s3, ih, p3, Some("empty"), None, (2, 1)).await; // `empty` is an update
    step(&mut s3, ih, p3, Some("paused"), None, (2, 1)).await; // paused peers stay listed
    step(&mut s3, ih, p3, Some("update"), None, (2, 1)).await;
    step(&mut s4, ih, p4, Some("started"), Some(10), (2, 2)).await;
    step(&mut s4, ih, p4, Some("update"), Some(0), (3, 1)).await; // left reached 0
    assert_eq!(scrape_counts(&mut observer, ih).await, (3, 1));

    step(&mut s2, ih, p2, Some("stopped"), Some(0), (2, 1)).await;
    step(&mut s3, ih, p3, Some("stopped"), None, (2, 0)).await;
    assert_eq!(scrape_counts(&mut observer, ih).await, (2, 0));
    // `stopped` for a peer that is no longer in the swarm changes nothing, and says so.
    let again = s2
        .request(&announce(ih, p2, Some("stopped"), Some(0)))
        .await;
    assert_failure(
        &again,
        "stopped for a peer_id this connection does not hold",
    );
    assert_eq!(scrape_counts(&mut observer, ih).await, (2, 0));
    step(&mut s1, ih, p1, Some("stopped"), Some(0), (1, 0)).await;
    step(&mut s4, ih, p4, Some("stopped"), Some(0), (0, 0)).await;

    // The emptied swarm is freed: a full scrape no longer lists it and the gauges are back to 0.
    assert_eq!(scrape_counts(&mut observer, ih).await, (0, 0));
    let stats = tracker.stats().await;
    assert_eq!(stats["swarms"], 0, "{stats}");
    assert_eq!(stats["peers"], 0, "{stats}");
    let metrics = tracker.metrics().await;
    assert_eq!(metrics.value("segswarm_swarms", &[]), 0.0);
    assert!(metrics.value("segswarm_messages_in_total", &[("kind", "announce")]) >= 15.0);
}

#[tokio::test]
async fn an_unknown_event_is_refused() {
    let tracker = Tracker::start("");
    let mut ws = tracker.ws().await;
    let ih = Id::random();
    let reply = ws
        .request(&announce(ih, Id::random(), Some("exploded"), None))
        .await;
    assert_failure(&reply, "invalid event");
    assert_eq!(reply["action"], "announce", "{reply}");
    assert_eq!(reply["info_hash"], ih.bin(), "{reply}");
    assert_eq!(wait_errors(&tracker, "invalid_event", 1.0).await, 1.0);
}

/// Reads `sockets` until `expected` messages arrived in total (bounded by [`STEP`]), then checks
/// for stragglers for [`QUIET`] on every socket at once: socket index -> messages.
async fn collect_relays(sockets: &mut [Ws], expected: usize) -> HashMap<usize, Vec<Value>> {
    let mut got: HashMap<usize, Vec<Value>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + STEP;
    while got.values().map(Vec::len).sum::<usize>() < expected
        && tokio::time::Instant::now() < deadline
    {
        for (i, ws) in sockets.iter_mut().enumerate() {
            match ws.next_event(Duration::from_millis(10)).await {
                Event::Json(v) => got.entry(i).or_default().push(v),
                Event::Timeout => {}
                other => panic!("socket {i}: {other:?}"),
            }
        }
    }
    let stragglers = sockets.iter_mut().enumerate().map(|(i, ws)| async move {
        let mut extra = Vec::new();
        loop {
            match ws.next_event(QUIET).await {
                Event::Json(v) => extra.push(v),
                Event::Timeout => break,
                other => panic!("socket {i}: {other:?}"),
            }
        }
        (i, extra)
    });
    for (i, extra) in futures_util::future::join_all(stragglers).await {
        if !extra.is_empty() {
            got.entry(i).or_default().extend(extra);
        }
    }
    got
}

#[tokio::test]
async fn an_offer_is_relayed_to_the_one_other_peer_with_every_field() {
    let tracker = Tracker::start("");
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sa.announce_ok(&announce(ih, a, Some("started"), Some(100)))
        .await;
    // A peer of another swarm must never see this swarm's offers.
    let mut elsewhere = tracker.ws().await;
    elsewhere
        .announce_ok(&announce(Id::random(), Id::random(), Some("started"), None))
        .await;

    let offers: Vec<(Id, Value)> = (0..3)
        .map(|i| (Id::random(), sdp_offer(&format!("b-offer-{i}"))))
        .collect();
    let reply = sb.announce_ok(&announce_with_offers(ih, b, &offers)).await;
    assert_eq!(
        (reply["complete"].as_u64(), reply["incomplete"].as_u64()),
        (Some(0), Some(2))
    );

    // One other peer: exactly the first offer reaches it, carrying the sender's id.
    let relayed = sa.next_json().await;
    assert_eq!(relayed["action"], "announce", "{relayed}");
    assert_eq!(relayed["offer"], offers[0].1, "{relayed}");
    assert_eq!(relayed["offer_id"], offers[0].0.bin(), "{relayed}");
    assert_eq!(relayed["peer_id"], b.bin(), "{relayed}");
    assert_eq!(relayed["info_hash"], ih.bin(), "{relayed}");
    assert!(relayed.get("answer").is_none(), "{relayed}");
    sa.expect_quiet().await;
    // The sender never receives its own offers.
    sb.expect_quiet().await;
    elsewhere.expect_quiet().await;

    let metrics = tracker.metrics().await;
    assert_eq!(
        metrics.value("segswarm_messages_out_total", &[("kind", "offer")]),
        1.0
    );
}

#[tokio::test]
async fn offers_go_to_distinct_random_peers_at_most_max_offers() {
    let tracker = Tracker::start("[protocol]\nmax_offers = 3\n");
    let ih = Id::random();
    let peers: Vec<Id> = (0..6).map(|_| Id::random()).collect();
    let mut sockets = Vec::new();
    for &p in &peers {
        let mut ws = tracker.ws().await;
        ws.announce_ok(&announce(ih, p, Some("started"), Some(100)))
            .await;
        sockets.push(ws);
    }
    let sender = Id::random();
    let mut ss = tracker.ws().await;
    let offers: Vec<(Id, Value)> = (0..5)
        .map(|i| (Id::random(), sdp_offer(&format!("s-offer-{i}"))))
        .collect();
    ss.announce_ok(&announce_with_offers(ih, sender, &offers))
        .await;

    let got = collect_relays(&mut sockets, 3).await;
    let total: usize = got.values().map(Vec::len).sum();
    assert_eq!(total, 3, "max_offers = 3 relays, got {got:?}");
    assert!(
        got.values().all(|v| v.len() == 1),
        "one offer per peer: {got:?}"
    );
    let relayed_ids: HashSet<String> = got
        .values()
        .flatten()
        .map(|m| {
            assert_eq!(m["peer_id"], sender.bin(), "{m}");
            let id = m["offer_id"].as_str().expect("offer_id").to_owned();
            let index = offers
                .iter()
                .position(|(oid, _)| oid.bin() == id)
                .expect("a relayed offer_id is one of the sender's");
            assert_eq!(
                m["offer"], offers[index].1,
                "offer body matches its id: {m}"
            );
            id
        })
        .collect();
    let first_three: HashSet<String> = offers[..3].iter().map(|(id, _)| id.bin()).collect();
    assert_eq!(
        relayed_ids, first_three,
        "the first max_offers offers are used"
    );
    ss.expect_quiet().await;

    // More offers than other peers: each other peer gets exactly one.
    let mut small = Vec::new();
    let ih2 = Id::random();
    for _ in 0..2 {
        let mut ws = tracker.ws().await;
        ws.announce_ok(&announce(ih2, Id::random(), Some("started"), None))
            .await;
        small.push(ws);
    }
    let offers2: Vec<(Id, Value)> = (0..3)
        .map(|i| (Id::random(), sdp_offer(&format!("t{i}"))))
        .collect();
    ss.announce_ok(&announce_with_offers(ih2, sender, &offers2))
        .await;
    let got = collect_relays(&mut small, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.values().all(|v| v.len() == 1), "{got:?}");

    // One offer per announce, repeated: the receiving peer is chosen at random, so 12 announces
    // do not all land on the same one of 6 peers (chance 6^-11 if they were random).
    let mut receivers = HashSet::new();
    for round in 0..12 {
        let offer = (Id::random(), sdp_offer(&format!("r{round}")));
        let mut msg = announce_with_offers(ih, sender, &[offer]);
        msg["event"] = json!("update");
        ss.announce_ok(&msg).await;
        let got = collect_relays(&mut sockets, 1).await;
        assert_eq!(
            got.values().map(Vec::len).sum::<usize>(),
            1,
            "round {round}: {got:?}"
        );
        receivers.extend(got.keys().copied());
    }
    assert!(
        receivers.len() > 1,
        "every offer went to the same peer: {receivers:?}"
    );
}

#[tokio::test]
async fn an_answer_is_relayed_to_the_offering_peer() {
    let tracker = Tracker::start("");
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sa.announce_ok(&announce(ih, a, Some("started"), Some(100)))
        .await;
    let offer_id = Id::random();
    sb.announce_ok(&announce_with_offers(ih, b, &[(offer_id, sdp_offer("b"))]))
        .await;
    let relayed = sa.next_json().await;
    assert_eq!(relayed["offer_id"], offer_id.bin());

    sa.send_json(&answer(ih, a, b, offer_id, sdp_answer("a")))
        .await;
    let got = sb.next_json().await;
    assert_eq!(got["action"], "announce", "{got}");
    assert_eq!(got["answer"], sdp_answer("a"), "{got}");
    assert_eq!(got["offer_id"], offer_id.bin(), "{got}");
    assert_eq!(got["peer_id"], a.bin(), "{got}");
    assert_eq!(got["info_hash"], ih.bin(), "{got}");
    assert!(got.get("offer").is_none(), "{got}");
    // The answering peer gets no reply of its own (as with the reference tracker).
    sa.expect_quiet().await;
    sb.expect_quiet().await;

    let metrics = tracker.metrics().await;
    assert_eq!(
        metrics.value("segswarm_messages_out_total", &[("kind", "answer")]),
        1.0
    );
    let relay_count = metrics
        .get("segswarm_offer_relay_seconds_count", &[])
        .expect("offer relay histogram");
    assert!(
        relay_count >= 1.0,
        "offer relay latency observed: {relay_count}"
    );
}

#[tokio::test]
async fn answers_to_offers_not_delivered_to_the_answerer_are_refused() {
    let tracker = Tracker::start("");
    let ih = Id::random();
    let (a, b, c) = (Id::random(), Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sa.announce_ok(&announce(ih, a, Some("started"), Some(100)))
        .await;
    let offer_id = Id::random();
    sb.announce_ok(&announce_with_offers(ih, b, &[(offer_id, sdp_offer("b"))]))
        .await;
    assert_eq!(sa.next_json().await["offer_id"], offer_id.bin());
    // c joins after the offer went out, so it never received it.
    let mut sc = tracker.ws().await;
    sc.announce_ok(&announce(ih, c, Some("started"), Some(100)))
        .await;

    // An answer to an offer id nobody sent.
    let reply = sa
        .request(&answer(ih, a, b, Id::random(), sdp_answer("bogus")))
        .await;
    assert_failure(&reply, "answer to an unknown or expired offer");
    assert_eq!(reply["info_hash"], ih.bin(), "{reply}");
    // A real offer id, answered by a peer it was not delivered to (spoofing).
    let reply = sc
        .request(&answer(ih, c, b, offer_id, sdp_answer("spoof")))
        .await;
    assert_failure(&reply, "answer to an unknown or expired offer");
    // The right answerer and offer id, sent to a peer that did not make the offer.
    let reply = sa
        .request(&answer(ih, a, c, offer_id, sdp_answer("misdirected")))
        .await;
    assert_failure(&reply, "answer to an unknown or expired offer");
    sb.expect_quiet().await;
    sc.expect_quiet().await;
    assert_eq!(wait_errors(&tracker, "unknown_offer", 3.0).await, 3.0);

    // The peer that did receive the offer can still answer it.
    sa.send_json(&answer(ih, a, b, offer_id, sdp_answer("real")))
        .await;
    assert_eq!(sb.next_json().await["answer"], sdp_answer("real"));
}

#[tokio::test]
async fn answers_after_offer_ttl_are_refused() {
    let tracker = Tracker::start("[protocol]\noffer_ttl_secs = 1\n");
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sa.announce_ok(&announce(ih, a, Some("started"), Some(100)))
        .await;
    let offer_id = Id::random();
    sb.announce_ok(&announce_with_offers(ih, b, &[(offer_id, sdp_offer("b"))]))
        .await;
    assert_eq!(sa.next_json().await["offer_id"], offer_id.bin());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = sa
        .request(&answer(ih, a, b, offer_id, sdp_answer("late")))
        .await;
    assert_failure(&reply, "answer to an unknown or expired offer");
    sb.expect_quiet().await;
}

#[tokio::test]
async fn with_check_answers_off_any_answer_is_relayed() {
    let tracker = Tracker::start("[protocol]\ncheck_answers = false\n");
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sb.announce_ok(&announce(ih, b, Some("started"), Some(100)))
        .await;
    sa.announce_ok(&announce(ih, a, Some("started"), Some(100)))
        .await;
    let offer_id = Id::random();
    sa.send_json(&answer(ih, a, b, offer_id, sdp_answer("unsolicited")))
        .await;
    let got = sb.next_json().await;
    assert_eq!(got["answer"], sdp_answer("unsolicited"), "{got}");
    assert_eq!(got["offer_id"], offer_id.bin(), "{got}");
    assert_eq!(got["peer_id"], a.bin(), "{got}");
}

#[tokio::test]
async fn scrape_of_one_several_and_all_swarms() {
    let tracker = Tracker::start("[protocol]\nallow_full_scrape = true\n");
    let (x, y, unknown) = (Id::random(), Id::random(), Id::random());
    let mut s1 = tracker.ws().await;
    let mut s2 = tracker.ws().await;
    s1.announce_ok(&announce(x, Id::random(), Some("started"), Some(0)))
        .await;
    s2.announce_ok(&announce(x, Id::random(), Some("started"), Some(5)))
        .await;
    s2.announce_ok(&announce(y, Id::random(), Some("started"), Some(5)))
        .await;

    let mut obs = tracker.ws().await;
    let one = obs.request(&scrape(Some(&[x]))).await;
    assert_eq!(one["action"], "scrape", "{one}");
    assert_eq!(scrape_entry(&one, x), Some((1, 1)), "{one}");
    assert!(
        one["files"][x.bin()]["downloaded"].as_u64().is_some(),
        "{one}"
    );
    assert_eq!(one["files"].as_object().unwrap().len(), 1, "{one}");

    let several = obs.request(&scrape(Some(&[x, y, unknown]))).await;
    assert_eq!(scrape_entry(&several, x), Some((1, 1)), "{several}");
    assert_eq!(scrape_entry(&several, y), Some((0, 1)), "{several}");
    assert_eq!(
        scrape_entry(&several, unknown).unwrap_or((0, 0)),
        (0, 0),
        "{several}"
    );

    let all = obs.request(&scrape(None)).await;
    let files = all["files"].as_object().expect("files");
    assert_eq!(files.len(), 2, "{all}");
    assert_eq!(scrape_entry(&all, x), Some((1, 1)), "{all}");
    assert_eq!(scrape_entry(&all, y), Some((0, 1)), "{all}");
}

#[tokio::test]
async fn full_scrape_is_refused_when_disabled() {
    let tracker = Tracker::start("[protocol]\nallow_full_scrape = false\n");
    let x = Id::random();
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(x, Id::random(), Some("started"), None))
        .await;
    let reply = ws.request(&scrape(None)).await;
    assert_failure(&reply, "full scrape is disabled: give info_hash");
    assert_eq!(reply["action"], "scrape", "{reply}");
    assert_eq!(
        wait_errors(&tracker, "full_scrape_disabled", 1.0).await,
        1.0
    );
    // Scraping a named swarm still works on the same connection.
    assert_eq!(scrape_counts(&mut ws, x).await, (0, 1));
}

#[tokio::test]
async fn closing_a_socket_removes_its_peers_from_every_swarm() {
    let tracker = Tracker::start("");
    let (x, y) = (Id::random(), Id::random());
    let mut obs = tracker.ws().await;
    let mut stay = tracker.ws().await;
    stay.announce_ok(&announce(x, Id::random(), Some("started"), None))
        .await;

    // One socket in two swarms, closed politely with a close frame.
    let mut polite = tracker.ws().await;
    polite
        .announce_ok(&announce(x, Id::random(), Some("started"), Some(0)))
        .await;
    polite
        .announce_ok(&announce(y, Id::random(), Some("started"), Some(0)))
        .await;
    assert_eq!(scrape_counts(&mut obs, x).await, (1, 1));
    assert_eq!(scrape_counts(&mut obs, y).await, (1, 0));
    polite.close().await;
    eventually("polite close removes its peers", STEP, || async {
        let mut obs = tracker.ws().await;
        let cx = scrape_counts(&mut obs, x).await;
        let cy = scrape_counts(&mut obs, y).await;
        (cx == (0, 1) && cy == (0, 0)).then_some(())
    })
    .await;

    // A socket that just disappears (TCP closed, no close frame).
    let mut rude = tracker.ws().await;
    rude.announce_ok(&announce(x, Id::random(), Some("started"), Some(3)))
        .await;
    assert_eq!(scrape_counts(&mut obs, x).await, (0, 2));
    drop(rude);
    eventually("dropped socket removes its peer", STEP, || async {
        let mut obs = tracker.ws().await;
        (scrape_counts(&mut obs, x).await == (0, 1)).then_some(())
    })
    .await;
    // The swarm that lost its only peer is freed.
    let stats = tracker.stats().await;
    assert_eq!(stats["swarms"], 1, "{stats}");
}

#[tokio::test]
async fn peers_that_do_not_reannounce_expire_and_empty_swarms_are_freed() {
    let tracker = Tracker::start(
        "[protocol]\npeer_timeout_secs = 1\nping_interval_secs = 30\nidle_timeout_secs = 60\n",
    );
    let (x, y) = (Id::random(), Id::random());
    let mut quiet = tracker.ws().await;
    let mut busy = tracker.ws().await;
    let busy_id = Id::random();
    quiet
        .announce_ok(&announce(x, Id::random(), Some("started"), None))
        .await;
    quiet
        .announce_ok(&announce(y, Id::random(), Some("started"), None))
        .await;
    busy.announce_ok(&announce(x, busy_id, Some("started"), Some(0)))
        .await;
    let mut obs = tracker.ws().await;
    assert_eq!(scrape_counts(&mut obs, x).await, (1, 1));

    // `busy` re-announces every 300 ms; `quiet` stays connected but silent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        busy.announce_ok(&announce(x, busy_id, Some("update"), Some(0)))
            .await;
        let cx = scrape_counts(&mut obs, x).await;
        let cy = scrape_counts(&mut obs, y).await;
        if cx == (1, 0) && cy == (0, 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "silent peers not expired within 6 s with peer_timeout_secs = 1: x {cx:?} y {cy:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let all_swarms = tracker.stats().await;
    assert_eq!(all_swarms["swarms"], 1, "swarm y freed: {all_swarms}");
    assert_eq!(all_swarms["peers"], 1, "{all_swarms}");
}

#[tokio::test]
async fn idle_connections_are_pinged_and_dead_ones_dropped() {
    let tracker = Tracker::start(
        "[protocol]\nping_interval_secs = 1\nidle_timeout_secs = 2\npeer_timeout_secs = 600\n",
    );
    let x = Id::random();
    let mut alive = tracker.ws().await;
    let mut dead = tracker.ws().await;
    alive
        .announce_ok(&announce(x, Id::random(), Some("started"), None))
        .await;
    dead.announce_ok(&announce(x, Id::random(), Some("started"), None))
        .await;

    // `alive` keeps reading, so tungstenite answers the server's pings; `dead` never reads.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(3500);
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout_at(until, futures_util::StreamExt::next(&mut alive.inner)).await
        {
            Err(_) => break,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_)))) => pings += 1,
            Ok(other) => panic!("alive socket got {other:?}"),
        }
    }
    assert!(pings >= 1, "the server pinged an idle socket");
    // The silent connection was closed and its peer removed; the other stays.
    eventually("dead connection dropped", STEP, || async {
        let mut obs = tracker.ws().await;
        (scrape_counts(&mut obs, x).await == (0, 1)).then_some(())
    })
    .await;
    assert_eq!(scrape_counts(&mut alive, x).await, (0, 1));
    match dead.next_event(STEP).await {
        Event::Close(_) | Event::Ended(_) => {}
        other => panic!("dead connection should be closed, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_works_on_any_path() {
    let tracker = Tracker::start("");
    let x = Id::random();
    let mut open = Vec::new();
    for path in ["/", "/tracker/socket", "/announce", "/anything/else?x=1"] {
        let mut ws = Ws::try_connect(
            tracker.addr(),
            WsOptions {
                path: Some(path),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("WebSocket on {path}: {e}"));
        ws.announce_ok(&announce(x, Id::random(), Some("started"), None))
            .await;
        open.push(ws);
    }
    let mut obs = tracker.ws().await;
    assert_eq!(scrape_counts(&mut obs, x).await, (0, 4));
}

#[tokio::test]
async fn an_answer_to_a_peer_that_has_left_is_dropped_quietly_and_counted() {
    let tracker = Tracker::start("");
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sa.announce_ok(&announce(ih, a, Some("started"), Some(100)))
        .await;
    let offer_id = Id::random();
    sb.announce_ok(&announce_with_offers(ih, b, &[(offer_id, sdp_offer("b"))]))
        .await;
    assert_eq!(sa.next_json().await["offer_id"], offer_id.bin());
    // The offering peer leaves before the answer arrives.
    sb.close().await;
    let mut left = false;
    for _ in 0..50 {
        let reply = sa.request(&scrape(Some(&[ih]))).await;
        if scrape_entry(&reply, ih) == Some((0, 1)) {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left, "b is still in the swarm 5 s after closing its socket");

    sa.send_json(&answer(ih, a, b, offer_id, sdp_answer("a")))
        .await;
    // No failure for a race the answerer could not avoid (the reference tracker sends none either).
    sa.expect_quiet().await;
    let dropped = eventually("drop counted", Duration::from_secs(5), || async {
        let m = tracker.metrics().await;
        let v = m.value(
            "segswarm_messages_dropped_total",
            &[("reason", "recipient_gone")],
        );
        (v >= 1.0).then_some(v)
    })
    .await;
    assert_eq!(dropped, 1.0);
    // The answerer's connection still works.
    let reply = sa.request(&scrape(Some(&[ih]))).await;
    assert_eq!(scrape_entry(&reply, ih), Some((0, 1)), "{reply}");
}
