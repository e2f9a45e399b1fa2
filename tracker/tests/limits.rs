//! Abuse limits of the real daemon, each set low in the config: connections per IP and in total,
//! announce rate, swarms per connection, peers per swarm, message size. Each refusal is visible to
//! the client, counted in `/metrics`, and leaves other connections working.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn from(last: u8) -> WsOptions<'static> {
    WsOptions {
        source_ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))),
        ..Default::default()
    }
}

#[tokio::test]
async fn connections_per_ip_are_capped() {
    let tracker = Tracker::start("[limits]\nmax_connections_per_ip = 2\n");
    let ih = Id::random();
    let probe = announce(ih, Id::random(), Some("started"), None);
    let mut first = Ws::try_connect(tracker.addr(), from(2)).await.expect("1st");
    let mut second = Ws::try_connect(tracker.addr(), from(2)).await.expect("2nd");
    first
        .announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    second
        .announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;

    let third = Ws::try_connect(tracker.addr(), from(2)).await;
    assert_refused(third, "too many connections", &probe).await;

    // Another address is not affected, and the two open connections keep working.
    let mut other = Ws::try_connect(tracker.addr(), from(3))
        .await
        .expect("other IP");
    other
        .announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    assert_eq!(scrape_counts(&mut first, ih).await, (0, 3));
    assert!(wait_errors(&tracker, "connection_limit", 1.0).await >= 1.0);

    // Once one closes, that address may connect again.
    first.close().await;
    eventually("a slot frees up after a close", STEP, || async {
        // Until the server has released the closed connection's place, a new one is refused
        // with a close frame.
        let mut ws = Ws::try_connect(tracker.addr(), from(2)).await.ok()?;
        ws.send_json(&scrape(Some(&[ih]))).await;
        match ws.next_event(STEP).await {
            Event::Json(reply) => (reply["action"] == "scrape").then_some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn connections_in_total_are_capped() {
    let tracker = Tracker::start("[limits]\nmax_connections = 3\n");
    let probe = announce(Id::random(), Id::random(), Some("started"), None);
    let mut open = Vec::new();
    for last in 11..14 {
        let mut ws = Ws::try_connect(tracker.addr(), from(last))
            .await
            .expect("under the cap");
        ws.announce_ok(&announce(Id::random(), Id::random(), Some("started"), None))
            .await;
        open.push(ws);
    }
    let fourth = Ws::try_connect(tracker.addr(), from(14)).await;
    assert_refused(fourth, "too many connections", &probe).await;
    open.pop().unwrap().close().await;
    // /metrics is itself a connection, so it can be read once the closed socket's slot is free:
    // until then it is refused (503) like any other connection over the cap.
    let refused = eventually("a free slot for GET /metrics", STEP, || async {
        let response = tracker.get("/metrics").await;
        (response.status == 200).then(|| Metrics(String::from_utf8(response.body).unwrap()))
    })
    .await
    .errors("connection_limit");
    assert!(refused >= 1.0, "connection_limit counted {refused}");
}

#[tokio::test]
async fn announces_per_connection_are_rate_limited() {
    let tracker = Tracker::start("[limits]\nmax_announces_per_sec = 1\nannounce_burst = 3\n");
    let ih = Id::random();
    let me = Id::random();
    let mut ws = tracker.ws().await;
    // Five announces sent at once (so no token refills in between): the burst of 3 passes, the
    // rest is refused.
    for i in 0..5 {
        let event = if i == 0 { "started" } else { "update" };
        ws.send_json(&announce(ih, me, Some(event), None)).await;
    }
    for i in 0..5 {
        let reply = ws.next_json().await;
        if i < 3 {
            assert!(
                reply.get("failure reason").is_none(),
                "announce {i}: {reply}"
            );
            assert_eq!(reply["action"], "announce", "{reply}");
        } else {
            assert_failure(&reply, "rate limit exceeded: announce less often");
            assert_eq!(reply["info_hash"], ih.bin(), "{reply}");
        }
    }
    // A flood from one connection does not slow another.
    let mut other = tracker.ws().await;
    other
        .announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    // Scrapes are not announces.
    assert_eq!(scrape_counts(&mut ws, ih).await, (0, 2));
    // The bucket refills at 1 per second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.announce_ok(&announce(ih, me, Some("update"), None))
        .await;
    assert_eq!(wait_errors(&tracker, "rate_limited", 2.0).await, 2.0);
}

#[tokio::test]
async fn swarms_per_connection_are_capped() {
    let tracker = Tracker::start("[limits]\nmax_swarms_per_connection = 2\n");
    let (x, y, z) = (Id::random(), Id::random(), Id::random());
    let me = Id::random();
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(x, me, Some("started"), None))
        .await;
    ws.announce_ok(&announce(y, me, Some("started"), None))
        .await;
    let reply = ws.request(&announce(z, me, Some("started"), None)).await;
    assert_failure(&reply, "too many swarms on this connection");
    assert_eq!(reply["info_hash"], z.bin(), "{reply}");
    // Swarms already joined keep working.
    ws.announce_ok(&announce(x, me, Some("update"), None)).await;
    assert_eq!(scrape_counts(&mut ws, z).await, (0, 0));
    // Leaving one makes room for another.
    ws.announce_ok(&announce(y, me, Some("stopped"), None))
        .await;
    ws.announce_ok(&announce(z, me, Some("started"), None))
        .await;
    assert!(wait_errors(&tracker, "too_many_swarms", 1.0).await >= 1.0);
}

#[tokio::test]
async fn peers_per_swarm_are_capped() {
    let tracker = Tracker::start("[limits]\nmax_peers_per_swarm = 2\n");
    let ih = Id::random();
    let (p1, p2, p3) = (Id::random(), Id::random(), Id::random());
    let mut s1 = tracker.ws().await;
    let mut s2 = tracker.ws().await;
    let mut s3 = tracker.ws().await;
    s1.announce_ok(&announce(ih, p1, Some("started"), None))
        .await;
    s2.announce_ok(&announce(ih, p2, Some("started"), None))
        .await;
    let reply = s3.request(&announce(ih, p3, Some("started"), None)).await;
    assert_failure(&reply, "swarm is full");
    assert_eq!(reply["info_hash"], ih.bin(), "{reply}");
    // Members re-announce fine; another swarm is not affected.
    s1.announce_ok(&announce(ih, p1, Some("update"), Some(0)))
        .await;
    s3.announce_ok(&announce(Id::random(), p3, Some("started"), None))
        .await;
    assert_eq!(scrape_counts(&mut s3, ih).await, (1, 1));
    // When a member leaves, the next peer gets in.
    s2.announce_ok(&announce(ih, p2, Some("stopped"), None))
        .await;
    s3.announce_ok(&announce(ih, p3, Some("started"), None))
        .await;
    assert!(wait_errors(&tracker, "swarm_full", 1.0).await >= 1.0);
}

#[tokio::test]
async fn messages_above_max_message_bytes_are_refused() {
    let tracker = Tracker::start("[limits]\nmax_message_bytes = 1024\nmax_frame_bytes = 1024\n");
    let ih = Id::random();
    let mut ws = tracker.ws().await;
    // Just under the limit (unknown fields are tolerated): accepted.
    let mut fits = announce(Id::random(), Id::random(), Some("started"), None);
    let base = fits.to_string().len();
    fits["padding"] = json!("x".repeat(1000 - base - 14));
    assert!(fits.to_string().len() <= 1024);
    ws.announce_ok(&fits).await;

    let mut bystander = tracker.ws().await;
    bystander
        .announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    let mut big = announce(ih, Id::random(), Some("started"), None);
    big["padding"] = json!("x".repeat(4000));
    ws.send(Message::text(big.to_string())).await;
    match ws.next_event(STEP).await {
        Event::Json(reply) => assert_failure(&reply, "message too large"),
        Event::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::Size, "{frame:?}");
            assert_eq!(frame.reason.as_str(), "message too large", "{frame:?}");
        }
        other => {
            panic!("expected a failure or a close frame for an oversized message, got {other:?}")
        }
    }
    assert_eq!(wait_errors(&tracker, "oversized_message", 1.0).await, 1.0);
    // The oversized announce did not count; other connections are undisturbed.
    assert_eq!(scrape_counts(&mut bystander, ih).await, (0, 1));
}

#[tokio::test]
async fn frames_above_max_frame_bytes_are_refused() {
    let tracker = Tracker::start("[limits]\nmax_message_bytes = 8192\nmax_frame_bytes = 1024\n");
    let mut ws = tracker.ws().await;
    // A 2000-byte message in one frame: under the message limit, over the frame limit.
    let mut big = announce(Id::random(), Id::random(), Some("started"), None);
    let base = big.to_string().len();
    big["padding"] = json!("y".repeat(2000 - base - 14));
    ws.send(Message::text(big.to_string())).await;
    match ws.next_event(STEP).await {
        Event::Json(reply) => assert_failure(&reply, "message too large"),
        Event::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::Size, "{frame:?}");
            assert_eq!(frame.reason.as_str(), "message too large", "{frame:?}");
        }
        other => {
            panic!("expected a failure or a close frame for an oversized frame, got {other:?}")
        }
    }
    assert_eq!(wait_errors(&tracker, "oversized_message", 1.0).await, 1.0);
}

