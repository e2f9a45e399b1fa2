//! Swarm id schemes: the rules that turn a presentation and one of its streams into the stream
//! swarm id and the tracker info hash its peers meet under. Peers of different schemes never
//! share a swarm, so a seeder or a page picks the scheme of the players it wants to serve.
//!
//! - **`pml-2.3`** ([`IdScheme::Pml23`], the default): p2p-media-loader 2.3.x.
//!   `"v2-" + swarmId + "-" + type + "-" + shortId`, info hash = base64(sha1(id)\[0..15\]); see
//!   [`crate::stream`].
//! - **`pml-2.2`** ([`IdScheme::Pml22`]): p2p-media-loader 2.2.x, the player of PeerTube 7.1 to
//!   8.0. `"v2-" + swarmId + "-" + type + "-" + index`, where `index` is the stream's position
//!   among the streams of its type (hls.js `levels` for `main`, `audioTracks` for `secondary`);
//!   info hash = base64(md5(id)\[1..16\]): MD5, its first byte dropped, 20 ASCII characters.
//! - **`peertube`** ([`IdScheme::PeerTube`]): PeerTube's own derivation (servers after 8.0,
//!   `generateSwarmId` in `packages/core-utils/src/videos/p2p.ts`), which depends on the video
//!   alone: `"pt-v2-" + uuid + "-" + type + "-default-" + resolution`, or
//!   `"pt-v2-" + uuid + "-" + type + "-default-default"` for a stream without a resolution (audio
//!   only); info hash as in 2.3, base64(sha1(id)\[0..15\]).
//!
//! In every scheme the segment ids on the wire and the peer protocol are the same.

use std::fmt;
use std::str::FromStr;

use crate::stream::{
    info_hash as sha1_info_hash, info_hash_from_digest, peer_id_prefix, swarm_id_from_manifest_url,
    StreamIdentity, StreamType, ID_LEN, PEER_PROTOCOL_VERSION,
};

/// How stream swarm ids and info hashes are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdScheme {
    /// p2p-media-loader 2.3.x: short ids from stream attributes, SHA-1.
    #[default]
    Pml23,
    /// p2p-media-loader 2.2.x: stream positions, MD5.
    Pml22,
    /// PeerTube's `pt-v2-<uuid>-...-<resolution>` ids, SHA-1.
    PeerTube,
}

/// The names [`IdScheme`] is parsed from and printed as.
pub const ID_SCHEME_NAMES: [&str; 3] = ["pml-2.3", "pml-2.2", "peertube"];

/// Why an id scheme or its inputs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdSchemeError {
    /// Not one of [`ID_SCHEME_NAMES`].
    #[error("unknown id scheme {0:?} (expected pml-2.3, pml-2.2 or peertube)")]
    Unknown(String),
    /// The `peertube` scheme was chosen without the video's uuid.
    #[error("the peertube id scheme needs the video's uuid (its swarms are named after it)")]
    MissingVideoUuid,
    /// A video uuid that cannot be one (empty, or with characters other than hex digits and `-`).
    #[error("{0:?} is not a video uuid")]
    BadVideoUuid(String),
}

impl IdScheme {
    /// Every scheme, default first.
    pub const ALL: [IdScheme; 3] = [IdScheme::Pml23, IdScheme::Pml22, IdScheme::PeerTube];

