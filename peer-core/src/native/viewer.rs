//! The Viewer: watch an HLS stream through the swarm, headless.
//!
//! [`Viewer::open`] loads a multivariant or media playlist URL, picks a variant (lowest bandwidth
//! by default), derives the swarm identity as the players of [`ViewerConfig::id_scheme`] do
//! (p2p-media-loader 2.3 by default) from the URL the player loads (or from an explicit swarm id,
//! or for the `peertube` scheme from the video uuid and the variant's resolution), and starts a [`PeerDriver`] for that swarm with the
//! media playlist's directory as HTTP origin and any mirrors after it. Then either:
//!
//! - [`Viewer::segment`]: one segment's bytes, wanted within a deadline; or
//! - [`Viewer::play`]: the [`HeadlessPlayer`] (the simulator's player model) in real time: it
//!   starts once its startup buffer is in, stalls when the playhead reaches the end of the buffered
//!   media, asks for the segments ahead of the playhead, and the playhead position is given to the
//!   engine so it knows every deadline; live playlists are reloaded every target duration. The
//!   result is a [`PlayReport`].
//!
//! Segment URIs must lie under the media playlist's directory (relative URIs, as ffmpeg and
//! PeerTube write them), so each mirror can serve the same paths. Byte-range segments
//! (`#EXT-X-BYTERANGE`, PeerTube's single `*-fragmented.mp4` per resolution) are fetched with
//! `Range` requests and shared under the same wire ids as whole-file segments. The `#EXT-X-MAP`
//! initialization sections of fMP4 streams are fetched over HTTP once each, from the origin, and
//! never shared over P2P (as p2p-media-loader leaves them to the player's own loader); see
//! [`Viewer::init_section`].

use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use tokio::task::JoinHandle;

use super::driver::{
    DriverError, DriverEvent, DriverHandle, DriverSettings, DriverStats, PeerDriver,
};
use super::http::{FetchRequest, HttpError, HttpFetcher};
use crate::engine::EngineConfig;
use crate::hls::{is_master_playlist, parse_media_playlist, HlsError, InitSection, MediaPlaylist};
use crate::id_scheme::{IdScheme, IdSchemeError, StreamKey};
use crate::integrity::SegmentManifest;
use crate::player::{HeadlessPlayer, PlayState, PlayerSettings};
use crate::scheduler::SchedulerConfig;
use crate::stream::{
    generate_peer_id_with_prefix, generate_stream_short_id, master_playlist_streams, ShortIdProps,
    StreamIdentity, StreamType,
};
use crate::time::Instant;
use crate::tracker_client::PeerId;
use crate::wire::SegmentId;

/// Which variant of a multivariant playlist to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VariantChoice {
    /// The lowest `BANDWIDTH`.
    #[default]
    Lowest,
    /// The highest `BANDWIDTH`.
    Highest,
    /// The n-th variant in playlist order (0-based).
    Index(usize),
}

/// Settings of [`Viewer::play`]: the headless player and the loop that drives it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaySettings {
    /// The headless player (startup buffer, buffer ahead, live sync, ...).
    pub player: PlayerSettings,
    /// Playhead update period. Default 100 ms.
    pub tick: Duration,
    /// How often the playhead position is handed to the engine. Default 250 ms.
    pub playback_update: Duration,
    /// Progress callback period. Default 1 s.
    pub progress_interval: Duration,
    /// Live: shortest playlist reload period (the target duration is used when longer).
    /// Default 500 ms.
    pub min_reload: Duration,
}

impl Default for PlaySettings {
    fn default() -> Self {
        Self {
            player: PlayerSettings::default(),
            tick: Duration::from_millis(100),
            playback_update: Duration::from_millis(250),
            progress_interval: Duration::from_secs(1),
            min_reload: Duration::from_millis(500),
        }
    }
}

