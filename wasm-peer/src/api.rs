//! What the module exports to JavaScript: [`SegswarmEngine`] (one swarm's engine, driven by
//! [`crate::driver`]) and the stream identity functions of each id scheme (`pml-2.3`, the
//! default, `pml-2.2`, `peertube`), so that the hand-written hls.js glue (`wasm-peer/js/`) derives
//! the same swarms and segment ids as the players it shares swarms with.

use std::time::Duration;

use bytes::Bytes;
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use segswarm_core::engine::{DeliverySource, EngineConfig, SegmentInfo};
use segswarm_core::id_scheme::{IdScheme, StreamKey};
use segswarm_core::integrity::SegmentManifest;
use segswarm_core::stream;
use wasm_bindgen::prelude::*;

use crate::driver::{Driver, DriverConfig, DriverEvent};
use crate::rtc::IceServer;

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

fn stream_type(name: &str) -> Result<stream::StreamType, JsValue> {
    match name {
        "main" => Ok(stream::StreamType::Main),
        "secondary" => Ok(stream::StreamType::Secondary),
        other => Err(js_sys::Error::new(&format!("unknown stream type {other:?}")).into()),
    }
}

/// An id scheme by name; `undefined`/`null` is the default, `pml-2.3`.
fn id_scheme(name: Option<String>) -> Result<IdScheme, JsValue> {
    name.map_or(Ok(IdScheme::default()), |n| {
        n.parse()
            .map_err(|e: segswarm_core::id_scheme::IdSchemeError| err(&e.to_string()))
    })
}

fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// `"v2-" + swarmId + "-" + type + "-" + shortId`; `streamType` is `"main"` or `"secondary"`.
#[wasm_bindgen(js_name = streamSwarmId)]
pub fn stream_swarm_id(
    swarm_id: &str,
    stream_type: &str,
    short_id: &str,
) -> Result<String, JsValue> {
    let t = self::stream_type(stream_type)?;
    Ok(stream::stream_swarm_id(swarm_id, t, short_id))
}

/// The presentation-wide part of a scheme's stream swarm ids: for `"pml-2.3"` (default) and
/// `"pml-2.2"` the swarm id, else the manifest URL without its query; for `"peertube"` the video
/// uuid (required).
#[wasm_bindgen(js_name = swarmFor)]
pub fn swarm_for(
    id_scheme: Option<String>,
    swarm_id: Option<String>,
    peertube_uuid: Option<String>,
    manifest_url: &str,
) -> Result<String, JsValue> {
    let scheme = self::id_scheme(id_scheme)?;
    scheme
        .swarm(swarm_id.as_deref(), peertube_uuid.as_deref(), manifest_url)
        .map(str::to_owned)
        .map_err(|e| err(&e.to_string()))
}

/// A stream's swarm id under an id scheme. `stream` is `{type: "main"|"secondary", shortId,
/// index, resolution}`: `shortId` (`streamShortId`) for `pml-2.3`, `index` (position among the
/// streams of its type, hls.js `levels` / `audioTracks`) for `pml-2.2`, `resolution` (PeerTube's:
/// the smaller side of the picture; absent or 0 without video) for `peertube`. `swarm` comes from
/// `swarmFor`.
#[wasm_bindgen(js_name = schemeStreamSwarmId)]
pub fn scheme_stream_swarm_id(
    id_scheme: Option<String>,
    swarm: &str,
    stream: &JsValue,
) -> Result<String, JsValue> {
    let scheme = self::id_scheme(id_scheme)?;
    let kind = get(stream, "type")
        .as_string()
        .ok_or_else(|| err("stream.type (\"main\" or \"secondary\") is required"))?;
    let key = StreamKey {
        stream_type: self::stream_type(&kind)?,
        short_id: get(stream, "shortId").as_string().unwrap_or_default(),
        index: get_f64(stream, "index")
            .filter(|i| *i >= 0.0)
            .map_or(0, |i| i as usize),
        resolution: get_f64(stream, "resolution")
            .filter(|r| *r >= 1.0)
            .map(|r| r.min(f64::from(u32::MAX)) as u32),
    };
    Ok(scheme.stream_swarm_id(swarm, &key))
}

