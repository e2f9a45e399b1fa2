//! Engines wired together in memory: the in-memory tracker matches their offers and answers, a small
//! network delivers data-channel messages (optionally slowly or corrupted) and an origin serves HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use segswarm_core::engine::{
    DeliverySource, Engine, EngineConfig, Event, HttpCommand, IoEvent, PeerHandle, RtcCommand,
    SegmentInfo, Transmit,
};
use segswarm_core::integrity::SegmentManifest;
use segswarm_core::sim::tracker::{MemTracker, MemTrackerConfig};
use segswarm_core::tracker_client::TrackerFrame;
use segswarm_core::wire::SegmentId;

const SEG_BYTES: usize = 100_000;

#[derive(Debug)]
enum Ev {
    Io(usize, IoEvent),
    Tracker(usize, String),
    Timer(usize),
}

struct Mesh {
    base: Instant,
    now: Duration,
    engines: Vec<Engine>,
    tracker: MemTracker,
    queue: BTreeMap<(Duration, u64), Ev>,
    seq: u64,
    links: BTreeMap<(usize, PeerHandle), (usize, PeerHandle)>,
    link_free: BTreeMap<(usize, PeerHandle), Duration>,
    /// Upload rate of each engine in bytes/s (None: instant).
    up_rate: Vec<Option<f64>>,
    corrupt: Vec<bool>,
    origin: BTreeMap<SegmentId, Bytes>,
    http_log: Vec<(usize, SegmentId, Option<u64>, Duration)>,
    delivered: Vec<(usize, SegmentId, Bytes, DeliverySource, Duration)>,
    closed: Vec<(usize, PeerHandle)>,
    /// HTTP bodies in chunks of this many bytes, one per interval (None: the whole body at once).
    http_pace: Option<(usize, Duration)>,
    /// Segment-byte messages delivered: (from, to, when, bytes).
    peer_bytes: Vec<(usize, usize, Duration, usize)>,
    /// Pairs of engines whose connection fails.
    no_link: Vec<(usize, usize)>,
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

