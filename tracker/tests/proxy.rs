//! Behind a reverse proxy (`server.trust_forwarded_for`): the client address comes from the last
//! `X-Forwarded-For` entry or `X-Real-IP` when trusted, and from the TCP peer otherwise; it is
//! the address of HTTP announce peers and the key of the per-IP limits (connections per IP,
//! HTTP announces per IP per second).

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bt_bencode::Value as Bencode;
use common::*;

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

/// A non-compact HTTP announce for `peer` on `port`.
fn http_announce(ih: Id, peer: Id, port: u16) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=10&compact=0&numwant=50",
        ih.url(),
        peer.url()
    )
}

/// The `ip` of each peer (by port) in a non-compact announce response.
fn peer_ips(b: &Bencode) -> Vec<(u16, String)> {
    assert!(b.get("failure reason").is_none(), "{b:?}");
    let mut out: Vec<(u16, String)> = b
        .get("peers")
        .and_then(Bencode::as_array)
        .unwrap_or_else(|| panic!("peers list in {b:?}"))
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Bencode::as_u64).expect("port") as u16;
            let ip = p.get("ip").and_then(Bencode::as_str).expect("ip");
            (port, ip.to_owned())
        })
        .collect();
    out.sort();
    out
}

async fn ws_via(
    tracker: &Tracker,
    source: Option<IpAddr>,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    Ws::try_connect(
        tracker.addr(),
        WsOptions {
            source_ip: source,
            headers,
            ..Default::default()
        },
    )
    .await
}

async fn get_via(
    addr: SocketAddr,
    target: &str,
    source: Option<IpAddr>,
    headers: &[(&str, &str)],
) -> Bencode {
    let r = http_get_with(addr, target, source, headers).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.bencode()
}

#[tokio::test]
async fn forwarded_headers_are_ignored_unless_trusted() {
    let tracker = Tracker::start("[limits]\nmax_connections_per_ip = 1\n");
    let ih = Id::random();
    let xff = [("X-Forwarded-For", "203.0.113.7")];
    get_via(
        tracker.addr(),
        &http_announce(ih, Id::random(), 1001),
        ip(21),
        &xff,
    )
    .await;
    let b = get_via(
        tracker.addr(),
        &http_announce(ih, Id::random(), 1002),
        ip(22),
        &[],
    )
    .await;
    assert_eq!(peer_ips(&b), vec![(1001, "127.0.0.21".to_owned())]);

    // Per-IP caps count the TCP peer, whatever the headers say.
    let probe = announce(ih, Id::random(), Some("started"), None);
    let mut first = ws_via(&tracker, ip(23), &[("X-Forwarded-For", "203.0.113.1")])
        .await
        .expect("first connection");
    first.announce_ok(&probe).await;
    let second = ws_via(&tracker, ip(23), &[("X-Forwarded-For", "203.0.113.2")]).await;
    assert_refused(second, "too many connections", &probe).await;
}

