//! The JSON of PeerTube's REST API that a seeder reads, typed.
//!
//! Shapes from PeerTube's `packages/models/src/videos/video.model.ts` (`VideoDetails`),
//! `video-streaming-playlist.model.ts`, `file/video-file.model.ts`, `video-state.enum.ts` and the
//! formatter `server/core/models/video/formatter/video-api-format.ts`
//! (`videoModelToFormattedDetailsJSON`, `streamingPlaylistsModelToFormattedJSON`,
//! `videoFilesModelToFormattedJSON`); `serverVersion` from `/api/v1/config`
//! (`server/core/lib/server-config-manager.ts`). Only the fields segswarm uses are kept; unknown
//! fields are ignored, and fields PeerTube may omit or send as `null` are optional, so that other
//! versions of the API still parse.

use serde::{Deserialize, Serialize};

/// A `{ id, label }` pair (`VideoConstant` in PeerTube's models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constant<T> {
    /// The value.
    pub id: T,
    /// Its human label (may be missing).
    #[serde(default)]
    pub label: Option<String>,
}

/// `VideoState` values (`packages/models/src/videos/video-state.enum.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoState;

impl VideoState {
    /// Published (a VOD ready to watch, or a live that is streaming).
    pub const PUBLISHED: u32 = 1;
    /// Waiting for transcoding.
    pub const TO_TRANSCODE: u32 = 2;
    /// A live not streaming yet.
    pub const WAITING_FOR_LIVE: u32 = 4;
    /// A live that ended.
    pub const LIVE_ENDED: u32 = 5;
}

/// `VideoStreamingPlaylist.type` of HLS (`VideoStreamingPlaylistType.HLS`).
pub const STREAMING_PLAYLIST_TYPE_HLS: u32 = 1;

/// A mirror of the video's HLS files (`redundancies[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redundancy {
    /// The directory the mirror serves the files from (same file names as the origin's).
    pub base_url: String,
}

/// One file of a streaming playlist (`VideoFile & { playlistUrl }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoFile {
    /// `resolution.id`: the height class (0 for audio only).
    pub resolution: Constant<u32>,
    /// Picture width (missing for old videos).
    #[serde(default)]
    pub width: Option<u32>,
    /// Picture height (missing for old videos).
    #[serde(default)]
    pub height: Option<u32>,
    /// Frames per second (-1 or 0 for audio only).
    #[serde(default)]
    pub fps: Option<f64>,
    /// Size of the file, bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// The variant's media playlist (`<name>.m3u8` next to the fragmented MP4).
    #[serde(default)]
    pub playlist_url: Option<String>,
    /// The fragmented MP4 (`<name>-fragmented.mp4`).
    #[serde(default)]
    pub file_url: Option<String>,
}

/// One streaming playlist of a video (`streamingPlaylists[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamingPlaylist {
    /// `type`: 1 = HLS.
    #[serde(rename = "type", default)]
    pub kind: u32,
    /// The master playlist (also the p2p-media-loader 2.2 `swarmId`).
    pub playlist_url: String,
    /// The integrity manifest, `segments-sha256.json`.
    #[serde(default)]
    pub segments_sha256_url: Option<String>,
    /// Mirrors serving the same files.
    #[serde(default)]
    pub redundancies: Vec<Redundancy>,
    /// The variants' files.
    #[serde(default)]
    pub files: Vec<VideoFile>,
}

/// `GET /api/v1/videos/{id}` (`VideoDetails`), the part segswarm reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoDetails {
    /// The video's uuid.
    pub uuid: String,
    /// Its short form, as in `/w/<shortUUID>`.
    #[serde(rename = "shortUUID", default)]
    pub short_uuid: Option<String>,
    /// Title.
    #[serde(default)]
    pub name: String,
    /// A live stream (or a live that ended).
    #[serde(default)]
    pub is_live: bool,
    /// Processing/live state (`VideoState`).
    #[serde(default)]
    pub state: Option<Constant<u32>>,
    /// Duration, seconds (0 for a live).
    #[serde(default)]
    pub duration: Option<f64>,
    /// The instance's trackers (`wss://host/tracker/socket`, `https://host/tracker/announce`).
    #[serde(default)]
    pub tracker_urls: Vec<String>,
    /// HLS playlists (at most one today).
    #[serde(default)]
    pub streaming_playlists: Vec<StreamingPlaylist>,
}

impl VideoDetails {
    /// The HLS streaming playlist, if the video has one.
    pub fn hls(&self) -> Option<&StreamingPlaylist> {
        self.streaming_playlists
            .iter()
            .find(|p| p.kind == STREAMING_PLAYLIST_TYPE_HLS)
    }

