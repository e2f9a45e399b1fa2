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

use crate::stats::{Counters, Latencies};
use crate::target::Ws;
use crate::wire::{self, Incoming, Offer};

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
    /// 20-character peer id.
    pub peer_id: String,
    /// 20-character info hash of its swarm.
    pub info_hash: String,
    /// `left` value: 0 makes it a seeder.
    pub left: u64,
    seq: u32,
}

impl Peer {
    /// A peer with a unique id number `id` in swarm `info_hash`.
    pub fn new(index: usize, id: u64, info_hash: String, seeder: bool) -> Peer {
        Peer {
            index,
            peer_id: format!("-LG0001-{:012}", id % 1_000_000_000_000),
            info_hash,
            left: if seeder { 0 } else { 1_000_000 },
            seq: 0,
        }
    }

    /// An announce with fresh offers stamped with the current time.
    pub fn announce(&mut self, shared: &Shared, event: Option<&str>) -> String {
        let now = shared.now_micros();
        let ids: Vec<String> = (0..shared.offers_per_announce)
            .map(|_| {
                self.seq = self.seq.wrapping_add(1);
                wire::offer_id(now, self.seq)
            })
            .collect();
        let offers: Vec<Offer<'_>> = ids
            .iter()
            .map(|id| Offer {
                id,
                sdp: &shared.offer_sdp,
            })
            .collect();
        let c = &shared.counters;
        c.announces_sent.fetch_add(1, Ordering::Relaxed);
        c.offers_sent
            .fetch_add(offers.len() as u64, Ordering::Relaxed);
        wire::announce(&self.info_hash, &self.peer_id, event, self.left, &offers)
    }

    /// Handles one text message from the tracker; returns the answer to send, if it was an offer.
    pub fn on_text(&mut self, shared: &Shared, text: &str) -> Option<String> {
        let c = &shared.counters;
        let msg: Incoming<'_> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(_) => {
                c.bad_json.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        if let Some(reason) = &msg.failure {
            c.failures.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut reasons) = shared.failure_reasons.lock() {
                if reasons.len() < MAX_REASONS && !reasons.iter().any(|r| r == reason) {
                    reasons.push(reason.to_string());
                }
            }
            return None;
        }
        if msg.warning.is_some() {
            c.warnings.fetch_add(1, Ordering::Relaxed);
        }
        let now = shared.now_micros();
        if msg.offer.is_some() {
            c.offers_recv.fetch_add(1, Ordering::Relaxed);
            let (Some(from), Some(offer_id)) = (&msg.peer_id, &msg.offer_id) else {
                c.other_msgs.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if shared.measuring() {
                if let Some(sent) = wire::offer_id_micros(offer_id) {
                    shared
                        .offer_latency
                        .record(self.index, now.saturating_sub(sent));
                }
            }
            let info_hash = msg.info_hash.as_deref().unwrap_or(&self.info_hash);
            let sdp = format!(
                "v=0\r\no=- {now} 2 IN IP4 127.0.0.1\r\n{}",
                shared.answer_sdp_tail
            );
            c.answers_sent.fetch_add(1, Ordering::Relaxed);
            return Some(wire::answer(info_hash, &self.peer_id, from, offer_id, &sdp));
        }
        if let Some(answer) = &msg.answer {
            c.answers_recv.fetch_add(1, Ordering::Relaxed);
            if shared.measuring() {
                if let Some(sent) = answer.sdp.as_deref().and_then(wire::sdp_session_micros) {
                    shared
                        .answer_latency
                        .record(self.index, now.saturating_sub(sent));
                }
                if let Some(sent) = msg.offer_id.as_deref().and_then(wire::offer_id_micros) {
                    shared
                        .offer_rtt
                        .record(self.index, now.saturating_sub(sent));
                }
            }
            return None;
        }
        if msg.action.as_deref() == Some("announce")
            && (msg.interval.is_some() || msg.complete.is_some())
        {
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
    queue(peer.announce(&shared, Some("started")));

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
                    queue(peer.announce(&shared, None));
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
            queue(wire::stopped(&peer.info_hash, &peer.peer_id));
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
    use super::*;

    #[test]
    fn offer_is_answered_to_its_sender_and_answer_is_timed() {
        let shared = Shared::new(2, 600);
        shared.measuring.store(true, Ordering::Relaxed);
        let mut a = Peer::new(0, 1, "ssbench0000000000001".into(), false);
        let mut b = Peer::new(1, 2, "ssbench0000000000001".into(), true);
        let announce: serde_json::Value =
            serde_json::from_str(&a.announce(&shared, Some("started"))).expect("json");
        let offer = &announce["offers"][0];
        // What a tracker relays to b.
        let relayed = serde_json::json!({
            "action": "announce", "info_hash": a.info_hash, "peer_id": a.peer_id,
            "offer_id": offer["offer_id"], "offer": offer["offer"],
        })
        .to_string();
        let reply = b.on_text(&shared, &relayed).expect("b answers");
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("json");
        assert_eq!(reply["to_peer_id"], a.peer_id.as_str());
        assert_eq!(reply["offer_id"], offer["offer_id"]);
        assert_eq!(reply["peer_id"], b.peer_id.as_str());
        // What a tracker relays back to a.
        let back = serde_json::json!({
            "action": "announce", "info_hash": a.info_hash, "peer_id": b.peer_id,
            "offer_id": reply["offer_id"], "answer": reply["answer"],
        })
        .to_string();
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
        let mut p = Peer::new(0, 1, "x".into(), false);
        p.on_text(&shared, r#"{"failure reason":"too many"}"#);
        p.on_text(
            &shared,
            r#"{"action":"announce","info_hash":"x","complete":1,"incomplete":2,"interval":120}"#,
        );
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