    /// Engine `i` gets `manifest(i)` (none if `None`).
    fn with_manifests(
        n: usize,
        tweak: impl Fn(usize, &mut EngineConfig),
        manifest: impl Fn(usize) -> Option<SegmentManifest>,
    ) -> Self {
        let base = Instant::now();
        let engines = (0..n)
            .map(|i| {
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
                Engine::new(c)
            })
            .collect();
        let mut m = Mesh {
            base,
            now: Duration::ZERO,
            engines,
            tracker: MemTracker::new(MemTrackerConfig::default(), 3),
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            link_free: BTreeMap::new(),
            up_rate: vec![None; n],
            corrupt: vec![false; n],
            origin: (0..20).map(|i| (i, payload(i))).collect(),
            http_log: Vec::new(),
            delivered: Vec::new(),
            closed: Vec::new(),
            http_pace: None,
            peer_bytes: Vec::new(),
            no_link: Vec::new(),
        };
        for i in 0..n {
            m.act(i, |e, now| e.set_playlist(playlist(), now));
            if let Some(manifest) = manifest(i) {
                m.act(i, |e, now| e.set_manifest(manifest, now));
            }
        }
        m
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), ev);
    }

    fn input(&mut self, i: usize, event: IoEvent) {
        self.act(i, |e, now| e.handle_event(event, now));
    }

    /// Calls `f` on engine `i` with the current time, then carries out what it queued.
    fn act(&mut self, i: usize, f: impl FnOnce(&mut Engine, Instant)) {
        let now = self.base + self.now;
        f(&mut self.engines[i], now);
        while let Some(t) = self.engines[i].poll_transmit() {
            self.transmit(i, t);
        }
        while let Some(c) = self.engines[i].poll_rtc() {
            self.rtc(i, c);
        }
        while let Some(c) = self.engines[i].poll_http() {
            self.http(i, c);
        }
        while let Some(ev) = self.engines[i].poll_event() {
            self.event(i, ev);
        }
        if let Some(t) = self.engines[i].poll_timeout() {
            let at = t
                .saturating_duration_since(self.base)
                .max(self.now + Duration::from_millis(1));
            self.push(at, Ev::Timer(i));
        }
    }

    fn transmit(&mut self, i: usize, t: Transmit) {
        let now = self.now;
        let ms = Duration::from_millis;
        match t {
            Transmit::Tracker(t) => self.push(now + ms(5), Ev::Tracker(i, t)),
            Transmit::Peer {
                peer,
                data,
                segment_bytes,
            } => {
                let Some(&(o, oh)) = self.links.get(&(i, peer)) else {
                    return;
                };
                let data = if segment_bytes && self.corrupt[i] {
                    let mut v = data.to_vec();
                    v[0] ^= 0xff;
                    Bytes::from(v)
                } else {
                    data
                };
                // Messages of one link arrive in order; segment bytes take time on a slow link.
                let free = self
                    .link_free
                    .get(&(i, peer))
                    .copied()
                    .unwrap_or(now)
                    .max(now + ms(5));
                let at = match (self.up_rate[i], segment_bytes) {
                    (Some(rate), true) => free + Duration::from_secs_f64(data.len() as f64 / rate),
                    _ => free,
                };
                self.link_free.insert((i, peer), at);
                if segment_bytes {
                    self.peer_bytes.push((i, o, at, data.len()));
                }
                self.push(at, Ev::Io(o, IoEvent::PeerMessage { peer: oh, data }));
            }
        }
    }

    fn rtc(&mut self, i: usize, c: RtcCommand) {
        let now = self.now;
        let ms = Duration::from_millis;
        match c {
            RtcCommand::CreateOffers(hs) => {
                for peer in hs {
                    let sdp = Some(format!("o:{i}:{}", peer.0));
                    self.push(now + ms(1), Ev::Io(i, IoEvent::OfferCreated { peer, sdp }));
                }
            }
            RtcCommand::CreateAnswer { peer, offer_sdp } => {
                let parts: Vec<&str> = offer_sdp.split(':').collect();
                let (o, oh) = (
                    parts[1].parse().unwrap(),
                    PeerHandle(parts[2].parse().unwrap()),
                );
                self.links.insert((i, peer), (o, oh));
                self.links.insert((o, oh), (i, peer));
                self.push(
                    now + ms(1),
                    Ev::Io(
                        i,
                        IoEvent::AnswerCreated {
                            peer,
                            sdp: format!("a:{i}:{}", peer.0),
                        },
                    ),
                );
            }
            RtcCommand::AcceptAnswer { peer, .. } => {
                if let Some(&(a, ah)) = self.links.get(&(i, peer)) {
                    if self.no_link.contains(&(i.min(a), i.max(a))) {
                        self.links.remove(&(i, peer));
                        self.links.remove(&(a, ah));
                        self.push(now + ms(10), Ev::Io(i, IoEvent::PeerClosed(peer)));
                        self.push(now + ms(10), Ev::Io(a, IoEvent::PeerClosed(ah)));
                        return;
                    }
                    self.push(now + ms(10), Ev::Io(i, IoEvent::PeerConnected(peer)));
                    self.push(now + ms(10), Ev::Io(a, IoEvent::PeerConnected(ah)));
                }
            }
            RtcCommand::Close(h) => {
                self.closed.push((i, h));
                if let Some((o, oh)) = self.links.remove(&(i, h)) {
                    self.links.remove(&(o, oh));
                    self.push(now + ms(5), Ev::Io(o, IoEvent::PeerClosed(oh)));
                }
            }
        }
    }

    fn http(&mut self, i: usize, c: HttpCommand) {
        let now = self.now;
        let ms = Duration::from_millis;
        match c {
            HttpCommand::Get {
                request,
                url,
                range_from,
                ..
            } => {
                let id: SegmentId = url
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".ts")
                    .parse()
                    .unwrap();
                self.http_log.push((i, id, range_from, now));
                let body = self.origin[&id].slice(range_from.unwrap_or(0) as usize..);
                self.push(
                    now + ms(50),
                    Ev::Io(
                        i,
                        IoEvent::HttpStarted {
                            request,
                            content_length: Some(body.len() as u64),
                        },
                    ),
                );
                let (step, every) = self.http_pace.unwrap_or((body.len().max(1), ms(50)));
                let mut at = now + ms(50);
                for from in (0..body.len()).step_by(step) {
                    at += every;
                    let data = body.slice(from..(from + step).min(body.len()));
                    self.push(at, Ev::Io(i, IoEvent::HttpChunk { request, data }));
                }
                self.push(at, Ev::Io(i, IoEvent::HttpCompleted(request)));
            }
            HttpCommand::Abort(_h) => {}
        }
    }

    fn event(&mut self, i: usize, e: Event) {
        let now = self.now;
        match e {
            Event::SegmentReady {
                segment,
                data,
                source,
            } => self.delivered.push((i, segment, data, source, now)),
            Event::SegmentFailed { segment, reason } => {
                panic!("segment {segment} failed: {reason}")
            }
            _ => {}
        }
    }

    fn run_until(&mut self, t: Duration) {
        while let Some((&(at, seq), _)) = self.queue.iter().next() {
            if at > t {
                break;
            }
            let ev = self.queue.remove(&(at, seq)).unwrap();
            self.now = at;
            match ev {
                Ev::Io(i, input) => self.input(i, input),
                Ev::Timer(i) => self.act(i, Engine::handle_timeout),
                Ev::Tracker(i, text) => {
                    for (to, text) in self.tracker.handle(i, &text) {
                        let frame = TrackerFrame::parse(&text).expect("the tracker writes JSON");
                        self.push(
                            self.now + Duration::from_millis(5),
                            Ev::Io(to, IoEvent::TrackerMessage(frame)),
                        );
                    }
                }
            }
        }
        self.now = t;
    }

    fn connect_all(&mut self) {
        for i in 0..self.engines.len() {
            self.input(i, IoEvent::TrackerConnected);
            self.run_until(self.now + Duration::from_millis(200));
        }
        self.run_until(self.now + Duration::from_secs(1));
    }

    fn delivery(
        &self,
        engine: usize,
        seg: SegmentId,
    ) -> Option<&(usize, SegmentId, Bytes, DeliverySource, Duration)> {
        self.delivered.iter().find(|d| d.0 == engine && d.1 == seg)
    }

    fn http_requests(&self, engine: usize, seg: SegmentId) -> Vec<(Option<u64>, Duration)> {
        self.http_log
            .iter()
            .filter(|h| h.0 == engine && h.1 == seg)
            .map(|h| (h.2, h.3))
            .collect()
    }
}