    /// The WebSocket trackers (`trackerUrls` starting with `ws`), as the player announces to.
    pub fn ws_trackers(&self) -> Vec<String> {
        self.tracker_urls
            .iter()
            .filter(|u| {
                let l = u.to_ascii_lowercase();
                l.starts_with("ws://") || l.starts_with("wss://")
            })
            .cloned()
            .collect()
    }

    /// The `state.id`, if sent.
    pub fn state_id(&self) -> Option<u32> {
        self.state.as_ref().map(|s| s.id)
    }

    /// A live whose state says it ended.
    pub fn live_ended(&self) -> bool {
        self.is_live && self.state_id() == Some(VideoState::LIVE_ENDED)
    }

    /// Sum of the HLS files' announced sizes, bytes (files without a size count 0).
    pub fn hls_bytes(&self) -> u64 {
        self.hls().map_or(0, |p| {
            p.files
                .iter()
                .filter_map(|f| f.size)
                .fold(0u64, u64::saturating_add)
        })
    }
}

/// `GET /api/v1/config`, the part segswarm reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    /// `serverVersion`, e.g. `"7.2.3"`.
    pub server_version: String,
    /// `serverCommit`, when the instance reports it.
    #[serde(default)]
    pub server_commit: Option<String>,
}

/// Why an API answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Not JSON of the expected shape.
    #[error("{what}: unexpected JSON: {error}")]
    Json {
        /// Which answer.
        what: &'static str,
        /// serde's message.
        error: String,
    },
    /// A `uuid` that is not one.
    #[error("the API gave {0:?} as the video uuid")]
    BadUuid(String),
    /// A field with a value out of its shape.
    #[error("{what}: field {field}: unusable value {value:?}")]
    Field {
        /// Which answer.
        what: &'static str,
        /// The field, e.g. `data[3].publishedAt`.
        field: String,
        /// The value (at most 80 characters).
        value: String,
    },
}

/// Parses a `/api/v1/videos/{id}` answer.
pub fn parse_video_details(json: &[u8]) -> Result<VideoDetails, ApiError> {
    let v: VideoDetails = serde_json::from_slice(json).map_err(|e| ApiError::Json {
        what: "/api/v1/videos/{id}",
        error: e.to_string(),
    })?;
    if !super::video_url::is_uuid(&v.uuid) {
        return Err(ApiError::BadUuid(v.uuid.chars().take(80).collect()));
    }
    Ok(v)
}

