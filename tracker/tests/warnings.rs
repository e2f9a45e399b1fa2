//! `warning message`: an announce that is accepted but trimmed (more offers than `max_offers`,
//! `numwant` above the HTTP cap) gets its normal response plus a `warning message` saying what
//! was cut; an announce within the limits gets none.

use crate::common;

use bt_bencode::Value as Bencode;
use common::*;
use serde_json::Value;

#[tokio::test]
async fn websocket_announce_with_too_many_offers_is_relayed_in_part_with_a_warning() {
    let tracker = Tracker::start("[protocol]\nmax_offers = 2\n");
    let ih = Id::random();
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut ws = tracker.ws().await;
        ws.announce_ok(&announce(ih, Id::random(), Some("started"), None))
            .await;
        others.push(ws);
    }
    let me = Id::random();
    let offers: Vec<(Id, Value)> = (0..3)
        .map(|i| (Id::random(), sdp_offer(&format!("o{i}"))))
        .collect();
    let mut ws = tracker.ws().await;
    let reply = ws.announce_ok(&announce_with_offers(ih, me, &offers)).await;
    assert_eq!(
        reply["warning message"], "3 offers sent: at most 2 are relayed, the rest were ignored",
        "{reply}"
    );
    assert_eq!(
        (reply["complete"].as_u64(), reply["incomplete"].as_u64()),
        (Some(0), Some(4)),
        "the announce itself was accepted: {reply}"
    );
    // The first two offers went to two distinct other peers; the third offer to nobody.
    let mut got = Vec::new();
    for other in &mut others {
        match other.next_event(QUIET).await {
            Event::Json(v) => {
                assert_eq!(v["peer_id"], me.bin(), "{v}");
                got.push(Id::from_bin(v["offer_id"].as_str().expect("offer_id")));
                other.expect_quiet().await;
            }
            Event::Timeout => {}
            e => panic!("unexpected {e:?}"),
        }
    }
    got.sort_by_key(|id| id.0);
    let mut want = vec![offers[0].0, offers[1].0];
    want.sort_by_key(|id| id.0);
    assert_eq!(got, want);

    // Within the limit: no warning.
    let mut msg = announce_with_offers(ih, me, &offers[..2]);
    msg["event"] = serde_json::json!("update");
    let reply = ws.announce_ok(&msg).await;
    assert!(reply.get("warning message").is_none(), "{reply}");
}

fn http_announce(ih: Id, peer: Id, port: u16, numwant: Option<u32>) -> String {
    let mut q = format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=10&compact=1",
        ih.url(),
        peer.url()
    );
    if let Some(n) = numwant {
        q.push_str(&format!("&numwant={n}"));
    }
    q
}

#[tokio::test]
async fn http_numwant_above_the_cap_is_trimmed_with_a_warning() {
    let tracker = Tracker::start("[protocol]\nhttp_max_numwant = 5\nhttp_default_numwant = 3\n");
    let ih = Id::random();
    for port in 0..7 {
        let r = tracker
            .get(&http_announce(ih, Id::random(), 7000 + port, Some(0)))
            .await;
        assert!(
            r.bencode().get("warning message").is_none(),
            "{:?}",
            r.text()
        );
    }
    let peers = |b: &Bencode| {
        b.get("peers")
            .and_then(Bencode::as_byte_str)
            .map(|p| p.len() / 6)
            .unwrap_or_else(|| panic!("compact peers in {b:?}"))
    };
    let b = tracker
        .get(&http_announce(ih, Id::random(), 8000, Some(6)))
        .await
        .bencode();
    assert!(b.get("failure reason").is_none(), "{b:?}");
    assert_eq!(
        b.get("warning message").and_then(Bencode::as_str),
        Some("numwant 6 is above this tracker's limit: at most 5 peers are returned"),
        "{b:?}"
    );
    assert_eq!(peers(&b), 5);
    for (numwant, want) in [(Some(5), 5), (None, 3)] {
        let b = tracker
            .get(&http_announce(ih, Id::random(), 8001, numwant))
            .await
            .bencode();
        assert!(b.get("warning message").is_none(), "{numwant:?}: {b:?}");
        assert_eq!(peers(&b), want, "{numwant:?}");
    }
}
