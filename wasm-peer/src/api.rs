//! What the module exports to JavaScript. Only what works today is exported: the stream identity
//! of p2p-media-loader 2.3 (so a page can check it joins the same swarm as p2p-media-loader).
//! The P2P loader for hls.js is not built yet.

use segswarm_core::stream;
use wasm_bindgen::prelude::*;

/// The crate version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The swarm id p2p-media-loader derives from a manifest URL (the URL without its query).
#[wasm_bindgen(js_name = swarmIdFromManifestUrl)]
pub fn swarm_id_from_manifest_url(url: &str) -> String {
    stream::swarm_id_from_manifest_url(url).to_string()
}

/// `"v2-" + swarmId + "-" + type + "-" + shortId`; `streamType` is `"main"` or `"secondary"`.
#[wasm_bindgen(js_name = streamSwarmId)]
pub fn stream_swarm_id(
    swarm_id: &str,
    stream_type: &str,
    short_id: &str,
) -> Result<String, JsValue> {
    let t = match stream_type {
        "main" => stream::StreamType::Main,
        "secondary" => stream::StreamType::Secondary,
        other => {
            return Err(js_sys::Error::new(&format!("unknown stream type {other:?}")).into());
        }
    };
    Ok(stream::stream_swarm_id(swarm_id, t, short_id))
}

/// The 20-character info hash p2p-media-loader 2.3 announces for a stream swarm id.
#[wasm_bindgen(js_name = infoHash)]
pub fn info_hash(stream_swarm_id: &str) -> String {
    stream::info_hash(stream_swarm_id)
        .iter()
        .map(|&b| char::from(b))
        .collect()
}
