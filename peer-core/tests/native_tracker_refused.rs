//! Private trackers (issue 12 item 4): the native hub against a stand-in for PeerTube's tracker
//! (`server/core/controllers/tracker.ts`), which answers an announce of an info_hash it does not
//! know with `{"action":"announce","failure reason":"Unknown infoHash <hex> requested by ip <ip>",
//! "info_hash":…}`, closes the socket (`socket.close()`, no close code) and blocks the IP for
//! 3 minutes, answering each upgrade from it meanwhile with `HTTP/1.1 403 Forbidden` and a closed
//! socket. (segswarm-tracker in private mode refuses with a failure too but keeps the socket open,
//! so it cannot show the close.) The hub must not come back before `BackoffConfig::refused_min`
//! (set short here), must say why, and an accepted announce still resets the backoff.
use crate::support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use segswarm_core::backoff::BackoffConfig;
use segswarm_core::native::tracker_hub::{LinkEvent, LinkEvents, TrackerHub, TrackerHubSettings};
use segswarm_core::tracker_client::InfoHash;
use segswarm_ws_protocol::Id20;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const KNOWN: &str = "KKKKKKKKKKKKKKKKKKKK";
const UNKNOWN: &str = "UUUUUUUUUUUUUUUUUUUU";

fn ih(s: &str) -> InfoHash {
    s.as_bytes().try_into().unwrap()
}

/// What the stand-in saw.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// A TCP connection (n-th, from 1), answered with 403 if `blocked`.
    Connect { n: usize, blocked: bool },
    /// It refused an announce and closed the socket.
    RefusedAndClosed,
}

struct StandIn {
    url: String,
    seen: mpsc::UnboundedReceiver<(Instant, Seen)>,
}

/// PeerTube's tracker in miniature: `known` info_hashes are accepted (`interval` 120); the first
/// announce of another gets the failure, the socket closed and the IP blocked for `block` (from
/// the start if `blocked_from_start`). With `close_after_accept`, a socket closes (1000) right
/// after an accepted announce, so the test sees the delay that follows it.
async fn peertube_stand_in(
    known: &[&str],
    block: Duration,
    blocked_from_start: bool,
    close_after_accept: bool,
) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let known: Arc<HashSet<InfoHash>> = Arc::new(known.iter().map(|s| ih(s)).collect());
    let blocked_until = Arc::new(Mutex::new(
        blocked_from_start.then(|| Instant::now() + block),
    ));
    let (tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut stream, peer)) = listener.accept().await else {
                return;
            };
            n += 1;
            let blocked = blocked_until
                .lock()
                .unwrap()
                .is_some_and(|t| Instant::now() < t);
            let _ = tx.send((Instant::now(), Seen::Connect { n, blocked }));
            let (known, blocked_until, tx) = (known.clone(), blocked_until.clone(), tx.clone());
            tokio::spawn(async move {
                if blocked {
                    // server.on('upgrade'): the request was read; 403, then socket.destroy().
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    }
                    let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                }
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(text) = msg else { continue };
                    let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                    let raw = v["info_hash"].as_str().unwrap().to_owned();
                    let hash = Id20::from_binary_str(&raw).unwrap().0;
                    if known.contains(&hash) {
                        let reply = serde_json::json!({
                            "action": "announce", "info_hash": raw, "interval": 120,
                            "complete": 1, "incomplete": 0
                        });
                        let _ = ws.send(Message::Text(reply.to_string().into())).await;
                        if close_after_accept {
                            let _ = ws.close(None).await;
                            break;
                        }
                        continue;
                    }
                    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                    let reply = serde_json::json!({
                        "action": "announce", "info_hash": raw,
                        "failure reason":
                            format!("Unknown infoHash {hex} requested by ip {}", peer.ip()),
                    });
                    let _ = ws.send(Message::Text(reply.to_string().into())).await;
                    *blocked_until.lock().unwrap() = Some(Instant::now() + block);
                    let _ = tx.send((Instant::now(), Seen::RefusedAndClosed));
                    // `setTimeout(() => params.socket.close(), 0)`: a close frame with no code.
                    let _ = ws.close(None).await;
                    break;
                }
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    StandIn { url, seen }
}

async fn seen(s: &mut StandIn) -> (Instant, Seen) {
    tokio::time::timeout(Duration::from_secs(10), s.seen.recv())
        .await
        .expect("the stand-in sees something within 10 s")
        .expect("stand-in running")
}

async fn next(events: &mut LinkEvents) -> LinkEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a link event within 10 s")
        .expect("hub running")
}

fn announce(info_hash: &str) -> String {
    serde_json::json!({"action": "announce", "info_hash": info_hash, "event": "started"})
        .to_string()
}

fn settings(refused_min: Duration) -> TrackerHubSettings {
    TrackerHubSettings {
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            jitter: 0.0,
            refused_min,
            refused_max: Duration::from_secs(10),
            ..BackoffConfig::default()
        },
        ..TrackerHubSettings::default()
    }
}