    /// Its name: `pml-2.3`, `pml-2.2` or `peertube`.
    pub fn name(self) -> &'static str {
        match self {
            IdScheme::Pml23 => ID_SCHEME_NAMES[0],
            IdScheme::Pml22 => ID_SCHEME_NAMES[1],
            IdScheme::PeerTube => ID_SCHEME_NAMES[2],
        }
    }

    /// The p2p-media-loader version whose peer id prefix we take (`-PM0202-` for `pml-2.2`,
    /// `-PM0203-` otherwise), so that we look like the players of that swarm.
    pub fn package_version(self) -> (u32, u32) {
        match self {
            IdScheme::Pml22 => (2, 2),
            IdScheme::Pml23 | IdScheme::PeerTube => (2, 3),
        }
    }

    /// The peer id prefix of [`IdScheme::package_version`].
    pub fn peer_id_prefix(self) -> String {
        let (major, minor) = self.package_version();
        peer_id_prefix(major, minor)
    }

    /// Whether the scheme names swarms after a video uuid rather than a swarm id or URL.
    pub fn needs_video_uuid(self) -> bool {
        self == IdScheme::PeerTube
    }

    /// The presentation-wide part of every stream swarm id: for the p2p-media-loader schemes the
    /// configured swarm id, else the manifest URL without its query; for `peertube` the video
    /// uuid (required, the swarm id is not used).
    pub fn swarm<'a>(
        self,
        swarm_id: Option<&'a str>,
        video_uuid: Option<&'a str>,
        manifest_url: &'a str,
    ) -> Result<&'a str, IdSchemeError> {
        match self {
            IdScheme::Pml23 | IdScheme::Pml22 => {
                Ok(swarm_id.unwrap_or_else(|| swarm_id_from_manifest_url(manifest_url)))
            }
            IdScheme::PeerTube => {
                let uuid = video_uuid.ok_or(IdSchemeError::MissingVideoUuid)?;
                check_video_uuid(uuid)?;
                Ok(uuid)
            }
        }
    }

    /// The stream swarm id of `stream` in the presentation `swarm` (see [`IdScheme::swarm`]).
    pub fn stream_swarm_id(self, swarm: &str, stream: &StreamKey) -> String {
        let kind = stream.stream_type.as_str();
        match self {
            IdScheme::Pml23 => {
                format!("{PEER_PROTOCOL_VERSION}-{swarm}-{kind}-{}", stream.short_id)
            }
            IdScheme::Pml22 => format!("{PEER_PROTOCOL_VERSION}-{swarm}-{kind}-{}", stream.index),
            IdScheme::PeerTube => match stream.resolution.filter(|r| *r > 0) {
                Some(r) => format!("pt-{PEER_PROTOCOL_VERSION}-{swarm}-{kind}-default-{r}"),
                None => format!("pt-{PEER_PROTOCOL_VERSION}-{swarm}-{kind}-default-default"),
            },
        }
    }

    /// The 20 ASCII characters announced to the tracker for a stream swarm id.
    pub fn info_hash(self, stream_swarm_id: &str) -> [u8; ID_LEN] {
        match self {
            IdScheme::Pml23 | IdScheme::PeerTube => sha1_info_hash(stream_swarm_id),
            IdScheme::Pml22 => md5_info_hash(stream_swarm_id),
        }
    }

    /// Everything that identifies the swarm of `stream` in the presentation `swarm`.
    pub fn identity(self, swarm: &str, stream: StreamKey) -> StreamIdentity {
        let stream_swarm_id = self.stream_swarm_id(swarm, &stream);
        let info_hash = self.info_hash(&stream_swarm_id);
        StreamIdentity {
            stream_type: stream.stream_type,
            short_id: stream.short_id,
            stream_swarm_id,
            info_hash,
        }
    }
}

impl fmt::Display for IdScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IdScheme {
    type Err = IdSchemeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdScheme::ALL
            .into_iter()
            .find(|scheme| scheme.name() == s)
            .ok_or_else(|| IdSchemeError::Unknown(s.to_owned()))
    }
}

/// What any scheme needs to know of one stream of a presentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    /// `main` (variant) or `secondary` (alternative audio).
    pub stream_type: StreamType,
    /// Its p2p-media-loader 2.3 short id (`pml-2.3`).
    pub short_id: String,
    /// Its position among the streams of its type (`pml-2.2`).
    pub index: usize,
    /// Its PeerTube resolution (`peertube`): the smaller side of the picture, as PeerTube numbers
    /// its files; `None` (or 0) for a stream without video.
    pub resolution: Option<u32>,
}

/// PeerTube's resolution of a `width`×`height` picture: its smaller side (PeerTube's players
/// label a level `min(width, height)`, its files carry the same number); `None` when a side is 0.
pub fn peertube_resolution(width: u64, height: u64) -> Option<u32> {
    let r = width.min(height);
    (r > 0).then(|| u32::try_from(r).unwrap_or(u32::MAX))
}

/// p2p-media-loader 2.2's `getStreamHash`: base64 of MD5 bytes 1 to 15 (the first dropped).
pub fn md5_info_hash(stream_swarm_id: &str) -> [u8; ID_LEN] {
    let digest = crate::id_hash::md5(stream_swarm_id.as_bytes());
    let mut last = [0u8; 15];
    last.copy_from_slice(&digest[1..]);
    info_hash_from_digest(&last)
}

