//! One simulated browser peer on one WebSocket: it announces with offers, answers every offer the
//! tracker relays to it, and records relay latencies from the timestamps carried in the messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use segswarm_ws_protocol::{
    AnnounceEvent, AnnounceRequest, AnswerRequest, Id20, OfferRequest, TrackerFrame, TrackerMessage,
};

use crate::stats::{Counters, Latencies};
use crate::target::Ws;
use crate::wire;

/// Messages a peer may have queued for sending; beyond this, new ones are skipped and counted.
const SEND_QUEUE: usize = 64;
/// Distinct failure reasons kept for the report.
const MAX_REASONS: usize = 8;

/// State shared by every peer of a run.
pub struct Shared {
    /// Event counters.
    pub counters: Counters,
    /// Offer sent (inside an announce) → relayed offer read by the target peer.
    pub offer_latency: Latencies,
    /// Answer sent → relayed answer read by the offering peer.
    pub answer_latency: Latencies,
    /// Offer sent → its answer read back by the offering peer (full signalling round trip).
    pub offer_rtt: Latencies,
    /// Latencies are recorded only while this is set (after warmup).
    pub measuring: AtomicBool,
    /// Time zero of every timestamp carried in messages.
    pub start: Instant,
    /// SDP of every offer.
    pub offer_sdp: String,
    /// Answer SDP after its `o=` line (which carries the send time).
    pub answer_sdp_tail: String,
    /// Offers per announce.
    pub offers_per_announce: usize,
    /// First few distinct `failure reason` texts.
    pub failure_reasons: Mutex<Vec<String>>,
}

impl Shared {
    /// Shared state with SDP bodies of about `sdp_bytes` bytes.
    pub fn new(offers_per_announce: usize, sdp_bytes: usize) -> Shared {
        let offer_sdp = wire::fake_sdp(false, 4_611_686_018_427_387_904, sdp_bytes);
        let answer_sdp = wire::fake_sdp(true, 0, sdp_bytes);
        let answer_sdp_tail = answer_sdp
            .split_once("\r\no=- 0 2 IN IP4 127.0.0.1\r\n")
            .map(|(_, tail)| tail.to_owned())
            .unwrap_or(answer_sdp);
        Shared {
            counters: Counters::default(),
            offer_latency: Latencies::new(),
            answer_latency: Latencies::new(),
            offer_rtt: Latencies::new(),
            measuring: AtomicBool::new(false),
            start: Instant::now(),
            offer_sdp,
            answer_sdp_tail,
            offers_per_announce,
            failure_reasons: Mutex::new(Vec::new()),
        }
    }

    /// Microseconds since the run started.
    pub fn now_micros(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }
}

/// Who a peer is.
pub struct Peer {
    /// Index, used to spread histogram updates.
    pub index: usize,
    /// Its peer id (`-LG0001-` and 12 digits).
    pub peer_id: Id20,
    /// The info hash of its swarm.
    pub info_hash: Id20,
    /// `left` value: 0 makes it a seeder.
    pub left: u64,
    seq: u32,
}

impl Peer {
    /// A peer with a unique id number `id` in swarm `info_hash`.
    pub fn new(index: usize, id: u64, info_hash: Id20, seeder: bool) -> Peer {
        let peer_id = format!("-LG0001-{:012}", id % 1_000_000_000_000);
        Peer {
            index,
            peer_id: Id20::from_bytes(peer_id.as_bytes()).unwrap_or_default(),
            info_hash,
            left: if seeder { 0 } else { 1_000_000 },
            seq: 0,
        }
    }

