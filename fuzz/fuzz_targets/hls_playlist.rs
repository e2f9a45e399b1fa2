//! Fuzzes segswarm-core's HLS playlist parsing: `hls::parse_media_playlist` (media playlists) and
//! `stream::master_playlist_streams` (multivariant playlists), then uses the result the way the
//! viewer and the engine do. Nothing may panic (`cargo fuzz` builds with debug assertions, so
//! overflow checks are on), and an accepted media playlist must hold sane values:
//!
//! - durations and target duration in `0..=MAX_DURATION_SECS` (larger ones are clamped), start
//!   times finite and in playlist order (also after `MediaPlaylist::align_to`, as on a reload);
//! - VOD ids are the playlist indices, sequences follow `#EXT-X-MEDIA-SEQUENCE`;
//! - byte ranges non-empty with `start < end`, the engine's view (`segment_infos`) carrying the
//!   same range and its size, the manifest key PeerTube writes for it (`ByteRange`) reading back
//!   as the same range, init sections indexing `init_sections`;
//! - the engine takes the segment list, a playhead and segment requests, then the refreshed list at
//!   the viewer's reload time, and asks over HTTP only for listed segments with their ranges.
//!
//! Every input is also read as a multivariant playlist, as the seeder reads one: stream positions
//! per type must run 0, 1, 2, …, and every id scheme (`pml-2.3`, `pml-2.2`, `peertube`) must give
//! each stream a tracker info hash of 20 ASCII characters.
//!
//! Input layout: the input as UTF-8 (invalid sequences replaced). A NUL character, if any, splits
//! it into an earlier playlist and a refreshed one; the refreshed one is aligned onto the earlier
//! one's timeline, as the viewer does on a reload.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use segswarm_core::engine::{Engine, EngineConfig, Input, Output};
use segswarm_core::hls::{
    is_master_playlist, parse_media_playlist, MediaPlaylist, MAX_DURATION_SECS,
};
use segswarm_core::id_scheme::IdScheme;
use segswarm_core::integrity::ByteRange;
use segswarm_core::stream::{master_playlist_streams, StreamType};
use segswarm_core::time::{secs, Instant};

const BASE: &str = "http://origin.test/videos/";
const MANIFEST_URL: &str = "https://origin.test/static/streaming-playlists/hls/master.m3u8?v=1";
const VIDEO_UUID: &str = "5e6d3a4c-2b1f-4c7e-9d0a-1f2e3d4c5b6a";

fn check_timeline(p: &MediaPlaylist) {
    let mut previous = f64::NEG_INFINITY;
    for s in &p.segments {
        assert!(s.start.is_finite(), "start {} of {}", s.start, s.uri);
        assert!(s.start >= previous, "start {} before {previous}", s.start);
        previous = s.start;
    }
    assert!(p.end().is_finite() && p.duration().is_finite());
}

fn check_media(p: &MediaPlaylist) {
    assert!((0.0..=MAX_DURATION_SECS).contains(&p.target_duration));
    let infos = p.segment_infos();
    assert_eq!(infos.len(), p.segments.len());
    for (i, (s, info)) in p.segments.iter().zip(&infos).enumerate() {
        assert!(
            (0.0..=MAX_DURATION_SECS).contains(&s.duration),
            "{}",
            s.duration
        );
        if !p.live {
            assert_eq!(s.id, i as i64);
        }
        assert_eq!(s.sequence, p.media_sequence.saturating_add(i as u64));
        assert!(s.init.is_none_or(|n| n < p.init_sections.len()));
        assert_eq!(
            (info.id, info.path.as_str(), info.start, info.duration),
            (s.id, s.uri.as_str(), s.start, s.duration)
        );
        assert_eq!(info.byte_range, s.byte_range);
        match &s.byte_range {
            None => assert_eq!(info.size_hint, None),
            Some(r) => {
                assert!(r.start < r.end, "empty range {r:?}");
                assert_eq!(info.size_hint, Some(r.end - r.start));
                // The manifest key of the range, as the engine looks it up.
                let key = ByteRange::from_offset_length(r.start, r.end - r.start)
                    .expect("a non-empty range has a manifest key");
                assert_eq!((key.start, key.end), (r.start, r.end - 1));
                assert_eq!(ByteRange::parse_key(&key.to_key()), Some(key));
            }
        }
        assert!(p.segment(s.id).is_some());
    }
    for init in &p.init_sections {
        assert!(init.byte_range.as_ref().is_none_or(|r| r.start < r.end));
    }
    check_timeline(p);
}

