//! A PeerTube-shaped origin for tests: on 127.0.0.1, for one or more VOD videos, what a PeerTube
//! instance serves — `/api/v1/videos/{id|uuid|shortUUID}` in PeerTube's `VideoDetails` shape,
//! `/api/v1/config` with `serverVersion`, the `/w/<shortUUID>` and `/videos/watch/<uuid>` pages,
//! and the HLS files in PeerTube's layout under `/static/streaming-playlists/hls/<uuid>/`
//! (`<x>-master.m3u8`, `<y>-<res>.m3u8`, `<y>-<res>-fragmented.mp4` as single-file fragmented MP4
//! with `#EXT-X-BYTERANGE`, `<z>-segments-sha256.json` keyed by file name and `start-end`) — plus
//! a mirror listener serving the same files under `/static/redundancy/hls/<uuid>/`, as a
//! PeerTube redundancy does. [`Controls`] switches the origin's static files or the mirror off and
//! corrupts a byte on the origin.
//!
//! Live videos are not modelled yet.
//!
//! Use with `#[path = "../../tests/support/peertube_origin.rs"] mod peertube_origin;` next to
//! `mod support;` (it uses `super::support` for ffmpeg). Needs the `native` feature (hyper).

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use segswarm_core::native::origin::{parse_range, RangeRequest};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One resolution of a test video.
#[derive(Debug, Clone)]
pub struct PtResolution {
    /// Height class (`resolution.id`).
    pub resolution: u32,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Video bitrate for ffmpeg, e.g. `"300k"`.
    pub bitrate: String,
    /// `<y>-<res>.m3u8` (set by [`make_vod_video`]).
    pub playlist_file: String,
    /// `<y>-<res>-fragmented.mp4` (set by [`make_vod_video`]).
    pub mp4_file: String,
    /// Size of the MP4, bytes (set by [`make_vod_video`]).
    pub size: u64,
}

impl PtResolution {
    /// A resolution to make: `resolution` p, `width`x`height`, `bitrate`.
    pub fn new(resolution: u32, width: u32, height: u32, bitrate: &str) -> Self {
        Self {
            resolution,
            width,
            height,
            bitrate: bitrate.into(),
            playlist_file: String::new(),
            mp4_file: String::new(),
            size: 0,
        }
    }
}

/// A VOD video as PeerTube stores it.
#[derive(Debug, Clone)]
pub struct PtVideo {
    /// Numeric id.
    pub id: u64,
    /// uuid.
    pub uuid: String,
    /// shortUUID (base 58 of the uuid).
    pub short_uuid: String,
    /// Title.
    pub name: String,
    /// The directory holding its HLS files.
    pub dir: PathBuf,
    /// `<x>-master.m3u8`.
    pub master_file: String,
    /// `<z>-segments-sha256.json`.
    pub sha_file: String,
    /// Its resolutions, highest first.
    pub resolutions: Vec<PtResolution>,
    /// Duration, seconds.
    pub duration: u32,
    /// A live video: its files are written by ffmpeg while it is served, and its
    /// `segments-sha256.json` lists the `.ts` segments present at each request, as PeerTube
    /// rewrites it when segments come and go.
    pub live: bool,
    /// `views` (in the lists and details). Default 0.
    pub views: u64,
    /// PeerTube's trending score (not in the JSON; orders `sort=-trending`). Default 0.
    pub trending: u64,
    /// `publishedAt` (ISO 8601). Default `2025-06-01T10:00:00.000Z`.
    pub published_at: String,
}

/// `publishedAt` of the test videos unless set.
pub const DEFAULT_PUBLISHED_AT: &str = "2025-06-01T10:00:00.000Z";