/// Engine 0 loads segment 10 over HTTP; engine 1 later wants it with time to spare.
fn seed_segment_10(m: &mut Mesh) {
    m.act(0, |e, now| e.want_segment(10, now));
    m.run_until(m.now + Duration::from_secs(1));
    assert!(matches!(
        m.delivery(0, 10).map(|d| d.3),
        Some(DeliverySource::Http(_))
    ));
    m.run_until(m.now + Duration::from_millis(500));
}

/// Engine 1 plays from 20 s, so segment 10 (at 40 s) is due in 20 s.
fn want_segment_10_later(m: &mut Mesh, engine: usize) {
    m.act(engine, |e, now| e.set_playback(28.0, now));
    m.act(engine, |e, now| e.want_segment(10, now));
}

#[test]
fn segment_moves_from_one_engine_to_another() {
    let mut m = Mesh::new(2, |_, _| {});
    m.connect_all();
    assert_eq!(m.engines[0].connected_peers(), 1);
    assert_eq!(m.engines[1].connected_peers(), 1);
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now + Duration::from_secs(3));
    let d = m.delivery(1, 10).expect("engine 1 got segment 10");
    assert!(matches!(d.3, DeliverySource::Peer(_)));
    assert_eq!(d.2, payload(10));
    assert!(
        m.http_requests(1, 10).is_empty(),
        "no HTTP for segment 10: {:?}",
        m.http_log
    );
    assert_eq!(m.engines[1].stats().p2p_bytes, SEG_BYTES as u64);
    assert_eq!(m.engines[0].stats().uploaded_bytes, SEG_BYTES as u64);
}

