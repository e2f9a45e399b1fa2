//! Test vectors written by the published p2p-media-loader 2.3.1 packages (and hls.js) running in
//! Node: `tests/js-vectors/generate.mjs` wrote `tests/fixtures/*.json`; the `pml-2.2` vectors
//! (`tests/fixtures/pml_2_2.json`) come from 2.2.2 through `tests/js-vectors/pml-2.2/generate.mjs`. Our decoder must read
//! their messages, our encoder must reproduce them byte for byte, and our stream identity must
//! give the same ids and info hashes.

use segswarm_core::id_scheme::{IdScheme, StreamKey};
use segswarm_core::stream::{
    generate_stream_short_id, master_playlist_streams, peer_id_from_picks, peer_id_prefix,
    segment_external_id, swarm_id_from_manifest_url, ShortIdProps, StreamIdentity, StreamType,
    PROTOCOL_PACKAGE_VERSION,
};
use segswarm_core::wire::{
    encode_command, encode_command_with_max, is_command_part, segment_chunks_with_max, Command,
    Incoming, MessageDecoder, MAX_MESSAGE_BYTES,
};
use serde_json::Value;
use sha1::{Digest, Sha1};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A JSON number, or a decimal string for integers beyond 2^53.
fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or_else(|| panic!("not an i64: {n}")),
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not an i64: {s}")),
        other => panic!("not an integer: {other}"),
    }
}

fn ids(v: Option<&Value>) -> Vec<i64> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(int).collect())
        .unwrap_or_default()
}

/// A p2p-media-loader command object (`{c, i, r, ...}`) as our [`Command`].
fn command(v: &Value) -> Command {
    let f = |name: &str| int(&v[name]);
    match v["c"].as_u64() {
        Some(0) => Command::SegmentsAnnouncement {
            loaded: ids(v.get("l")),
            loading_http: ids(v.get("p")),
        },
        Some(1) => Command::SegmentRequest {
            segment: f("i"),
            request: f("r"),
            byte_from: v.get("b").map(|b| int(b) as u64),
        },
        Some(2) => Command::SegmentData {
            segment: f("i"),
            request: f("r"),
            size: f("s") as u64,
        },
        Some(3) => Command::SegmentDataSendingCompleted {
            segment: f("i"),
            request: f("r"),
        },
        Some(4) => Command::SegmentAbsent {
            segment: f("i"),
            request: f("r"),
        },
        Some(5) => Command::CancelSegmentRequest {
            segment: f("i"),
            request: f("r"),
        },
        other => panic!("unknown command {other:?}"),
    }
}

#[test]
fn wire_messages_match_p2p_media_loader_byte_for_byte() {
    let fx = fixture("wire_commands.json");
    assert_eq!(
        fx["default_max_message"].as_u64(),
        Some(MAX_MESSAGE_BYTES as u64)
    );
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() > 100, "only {} cases", cases.len());
    let mut multi_part = 0;
    for case in cases {
        let name = format!("{} (max {})", case["name"], case["max_message"]);
        let max = case["max_message"].as_u64().expect("max_message") as usize;
        let cmd = command(&case["command"]);
        let expected: Vec<Vec<u8>> = case["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| hex::decode(m.as_str().expect("hex")).expect("hex"))
            .collect();
        if expected.len() > 1 {
            multi_part += 1;
        }

        // Our encoder reproduces the package's messages.
        assert_eq!(
            encode_command_with_max(&cmd, max),
            expected,
            "encode {name}"
        );
        if max == MAX_MESSAGE_BYTES {
            assert_eq!(encode_command(&cmd), expected, "encode_command {name}");
        }

        // Our decoder reads them as the package's own decoder did.
        let decoded_js = command(case.get("decoded").unwrap_or(&case["command"]));
        let decoded_js = match decoded_js {
            // The package omits `b` when it is 0; absent and 0 mean the same.
            Command::SegmentRequest {
                segment,
                request,
                byte_from: Some(0),
            } => Command::SegmentRequest {
                segment,
                request,
                byte_from: None,
            },
            other => other,
        };
        let mut decoder = MessageDecoder::new();
        let (last, init) = expected.split_last().expect("at least one message");
        for m in init {
            assert_eq!(decoder.push(m), Ok(None), "part of {name}");
        }
        assert_eq!(
            decoder.push(last),
            Ok(Some(Incoming::Command(decoded_js))),
            "decode {name}"
        );
    }
    assert!(multi_part >= 20, "only {multi_part} multi-part cases");
}

