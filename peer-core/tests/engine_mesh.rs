//! Engines wired together in memory through the shared harness ([`segswarm_core::sim::harness`]):
//! the in-memory tracker matches their offers and answers, the network model carries data-channel
//! messages (optionally slowly or corrupted) and the origin serves HTTP.

use std::convert::Infallible;
use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use segswarm_core::engine::{DeliverySource, Engine, EngineConfig, Event, IoEvent, SegmentInfo};
use segswarm_core::integrity::SegmentManifest;
use segswarm_core::sim::harness::{
    Close, Harness, HarnessConfig, Host, NodeNet, MILLISECOND as MS, SECOND,
};
use segswarm_core::sim::tracker::{MemTracker, MemTrackerConfig};
use segswarm_core::wire::SegmentId;

const SEG_BYTES: usize = 100_000;

/// The harness running the tests' engines; a segment that fails panics.
struct Mesh(Harness<Infallible>);

impl Host<Infallible> for Mesh {
    fn harness(&mut self) -> &mut Harness<Infallible> {
        &mut self.0
    }

    fn engine_event(&mut self, _: usize, event: Event) {
        if let Event::SegmentFailed { segment, reason } = event {
            panic!("segment {segment} failed: {reason}");
        }
    }

    fn own_event(&mut self, event: Infallible) {
        match event {}
    }
}

