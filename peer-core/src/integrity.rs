//! SHA-256 segment manifests in PeerTube's `segments-sha256.json` format.
//!
//! Two shapes exist, and one manifest may mix them:
//!
//! - per file: `{ "<segment file name>": "<sha256 hex>" }` (one file per segment, `.ts` or `.mp4`);
//! - per byte range: `{ "<file name>": { "<start>-<end>": "<sha256 hex>" } }` for fragmented MP4
//!   served as one file with byte ranges. `start` and `end` are byte offsets with the end
//!   *inclusive*, as in an HTTP `Range: bytes=start-end` header.
//!
//! Keys are bare file names: PeerTube's VOD writer (`updateSha256VODSegments` in `server/lib/hls.ts`)
//! keys by the video file name and `"<offset>-<offset + length - 1>"` for each
//! `#EXT-X-BYTERANGE:<length>@<offset>`, its live writer by the segment file's `basename`, and its
//! player looks segments up by the `basename` of the segment URL without the query string. Hashes
//! are lowercase hex (upper case is accepted on input). [`SegmentManifest::verify`] accepts a URL or a path and reduces it
//! to the file name the same way.

use crate::vecmap::VecMap;

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

    /// The range of `length` bytes starting at `offset` (an HLS `#EXT-X-BYTERANGE:<length>@<offset>`);
    /// `None` when `length` is 0 or the end overflows.
    pub fn from_offset_length(offset: u64, length: u64) -> Option<Self> {
        let end = offset.checked_add(length.checked_sub(1)?)?;
        Some(Self { start: offset, end })
    }

    /// Parses a manifest range key `"<start>-<end>"` (decimal, `start <= end`).
    pub fn parse_key(key: &str) -> Option<Self> {
        let (a, b) = key.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return None;
        }
        let start: u64 = a.parse().ok()?;
        let end: u64 = b.parse().ok()?;
        (start <= end).then_some(Self { start, end })
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
    Ranges(VecMap<ByteRange, Sha256Digest>),
}

/// A parsed (or computed) `segments-sha256.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentManifest {
    files: VecMap<String, FileHashes>,
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
    ByteRange::parse_key(key).ok_or_else(|| IntegrityError::BadRangeKey {
        file: truncate(file),
        key: truncate(key),
    })
}

