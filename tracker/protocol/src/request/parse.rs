//! The tracker's reader of a request ([`parse`]): one pass, lenient field readers, offer and answer
//! SDP kept as raw JSON (relayed byte for byte), ids kept with the literal the client wrote.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::{ActionField, EventField, OffersField};
use crate::{id_from_json, AnnounceEvent, ErrorKind, Id20};

/// The `action` of a message, where it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `"announce"` (announces, offers and answers).
    Announce,
    /// `"scrape"`.
    Scrape,
}

impl Action {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Announce => "announce",
            Action::Scrape => "scrape",
        }
    }
}

/// A parsed client message.
#[derive(Debug)]
pub enum WsRequest<'a> {
    /// An announce, possibly carrying offers or an answer.
    Announce(WsAnnounce<'a>),
    /// A scrape.
    Scrape(WsScrape),
}

/// An announce message.
#[derive(Debug)]
pub struct WsAnnounce<'a> {
    /// The swarm.
    pub info_hash: Id20,
    /// `info_hash` as the JSON string literal the client wrote (relays forward it as is).
    pub info_hash_json: &'a str,
    /// The sender's id in this swarm.
    pub peer_id: Id20,
    /// `peer_id` as the JSON string literal the client wrote.
    pub peer_id_json: &'a str,
    /// The event (missing, `empty` and `update` are [`AnnounceEvent::Update`]).
    pub event: AnnounceEvent,
    /// `left == 0`: the peer has everything.
    pub seeder: bool,
    /// Offers to relay to other peers of the swarm, in order (at most [`MAX_PARSED_OFFERS`]).
    pub offers: Vec<WsOffer<'a>>,
    /// Offers in the message beyond [`MAX_PARSED_OFFERS`], not parsed.
    pub offers_unparsed: usize,
    /// An answer to relay back to the peer that made an offer.
    pub answer: Option<WsAnswer<'a>>,
}

/// One offer of an announce.
#[derive(Debug)]
pub struct WsOffer<'a> {
    /// The offer id chosen by the sender.
    pub offer_id: Id20,
    /// `offer_id` as the JSON string literal the client wrote.
    pub offer_id_json: &'a str,
    /// The SDP object, raw JSON.
    pub offer: &'a RawValue,
}

/// An answer to an offer.
#[derive(Debug)]
pub struct WsAnswer<'a> {
    /// The peer that sent the offer.
    pub to_peer_id: Id20,
    /// The offer being answered.
    pub offer_id: Id20,
    /// `offer_id` as the JSON string literal the client wrote.
    pub offer_id_json: &'a str,
    /// The SDP object, raw JSON.
    pub answer: &'a RawValue,
}

/// Which swarms a scrape asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum WsScrape {
    /// No `info_hash`: every swarm (only if full scrape is allowed).
    All,
    /// The listed swarms (a string is a list of one).
    Some(Vec<Id20>),
}

/// A message that could not be accepted, with what is known for the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsParseError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The action, if it was read.
    pub action: Option<Action>,
    /// The info_hash, if it was read.
    pub info_hash: Option<Id20>,
}

/// The fields of a message that are read, each decoded in the message's one pass; every other
/// field is skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    action: Option<ActionField>,
    #[serde(borrow, default)]
    info_hash: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer_id: Option<&'a RawValue>,
    #[serde(default)]
    event: Option<EventField>,
    #[serde(borrow, default)]
    left: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offers: Option<OffersField<'a>>,
    #[serde(borrow, default)]
    answer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to_peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer_id: Option<&'a RawValue>,
}

/// Most offers read from one message; the rest are ignored (the relay uses at most `max_offers`).
pub const MAX_PARSED_OFFERS: usize = 64;

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// An id field: its value and its literal (`""` when absent).
fn id_field(raw: Option<&RawValue>) -> (Option<Id20>, &str) {
    let json = raw.map_or("", RawValue::get);
    (id_from_json(json), json)
}

/// `left == 0` (a number, or a string holding one): the peer is a seeder.
fn left_is_zero(raw: &RawValue) -> bool {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<std::borrow::Cow<'_, str>>(text)
            .is_ok_and(|s| s.trim().parse::<f64>() == Ok(0.0))
    } else {
        text.parse::<f64>() == Ok(0.0)
    }
}

/// Parses one text message.
pub fn parse(text: &str) -> Result<WsRequest<'_>, WsParseError> {
    let fail = |kind, action, info_hash| WsParseError {
        kind,
        action,
        info_hash,
    };
    // Structs also deserialize from JSON arrays; only an object is a message.
    if !text.trim_start().starts_with('{') {
        return Err(fail(ErrorKind::MalformedJson, None, None));
    }
    let env: Envelope<'_> =
        serde_json::from_str(text).map_err(|_| fail(ErrorKind::MalformedJson, None, None))?;
    match env.action.and_then(|a| a.0) {
        Some(Action::Announce) => parse_announce(env),
        Some(Action::Scrape) => parse_scrape(env),
        None => Err(fail(ErrorKind::UnknownAction, None, None)),
    }
}

fn parse_announce(env: Envelope<'_>) -> Result<WsRequest<'_>, WsParseError> {
    let action = Some(Action::Announce);
    let (Some(info_hash), info_hash_json) = id_field(env.info_hash) else {
        return Err(WsParseError {
            kind: ErrorKind::InvalidInfoHash,
            action,
            info_hash: None,
        });
    };
    let fail = |kind| WsParseError {
        kind,
        action,
        info_hash: Some(info_hash),
    };
    let (peer_id, peer_id_json) = id_field(env.peer_id);
    let peer_id = peer_id.ok_or(fail(ErrorKind::InvalidPeerId))?;
    let event = match env.event {
        None => AnnounceEvent::Update,
        Some(EventField(event)) => event.ok_or(fail(ErrorKind::InvalidEvent))?,
    };
    let seeder = env.left.is_some_and(left_is_zero);
    let answer = match env.answer.filter(|raw| !is_null(raw)) {
        None => None,
        Some(answer) => {
            let to_peer_id = id_field(env.to_peer_id)
                .0
                .ok_or(fail(ErrorKind::InvalidToPeerId))?;
            let (offer_id, offer_id_json) = id_field(env.offer_id);
            let offer_id = offer_id.ok_or(fail(ErrorKind::InvalidOfferId))?;
            Some(WsAnswer {
                to_peer_id,
                offer_id,
                offer_id_json,
                answer,
            })
        }
    };
    let (offers, offers_unparsed) = match env.offers {
        None => (Vec::new(), 0),
        Some(field) => (field.offers.map_err(fail)?, field.unparsed),
    };
    Ok(WsRequest::Announce(WsAnnounce {
        info_hash,
        info_hash_json,
        peer_id,
        peer_id_json,
        event,
        seeder,
        offers,
        offers_unparsed,
        answer,
    }))
}

fn parse_scrape(env: Envelope<'_>) -> Result<WsRequest<'_>, WsParseError> {
    let invalid = WsParseError {
        kind: ErrorKind::InvalidInfoHash,
        action: Some(Action::Scrape),
        info_hash: None,
    };
    let Some(raw) = env.info_hash else {
        return Ok(WsRequest::Scrape(WsScrape::All));
    };
    if !raw.get().starts_with('[') {
        let id = id_from_json(raw.get()).ok_or(invalid)?;
        return Ok(WsRequest::Scrape(WsScrape::Some(vec![id])));
    }
    let list: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| invalid)?;
    let ids = list
        .iter()
        .map(|raw| id_from_json(raw.get()).ok_or(invalid))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WsRequest::Scrape(WsScrape::Some(ids)))
}
