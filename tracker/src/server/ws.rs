//! One WebTorrent WebSocket connection: reads JSON requests, answers them, relays offers and
//! answers into other connections' outboxes, drains its own outbox, pings when idle, and on
//! close removes its peers from every swarm it joined.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use super::open_conn::OpenConn;
use super::outbox::{Outbound, Outbox};
use super::ratelimit::TokenBucket;
use super::wsframe::{FrameError, FrameWriter, Incoming, WsConn};
use super::{ConnSlot, Shared};
use crate::metrics::{DropReason, MessageKind};
use crate::protocol::ws::{self as proto, Action, WsAnnounce, WsRequest, WsScrape};
use crate::protocol::{AnnounceEvent, ErrorKind, Id20};
use crate::swarm::{ConnId, ConnView, WsAnnounceRequest};

/// Why the server closes a connection: status code and reason.
pub(super) type Close = (u16, &'static str);

/// Close status: going away (shutdown, idle).
pub(super) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close status: protocol error.
const CLOSE_PROTOCOL: u16 = 1002;
/// Close status: policy violation (origin, flood, slow reader).
pub(super) const CLOSE_POLICY: u16 = 1008;
/// Close status: message too big.
const CLOSE_TOO_BIG: u16 = 1009;
/// Close status: try again later (connection caps).
pub(super) const CLOSE_TRY_AGAIN: u16 = 1013;
/// Time allowed to send a close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection's entry in the shared state and its swarms; cleaned up on drop, whatever
/// ended the task.
struct Registration {
    shared: Arc<Shared>,
    id: ConnId,
    /// `(info_hash, peer_id)` of every swarm this connection is in.
    joined: Vec<(Id20, Id20)>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.conns.remove(&self.id);
        for (info_hash, peer_id) in self.joined.drain(..) {
            self.shared.roster.ws_remove(self.id, info_hash, peer_id);
        }
    }
}

/// Per-connection request state.
struct Session {
    reg: Registration,
    bucket: TokenBucket,
    /// Scrapes have a bucket of their own (same rate and burst), so they never use up announces.
    scrape_bucket: TokenBucket,
    /// Pings answered (`limits.max_pings_per_sec`, `limits.ping_burst`).
    ping_bucket: TokenBucket,
    /// Consecutive rate-limited requests.
    strikes: u32,
}

/// Replies to the connection's own requests, with their kind for the outgoing message counter.
type Replies = Vec<(MessageKind, String)>;

/// How a connection's loop ended.
enum Ending {
    /// The socket failed or went silent: no close frame.
    Abort,
    /// The server closes with this status and reason.
    Close(Close),
    /// The client closed (with this status code, echoed).
    Echo(Option<u16>),
}

/// Why a connection whose socket takes no bytes is given up.
#[derive(Clone, Copy)]
enum Stall {
    /// Its outbox is full and dropping messages.
    QueueFull,
    /// A write has made no progress.
    Write,
}

