//! One video fetched into the cache: resolved through its origin's API, its bytes reserved in
//! the [`Cache`] (the API's file sizes plus [`FetchSettings::metadata_allowance_bytes`] for
//! playlists and manifest), copied with [`RemoteMirror`] (every segment verified against
//! `segments-sha256.json`) into a staging directory whose size the reservation bounds, then each
//! file moved into place ([`Cache::adopt`], a rename) and recorded in the [`State`]. On any
//! failure the staging directory and whatever was moved are deleted: a video is recorded whole
//! or not at all.

use std::path::{Path, PathBuf};

use super::cache::{Cache, CacheError};
use super::state::{FileRecord, State, StateError};
use super::strategy::Entry;
use crate::id_scheme::IdScheme;
use crate::native::peertube::{
    MirrorError, MirrorSettings, PeerTubeClient, PeerTubeError, RemoteMirror, ResolvedVideo,
};

/// Name of the staging directory under the cache root (never served: the HTTP server serves
/// recorded files only, and [`Cache::open`] deletes what is left of it as strays).
pub const STAGING_DIR: &str = ".fetching";

/// Limits of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// Bytes reserved on top of the API's file sizes for the playlists and
    /// `segments-sha256.json`. Default 4 MiB.
    pub metadata_allowance_bytes: u64,
    /// Limits of each file read (playlists, manifest, segments, variants); its
    /// `max_cache_bytes` is replaced by the reservation. Defaults of [`MirrorSettings`].
    pub files: MirrorSettings,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            metadata_allowance_bytes: 4 * 1024 * 1024,
            files: MirrorSettings::default(),
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The API call failed or its answer did not parse.
    #[error("{origin}: {source}")]
    Api {
        /// The origin.
        origin: String,
        /// The error.
        source: PeerTubeError,
    },
    /// The API gave another video than asked.
    #[error("{origin}: asked for video {asked}, the API answered {got:?}")]
    WrongVideo {
        /// The origin.
        origin: String,
        /// The uuid asked.
        asked: String,
        /// The uuid answered.
        got: String,
    },
    /// Copying the files failed (origin down, mismatching bytes, too large, ...).
    #[error("{origin}: video {uuid}: {source}")]
    Copy {
        /// The origin.
        origin: String,
        /// The video.
        uuid: String,
        /// The error.
        source: MirrorError,
    },
    /// No room in the cache, or a file could not be placed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The database refused a write.
    #[error(transparent)]
    State(#[from] StateError),
    /// A staging directory problem.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the origin (or the way to it) failed, rather than this mirror: worth a retry
    /// after a backoff.
    pub fn is_origin_failure(&self) -> bool {
        matches!(
            self,
            FetchError::Api { .. }
                | FetchError::Copy {
                    source: MirrorError::Unavailable { .. },
                    ..
                }
        )
    }
}

/// What a fetch stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The video as the API described it (what seeding it needs).
    pub video: ResolvedVideo,
    /// Bytes stored: the video files, playlists and manifest (the entry's `bytes` stay the API's
    /// file sizes, what the strategies count, as PeerTube's redundancy sizes do).
    pub stored_bytes: u64,
    /// Its files, as recorded.
    pub files: Vec<FileRecord>,
}

/// Fetches `entry` (a video of the PeerTube instance `instance`, already recorded in `state`)
/// into `cache` and records its files. See the module documentation.
pub async fn fetch_entry(
    client: &PeerTubeClient,
    cache: &Cache,
    state: &mut State,
    entry: &Entry,
    instance: &str,
    settings: &FetchSettings,
) -> Result<Fetched, FetchError> {
    let origin = entry.origin.clone();
    let video = resolve_entry(client, entry, instance).await?;
    let mut reservation = cache.reserve(
        video
            .details
            .hls_bytes()
            .saturating_add(settings.metadata_allowance_bytes),
    )?;
    let staging = cache.root().join(STAGING_DIR).join(&entry.uuid);
    remove_dir(&staging)?;
    let result = async {
        let mut files = settings.files.clone();
        files.max_cache_bytes = reservation.left();
        let copy = |source| FetchError::Copy {
            origin: origin.clone(),
            uuid: entry.uuid.clone(),
            source,
        };
        let mut remote =
            RemoteMirror::new(client.clone(), &video, &staging, files).map_err(copy)?;
        remote.sync().await.map_err(copy)?;
        let mut records = Vec::new();
        for rel in staged_files(&staging)? {
            let from = staging.join(&rel);
            records.push(cache.adopt(&mut reservation, &entry.uuid, &rel, &from)?);
        }
        for f in &records {
            state.put_file(&entry.uuid, f)?;
        }
        Ok(Fetched {
            video: video.clone(),
            stored_bytes: records.iter().fold(0u64, |a, f| a.saturating_add(f.size)),
            files: records,
        })
    }
    .await;
    let _ = remove_dir(&staging);
    if result.is_err() {
        let _ = cache.remove_video(&entry.uuid);
        let _ = clear_files(state, &entry.uuid);
    }
    result
}

/// Resolves `entry` (a video of the PeerTube instance `instance`) through the API: what
/// fetching and seeding it need.
pub async fn resolve_entry(
    client: &PeerTubeClient,
    entry: &Entry,
    instance: &str,
) -> Result<ResolvedVideo, FetchError> {
    let watch_url = format!(
        "{}/videos/watch/{}",
        instance.trim_end_matches('/'),
        entry.uuid
    );
    // The copy does not depend on the id scheme, and an instance version this code does not
    // know must not stop it: the scheme is decided when seeding ([`super::swarms`]).
    let video = client
        .resolve(&watch_url, Some(IdScheme::default()))
        .await
        .map_err(|source| FetchError::Api {
            origin: entry.origin.clone(),
            source,
        })?;
    if video.details.uuid != entry.uuid {
        return Err(FetchError::WrongVideo {
            origin: entry.origin.clone(),
            asked: entry.uuid.clone(),
            got: video.details.uuid.chars().take(80).collect(),
        });
    }
    Ok(video)
}

/// Drops every file record of `uuid` (the entry stays, to be fetched again).
pub fn clear_files(state: &mut State, uuid: &str) -> Result<(), StateError> {
    let paths: Vec<String> = state
        .files()?
        .into_iter()
        .filter(|(u, _)| u == uuid)
        .map(|(_, f)| f.path)
        .collect();
    for p in paths {
        state.remove_file(uuid, &p)?;
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<(), FetchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FetchError::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// The finished files under `dir` (temporary `*.segswarm-part` files skipped), as
/// `/`-separated relative paths.
fn staged_files(dir: &Path) -> Result<Vec<String>, FetchError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let items = std::fs::read_dir(&d).map_err(|source| FetchError::Io {
            path: d.clone(),
            source,
        })?;
        for item in items.flatten() {
            let path = item.path();
            let Ok(kind) = item.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .ok()
                    .and_then(|p| p.to_str())
                    .map(|s| s.replace(std::path::MAIN_SEPARATOR, "/"));
                if let Some(rel) = rel.filter(|r| !r.ends_with(".segswarm-part")) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
