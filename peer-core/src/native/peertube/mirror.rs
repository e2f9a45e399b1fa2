//! The remote stream mirror: a PeerTube video's HLS files copied into a cache directory, every
//! segment verified against `segments-sha256.json` before it is written.
//!
//! [`RemoteMirror::sync`] fetches the master playlist, each variant's media playlist and the
//! manifest, then every segment the playlists list that the cache does not hold yet: for
//! PeerTube's fragmented MP4 (one file per resolution, `#EXT-X-BYTERANGE`) each byte range with a
//! `Range` request, and the `#EXT-X-MAP` initialization section's range; for `.ts` segments
//! (live) the whole file. Each request goes to the origin (the master playlist's directory) first,
//! then to the mirrors (`redundancies[].baseUrl`, the same file names): a base that fails (error
//! status, connection, timeout, short body) is skipped for the rest of the sync and counted as a
//! failover; bytes that do not match the manifest are never written, counted as a mismatch, and
//! fetched from the next base. Initialization sections are not listed in PeerTube's manifests;
//! they are written unverified (counted) — they are never shared with peers, only needed to make
//! the file whole.
//!
//! The cache directory gets the origin's file names and the playlists' exact text, so that the
//! directory [`crate::native::seeder::Seeder`] finds the same master playlist, variants, byte
//! ranges and segment ids as players derive from the origin. Files are written atomically (a
//! temporary name, then a rename), segments before the manifest, the manifest before the
//! playlists, so a scanner never sees a playlist listing bytes that are not there.
//!
//! VOD: one `sync` fetches everything; a video larger than [`MirrorSettings::max_cache_bytes`] is
//! refused before any segment is fetched ([`MirrorError::TooLarge`]). Already cached files whose
//! ranges verify are not fetched again. Live: call `sync` periodically (every target duration);
//! each call refreshes playlists and manifest, fetches new segments, deletes segments that left
//! every playlist, and notes the end of the live (`#EXT-X-ENDLIST` in every variant, or
//! [`RemoteMirror::mark_ended`] when the API says `LIVE_ENDED`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use reqwest::Url;

use super::client::{PeerTubeClient, PeerTubeError, ResolvedVideo};
use crate::hls::{is_master_playlist, parse_media_playlist, HlsError};
use crate::integrity::{file_name_of, ByteRange, IntegrityError, SegmentManifest, Verification};

/// Limits of a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSettings {
    /// Most bytes the cache directory may hold (segments, playlists and manifest). Default 4 GiB.
    pub max_cache_bytes: u64,
    /// Largest playlist read, bytes. Default 2 MiB.
    pub max_playlist_bytes: u64,
    /// Largest `segments-sha256.json` read, bytes. Default 16 MiB.
    pub max_manifest_bytes: u64,
    /// Largest segment (or initialization section) read, bytes. Default 64 MiB.
    pub max_segment_bytes: u64,
    /// Most variant playlists followed. Default 32.
    pub max_variants: usize,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        Self {
            max_cache_bytes: 4 * 1024 * 1024 * 1024,
            max_playlist_bytes: 2 * 1024 * 1024,
            max_manifest_bytes: 16 * 1024 * 1024,
            max_segment_bytes: 64 * 1024 * 1024,
            max_variants: 32,
        }
    }
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A base URL that is not one.
    #[error("bad URL {0:?}")]
    BadUrl(String),
    /// A playlist URI this mirror cannot map into the cache directory.
    #[error("playlist URI {0:?} is not a file of the video's directory")]
    BadUri(String),
    /// The video has no `segmentsSha256Url`: nothing to verify segments against.
    #[error("the video has no segments-sha256.json; segswarm only seeds verified segments")]
    NoManifest,
    /// A fetch failed on every base.
    #[error("{what}: every base failed: {last}")]
    Unavailable {
        /// The file (and range).
        what: String,
        /// What each base did, `; `-separated.
        last: String,
    },
    /// A playlist that does not parse.
    #[error("{file}: {error}")]
    Playlist {
        /// The file.
        file: String,
        /// Why.
        error: HlsError,
    },
    /// A playlist that is not UTF-8 text.
    #[error("{0}: not UTF-8 text")]
    NotText(String),
    /// A manifest that does not parse.
    #[error("segments-sha256.json: {0}")]
    Manifest(#[from] IntegrityError),
    /// A segment the manifest does not list.
    #[error("{0}: not listed in segments-sha256.json")]
    Unlisted(String),
    /// The byte ranges of a single-file variant leave a hole.
    #[error("{file}: bytes {at}.. are listed by no segment")]
    Gap {
        /// The file.
        file: String,
        /// The first missing byte.
        at: u64,
    },
    /// More than [`MirrorSettings::max_cache_bytes`].
    #[error(
        "the video needs {needed} bytes, more than the cache budget of {budget} bytes \
         (raise --cache-bytes)"
    )]
    TooLarge {
        /// Bytes needed.
        needed: u64,
        /// The budget.
        budget: u64,
    },
    /// More variants than [`MirrorSettings::max_variants`].
    #[error("the master playlist lists {0} variants, more than allowed")]
    TooManyVariants(usize),
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Counters of one base URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseStats {
    /// The base (a directory URL).
    pub url: String,
    /// Body bytes received from it.
    pub bytes: u64,
    /// Requests answered with usable bytes.
    pub ok: u64,
    /// Requests that failed (the base was then skipped for the sync).
    pub failures: u64,
    /// Segments whose bytes did not match the manifest.
    pub mismatches: u64,
}

