//! PeerTube video URLs: which instance, which video.
//!
//! Accepted forms, `http` or `https`, with or without a port, a trailing slash, a query or a
//! fragment:
//!
//! - `https://host/w/<shortUUID or uuid>` (the watch page since PeerTube 3.3);
//! - `https://host/videos/watch/<uuid or shortUUID>` (the older watch page, still served);
//! - `https://host/videos/embed/<uuid or shortUUID>` (the embed page);
//! - `https://host/api/v1/videos/<uuid, shortUUID or numeric id>` (the REST API).
//!
//! A uuid is `8-4-4-4-12` hexadecimal digits (stored in lower case); a shortUUID is the uuid in
//! the Flickr base-58 alphabet (PeerTube's `uuidToShort`, `short-uuid`), at most 22 characters.
//! Playlist URLs (`/w/p/...`, `/videos/watch/playlist/...`) are refused with their own error.

use std::fmt;

/// Characters of a shortUUID (Flickr base 58: no `0`, `O`, `I`, `l`).
const SHORT_UUID_ALPHABET: &str = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

/// Longest shortUUID: a 128-bit number in base 58.
pub const MAX_SHORT_UUID_LEN: usize = 22;

/// Shortest shortUUID accepted (PeerTube pads them to 22; shorter ones come from older
/// `short-uuid` releases without padding, never this short).
pub const MIN_SHORT_UUID_LEN: usize = 16;

/// How a URL names the video.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VideoId {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case.
    Uuid(String),
    /// PeerTube's base-58 short form of the uuid.
    ShortUuid(String),
    /// The instance's numeric database id (API URLs only).
    Numeric(u64),
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoId::Uuid(s) | VideoId::ShortUuid(s) => f.write_str(s),
            VideoId::Numeric(n) => write!(f, "{n}"),
        }
    }
}

/// A video on an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VideoRef {
    /// `scheme://host[:port]`, scheme and host in lower case, no trailing slash.
    pub instance: String,
    /// The video.
    pub id: VideoId,
}

impl VideoRef {
    /// `<instance>/api/v1/videos/<id>`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1/videos/{}", self.instance, self.id)
    }

    /// `<instance>/api/v1/config` (holds `serverVersion`).
    pub fn config_url(&self) -> String {
        format!("{}/api/v1/config", self.instance)
    }
}

/// Why a URL does not name a PeerTube video.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoUrlError {
    /// Not `http://` or `https://`.
    #[error("{0:?} is not an http(s) URL")]
    NotHttp(String),
    /// No host, or one with characters a host name cannot have.
    #[error("{0:?} has no usable host")]
    BadHost(String),
    /// A video playlist URL.
    #[error("{0:?} is a PeerTube playlist, not a video; give one video's URL")]
    Playlist(String),
    /// A path that is none of the accepted forms.
    #[error(
        "{0:?} is not a PeerTube video URL (expected https://host/w/<shortUUID>, \
         https://host/videos/watch/<uuid> or https://host/api/v1/videos/<id>)"
    )]
    NotAVideoPath(String),
    /// The id segment is neither a uuid nor a shortUUID (nor, in API URLs, a number).
    #[error("{id:?} in {url:?} is not a video uuid or shortUUID")]
    BadId {
        /// The URL.
        url: String,
        /// The id as written.
        id: String,
    },
}

/// Whether `s` is a uuid (`8-4-4-4-12` hex digits, any case).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether `s` can be a shortUUID.
pub fn is_short_uuid(s: &str) -> bool {
    (MIN_SHORT_UUID_LEN..=MAX_SHORT_UUID_LEN).contains(&s.len())
        && s.chars().all(|c| SHORT_UUID_ALPHABET.contains(c))
}

fn video_id(url: &str, raw: &str, numeric_allowed: bool) -> Result<VideoId, VideoUrlError> {
    if is_uuid(raw) {
        return Ok(VideoId::Uuid(raw.to_ascii_lowercase()));
    }
    if numeric_allowed
        && !raw.is_empty()
        && raw.len() <= 19
        && raw.bytes().all(|c| c.is_ascii_digit())
    {
        if let Ok(n) = raw.parse::<u64>() {
            return Ok(VideoId::Numeric(n));
        }
    }
    if is_short_uuid(raw) {
        return Ok(VideoId::ShortUuid(raw.to_owned()));
    }
    Err(VideoUrlError::BadId {
        url: url.to_owned(),
        id: raw.chars().take(80).collect(),
    })
}

