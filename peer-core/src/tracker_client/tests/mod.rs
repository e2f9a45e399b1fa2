//! Unit tests of the tracker client, one file per concept, on the shared helpers below (the
//! client's inputs queue events; [`drain`] collects them).

use segswarm_ws_protocol::Id20;
use serde_json::Value;

use super::*;

mod announce;
mod failures;
mod malformed;
mod properties;
mod reannounce;
mod signalling;

/// Ids with bytes that exercise the binary-string encoding (NUL, DEL, 0x80, 0xFF, quote).
const IH: InfoHash = [
    0x00, 0x01, 0x22, 0x5c, 0x7f, 0x80, 0xff, 0xfe, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x4b, 0x4c,
];
const IH2: InfoHash = [b'b'; 20];
const ME: PeerId = *b"-PM0230-abcdefghijkl";
const OTHER: PeerId = *b"-PM0230-zyxwvutsrqpo";

fn oid(n: u8) -> OfferId {
    [n; 20]
}

/// `b` as a binary string (one character per byte).
fn bin(b: &[u8]) -> String {
    b.iter().map(|&b| char::from(b)).collect()
}

fn decode(s: &str) -> Option<[u8; 20]> {
    Id20::from_binary_str(s).map(|id| id.0)
}

fn client() -> (TrackerClient, Instant) {
    (
        TrackerClient::new(TrackerClientConfig::new(ME)),
        Instant::now(),
    )
}

/// The events the client queued so far, oldest first.
fn drain(c: &mut TrackerClient) -> Vec<TrackerEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Reads `text` as a driver does ([`TrackerFrame::parse`]), hands it to the client and returns
/// the events it queued.
fn recv(
    c: &mut TrackerClient,
    text: &str,
    now: Instant,
) -> Result<Vec<TrackerEvent>, TrackerClientError> {
    let frame = TrackerFrame::parse(text)?;
    c.handle_message(&frame, now)?;
    Ok(drain(c))
}

fn frames(c: &mut TrackerClient) -> Vec<Value> {
    std::iter::from_fn(|| c.poll_transmit())
        .map(|t| serde_json::from_str(&t).expect("client sends JSON"))
        .collect()
}

fn need_offers(info_hash: InfoHash) -> TrackerEvent {
    TrackerEvent::NeedOffers {
        info_hash,
        count: 5,
    }
}

fn expired(info_hash: InfoHash, offer: u8) -> TrackerEvent {
    TrackerEvent::OfferExpired {
        info_hash,
        offer_id: oid(offer),
    }
}

/// Joins IH on a connected client and completes its first announce with two offers.
fn joined_with_offers(c: &mut TrackerClient, now: Instant) {
    c.connected(now);
    assert!(drain(c).is_empty());
    c.join(IH, now);
    assert_eq!(drain(c), vec![need_offers(IH)]);
    let offers = vec![(oid(1), "sdp-1".to_owned()), (oid(2), "sdp-2".to_owned())];
    c.offers_created(IH, offers, now);
    assert!(drain(c).is_empty());
}

fn server_msg(v: Value) -> String {
    v.to_string()
}

/// PeerTube's answer to an info_hash it does not know (`server/core/controllers/tracker.ts`).
fn peertube_refusal(ih: &InfoHash) -> String {
    let hex: String = ih.iter().map(|b| format!("{b:02x}")).collect();
    server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(ih),
        "failure reason": format!("Unknown infoHash {hex} requested by ip 192.0.2.7"),
    }))
}

fn accepted(ih: &InfoHash) -> String {
    server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(ih), "interval": 120,
        "complete": 1, "incomplete": 0
    }))
}
