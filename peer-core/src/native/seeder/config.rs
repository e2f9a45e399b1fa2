//! The seeder's settings: [`SeederConfig`] and its defaults.

use super::*;

/// Settings of a [`Seeder`].
#[derive(Debug, Clone)]
pub struct SeederConfig {
    /// The directory to seed, or the playlist file players load (see [`find_entry`]).
    pub path: PathBuf,
    /// The URL players load the entry playlist from; swarm ids derive from it (query dropped)
    /// unless [`SeederConfig::swarm_id`] is set. Required.
    pub public_url: String,
    /// An explicit swarm id (p2p-media-loader's `swarmId`) the site also gives its players.
    /// Default none. Not used by the `peertube` scheme.
    pub swarm_id: Option<String>,
    /// How swarm ids and info hashes are derived: `pml-2.3` (p2p-media-loader 2.3 players, the
    /// default), `pml-2.2` (p2p-media-loader 2.2 players, as in PeerTube 7.1 to 8.0), or
    /// `peertube` (PeerTube's `pt-v2-<uuid>-...` ids; needs [`SeederConfig::peertube_uuid`], and
    /// each variant's resolution is the smaller side of its `RESOLUTION`).
    pub id_scheme: IdScheme,
    /// The PeerTube video's uuid, for the `peertube` id scheme. Default none.
    pub peertube_uuid: Option<String>,
    /// WebSocket tracker URLs. Required (at least one).
    pub tracker_urls: Vec<String>,
    /// How often the directory is scanned for new segments and playlist changes. Default 1 s.
    pub rescan_interval: Duration,
    /// Write `segments-sha256.json` next to the segments. Default true.
    pub write_manifest: bool,
    /// Scan limits: largest segment (default 64 MiB) and playlist (4 MiB), settle time for files
    /// of unchecked formats (1 s).
    pub scan: ScanSettings,
    /// Most peer connections per stream. Default 50.
    pub max_peers: usize,
    /// Upload budget per stream, bytes/s; `None` = unlimited. Default `None`.
    pub upload_rate: Option<u64>,
    /// Peers served at once per stream (more requests get `SegmentAbsent` and go elsewhere).
    /// Default 4.
    pub max_concurrent_uploads: usize,
    /// Segment memory per stream, bytes (older segments leave first). Default 512 MiB.
    pub store_max_bytes: u64,
    /// WebRTC offers sent with each announce (and `numwant`): how many viewers the seeder reaches
    /// per announce. Trackers cap what they relay (segswarm-tracker and aquatic: 10). Default 10.
    pub offers_per_announce: u32,
    /// Re-announce with fresh offers after this time instead of the tracker's interval while the
    /// seeder has room and the last round's offers found takers (one announce reaches only
    /// [`SeederConfig::offers_per_announce`] viewers). `None` = the tracker's interval only.
    /// Default 30 s (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub fill_announce_interval: Option<Duration>,
    /// Early announces in a row whose offers got no answer that end the fill. The tracker sends
    /// an announce's offers to random peers of the swarm, connected ones included, so with few
    /// viewers left unconnected a round can miss them all and the fill ends before them (they
    /// are reached at the next regular announce, or through their own offers). Default 2.
    pub fill_idle_rounds: u32,
    /// An offer not answered within this time is dropped and its connection slot freed. Offers
    /// the tracker relays to viewers already connected or full are never answered, so during a
    /// fill this bounds how many slots and sockets they hold. Default 20 s (an answer takes the
    /// answerer's ICE gathering, at most 5 s in simple-peer, and two relays; the JavaScript
    /// client waits 50 s).
    pub offer_timeout: Duration,
    /// Tracker, WebRTC and HTTP settings of the peer drivers.
    pub driver: DriverSettings,
    /// Test only: flip bytes in every segment handed to peers (the manifest keeps the true
    /// hashes), so viewers' integrity checks can be exercised. Default false.
    pub corrupt_uploads: bool,
}

impl SeederConfig {
    /// Defaults for seeding `path`, loaded by players from `public_url`, through `tracker_urls`.
    pub fn new(
        path: impl Into<PathBuf>,
        public_url: impl Into<String>,
        tracker_urls: Vec<String>,
    ) -> Self {
        Self {
            path: path.into(),
            public_url: public_url.into(),
            swarm_id: None,
            id_scheme: IdScheme::default(),
            peertube_uuid: None,
            tracker_urls,
            rescan_interval: Duration::from_secs(1),
            write_manifest: true,
            scan: ScanSettings::default(),
            max_peers: 50,
            upload_rate: None,
            max_concurrent_uploads: 4,
            store_max_bytes: 512 * 1024 * 1024,
            offers_per_announce: 10,
            fill_announce_interval: Some(Duration::from_secs(30)),
            fill_idle_rounds: 2,
            offer_timeout: Duration::from_secs(20),
            driver: DriverSettings::new(Vec::new()),
            corrupt_uploads: false,
        }
    }

    /// Defaults for seeding a PeerTube video copied into `master_path` (its master playlist in
    /// the copy, [`RemoteMirror::master_playlist_path`](crate::native::peertube::RemoteMirror::master_playlist_path)),
    /// in the swarms its players join: the instance's master URL, `id_scheme` (what the
    /// instance's version calls for), the video's uuid for the `peertube` scheme, and the
    /// WebSocket trackers of its `trackerUrls`. The copy keeps the instance's own
    /// `segments-sha256.json`, which players check against, so none is written.
    pub fn peertube(
        master_path: impl Into<PathBuf>,
        video: &crate::native::peertube::ResolvedVideo,
        id_scheme: IdScheme,
    ) -> Self {
        let mut config = Self::new(
            master_path,
            video.master_url.clone(),
            video.ws_trackers.clone(),
        );
        config.id_scheme = id_scheme;
        config.peertube_uuid =
            (id_scheme == IdScheme::PeerTube).then(|| video.details.uuid.clone());
        config.write_manifest = false;
        config
    }
}
