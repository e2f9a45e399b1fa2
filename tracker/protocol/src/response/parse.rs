//! [`TrackerFrame`]: a tracker's text frame read in one pass, then checked into a
//! [`TrackerMessage`] or asked a lenient question (routing, backoff).

use super::fields::{Field, Fields};
use super::{ResponseError, TrackerAnnounce, TrackerMessage};
use crate::Id20;

/// A tracker's text frame: each field a client reads, decoded leniently in one pass over the text
/// (the last of a repeated key counts, as in a browser's `JSON.parse`), and the text's length;
/// nothing checked yet. Owns what it read: a driver parses a frame once and hands it on.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerFrame {
    fields: Box<Fields>,
    text_len: usize,
}

fn bad(field: &'static str, problem: &'static str) -> ResponseError {
    ResponseError::BadField { field, problem }
}

fn string(value: Option<&Field>, field: &'static str) -> Result<Option<String>, ResponseError> {
    match value {
        None => Ok(None),
        Some(Field::Text(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "not a string")),
    }
}

fn id(value: Option<&Field>, field: &'static str) -> Result<Option<Id20>, ResponseError> {
    match value {
        None => Ok(None),
        Some(Field::Text(s)) => Id20::from_binary_str(s)
            .map(Some)
            .ok_or(bad(field, "not a 20-byte binary string")),
        Some(_) => Err(bad(field, "not a string")),
    }
}

/// A count: a non-negative integer, or a finite non-negative number (truncated).
fn count(value: Option<&Field>, field: &'static str) -> Result<Option<u64>, ResponseError> {
    match value {
        None => Ok(None),
        Some(Field::Count(n)) => Ok(Some(*n)),
        Some(Field::Number(f)) if f.is_finite() && *f >= 0.0 => Ok(Some(*f as u64)),
        Some(_) => Err(bad(field, "not a non-negative number")),
    }
}

/// The SDP text of an `{"type":..,"sdp":..}` object whose `type`, if present, is `expected`.
fn sdp(
    value: Option<&Field>,
    field: &'static str,
    expected: &str,
) -> Result<Option<String>, ResponseError> {
    let object = match value {
        None => return Ok(None),
        Some(Field::Object(object)) => object,
        Some(_) => return Err(bad(field, "not an object")),
    };
    if object
        .kind
        .as_ref()
        .is_some_and(|kind| kind.text() != Some(expected))
    {
        return Err(bad(field, "wrong type"));
    }
    match &object.sdp {
        Some(Field::Text(s)) => Ok(Some(s.clone())),
        _ => Err(bad(field, "sdp missing or not a string")),
    }
}

impl TrackerFrame {
    /// Reads one text frame; fails only on text that is not a JSON object.
    pub fn parse(text: &str) -> Result<Self, ResponseError> {
        match Field::read(text) {
            Ok(Field::Object(fields)) => Ok(TrackerFrame {
                fields,
                text_len: text.len(),
            }),
            Ok(_) => Err(ResponseError::NotAnObject),
            Err(e) => Err(ResponseError::Json(e.to_string())),
        }
    }

    /// Bytes of the text the frame was read from (a client bounds it).
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// The swarm the frame names, if it is a valid id (the tracker hub routes by it).
    pub fn info_hash(&self) -> Option<Id20> {
        let text = self.fields.info_hash.as_ref()?.text()?;
        Id20::from_binary_str(text)
    }

    /// `action` is `announce`, or absent.
    fn answers_announce(&self) -> bool {
        self.fields
            .action
            .as_ref()
            .is_none_or(|action| action.text() == Some("announce"))
    }

    /// The frame accepts an announce: `action` `announce`, an integer `complete` and no
    /// `failure reason` (drivers reset their reconnect backoff on it).
    pub fn is_announce_accepted(&self) -> bool {
        let f = &self.fields;
        f.action.as_ref().and_then(Field::text) == Some("announce")
            && f.failure.is_none()
            && matches!(f.complete, Some(Field::Count(_)))
    }

    /// The `failure reason` of a frame answering an announce (`action` `announce` or absent),
    /// with the swarm when the frame names a readable one.
    pub fn refusal(&self) -> Option<(Option<Id20>, String)> {
        let reason = self.fields.failure.as_ref()?.text()?;
        self.answers_announce()
            .then(|| (self.info_hash(), reason.to_owned()))
    }

    /// The message, its fields checked (in the order a client always checked them: `info_hash`,
    /// `failure reason`, `warning message`, `action`, then the announce's fields).
    pub fn message(&self) -> Result<TrackerMessage, ResponseError> {
        let f = &self.fields;
        if let Some(reason) = &f.failure {
            let Field::Text(reason) = reason else {
                return Err(bad("failure reason", "not a string"));
            };
            // A failure may answer a request whose info_hash was unreadable: tolerate a bad one.
            return Ok(TrackerMessage::Failure {
                info_hash: self.info_hash(),
                reason: reason.clone(),
                to_announce: self.answers_announce(),
            });
        }
        let info_hash = id(f.info_hash.as_ref(), "info_hash")?;
        let warning = string(f.warning.as_ref(), "warning message")?;
        let action = match &f.action {
            None => {
                return match warning {
                    Some(message) => Ok(TrackerMessage::Warning { info_hash, message }),
                    None => Err(ResponseError::MissingAction),
                }
            }
            Some(Field::Text(action)) => action.as_str(),
            Some(_) => return Err(bad("action", "not a string")),
        };
        match action {
            "announce" => self
                .announce(info_hash, warning)
                .map(TrackerMessage::Announce),
            "scrape" => Ok(TrackerMessage::Scrape { info_hash, warning }),
            other => Err(ResponseError::UnknownAction(
                other.chars().take(40).collect(),
            )),
        }
    }

    fn announce(
        &self,
        info_hash: Option<Id20>,
        warning: Option<String>,
    ) -> Result<TrackerAnnounce, ResponseError> {
        let f = &self.fields;
        let info_hash = info_hash.ok_or(bad("info_hash", "missing"))?;
        let peer_id = id(f.peer_id.as_ref(), "peer_id")?;
        let interval = count(f.interval.as_ref().or(f.min_interval.as_ref()), "interval")?;
        let complete = count(f.complete.as_ref(), "complete")?;
        let incomplete = count(f.incomplete.as_ref(), "incomplete")?;
        let tracker_id = string(f.tracker_id.as_ref(), "tracker id")?;
        let offer = sdp(f.offer.as_ref(), "offer", "offer")?;
        let answer = sdp(f.answer.as_ref(), "answer", "answer")?;
        let offer_id = match (&offer, &answer) {
            (None, None) => None,
            _ => Some(id(f.offer_id.as_ref(), "offer_id")?.ok_or(bad("offer_id", "missing"))?),
        };
        Ok(TrackerAnnounce {
            info_hash,
            warning,
            peer_id,
            interval,
            complete,
            incomplete,
            tracker_id,
            offer,
            answer,
            offer_id,
        })
    }
}
