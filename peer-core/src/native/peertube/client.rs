//! The PeerTube REST client: resolve a video URL into what a seeder needs.

use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use crate::http_range::{check_content_range, range_header};
use crate::id_scheme::IdScheme;
use crate::peertube::api::{parse_server_config, parse_video_details, ApiError, VideoDetails};
use crate::peertube::version::{id_scheme_for_version, VersionError};
use crate::peertube::video_list::{parse_video_list, ListedVideo, VideoSort};
use crate::peertube::video_url::{parse_video_url, VideoRef, VideoUrlError};

/// Settings of the REST client (also used by the mirror for its requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTubeSettings {
    /// Longest TCP/TLS connect. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest time for one request, headers and body. Default 20 s.
    pub request_timeout: Duration,
    /// Largest API answer read, bytes (a video's details are a few KiB; the config some tens).
    /// Default 4 MiB.
    pub max_api_bytes: u64,
    /// `User-Agent` header. Default `segswarm/<version>`.
    pub user_agent: String,
}

impl Default for PeerTubeSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            max_api_bytes: 4 * 1024 * 1024,
            user_agent: concat!("segswarm/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why a request or a resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerTubeError {
    /// The video URL is not one.
    #[error(transparent)]
    Url(#[from] VideoUrlError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// Connection, protocol or timeout error.
    #[error("{url}: {error}")]
    Request {
        /// The URL.
        url: String,
        /// What happened.
        error: String,
    },
    /// An error status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// A body larger than allowed.
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A Range answer for other bytes than asked.
    #[error("{url}: Content-Range {got:?} does not match bytes {asked}")]
    BadContentRange {
        /// The URL.
        url: String,
        /// The header (empty if missing).
        got: String,
        /// The range asked, `start-end` inclusive.
        asked: String,
    },
    /// An API answer that does not parse.
    #[error("{url}: {error}")]
    Api {
        /// The URL.
        url: String,
        /// Why.
        error: ApiError,
    },
    /// `serverVersion` unusable for choosing an id scheme.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The video has no HLS streaming playlist (web videos only, or still transcoding).
    #[error("video {0} has no HLS streaming playlist (only web videos, or not transcoded yet)")]
    NoHls(String),
}

/// A video resolved through the API: everything the mirror and the seeder need.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedVideo {
    /// The URL as parsed.
    pub video_ref: VideoRef,
    /// The API's answer.
    pub details: VideoDetails,
    /// `serverVersion` of the instance.
    pub server_version: String,
    /// The id scheme: the override if given, else the one of the version's players.
    pub id_scheme: IdScheme,
    /// The master playlist URL (p2p-media-loader 2.2's `swarmId`).
    pub master_url: String,
    /// `segmentsSha256Url`.
    pub segments_sha256_url: Option<String>,
    /// Mirror base URLs (`redundancies[].baseUrl`).
    pub mirrors: Vec<String>,
    /// The instance's WebSocket trackers.
    pub ws_trackers: Vec<String>,
}

/// A body read within a limit.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The bytes (for a Range request: exactly the asked range).
    pub bytes: Bytes,
    /// Bytes received on the wire (for a 200 answer to a Range request, more than `bytes`).
    pub wire_bytes: u64,
}

/// The PeerTube REST client.
#[derive(Debug, Clone)]
pub struct PeerTubeClient {
    pub(crate) http: reqwest::Client,
    pub(crate) settings: PeerTubeSettings,
}