    /// An announce with fresh offers stamped with the current time.
    pub fn announce(&mut self, shared: &Shared, event: AnnounceEvent) -> String {
        let now = shared.now_micros();
        let offers: Vec<OfferRequest<'_>> = (0..shared.offers_per_announce)
            .map(|_| {
                self.seq = self.seq.wrapping_add(1);
                OfferRequest {
                    offer_id: wire::offer_id(now, self.seq),
                    sdp: &shared.offer_sdp,
                }
            })
            .collect();
        let c = &shared.counters;
        c.announces_sent.fetch_add(1, Ordering::Relaxed);
        c.offers_sent
            .fetch_add(offers.len() as u64, Ordering::Relaxed);
        AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            event,
            numwant: u32::try_from(offers.len()).unwrap_or(u32::MAX),
            uploaded: 0,
            downloaded: 0,
            left: Some(self.left),
            offers: Some(&offers),
            tracker_id: None,
        }
        .to_json()
    }

    /// A `stopped` announce (leaving the swarm), without offers.
    pub fn stopped(&self) -> String {
        AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            event: AnnounceEvent::Stopped,
            numwant: 0,
            uploaded: 0,
            downloaded: 0,
            left: Some(0),
            offers: None,
            tracker_id: None,
        }
        .to_json()
    }

    /// Handles one text message from the tracker; returns the answer to send, if it was an offer.
    pub fn on_text(&mut self, shared: &Shared, text: &str) -> Option<String> {
        let c = &shared.counters;
        let Ok(msg) = TrackerFrame::parse(text).and_then(|frame| frame.message()) else {
            c.bad_json.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let announce = match msg {
            TrackerMessage::Failure { reason, .. } => {
                c.failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut reasons) = shared.failure_reasons.lock() {
                    if reasons.len() < MAX_REASONS && !reasons.contains(&reason) {
                        reasons.push(reason);
                    }
                }
                return None;
            }
            TrackerMessage::Warning { .. }
            | TrackerMessage::Scrape {
                warning: Some(_), ..
            } => {
                c.warnings.fetch_add(1, Ordering::Relaxed);
                c.other_msgs.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            TrackerMessage::Scrape { warning: None, .. } => {
                c.other_msgs.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            TrackerMessage::Announce(announce) => announce,
        };
        if announce.warning.is_some() {
            c.warnings.fetch_add(1, Ordering::Relaxed);
        }
        let now = shared.now_micros();
        if announce.offer.is_some() {
            c.offers_recv.fetch_add(1, Ordering::Relaxed);
            let (Some(from), Some(offer_id)) = (announce.peer_id, announce.offer_id) else {
                c.other_msgs.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if shared.measuring() {
                if let Some(sent) = wire::offer_id_micros(&offer_id) {
                    shared
                        .offer_latency
                        .record(self.index, now.saturating_sub(sent));
                }
            }
            let sdp = format!(
                "v=0\r\no=- {now} 2 IN IP4 127.0.0.1\r\n{}",
                shared.answer_sdp_tail
            );
            c.answers_sent.fetch_add(1, Ordering::Relaxed);
            let answer = AnswerRequest {
                info_hash: announce.info_hash,
                peer_id: self.peer_id,
                to_peer_id: from,
                offer_id,
                sdp: &sdp,
                tracker_id: None,
            };
            return Some(answer.to_json());
        }
        if let Some(sdp) = &announce.answer {
            c.answers_recv.fetch_add(1, Ordering::Relaxed);
            if shared.measuring() {
                if let Some(sent) = wire::sdp_session_micros(sdp) {
                    shared
                        .answer_latency
                        .record(self.index, now.saturating_sub(sent));
                }
                if let Some(sent) = announce.offer_id.as_ref().and_then(wire::offer_id_micros) {
                    shared
                        .offer_rtt
                        .record(self.index, now.saturating_sub(sent));
                }
            }
            return None;
        }
        if announce.interval.is_some() || announce.complete.is_some() {
            c.announce_responses.fetch_add(1, Ordering::Relaxed);
        } else {
            c.other_msgs.fetch_add(1, Ordering::Relaxed);
        }
        None
    }
}

/// How a peer behaves over its connection's life.
pub struct Plan {
    /// Re-announce (with new offers) this often; `None`: only the first announce.
    pub announce_every: Option<Duration>,
    /// Delay before the first re-announce (spreads peers over the interval).
    pub first_reannounce_in: Duration,
    /// Leave at this time (churn); `None`: stay until the run stops.
    pub leave_at: Option<Instant>,
    /// On leaving, send a `stopped` announce first.
    pub send_stopped: bool,
    /// On leaving, drop the TCP connection without a WebSocket close frame.
    pub abrupt: bool,
}

/// Why a peer's loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The run ended.
    Stopped,
    /// The peer left on its own (churn).
    Left,
    /// The tracker closed or broke the connection.
    Disconnected,
}

/// Runs one peer on an open WebSocket until the run stops, the peer leaves, or the tracker drops it.
pub async fn drive(
    ws: Ws,
    mut peer: Peer,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    plan: Plan,
) -> Exit {
    let c = &shared.counters;
    c.opened.fetch_add(1, Ordering::Relaxed);
    c.connected.fetch_add(1, Ordering::Relaxed);
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::channel::<Message>(SEND_QUEUE);
    let writer = tokio::spawn(write_loop(sink, rx, shared.clone()));
    let queue = |m: String| {
        if tx.try_send(Message::text(m)).is_err() {
            c.send_skipped.fetch_add(1, Ordering::Relaxed);
        }
    };
    queue(peer.announce(&shared, AnnounceEvent::Started));

    let period = plan.announce_every.unwrap_or(Duration::from_secs(86_400));
    let mut ticker = tokio::time::interval_at(Instant::now() + plan.first_reannounce_in, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let far = Instant::now() + Duration::from_secs(86_400);
    let leave = tokio::time::sleep_until(plan.leave_at.unwrap_or(far));
    tokio::pin!(leave);

    let exit = if *stop.borrow() {
        Exit::Stopped
    } else {
        loop {
            tokio::select! {
                _ = stop.changed() => break Exit::Stopped,
                _ = &mut leave => break Exit::Left,
                _ = ticker.tick(), if plan.announce_every.is_some() => {
                    queue(peer.announce(&shared, AnnounceEvent::Update));
                }
                m = stream.next() => match m {
                    Some(Ok(Message::Text(text))) => {
                        c.msgs_recv.fetch_add(1, Ordering::Relaxed);
                        if let Some(reply) = peer.on_text(&shared, text.as_str()) {
                            queue(reply);
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break Exit::Disconnected,
                    Some(Ok(_)) => {}
                },
            }
        }
    };

    if exit == Exit::Left && plan.abrupt {
        writer.abort();
    } else {
        if exit == Exit::Left && plan.send_stopped {
            c.stops_sent.fetch_add(1, Ordering::Relaxed);
            queue(peer.stopped());
        }
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
    drop(stream);
    c.connected.fetch_sub(1, Ordering::Relaxed);
    match exit {
        Exit::Disconnected => {
            c.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        Exit::Left => {
            c.churned.fetch_add(1, Ordering::Relaxed);
        }
        Exit::Stopped => {}
    }
    exit
}

/// Writes queued messages, batching whatever is queued before each flush; closes the WebSocket
/// (close frame) when the queue is dropped.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<Message>,
    shared: Arc<Shared>,
) {
    let sent = &shared.counters.msgs_sent;
    while let Some(m) = rx.recv().await {
        if sink.feed(m).await.is_err() {
            return;
        }
        sent.fetch_add(1, Ordering::Relaxed);
        while let Ok(m) = rx.try_recv() {
            if sink.feed(m).await.is_err() {
                return;
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use segswarm_ws_protocol::{
        encode_announce_response, encode_answer, encode_offer, parse, WsRequest,
    };

    use super::*;

    fn ih() -> Id20 {
        Id20(*b"ssbench0000000000001")
    }

    #[test]
    fn offer_is_answered_to_its_sender_and_answer_is_timed() {
        let shared = Shared::new(2, 600);
        shared.measuring.store(true, Ordering::Relaxed);
        let mut a = Peer::new(0, 1, ih(), false);
        let mut b = Peer::new(1, 2, ih(), true);
        let announce = a.announce(&shared, AnnounceEvent::Started);
        let Ok(WsRequest::Announce(announce)) = parse(&announce) else {
            panic!("{announce}")
        };
        let offer = &announce.offers[0];
        // What a tracker relays to b.
        let relayed = encode_offer(&a.info_hash, &a.peer_id, &offer.offer_id, offer.offer);
        let reply = b.on_text(&shared, &relayed).expect("b answers");
        let Ok(WsRequest::Announce(reply)) = parse(&reply) else {
            panic!("{reply}")
        };
        assert_eq!(reply.peer_id, b.peer_id);
        let answer = reply.answer.expect("an answer");
        assert_eq!(
            (answer.to_peer_id, answer.offer_id),
            (a.peer_id, offer.offer_id)
        );
        // What a tracker relays back to a.
        let back = encode_answer(&a.info_hash, &b.peer_id, &answer.offer_id, answer.answer);
        assert_eq!(a.on_text(&shared, &back), None);
        let s = shared.counters.snapshot();
        assert_eq!((s.offers_recv, s.answers_sent, s.answers_recv), (1, 1, 1));
        assert_eq!(shared.offer_latency.summary().count, 1);
        assert_eq!(shared.answer_latency.summary().count, 1);
        assert_eq!(shared.offer_rtt.summary().count, 1);
    }

    #[test]
    fn failures_and_responses_are_counted() {
        let shared = Shared::new(1, 600);
        let mut p = Peer::new(0, 1, ih(), false);
        p.on_text(&shared, r#"{"failure reason":"too many"}"#);
        p.on_text(&shared, &encode_announce_response(&ih(), 1, 2, 120, None));
        p.on_text(&shared, "not json");
        let s = shared.counters.snapshot();
        assert_eq!((s.failures, s.announce_responses, s.bad_json), (1, 1, 1));
        assert_eq!(
            shared
                .failure_reasons
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
            vec!["too many".to_string()]
        );
    }
}
