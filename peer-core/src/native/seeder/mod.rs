//! The seeder: serves an HLS directory to the swarms of its streams, as a peer holding every segment.
//!
//! A video server (an origin, a mirror, a home server) runs a [`Seeder`] on the directory its
//! packager writes: VOD, or live with ffmpeg adding segments to a sliding playlist. The seeder
//!
//! - finds the playlist players load (a multivariant playlist, or a single media playlist) and joins
//!   one swarm per stream (each variant, each audio rendition with a URI), with the swarm ids and
//!   info hashes of [`SeederConfig::id_scheme`] (default p2p-media-loader 2.3's) derived from the
//!   public playlist URL ([`SeederConfig::public_url`]), from an explicit
//!   [`SeederConfig::swarm_id`], or for the `peertube` scheme from
//!   [`SeederConfig::peertube_uuid`] and each variant's resolution;
//! - rescans the directory every [`SeederConfig::rescan_interval`]: new segments are checked, hashed
//!   and handed to that stream's engine ([`Engine::add_segment`](crate::engine::Engine::add_segment)), the playlist window is followed
//!   ([`Engine::set_playlist`](crate::engine::Engine::set_playlist));
//! - writes `segments-sha256.json` (PeerTube's format, [`SegmentManifest`]) next to the segments, so
//!   players that verify can, and rewrites it as a live window slides;
//! - refuses what it cannot vouch for: a playlist that does not parse is reported and the previous
//!   good one kept; a listed segment that is missing, outside the directory, larger than
//!   [`ScanSettings::max_segment_bytes`], or looks half-written (an MPEG-TS file that is not whole
//!   188-byte packets each starting with the sync byte; an fMP4 file whose boxes do not add up to
//!   its size; any other file modified less than [`ScanSettings::settle_time`] ago) is reported and
//!   skipped: never announced, never served, not in the manifest. Each problem is logged once
//!   (`tracing` warn) and listed in [`SeederStats::problems`] while it lasts.
//!
//! Each stream's swarm is joined with [`SeederConfig::offers_per_announce`] WebRTC offers an
//! announce, which the tracker relays to as many viewers picked at random. To reach a larger
//! swarm the seeder re-announces with fresh offers every [`SeederConfig::fill_announce_interval`]
//! while it has room for more peers and its offers are taken, and falls back to the tracker's
//! interval once two rounds in a row find no taker; offers that are not answered are dropped
//! after [`SeederConfig::offer_timeout`], freeing their slots.
//!
//! The scan ([`Scanner`]) is separate from the network side, so it can be tested on a directory
//! alone. Each stream's engine runs on its own [`PeerDriver`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::watch;

use super::driver::{DriverHandle, DriverSettings, PeerDriver};
use crate::engine::{EngineConfig, SegmentInfo};
use crate::hls::{is_master_playlist, parse_media_playlist};
use crate::id_scheme::{IdScheme, IdSchemeError, StreamKey};
use crate::integrity::{sha256, ByteRange, SegmentManifest, Sha256Digest};
use crate::stream::{
    generate_peer_id_with_prefix, generate_stream_short_id, master_playlist_streams, ShortIdProps,
    StreamIdentity, StreamType,
};
use crate::wire::SegmentId;

mod config;
mod scan;
mod stream;

pub use self::config::SeederConfig;
pub use self::scan::{
    find_entry, read_segment, Entry, Scan, ScanSettings, ScannedMedia, ScannedSegment,
    ScannedStream, Scanner,
};
use self::stream::run;
pub use crate::segment_check::{check_mp4_boxes, check_mpeg_ts};

/// File name of the integrity manifest written next to the segments.
pub const MANIFEST_FILE_NAME: &str = "segments-sha256.json";

