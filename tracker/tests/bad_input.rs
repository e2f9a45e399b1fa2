//! A table of bad WebSocket inputs, each sent on its own connection to the real daemon, with the
//! `failure reason` the client must see and the `segswarm_errors_total{kind}` it must count. After
//! each, the same connection still works and the daemon is alive.

use crate::common;

use common::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// One row of the table.
struct Case {
    name: &'static str,
    message: Message,
    reason: &'static str,
    kind: &'static str,
    /// `action` the failure must carry, where the request made it known.
    action: Option<&'static str>,
    /// `info_hash` the failure must carry, where the request made it known.
    info_hash: Option<Id>,
}

fn text(value: Value) -> Message {
    Message::text(value.to_string())
}

fn cases() -> Vec<Case> {
    let ih = Id::random();
    let peer = Id::random();
    let good = announce(ih, peer, Some("started"), None);
    let with = |field: &str, value: Value| {
        let mut m = good.clone();
        m[field] = value;
        text(m)
    };
    let twenty_with = |c: char| format!("{}{c}", "a".repeat(19));
    vec![
        Case {
            name: "not JSON",
            message: Message::text("{\"action\": \"announce\", "),
            reason: "malformed JSON: expected a JSON object",
            kind: "malformed_json",
            action: None,
            info_hash: None,
        },
        Case {
            name: "JSON that is not an object",
            message: Message::text("[\"announce\"]"),
            reason: "malformed JSON: expected a JSON object",
            kind: "malformed_json",
            action: None,
            info_hash: None,
        },
        Case {
            name: "binary frame",
            message: Message::binary(good.to_string().into_bytes()),
            reason: "binary frames are not supported: send JSON text",
            kind: "binary_frame",
            action: None,
            info_hash: None,
        },
        Case {
            name: "unknown action",
            message: with("action", json!("dance")),
            reason: "invalid action: expected announce or scrape",
            kind: "unknown_action",
            action: None,
            info_hash: None,
        },
        Case {
            name: "missing action",
            message: text(json!({"info_hash": ih.bin(), "peer_id": peer.bin()})),
            reason: "invalid action: expected announce or scrape",
            kind: "unknown_action",
            action: None,
            info_hash: None,
        },
        Case {
            name: "info_hash of 19 characters",
            message: with("info_hash", json!("a".repeat(19))),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("announce"),
            info_hash: None,
        },
        Case {
            name: "info_hash of 21 characters",
            message: with("info_hash", json!("a".repeat(21))),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("announce"),
            info_hash: None,
        },
        Case {
            name: "info_hash of 40 hex digits",
            message: with("info_hash", json!(ih.hex())),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("announce"),
            info_hash: None,
        },
        Case {
            name: "info_hash with a character above U+00FF",
            message: with("info_hash", json!(twenty_with('\u{0100}'))),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("announce"),
            info_hash: None,
        },
        Case {
            name: "info_hash with an emoji (a UTF-16 surrogate pair)",
            message: with("info_hash", json!(twenty_with('\u{1F600}'))),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("announce"),
            info_hash: None,
        },
        Case {
            name: "info_hash that is a number",
            message: with("info_hash", json!(12345)),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("announce"),
            info_hash: None,
        },
        Case {
            name: "peer_id missing",
            message: text(json!({"action": "announce", "info_hash": ih.bin()})),
            reason: "invalid peer_id",
            kind: "invalid_peer_id",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "peer_id of 10 characters",
            message: with("peer_id", json!("-WW0001-ab")),
            reason: "invalid peer_id",
            kind: "invalid_peer_id",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "peer_id with a character above U+00FF",
            message: with("peer_id", json!(twenty_with('\u{20AC}'))),
            reason: "invalid peer_id",
            kind: "invalid_peer_id",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "unknown event",
            message: with("event", json!("rebooted")),
            reason: "invalid event",
            kind: "invalid_event",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "offers that are not a list",
            message: with("offers", json!("many")),
            reason: "invalid offers",
            kind: "invalid_offers",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "offer with an offer_id of the wrong length",
            message: with(
                "offers",
                json!([{"offer": sdp_offer("x"), "offer_id": "short"}]),
            ),
            reason: "invalid offer_id",
            kind: "invalid_offer_id",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "answer without to_peer_id",
            message: text(json!({
                "action": "announce", "info_hash": ih.bin(), "peer_id": peer.bin(),
                "answer": sdp_answer("x"), "offer_id": Id::random().bin(),
            })),
            reason: "invalid `to_peer_id` (required with `answer`)",
            kind: "invalid_to_peer_id",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "answer to an unknown offer",
            message: text(answer(
                ih,
                peer,
                Id::random(),
                Id::random(),
                sdp_answer("x"),
            )),
            reason: "answer to an unknown or expired offer",
            kind: "unknown_offer",
            action: Some("announce"),
            info_hash: Some(ih),
        },
        Case {
            name: "scrape with an info_hash of the wrong length in the list",
            message: text(json!({"action": "scrape", "info_hash": [ih.bin(), "abc"]})),
            reason: "invalid info_hash",
            kind: "invalid_info_hash",
            action: Some("scrape"),
            info_hash: None,
        },
    ]
}