/// A PeerTube video uuid: non-empty, hex digits and `-` only (the short uuids of PeerTube's URLs
/// are not accepted: the swarm ids use the full uuid).
fn check_video_uuid(uuid: &str) -> Result<(), IdSchemeError> {
    let ok = !uuid.is_empty() && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then_some(())
        .ok_or_else(|| IdSchemeError::BadVideoUuid(uuid.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "9c9de5e8-0a1e-484a-b099-e80766180a6d";

    fn key(stream_type: StreamType, index: usize, resolution: Option<u32>) -> StreamKey {
        StreamKey {
            stream_type,
            short_id: "abc=".into(),
            index,
            resolution,
        }
    }

    #[test]
    fn names_round_trip() {
        for scheme in IdScheme::ALL {
            assert_eq!(scheme.name().parse::<IdScheme>(), Ok(scheme));
            assert_eq!(scheme.to_string(), scheme.name());
        }
        assert_eq!(IdScheme::default(), IdScheme::Pml23);
        assert!(matches!(
            "pml-2.4".parse::<IdScheme>(),
            Err(IdSchemeError::Unknown(_))
        ));
    }

    #[test]
    fn each_scheme_builds_its_stream_swarm_ids() {
        let main = key(StreamType::Main, 2, Some(720));
        assert_eq!(
            IdScheme::Pml23.stream_swarm_id("s", &main),
            "v2-s-main-abc="
        );
        assert_eq!(IdScheme::Pml22.stream_swarm_id("s", &main), "v2-s-main-2");
        assert_eq!(
            IdScheme::PeerTube.stream_swarm_id(UUID, &main),
            format!("pt-v2-{UUID}-main-default-720")
        );
        for resolution in [None, Some(0)] {
            let audio = key(StreamType::Secondary, 0, resolution);
            assert_eq!(
                IdScheme::PeerTube.stream_swarm_id(UUID, &audio),
                format!("pt-v2-{UUID}-secondary-default-default")
            );
        }
    }

    /// MD5 test vectors of RFC 1321, bytes 1..16 in base64.
    #[test]
    fn md5_info_hash_drops_the_first_byte() {
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
        let expected =
            crate::stream::base64(&hex::decode("0150983cd24fb0d6963f7d28e17f72").unwrap());
        assert_eq!(md5_info_hash("abc"), expected.as_bytes());
        assert_eq!(IdScheme::Pml22.info_hash("abc"), expected.as_bytes());
        assert_eq!(
            IdScheme::PeerTube.info_hash("abc"),
            IdScheme::Pml23.info_hash("abc")
        );
    }

    #[test]
    fn swarm_needs_a_uuid_only_for_peertube() {
        let url = "https://e.x/m.m3u8?t=1";
        assert_eq!(
            IdScheme::Pml22.swarm(None, None, url),
            Ok("https://e.x/m.m3u8")
        );
        assert_eq!(IdScheme::Pml23.swarm(Some("s"), Some(UUID), url), Ok("s"));
        assert_eq!(
            IdScheme::PeerTube.swarm(Some("s"), None, url),
            Err(IdSchemeError::MissingVideoUuid)
        );
        assert_eq!(IdScheme::PeerTube.swarm(None, Some(UUID), url), Ok(UUID));
        assert!(matches!(
            IdScheme::PeerTube.swarm(None, Some("a/b"), url),
            Err(IdSchemeError::BadVideoUuid(_))
        ));
    }

    /// PeerTube's `buildP2PMediaLoaderInfoHashes` for a video with a 720p file and an audio-only
    /// file (resolution 0): `generateP2PMediaLoaderHash(generateSwarmId(...))`, i.e.
    /// `btoa(sha1(id, 'binary').slice(0, 15))`, evaluated with Node's crypto.
    #[test]
    fn peertube_ids_and_hashes_match_peertube_server() {
        let cases = [
            (
                StreamType::Main,
                Some(720),
                "main-default-720",
                "FuGEr478XuVjbIYvey2c",
            ),
            (
                StreamType::Main,
                Some(0),
                "main-default-default",
                "6TR+uObL4MIWn/cDDlR8",
            ),
            (
                StreamType::Secondary,
                None,
                "secondary-default-default",
                "2fMq0WjAzTVvRhQPUpCi",
            ),
        ];
        for (stream_type, resolution, tail, hash) in cases {
            let id = IdScheme::PeerTube.identity(UUID, key(stream_type, 5, resolution));
            assert_eq!(id.stream_swarm_id, format!("pt-v2-{UUID}-{tail}"));
            assert_eq!(id.info_hash_str(), hash);
        }
    }

    #[test]
    fn peertube_resolution_is_the_smaller_side() {
        assert_eq!(peertube_resolution(1280, 720), Some(720));
        assert_eq!(peertube_resolution(720, 1280), Some(720));
        assert_eq!(peertube_resolution(0, 720), None);
        assert_eq!(IdScheme::Pml22.peer_id_prefix(), "-PM0202-");
        assert_eq!(IdScheme::PeerTube.peer_id_prefix(), "-PM0203-");
    }
}
