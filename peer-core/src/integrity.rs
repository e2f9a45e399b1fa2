//! SHA-256 segment manifests in PeerTube's `segments-sha256.json` format.
//!
//! Two shapes exist, and one manifest may mix them:
//!
//! - per file: `{ "<segment file name>": "<sha256 hex>" }` (one file per segment, `.ts` or `.mp4`);
//! - per byte range: `{ "<file name>": { "<start>-<end>": "<sha256 hex>" } }` for fragmented MP4
//!   served as one file with byte ranges. `start` and `end` are byte offsets with the end
//!   *inclusive*, as in an HTTP `Range: bytes=start-end` header.
//!
//! Keys are bare file names (PeerTube's player looks segments up by the `basename` of the segment
//! URL, without the query string). [`SegmentManifest::verify`] accepts a URL or a path and reduces it
//! to the file name the same way.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A byte range of a file, both ends inclusive (HTTP `Range` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset of the last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// The range key as written in the manifest: `"<start>-<end>"`.
    pub fn to_key(self) -> String {
        format!("{}-{}", self.start, self.end)
    }

    /// Number of bytes covered.
    pub fn len(self) -> u64 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }

    /// Always false: a range covers at least one byte.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// Result of checking a segment against the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The data hashes to the manifest's value.
    Valid,
    /// The manifest has a different hash for this segment: the data must be dropped.
    Mismatch,
    /// The manifest does not list this segment (or range); the caller decides what to do.
    Unknown,
}

/// Why a manifest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    /// The text is not JSON.
    #[error("segments manifest is not valid JSON: {0}")]
    Json(String),
    /// The top level, or a file's value, has the wrong JSON type.
    #[error("segments manifest: {what} must be {expected}")]
    NotAnObject {
        /// What had the wrong type (`"the top level"` or `file "<name>"`).
        what: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A hash is not 64 hexadecimal digits.
    #[error("segments manifest: bad SHA-256 hex for {entry}: {value:?}")]
    BadHex {
        /// The file (and range) whose hash is bad.
        entry: String,
        /// The offending value (truncated to 80 characters).
        value: String,
    },
    /// A range key is not `"<start>-<end>"` with `start <= end`.
    #[error("segments manifest: bad byte range key {key:?} for file {file:?}")]
    BadRangeKey {
        /// The file whose range key is bad.
        file: String,
        /// The offending key (truncated to 80 characters).
        key: String,
    },
}

/// The hashes listed for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileHashes {
    Whole(Sha256Digest),
    Ranges(BTreeMap<ByteRange, Sha256Digest>),
}

/// A parsed (or computed) `segments-sha256.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentManifest {
    files: BTreeMap<String, FileHashes>,
}

/// Reduces a URL or path to the file name used as manifest key: drops `?query` and `#fragment`,
/// then keeps what follows the last `/`.
pub fn file_name_of(url_or_path: &str) -> &str {
    let end = url_or_path.find(['?', '#']).unwrap_or(url_or_path.len());
    let path = &url_or_path[..end];
    path.rsplit('/').next().unwrap_or(path)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256::digest(data).into()
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn parse_hex(
    entry: impl FnOnce() -> String,
    value: &serde_json::Value,
) -> Result<Sha256Digest, IntegrityError> {
    let bad = |entry: String, v: String| IntegrityError::BadHex {
        entry,
        value: truncate(&v),
    };
    let Some(s) = value.as_str() else {
        return Err(bad(entry(), value.to_string()));
    };
    let mut out = [0u8; 32];
    match hex::decode_to_slice(s, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => Err(bad(entry(), s.to_owned())),
    }
}

fn parse_range_key(file: &str, key: &str) -> Result<ByteRange, IntegrityError> {
    let bad = || IntegrityError::BadRangeKey {
        file: truncate(file),
        key: truncate(key),
    };
    let (a, b) = key.split_once('-').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return Err(bad());
    }
    let start: u64 = a.parse().map_err(|_| bad())?;
    let end: u64 = b.parse().map_err(|_| bad())?;
    if start > end {
        return Err(bad());
    }
    Ok(ByteRange { start, end })
}

