//! Short-id normalization in the browser: non-ASCII text is case-mapped by JavaScript's own
//! `toLowerCase`/`toUpperCase` there (no Rust Unicode tables in the module); the result must be the
//! string p2p-media-loader hashes, the same one the native build computes.
#![cfg(target_arch = "wasm32")]

use segswarm_core::stream::{short_id_source, ShortIdProps};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn non_ascii_names_are_case_mapped_like_javascript() {
    let props = ShortIdProps {
        bitrate: Some(1_500_000.0),
        codecs: Some("AVC1.64001F,MP4A.40.2".into()),
        width: Some(1280),
        height: Some(720),
        language: Some("ÉS-mx".into()),
        name: Some(" ÑANDÚ Ωmega ".into()),
        frame_rate: Some("25".into()),
        video_range: Some("pq\u{e9}".into()),
        ..ShortIdProps::default()
    };
    assert_eq!(
        short_id_source(&props),
        "1500000-avc1.64001f,mp4a.40.2-1280-720-és--ñandú ωmega-25-PQÉ"
    );
}

/// Non-integer numbers print as JavaScript's `Number.prototype.toString` does (JavaScript itself
/// in the browser build); frame rates are read as `Number(s)` reads them.
#[wasm_bindgen_test]
fn numbers_print_like_javascript() {
    let props = |bitrate: f64, frame_rate: &str| ShortIdProps {
        bitrate: Some(bitrate),
        frame_rate: Some(frame_rate.into()),
        ..ShortIdProps::default()
    };
    assert_eq!(
        short_id_source(&props(1234.5, "29.970")),
        "1234.5-------29.97-"
    );
    assert_eq!(short_id_source(&props(0.1, "2.5e1")), "0.1-------25-");
    assert_eq!(short_id_source(&props(-3.0, "+.5")), "-3-------0.5-");
    assert_eq!(short_id_source(&props(f64::NAN, "1-2")), "NaN--------");
}
