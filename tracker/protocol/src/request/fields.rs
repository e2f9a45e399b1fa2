//! Lenient readers for the fields of a WebSocket message, decoded in the message's one pass.
//!
//! Each reader accepts any JSON value: a value of the wrong type becomes "invalid" (so the caller
//! can answer with that field's error) instead of failing the whole message. Ids are read as raw
//! JSON and decoded by [`id_from_json`], so relays can forward the literal the client wrote.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::parse::{Action, WsOffer, MAX_PARSED_OFFERS};
use crate::{id_from_json, AnnounceEvent, ErrorKind};

/// `action`: `None` for anything but `"announce"` and `"scrape"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ActionField(pub Option<Action>);

impl<'de> Deserialize<'de> for ActionField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActionField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"announce\" or \"scrape\"")
            }
            strings_through!(|s: &str| ActionField(match s {
                "announce" => Some(Action::Announce),
                "scrape" => Some(Action::Scrape),
                _ => None,
            }));
            other_types_are!(ActionField(None));
            arrays_are!(ActionField(None));
        }
        d.deserialize_any(V)
    }
}

/// `event`: `None` for an unknown name or a value that is not a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EventField(pub Option<AnnounceEvent>);

impl<'de> Deserialize<'de> for EventField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an announce event name")
            }
            strings_through!(|s: &str| EventField(AnnounceEvent::parse(s)));
            other_types_are!(EventField(None));
            arrays_are!(EventField(None));
        }
        d.deserialize_any(V)
    }
}

/// `offers`: the first [`MAX_PARSED_OFFERS`] offers, or the first error among them in order.
#[derive(Debug)]
pub(super) struct OffersField<'a> {
    /// The offers read, or the error of the first one that is not an offer.
    pub offers: Result<Vec<WsOffer<'a>>, ErrorKind>,
    /// Offers beyond [`MAX_PARSED_OFFERS`], counted and skipped.
    pub unparsed: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for OffersField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = OffersField<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of offers")
            }
            strings_through!(|_: &str| OffersField::invalid());
            other_types_are!(OffersField::invalid());
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut offers = Ok(Vec::new());
                let mut unparsed = 0;
                loop {
                    let parsed = offers.as_ref().map_or(0, Vec::len);
                    if parsed >= MAX_PARSED_OFFERS || offers.is_err() {
                        match seq.next_element::<IgnoredAny>()? {
                            Some(_) if offers.is_ok() => unparsed += 1,
                            Some(_) => {}
                            None => break,
                        }
                        continue;
                    }
                    let Some(item) = seq.next_element::<OfferItem<'a>>()? else {
                        break;
                    };
                    match (item, &mut offers) {
                        (OfferItem::Offer(offer), Ok(list)) => list.push(offer),
                        (OfferItem::Invalid(kind), _) => offers = Err(kind),
                        (OfferItem::Offer(_), Err(_)) => {}
                    }
                }
                Ok(OffersField { offers, unparsed })
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl OffersField<'_> {
    fn invalid() -> Self {
        OffersField {
            offers: Err(ErrorKind::InvalidOffers),
            unparsed: 0,
        }
    }
}

/// One element of `offers`: an object with an `offer` (raw JSON, not `null`) and an `offer_id`.
enum OfferItem<'a> {
    Offer(WsOffer<'a>),
    Invalid(ErrorKind),
}

impl<'de: 'a, 'a> Deserialize<'de> for OfferItem<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = OfferItem<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an offer object")
            }
            strings_through!(|_: &str| OfferItem::Invalid(ErrorKind::InvalidOffers));
            scalars_are!(OfferItem::Invalid(ErrorKind::InvalidOffers));
            arrays_are!(OfferItem::Invalid(ErrorKind::InvalidOffers));
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut offer: Option<&'de RawValue> = None;
                let mut offer_id: Option<&'de RawValue> = None;
                while let Some(key) = map.next_key::<OfferKey>()? {
                    match key {
                        OfferKey::Offer => offer = Some(map.next_value()?),
                        OfferKey::OfferId => offer_id = Some(map.next_value()?),
                        OfferKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let Some(offer) = offer.filter(|raw| raw.get() != "null") else {
                    return Ok(OfferItem::Invalid(ErrorKind::InvalidOffers));
                };
                let offer_id_json = offer_id.map_or("", |raw| raw.get());
                Ok(match id_from_json(offer_id_json) {
                    Some(offer_id) => OfferItem::Offer(WsOffer {
                        offer_id,
                        offer_id_json,
                        offer,
                    }),
                    None => OfferItem::Invalid(ErrorKind::InvalidOfferId),
                })
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The keys of an offer object that are read.
enum OfferKey {
    Offer,
    OfferId,
    Other,
}

impl<'de> Deserialize<'de> for OfferKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OfferKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(match s {
                    "offer" => OfferKey::Offer,
                    "offer_id" => OfferKey::OfferId,
                    _ => OfferKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}
