//! HLS media playlists (RFC 8216 §4.3): the parse a viewer or a seeder needs to turn a playlist
//! into the engine's segment list.
//!
//! [`parse_media_playlist`] reads `#EXTM3U`, `#EXT-X-TARGETDURATION`, `#EXT-X-MEDIA-SEQUENCE`,
//! `#EXTINF`, `#EXT-X-BYTERANGE`, `#EXT-X-MAP`, `#EXT-X-PLAYLIST-TYPE` and `#EXT-X-ENDLIST`; other
//! tags are skipped. Segment ids are the wire ids p2p-media-loader 2.3 uses
//! ([`crate::stream::segment_external_id`]): the media sequence number for live playlists (no
//! `#EXT-X-ENDLIST`), the index within the playlist for VOD. Errors name the 1-based line.
//!
//! Byte-range segments (`#EXT-X-BYTERANGE:<length>[@<offset>]`, e.g. PeerTube's one
//! `*-fragmented.mp4` per resolution, or ffmpeg's `-hls_flags single_file`) get the same wire ids:
//! p2p-media-loader's hls.js glue keys its *runtime* id by URL and range
//! (`<url>|<first>-<last byte>`), but what goes on the wire is still the sequence number or the
//! playlist index. Without an offset, a range starts where the previous segment's range ended,
//! which must be a range of the same URI (RFC 8216 §4.3.2.2). The `#EXT-X-MAP` initialization
//! section is noted per segment ([`MediaSegment::init`]); it is not a segment: players load it
//! themselves, it is never shared between peers.
//!
//! Segment start times run from 0 at the playlist's first segment. A live playlist's window
//! slides, so [`MediaPlaylist::align_to`] shifts a refreshed playlist onto the timeline of the
//! previous one.
//!
//! Sans-IO: text in, values out.

use std::ops::Range;

use crate::engine::SegmentInfo;
use crate::stream::segment_external_id;
use crate::wire::SegmentId;

/// Why a playlist was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlsError {
    /// The text does not start with `#EXTM3U`.
    #[error("line 1: not an HLS playlist (no #EXTM3U)")]
    NotAPlaylist,
    /// A multivariant (master) playlist where a media playlist was expected.
    #[error("line {line}: a multivariant playlist (#EXT-X-STREAM-INF), not a media playlist")]
    MasterPlaylist {
        /// The line of the first `#EXT-X-STREAM-INF`.
        line: usize,
    },
    /// A tag whose value cannot be read.
    #[error("line {line}: {tag}: {problem}")]
    BadTag {
        /// 1-based line number.
        line: usize,
        /// The tag (`#EXTINF`, ...).
        tag: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A segment URI without `#EXTINF` before it.
    #[error("line {line}: segment URI {uri:?} without #EXTINF")]
    MissingExtinf {
        /// 1-based line number.
        line: usize,
        /// The URI.
        uri: String,
    },
    /// More segments than [`MAX_SEGMENTS`].
    #[error("line {line}: more than {max} segments")]
    TooManySegments {
        /// 1-based line number.
        line: usize,
        /// The limit.
        max: usize,
    },
}

/// Most segments accepted in one playlist (a 24-hour VOD of 2-second segments has 43 200).
pub const MAX_SEGMENTS: usize = 1_000_000;

/// Largest `#EXT-X-MEDIA-SEQUENCE` accepted: every segment id (media sequence + position) stays a
/// distinct non-negative `i64`.
pub const MAX_MEDIA_SEQUENCE: u64 = i64::MAX as u64 - MAX_SEGMENTS as u64;

/// Longest `#EXTINF` or `#EXT-X-TARGETDURATION` kept, seconds (one day): larger values are
/// clamped to it at parse time, so that start times stay finite and convert to a `Duration`.
pub const MAX_DURATION_SECS: f64 = 86_400.0;