#[tokio::test]
async fn every_bad_input_gets_its_failure_reason_and_is_counted() {
    let tracker = Tracker::start("");
    let mut bystander = tracker.ws().await;
    let swarm = Id::random();
    bystander
        .announce_ok(&announce(swarm, Id::random(), Some("started"), None))
        .await;
    let mut problems = Vec::new();
    for case in cases() {
        let before = tracker.metrics().await.errors(case.kind);
        let mut ws = tracker.ws().await;
        ws.send(case.message.clone()).await;
        let reply = match ws.next_event(STEP).await {
            Event::Json(v) => v,
            other => {
                problems.push(format!(
                    "{}: expected a failure message, got {other:?}",
                    case.name
                ));
                continue;
            }
        };
        let reason = reply.get("failure reason").and_then(Value::as_str);
        if reason != Some(case.reason) {
            problems.push(format!(
                "{}: expected failure reason {:?}, got {reply}",
                case.name, case.reason
            ));
        }
        if let Some(action) = case.action {
            if reply["action"] != action {
                problems.push(format!(
                    "{}: expected action {action:?} in {reply}",
                    case.name
                ));
            }
        }
        if let Some(ih) = case.info_hash {
            if reply["info_hash"] != ih.bin() {
                problems.push(format!("{}: expected the info_hash in {reply}", case.name));
            }
        }
        let after = eventually(&format!("{} counted", case.name), STEP, || async {
            let v = tracker.metrics().await.errors(case.kind);
            (v > before).then_some(v)
        })
        .await;
        if after != before + 1.0 {
            problems.push(format!(
                "{}: errors_total{{kind={:?}}} went {before} -> {after}, expected +1",
                case.name, case.kind
            ));
        }
        // The connection survives a bad message.
        let fine = announce(Id::random(), Id::random(), Some("started"), None);
        ws.send_json(&fine).await;
        match ws.next_event(STEP).await {
            Event::Json(v) if v.get("failure reason").is_none() => {}
            other => problems.push(format!(
                "{}: connection unusable after the bad message: {other:?}",
                case.name
            )),
        }
    }
    // Nothing disturbed the bystander or the daemon.
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
async fn an_oversized_frame_is_refused_with_a_reason_and_counted() {
    let tracker = Tracker::start("[limits]\nmax_message_bytes = 2048\nmax_frame_bytes = 2048\n");
    let mut bystander = tracker.ws().await;
    let mut ws = tracker.ws().await;
    ws.send(Message::text("x".repeat(100_000))).await;
    match ws.next_event(STEP).await {
        Event::Json(reply) => assert_failure(&reply, "message too large"),
        Event::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::Size, "{frame:?}");
            assert_eq!(frame.reason.as_str(), "message too large", "{frame:?}");
        }
        other => panic!("expected a failure or a close frame, got {other:?}"),
    }
    assert_eq!(wait_errors(&tracker, "oversized_message", 1.0).await, 1.0);
    bystander
        .announce_ok(&announce(Id::random(), Id::random(), Some("started"), None))
        .await;
}

#[tokio::test]
async fn garbage_before_the_handshake_does_not_hurt_the_daemon() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tracker = Tracker::start("");
    let junks: Vec<(&str, Vec<u8>)> = vec![
        (
            "TLS hello on a plain port",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        (
            "upgrade without a key",
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                .to_vec(),
        ),
        ("not HTTP", b"NOT-HTTP\r\n\r\n".to_vec()),
        ("zeros", vec![0u8; 64]),
        (
            // Far above limits.max_http_request_bytes (8192 by default): must not be served.
            "40 kB request head",
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
                "j".repeat(40_000)
            )
            .into_bytes(),
        ),
    ];
    for (name, junk) in junks {
        let mut stream = tcp_connect(tracker.addr(), None).await.expect("connect");
        let _ = stream.write_all(&junk).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(STEP, stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            !text.starts_with("HTTP/1.1 200"),
            "{name} was served: {text}"
        );
    }
    assert_eq!(tracker.get("/health").await.text(), "ok");
    let mut ws = tracker.ws().await;
    ws.announce_ok(&announce(Id::random(), Id::random(), Some("started"), None))
        .await;
}

#[tokio::test]
async fn a_flood_of_garbage_is_closed_with_a_reason_and_others_are_undisturbed() {
    let tracker = Tracker::start("[limits]\nmax_announces_per_sec = 5\nannounce_burst = 10\n");
    let swarm = Id::random();
    let mut bystander = tracker.ws().await;
    bystander
        .announce_ok(&announce(swarm, Id::random(), Some("started"), None))
        .await;
    let mut flood = tracker.ws().await;
    // Far more bad messages than the burst allows, as fast as possible.
    for _ in 0..300 {
        if flood.try_send(Message::text("garbage")).await.is_err() {
            break;
        }
    }
    let mut failures = 0;
    let frame = loop {
        match flood.next_event(STEP).await {
            Event::Json(v) => {
                assert!(v.get("failure reason").is_some(), "{v}");
                failures += 1;
            }
            Event::Close(frame) => break frame,
            other => panic!("expected the flood to be closed with a close frame, got {other:?}"),
        }
    };
    let frame = frame.expect("a close frame with a code and reason");
    assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
    assert_eq!(
        frame.reason.as_str(),
        "rate limit exceeded: too many requests",
        "{frame:?}"
    );
    assert!(
        failures >= 10,
        "each bad message within the burst got its failure: {failures}"
    );
    assert!(tracker.metrics().await.errors("rate_limited") >= 1.0);
    assert_eq!(scrape_counts(&mut bystander, swarm).await, (0, 1));
}
