//! In-process checks of the library API with real sockets on loopback: start, relay between two
//! clients, close frames for refused connections, TLS, shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Server;
use crate::config::Config;
use crate::protocol::Id20;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const STEP: Duration = Duration::from_secs(5);

fn config() -> Config {
    let mut c = Config::default();
    c.server.listen = vec!["127.0.0.1:0".parse().unwrap()];
    c.server.shutdown_grace_secs = 1;
    c
}

fn bin(b: u8) -> String {
    Id20([b; 20]).to_binary_string()
}

async fn connect(addr: SocketAddr) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/tracker/socket"))
        .await
        .unwrap();
    ws
}

async fn next_json(ws: &mut Client) -> Value {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("timed out")
            .expect("closed")
            .expect("error");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn send(ws: &mut Client, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn close_frame(ws: &mut Client) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("timed out")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn offer_and_answer_are_relayed_and_close_leaves_the_swarm() {
    let server = Server::start(config()).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    send(&mut b, json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "event": "started", "left": 0})).await;
    let r = next_json(&mut b).await;
    assert_eq!(
        (r["complete"].as_u64(), r["incomplete"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    let offer = json!({"type": "offer", "sdp": "v=0 offer"});
    send(&mut a, json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(3), "event": "started", "left": 10, "numwant": 1,
        "offers": [{"offer": offer, "offer_id": bin(9)}]})).await;
    let r = next_json(&mut a).await;
    assert_eq!(
        (r["complete"].as_u64(), r["incomplete"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let relayed = next_json(&mut b).await;
    assert_eq!(relayed["offer"], offer);
    assert_eq!(relayed["peer_id"], bin(3));
    assert_eq!(relayed["offer_id"], bin(9));
    assert_eq!(relayed["info_hash"], bin(1));
    let answer = json!({"type": "answer", "sdp": "v=0 answer"});
    send(&mut b, json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "to_peer_id": bin(3), "offer_id": bin(9), "answer": answer})).await;
    let relayed = next_json(&mut a).await;
    assert_eq!(relayed["answer"], answer);
    assert_eq!(relayed["peer_id"], bin(2));
    // A second answer to the same offer is refused.
    send(&mut b, json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "to_peer_id": bin(3), "offer_id": bin(9), "answer": answer})).await;
    let r = next_json(&mut b).await;
    assert_eq!(
        r["failure reason"], "answer to an unknown or expired offer",
        "{r}"
    );
    drop(a);
    let mut left = (0, 0);
    for _ in 0..50 {
        send(&mut b, json!({"action": "scrape", "info_hash": bin(1)})).await;
        let r = next_json(&mut b).await;
        let f = &r["files"][bin(1)];
        left = (
            f["complete"].as_u64().unwrap(),
            f["incomplete"].as_u64().unwrap(),
        );
        if left == (1, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, (1, 0), "closed socket left the swarm");
    assert!(server
        .metrics_text()
        .contains("segswarm_messages_out_total{kind=\"offer\"} 1"));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_reasons() {
    let mut c = config();
    c.limits.max_message_bytes = 2048;
    c.limits.max_frame_bytes = 2048;
    let server = Server::start(c).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut ws = connect(addr).await;
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let r = next_json(&mut ws).await;
    assert!(
        r["failure reason"].as_str().unwrap().contains("binary"),
        "{r}"
    );
    send(
        &mut ws,
        json!({"action": "announce", "info_hash": "short", "peer_id": bin(1)}),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await["failure reason"],
        "invalid info_hash"
    );
    ws.send(Message::Text("x".repeat(4000).into()))
        .await
        .unwrap();
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Size, "message too large")
    );
    // Other connections are not disturbed.
    let mut other = connect(addr).await;
    send(&mut other, json!({"action": "scrape", "info_hash": bin(1)})).await;
    assert_eq!(next_json(&mut other).await["action"], "scrape");
    server.shutdown().await;
}

#[tokio::test]
async fn over_the_per_ip_cap_gets_a_close_frame() {
    let mut c = config();
    c.limits.max_connections_per_ip = 1;
    let server = Server::start(c).await.unwrap();
    let addr = server.local_addrs()[0];
    let _first = connect(addr).await;
    let mut second = connect(addr).await;
    let (code, reason) = close_frame(&mut second).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Again, "too many connections")
    );
    assert!(server
        .metrics_text()
        .contains("segswarm_errors_total{kind=\"connection_limit\"} 1"));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_close_frames() {
    let server = Server::start(config()).await.unwrap();
    let mut ws = connect(server.local_addrs()[0]).await;
    let closing = tokio::spawn(async move { close_frame(&mut ws).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown().await;
    let (code, reason) = closing.await.unwrap();
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Away, "server shutting down")
    );
}