/// Counters of a mirror, over its lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Per base, origin first.
    pub bases: Vec<BaseStats>,
    /// Segments that did not match the manifest (never written).
    pub mismatches: u64,
    /// Times a fetch moved to another base after a failure or a mismatch.
    pub failovers: u64,
    /// Segments verified and written (or found verified in the cache).
    pub segments_verified: u64,
    /// Initialization sections written unverified (PeerTube's manifests do not list them).
    pub init_sections_unverified: u64,
    /// Segments deleted after leaving the live window.
    pub segments_evicted: u64,
    /// Bytes written into the cache directory.
    pub bytes_written: u64,
}

/// What one [`RemoteMirror::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Segments fetched and written by this sync.
    pub new_segments: u64,
    /// Bytes held in the cache directory after it.
    pub cached_bytes: u64,
    /// The stream ended (VOD, or a live that ended).
    pub ended: bool,
}

/// One piece to fetch: a byte range of a file, or a whole file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Piece {
    /// `(start, end)`, end exclusive.
    range: Option<(u64, u64)>,
    init: bool,
}

/// A PeerTube video's HLS files mirrored into a directory. See the module documentation.
#[derive(Debug)]
pub struct RemoteMirror {
    client: PeerTubeClient,
    settings: MirrorSettings,
    dir: PathBuf,
    /// Origin directory first, then mirrors; each ends with `/`.
    bases: Vec<Url>,
    /// Skipped for the current sync.
    dead: Vec<bool>,
    master_file: String,
    /// The manifest's URL when it is outside the origin directory.
    manifest_url: Option<Url>,
    /// The manifest's path relative to the bases (when under the origin directory).
    manifest_file: Option<String>,
    announced_bytes: u64,
    /// Whole files held (live segments), with their sizes.
    held: BTreeMap<String, u64>,
    /// Single-file (byte range) files completed, with their sizes.
    complete: BTreeMap<String, u64>,
    /// Playlists and manifest written, with their sizes.
    meta: BTreeMap<String, u64>,
    ended: bool,
    stats: MirrorStats,
}

fn dir_url(url: &str) -> Result<Url, MirrorError> {
    let mut u = Url::parse(url).map_err(|_| MirrorError::BadUrl(url.to_owned()))?;
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// A relative path of safe components (`[A-Za-z0-9._-]`, no `.`/`..`, no empty part).
pub(crate) fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        })
}

