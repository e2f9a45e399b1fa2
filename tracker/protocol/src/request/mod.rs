//! What a client sends a tracker: an announce (with offers, or an answer to a relayed offer) or a
//! scrape. Clients write it with [`AnnounceRequest`] and [`AnswerRequest`]; the tracker reads it
//! with `parse` (feature `tracker`). Unknown fields are ignored.

mod encode;
#[cfg(feature = "tracker")]
mod fields;
#[cfg(feature = "tracker")]
mod parse;

pub use encode::{AnnounceRequest, AnswerRequest, OfferRequest};
#[cfg(feature = "tracker")]
pub use parse::{
    parse, Action, WsAnnounce, WsAnswer, WsOffer, WsParseError, WsRequest, WsScrape,
    MAX_PARSED_OFFERS,
};