/// Parses a PeerTube video URL. See the module documentation.
pub fn parse_video_url(url: &str) -> Result<VideoRef, VideoUrlError> {
    let trimmed = url.trim();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| VideoUrlError::NotHttp(url.to_owned()))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(VideoUrlError::NotHttp(url.to_owned()));
    }
    // Drop the fragment, then the query.
    let rest = rest.split('#').next().unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host_ok = !authority.is_empty()
        && !authority.contains('@')
        && authority
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:[]_".contains(&c));
    if !host_ok {
        return Err(VideoUrlError::BadHost(url.to_owned()));
    }
    let instance = format!("{scheme}://{}", authority.to_ascii_lowercase());
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let not_video = || VideoUrlError::NotAVideoPath(url.to_owned());
    let id = match parts.as_slice() {
        ["w", "p", ..] | ["videos", "watch", "playlist", ..] => {
            return Err(VideoUrlError::Playlist(url.to_owned()))
        }
        ["w", id] | ["videos", "watch", id] | ["videos", "embed", id] => video_id(url, id, false)?,
        ["api", "v1", "videos", id] => video_id(url, id, true)?,
        _ => return Err(not_video()),
    };
    Ok(VideoRef { instance, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "9c9de5e8-0a1e-484a-b099-e80766180a6d";
    const SHORT: &str = "kkGMgK9ZtnKfYAgnEtQxbv";

    fn ok(url: &str) -> VideoRef {
        parse_video_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn watch_urls_with_short_uuid() {
        for url in [
            format!("https://peertube.example/w/{SHORT}"),
            format!("https://peertube.example/w/{SHORT}/"),
            format!("https://peertube.example/w/{SHORT}?start=10s"),
            format!("https://PeerTube.Example/w/{SHORT}#t=3"),
        ] {
            let r = ok(&url);
            assert_eq!(r.instance, "https://peertube.example", "{url}");
            assert_eq!(r.id, VideoId::ShortUuid(SHORT.into()), "{url}");
            assert_eq!(
                r.api_url(),
                format!("https://peertube.example/api/v1/videos/{SHORT}")
            );
            assert_eq!(r.config_url(), "https://peertube.example/api/v1/config");
        }
    }

    #[test]
    fn watch_urls_with_uuid_and_ports() {
        let r = ok(&format!("http://127.0.0.1:9000/videos/watch/{UUID}/"));
        assert_eq!(r.instance, "http://127.0.0.1:9000");
        assert_eq!(r.id, VideoId::Uuid(UUID.into()));
        let upper = UUID.to_ascii_uppercase();
        let r = ok(&format!("https://h.example/videos/watch/{upper}?a=1"));
        assert_eq!(r.id, VideoId::Uuid(UUID.into()), "uuids are lowercased");
        let r = ok(&format!("https://h.example/w/{UUID}"));
        assert_eq!(r.id, VideoId::Uuid(UUID.into()));
        let r = ok(&format!("https://h.example/videos/watch/{SHORT}"));
        assert_eq!(r.id, VideoId::ShortUuid(SHORT.into()));
        let r = ok(&format!("https://h.example/videos/embed/{UUID}?autoplay=1"));
        assert_eq!(r.id, VideoId::Uuid(UUID.into()));
        let r = ok(&format!("http://[::1]:9000/w/{SHORT}"));
        assert_eq!(r.instance, "http://[::1]:9000");
    }

    #[test]
    fn api_urls_take_numeric_ids_too() {
        assert_eq!(
            ok("https://h.example/api/v1/videos/42").id,
            VideoId::Numeric(42)
        );
        assert_eq!(
            ok(&format!("https://h.example/api/v1/videos/{UUID}/")).id,
            VideoId::Uuid(UUID.into())
        );
        assert_eq!(
            ok(&format!("https://h.example/api/v1/videos/{SHORT}?x")).id,
            VideoId::ShortUuid(SHORT.into())
        );
        assert_eq!(
            ok("https://h.example/api/v1/videos/42").api_url(),
            "https://h.example/api/v1/videos/42"
        );
    }

    #[test]
    fn clear_errors_otherwise() {
        use VideoUrlError::*;
        let err = |u: &str| parse_video_url(u).unwrap_err();
        assert!(matches!(err("ftp://h/w/abc"), NotHttp(_)));
        assert!(matches!(err("h.example/w/abc"), NotHttp(_)));
        assert!(matches!(err("https:///w/abc"), BadHost(_)));
        assert!(matches!(err("https://u@h.example/w/abc"), BadHost(_)));
        assert!(matches!(
            err(&format!("https://h/w/p/{SHORT}")),
            Playlist(_)
        ));
        assert!(matches!(
            err(&format!("https://h/videos/watch/playlist/{UUID}")),
            Playlist(_)
        ));
        assert!(matches!(err("https://h.example/"), NotAVideoPath(_)));
        assert!(matches!(err("https://h.example/w"), NotAVideoPath(_)));
        assert!(matches!(
            err(&format!("https://h/w/{SHORT}/extra")),
            NotAVideoPath(_)
        ));
        assert!(matches!(
            err("https://h.example/c/channel/videos"),
            NotAVideoPath(_)
        ));
        assert!(matches!(err("https://h.example/w/not-an-id"), BadId { .. }));
        assert!(
            matches!(err("https://h.example/w/42"), BadId { .. }),
            "numeric ids only in API URLs"
        );
        assert!(matches!(
            err("https://h.example/w/0OIl0OIl0OIl0OIl0OIl"),
            BadId { .. }
        ));
        let msg = err("https://h.example/x").to_string();
        assert!(msg.contains("/w/<shortUUID>"), "{msg}");
    }
}