/// PeerTube's `uuidToShort`: the uuid's 128 bits in the Flickr base-58 alphabet, padded to 22.
pub fn short_uuid(uuid: &str) -> String {
    const ALPHABET: &[u8] = b"123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    let mut n = u128::from_str_radix(&hex, 16).expect("a uuid");
    let mut out = Vec::new();
    while n > 0 {
        out.push(ALPHABET[(n % 58) as usize]);
        n /= 58;
    }
    while out.len() < 22 {
        out.push(ALPHABET[0]);
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

/// A uuid-shaped string made from `seed` (deterministic, distinct per seed).
pub fn test_uuid(seed: u64) -> String {
    let h = Sha256::digest(seed.to_le_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

/// The `segments-sha256.json` PeerTube writes for single-file fMP4 variants: per MP4 file name,
/// per `#EXT-X-BYTERANGE:<len>@<off>`, `"<off>-<off+len-1>": sha256`.
pub fn peertube_vod_manifest(dir: &Path, variants: &[(String, String)]) -> String {
    let mut top = serde_json::Map::new();
    for (playlist, mp4) in variants {
        let text = std::fs::read_to_string(dir.join(playlist)).expect("read the variant playlist");
        let data = std::fs::read(dir.join(mp4)).expect("read the MP4");
        let mut ranges = serde_json::Map::new();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("#EXT-X-BYTERANGE:") {
                let (len, off) = v.split_once('@').expect("ffmpeg writes len@offset");
                let (len, off): (usize, usize) = (len.parse().unwrap(), off.parse().unwrap());
                let digest = hex::encode(Sha256::digest(&data[off..off + len]));
                ranges.insert(format!("{}-{}", off, off + len - 1), digest.into());
            }
        }
        top.insert(mp4.clone(), ranges.into());
    }
    serde_json::Value::Object(top).to_string()
}

/// Makes a VOD video in `dir` with ffmpeg (single-file fragmented MP4 per resolution, 2 s
/// segments), with PeerTube's file names, master playlist and manifest.
pub fn make_vod_video(
    dir: &Path,
    seed: u64,
    seconds: u32,
    resolutions: &[PtResolution],
) -> PtVideo {
    std::fs::create_dir_all(dir).expect("video directory");
    let uuid = test_uuid(seed);
    let file_prefix = test_uuid(seed + 1000);
    let master_file = format!("{}-master.m3u8", test_uuid(seed + 2000));
    let sha_file = format!("{}-segments-sha256.json", test_uuid(seed + 3000));
    let mut out = Vec::new();
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
    for r in resolutions {
        let mut r = r.clone();
        r.playlist_file = format!("{file_prefix}-{}.m3u8", r.resolution);
        r.mp4_file = format!("{file_prefix}-{}-fragmented.mp4", r.resolution);
        let spec = super::support::StreamSpec {
            seconds,
            segment_seconds: 2,
            size: format!("{}x{}", r.width, r.height),
            bitrate: r.bitrate.clone(),
            playlist: r.playlist_file.clone(),
            segment_pattern: r.mp4_file.clone(),
            audio: false,
            single_file_fmp4: true,
            live_window: 5,
        };
        super::support::make_vod(dir, &spec);
        r.size = std::fs::metadata(dir.join(&r.mp4_file))
            .expect("the MP4")
            .len();
        let kbits: u64 = r.bitrate.trim_end_matches('k').parse().unwrap_or(400);
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE=25,CODECS=\"avc1.42c015\"\n{}\n",
            kbits * 1000 + 20_000,
            r.width,
            r.height,
            r.playlist_file
        ));
        out.push(r);
    }
    std::fs::write(dir.join(&master_file), master).expect("write the master playlist");
    let pairs: Vec<(String, String)> = out
        .iter()
        .map(|r| (r.playlist_file.clone(), r.mp4_file.clone()))
        .collect();
    std::fs::write(dir.join(&sha_file), peertube_vod_manifest(dir, &pairs))
        .expect("write the manifest");
    out.sort_by_key(|r| std::cmp::Reverse(r.resolution));
    PtVideo {
        id: seed,
        short_uuid: short_uuid(&uuid),
        uuid,
        name: format!("Test video {seed}"),
        dir: dir.to_owned(),
        master_file,
        sha_file,
        resolutions: out,
        duration: seconds,
        live: false,
        views: 0,
        trending: 0,
        published_at: DEFAULT_PUBLISHED_AT.into(),
    }
}

/// A live video laid out as PeerTube's live transcoding writes it: `master.m3u8`, one variant
/// `0.m3u8` with segments `0-000000.ts`, ... (written into `dir` by ffmpeg: see
/// [`start_live_video`]) and `segments-sha256.json` computed at each request.
pub fn live_video(dir: &Path, seed: u64, resolution: PtResolution) -> PtVideo {
    std::fs::create_dir_all(dir).expect("video directory");
    let uuid = test_uuid(seed);
    let mut r = resolution;
    r.playlist_file = "0.m3u8".into();
    let kbits: u64 = r.bitrate.trim_end_matches('k').parse().unwrap_or(400);
    let master = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"avc1.42c015\"\n{}\n",
        kbits * 1000 + 20_000,
        r.width,
        r.height,
        r.playlist_file
    );
    std::fs::write(dir.join("master.m3u8"), master).expect("write the master playlist");
    PtVideo {
        id: seed,
        short_uuid: short_uuid(&uuid),
        uuid,
        name: format!("Live {seed}"),
        dir: dir.to_owned(),
        master_file: "master.m3u8".into(),
        sha_file: "segments-sha256.json".into(),
        resolutions: vec![r],
        duration: 0,
        live: true,
        views: 0,
        trending: 0,
        published_at: DEFAULT_PUBLISHED_AT.into(),
    }
}

