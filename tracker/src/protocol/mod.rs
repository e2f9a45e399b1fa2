//! Wire formats, parsing and encoding only: the WebTorrent WebSocket JSON messages ([`ws`], the
//! shared codec `segswarm-ws-protocol`) and the BitTorrent HTTP announce/scrape queries with their
//! bencoded responses ([`http`]).
//!
//! Nothing here touches sockets, clocks or the roster; every function is a pure transformation.

pub mod http;

pub use segswarm_ws_protocol as ws;
pub use segswarm_ws_protocol::{AnnounceEvent, ErrorKind, Id20, InfoHash, OfferId, PeerId};