/// What the viewer does with playlists: the engine gets the first one, a playhead at its start
/// and the first segments wanted; at the reload time (`time::secs` of the target duration, at
/// least 0.5 s, as the viewer computes it) it gets the refreshed one, aligned, and the playhead
/// moves to its start. The engine may only ask over HTTP for listed segments, with their ranges.
fn play(earlier: Option<&MediaPlaylist>, p: &MediaPlaylist) {
    let first = earlier.unwrap_or(p);
    let now = Instant::now();
    let mut engine = Engine::new(EngineConfig::new(
        *b"-PM0203-fuzzfuzzfuzz",
        *b"segswarm-fuzz-swarm!",
        first.live,
        vec![BASE.into()],
    ));
    let mut steps = vec![(now, first)];
    let reload = secs(first.target_duration).max(Duration::from_millis(500));
    if earlier.is_some() {
        steps.push((now + reload, p));
    }
    for (at, playlist) in steps {
        engine.handle_input(Input::Playlist(playlist.segment_infos()), at);
        let start = playlist.segments.first().map_or(0.0, |s| s.start);
        engine.handle_input(Input::Playback(start), at);
        for s in playlist.segments.iter().take(3) {
            engine.handle_input(Input::WantSegment(s.id), at);
        }
        engine.handle_input(Input::Timer, at + Duration::from_millis(100));
        if let Some(t) = engine.poll_timeout() {
            engine.handle_input(Input::Timer, t);
        }
        while let Some(out) = engine.poll_output() {
            if let Output::HttpRequest {
                url, byte_range, ..
            } = out
            {
                let listed = [first, p].iter().flat_map(|p| &p.segments).any(|s| {
                    url == format!(
                        "{}/{}",
                        BASE.trim_end_matches('/'),
                        s.uri.trim_start_matches('/')
                    ) && s.byte_range == byte_range
                });
                assert!(
                    listed,
                    "request for {url} {byte_range:?} not in the playlist"
                );
            }
        }
    }
}

/// The streams of a multivariant playlist as the seeder takes them: positions per stream type
/// run 0, 1, 2, … (p2p-media-loader 2.2's stream index), and every id scheme gives each stream a
/// tracker info hash of 20 ASCII characters.
fn master(text: &str) {
    let streams = master_playlist_streams(text);
    for kind in [StreamType::Main, StreamType::Secondary] {
        let indices: Vec<usize> = streams
            .iter()
            .filter(|s| s.stream_type == kind)
            .map(|s| s.index)
            .collect();
        assert!(
            indices.iter().copied().eq(0..indices.len()),
            "{kind:?} indices {indices:?}"
        );
    }
    for stream in streams {
        for scheme in IdScheme::ALL {
            let swarm = scheme
                .swarm(None, Some(VIDEO_UUID), MANIFEST_URL)
                .expect("a valid uuid");
            let id = scheme.identity(swarm, stream.key());
            assert!(id.info_hash.is_ascii(), "{scheme}: {:?}", id.info_hash);
            assert_eq!(id.info_hash_str().len(), 20);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (earlier, text) = match text.split_once('\0') {
        Some((a, b)) => (Some(a), b),
        None => (None, &*text),
    };
    // The viewer asks `is_master_playlist` first; the streams are read from any text here, so
    // that attribute lists are fuzzed without an `#EXT-X-STREAM-INF` too.
    let _ = is_master_playlist(text);
    master(text);
    let Ok(mut p) = parse_media_playlist(text) else {
        return;
    };
    check_media(&p);
    let earlier = earlier.and_then(|t| parse_media_playlist(t).ok());
    if let Some(previous) = &earlier {
        check_media(previous);
        p.align_to(previous);
        check_timeline(&p);
    }
    play(earlier.as_ref(), &p);
});