impl Deref for Mesh {
    type Target = Harness<Infallible>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Mesh {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

fn payload(id: SegmentId) -> Bytes {
    Bytes::from(
        (0..SEG_BYTES)
            .map(|i| (i as u64 * 31 + id as u64 * 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn playlist() -> Vec<SegmentInfo> {
    (0..20)
        .map(|i| SegmentInfo {
            id: i,
            path: format!("v/{i}.ts"),
            start: i as f64 * 4.0,
            duration: 4.0,
            size_hint: Some(SEG_BYTES as u64),
            byte_range: None,
        })
        .collect()
}

fn manifest() -> SegmentManifest {
    let mut m = SegmentManifest::new();
    for i in 0..20 {
        m.insert(&format!("{i}.ts"), None, &payload(i));
    }
    m
}

impl Mesh {
    fn new(n: usize, tweak: impl Fn(usize, &mut EngineConfig)) -> Self {
        Self::with_manifests(n, tweak, |_| Some(manifest()))
    }

    /// `n` engines, 5 ms apart, with logs; engine `i` gets `manifest(i)` (none if `None`). The
    /// origin answers in 50 ms with the whole body.
    fn with_manifests(
        n: usize,
        tweak: impl Fn(usize, &mut EngineConfig),
        manifest: impl Fn(usize) -> Option<SegmentManifest>,
    ) -> Self {
        let config = HarnessConfig {
            tracker_latency: 5 * MS,
            sdp_delay: MS,
            ice_failure_delay: 10 * MS,
            http_ttfb: 50 * MS,
            log: true,
            ..HarnessConfig::default()
        };
        let tracker = MemTracker::new(MemTrackerConfig::default(), 3);
        let mut m = Mesh(Harness::new(config, tracker));
        for i in 0..20 {
            m.serve(format!("{i}.ts"), payload(i));
        }
        for i in 0..n {
            let latency = 5 * MS / 2;
            let node = m.add_node(NodeNet {
                latency,
                ..NodeNet::default()
            });
            let mut id = *b"-PM0203-testpeer0000";
            id[19] = b'0' + i as u8;
            let mut c = EngineConfig::new(
                id,
                *b"segswarm-test-swarm!",
                false,
                vec!["http://origin.test/".into(), "http://mirror.test/".into()],
            );
            c.seed = i as u64;
            tweak(i, &mut c);
            m.insert_engine(node, Engine::new(c));
        }
        for i in 0..n {
            m.with_engine(i, |e, now| e.set_playlist(playlist(), now));
            if let Some(manifest) = manifest(i) {
                m.with_engine(i, |e, now| e.set_manifest(manifest, now));
            }
        }
        m
    }

    /// Engine `i` (every test engine runs to the end).
    fn engine(&self, i: usize) -> &Engine {
        self.0.engine(i).expect("the engine runs")
    }

    fn connect_all(&mut self) {
        for i in 0..self.node_count() {
            self.input(i, IoEvent::TrackerConnected);
            self.run_until(self.now() + 200 * MS);
        }
        self.run_until(self.now() + SECOND);
    }
}

/// Engine 0 loads segment 10 over HTTP; engine 1 later wants it with time to spare.
fn seed_segment_10(m: &mut Mesh) {
    m.with_engine(0, |e, now| e.want_segment(10, now));
    m.run_until(m.now() + SECOND);
    assert!(matches!(
        m.log().delivery(0, 10).map(|d| d.source),
        Some(DeliverySource::Http(_))
    ));
    m.run_until(m.now() + 500 * MS);
}

/// Engine 1 plays from 20 s, so segment 10 (at 40 s) is due in 20 s.
fn want_segment_10_later(m: &mut Mesh, engine: usize) {
    m.with_engine(engine, |e, now| e.set_playback(28.0, now));
    m.with_engine(engine, |e, now| e.want_segment(10, now));
}

#[test]
fn segment_moves_from_one_engine_to_another() {
    let mut m = Mesh::new(2, |_, _| {});
    m.connect_all();
    assert_eq!(m.engine(0).connected_peers(), 1);
    assert_eq!(m.engine(1).connected_peers(), 1);
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now() + 3 * SECOND);
    let d = m.log().delivery(1, 10).expect("engine 1 got segment 10");
    assert!(matches!(d.source, DeliverySource::Peer(_)));
    assert_eq!(d.data, payload(10));
    assert!(
        m.log().http_requests_for(1, "10.ts").is_empty(),
        "no HTTP for segment 10: {:?}",
        m.log().http_requests
    );
    assert_eq!(m.engine(1).stats().p2p_bytes, SEG_BYTES as u64);
    assert_eq!(m.engine(0).stats().uploaded_bytes, SEG_BYTES as u64);
}

#[test]
fn segment_spreads_through_three_engines() {
    let mut m = Mesh::new(3, |_, _| {});
    m.connect_all();
    assert_eq!(m.engine(2).connected_peers(), 2);
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    want_segment_10_later(&mut m, 2);
    m.run_until(m.now() + 5 * SECOND);
    for e in [1, 2] {
        let d = m.log().delivery(e, 10).expect("delivered");
        assert!(matches!(d.source, DeliverySource::Peer(_)), "engine {e}");
        assert_eq!(d.data, payload(10));
    }
}

#[test]
fn slow_peer_is_abandoned_for_http_resuming_from_the_received_byte() {
    let mut m = Mesh::new(2, |i, c| {
        if i == 0 {
            c.max_message_bytes = 1000;
        }
    });
    m.node_mut(0).up_rate = 4_000.0; // 100 kB would take 25 s
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    let deadline = start + 12 * SECOND;
    m.run_until(start + 20 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert_eq!(d.data, payload(10), "resumed bytes join correctly");
    assert!(matches!(d.source, DeliverySource::Http(_)));
    assert!(
        d.at < deadline,
        "delivered at {} µs, deadline {} µs",
        d.at - start,
        deadline - start
    );
    let reqs = m.log().http_requests_for(1, "10.ts");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let from = reqs[0].range_from.expect("a Range request");
    assert!(from > 0 && from < SEG_BYTES as u64, "resumed from {from}");
    assert!(m.engine(1).stats().p2p_bytes >= from);
    assert_eq!(m.engine(1).stats().stalls_avoided, 1);
}

#[test]
fn corrupting_peer_is_banned_and_the_segment_refetched_over_http() {
    let mut m = Mesh::new(2, |_, _| {});
    m.node_mut(0).corrupt_segment_bytes = true;
    m.connect_all();
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now() + 3 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert_eq!(d.data, payload(10), "the player gets the genuine bytes");
    assert!(matches!(d.source, DeliverySource::Http(_)));
    assert_eq!(m.log().http_requests_for(1, "10.ts").len(), 1);
    let banned: Vec<_> = m.engine(1).banned().iter().copied().collect();
    assert_eq!(banned, vec![*b"-PM0203-testpeer0000"]);
    assert_eq!(m.engine(1).connected_peers(), 0);
    assert!(
        m.log().closes.iter().any(|c| c.node == 1),
        "engine 1 closed the peer"
    );
    assert_eq!(m.engine(1).stats().hash_mismatches, 1);
}

#[test]
fn consume_only_engine_uploads_nothing() {
    let mut m = Mesh::new(2, |i, c| c.consume_only = i == 0);
    m.connect_all();
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now() + 25 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert!(matches!(d.source, DeliverySource::Http(_)));
    assert_eq!(m.engine(0).stats().uploaded_bytes, 0);
}

#[test]
fn upload_budget_paces_uploads() {
    let mut m = Mesh::new(2, |i, c| {
        if i == 0 {
            c.upload_rate = Some(50_000);
            c.upload_burst = 10_000;
            c.max_message_bytes = 10_000;
        }
    });
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 10 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert!(matches!(d.source, DeliverySource::Peer(_)));
    let took = (d.at - start) as f64 / SECOND as f64;
    // 100 kB at 50 kB/s with a 10 kB burst: about 1.8 s.
    assert!((1.6..2.5).contains(&took), "took {took} s");
}

#[test]
fn a_segment_still_downloading_over_http_is_relayed_as_it_arrives() {
    let mut m = Mesh::new(2, |_, _| {});
    // Engine 0's HTTP body arrives in 10 kB pieces every 200 ms: 2 s for the segment.
    m.config_mut().http_chunk_bytes = 10_000;
    m.node_mut(0).down_rate = 50_000.0;
    m.connect_all();
    let start = m.now();
    m.with_engine(0, |e, now| e.want_segment(10, now));
    m.run_until(start + 300 * MS);
    assert!(
        m.log().delivery(0, 10).is_none(),
        "engine 0 is still downloading"
    );
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 6 * SECOND);
    let d0 = m.log().delivery(0, 10).expect("engine 0 got segment 10").at;
    let d1 = m.log().delivery(1, 10).expect("engine 1 got segment 10");
    assert!(matches!(d1.source, DeliverySource::Peer(_)));
    assert_eq!(d1.data, payload(10));
    assert!(
        m.log().http_requests_for(1, "10.ts").is_empty(),
        "{:?}",
        m.log().http_requests
    );
    let relayed = m.log().peer_bytes_between(0, 1);
    let before: usize = relayed.iter().filter(|b| b.at < d0).map(|b| b.bytes).sum();
    // Everything but the held-back last byte went out while engine 0 was still downloading.
    assert!(
        before >= SEG_BYTES / 2,
        "{before} bytes relayed before engine 0 finished at {d0} µs: {relayed:?}"
    );
    assert!(before < SEG_BYTES, "the last byte waits for verification");
    assert!(
        d1.at >= d0,
        "engine 1 completes after engine 0 verified the segment"
    );
    assert!(
        d1.at - d0 < 500 * MS,
        "engine 1 finished {} µs after engine 0",
        d1.at - d0
    );
    assert_eq!(m.engine(0).stats().uploaded_bytes, SEG_BYTES as u64);
    assert_eq!(m.engine(1).stats().p2p_bytes, SEG_BYTES as u64);
}

#[test]
fn a_segment_still_downloading_from_a_peer_is_relayed_onward() {
    let mut m = Mesh::new(3, |i, c| {
        if i == 0 {
            c.max_message_bytes = 5_000;
        }
    });
    m.node_mut(0).up_rate = 50_000.0; // 2 s for the segment from engine 0
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 400 * MS);
    assert!(
        !m.log().peer_bytes_between(0, 1).is_empty(),
        "engine 1 loads from engine 0"
    );
    // Engine 0 serves one peer at a time; engine 2 turns to engine 1, which is still loading.
    want_segment_10_later(&mut m, 2);
    m.run_until(start + 8 * SECOND);
    let d1 = m.log().delivery(1, 10).expect("engine 1 got segment 10");
    let d2 = m.log().delivery(2, 10).expect("engine 2 got segment 10");
    assert_eq!(d2.data, payload(10));
    assert!(matches!(d2.source, DeliverySource::Peer(_)));
    let relayed: usize = m
        .log()
        .peer_bytes_between(1, 2)
        .iter()
        .filter(|b| b.at < d1.at)
        .map(|b| b.bytes)
        .sum();
    assert!(
        relayed > 0,
        "engine 1 relayed bytes before it had the segment: {:?}",
        m.log().peer_bytes
    );
    assert!(
        m.log().http_requests_for(2, "10.ts").is_empty(),
        "{:?}",
        m.log().http_requests
    );
}

#[test]
fn a_relay_of_bad_bytes_ends_with_segment_absent_and_no_ban() {
    // Engine 0 corrupts what it sends; engine 1 loads from it and relays to engine 2 meanwhile.
    let mut m = Mesh::new(3, |i, c| {
        if i == 0 {
            c.max_message_bytes = 5_000;
        }
    });
    m.node_mut(0).up_rate = 50_000.0;
    m.node_mut(0).corrupt_segment_bytes = true;
    m.block(0, 2);
    m.connect_all();
    assert_eq!(m.engine(2).connected_peers(), 1);
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 400 * MS);
    want_segment_10_later(&mut m, 2);
    m.run_until(start + 10 * SECOND);
    assert!(
        !m.log().peer_bytes_between(1, 2).is_empty(),
        "engine 1 relayed to engine 2: {:?}",
        m.log().peer_bytes
    );
    // Engine 1 found the hash wrong and banned engine 0 ...
    assert_eq!(m.engine(1).stats().hash_mismatches, 1);
    assert_eq!(m.engine(1).banned().len(), 1);
    // ... and engine 2 never completed the bad segment, so it bans nobody and plays good bytes.
    assert_eq!(
        m.engine(2).stats().hash_mismatches,
        0,
        "{:?}",
        m.engine(2).stats()
    );
    assert!(m.engine(2).banned().is_empty());
    for e in [1, 2] {
        let d = m.log().delivery(e, 10).expect("delivered");
        assert_eq!(d.data, payload(10), "engine {e} plays the genuine bytes");
    }
}

/// Three engines ask the only holder at once: it serves one, queues one (its bytes go out right
/// after the first transfer, well inside the requester's patience) and refuses the third, which
/// then gets the segment from another peer; nobody falls back to HTTP.
#[test]
fn a_busy_holder_queues_one_request_and_refuses_the_next() {
    let mut m = Mesh::new(4, |i, c| {
        if i == 0 {
            // 100 kB in 0.25 s: a queued request waits about that long.
            c.upload_rate = Some(400_000);
            c.upload_burst = 10_000;
            c.max_message_bytes = 10_000;
        }
    });
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    for e in 1..4 {
        want_segment_10_later(&mut m, e);
    }
    m.run_until(start + 6 * SECOND);
    for e in 1..4 {
        let d = m.log().delivery(e, 10).expect("delivered");
        assert!(matches!(d.source, DeliverySource::Peer(_)), "engine {e}");
        assert_eq!(d.data, payload(10));
        assert!(
            m.log().http_requests_for(e, "10.ts").is_empty(),
            "engine {e} used HTTP"
        );
    }
    let s = m.engine(0).stats();
    assert_eq!(s.upload_requests_queued, 1, "{s:?}");
    assert_eq!(s.upload_requests_refused, 1, "{s:?}");
    // The queued transfer starts once the first one ended: engine 0 never sends to two at once.
    let mut spans: Vec<(u64, u64)> = (1..4)
        .filter_map(|to| {
            let b = m.log().peer_bytes_between(0, to);
            Some((b.first()?.at, b.last()?.at))
        })
        .collect();
    spans.sort();
    assert_eq!(spans.len(), 2, "engine 0 served two peers: {spans:?}");
    assert!(spans[0].1 <= spans[1].0, "transfers overlap: {spans:?}");
}

/// Issue 11 item 9: a peer that repeats `SegmentRequest` (withholding acks in real life) gets the
/// segment queued at most a bounded number of times, then is banned.
#[test]
fn a_peer_repeating_one_request_is_not_sent_the_segment_each_time_and_is_banned() {
    let mut m = Mesh::new(2, |_, _| {});
    m.connect_all();
    seed_segment_10(&mut m);
    let h = m.link_handle(0, 1).expect("engine 0 links to engine 1");
    for request in 1..=100 {
        let cmd = segswarm_core::wire::Command::SegmentRequest {
            segment: 10,
            request,
            byte_from: None,
        };
        for part in segswarm_core::wire::encode_command(&cmd) {
            m.input(
                0,
                IoEvent::PeerMessage {
                    peer: h,
                    data: Bytes::from(part),
                },
            );
        }
    }
    let max = EngineConfig::new([0; 20], [0; 20], false, vec![]).max_repeated_requests;
    let sent = m.engine(0).stats().uploaded_bytes;
    assert!(
        sent <= (u64::from(max) + 1) * SEG_BYTES as u64,
        "engine 0 queued {sent} bytes for 100 requests of one {SEG_BYTES}-byte segment"
    );
    let s = m.engine(0).stats();
    assert!(s.upload_requests_repeated >= u64::from(max), "{s:?}");
    assert_eq!(s.peers_banned_repeats, 1, "{s:?}");
    assert_eq!(m.engine(0).banned().len(), 1);
    assert_eq!(m.engine(0).connected_peers(), 0);
    assert!(m.log().closes.contains(&Close { node: 0, peer: h }));
}

/// Issue 11 item 11: engine 1 loads from a corrupting engine 0 and relays to engine 2; the link
/// to engine 0 fails mid-transfer and engine 1 starts over from HTTP. Its relay to engine 2 must
/// not go on with the new bytes after engine 0's prefix: engine 2 plays genuine bytes and bans no
/// one (before, it received a spliced segment and banned the honest relay).
#[test]
fn a_relay_ends_when_its_partial_data_is_dropped() {
    let mut m = Mesh::new(3, |i, c| {
        if i == 0 {
            c.max_message_bytes = 5_000;
        }
    });
    m.node_mut(0).up_rate = 50_000.0; // 2 s for the segment from engine 0
    m.node_mut(0).corrupt_segment_bytes = true;
    m.block(0, 2);
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 400 * MS);
    want_segment_10_later(&mut m, 2);
    m.run_until(start + 1200 * MS);
    let relayed = m.log().peer_bytes_between(1, 2);
    assert!(
        !relayed.is_empty() && relayed.iter().all(|b| b.bytes < SEG_BYTES),
        "engine 1 relays part of the segment to engine 2 before the cut: {relayed:?}"
    );
    // Segment 10 comes due sooner; engine 0 goes away and engine 1 starts over from HTTP at once.
    m.with_engine(1, |e, now| e.set_playback(37.5, now));
    m.cut(0, 1);
    m.run_until(start + 10 * SECOND);
    for e in [1, 2] {
        let d = m.log().delivery(e, 10).expect("delivered");
        assert!(d.data == payload(10), "engine {e} plays the genuine bytes");
    }
    let s = m.engine(2).stats();
    assert_eq!(
        s.hash_mismatches, 0,
        "engine 2 got a spliced segment: {s:?}"
    );
    assert!(m.engine(2).banned().is_empty(), "engine 2 banned its relay");
}

/// Issue 11 item 11: a segment whose prefix came from a peer and whose rest came over HTTP does
/// not match the manifest: the peer that supplied the prefix is banned (before, no one was).
#[test]
fn a_mixed_source_mismatch_bans_the_peer_that_supplied_the_prefix() {
    let mut m = Mesh::new(2, |i, c| {
        if i == 0 {
            c.max_message_bytes = 1000;
        }
    });
    m.node_mut(0).up_rate = 4_000.0; // too slow: engine 1 resumes over HTTP
    m.node_mut(0).corrupt_segment_bytes = true;
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 20 * SECOND);
    let reqs = m.log().http_requests_for(1, "10.ts");
    assert!(
        reqs.first()
            .and_then(|r| r.range_from)
            .is_some_and(|from| from > 0),
        "engine 1 resumed over HTTP: {reqs:?}"
    );
    let d = m.log().delivery(1, 10).expect("delivered");
    assert!(d.data == payload(10), "the player gets the genuine bytes");
    assert_eq!(m.engine(1).stats().hash_mismatches, 1);
    let banned: Vec<_> = m.engine(1).banned().iter().copied().collect();
    assert_eq!(banned, vec![*b"-PM0203-testpeer0000"]);
}

/// The test manifest without segment `id` (as a live manifest before its reload).
fn manifest_without(id: SegmentId) -> SegmentManifest {
    let mut m = manifest();
    m.remove(&format!("{id}.ts"));
    m
}

/// Issue 11 item 10: engine 1's manifest does not list segment 10 yet; the bytes engine 0 sends
/// are bad. They are neither played nor relayed; when the reloaded manifest lists the segment,
/// the mismatch bans engine 0 and the player gets the genuine bytes over HTTP.
#[test]
fn a_peer_segment_not_in_the_manifest_waits_for_it_and_is_never_played_unverified() {
    let mut m = Mesh::with_manifests(
        3,
        |_, _| {},
        |i| {
            Some(if i == 1 {
                manifest_without(10)
            } else {
                manifest()
            })
        },
    );
    m.node_mut(0).corrupt_segment_bytes = true;
    m.block(0, 2);
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    want_segment_10_later(&mut m, 2);
    m.run_until(start + SECOND);
    assert!(
        m.log().delivery(1, 10).is_none(),
        "played before verification"
    );
    assert!(
        m.log().peer_bytes_between(1, 2).is_empty(),
        "relayed before verification: {:?}",
        m.log().peer_bytes
    );
    m.with_engine(1, |e, now| e.set_manifest(manifest(), now));
    m.run_until(start + 4 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert!(d.data == payload(10), "the player gets the genuine bytes");
    assert!(matches!(d.source, DeliverySource::Http(_)));
    let s = m.engine(1).stats();
    assert_eq!((s.segments_unverified, s.hash_mismatches), (1, 1), "{s:?}");
    let banned: Vec<_> = m.engine(1).banned().iter().copied().collect();
    assert_eq!(banned, vec![*b"-PM0203-testpeer0000"]);
    assert!(m.engine(2).banned().is_empty());
}

/// Without a manifest reload, the held segment is dropped after `unverified_wait` and fetched
/// over HTTP.
#[test]
fn a_peer_segment_the_manifest_never_lists_is_fetched_over_http() {
    let mut m = Mesh::with_manifests(
        2,
        |_, _| {},
        |i| {
            Some(if i == 1 {
                manifest_without(10)
            } else {
                manifest()
            })
        },
    );
    m.node_mut(0).corrupt_segment_bytes = true;
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now();
    want_segment_10_later(&mut m, 1);
    m.run_until(start + 10 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert!(d.data == payload(10), "the player gets the origin's bytes");
    assert!(matches!(d.source, DeliverySource::Http(_)));
    let wait = EngineConfig::new([0; 20], [0; 20], false, vec![]).unverified_wait;
    let wait = u64::try_from(wait.as_micros()).expect("a short wait");
    assert!(d.at >= start + wait, "delivered after {} µs", d.at - start);
    let s = m.engine(1).stats();
    assert_eq!(
        (s.segments_unverified, s.unverified_refetched),
        (1, 1),
        "{s:?}"
    );
}

/// `require_manifest`: without a manifest, engine 1 loads over HTTP although engine 0 has the
/// segment, and serves nothing.
#[test]
fn require_manifest_refuses_p2p_without_a_manifest() {
    let mut m = Mesh::with_manifests(
        2,
        |i, c| c.require_manifest = i == 1,
        |i| (i != 1).then(manifest),
    );
    m.connect_all();
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now() + 20 * SECOND);
    let d = m.log().delivery(1, 10).expect("delivered");
    assert!(matches!(d.source, DeliverySource::Http(_)));
    assert_eq!(m.engine(1).stats().p2p_bytes, 0);
    assert_eq!(m.engine(0).stats().uploaded_bytes, 0);
    // Engine 0 asks engine 1 for what engine 1 holds: refused.
    m.with_engine(0, |e, now| e.set_playback(36.0, now));
    m.with_engine(0, |e, now| e.want_segment(11, now));
    m.with_engine(1, |e, now| e.want_segment(11, now));
    m.run_until(m.now() + 20 * SECOND);
    assert_eq!(m.engine(1).stats().uploaded_bytes, 0);
}