/// Parses a `/api/v1/config` answer.
pub fn parse_server_config(json: &[u8]) -> Result<ServerConfig, ApiError> {
    serde_json::from_slice(json).map_err(|e| ApiError::Json {
        what: "/api/v1/config",
        error: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `VideoDetails` as PeerTube 7.x formats it (abridged: account/channel shortened).
    const DETAILS: &str = r#"{
      "id": 12, "uuid": "9c9de5e8-0a1e-484a-b099-e80766180a6d", "shortUUID": "kkGMgK9ZtnKfYAgnEtQxbv",
      "url": "https://pt.example/videos/watch/9c9de5e8-0a1e-484a-b099-e80766180a6d",
      "name": "Big Buck", "category": {"id": 1, "label": "Music"}, "licence": {"id": 1, "label": "Attribution"},
      "language": {"id": null, "label": "Unknown"}, "privacy": {"id": 1, "label": "Public"},
      "nsfw": false, "truncatedDescription": null, "description": null, "isLocal": true, "duration": 12,
      "aspectRatio": 1.3333, "views": 3, "viewers": 0, "likes": 0, "dislikes": 0, "comments": 0,
      "thumbnailPath": "/lazy-static/thumbnails/a.jpg", "previewPath": "/lazy-static/previews/a.jpg",
      "embedPath": "/videos/embed/9c9de5e8-0a1e-484a-b099-e80766180a6d",
      "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-01T00:00:00.000Z",
      "publishedAt": "2025-01-01T00:00:00.000Z", "originallyPublishedAt": null, "isLive": false,
      "account": {"id": 1, "name": "root"}, "channel": {"id": 1, "name": "root_channel"},
      "blacklisted": false, "blacklistedReason": null,
      "streamingPlaylists": [{
        "id": 4, "type": 1,
        "playlistUrl": "https://pt.example/static/streaming-playlists/hls/9c9de5e8-0a1e-484a-b099-e80766180a6d/3f1c-master.m3u8",
        "segmentsSha256Url": "https://pt.example/static/streaming-playlists/hls/9c9de5e8-0a1e-484a-b099-e80766180a6d/77aa-segments-sha256.json",
        "redundancies": [{"baseUrl": "https://mirror.example/static/redundancy/hls/9c9de5e8-0a1e-484a-b099-e80766180a6d"}],
        "files": [{
          "id": 7, "resolution": {"id": 240, "label": "240p"}, "width": 320, "height": 240,
          "magnetUri": null, "size": 263681, "fps": 25, "torrentUrl": null, "torrentDownloadUrl": null,
          "fileUrl": "https://pt.example/static/streaming-playlists/hls/9c9de5e8-0a1e-484a-b099-e80766180a6d/aa-240-fragmented.mp4",
          "fileDownloadUrl": "https://pt.example/download/videos/generate/x", "metadataUrl": "https://pt.example/api/v1/videos/12/metadata/7",
          "hasAudio": false, "hasVideo": true,
          "playlistUrl": "https://pt.example/static/streaming-playlists/hls/9c9de5e8-0a1e-484a-b099-e80766180a6d/aa-240.m3u8",
          "storage": 0
        }]
      }],
      "files": [], "support": null, "tags": [], "commentsPolicy": {"id": 1, "label": "Enabled"},
      "downloadEnabled": true, "waitTranscoding": true, "inputFileUpdatedAt": null,
      "state": {"id": 1, "label": "Published"},
      "trackerUrls": ["https://pt.example/tracker/announce", "wss://pt.example:443/tracker/socket"]
    }"#;

    #[test]
    fn parses_peertube_video_details() {
        let v = parse_video_details(DETAILS.as_bytes()).unwrap();
        assert_eq!(v.uuid, "9c9de5e8-0a1e-484a-b099-e80766180a6d");
        assert_eq!(v.short_uuid.as_deref(), Some("kkGMgK9ZtnKfYAgnEtQxbv"));
        assert_eq!(v.name, "Big Buck");
        assert!(!v.is_live && !v.live_ended());
        assert_eq!(v.state_id(), Some(VideoState::PUBLISHED));
        assert_eq!(v.ws_trackers(), vec!["wss://pt.example:443/tracker/socket"]);
        let hls = v.hls().unwrap();
        assert!(hls.playlist_url.ends_with("-master.m3u8"));
        assert!(hls
            .segments_sha256_url
            .as_deref()
            .unwrap()
            .ends_with("segments-sha256.json"));
        assert_eq!(hls.redundancies.len(), 1);
        let f = &hls.files[0];
        assert_eq!(f.resolution.id, 240);
        assert_eq!(
            (f.width, f.height, f.size),
            (Some(320), Some(240), Some(263_681))
        );
        assert_eq!(f.fps, Some(25.0));
        assert!(f.playlist_url.as_deref().unwrap().ends_with("aa-240.m3u8"));
        assert_eq!(v.hls_bytes(), 263_681);
    }

    #[test]
    fn tolerates_missing_and_null_optional_fields() {
        let v = parse_video_details(
            br#"{"uuid":"9c9de5e8-0a1e-484a-b099-e80766180a6d","isLive":true,"state":{"id":5},
                 "streamingPlaylists":[{"type":1,"playlistUrl":"http://h/m.m3u8","segmentsSha256Url":null,
                 "files":[{"resolution":{"id":0},"width":null,"height":null,"fps":-1,"size":null}]}]}"#,
        )
        .unwrap();
        assert!(v.live_ended());
        assert!(v.tracker_urls.is_empty() && v.ws_trackers().is_empty());
        assert_eq!(v.hls().unwrap().segments_sha256_url, None);
        assert_eq!(v.hls_bytes(), 0);
    }

    #[test]
    fn refuses_wrong_shapes() {
        assert!(matches!(
            parse_video_details(b"[]"),
            Err(ApiError::Json { .. })
        ));
        assert!(matches!(
            parse_video_details(b"{\"uuid\":1}"),
            Err(ApiError::Json { .. })
        ));
        assert!(matches!(
            parse_video_details(b"{\"uuid\":\"../etc\"}"),
            Err(ApiError::BadUuid(_))
        ));
        assert!(matches!(
            parse_server_config(b"{}"),
            Err(ApiError::Json { .. })
        ));
        let c = parse_server_config(
            br#"{"instance":{"name":"x"},"serverVersion":"8.0.1","serverCommit":"abc"}"#,
        )
        .unwrap();
        assert_eq!(c.server_version, "8.0.1");
    }
}