/// Runs a WebSocket connection to its end. `reject`: close at once with this reason.
///
/// Everything the connection is sent — replies to its own requests and messages relayed from
/// other peers — goes through its bounded [`Outbox`], in order. The outbox is moved into the
/// socket's write buffer only once the previous batch is written, so a peer that reads slowly
/// loses what does not fit (counted as dropped) rather than growing the tracker's memory, and
/// requests keep being read while a write waits on the socket.
pub(super) async fn run<S>(
    shared: Arc<Shared>,
    slot: Option<Arc<ConnSlot>>,
    mut conn: WsConn<S>,
    reject: Option<Close>,
) where
    S: AsyncRead + AsyncWrite,
{
    if let Some((code, reason)) = reject {
        conn.writer.queue_close(Some(code), reason);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.writer.shutdown()).await;
        return;
    }
    let Some(slot) = slot else { return };
    slot.upgraded();
    let id = shared.next_conn_id();
    let limits = &shared.config.limits;
    let open = Arc::new(OpenConn::new(
        Outbox::new(limits.max_outbound_queue, limits.max_outbound_queue_bytes),
        Instant::now(),
    ));
    shared.conns.insert(id, open.clone());
    let outbox = &open.outbox;
    let mut session = Session {
        reg: Registration {
            shared: shared.clone(),
            id,
            joined: Vec::new(),
        },
        bucket: TokenBucket::new(limits.announce_burst, Instant::now()),
        scrape_bucket: TokenBucket::new(limits.announce_burst, Instant::now()),
        ping_bucket: TokenBucket::new(limits.ping_burst, Instant::now()),
        strikes: 0,
    };
    let ping_interval = Duration::from_secs(shared.config.protocol.ping_interval_secs);
    let idle_timeout = Duration::from_secs(shared.config.protocol.idle_timeout_secs);
    let write_timeout = idle_timeout;
    let slow_timeout = shared.config.slow_consumer_timeout();
    // Checked twice per ping interval, so a ping goes out between 1 and 1.5 intervals of
    // silence, well before `idle_timeout` (at least one interval) closes the connection.
    let tick = (ping_interval / 2).max(Duration::from_millis(50));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping: Option<Instant> = None;
    let mut shutdown = shared.shutdown.subscribe();
    let mut last_activity = Instant::now();
    // When the socket last took bytes.
    let mut progress = Instant::now();
    let mut replies: Replies = Vec::new();
    // Arrival times of the offers in the batch being written (for the relay latency histogram).
    let mut relayed: Vec<Instant> = Vec::new();

    let ending = loop {
        let writing = conn.writer.has_pending();
        // The socket must take bytes in time: within `slow_timeout` once the outbox is full
        // (a peer that does not read must not keep its place in the swarms), and within
        // `write_timeout` for any write.
        let too_slow_at = outbox
            .full_since()
            .map(|since| since.max(progress) + slow_timeout);
        let deadline = match too_slow_at {
            Some(at) if !writing || at <= progress + write_timeout => Some((at, Stall::QueueFull)),
            _ if writing => Some((progress + write_timeout, Stall::Write)),
            _ => None,
        };
        let wake_at = tokio::time::Instant::from_std(deadline.map_or(progress, |(at, _)| at));
        let WsConn { reader, writer } = &mut conn;
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ending::Close((CLOSE_GOING_AWAY, "server shutting down")),
            written = writer.write_some(), if writing => match written {
                Ok(done) => {
                    progress = Instant::now();
                    if done {
                        for received in relayed.drain(..) {
                            shared.metrics.offer_relay.observe(received.elapsed().as_secs_f64());
                        }
                    }
                }
                Err(_) => break Ending::Abort,
            },
            incoming = reader.next() => {
                let now = Instant::now();
                open.heard(now);
                match incoming {
                    Ok(Incoming::Text(text)) => {
                        last_activity = now;
                        let close = handle_text(&shared, &mut session, text, now, &mut replies);
                        send_replies(&shared, outbox, writer, &mut replies, &mut relayed, now);
                        if let Some(close) = close {
                            break Ending::Close(close);
                        }
                    }
                    Ok(Incoming::Binary(_)) => {
                        last_activity = now;
                        let kind = ErrorKind::BinaryFrame;
                        shared.metrics.error(kind);
                        if let Err(close) = rate_ok(&shared, &mut session, now, false) {
                            shared.metrics.error(ErrorKind::RateLimited);
                            if let Some(close) = close {
                                break Ending::Close(close);
                            }
                            continue;
                        }
                        replies.push((MessageKind::Failure, proto::encode_failure(kind.reason(), None, None)));
                        send_replies(&shared, outbox, writer, &mut replies, &mut relayed, now);
                    }
                    Ok(Incoming::Ping(payload)) => {
                        last_activity = now;
                        if session.ping_bucket.try_take(limits.max_pings_per_sec, limits.ping_burst, now) {
                            writer.queue_pong(payload);
                        } else {
                            shared.metrics.dropped(DropReason::ControlFlood);
                        }
                    }
                    Ok(Incoming::Pong) => last_activity = now,
                    Ok(Incoming::Close(code)) => break Ending::Echo(code),
                    Err(FrameError::TooLarge) => {
                        shared.metrics.error(ErrorKind::OversizedMessage);
                        break Ending::Close((CLOSE_TOO_BIG, ErrorKind::OversizedMessage.reason()));
                    }
                    Err(e @ (FrameError::Protocol(_) | FrameError::InvalidUtf8)) => {
                        debug!(conn = id, error = %e, "websocket protocol error");
                        shared.metrics.error(ErrorKind::MalformedJson);
                        let code = e.close_code().unwrap_or(CLOSE_PROTOCOL);
                        break Ending::Close((code, if code == 1007 { "text message is not UTF-8" } else { "WebSocket protocol error" }));
                    }
                    Err(e) => {
                        debug!(conn = id, error = %e, "websocket ended");
                        break Ending::Abort;
                    }
                }
            }
            _ = outbox.ready(), if !writing => {
                drain_outbox(&shared, outbox, writer, &mut relayed);
            }
            _ = tokio::time::sleep_until(wake_at), if deadline.is_some() => {
                if let Some((_, Stall::QueueFull)) = deadline {
                    shared.metrics.error(ErrorKind::QueueFull);
                    break Ending::Close((CLOSE_POLICY, ErrorKind::QueueFull.reason()));
                }
                break Ending::Abort;
            }
            // The outbox started dropping: recompute the deadline on the next turn.
            _ = outbox.full_signal(), if too_slow_at.is_none() => {}
            _ = ticker.tick() => {
                let idle = last_activity.elapsed();
                if idle >= idle_timeout {
                    break Ending::Close((CLOSE_GOING_AWAY, "idle timeout"));
                }
                let ping_due = last_ping.is_none_or(|at| at.elapsed() >= ping_interval);
                if idle >= ping_interval && ping_due {
                    last_ping = Some(Instant::now());
                    writer.queue_ping();
                }
            }
        }
    };
    // Leave the swarms before the (possibly slow) close handshake.
    drop(session);
    let writer = &mut conn.writer;
    match ending {
        Ending::Abort => return,
        Ending::Close((code, reason)) => {
            debug!(conn = id, reason, "closing");
            // What was already queued (a failure reason, say) goes out before the close frame.
            drain_outbox(&shared, outbox, writer, &mut relayed);
            writer.queue_close(Some(code), reason);
        }
        Ending::Echo(code) => writer.queue_close(code, ""),
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, writer.shutdown()).await;
    drop(slot);
}

