//! Malformed and oversized messages: errors that report no event and leave the client usable.

use super::*;

#[test]
fn malformed_messages_are_errors_and_leave_the_client_usable() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let ih = bin(&IH);
    let other = bin(&OTHER);
    let o = bin(&oid(9));
    let cases: Vec<(String, TrackerClientError)> = vec![
        ("not json".into(), TrackerClientError::Json(String::new())),
        ("[1]".into(), TrackerClientError::NotAnObject),
        ("{}".into(), TrackerClientError::MissingAction),
        (
            r#"{"action":"dance"}"#.into(),
            TrackerClientError::UnknownAction("dance".into()),
        ),
        (
            r#"{"action":7}"#.into(),
            TrackerClientError::BadField { field: "action", problem: "not a string" },
        ),
        (
            r#"{"action":"announce"}"#.into(),
            TrackerClientError::BadField { field: "info_hash", problem: "missing" },
        ),
        (
            r#"{"action":"announce","info_hash":"abc"}"#.into(),
            TrackerClientError::BadField { field: "info_hash", problem: "not a 20-byte binary string" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":"\u{263a}".repeat(20)}).to_string(),
            TrackerClientError::BadField { field: "info_hash", problem: "not a 20-byte binary string" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"complete":-1}).to_string(),
            TrackerClientError::BadField { field: "complete", problem: "not a non-negative number" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"interval":"soon"}).to_string(),
            TrackerClientError::BadField { field: "interval", problem: "not a non-negative number" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":{"type":"offer"},"offer_id":o,"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer", problem: "sdp missing or not a string" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":{"type":"answer","sdp":"x"},"offer_id":o,"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer", problem: "wrong type" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":"x","offer_id":o,"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer", problem: "not an object" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"offer":{"sdp":"x"},"peer_id":other}).to_string(),
            TrackerClientError::BadField { field: "offer_id", problem: "missing" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"answer":{"sdp":"x"},"offer_id":o}).to_string(),
            TrackerClientError::BadField { field: "peer_id", problem: "missing" },
        ),
        (
            // Its warning and acceptance are not reported either.
            serde_json::json!({"action":"announce","info_hash":ih,"warning message":"w","complete":1,"answer":{"sdp":"x"},"offer_id":o}).to_string(),
            TrackerClientError::BadField { field: "peer_id", problem: "missing" },
        ),
        (
            serde_json::json!({"action":"announce","info_hash":ih,"failure reason":5}).to_string(),
            TrackerClientError::BadField { field: "failure reason", problem: "not a string" },
        ),
    ];
    for (text, expected) in cases {
        let err = recv(&mut c, &text, now).unwrap_err();
        match (&err, &expected) {
            (TrackerClientError::Json(_), TrackerClientError::Json(_)) => {}
            _ => assert_eq!(err, expected, "{text}"),
        }
        assert!(!err.to_string().is_empty());
        assert!(drain(&mut c).is_empty(), "{text}");
    }
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(300 * 1024));
    assert!(matches!(
        recv(&mut c, &big, now),
        Err(TrackerClientError::TooLarge { len, max: 262_144 }) if len == big.len()
    ));
    // Nothing changed: both offers still pending, still usable.
    assert_eq!(c.pending_offer_count(), 2);
    let ok = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "complete": 0, "incomplete": 1, "interval": 120
    }));
    assert_eq!(recv(&mut c, &ok, now).unwrap().len(), 1);
    // Unknown fields are tolerated; a scrape response is accepted silently.
    let extra = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "x-custom": [1, 2]
    }));
    assert!(recv(&mut c, &extra, now).unwrap().is_empty());
    assert!(recv(&mut c, r#"{"action":"scrape","files":{}}"#, now)
        .unwrap()
        .is_empty());
}
