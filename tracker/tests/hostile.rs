//! Hostile clients against the real daemon: each test plays one attack a public tracker meets
//! and checks what the attacker and the honest peers see, what is counted, and that the
//! tracker's memory stays bounded.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A config that lets one test connection send requests as fast as it likes.
const UNLIMITED_RATE: &str = "[limits]\nmax_announces_per_sec = 100000\nannounce_burst = 100000\n";

/// The daemon's resident memory, bytes.
fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// A new peer joins `ih` with one offer, which must reach `target` (the only other peer); returns
/// the offering connection.
async fn offer_reaches(tracker: &Tracker, ih: Id, target: &mut Ws) -> Ws {
    let mut offerer = tracker.ws().await;
    let offer_id = Id::random();
    offerer
        .announce_ok(&announce_with_offers(
            ih,
            Id::random(),
            &[(offer_id, sdp_offer("offer"))],
        ))
        .await;
    let relayed = target.next_json().await;
    assert_eq!(relayed["offer_id"], json!(offer_id.bin()), "{relayed}");
    offerer
}

fn stopped(ih: Id, peer: Id) -> serde_json::Value {
    announce(ih, peer, Some("stopped"), None)
}

#[tokio::test]
async fn a_connection_holds_at_most_one_peer_per_swarm() {
    let tracker = Tracker::start(UNLIMITED_RATE);
    let ih = Id::random();
    let mut ghost = tracker.ws().await;
    let mut observer = tracker.ws().await;
    // Join, then "leave" with a peer_id the connection does not hold, then join as someone
    // else: fifteen times.
    for _ in 0..15 {
        ghost
            .announce_ok(&announce(ih, Id::random(), Some("started"), None))
            .await;
        let reply = ghost.request(&stopped(ih, Id::random())).await;
        assert_failure(
            &reply,
            "stopped for a peer_id this connection does not hold",
        );
    }
    assert_eq!(
        scrape_counts(&mut observer, ih).await,
        (0, 1),
        "one socket, one peer in the swarm"
    );
    // A `stopped` for a swarm the connection never joined changes nothing either.
    let elsewhere = Id::random();
    let reply = ghost.request(&stopped(elsewhere, Id::random())).await;
    assert_failure(
        &reply,
        "stopped for a peer_id this connection does not hold",
    );
    assert!(wait_errors(&tracker, "not_own_peer", 16.0).await >= 16.0);
    // Once the socket closes, nothing of it is left in the swarm.
    ghost.close().await;
    eventually("the ghost's socket left no peer behind", STEP, || async {
        let mut observer = tracker.ws().await;
        (scrape_counts(&mut observer, ih).await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_live_peer_id_cannot_be_taken_over() {
    let tracker = Tracker::start("");
    let ih = Id::random();
    let victim_id = Id::random();
    let mut victim = tracker.ws().await;
    victim
        .announce_ok(&announce(ih, victim_id, Some("started"), None))
        .await;

    // Another socket announces the victim's (public) peer_id: refused.
    let mut thief = tracker.ws().await;
    let reply = thief
        .request(&announce(ih, victim_id, Some("started"), None))
        .await;
    assert_failure(&reply, "peer_id is in use by another connection");
    // Its `stopped` does not evict the victim.
    let reply = thief.request(&stopped(ih, victim_id)).await;
    assert_failure(
        &reply,
        "stopped for a peer_id this connection does not hold",
    );

    // Offers for the victim still reach the victim, not the thief.
    let mut offerer = offer_reaches(&tracker, ih, &mut victim).await;
    thief.expect_quiet().await;
    assert_eq!(scrape_counts(&mut offerer, ih).await, (0, 2));
    assert!(wait_errors(&tracker, "peer_id_in_use", 1.0).await >= 1.0);

    // The victim's socket dies without a close frame; the same client reconnects with its
    // peer_id and is accepted.
    drop(victim);
    eventually(
        "a reconnect with the same peer_id is accepted",
        STEP,
        || async {
            let mut again = tracker.ws().await;
            let reply = again
                .request(&announce(ih, victim_id, Some("started"), None))
                .await;
            reply.get("failure reason").is_none().then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_silent_holder_gives_its_peer_id_to_a_reconnecting_client() {
    // The server pings after 1 s of silence; a holder that has said nothing for 3 s (it did not
    // answer) is taken to be a dead socket the server has not noticed yet.
    let tracker = Tracker::start(
        "[protocol]\nping_interval_secs = 1\nidle_timeout_secs = 600\n\
         peer_id_takeover_after_secs = 3\n",
    );
    let ih = Id::random();
    let id = Id::random();
    let mut old = tracker.ws().await;
    old.announce_ok(&announce(ih, id, Some("started"), None))
        .await;
    // From here on `old` never reads, so it never answers a ping.
    let mut new = tracker.ws().await;
    let reply = new.request(&announce(ih, id, Some("started"), None)).await;
    assert_failure(&reply, "peer_id is in use by another connection");
    let give_up = std::time::Instant::now() + STEP * 2;
    loop {
        let reply = new.request(&announce(ih, id, Some("update"), None)).await;
        if reply.get("failure reason").is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the silent holder kept its peer_id: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Offers now go to the new connection.
    offer_reaches(&tracker, ih, &mut new).await;
    drop(old);
}

/// A client with a 4 KiB receive window that will never read: the tracker's writes to it stall
/// as soon as the socket buffers are full.
async fn non_reading_client(tracker: &Tracker) -> Ws {
    Ws::try_connect(
        tracker.addr(),
        WsOptions {
            recv_buffer: Some(4096),
            ..Default::default()
        },
    )
    .await
    .expect("connect")
}

/// A ping frame as a client writes it (masked), with a 125-byte payload.
fn ping_frame() -> Vec<u8> {
    const MASK: [u8; 4] = [1, 2, 3, 4];
    let mut out = vec![0x89, 0x80 | 125];
    out.extend_from_slice(&MASK);
    out.extend((0..125u8).map(|i| i ^ MASK[usize::from(i) % 4]));
    out
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_never_reads_stays_bounded() {
    let tracker = Tracker::start("");
    let ws = non_reading_client(&tracker).await;
    let before = rss_bytes(tracker.pid());
    // 64 MiB of pings, never reading a pong.
    let mut stream = ws.inner.into_inner();
    let burst: Vec<u8> = ping_frame().repeat(8192);
    let mut sent = 0usize;
    while sent < 64 << 20 {
        if tokio::time::timeout(STEP, stream.write_all(&burst))
            .await
            .map_or(true, |r| r.is_err())
        {
            break; // the tracker closed the flooding connection: also bounded
        }
        sent += burst.len();
    }
    // The tracker has read (or refused) everything: a fresh request is answered.
    let mut probe = tracker.ws().await;
    scrape_counts(&mut probe, Id::random()).await;
    let grown = rss_bytes(tracker.pid()).saturating_sub(before);
    eprintln!(
        "{} MiB of pings: RSS grew by {} KiB",
        sent >> 20,
        grown >> 10
    );
    assert!(
        grown < 16 << 20,
        "{} MiB of pings grew the tracker by {} MiB",
        sent >> 20,
        grown >> 20
    );
    let metrics = tracker.metrics().await;
    assert!(
        metrics.dropped("control_flood") > 0.0,
        "unanswered pings are counted"
    );
    drop(stream);
}

#[tokio::test]
async fn scrape_lists_are_capped_and_deduplicated() {
    let tracker = Tracker::start("[limits]\nmax_scrape_info_hashes = 8\n");
    let mut ws = tracker.ws().await;
    let ih = Id::random();
    ws.announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    // The same info_hash many times is one entry.
    let reply = ws.request(&scrape(Some(&[ih; 50]))).await;
    assert_eq!(
        reply["files"].as_object().map(|f| f.len()),
        Some(1),
        "{reply}"
    );
    assert_eq!(scrape_entry(&reply, ih), Some((0, 1)));
    // More distinct info_hashes than the cap: refused with a reason.
    let many: Vec<Id> = (0..9).map(|_| Id::random()).collect();
    let reply = ws.request(&scrape(Some(&many))).await;
    assert_failure(&reply, "too many info_hashes in one scrape");
    // HTTP scrapes too.
    let query: String = many
        .iter()
        .map(|id| format!("info_hash={}&", id.url()))
        .collect();
    let response = tracker.get(&format!("/scrape?{query}")).await;
    assert!(
        response
            .text()
            .contains("too many info_hashes in one scrape"),
        "{}",
        response.text()
    );
    let repeated = format!("info_hash={}&", ih.url()).repeat(30);
    let response = tracker.get(&format!("/scrape?{repeated}")).await;
    match response.bencode() {
        bt_bencode::Value::Dict(top) => match top.get(&b"files"[..]) {
            Some(bt_bencode::Value::Dict(files)) => assert_eq!(files.len(), 1),
            other => panic!("files: {other:?}"),
        },
        other => panic!("scrape response: {other:?}"),
    }
    assert!(wait_errors(&tracker, "too_many_info_hashes", 2.0).await >= 2.0);
}

#[tokio::test]
async fn replies_to_a_client_that_never_reads_are_bounded_in_bytes() {
    // A long message queue, so only a bound in bytes can stop the parking.
    let tracker = Tracker::start(&format!(
        "{UNLIMITED_RATE}max_outbound_queue = 1000000\nslow_consumer_timeout_secs = 600\n"
    ));
    let ws = non_reading_client(&tracker).await;
    let before = rss_bytes(tracker.pid());
    let ids: Vec<Id> = (0..64).map(|_| Id::random()).collect();
    let request = scrape(Some(&ids)).to_string();
    let frame = masked_text_frame(request.as_bytes());
    let mut stream = ws.inner.into_inner();
    // 4000 scrapes of 64 swarms: about 40 MB of replies if all were kept.
    for _ in 0..40 {
        let batch = frame.repeat(100);
        tokio::time::timeout(STEP, stream.write_all(&batch))
            .await
            .expect("the tracker keeps reading")
            .expect("write scrapes");
    }
    let mut probe = tracker.ws().await;
    scrape_counts(&mut probe, Id::random()).await;
    let metrics = eventually("replies dropped", STEP, || async {
        let m = tracker.metrics().await;
        (m.dropped("queue_full") > 0.0).then_some(m)
    })
    .await;
    let grown = rss_bytes(tracker.pid()).saturating_sub(before);
    eprintln!(
        "4000 unread scrape replies: RSS grew by {} KiB",
        grown >> 10
    );
    assert!(
        grown < 12 << 20,
        "a client that never reads parked {} MiB",
        grown >> 20
    );
    assert!(metrics.dropped("queue_full") > 1000.0);
    drop(stream);
}

/// A masked text frame.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [9, 8, 7, 6];
    let mut out = vec![0x81];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

#[tokio::test]
async fn an_http_client_that_never_reads_its_responses_is_dropped() {
    let tracker = Tracker::start("[server]\nhttp_write_timeout_secs = 1\n");
    let stream = tcp_connect_with(tracker.addr(), None, Some(4096))
        .await
        .expect("connect");
    let mut stream = stream;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", tracker.addr()).repeat(2000);
    // hyper reads pipelined requests one after another; the writes stall once the socket
    // buffers are full.
    let _ = tokio::time::timeout(STEP, stream.write_all(request.as_bytes())).await;
    eventually(
        "the stalled HTTP connection is closed",
        STEP * 2,
        || async {
            let stats = tracker.stats().await;
            // Only the probe itself is open.
            (stats["http_connections"] == json!(1)).then_some(())
        },
    )
    .await;
    // The connection was closed by the server: reading drains what was sent and then ends.
    let mut sink = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(STEP * 2, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was not closed");
}

#[tokio::test]
async fn busiest_swarms_are_computed_at_most_once_per_cache_period() {
    let tracker = Tracker::start("[metrics]\nstats_cache_secs = 600\n");
    let first = tracker.stats().await;
    let mut ws = tracker.ws().await;
    let ih = Id::random();
    ws.announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    let second = tracker.stats().await;
    // Totals are live (kept per shard, not recounted)...
    assert_eq!(second["swarms"], json!(1), "{second}");
    // ... the ranking of swarms is the one computed for the first request.
    assert_eq!(second["top_swarms"], first["top_swarms"], "{second}");
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_prefix() {
    let tracker = Tracker::start(
        "[server]\ntrust_forwarded_for = true\n[limits]\nmax_connections_per_ip = 1\n",
    );
    let headers = |ip: &'static str| [("X-Forwarded-For", ip)];
    let (a, b, c) = (
        headers("2001:db8:1:2::1"),
        headers("2001:db8:1:2:ffff::9"),
        headers("2001:db8:1:3::1"),
    );
    let via = |headers| WsOptions {
        headers,
        ..Default::default()
    };
    let probe = announce(Id::random(), Id::random(), Some("started"), None);
    let mut first = Ws::try_connect(tracker.addr(), via(&a))
        .await
        .expect("first address of the /64");
    first.announce_ok(&probe).await;
    // Another address of the same /64 is the same client.
    let same = Ws::try_connect(tracker.addr(), via(&b)).await;
    assert_refused(same, "too many connections", &probe).await;
    // Another /64 is another client.
    let mut other = Ws::try_connect(tracker.addr(), via(&c))
        .await
        .expect("another /64");
    let mut probe2 = probe.clone();
    probe2["peer_id"] = json!(Id::random().bin());
    other.announce_ok(&probe2).await;
}

/// Sends a close frame with `code` on a fresh connection and returns the code of the server's
/// close frame, read from the socket itself (a client library would refuse some of them).
async fn close_reply(tracker: &Tracker, code: u16) -> Option<u16> {
    let ws = tracker.ws().await;
    let mut stream = ws.inner.into_inner();
    let mut frame = vec![0x88, 0x82, 0, 0, 0, 0];
    frame.extend_from_slice(&code.to_be_bytes());
    stream.write_all(&frame).await.expect("write close");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(STEP, stream.read_to_end(&mut reply)).await;
    assert_eq!(reply.first(), Some(&0x88), "a close frame: {reply:?}");
    (reply.len() >= 4).then(|| u16::from_be_bytes([reply[2], reply[3]]))
}

#[tokio::test]
async fn close_codes_that_must_not_be_sent_are_not_echoed() {
    let tracker = Tracker::start("");
    for code in [1005u16, 1006, 1015, 999, 1004, 2000] {
        assert_eq!(
            close_reply(&tracker, code).await,
            Some(1002),
            "close code {code} is a protocol error"
        );
    }
    for code in [1000u16, 1001, 1008, 4000] {
        assert_eq!(close_reply(&tracker, code).await, Some(code), "echoed");
    }
}
