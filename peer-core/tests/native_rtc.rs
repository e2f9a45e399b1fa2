//! Two native WebRTC peers on loopback, inside a network namespace this test creates: offer and
//! answer exchanged in memory (full SDP, as through a tracker), the data channel opens, 10 MB move
//! in messages of at most 64 KiB and arrive intact and in order.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use segswarm_core::native::rtc::{RtcError, RtcPeer, RtcSettings};
use segswarm_core::native::tracker_hub::{LinkEvent, LinkEvents, TrackerHub, TrackerLink};
use segswarm_core::tracker_client::{TrackerClient, TrackerClientConfig, TrackerEvent};
use support::{enter_private_network_namespace, runtime};

/// Deterministic test payload: byte i is a function of i, so reordering or loss shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect()
}

#[test]
fn ten_megabytes_over_a_loopback_data_channel() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let settings = support::loopback_rtc();
        let mut offerer = RtcPeer::new(&settings).await.expect("offerer");
        let mut answerer = RtcPeer::new(&settings).await.expect("answerer");

        let offer = offerer.create_offer().await.expect("offer");
        assert!(
            offer.contains("a=candidate:"),
            "offer has no candidates (no trickle): {offer}"
        );
        assert!(
            offer.contains("webrtc-datachannel"),
            "offer has no data channel m-line"
        );
        assert!(
            !offer.contains(".local"),
            "mDNS candidate despite mdns=false: {offer}"
        );
        let answer = answerer.accept_offer(&offer).await.expect("answer");
        assert!(
            answer.contains("a=candidate:"),
            "answer has no candidates: {answer}"
        );
        offerer.accept_answer(&answer).await.expect("apply answer");

        let (a, b) = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(offerer.connect(), answerer.connect())
        })
        .await
        .expect("both sides open within 20 s");
        let a = a.expect("offerer channel opens");
        let mut b = b.expect("answerer channel opens");
        assert_eq!(a.label().len(), 40, "simple-peer style 40-hex-digit label");
        assert_eq!(a.label(), b.label(), "both sides see the same channel");

        // A message over the limit is refused before it reaches the wire.
        let too_big = vec![0u8; settings.channel.max_message_bytes + 1];
        assert!(matches!(
            a.sender().send(&too_big).await,
            Err(RtcError::MessageTooLarge { .. })
        ));

        const TOTAL: usize = 10 * 1000 * 1000;
        let data = payload(TOTAL);
        let sender = a.sender();
        let to_send = data.clone();
        let max = settings.channel.max_message_bytes;
        let send_task = tokio::spawn(async move {
            let mut max_buffered = 0usize;
            for chunk in to_send.chunks(max) {
                sender.send(chunk).await.expect("send");
                max_buffered = max_buffered.max(sender.buffered_amount().await);
            }
            max_buffered
        });

        let mut received = Vec::with_capacity(TOTAL);
        let mut messages = 0usize;
        let recv = tokio::time::timeout(Duration::from_secs(60), async {
            while received.len() < TOTAL {
                let msg = b
                    .recv()
                    .await
                    .expect("channel stays open until all bytes arrive");
                assert!(msg.len() <= max, "message of {} bytes", msg.len());
                received.extend_from_slice(&msg);
                messages += 1;
            }
        })
        .await;
        assert!(
            recv.is_ok(),
            "10 MB not received within 60 s ({} bytes)",
            received.len()
        );
        let max_buffered = send_task.await.expect("sender task");
        assert_eq!(received.len(), TOTAL);
        assert!(
            received == data,
            "received bytes differ from the bytes sent"
        );
        assert_eq!(messages, TOTAL.div_ceil(max), "message boundaries kept");
        // Back-pressure: the sender never had much more than the send buffer outstanding.
        assert!(
            max_buffered <= settings.channel.send_buffer_bytes as usize + max,
            "{max_buffered} bytes outstanding, limit {}",
            settings.channel.send_buffer_bytes as usize
        );

        // Closing one side ends the other side's stream.
        a.close().await;
        let end = tokio::time::timeout(Duration::from_secs(10), b.recv()).await;
        assert!(matches!(end, Ok(None)), "answerer sees the channel close");
        assert!(matches!(a.sender().send(b"x").await, Err(RtcError::Closed)));
    });
}

#[test]
fn answer_before_offer_and_garbage_sdp_are_errors() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let settings = support::loopback_rtc();
        let mut peer = RtcPeer::new(&settings).await.expect("peer");
        assert!(matches!(
            peer.accept_answer("v=0").await,
            Err(RtcError::WrongState(_))
        ));
        let mut other = RtcPeer::new(&settings).await.expect("peer");
        assert!(other.accept_offer("this is not sdp").await.is_err());
    });
}

/// One peer's signalling: the sans-IO tracker client over a link of the process's tracker hub.
struct Signal {
    client: TrackerClient,
    link: TrackerLink,
    events: LinkEvents,
}

impl Signal {
    fn new(hub: &TrackerHub, url: &str, info_hash: [u8; 20], peer_id: [u8; 20]) -> Self {
        let (link, events) = hub.join(url, info_hash);
        let client = TrackerClient::new(TrackerClientConfig::new(peer_id));
        Self {
            client,
            link,
            events,
        }
    }

    /// Writes what the client queued.
    fn flush(&mut self) {
        while let Some(frame) = self.client.poll_transmit() {
            self.link.send(frame);
        }
    }