/// Config for the slow-reader tests: a queue of 4 messages, closed after `timeout` seconds full.
fn slow_reader_config(timeout: u64) -> String {
    format!(
        "[limits]\nmax_outbound_queue = 4\nslow_consumer_timeout_secs = {timeout}\n\
         max_announces_per_sec = 100000\nannounce_burst = 100000\n"
    )
}

/// A peer with a tiny receive window (4 KiB `SO_RCVBUF`), so the tracker's writes to it block
/// as soon as the socket buffers are full, joined to `ih` as `peer_id`.
async fn slow_peer(tracker: &Tracker, ih: Id, peer_id: Id) -> Ws {
    let mut ws = Ws::try_connect(
        tracker.addr(),
        WsOptions {
            recv_buffer: Some(4096),
            ..Default::default()
        },
    )
    .await
    .expect("connect the slow peer");
    ws.announce_ok(&announce(ih, peer_id, Some("started"), None))
        .await;
    ws
}

/// Sends `burst` announces, each with one 30 kB offer (relayed to the only other peer of the
/// swarm), then reads their replies; returns how many offers were sent.
async fn offer_burst(ws: &mut Ws, ih: Id, sender: Id, burst: usize) -> usize {
    let sdp = json!({"type": "offer", "sdp": "a".repeat(30_000)});
    let mut msg = announce_with_offers(ih, sender, &[(Id::random(), sdp)]);
    msg["event"] = json!("update");
    // One text for the whole burst (offer ids need not be unique): cheap for the test process.
    let text = msg.to_string();
    for _ in 0..burst {
        ws.send(Message::text(text.clone())).await;
    }
    for _ in 0..burst {
        let reply = ws.next_json().await;
        assert!(
            reply.get("failure reason").is_none(),
            "sender refused: {reply}"
        );
    }
    burst
}

