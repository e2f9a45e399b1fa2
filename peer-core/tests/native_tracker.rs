//! The native tracker socket against the real segswarm-tracker, started in this process on
//! 127.0.0.1: two peers get each other's offer and answer through it; the tracker is stopped and
//! started again on the same port and both sockets reconnect on their own and announce again.

use std::net::SocketAddr;
use std::time::Duration;

use segswarm_core::native::tracker_socket::{
    TrackerPool, TrackerSocket, TrackerSocketEvent, TrackerSocketSettings,
};
use segswarm_core::tracker_client::{InfoHash, OfferId, PeerId, TrackerEvent};
use segswarm_tracker::config::Config;
use segswarm_tracker::server::{RunningServer, Server};
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(10);

async fn start_tracker(addr: SocketAddr) -> RunningServer {
    let mut config = Config::default();
    config.server.listen = vec![addr];
    config.server.shutdown_grace_secs = 1;
    Server::start(config).await.expect("tracker starts")
}

fn settings(peer_id: PeerId) -> TrackerSocketSettings {
    let mut s = TrackerSocketSettings::new(peer_id);
    s.backoff_initial = Duration::from_millis(100);
    s.backoff_max = Duration::from_millis(400);
    s.backoff_jitter = 0.0;
    s.connect_timeout = Duration::from_secs(2);
    s
}

fn id(prefix: &str, n: u8) -> [u8; 20] {
    let mut out = [b'0' + n; 20];
    out[..prefix.len()].copy_from_slice(prefix.as_bytes());
    out
}

/// The next event matching `pred`; other events are kept in `seen` for diagnostics.
async fn wait_for(
    rx: &mut mpsc::Receiver<TrackerSocketEvent>,
    what: &str,
    mut pred: impl FnMut(&TrackerSocketEvent) -> bool,
) -> TrackerSocketEvent {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(STEP, async {
        while let Some(ev) = rx.recv().await {
            if pred(&ev) {
                return Some(ev);
            }
            seen.push(ev);
        }
        None
    })
    .await;
    match found {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("event channel closed while waiting for {what}; saw {seen:?}"),
        Err(_) => panic!("no {what} within {STEP:?}; saw {seen:?}"),
    }
}

/// Waits for `NeedOffers` on `ih` and hands over `n` offers with recognisable SDP.
async fn provide_offers(
    rx: &mut mpsc::Receiver<TrackerSocketEvent>,
    socket: &TrackerSocket,
    ih: InfoHash,
    tag: &str,
    n: u8,
) -> Vec<OfferId> {
    let ev = wait_for(rx, "NeedOffers", |e| {
        matches!(e, TrackerSocketEvent::Tracker { event: TrackerEvent::NeedOffers { info_hash, .. }, .. } if *info_hash == ih)
    })
    .await;
    let TrackerSocketEvent::Tracker {
        event: TrackerEvent::NeedOffers { count, .. },
        ..
    } = ev
    else {
        unreachable!()
    };
    assert!(count >= n as usize, "asked for {count} offers");
    let offers: Vec<(OfferId, String)> = (0..n)
        .map(|i| (id(tag, i), format!("v=0 offer {tag} {i}")))
        .collect();
    let ids = offers.iter().map(|(o, _)| *o).collect();
    socket.offers_created(ih, offers);
    ids
}

async fn announce_accepted(rx: &mut mpsc::Receiver<TrackerSocketEvent>, ih: InfoHash) -> u64 {
    let ev = wait_for(rx, "AnnounceAccepted", |e| {
        matches!(e, TrackerSocketEvent::Tracker { event: TrackerEvent::AnnounceAccepted { info_hash, .. }, .. } if *info_hash == ih)
    })
    .await;
    match ev {
        TrackerSocketEvent::Tracker {
            event:
                TrackerEvent::AnnounceAccepted {
                    complete,
                    incomplete,
                    ..
                },
            ..
        } => complete + incomplete,
        _ => unreachable!(),
    }
}