impl PeerTubeClient {
    /// A client with these settings.
    pub fn new(settings: PeerTubeSettings) -> Result<Self, PeerTubeError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| PeerTubeError::Client(e.to_string()))?;
        Ok(Self { http, settings })
    }

    /// GETs `url` (the bytes `range`, end exclusive, if given), reading at most `limit` bytes of
    /// body. A `206` must carry the matching `Content-Range`; a `200` to a Range request is cut
    /// to the range (reading at most `range.end` bytes).
    pub(crate) async fn get_bounded(
        &self,
        url: &str,
        range: Option<Range<u64>>,
        limit: u64,
    ) -> Result<Fetched, PeerTubeError> {
        let req_err = |e: reqwest::Error| PeerTubeError::Request {
            url: url.to_owned(),
            error: e.to_string(),
        };
        let mut req = self.http.get(url);
        if let Some(r) = &range {
            if r.end <= r.start {
                return Err(PeerTubeError::BadContentRange {
                    url: url.to_owned(),
                    got: String::new(),
                    asked: format!("{}..{}", r.start, r.end),
                });
            }
            if let Some(value) = range_header(r.start, Some(r.end)) {
                req = req.header(RANGE, value);
            }
        }
        let mut resp = req.send().await.map_err(req_err)?;
        let status = resp.status();
        // How many bytes to read, and how many to skip (a 200 ignoring the Range).
        let (skip, read_limit) = match (&range, status) {
            (Some(r), StatusCode::PARTIAL_CONTENT) => {
                let got = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                if check_content_range(&got, r.start, Some(r.end)).is_none() {
                    return Err(PeerTubeError::BadContentRange {
                        url: url.to_owned(),
                        got,
                        asked: format!("{}-{}", r.start, r.end - 1),
                    });
                }
                (0, r.end - r.start)
            }
            (Some(r), StatusCode::OK) => (r.start, r.end),
            (None, StatusCode::OK) => (0, limit),
            _ => {
                return Err(PeerTubeError::Status {
                    url: url.to_owned(),
                    status: status.as_u16(),
                })
            }
        };
        if read_limit.saturating_sub(skip) > limit {
            return Err(PeerTubeError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        let mut out = BytesMut::new();
        let mut received = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(req_err)? {
            let start = received;
            received = received.saturating_add(chunk.len() as u64);
            // Keep the part of this chunk within [skip, read_limit).
            let from = skip.saturating_sub(start).min(chunk.len() as u64) as usize;
            let to = read_limit.saturating_sub(start).min(chunk.len() as u64) as usize;
            if from < to {
                out.extend_from_slice(&chunk[from..to]);
            }
            if received >= read_limit {
                if range.is_none() && received > limit {
                    return Err(PeerTubeError::TooLarge {
                        url: url.to_owned(),
                        limit,
                    });
                }
                if range.is_some() {
                    break;
                }
            }
        }
        if let Some(r) = &range {
            if out.len() as u64 != r.end - r.start {
                return Err(PeerTubeError::Request {
                    url: url.to_owned(),
                    error: format!(
                        "body ended after {} of {} bytes",
                        out.len(),
                        r.end - r.start
                    ),
                });
            }
        }
        Ok(Fetched {
            bytes: out.freeze(),
            wire_bytes: received,
        })
    }

    async fn get_json(&self, url: &str) -> Result<Bytes, PeerTubeError> {
        Ok(self
            .get_bounded(url, None, self.settings.max_api_bytes)
            .await?
            .bytes)
    }

    /// `GET /api/v1/videos/{id}`.
    pub async fn video(&self, video: &VideoRef) -> Result<VideoDetails, PeerTubeError> {
        let url = video.api_url();
        let body = self.get_json(&url).await?;
        parse_video_details(&body).map_err(|error| PeerTubeError::Api { url, error })
    }

    /// `GET <instance>/api/v1/videos?sort=<sort>&count=<count>&start=0`: at most `count` videos
    /// (an answer with more is an error), read within [`PeerTubeSettings::max_api_bytes`].
    pub async fn list_videos(
        &self,
        instance: &str,
        sort: VideoSort,
        count: u32,
    ) -> Result<Vec<ListedVideo>, PeerTubeError> {
        let url = format!(
            "{}/api/v1/videos?sort={}&count={count}&start=0",
            instance.trim_end_matches('/'),
            sort.as_query()
        );
        let body = self.get_json(&url).await?;
        parse_video_list(&body, count as usize).map_err(|error| PeerTubeError::Api { url, error })
    }

    /// `GET /api/v1/config` → `serverVersion`.
    pub async fn server_version(&self, video: &VideoRef) -> Result<String, PeerTubeError> {
        let url = video.config_url();
        let body = self.get_json(&url).await?;
        parse_server_config(&body)
            .map(|c| c.server_version)
            .map_err(|error| PeerTubeError::Api { url, error })
    }

    /// Resolves a video URL: its details, the instance's version and the id scheme of its players
    /// (or `id_scheme_override`, which also lets a version this code refuses through).
    pub async fn resolve(
        &self,
        video_url: &str,
        id_scheme_override: Option<IdScheme>,
    ) -> Result<ResolvedVideo, PeerTubeError> {
        let video_ref = parse_video_url(video_url)?;
        let details = self.video(&video_ref).await?;
        let server_version = self.server_version(&video_ref).await?;
        let id_scheme = match id_scheme_override {
            Some(s) => s,
            None => id_scheme_for_version(&server_version)?,
        };
        let hls = details
            .hls()
            .ok_or_else(|| PeerTubeError::NoHls(details.uuid.clone()))?;
        Ok(ResolvedVideo {
            master_url: hls.playlist_url.clone(),
            segments_sha256_url: hls.segments_sha256_url.clone(),
            mirrors: hls
                .redundancies
                .iter()
                .map(|r| r.base_url.clone())
                .collect(),
            ws_trackers: details.ws_trackers(),
            video_ref,
            server_version,
            id_scheme,
            details,
        })
    }
}