/// Starts ffmpeg writing `video`'s live stream (`segment_seconds` segments, a sliding window of
/// 15 as PeerTube's live keeps) into its directory.
pub fn start_live_video(video: &PtVideo, segment_seconds: u32) -> super::support::ChildGuard {
    let r = &video.resolutions[0];
    super::support::start_live(
        &video.dir,
        &super::support::StreamSpec {
            seconds: 0,
            segment_seconds,
            size: format!("{}x{}", r.width, r.height),
            bitrate: r.bitrate.clone(),
            playlist: r.playlist_file.clone(),
            segment_pattern: "0-%06d.ts".into(),
            audio: false,
            single_file_fmp4: false,
            live_window: 15,
        },
    )
}

/// Writes `dir/segments-sha256.json` as PeerTube rewrites it while a live runs (atomically: a
/// temporary file renamed), for a page server that only serves files.
pub fn write_live_manifest(dir: &Path) {
    let tmp = dir.join("segments-sha256.json.tmp");
    if std::fs::write(&tmp, live_manifest(dir)).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("segments-sha256.json"));
    }
}

/// PeerTube's live `segments-sha256.json`: `{ "<segment>.ts": "<sha256 hex>" }` for the segments
/// in `dir` now.
fn live_manifest(dir: &Path) -> String {
    let mut map = serde_json::Map::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".ts") {
            continue;
        }
        if let Ok(data) = std::fs::read(entry.path()) {
            map.insert(name, hex::encode(Sha256::digest(&data)).into());
        }
    }
    serde_json::Value::Object(map).to_string()
}

/// What a test switches on the running origin.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    /// `serverVersion` of `/api/v1/config`.
    pub server_version: String,
    /// The origin's `/static/` files answer 503.
    pub origin_static_down: bool,
    /// The mirror answers 503.
    pub mirror_down: bool,
    /// On the origin, flip the byte at this offset of this file when it is served.
    pub corrupt: Option<(String, u64)>,
    /// Static requests served by the origin (paths).
    pub origin_requests: Vec<String>,
    /// Requests served by the mirror (paths).
    pub mirror_requests: Vec<String>,
    /// REST API requests served by the origin (paths with their query).
    pub api_requests: Vec<String>,
    /// The origin's `/api/` answers 503.
    pub api_down: bool,
    /// The live videos have ended (API `state` 5, "Live ended").
    pub live_ended: bool,
    /// The instance's WebSocket tracker in `trackerUrls` (a segswarm-tracker the test runs, as
    /// nginx puts one at `/tracker/socket`); default `ws://<origin>/tracker/socket`.
    pub tracker_ws: Option<String>,
}

