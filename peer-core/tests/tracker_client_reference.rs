//! Conformance of `tracker_client` with the reference WebTorrent tracker: the npm
//! `bittorrent-tracker` 11.x server (installed by `.ci/run` in `tests/js`), run in Node on 127.0.0.1.
//! Two sans-IO clients, each on a real WebSocket, exchange an offer and an answer through it, see
//! its counts and interval, get a failure for a refused info hash, and leave.
//!
//! Needs `node` and `tests/js/node_modules` (`cd tests/js && npm ci`). Set `SEGSWARM_SKIP_JS=1` to
//! skip explicitly; without it a missing Node setup fails the test.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use segswarm_core::time::Instant;
use segswarm_core::tracker_client::{
    InfoHash, OfferId, PeerId, TrackerClient, TrackerClientConfig, TrackerClientError,
    TrackerEvent, TrackerFrame,
};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Bytes above 0x7F and a quote check the binary-string encoding against Node's.
const IH: InfoHash = [
    0xc3, 0x80, 0x22, 0x00, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x7f, 0x81, 0x91, 0xa1,
    0xb1, 0xc1, 0xd1, 0xe1,
];
/// Hex starts with "dead": refused by the script's filter.
const DEAD: InfoHash = [
    0xde, 0xad, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
];
const A_ID: PeerId = *b"-PM0230-aaaaaaaaaaaa";
const B_ID: PeerId = *b"-PM0230-bbbbbbbbbbbb";

struct RefTracker {
    child: Child,
    port: u16,
}

impl Drop for RefTracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_reference_tracker() -> Option<RefTracker> {
    if std::env::var_os("SEGSWARM_SKIP_JS").is_some() {
        eprintln!("SEGSWARM_SKIP_JS set: skipping the reference tracker test");
        return None;
    }
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    assert!(
        js.join("node_modules/bittorrent-tracker").is_dir(),
        "npm bittorrent-tracker missing: run `cd tests/js && npm ci` (or set SEGSWARM_SKIP_JS=1)"
    );
    let mut child = Command::new("node")
        .arg("--input-type=module")
        .arg("-e")
        .arg(include_str!("support/reference-tracker.mjs"))
        .current_dir(&js)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node (needed for the reference tracker)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the port");
    let port = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("reference tracker printed {line:?} instead of a port")
    });
    Some(RefTracker { child, port })
}

/// One sans-IO client driven over a real WebSocket, with a simulated clock.
struct Peer {
    client: TrackerClient,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    now: Instant,
}

impl Peer {
    fn connect(port: u16, peer_id: PeerId, now: Instant) -> Self {
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}")).expect("connect");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
        }
        let mut client = TrackerClient::new(TrackerClientConfig::new(peer_id));
        client.connected(now);
        assert!(client.poll_event().is_none());
        Self { client, ws, now }
    }

    /// The tracker events the client queued.
    fn drain(&mut self) -> Vec<TrackerEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn flush(&mut self) {
        while let Some(text) = self.client.poll_transmit() {
            self.ws.send(Message::text(text)).expect("send");
        }
    }

    /// Joins and completes the announce with the given offers.
    fn join(&mut self, ih: InfoHash, offers: Vec<(OfferId, String)>) {
        self.client.join(ih, self.now);
        assert_eq!(
            self.drain(),
            vec![TrackerEvent::NeedOffers {
                info_hash: ih,
                count: 5
            }]
        );
        self.client.offers_created(ih, offers, self.now);
        assert!(self.drain().is_empty());
        self.flush();
    }

    /// Reads frames until an event matching `want` arrives (at most 20 frames / 5 s each).
    fn expect(&mut self, what: &str, want: impl Fn(&TrackerEvent) -> bool) -> TrackerEvent {
        for _ in 0..20 {
            let msg = self
                .ws
                .read()
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            let Message::Text(text) = msg else { continue };
            TrackerFrame::parse(text.as_str())
                .map_err(TrackerClientError::from)
                .and_then(|frame| self.client.handle_message(&frame, self.now))
                .unwrap_or_else(|e| panic!("reference tracker sent {text}: {e}"));
            if let Some(ev) = self.drain().into_iter().find(|e| want(e)) {
                return ev;
            }
        }
        panic!("no {what} in 20 frames");
    }
}

fn oid(n: u8) -> OfferId {
    [n; 20]
}

