//! The native driver and Viewer over real sockets, in a private network namespace: segswarm's
//! tracker on 127.0.0.1, an HTTP origin serving an ffmpeg HLS stream, WebRTC between engines.

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use segswarm_core::engine::{DeliverySource, EngineConfig};
use segswarm_core::hls::parse_media_playlist;
use segswarm_core::native::driver::{DriverEvent, DriverHandle, DriverSettings, PeerDriver};
use segswarm_core::native::origin::{Origin, OriginConfig};
use segswarm_core::native::tracker_hub::TrackerHub;
use segswarm_core::stream::{generate_peer_id, StreamIdentity, StreamType};

fn peer_id() -> [u8; 20] {
    let id = generate_peer_id(&mut rand::rng());
    let mut out = [0u8; 20];
    out.copy_from_slice(id.as_bytes());
    out
}

async fn start_origin(dir: &Path) -> Origin {
    Origin::start(OriginConfig::new(
        dir,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
    .await
    .expect("start the HTTP origin")
}

/// Waits for an event matching `pred`, up to `timeout`; returns it.
async fn wait_event(
    d: &mut DriverHandle,
    timeout: Duration,
    mut pred: impl FnMut(&DriverEvent) -> bool,
) -> Option<DriverEvent> {
    tokio::time::timeout(timeout, async {
        while let Some(ev) = d.next_event().await {
            if pred(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Two drivers in one swarm: one holds every segment (added from disk, as a seeder), the other
/// plays; once connected, the segments not due at once come over WebRTC, byte-identical.
#[test]
fn driver_moves_segments_between_two_engines() {
    support::enter_private_network_namespace();
    let dir = support::temp_vod(support::StreamSpec::default().seconds);
    let tmp = dir.path();
    let playlist_path = tmp.join("index.m3u8");
    support::runtime().block_on(async {
        let (tracker, tracker_url) = support::start_tracker().await;
        let origin = start_origin(tmp).await;
        let text = std::fs::read_to_string(&playlist_path).expect("playlist");
        let playlist = parse_media_playlist(&text).expect("ffmpeg playlist parses");
        assert_eq!(playlist.segments.len(), 6);
        let id = StreamIdentity::new(Some("driver-test"), "", StreamType::Main, "short".into());
        let hub = TrackerHub::default();
        let settings = || DriverSettings {
            rtc: support::loopback_rtc(),
            hub: Some(hub.clone()),
            ..DriverSettings::new(vec![tracker_url.clone()])
        };
        let config = || EngineConfig::new(peer_id(), id.info_hash, false, vec![origin.base_url()]);

        let mut holder = PeerDriver::spawn(config(), settings()).expect("holder");
        holder.set_playlist(playlist.segment_infos()).unwrap();
        let mut files = BTreeMap::new();
        for s in &playlist.segments {
            let data = bytes::Bytes::from(std::fs::read(tmp.join(&s.uri)).expect("segment"));
            files.insert(s.id, data.clone());
            holder.add_segment(s.id, data).unwrap();
        }
        assert!(
            wait_event(&mut holder, Duration::from_secs(10), |e| matches!(
                e,
                DriverEvent::TrackerConnected { .. }
            ))
            .await
            .is_some(),
            "holder never connected to the tracker"
        );

        let mut viewer = PeerDriver::spawn(config(), settings()).expect("viewer");
        viewer.set_playlist(playlist.segment_infos()).unwrap();
        assert!(
            wait_event(&mut viewer, Duration::from_secs(20), |e| matches!(
                e,
                DriverEvent::PeerConnected(_)
            ))
            .await
            .is_some(),
            "no WebRTC connection between the two engines"
        );
        // Start playing once the holder's announcement has arrived (else the requests go to HTTP).
        let announced = tokio::time::Instant::now() + Duration::from_secs(10);
        while viewer.stats().await.unwrap().segments_on_peers < files.len() {
            assert!(
                tokio::time::Instant::now() < announced,
                "the holder's announcement never arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        viewer.set_playback(0.0).unwrap();
        for id in files.keys() {
            viewer.want_segment(*id).unwrap();
        }
        let mut got = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while got.len() < files.len() {
            let ev = tokio::time::timeout_at(deadline, viewer.next_event())
                .await
                .expect("all segments within 20 s")
                .expect("driver alive");
            match ev {
                DriverEvent::SegmentReady {
                    segment,
                    data,
                    source,
                } => {
                    assert_eq!(data, files[&segment], "segment {segment} differs");
                    got.insert(segment, source);
                }
                DriverEvent::SegmentFailed { segment, reason } => {
                    panic!("segment {segment} failed: {reason}")
                }
                _ => {}
            }
        }
        let stats = viewer.stats().await.expect("stats");
        let from_peer = got
            .values()
            .filter(|s| matches!(s, DeliverySource::Peer(_)))
            .count();
        assert!(
            from_peer >= 3,
            "only {from_peer} of 6 segments from the peer: {got:?}, {stats:?}"
        );
        assert!(stats.engine.p2p_bytes > 0);
        assert_eq!(stats.peers_max, 1);
        let holder_stats = holder.stats().await.expect("stats");
        assert_eq!(holder_stats.engine.uploaded_bytes, stats.engine.p2p_bytes);
        // Both engines of this swarm cannot share one socket: two sockets to the tracker.
        assert_eq!(hub.socket_count(&tracker_url), 2);

        viewer.shutdown().await;
        holder.shutdown().await;
        assert_eq!(
            hub.socket_count(&tracker_url),
            0,
            "sockets closed after shutdown"
        );
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

use segswarm_core::native::viewer::{PlayReport, Viewer, ViewerConfig};

/// A viewer of `playlist_url` on `hub` with loopback WebRTC.
fn viewer_config(playlist_url: &str, tracker_url: &str, hub: &TrackerHub) -> ViewerConfig {
    let mut c = ViewerConfig::new(playlist_url, vec![tracker_url.to_owned()]);
    c.driver.rtc = support::loopback_rtc();
    c.driver.hub = Some(hub.clone());
    c
}

/// Opens a viewer and plays for `seconds` (or to the end of a VOD).
async fn watch(config: ViewerConfig, seconds: Option<u64>) -> PlayReport {
    let mut v = Viewer::open(config).await.expect("open the stream");
    let report = v
        .play(seconds.map(Duration::from_secs), |_| {})
        .await
        .expect("play");
    v.close().await;
    report
}

fn total_segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("stream directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Three viewers of one VOD join two seconds apart: the later ones take segments from the
/// earlier ones over WebRTC, and nobody stalls.
#[test]
fn three_viewers_of_one_vod_share_over_webrtc() {
    support::enter_private_network_namespace();
    let dir = support::temp_vod(40);
    let tmp = dir.path();
    support::runtime().block_on(async {
        let (tracker, tracker_url) = support::start_tracker().await;
        let origin = start_origin(tmp).await;
        let url = format!("{}index.m3u8", origin.base_url());
        let hub = TrackerHub::default();
        let mut tasks = Vec::new();
        for i in 0..3u64 {
            let config = viewer_config(&url, &tracker_url, &hub);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2 * i)).await;
                watch(config, Some(14)).await
            }));
        }
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await.expect("viewer task"));
        }
        for (i, r) in reports.iter().enumerate() {
            eprintln!(
                "viewer {i}: {}",
                serde_json::to_string(r).unwrap_or_default()
            );
            assert_eq!(r.stall_count, 0, "viewer {i} stalled: {r:?}");
            assert!(
                r.startup_s.is_some_and(|s| s < 3.0),
                "viewer {i} startup: {r:?}"
            );
            assert!(r.peers_max >= 1, "viewer {i} had no peer: {r:?}");
        }
        for (i, r) in reports.iter().enumerate().skip(1) {
            assert!(
                r.p2p_bytes > 0 && r.p2p_share > 0.2,
                "viewer {i} got too little from peers: {r:?}"
            );
        }
        let uploaded: u64 = reports.iter().map(|r| r.uploaded_bytes).sum();
        let p2p: u64 = reports.iter().map(|r| r.p2p_bytes).sum();
        assert_eq!(uploaded, p2p, "bytes sent and received over WebRTC differ");
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}

/// The origin has the playlist but answers 404 for every segment: the viewer plays the whole
/// VOD from the mirror without a stall.
#[test]
fn segments_fail_over_from_origin_to_mirror() {
    support::enter_private_network_namespace();
    let dir = tempfile::tempdir().expect("temporary directory");
    let tmp = dir.path();
    let full = tmp.join("mirror");
    let bare = tmp.join("origin");
    let spec = support::StreamSpec {
        seconds: 8,
        ..support::StreamSpec::default()
    };
    support::make_vod(&full, &spec);
    std::fs::create_dir_all(&bare).expect("origin dir");
    std::fs::copy(full.join("index.m3u8"), bare.join("index.m3u8")).expect("copy playlist");
    let expected = total_segment_bytes(&full);
    support::runtime().block_on(async {
        let (tracker, tracker_url) = support::start_tracker().await;
        let origin = start_origin(&bare).await;
        let mirror = start_origin(&full).await;
        let hub = TrackerHub::default();
        let mut config = viewer_config(
            &format!("{}index.m3u8", origin.base_url()),
            &tracker_url,
            &hub,
        );
        config.mirrors = vec![mirror.base_url()];
        let r = tokio::time::timeout(Duration::from_secs(40), watch(config, None))
            .await
            .expect("played within 40 s");
        eprintln!("{}", serde_json::to_string(&r).unwrap_or_default());
        assert_eq!(r.stall_count, 0, "{r:?}");
        assert!((r.played_s - 8.0).abs() < 0.2, "played to the end: {r:?}");
        assert_eq!(r.http_bytes_by_base, vec![0, expected], "{r:?}");
        assert!(origin.stats().not_found > 0, "the origin was tried first");
        assert_eq!(mirror.stats().body_bytes, expected);
        origin.shutdown().await;
        mirror.shutdown().await;
        tracker.shutdown().await;
    });
}

/// No tracker listening: the viewer keeps retrying it in the background while HTTP carries the
/// whole playback, without a stall.
#[test]
fn tracker_down_http_carries_playback() {
    support::enter_private_network_namespace();
    let dir = support::temp_vod(8);
    let tmp = dir.path();
    let expected = total_segment_bytes(tmp);
    support::runtime().block_on(async {
        let origin = start_origin(tmp).await;
        let dead_tracker = format!("ws://127.0.0.1:{}", support::free_port());
        let hub = TrackerHub::default();
        let config = viewer_config(
            &format!("{}index.m3u8", origin.base_url()),
            &dead_tracker,
            &hub,
        );
        let r = tokio::time::timeout(Duration::from_secs(40), watch(config, None))
            .await
            .expect("played within 40 s");
        eprintln!("{}", serde_json::to_string(&r).unwrap_or_default());
        assert_eq!(r.stall_count, 0, "{r:?}");
        assert_eq!(r.p2p_bytes, 0);
        assert_eq!(r.peers_max, 0);
        assert_eq!(r.http_bytes, expected, "{r:?}");
        assert!((r.played_s - 8.0).abs() < 0.2, "{r:?}");
        origin.shutdown().await;
    });
}

/// Live: ffmpeg writes 2-second segments in real time with a sliding five-segment playlist; two
/// viewers reload the playlist, play without a stall and stay within three segments of the live
/// edge.
#[test]
fn live_viewers_follow_the_edge() {
    support::enter_private_network_namespace();
    let dir = tempfile::tempdir().expect("temporary directory");
    let tmp = dir.path();
    let spec = support::StreamSpec::default();
    let mut ffmpeg = support::start_live(tmp, &spec);
    assert!(
        support::wait_for_segments(&tmp.join(&spec.playlist), 4, Duration::from_secs(20)),
        "ffmpeg wrote no live playlist"
    );
    support::runtime().block_on(async {
        let (tracker, tracker_url) = support::start_tracker().await;
        let origin = start_origin(tmp).await;
        let url = format!("{}index.m3u8", origin.base_url());
        let hub = TrackerHub::default();
        let mut tasks = Vec::new();
        for i in 0..2u64 {
            let config = viewer_config(&url, &tracker_url, &hub);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(i)).await;
                watch(config, Some(14)).await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.await.expect("viewer task");
            eprintln!(
                "viewer {i}: {}",
                serde_json::to_string(&r).unwrap_or_default()
            );
            assert!(r.live, "{r:?}");
            assert_eq!(r.stall_count, 0, "viewer {i} stalled: {r:?}");
            assert!(r.played_s > 10.0, "viewer {i} played too little: {r:?}");
            let latency = r.live_latency_max_s.expect("latency measured");
            assert!(
                latency <= 3.0 * f64::from(spec.segment_seconds) + 1.0,
                "viewer {i} fell {latency} s behind the edge: {r:?}"
            );
            assert_eq!(r.live_skips, 0, "{r:?}");
        }
        origin.shutdown().await;
        tracker.shutdown().await;
    });
    ffmpeg.kill();
}

/// The tracker hub: two swarms share one socket; while no tracker listens it retries with
/// backoff, and both swarms hear `Connected` once one starts; frames come back to the swarm they
/// name; a tracker that goes away is reported to both, retried with delays growing up to the cap,
/// and the socket reconnects by itself when the tracker is back on the same port.
#[test]
fn tracker_hub_shares_routes_and_reconnects() {
    use segswarm_core::native::tracker_hub::{LinkEvent, LinkEvents, TrackerHubSettings};

    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
        let url = format!("ws://{addr}");
        let hub = TrackerHub::new(TrackerHubSettings {
            backoff: segswarm_core::backoff::BackoffConfig {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(1),
                jitter: 0.0,
                // The tracker says "going away" when it shuts down; this test restarts it at once.
                going_away_min: Duration::ZERO,
                ..Default::default()
            },
            ..TrackerHubSettings::default()
        });
        let (a, mut a_events) = hub.join(&url, *b"AAAAAAAAAAAAAAAAAAAA");
        let (b, mut b_events) = hub.join(&url, *b"BBBBBBBBBBBBBBBBBBBB");
        assert_eq!(hub.socket_count(&url), 1, "two swarms, one socket");
        async fn next(events: &mut LinkEvents, what: &str) -> LinkEvent {
            tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .unwrap_or_else(|_| panic!("no event: {what}"))
                .unwrap_or_else(|| panic!("hub ended: {what}"))
        }
        /// Waits until both links hear `Connected` (failed attempts may be reported first).
        async fn connected(a: &mut LinkEvents, b: &mut LinkEvents) {
            for (events, name) in [(a, "a"), (b, "b")] {
                loop {
                    match next(events, name).await {
                        LinkEvent::Connected => break,
                        LinkEvent::Disconnected { .. } => continue,
                        LinkEvent::Frame(f) => panic!("{name}: frame before connecting: {f:?}"),
                    }
                }
            }
        }
        async fn start_tracker_at(addr: SocketAddr) -> segswarm_tracker::server::RunningServer {
            let mut config = segswarm_tracker::config::Config::default();
            config.server.listen = vec![addr];
            config.server.workers = 1;
            segswarm_tracker::server::Server::start(config)
                .await
                .expect("start the tracker")
        }
        assert!(matches!(
            next(&mut a_events, "a: no tracker yet").await,
            LinkEvent::Disconnected { .. }
        ));
        let tracker = start_tracker_at(addr).await;
        connected(&mut a_events, &mut b_events).await;
        let announce = |ih: &str, peer: &str| {
            serde_json::json!({
                "action": "announce", "info_hash": ih, "peer_id": peer, "numwant": 0,
                "uploaded": 0, "downloaded": 0, "event": "started", "offers": []
            })
            .to_string()
        };
        a.send(announce("AAAAAAAAAAAAAAAAAAAA", "-PM0203-aaaaaaaaaaaa"));
        let swarm = |name: &[u8; 20]| Some(segswarm_ws_protocol::Id20(*name));
        match next(&mut a_events, "announce response").await {
            LinkEvent::Frame(frame) => {
                assert!(frame.is_announce_accepted(), "{frame:?}");
                assert_eq!(frame.info_hash(), swarm(b"AAAAAAAAAAAAAAAAAAAA"));
            }
            other => panic!("expected a frame, got {other:?}"),
        }
        b.send(announce("BBBBBBBBBBBBBBBBBBBB", "-PM0203-bbbbbbbbbbbb"));
        assert!(matches!(
            next(&mut b_events, "b's response").await,
            LinkEvent::Frame(f) if f.info_hash() == swarm(b"BBBBBBBBBBBBBBBBBBBB")
        ));
        // The socket is shared: had the hub routed b's response to a, it would come before the
        // answer to a's next announce.
        a.send(announce("AAAAAAAAAAAAAAAAAAAA", "-PM0203-aaaaaaaaaaaa"));
        match next(&mut a_events, "a's second response").await {
            LinkEvent::Frame(frame) => assert_eq!(
                frame.info_hash(),
                swarm(b"AAAAAAAAAAAAAAAAAAAA"),
                "a heard b's response: {frame:?}"
            ),
            other => panic!("expected a frame, got {other:?}"),
        }

        tracker.shutdown().await;
        for (events, name) in [(&mut a_events, "a"), (&mut b_events, "b")] {
            assert!(matches!(
                next(events, name).await,
                LinkEvent::Disconnected { .. }
            ));
        }
        // While the tracker is down, attempts are retried with growing delays up to the cap.
        let mut delays = Vec::new();
        for _ in 0..3 {
            match next(&mut a_events, "a: retry").await {
                LinkEvent::Disconnected { retry_in, .. } => delays.push(retry_in),
                other => panic!("expected a failed attempt, got {other:?}"),
            }
        }
        assert!(
            delays.windows(2).all(|w| w[1] >= w[0])
                && delays.iter().all(|d| *d <= Duration::from_secs(1)),
            "backoff grows up to its cap: {delays:?}"
        );
        // The same port again: the shared socket reconnects by itself and both swarms hear it.
        let tracker = start_tracker_at(addr).await;
        connected(&mut a_events, &mut b_events).await;
        a.send(announce("AAAAAAAAAAAAAAAAAAAA", "-PM0203-aaaaaaaaaaaa"));
        assert!(matches!(
            next(&mut a_events, "a: response after reconnecting").await,
            LinkEvent::Frame(f) if f.info_hash() == swarm(b"AAAAAAAAAAAAAAAAAAAA")
        ));
        tracker.shutdown().await;
        a.close(Duration::from_secs(1)).await;
        drop(b);
        assert_eq!(hub.socket_count(&url), 0);
    });
}

/// `Viewer::segment`: a segment's bytes within its deadline, identical to the file; a segment
/// that is not in the playlist is an error, not a hang.
#[test]
fn viewer_segment_with_deadline() {
    support::enter_private_network_namespace();
    let dir = support::temp_vod(6);
    let tmp = dir.path();
    support::runtime().block_on(async {
        let (tracker, tracker_url) = support::start_tracker().await;
        let origin = start_origin(tmp).await;
        let hub = TrackerHub::default();
        let config = viewer_config(
            &format!("{}index.m3u8", origin.base_url()),
            &tracker_url,
            &hub,
        );
        let mut v = Viewer::open(config).await.expect("open");
        assert!(!v.playlist().live);
        let seg = v.playlist().segments[2].clone();
        let data = v
            .segment(seg.id, Duration::from_secs(5))
            .await
            .expect("segment 2");
        assert_eq!(data.as_ref(), std::fs::read(tmp.join(&seg.uri)).unwrap());
        let err = v
            .segment(99, Duration::from_secs(1))
            .await
            .expect_err("segment 99 does not exist");
        assert!(err.to_string().contains("99"), "{err}");
        v.close().await;
        origin.shutdown().await;
        tracker.shutdown().await;
    });
}
