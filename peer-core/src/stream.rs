//! Stream identity as p2p-media-loader 2.3.x derives it: peer ids, stream short ids, stream
//! swarm ids, tracker info hashes and segment external ids.
//!
//! - **Peer id**: `-PM` + major and minor version as two digits each + `-` (for 2.3.x:
//!   `-PM0203-`), then random characters from `[A-Za-z0-9]` up to 20 characters.
//! - **Short id** of a stream (the `index` the hls.js glue gives every stream):
//!   base64(sha1(`"{bitrate}-{codecs}-{width}-{height}-{language}-{channels}-{name}-{frameRate}-{videoRange}"`))
//!   over normalized attributes, see [`ShortIdProps`].
//! - **Stream swarm id**: `"v2-" + swarmId + "-" + type + "-" + shortId`, where `swarmId` is the
//!   configured swarm id or else the manifest response URL cut at its first `?`, and `type` is
//!   `main` (variants) or `secondary` (alternative audio renditions).
//! - **Info hash**: standard base64 of the first 15 bytes of sha1(stream swarm id): 20 ASCII
//!   characters, sent to the tracker as the 20 "bytes" of `info_hash`.
//! - **Segment external id** (the id on the wire): the media sequence number for live, the index
//!   within the playlist for VOD.
//!
//! [`master_playlist_streams`] maps an HLS multivariant playlist to streams the way
//! p2p-media-loader-hlsjs 2.3.x does with hls.js's parse (see its docs for the attribute mapping).

use rand::Rng;

use crate::wire::SegmentId;

/// The p2p-media-loader version whose identity rules this module follows.
pub const PROTOCOL_PACKAGE_VERSION: (u32, u32) = (2, 3);
/// Prefix of every stream swarm id (`PEER_PROTOCOL_VERSION` in p2p-media-loader).
pub const PEER_PROTOCOL_VERSION: &str = "v2";
/// Length of a peer id and of an info hash, in bytes.
pub const ID_LEN: usize = 20;
/// Characters a peer id's random part is drawn from.
pub const PEER_ID_SYMBOLS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The tracker client prefix for a package version: `-PM` + `MMmm` + `-`.
pub fn peer_id_prefix(major: u32, minor: u32) -> String {
    format!("-PM{major:02}{minor:02}-")
}

/// A peer id: `prefix` followed by random [`PEER_ID_SYMBOLS`] up to [`ID_LEN`] characters
/// (a prefix of 20 characters or more is returned as it is, like p2p-media-loader).
pub fn generate_peer_id_with_prefix<R: Rng + ?Sized>(prefix: &str, rng: &mut R) -> String {
    peer_id_from_picks(prefix, |n| rng.random_range(0..n))
}

/// A peer id whose random characters are chosen by `pick(n)`, an index below `n` (taken modulo
/// `n`), for each character in turn. p2p-media-loader picks `floor(Math.random() * n)`.
pub fn peer_id_from_picks(prefix: &str, mut pick: impl FnMut(usize) -> usize) -> String {
    let n = PEER_ID_SYMBOLS.len();
    let mut id = String::from(prefix);
    for _ in prefix.len()..ID_LEN {
        id.push(char::from(PEER_ID_SYMBOLS[pick(n) % n]));
    }
    id
}

/// A p2p-media-loader 2.3 peer id (`-PM0203-` + 12 random characters).
pub fn generate_peer_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    let (major, minor) = PROTOCOL_PACKAGE_VERSION;
    generate_peer_id_with_prefix(&peer_id_prefix(major, minor), rng)
}

/// Which of a presentation's streams: variants (`main`) or alternative audio (`secondary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// A variant stream (`#EXT-X-STREAM-INF`).
    Main,
    /// An alternative audio rendition (`#EXT-X-MEDIA:TYPE=AUDIO`).
    Secondary,
}

impl StreamType {
    /// The name used in stream swarm ids.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Main => "main",
            StreamType::Secondary => "secondary",
        }
    }
}