/// The running origin and mirror.
pub struct PeerTubeOrigin {
    /// `http://127.0.0.1:<port>` of the instance.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the mirror.
    pub mirror_base: String,
    /// The videos served.
    pub videos: Vec<PtVideo>,
    /// Switches and request logs.
    pub controls: Arc<Mutex<Controls>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for PeerTubeOrigin {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl PeerTubeOrigin {
    /// Starts the instance and its mirror on ephemeral ports of 127.0.0.1.
    pub async fn start(videos: Vec<PtVideo>, server_version: &str) -> Self {
        let origin = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the origin");
        let mirror = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mirror");
        let base = format!("http://{}", origin.local_addr().expect("address"));
        let mirror_base = format!("http://{}", mirror.local_addr().expect("address"));
        let controls = Arc::new(Mutex::new(Controls {
            server_version: server_version.into(),
            ..Controls::default()
        }));
        let shared = Arc::new(Shared {
            base: base.clone(),
            mirror_base: mirror_base.clone(),
            videos: videos.clone(),
            controls: controls.clone(),
        });
        let tasks = vec![
            tokio::spawn(accept(origin, shared.clone(), false)),
            tokio::spawn(accept(mirror, shared, true)),
        ];
        Self {
            base,
            mirror_base,
            videos,
            controls,
            tasks,
        }
    }

    /// `/w/<shortUUID>` of video `i`.
    pub fn watch_url(&self, i: usize) -> String {
        format!("{}/w/{}", self.base, self.videos[i].short_uuid)
    }

    /// Changes the controls.
    pub fn set(&self, f: impl FnOnce(&mut Controls)) {
        f(&mut self.controls.lock().expect("controls"));
    }

    /// A copy of the controls (request logs included).
    pub fn controls(&self) -> Controls {
        self.controls.lock().expect("controls").clone()
    }
}

struct Shared {
    base: String,
    mirror_base: String,
    videos: Vec<PtVideo>,
    controls: Arc<Mutex<Controls>>,
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, is_mirror: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, is_mirror, req)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("access-control-allow-origin", "*")
        .body(Full::new(body.into()))
        .expect("response")
}

fn not_found() -> Response<Full<Bytes>> {
    reply(
        StatusCode::NOT_FOUND,
        "application/json",
        r#"{"type":"https://docs.joinpeertube.org/api-rest-reference.html#section/Errors/not_found","title":"Not Found","status":404}"#,
    )
}

fn handle(shared: &Shared, is_mirror: bool, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if is_mirror {
        return match parts.as_slice() {
            ["static", "redundancy", "hls", uuid, file] => {
                let mut c = shared.controls.lock().expect("controls");
                c.mirror_requests.push(path.clone());
                if c.mirror_down {
                    return reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "down");
                }
                drop(c);
                serve_file(shared, uuid, file, range.as_deref(), None)
            }
            _ => not_found(),
        };
    }
    let find = |id: &str| {
        shared
            .videos
            .iter()
            .find(|v| v.uuid == id || v.short_uuid == id || v.id.to_string() == id)
    };
    if parts.first() == Some(&"api") {
        let mut c = shared.controls.lock().expect("controls");
        c.api_requests.push(req.uri().to_string());
        if c.api_down {
            return reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "down");
        }
    }
    match parts.as_slice() {
        ["api", "v1", "videos"] => reply(
            StatusCode::OK,
            "application/json",
            video_list_json(shared, req.uri().query().unwrap_or("")),
        ),
        ["api", "v1", "config"] => {
            let version = shared.controls.lock().expect("controls").server_version.clone();
            reply(StatusCode::OK, "application/json", config_json(&version))
        }
        ["api", "v1", "videos", id] => match find(id) {
            Some(v) => reply(StatusCode::OK, "application/json", video_json(shared, v)),
            None => not_found(),
        },
        ["w", id] | ["videos", "watch", id] => match find(id) {
            Some(v) => reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html><html><head><title>{}</title></head><body>PeerTube</body></html>",
                    v.name
                ),
            ),
            None => not_found(),
        },
        ["static", "streaming-playlists", "hls", uuid, file] => {
            let mut c = shared.controls.lock().expect("controls");
            c.origin_requests.push(path.clone());
            if c.origin_static_down {
                return reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "down");
            }
            let corrupt = c
                .corrupt
                .clone()
                .filter(|(f, _)| f == file)
                .map(|(_, at)| at);
            drop(c);
            serve_file(shared, uuid, file, range.as_deref(), corrupt)
        }
        _ => not_found(),
    }
}

