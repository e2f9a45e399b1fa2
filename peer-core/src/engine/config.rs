//! The engine's settings: [`EngineConfig`] and its defaults.

use super::*;

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our 20-byte peer id (p2p-media-loader style: `-PM` + version + `-` + random).
    pub peer_id: PeerId,
    /// The swarm's info hash (see `stream`).
    pub info_hash: InfoHash,
    /// Live stream (sliding window store, live scheduling) or VOD.
    pub live: bool,
    /// HTTP base URLs: the origin first, then mirrors. Segment paths are appended.
    pub http_bases: Vec<String>,
    /// Scheduling settings (policy, windows, concurrency).
    pub scheduler: SchedulerConfig,
    /// Segment cache cap in bytes. Default 256 MiB.
    pub store_max_bytes: u64,
    /// Tracker client settings.
    pub tracker: TrackerClientConfig,
    /// Most peer connections (connected and connecting). Default 20.
    pub max_peers: usize,
    /// Upload budget in bytes/s; `None` = unlimited. Default `None`.
    pub upload_rate: Option<u64>,
    /// Upload burst allowance, bytes. Default 64 KiB.
    pub upload_burst: u64,
    /// Most peers served at once; further requests are answered with `SegmentAbsent`, so that
    /// the requester turns to another holder and each upload runs at full speed (a segment spreads
    /// fastest when every holder serves one peer at a time). Default 1.
    pub max_concurrent_uploads: usize,
    /// Requests that find all upload slots busy wait in a queue of at most this many (served in
    /// arrival order) instead of being answered `SegmentAbsent` at once. 0 turns queueing off.
    /// Default 1.
    pub max_queued_uploads: usize,
    /// A request is queued only when the bytes ahead of it, at [`EngineConfig::upload_rate`], go
    /// out within this time (below the requester's 2 s first-byte timeout); otherwise it is
    /// answered `SegmentAbsent`. Without an upload rate only the queue length bounds the wait.
    /// Default 0.5 s (why: BENCHMARKS.md, "Why the peer settings are what they are").
    pub max_upload_queue_wait: Duration,
    /// Upload nothing: answer every request with `SegmentAbsent` and announce nothing.
    /// Default false.
    pub consume_only: bool,
    /// Cut-through relay: serve a request for a segment still downloading once its size is known,
    /// streaming its bytes as they arrive (the last byte only after the integrity check), and
    /// announce segments loading from peers as loading (`p`). p2p-media-loader peers never ask
    /// for a loading segment, so nothing changes for them. Default true.
    pub relay_partial: bool,
    /// Largest data-channel message we send, bytes. Default [`MAX_MESSAGE_BYTES`] (64 KiB − 1).
    pub max_message_bytes: usize,
    /// Delay between a peer's announcement and the planning it triggers (announcements arriving
    /// meanwhile are planned together). Default 50 ms.
    pub announce_replan_delay: Duration,
    /// Largest segment accepted from a peer (`SegmentData` size), bytes; a larger one is a protocol
    /// violation. Default 64 MiB.
    pub max_segment_bytes: u64,
    /// Most `SegmentRequest`s in a row for one segment a peer may send us: a request for the
    /// segment already being sent to it is ignored, and one for the segment just sent to it is
    /// served again, both counted ([`Stats::upload_requests_repeated`]); the request after this
    /// many bans the peer (each one would queue the whole segment again). Default 4.
    pub max_repeated_requests: u32,
    /// Refuse P2P without an integrity manifest: until [`Engine::set_manifest`] arrives, every
    /// segment is loaded over HTTP, and nothing is served or announced to peers (browser option
    /// `requireSegmentsSha256`). Without it and without a manifest, peer bytes are trusted as they
    /// come. Default false.
    pub require_manifest: bool,
    /// With a manifest, a segment from peers that it does not list (yet: live-edge segments reach
    /// the engine before the manifest is reloaded) is neither played nor relayed; it waits this
    /// long for a manifest that lists it, then is dropped and fetched over HTTP. Default 4 s.
    pub unverified_wait: Duration,
    /// Most bytes of such segments held at once; past it the oldest is dropped and fetched over
    /// HTTP. Default 32 MiB.
    pub max_unverified_bytes: u64,
    /// Seed of the engine's random choices (offer ids, request ids, baseline randomness).
    pub seed: u64,
}

impl EngineConfig {
    /// Defaults for a peer id, a swarm and HTTP bases.
    pub fn new(peer_id: PeerId, info_hash: InfoHash, live: bool, http_bases: Vec<String>) -> Self {
        Self {
            peer_id,
            info_hash,
            live,
            http_bases,
            scheduler: SchedulerConfig::default(),
            store_max_bytes: StoreConfig::DEFAULT_MAX_BYTES,
            tracker: TrackerClientConfig::new(peer_id),
            max_peers: 20,
            upload_rate: None,
            upload_burst: 64 * 1024,
            max_concurrent_uploads: 1,
            max_queued_uploads: 1,
            max_upload_queue_wait: Duration::from_millis(500),
            consume_only: false,
            relay_partial: true,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_segment_bytes: 64 * 1024 * 1024,
            announce_replan_delay: Duration::from_millis(50),
            max_repeated_requests: 4,
            require_manifest: false,
            unverified_wait: Duration::from_secs(4),
            max_unverified_bytes: 32 * 1024 * 1024,
            seed: 0,
        }
    }
}
