//! The engine driver in headless Chromium without a tracker: segments come over HTTP from the
//! test runner's server (`tests/data/seg*.bin`), streamed, checked against a SHA-256 manifest.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use segswarm_core::engine::{DeliverySource, EngineConfig, SegmentInfo};
use segswarm_core::integrity::SegmentManifest;
use segswarm_wasm::driver::{ByteSource, Driver, DriverConfig, DriverEvent, LoadError};
use segswarm_wasm::timer::{sleep, timeout};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SEG0: &[u8] = include_bytes!("data/seg0.bin");
const SEG1: &[u8] = include_bytes!("data/seg1.bin");

/// The page's origin (the test runner's server), e.g. `http://127.0.0.1:8000`.
fn origin() -> String {
    let location =
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("location")).expect("location");
    js_sys::Reflect::get(&location, &JsValue::from_str("origin"))
        .expect("origin")
        .as_string()
        .expect("origin string")
}

fn playlist() -> Vec<SegmentInfo> {
    vec![
        SegmentInfo {
            id: 0,
            path: "seg0.bin".into(),
            start: 0.0,
            duration: 4.0,
            size_hint: None,
            byte_range: None,
        },
        SegmentInfo {
            id: 1,
            path: "seg1.bin".into(),
            start: 4.0,
            duration: 4.0,
            size_hint: None,
            byte_range: None,
        },
        SegmentInfo {
            id: 2,
            path: "missing.bin".into(),
            start: 8.0,
            duration: 4.0,
            size_hint: None,
            byte_range: None,
        },
    ]
}

fn driver(bases: Vec<String>) -> Driver {
    let mut engine = EngineConfig::new(
        *b"-SS0001-driver-http1",
        *b"segswarm-driver-test",
        false,
        bases,
    );
    engine.seed = 7;
    Driver::new(DriverConfig::new(engine, Vec::new()))
}

fn events(d: &Driver) -> Rc<RefCell<Vec<DriverEvent>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&seen);
    d.set_listener(move |e| sink.borrow_mut().push(e));
    seen
}

#[wasm_bindgen_test]
async fn segments_load_over_http_and_are_reported() {
    let d = driver(vec![format!("{}/tests/data", origin())]);
    let seen = events(&d);
    d.set_playlist(playlist());
    let (data, source) = timeout(Duration::from_secs(20), d.load_segment(0))
        .await
        .expect("segment 0 within 20 s")
        .expect("segment 0 loads");
    assert!(matches!(source, DeliverySource::Http(_)));
    assert_eq!(data.as_ref(), SEG0);
    let (data, _) = d.load_segment(1).await.expect("segment 1 loads");
    assert_eq!(data.as_ref(), SEG1);
    // Asked again: from the cache, no new HTTP bytes.
    let (data, source) = d.load_segment(0).await.expect("segment 0 again");
    assert_eq!(source, DeliverySource::Cache);
    assert_eq!(data.as_ref(), SEG0);
    let stats = d.stats();
    assert_eq!(stats.http_bytes, (SEG0.len() + SEG1.len()) as u64);
    assert_eq!(stats.p2p_bytes, 0);
    let seen = seen.borrow();
    let http: u64 = seen
        .iter()
        .filter_map(|e| match e {
            DriverEvent::Bytes {
                source: ByteSource::Http,
                bytes,
            } => Some(*bytes),
            _ => None,
        })
        .sum();
    assert_eq!(http, stats.http_bytes, "byte events add up to the totals");
    let loaded: Vec<(i64, DeliverySource, Option<DeliverySource>)> = seen
        .iter()
        .filter_map(|e| match e {
            DriverEvent::SegmentLoaded {
                segment,
                source,
                origin,
                ..
            } => Some((*segment, *source, *origin)),
            _ => None,
        })
        .collect();
    let http = Some(DeliverySource::Http(0));
    assert_eq!(
        loaded,
        vec![
            (0, DeliverySource::Http(0), http),
            (1, DeliverySource::Http(0), http),
            (0, DeliverySource::Cache, http)
        ]
    );
    assert_eq!(d.segment_origin(1), http);
    assert_eq!(d.segment_origin(2), None, "not stored");
    d.shutdown();
}