/// Moves everything in the outbox into the socket's write buffer, counting it as sent.
fn drain_outbox<W: AsyncWrite + Unpin>(
    shared: &Shared,
    outbox: &Outbox,
    writer: &mut FrameWriter<W>,
    relayed: &mut Vec<Instant>,
) {
    let messages = outbox.take_all();
    let bytes = messages.iter().map(|m| m.text.len()).sum();
    writer.reserve_text(messages.len(), bytes);
    for message in messages {
        writer.queue_text(&message.text);
        shared.metrics.message_out(message.kind, 1);
        if let Some(received) = message.offer_received {
            relayed.push(received);
        }
    }
}

/// Queues the replies to this connection's own request behind what it was already sent, and
/// moves them into the write buffer at once if the socket keeps up. Like relays, replies that
/// do not fit in a full outbox are dropped (and counted).
fn send_replies<W: AsyncWrite + Unpin>(
    shared: &Shared,
    outbox: &Outbox,
    writer: &mut FrameWriter<W>,
    replies: &mut Replies,
    relayed: &mut Vec<Instant>,
    now: Instant,
) {
    for (kind, text) in replies.drain(..) {
        let message = Outbound {
            text,
            kind,
            offer_received: None,
        };
        if outbox.push(message, now).is_err() {
            shared.metrics.dropped(DropReason::QueueFull);
        }
    }
    if !writer.has_pending() {
        drain_outbox(shared, outbox, writer, relayed);
    }
}

/// Sends `text` to connection `to` through its outbox; a message that cannot be queued is
/// dropped and counted.
fn relay(
    shared: &Shared,
    to: ConnId,
    text: String,
    kind: MessageKind,
    offer_received: Option<Instant>,
    now: Instant,
) {
    let Some(open) = shared.conns.get(&to).map(|o| o.value().clone()) else {
        shared.metrics.dropped(DropReason::RecipientGone);
        return;
    };
    let outbox = &open.outbox;
    let message = Outbound {
        text,
        kind,
        offer_received,
    };
    if outbox.push(message, now).is_err() {
        shared.metrics.dropped(DropReason::QueueFull);
    }
}

fn fail(
    shared: &Shared,
    replies: &mut Replies,
    kind: ErrorKind,
    action: Action,
    info_hash: Option<&Id20>,
) {
    shared.metrics.error(kind);
    replies.push((
        MessageKind::Failure,
        proto::encode_failure(kind.reason(), Some(action), info_hash),
    ));
}