/// Why a seeder could not start.
#[derive(Debug, thiserror::Error)]
pub enum SeederError {
    /// The directory (or playlist) given cannot be used.
    #[error("{path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory without a playlist in it.
    #[error("no .m3u8 playlist in {0}; name the playlist file players load")]
    NoPlaylist(PathBuf),
    /// A directory with several candidate playlists.
    #[error("several playlists in {dir} ({candidates}); name the one players load")]
    AmbiguousPlaylist {
        /// The directory.
        dir: PathBuf,
        /// The candidates, comma separated.
        candidates: String,
    },
    /// The public URL is not an absolute http(s) URL.
    #[error("public URL {0:?} is not an absolute http:// or https:// URL")]
    BadPublicUrl(String),
    /// The peer driver failed to start.
    #[error("peer driver: {0}")]
    Driver(String),
    /// The id scheme cannot name the swarms (the `peertube` scheme without a video uuid).
    #[error("{0}")]
    IdScheme(#[from] IdSchemeError),
}

/// Statistics of one seeded stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// Its media playlist, relative to the seeded directory.
    pub playlist: String,
    /// p2p-media-loader stream swarm id.
    pub stream_swarm_id: String,
    /// Tracker info hash (20 ASCII characters).
    pub info_hash: String,
    /// Live or VOD.
    pub live: bool,
    /// Segments held and announced.
    pub segments: usize,
    /// Their bytes.
    pub segment_bytes: u64,
    /// Segments listed but skipped (broken, missing, half-written) in the last scan.
    pub skipped: usize,
    /// Bytes sent to peers.
    pub uploaded_bytes: u64,
    /// Peers with an open data channel now.
    pub peers: usize,
    /// Peers connected since the start.
    pub peers_connected_total: u64,
}

/// Statistics of a [`Seeder`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeederStats {
    /// One entry per stream, in playlist order.
    pub streams: Vec<StreamStats>,
    /// Problems found by the last scan.
    pub problems: Vec<String>,
    /// Scans done.
    pub scans: u64,
    /// Manifest files written (counting rewrites).
    pub manifests_written: u64,
}

impl SeederStats {
    /// Bytes sent to peers, all streams.
    pub fn uploaded_bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.uploaded_bytes).sum()
    }
}

/// A running seeder. See the module documentation.
#[derive(Debug)]
pub struct Seeder {
    stats: Arc<Mutex<SeederStats>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    root_url: String,
    entry: Entry,
}

struct StreamState {
    driver: DriverHandle,
    playlist_path: String,
    identity: StreamIdentity,
    live: bool,
    /// Segments handed to the engine: their size and hash.
    added: BTreeMap<SegmentId, (u64, Sha256Digest)>,
    playlist: Vec<SegmentInfo>,
    skipped: usize,
}

impl Seeder {
    /// Finds the entry playlist, scans once (problems are reported, not fatal: a live directory may
    /// still be empty) and starts seeding. Must run inside a tokio runtime.
    pub async fn start(config: SeederConfig) -> Result<Self, SeederError> {
        if config.tracker_urls.is_empty() {
            return Err(SeederError::Driver("no tracker URL".into()));
        }
        let path = config.path.clone();
        let entry = tokio::task::spawn_blocking(move || find_entry(&path))
            .await
            .map_err(|e| SeederError::Driver(e.to_string()))??;
        let scanner = Scanner::new(
            entry.clone(),
            &config.public_url,
            config.swarm_id.clone(),
            config.scan.clone(),
        )?
        .with_id_scheme(
            config.id_scheme,
            config.swarm_id.as_deref(),
            config.peertube_uuid.as_deref(),
        )?;
        let root_url = scanner.root_url().to_owned();
        let stats = Arc::new(Mutex::new(SeederStats::default()));
        let (stop, stop_rx) = watch::channel(false);
        tracing::info!(
            dir = %entry.root.display(),
            playlist = %entry.playlist,
            public_url = %config.public_url,
            id_scheme = %config.id_scheme,
            "seeding"
        );
        let task = tokio::spawn(run(config, scanner, stats.clone(), stop_rx));
        Ok(Self {
            stats,
            stop,
            task: Some(task),
            root_url,
            entry,
        })
    }

    /// The statistics now.
    pub fn stats(&self) -> SeederStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The directory and entry playlist seeded.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The URL of the seeded directory as players see it (ends with `/`).
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// Leaves every swarm (announces `stopped`, closes peers) and returns the final statistics.
    pub async fn shutdown(mut self) -> SeederStats {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stats()
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests;