#[test]
fn command_part_detection_matches_is_command_chunk() {
    let fx = fixture("wire_commands.json");
    for case in fx["classify"].as_array().expect("classify") {
        let msg = hex::decode(case["message"].as_str().expect("hex")).expect("hex");
        assert_eq!(
            is_command_part(&msg),
            case["is_command"].as_bool().expect("bool"),
            "{}",
            case["message"]
        );
    }
}

#[test]
fn segment_upload_matches_peer_protocol() {
    let fx = fixture("segment_upload.json");
    let uploads = fx["uploads"].as_array().expect("uploads");
    assert!(uploads.len() >= 5);
    for up in uploads {
        let size = up["size"].as_u64().expect("size") as usize;
        let max = up["max_message"].as_u64().expect("max") as usize;
        let (segment, request) = (int(&up["segment"]), int(&up["request"]));
        let data: Vec<u8> = (0..size).map(|i| ((i * 7 + size) & 0xff) as u8).collect();

        // What we send for the same upload.
        let mut ours: Vec<Vec<u8>> = encode_command_with_max(
            &Command::SegmentData {
                segment,
                request,
                size: size as u64,
            },
            max,
        );
        ours.extend(segment_chunks_with_max(&data, max).map(<[u8]>::to_vec));
        ours.extend(encode_command_with_max(
            &Command::SegmentDataSendingCompleted { segment, request },
            max,
        ));

        let theirs = up["messages"].as_array().expect("messages");
        assert_eq!(ours.len(), theirs.len(), "size {size} max {max}");
        let mut decoder = MessageDecoder::new();
        let mut raw_bytes = 0;
        for (o, t) in ours.iter().zip(theirs) {
            if let Some(h) = t.get("command") {
                assert_eq!(hex::encode(o), h.as_str().expect("hex"), "size {size}");
                assert!(matches!(decoder.push(o), Ok(Some(Incoming::Command(_)))));
            } else {
                assert_eq!(o.len() as u64, t["raw_len"].as_u64().expect("len"));
                assert_eq!(
                    hex::encode(Sha1::digest(o)),
                    t["raw_sha1"].as_str().expect("sha1")
                );
                match decoder.push(o) {
                    Ok(Some(Incoming::SegmentBytes(b))) => raw_bytes += b.len(),
                    other => panic!("raw chunk decoded as {other:?}"),
                }
            }
        }
        assert_eq!(raw_bytes, size);
    }
}

/// A JavaScript value as the optional string p2p-media-loader's short id code reads.
fn opt_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        other => panic!("unexpected {other}"),
    }
}

fn short_id_props(v: &Value) -> ShortIdProps {
    let num = |name: &str| match v.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s == "NaN" => Some(f64::NAN),
        Some(other) => panic!("unexpected {name}: {other}"),
    };
    ShortIdProps {
        bitrate: num("bitrate"),
        codecs: opt_string(v.get("codecs")),
        width: num("width").map(|w| w as u64),
        height: num("height").map(|h| h as u64),
        language: opt_string(v.get("language")),
        channels: opt_string(v.get("channels")),
        name: opt_string(v.get("name")),
        frame_rate: opt_string(v.get("frameRate")),
        video_range: opt_string(v.get("videoRange")),
    }
}

fn stream_type(v: &Value) -> StreamType {
    match v.as_str() {
        Some("main") => StreamType::Main,
        Some("secondary") => StreamType::Secondary,
        other => panic!("stream type {other:?}"),
    }
}

