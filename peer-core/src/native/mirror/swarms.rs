//! The mirrored videos seeded over WebRTC, in their origin's own swarms.
//!
//! Each video served from the cache is seeded by one [`Seeder`] on its cache directory, set up
//! as `segswarm seed --peertube` sets it up ([`SeederConfig::peertube`]): the instance's master
//! playlist URL, the id scheme its players use (decided by the instance's version,
//! [`id_scheme_for_version`]), and the WebSocket trackers of the video's `trackerUrls`. The
//! configuration's caps are global: every one of at most [`Swarms::max_videos`] videos gets an
//! equal share of `upload_bytes_per_sec` and `max_peers`, split again between the video's streams
//! (at least one peer per stream), so that all the swarms together stay within the caps. An
//! evicted video leaves its swarms ([`Swarms::leave`], which announces `stopped`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::native::driver::DriverSettings;
use crate::native::peertube::mirror::safe_relative;
use crate::native::peertube::ResolvedVideo;
use crate::native::seeder::{Seeder, SeederConfig, SeederError, SeederStats};
use crate::peertube::{id_scheme_for_version, VersionError};
use crate::stream::master_playlist_streams;

/// Settings of the seeders that are not in the configuration file.
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// Tracker, WebRTC and HTTP settings of the peer drivers (their tracker URLs are the
    /// video's). Defaults of [`DriverSettings`].
    pub driver: DriverSettings,
    /// How often a seeded directory is rescanned. Default 5 s (a mirrored VOD does not change).
    pub rescan_interval: Duration,
    /// Most WebSocket trackers of one video joined (the first of its `trackerUrls`). Default 4.
    pub max_trackers_per_video: usize,
    /// Segment memory of one video's seeder, bytes, split between its streams (the seeders hold
    /// the segments they offer in memory; beyond this the oldest leave). Default 256 MiB.
    pub memory_bytes_per_video: u64,
}

impl Default for SwarmSettings {
    fn default() -> Self {
        Self {
            driver: DriverSettings::new(Vec::new()),
            rescan_interval: Duration::from_secs(5),
            max_trackers_per_video: 4,
            memory_bytes_per_video: 256 * 1024 * 1024,
        }
    }
}

/// Why a video is not seeded.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// Already [`Swarms::max_videos`] videos seeded.
    #[error("already seeding {0} videos, the most allowed (max_seeded_videos)")]
    Full(usize),
    /// The API lists no WebSocket tracker for the video.
    #[error("video {0}: no WebSocket tracker in its trackerUrls")]
    NoTracker(String),
    /// The instance's version does not say which id scheme its players use.
    #[error("video {uuid}: {source}")]
    Version {
        /// The video.
        uuid: String,
        /// Why.
        source: VersionError,
    },
    /// The master playlist URL has no usable file name.
    #[error("video {uuid}: master playlist URL {url:?} names no file of the cache")]
    BadMaster {
        /// The video.
        uuid: String,
        /// The URL (at most 200 characters).
        url: String,
    },
    /// The seeder did not start.
    #[error("video {uuid}: {source}")]
    Seeder {
        /// The video.
        uuid: String,
        /// Why.
        source: SeederError,
    },
}

/// The seeders of the mirrored videos. See the module documentation.
#[derive(Debug)]
pub struct Swarms {
    settings: SwarmSettings,
    upload_bytes_per_sec: u64,
    max_peers: usize,
    max_videos: usize,
    seeders: BTreeMap<String, Seeder>,
}

impl Swarms {
    /// No video seeded yet; `upload_bytes_per_sec` (0: no cap) and `max_peers` are the caps of
    /// all swarms together, shared by at most `max_videos` videos.
    pub fn new(
        settings: SwarmSettings,
        upload_bytes_per_sec: u64,
        max_peers: usize,
        max_videos: usize,
    ) -> Self {
        Self {
            settings,
            upload_bytes_per_sec,
            max_peers,
            max_videos: max_videos.max(1),
            seeders: BTreeMap::new(),
        }
    }