#[tokio::test]
async fn tls_round_trip() {
    let dir = std::env::temp_dir().join(format!("segswarm-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, key.cert.pem()).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let mut c = config();
    c.server.tls_cert_file = Some(cert_file);
    c.server.tls_key_file = Some(key_file);
    let server = Server::start(c).await.unwrap();
    let addr = server.local_addrs()[0];

    let mut roots = rustls::RootCertStore::empty();
    roots.add(key.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/", tls)
        .await
        .unwrap();
    ws.send(Message::Text(
        json!({"action": "announce", "info_hash": bin(4), "peer_id": bin(5)})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let reply = tokio::time::timeout(STEP, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(v["incomplete"], 1, "{v}");
    // Reload with the same files keeps serving.
    server.reload();
    drop(ws);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_flood_of_garbage_is_cut_off() {
    let mut c = config();
    c.limits.max_announces_per_sec = 1;
    c.limits.announce_burst = 2;
    let server = Server::start(c).await.unwrap();
    let mut ws = connect(server.local_addrs()[0]).await;
    for _ in 0..10 {
        ws.send(Message::Text("not json".into())).await.unwrap();
    }
    let mut failures = 0;
    let (code, reason) = loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("timed out")
        {
            Some(Ok(Message::Text(t))) => {
                assert!(t.as_str().contains("malformed JSON"), "{t}");
                failures += 1;
            }
            Some(Ok(Message::Close(Some(frame)))) => break (frame.code, frame.reason.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(failures, 2, "one reply per token");
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "rate limit exceeded: too many requests")
    );
    server.shutdown().await;
}

/// Counts live heap bytes, for [`live_heap_per_idle_connection`].
struct Counting;
static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);
static BIG: [std::sync::atomic::AtomicIsize; 70] = [ZERO; 70];
fn track(size: usize, d: isize) {
    if size >= 512 {
        BIG[(size / 512).min(69)].fetch_add(d, std::sync::atomic::Ordering::Relaxed);
    }
}
#[allow(unsafe_code)] // A test-only global allocator that counts bytes.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        track(l.size(), 1);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        track(l.size(), -1);
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(
            n as isize - l.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        track(l.size(), -1);
        track(n, 1);
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes the tracker keeps per idle WebSocket connection (client sockets included),
/// before and after one announce. A measurement: run alone, since other tests allocate too:
/// `cargo test -p segswarm-tracker --lib live_heap -- --ignored --nocapture --test-threads=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run alone with --test-threads=1"]
async fn live_heap_per_idle_connection() {
    let mut c = config();
    c.limits.max_connections_per_ip = 100_000;
    let server = Server::start(c).await.unwrap();
    let addr = server.local_addrs()[0];
    let n = 300;
    // Client side allocations are counted too, so hold raw TCP handshakes only.
    let mut socks = Vec::new();
    let live = || LIVE.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = live();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await.unwrap();
        socks.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = live();
    eprintln!(
        "live bytes per upgraded idle connection: {}",
        (after - before) / n as isize
    );
    for (i, b) in BIG.iter().enumerate() {
        let v = b.load(std::sync::atomic::Ordering::Relaxed);
        if v > 50 {
            eprintln!(
                "  live allocations of {}..{} bytes: {}",
                i * 512,
                i * 512 + 512,
                v
            );
        }
    }
    // now one small masked text frame each
    let msg = json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2)}).to_string();
    for (i, s) in socks.iter_mut().enumerate() {
        let text = msg
            .replace(&bin(2), &Id20([i as u8; 20]).to_binary_string())
            .replace(
                &bin(1),
                &Id20([(i / 256) as u8 + 100; 20]).to_binary_string(),
            );
        let mut f = vec![0x81u8, 0x80 | 126];
        f.extend_from_slice(&(text.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(text.as_bytes());
        s.write_all(&f).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after2 = live();
    let per_conn = (after2 - before) / n as isize;
    eprintln!("after one announce: {per_conn}");
    assert!(per_conn < 4096, "{per_conn} bytes per connection");
    drop(socks);
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("after close: {}", (live() - before) / n as isize);
    server.shutdown().await;
}

#[test]
fn ipv6_addresses_are_limited_per_prefix() {
    use std::net::IpAddr;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        super::ip_key(ip("2001:db8:1:2:aaaa::1"), 64),
        ip("2001:db8:1:2::")
    );
    assert_eq!(super::ip_key(ip("2001:db8::1"), 128), ip("2001:db8::1"));
    assert_eq!(super::ip_key(ip("2001:db8::1"), 0), ip("::"));
    assert_eq!(super::ip_key(ip("::ffff:10.1.2.3"), 64), ip("10.1.2.3"));
    assert_eq!(super::ip_key(ip("10.1.2.3"), 64), ip("10.1.2.3"));
}

#[test]
fn scrape_lists_are_deduplicated_then_capped() {
    use crate::protocol::{ErrorKind, Id20};
    let ids: Vec<Id20> = (0..10u8).flat_map(|i| [Id20([i; 20]); 3]).collect();
    assert_eq!(super::scrape_list(ids.clone(), 10).unwrap().len(), 10);
    assert_eq!(
        super::scrape_list(ids, 9),
        Err(ErrorKind::TooManyInfoHashes)
    );
}