#[wasm_bindgen_test]
async fn a_segment_outside_the_playlist_fails_and_shutdown_cancels_waiters() {
    let d = driver(vec![format!("{}/tests/data", origin())]);
    d.set_playlist(playlist());
    let err = d.load_segment(99).await.expect_err("not in the playlist");
    assert!(matches!(err, LoadError::Failed(_)), "{err:?}");
    // The missing file keeps failing over HTTP: the request waits until shut down.
    let result = spawn_load(&d, 2);
    sleep(Duration::from_millis(1500)).await;
    assert!(result.borrow().is_none(), "a missing file is not delivered");
    d.shutdown();
    sleep(Duration::from_millis(50)).await;
    assert_eq!(*result.borrow(), Some(Err(LoadError::Cancelled)));
}

type Loaded = Rc<RefCell<Option<Result<Vec<u8>, LoadError>>>>;

/// Runs `load_segment` in its own task; the result lands in the returned cell.
fn spawn_load(d: &Driver, id: i64) -> Loaded {
    let result: Loaded = Rc::new(RefCell::new(None));
    let (d, r) = (d.clone(), Rc::clone(&result));
    wasm_bindgen_futures::spawn_local(async move {
        let got = d.load_segment(id).await.map(|(b, _)| b.to_vec());
        *r.borrow_mut() = Some(got);
    });
    result
}

#[wasm_bindgen_test]
async fn cancel_rejects_the_waiter() {
    let d = driver(vec![format!("{}/tests/data", origin())]);
    d.set_playlist(playlist());
    let result = spawn_load(&d, 2);
    sleep(Duration::from_millis(200)).await;
    assert!(result.borrow().is_none());
    d.cancel_segment(2);
    sleep(Duration::from_millis(50)).await;
    assert_eq!(*result.borrow(), Some(Err(LoadError::Cancelled)));
    d.shutdown();
}

#[wasm_bindgen_test]
async fn a_failing_origin_moves_to_the_mirror() {
    let d = driver(vec![
        format!("{}/tests/no-such-dir", origin()),
        format!("{}/tests/data", origin()),
    ]);
    d.set_playlist(playlist());
    let (data, source) = timeout(Duration::from_secs(30), d.load_segment(1))
        .await
        .expect("segment 1 within 30 s")
        .expect("segment 1 loads from the mirror");
    assert!(matches!(source, DeliverySource::Http(_)));
    assert_eq!(data.as_ref(), SEG1);
    let stats = d.stats();
    assert_eq!(
        stats.http_bytes_by_base.get(&1).copied(),
        Some(SEG1.len() as u64)
    );
    d.shutdown();
}

#[wasm_bindgen_test]
async fn a_segment_matching_the_manifest_is_delivered() {
    let d = driver(vec![format!("{}/tests/data", origin())]);
    d.set_playlist(playlist());
    d.set_manifest(SegmentManifest::from_segments([("seg0.bin", None, SEG0)]));
    let (data, _) = timeout(Duration::from_secs(20), d.load_segment(0))
        .await
        .expect("in time")
        .expect("segment 0 verified and delivered");
    assert_eq!(data.as_ref(), SEG0);
    d.shutdown();
}

#[wasm_bindgen_test]
async fn a_listener_may_call_back_into_the_driver() {
    let d = driver(vec![format!("{}/tests/data", origin())]);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (sink, again) = (Rc::clone(&seen), d.clone());
    d.set_listener(move |e| {
        // Feeding the engine from inside the listener (a page reacting to an event).
        again.cancel_segment(12345);
        sink.borrow_mut().push(e);
    });
    d.set_playlist(playlist());
    let (data, _) = timeout(Duration::from_secs(20), d.load_segment(1))
        .await
        .expect("in time")
        .expect("segment 1 loads");
    assert_eq!(data.as_ref(), SEG1);
    let seen = seen.borrow();
    let http: u64 = seen
        .iter()
        .filter_map(|e| match e {
            DriverEvent::Bytes {
                source: ByteSource::Http,
                bytes,
            } => Some(*bytes),
            _ => None,
        })
        .sum();
    assert_eq!(http, SEG1.len() as u64, "no byte event lost");
    assert!(seen
        .iter()
        .any(|e| matches!(e, DriverEvent::SegmentLoaded { segment: 1, .. })));
    d.shutdown();
}
