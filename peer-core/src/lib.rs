//! segswarm-core: the sans-IO peer engine.
//!
//! Protocol logic takes inputs (bytes, events, the current time) and returns outputs (bytes to send,
//! requests for IO, timers); it never touches a socket or a clock, so one core runs natively, in the
//! browser and in the simulator.
//!
//! Modules, one concept each:
//! - [`wire`]: p2p-media-loader v2 data-channel framing and commands;
//! - [`stream`]: swarm ids, info hashes and segment ids as p2p-media-loader 2.3 derives them;
//! - [`id_scheme`]: the swarm id schemes spoken (`pml-2.3`, `pml-2.2`, `peertube`);
//! - [`id_hash`]: MD5 and SHA-1 of identifiers (compact loops, for the browser module's size);
//! - `tracker_client`: the client side of the WebTorrent WebSocket tracker protocol;
//! - `backoff`: tracker reconnect delays (exponential, full jitter), shared by both drivers;
//! - `store`: the segment cache, bounded in bytes;
//! - `integrity`: SHA-256 segment manifests (PeerTube `segments-sha256.json`);
//! - `scheduler`: per wanted segment, which peer or which HTTP source, and when;
//! - `engine`: ties them together: application methods, one IO input path, `poll_*` outputs;
//! - `hls`: HLS media playlists parsed into the engine's segment list;
//! - `http_range`: the `Range` header and `Content-Range` parsing of both drivers' HTTP downloads;
//! - `segment_check`: whole MPEG-TS packets and fMP4 boxes, to skip half-written segment files;
//! - `sim` (not in the wasm build): a deterministic swarm simulator driving many engines in memory;
//! - `player` (not in the wasm build): the headless player of the simulator and `segswarm play`;
//! - `rng`: the engine's seeded random number generator (smaller one in the wasm build);
//! - `rtc_settings`: ICE servers and the data-channel limits' defaults of both drivers;
//! - [`peertube`]: PeerTube video URLs, REST API answers and the id scheme of its players;
//! - `vecmap`: a sorted-vector map for the engine's small maps (smaller wasm than `BTreeMap`).
//! - `queue`: output queues as plain vectors taken from the front (smaller wasm than `VecDeque`).
//! - `native` (feature `native`): the tokio driver — WebRTC data channels, the tracker socket and
//!   the HTTP fetcher.

pub mod backoff;
pub mod download_table;
pub mod engine;
pub mod hls;
pub mod http_range;
pub mod id_hash;
pub mod id_scheme;
pub mod integrity;
#[cfg(feature = "native")]
pub mod native;
pub mod peertube;
#[cfg(not(target_arch = "wasm32"))]
pub mod player;
mod queue;
pub mod rng;
pub mod rtc_settings;
pub mod scheduler;
pub mod segment_check;
#[cfg(not(target_arch = "wasm32"))]
pub mod sim;
pub mod store;
pub mod stream;
pub mod time;
pub mod tracker_client;
pub mod vecmap;
pub mod wire;