fn serve_file(
    shared: &Shared,
    uuid: &str,
    file: &str,
    range: Option<&str>,
    corrupt_at: Option<u64>,
) -> Response<Full<Bytes>> {
    let Some(video) = shared.videos.iter().find(|v| v.uuid == uuid) else {
        return not_found();
    };
    if file.contains("..") {
        return not_found();
    }
    if video.live && file == video.sha_file {
        return reply(
            StatusCode::OK,
            "application/json",
            live_manifest(&video.dir),
        );
    }
    let Ok(mut data) = std::fs::read(video.dir.join(file)) else {
        return not_found();
    };
    if let Some(at) = corrupt_at {
        if let Some(b) = data.get_mut(at as usize) {
            *b ^= 0xff;
        }
    }
    let len = data.len() as u64;
    let ct = if file.ends_with(".m3u8") {
        "application/vnd.apple.mpegurl"
    } else if file.ends_with(".json") {
        "application/json"
    } else if file.ends_with(".ts") {
        "video/mp2t"
    } else {
        "video/mp4"
    };
    match parse_range(range, len) {
        RangeRequest::Full => reply(StatusCode::OK, ct, data),
        RangeRequest::Partial { start, end } => {
            let body = data[start as usize..=end as usize].to_vec();
            let mut r = reply(StatusCode::PARTIAL_CONTENT, ct, body);
            r.headers_mut().insert(
                "content-range",
                format!("bytes {start}-{end}/{len}")
                    .parse()
                    .expect("header"),
            );
            r
        }
        RangeRequest::Unsatisfiable => {
            let mut r = reply(StatusCode::RANGE_NOT_SATISFIABLE, ct, Bytes::new());
            r.headers_mut().insert(
                "content-range",
                format!("bytes */{len}").parse().expect("header"),
            );
            r
        }
    }
}

fn config_json(version: &str) -> String {
    serde_json::json!({
        "instance": { "name": "Test PeerTube", "shortDescription": "", "isNSFW": false,
                      "defaultNSFWPolicy": "do_not_list", "defaultClientRoute": "/videos/trending" },
        "search": { "remoteUri": { "users": true, "anonymous": false } },
        "plugin": { "registered": [] },
        "theme": { "registered": [], "default": "default" },
        "email": { "enabled": false },
        "contactForm": { "enabled": true },
        "serverVersion": version,
        "serverCommit": "0123abcd",
        "signup": { "allowed": false, "allowedForCurrentIP": false, "requiresEmailVerification": false },
        "transcoding": { "hls": { "enabled": true }, "web_videos": { "enabled": false },
                         "enabledResolutions": [240, 360] },
        "live": { "enabled": true, "latencySetting": { "enabled": true } },
        "tracker": { "enabled": true },
        "webrtc": { "stunServers": ["stun:stun.framasoft.org:443"] }
    })
    .to_string()
}