#[tokio::test]
async fn trusted_forwarded_headers_give_the_client_address() {
    let tracker = Tracker::start(
        "[server]\ntrust_forwarded_for = true\n[limits]\nmax_connections_per_ip = 1\n",
    );
    let ih = Id::random();
    let addr = tracker.addr();
    // The proxy appends the client address last; earlier entries are the client's own claims.
    let xff = [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")];
    get_via(addr, &http_announce(ih, Id::random(), 1001), None, &xff).await;
    let real = [("X-Real-IP", "2001:db8::9")];
    get_via(addr, &http_announce(ih, Id::random(), 1002), None, &real).await;
    // No header: the TCP peer.
    get_via(addr, &http_announce(ih, Id::random(), 1003), ip(31), &[]).await;
    let b = get_via(addr, &http_announce(ih, Id::random(), 1004), None, &[]).await;
    assert_eq!(
        peer_ips(&b),
        vec![
            (1001, "203.0.113.7".to_owned()),
            (1002, "2001:db8::9".to_owned()),
            (1003, "127.0.0.31".to_owned()),
        ]
    );

    // Per-IP connection caps count the forwarded client, not the proxy's address.
    let probe = announce(ih, Id::random(), Some("started"), None);
    let a = [("X-Forwarded-For", "203.0.113.1")];
    let mut first = ws_via(&tracker, ip(32), &a).await.expect("client A");
    first.announce_ok(&probe).await;
    let mut other = ws_via(&tracker, ip(32), &[("X-Forwarded-For", "203.0.113.2")])
        .await
        .expect("client B through the same proxy");
    other
        .announce_ok(&announce(ih, Id::random(), Some("started"), None))
        .await;
    let again = ws_via(&tracker, ip(33), &a).await;
    assert_refused(again, "too many connections", &probe).await;
    assert!(wait_errors(&tracker, "connection_limit", 1.0).await >= 1.0);
    // When A's connection closes, A may connect again.
    first.close().await;
    eventually("client A's slot frees up", STEP, || async {
        // Until the server has released the closed connection's place, a new one is refused
        // with a close frame.
        let mut ws = ws_via(&tracker, ip(32), &a).await.ok()?;
        ws.send_json(&scrape(Some(&[ih]))).await;
        match ws.next_event(STEP).await {
            Event::Json(reply) => (reply["action"] == "scrape").then_some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn http_announces_are_rate_limited_per_ip() {
    let tracker = Tracker::start(
        "[limits]\nmax_http_announces_per_ip_per_sec = 1\nhttp_announce_burst_per_ip = 2\n",
    );
    let ih = Id::random();
    let addr = tracker.addr();
    let peer = Id::random();
    for _ in 0..2 {
        get_via(addr, &http_announce(ih, peer, 1001), ip(41), &[]).await;
    }
    let b = get_via(addr, &http_announce(ih, peer, 1001), ip(41), &[]).await;
    assert_eq!(
        b.get("failure reason").and_then(Bencode::as_str),
        Some("rate limit exceeded: announce less often"),
        "{b:?}"
    );
    // Another address is not affected; forwarded headers are not trusted here.
    let xff = [("X-Forwarded-For", "203.0.113.9")];
    let b = get_via(addr, &http_announce(ih, Id::random(), 1002), ip(42), &[]).await;
    assert_eq!(peer_ips(&b), vec![(1001, "127.0.0.41".to_owned())]);
    let b = get_via(addr, &http_announce(ih, peer, 1001), ip(41), &xff).await;
    assert!(b.get("failure reason").is_some(), "{b:?}");
    assert_eq!(wait_errors(&tracker, "rate_limited", 2.0).await, 2.0);
    // The bucket refills at 1 per second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = get_via(addr, &http_announce(ih, peer, 1001), ip(41), &[]).await;
    assert!(b.get("failure reason").is_none(), "{b:?}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_http_announces_are_rate_limited_per_client() {
    let tracker = Tracker::start(
        "[server]\ntrust_forwarded_for = true\n\
         [limits]\nmax_http_announces_per_ip_per_sec = 1\nhttp_announce_burst_per_ip = 1\n",
    );
    let ih = Id::random();
    let addr = tracker.addr();
    let a = [("X-Forwarded-For", "203.0.113.1")];
    let b_hdr = [("X-Forwarded-For", "203.0.113.2")];
    get_via(addr, &http_announce(ih, Id::random(), 1001), ip(51), &a).await;
    // Client B through the same proxy has its own bucket...
    let b = get_via(addr, &http_announce(ih, Id::random(), 1002), ip(51), &b_hdr).await;
    assert!(b.get("failure reason").is_none(), "{b:?}");
    // ...and client A is limited whichever proxy address it comes through.
    let b = get_via(addr, &http_announce(ih, Id::random(), 1003), ip(52), &a).await;
    assert_eq!(
        b.get("failure reason").and_then(Bencode::as_str),
        Some("rate limit exceeded: announce less often"),
        "{b:?}"
    );
    assert_eq!(wait_errors(&tracker, "rate_limited", 1.0).await, 1.0);
}

#[tokio::test]
async fn http_scrapes_are_rate_limited_per_ip_apart_from_announces() {
    let tracker = Tracker::start(
        "[limits]\nmax_http_scrapes_per_ip_per_sec = 1\nhttp_scrape_burst_per_ip = 2\n",
    );
    let ih = Id::random();
    let addr = tracker.addr();
    let peer = Id::random();
    get_via(addr, &http_announce(ih, peer, 1001), ip(61), &[]).await;
    let target = format!("/scrape?info_hash={}", ih.url());
    for _ in 0..2 {
        let b = get_via(addr, &target, ip(61), &[]).await;
        assert!(b.get("files").is_some(), "{b:?}");
    }
    let b = get_via(addr, &target, ip(61), &[]).await;
    assert_eq!(
        b.get("failure reason").and_then(Bencode::as_str),
        Some("rate limit exceeded: scrape less often"),
        "{b:?}"
    );
    assert_eq!(wait_errors(&tracker, "rate_limited", 1.0).await, 1.0);
    // Another address scrapes; the limited address may still announce.
    let b = get_via(addr, &target, ip(62), &[]).await;
    assert!(b.get("files").is_some(), "{b:?}");
    let b = get_via(addr, &http_announce(ih, peer, 1001), ip(61), &[]).await;
    assert!(b.get("failure reason").is_none(), "{b:?}");
    // The bucket refills at 1 per second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = get_via(addr, &target, ip(61), &[]).await;
    assert!(b.get("files").is_some(), "{b:?}");
}
