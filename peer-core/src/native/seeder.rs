//! The seeder: serves an HLS directory to the swarms of its streams, as a peer holding every segment.
//!
//! A video server (an origin, a mirror, a home server) runs a [`Seeder`] on the directory its
//! packager writes: VOD, or live with ffmpeg adding segments to a sliding playlist. The seeder
//!
//! - finds the playlist players load (a multivariant playlist, or a single media playlist) and joins
//!   one swarm per stream (each variant, each audio rendition with a URI), with the swarm ids and
//!   info hashes of [`SeederConfig::id_scheme`] (default p2p-media-loader 2.3's) derived from the
//!   public playlist URL ([`SeederConfig::public_url`]), from an explicit
//!   [`SeederConfig::swarm_id`], or for the `peertube` scheme from
//!   [`SeederConfig::peertube_uuid`] and each variant's resolution;
//! - rescans the directory every [`SeederConfig::rescan_interval`]: new segments are checked, hashed
//!   and handed to that stream's engine ([`Input::AddSegment`]), the playlist window is followed
//!   ([`Input::Playlist`]);
//! - writes `segments-sha256.json` (PeerTube's format, [`SegmentManifest`]) next to the segments, so
//!   players that verify can, and rewrites it as a live window slides;
//! - refuses what it cannot vouch for: a playlist that does not parse is reported and the previous
//!   good one kept; a listed segment that is missing, outside the directory, larger than
//!   [`ScanSettings::max_segment_bytes`], or looks half-written (an MPEG-TS file that is not whole
//!   188-byte packets each starting with the sync byte; an fMP4 file whose boxes do not add up to
//!   its size; any other file modified less than [`ScanSettings::settle_time`] ago) is reported and
//!   skipped: never announced, never served, not in the manifest. Each problem is logged once
//!   (`tracing` warn) and listed in [`SeederStats::problems`] while it lasts.
//!
//! Each stream's swarm is joined with [`SeederConfig::offers_per_announce`] WebRTC offers an
//! announce, which the tracker relays to as many viewers picked at random. To reach a larger
//! swarm the seeder re-announces with fresh offers every [`SeederConfig::fill_announce_interval`]
//! while it has room for more peers and its offers are taken, and falls back to the tracker's
//! interval once two rounds in a row find no taker; offers that are not answered are dropped
//! after [`SeederConfig::offer_timeout`], freeing their slots.
//!
//! The scan ([`Scanner`]) is separate from the network side, so it can be tested on a directory
//! alone. Each stream's engine runs on its own [`PeerDriver`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::watch;

use super::driver::{DriverHandle, DriverSettings, PeerDriver};
use crate::engine::{EngineConfig, Input, SegmentInfo};
use crate::hls::{is_master_playlist, parse_media_playlist};
use crate::id_scheme::{IdScheme, IdSchemeError, StreamKey};
use crate::integrity::{sha256, ByteRange, SegmentManifest, Sha256Digest};
use crate::stream::{
    generate_peer_id_with_prefix, generate_stream_short_id, master_playlist_streams, ShortIdProps,
    StreamIdentity, StreamType,
};
use crate::wire::SegmentId;

/// File name of the integrity manifest written next to the segments.
pub const MANIFEST_FILE_NAME: &str = "segments-sha256.json";

/// Why a seeder could not start.
#[derive(Debug, thiserror::Error)]
pub enum SeederError {
    /// The directory (or playlist) given cannot be used.
    #[error("{path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory without a playlist in it.
    #[error("no .m3u8 playlist in {0}; name the playlist file players load")]
    NoPlaylist(PathBuf),
    /// A directory with several candidate playlists.
    #[error("several playlists in {dir} ({candidates}); name the one players load")]
    AmbiguousPlaylist {
        /// The directory.
        dir: PathBuf,
        /// The candidates, comma separated.
        candidates: String,
    },
    /// The public URL is not an absolute http(s) URL.
    #[error("public URL {0:?} is not an absolute http:// or https:// URL")]
    BadPublicUrl(String),
    /// The peer driver failed to start.
    #[error("peer driver: {0}")]
    Driver(String),
    /// The id scheme cannot name the swarms (the `peertube` scheme without a video uuid).
    #[error("{0}")]
    IdScheme(#[from] IdSchemeError),
}

/// The playlist players load, and the directory it is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The directory seeded (canonical); every file served must lie under it.
    pub root: PathBuf,
    /// The entry playlist's file name in `root`.
    pub playlist: String,
}

/// Finds the playlist to seed from a path given by a user: a playlist file (which may not exist
/// yet, for a live stream about to start), or a directory holding exactly one multivariant
/// playlist, or else exactly one playlist, or else `master.m3u8` or `index.m3u8`.
pub fn find_entry(path: &Path) -> Result<Entry, SeederError> {
    let io = |source| SeederError::Path {
        path: path.to_path_buf(),
        source,
    };
    let is_playlist_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("m3u8"));
    if is_playlist_name && !path.is_dir() {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let root = std::fs::canonicalize(dir).map_err(io)?;
        let playlist = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Entry { root, playlist });
    }
    let root = std::fs::canonicalize(path).map_err(io)?;
    let mut candidates: Vec<String> = std::fs::read_dir(&root)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.to_ascii_lowercase().ends_with(".m3u8"))
        .collect();
    candidates.sort();
    let masters: Vec<&String> = candidates
        .iter()
        .filter(|n| std::fs::read_to_string(root.join(n)).is_ok_and(|t| is_master_playlist(&t)))
        .collect();
    let pick = if masters.len() == 1 {
        Some(masters[0].clone())
    } else if candidates.len() == 1 {
        Some(candidates[0].clone())
    } else {
        ["master.m3u8", "index.m3u8"]
            .into_iter()
            .find(|n| candidates.iter().any(|c| c == n))
            .map(str::to_owned)
    };
    match pick {
        Some(playlist) => Ok(Entry { root, playlist }),
        None if candidates.is_empty() => Err(SeederError::NoPlaylist(root)),
        None => Err(SeederError::AmbiguousPlaylist {
            dir: root,
            candidates: candidates.join(", "),
        }),
    }
}

/// Limits and names the scan works with (see [`SeederConfig`] for their meaning and defaults).
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// Largest segment accepted, bytes.
    pub max_segment_bytes: u64,
    /// Largest playlist read, bytes.
    pub max_playlist_bytes: u64,
    /// How long a file of an unchecked format must be left alone before it is used.
    pub settle_time: Duration,
}

impl Default for ScanSettings {
    fn default() -> Self {
        Self {
            max_segment_bytes: 64 * 1024 * 1024,
            max_playlist_bytes: 4 * 1024 * 1024,
            settle_time: Duration::from_secs(1),
        }
    }
}