    /// The tracker events the client queued.
    fn drain(&mut self) -> Vec<TrackerEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    /// Feeds one socket event to the client; returns the tracker events it caused.
    fn feed(&mut self, event: Option<LinkEvent>) -> Vec<TrackerEvent> {
        let now = Instant::now();
        match event.expect("the hub socket stays up") {
            LinkEvent::Connected => self.client.connected(now),
            LinkEvent::Disconnected { reason, .. } => panic!("tracker socket lost: {reason}"),
            LinkEvent::Frame(frame) => self
                .client
                .handle_message(&frame, now)
                .expect("well-formed tracker message"),
        }
        self.flush();
        self.drain()
    }

    /// Answers B's `NeedOffers` with one real WebRTC offer; returns its id and peer.
    async fn offer(&mut self, ev: TrackerEvent, settings: &RtcSettings) -> ([u8; 20], RtcPeer) {
        let TrackerEvent::NeedOffers { info_hash, .. } = ev else {
            panic!("B expected NeedOffers, got {ev:?}");
        };
        let mut peer = RtcPeer::new(settings).await.expect("offering peer");
        let sdp = peer.create_offer().await.expect("offer");
        let offer_id = *b"offer-from-b-0000001";
        self.client
            .offers_created(info_hash, vec![(offer_id, sdp)], Instant::now());
        let expired = self.drain();
        assert!(expired.is_empty(), "offer refused: {expired:?}");
        self.flush();
        (offer_id, peer)
    }
}

/// Two native peers that know nothing of each other but a tracker URL and a swarm: their real
/// SDP offer and answer travel through the in-process segswarm-tracker (tracker hub sockets
/// driving the sans-IO tracker client), and the channel opens.
#[test]
fn peers_meet_through_the_tracker_and_open_a_channel() {
    enter_private_network_namespace();
    runtime().block_on(async {
        let mut config = segswarm_tracker::config::Config::default();
        config.server.listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        config.server.shutdown_grace_secs = 1;
        let tracker = segswarm_tracker::server::Server::start(config)
            .await
            .expect("tracker");
        let url = format!("ws://{}/", tracker.local_addrs()[0]);
        let ih = *b"native-rtc-tracker-1";
        let settings = support::loopback_rtc();
        let hub = TrackerHub::default();

        // A joins first and offers nothing (it is alone); then B joins with one real offer.
        let mut a = Signal::new(&hub, &url, ih, *b"-SS0001-aaaaaaaaaaaa");
        let mut b = Signal::new(&hub, &url, ih, *b"-SS0001-bbbbbbbbbbbb");
        a.client.join(ih, Instant::now());
        assert!(a.drain().is_empty(), "not connected yet");
        let mut b_offer: Option<([u8; 20], RtcPeer)> = None;
        let mut b_conn = None;
        let mut a_pending = None;
        let mut b_joined = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while a_pending.is_none() || b_conn.is_none() {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => panic!("no channel within 30 s"),
                ev = a.events.recv() => for ev in a.feed(ev) {
                    match ev {
                        TrackerEvent::NeedOffers { info_hash, .. } => {
                            a.client.offers_created(info_hash, Vec::new(), Instant::now());
                            assert!(a.drain().is_empty());
                            a.flush();
                        }
                        TrackerEvent::AnnounceAccepted { .. } if !b_joined => {
                            b_joined = true;
                            b.client.join(ih, Instant::now());
                            for ev in b.drain() {
                                b_offer = Some(b.offer(ev, &settings).await);
                            }
                        }
                        TrackerEvent::Offer { info_hash, peer_id, offer_id, sdp } => {
                            let mut peer = RtcPeer::new(&settings).await.expect("answering peer");
                            let answer = peer.accept_offer(&sdp).await.expect("answer");
                            a.client.send_answer(info_hash, peer_id, offer_id, &answer);
                            a.flush();
                            a_pending = Some(tokio::spawn(peer.connect()));
                        }
                        _ => {}
                    }
                },
                ev = b.events.recv() => for ev in b.feed(ev) {
                    match ev {
                        TrackerEvent::Answer { offer_id, sdp, .. } => {
                            let (id, mut peer) = b_offer.take().expect("an offer is waiting");
                            assert_eq!(id, offer_id);
                            peer.accept_answer(&sdp).await.expect("apply answer");
                            b_conn = Some(peer.connect().await.expect("B's channel opens"));
                        }
                        // B's socket opened after B joined: its announce asks for offers now.
                        ev @ TrackerEvent::NeedOffers { .. } => {
                            b_offer = Some(b.offer(ev, &settings).await);
                        }
                        _ => {}
                    }
                },
            }
        }
        let a_conn: Result<_, _> = tokio::time::timeout(
            Duration::from_secs(20),
            a_pending.take().expect("A answered"),
        )
        .await
        .expect("A's channel opens within 20 s")
        .expect("join");
        let mut a_conn = a_conn.expect("A's channel opens");
        let mut b_conn = b_conn.expect("b");
        b_conn.sender().send(b"hello from B").await.expect("send");
        a_conn.sender().send(b"hello from A").await.expect("send");
        let got_a = tokio::time::timeout(Duration::from_secs(5), a_conn.recv()).await;
        let got_b = tokio::time::timeout(Duration::from_secs(5), b_conn.recv()).await;
        assert_eq!(got_a.ok().flatten().as_deref(), Some(&b"hello from B"[..]));
        assert_eq!(got_b.ok().flatten().as_deref(), Some(&b"hello from A"[..]));
        a_conn.close().await;
        b_conn.close().await;
        a.link.close(Duration::from_secs(1)).await;
        b.link.close(Duration::from_secs(1)).await;
        tracker.shutdown().await;
    });
}
