//! Hostile input reaching the engine: remote playlists with absurd numbers, and peers that abuse
//! the wire protocol. Nothing may panic (debug builds included) and abusers are counted.

use std::time::{Duration, Instant};

use segswarm_core::engine::{Engine, EngineConfig, SegmentInfo};
use segswarm_core::hls::{parse_media_playlist, MAX_DURATION_SECS, MAX_MEDIA_SEQUENCE};

fn engine(live: bool) -> Engine {
    Engine::new(EngineConfig::new(
        *b"-PM0203-hostile00000",
        *b"segswarm-test-swarm!",
        live,
        vec!["http://origin.test/".into()],
    ))
}

/// Takes everything the engine queued.
fn drain(e: &mut Engine) {
    while e.poll_transmit().is_some()
        || e.poll_rtc().is_some()
        || e.poll_http().is_some()
        || e.poll_event().is_some()
    {}
}

#[test]
fn a_playlist_with_huge_durations_is_clamped_and_played_without_panic() {
    // The largest media sequence accepted (larger ones are refused: segment ids must stay
    // distinct i64s).
    let text = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1e20\n#EXT-X-MEDIA-SEQUENCE:{MAX_MEDIA_SEQUENCE}\n\
         #EXTINF:1e20,\na.ts\n#EXTINF:4,\nb.ts\n"
    );
    let mut p = parse_media_playlist(&text).unwrap();
    assert_eq!(p.target_duration, MAX_DURATION_SECS);
    assert_eq!(p.segments[1].start, MAX_DURATION_SECS);
    // A refresh that jumps the whole sequence space stays on a finite timeline.
    let previous =
        parse_media_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nz.ts\n").unwrap();
    p.align_to(&previous);
    assert!(p.segments.iter().all(|s| s.start.is_finite()));

    let now = Instant::now();
    let mut e = engine(true);
    e.set_playlist(p.segment_infos(), now);
    e.set_playback(0.0, now);
    let far = p.segments[1].id;
    e.want_segment(far, now);
    e.handle_timeout(now + Duration::from_secs(1));
    drain(&mut e);
}

#[test]
fn segment_times_from_the_page_that_overflow_do_not_panic() {
    let now = Instant::now();
    let mut e = engine(false);
    let seg = |id, start| SegmentInfo {
        id,
        path: format!("{id}.ts"),
        start,
        duration: f64::INFINITY,
        size_hint: None,
        byte_range: None,
    };
    e.set_playlist(vec![seg(0, 0.0), seg(1, 1e300), seg(2, f64::NAN)], now);
    e.set_playback(-1e300, now);
    for id in 0..3 {
        e.want_segment(id, now);
    }
    e.handle_timeout(now + Duration::from_secs(1));
    drain(&mut e);
}
