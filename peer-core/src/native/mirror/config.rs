//! The mirror's settings, read from TOML. Every setting has a default (`segswarm mirror
//! --print-config` prints them all, [`MirrorConfig::to_toml`]); a key this file does not know is
//! an error that names it.
//!
//! Durations are whole seconds (`*_secs`), sizes whole bytes (`*_bytes`), as in the tracker's
//! configuration. PeerTube's names (`size`, `min_lifetime`, `check_interval`) gain the unit.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::strategy::Strategy;
use crate::peertube::video_url::parse_video_url;

const GIB: u64 = 1024 * 1024 * 1024;
const HOUR: u64 = 3600;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not TOML, a key this configuration does not have, or a value of the wrong type.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file (empty for text).
        path: PathBuf,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// What is wrong (names the key).
        message: String,
    },
    /// A value out of its allowed range.
    #[error("invalid setting {field}: {message}")]
    Invalid {
        /// The setting, e.g. `strategies[1].size_bytes`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// One strategy: which videos it picks, its byte budget and how long it keeps a pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// `most-views`, `trending`, `recently-added` or `most-watched-now`.
    pub strategy: Strategy,
    /// Most bytes this strategy's videos may hold on disk (PeerTube's `size`).
    pub size_bytes: u64,
    /// Seconds a picked video is kept at least, and each time it is picked again (PeerTube's
    /// `min_lifetime`).
    pub min_lifetime_secs: u64,
    /// `recently-added` only: fewest views a video needs. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_views: Option<u64>,
    /// `most-watched-now` only: fewest peers a swarm needs in the tracker's scrape. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_peers: Option<u32>,
}

impl StrategyConfig {
    /// `min_views`, default 0.
    pub fn min_views(&self) -> u64 {
        self.min_views.unwrap_or(0)
    }

    /// `min_peers`, default 1.
    pub fn min_peers(&self) -> u32 {
        self.min_peers.unwrap_or(1)
    }
}

/// The whole mirror configuration. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// Origins followed: PeerTube instances (`https://host`) or HLS master playlists (URLs whose
    /// path ends in `.m3u8`). Default none.
    pub origins: Vec<String>,
    /// Videos mirrored until removed, never expired: PeerTube video URLs of a followed origin
    /// (HLS master playlist URLs are accepted but not mirrored yet); more are added at run time
    /// with `segswarm mirror add`. Default none.
    pub manual: Vec<String>,
    /// Seconds between two evaluations of the strategies (PeerTube's `check_interval`, 1 h
    /// there; shorter here so that `most-watched-now` follows viewers). Default 60.
    pub check_interval_secs: u64,
    /// Directory of the mirrored files. Default `segswarm-mirror/cache`.
    pub cache_dir: PathBuf,
    /// Most bytes in `cache_dir`, every strategy and manual entry together, fetches in progress
    /// included. Default 10 GiB.
    pub cache_bytes: u64,
    /// The state database (SQLite). Default `segswarm-mirror/state.sqlite3`.
    pub database: PathBuf,
    /// Address the mirrored videos are served on over HTTP. Default `127.0.0.1:9190` (this host
    /// only).
    pub listen: SocketAddr,
    /// Address of the admin listener (`/metrics`, `/stats.json`, and `/mirrors` for
    /// `segswarm mirror list|add|remove`, answered to loopback peers only); leave it on loopback
    /// unless the figures are meant to be public. `"off"`: no admin listener. Default
    /// `127.0.0.1:9191`.
    #[serde(with = "optional_addr")]
    pub admin_listen: Option<SocketAddr>,
    /// Bytes per second uploaded to WebRTC peers, every swarm together; 0 means no cap.
    /// Default 12 500 000 (100 Mbit/s).
    pub upload_bytes_per_sec: u64,
    /// Most WebRTC peers connected at once, every swarm together. Default 200.
    pub max_peers: usize,
    /// Most videos seeded over WebRTC at once (the others are served over HTTP only); each gets
    /// an equal share of `upload_bytes_per_sec` and `max_peers`. Default 8.
    pub max_seeded_videos: usize,
    /// Videos read from each list of a PeerTube origin per check (`count`, 1 to 100, PeerTube's
    /// cap). Default 50.
    pub list_count: u32,
    /// Shortest `min_lifetime_secs` allowed for `most-views`, `trending` and `recently-added`.
    /// Default 36 000 (10 h, PeerTube's floor).
    pub min_lifetime_floor_secs: u64,
    /// The strategies, evaluated in this order (a video held by one is not picked by a later
    /// one). Default `most-watched-now` (4 GiB, 1 h) then `most-views` (4 GiB, 48 h).
    pub strategies: Vec<StrategyConfig>,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            manual: Vec::new(),
            check_interval_secs: 60,
            cache_dir: PathBuf::from("segswarm-mirror/cache"),
            cache_bytes: 10 * GIB,
            database: PathBuf::from("segswarm-mirror/state.sqlite3"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9190)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9191))),
            upload_bytes_per_sec: 12_500_000,
            max_peers: 200,
            max_seeded_videos: 8,
            list_count: 50,
            min_lifetime_floor_secs: 10 * HOUR,
            strategies: vec![
                StrategyConfig {
                    strategy: Strategy::MostWatchedNow,
                    size_bytes: 4 * GIB,
                    min_lifetime_secs: HOUR,
                    min_views: None,
                    min_peers: None,
                },
                StrategyConfig {
                    strategy: Strategy::MostViews,
                    size_bytes: 4 * GIB,
                    min_lifetime_secs: 48 * HOUR,
                    min_views: None,
                    min_peers: None,
                },
            ],
        }
    }
}