/// Inputs of [`generate_stream_short_id`], as p2p-media-loader's `GenerateStreamShortIdProps`
/// (absent = `null`/`undefined`).
///
/// Normalization: `codecs` split at `,`, each trimmed and lowercased, decimal `avc1.P.L` /
/// `avc.P.L` rewritten as `avc1.PP00LL` in hex, sorted, joined with `,`; `language` dropped if
/// `und`, else its first two characters lowercased; `channels` cut at the first `/`; `name`
/// lowercased and trimmed; `frame_rate` parsed as a number and printed without trailing zeros
/// (dropped if not a number); `video_range` uppercased and trimmed; a missing bitrate is `0`,
/// missing width and height are empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShortIdProps {
    /// Bits per second (a JavaScript number: hls.js yields `NaN` for a variant without a usable
    /// `BANDWIDTH` or `AVERAGE-BANDWIDTH`, and p2p-media-loader hashes the text `NaN`).
    pub bitrate: Option<f64>,
    /// Codecs list (`CODECS` style).
    pub codecs: Option<String>,
    /// Width in pixels.
    pub width: Option<u64>,
    /// Height in pixels.
    pub height: Option<u64>,
    /// Language tag.
    pub language: Option<String>,
    /// Channels (`CHANNELS` style, e.g. `6/JOC`).
    pub channels: Option<String>,
    /// Rendition name.
    pub name: Option<String>,
    /// Frame rate as written (`FRAME-RATE`).
    pub frame_rate: Option<String>,
    /// Video range (`SDR`, `PQ`, `HLG`).
    pub video_range: Option<String>,
}

/// `Some(s)` if `s` is non-empty (JavaScript truthiness of a string).
fn truthy(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The largest integer JavaScript numbers hold exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// `n` in base 16 as JavaScript's `Number.prototype.toString(16)` writes it, padded to 2.
fn js_hex2(n: i64) -> String {
    let s = if n < 0 {
        format!("-{:x}", n.unsigned_abs())
    } else {
        format!("{n:x}")
    };
    format!("{s:0>2}")
}

/// A decimal integer in canonical form (as `parseInt(s, 10).toString() === s` accepts it).
fn canonical_int(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (n.abs() <= MAX_SAFE_INTEGER && n.to_string() == s).then_some(n)
}

/// `s.toLowerCase()` as JavaScript computes it. In the browser build JavaScript itself does it
/// (Rust's `to_lowercase` gives the same result but links Unicode case tables into the module);
/// ASCII text never leaves Rust.
fn js_lowercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        String::from(js_sys::JsString::from(s).to_lower_case())
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        s.to_lowercase()
    }
}

/// `s.toUpperCase()` as JavaScript computes it (see [`js_lowercase`]).
fn js_uppercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        String::from(js_sys::JsString::from(s).to_upper_case())
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        s.to_uppercase()
    }
}

fn normalize_codec(codec: &str) -> String {
    let c = js_lowercase(codec.trim());
    let parts: Vec<&str> = c.split('.').collect();
    if parts.len() == 3 && (parts[0] == "avc1" || parts[0] == "avc") {
        if let (Some(profile), Some(level)) = (canonical_int(parts[1]), canonical_int(parts[2])) {
            return format!("{}.{}00{}", parts[0], js_hex2(profile), js_hex2(level));
        }
    }
    c
}

/// `v` as JavaScript's `Number.prototype.toString()` writes it, for the values met here
/// (integers below 2^53, ordinary decimals, `NaN`, infinities; no exponent forms).
pub fn js_number_to_string(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if v == 0.0 {
        "0".to_string()
    } else if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        // Integers below 2^53 (bitrates, most frame rates) print as integers in both languages.
        (v as i64).to_string()
    } else {
        float_to_string(v)
    }
}

/// A non-integer `v` as text: JavaScript's own `Number.prototype.toString` in the browser build
/// (no float formatting code from Rust's core in the module), Rust's `Display` natively.
fn float_to_string(v: f64) -> String {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        js_sys::Number::from(v)
            .to_string_with_radix(10)
            .map(String::from)
            .unwrap_or_default()
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        format!("{v}")
    }
}

