//! The JavaScript-facing class `SegswarmEngine` in headless Chromium: options as a page passes
//! them (a plain object), `loadSegment`'s promise, the event objects, `stats()`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use segswarm_wasm::api::{
    info_hash, scheme_stream_swarm_id, stream_short_id, stream_swarm_id, swarm_for, SegswarmEngine,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SEG1: &[u8] = include_bytes!("data/seg1.bin");

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).expect("property")
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).expect("set");
    }
    o.into()
}

fn origin() -> String {
    get(&get(&js_sys::global(), "location"), "origin")
        .as_string()
        .expect("origin")
}

#[wasm_bindgen_test]
fn options_without_a_swarm_id_or_bases_are_refused() {
    let e = SegswarmEngine::new(obj(&[("live", false.into())]))
        .err()
        .expect("refused");
    let message = get(&e, "message").as_string().unwrap_or_default();
    assert!(message.contains("streamSwarmId"), "{message}");
    let e = SegswarmEngine::new(obj(&[("streamSwarmId", "x".into())]))
        .err()
        .expect("refused");
    let message = get(&e, "message").as_string().unwrap_or_default();
    assert!(message.contains("httpBases"), "{message}");
}

#[wasm_bindgen_test]
fn stream_identity_matches_p2p_media_loader() {
    // A page's props object reaches the core's short id (which peer-core/tests/js_vectors.rs
    // checks against p2p-media-loader 2.3's own outputs), field by field.
    let props = obj(&[
        ("bitrate", 400000.0.into()),
        ("codecs", "avc1.42c00d".into()),
        ("width", 320.0.into()),
        ("height", 180.0.into()),
    ]);
    let short = stream_short_id(&props);
    let expected =
        segswarm_core::stream::generate_stream_short_id(&segswarm_core::stream::ShortIdProps {
            bitrate: Some(400000.0),
            codecs: Some("avc1.42c00d".into()),
            width: Some(320),
            height: Some(180),
            ..Default::default()
        });
    assert_eq!(short, expected);
    let swarm = stream_swarm_id("http://a/master.m3u8", "main", &short).expect("main");
    assert_eq!(swarm, format!("v2-http://a/master.m3u8-main-{short}"));
    assert_eq!(info_hash(&swarm, None).expect("hash").len(), 20);
    assert!(stream_swarm_id("x", "other", &short).is_err());
}

/// The id schemes by name: `pml-2.2` names streams by position and hashes with MD5, `peertube` by
/// video uuid and resolution; the core's functions give the same.
#[wasm_bindgen_test]
fn id_schemes_by_name() {
    use segswarm_core::id_scheme::{md5_info_hash, IdScheme};
    let url = "http://a/master.m3u8?x=1";
    let swarm = swarm_for(Some("pml-2.2".into()), None, None, url).expect("swarm");
    assert_eq!(swarm, "http://a/master.m3u8");
    let stream = obj(&[("type", "secondary".into()), ("index", 1.0.into())]);
    let id = scheme_stream_swarm_id(Some("pml-2.2".into()), &swarm, &stream).expect("id");
    assert_eq!(id, "v2-http://a/master.m3u8-secondary-1");
    let md5 = String::from_utf8(md5_info_hash(&id).to_vec()).expect("ascii");
    assert_eq!(info_hash(&id, Some("pml-2.2".into())).expect("hash"), md5);
    assert_ne!(info_hash(&id, None).expect("hash"), md5);

    let uuid = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    assert!(swarm_for(Some("peertube".into()), None, None, url).is_err());
    let swarm = swarm_for(Some("peertube".into()), None, Some(uuid.into()), url).expect("uuid");
    let stream = obj(&[("type", "main".into()), ("resolution", 720.0.into())]);
    let id = scheme_stream_swarm_id(Some("peertube".into()), &swarm, &stream).expect("id");
    assert_eq!(id, format!("pt-v2-{uuid}-main-default-720"));
    let hash = IdScheme::PeerTube.info_hash(&id);
    assert_eq!(
        info_hash(&id, Some("peertube".into()))
            .expect("hash")
            .as_bytes(),
        hash
    );
    assert!(info_hash(&id, Some("pml-9".into())).is_err());

    let engine = SegswarmEngine::new(obj(&[
        ("streamSwarmId", "v2-x-main-0".into()),
        ("idScheme", "pml-2.2".into()),
        ("httpBases", Array::of1(&"http://a/".into()).into()),
        ("trackers", Array::new().into()),
    ]))
    .expect("engine");
    assert!(engine.peer_id().starts_with("-PM0202-"));
    assert_eq!(
        engine.info_hash(),
        info_hash("v2-x-main-0", Some("pml-2.2".into())).expect("hash")
    );
    engine.destroy();
}