/// The 20-character info hash announced for a stream swarm id under an id scheme (default
/// `"pml-2.3"`: base64 of SHA-1's first 15 bytes; `"pml-2.2"`: of MD5's bytes 1 to 15).
#[wasm_bindgen(js_name = infoHash)]
pub fn info_hash(stream_swarm_id: &str, id_scheme: Option<String>) -> Result<String, JsValue> {
    Ok(ascii(
        &self::id_scheme(id_scheme)?.info_hash(stream_swarm_id),
    ))
}

/// p2p-media-loader's `generateStreamShortId`: `props` has the optional fields `bitrate`,
/// `codecs`, `width`, `height`, `language`, `channels`, `name`, `frameRate`, `videoRange`
/// (`null`/`undefined` = absent; numbers or strings as hls.js gives them).
#[wasm_bindgen(js_name = streamShortId)]
pub fn stream_short_id(props: &JsValue) -> String {
    let text = |name: &str| {
        let v = get(props, name);
        if let Some(s) = v.as_string() {
            Some(s)
        } else {
            v.as_f64().map(stream::js_number_to_string)
        }
    };
    let number = |name: &str| get(props, name).as_f64();
    let p = stream::ShortIdProps {
        bitrate: number("bitrate"),
        codecs: text("codecs"),
        width: number("width").map(|w| w as u64),
        height: number("height").map(|h| h as u64),
        language: text("language"),
        channels: text("channels"),
        name: text("name"),
        frame_rate: text("frameRate"),
        video_range: text("videoRange"),
    };
    stream::generate_stream_short_id(&p)
}