    /// Most videos seeded at once.
    pub fn max_videos(&self) -> usize {
        self.max_videos
    }

    /// The uuids of the videos seeded now.
    pub fn seeded(&self) -> BTreeSet<String> {
        self.seeders.keys().cloned().collect()
    }

    /// Each seeded video's statistics.
    pub fn stats(&self) -> BTreeMap<String, SeederStats> {
        self.seeders
            .iter()
            .map(|(uuid, s)| (uuid.clone(), s.stats()))
            .collect()
    }

    /// Starts seeding `video`, whose files are under `<cache_root>/<uuid>/`. Seeding a video
    /// already seeded does nothing.
    pub async fn join(
        &mut self,
        cache_root: &Path,
        video: &ResolvedVideo,
    ) -> Result<(), SwarmError> {
        let uuid = video.details.uuid.clone();
        if self.seeders.contains_key(&uuid) {
            return Ok(());
        }
        if self.seeders.len() >= self.max_videos {
            return Err(SwarmError::Full(self.max_videos));
        }
        let id_scheme =
            id_scheme_for_version(&video.server_version).map_err(|source| SwarmError::Version {
                uuid: uuid.clone(),
                source,
            })?;
        let master = master_file(&video.master_url).ok_or_else(|| SwarmError::BadMaster {
            uuid: uuid.clone(),
            url: video.master_url.chars().take(200).collect(),
        })?;
        if !safe_relative(&uuid) {
            return Err(SwarmError::BadMaster {
                uuid: uuid.chars().take(80).collect(),
                url: video.master_url.chars().take(200).collect(),
            });
        }
        let master_path = cache_root.join(&uuid).join(master);
        let mut config = SeederConfig::peertube(&master_path, video, id_scheme);
        config
            .tracker_urls
            .truncate(self.settings.max_trackers_per_video);
        if config.tracker_urls.is_empty() {
            return Err(SwarmError::NoTracker(uuid));
        }
        // The master playlist is in the cache, verified and bounded in size by the fetch.
        let streams = std::fs::read_to_string(&master_path)
            .map(|text| master_playlist_streams(&text).len())
            .unwrap_or(1)
            .max(1);
        let shares = u64::try_from(self.max_videos.saturating_mul(streams)).unwrap_or(u64::MAX);
        config.upload_rate =
            (self.upload_bytes_per_sec > 0).then(|| (self.upload_bytes_per_sec / shares).max(1));
        config.max_peers = (self.max_peers / self.max_videos.saturating_mul(streams)).max(1);
        config.store_max_bytes = self.settings.memory_bytes_per_video / streams as u64;
        config.rescan_interval = self.settings.rescan_interval;
        config.driver = self.settings.driver.clone();
        let seeder = Seeder::start(config)
            .await
            .map_err(|source| SwarmError::Seeder {
                uuid: uuid.clone(),
                source,
            })?;
        tracing::info!(%uuid, %id_scheme, streams, "seeding the mirrored video");
        self.seeders.insert(uuid, seeder);
        Ok(())
    }

    /// Leaves the swarms of `uuid` (announces `stopped`); its final statistics, if it was seeded.
    pub async fn leave(&mut self, uuid: &str) -> Option<SeederStats> {
        let seeder = self.seeders.remove(uuid)?;
        tracing::info!(%uuid, "leaving the swarms of the video");
        Some(seeder.shutdown().await)
    }

    /// Leaves every swarm.
    pub async fn shutdown(mut self) {
        for uuid in self.seeded() {
            self.leave(&uuid).await;
        }
    }
}

/// The file name of a master playlist URL (query and fragment dropped), if safe.
fn master_file(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    safe_relative(name).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_file_names_only_safe_files() {
        assert_eq!(
            master_file("https://a/static/hls/u/u-master.m3u8?x=1").as_deref(),
            Some("u-master.m3u8")
        );
        for bad in [
            "https://a/static/",
            "https://a/..",
            "",
            "https://a/x%2F..%2Fy",
        ] {
            assert_eq!(master_file(bad), None, "{bad:?}");
        }
    }
}