/// One segment found good: listed, present, whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedSegment {
    /// The engine's view (id, path relative to the served root, timing, size).
    pub info: SegmentInfo,
    /// The file on disk.
    pub file: PathBuf,
    /// Byte range within the file (`#EXT-X-BYTERANGE`), end exclusive.
    pub range: Option<Range<u64>>,
    /// SHA-256 of the segment's bytes.
    pub digest: Sha256Digest,
}

/// One stream of the seeded playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedStream {
    /// Its media playlist, relative to the root (`/`-separated).
    pub playlist: String,
    /// Swarm identity as p2p-media-loader derives it.
    pub identity: StreamIdentity,
    /// What this scan found; `None` when the media playlist is missing or broken (keep the last
    /// good state).
    pub media: Option<ScannedMedia>,
}

/// The usable content of one media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedMedia {
    /// Live (no `#EXT-X-ENDLIST`) or VOD.
    pub live: bool,
    /// `#EXT-X-TARGETDURATION`, seconds.
    pub target_duration: f64,
    /// Segments in playlist order; broken or missing ones are left out.
    pub segments: Vec<ScannedSegment>,
    /// Segments listed but skipped.
    pub skipped: usize,
}

/// The result of one scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// The streams, in playlist order (empty when the entry playlist is missing or broken).
    pub streams: Vec<ScannedStream>,
    /// Problems found in this scan, one line each.
    pub problems: Vec<String>,
}

impl Scan {
    /// The manifests to write: one per directory holding segments, keyed by that directory.
    pub fn manifests(&self) -> BTreeMap<PathBuf, SegmentManifest> {
        let mut out: BTreeMap<PathBuf, SegmentManifest> = BTreeMap::new();
        for s in self.streams.iter().filter_map(|s| s.media.as_ref()) {
            for seg in &s.segments {
                let Some(dir) = seg.file.parent() else {
                    continue;
                };
                let name = seg
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let range = seg
                    .range
                    .as_ref()
                    .and_then(|r| ByteRange::from_offset_length(r.start, r.end - r.start));
                out.entry(dir.to_path_buf())
                    .or_default()
                    .insert_digest(&name, range, seg.digest);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
struct FileCheck {
    len: u64,
    modified: Option<SystemTime>,
    /// Per byte range (None = whole file): the digest, or why it was refused.
    ranges: HashMap<Option<Range<u64>>, Result<Sha256Digest, String>>,
}

/// Reads a seeded directory: the entry playlist, its streams, their segments. Remembers what it
/// has checked (by file size and modification time) so a rescan reads only new or changed files.
#[derive(Debug)]
pub struct Scanner {
    entry: Entry,
    public_url: String,
    root_url: String,
    id_scheme: IdScheme,
    /// The presentation-wide part of the stream swarm ids (swarm id, URL or video uuid).
    swarm: String,
    settings: ScanSettings,
    checked: HashMap<PathBuf, FileCheck>,
}

/// Splits an absolute http(s) URL (query and fragment dropped) into its origin
/// (`scheme://host[:port]`) and path.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let host_len = rest.find('/').unwrap_or(rest.len());
    if host_len == 0 {
        return None;
    }
    let origin_len = url.len() - rest.len() + host_len;
    let path = &url[origin_len..];
    Some((&url[..origin_len], if path.is_empty() { "/" } else { path }))
}

/// Normalises `base_dir` (relative, `/`-separated, may be empty) joined with a relative `uri`
/// into a relative path; `None` when it climbs above the root or is empty.
fn join_relative(base_dir: &str, uri: &str) -> Option<String> {
    let mut parts: Vec<&str> = base_dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in uri.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let out = parts.join("/");
    (!out.is_empty() && !uri.ends_with('/')).then_some(out)
}

impl Scanner {
    /// A scanner for `entry`, whose playlist players load from `public_url`, naming swarms with
    /// the `pml-2.3` scheme (see [`Scanner::with_id_scheme`]).
    pub fn new(
        entry: Entry,
        public_url: &str,
        swarm_id: Option<String>,
        settings: ScanSettings,
    ) -> Result<Self, SeederError> {
        let (origin, path) =
            split_url(public_url).ok_or_else(|| SeederError::BadPublicUrl(public_url.into()))?;
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let root_url = format!("{origin}{dir}");
        let id_scheme = IdScheme::Pml23;
        let swarm = id_scheme
            .swarm(swarm_id.as_deref(), None, public_url)?
            .to_owned();
        Ok(Self {
            entry,
            public_url: public_url.to_owned(),
            root_url,
            id_scheme,
            swarm,
            settings,
            checked: HashMap::new(),
        })
    }

    /// Names swarms with `scheme` instead: `swarm_id` (or else the public URL without its query)
    /// for the p2p-media-loader schemes, `video_uuid` (required) for `peertube`.
    pub fn with_id_scheme(
        mut self,
        scheme: IdScheme,
        swarm_id: Option<&str>,
        video_uuid: Option<&str>,
    ) -> Result<Self, SeederError> {
        self.swarm = scheme
            .swarm(swarm_id, video_uuid, &self.public_url)?
            .to_owned();
        self.id_scheme = scheme;
        Ok(self)
    }

    /// The id scheme swarms are named with.
    pub fn id_scheme(&self) -> IdScheme {
        self.id_scheme
    }

    /// The directory seeded.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The URL of the root directory as players see it (ends with `/`).
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// Maps a URI found in the playlist at `playlist_rel` to a path relative to the root, if it
    /// points inside the seeded directory.
    fn resolve(&self, playlist_rel: &str, uri: &str) -> Option<String> {
        let uri = uri.split(['?', '#']).next().unwrap_or(uri);
        let base_dir = &playlist_rel[..playlist_rel.rfind('/').map_or(0, |i| i + 1)];
        if uri.contains("://") {
            let rest = uri.strip_prefix(self.root_url.as_str())?;
            return join_relative("", rest);
        }
        if let Some(abs) = uri.strip_prefix('/') {
            let (_, root_path) = split_url(&self.root_url)?;
            let rest = abs.strip_prefix(root_path.trim_start_matches('/'))?;
            return join_relative("", rest);
        }
        join_relative(base_dir, uri)
    }

    /// The file for a relative path, if it is a regular file under the root (links resolved).
    fn file_under_root(&self, rel: &str) -> Option<PathBuf> {
        let mut p = self.entry.root.clone();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(n) => p.push(n),
                _ => return None,
            }
        }
        let real = std::fs::canonicalize(&p).ok()?;
        real.starts_with(&self.entry.root).then_some(real)
    }

    fn read_text(&self, path: &Path) -> Result<String, String> {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if meta.len() > self.settings.max_playlist_bytes {
            return Err(format!(
                "larger than {} bytes",
                self.settings.max_playlist_bytes
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())
    }

    /// Scans the directory now; `now` is the wall clock the settle time is measured against.
    pub fn scan(&mut self, now: SystemTime) -> Scan {
        let mut scan = Scan::default();
        let entry_path = self.entry.root.join(&self.entry.playlist);
        let text = match self.read_text(&entry_path) {
            Ok(t) => t,
            Err(e) => {
                scan.problems
                    .push(format!("playlist {}: {e}", self.entry.playlist));
                return scan;
            }
        };
        // Keys are taken before streams without a URI are left out: they count in the indexes.
        let streams: Vec<(String, StreamKey)> = if is_master_playlist(&text) {
            master_playlist_streams(&text)
                .into_iter()
                .map(|s| (s.uri.clone(), s.key()))
                .filter(|(uri, _)| !uri.is_empty())
                .collect()
        } else {
            // A media playlist loaded directly: hls.js makes one level with bitrate 0.
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
            vec![(self.entry.playlist.clone(), key)]
        };
        let mut seen = BTreeSet::new();
        let mut live_files = BTreeSet::new();
        for (uri, key) in streams {
            let identity = self.id_scheme.identity(&self.swarm, key);
            let Some(rel) = self.resolve("", &uri) else {
                scan.problems.push(format!(
                    "stream {uri}: not inside the seeded directory, skipped"
                ));
                continue;
            };
            if !seen.insert(identity.stream_swarm_id.clone()) {
                continue;
            }
            let media = self.scan_media(&rel, now, &mut scan.problems, &mut live_files);
            scan.streams.push(ScannedStream {
                playlist: rel,
                identity,
                media,
            });
        }
        // Forget checks of files no longer listed (deleted live segments).
        self.checked.retain(|p, _| live_files.contains(p));
        scan
    }

    fn scan_media(
        &mut self,
        rel: &str,
        now: SystemTime,
        problems: &mut Vec<String>,
        live_files: &mut BTreeSet<PathBuf>,
    ) -> Option<ScannedMedia> {
        let Some(path) = self.file_under_root(rel) else {
            problems.push(format!("playlist {rel}: not found"));
            return None;
        };
        let text = match self.read_text(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("playlist {rel}: {e}"));
                return None;
            }
        };
        let playlist = match parse_media_playlist(&text) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("playlist {rel}: {e}"));
                return None;
            }
        };
        let mut media = ScannedMedia {
            live: playlist.live,
            target_duration: playlist.target_duration,
            segments: Vec::with_capacity(playlist.segments.len()),
            skipped: 0,
        };
        for seg in &playlist.segments {
            let checked = self
                .resolve(rel, &seg.uri)
                .ok_or_else(|| "not inside the seeded directory".to_owned())
                .and_then(|seg_rel| {
                    let file = self
                        .file_under_root(&seg_rel)
                        .ok_or_else(|| "missing".to_owned())?;
                    live_files.insert(file.clone());
                    let digest = self.check_file(&file, seg.byte_range.clone(), now)?;
                    Ok((seg_rel, file, digest))
                });
            match checked {
                Ok((seg_rel, file, digest)) => {
                    let mut info = seg.info();
                    info.path = seg_rel;
                    media.segments.push(ScannedSegment {
                        info,
                        file,
                        range: seg.byte_range.clone(),
                        digest,
                    });
                }
                Err(why) => {
                    media.skipped += 1;
                    problems.push(format!("segment {} of {rel}: {why}, skipped", seg.uri));
                }
            }
        }
        Some(media)
    }

    /// Checks one segment (whole file or a range of it), using the remembered result when the
    /// file has not changed.
    fn check_file(
        &mut self,
        file: &Path,
        range: Option<Range<u64>>,
        now: SystemTime,
    ) -> Result<Sha256Digest, String> {
        let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let (len, modified) = (meta.len(), meta.modified().ok());
        let entry = self.checked.entry(file.to_path_buf()).or_insert(FileCheck {
            len,
            modified,
            ranges: HashMap::new(),
        });
        if entry.len != len || entry.modified != modified {
            *entry = FileCheck {
                len,
                modified,
                ranges: HashMap::new(),
            };
        }
        if let Some(done) = entry.ranges.get(&range) {
            // A refusal for "too recent" is retried; others stand until the file changes.
            if !matches!(done, Err(e) if e.starts_with(SETTLING)) {
                return done.clone();
            }
        }
        let result = check_segment_file(file, range.clone(), len, modified, now, &self.settings);
        if let Some(entry) = self.checked.get_mut(file) {
            entry.ranges.insert(range, result.clone());
        }
        result
    }
}