fn video_json(shared: &Shared, v: &PtVideo) -> String {
    let host = shared.base.trim_start_matches("http://");
    let (tracker_ws, live_ended) = {
        let c = shared.controls.lock().expect("controls");
        (c.tracker_ws.clone(), c.live_ended)
    };
    let hls_dir = format!("{}/static/streaming-playlists/hls/{}", shared.base, v.uuid);
    let files: Vec<serde_json::Value> = v
        .resolutions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::json!({
                "id": 100 + i,
                "resolution": { "id": r.resolution, "label": format!("{}p", r.resolution) },
                "width": r.width, "height": r.height,
                "magnetUri": null,
                "size": r.size, "fps": 25,
                "torrentUrl": null, "torrentDownloadUrl": null,
                "fileUrl": format!("{hls_dir}/{}", r.mp4_file),
                "fileDownloadUrl": format!("{}/download/streaming-playlists/hls/videos/{}-{}-fragmented.mp4", shared.base, v.uuid, r.resolution),
                "metadataUrl": format!("{}/api/v1/videos/{}/metadata/{}", shared.base, v.id, 100 + i),
                "hasAudio": false, "hasVideo": true,
                "playlistUrl": format!("{hls_dir}/{}", r.playlist_file),
                "storage": 0
            })
        })
        .collect();
    let channel = serde_json::json!({
        "id": 1, "name": "root_channel", "displayName": "Main root channel",
        "url": format!("{}/video-channels/root_channel", shared.base), "host": host, "avatars": []
    });
    let account = serde_json::json!({
        "id": 1, "name": "root", "displayName": "root",
        "url": format!("{}/accounts/root", shared.base), "host": host, "avatars": []
    });
    serde_json::json!({
        "id": v.id, "uuid": v.uuid, "shortUUID": v.short_uuid,
        "url": format!("{}/videos/watch/{}", shared.base, v.uuid),
        "name": v.name,
        "category": { "id": null, "label": "Unknown" }, "licence": { "id": null, "label": "Unknown" },
        "language": { "id": null, "label": "Unknown" }, "privacy": { "id": 1, "label": "Public" },
        "nsfw": false, "nsfwFlags": 0, "nsfwSummary": null,
        "truncatedDescription": null, "description": null,
        "isLocal": true, "duration": v.duration, "aspectRatio": 1.3333,
        "views": v.views, "viewers": 0, "likes": 0, "dislikes": 0, "comments": 0,
        "thumbnailPath": format!("/lazy-static/thumbnails/{}.jpg", v.uuid),
        "previewPath": format!("/lazy-static/previews/{}.jpg", v.uuid),
        "embedPath": format!("/videos/embed/{}", v.uuid),
        "createdAt": "2025-06-01T10:00:00.000Z", "updatedAt": "2025-06-01T10:05:00.000Z",
        "publishedAt": v.published_at, "originallyPublishedAt": null,
        "isLive": v.live,
        "account": account, "channel": channel,
        "blacklisted": false, "blacklistedReason": null,
        "streamingPlaylists": [{
            "id": v.id, "type": 1,
            "playlistUrl": format!("{hls_dir}/{}", v.master_file),
            "segmentsSha256Url": format!("{hls_dir}/{}", v.sha_file),
            "redundancies": [{ "baseUrl": format!("{}/static/redundancy/hls/{}", shared.mirror_base, v.uuid) }],
            "files": files
        }],
        "files": [],
        "support": null, "tags": ["test"],
        "commentsPolicy": { "id": 1, "label": "Enabled" },
        "downloadEnabled": true, "waitTranscoding": true, "inputFileUpdatedAt": null,
        "state": if v.live && live_ended { serde_json::json!({ "id": 5, "label": "Live ended" }) } else { serde_json::json!({ "id": 1, "label": "Published" }) },
        "trackerUrls": [
            format!("{}/tracker/announce", shared.base),
            tracker_ws.unwrap_or_else(|| format!("ws://{host}/tracker/socket"))
        ],
        "liveSchedules": [], "scheduledUpdate": null
    })
    .to_string()
}

/// `GET /api/v1/videos?sort=-views|-trending|-publishedAt&count=N&start=K`: PeerTube's
/// `ResultList<Video>` (`total`, `data[]` without files, as for an anonymous caller).
fn video_list_json(shared: &Shared, query: &str) -> String {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let count: usize = param("count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(15)
        .min(100);
    let start: usize = param("start").and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut videos: Vec<&PtVideo> = shared.videos.iter().collect();
    match param("sort").as_deref() {
        Some("-views") => videos.sort_by_key(|v| std::cmp::Reverse(v.views)),
        Some("-trending") => videos.sort_by_key(|v| std::cmp::Reverse(v.trending)),
        _ => videos.sort_by(|a, b| b.published_at.cmp(&a.published_at)),
    }
    let host = shared.base.trim_start_matches("http://");
    let data: Vec<serde_json::Value> = videos
        .iter()
        .skip(start)
        .take(count)
        .map(|v| {
            serde_json::json!({
                "id": v.id, "uuid": v.uuid, "shortUUID": v.short_uuid,
                "url": format!("{}/videos/watch/{}", shared.base, v.uuid),
                "name": v.name, "isLocal": true, "duration": v.duration,
                "views": v.views, "viewers": 0, "likes": 0, "dislikes": 0, "comments": 0,
                "createdAt": v.published_at, "updatedAt": v.published_at,
                "publishedAt": v.published_at, "originallyPublishedAt": null,
                "isLive": v.live,
                "embedPath": format!("/videos/embed/{}", v.uuid),
                "account": { "id": 1, "name": "root", "host": host },
                "channel": { "id": 1, "name": "root_channel", "host": host }
            })
        })
        .collect();
    serde_json::json!({ "total": shared.videos.len(), "data": data }).to_string()
}

/// The socket address of a `http://host:port` base.
pub fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .parse()
        .expect("an address")
}