#[test]
fn short_ids_match_generate_stream_short_id() {
    let fx = fixture("stream_ids.json");
    let cases = fx["short_ids"].as_array().expect("short_ids");
    assert!(cases.len() >= 15);
    for case in cases {
        let props = short_id_props(&case["props"]);
        assert_eq!(
            generate_stream_short_id(&props),
            case["short_id"].as_str().expect("short_id"),
            "{}",
            case["props"]
        );
    }
}

#[test]
fn swarm_ids_and_info_hashes_match() {
    let fx = fixture("stream_ids.json");
    for case in fx["swarms"].as_array().expect("swarms") {
        let id = StreamIdentity::new(
            case.get("swarm_id").and_then(Value::as_str),
            case["manifest_url"].as_str().expect("url"),
            stream_type(&case["type"]),
            case["short_id"].as_str().expect("short id").to_string(),
        );
        assert_eq!(id.stream_swarm_id, case["stream_swarm_id"], "{case}");
        assert_eq!(id.info_hash_str(), case["info_hash"], "{case}");
        // The same through the id scheme API (`pml-2.3`, the default).
        let swarm = IdScheme::default()
            .swarm(
                case.get("swarm_id").and_then(Value::as_str),
                None,
                case["manifest_url"].as_str().expect("url"),
            )
            .expect("swarm");
        let key = StreamKey {
            stream_type: id.stream_type,
            short_id: id.short_id.clone(),
            index: 0,
            resolution: None,
        };
        assert_eq!(IdScheme::Pml23.identity(swarm, key), id, "{case}");
    }
}

#[test]
fn multivariant_playlists_map_to_the_same_streams_as_hlsjs_glue() {
    let fx = fixture("stream_ids.json");
    for master in fx["hls_masters"].as_array().expect("hls_masters") {
        let name = master["name"].as_str().expect("name");
        let url = master["manifest_url"].as_str().expect("url");
        let ours = master_playlist_streams(master["text"].as_str().expect("text"));
        let theirs = master["streams"].as_array().expect("streams");
        assert_eq!(ours.len(), theirs.len(), "{name}: stream count");
        for (o, t) in ours.iter().zip(theirs) {
            let their_url = t["url"].as_str().expect("url");
            assert_eq!(o.stream_type, stream_type(&t["type"]), "{name}");
            // hls.js resolves URIs against the manifest URL; we keep them as written.
            assert!(
                their_url.ends_with(&o.uri) && (o.uri.is_empty() == their_url.is_empty()),
                "{name}: {} vs {their_url}",
                o.uri
            );
            let id = StreamIdentity::new(None, url, o.stream_type, o.short_id());
            assert_eq!(
                IdScheme::Pml23.identity(swarm_id_from_manifest_url(url), o.key()),
                id
            );
            assert_eq!(id.short_id, t["short_id"], "{name}: {}", o.uri);
            assert_eq!(id.stream_swarm_id, t["stream_swarm_id"], "{name}");
            assert_eq!(id.info_hash_str(), t["info_hash"], "{name}");
        }
    }
}

#[test]
fn segment_external_ids_match_live_and_vod() {
    let fx = fixture("stream_ids.json");
    for pl in fx["segment_ids"].as_array().expect("segment_ids") {
        let text = pl["text"].as_str().expect("text");
        // The few facts of a media playlist the id needs.
        let live = !text.contains("#EXT-X-ENDLIST");
        let media_sequence = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .map_or(0, |s| s.trim().parse().expect("sequence"));
        let uris: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(pl["live"].as_bool(), Some(live));
        assert_eq!(pl["media_sequence"].as_u64(), Some(media_sequence));
        let segments = pl["segments"].as_array().expect("segments");
        assert_eq!(segments.len(), uris.len());
        for (pos, (seg, uri)) in segments.iter().zip(&uris).enumerate() {
            assert!(seg["url"].as_str().expect("url").ends_with(uri));
            assert_eq!(
                segment_external_id(live, media_sequence, pos),
                int(&seg["external_id"]),
                "{} #{pos}",
                pl["name"]
            );
        }
    }
}