impl SegmentManifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `segments-sha256.json` text. Unknown shapes are errors naming the bad entry. Keys
    /// that are paths or URLs are reduced to file names with [`file_name_of`].
    pub fn from_json(json: &[u8]) -> Result<Self, IntegrityError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| IntegrityError::Json(e.to_string()))?;
        let serde_json::Value::Object(top) = value else {
            return Err(IntegrityError::NotAnObject {
                what: "the top level".to_owned(),
                expected: "an object",
            });
        };
        let mut files = VecMap::new();
        for (name, v) in top {
            let hashes = match &v {
                serde_json::Value::String(_) => {
                    FileHashes::Whole(parse_hex(|| format!("file {name:?}"), &v)?)
                }
                serde_json::Value::Object(ranges) => {
                    let mut map = VecMap::new();
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
            files.insert(file_name_of(&name).to_owned(), hashes);
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
                    .get_or_insert_with(name, || FileHashes::Ranges(VecMap::new()));
                match entry {
                    FileHashes::Ranges(map) => {
                        map.insert(r, digest);
                    }
                    FileHashes::Whole(_) => {
                        *entry = FileHashes::Ranges(VecMap::from([(r, digest)]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// SHA-256 of "abc" (FIPS 180-2 test vector).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn r(start: u64, end: u64) -> Option<ByteRange> {
        Some(ByteRange { start, end })
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(hex::encode(sha256(b"abc")), ABC);
    }

    #[test]
    fn per_file_manifest_verifies() {
        let json = format!(
            r#"{{"segment-3.ts": "{ABC}", "other.ts": "{}"}}"#,
            "00".repeat(32)
        );
        let m = SegmentManifest::from_json(json.as_bytes()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.verify("segment-3.ts", None, b"abc"), Verification::Valid);
        assert_eq!(
            m.verify("segment-3.ts", None, b"abd"),
            Verification::Mismatch
        );
        assert_eq!(
            m.verify("segment-4.ts", None, b"abc"),
            Verification::Unknown
        );
        // A whole-file entry does not answer for a range of that file.
        assert_eq!(
            m.verify("segment-3.ts", r(0, 2), b"abc"),
            Verification::Unknown
        );
    }

    #[test]
    fn urls_and_paths_reduce_to_the_file_name() {
        let json = format!(r#"{{"segment-3.ts": "{ABC}", "hls/uuid/seg-4.ts": "{ABC}"}}"#);
        let m = SegmentManifest::from_json(json.as_bytes()).unwrap();
        assert_eq!(m.verify("seg-4.ts", None, b"abc"), Verification::Valid);
        for name in [
            "https://example.org/static/streaming-playlists/hls/uuid/segment-3.ts?token=x",
            "/var/www/hls/segment-3.ts",
            "segment-3.ts#t=1",
        ] {
            assert_eq!(m.verify(name, None, b"abc"), Verification::Valid, "{name}");
        }
        assert_eq!(file_name_of("a/b/c.mp4?x=/y"), "c.mp4");
        assert_eq!(file_name_of("dir/"), "");
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let json = format!(r#"{{"s.ts": "{}"}}"#, ABC.to_uppercase());
        let m = SegmentManifest::from_json(json.as_bytes()).unwrap();
        assert_eq!(m.verify("s.ts", None, b"abc"), Verification::Valid);
    }

    #[test]
    fn byte_range_manifest_as_peertube_writes_it() {
        // PeerTube hashes each #EXT-X-BYTERANGE:<length>@<offset> as key "<offset>-<offset+length-1>".
        let file: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let ranges = [(0u64, 1200u64), (1200, 2000), (3200, 1800)];
        let mut inner = serde_json::Map::new();
        for (offset, length) in ranges {
            let bytes = &file[offset as usize..(offset + length) as usize];
            inner.insert(
                format!("{}-{}", offset, offset + length - 1),
                serde_json::Value::String(hex::encode(sha256(bytes))),
            );
        }
        let json = serde_json::json!({ "abc-720-fragmented.mp4": inner }).to_string();
        let m = SegmentManifest::from_json(json.as_bytes()).unwrap();
        let range = ByteRange::from_offset_length(1200, 2000).unwrap();
        assert_eq!(
            range,
            ByteRange {
                start: 1200,
                end: 3199
            }
        );
        assert_eq!(range.len(), 2000);
        let name = "https://h/static/streaming-playlists/hls/u/abc-720-fragmented.mp4";
        assert_eq!(
            m.verify(name, Some(range), &file[1200..3200]),
            Verification::Valid
        );
        assert_eq!(
            m.verify(name, Some(range), &file[1201..3201]),
            Verification::Mismatch
        );
        // A range that is not listed (off by one at the end) is unknown, and so is the whole file.
        assert_eq!(
            m.verify(name, r(1200, 3200), &file[1200..3201]),
            Verification::Unknown
        );
        assert_eq!(m.verify(name, None, &file), Verification::Unknown);
    }

    #[test]
    fn computed_manifest_round_trips_through_json() {
        let m = SegmentManifest::from_segments([
            ("seg-1.ts", None, b"one".as_slice()),
            ("dir/seg-2.ts", None, b"two".as_slice()),
            ("v.mp4", r(0, 2), b"abc".as_slice()),
            ("v.mp4", r(3, 5), b"def".as_slice()),
        ]);
        let json = m.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["seg-1.ts"], hex::encode(sha256(b"one")));
        assert_eq!(value["seg-2.ts"], hex::encode(sha256(b"two")));
        assert_eq!(value["v.mp4"]["0-2"], ABC);
        assert_eq!(value["v.mp4"]["3-5"], hex::encode(sha256(b"def")));
        let back = SegmentManifest::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.verify("seg-2.ts", None, b"two"), Verification::Valid);
        assert_eq!(back.verify("v.mp4", r(3, 5), b"def"), Verification::Valid);
    }

    #[test]
    fn live_updates_insert_and_remove() {
        let mut m = SegmentManifest::new();
        m.insert("live/0-000012.ts", None, b"twelve");
        assert_eq!(
            m.verify("0-000012.ts", None, b"twelve"),
            Verification::Valid
        );
        assert!(m.remove("0-000012.ts"));
        assert!(!m.remove("0-000012.ts"));
        assert_eq!(
            m.verify("0-000012.ts", None, b"twelve"),
            Verification::Unknown
        );
        assert!(m.is_empty());
        // Whole-file and range entries of one file replace each other.
        m.insert("x.mp4", None, b"abc");
        m.insert("x.mp4", r(0, 2), b"abc");
        assert_eq!(m.verify("x.mp4", None, b"abc"), Verification::Unknown);
        assert_eq!(m.verify("x.mp4", r(0, 2), b"abc"), Verification::Valid);
        m.insert("x.mp4", None, b"abc");
        assert_eq!(m.verify("x.mp4", r(0, 2), b"abc"), Verification::Unknown);
        assert_eq!(m.digest("x.mp4", None), Some(&sha256(b"abc")));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |s: &str| SegmentManifest::from_json(s.as_bytes()).unwrap_err();
        assert!(matches!(err("{"), IntegrityError::Json(_)));
        assert!(matches!(err("[1,2]"), IntegrityError::NotAnObject { .. }));
        assert!(err("[1,2]").to_string().contains("top level"));
        let e = err(r#"{"a.ts": 5}"#);
        assert!(
            matches!(&e, IntegrityError::NotAnObject { what, .. } if what.contains("a.ts")),
            "{e}"
        );
        let e = err(r#"{"a.ts": "zz"}"#);
        assert!(
            matches!(&e, IntegrityError::BadHex { entry, .. } if entry.contains("a.ts")),
            "{e}"
        );
        // 63 hex digits.
        let e = err(&format!(r#"{{"a.ts": "{}"}}"#, &ABC[1..]));
        assert!(matches!(e, IntegrityError::BadHex { .. }));
        let e = err(&format!(
            r#"{{"a.mp4": {{"0-1": "{ABC}", "9-3": "{ABC}"}}}}"#
        ));
        assert_eq!(
            e,
            IntegrityError::BadRangeKey {
                file: "a.mp4".into(),
                key: "9-3".into()
            }
        );
        for key in [
            "",
            "-",
            "1-",
            "-1",
            "a-b",
            "1-2-3",
            "+1-2",
            " 1-2",
            "1-99999999999999999999",
        ] {
            let e = err(&format!(r#"{{"a.mp4": {{"{key}": "{ABC}"}}}}"#));
            assert!(
                matches!(e, IntegrityError::BadRangeKey { .. }),
                "{key:?}: {e}"
            );
        }
        let e = err(r#"{"a.mp4": {"0-1": 7}}"#);
        assert!(
            matches!(&e, IntegrityError::BadHex { entry, .. } if entry.contains("0-1")),
            "{e}"
        );
    }

    #[test]
    fn empty_manifest_is_valid_and_knows_nothing() {
        let m = SegmentManifest::from_json(b"{}").unwrap();
        assert!(m.is_empty());
        assert_eq!(m.verify("a.ts", None, b""), Verification::Unknown);
        assert_eq!(m.to_json(), "{}");
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SegmentManifest::from_json(&bytes);
        }

        #[test]
        fn verify_is_valid_exactly_for_the_hashed_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..500),
            other in proptest::collection::vec(any::<u8>(), 0..500),
            start in 0u64..1_000_000,
        ) {
            let range = ByteRange::from_offset_length(start, data.len().max(1) as u64);
            let m = SegmentManifest::from_segments([("f.mp4", range, &data)]);
            let m = SegmentManifest::from_json(m.to_json().as_bytes()).unwrap();
            prop_assert_eq!(m.verify("f.mp4", range, &data), Verification::Valid);
            let expected = if other == data { Verification::Valid } else { Verification::Mismatch };
            prop_assert_eq!(m.verify("f.mp4", range, &other), expected);
        }
    }
}
