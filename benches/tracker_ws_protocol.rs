//! The tracker's WebSocket message codec on the messages aquatic's load tester sends: an announce
//! with 10 offers, an announce carrying an answer, and the relayed offers built from the first
//! (parsing included).
//!
//! `cargo bench -p segswarm-tracker --bench tracker_ws_protocol`; figures in BENCHMARKS.md.

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use segswarm_tracker::protocol::ws::{parse, OfferRelays, WsRequest};
use segswarm_tracker::protocol::Id20;
use serde_json::json;

/// aquatic_ws_load_test's SDP text.
const SDP: &str = "abcdefg-abcdefg-abcdefg-abcdefg-abcdefg-abcdefg";

fn random_id(rng: &mut SmallRng) -> String {
    Id20(rng.random()).to_binary_string()
}

fn offers_announce(rng: &mut SmallRng) -> String {
    let offers: Vec<_> = (0..10)
        .map(|_| json!({"offer_id": random_id(rng), "offer": {"type": "offer", "sdp": SDP}}))
        .collect();
    json!({
        "action": "announce", "info_hash": random_id(rng), "peer_id": random_id(rng),
        "bytes_left": 50, "event": "started", "numwant": 10, "offers": offers,
    })
    .to_string()
}

fn answer_announce(rng: &mut SmallRng) -> String {
    json!({
        "action": "announce", "info_hash": random_id(rng), "peer_id": random_id(rng),
        "to_peer_id": random_id(rng), "offer_id": random_id(rng),
        "answer": {"type": "answer", "sdp": SDP}, "bytes_left": 0, "numwant": 0,
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let announces: Vec<String> = (0..64).map(|_| offers_announce(&mut rng)).collect();
    let answers: Vec<String> = (0..64).map(|_| answer_announce(&mut rng)).collect();
    let mut group = c.benchmark_group("ws_parse");
    for (name, messages) in [("announce_10_offers", &announces), ("answer", &answers)] {
        let bytes: usize = messages.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes((bytes / messages.len()) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(name),
            messages,
            |b, messages| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % messages.len();
                    parse(&messages[i]).is_ok()
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("ws_encode");
    group.throughput(Throughput::Elements(10));
    group.bench_function("relay_10_offers", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % announces.len();
            let Ok(WsRequest::Announce(a)) = parse(&announces[i]) else {
                unreachable!("the bench's announces parse")
            };
            let relays = OfferRelays::new(a.info_hash_json, a.peer_id_json);
            a.offers
                .iter()
                .map(|o| relays.encode(o.offer_id_json, o.offer).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