/// Applies the announce (or scrape) bucket; returns a close reason when a client keeps flooding.
fn rate_ok(
    shared: &Shared,
    session: &mut Session,
    now: Instant,
    scrape: bool,
) -> Result<(), Option<Close>> {
    let limits = &shared.config.limits;
    let bucket = if scrape {
        &mut session.scrape_bucket
    } else {
        &mut session.bucket
    };
    if bucket.try_take(limits.max_announces_per_sec, limits.announce_burst, now) {
        session.strikes = 0;
        return Ok(());
    }
    session.strikes += 1;
    if session.strikes > limits.announce_burst {
        return Err(Some((
            CLOSE_POLICY,
            "rate limit exceeded: too many requests",
        )));
    }
    Err(None)
}

/// Handles one text message; replies for this connection go to `replies`.
fn handle_text(
    shared: &Shared,
    session: &mut Session,
    text: &str,
    now: Instant,
    replies: &mut Replies,
) -> Option<Close> {
    let request = match proto::parse(text) {
        Ok(request) => request,
        Err(e) => {
            shared.metrics.error(e.kind);
            // Bad messages use up the announce bucket too, so a flood of garbage is cut off.
            if let Err(close) = rate_ok(shared, session, now, false) {
                shared.metrics.error(ErrorKind::RateLimited);
                return close;
            }
            replies.push((
                MessageKind::Failure,
                proto::encode_failure(e.kind.reason(), e.action, e.info_hash.as_ref()),
            ));
            return None;
        }
    };
    match request {
        WsRequest::Scrape(scrape) => {
            shared.metrics.message_in(MessageKind::Scrape, 1);
            if let Err(close) = rate_ok(shared, session, now, true) {
                fail(
                    shared,
                    replies,
                    ErrorKind::RateLimited,
                    Action::Scrape,
                    None,
                );
                return close;
            }
            let files = match scrape {
                WsScrape::All if shared.config.protocol.allow_full_scrape => {
                    shared.roster.scrape_all()
                }
                WsScrape::All => {
                    fail(
                        shared,
                        replies,
                        ErrorKind::FullScrapeDisabled,
                        Action::Scrape,
                        None,
                    );
                    return None;
                }
                WsScrape::Some(ids) => {
                    match super::scrape_list(ids, shared.config.limits.max_scrape_info_hashes) {
                        Ok(ids) => shared.roster.scrape(&ids),
                        Err(kind) => {
                            fail(shared, replies, kind, Action::Scrape, None);
                            return None;
                        }
                    }
                }
            };
            replies.push((MessageKind::Scrape, proto::encode_scrape(&files)));
            None
        }
        WsRequest::Announce(announce) if announce.answer.is_some() => {
            handle_answer(shared, session, &announce, now, replies)
        }
        WsRequest::Announce(announce) => handle_announce(shared, session, &announce, now, replies),
    }
}

fn handle_answer(
    shared: &Shared,
    session: &mut Session,
    announce: &WsAnnounce<'_>,
    now: Instant,
    replies: &mut Replies,
) -> Option<Close> {
    let Some(answer) = &announce.answer else {
        return None;
    };
    let info_hash = &announce.info_hash;
    shared.metrics.message_in(MessageKind::Answer, 1);
    // With check_answers every answer matches an offer this tracker sent, so answers are bounded
    // by offers and need no bucket of their own.
    if !shared.config.protocol.check_answers {
        if let Err(close) = rate_ok(shared, session, now, false) {
            fail(
                shared,
                replies,
                ErrorKind::RateLimited,
                Action::Announce,
                Some(info_hash),
            );
            return close;
        }
    }
    match shared.roster.ws_answer(
        session.reg.id,
        *info_hash,
        announce.peer_id,
        answer.to_peer_id,
        answer.offer_id,
        now,
    ) {
        Ok(to) => relay(
            shared,
            to,
            proto::encode_answer_json(
                announce.info_hash_json,
                announce.peer_id_json,
                answer.offer_id_json,
                answer.answer,
            ),
            MessageKind::Answer,
            None,
            now,
        ),
        // The offering peer left between its offer and this answer: a race, not bad input. As
        // with the reference tracker, the answerer is not told; the drop is counted.
        Err(ErrorKind::UnknownPeer) => shared.metrics.dropped(DropReason::RecipientGone),
        Err(kind) => fail(shared, replies, kind, Action::Announce, Some(info_hash)),
    }
    None
}