impl RemoteMirror {
    /// A mirror of `video` into `dir` (created if missing).
    pub fn new(
        client: PeerTubeClient,
        video: &ResolvedVideo,
        dir: impl Into<PathBuf>,
        settings: MirrorSettings,
    ) -> Result<Self, MirrorError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| MirrorError::Io {
            path: dir.clone(),
            source,
        })?;
        // The origin base is the master playlist's directory.
        let origin = dir_url(&video.master_url)?
            .join("..")
            .map_err(|_| MirrorError::BadUrl(video.master_url.clone()))?;
        let master_file = file_name_of(&video.master_url).to_owned();
        if !safe_relative(&master_file) {
            return Err(MirrorError::BadUri(video.master_url.clone()));
        }
        let mut bases = vec![origin.clone()];
        for m in &video.mirrors {
            match dir_url(m) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => bases.push(u),
                _ => tracing::warn!(mirror = %m, "ignoring a mirror base URL that is not http(s)"),
            }
        }
        let (manifest_url, manifest_file) = match &video.segments_sha256_url {
            None => (None, None),
            Some(s) => {
                let u = Url::parse(s).map_err(|_| MirrorError::BadUrl(s.clone()))?;
                match u.as_str().strip_prefix(origin.as_str()) {
                    Some(rel) if safe_relative(file_name_of(rel)) && !rel.contains('/') => {
                        (None, Some(file_name_of(rel).to_owned()))
                    }
                    _ => (Some(u), None),
                }
            }
        };
        let stats = MirrorStats {
            bases: bases
                .iter()
                .map(|b| BaseStats {
                    url: b.to_string(),
                    ..BaseStats::default()
                })
                .collect(),
            ..MirrorStats::default()
        };
        Ok(Self {
            client,
            settings,
            dir,
            dead: vec![false; bases.len()],
            bases,
            master_file,
            manifest_url,
            manifest_file,
            announced_bytes: video.details.hls_bytes(),
            held: BTreeMap::new(),
            complete: BTreeMap::new(),
            meta: BTreeMap::new(),
            ended: false,
            stats,
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The master playlist's path in the cache directory (what the Seeder is given).
    pub fn master_playlist_path(&self) -> PathBuf {
        self.dir.join(&self.master_file)
    }

    /// The counters.
    pub fn stats(&self) -> &MirrorStats {
        &self.stats
    }

    /// The stream ended (VOD after a sync, or a live that ended).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Notes that the live ended (the API's state says `LIVE_ENDED`).
    pub fn mark_ended(&mut self) {
        self.ended = true;
    }

    /// Bytes held in the cache directory.
    pub fn cached_bytes(&self) -> u64 {
        self.held
            .values()
            .chain(self.complete.values())
            .chain(self.meta.values())
            .fold(0u64, |a, b| a.saturating_add(*b))
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MirrorError + '_ {
        move |source| MirrorError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Fetches `rel` (relative to the bases) or `absolute`, trying the bases in order; `check`
    /// accepts the bytes or names a mismatch (then the next base is tried).
    async fn fetch(
        &mut self,
        rel: Option<&str>,
        absolute: Option<&Url>,
        range: Option<Range<u64>>,
        limit: u64,
        check: &(dyn Fn(&[u8]) -> Verification + Sync),
    ) -> Result<bytes::Bytes, MirrorError> {
        let what = match (&range, rel, absolute) {
            (Some(r), Some(p), _) => format!("{p} bytes {}-{}", r.start, r.end.saturating_sub(1)),
            (None, Some(p), _) => p.to_owned(),
            (_, None, Some(u)) => u.to_string(),
            _ => String::from("?"),
        };
        let targets: Vec<(Option<usize>, Url)> = match (rel, absolute) {
            (Some(p), _) => self
                .bases
                .iter()
                .enumerate()
                .filter_map(|(i, b)| b.join(p).ok().map(|u| (Some(i), u)))
                .collect(),
            (None, Some(u)) => vec![(None, u.clone())],
            (None, None) => Vec::new(),
        };
        let mut reasons: Vec<String> = Vec::new();
        let mut tried = 0usize;
        for (base, url) in targets {
            if base.is_some_and(|b| self.dead[b]) {
                continue;
            }
            if tried > 0 {
                self.stats.failovers += 1;
            }
            tried += 1;
            match self
                .client
                .get_bounded(url.as_str(), range.clone(), limit)
                .await
            {
                Ok(f) => {
                    if let Some(b) = base {
                        self.stats.bases[b].bytes += f.wire_bytes;
                    }
                    match check(&f.bytes) {
                        Verification::Mismatch => {
                            self.stats.mismatches += 1;
                            if let Some(b) = base {
                                self.stats.bases[b].mismatches += 1;
                            }
                            reasons.push(format!("{url}: bytes do not match segments-sha256.json"));
                            tracing::warn!(%url, ?range, "segment does not match the manifest");
                        }
                        Verification::Unknown => return Err(MirrorError::Unlisted(what)),
                        Verification::Valid => {
                            if let Some(b) = base {
                                self.stats.bases[b].ok += 1;
                            }
                            return Ok(f.bytes);
                        }
                    }
                }
                Err(e @ PeerTubeError::TooLarge { .. }) => {
                    return Err(MirrorError::Unavailable {
                        what,
                        last: e.to_string(),
                    })
                }
                Err(e) => {
                    if let Some(b) = base {
                        self.stats.bases[b].failures += 1;
                        self.dead[b] = true;
                    }
                    tracing::warn!(%url, error = %e, "base failed; trying the next one");
                    reasons.push(e.to_string());
                }
            }
        }
        let last = if reasons.is_empty() {
            String::from("no base left to fetch from")
        } else {
            reasons.join("; ")
        };
        Err(MirrorError::Unavailable { what, last })
    }

    async fn fetch_text(&mut self, rel: &str) -> Result<String, MirrorError> {
        let limit = self.settings.max_playlist_bytes;
        let bytes = self
            .fetch(Some(rel), None, None, limit, &|_| Verification::Valid)
            .await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| MirrorError::NotText(rel.to_owned()))
    }

    /// Maps a URI of a playlist at `playlist_rel` to a path relative to the bases.
    fn relative_uri(&self, playlist_rel: &str, uri: &str) -> Result<String, MirrorError> {
        let bad = || MirrorError::BadUri(uri.chars().take(200).collect());
        let origin = &self.bases[0];
        let playlist_url = origin.join(playlist_rel).map_err(|_| bad())?;
        let mut u = playlist_url.join(uri).map_err(|_| bad())?;
        u.set_query(None);
        u.set_fragment(None);
        let rel = u.as_str().strip_prefix(origin.as_str()).ok_or_else(bad)?;
        if !safe_relative(rel) {
            return Err(bad());
        }
        Ok(rel.to_owned())
    }

    fn write_atomic(&mut self, rel: &str, data: &[u8]) -> Result<(), MirrorError> {
        let path = self.dir.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == data) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Self::io(parent))?;
        }
        let tmp = temp_path(&path);
        std::fs::write(&tmp, data).map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))?;
        self.stats.bytes_written += data.len() as u64;
        Ok(())
    }

    fn check_budget(&self, extra: u64) -> Result<(), MirrorError> {
        let needed = self.cached_bytes().saturating_add(extra);
        if needed > self.settings.max_cache_bytes {
            return Err(MirrorError::TooLarge {
                needed,
                budget: self.settings.max_cache_bytes,
            });
        }
        Ok(())
    }

    /// Fetches what is missing and refreshes playlists and manifest. See the module documentation.
    pub async fn sync(&mut self) -> Result<SyncReport, MirrorError> {
        self.dead.iter_mut().for_each(|d| *d = false);
        // A VOD the API already says is too large is refused before anything is fetched.
        if self.held.is_empty() && self.complete.is_empty() {
            self.check_budget(self.announced_bytes)?;
        }
        let master_file = self.master_file.clone();
        let master = self.fetch_text(&master_file).await?;
        let variant_uris = if is_master_playlist(&master) {
            master_uris(&master)
        } else {
            vec![master_file.clone()]
        };
        if variant_uris.len() > self.settings.max_variants {
            return Err(MirrorError::TooManyVariants(variant_uris.len()));
        }
        let mut variants: Vec<(String, String)> = Vec::new();
        for uri in &variant_uris {
            let rel = if is_master_playlist(&master) {
                self.relative_uri(&master_file, uri)?
            } else {
                uri.clone()
            };
            let text = if rel == master_file {
                master.clone()
            } else {
                self.fetch_text(&rel).await?
            };
            variants.push((rel, text));
        }
        let manifest_bytes = self.fetch_manifest().await?;
        let manifest = SegmentManifest::from_json(&manifest_bytes)?;

        // What the playlists list: per file, its pieces.
        let mut files: BTreeMap<String, BTreeSet<Piece>> = BTreeMap::new();
        let mut all_ended = true;
        for (rel, text) in &variants {
            let pl = parse_media_playlist(text).map_err(|error| MirrorError::Playlist {
                file: rel.clone(),
                error,
            })?;
            all_ended &= !pl.live;
            for init in &pl.init_sections {
                let file = self.relative_uri(rel, &init.uri)?;
                files.entry(file).or_default().insert(Piece {
                    range: init.byte_range.as_ref().map(|r| (r.start, r.end)),
                    init: true,
                });
            }
            for seg in &pl.segments {
                let file = self.relative_uri(rel, &seg.uri)?;
                files.entry(file).or_default().insert(Piece {
                    range: seg.byte_range.as_ref().map(|r| (r.start, r.end)),
                    init: false,
                });
            }
        }

        // Budget of the byte-range files not complete yet (their sizes are known now).
        let ranged_needed = files
            .iter()
            .filter(|(f, _)| !self.complete.contains_key(*f))
            .filter_map(|(_, pieces)| pieces.iter().filter_map(|p| p.range).map(|r| r.1).max())
            .fold(0u64, u64::saturating_add);
        self.check_budget(ranged_needed)?;

        let mut new_segments = 0u64;
        for (file, pieces) in &files {
            if pieces.iter().all(|p| p.range.is_some()) {
                new_segments += self.sync_ranged_file(file, pieces, &manifest).await?;
            } else if !self.held.contains_key(file) {
                // A whole-file initialization section (`#EXT-X-MAP:URI="init.mp4"`) is not in
                // the manifest: written unverified, as for byte ranges.
                let init = pieces.iter().all(|p| p.init);
                let limit = self.settings.max_segment_bytes;
                let name = file.clone();
                let m = &manifest;
                let check = |d: &[u8]| {
                    if init {
                        Verification::Valid
                    } else {
                        m.verify(&name, None, d)
                    }
                };
                let data = self.fetch(Some(file), None, None, limit, &check).await?;
                self.check_budget(data.len() as u64)?;
                self.write_atomic(file, &data)?;
                self.held.insert(file.clone(), data.len() as u64);
                if init {
                    self.stats.init_sections_unverified += 1;
                } else {
                    self.stats.segments_verified += 1;
                    new_segments += 1;
                }
            }
        }

        // Manifest, then variants, then the master: a reader never sees a playlist ahead of its
        // bytes.
        if let Some(name) = self.manifest_local_name() {
            self.write_atomic(&name, &manifest_bytes)?;
            self.meta.insert(name, manifest_bytes.len() as u64);
        }
        for (rel, text) in &variants {
            self.write_atomic(rel, text.as_bytes())?;
            self.meta.insert(rel.clone(), text.len() as u64);
        }
        self.write_atomic(&master_file, master.as_bytes())?;
        self.meta.insert(master_file.clone(), master.len() as u64);

        // Live: segments that left every playlist are deleted.
        let gone: Vec<String> = self
            .held
            .keys()
            .filter(|f| !files.contains_key(*f))
            .cloned()
            .collect();
        for f in gone {
            let path = self.dir.join(&f);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(MirrorError::Io { path, source: e });
                }
            }
            self.held.remove(&f);
            self.stats.segments_evicted += 1;
        }
        if all_ended {
            self.ended = true;
        }
        Ok(SyncReport {
            new_segments,
            cached_bytes: self.cached_bytes(),
            ended: self.ended,
        })
    }

    fn manifest_local_name(&self) -> Option<String> {
        match (&self.manifest_file, &self.manifest_url) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(u)) => {
                let n = file_name_of(u.as_str());
                safe_relative(n).then(|| n.to_owned())
            }
            (None, None) => None,
        }
    }

    async fn fetch_manifest(&mut self) -> Result<bytes::Bytes, MirrorError> {
        let limit = self.settings.max_manifest_bytes;
        let ok = |_: &[u8]| Verification::Valid;
        match (self.manifest_file.clone(), self.manifest_url.clone()) {
            (Some(f), _) => self.fetch(Some(&f), None, None, limit, &ok).await,
            (None, Some(u)) => self.fetch(None, Some(&u), None, limit, &ok).await,
            (None, None) => Err(MirrorError::NoManifest),
        }
    }

    /// A single file served by byte ranges (PeerTube's `*-fragmented.mp4`): completed in a
    /// temporary file, then renamed. Returns the segments fetched.
    async fn sync_ranged_file(
        &mut self,
        file: &str,
        pieces: &BTreeSet<Piece>,
        manifest: &SegmentManifest,
    ) -> Result<u64, MirrorError> {
        if self.complete.contains_key(file) {
            return Ok(0);
        }
        let mut ranges: Vec<(Range<u64>, bool)> = pieces
            .iter()
            .filter_map(|p| p.range.map(|(a, b)| (a..b, p.init)))
            .collect();
        ranges.sort_by_key(|(r, _)| r.start);
        // The pieces must tile the file from byte 0.
        let mut end = 0u64;
        for (r, _) in &ranges {
            if r.start > end {
                return Err(MirrorError::Gap {
                    file: file.to_owned(),
                    at: end,
                });
            }
            end = end.max(r.end);
        }
        let path = self.dir.join(file);
        let verify = |r: &Range<u64>, data: &[u8]| {
            ByteRange::from_offset_length(r.start, r.end - r.start)
                .map_or(Verification::Unknown, |br| {
                    manifest.verify(file, Some(br), data)
                })
        };
        // Already cached and verified (a restart)?
        if let Ok(existing) = std::fs::read(&path) {
            let good = existing.len() as u64 == end
                && ranges.iter().all(|(r, init)| {
                    *init
                        || verify(r, &existing[r.start as usize..r.end as usize])
                            == Verification::Valid
                });
            if good {
                self.stats.segments_verified += ranges.iter().filter(|(_, i)| !i).count() as u64;
                self.complete.insert(file.to_owned(), end);
                return Ok(0);
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Self::io(parent))?;
        }
        let tmp = temp_path(&path);
        let mut out = std::fs::File::create(&tmp).map_err(Self::io(&tmp))?;
        let result = self
            .fill_ranged(file, &ranges, &mut out, &tmp, &verify)
            .await;
        let fetched = match result {
            Ok(n) => n,
            Err(e) => {
                drop(out);
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        out.sync_all().map_err(Self::io(&tmp))?;
        drop(out);
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))?;
        self.complete.insert(file.to_owned(), end);
        Ok(fetched)
    }

    async fn fill_ranged(
        &mut self,
        file: &str,
        ranges: &[(Range<u64>, bool)],
        out: &mut std::fs::File,
        tmp: &Path,
        verify: &(dyn Fn(&Range<u64>, &[u8]) -> Verification + Sync),
    ) -> Result<u64, MirrorError> {
        let limit = self.settings.max_segment_bytes;
        let mut fetched = 0u64;
        for (r, init) in ranges {
            let data = if *init {
                let d = self
                    .fetch(Some(file), None, Some(r.clone()), limit, &|_| {
                        Verification::Valid
                    })
                    .await?;
                self.stats.init_sections_unverified += 1;
                d
            } else {
                let d = self
                    .fetch(Some(file), None, Some(r.clone()), limit, &|d| verify(r, d))
                    .await?;
                self.stats.segments_verified += 1;
                fetched += 1;
                d
            };
            out.seek(SeekFrom::Start(r.start)).map_err(Self::io(tmp))?;
            out.write_all(&data).map_err(Self::io(tmp))?;
            self.stats.bytes_written += data.len() as u64;
        }
        Ok(fetched)
    }
}