impl SegmentManifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `segments-sha256.json` text. Unknown shapes are errors naming the bad entry.
    pub fn from_json(json: &[u8]) -> Result<Self, IntegrityError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| IntegrityError::Json(e.to_string()))?;
        let serde_json::Value::Object(top) = value else {
            return Err(IntegrityError::NotAnObject {
                what: "the top level".to_owned(),
                expected: "an object",
            });
        };
        let mut files = BTreeMap::new();
        for (name, v) in top {
            let hashes = match &v {
                serde_json::Value::String(_) => {
                    FileHashes::Whole(parse_hex(|| format!("file {name:?}"), &v)?)
                }
                serde_json::Value::Object(ranges) => {
                    let mut map = BTreeMap::new();
                    for (key, h) in ranges {
                        let range = parse_range_key(&name, key)?;
                        let digest = parse_hex(|| format!("file {name:?} range {key:?}"), h)?;
                        map.insert(range, digest);
                    }
                    FileHashes::Ranges(map)
                }
                _ => {
                    return Err(IntegrityError::NotAnObject {
                        what: format!("file {:?}", truncate(&name)),
                        expected: "a hex string or an object of byte ranges",
                    })
                }
            };
            files.insert(name, hashes);
        }
        Ok(Self { files })
    }

    /// Computes a manifest from segments: `(file name, byte range or None, bytes)`.
    ///
    /// `None` hashes the whole file; `Some(range)` adds a range entry for that file (the data given
    /// is the range's bytes). File names are reduced with [`file_name_of`].
    pub fn from_segments<I, N, D>(segments: I) -> Self
    where
        I: IntoIterator<Item = (N, Option<ByteRange>, D)>,
        N: AsRef<str>,
        D: AsRef<[u8]>,
    {
        let mut m = Self::new();
        for (name, range, data) in segments {
            m.insert(name.as_ref(), range, data.as_ref());
        }
        m
    }

    /// Hashes `data` and records it for `file_name` (whole file when `range` is `None`), replacing
    /// a previous entry. A whole-file entry replaces any ranges of that file and vice versa.
    pub fn insert(&mut self, file_name: &str, range: Option<ByteRange>, data: &[u8]) {
        self.insert_digest(file_name, range, sha256(data));
    }

    /// Records a known digest for `file_name` (whole file when `range` is `None`).
    pub fn insert_digest(
        &mut self,
        file_name: &str,
        range: Option<ByteRange>,
        digest: Sha256Digest,
    ) {
        let name = file_name_of(file_name).to_owned();
        match range {
            None => {
                self.files.insert(name, FileHashes::Whole(digest));
            }
            Some(r) => {
                let entry = self
                    .files
                    .entry(name)
                    .or_insert_with(|| FileHashes::Ranges(BTreeMap::new()));
                match entry {
                    FileHashes::Ranges(map) => {
                        map.insert(r, digest);
                    }
                    FileHashes::Whole(_) => {
                        *entry = FileHashes::Ranges(BTreeMap::from([(r, digest)]))
                    }
                }
            }
        }
    }

    /// Forgets a file (live manifests drop segments that left the playlist). Returns whether it was listed.
    pub fn remove(&mut self, file_name: &str) -> bool {
        self.files.remove(file_name_of(file_name)).is_some()
    }

    /// Number of files listed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is listed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The digest listed for a file (or one of its ranges), if any.
    pub fn digest(&self, file_name: &str, range: Option<ByteRange>) -> Option<&Sha256Digest> {
        match (self.files.get(file_name_of(file_name))?, range) {
            (FileHashes::Whole(d), None) => Some(d),
            (FileHashes::Ranges(map), Some(r)) => map.get(&r),
            _ => None,
        }
    }

    /// Serializes to `segments-sha256.json` text (keys sorted, lowercase hex).
    pub fn to_json(&self) -> String {
        let mut top = serde_json::Map::new();
        for (name, hashes) in &self.files {
            let v = match hashes {
                FileHashes::Whole(d) => serde_json::Value::String(hex::encode(d)),
                FileHashes::Ranges(map) => serde_json::Value::Object(
                    map.iter()
                        .map(|(r, d)| (r.to_key(), serde_json::Value::String(hex::encode(d))))
                        .collect(),
                ),
            };
            top.insert(name.clone(), v);
        }
        serde_json::Value::Object(top).to_string()
    }

    /// Checks `data` against the manifest. `file_name` may be a URL or path (see [`file_name_of`]);
    /// `range` is the byte range the data covers, `None` for a whole-file segment.
    pub fn verify(&self, file_name: &str, range: Option<ByteRange>, data: &[u8]) -> Verification {
        match self.digest(file_name, range) {
            None => Verification::Unknown,
            Some(expected) if *expected == sha256(data) => Verification::Valid,
            Some(_) => Verification::Mismatch,
        }
    }
}
