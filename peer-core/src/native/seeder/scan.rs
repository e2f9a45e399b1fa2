//! The directory scan: the entry playlist, its streams and segments, each file checked and hashed.

use super::*;

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
pub(super) struct FileCheck {
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
    pub(super) checked: HashMap<PathBuf, FileCheck>,
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
    pub(super) fn resolve(&self, playlist_rel: &str, uri: &str) -> Option<String> {
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