#[tokio::test]
async fn a_peer_that_does_not_read_is_dropped_when_its_queue_stays_full() {
    let tracker = Tracker::start(&slow_reader_config(2));
    let ih = Id::random();
    // The slow peer joins and then never reads again.
    let slow = slow_peer(&tracker, ih, Id::random()).await;
    let sender = Id::random();
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(ih, sender, Some("started"), None))
        .await;
    // Offers of 30 kB keep coming for it (20 every 100 ms, for at most 20 s): once its socket
    // buffers are full its queue fills, further offers are dropped, and when the queue has stayed
    // full for `slow_consumer_timeout_secs` (2 s) the connection is closed as too slow. The
    // sender is never held up.
    let mut sent = 0;
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = tracker.metrics().await;
        if metrics.errors("queue_full") >= 1.0 {
            assert!(
                metrics.dropped("queue_full") >= 1.0,
                "closed before dropping"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "a peer that does not read was not closed within 20 s ({sent} offers, {} dropped)",
            metrics.dropped("queue_full")
        );
        sent += offer_burst(&mut ws, ih, sender, 20).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It left the swarm.
    eventually("slow peer removed", STEP, || async {
        let mut observer = tracker.ws().await;
        (scrape_counts(&mut observer, ih).await == (0, 1)).then_some(())
    })
    .await;
    ws.announce_ok(&announce(ih, sender, Some("update"), None))
        .await;
    drop(slow);
}

