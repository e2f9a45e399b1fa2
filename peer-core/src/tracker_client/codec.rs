//! Field codecs of the tracker's JSON frames: binary-string ids, counts, SDP, refusals.

use super::*;

/// Encodes bytes as a binary string: each byte becomes the character with that code point.
pub fn encode_binary_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Decodes a 20-character binary string; `None` if the length is not 20 characters or a character
/// is above U+00FF.
pub fn decode_binary_string(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut n = 0usize;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// Whether a tracker frame accepts an announce: `action` `announce`, a `complete` count and no
/// `failure reason` (what makes [`TrackerClient`] report [`TrackerEvent::AnnounceAccepted`]).
/// Drivers reset their reconnect backoff on it ([`crate::backoff`]).
pub fn is_announce_accepted(frame: &str) -> bool {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(frame) else {
        return false;
    };
    msg.get("action").and_then(Value::as_str) == Some("announce")
        && msg.get("failure reason").is_none()
        && msg.get("complete").is_some_and(Value::is_u64)
}

/// The tracker's `failure reason` of a frame answering an announce (`action` `announce`, or no
/// `action`: bittorrent-tracker's reply to a request it could not parse), with the swarm when the
/// frame names a readable one. PeerTube's tracker sends
/// `{"action":"announce","failure reason":"Unknown infoHash <hex> requested by ip <ip>","info_hash":…}`
/// for an info_hash it does not know, then closes the socket. Drivers make the close that
/// follows wait ([`crate::backoff::Backoff::refused`]).
pub fn announce_refusal(frame: &str) -> Option<(Option<InfoHash>, String)> {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(frame) else {
        return None;
    };
    let reason = msg.get("failure reason")?.as_str()?;
    match msg.get("action") {
        None => {}
        Some(a) if a.as_str() == Some("announce") => {}
        Some(_) => return None,
    }
    let info_hash = msg
        .get("info_hash")
        .and_then(Value::as_str)
        .and_then(decode_binary_string);
    Some((info_hash, reason.to_owned()))
}

pub(super) fn id_field(v: &Value, field: &'static str) -> Result<[u8; 20], TrackerClientError> {
    let s = v.as_str().ok_or(TrackerClientError::BadField {
        field,
        problem: "not a string",
    })?;
    decode_binary_string(s).ok_or(TrackerClientError::BadField {
        field,
        problem: "not a 20-byte binary string",
    })
}

pub(super) fn count_field(v: &Value, field: &'static str) -> Result<u64, TrackerClientError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 => Ok(f as u64),
        _ => Err(TrackerClientError::BadField {
            field,
            problem: "not a non-negative number",
        }),
    }
}

pub(super) fn sdp_field(
    v: &Value,
    field: &'static str,
    expected_type: &str,
) -> Result<String, TrackerClientError> {
    let obj = v.as_object().ok_or(TrackerClientError::BadField {
        field,
        problem: "not an object",
    })?;
    if let Some(t) = obj.get("type") {
        if t.as_str() != Some(expected_type) {
            return Err(TrackerClientError::BadField {
                field,
                problem: "wrong type",
            });
        }
    }
    let sdp = obj
        .get("sdp")
        .and_then(Value::as_str)
        .ok_or(TrackerClientError::BadField {
            field,
            problem: "sdp missing or not a string",
        })?;
    Ok(sdp.to_owned())
}