const SETTLING: &str = "modified too recently";

/// Reads `range` (or all) of `file`, checks that it looks whole and hashes it.
fn check_segment_file(
    file: &Path,
    range: Option<Range<u64>>,
    len: u64,
    modified: Option<SystemTime>,
    now: SystemTime,
    settings: &ScanSettings,
) -> Result<Sha256Digest, String> {
    let r = range.clone().unwrap_or(0..len);
    if r.end > len || r.start >= r.end {
        return Err(format!(
            "byte range {}..{} outside the file ({len} bytes)",
            r.start, r.end
        ));
    }
    if r.end - r.start > settings.max_segment_bytes {
        return Err(format!(
            "{} bytes, more than the {} allowed",
            r.end - r.start,
            settings.max_segment_bytes
        ));
    }
    let data = read_range(file, r.clone()).map_err(|e| e.to_string())?;
    let name = file.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".ts") {
        check_mpeg_ts(&data)?;
    } else if name.ends_with(".m4s") || name.ends_with(".mp4") || name.ends_with(".m4a") {
        check_mp4_boxes(&data)?;
    } else {
        let age = modified.and_then(|m| now.duration_since(m).ok());
        if age.is_none_or(|a| a < settings.settle_time) {
            return Err(format!("{SETTLING} (may still be written)"));
        }
    }
    Ok(sha256(&data))
}

fn read_range(file: &Path, range: Range<u64>) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file)?;
    f.seek(SeekFrom::Start(range.start))?;
    let n = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
    let mut buf = vec![0; n];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// MPEG-TS: whole 188-byte packets, each starting with the sync byte 0x47.
pub fn check_mpeg_ts(data: &[u8]) -> Result<(), String> {
    const PACKET: usize = 188;
    if data.is_empty() {
        return Err("empty".into());
    }
    if data.len() % PACKET != 0 {
        return Err(format!(
            "MPEG-TS of {} bytes is not whole 188-byte packets (half-written?)",
            data.len()
        ));
    }
    if let Some(i) = data.chunks(PACKET).position(|p| p[0] != 0x47) {
        return Err(format!("MPEG-TS packet {i} has no sync byte"));
    }
    Ok(())
}