fn handle_announce(
    shared: &Shared,
    session: &mut Session,
    announce: &WsAnnounce<'_>,
    now: Instant,
    replies: &mut Replies,
) -> Option<Close> {
    let info_hash = announce.info_hash;
    shared.metrics.message_in(MessageKind::Announce, 1);
    if !announce.offers.is_empty() {
        shared
            .metrics
            .message_in(MessageKind::Offer, announce.offers.len() as u64);
    }
    if let Err(close) = rate_ok(shared, session, now, false) {
        fail(
            shared,
            replies,
            ErrorKind::RateLimited,
            Action::Announce,
            Some(&info_hash),
        );
        return close;
    }
    if !shared.access.allows_info_hash(&info_hash) {
        fail(
            shared,
            replies,
            ErrorKind::DeniedInfoHash,
            Action::Announce,
            Some(&info_hash),
        );
        return None;
    }
    let joined = &mut session.reg.joined;
    let position = joined.iter().position(|(ih, _)| *ih == info_hash);
    match position {
        // `stopped` must name the peer this connection holds in the swarm.
        Some(i) if announce.event == AnnounceEvent::Stopped && joined[i].1 != announce.peer_id => {
            fail(
                shared,
                replies,
                ErrorKind::NotOwnPeer,
                Action::Announce,
                Some(&info_hash),
            );
            return None;
        }
        None if announce.event != AnnounceEvent::Stopped
            && joined.len() >= shared.config.limits.max_swarms_per_connection =>
        {
            fail(
                shared,
                replies,
                ErrorKind::TooManySwarms,
                Action::Announce,
                Some(&info_hash),
            );
            return None;
        }
        _ => {}
    }
    let offer_ids: Vec<Id20> = announce.offers.iter().map(|o| o.offer_id).collect();
    let request = WsAnnounceRequest {
        conn: session.reg.id,
        info_hash,
        peer_id: announce.peer_id,
        event: announce.event,
        seeder: announce.seeder,
        offer_ids: &offer_ids,
    };
    let conns = LiveConns { shared, now };
    let outcome = shared
        .roster
        .ws_announce_with(&request, &conns, now, &mut rand::rng());
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(kind) => {
            fail(shared, replies, kind, Action::Announce, Some(&info_hash));
            return None;
        }
    };
    for _ in 0..outcome.offers_refused {
        shared.metrics.dropped(DropReason::QueueFull);
    }
    let joined = &mut session.reg.joined;
    match (announce.event, position) {
        (AnnounceEvent::Stopped, Some(i)) => {
            joined.swap_remove(i);
        }
        (AnnounceEvent::Stopped, None) => {}
        (_, Some(i)) if joined[i].1 != announce.peer_id => {
            // This connection switched peer ids in this swarm: the old one leaves.
            shared
                .roster
                .ws_remove(session.reg.id, info_hash, joined[i].1);
            joined[i].1 = announce.peer_id;
        }
        (_, Some(_)) => {}
        (_, None) => joined.push((info_hash, announce.peer_id)),
    }
    let max_offers = shared
        .config
        .protocol
        .max_offers
        .min(proto::MAX_PARSED_OFFERS);
    let offers_sent = announce.offers.len() + announce.offers_unparsed;
    let warning = (offers_sent > max_offers).then(|| {
        format!(
            "{offers_sent} offers sent: at most {max_offers} are relayed, the rest were ignored"
        )
    });
    replies.push((
        MessageKind::Announce,
        proto::encode_announce_response(
            &info_hash,
            outcome.complete,
            outcome.incomplete,
            shared.config.protocol.announce_interval_secs,
            warning.as_deref(),
        ),
    ));
    let relays = proto::OfferRelays::new(announce.info_hash_json, announce.peer_id_json);
    for (index, to) in outcome.offer_targets {
        if let Some(offer) = announce.offers.get(index) {
            relay(
                shared,
                to,
                relays.encode(offer.offer_id_json, offer.offer),
                MessageKind::Offer,
                Some(now),
                now,
            );
        }
    }
    None
}

/// The roster's view of the open connections during one request.
struct LiveConns<'a> {
    shared: &'a Shared,
    now: Instant,
}

impl ConnView for LiveConns<'_> {
    /// A connection whose outbox is full gets no offer (and no pending-offer record that it
    /// could never answer); the offer is counted as dropped.
    fn has_room(&self, conn: ConnId) -> bool {
        self.shared
            .conns
            .get(&conn)
            .is_none_or(|c| c.outbox.has_room(self.now))
    }

    fn may_take_over(&self, holder: ConnId) -> bool {
        let after = Duration::from_secs(self.shared.config.protocol.peer_id_takeover_after_secs);
        self.shared
            .conns
            .get(&holder)
            .is_none_or(|c| c.silent_for(self.now) >= after)
    }
}
