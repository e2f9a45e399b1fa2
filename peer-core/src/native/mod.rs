//! The native driver (feature `native`): the sans-IO core driven on tokio over real sockets.
//!
//! - [`rtc`]: WebRTC data channels (the `webrtc` crate), full-SDP offers and answers;
//! - [`http`]: the HTTP segment fetcher (reqwest): origin and mirrors, Range resume, timeouts;
//! - [`mirror`]: the mirror daemon's parts: configuration, strategies, state database, cache;
//! - [`origin`]: an HTTP origin serving an HLS directory (Range, CORS, content types);
//! - [`peertube`]: a PeerTube video resolved through the REST API and mirrored, verified, into a
//!   cache directory the seeder can seed;
//! - [`tracker_hub`]: raw-frame tracker sockets (tokio-tungstenite), one per URL, shared by every
//!   engine of the process, reconnecting with backoff;
//! - [`driver`]: one engine run on tokio over all of the above ([`driver::PeerDriver`]);
//! - [`seeder`]: a peer holding every segment of an HLS directory's streams, one swarm per stream
//!   ([`seeder::Seeder`]);
//! - [`viewer`]: watch a stream through the swarm: playlist, variant, swarm identity, a headless
//!   real-time player ([`viewer::Viewer`]).

pub mod driver;
pub mod http;
pub mod mirror;
pub mod origin;
pub mod peertube;
pub mod rtc;
pub mod seeder;
pub mod tracker_hub;
pub mod viewer;