/// ISO BMFF (fMP4): top-level boxes whose sizes add up exactly to the data.
pub fn check_mp4_boxes(data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err("empty".into());
    }
    let mut at = 0usize;
    while at < data.len() {
        let head = data
            .get(at..at + 8)
            .ok_or_else(|| format!("MP4 box header cut at byte {at} (half-written?)"))?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let size = match size32 {
            0 => (data.len() - at) as u64,
            1 => {
                let large = data
                    .get(at + 8..at + 16)
                    .ok_or_else(|| format!("MP4 box header cut at byte {at}"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        if size < 8 {
            return Err(format!("MP4 box at byte {at} has size {size}"));
        }
        let end = (at as u64).saturating_add(size);
        if end > data.len() as u64 {
            return Err(format!(
                "MP4 box at byte {at} needs {size} bytes, {} left (half-written?)",
                data.len() - at
            ));
        }
        at = end as usize;
    }
    Ok(())
}

/// Reads a scanned segment's bytes again and checks they still hash to what the scan found
/// (the file may have changed since).
pub fn read_segment(seg: &ScannedSegment) -> Result<Bytes, String> {
    let data = match &seg.range {
        Some(r) => read_range(&seg.file, r.clone()),
        None => std::fs::read(&seg.file),
    }
    .map_err(|e| e.to_string())?;
    if sha256(&data) != seg.digest {
        return Err("changed since it was checked".into());
    }
    Ok(Bytes::from(data))
}

/// Settings of a [`Seeder`].
#[derive(Debug, Clone)]
pub struct SeederConfig {
    /// The directory to seed, or the playlist file players load (see [`find_entry`]).
    pub path: PathBuf,
    /// The URL players load the entry playlist from; swarm ids derive from it (query dropped)
    /// unless [`SeederConfig::swarm_id`] is set. Required.
    pub public_url: String,
    /// An explicit swarm id (p2p-media-loader's `swarmId`) the site also gives its players.
    /// Default none. Not used by the `peertube` scheme.
    pub swarm_id: Option<String>,
    /// How swarm ids and info hashes are derived: `pml-2.3` (p2p-media-loader 2.3 players, the
    /// default), `pml-2.2` (p2p-media-loader 2.2 players, as in PeerTube 7.1 to 8.0), or
    /// `peertube` (PeerTube's `pt-v2-<uuid>-...` ids; needs [`SeederConfig::peertube_uuid`], and
    /// each variant's resolution is the smaller side of its `RESOLUTION`).
    pub id_scheme: IdScheme,
    /// The PeerTube video's uuid, for the `peertube` id scheme. Default none.
    pub peertube_uuid: Option<String>,
    /// WebSocket tracker URLs. Required (at least one).
    pub tracker_urls: Vec<String>,
    /// How often the directory is scanned for new segments and playlist changes. Default 1 s.
    pub rescan_interval: Duration,
    /// Write `segments-sha256.json` next to the segments. Default true.
    pub write_manifest: bool,
    /// Scan limits: largest segment (default 64 MiB) and playlist (4 MiB), settle time for files
    /// of unchecked formats (1 s).
    pub scan: ScanSettings,
    /// Most peer connections per stream. Default 50.
    pub max_peers: usize,
    /// Upload budget per stream, bytes/s; `None` = unlimited. Default `None`.
    pub upload_rate: Option<u64>,
    /// Peers served at once per stream (more requests get `SegmentAbsent` and go elsewhere).
    /// Default 4.
    pub max_concurrent_uploads: usize,
    /// Segment memory per stream, bytes (older segments leave first). Default 512 MiB.
    pub store_max_bytes: u64,
    /// WebRTC offers sent with each announce (and `numwant`): how many viewers the seeder reaches
    /// per announce. Trackers cap what they relay (segswarm-tracker and aquatic: 10). Default 10.
    pub offers_per_announce: u32,
    /// Re-announce with fresh offers after this time instead of the tracker's interval while the
    /// seeder has room and the last round's offers found takers (one announce reaches only
    /// [`SeederConfig::offers_per_announce`] viewers). `None` = the tracker's interval only.
    /// Default 30 s (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub fill_announce_interval: Option<Duration>,
    /// Early announces in a row whose offers got no answer that end the fill. The tracker sends
    /// an announce's offers to random peers of the swarm, connected ones included, so with few
    /// viewers left unconnected a round can miss them all and the fill ends before them (they
    /// are reached at the next regular announce, or through their own offers). Default 2.
    pub fill_idle_rounds: u32,
    /// An offer not answered within this time is dropped and its connection slot freed. Offers
    /// the tracker relays to viewers already connected or full are never answered, so during a
    /// fill this bounds how many slots and sockets they hold. Default 20 s (an answer takes the
    /// answerer's ICE gathering, at most 5 s in simple-peer, and two relays; the JavaScript
    /// client waits 50 s).
    pub offer_timeout: Duration,
    /// Tracker, WebRTC and HTTP settings of the peer drivers.
    pub driver: DriverSettings,
    /// Test only: flip bytes in every segment handed to peers (the manifest keeps the true
    /// hashes), so viewers' integrity checks can be exercised. Default false.
    pub corrupt_uploads: bool,
}

impl SeederConfig {
    /// Defaults for seeding `path`, loaded by players from `public_url`, through `tracker_urls`.
    pub fn new(
        path: impl Into<PathBuf>,
        public_url: impl Into<String>,
        tracker_urls: Vec<String>,
    ) -> Self {
        Self {
            path: path.into(),
            public_url: public_url.into(),
            swarm_id: None,
            id_scheme: IdScheme::default(),
            peertube_uuid: None,
            tracker_urls,
            rescan_interval: Duration::from_secs(1),
            write_manifest: true,
            scan: ScanSettings::default(),
            max_peers: 50,
            upload_rate: None,
            max_concurrent_uploads: 4,
            store_max_bytes: 512 * 1024 * 1024,
            offers_per_announce: 10,
            fill_announce_interval: Some(Duration::from_secs(30)),
            fill_idle_rounds: 2,
            offer_timeout: Duration::from_secs(20),
            driver: DriverSettings::new(Vec::new()),
            corrupt_uploads: false,
        }
    }
}

/// Statistics of one seeded stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// Its media playlist, relative to the seeded directory.
    pub playlist: String,
    /// p2p-media-loader stream swarm id.
    pub stream_swarm_id: String,
    /// Tracker info hash (20 ASCII characters).
    pub info_hash: String,
    /// Live or VOD.
    pub live: bool,
    /// Segments held and announced.
    pub segments: usize,
    /// Their bytes.
    pub segment_bytes: u64,
    /// Segments listed but skipped (broken, missing, half-written) in the last scan.
    pub skipped: usize,
    /// Bytes sent to peers.
    pub uploaded_bytes: u64,
    /// Peers with an open data channel now.
    pub peers: usize,
    /// Peers connected since the start.
    pub peers_connected_total: u64,
}

/// Statistics of a [`Seeder`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeederStats {
    /// One entry per stream, in playlist order.
    pub streams: Vec<StreamStats>,
    /// Problems found by the last scan.
    pub problems: Vec<String>,
    /// Scans done.
    pub scans: u64,
    /// Manifest files written (counting rewrites).
    pub manifests_written: u64,
}

impl SeederStats {
    /// Bytes sent to peers, all streams.
    pub fn uploaded_bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.uploaded_bytes).sum()
    }
}