/// A decimal number (digits, sign, point, exponent) as `Number(t)` reads it, `None` for `NaN`:
/// JavaScript's own `Number` in the browser build (no float parsing code from Rust's core in the
/// module), Rust's `f64` parser natively (same results for this character set).
fn parse_decimal(t: &str) -> Option<f64> {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        t.parse::<js_sys::Number>()
            .ok()
            .map(|n| n.value_of())
            .filter(|v| !v.is_nan())
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        t.parse().ok()
    }
}

/// A frame rate as `Number(s).toString()` writes it, or `None` when `Number(s)` is `NaN`.
fn normalize_frame_rate(s: &str) -> Option<String> {
    let t = s.trim();
    let v: f64 = if t.is_empty() {
        0.0
    } else if t.eq_ignore_ascii_case("infinity") || t.eq_ignore_ascii_case("+infinity") {
        // `Number` accepts only the exact spelling; anything else is NaN.
        if t == "Infinity" || t == "+Infinity" {
            f64::INFINITY
        } else {
            return None;
        }
    } else if t == "-Infinity" {
        f64::NEG_INFINITY
    } else if t
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        parse_decimal(t)?
    } else {
        return None;
    };
    Some(js_number_to_string(v))
}

/// The normalized string p2p-media-loader hashes for a short id.
pub fn short_id_source(p: &ShortIdProps) -> String {
    let codecs = truthy(&p.codecs)
        .map(|c| {
            let mut list: Vec<String> = c.split(',').map(normalize_codec).collect();
            list.sort_unstable();
            list.join(",")
        })
        .unwrap_or_default();
    let language = truthy(&p.language)
        .filter(|l| *l != "und")
        .map(|l| js_lowercase(&l.chars().take(2).collect::<String>()))
        .unwrap_or_default();
    let channels = truthy(&p.channels)
        .map(|c| c.split('/').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let name = truthy(&p.name)
        .map(|n| js_lowercase(n).trim().to_string())
        .unwrap_or_default();
    let frame_rate = truthy(&p.frame_rate)
        .and_then(normalize_frame_rate)
        .unwrap_or_default();
    let video_range = truthy(&p.video_range)
        .map(|v| js_uppercase(v).trim().to_string())
        .unwrap_or_default();
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    format!(
        "{}-{codecs}-{}-{}-{language}-{channels}-{name}-{frame_rate}-{video_range}",
        js_number_to_string(p.bitrate.unwrap_or(0.0)),
        opt(p.width),
        opt(p.height),
    )
}

/// `generateStreamShortId`: standard base64 (with padding) of sha1 of [`short_id_source`].
pub fn generate_stream_short_id(p: &ShortIdProps) -> String {
    base64(&crate::id_hash::sha1(short_id_source(p).as_bytes()))
}

/// Standard base64 (RFC 4648 §4, `+/` and `=` padding), as JavaScript's `btoa` of the bytes.
/// (A few lines rather than the `base64` crate, whose engine is ~1 KB of the gzipped browser module;
/// ids are all it encodes.)
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        // The chunk's bytes as the top of 24 bits, then 6 bits per character.
        let bits = chunk
            .iter()
            .zip([16, 8, 0])
            .fold(0u32, |bits, (&b, shift)| bits | u32::from(b) << shift);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

/// The 20 ASCII bytes of an info hash: base64 of 15 digest bytes (exactly 20 characters, no
/// padding).
pub(crate) fn info_hash_from_digest(bytes: &[u8; 15]) -> [u8; ID_LEN] {
    base64(bytes).into_bytes().try_into().unwrap_or_default()
}

/// The swarm id used when none is configured: the manifest response URL up to its first `?`.
pub fn swarm_id_from_manifest_url(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `"v2-" + swarm_id + "-" + type + "-" + short_id`.
pub fn stream_swarm_id(swarm_id: &str, stream_type: StreamType, short_id: &str) -> String {
    format!(
        "{PEER_PROTOCOL_VERSION}-{swarm_id}-{}-{short_id}",
        stream_type.as_str()
    )
}

/// The tracker info hash of a stream swarm id: base64 of sha1's first 15 bytes, 20 ASCII bytes.
pub fn info_hash(stream_swarm_id: &str) -> [u8; ID_LEN] {
    let digest = crate::id_hash::sha1(stream_swarm_id.as_bytes());
    let mut first = [0u8; 15];
    first.copy_from_slice(&digest[..15]);
    info_hash_from_digest(&first)
}

/// Everything that identifies one stream's swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIdentity {
    /// Stream type.
    pub stream_type: StreamType,
    /// Short id (the stream's `index`).
    pub short_id: String,
    /// Stream swarm id.
    pub stream_swarm_id: String,
    /// Tracker info hash (20 ASCII characters).
    pub info_hash: [u8; ID_LEN],
}

impl StreamIdentity {
    /// Identity from an explicit swarm id, or from the manifest URL when `swarm_id` is `None`.
    pub fn new(
        swarm_id: Option<&str>,
        manifest_url: &str,
        stream_type: StreamType,
        short_id: String,
    ) -> Self {
        let swarm = swarm_id.unwrap_or_else(|| swarm_id_from_manifest_url(manifest_url));
        let stream_swarm_id = stream_swarm_id(swarm, stream_type, &short_id);
        let info_hash = info_hash(&stream_swarm_id);
        Self {
            stream_type,
            short_id,
            stream_swarm_id,
            info_hash,
        }
    }

    /// The info hash as a string (always ASCII).
    pub fn info_hash_str(&self) -> &str {
        std::str::from_utf8(&self.info_hash).unwrap_or_default()
    }
}

/// A segment's external id: `media_sequence + position` for live, `position` for VOD, where
/// `position` is its 0-based place in the media playlist and `media_sequence` is the playlist's
/// `#EXT-X-MEDIA-SEQUENCE` (0 when absent).
pub fn segment_external_id(live: bool, media_sequence: u64, position: usize) -> SegmentId {
    let position = position as i64;
    if live {
        (media_sequence as i64).saturating_add(position)
    } else {
        position
    }
}

/// A stream found in a multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistStream {
    /// `main` for variants, `secondary` for audio renditions.
    pub stream_type: StreamType,
    /// Its URI as written in the playlist (not resolved against the manifest URL).
    pub uri: String,
    /// The attributes its short id is made of.
    pub props: ShortIdProps,
    /// Its position among the streams of its type (hls.js `levels` or `audioTracks`, the
    /// embedded main audio track included): the stream index p2p-media-loader 2.2 used.
    pub index: usize,
    /// `RESOLUTION` (width, height) as written, whatever the bitrate.
    pub resolution: Option<(u64, u64)>,
}