/// The `#EXT-X-MAP` initialization section (fMP4 streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSection {
    /// Its URI as written.
    pub uri: String,
    /// Its byte range within the resource, end exclusive.
    pub byte_range: Option<Range<u64>>,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSegment {
    /// Wire id (media sequence for live, playlist index for VOD).
    pub id: SegmentId,
    /// Media sequence number (`#EXT-X-MEDIA-SEQUENCE` + index), whatever the playlist type.
    pub sequence: u64,
    /// URI as written in the playlist (relative to the playlist URL, or absolute).
    pub uri: String,
    /// Duration from `#EXTINF`, seconds.
    pub duration: f64,
    /// Start on the playlist's timeline, seconds (see the module documentation).
    pub start: f64,
    /// Byte range within the resource from `#EXT-X-BYTERANGE`, end exclusive.
    pub byte_range: Option<Range<u64>>,
    /// Index into [`MediaPlaylist::init_sections`] of the `#EXT-X-MAP` in force, if any.
    pub init: Option<usize>,
}

impl MediaSegment {
    /// The engine's view of the segment, with `path` = the URI as written.
    pub fn info(&self) -> SegmentInfo {
        SegmentInfo {
            id: self.id,
            path: self.uri.clone(),
            start: self.start,
            duration: self.duration,
            size_hint: self.byte_range.as_ref().map(|r| r.end - r.start),
            byte_range: self.byte_range.clone(),
        }
    }
}

/// A parsed media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-TARGETDURATION`, seconds (0 if missing).
    pub target_duration: f64,
    /// `#EXT-X-MEDIA-SEQUENCE` (0 if missing).
    pub media_sequence: u64,
    /// No `#EXT-X-ENDLIST`: the playlist grows and must be reloaded (as hls.js decides).
    pub live: bool,
    /// `#EXT-X-PLAYLIST-TYPE` as written (`VOD`, `EVENT`), if present.
    pub playlist_type: Option<String>,
    /// The segments in playlist order.
    pub segments: Vec<MediaSegment>,
    /// The `#EXT-X-MAP` sections met, in order.
    pub init_sections: Vec<InitSection>,
}

impl MediaPlaylist {
    /// The segments as the engine takes them ([`crate::engine::Engine::set_playlist`]).
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        self.segments.iter().map(MediaSegment::info).collect()
    }

    /// Total duration of the listed segments, seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// The end of the last segment on the playlist's timeline (the live edge), seconds.
    pub fn end(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.start + s.duration)
    }

    /// The segment with this wire id.
    pub fn segment(&self, id: SegmentId) -> Option<&MediaSegment> {
        self.segments.iter().find(|s| s.id == id)
    }

    /// Shifts this (refreshed) playlist's start times onto the timeline of `previous`: a segment
    /// both list keeps its old start; if none is shared, the segments continue after the old last
    /// one, each missing sequence number counted as one target duration. VOD ids (playlist
    /// indices) are not comparable across reloads, so only live playlists are shifted.
    pub fn align_to(&mut self, previous: &MediaPlaylist) {
        if !self.live || !previous.live {
            return;
        }
        let shared = self.segments.iter().find_map(|s| {
            previous
                .segments
                .iter()
                .find(|p| p.sequence == s.sequence)
                .map(|p| p.start - s.start)
        });
        let shift = match (shared, self.segments.first(), previous.segments.last()) {
            (Some(shift), _, _) => shift,
            (None, Some(first), Some(last)) if first.sequence > last.sequence => {
                // At most MAX_SEGMENTS missing segments are counted: a jump of 2^64 stays finite.
                let missing = (first.sequence - last.sequence - 1).min(MAX_SEGMENTS as u64);
                let gap = missing as f64 * self.target_duration;
                last.start + last.duration + gap - first.start
            }
            // The window went backwards (stream restarted) or is empty: keep the new timeline
            // after the old end so positions never go back.
            (None, Some(first), Some(_)) => previous.end() - first.start,
            _ => 0.0,
        };
        let shift = if shift.is_finite() { shift } else { 0.0 };
        for s in &mut self.segments {
            s.start += shift;
        }
    }
}

/// Whether `text` is a multivariant (master) playlist.
pub fn is_master_playlist(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("#EXT-X-STREAM-INF"))
}

fn bad(line: usize, tag: &'static str, problem: impl Into<String>) -> HlsError {
    HlsError::BadTag {
        line,
        tag,
        problem: problem.into(),
    }
}