#[wasm_bindgen_test]
async fn load_segment_resolves_with_bytes_and_events_are_objects() {
    let engine = SegswarmEngine::new(obj(&[
        ("streamSwarmId", "v2-api-test-main-x".into()),
        ("live", false.into()),
        (
            "httpBases",
            Array::of1(&format!("{}/tests/data", origin()).into()).into(),
        ),
        ("trackers", Array::new().into()),
        ("consumeOnly", true.into()),
        ("uploadRateLimit", 100000.0.into()),
    ]))
    .expect("engine");
    assert_eq!(engine.peer_id().len(), 20);
    assert!(engine.peer_id().starts_with("-PM0203-"));
    assert_eq!(
        engine.info_hash(),
        info_hash("v2-api-test-main-x", None).expect("hash")
    );
    let events = Array::new();
    let sink = events.clone();
    let listener = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.push(&e);
    });
    engine.on_event(listener.as_ref().unchecked_ref::<Function>().clone());
    let segment = obj(&[
        ("id", 7.0.into()),
        ("path", "seg1.bin".into()),
        ("start", 0.0.into()),
        ("duration", 4.0.into()),
    ]);
    engine.set_playlist(Array::of1(&segment)).expect("playlist");
    let result = JsFuture::from(engine.load_segment(7.0))
        .await
        .expect("resolves");
    assert_eq!(get(&result, "source").as_string().as_deref(), Some("http"));
    assert_eq!(get(&result, "cached").as_bool(), Some(false));
    let data: Uint8Array = get(&result, "data").dyn_into().expect("Uint8Array");
    assert_eq!(data.to_vec(), SEG1);
    let failed = JsFuture::from(engine.load_segment(8.0)).await;
    assert!(failed.is_err(), "not in the playlist: rejects");

    let stats = engine.stats();
    assert_eq!(get(&stats, "httpBytes").as_f64(), Some(SEG1.len() as f64));
    assert_eq!(get(&stats, "segmentsHttp").as_f64(), Some(1.0));
    assert_eq!(get(&stats, "trackerConnected").as_bool(), Some(false));
    let types: Vec<String> = events
        .iter()
        .filter_map(|e| get(&e, "type").as_string())
        .collect();
    assert!(types.iter().any(|t| t == "bytes"), "{types:?}");
    let loaded = events
        .iter()
        .find(|e| get(e, "type").as_string().as_deref() == Some("segmentLoaded"))
        .expect("segmentLoaded event");
    assert_eq!(get(&loaded, "id").as_f64(), Some(7.0));
    assert_eq!(get(&loaded, "source").as_string().as_deref(), Some("http"));
    assert_eq!(get(&loaded, "bytes").as_f64(), Some(SEG1.len() as f64));
    assert_eq!(get(&loaded, "cached").as_bool(), Some(false));
    // Asked again: from the cache, but the bytes came over HTTP.
    let again = JsFuture::from(engine.load_segment(7.0))
        .await
        .expect("resolves");
    assert_eq!(get(&again, "source").as_string().as_deref(), Some("http"));
    assert_eq!(get(&again, "cached").as_bool(), Some(true));
    assert!(events
        .iter()
        .any(|e| get(&e, "type").as_string().as_deref() == Some("segmentFailed")));
    engine.destroy();
    let after = JsFuture::from(engine.load_segment(7.0)).await;
    assert!(after.is_err(), "a destroyed engine loads nothing");
}
