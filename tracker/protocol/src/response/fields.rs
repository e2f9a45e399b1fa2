//! The one lenient reader of a tracker message's values, decoded in the message's one pass (built
//! from [`crate::lenient`]'s blocks): a value of the wrong type is read as such, for the checks of
//! [`super::TrackerFrame::message`] to name, instead of failing the message. One reader for every
//! value, skipped ones included, keeps the browser build small.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value, as far as a client reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Field {
    /// A string.
    Text(String),
    /// A non-negative integer.
    Count(u64),
    /// Any other number.
    Number(f64),
    /// An object: the values of the keys a client reads.
    Object(Box<Fields>),
    /// Anything else (`null`, a boolean, an array).
    Other,
}

/// The values of an object's keys that a client reads: a message's, or an SDP object's (`type`,
/// `sdp`). The last of a repeated key counts, as in a browser's `JSON.parse`. Only `offer` and
/// `answer` keep an object value (without objects inside it), so a frame's fields stay a few
/// hundred bytes whatever its nesting.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Fields {
    pub action: Option<Field>,
    pub info_hash: Option<Field>,
    pub failure: Option<Field>,
    pub warning: Option<Field>,
    pub peer_id: Option<Field>,
    pub interval: Option<Field>,
    pub min_interval: Option<Field>,
    pub complete: Option<Field>,
    pub incomplete: Option<Field>,
    pub tracker_id: Option<Field>,
    pub offer: Option<Field>,
    pub answer: Option<Field>,
    pub offer_id: Option<Field>,
    pub kind: Option<Field>,
    pub sdp: Option<Field>,
}

impl Field {
    /// Reads one JSON text. (As bytes: the browser build then shares serde_json's byte reader
    /// with the segment manifest's parser instead of adding a `str` reader.)
    pub(super) fn read(text: &str) -> Result<Field, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }

    /// The string, if it is one.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Field::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl Fields {
    /// Stores the value of `key`: an object only under `offer` and `answer`, and only its own
    /// scalar fields (an SDP object's `type` and `sdp` are all that is read of it).
    fn set(&mut self, key: Key, value: Field) {
        let (slot, object_allowed) = match key {
            Key::Offer => (&mut self.offer, true),
            Key::Answer => (&mut self.answer, true),
            Key::Action => (&mut self.action, false),
            Key::InfoHash => (&mut self.info_hash, false),
            Key::Failure => (&mut self.failure, false),
            Key::Warning => (&mut self.warning, false),
            Key::PeerId => (&mut self.peer_id, false),
            Key::Interval => (&mut self.interval, false),
            Key::MinInterval => (&mut self.min_interval, false),
            Key::Complete => (&mut self.complete, false),
            Key::Incomplete => (&mut self.incomplete, false),
            Key::TrackerId => (&mut self.tracker_id, false),
            Key::OfferId => (&mut self.offer_id, false),
            Key::Type => (&mut self.kind, false),
            Key::Sdp => (&mut self.sdp, false),
            Key::Other => return,
        };
        *slot = Some(match value {
            Field::Object(mut inner) if object_allowed => {
                (inner.offer, inner.answer) = (None, None);
                Field::Object(inner)
            }
            Field::Object(_) => Field::Other,
            value => value,
        });
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            strings_through!(|s: &str| Field::Text(s.to_owned()));
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Field, E> {
                Ok(Field::Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Field, E> {
                Ok(u64::try_from(n).map_or(Field::Number(n as f64), Field::Count))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Field, E> {
                Ok(Field::Number(n))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
                while seq.next_element::<Field>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<Key>()? {
                    fields.set(key, map.next_value()?);
                }
                Ok(Field::Object(Box::new(fields)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys read, of a message or of its SDP objects.
enum Key {
    Action,
    InfoHash,
    Failure,
    Warning,
    PeerId,
    Interval,
    MinInterval,
    Complete,
    Incomplete,
    TrackerId,
    Offer,
    Answer,
    OfferId,
    Type,
    Sdp,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "action" => Key::Action,
                    "info_hash" => Key::InfoHash,
                    "failure reason" => Key::Failure,
                    "warning message" => Key::Warning,
                    "peer_id" => Key::PeerId,
                    "interval" => Key::Interval,
                    "min interval" => Key::MinInterval,
                    "complete" => Key::Complete,
                    "incomplete" => Key::Incomplete,
                    "tracker id" => Key::TrackerId,
                    "offer" => Key::Offer,
                    "answer" => Key::Answer,
                    "offer_id" => Key::OfferId,
                    "type" => Key::Type,
                    "sdp" => Key::Sdp,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}