#[test]
fn talks_to_the_reference_webtorrent_tracker() {
    let Some(tracker) = start_reference_tracker() else {
        return;
    };
    let t0 = Instant::now();
    let mut a = Peer::connect(tracker.port, A_ID, t0);
    let mut b = Peer::connect(tracker.port, B_ID, t0);

    // A is alone: its offer goes nowhere; the tracker counts it and names its interval.
    a.join(IH, vec![(oid(1), "v=0 offer from A".into())]);
    let ev = a.expect("A's announce response", |e| {
        matches!(e, TrackerEvent::AnnounceAccepted { .. })
    });
    assert_eq!(
        ev,
        TrackerEvent::AnnounceAccepted {
            info_hash: IH,
            complete: 0,
            incomplete: 1,
            interval: Duration::from_secs(120)
        }
    );

    // B joins with an offer: the tracker relays it to A.
    b.join(IH, vec![(oid(2), "v=0 offer from B".into())]);
    let ev = b.expect("B's announce response", |e| {
        matches!(e, TrackerEvent::AnnounceAccepted { .. })
    });
    assert!(
        matches!(
            ev,
            TrackerEvent::AnnounceAccepted {
                complete: 0,
                incomplete: 2,
                ..
            }
        ),
        "{ev:?}"
    );
    let ev = a.expect("B's offer at A", |e| {
        matches!(e, TrackerEvent::Offer { .. })
    });
    assert_eq!(
        ev,
        TrackerEvent::Offer {
            info_hash: IH,
            peer_id: B_ID,
            offer_id: oid(2),
            sdp: "v=0 offer from B".into()
        }
    );

    // A answers; the tracker relays the answer to B, matched to B's pending offer.
    a.client.send_answer(IH, B_ID, oid(2), "v=0 answer from A");
    a.flush();
    let ev = b.expect("A's answer at B", |e| {
        matches!(e, TrackerEvent::Answer { .. })
    });
    assert_eq!(
        ev,
        TrackerEvent::Answer {
            info_hash: IH,
            peer_id: A_ID,
            offer_id: oid(2),
            sdp: "v=0 answer from A".into()
        }
    );
    assert_eq!(b.client.pending_offer_count(), 0);

    // A refused info hash comes back as a failure for that swarm.
    b.join(DEAD, Vec::new());
    let ev = b.expect("failure", |e| matches!(e, TrackerEvent::Failure { .. }));
    assert_eq!(
        ev,
        TrackerEvent::Failure {
            info_hash: Some(DEAD),
            reason: "info hash not allowed here".into()
        }
    );

    // A leaves; B's periodic re-announce (120 s later on B's clock) sees one peer left.
    a.client.leave(IH, a.now);
    assert_eq!(a.drain().len(), 1, "A's unanswered offer");
    a.flush();
    // The tracker answers the stopped announce; A has left the swarm and ignores it.
    let _ = a.ws.read().expect("response to stopped");
    b.now = t0 + Duration::from_secs(120);
    b.client.handle_timeout(b.now);
    assert!(b.drain().contains(&TrackerEvent::NeedOffers {
        info_hash: IH,
        count: 5
    }));
    // DEAD is re-announced too (its default interval passed); give both no offers.
    for ih in [IH, DEAD] {
        b.client.offers_created(ih, Vec::new(), b.now);
        assert!(b.drain().is_empty());
    }
    b.flush();
    let ev = b.expect(
        "B's re-announce response",
        |e| matches!(e, TrackerEvent::AnnounceAccepted { info_hash, .. } if *info_hash == IH),
    );
    assert!(
        matches!(
            ev,
            TrackerEvent::AnnounceAccepted {
                complete: 0,
                incomplete: 1,
                ..
            }
        ),
        "{ev:?}"
    );

    // B completes: it is now counted as a seeder.
    b.client.set_transfer_stats(IH, 0, 4096, Some(0));
    b.client.completed(IH, b.now);
    b.flush();
    let ev = b.expect(
        "response to completed",
        |e| matches!(e, TrackerEvent::AnnounceAccepted { info_hash, .. } if *info_hash == IH),
    );
    assert!(
        matches!(
            ev,
            TrackerEvent::AnnounceAccepted {
                complete: 1,
                incomplete: 0,
                ..
            }
        ),
        "{ev:?}"
    );
}