/// A running seeder. See the module documentation.
#[derive(Debug)]
pub struct Seeder {
    stats: Arc<Mutex<SeederStats>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    root_url: String,
    entry: Entry,
}

struct StreamState {
    driver: DriverHandle,
    playlist_path: String,
    identity: StreamIdentity,
    live: bool,
    /// Segments handed to the engine: their size and hash.
    added: BTreeMap<SegmentId, (u64, Sha256Digest)>,
    playlist: Vec<SegmentInfo>,
    skipped: usize,
}

impl Seeder {
    /// Finds the entry playlist, scans once (problems are reported, not fatal: a live directory may
    /// still be empty) and starts seeding. Must run inside a tokio runtime.
    pub async fn start(config: SeederConfig) -> Result<Self, SeederError> {
        if config.tracker_urls.is_empty() {
            return Err(SeederError::Driver("no tracker URL".into()));
        }
        let path = config.path.clone();
        let entry = tokio::task::spawn_blocking(move || find_entry(&path))
            .await
            .map_err(|e| SeederError::Driver(e.to_string()))??;
        let scanner = Scanner::new(
            entry.clone(),
            &config.public_url,
            config.swarm_id.clone(),
            config.scan.clone(),
        )?
        .with_id_scheme(
            config.id_scheme,
            config.swarm_id.as_deref(),
            config.peertube_uuid.as_deref(),
        )?;
        let root_url = scanner.root_url().to_owned();
        let stats = Arc::new(Mutex::new(SeederStats::default()));
        let (stop, stop_rx) = watch::channel(false);
        tracing::info!(
            dir = %entry.root.display(),
            playlist = %entry.playlist,
            public_url = %config.public_url,
            id_scheme = %config.id_scheme,
            "seeding"
        );
        let task = tokio::spawn(run(config, scanner, stats.clone(), stop_rx));
        Ok(Self {
            stats,
            stop,
            task: Some(task),
            root_url,
            entry,
        })
    }