impl PlaylistStream {
    /// The stream's short id.
    pub fn short_id(&self) -> String {
        generate_stream_short_id(&self.props)
    }

    /// What every id scheme needs to know of this stream; its PeerTube resolution is the
    /// smaller side of `RESOLUTION` (see [`crate::id_scheme::peertube_resolution`]).
    pub fn key(&self) -> crate::id_scheme::StreamKey {
        crate::id_scheme::StreamKey {
            stream_type: self.stream_type,
            short_id: self.short_id(),
            index: self.index,
            resolution: self
                .resolution
                .and_then(|(w, h)| crate::id_scheme::peertube_resolution(w, h)),
        }
    }
}

/// hls.js's list of video sample entry codes (first four characters of a codec, case-sensitive).
const VIDEO_CODES: &[&str] = &[
    "avc1", "avc2", "avc3", "avc4", "avcp", "av01", "dav1", "drac", "dva1", "dvav", "dvh1", "dvhe",
    "encv", "hev1", "hvc1", "mjp2", "mp4v", "mvc1", "mvc2", "mvc3", "mvc4", "resv", "rv60", "s263",
    "svc1", "svc2", "vc-1", "vp08", "vp09",
];
/// hls.js's list of audio sample entry codes.
const AUDIO_CODES: &[&str] = &[
    "a3ds", "ac-3", "ac-4", "alac", "alaw", "dra1", "dts+", "dts-", "dtsc", "dtse", "dtsh", "ec-3",
    "enca", "fLaC", "flac", "FLAC", "g719", "g726", "m4ae", "mha1", "mha2", "mhm1", "mhm2", "mlpa",
    "mp4a", "raw ", "Opus", "opus", "samr", "sawb", "sawp", "sevc", "sqcp", "ssmv", "twos", "ulaw",
];