/// What an origin URL names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum OriginSpec {
    /// A PeerTube instance: `scheme://host[:port]`, no trailing slash.
    PeerTube(String),
    /// A plain HLS master playlist.
    Hls(String),
}

/// Parses an origin URL: an `.m3u8` path is an HLS master playlist, anything else a PeerTube
/// instance (its path is dropped).
pub fn parse_origin(url: &str) -> Result<OriginSpec, String> {
    let u = Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    let Some(host) = u.host_str() else {
        return Err(format!("{url:?} has no host"));
    };
    if u.path().ends_with(".m3u8") {
        return Ok(OriginSpec::Hls(u.to_string()));
    }
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(OriginSpec::PeerTube(format!(
        "{}://{host}{port}",
        u.scheme()
    )))
}

impl MirrorConfig {
    /// Reads and validates a TOML file; errors name the file and line.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { line, message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                line,
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Every setting, defaults included, as TOML (what `--print-config` prints).
    pub fn to_toml(&self) -> String {
        // Plain strings, numbers, paths and arrays of tables: serializing cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The origins, parsed.
    pub fn origin_specs(&self) -> Vec<OriginSpec> {
        self.origins
            .iter()
            .filter_map(|o| parse_origin(o).ok())
            .collect()
    }

    /// Checks what TOML types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| Err(ConfigError::Invalid { field, message });
        let mut seen = BTreeSet::new();
        for (i, o) in self.origins.iter().enumerate() {
            let spec = match parse_origin(o) {
                Ok(s) => s,
                Err(m) => return invalid(format!("origins[{i}]"), m),
            };
            if !seen.insert(spec) {
                return invalid(format!("origins[{i}]"), format!("{o:?} is listed twice"));
            }
        }
        for (i, m) in self.manual.iter().enumerate() {
            let hls = matches!(parse_origin(m), Ok(OriginSpec::Hls(_)));
            if !hls {
                if let Err(e) = parse_video_url(m) {
                    return invalid(
                        format!("manual[{i}]"),
                        format!("{e} (or an HLS master playlist URL ending in .m3u8)"),
                    );
                }
            }
        }
        if self.check_interval_secs == 0 {
            return invalid("check_interval_secs".into(), "must be at least 1".into());
        }
        if self.cache_bytes == 0 {
            return invalid("cache_bytes".into(), "must be at least 1".into());
        }
        if self.cache_dir.as_os_str().is_empty() {
            return invalid("cache_dir".into(), "must not be empty".into());
        }
        if self.database.as_os_str().is_empty() {
            return invalid("database".into(), "must not be empty".into());
        }
        if self.max_seeded_videos == 0 {
            return invalid("max_seeded_videos".into(), "must be at least 1".into());
        }
        if !(1..=100).contains(&self.list_count) {
            return invalid(
                "list_count".into(),
                "must be 1 to 100 (PeerTube answers at most 100 per page)".into(),
            );
        }
        let mut kinds = BTreeSet::new();
        let mut total = 0u64;
        for (i, s) in self.strategies.iter().enumerate() {
            let field = |name: &str| format!("strategies[{i}].{name}");
            if s.strategy == Strategy::Manual {
                return invalid(
                    field("strategy"),
                    "manual entries go in `manual`, not in `strategies`".into(),
                );
            }
            if !kinds.insert(s.strategy) {
                return invalid(
                    field("strategy"),
                    format!("{} is listed twice", s.strategy.as_str()),
                );
            }
            if s.size_bytes == 0 {
                return invalid(field("size_bytes"), "must be at least 1".into());
            }
            total = total.saturating_add(s.size_bytes);
            // PeerTube refuses a min_lifetime under 10 h for its strategies: each pick copies a
            // whole video from the origin, and a short lifetime lets the videos near the cut line
            // be dropped and fetched again at every check, costing the origin more than the
            // mirror saves it. Followed, with the floor a setting so that tests (and operators
            // who know their origin) can lower it. `most-watched-now` is exempt: following the
            // viewers of this minute is its point.
            if s.strategy != Strategy::MostWatchedNow
                && s.min_lifetime_secs < self.min_lifetime_floor_secs
            {
                return invalid(
                    field("min_lifetime_secs"),
                    format!(
                        "{} is under min_lifetime_floor_secs ({}; PeerTube's floor is 10 h)",
                        s.min_lifetime_secs, self.min_lifetime_floor_secs
                    ),
                );
            }
            if s.min_views.is_some() && s.strategy != Strategy::RecentlyAdded {
                return invalid(
                    field("min_views"),
                    "only recently-added has min_views".into(),
                );
            }
            if s.min_peers.is_some() && s.strategy != Strategy::MostWatchedNow {
                return invalid(
                    field("min_peers"),
                    "only most-watched-now has min_peers".into(),
                );
            }
        }
        if total > self.cache_bytes {
            return invalid(
                "strategies".into(),
                format!(
                    "the strategies' size_bytes add up to {total}, more than cache_bytes ({})",
                    self.cache_bytes
                ),
            );
        }
        Ok(())
    }
}