#[test]
fn a_refused_announce_and_close_waits_refused_min_and_says_why() {
    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        let refused_min = Duration::from_millis(1500);
        // The stand-in's block is shorter than the back-off: the hub's next attempt is let in.
        let mut tracker =
            peertube_stand_in(&[KNOWN], Duration::from_millis(1000), false, false).await;
        let hub = TrackerHub::new(settings(refused_min));
        let (link, mut events) = hub.join(&tracker.url, ih(UNKNOWN));
        assert_eq!(
            seen(&mut tracker).await.1,
            Seen::Connect {
                n: 1,
                blocked: false
            }
        );
        let (reason, retry_in) = loop {
            match next(&mut events).await {
                LinkEvent::Connected => link.send(announce(UNKNOWN)),
                LinkEvent::Frame(f) => {
                    let (named, why) = f.refusal().expect("the refusal reaches the link");
                    assert_eq!(named.map(|id| id.0), Some(ih(UNKNOWN)));
                    assert!(why.starts_with("Unknown infoHash 5555"), "{why}");
                }
                LinkEvent::Disconnected { reason, retry_in } => break (reason, retry_in),
            }
        };
        let (closed_at, what) = seen(&mut tracker).await;
        assert_eq!(what, Seen::RefusedAndClosed);
        assert_eq!(retry_in, refused_min, "{reason}");
        assert!(
            reason.contains("refused info_hash 5555")
                && reason.contains("Unknown infoHash 5555")
                && reason.contains("requested by ip 127.0.0.1"),
            "{reason}"
        );
        // No reconnect storm: the next connection comes after the back-off, not before.
        let (at, what) = seen(&mut tracker).await;
        assert_eq!(
            what,
            Seen::Connect {
                n: 2,
                blocked: false
            }
        );
        assert!(
            at.duration_since(closed_at) >= refused_min,
            "reconnected {:?} after the refusal",
            at.duration_since(closed_at)
        );
        assert_eq!(next(&mut events).await, LinkEvent::Connected);
        assert!(tracker.seen.try_recv().is_err(), "one connection at a time");
    });
}

#[test]
fn a_blocked_ip_403_on_upgrade_backs_off_for_minutes_doubling() {
    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        let refused_min = Duration::from_millis(300);
        let mut tracker = peertube_stand_in(&[KNOWN], Duration::from_secs(60), true, false).await;
        let hub = TrackerHub::new(settings(refused_min));
        let (_link, mut events) = hub.join(&tracker.url, ih(KNOWN));
        let mut delays = Vec::new();
        let mut connects = Vec::new();
        while delays.len() < 3 {
            match next(&mut events).await {
                LinkEvent::Disconnected { reason, retry_in } => {
                    assert!(
                        reason.starts_with("refused: ") && reason.contains("403"),
                        "{reason}"
                    );
                    delays.push(retry_in);
                }
                ev => panic!("the blocked IP got in: {ev:?}"),
            }
            let (at, what) = seen(&mut tracker).await;
            assert!(matches!(what, Seen::Connect { blocked: true, .. }));
            connects.push(at);
        }
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![300, 600, 1200], "retry delays {ms:?}");
        for (i, pair) in connects.windows(2).enumerate() {
            let gap = pair[1].duration_since(pair[0]);
            assert!(gap >= delays[i], "attempt {} came {gap:?} after", i + 2);
        }
    });
}

#[test]
fn an_accepted_announce_after_refusals_resets_the_backoff() {
    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        let refused_min = Duration::from_millis(400);
        let mut tracker =
            peertube_stand_in(&[KNOWN], Duration::from_millis(200), false, true).await;
        let hub = TrackerHub::new(settings(refused_min));
        // Both swarms share the socket; PeerTube closes it over the unknown one.
        let (known, mut known_events) = hub.join(&tracker.url, ih(KNOWN));
        let (unknown, mut unknown_events) = hub.join(&tracker.url, ih(UNKNOWN));
        assert_eq!(hub.socket_count(&tracker.url), 1);
        assert_eq!(next(&mut known_events).await, LinkEvent::Connected);
        assert_eq!(next(&mut unknown_events).await, LinkEvent::Connected);
        // The unknown swarm's announce goes first: refused, closed, before anything is accepted.
        unknown.send(announce(UNKNOWN));
        let retry = loop {
            if let LinkEvent::Disconnected { retry_in, reason } = next(&mut unknown_events).await {
                assert!(reason.contains("Unknown infoHash"), "{reason}");
                break retry_in;
            }
        };
        assert_eq!(retry, refused_min);
        // After the back-off only the known swarm announces (as the client pauses the refused
        // one): accepted, then the stand-in closes. The delay is `initial` again, not a refusal.
        let mut delays = Vec::new();
        while delays.len() < 2 {
            match next(&mut known_events).await {
                LinkEvent::Connected => known.send(announce(KNOWN)),
                LinkEvent::Disconnected { retry_in, .. } => delays.push(retry_in),
                LinkEvent::Frame(_) => {}
            }
        }
        assert_eq!(delays[0], refused_min, "the refusal's close, seen by KNOWN");
        assert_eq!(
            delays[1],
            Duration::from_millis(50),
            "after the accepted announce"
        );
        let mut seen_list = Vec::new();
        while let Ok(item) = tracker.seen.try_recv() {
            seen_list.push(item);
        }
        let closed_at = seen_list
            .iter()
            .find(|(_, w)| *w == Seen::RefusedAndClosed)
            .expect("refused")
            .0;
        let second = seen_list
            .iter()
            .find(|(_, w)| matches!(w, Seen::Connect { n: 2, .. }))
            .expect("second connection")
            .0;
        assert!(
            second.duration_since(closed_at) >= refused_min,
            "reconnected {:?} after the refusal",
            second.duration_since(closed_at)
        );
    });
}