/// hls.js's list of text sample entry codes.
const TEXT_CODES: &[&str] = &["stpp", "wvtt"];

/// The entries of a `CODECS` value (hls.js splits at spaces and commas).
fn codec_entries(codecs: &str) -> impl Iterator<Item = &str> {
    codecs.split([' ', ',']).filter(|c| !c.is_empty())
}

/// Whether a codec's sample entry (its first four characters) is in `codes`.
fn is_codec_type(codec: &str, codes: &[&str]) -> bool {
    codes.contains(&codec.get(..4).unwrap_or(codec))
}

/// Whether `CODECS` lists an entry hls.js knows as neither video, audio nor text.
fn has_unknown_codec(codecs: &str) -> bool {
    codec_entries(codecs).any(|c| {
        !is_codec_type(c, VIDEO_CODES)
            && !is_codec_type(c, AUDIO_CODES)
            && !is_codec_type(c, TEXT_CODES)
    })
}

/// The codecs of `CODECS` whose sample entry is in `codes`, joined with `,` (hls.js `setCodecs`).
fn codecs_of_type(codecs: &str, codes: &[&str]) -> Option<String> {
    let found: Vec<&str> = codec_entries(codecs)
        .filter(|c| is_codec_type(c, codes))
        .map(|c| c.split('/').next().unwrap_or(c))
        .collect();
    (!found.is_empty()).then(|| found.join(","))
}

/// Parses an attribute list (`NAME=value,NAME="quoted, value"`) into name/value pairs, quotes
/// removed.
pub fn parse_attributes(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().to_string();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => {
                    let tail = &quoted[end + 1..];
                    (
                        quoted[..end].to_string(),
                        tail.find(',').map_or("", |c| &tail[c + 1..]),
                    )
                }
                None => (after.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(c) => (after[..c].to_string(), &after[c + 1..]),
                None => (after.to_string(), ""),
            }
        };
        out.push((name, value));
        rest = tail;
    }
    out
}

/// `RESOLUTION=<width>x<height>`, both decimal digits.
fn parse_resolution(r: &str) -> Option<(u64, u64)> {
    let (w, h) = r.split_once('x')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(w) && digits(h)).then(|| Some((w.parse().ok()?, h.parse().ok()?)))?
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// hls.js `decimalInteger`: JavaScript `parseInt(s, 10)` (optional whitespace and sign, then
/// leading digits; `NaN` without digits), `Infinity` above 2^53 − 1.
fn decimal_integer(s: Option<&str>) -> f64 {
    let Some(s) = s else { return f64::NAN };
    let t = s.trim_start();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = &t[..t.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return f64::NAN;
    }
    let v: f64 = digits.parse().unwrap_or(f64::INFINITY);
    if v > MAX_SAFE_INTEGER as f64 {
        return f64::INFINITY;
    }
    if negative {
        -v
    } else {
        v
    }
}

/// JavaScript truthiness of a number.
fn js_truthy(v: f64) -> bool {
    v != 0.0 && !v.is_nan()
}

