//! HTTP on the tracker's port: BitTorrent announce and scrape (decoded with the `bt_bencode`
//! crate), compact and not, IPv4 and IPv6, in the same swarms as WebSocket peers; `/health`,
//! `/stats.json`, `/metrics` and 404.

use crate::common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bt_bencode::Value as Bencode;
use common::*;

/// An announce query for `peer` on `port`.
fn announce_query(
    path: &str,
    ih: Id,
    peer: Id,
    port: u16,
    left: u64,
    event: &str,
    compact: u8,
) -> String {
    let mut q = format!(
        "{path}?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&compact={compact}&numwant=50",
        ih.url(),
        peer.url()
    );
    if !event.is_empty() {
        q.push_str("&event=");
        q.push_str(event);
    }
    q
}

fn int(v: &Bencode, key: &str) -> u64 {
    v.get(key)
        .and_then(Bencode::as_u64)
        .unwrap_or_else(|| panic!("integer {key:?} in {v:?}"))
}

fn bytes<'a>(v: &'a Bencode, key: &str) -> &'a [u8] {
    v.get(key)
        .and_then(Bencode::as_byte_str)
        .map(|b| b.as_slice())
        .unwrap_or_else(|| panic!("byte string {key:?} in {v:?}"))
}

/// Compact IPv4 peers: 6 bytes each.
fn compact_v4(b: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(b.len() % 6, 0, "compact peers length {}", b.len());
    b.chunks(6)
        .map(|c| {
            SocketAddr::from((
                Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                u16::from_be_bytes([c[4], c[5]]),
            ))
        })
        .collect()
}

/// Compact IPv6 peers: 18 bytes each.
fn compact_v6(b: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(b.len() % 18, 0, "compact peers6 length {}", b.len());
    b.chunks(18)
        .map(|c| {
            let ip: [u8; 16] = c[..16].try_into().unwrap();
            SocketAddr::from((Ipv6Addr::from(ip), u16::from_be_bytes([c[16], c[17]])))
        })
        .collect()
}

fn failure(v: &Bencode) -> Option<&str> {
    v.get("failure reason").and_then(Bencode::as_str)
}