/// Settings of a [`Viewer`].
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// The multivariant or media playlist URL the player loads.
    pub playlist_url: String,
    /// Explicit swarm id (as p2p-media-loader's `swarmId`); `None` = the playlist URL without
    /// its query. Not used by the `peertube` scheme.
    pub swarm_id: Option<String>,
    /// How swarm ids and info hashes are derived (`pml-2.3` by default; `pml-2.2` to meet
    /// p2p-media-loader 2.2 players such as PeerTube 7.1 to 8.0's; `peertube` needs
    /// [`ViewerConfig::peertube_uuid`]).
    pub id_scheme: IdScheme,
    /// The PeerTube video's uuid, for the `peertube` id scheme. Default none.
    pub peertube_uuid: Option<String>,
    /// Mirror base URLs, each serving the media playlist's directory; tried after the origin.
    pub mirrors: Vec<String>,
    /// Which variant to watch.
    pub variant: VariantChoice,
    /// The `segments-sha256.json` URL; `None` = try the one beside the media playlist (a missing
    /// file means no verification).
    pub manifest_url: Option<String>,
    /// Driver settings (trackers, WebRTC, HTTP).
    pub driver: DriverSettings,
    /// Our peer id; `None` = a fresh one with the prefix of the id scheme's p2p-media-loader
    /// version (`-PM0203-`, or `-PM0202-` for `pml-2.2`).
    pub peer_id: Option<PeerId>,
    /// Upload nothing. Default false.
    pub consume_only: bool,
    /// No P2P until a `segments-sha256.json` is loaded (see
    /// [`EngineConfig::require_manifest`]). Default false.
    pub require_manifest: bool,
    /// Most peer connections. Default 20.
    pub max_peers: usize,
    /// The engine's scheduling settings. Default [`SchedulerConfig::default`].
    pub scheduler: SchedulerConfig,
    /// The headless player.
    pub play: PlaySettings,
}

impl ViewerConfig {
    /// Defaults for a playlist URL and tracker URLs.
    pub fn new(playlist_url: impl Into<String>, tracker_urls: Vec<String>) -> Self {
        Self {
            playlist_url: playlist_url.into(),
            swarm_id: None,
            id_scheme: IdScheme::default(),
            peertube_uuid: None,
            mirrors: Vec::new(),
            variant: VariantChoice::Lowest,
            manifest_url: None,
            driver: DriverSettings::new(tracker_urls),
            peer_id: None,
            consume_only: false,
            require_manifest: false,
            max_peers: 20,
            scheduler: SchedulerConfig::default(),
            play: PlaySettings::default(),
        }
    }
}

/// Errors of the [`Viewer`].
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// A URL that cannot be parsed or joined.
    #[error("invalid URL {0:?}")]
    BadUrl(String),
    /// A playlist could not be fetched.
    #[error("fetching {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        source: HttpError,
    },
    /// A playlist is not valid.
    #[error("playlist {url}: {source}")]
    Playlist {
        /// The URL.
        url: String,
        /// Why.
        source: HlsError,
    },
    /// The id scheme cannot name the swarm (the `peertube` scheme without a video uuid).
    #[error(transparent)]
    IdScheme(#[from] IdSchemeError),
    /// A multivariant playlist without the variant asked for.
    #[error("no such variant in {0}")]
    NoVariant(String),
    /// A segment URI outside the media playlist's directory.
    #[error("segment {0:?} is not under the media playlist's directory")]
    SegmentOutsideBase(String),
    /// A playlist feature the engine cannot load yet.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// The driver failed or ended.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A segment failed.
    #[error("segment {segment}: {reason}")]
    SegmentFailed {
        /// The segment.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
    /// A segment did not arrive within its deadline.
    #[error("segment {0} did not arrive in time")]
    Deadline(SegmentId),
}

/// A progress line of [`Viewer::play`], once per [`PlaySettings::progress_interval`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlayProgress {
    /// Wall-clock seconds since `play` began.
    pub elapsed_s: f64,
    /// Playhead, media seconds on the playlist's timeline.
    pub position_s: f64,
    /// Media buffered ahead of the playhead, seconds.
    pub buffer_s: f64,
    /// Whether the playhead is moving.
    pub playing: bool,
    /// Bytes received over HTTP so far.
    pub http_bytes: u64,
    /// Bytes received from peers so far.
    pub p2p_bytes: u64,
    /// Bytes sent to peers so far.
    pub uploaded_bytes: u64,
    /// Peers connected now.
    pub peers: usize,
    /// Stalls so far.
    pub stall_count: u64,
}

