//! Two engines in one page share a segment over a real RTCDataChannel: they meet through a real
//! segswarm-tracker (SEGSWARM_TEST_TRACKER at build time, `--features tracker-test`; started by
//! .ci/wasm-tests), the first loads the segments over HTTP, the second gets them from the first.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use segswarm_core::engine::{DeliverySource, EngineConfig, SegmentInfo};
use segswarm_core::stream;
use segswarm_wasm::driver::{Driver, DriverConfig, DriverEvent};
use segswarm_wasm::timer::{sleep, timeout};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TRACKER: &str = env!("SEGSWARM_TEST_TRACKER");
const SEG0: &[u8] = include_bytes!("data/seg0.bin");
const SEG1: &[u8] = include_bytes!("data/seg1.bin");

fn origin() -> String {
    let location =
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("location")).expect("location");
    js_sys::Reflect::get(&location, &JsValue::from_str("origin"))
        .expect("origin")
        .as_string()
        .expect("origin string")
}

/// A swarm of its own for every run (the tracker outlives a test run).
fn fresh_info_hash() -> [u8; 20] {
    let swarm = format!("segswarm-wasm-test-{}", js_sys::Math::random());
    stream::info_hash(&stream::stream_swarm_id(
        &swarm,
        stream::StreamType::Main,
        "x",
    ))
}

fn playlist() -> Vec<SegmentInfo> {
    // VOD: far enough ahead of the viewer's playhead (40 s) that peers have time to deliver.
    [("seg0.bin", 40.0), ("seg1.bin", 44.0)]
        .into_iter()
        .enumerate()
        .map(|(i, (path, start))| SegmentInfo {
            id: i as i64,
            path: path.into(),
            start,
            duration: 4.0,
            size_hint: None,
            byte_range: None,
        })
        .collect()
}

fn engine(tag: u8, info_hash: [u8; 20]) -> (Driver, Rc<RefCell<Vec<DriverEvent>>>) {
    let mut peer_id = *b"-SS0001-swarm-test-0";
    peer_id[19] = tag;
    let mut config = EngineConfig::new(
        peer_id,
        info_hash,
        false,
        vec![format!("{}/tests/data", origin())],
    );
    config.seed = u64::from(tag);
    let d = Driver::new(DriverConfig::new(config, vec![TRACKER.to_string()]));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&seen);
    d.set_listener(move |e| sink.borrow_mut().push(e));
    d.set_playlist(playlist());
    (d, seen)
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let ok = timeout(limit, async {
        while !cond() {
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ok.is_some(), "timed out after {limit:?} waiting for {what}");
}

#[wasm_bindgen_test]
async fn second_engine_gets_the_segments_from_the_first_over_webrtc() {
    let info_hash = fresh_info_hash();
    // The seeder: no playhead, so what it is asked for is due now and comes over HTTP.
    let (a, a_events) = engine(b'a', info_hash);
    wait_for("a's tracker socket", Duration::from_secs(10), || {
        a.tracker_connected()
    })
    .await;
    for (id, want) in [(0, SEG0), (1, SEG1)] {
        let (data, _) = timeout(Duration::from_secs(20), a.load_segment(id))
            .await
            .expect("in time")
            .expect("a loads over HTTP");
        assert_eq!(data.as_ref(), want);
    }
    assert_eq!(a.stats().http_bytes, (SEG0.len() + SEG1.len()) as u64);

    // The viewer: playhead at 0, segments due in 40 s: it waits for a peer rather than HTTP.
    let (b, b_events) = engine(b'b', info_hash);
    b.set_playback(0.0);
    wait_for(
        "the two engines to connect",
        Duration::from_secs(30),
        || a.connected_peers() == 1 && b.connected_peers() == 1,
    )
    .await;
    for (id, want) in [(0, SEG0), (1, SEG1)] {
        let (data, _) = timeout(Duration::from_secs(30), b.load_segment(id))
            .await
            .expect("in time")
            .expect("b loads the segment");
        assert_eq!(data.as_ref(), want, "segment {id} intact");
    }
    for id in [0, 1] {
        assert!(
            matches!(b.segment_origin(id), Some(DeliverySource::Peer(_))),
            "segment {id} came from the peer (prefetched or asked)"
        );
    }
    let sb = b.stats();
    assert_eq!(sb.http_bytes, 0, "b fetched nothing over HTTP");
    assert_eq!(sb.p2p_bytes, (SEG0.len() + SEG1.len()) as u64);
    assert_eq!(sb.segments_p2p, 2);
    let sa = a.stats();
    assert_eq!(sa.uploaded_bytes, (SEG0.len() + SEG1.len()) as u64);
    assert!(b_events
        .borrow()
        .iter()
        .any(|e| matches!(e, DriverEvent::PeerConnected(_))));
    assert!(a_events
        .borrow()
        .iter()
        .any(|e| matches!(e, DriverEvent::TrackerConnected(u) if u == TRACKER)));

    // b leaves: a sees its peer go.
    b.shutdown();
    wait_for("a to see b leave", Duration::from_secs(20), || {
        a.connected_peers() == 0
    })
    .await;
    assert!(a_events
        .borrow()
        .iter()
        .any(|e| matches!(e, DriverEvent::PeerClosed(_))));
    a.shutdown();
}
