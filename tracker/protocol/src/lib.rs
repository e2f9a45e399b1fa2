//! The WebTorrent tracker protocol over WebSocket (JSON text frames), as spoken by the npm
//! `bittorrent-tracker` client and p2p-media-loader: typed messages both ways, shared by the
//! tracker, the peers' client, the simulator and the load generator (as aquatic's `ws_protocol`).
//!
//! - [`request`]: what a client sends (announce with offers or an answer, scrape): the tracker's
//!   one-pass lenient `parse` (feature `tracker`), and the client's encoders ([`AnnounceRequest`], [`AnswerRequest`]).
//! - [`response`]: what a tracker sends (announce response, relayed offer and answer, scrape
//!   response, failure, warning): the tracker's encoders (feature `tracker`) and the client's
//!   [`TrackerFrame`] reader.
//!
//! Ids (`info_hash`, `peer_id`, `to_peer_id`, `offer_id`) are one type, [`Id20`], carried as
//! 20-character *binary strings* (each character U+0000..=U+00FF is one byte). Parsing is bounded
//! and never panics; no IO, no clock, no async runtime (it builds for `wasm32-unknown-unknown`).

#[macro_use]
mod lenient;

mod error;
mod event;
mod id;
pub mod request;
pub mod response;

pub use error::ErrorKind;
pub use event::AnnounceEvent;
pub use id::{
    binary_string_len, hex_digit, id_from_json, id_json, push_binary_string, Id20, InfoHash,
    OfferId, PeerId,
};
#[cfg(feature = "tracker")]
pub use request::{
    parse, Action, WsAnnounce, WsAnswer, WsOffer, WsParseError, WsRequest, WsScrape,
    MAX_PARSED_OFFERS,
};
pub use request::{AnnounceRequest, AnswerRequest, OfferRequest};
#[cfg(feature = "tracker")]
pub use response::{
    encode_announce_response, encode_answer, encode_answer_json, encode_failure, encode_offer,
    encode_scrape, OfferRelays, ScrapeCounts,
};
pub use response::{ResponseError, TrackerAnnounce, TrackerFrame, TrackerMessage};

#[cfg(all(test, feature = "tracker"))]
mod tests;
