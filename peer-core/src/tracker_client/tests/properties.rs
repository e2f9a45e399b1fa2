//! Property tests of the tracker client: arbitrary server messages, arbitrary driver call sequences.

use super::*;
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[ -~]{0,8}".prop_map(Value::String),
        Just(Value::String(bin(&IH))),
        Just(Value::String(bin(&OTHER))),
        Just(Value::String(bin(&oid(1)))),
        Just(Value::String(bin(&ME))),
        Just(Value::String("announce".into())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just("type".to_owned()), Just("sdp".to_owned())],
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "action",
        "info_hash",
        "peer_id",
        "offer_id",
        "offer",
        "answer",
        "complete",
        "incomplete",
        "interval",
        "min interval",
        "tracker id",
        "failure reason",
        "warning message",
        "to_peer_id",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let _ = recv(&mut c, &text, now);
    }

    #[test]
    fn arbitrary_protocol_shaped_objects_never_panic(
        fields in proptest::collection::btree_map(field_name(), json_value(), 0..8)
    ) {
        let (mut c, now) = client();
        joined_with_offers(&mut c, now);
        let msg = Value::Object(fields.into_iter().collect()).to_string();
        let _ = recv(&mut c, &msg, now);
        c.handle_timeout(now + Duration::from_secs(3600));
    }

    /// Random driver behaviour: every offer handed to the client comes back exactly once, as
    /// an answer or an expiry; nothing is sent while disconnected; the timer never stays due.
    #[test]
    fn offers_are_conserved_and_timers_advance(ops in proptest::collection::vec(driver_op(), 0..80)) {
        let (mut c, t0) = client();
        let mut now = t0;
        let mut next_offer = 0u16;
        let mut given = std::collections::HashSet::new();
        let mut returned = std::collections::HashSet::new();
        let mut asked: Vec<InfoHash> = Vec::new();
        let mut relayed: Vec<(InfoHash, OfferId)> = Vec::new();
        let swarms = [IH, IH2];
        for op in ops {
            match op {
                DriverOp::Connect => c.connected(now),
                DriverOp::Disconnect => c.disconnected(now),
                DriverOp::Join(i) => c.join(swarms[i], now),
                DriverOp::Leave(i) => c.leave(swarms[i], now),
                DriverOp::Offers(i, n) => {
                    let ih = asked.get(i % asked.len().max(1)).copied().unwrap_or(swarms[i % 2]);
                    let offers: Vec<(OfferId, String)> = (0..n)
                        .map(|_| {
                            next_offer += 1;
                            let mut id = [0u8; 20];
                            id[..2].copy_from_slice(&next_offer.to_be_bytes());
                            given.insert((ih, id));
                            (id, "sdp".to_owned())
                        })
                        .collect();
                    c.offers_created(ih, offers, now);
                }
                DriverOp::Answer(k) => {
                    if let Some(&(ih, id)) = given.iter().nth(k % given.len().max(1)) {
                        let msg = serde_json::json!({
                            "action": "announce", "answer": {"type": "answer", "sdp": "a"},
                            "offer_id": bin(&id), "peer_id": bin(&OTHER), "info_hash": bin(&ih)
                        });
                        let frame = TrackerFrame::parse(&msg.to_string()).unwrap();
                        c.handle_message(&frame, now).unwrap();
                        relayed.push((ih, id));
                    }
                }
                DriverOp::Advance(secs) => {
                    now += Duration::from_secs(secs);
                    if c.poll_timeout().is_some_and(|t| t <= now) {
                        c.handle_timeout(now);
                        prop_assert!(c.poll_timeout().is_none_or(|t| t > now), "timer still due");
                    }
                }
            }
            if !c.is_connected() {
                prop_assert!(c.poll_transmit().is_none(), "sent while disconnected");
            }
            while c.poll_transmit().is_some() {}
            for e in drain(&mut c) {
                match e {
                    TrackerEvent::NeedOffers { info_hash, count } => {
                        prop_assert!(count <= 5);
                        asked.push(info_hash);
                    }
                    TrackerEvent::OfferExpired { info_hash, offer_id }
                    | TrackerEvent::Answer { info_hash, offer_id, .. } => {
                        prop_assert!(given.contains(&(info_hash, offer_id)), "unknown offer returned");
                        prop_assert!(returned.insert((info_hash, offer_id)), "offer returned twice");
                    }
                    _ => {}
                }
            }
        }
        c.disconnected(now);
        for e in drain(&mut c) {
            if let TrackerEvent::OfferExpired { info_hash, offer_id } = e {
                prop_assert!(returned.insert((info_hash, offer_id)), "offer returned twice");
            }
        }
        prop_assert_eq!(c.pending_offer_count(), 0);
        prop_assert_eq!(returned.len(), given.len(), "every offer comes back exactly once");
    }
}

#[derive(Debug, Clone)]
enum DriverOp {
    Connect,
    Disconnect,
    Join(usize),
    Leave(usize),
    Offers(usize, usize),
    Answer(usize),
    Advance(u64),
}

fn driver_op() -> impl Strategy<Value = DriverOp> {
    prop_oneof![
        1 => Just(DriverOp::Connect),
        1 => Just(DriverOp::Disconnect),
        2 => (0usize..2).prop_map(DriverOp::Join),
        1 => (0usize..2).prop_map(DriverOp::Leave),
        3 => (0usize..4, 0usize..7).prop_map(|(i, n)| DriverOp::Offers(i, n)),
        2 => (0usize..50).prop_map(DriverOp::Answer),
        3 => (0u64..70).prop_map(DriverOp::Advance),
    ]
}
