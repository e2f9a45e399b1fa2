//! Fuzzes the client's reader of tracker messages (`segswarm_ws_protocol::TrackerFrame`) with the
//! input as one text frame. Nothing may panic, the lenient questions drivers ask agree with the
//! checked message, and what a client reads the tracker's encoders write back the same:
//!
//! - `refusal()` names a swarm and reason exactly when `message()` is a failure to an announce
//!   with that swarm and reason;
//! - an accepted announce (`is_announce_accepted`) that reads as a message is an announce with a
//!   `complete` count;
//! - a relayed offer or answer, re-encoded by the tracker (`encode_offer`, `encode_answer`), reads
//!   back with the same ids and SDP; a failure re-encoded (`encode_failure`) reads back the same.
//!
//! Input layout: the whole input is the text frame (invalid UTF-8 replaced, since the WebSocket
//! layer only hands over valid UTF-8 text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use segswarm_tracker::protocol::ws::{
    encode_answer, encode_failure, encode_offer, Action, Id20, TrackerAnnounce, TrackerFrame,
    TrackerMessage,
};
use serde_json::value::RawValue;

fn read(text: &str) -> TrackerMessage {
    TrackerFrame::parse(text)
        .and_then(|f| f.message())
        .unwrap_or_else(|e| panic!("re-encoded message {text} refused: {e}"))
}

/// `{"type":<kind>,"sdp":<sdp>}`, as a peer writes it.
fn sdp_object(kind: &str, sdp: &str) -> Box<RawValue> {
    let text = serde_json::json!({"type": kind, "sdp": sdp}).to_string();
    RawValue::from_string(text).expect("an SDP object is JSON")
}

fn check_relays(a: &TrackerAnnounce) {
    let (Some(from), Some(offer_id)) = (a.peer_id, a.offer_id) else {
        return;
    };
    let relays = [
        (a.offer.as_deref(), "offer"),
        (a.answer.as_deref(), "answer"),
    ];
    for (sdp, kind) in relays {
        let Some(sdp) = sdp else { continue };
        let raw = sdp_object(kind, sdp);
        let text = if kind == "offer" {
            encode_offer(&a.info_hash, &from, &offer_id, &raw)
        } else {
            encode_answer(&a.info_hash, &from, &offer_id, &raw)
        };
        let TrackerMessage::Announce(b) = read(&text) else {
            panic!("relay {text} is not an announce");
        };
        assert_eq!((b.info_hash, b.peer_id, b.offer_id), (a.info_hash, Some(from), Some(offer_id)));
        let got = if kind == "offer" { b.offer } else { b.answer };
        assert_eq!(got.as_deref(), Some(sdp));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(frame) = TrackerFrame::parse(&text) else {
        return;
    };
    let refusal = frame.refusal();
    let accepted = frame.is_announce_accepted();
    let info_hash: Option<Id20> = frame.info_hash();
    let message = frame.message();
    match (&refusal, &message) {
        (
            Some((ih, reason)),
            Ok(TrackerMessage::Failure {
                info_hash,
                reason: r,
                to_announce: true,
            }),
        ) => assert_eq!((ih, reason), (info_hash, r)),
        (None, Ok(TrackerMessage::Failure { to_announce, .. })) => assert!(!to_announce),
        (None, _) => {}
        (Some(_), other) => panic!("refusal without a failure to an announce: {other:?}"),
    }
    match &message {
        Ok(TrackerMessage::Announce(a)) => {
            assert_eq!(Some(a.info_hash), info_hash);
            if accepted {
                assert!(a.complete.is_some());
            }
            check_relays(a);
        }
        Ok(TrackerMessage::Failure {
            info_hash: ih,
            reason,
            ..
        }) => {
            assert!(!accepted);
            let again = encode_failure(reason, Some(Action::Announce), ih.as_ref());
            match read(&again) {
                TrackerMessage::Failure {
                    info_hash,
                    reason: r,
                    to_announce: true,
                } => assert_eq!((&info_hash, &r), (ih, reason)),
                other => panic!("failure {again} read as {other:?}"),
            }
        }
        _ => {}
    }
});