#[test]
fn peer_id_matches_with_the_same_random_draws() {
    let fx = fixture("stream_ids.json");
    let (major, minor) = PROTOCOL_PACKAGE_VERSION;
    let prefix = peer_id_prefix(major, minor);
    assert_eq!(fx["peer_id"]["prefix"], prefix.as_str());
    // Replay the package's Math.random() draws: index = floor(r * 62).
    let mut draws = fx["peer_id"]["randoms"]
        .as_array()
        .expect("randoms")
        .iter()
        .map(|r| r.as_f64().expect("f64"))
        .cycle();
    let id = peer_id_from_picks(&prefix, |n| {
        (draws.next().expect("draw") * n as f64) as usize
    });
    assert_eq!(id, fx["peer_id"]["id"].as_str().expect("id"));
    assert_eq!(swarm_id_from_manifest_url("a?b"), "a");
}

// ---------------------------------------------------------------- pml-2.2

/// `tests/fixtures/pml_2_2.json`, written by p2p-media-loader-core/-hlsjs 2.2.2
/// (`tests/js-vectors/pml-2.2/generate.mjs`).
fn pml_2_2() -> Value {
    let fx = fixture("pml_2_2.json");
    assert_eq!(fx["generator"]["p2p-media-loader-core"], "2.2.2");
    fx
}

#[test]
fn pml_2_2_swarm_ids_and_info_hashes_match() {
    let fx = pml_2_2();
    let swarms = fx["swarms"].as_array().expect("swarms");
    assert!(swarms.len() >= 50);
    for case in swarms {
        let swarm = IdScheme::Pml22
            .swarm(
                case.get("swarm_id").and_then(Value::as_str),
                None,
                case["manifest_url"].as_str().expect("url"),
            )
            .expect("pml-2.2 needs no uuid");
        let key = StreamKey {
            stream_type: stream_type(&case["type"]),
            short_id: String::new(),
            index: case["index"].as_u64().expect("index") as usize,
            resolution: None,
        };
        let id = IdScheme::Pml22.identity(swarm, key);
        assert_eq!(id.stream_swarm_id, case["stream_swarm_id"], "{case}");
        assert_eq!(id.info_hash_str(), case["info_hash"], "{case}");
    }
}

#[test]
fn pml_2_2_multivariant_playlists_map_to_the_same_stream_indexes() {
    let fx = pml_2_2();
    for master in fx["hls_masters"].as_array().expect("hls_masters") {
        let name = master["name"].as_str().expect("name");
        let url = master["manifest_url"].as_str().expect("url");
        let swarm = IdScheme::Pml22.swarm(None, None, url).expect("swarm");
        let ours = master_playlist_streams(master["text"].as_str().expect("text"));
        let theirs = master["streams"].as_array().expect("streams");
        assert_eq!(ours.len(), theirs.len(), "{name}: stream count");
        for (o, t) in ours.iter().zip(theirs) {
            assert_eq!(o.stream_type, stream_type(&t["type"]), "{name}");
            assert!(t["url"].as_str().expect("url").ends_with(&o.uri), "{name}");
            assert_eq!(
                o.index as u64,
                t["index"].as_u64().expect("index"),
                "{name}"
            );
            let id = IdScheme::Pml22.identity(swarm, o.key());
            assert_eq!(id.stream_swarm_id, t["stream_swarm_id"], "{name}");
            assert_eq!(id.info_hash_str(), t["info_hash"], "{name}");
        }
    }
}