/// `n[@o]`: a byte range; without `o` it starts where the previous range of the same resource
/// ended (`None` if there is no such range).
fn parse_byte_range(
    value: &str,
    line: usize,
    tag: &'static str,
    previous_end: Option<u64>,
) -> Result<Range<u64>, HlsError> {
    let (len, offset) = match value.split_once('@') {
        Some((l, o)) => (l, Some(o)),
        None => (value, None),
    };
    let len: u64 = len
        .trim()
        .parse()
        .map_err(|_| bad(line, tag, format!("length {len:?} is not a number")))?;
    if len == 0 {
        return Err(bad(line, tag, "empty range (length 0)"));
    }
    let start = match offset {
        Some(o) => o
            .trim()
            .parse()
            .map_err(|_| bad(line, tag, format!("offset {o:?} is not a number")))?,
        None => previous_end.ok_or_else(|| bad(line, tag, "no offset and no previous range"))?,
    };
    let end = start
        .checked_add(len)
        .ok_or_else(|| bad(line, tag, "range past 2^64"))?;
    Ok(start..end)
}

/// A segment as read, before ids and start times are known.
struct RawSegment {
    uri: String,
    duration: f64,
    byte_range: Option<Range<u64>>,
    init: Option<usize>,
}

/// Parses a media playlist. See the module documentation.
pub fn parse_media_playlist(text: &str) -> Result<MediaPlaylist, HlsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    match lines.next() {
        Some((_, first)) if first.starts_with("#EXTM3U") => {}
        _ => return Err(HlsError::NotAPlaylist),
    }
    let mut target_duration = 0.0;
    let mut media_sequence = 0u64;
    let mut ended = false;
    let mut playlist_type = None;
    let mut init_sections: Vec<InitSection> = Vec::new();
    // Segments in order; ids are assigned at the end because
    // `#EXT-X-ENDLIST`, which decides between live and VOD ids, comes last.
    let mut raw: Vec<RawSegment> = Vec::new();
    let mut extinf: Option<f64> = None;
    // A pending `#EXT-X-BYTERANGE`: (length, offset if given, its line).
    let mut byte_range: Option<(u64, Option<u64>, usize)> = None;
    // The previous segment's URI and range end, for ranges without an offset.
    let mut last_range: Option<(String, u64)> = None;
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        if let Some(tag) = line.strip_prefix('#') {
            let (name, value) = match tag.split_once(':') {
                Some((a, b)) => (a, b.trim()),
                None => (tag, ""),
            };
            match name {
                "EXT-X-STREAM-INF" => return Err(HlsError::MasterPlaylist { line: n }),
                "EXT-X-TARGETDURATION" => {
                    target_duration = value
                        .parse::<f64>()
                        .ok()
                        .filter(|v| !v.is_nan() && *v >= 0.0)
                        .ok_or_else(|| {
                            bad(
                                n,
                                "#EXT-X-TARGETDURATION",
                                format!("{value:?} is not a duration"),
                            )
                        })?
                        .min(MAX_DURATION_SECS);
                }
                "EXT-X-MEDIA-SEQUENCE" => {
                    media_sequence = value
                        .parse()
                        .ok()
                        .filter(|&s| s <= MAX_MEDIA_SEQUENCE)
                        .ok_or_else(|| {
                            bad(
                                n,
                                "#EXT-X-MEDIA-SEQUENCE",
                                format!("{value:?} is not a number up to {MAX_MEDIA_SEQUENCE}"),
                            )
                        })?;
                }
                "EXT-X-ENDLIST" => ended = true,
                "EXT-X-PLAYLIST-TYPE" => playlist_type = Some(value.to_owned()),
                "EXTINF" => {
                    let d = value.split(',').next().unwrap_or("").trim();
                    let d: f64 = d
                        .parse()
                        .ok()
                        .filter(|v: &f64| !v.is_nan() && *v >= 0.0)
                        .ok_or_else(|| bad(n, "#EXTINF", format!("{d:?} is not a duration")))?
                        .min(MAX_DURATION_SECS);
                    extinf = Some(d);
                }
                "EXT-X-BYTERANGE" => {
                    // The offset-less form continues the previous range of the same URI, which
                    // is only known at the URI line: resolved there.
                    let (len, off) = match value.split_once('@') {
                        Some((l, o)) => (l, Some(o)),
                        None => (value, None),
                    };
                    let r = parse_byte_range(
                        &format!("{len}@{}", off.unwrap_or("0")),
                        n,
                        "#EXT-X-BYTERANGE",
                        None,
                    )?;
                    byte_range = Some((r.end - r.start, off.map(|_| r.start), n));
                }
                "EXT-X-MAP" => {
                    let attrs = crate::stream::parse_attributes(value);
                    let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
                    let uri = get("URI")
                        .filter(|u| !u.is_empty())
                        .ok_or_else(|| bad(n, "#EXT-X-MAP", "no URI"))?
                        .to_owned();
                    let range = get("BYTERANGE")
                        .map(|r| parse_byte_range(r, n, "#EXT-X-MAP", Some(0)))
                        .transpose()?;
                    init_sections.push(InitSection {
                        uri,
                        byte_range: range,
                    });
                }
                _ => {}
            }
            continue;
        }
        // A URI line.
        let Some(duration) = extinf.take() else {
            return Err(HlsError::MissingExtinf {
                line: n,
                uri: line.to_owned(),
            });
        };
        if raw.len() >= MAX_SEGMENTS {
            return Err(HlsError::TooManySegments {
                line: n,
                max: MAX_SEGMENTS,
            });
        }
        let range = match byte_range.take() {
            None => None,
            Some((len, offset, tag_line)) => {
                let start = match (offset, &last_range) {
                    (Some(o), _) => o,
                    (None, Some((uri, end))) if uri == line => *end,
                    (None, _) => {
                        return Err(bad(
                            tag_line,
                            "#EXT-X-BYTERANGE",
                            "no offset and no previous range of the same URI",
                        ))
                    }
                };
                let end = start
                    .checked_add(len)
                    .ok_or_else(|| bad(tag_line, "#EXT-X-BYTERANGE", "range past 2^64"))?;
                Some(start..end)
            }
        };
        last_range = range.as_ref().map(|r| (line.to_owned(), r.end));
        let init = init_sections.len().checked_sub(1);
        raw.push(RawSegment {
            uri: line.to_owned(),
            duration,
            byte_range: range,
            init,
        });
    }
    let live = !ended;
    let mut start = 0.0;
    let segments = raw
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let s = MediaSegment {
                id: segment_external_id(live, media_sequence, i),
                sequence: media_sequence.saturating_add(i as u64),
                uri: r.uri,
                duration: r.duration,
                start,
                byte_range: r.byte_range,
                init: r.init,
            };
            start += r.duration;
            s
        })
        .collect();
    Ok(MediaPlaylist {
        target_duration,
        media_sequence,
        live,
        playlist_type,
        segments,
        init_sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by ffmpeg 7 (`-f lavfi -i testsrc=size=320x240:rate=25 -c:v libx264 -f hls`),
    // verbatim.
    const FFMPEG_VOD: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:4.000000,\nindex0.ts\n\
#EXTINF:4.000000,\nindex1.ts\n#EXTINF:4.000000,\nindex2.ts\n#EXT-X-ENDLIST\n";
    // `-hls_time 2 -hls_list_size 3`, captured while ffmpeg was still writing (no ENDLIST).
    const FFMPEG_LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.000000,\nindex7.ts\n#EXTINF:2.000000,\nindex8.ts\n\
#EXTINF:2.000000,\nindex9.ts\n";
    // `-hls_segment_type fmp4`.
    const FFMPEG_FMP4: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000000,\nindex0.m4s\n\
#EXTINF:4.000000,\nindex1.m4s\n#EXT-X-ENDLIST\n";
    // `-hls_flags single_file`.
    const FFMPEG_SINGLE_FILE: &str = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.000000,\n#EXT-X-BYTERANGE:37600@0\nindex.ts\n\
#EXTINF:4.000000,\n#EXT-X-BYTERANGE:37036@37600\nindex.ts\n#EXT-X-ENDLIST\n";
    // Debian ffmpeg 5.1.9, PeerTube's layout: `-hls_segment_type fmp4 -hls_flags single_file
    // -hls_playlist_type vod -hls_segment_filename video-fragmented.mp4`, verbatim.
    const FFMPEG_FMP4_SINGLE_FILE: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n\
#EXT-X-MAP:URI=\"video-fragmented.mp4\",BYTERANGE=\"813@0\"\n\
#EXTINF:4.000000,\n#EXT-X-BYTERANGE:87495@813\nvideo-fragmented.mp4\n\
#EXTINF:4.000000,\n#EXT-X-BYTERANGE:87223@88308\nvideo-fragmented.mp4\n\
#EXTINF:4.000000,\n#EXT-X-BYTERANGE:88429@175531\nvideo-fragmented.mp4\n#EXT-X-ENDLIST\n";
    // The same ffmpeg live (`-hls_list_size 3`, `single_file+delete_segments`), captured while
    // it was writing: the window has slid but ffmpeg 5.1 leaves the media sequence at 0.
    const FFMPEG_FMP4_SINGLE_FILE_LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-MAP:URI=\"live-fragmented.mp4\",BYTERANGE=\"814@0\"\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:36279@72135\nlive-fragmented.mp4\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:35396@108414\nlive-fragmented.mp4\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:36073@143810\nlive-fragmented.mp4\n";

    #[test]
    fn ffmpeg_vod_playlist() {
        let p = parse_media_playlist(FFMPEG_VOD).unwrap();
        assert!(!p.live);
        assert_eq!(p.target_duration, 4.0);
        assert_eq!(p.playlist_type.as_deref(), Some("VOD"));
        let infos = p.segment_infos();
        let ids: Vec<i64> = infos.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        let paths: Vec<&str> = infos.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, vec!["index0.ts", "index1.ts", "index2.ts"]);
        let starts: Vec<f64> = infos.iter().map(|s| s.start).collect();
        assert_eq!(starts, vec![0.0, 4.0, 8.0]);
        assert_eq!(p.duration(), 12.0);
        assert!(infos.iter().all(|s| s.size_hint.is_none()));
    }

    #[test]
    fn media_sequences_past_the_id_range_are_refused() {
        let playlist = |seq: u64| {
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n")
        };
        let p = parse_media_playlist(&playlist(MAX_MEDIA_SEQUENCE)).unwrap();
        assert!(p.segments[1].id > p.segments[0].id && p.segments[0].id > 0);
        for seq in [MAX_MEDIA_SEQUENCE + 1, i64::MAX as u64, u64::MAX] {
            let err = parse_media_playlist(&playlist(seq))
                .unwrap_err()
                .to_string();
            assert!(err.contains("EXT-X-MEDIA-SEQUENCE"), "{err}");
        }
    }

    #[test]
    fn ffmpeg_live_playlist_uses_media_sequence_ids() {
        let p = parse_media_playlist(FFMPEG_LIVE).unwrap();
        assert!(p.live);
        assert_eq!(p.media_sequence, 7);
        let ids: Vec<i64> = p.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![7, 8, 9]);
        assert_eq!(p.end(), 6.0);
    }

    #[test]
    fn vod_with_media_sequence_uses_playlist_index() {
        let text = FFMPEG_VOD.replace("SEQUENCE:0", "SEQUENCE:40");
        let p = parse_media_playlist(&text).unwrap();
        let ids: Vec<i64> = p.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(p.segments[2].sequence, 42);
    }

    #[test]
    fn ffmpeg_fmp4_notes_the_init_section() {
        let p = parse_media_playlist(FFMPEG_FMP4).unwrap();
        assert_eq!(
            p.init_sections,
            vec![InitSection {
                uri: "init.mp4".into(),
                byte_range: None
            }]
        );
        assert!(p.segments.iter().all(|s| s.init == Some(0)));
    }

    #[test]
    fn ffmpeg_single_file_byte_ranges() {
        let p = parse_media_playlist(FFMPEG_SINGLE_FILE).unwrap();
        assert_eq!(p.segments[0].byte_range, Some(0..37600));
        assert_eq!(p.segments[1].byte_range, Some(37600..74636));
        assert_eq!(p.segment_infos()[1].size_hint, Some(37036));
    }

    #[test]
    fn ffmpeg_single_file_fmp4_as_peertube_serves_it() {
        let p = parse_media_playlist(FFMPEG_FMP4_SINGLE_FILE).unwrap();
        assert!(!p.live);
        assert_eq!(
            p.init_sections,
            vec![InitSection {
                uri: "video-fragmented.mp4".into(),
                byte_range: Some(0..813),
            }]
        );
        // VOD wire ids are playlist indices, whatever the ranges (p2p-media-loader's externalId).
        let ids: Vec<i64> = p.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        let ranges: Vec<_> = p.segments.iter().map(|s| s.byte_range.clone()).collect();
        assert_eq!(
            ranges,
            vec![Some(813..88308), Some(88308..175531), Some(175531..263960)]
        );
        assert!(p.segments.iter().all(|s| s.init == Some(0)));
        // The engine gets the range (fetched with Range, verified by range) and its size.
        let infos = p.segment_infos();
        assert_eq!(infos[2].path, "video-fragmented.mp4");
        assert_eq!(infos[2].byte_range, Some(175531..263960));
        assert_eq!(infos[2].size_hint, Some(88429));
        assert_eq!(p.duration(), 12.0);
    }

    #[test]
    fn ffmpeg_single_file_fmp4_live_uses_the_media_sequence_as_written() {
        let p = parse_media_playlist(FFMPEG_FMP4_SINGLE_FILE_LIVE).unwrap();
        assert!(p.live);
        let ids: Vec<i64> = p.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(p.segments[0].byte_range, Some(72135..108414));
        assert_eq!(p.init_sections[0].byte_range, Some(0..814));
        // With a media sequence, live ids follow it (hls.js `sn`), byte ranges or not.
        let moved = FFMPEG_FMP4_SINGLE_FILE_LIVE.replace("SEQUENCE:0", "SEQUENCE:36");
        let p = parse_media_playlist(&moved).unwrap();
        let ids: Vec<i64> = p.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![36, 37, 38]);
    }

    #[test]
    fn init_sections_change_mid_playlist_and_default_to_offset_zero() {
        // Written by hand: two renditions' init sections, a MAP range without offset (from
        // byte 0, as hls.js reads it), and a segment before any MAP.
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nplain.mp4\n\
#EXT-X-MAP:URI=\"a.mp4\",BYTERANGE=\"700\"\n#EXTINF:4,\n#EXT-X-BYTERANGE:1000@700\na.mp4\n\
#EXTINF:4,\n#EXT-X-BYTERANGE:500\na.mp4\n\
#EXT-X-MAP:URI=\"b/init.mp4\"\n#EXTINF:4,\nb/0.m4s\n#EXT-X-ENDLIST\n";
        let p = parse_media_playlist(text).unwrap();
        assert_eq!(
            p.init_sections,
            vec![
                InitSection {
                    uri: "a.mp4".into(),
                    byte_range: Some(0..700)
                },
                InitSection {
                    uri: "b/init.mp4".into(),
                    byte_range: None
                },
            ]
        );
        let inits: Vec<Option<usize>> = p.segments.iter().map(|s| s.init).collect();
        assert_eq!(inits, vec![None, Some(0), Some(0), Some(1)]);
        assert_eq!(p.segments[2].byte_range, Some(1700..2200));
        assert_eq!(p.segments[3].byte_range, None);
        let e = parse_media_playlist("#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n").unwrap_err();
        assert!(e.to_string().contains("#EXT-X-MAP: no URI"), "{e}");
    }

    #[test]
    fn peertube_style_playlist_written_by_hand() {
        // As PeerTube's VOD transcoding writes it: a UUID-named fragmented MP4 per resolution,
        // relative URIs, ranges with offsets.
        let file = "5e6d3a4c-2b1f-4c7e-9d0a-1f2e3d4c5b6a-480-fragmented.mp4";
        let text = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"{file}\",BYTERANGE=\"1241@0\"\n\
#EXTINF:4.004000,\n#EXT-X-BYTERANGE:250000@1241\n{file}\n\
#EXTINF:3.003000,\n#EXT-X-BYTERANGE:180000@251241\n{file}\n#EXT-X-ENDLIST\n"
        );
        let p = parse_media_playlist(&text).unwrap();
        assert_eq!(p.segments[1].id, 1);
        assert_eq!(p.segments[1].uri, file);
        assert_eq!(p.segments[1].byte_range, Some(251241..431241));
        assert!((p.segments[1].start - 4.004).abs() < 1e-9);
        // The manifest key PeerTube writes for that range.
        let r = p.segments[1].byte_range.clone().unwrap();
        let key = crate::integrity::ByteRange::from_offset_length(r.start, r.end - r.start)
            .unwrap()
            .to_key();
        assert_eq!(key, "251241-431240");
    }

    #[test]
    fn byte_range_without_offset_continues_the_same_uri() {
        let text = "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@50\na.ts\n\
#EXTINF:2,\n#EXT-X-BYTERANGE:30\na.ts\n#EXT-X-ENDLIST\n";
        let p = parse_media_playlist(text).unwrap();
        assert_eq!(p.segments[1].byte_range, Some(150..180));
        let text = "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@50\na.ts\n\
#EXTINF:2,\n#EXT-X-BYTERANGE:30\nb.ts\n";
        let e = parse_media_playlist(text).unwrap_err();
        assert!(matches!(e, HlsError::BadTag { line: 6, .. }), "{e}");
        // Only the previous segment counts: a whole-file segment in between breaks the chain.
        let text = "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@50\na.ts\n#EXTINF:2,\nb.ts\n\
#EXTINF:2,\n#EXT-X-BYTERANGE:30\na.ts\n";
        let e = parse_media_playlist(text).unwrap_err();
        assert!(matches!(e, HlsError::BadTag { line: 8, .. }), "{e}");
        // A first range without offset has nothing to continue.
        let e =
            parse_media_playlist("#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:30\na.ts\n").unwrap_err();
        assert!(matches!(e, HlsError::BadTag { line: 3, .. }), "{e}");
        let e =
            parse_media_playlist("#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:x@1\na.ts\n").unwrap_err();
        assert!(e.to_string().contains("length \"x\""), "{e}");
        let e = parse_media_playlist(
            "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:2@18446744073709551615\na.ts\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("2^64"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_media_playlist("#EXTM3U\n#EXTINF:abc,\nx.ts\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: #EXTINF: \"abc\" is not a duration");
        let e = parse_media_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:4\nx.ts\n").unwrap_err();
        assert_eq!(
            e,
            HlsError::MissingExtinf {
                line: 3,
                uri: "x.ts".into()
            }
        );
        let e = parse_media_playlist("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 2: #EXT-X-MEDIA-SEQUENCE"),
            "{e}"
        );
        assert_eq!(
            parse_media_playlist("<html>").unwrap_err(),
            HlsError::NotAPlaylist
        );
        assert_eq!(
            parse_media_playlist("").unwrap_err(),
            HlsError::NotAPlaylist
        );
    }

    #[test]
    fn huge_durations_are_clamped_and_empty_ranges_refused() {
        let p = parse_media_playlist(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1e20\n#EXTINF:inf,\na.ts\n#EXTINF:1e300,\nb.ts\n",
        )
        .unwrap();
        assert_eq!(p.target_duration, MAX_DURATION_SECS);
        assert_eq!(p.segments[1].start, MAX_DURATION_SECS);
        assert_eq!(p.end(), 2.0 * MAX_DURATION_SECS);
        let e =
            parse_media_playlist("#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:0@5\na.ts\n").unwrap_err();
        assert!(e.to_string().contains("length 0"), "{e}");
    }

    #[test]
    fn master_playlist_is_refused_and_detected() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n";
        assert!(is_master_playlist(master));
        assert!(!is_master_playlist(FFMPEG_VOD));
        assert_eq!(
            parse_media_playlist(master).unwrap_err(),
            HlsError::MasterPlaylist { line: 2 }
        );
    }

    #[test]
    fn crlf_bom_and_titles_are_tolerated() {
        let text =
            "\u{feff}#EXTM3U\r\n#EXTINF:3.5,Title, with comma\r\n\r\nhttp://cdn/x.ts?t=1\r\n";
        let p = parse_media_playlist(text).unwrap();
        assert_eq!(p.segments[0].uri, "http://cdn/x.ts?t=1");
        assert_eq!(p.segments[0].duration, 3.5);
        assert!(p.live);
    }

    #[test]
    fn refreshed_live_playlist_keeps_the_timeline() {
        let first = parse_media_playlist(FFMPEG_LIVE).unwrap();
        // The window slid by two segments.
        let text = FFMPEG_LIVE
            .replace("SEQUENCE:7", "SEQUENCE:9")
            .replace("index7.ts", "index9.ts")
            .replace("index8.ts", "index10.ts")
            .replace("index9.ts\n#EXTINF", "index11.ts\n#EXTINF");
        let mut next = parse_media_playlist(&text).unwrap();
        assert_eq!(next.segments[0].id, 9);
        next.align_to(&first);
        // Segment 9 started at 4 s on the first playlist's timeline.
        assert_eq!(next.segments[0].start, 4.0);
        assert_eq!(next.end(), 10.0);
        // A jump past the old window: ids 20.. continue after the old end plus the gap.
        let far = FFMPEG_LIVE.replace("SEQUENCE:7", "SEQUENCE:20");
        let mut far = parse_media_playlist(&far).unwrap();
        far.align_to(&first);
        // Old end 6 s, sequences 10..=19 missing: 10 × 2 s.
        assert_eq!(far.segments[0].start, 26.0);
    }

    proptest::proptest! {
        /// Any text, and any mix of tag-like lines, is parsed or refused without a panic.
        #[test]
        fn arbitrary_playlists_never_panic(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("#EXT[A-Z-]{0,20}(:[0-9.,@=\"A-Z-]{0,20})?")
                        .unwrap(),
                    proptest::string::string_regex(
                        "#EXTINF:[0-9.e-]{1,5},|#EXT-X-BYTERANGE:[0-9]{1,3}(@[0-9]{1,20})?|\
                         #EXT-X-MEDIA-SEQUENCE:[0-9]{1,20}|#EXT-X-ENDLIST|#EXT-X-MAP:URI=\"i\""
                    )
                    .unwrap(),
                    proptest::string::string_regex(
                        "#EXT-X-TARGETDURATION:[0-9]{1,3}(e[0-9]{1,3})?|#EXTINF:[0-9]{1,3}(e[0-9]{1,3})?,|\
                         #EXT-X-MEDIA-SEQUENCE:1844674407370955161[0-5]"
                    )
                    .unwrap(),
                    proptest::string::string_regex("[a-z0-9/.:?=]{0,12}").unwrap(),
                    proptest::prelude::any::<String>(),
                ],
                0..30,
            )
        ) {
            let text = format!("#EXTM3U\n{}", lines.join("\n"));
            if let Ok(p) = parse_media_playlist(&text) {
                let infos = p.segment_infos();
                proptest::prop_assert_eq!(infos.len(), p.segments.len());
                for w in p.segments.windows(2) {
                    proptest::prop_assert!(w[1].start >= w[0].start);
                }
                // The engine takes any parsed playlist, aligned to any other, without a panic.
                let mut p = p;
                if let Ok(previous) = parse_media_playlist(FFMPEG_LIVE) {
                    p.align_to(&previous);
                }
                let now = crate::time::Instant::now();
                let mut e = crate::engine::Engine::new(crate::engine::EngineConfig::new(
                    [1; 20],
                    [2; 20],
                    p.live,
                    vec!["http://o/".into()],
                ));
                e.set_playlist(p.segment_infos(), now);
                e.set_playback(0.0, now);
                for s in p.segments.iter().take(4) {
                    e.want_segment(s.id, now);
                }
                while e.poll_http().is_some() || e.poll_event().is_some() {}
            }
            let _ = parse_media_playlist(&lines.join("\n"));
        }
    }
}
