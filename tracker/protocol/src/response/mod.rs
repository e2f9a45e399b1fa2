//! What a tracker sends a client: an announce response, a relayed offer or answer, a scrape
//! response, a failure or a warning. The tracker writes them with the `encode_*` functions and
//! `OfferRelays` (feature `tracker`); a client reads them with [`TrackerFrame`] into a
//! [`TrackerMessage`].

use std::fmt;

use crate::Id20;

#[cfg(feature = "tracker")]
mod encode;
mod fields;
mod parse;

#[cfg(feature = "tracker")]
pub use encode::{
    encode_announce_response, encode_answer, encode_answer_json, encode_failure, encode_offer,
    encode_scrape, OfferRelays, ScrapeCounts,
};
pub use parse::TrackerFrame;

/// A tracker message, its fields checked ([`TrackerFrame::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerMessage {
    /// `failure reason`: the tracker refused a request (no other field is read).
    Failure {
        /// The swarm, when the tracker named a readable one.
        info_hash: Option<Id20>,
        /// The tracker's text.
        reason: String,
        /// It answers an announce: `action` is `announce`, or absent (bittorrent-tracker's reply
        /// to a request it could not parse).
        to_announce: bool,
    },
    /// A `warning message` without an `action`.
    Warning {
        /// The swarm, when the tracker named one.
        info_hash: Option<Id20>,
        /// The tracker's text.
        message: String,
    },
    /// `action` `announce`: an announce response, a relayed offer or a relayed answer.
    Announce(TrackerAnnounce),
    /// `action` `scrape` (its counts are not read).
    Scrape {
        /// The swarm, when the tracker named one.
        info_hash: Option<Id20>,
        /// A `warning message`.
        warning: Option<String>,
    },
}

/// The fields of an `announce` message from the tracker; which are present says what it is (a
/// response has `complete`, a relayed offer `offer`, a relayed answer `answer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerAnnounce {
    /// The swarm.
    pub info_hash: Id20,
    /// A `warning message` (the announce was accepted with a remark).
    pub warning: Option<String>,
    /// The peer that sent a relayed offer or answer.
    pub peer_id: Option<Id20>,
    /// `interval` (or else `min interval`), seconds.
    pub interval: Option<u64>,
    /// Seeders in the swarm.
    pub complete: Option<u64>,
    /// Leechers in the swarm.
    pub incomplete: Option<u64>,
    /// `tracker id`, to echo in later requests.
    pub tracker_id: Option<String>,
    /// The SDP of a relayed offer.
    pub offer: Option<String>,
    /// The SDP of a relayed answer.
    pub answer: Option<String>,
    /// The offer's id (present whenever `offer` or `answer` is).
    pub offer_id: Option<Id20>,
}

/// Why a tracker message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// Not JSON (serde_json's message).
    Json(String),
    /// JSON, but not an object.
    NotAnObject,
    /// Neither `action` nor `failure reason` nor `warning message`.
    MissingAction,
    /// An `action` other than `announce` and `scrape` (its first 40 characters).
    UnknownAction(String),
    /// A field is missing or has the wrong type or length.
    BadField {
        /// The field's name.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Json(e) => write!(f, "tracker message is not JSON: {e}"),
            ResponseError::NotAnObject => f.write_str("tracker message is not a JSON object"),
            ResponseError::MissingAction => f.write_str("tracker message has no action"),
            ResponseError::UnknownAction(a) => {
                write!(f, "tracker message has unknown action {a:?}")
            }
            ResponseError::BadField { field, problem } => {
                write!(f, "tracker message field {field}: {problem}")
            }
        }
    }
}

impl std::error::Error for ResponseError {}