#[test]
fn pml_2_2_peer_id_has_its_version_prefix() {
    let fx = pml_2_2();
    let prefix = IdScheme::Pml22.peer_id_prefix();
    assert_eq!(fx["peer_id"]["prefix"], prefix.as_str());
    let mut draws = fx["peer_id"]["randoms"]
        .as_array()
        .expect("randoms")
        .iter()
        .map(|r| r.as_f64().expect("f64"))
        .cycle();
    let id = peer_id_from_picks(&prefix, |n| {
        (draws.next().expect("draw") * n as f64) as usize
    });
    assert_eq!(id, fx["peer_id"]["id"].as_str().expect("id"));
}

/// p2p-media-loader 2.2.2 serializes every command exactly as 2.3.1 does (its
/// `p2p/commands/*` sources are the same): its messages equal 2.3.1's, our encoder's, and our
/// decoder reads them.
#[test]
fn pml_2_2_wire_commands_are_the_same_bytes_as_2_3_1() {
    let fx = pml_2_2();
    assert_eq!(fx["wire_same_as_2_3_1"], true);
    assert_eq!(
        fx["default_max_message"].as_u64(),
        Some(MAX_MESSAGE_BYTES as u64)
    );
    let newer = fixture("wire_commands.json");
    let newer_cases = newer["cases"].as_array().expect("cases");
    let cases = fx["wire_cases"].as_array().expect("wire_cases");
    assert_eq!(cases.len(), newer_cases.len());
    let sha1s = |messages: &[Vec<u8>]| -> Vec<String> {
        messages
            .iter()
            .map(|m| hex::encode(Sha1::digest(m)))
            .collect()
    };
    for case in cases {
        let name = format!("{} (max {})", case["name"], case["max_message"]);
        let max = case["max_message"].as_u64().expect("max_message") as usize;
        let same = newer_cases
            .iter()
            .find(|c| c["name"] == case["name"] && c["max_message"] == case["max_message"])
            .unwrap_or_else(|| panic!("{name}: not in wire_commands.json"));
        let newer_bytes: Vec<Vec<u8>> = same["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| hex::decode(m.as_str().expect("hex")).expect("hex"))
            .collect();
        let cmd = command(case.get("command").unwrap_or(&same["command"]));
        let ours = encode_command_with_max(&cmd, max);
        let theirs: Vec<Vec<u8>> = match case.get("messages") {
            Some(list) => list
                .as_array()
                .expect("messages")
                .iter()
                .map(|m| hex::decode(m.as_str().expect("hex")).expect("hex"))
                .collect(),
            None => {
                // Long: compared by length and SHA-1; the bytes are then ours.
                let lens: Vec<usize> = case["message_lens"]
                    .as_array()
                    .expect("message_lens")
                    .iter()
                    .map(|l| l.as_u64().expect("len") as usize)
                    .collect();
                let digests: Vec<&str> = case["message_sha1"]
                    .as_array()
                    .expect("message_sha1")
                    .iter()
                    .map(|d| d.as_str().expect("sha1"))
                    .collect();
                assert_eq!(
                    ours.iter().map(Vec::len).collect::<Vec<_>>(),
                    lens,
                    "{name}"
                );
                assert_eq!(sha1s(&ours), digests, "{name}");
                ours.clone()
            }
        };
        assert_eq!(theirs, newer_bytes, "2.2.2 vs 2.3.1: {name}");
        assert_eq!(ours, theirs, "encode {name}");
        let decoded = case.get("decoded").or(same.get("decoded"));
        let expected = match command(decoded.unwrap_or(&same["command"])) {
            Command::SegmentRequest {
                segment,
                request,
                byte_from: Some(0),
            } => Command::SegmentRequest {
                segment,
                request,
                byte_from: None,
            },
            other => other,
        };
        let mut decoder = MessageDecoder::new();
        let (last, init) = theirs.split_last().expect("at least one message");
        for m in init {
            assert_eq!(decoder.push(m), Ok(None), "part of {name}");
        }
        assert_eq!(
            decoder.push(last),
            Ok(Some(Incoming::Command(expected))),
            "decode {name}"
        );
    }
}