#[test]
fn segment_spreads_through_three_engines() {
    let mut m = Mesh::new(3, |_, _| {});
    m.connect_all();
    assert_eq!(m.engines[2].connected_peers(), 2);
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    want_segment_10_later(&mut m, 2);
    m.run_until(m.now + Duration::from_secs(5));
    for e in [1, 2] {
        let d = m.delivery(e, 10).expect("delivered");
        assert!(matches!(d.3, DeliverySource::Peer(_)), "engine {e}");
        assert_eq!(d.2, payload(10));
    }
}

#[test]
fn slow_peer_is_abandoned_for_http_resuming_from_the_received_byte() {
    let mut m = Mesh::new(2, |i, c| {
        if i == 0 {
            c.max_message_bytes = 1000;
        }
    });
    m.up_rate[0] = Some(4_000.0); // 100 kB would take 25 s
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    let deadline = start + Duration::from_secs(12);
    m.run_until(start + Duration::from_secs(20));
    let d = m.delivery(1, 10).expect("delivered");
    assert_eq!(d.2, payload(10), "resumed bytes join correctly");
    assert!(matches!(d.3, DeliverySource::Http(_)));
    assert!(
        d.4 < deadline,
        "delivered at {:?}, deadline {:?}",
        d.4 - start,
        deadline - start
    );
    let reqs = m.http_requests(1, 10);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let from = reqs[0].0.expect("a Range request");
    assert!(from > 0 && from < SEG_BYTES as u64, "resumed from {from}");
    assert!(m.engines[1].stats().p2p_bytes >= from);
    assert_eq!(m.engines[1].stats().stalls_avoided, 1);
}

#[test]
fn corrupting_peer_is_banned_and_the_segment_refetched_over_http() {
    let mut m = Mesh::new(2, |_, _| {});
    m.corrupt[0] = true;
    m.connect_all();
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now + Duration::from_secs(3));
    let d = m.delivery(1, 10).expect("delivered");
    assert_eq!(d.2, payload(10), "the player gets the genuine bytes");
    assert!(matches!(d.3, DeliverySource::Http(_)));
    assert_eq!(m.http_requests(1, 10).len(), 1);
    let banned: Vec<_> = m.engines[1].banned().iter().copied().collect();
    assert_eq!(banned, vec![*b"-PM0203-testpeer0000"]);
    assert_eq!(m.engines[1].connected_peers(), 0);
    assert!(
        m.closed.iter().any(|c| c.0 == 1),
        "engine 1 closed the peer"
    );
    assert_eq!(m.engines[1].stats().hash_mismatches, 1);
}

#[test]
fn consume_only_engine_uploads_nothing() {
    let mut m = Mesh::new(2, |i, c| c.consume_only = i == 0);
    m.connect_all();
    seed_segment_10(&mut m);
    want_segment_10_later(&mut m, 1);
    m.run_until(m.now + Duration::from_secs(25));
    let d = m.delivery(1, 10).expect("delivered");
    assert!(matches!(d.3, DeliverySource::Http(_)));
    assert_eq!(m.engines[0].stats().uploaded_bytes, 0);
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
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_secs(10));
    let d = m.delivery(1, 10).expect("delivered");
    assert!(matches!(d.3, DeliverySource::Peer(_)));
    let took = (d.4 - start).as_secs_f64();
    // 100 kB at 50 kB/s with a 10 kB burst: about 1.8 s.
    assert!((1.6..2.5).contains(&took), "took {took} s");
}