fn get(obj: &JsValue, name: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn get_f64(obj: &JsValue, name: &str) -> Option<f64> {
    get(obj, name).as_f64().filter(|v| v.is_finite())
}

fn get_strings(obj: &JsValue, name: &str) -> Vec<String> {
    let v = get(obj, name);
    if let Some(s) = v.as_string() {
        return vec![s];
    }
    if Array::is_array(&v) {
        return Array::from(&v)
            .iter()
            .filter_map(|x| x.as_string())
            .collect();
    }
    Vec::new()
}

fn err(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

/// ICE servers from an `RTCConfiguration`-like object (`{iceServers: [{urls, username,
/// credential}]}`).
fn ice_servers(rtc_config: &JsValue) -> Vec<IceServer> {
    let list = get(rtc_config, "iceServers");
    if !Array::is_array(&list) {
        return Vec::new();
    }
    Array::from(&list)
        .iter()
        .map(|s| IceServer {
            urls: get_strings(&s, "urls"),
            username: get(&s, "username").as_string().unwrap_or_default(),
            credential: get(&s, "credential").as_string().unwrap_or_default(),
        })
        .filter(|s| !s.urls.is_empty())
        .collect()
}

/// A random p2p-media-loader style peer id of the id scheme's version (`-PM0203-`, `-PM0202-`
/// for `pml-2.2`, + 12 random characters), so that p2p-media-loader peers treat us as one of
/// theirs.
fn new_peer_id(scheme: IdScheme) -> Result<[u8; 20], JsValue> {
    let mut random = [0u8; 20];
    getrandom::fill(&mut random).map_err(|e| err(&format!("crypto.getRandomValues: {e}")))?;
    let mut i = 0;
    let id = stream::peer_id_from_picks(&scheme.peer_id_prefix(), |n| {
        let r = usize::from(random[i % random.len()]);
        i += 1;
        r % n
    });
    let mut out = [0u8; 20];
    let bytes = id.as_bytes();
    if bytes.len() != out.len() {
        return Err(err("peer id of the wrong length"));
    }
    out.copy_from_slice(bytes);
    Ok(out)
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// One swarm's P2P engine in the page (see the package README for the options).
///
/// Options (an object): `streamSwarmId` (string, required), `idScheme` (`"pml-2.3"` (default),
/// `"pml-2.2"` or `"peertube"`: how the info hash is derived from it), `live` (bool), `httpBases` (origin
/// base URL first, then mirrors), `trackers` (WebSocket URLs), `rtcConfig` (`{iceServers}`),
/// `consumeOnly` (bool), `uploadRateLimit` (bytes/s), `cacheBytes` (store cap),
/// `maxPeers`, `seed`, `requireSegmentsSha256` (bool: no P2P until a `segments-sha256.json`
/// manifest is given).
#[wasm_bindgen]
pub struct SegswarmEngine {
    driver: Driver,
    peer_id: String,
    info_hash: String,
}

#[wasm_bindgen]
impl SegswarmEngine {
    /// Starts an engine and connects to its tracker.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<SegswarmEngine, JsValue> {
        let swarm = get(&options, "streamSwarmId")
            .as_string()
            .ok_or_else(|| err("options.streamSwarmId (string) is required"))?;
        let scheme = id_scheme(get(&options, "idScheme").as_string())?;
        let info_hash = scheme.info_hash(&swarm);
        let live = get(&options, "live").as_bool().unwrap_or(false);
        let bases = get_strings(&options, "httpBases");
        if bases.is_empty() {
            return Err(err("options.httpBases needs at least the origin base URL"));
        }
        let peer_id = new_peer_id(scheme)?;
        let mut engine = EngineConfig::new(peer_id, info_hash, live, bases);
        engine.consume_only = get(&options, "consumeOnly").as_bool().unwrap_or(false);
        engine.upload_rate = get_f64(&options, "uploadRateLimit")
            .filter(|r| *r > 0.0)
            .map(|r| r as u64);
        if let Some(b) = get_f64(&options, "cacheBytes").filter(|b| *b > 0.0) {
            engine.store_max_bytes = b as u64;
        }
        if let Some(n) = get_f64(&options, "maxPeers").filter(|n| *n >= 0.0) {
            engine.max_peers = n as usize;
        }
        engine.require_manifest = get(&options, "requireSegmentsSha256").as_bool() == Some(true);
        engine.seed = get_f64(&options, "seed").map_or_else(random_seed, |s| s as u64);
        let mut config = DriverConfig::new(engine, get_strings(&options, "trackers"));
        config.rtc.channel.ice_servers = ice_servers(&get(&options, "rtcConfig"));
        if let Some(ms) = get_f64(&options, "reconnectMaxMs").filter(|v| *v > 0.0) {
            config.reconnect_max = Duration::from_millis(ms as u64);
        }
        let driver = Driver::new(config);
        Ok(SegswarmEngine {
            driver,
            peer_id: String::from_utf8_lossy(&peer_id).into_owned(),
            info_hash: ascii(&info_hash),
        })
    }

    /// Our peer id (20 characters).
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.peer_id.clone()
    }

    /// The swarm's info hash (20 characters).
    #[wasm_bindgen(getter, js_name = infoHash)]
    pub fn info_hash(&self) -> String {
        self.info_hash.clone()
    }

    /// Sets the event listener: called with `{type, ...}` objects — `bytes` (`source`:
    /// `"http"`, `"p2p"` or `"upload"`, `bytes`), `peerConnect` / `peerClose` (`peer`),
    /// `segmentLoaded` (`id`, `source`: `"http"`, `"peer"` or `"cache"` (unknown), `cached`,
    /// `bytes`),
    /// `segmentFailed` (`id`, `reason`), `trackerConnect` / `trackerDisconnect` (`url`).
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, listener: Function) {
        self.driver.set_listener(move |event| {
            let obj = event_object(&event);
            if let Err(e) = listener.call1(&JsValue::NULL, &obj) {
                tracing::debug!(error = %crate::error::js_message(&e), "event listener threw");
            }
        });
    }

    /// The playlist: an array of `{id, path, start, duration, size?, rangeStart?, rangeEnd?}`
    /// (`path` is appended to each HTTP base; `rangeStart..rangeEnd`, end exclusive, is a
    /// byte-range segment's part of that file, fetched with `Range`).
    #[wasm_bindgen(js_name = setPlaylist)]
    pub fn set_playlist(&self, segments: Array) -> Result<(), JsValue> {
        let mut list = Vec::with_capacity(segments.length() as usize);
        for s in segments.iter() {
            let id = get_f64(&s, "id").ok_or_else(|| err("segment.id (number) is required"))?;
            let path = get(&s, "path")
                .as_string()
                .ok_or_else(|| err("segment.path (string) is required"))?;
            let byte_range = match (get_f64(&s, "rangeStart"), get_f64(&s, "rangeEnd")) {
                (Some(a), Some(b)) if b > a && a >= 0.0 => Some(a as u64..b as u64),
                _ => None,
            };
            list.push(SegmentInfo {
                id: id as i64,
                path,
                start: get_f64(&s, "start").unwrap_or(0.0),
                duration: get_f64(&s, "duration").unwrap_or(0.0),
                size_hint: get_f64(&s, "size")
                    .filter(|v| *v > 0.0)
                    .map(|v| v as u64)
                    .or(byte_range.as_ref().map(|r| r.end - r.start)),
                byte_range,
            });
        }
        self.driver.set_playlist(list);
        Ok(())
    }

    /// The SHA-256 manifest (`segments-sha256.json` text); segments that do not match it are
    /// refused and their sender banned.
    #[wasm_bindgen(js_name = setManifest)]
    pub fn set_manifest(&self, json: &str) -> Result<(), JsValue> {
        let m = SegmentManifest::from_json(json.as_bytes()).map_err(|e| err(&e.to_string()))?;
        self.driver.set_manifest(m);
        Ok(())
    }

    /// The playback position (media seconds); segment deadlines are measured from it.
    #[wasm_bindgen(js_name = setPlayback)]
    pub fn set_playback(&self, position: f64) {
        if position.is_finite() {
            self.driver.set_playback(position);
        }
    }

    /// Loads a segment: resolves to `{data: Uint8Array, source, cached}` or rejects (failed or
    /// cancelled). `source` is where the bytes came from (`"http"` or `"peer"`; `"cache"` when
    /// unknown, e.g. added with `addSegment`), `cached` whether it was stored before it was asked
    /// for.
    #[wasm_bindgen(js_name = loadSegment)]
    pub fn load_segment(&self, id: f64) -> js_sys::Promise {
        let driver = self.driver.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let id = id as i64;
            let (data, source) = driver
                .load_segment(id)
                .await
                .map_err(|e| err(&e.to_string()))?;
            let origin = match source {
                DeliverySource::Cache => driver.segment_origin(id).unwrap_or(source),
                other => other,
            };
            let obj = Object::new();
            set(&obj, "data", &Uint8Array::from(data.as_ref()).into());
            set(&obj, "source", &source_name(origin).into());
            set(
                &obj,
                "cached",
                &JsValue::from_bool(source == DeliverySource::Cache),
            );
            Ok(obj.into())
        })
    }

    /// Gives up a segment asked for with `loadSegment` (its promise rejects).
    #[wasm_bindgen(js_name = cancelSegment)]
    pub fn cancel_segment(&self, id: f64) {
        self.driver.cancel_segment(id as i64);
    }

    /// Offers a segment the page already has (e.g. loaded by other means) to peers.
    #[wasm_bindgen(js_name = addSegment)]
    pub fn add_segment(&self, id: f64, data: &[u8]) {
        self.driver
            .add_segment(id as i64, Bytes::copy_from_slice(data));
    }

    /// Whether the segment is in the cache.
    #[wasm_bindgen(js_name = hasSegment)]
    pub fn has_segment(&self, id: f64) -> bool {
        self.driver.has_segment(id as i64)
    }

    /// Transfer totals: `{httpBytes, p2pBytes, uploadedBytes, segmentsHttp, segmentsP2p,
    /// segmentsDelivered, peers, peersConnected, stallsAvoided, hashMismatches, peersBanned,
    /// trackerConnected}`.
    pub fn stats(&self) -> JsValue {
        let st = self.driver.stats();
        let obj = Object::new();
        let n = |v: u64| JsValue::from_f64(v as f64);
        set(&obj, "httpBytes", &n(st.http_bytes));
        set(&obj, "p2pBytes", &n(st.p2p_bytes));
        set(&obj, "uploadedBytes", &n(st.uploaded_bytes));
        set(&obj, "segmentsHttp", &n(st.segments_http));
        set(&obj, "segmentsP2p", &n(st.segments_p2p));
        set(&obj, "segmentsDelivered", &n(st.segments_delivered));
        set(&obj, "peers", &n(self.driver.connected_peers() as u64));
        set(&obj, "peersConnected", &n(st.peers_connected));
        set(&obj, "stallsAvoided", &n(st.stalls_avoided));
        set(&obj, "hashMismatches", &n(st.hash_mismatches));
        set(&obj, "peersBanned", &n(st.peers_banned));
        set(
            &obj,
            "trackerConnected",
            &JsValue::from_bool(self.driver.tracker_connected()),
        );
        obj.into()
    }

    /// Leaves the swarm and releases every connection; pending `loadSegment`s reject.
    pub fn destroy(&self) {
        self.driver.shutdown();
    }
}