#[tokio::test]
async fn http_announce_compact_and_not_ipv4_and_ipv6_shares_swarms_with_websocket() {
    let tracker = Tracker::start_in(temp_dir(), "", &["127.0.0.1:0", "[::1]:0"]);
    let v4 = *tracker
        .addrs
        .iter()
        .find(|a| a.is_ipv4())
        .expect("IPv4 listener");
    let v6 = *tracker
        .addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("IPv6 listener");
    let ih = Id::random();
    let (s4, l6, l4, w6) = (Id::random(), Id::random(), Id::random(), Id::random());

    // An IPv4 seeder.
    let r = http_get(
        v4,
        &announce_query("/announce", ih, s4, 1111, 0, "started", 1),
    )
    .await;
    assert_eq!(r.status, 200);
    let b = r.bencode();
    assert_eq!(failure(&b), None, "{b:?}");
    assert_eq!(
        (int(&b, "complete"), int(&b, "incomplete")),
        (1, 0),
        "{b:?}"
    );
    assert!(int(&b, "interval") > 0);
    assert!(
        compact_v4(bytes(&b, "peers")).is_empty(),
        "no other peer yet: {b:?}"
    );

    // An IPv6 leecher, through PeerTube's path.
    let r = http_get(
        v6,
        &announce_query("/tracker/announce", ih, l6, 2222, 500, "started", 1),
    )
    .await;
    let b = r.bencode();
    assert_eq!(failure(&b), None, "{b:?}");
    assert_eq!(
        (int(&b, "complete"), int(&b, "incomplete")),
        (1, 1),
        "{b:?}"
    );

    // A WebSocket peer joins the same swarm.
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(ih, Id::random(), Some("started"), Some(7)))
        .await;

    // An IPv4 leecher asking for compact peers sees the IPv4 seeder, not itself.
    let r = http_get(
        v4,
        &announce_query("/announce", ih, l4, 3333, 500, "started", 1),
    )
    .await;
    let b = r.bencode();
    assert_eq!(
        (int(&b, "complete"), int(&b, "incomplete")),
        (1, 3),
        "counts include WS: {b:?}"
    );
    let peers = compact_v4(bytes(&b, "peers"));
    assert!(
        peers.contains(&"127.0.0.1:1111".parse().unwrap()),
        "{peers:?}"
    );
    assert!(
        !peers.contains(&"127.0.0.1:3333".parse().unwrap()),
        "not itself: {peers:?}"
    );

    // An IPv6 peer asking for compact peers gets the IPv6 leecher in `peers6`.
    let r = http_get(
        v6,
        &announce_query("/announce", ih, w6, 4444, 0, "started", 1),
    )
    .await;
    let b = r.bencode();
    assert_eq!(
        (int(&b, "complete"), int(&b, "incomplete")),
        (2, 3),
        "{b:?}"
    );
    let peers6 = compact_v6(bytes(&b, "peers6"));
    assert!(
        peers6.contains(&"[::1]:2222".parse().unwrap()),
        "{peers6:?}"
    );
    assert!(
        !peers6.contains(&"[::1]:4444".parse().unwrap()),
        "not itself: {peers6:?}"
    );

    // Not compact: a list of dictionaries with peer id, ip and port.
    let r = http_get(v4, &announce_query("/announce", ih, l4, 3333, 500, "", 0)).await;
    let b = r.bencode();
    let list = b
        .get("peers")
        .and_then(Bencode::as_list)
        .expect("peers list");
    let found: Vec<(Vec<u8>, String, u64)> = list
        .iter()
        .map(|p| {
            (
                bytes(p, "peer id").to_vec(),
                p.get("ip")
                    .and_then(Bencode::as_str)
                    .expect("ip")
                    .to_owned(),
                int(p, "port"),
            )
        })
        .collect();
    assert!(
        found.contains(&(s4.0.to_vec(), "127.0.0.1".into(), 1111)),
        "IPv4 seeder in {found:?}"
    );
    assert!(
        !found.iter().any(|(id, _, _)| id == &l4.0.to_vec()),
        "the asking peer is not listed: {found:?}"
    );

    // The WebSocket side sees the HTTP peers in its counts, also over IPv6.
    assert_eq!(scrape_counts(&mut ws, ih).await, (2, 3));
    let mut ws6 = Ws::connect(v6).await;
    assert_eq!(scrape_counts(&mut ws6, ih).await, (2, 3));

    // numwant bounds the peer list.
    let r = http_get(
        v4,
        &announce_query("/announce", ih, l4, 3333, 500, "", 1).replace("numwant=50", "numwant=1"),
    )
    .await;
    let b = r.bencode();
    let listed = compact_v4(bytes(&b, "peers")).len()
        + b.get("peers6")
            .and_then(Bencode::as_byte_str)
            .map_or(0, |p| p.len() / 18);
    assert_eq!(listed, 1, "numwant=1: {b:?}");

    // HTTP scrape: files keyed by the raw 20-byte info_hash, repeated info_hash parameters.
    let other = Id::random();
    for path in ["/scrape", "/tracker/scrape"] {
        let r = http_get(
            v4,
            &format!("{path}?info_hash={}&info_hash={}", ih.url(), other.url()),
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
        let b = r.bencode();
        let files = b
            .get("files")
            .and_then(Bencode::as_dict)
            .expect("files dict");
        let entry = files
            .get(&ih.0[..])
            .unwrap_or_else(|| panic!("{path}: {b:?}"));
        assert_eq!(
            (int(entry, "complete"), int(entry, "incomplete")),
            (2, 3),
            "{path}"
        );
        assert!(entry.get("downloaded").and_then(Bencode::as_u64).is_some());
        if let Some(e) = files.get(&other.0[..]) {
            assert_eq!((int(e, "complete"), int(e, "incomplete")), (0, 0), "{path}");
        }
    }

    // `stopped` removes an HTTP peer.
    let r = http_get(
        v4,
        &announce_query("/announce", ih, s4, 1111, 0, "stopped", 1),
    )
    .await;
    assert_eq!(failure(&r.bencode()), None);
    assert_eq!(scrape_counts(&mut ws, ih).await, (1, 3));
    let r = http_get(v4, &announce_query("/announce", ih, l4, 3333, 500, "", 1)).await;
    let peers = compact_v4(bytes(&r.bencode(), "peers"));
    assert!(
        !peers.contains(&"127.0.0.1:1111".parse().unwrap()),
        "stopped peer gone: {peers:?}"
    );
}

#[tokio::test]
async fn http_announce_errors_are_bencoded_failure_reasons() {
    let tracker = Tracker::start("");
    let ih = Id::random();
    let peer = Id::random();
    let cases = [
        (
            format!("/announce?peer_id={}&port=1", peer.url()),
            "missing info_hash",
        ),
        (
            format!("/announce?info_hash={}&port=1", ih.url()),
            "missing peer_id",
        ),
        (
            format!("/announce?info_hash=abc&peer_id={}&port=1", peer.url()),
            "invalid info_hash",
        ),
        (
            format!("/announce?info_hash={}&peer_id={}", ih.url(), peer.url()),
            "missing port",
        ),
        (
            format!(
                "/announce?info_hash={}&peer_id={}&port=1&event=exploded",
                ih.url(),
                peer.url()
            ),
            "invalid event",
        ),
    ];
    for (query, reason) in cases {
        let b = tracker.get(&query).await.bencode();
        assert_eq!(failure(&b), Some(reason), "{query}: {b:?}");
    }
    let metrics = tracker.metrics().await;
    assert!(metrics.errors("invalid_info_hash") >= 2.0);
    assert!(metrics.errors("invalid_peer_id") >= 1.0);
}

