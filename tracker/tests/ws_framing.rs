//! RFC 6455 framing as the real daemon sees it: raw frames written on the socket after a normal
//! handshake. Fragmented messages (with control frames between the fragments) are reassembled;
//! pings are answered; a client close is answered; each framing violation ends the connection with
//! the close code RFC 6455 names, without disturbing other connections.

use crate::common;

use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame as a client writes it: `rsv` goes to bits 4..6 of the first byte.
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | (rsv << 4) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A masked text frame header announcing `len` payload bytes, without the payload.
fn header_claiming(len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | TEXT, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&MASK);
    out
}

async fn write_raw(ws: &mut Ws, bytes: &[u8]) {
    let stream = ws.inner.get_mut();
    stream.write_all(bytes).await.expect("raw write");
    stream.flush().await.expect("flush");
}

fn announce_text() -> (Id, String) {
    let ih = Id::random();
    (
        ih,
        announce(ih, Id::random(), Some("started"), None).to_string(),
    )
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_around_control_frames() {
    let tracker = Tracker::start("");
    let mut ws = tracker.ws().await;
    let (ih, text) = announce_text();
    let bytes = text.as_bytes();
    let (a, rest) = bytes.split_at(10);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut raw = frame(false, 0, TEXT, a, true);
    raw.extend(frame(false, 0, CONTINUATION, b, true));
    raw.extend(frame(true, 0, PING, b"mid-message", true));
    raw.extend(frame(true, 0, CONTINUATION, c, true));
    write_raw(&mut ws, &raw).await;

    // The ping between fragments is answered with its payload; the message is then processed.
    let mut pong = None;
    let mut reply = None;
    while pong.is_none() || reply.is_none() {
        match tokio::time::timeout(STEP, ws.inner.next()).await {
            Ok(Some(Ok(Message::Pong(p)))) => pong = Some(p.to_vec()),
            Ok(Some(Ok(Message::Text(t)))) => {
                reply = Some(serde_json::from_str::<Value>(t.as_str()).unwrap())
            }
            other => panic!("pong: {pong:?}, reply: {reply:?}, then {other:?}"),
        }
    }
    assert_eq!(pong.unwrap(), b"mid-message");
    let reply = reply.unwrap();
    assert_eq!(reply["action"], "announce", "{reply}");
    assert_eq!(reply["info_hash"], ih.bin(), "{reply}");

    // A two-byte UTF-8 character split across two fragments is valid text.
    let scrape = format!(
        "{{\"action\":\"scrape\",\"info_hash\":{},\"note\":\"caf\u{e9}\"}}",
        serde_json::to_string(&ih.bin()).unwrap()
    );
    let at = scrape.find('\u{e9}').unwrap() + 1; // inside the character
    let mut raw = frame(false, 0, TEXT, &scrape.as_bytes()[..at], true);
    raw.extend(frame(true, 0, CONTINUATION, &scrape.as_bytes()[at..], true));
    write_raw(&mut ws, &raw).await;
    let reply = ws.next_json().await;
    assert_eq!(scrape_entry(&reply, ih), Some((0, 1)), "{reply}");
}

#[tokio::test]
async fn a_client_close_is_answered_and_its_peers_removed() {
    let tracker = Tracker::start("");
    let mut ws = tracker.ws().await;
    let (ih, text) = announce_text();
    ws.send(Message::text(text)).await;
    ws.next_json().await;
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    write_raw(&mut ws, &frame(true, 0, CLOSE, &payload, true)).await;
    match ws.next_event(STEP).await {
        Event::Close(frame) => {
            if let Some(frame) = frame {
                assert_eq!(u16::from(frame.code), 1000, "{frame:?}");
            }
        }
        other => panic!("expected the server's close frame, got {other:?}"),
    }
    eventually("peer removed after the close handshake", STEP, || async {
        let mut obs = tracker.ws().await;
        (scrape_counts(&mut obs, ih).await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn framing_violations_close_the_connection_with_the_rfc_code() {
    let tracker = Tracker::start("[limits]\nmax_message_bytes = 4096\nmax_frame_bytes = 2048\n");
    let swarm = Id::random();
    let mut bystander = tracker.ws().await;
    bystander
        .announce_ok(&announce(swarm, Id::random(), Some("started"), None))
        .await;
    let (_, text) = announce_text();
    let t = text.as_bytes();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked text frame", frame(true, 0, TEXT, t, false), 1002),
        (
            "reserved bit set (no extension)",
            frame(true, 4, TEXT, t, true),
            1002,
        ),
        ("unknown opcode 3", frame(true, 0, 0x3, b"x", true), 1002),
        (
            "continuation without a message",
            frame(true, 0, CONTINUATION, t, true),
            1002,
        ),
        (
            "new text frame inside a fragmented message",
            [
                frame(false, 0, TEXT, b"{", true),
                frame(true, 0, TEXT, t, true),
            ]
            .concat(),
            1002,
        ),
        ("fragmented ping", frame(false, 0, PING, b"x", true), 1002),
        (
            "ping with 200 bytes",
            frame(true, 0, PING, &[b'p'; 200], true),
            1002,
        ),
        (
            "text that is not UTF-8",
            frame(true, 0, TEXT, b"{\"a\":\"\xff\xfe\"}", true),
            1007,
        ),
        (
            "text ending inside a UTF-8 character",
            frame(true, 0, TEXT, &"{\"a\":\"\u{e9}\"}".as_bytes()[..7], true),
            1007,
        ),
        (
            "a frame header claiming 1 TiB",
            header_claiming(1 << 40),
            1009,
        ),
        (
            "one frame above max_frame_bytes",
            frame(true, 0, TEXT, &[b' '; 3000], true),
            1009,
        ),
        (
            "fragments each under max_frame_bytes, above max_message_bytes together",
            [
                frame(false, 0, TEXT, &[b' '; 2000], true),
                frame(false, 0, CONTINUATION, &[b' '; 2000], true),
                frame(true, 0, CONTINUATION, &[b' '; 2000], true),
            ]
            .concat(),
            1009,
        ),
    ];
    let mut problems = Vec::new();
    for (name, raw, code) in cases {
        let mut ws = tracker.ws().await;
        write_raw(&mut ws, &raw).await;
        match ws.next_event(STEP).await {
            Event::Close(Some(frame)) if u16::from(frame.code) == code => {}
            other => problems.push(format!("{name}: expected close code {code}, got {other:?}")),
        }
    }
    assert_eq!(scrape_counts(&mut bystander, swarm).await, (0, 1));
    assert_eq!(tracker.get("/health").await.status, 200);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn offers_of_every_frame_length_class_are_relayed_intact() {
    let tracker =
        Tracker::start("[limits]\nmax_message_bytes = 262144\nmax_frame_bytes = 262144\n");
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let mut sa = tracker.ws().await;
    let mut sb = tracker.ws().await;
    sa.announce_ok(&announce(ih, a, Some("started"), None))
        .await;
    // Offer sizes from tiny to 200 kB: relayed messages of 16-bit and 64-bit frame lengths (short
    // replies such as the announce responses use the 7-bit form).
    for (round, size) in [10usize, 125, 126, 65_000, 65_535, 65_536, 200_000]
        .into_iter()
        .enumerate()
    {
        // Distinct bytes per position, so a shifted or truncated copy cannot compare equal.
        let body: String = (0..size)
            .map(|i| char::from(b'a' + (i % 23) as u8))
            .collect();
        let sdp = serde_json::json!({"type": "offer", "sdp": body});
        let offer_id = Id::random();
        let mut msg = announce_with_offers(ih, b, &[(offer_id, sdp.clone())]);
        if round > 0 {
            msg["event"] = serde_json::json!("update");
        }
        sb.announce_ok(&msg).await;
        let relayed = sa.next_json().await;
        assert_eq!(relayed["offer_id"], offer_id.bin(), "size {size}");
        assert!(
            relayed["offer"] == sdp,
            "size {size}: offer changed in transit"
        );
    }
}
