//! Two tracker sockets and two WebRTC peers in one page meet through a real segswarm-tracker:
//! the offer and the answer travel over the WebSocket transport, then the data channel opens.
//! Needs `--features tracker-test` and SEGSWARM_TEST_TRACKER at build time (see README.md).
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use segswarm_core::tracker_client::{TrackerClientConfig, TrackerEvent};
use segswarm_wasm::rtc::{RtcPeer, RtcSettings};
use segswarm_wasm::timer::timeout;
use segswarm_wasm::tracker::{SocketEvent, TrackerSocket};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TRACKER: &str = env!("SEGSWARM_TEST_TRACKER");
const INFO_HASH: [u8; 20] = *b"segswarm-wasm-test-1";

fn id(tag: u8) -> [u8; 20] {
    let mut id = *b"-SS0001-000000000000";
    id[19] = tag;
    id
}

/// The next tracker event, failing on anything the socket should not report here.
async fn next(s: &TrackerSocket) -> TrackerEvent {
    loop {
        let e = timeout(Duration::from_secs(10), s.next_event())
            .await
            .expect("a tracker event within 10 s")
            .expect("socket open");
        match e {
            SocketEvent::Open => continue,
            SocketEvent::Tracker(t) => return t,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[wasm_bindgen_test]
async fn two_peers_connect_through_the_tracker() {
    let b = TrackerSocket::connect(TRACKER, TrackerClientConfig::new(id(b'b'))).expect("socket b");
    b.join(INFO_HASH);
    match next(&b).await {
        TrackerEvent::NeedOffers { info_hash, .. } => b.offers_created(info_hash, Vec::new()),
        other => panic!("b: {other:?}"),
    }
    assert!(matches!(
        next(&b).await,
        TrackerEvent::AnnounceAccepted { .. }
    ));
    assert!(b.is_open());

    let a = TrackerSocket::connect(TRACKER, TrackerClientConfig::new(id(b'a'))).expect("socket a");
    a.join(INFO_HASH);
    let count = match next(&a).await {
        TrackerEvent::NeedOffers { count, .. } => count,
        other => panic!("a: {other:?}"),
    };
    assert_eq!(count, 5);
    let mut pa = RtcPeer::new(RtcSettings::default()).expect("peer a");
    let offer = pa.create_offer().await.expect("offer");
    let offer_id = *b"offer-0-from-peer-a!";
    a.offers_created(INFO_HASH, vec![(offer_id, offer.clone())]);

    // b receives the relayed offer and answers it.
    let mut pb = RtcPeer::new(RtcSettings::default()).expect("peer b");
    loop {
        match next(&b).await {
            TrackerEvent::Offer {
                info_hash,
                peer_id,
                offer_id: got_id,
                sdp,
            } => {
                assert_eq!(
                    (info_hash, peer_id, got_id),
                    (INFO_HASH, id(b'a'), offer_id)
                );
                assert_eq!(sdp, offer);
                let answer = pb.accept_offer(&sdp).await.expect("answer");
                b.send_answer(info_hash, peer_id, got_id, &answer);
                break;
            }
            TrackerEvent::AnnounceAccepted { .. } => continue,
            other => panic!("b: {other:?}"),
        }
    }
    // a receives the answer.
    loop {
        match next(&a).await {
            TrackerEvent::Answer {
                peer_id,
                offer_id: got_id,
                sdp,
                ..
            } => {
                assert_eq!((peer_id, got_id), (id(b'b'), offer_id));
                pa.accept_answer(&sdp).await.expect("accept answer");
                break;
            }
            TrackerEvent::AnnounceAccepted { .. } => continue,
            other => panic!("a: {other:?}"),
        }
    }
    let ca = pa.open_channel().await.expect("a's channel");
    let cb = pb.open_channel().await.expect("b's channel");
    ca.send(b"hello through the tracker").await.expect("send");
    assert_eq!(
        cb.recv().await.as_deref(),
        Some(&b"hello through the tracker"[..])
    );

    // Closing a leaves its swarm and closes its socket; b's socket stays usable.
    a.close();
    assert!(b.is_open());
}