/// Segment bytes `from` sent to `to` (delivered times).
fn bytes_between(m: &Mesh, from: usize, to: usize) -> Vec<(Duration, usize)> {
    m.peer_bytes
        .iter()
        .filter(|b| b.0 == from && b.1 == to)
        .map(|b| (b.2, b.3))
        .collect()
}

#[test]
fn a_segment_still_downloading_over_http_is_relayed_as_it_arrives() {
    let mut m = Mesh::new(2, |_, _| {});
    // Engine 0's HTTP body arrives in 10 kB pieces every 200 ms: 2 s for the segment.
    m.http_pace = Some((10_000, Duration::from_millis(200)));
    m.connect_all();
    let start = m.now;
    m.act(0, |e, now| e.want_segment(10, now));
    m.run_until(start + Duration::from_millis(300));
    assert!(m.delivery(0, 10).is_none(), "engine 0 is still downloading");
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_secs(6));
    let d0 = m.delivery(0, 10).expect("engine 0 got segment 10").4;
    let d1 = m.delivery(1, 10).expect("engine 1 got segment 10");
    assert!(matches!(d1.3, DeliverySource::Peer(_)));
    assert_eq!(d1.2, payload(10));
    assert!(m.http_requests(1, 10).is_empty(), "{:?}", m.http_log);
    let relayed = bytes_between(&m, 0, 1);
    let before: usize = relayed.iter().filter(|b| b.0 < d0).map(|b| b.1).sum();
    // Everything but the held-back last byte went out while engine 0 was still downloading.
    assert!(
        before >= SEG_BYTES / 2,
        "{before} bytes relayed before engine 0 finished at {d0:?}: {relayed:?}"
    );
    assert!(before < SEG_BYTES, "the last byte waits for verification");
    assert!(
        d1.4 >= d0,
        "engine 1 completes after engine 0 verified the segment"
    );
    assert!(
        d1.4 - d0 < Duration::from_millis(500),
        "engine 1 finished {:?} after engine 0",
        d1.4 - d0
    );
    assert_eq!(m.engines[0].stats().uploaded_bytes, SEG_BYTES as u64);
    assert_eq!(m.engines[1].stats().p2p_bytes, SEG_BYTES as u64);
}

#[test]
fn a_segment_still_downloading_from_a_peer_is_relayed_onward() {
    let mut m = Mesh::new(3, |i, c| {
        if i == 0 {
            c.max_message_bytes = 5_000;
        }
    });
    m.up_rate[0] = Some(50_000.0); // 2 s for the segment from engine 0
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_millis(400));
    assert!(
        !bytes_between(&m, 0, 1).is_empty(),
        "engine 1 loads from engine 0"
    );
    // Engine 0 serves one peer at a time; engine 2 turns to engine 1, which is still loading.
    want_segment_10_later(&mut m, 2);
    m.run_until(start + Duration::from_secs(8));
    let d1 = m.delivery(1, 10).expect("engine 1 got segment 10");
    let d2 = m.delivery(2, 10).expect("engine 2 got segment 10");
    assert_eq!(d2.2, payload(10));
    assert!(matches!(d2.3, DeliverySource::Peer(_)));
    let relayed: usize = bytes_between(&m, 1, 2)
        .iter()
        .filter(|b| b.0 < d1.4)
        .map(|b| b.1)
        .sum();
    assert!(
        relayed > 0,
        "engine 1 relayed bytes before it had the segment: {:?}",
        m.peer_bytes
    );
    assert!(m.http_requests(2, 10).is_empty(), "{:?}", m.http_log);
}