fn set(obj: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

fn source_name(source: DeliverySource) -> &'static str {
    match source {
        DeliverySource::Cache => "cache",
        DeliverySource::Http(_) => "http",
        DeliverySource::Peer(_) => "peer",
    }
}

fn event_object(event: &DriverEvent) -> JsValue {
    let obj = Object::new();
    let n = |v: f64| JsValue::from_f64(v);
    match event {
        DriverEvent::Bytes { source, bytes } => {
            set(&obj, "type", &"bytes".into());
            set(&obj, "source", &source.as_str().into());
            set(&obj, "bytes", &n(*bytes as f64));
        }
        DriverEvent::PeerConnected(p) => {
            set(&obj, "type", &"peerConnect".into());
            set(&obj, "peer", &n(p.0 as f64));
        }
        DriverEvent::PeerClosed(p) => {
            set(&obj, "type", &"peerClose".into());
            set(&obj, "peer", &n(p.0 as f64));
        }
        DriverEvent::SegmentLoaded {
            segment,
            source,
            origin,
            bytes,
        } => {
            set(&obj, "type", &"segmentLoaded".into());
            set(&obj, "id", &n(*segment as f64));
            set(
                &obj,
                "source",
                &source_name(origin.unwrap_or(*source)).into(),
            );
            set(
                &obj,
                "cached",
                &JsValue::from_bool(*source == DeliverySource::Cache),
            );
            set(&obj, "bytes", &n(*bytes as f64));
        }
        DriverEvent::SegmentFailed { segment, reason } => {
            set(&obj, "type", &"segmentFailed".into());
            set(&obj, "id", &n(*segment as f64));
            set(&obj, "reason", &reason.as_str().into());
        }
        DriverEvent::TrackerConnected(url) => {
            set(&obj, "type", &"trackerConnect".into());
            set(&obj, "url", &url.as_str().into());
        }
        DriverEvent::TrackerDisconnected(url) => {
            set(&obj, "type", &"trackerDisconnect".into());
            set(&obj, "url", &url.as_str().into());
        }
    }
    obj.into()
}