/// `<name>.segswarm-part` next to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".segswarm-part");
    path.with_file_name(name)
}

/// The URIs of a master playlist: every variant (`#EXT-X-STREAM-INF` then its URI line) and every
/// rendition with a `URI="..."` (`#EXT-X-MEDIA`), in order, without duplicates.
pub fn master_uris(master: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending = false;
    for line in master.lines().map(str::trim) {
        if line.starts_with("#EXT-X-STREAM-INF") {
            pending = true;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MEDIA:") {
            if let Some(i) = attrs.find("URI=\"") {
                let rest = &attrs[i + 5..];
                if let Some(j) = rest.find('"') {
                    out.push(rest[..j].to_owned());
                }
            }
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else if pending {
            out.push(line.to_owned());
            pending = false;
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|u| seen.insert(u.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_uris_lists_variants_and_renditions() {
        let m = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"a-0.m3u8\"\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=320x240\nv-240.m3u8\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=2\nv-480.m3u8?x=1\n#EXT-X-STREAM-INF:BANDWIDTH=3\nv-240.m3u8\n";
        assert_eq!(
            master_uris(m),
            vec!["a-0.m3u8", "v-240.m3u8", "v-480.m3u8?x=1"]
        );
    }

    #[test]
    fn safe_relative_paths_only() {
        assert!(safe_relative("abc-240-fragmented.mp4"));
        assert!(safe_relative("sub/seg_1.ts"));
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a b", "a%2F..", "x?y"] {
            assert!(!safe_relative(bad), "{bad:?}");
        }
    }
}