/// What [`Viewer::play`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlayReport {
    /// Bytes received over HTTP (origin and mirrors).
    pub http_bytes: u64,
    /// Bytes received from peers.
    pub p2p_bytes: u64,
    /// `p2p_bytes / (http_bytes + p2p_bytes)`, 0 when nothing was received.
    pub p2p_share: f64,
    /// Bytes sent to peers.
    pub uploaded_bytes: u64,
    /// HTTP bytes per base URL (origin first, then mirrors).
    pub http_bytes_by_base: Vec<u64>,
    /// Times the playhead reached the end of the buffer after playback had started.
    pub stall_count: u64,
    /// Seconds spent stalled.
    pub stall_seconds: f64,
    /// Seconds from `play` to the start of playback (`None` if it never started).
    pub startup_s: Option<f64>,
    /// Most peers connected at once.
    pub peers_max: usize,
    /// Media seconds played.
    pub played_s: f64,
    /// Segments delivered to the player.
    pub segments: u64,
    /// Live: mean distance from the playhead to the live edge while playing, seconds.
    pub live_latency_s: Option<f64>,
    /// Live: largest such distance, seconds.
    pub live_latency_max_s: Option<f64>,
    /// Live: the playhead fell out of the playlist window and jumped forward this often.
    pub live_skips: u64,
    /// Whether the stream is live.
    pub live: bool,
    /// The swarm's info hash (20 ASCII characters).
    pub info_hash: String,
    /// The media playlist played.
    pub media_playlist: String,
    /// Wall-clock seconds of the session.
    pub wall_s: f64,
    /// Segments whose hash did not match the manifest.
    pub hash_mismatches: u64,
    /// Peers banned for bad data.
    pub peers_banned: u64,
    /// Bytes of `#EXT-X-MAP` initialization sections fetched over HTTP (each once; not counted
    /// in `http_bytes`, never shared over P2P).
    pub init_bytes: u64,
}

/// A viewer of one stream. See the module documentation.
#[derive(Debug)]
pub struct Viewer {
    config: ViewerConfig,
    fetcher: HttpFetcher,
    driver: DriverHandle,
    identity: StreamIdentity,
    media_url: Url,
    playlist: MediaPlaylist,
    manifest_url: Option<String>,
    peers_max: usize,
    /// Initialization sections fetched (absolute URI and range), with their bytes.
    inits: Vec<(InitSection, Bytes)>,
}