#[tokio::test]
async fn a_peer_whose_socket_is_blocked_is_still_heard() {
    // A long slow-consumer timeout, so only the peer's own request can take it out of the swarm.
    let tracker = Tracker::start(&slow_reader_config(60));
    let ih = Id::random();
    let slow_id = Id::random();
    let mut slow = slow_peer(&tracker, ih, slow_id).await;
    let sender = Id::random();
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(ih, sender, Some("started"), None))
        .await;
    // Flood the peer, which never reads, with more than the kernel's socket buffers hold
    // (`tcp_wmem` allows at most 4 MiB here): the tracker's writes to it block, and relays for
    // it are dropped (at most 20 s).
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while sent < 300 || tracker.metrics().await.dropped("queue_full") < 1.0 {
        assert!(
            std::time::Instant::now() < give_up,
            "the peer's queue never filled ({sent} offers of 30 kB sent)"
        );
        sent += offer_burst(&mut ws, ih, sender, 20).await;
    }
    // Its `stopped` is still read and acted on while its socket is blocked.
    slow.send_json(&announce(ih, slow_id, Some("stopped"), None))
        .await;
    eventually("the blocked peer's stop is heard", STEP, || async {
        let mut observer = tracker.ws().await;
        (scrape_counts(&mut observer, ih).await == (0, 1)).then_some(())
    })
    .await;
    assert_eq!(
        tracker.metrics().await.errors("queue_full"),
        0.0,
        "it left by its own request, not closed as too slow"
    );
}

// Two threads, so the reader is not held up by the sender's flood in the test process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_loses_relays_but_keeps_its_connection() {
    let tracker = Tracker::start(&slow_reader_config(3));
    let ih = Id::random();
    let slow_id = Id::random();
    let mut slow = slow_peer(&tracker, ih, slow_id).await;
    // The slow peer stalls for 1 s (its queue fills and relays are dropped), then reads what
    // has arrived (for at most 1 s), and again: slower than the sender writes, but it never
    // stops reading for as long as `slow_consumer_timeout_secs` (3 s), so it keeps its
    // connection.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let done = done.clone();
        async move {
            let mut offers = 0u64;
            let started = std::time::Instant::now();
            let mut read = |event: Event| match event {
                Event::Json(v) if v.get("offer").is_some() => {
                    offers += 1;
                    Ok(true)
                }
                Event::Timeout => Ok(false),
                other => Err(format!(
                    "after {:?} and {offers} offers read: {other:?}",
                    started.elapsed()
                )),
            };
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let drain_until = std::time::Instant::now() + Duration::from_secs(1);
                while std::time::Instant::now() < drain_until
                    && read(slow.next_event(Duration::from_millis(100)).await)?
                {}
            }
            // The flood is over: read the rest.
            while read(slow.next_event(QUIET * 2).await)? {}
            Ok::<_, String>((slow, offers))
        }
    });
    let sender = Id::random();
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(ih, sender, Some("started"), None))
        .await;
    // Flood for 7 s (more than twice the slow-consumer timeout), at most 5,000 offers.
    let start = std::time::Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(7) && sent < 5_000 {
        sent += offer_burst(&mut ws, ih, sender, 10).await as u64;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let read = reader.await.expect("reader task");
    let metrics = tracker.metrics().await;
    let (mut slow, received) = read.unwrap_or_else(|e| {
        panic!(
            "the slow peer's connection ended {e}; {sent} offers sent, {} dropped, {} closed as too slow",
            metrics.dropped("queue_full"),
            metrics.errors("queue_full")
        )
    });
    let dropped = metrics.dropped("queue_full");
    eprintln!("slow reader: {sent} offers sent, {received} received, {dropped} dropped");
    assert!(
        dropped >= 1.0,
        "the flood never filled the slow peer's queue ({sent} sent, {received} received)"
    );
    assert!(received > 0, "the slow peer received nothing");
    // Every offer was either delivered or counted as dropped.
    assert_eq!(
        received as f64 + dropped,
        sent as f64,
        "{sent} offers sent, {received} received, {dropped} counted dropped"
    );
    assert_eq!(metrics.dropped("recipient_gone"), 0.0);
    assert_eq!(metrics.errors("queue_full"), 0.0, "no connection closed");
    // Still connected and still in the swarm.
    slow.announce_ok(&announce(ih, slow_id, Some("update"), None))
        .await;
    assert_eq!(scrape_counts(&mut slow, ih).await, (0, 2));
}