#[tokio::test]
async fn health_stats_metrics_and_not_found() {
    let tracker = Tracker::start("[metrics]\nstats_top_swarms = 2\n");
    let health = tracker.get("/health").await;
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    assert_eq!(tracker.get("/no/such/page").await.status, 404);

    let (big, mid, small) = (Id::random(), Id::random(), Id::random());
    let mut sockets = Vec::new();
    for (ih, seeders, leechers) in [(big, 2, 2), (mid, 1, 1), (small, 0, 1)] {
        for i in 0..(seeders + leechers) {
            let mut ws = tracker.ws().await;
            let left = if i < seeders { Some(0) } else { Some(9) };
            ws.announce_ok(&announce(ih, Id::random(), Some("started"), left))
                .await;
            sockets.push(ws);
        }
    }
    // Bad inputs show up in the error counters.
    sockets[0]
        .send(tokio_tungstenite::tungstenite::Message::text("nope"))
        .await;
    let _ = sockets[0].next_json().await;

    let stats = tracker.stats().await;
    assert_eq!(stats["swarms"], 3, "{stats}");
    assert_eq!(stats["seeders"], 3, "{stats}");
    assert_eq!(stats["leechers"], 4, "{stats}");
    assert_eq!(stats["peers"], 7, "{stats}");
    assert!(
        stats["connections"].as_u64().expect("connections") >= 7,
        "{stats}"
    );
    let top = stats["top_swarms"].as_array().expect("top_swarms");
    assert_eq!(top.len(), 2, "stats_top_swarms = 2: {stats}");
    assert_eq!(top[0]["info_hash"], big.hex(), "{stats}");
    assert_eq!(
        (top[0]["seeders"].as_u64(), top[0]["leechers"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(top[1]["info_hash"], mid.hex(), "{stats}");

    let response = tracker.get("/metrics").await;
    assert_eq!(response.status, 200);
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let m = Metrics(response.text());
    assert_eq!(m.value("segswarm_swarms", &[]), 3.0, "{}", m.0);
    assert_eq!(
        m.value("segswarm_peers", &[("kind", "seeder")]),
        3.0,
        "{}",
        m.0
    );
    assert_eq!(
        m.value("segswarm_peers", &[("kind", "leecher")]),
        4.0,
        "{}",
        m.0
    );
    assert!(
        m.value("segswarm_connections", &[("transport", "ws")]) >= 7.0,
        "{}",
        m.0
    );
    assert_eq!(
        m.value("segswarm_messages_in_total", &[("kind", "announce")]),
        7.0,
        "{}",
        m.0
    );
    assert_eq!(m.errors("malformed_json"), 1.0, "{}", m.0);
    assert!(
        m.0.contains("# TYPE segswarm_offer_relay_seconds histogram"),
        "{}",
        m.0
    );
    for kind in [
        "binary_frame",
        "oversized_message",
        "rate_limited",
        "origin_denied",
        "connection_limit",
    ] {
        assert_eq!(
            m.get("segswarm_errors_total", &[("kind", kind)]),
            Some(0.0),
            "{kind} listed at 0"
        );
    }

    // Closing the sockets brings the gauges back down.
    for ws in sockets {
        ws.close().await;
    }
    eventually("gauges back to zero", STEP, || async {
        let m = tracker.metrics().await;
        (m.value("segswarm_swarms", &[]) == 0.0
            && m.value("segswarm_peers", &[("kind", "leecher")]) == 0.0
            && m.value("segswarm_connections", &[("transport", "ws")]) == 0.0)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn http_keep_alive_serves_several_requests_on_one_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tracker = Tracker::start("");
    let ih = Id::random();
    let mut stream = tcp_connect(tracker.addr(), None).await.expect("connect");
    let requests = format!(
        "GET /health HTTP/1.1\r\nHost: t\r\n\r\n\
         GET {} HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /scrape?info_hash={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        announce_query("/announce", ih, Id::random(), 5555, 0, "started", 1),
        ih.url()
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut raw))
        .await
        .expect("responses in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 3, "{text}");
    // The scrape, answered last, saw the announce made earlier on the same connection.
    let last = text.rfind("HTTP/1.1 200").unwrap();
    let scrape = parse_http_response(&raw[last..]).expect("the scrape response");
    let b = scrape.bencode();
    let entry = b
        .get("files")
        .and_then(Bencode::as_dict)
        .and_then(|f| f.get(&ih.0[..]))
        .unwrap_or_else(|| panic!("{b:?}"));
    assert_eq!((int(entry, "complete"), int(entry, "incomplete")), (1, 0));
}