async fn fetch_text(fetcher: &HttpFetcher, url: &str) -> Result<String, ViewerError> {
    let bytes = fetcher
        .fetch_bytes(FetchRequest::new(url))
        .await
        .map_err(|source| ViewerError::Fetch {
            url: url.to_owned(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The directory URL of `url` (up to and including its last `/`, without query).
fn directory_of(url: &Url) -> Url {
    let mut dir = url.clone();
    dir.set_query(None);
    dir.set_fragment(None);
    if let Ok(mut segs) = dir.path_segments_mut() {
        segs.pop();
        segs.push("");
    }
    dir
}

/// Checks that every segment lies under `base` and rewrites URIs to paths relative to it;
/// initialization section URIs become absolute URLs.
fn relative_paths(playlist: &mut MediaPlaylist, media_url: &Url) -> Result<(), ViewerError> {
    for init in &mut playlist.init_sections {
        init.uri = media_url
            .join(&init.uri)
            .map_err(|_| ViewerError::BadUrl(init.uri.clone()))?
            .to_string();
    }
    let base = directory_of(media_url);
    for s in &mut playlist.segments {
        let abs = media_url
            .join(&s.uri)
            .map_err(|_| ViewerError::BadUrl(s.uri.clone()))?;
        let rel = abs
            .as_str()
            .strip_prefix(base.as_str())
            .ok_or_else(|| ViewerError::SegmentOutsideBase(s.uri.clone()))?;
        s.uri = rel.to_owned();
    }
    Ok(())
}

impl Viewer {
    /// Loads the playlist, picks the variant and starts the driver (which connects to the
    /// trackers at once). Must run inside a tokio runtime.
    pub async fn open(config: ViewerConfig) -> Result<Self, ViewerError> {
        let fetcher = HttpFetcher::new(&[], config.driver.http.clone()).map_err(|source| {
            ViewerError::Fetch {
                url: config.playlist_url.clone(),
                source,
            }
        })?;
        let top_url = Url::parse(&config.playlist_url)
            .map_err(|_| ViewerError::BadUrl(config.playlist_url.clone()))?;
        let swarm = config
            .id_scheme
            .swarm(
                config.swarm_id.as_deref(),
                config.peertube_uuid.as_deref(),
                top_url.as_str(),
            )?
            .to_owned();
        let top = fetch_text(&fetcher, top_url.as_str()).await?;
        let (media_url, key, media_text) = if is_master_playlist(&top) {
            let streams: Vec<_> = master_playlist_streams(&top)
                .into_iter()
                .filter(|s| s.stream_type == StreamType::Main)
                .collect();
            let bitrate = |s: &crate::stream::PlaylistStream| {
                s.props.bitrate.filter(|b| b.is_finite()).unwrap_or(0.0)
            };
            let chosen = match config.variant {
                VariantChoice::Index(i) => streams.get(i),
                VariantChoice::Lowest => streams
                    .iter()
                    .min_by(|a, b| bitrate(a).total_cmp(&bitrate(b))),
                VariantChoice::Highest => streams
                    .iter()
                    .max_by(|a, b| bitrate(a).total_cmp(&bitrate(b))),
            }
            .ok_or_else(|| ViewerError::NoVariant(config.playlist_url.clone()))?;
            let url = top_url
                .join(&chosen.uri)
                .map_err(|_| ViewerError::BadUrl(chosen.uri.clone()))?;
            let text = fetch_text(&fetcher, url.as_str()).await?;
            (url, chosen.key(), text)
        } else {
            // hls.js makes a media playlist loaded directly one level of bitrate 0, so
            // p2p-media-loader hashes the bitrate alone.
            let props = ShortIdProps {
                bitrate: Some(0.0),
                ..ShortIdProps::default()
            };
            let key = StreamKey {
                stream_type: StreamType::Main,
                short_id: generate_stream_short_id(&props),
                index: 0,
                resolution: None,
            };
            (top_url.clone(), key, top)
        };
        let mut playlist =
            parse_media_playlist(&media_text).map_err(|source| ViewerError::Playlist {
                url: media_url.to_string(),
                source,
            })?;
        relative_paths(&mut playlist, &media_url)?;
        let identity = config.id_scheme.identity(&swarm, key);
        let peer_id = config.peer_id.unwrap_or_else(|| {
            let id =
                generate_peer_id_with_prefix(&config.id_scheme.peer_id_prefix(), &mut rand::rng());
            let mut out = [0u8; 20];
            let n = id.len().min(20);
            out[..n].copy_from_slice(&id.as_bytes()[..n]);
            out
        });
        let mut bases = vec![directory_of(&media_url).to_string()];
        bases.extend(config.mirrors.iter().cloned());
        let mut engine = EngineConfig::new(peer_id, identity.info_hash, playlist.live, bases);
        engine.consume_only = config.consume_only;
        engine.require_manifest = config.require_manifest;
        engine.max_peers = config.max_peers;
        engine.scheduler = config.scheduler.clone();
        engine.seed = rand::random();
        let driver = PeerDriver::spawn(engine, config.driver.clone())?;
        driver.set_playlist(playlist.segment_infos())?;
        let mut viewer = Self {
            manifest_url: None,
            config,
            fetcher,
            driver,
            identity,
            media_url,
            playlist,
            peers_max: 0,
            inits: Vec::new(),
        };
        viewer.fetch_init_sections().await?;
        viewer.load_manifest().await;
        Ok(viewer)
    }

    /// Fetches over HTTP each `#EXT-X-MAP` section of the playlist not fetched yet.
    async fn fetch_init_sections(&mut self) -> Result<(), ViewerError> {
        for init in &self.playlist.init_sections {
            if self.inits.iter().any(|(i, _)| i == init) {
                continue;
            }
            let request = FetchRequest {
                path: init.uri.clone(),
                byte_range: init.byte_range.clone(),
                resume_from: 0,
            };
            let data =
                self.fetcher
                    .fetch_bytes(request)
                    .await
                    .map_err(|source| ViewerError::Fetch {
                        url: init.uri.clone(),
                        source,
                    })?;
            tracing::debug!(uri = %init.uri, bytes = data.len(), "initialization section");
            self.inits.push((init.clone(), data));
        }
        Ok(())
    }

    /// The `#EXT-X-MAP` initialization section in force for segment `id` (fetched over HTTP
    /// when the playlist was loaded), if the stream has one.
    pub fn init_section(&self, id: SegmentId) -> Option<&Bytes> {
        let seg = self.playlist.segment(id)?;
        let init = self.playlist.init_sections.get(seg.init?)?;
        self.inits.iter().find(|(i, _)| i == init).map(|(_, b)| b)
    }

    /// Loads the integrity manifest if there is one; remembers where, for live reloads.
    async fn load_manifest(&mut self) {
        let url = match (&self.config.manifest_url, &self.manifest_url) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => match directory_of(&self.media_url).join("segments-sha256.json") {
                Ok(u) => u.to_string(),
                Err(_) => return,
            },
        };
        let fetched = self.fetcher.fetch_bytes(FetchRequest::new(&url)).await;
        match fetched.map(|b| SegmentManifest::from_json(&b)) {
            Ok(Ok(m)) => {
                self.manifest_url = Some(url);
                let _ = self.driver.set_manifest(m);
            }
            Ok(Err(e)) => tracing::warn!(%url, error = %e, "integrity manifest refused"),
            Err(e) => tracing::debug!(%url, error = %e, "no integrity manifest"),
        }
    }

    /// The swarm identity (stream swarm id, info hash).
    pub fn identity(&self) -> &StreamIdentity {
        &self.identity
    }

    /// The media playlist as last loaded (segment URIs relative to its directory).
    pub fn playlist(&self) -> &MediaPlaylist {
        &self.playlist
    }

    /// The media playlist URL.
    pub fn media_url(&self) -> &str {
        self.media_url.as_str()
    }

    /// Driver statistics.
    pub async fn stats(&self) -> Result<DriverStats, ViewerError> {
        Ok(self.driver.stats().await?)
    }

    /// Reloads a live playlist (keeping its timeline) and hands it to the engine; `true` if it
    /// changed. VOD playlists are not reloaded.
    pub async fn refresh(&mut self) -> Result<bool, ViewerError> {
        if !self.playlist.live {
            return Ok(false);
        }
        let text = fetch_text(&self.fetcher, self.media_url.as_str()).await?;
        self.apply_refresh(&text).await
    }

    async fn apply_refresh(&mut self, text: &str) -> Result<bool, ViewerError> {
        let mut next = parse_media_playlist(text).map_err(|source| ViewerError::Playlist {
            url: self.media_url.to_string(),
            source,
        })?;
        relative_paths(&mut next, &self.media_url)?;
        next.align_to(&self.playlist);
        if next == self.playlist {
            return Ok(false);
        }
        self.playlist = next;
        self.driver.set_playlist(self.playlist.segment_infos())?;
        if let Err(e) = self.fetch_init_sections().await {
            tracing::warn!(error = %e, "initialization section not fetched; retried on reload");
        }
        if self.manifest_url.is_some() {
            self.load_manifest().await;
        }
        Ok(true)
    }

    /// One segment's bytes, wanted within `deadline` (the engine plans for it: peers if they can
    /// deliver in time, else HTTP). Errors if it fails or misses the deadline by more than 30 s.
    /// Not meant to be mixed with a running [`Viewer::play`].
    pub async fn segment(
        &mut self,
        id: SegmentId,
        deadline: Duration,
    ) -> Result<Bytes, ViewerError> {
        if let Some(s) = self.playlist.segment(id) {
            // Tell the engine when the segment is due: the playhead `deadline` before it.
            let pos = s.start - deadline.as_secs_f64();
            self.driver.set_playback(pos)?;
        }
        self.driver.want_segment(id)?;
        let limit = tokio::time::Instant::now() + deadline + Duration::from_secs(30);
        loop {
            let ev = tokio::time::timeout_at(limit, self.driver.next_event())
                .await
                .map_err(|_| ViewerError::Deadline(id))?
                .ok_or(ViewerError::Driver(DriverError::Ended))?;
            match ev {
                DriverEvent::SegmentReady { segment, data, .. } if segment == id => {
                    return Ok(data)
                }
                DriverEvent::SegmentFailed { segment, reason } if segment == id => {
                    return Err(ViewerError::SegmentFailed { segment, reason })
                }
                _ => {}
            }
        }
    }

    /// Plays in real time for `duration` (or, for VOD, until the end if `None`), calling
    /// `progress` every [`PlaySettings::progress_interval`]. See the module documentation.
    pub async fn play(
        &mut self,
        duration: Option<Duration>,
        mut progress: impl FnMut(&PlayProgress),
    ) -> Result<PlayReport, ViewerError> {
        let ps = self.config.play.clone();
        let t0 = Instant::now();
        let end_at = duration.map(|d| t0 + d);
        let mut player = HeadlessPlayer::new(
            ps.player.clone(),
            &self.playlist.segment_infos(),
            self.playlist.live,
            self.playlist.target_duration,
            t0,
        );
        let mut tick = tokio::time::interval(ps.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_playback_update: Option<Instant> = None;
        let mut last_progress = t0;
        let reload_every = crate::time::secs(self.playlist.target_duration).max(ps.min_reload);
        let mut next_reload = t0 + reload_every;
        let mut reload: Option<JoinHandle<Result<String, ViewerError>>> = None;
        let mut last_stats = self.driver.stats().await?;
        loop {
            tokio::select! {
                ev = self.driver.next_event() => {
                    let Some(ev) = ev else { return Err(DriverError::Ended.into()) };
                    match ev {
                        DriverEvent::SegmentReady { segment, source, .. } => {
                            let ahead = self
                                .playlist
                                .segment(segment)
                                .map(|s| s.start - player.position());
                            tracing::debug!(
                                segment,
                                ?source,
                                ahead_s = ?ahead,
                                position = player.position(),
                                "segment ready"
                            );
                            player.segment_loaded(segment)
                        }
                        DriverEvent::SegmentFailed { segment, reason } => {
                            tracing::debug!(segment, %reason, "segment failed");
                            player.segment_failed(segment, Instant::now());
                        }
                        _ => {}
                    }
                }
                res = async {
                    match reload.as_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                } => {
                    reload = None;
                    match res {
                        Ok(Ok(text)) => match self.apply_refresh(&text).await {
                            Ok(changed) => {
                                if changed {
                                    tracing::debug!(
                                        newest = ?self.playlist.segments.last().map(|s| s.id),
                                        edge = self.playlist.end(),
                                        position = player.position(),
                                        "live playlist changed"
                                    );
                                }
                                player.set_playlist(&self.playlist.segment_infos())
                            }
                            Err(e) => tracing::warn!(error = %e, "live playlist refused"),
                        },
                        Ok(Err(e)) => tracing::warn!(error = %e, "live playlist reload failed"),
                        Err(e) => tracing::warn!(error = %e, "live playlist reload task"),
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    player.advance(now);
                    // The playhead first: without one the engine takes every request as due now
                    // (and the first requests would all go to HTTP).
                    if last_playback_update.is_none_or(|t| now - t >= ps.playback_update) {
                        last_playback_update = Some(now);
                        self.driver.set_playback(player.position())?;
                    }
                    for id in player.requests(now) {
                        self.driver.want_segment(id)?;
                    }
                    if self.playlist.live && reload.is_none() && now >= next_reload {
                        next_reload = now + reload_every;
                        let fetcher = self.fetcher.clone();
                        let url = self.media_url.to_string();
                        reload = Some(tokio::spawn(async move { fetch_text(&fetcher, &url).await }));
                    }
                    if now - last_progress >= ps.progress_interval {
                        last_progress = now;
                        last_stats = self.driver.stats().await?;
                        self.peers_max = self.peers_max.max(last_stats.peers_max);
                        progress(&PlayProgress {
                            elapsed_s: (now - t0).as_secs_f64(),
                            position_s: player.position(),
                            buffer_s: player.buffer_ahead(),
                            playing: player.state() == PlayState::Playing,
                            http_bytes: last_stats.engine.http_bytes,
                            p2p_bytes: last_stats.engine.p2p_bytes,
                            uploaded_bytes: last_stats.engine.uploaded_bytes,
                            peers: last_stats.peers_connected,
                            stall_count: player.stats().stall_count,
                        });
                    }
                    let finished = player.at_end();
                    if finished || end_at.is_some_and(|e| now >= e) {
                        break;
                    }
                }
            }
        }
        if let Some(h) = reload {
            h.abort();
        }
        let now = Instant::now();
        player.close(now);
        let played = player.stats();
        let stats = self.driver.stats().await.unwrap_or(last_stats);
        let e = &stats.engine;
        let total = e.http_bytes + e.p2p_bytes;
        let bases = 1 + self.config.mirrors.len();
        Ok(PlayReport {
            http_bytes: e.http_bytes,
            p2p_bytes: e.p2p_bytes,
            p2p_share: if total == 0 {
                0.0
            } else {
                e.p2p_bytes as f64 / total as f64
            },
            uploaded_bytes: e.uploaded_bytes,
            http_bytes_by_base: (0..bases)
                .map(|i| e.http_bytes_by_base.get(&i).copied().unwrap_or(0))
                .collect(),
            stall_count: played.stall_count,
            stall_seconds: played.stall_seconds,
            startup_s: played.startup.map(|d| d.as_secs_f64()),
            peers_max: self.peers_max.max(stats.peers_max),
            played_s: played.played_seconds,
            segments: played.segments_loaded,
            live_latency_s: (played.live_latency_samples > 0)
                .then(|| played.live_latency_sum / played.live_latency_samples as f64),
            live_latency_max_s: (played.live_latency_samples > 0)
                .then_some(played.live_latency_max),
            live_skips: played.live_skips,
            live: self.playlist.live,
            info_hash: self.identity.info_hash_str().to_owned(),
            media_playlist: self.media_url.to_string(),
            wall_s: (now - t0).as_secs_f64(),
            hash_mismatches: e.hash_mismatches,
            peers_banned: e.peers_banned,
            init_bytes: self.inits.iter().map(|(_, b)| b.len() as u64).sum(),
        })
    }

    /// Leaves the swarm and stops the driver.
    pub async fn close(self) {
        self.driver.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_are_made_relative_to_the_playlist_directory() {
        let url = Url::parse("http://h:1/v/low/index.m3u8?token=1").unwrap();
        assert_eq!(directory_of(&url).as_str(), "http://h:1/v/low/");
        let mut p = parse_media_playlist(
            "#EXTM3U\n#EXTINF:2,\na.ts\n#EXTINF:2,\nhttp://h:1/v/low/sub/b.ts?x=1\n",
        )
        .unwrap();
        relative_paths(&mut p, &url).unwrap();
        assert_eq!(p.segments[0].uri, "a.ts");
        assert_eq!(p.segments[1].uri, "sub/b.ts?x=1");
        let mut p = parse_media_playlist("#EXTM3U\n#EXTINF:2,\n../other/a.ts\n").unwrap();
        assert!(matches!(
            relative_paths(&mut p, &url),
            Err(ViewerError::SegmentOutsideBase(_))
        ));
        // Byte ranges stay; the init section's URI becomes absolute.
        let mut p = parse_media_playlist(
            "#EXTM3U\n#EXT-X-MAP:URI=\"v.mp4\",BYTERANGE=\"10@0\"\n\
#EXTINF:2,\n#EXT-X-BYTERANGE:90@10\nv.mp4\n",
        )
        .unwrap();
        relative_paths(&mut p, &url).unwrap();
        assert_eq!(p.segments[0].uri, "v.mp4");
        assert_eq!(p.segments[0].byte_range, Some(10..100));
        assert_eq!(p.init_sections[0].uri, "http://h:1/v/low/v.mp4");
        assert_eq!(p.init_sections[0].byte_range, Some(0..10));
    }
}