#[test]
fn a_relay_of_bad_bytes_ends_with_segment_absent_and_no_ban() {
    // Engine 0 corrupts what it sends; engine 1 loads from it and relays to engine 2 meanwhile.
    let mut m = Mesh::new(3, |i, c| {
        if i == 0 {
            c.max_message_bytes = 5_000;
        }
    });
    m.up_rate[0] = Some(50_000.0);
    m.corrupt[0] = true;
    m.no_link.push((0, 2));
    m.connect_all();
    assert_eq!(m.engines[2].connected_peers(), 1);
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_millis(400));
    want_segment_10_later(&mut m, 2);
    m.run_until(start + Duration::from_secs(10));
    assert!(
        !bytes_between(&m, 1, 2).is_empty(),
        "engine 1 relayed to engine 2: {:?}",
        m.peer_bytes
    );
    // Engine 1 found the hash wrong and banned engine 0 ...
    assert_eq!(m.engines[1].stats().hash_mismatches, 1);
    assert_eq!(m.engines[1].banned().len(), 1);
    // ... and engine 2 never completed the bad segment, so it bans nobody and plays good bytes.
    assert_eq!(
        m.engines[2].stats().hash_mismatches,
        0,
        "{:?}",
        m.engines[2].stats()
    );
    assert!(m.engines[2].banned().is_empty());
    for e in [1, 2] {
        let d = m.delivery(e, 10).expect("delivered");
        assert_eq!(d.2, payload(10), "engine {e} plays the genuine bytes");
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
    let start = m.now;
    for e in 1..4 {
        want_segment_10_later(&mut m, e);
    }
    m.run_until(start + Duration::from_secs(6));
    for e in 1..4 {
        let d = m.delivery(e, 10).expect("delivered");
        assert!(matches!(d.3, DeliverySource::Peer(_)), "engine {e}");
        assert_eq!(d.2, payload(10));
        assert!(m.http_requests(e, 10).is_empty(), "engine {e} used HTTP");
    }
    let s = m.engines[0].stats();
    assert_eq!(s.upload_requests_queued, 1, "{s:?}");
    assert_eq!(s.upload_requests_refused, 1, "{s:?}");
    // The queued transfer starts once the first one ended: engine 0 never sends to two at once.
    let mut spans: Vec<(Duration, Duration)> = (1..4)
        .filter_map(|to| {
            let b = bytes_between(&m, 0, to);
            Some((b.first()?.0, b.last()?.0))
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
    let (&(_, h), _) = m
        .links
        .iter()
        .find(|((e, _), (o, _))| *e == 0 && *o == 1)
        .expect("engine 0 links to engine 1");
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
    let sent = m.engines[0].stats().uploaded_bytes;
    assert!(
        sent <= (u64::from(max) + 1) * SEG_BYTES as u64,
        "engine 0 queued {sent} bytes for 100 requests of one {SEG_BYTES}-byte segment"
    );
    let s = m.engines[0].stats();
    assert!(s.upload_requests_repeated >= u64::from(max), "{s:?}");
    assert_eq!(s.peers_banned_repeats, 1, "{s:?}");
    assert_eq!(m.engines[0].banned().len(), 1);
    assert_eq!(m.engines[0].connected_peers(), 0);
    assert!(m.closed.contains(&(0, h)));
}

impl Mesh {
    /// The connection between engines `a` and `b` fails now (both sides hear `PeerClosed`).
    fn cut(&mut self, a: usize, b: usize) {
        let pair = self
            .links
            .iter()
            .find(|((e, _), (o, _))| *e == a && *o == b)
            .map(|(&(_, ha), &(_, hb))| (ha, hb));
        if let Some((ha, hb)) = pair {
            self.links.remove(&(a, ha));
            self.links.remove(&(b, hb));
            self.input(a, IoEvent::PeerClosed(ha));
            self.input(b, IoEvent::PeerClosed(hb));
        }
    }
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
    m.up_rate[0] = Some(50_000.0); // 2 s for the segment from engine 0
    m.corrupt[0] = true;
    m.no_link.push((0, 2));
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_millis(400));
    want_segment_10_later(&mut m, 2);
    m.run_until(start + Duration::from_millis(1200));
    let relayed = bytes_between(&m, 1, 2);
    assert!(
        !relayed.is_empty() && relayed.iter().all(|b| b.1 < SEG_BYTES),
        "engine 1 relays part of the segment to engine 2 before the cut: {relayed:?}"
    );
    // Segment 10 comes due sooner; engine 0 goes away and engine 1 starts over from HTTP at once.
    m.act(1, |e, now| e.set_playback(37.5, now));
    m.cut(0, 1);
    m.run_until(start + Duration::from_secs(10));
    for e in [1, 2] {
        let d = m.delivery(e, 10).expect("delivered");
        assert!(d.2 == payload(10), "engine {e} plays the genuine bytes");
    }
    let s = m.engines[2].stats();
    assert_eq!(
        s.hash_mismatches, 0,
        "engine 2 got a spliced segment: {s:?}"
    );
    assert!(
        m.engines[2].banned().is_empty(),
        "engine 2 banned its relay"
    );
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
    m.up_rate[0] = Some(4_000.0); // too slow: engine 1 resumes over HTTP
    m.corrupt[0] = true;
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_secs(20));
    let reqs = m.http_requests(1, 10);
    assert!(
        reqs.first().and_then(|r| r.0).is_some_and(|from| from > 0),
        "engine 1 resumed over HTTP: {reqs:?}"
    );
    let d = m.delivery(1, 10).expect("delivered");
    assert!(d.2 == payload(10), "the player gets the genuine bytes");
    assert_eq!(m.engines[1].stats().hash_mismatches, 1);
    let banned: Vec<_> = m.engines[1].banned().iter().copied().collect();
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
    m.corrupt[0] = true;
    m.no_link.push((0, 2));
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    want_segment_10_later(&mut m, 2);
    m.run_until(start + Duration::from_secs(1));
    assert!(m.delivery(1, 10).is_none(), "played before verification");
    assert!(
        bytes_between(&m, 1, 2).is_empty(),
        "relayed before verification: {:?}",
        m.peer_bytes
    );
    m.act(1, |e, now| e.set_manifest(manifest(), now));
    m.run_until(start + Duration::from_secs(4));
    let d = m.delivery(1, 10).expect("delivered");
    assert!(d.2 == payload(10), "the player gets the genuine bytes");
    assert!(matches!(d.3, DeliverySource::Http(_)));
    let s = m.engines[1].stats();
    assert_eq!((s.segments_unverified, s.hash_mismatches), (1, 1), "{s:?}");
    let banned: Vec<_> = m.engines[1].banned().iter().copied().collect();
    assert_eq!(banned, vec![*b"-PM0203-testpeer0000"]);
    assert!(m.engines[2].banned().is_empty());
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
    m.corrupt[0] = true;
    m.connect_all();
    seed_segment_10(&mut m);
    let start = m.now;
    want_segment_10_later(&mut m, 1);
    m.run_until(start + Duration::from_secs(10));
    let d = m.delivery(1, 10).expect("delivered");
    assert!(d.2 == payload(10), "the player gets the origin's bytes");
    assert!(matches!(d.3, DeliverySource::Http(_)));
    let wait = EngineConfig::new([0; 20], [0; 20], false, vec![]).unverified_wait;
    assert!(d.4 >= start + wait, "delivered after {:?}", d.4 - start);
    let s = m.engines[1].stats();
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
    m.run_until(m.now + Duration::from_secs(20));
    let d = m.delivery(1, 10).expect("delivered");
    assert!(matches!(d.3, DeliverySource::Http(_)));
    assert_eq!(m.engines[1].stats().p2p_bytes, 0);
    assert_eq!(m.engines[0].stats().uploaded_bytes, 0);
    // Engine 0 asks engine 1 for what engine 1 holds: refused.
    m.act(0, |e, now| e.set_playback(36.0, now));
    m.act(0, |e, now| e.want_segment(11, now));
    m.act(1, |e, now| e.want_segment(11, now));
    m.run_until(m.now + Duration::from_secs(20));
    assert_eq!(m.engines[1].stats().uploaded_bytes, 0);
}
