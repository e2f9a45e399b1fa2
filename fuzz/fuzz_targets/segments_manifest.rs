//! Fuzzes segswarm-core's `segments-sha256.json` parser (`integrity::SegmentManifest::from_json`):
//! nothing may panic, and an accepted manifest must
//!
//! - serialize (`to_json`) to text that parses to the same manifest and serializes the same again
//!   (keys reduced to file names, range keys canonical, hex lowercase);
//! - give every listed hash back where the engine looks it up: by file name, by the segment's URL
//!   (with a directory and a query), by range for byte-range files (the range an
//!   `#EXT-X-BYTERANGE:<length>@<offset>` names), and never for the other shape;
//! - answer `verify` for a listed entry with `Valid` or `Mismatch`, never `Unknown`.
//!
//! Input layout: the whole input is the manifest file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use segswarm_core::integrity::{ByteRange, SegmentManifest, Sha256Digest, Verification};
use serde_json::Value;

fn hex(d: &Sha256Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(m) = SegmentManifest::from_json(data) else {
        return;
    };
    let json = m.to_json();
    let again = SegmentManifest::from_json(json.as_bytes()).expect("to_json output parses");
    assert_eq!(again, m);
    assert_eq!(again.to_json(), json);

    let v: Value = serde_json::from_str(&json).expect("to_json output is JSON");
    let files = v.as_object().expect("the top level is an object");
    assert_eq!(files.len(), m.len());
    for (name, hashes) in files {
        assert!(
            !name.contains(['/', '?', '#']),
            "key {name:?} is not a file name"
        );
        let url = format!("https://cdn.test/static/streaming-playlists/hls/{name}?v=2#t=1");
        match hashes {
            Value::String(h) => {
                let d = m.digest(name, None).expect("whole-file hash listed");
                assert_eq!(&hex(d), h);
                assert_eq!(m.digest(&url, None), Some(d));
                assert_eq!(m.digest(name, Some(ByteRange { start: 0, end: 0 })), None);
                assert_ne!(m.verify(&url, None, b"segment"), Verification::Unknown);
            }
            Value::Object(ranges) => {
                assert_eq!(m.digest(name, None), None);
                for (key, h) in ranges {
                    let r = ByteRange::parse_key(key).expect("range key parses");
                    assert_eq!(&r.to_key(), key);
                    let d = m.digest(&url, Some(r)).expect("range hash listed");
                    assert_eq!(&hex(d), h.as_str().expect("hash is a string"));
                    // The range as a playlist gives it (length at offset), where it fits in u64.
                    if r.end - r.start < u64::MAX {
                        let len = r.end - r.start + 1;
                        assert_eq!(r.len(), len);
                        assert_eq!(ByteRange::from_offset_length(r.start, len), Some(r));
                    }
                    assert_ne!(m.verify(name, Some(r), b""), Verification::Unknown);
                }
            }
            other => panic!("{name:?} listed as {other}"),
        }
    }
});