/// A socket address, or `"off"` for none.
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(a) => s.collect_str(a),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is neither an address (like 127.0.0.1:9191) nor \"off\""
            ))
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_field(text: &str) -> String {
        match MirrorConfig::from_toml(text) {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_print_and_parse_back() {
        let d = MirrorConfig::default();
        d.validate().unwrap();
        let text = d.to_toml();
        for key in [
            "check_interval_secs",
            "cache_bytes",
            "listen",
            "[[strategies]]",
            "most-watched-now",
            "min_lifetime_floor_secs",
        ] {
            assert!(text.contains(key), "{key} missing from\n{text}");
        }
        assert_eq!(MirrorConfig::from_toml(&text).unwrap(), d);
        assert_eq!(MirrorConfig::from_toml("").unwrap(), d);
        assert!(d.listen.ip().is_loopback());
    }

    #[test]
    fn a_full_file_parses() {
        let c = MirrorConfig::from_toml(
            r#"
            origins = ["https://peertube.example/", "http://127.0.0.1:9000/live/master.m3u8"]
            manual = ["https://peertube.example/w/9c9de5e8-0a1e-484a-b099-e80766180a6d"]
            cache_bytes = 1000
            [[strategies]]
            strategy = "recently-added"
            size_bytes = 600
            min_lifetime_secs = 36000
            min_views = 10
            [[strategies]]
            strategy = "most-watched-now"
            size_bytes = 400
            min_lifetime_secs = 60
            min_peers = 2
            "#,
        )
        .unwrap();
        assert_eq!(c.strategies[0].min_views(), 10);
        assert_eq!(c.strategies[1].min_peers(), 2);
        assert_eq!(
            c.origin_specs(),
            vec![
                OriginSpec::PeerTube("https://peertube.example".into()),
                OriginSpec::Hls("http://127.0.0.1:9000/live/master.m3u8".into()),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("cache_byte = 3", "cache_byte"),
            (
                "[[strategies]]\nstrategy = \"trending\"\nsize_bytes = 1\nmin_lifetime_secs = 36000\nsize = 2",
                "size",
            ),
        ] {
            match MirrorConfig::from_toml(text) {
                Err(e @ ConfigError::Parse { .. }) => {
                    let m = e.to_string();
                    assert!(m.contains(&format!("`{key}`")), "{m}");
                }
                other => panic!("{other:?}"),
            }
        }
        let e = MirrorConfig::from_toml("[[strategies]]\nstrategy = \"fastest\"").unwrap_err();
        assert!(e.to_string().contains("fastest"), "{e}");
    }

    #[test]
    fn values_out_of_range_are_refused() {
        let s = |body: &str| format!("[[strategies]]\n{body}");
        assert_eq!(invalid_field("origins = [\"ftp://x\"]"), "origins[0]");
        assert_eq!(
            invalid_field("origins = [\"https://a/\", \"https://a\"]"),
            "origins[1]"
        );
        assert_eq!(invalid_field("manual = [\"https://a/about\"]"), "manual[0]");
        assert_eq!(
            invalid_field("check_interval_secs = 0"),
            "check_interval_secs"
        );
        assert_eq!(invalid_field("list_count = 101"), "list_count");
        assert_eq!(invalid_field("max_seeded_videos = 0"), "max_seeded_videos");
        assert_eq!(
            invalid_field(&s(
                "strategy = \"most-views\"\nsize_bytes = 1\nmin_lifetime_secs = 3600"
            )),
            "strategies[0].min_lifetime_secs"
        );
        assert_eq!(
            invalid_field(&s(
                "strategy = \"manual\"\nsize_bytes = 1\nmin_lifetime_secs = 36000"
            )),
            "strategies[0].strategy"
        );
        assert_eq!(
            invalid_field(&s(
                "strategy = \"trending\"\nsize_bytes = 1\nmin_lifetime_secs = 36000\nmin_views = 3"
            )),
            "strategies[0].min_views"
        );
        assert_eq!(
            invalid_field(&format!(
                "cache_bytes = 10\n{}",
                s("strategy = \"trending\"\nsize_bytes = 11\nmin_lifetime_secs = 36000")
            )),
            "strategies"
        );
        let twice = "strategy = \"trending\"\nsize_bytes = 1\nmin_lifetime_secs = 36000\n";
        assert_eq!(
            invalid_field(&format!("{}{}", s(twice), s(twice))),
            "strategies[1].strategy"
        );
        let off = MirrorConfig::from_toml("admin_listen = \"off\"").unwrap();
        assert_eq!(off.admin_listen, None);
        assert_eq!(MirrorConfig::from_toml(&off.to_toml()).unwrap(), off);
        let e = MirrorConfig::from_toml("admin_listen = \"somewhere\"").unwrap_err();
        assert!(e.to_string().contains("off"), "{e}");
        // The floor is a setting: lowered, short lifetimes pass.
        MirrorConfig::from_toml(&format!(
            "min_lifetime_floor_secs = 1\n{}",
            s("strategy = \"most-views\"\nsize_bytes = 1\nmin_lifetime_secs = 5")
        ))
        .unwrap();
    }
}