    /// The statistics now.
    pub fn stats(&self) -> SeederStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The directory and entry playlist seeded.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The URL of the seeded directory as players see it (ends with `/`).
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// Leaves every swarm (announces `stopped`, closes peers) and returns the final statistics.
    pub async fn shutdown(mut self) -> SeederStats {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stats()
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn spawn_stream(
    config: &SeederConfig,
    root_url: &str,
    identity: &StreamIdentity,
    live: bool,
) -> Result<DriverHandle, String> {
    let mut rng = rand::rng();
    let mut peer_id = [0u8; 20];
    let id = generate_peer_id_with_prefix(&config.id_scheme.peer_id_prefix(), &mut rng);
    peer_id.copy_from_slice(&id.as_bytes()[..20]);
    let mut engine =
        EngineConfig::new(peer_id, identity.info_hash, live, vec![root_url.to_owned()]);
    engine.max_peers = config.max_peers;
    engine.upload_rate = config.upload_rate;
    engine.max_concurrent_uploads = config.max_concurrent_uploads.max(1);
    engine.store_max_bytes = config.store_max_bytes;
    engine.tracker.max_offers = config.offers_per_announce;
    engine.tracker.numwant = engine.tracker.numwant.max(config.offers_per_announce);
    engine.tracker.fill_interval = config.fill_announce_interval;
    engine.tracker.fill_idle_rounds = config.fill_idle_rounds;
    engine.tracker.offer_timeout = config.offer_timeout;
    engine.seed = rng.random();
    let mut driver = config.driver.clone();
    driver.tracker_urls = config.tracker_urls.clone();
    PeerDriver::spawn(engine, driver).map_err(|e| e.to_string())
}

fn corrupt(data: Bytes) -> Bytes {
    let mut v = data.to_vec();
    for b in v.iter_mut().skip(200).step_by(997) {
        *b ^= 0x5a;
    }
    Bytes::from(v)
}

/// Writes `manifest` to `dir/segments-sha256.json` if its text differs from what is there
/// (through a temporary file and a rename, so readers never see half a manifest).
fn write_manifest(dir: &Path, manifest: &SegmentManifest) -> std::io::Result<bool> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let text = manifest.to_json();
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let tmp = dir.join(format!(".{MANIFEST_FILE_NAME}.tmp"));
    std::fs::write(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

async fn run(
    config: SeederConfig,
    mut scanner: Scanner,
    stats: Arc<Mutex<SeederStats>>,
    mut stop: watch::Receiver<bool>,
) {
    let root_url = scanner.root_url().to_owned();
    let mut streams: BTreeMap<String, StreamState> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut manifests_written = 0u64;
    let mut scans = 0u64;
    let mut last_order: Vec<String> = Vec::new();
    loop {
        // Scanning reads and hashes files: off the async threads.
        let (back, scan) = match tokio::task::spawn_blocking(move || {
            let scan = scanner.scan(SystemTime::now());
            (scanner, scan)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("seeder scan task failed: {e}");
                break;
            }
        };
        scanner = back;
        scans += 1;
        // Each problem is logged when it appears, once.
        let now_problems: BTreeSet<String> = scan.problems.iter().cloned().collect();
        for p in now_problems.difference(&reported) {
            tracing::warn!("seeder: {p}");
        }
        reported = now_problems;

        let mut order = Vec::new();
        for st in &scan.streams {
            let key = st.identity.stream_swarm_id.clone();
            order.push(key.clone());
            let Some(media) = &st.media else { continue };
            // A stream that turns from live to VOD (or back) changes its segment ids, and a
            // segment rewritten with other bytes (a re-encoded VOD) cannot be taken back from the
            // engine's store: start that stream over.
            let rewritten = streams.get(&key).is_some_and(|s| {
                media.segments.iter().any(|seg| {
                    s.added
                        .get(&seg.info.id)
                        .is_some_and(|(_, d)| *d != seg.digest)
                })
            });
            if rewritten {
                tracing::warn!(playlist = %st.playlist, "segments rewritten; rejoining the swarm");
            }
            if rewritten || streams.get(&key).is_some_and(|s| s.live != media.live) {
                if let Some(old) = streams.remove(&key) {
                    old.driver.shutdown().await;
                }
            }
            if !streams.contains_key(&key) {
                match spawn_stream(&config, &root_url, &st.identity, media.live) {
                    Ok(driver) => {
                        tracing::info!(
                            playlist = %st.playlist,
                            swarm = %st.identity.stream_swarm_id,
                            info_hash = %st.identity.info_hash_str(),
                            live = media.live,
                            "joined swarm"
                        );
                        streams.insert(
                            key.clone(),
                            StreamState {
                                driver,
                                playlist_path: st.playlist.clone(),
                                identity: st.identity.clone(),
                                live: media.live,
                                added: BTreeMap::new(),
                                playlist: Vec::new(),
                                skipped: 0,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::error!(playlist = %st.playlist, "cannot start the peer driver: {e}");
                        continue;
                    }
                }
            }
            let Some(state) = streams.get_mut(&key) else {
                continue;
            };
            state.skipped = media.skipped;
            let infos: Vec<SegmentInfo> = media.segments.iter().map(|s| s.info.clone()).collect();
            if infos != state.playlist {
                let _ = state.driver.input(Input::Playlist(infos.clone()));
                state.playlist = infos;
            }
            for seg in &media.segments {
                if state.added.contains_key(&seg.info.id) {
                    continue;
                }
                let s = seg.clone();
                let read = tokio::task::spawn_blocking(move || read_segment(&s)).await;
                match read {
                    Ok(Ok(data)) => {
                        let len = data.len() as u64;
                        let data = if config.corrupt_uploads {
                            corrupt(data)
                        } else {
                            data
                        };
                        let _ = state.driver.input(Input::AddSegment {
                            id: seg.info.id,
                            data,
                        });
                        state.added.insert(seg.info.id, (len, seg.digest));
                    }
                    Ok(Err(e)) => tracing::warn!(segment = %seg.info.path, "seeder: {e}, skipped"),
                    Err(e) => tracing::warn!("seeder read task failed: {e}"),
                }
            }
            // Forget segments that left a live window (the engine's store ages them out).
            let window: BTreeSet<SegmentId> = media.segments.iter().map(|s| s.info.id).collect();
            state.added.retain(|id, _| window.contains(id));
        }
        // Streams gone from a readable entry playlist: leave their swarms.
        if !scan.streams.is_empty() {
            let gone: Vec<String> = streams
                .keys()
                .filter(|k| !order.contains(k))
                .cloned()
                .collect();
            for k in gone {
                if let Some(s) = streams.remove(&k) {
                    tracing::info!(swarm = %k, "stream left the playlist; leaving its swarm");
                    s.driver.shutdown().await;
                }
            }
        }
        if config.write_manifest {
            let manifests = scan.manifests();
            let written = tokio::task::spawn_blocking(move || {
                let mut n = 0;
                for (dir, m) in &manifests {
                    match write_manifest(dir, m) {
                        Ok(true) => n += 1,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(dir = %dir.display(), "cannot write {MANIFEST_FILE_NAME}: {e}"),
                    }
                }
                n
            })
            .await
            .unwrap_or(0);
            manifests_written += written;
        }
        for s in streams.values_mut() {
            // Peer events are not needed here; keep the queue empty.
            while s.driver.try_event().is_some() {}
        }
        let snapshot = snapshot(&order, &streams, &scan.problems, scans, manifests_written).await;
        if let Ok(mut s) = stats.lock() {
            *s = snapshot;
        }
        last_order = order;
        tokio::select! {
            _ = tokio::time::sleep(config.rescan_interval) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    // Final statistics, then a graceful stop: every swarm at once.
    let order: Vec<String> = last_order;
    let final_stats = {
        let problems = stats.lock().map(|s| s.problems.clone()).unwrap_or_default();
        snapshot(&order, &streams, &problems, scans, manifests_written).await
    };
    if let Ok(mut s) = stats.lock() {
        *s = final_stats;
    }
    let mut handles = Vec::new();
    for (_, s) in std::mem::take(&mut streams) {
        handles.push(tokio::spawn(async move { s.driver.shutdown().await }));
    }
    for h in handles {
        let _ = h.await;
    }
    tracing::info!("seeder stopped");
}

async fn snapshot(
    order: &[String],
    streams: &BTreeMap<String, StreamState>,
    problems: &[String],
    scans: u64,
    manifests_written: u64,
) -> SeederStats {
    let mut out = Vec::new();
    for key in order {
        let Some(s) = streams.get(key) else { continue };
        let ds = s.driver.stats().await.unwrap_or_default();
        out.push(StreamStats {
            playlist: s.playlist_path.clone(),
            stream_swarm_id: s.identity.stream_swarm_id.clone(),
            info_hash: s.identity.info_hash_str().to_owned(),
            live: s.live,
            segments: s.added.len(),
            segment_bytes: s.added.values().map(|(n, _)| n).sum(),
            skipped: s.skipped,
            uploaded_bytes: ds.engine.uploaded_bytes,
            peers: ds.peers_connected,
            peers_connected_total: ds.engine.peers_connected,
        });
    }
    SeederStats {
        streams: out,
        problems: problems.to_vec(),
        scans,
        manifests_written,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::generate_stream_short_id;

    const PUBLIC: &str = "http://videos.example/live/master.m3u8?token=1";

    /// `n` whole MPEG-TS packets with a pattern depending on `seed`.
    fn ts(n: usize, seed: u8) -> Vec<u8> {
        let mut v = vec![seed; n * 188];
        for p in v.chunks_mut(188) {
            p[0] = 0x47;
        }
        v
    }

    fn media(seq: u64, segs: &[&str], ended: bool) -> String {
        let mut s = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{seq}\n");
        for seg in segs {
            s.push_str(&format!("#EXTINF:4.000000,\n{seg}\n"));
        }
        if ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    fn scanner(dir: &Path, playlist: &str) -> Scanner {
        let entry = find_entry(&dir.join(playlist)).unwrap();
        Scanner::new(entry, PUBLIC, None, ScanSettings::default()).unwrap()
    }

    #[test]
    fn single_media_playlist_ids_manifest_and_identity() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..3 {
            std::fs::write(d.path().join(format!("s{i}.ts")), ts(10 + i, i as u8)).unwrap();
        }
        std::fs::write(
            d.path().join("index.m3u8"),
            media(0, &["s0.ts", "s1.ts", "s2.ts"], true),
        )
        .unwrap();
        // A directory with one playlist finds it.
        let entry = find_entry(d.path()).unwrap();
        assert_eq!(entry.playlist, "index.m3u8");
        let mut sc = Scanner::new(
            entry,
            "http://h:8080/v/index.m3u8",
            None,
            ScanSettings::default(),
        )
        .unwrap();
        assert_eq!(sc.root_url(), "http://h:8080/v/");
        let scan = sc.scan(SystemTime::now());
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(scan.streams.len(), 1);
        let st = &scan.streams[0];
        let short = generate_stream_short_id(&ShortIdProps {
            bitrate: Some(0.0),
            ..Default::default()
        });
        assert_eq!(
            st.identity,
            StreamIdentity::new(None, "http://h:8080/v/index.m3u8", StreamType::Main, short)
        );
        let m = st.media.as_ref().unwrap();
        assert!(!m.live);
        let ids: Vec<i64> = m.segments.iter().map(|s| s.info.id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(m.segments[1].info.path, "s1.ts");
        assert_eq!(m.segments[2].digest, sha256(&ts(12, 2)));
        let manifests = scan.manifests();
        assert_eq!(manifests.len(), 1);
        let man = &manifests[&d.path().canonicalize().unwrap()];
        assert_eq!(
            man.verify("s0.ts", None, &ts(10, 0)),
            crate::integrity::Verification::Valid
        );
        assert_eq!(
            man.verify("s0.ts", None, &ts(10, 9)),
            crate::integrity::Verification::Mismatch
        );
        assert_eq!(
            read_segment(&m.segments[0]).unwrap().as_ref(),
            ts(10, 0).as_slice()
        );
    }

    #[test]
    fn master_playlist_one_swarm_per_variant_with_pml_ids() {
        let d = tempfile::tempdir().unwrap();
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.42c01e\"\nlow/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS=\"avc1.42c01f\"\nhigh/index.m3u8\n";
        std::fs::write(d.path().join("master.m3u8"), master).unwrap();
        std::fs::write(d.path().join("other.m3u8"), media(0, &[], true)).unwrap();
        for v in ["low", "high"] {
            std::fs::create_dir(d.path().join(v)).unwrap();
            std::fs::write(d.path().join(v).join("a.ts"), ts(5, 1)).unwrap();
            std::fs::write(
                d.path().join(v).join("index.m3u8"),
                media(0, &["a.ts"], true),
            )
            .unwrap();
        }
        // Two playlists, one of them multivariant: that one.
        assert_eq!(find_entry(d.path()).unwrap().playlist, "master.m3u8");
        let mut sc = scanner(d.path(), "master.m3u8");
        let scan = sc.scan(SystemTime::now());
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let expected: Vec<StreamIdentity> = master_playlist_streams(master)
            .into_iter()
            .map(|s| StreamIdentity::new(None, PUBLIC, s.stream_type, s.short_id()))
            .collect();
        let got: Vec<&StreamIdentity> = scan.streams.iter().map(|s| &s.identity).collect();
        assert_eq!(got, expected.iter().collect::<Vec<_>>());
        assert!(got[0]
            .stream_swarm_id
            .starts_with("v2-http://videos.example/live/master.m3u8-main-"));
        assert_ne!(got[0].info_hash, got[1].info_hash);
        assert_eq!(scan.streams[1].playlist, "high/index.m3u8");
        assert_eq!(
            scan.streams[1].media.as_ref().unwrap().segments[0]
                .info
                .path,
            "high/a.ts"
        );
        // One manifest per segment directory.
        assert_eq!(scan.manifests().len(), 2);
        // An explicit swarm id replaces the URL.
        let entry = find_entry(&d.path().join("master.m3u8")).unwrap();
        let mut sc = Scanner::new(
            entry,
            PUBLIC,
            Some("my-swarm".into()),
            ScanSettings::default(),
        )
        .unwrap();
        let scan = sc.scan(SystemTime::now());
        assert!(scan.streams[0]
            .identity
            .stream_swarm_id
            .starts_with("v2-my-swarm-main-"));

        // pml-2.2: the variants' positions, MD5.
        let entry = find_entry(&d.path().join("master.m3u8")).unwrap();
        let mut sc = Scanner::new(entry.clone(), PUBLIC, None, ScanSettings::default())
            .unwrap()
            .with_id_scheme(IdScheme::Pml22, None, None)
            .unwrap();
        let scan = sc.scan(SystemTime::now());
        let ids: Vec<&str> = scan
            .streams
            .iter()
            .map(|s| s.identity.stream_swarm_id.as_str())
            .collect();
        let url = "v2-http://videos.example/live/master.m3u8";
        assert_eq!(ids, [format!("{url}-main-0"), format!("{url}-main-1")]);
        let md5 = crate::id_scheme::md5_info_hash(ids[1]);
        assert_eq!(scan.streams[1].identity.info_hash, md5);

        // peertube: the video uuid and each variant's resolution; without the uuid, an error.
        let uuid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
        let base = Scanner::new(entry, PUBLIC, None, ScanSettings::default()).unwrap();
        assert!(matches!(
            Scanner::new(base.entry().clone(), PUBLIC, None, ScanSettings::default())
                .unwrap()
                .with_id_scheme(IdScheme::PeerTube, Some("ignored"), None),
            Err(SeederError::IdScheme(IdSchemeError::MissingVideoUuid))
        ));
        let mut sc = base
            .with_id_scheme(IdScheme::PeerTube, None, Some(uuid))
            .unwrap();
        let scan = sc.scan(SystemTime::now());
        let ids: Vec<&str> = scan
            .streams
            .iter()
            .map(|s| s.identity.stream_swarm_id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                format!("pt-v2-{uuid}-main-default-360"),
                format!("pt-v2-{uuid}-main-default-720")
            ]
        );
    }

    #[test]
    fn broken_half_written_missing_and_escaping_segments_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("www");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("good.ts"), ts(4, 1)).unwrap();
        let mut cut = ts(4, 2);
        cut.truncate(500);
        std::fs::write(root.join("cut.ts"), &cut).unwrap();
        let mut nosync = ts(4, 3);
        nosync[188] = 0;
        std::fs::write(root.join("nosync.ts"), &nosync).unwrap();
        std::fs::write(root.join("empty.ts"), b"").unwrap();
        std::fs::write(d.path().join("secret.ts"), ts(1, 4)).unwrap();
        // A fresh file of an unchecked format waits for the settle time.
        std::fs::write(root.join("fresh.aac"), b"aac frames").unwrap();
        let segs = [
            "good.ts",
            "cut.ts",
            "nosync.ts",
            "empty.ts",
            "gone.ts",
            "../secret.ts",
            "fresh.aac",
        ];
        std::fs::write(root.join("index.m3u8"), media(0, &segs, true)).unwrap();
        let mut sc = scanner(&root, "index.m3u8");
        let now = SystemTime::now();
        let scan = sc.scan(now);
        let m = scan.streams[0].media.as_ref().unwrap();
        assert_eq!(m.segments.len(), 1, "{:?}", scan.problems);
        assert_eq!(m.segments[0].info.path, "good.ts");
        assert_eq!(m.skipped, 6);
        assert_eq!(scan.problems.len(), 6, "{:?}", scan.problems);
        assert!(scan
            .problems
            .iter()
            .any(|p| p.contains("cut.ts") && p.contains("half-written")));
        assert!(scan
            .problems
            .iter()
            .any(|p| p.contains("gone.ts") && p.contains("missing")));
        assert!(scan.problems.iter().any(|p| p.contains("secret.ts")));
        // Nothing refused reaches the manifest.
        let man = &scan.manifests()[&root.canonicalize().unwrap()];
        assert_eq!(man.len(), 1);
        // Later, the cut file is completed and the other file has settled: both are taken.
        std::fs::write(root.join("cut.ts"), ts(4, 2)).unwrap();
        let scan = sc.scan(now + Duration::from_secs(5));
        let m = scan.streams[0].media.as_ref().unwrap();
        let paths: Vec<&str> = m.segments.iter().map(|s| s.info.path.as_str()).collect();
        assert_eq!(paths, vec!["good.ts", "cut.ts", "fresh.aac"]);
        assert_eq!(m.segments[1].info.id, 1, "ids are playlist positions");
    }

    #[test]
    fn broken_playlists_are_reported_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.ts"), ts(2, 1)).unwrap();
        std::fs::write(d.path().join("index.m3u8"), "garbage\n").unwrap();
        let mut sc = scanner(d.path(), "index.m3u8");
        let scan = sc.scan(SystemTime::now());
        assert_eq!(scan.streams.len(), 1);
        assert!(scan.streams[0].media.is_none());
        assert!(
            scan.problems[0].contains("not an HLS playlist"),
            "{:?}",
            scan.problems
        );
        // Half-written: the last URI line is cut short, so it names no file.
        let text = media(0, &["a.ts", "a.ts"], false);
        let cut = &text[..text.len() - 3];
        std::fs::write(d.path().join("index.m3u8"), cut).unwrap();
        let scan = sc.scan(SystemTime::now());
        let m = scan.streams[0].media.as_ref().unwrap();
        assert_eq!(m.segments.len(), 1);
        assert_eq!(m.skipped, 1);
        // No playlist at all yet (a live stream about to start).
        std::fs::remove_file(d.path().join("index.m3u8")).unwrap();
        let scan = sc.scan(SystemTime::now());
        assert!(scan.streams.is_empty());
        assert_eq!(scan.problems.len(), 1);
    }

    #[test]
    fn live_window_slides_with_sequence_ids() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..6 {
            std::fs::write(d.path().join(format!("s{i}.ts")), ts(3, i as u8)).unwrap();
        }
        std::fs::write(
            d.path().join("live.m3u8"),
            media(0, &["s0.ts", "s1.ts", "s2.ts"], false),
        )
        .unwrap();
        let mut sc = scanner(d.path(), "live.m3u8");
        let scan = sc.scan(SystemTime::now());
        let m = scan.streams[0].media.as_ref().unwrap();
        assert!(m.live);
        std::fs::write(
            d.path().join("live.m3u8"),
            media(3, &["s3.ts", "s4.ts", "s5.ts"], false),
        )
        .unwrap();
        std::fs::remove_file(d.path().join("s0.ts")).unwrap();
        let scan = sc.scan(SystemTime::now());
        let m = scan.streams[0].media.as_ref().unwrap();
        let ids: Vec<i64> = m.segments.iter().map(|s| s.info.id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        let man = &scan.manifests()[&d.path().canonicalize().unwrap()];
        assert_eq!(man.len(), 3, "the manifest follows the window");
        assert_eq!(
            sc.checked.len(),
            3,
            "checks of files that left the window are dropped"
        );
    }

    #[test]
    fn byte_ranges_and_fmp4_boxes() {
        let d = tempfile::tempdir().unwrap();
        let one = ts(3, 1);
        let two = ts(2, 2);
        std::fs::write(d.path().join("all.ts"), [one.clone(), two.clone()].concat()).unwrap();
        let text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n#EXT-X-BYTERANGE:{}@0\nall.ts\n\
#EXTINF:4,\n#EXT-X-BYTERANGE:{}\nall.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:100@5000\nall.ts\n#EXT-X-ENDLIST\n",
            one.len(),
            two.len()
        );
        std::fs::write(d.path().join("index.m3u8"), text).unwrap();
        let mut sc = scanner(d.path(), "index.m3u8");
        let scan = sc.scan(SystemTime::now());
        let m = scan.streams[0].media.as_ref().unwrap();
        assert_eq!(m.segments.len(), 2, "{:?}", scan.problems);
        assert_eq!(
            read_segment(&m.segments[1]).unwrap().as_ref(),
            two.as_slice()
        );
        let man = &scan.manifests()[&d.path().canonicalize().unwrap()];
        let r = ByteRange::from_offset_length(one.len() as u64, two.len() as u64);
        assert_eq!(
            man.verify("all.ts", r, &two),
            crate::integrity::Verification::Valid
        );
        assert!(man
            .to_json()
            .contains(&format!("\"564-{}\"", 564 + 376 - 1)));

        let mut boxes = Vec::new();
        for (kind, len) in [(b"moof", 24u32), (b"mdat", 40)] {
            boxes.extend_from_slice(&len.to_be_bytes());
            boxes.extend_from_slice(kind);
            boxes.extend(std::iter::repeat_n(0u8, len as usize - 8));
        }
        assert_eq!(check_mp4_boxes(&boxes), Ok(()));
        assert!(check_mp4_boxes(&boxes[..50])
            .unwrap_err()
            .contains("half-written"));
        assert!(check_mp4_boxes(&boxes[..28]).is_err());
        let mut bad = boxes.clone();
        bad[3] = 4;
        assert!(check_mp4_boxes(&bad).is_err());
    }

    #[test]
    fn uri_resolution() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.m3u8"), "#EXTM3U\n").unwrap();
        let sc = scanner(d.path(), "index.m3u8");
        assert_eq!(sc.resolve("v/x.m3u8", "a.ts?x=1"), Some("v/a.ts".into()));
        assert_eq!(sc.resolve("v/x.m3u8", "../a.ts"), Some("a.ts".into()));
        assert_eq!(sc.resolve("v/x.m3u8", "../../a.ts"), None);
        assert_eq!(
            sc.resolve("", "http://videos.example/live/v/a.ts"),
            Some("v/a.ts".into())
        );
        assert_eq!(sc.resolve("", "http://elsewhere.example/live/v/a.ts"), None);
        assert_eq!(
            sc.resolve("v/x.m3u8", "/live/w/b.ts"),
            Some("w/b.ts".into())
        );
        assert_eq!(sc.resolve("v/x.m3u8", "/other/b.ts"), None);
        assert!(Scanner::new(
            sc.entry().clone(),
            "ftp://x/y",
            None,
            ScanSettings::default()
        )
        .is_err());
    }
}