/// The streams of an HLS multivariant playlist with the attributes p2p-media-loader-hlsjs 2.3.x
/// derives their short ids from (hls.js 1.6 parse):
///
/// - each `#EXT-X-STREAM-INF` + URI line → a `main` stream: bitrate = `BANDWIDTH`, or
///   `AVERAGE-BANDWIDTH` when `BANDWIDTH` is 0 or absent; if that bitrate is 0, only the bitrate
///   is used. Otherwise codecs = the *video* codecs of `CODECS` (known sample entries, text after
///   `/` dropped), width and height from `RESOLUTION` (`WxH`), frame rate = `FRAME-RATE`, video
///   range = `VIDEO-RANGE`; language, channels and name are not used.
/// - each `#EXT-X-MEDIA:TYPE=AUDIO` → a `secondary` stream: bitrate 0, codecs = the audio codecs
///   of the first variant whose `AUDIO` equals the rendition's `GROUP-ID` (else of the first
///   variant), language = `LANGUAGE`, channels = `CHANNELS`, name = `NAME` or else `LANGUAGE`.
///
/// Variants listing a codec hls.js does not know are dropped, unless every variant does; then
/// the unknown codecs are left out of the codecs (in a browser hls.js may instead count them as
/// audio or video when Media Source supports them, which this function cannot know). Variables (`#EXT-X-DEFINE`) are not substituted. When the renditions do not
/// include one without a URI and the first variant has an audio codec and no `AUDIO` group,
/// hls.js adds an embedded `main` audio track with an empty URI; so does this function.
pub fn master_playlist_streams(playlist: &str) -> Vec<PlaylistStream> {
    let mut variants: Vec<(Vec<(String, String)>, String)> = Vec::new();
    let mut audio: Vec<Vec<(String, String)>> = Vec::new();
    let mut lines = playlist.lines().map(str::trim_end);
    let mut pending: Option<Vec<(String, String)>> = None;
    for line in lines.by_ref() {
        if let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            pending = Some(parse_attributes(list));
        } else if let Some(list) = line.strip_prefix("#EXT-X-MEDIA:") {
            let attrs = parse_attributes(list);
            if attr(&attrs, "TYPE") == Some("AUDIO") {
                audio.push(attrs);
            }
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some(attrs) = pending.take() {
            variants.push((attrs, line.to_string()));
        }
    }
    // hls.js drops variants listing an unknown codec, unless that would drop them all.
    let known = variants
        .iter()
        .filter(|(a, _)| !has_unknown_codec(attr(a, "CODECS").unwrap_or("")))
        .count();
    if known > 0 && known < variants.len() {
        variants.retain(|(a, _)| !has_unknown_codec(attr(a, "CODECS").unwrap_or("")));
    }
    let mut out = Vec::new();
    let mut audio_codec_of_group: Vec<(Option<&str>, Option<String>)> = Vec::new();
    for (attrs, uri) in &variants {
        let bandwidth = decimal_integer(attr(attrs, "BANDWIDTH"));
        let bitrate = if js_truthy(bandwidth) {
            bandwidth
        } else {
            decimal_integer(attr(attrs, "AVERAGE-BANDWIDTH"))
        };
        let codecs = attr(attrs, "CODECS").unwrap_or("");
        audio_codec_of_group.push((attr(attrs, "AUDIO"), codecs_of_type(codecs, AUDIO_CODES)));
        let mut props = ShortIdProps {
            bitrate: Some(bitrate),
            ..ShortIdProps::default()
        };
        if bitrate != 0.0 {
            props.codecs = codecs_of_type(codecs, VIDEO_CODES);
            if let Some((w, h)) = attr(attrs, "RESOLUTION").and_then(|r| r.split_once('x')) {
                let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if all_digits(w) && all_digits(h) {
                    props.width = w.parse().ok();
                    props.height = h.parse().ok();
                }
            }
            props.frame_rate = attr(attrs, "FRAME-RATE").map(str::to_string);
            props.video_range = attr(attrs, "VIDEO-RANGE").map(str::to_string);
        }
        out.push(PlaylistStream {
            stream_type: StreamType::Main,
            uri: uri.clone(),
            props,
            index: out.len(),
            resolution: attr(attrs, "RESOLUTION").and_then(parse_resolution),
        });
    }
    let mut audio_streams = Vec::new();
    if !audio.is_empty() {
        let embedded = audio
            .iter()
            .any(|a| attr(a, "URI").is_none_or(str::is_empty));
        if let Some((first_attrs, _)) = variants.first() {
            let first_audio = audio_codec_of_group.first().and_then(|(_, c)| c.clone());
            let first_group = attr(first_attrs, "AUDIO").filter(|g| !g.is_empty());
            if !embedded && first_audio.is_some() && first_group.is_none() {
                audio_streams.push(PlaylistStream {
                    stream_type: StreamType::Secondary,
                    uri: String::new(),
                    props: ShortIdProps {
                        bitrate: Some(0.0),
                        name: Some("main".to_string()),
                        ..ShortIdProps::default()
                    },
                    index: 0,
                    resolution: None,
                });
            }
        }
    }
    for attrs in &audio {
        let group = attr(attrs, "GROUP-ID").unwrap_or("");
        let codec = audio_codec_of_group
            .iter()
            .find(|(g, _)| *g == Some(group))
            .or(audio_codec_of_group.first())
            .and_then(|(_, c)| c.clone());
        let lang = attr(attrs, "LANGUAGE").map(str::to_string);
        let name = attr(attrs, "NAME")
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .or_else(|| lang.clone());
        audio_streams.push(PlaylistStream {
            stream_type: StreamType::Secondary,
            uri: attr(attrs, "URI").unwrap_or("").to_string(),
            props: ShortIdProps {
                bitrate: Some(0.0),
                codecs: codec,
                language: lang,
                channels: attr(attrs, "CHANNELS").map(str::to_string),
                name,
                ..ShortIdProps::default()
            },
            index: audio_streams.len(),
            resolution: None,
        });
    }
    out.extend(audio_streams);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn peer_ids_have_the_version_prefix_and_20_alphanumerics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = generate_peer_id(&mut rng);
        let b = generate_peer_id(&mut rng);
        assert!(a.starts_with("-PM0203-"), "{a}");
        assert_eq!(a.len(), ID_LEN);
        assert!(a[8..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        let mut again = rand::rngs::StdRng::seed_from_u64(7);
        assert_eq!(generate_peer_id(&mut again), a);
    }

    #[test]
    fn short_id_source_normalizes_each_attribute() {
        let p = ShortIdProps {
            bitrate: Some(1_280_000.0),
            codecs: Some(" MP4A.40.2, avc1.66.30".into()),
            width: Some(1280),
            height: Some(720),
            language: Some("en-US".into()),
            channels: Some("6/JOC".into()),
            name: Some(" Main ".into()),
            frame_rate: Some("30.000".into()),
            video_range: Some(" pq".into()),
        };
        assert_eq!(
            short_id_source(&p),
            "1280000-avc1.42001e,mp4a.40.2-1280-720-en-6-main-30-PQ"
        );
        assert_eq!(short_id_source(&ShortIdProps::default()), "0--------");
        let und = ShortIdProps {
            language: Some("und".into()),
            frame_rate: Some("abc".into()),
            ..ShortIdProps::default()
        };
        assert_eq!(short_id_source(&und), "0--------");
    }

    /// RFC 4648's test vectors, and the `base64` crate on every byte value and length.
    #[test]
    fn base64_matches_rfc_4648_and_the_base64_crate() {
        use ::base64::Engine as _;
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, encoded) in vectors {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
        let bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
        for len in 0..bytes.len() {
            let expected = ::base64::engine::general_purpose::STANDARD.encode(&bytes[..len]);
            assert_eq!(base64(&bytes[..len]), expected, "length {len}");
        }
    }

    #[test]
    fn info_hash_is_20_ascii_chars_of_base64() {
        let id = stream_swarm_id("https://e.x/live.m3u8", StreamType::Main, "abc=");
        assert_eq!(id, "v2-https://e.x/live.m3u8-main-abc=");
        let ih = info_hash(&id);
        assert!(ih
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/'));
        assert_ne!(info_hash("v2-a-main-x"), info_hash("v2-b-main-x"));
    }

    #[test]
    fn manifest_url_loses_its_query() {
        assert_eq!(
            swarm_id_from_manifest_url("https://e.x/a.m3u8?token=1?x"),
            "https://e.x/a.m3u8"
        );
        let a = StreamIdentity::new(None, "https://e.x/a.m3u8?t=1", StreamType::Main, "s".into());
        let b = StreamIdentity::new(None, "https://e.x/a.m3u8?t=2", StreamType::Main, "s".into());
        let c = StreamIdentity::new(
            Some("room"),
            "https://e.x/a.m3u8",
            StreamType::Main,
            "s".into(),
        );
        assert_eq!(a, b);
        assert_eq!(c.stream_swarm_id, "v2-room-main-s");
        assert_eq!(a.info_hash_str().len(), 20);
    }

    #[test]
    fn external_ids_for_live_and_vod() {
        assert_eq!(segment_external_id(true, 1000, 3), 1003);
        assert_eq!(segment_external_id(false, 1000, 3), 3);
    }

    #[test]
    fn attribute_lists_keep_quoted_commas() {
        let a = parse_attributes(r#"BANDWIDTH=1,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1x2"#);
        assert_eq!(
            a,
            [
                ("BANDWIDTH".into(), "1".into()),
                ("CODECS".into(), "avc1.4d401f,mp4a.40.2".into()),
                ("RESOLUTION".into(), "1x2".into())
            ]
        );
    }

    #[test]
    fn master_playlist_maps_variants_and_audio() {
        let m3u8 = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",CHANNELS=\"2\",URI=\"a/en.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"aud\"\n\
            v360.m3u8\n";
        let s = master_playlist_streams(m3u8);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].stream_type, StreamType::Main);
        assert_eq!(s[0].uri, "v360.m3u8");
        assert_eq!(s[0].props.codecs.as_deref(), Some("avc1.4d401f"));
        assert_eq!(s[0].props.width, Some(640));
        assert_eq!(s[1].stream_type, StreamType::Secondary);
        assert_eq!(s[1].props.codecs.as_deref(), Some("mp4a.40.2"));
        assert_eq!(s[1].props.name.as_deref(), Some("English"));
    }

    /// Non-ASCII text is case-mapped as JavaScript does (the browser build asks JavaScript itself;
    /// wasm-peer/tests/short_id.rs checks the same string there).
    #[test]
    fn non_ascii_short_id_text_is_case_mapped() {
        let props = ShortIdProps {
            bitrate: Some(1_500_000.0),
            codecs: Some("AVC1.64001F,MP4A.40.2".into()),
            width: Some(1280),
            height: Some(720),
            language: Some("ÉS-mx".into()),
            name: Some(" ÑANDÚ Ωmega ".into()),
            frame_rate: Some("25".into()),
            video_range: Some("pq\u{e9}".into()),
            ..ShortIdProps::default()
        };
        assert_eq!(
            short_id_source(&props),
            "1500000-avc1.64001f,mp4a.40.2-1280-720-és--ñandú ωmega-25-PQÉ"
        );
    }

    /// Non-integer numbers print as JavaScript's `Number.prototype.toString` does (JavaScript itself
    /// in the browser build); frame rates are read as `Number(s)` reads them.
    #[test]
    fn numbers_print_like_javascript() {
        let props = |bitrate: f64, frame_rate: &str| ShortIdProps {
            bitrate: Some(bitrate),
            frame_rate: Some(frame_rate.into()),
            ..ShortIdProps::default()
        };
        assert_eq!(
            short_id_source(&props(1234.5, "29.970")),
            "1234.5-------29.97-"
        );
        assert_eq!(short_id_source(&props(0.1, "2.5e1")), "0.1-------25-");
        assert_eq!(short_id_source(&props(-3.0, "+.5")), "-3-------0.5-");
        assert_eq!(short_id_source(&props(f64::NAN, "1-2")), "NaN--------");
    }
}