/// B offers, A receives B's offer and answers, B receives A's answer.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    a: &TrackerSocket,
    a_rx: &mut mpsc::Receiver<TrackerSocketEvent>,
    b_id: PeerId,
    b_rx: &mut mpsc::Receiver<TrackerSocketEvent>,
    a_id: PeerId,
    ih: InfoHash,
    b_offers: &[OfferId],
    round: &str,
) {
    let ev = wait_for(a_rx, "B's relayed offer at A", |e| {
        matches!(
            e,
            TrackerSocketEvent::Tracker {
                event: TrackerEvent::Offer { .. },
                ..
            }
        )
    })
    .await;
    let TrackerSocketEvent::Tracker {
        event:
            TrackerEvent::Offer {
                info_hash,
                peer_id,
                offer_id,
                sdp,
            },
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(info_hash, ih);
    assert_eq!(peer_id, b_id, "the offer comes from B");
    assert!(b_offers.contains(&offer_id), "one of B's offer ids");
    assert!(
        sdp.starts_with("v=0 offer B"),
        "B's SDP arrives unchanged: {sdp}"
    );
    let answer_sdp = format!("v=0 answer A {round}");
    a.send_answer(ih, peer_id, offer_id, answer_sdp.clone());

    let ev = wait_for(b_rx, "A's answer at B", |e| {
        matches!(
            e,
            TrackerSocketEvent::Tracker {
                event: TrackerEvent::Answer { .. },
                ..
            }
        )
    })
    .await;
    match ev {
        TrackerSocketEvent::Tracker {
            event:
                TrackerEvent::Answer {
                    info_hash,
                    peer_id,
                    offer_id: answered,
                    sdp,
                },
            ..
        } => {
            assert_eq!(info_hash, ih);
            assert_eq!(peer_id, a_id, "the answer comes from A");
            assert_eq!(answered, offer_id, "it answers the offer A received");
            assert_eq!(sdp, answer_sdp);
        }
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_and_answer_through_the_tracker_and_reconnect_after_restart() {
    let tracker = start_tracker(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let addr = tracker.local_addrs()[0];
    let url = format!("ws://{addr}/");
    let ih: InfoHash = *b"native-tracker-test!";
    let (a_id, b_id) = (id("-SS0001-A", 1), id("-SS0001-B", 2));

    let (a_tx, mut a_rx) = mpsc::channel(64);
    let (b_tx, mut b_rx) = mpsc::channel(64);
    let a = TrackerSocket::spawn(&url, settings(a_id), a_tx);
    let mut pool_b = TrackerPool::new(settings(b_id), b_tx);

    wait_for(&mut a_rx, "A connected", |e| {
        matches!(e, TrackerSocketEvent::Connected { .. })
    })
    .await;
    a.join(ih);
    provide_offers(&mut a_rx, &a, ih, "A", 1).await;
    assert_eq!(
        announce_accepted(&mut a_rx, ih).await,
        1,
        "A alone in the swarm"
    );

    // B goes through the pool: the same URL gives the same socket.
    pool_b.socket(&url).join(ih);
    wait_for(&mut b_rx, "B connected", |e| {
        matches!(e, TrackerSocketEvent::Connected { .. })
    })
    .await;
    let b_offers = {
        let b = pool_b.get(&url).expect("socket in pool");
        provide_offers(&mut b_rx, b, ih, "B", 2).await
    };
    assert_eq!(
        announce_accepted(&mut b_rx, ih).await,
        2,
        "A and B in the swarm"
    );
    exchange(&a, &mut a_rx, b_id, &mut b_rx, a_id, ih, &b_offers, "1").await;

    // The tracker goes away: both sockets notice and retry.
    tracker.shutdown().await;
    wait_for(&mut a_rx, "A disconnected", |e| {
        matches!(e, TrackerSocketEvent::Disconnected { .. })
    })
    .await;
    wait_for(&mut b_rx, "B disconnected", |e| {
        matches!(e, TrackerSocketEvent::Disconnected { .. })
    })
    .await;
    // While it is down, attempts fail and are retried with growing delays.
    let mut delays = Vec::new();
    for _ in 0..3 {
        if let TrackerSocketEvent::Disconnected { retry_in, .. } =
            wait_for(&mut a_rx, "A retry", |e| {
                matches!(e, TrackerSocketEvent::Disconnected { .. })
            })
            .await
        {
            delays.push(retry_in);
        }
    }
    assert!(
        delays.windows(2).all(|w| w[1] >= w[0])
            && delays.iter().all(|d| *d <= Duration::from_millis(400)),
        "backoff grows up to its cap: {delays:?}"
    );

    // Same port again: both reconnect by themselves and announce their swarm again.
    let tracker = start_tracker(addr).await;
    wait_for(&mut a_rx, "A reconnected", |e| {
        matches!(e, TrackerSocketEvent::Connected { .. })
    })
    .await;
    provide_offers(&mut a_rx, &a, ih, "A", 1).await;
    announce_accepted(&mut a_rx, ih).await;
    wait_for(&mut b_rx, "B reconnected", |e| {
        matches!(e, TrackerSocketEvent::Connected { .. })
    })
    .await;
    let b_offers = {
        let b = pool_b.get(&url).expect("socket in pool");
        provide_offers(&mut b_rx, b, ih, "B", 2).await
    };
    assert_eq!(
        announce_accepted(&mut b_rx, ih).await,
        2,
        "both back in the new tracker's swarm"
    );
    exchange(&a, &mut a_rx, b_id, &mut b_rx, a_id, ih, &b_offers, "2").await;

    // A graceful stop sends `stopped`: the tracker then counts B alone.
    a.shutdown().await;
    let b = pool_b.get(&url).expect("socket in pool");
    b.completed(ih);
    let left = tokio::time::timeout(STEP, async {
        loop {
            // Each `completed` announce is answered with the swarm's counts.
            let n = announce_accepted(&mut b_rx, ih).await;
            if n == 1 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            pool_b.get(&url).expect("socket").completed(ih);
        }
    })
    .await;
    assert_eq!(
        left.ok(),
        Some(1),
        "A's `stopped` removed it from the swarm"
    );
    pool_b.shutdown().await;
    tracker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_tracker_is_retried_and_offers_given_while_down_expire() {
    // A port with nothing listening: bind, note it, close.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (tx, mut rx) = mpsc::channel(64);
    let socket = TrackerSocket::spawn(&format!("ws://{addr}/"), settings(id("-SS0001-C", 3)), tx);
    let ih: InfoHash = *b"native-tracker-down!";
    socket.join(ih);
    for _ in 0..2 {
        let ev = wait_for(&mut rx, "connect failure", |e| {
            matches!(e, TrackerSocketEvent::Disconnected { .. })
        })
        .await;
        match ev {
            TrackerSocketEvent::Disconnected { reason, .. } => {
                assert!(
                    reason.contains("connect"),
                    "reason names the connect failure: {reason}"
                )
            }
            _ => unreachable!(),
        }
    }
    // Offers handed over while disconnected cannot be sent: they come back expired at once.
    socket.offers_created(ih, vec![(id("offer-C", 1), "v=0".into())]);
    wait_for(&mut rx, "OfferExpired", |e| {
        matches!(
            e,
            TrackerSocketEvent::Tracker {
                event: TrackerEvent::OfferExpired { .. },
                ..
            }
        )
    })
    .await;
    socket.shutdown().await;
}
