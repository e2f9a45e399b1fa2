//! One WebTorrent WebSocket connection: reads JSON requests, answers them, relays offers and
//! answers into other connections' outboxes, drains its own outbox, pings when idle, and on
//! close removes its peers from every swarm it joined.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use super::outbox::{Outbound, Outbox};
use super::ratelimit::TokenBucket;
use super::{ConnSlot, Shared};
use crate::metrics::MessageKind;
use crate::protocol::ws::{self as proto, Action, WsAnnounce, WsRequest, WsScrape};
use crate::protocol::{AnnounceEvent, ErrorKind, Id20};
use crate::swarm::ConnId;

/// Why the server closes a connection.
type Close = (CloseCode, &'static str);

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
    /// Consecutive rate-limited requests.
    strikes: u32,
}

/// Runs a WebSocket connection to its end. `reject`: close at once with this reason.
pub(super) async fn run<S>(
    shared: Arc<Shared>,
    slot: Option<Arc<ConnSlot>>,
    mut ws: WebSocketStream<S>,
    reject: Option<Close>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some((code, reason)) = reject {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
        return;
    }
    let Some(slot) = slot else { return };
    slot.upgraded();
    let id = shared.next_conn_id();
    let outbox = Arc::new(Outbox::new(shared.config.limits.max_outbound_queue));
    shared.conns.insert(id, outbox.clone());
    let limits = &shared.config.limits;
    let mut session = Session {
        reg: Registration {
            shared: shared.clone(),
            id,
            joined: Vec::new(),
        },
        bucket: TokenBucket::new(limits.announce_burst, Instant::now()),
        scrape_bucket: TokenBucket::new(limits.announce_burst, Instant::now()),
        strikes: 0,
    };
    let ping_interval = Duration::from_secs(shared.config.protocol.ping_interval_secs);
    let idle_timeout = Duration::from_secs(shared.config.protocol.idle_timeout_secs);
    let write_timeout = idle_timeout;
    // Checked twice per ping interval, so a ping goes out between 1 and 1.5 intervals of
    // silence, well before `idle_timeout` (at least one interval) closes the connection.
    let tick = (ping_interval / 2).max(Duration::from_millis(50));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping: Option<Instant> = None;
    let mut shutdown = shared.shutdown.subscribe();
    let mut last_activity = Instant::now();
    let mut replies: Vec<String> = Vec::new();

    let close: Option<Close> = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Some((CloseCode::Away, "server shutting down")),
            _ = outbox.ready() => {
                if outbox.overflowed() {
                    break Some((CloseCode::Policy, ErrorKind::QueueFull.reason()));
                }
                let batch = outbox.take_all();
                if !write_batch(&shared, &mut ws, batch, write_timeout).await {
                    break None;
                }
            }
            incoming = ws.next() => {
                let now = Instant::now();
                match incoming {
                    None => break None,
                    Some(Err(WsError::Capacity(_))) => {
                        shared.metrics.error(ErrorKind::OversizedMessage);
                        break Some((CloseCode::Size, ErrorKind::OversizedMessage.reason()));
                    }
                    Some(Err(e)) => {
                        debug!(conn = id, error = %e, "websocket error");
                        break None;
                    }
                    Some(Ok(Message::Text(text))) => {
                        last_activity = now;
                        let close = handle_text(&shared, &mut session, text.as_str(), now, &mut replies);
                        if !write_replies(&shared, &mut ws, &mut replies, write_timeout).await {
                            break None;
                        }
                        if close.is_some() {
                            break close;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_activity = now;
                        let kind = ErrorKind::BinaryFrame;
                        shared.metrics.error(kind);
                        if let Err(close) = rate_ok(&shared, &mut session, now, false) {
                            shared.metrics.error(ErrorKind::RateLimited);
                            if close.is_some() {
                                break close;
                            }
                            continue;
                        }
                        shared.metrics.message_out(MessageKind::Failure, 1);
                        replies.push(proto::encode_failure(kind.reason(), None, None));
                        if !write_replies(&shared, &mut ws, &mut replies, write_timeout).await {
                            break None;
                        }
                    }
                    Some(Ok(_)) => last_activity = now,
                }
            }
            _ = ticker.tick() => {
                let idle = last_activity.elapsed();
                if idle >= idle_timeout {
                    break Some((CloseCode::Away, "idle timeout"));
                }
                let ping_due = last_ping.is_none_or(|at| at.elapsed() >= ping_interval);
                if idle >= ping_interval && ping_due {
                    last_ping = Some(Instant::now());
                    let sent = tokio::time::timeout(write_timeout, ws.send(Message::Ping(Default::default()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break None;
                    }
                }
            }
        }
    };
    // Leave the swarms before the (possibly slow) close handshake.
    drop(session);
    if let Some((code, reason)) = close {
        debug!(conn = id, reason, "closing");
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
    }
    drop(slot);
}

async fn write_batch<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    batch: std::collections::VecDeque<Outbound>,
    timeout: Duration,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let n = batch.len();
    let write = async {
        for message in batch {
            ws.feed(Message::Text(message.text)).await?;
            shared.metrics.message_out(message.kind, 1);
            if let Some(received) = message.offer_received {
                shared
                    .metrics
                    .offer_relay
                    .observe(received.elapsed().as_secs_f64());
            }
        }
        ws.flush().await
    };
    n == 0 || matches!(tokio::time::timeout(timeout, write).await, Ok(Ok(())))
}

async fn write_replies<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    replies: &mut Vec<String>,
    timeout: Duration,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if replies.is_empty() {
        return true;
    }
    let _ = shared;
    let write = async {
        for text in replies.drain(..) {
            ws.feed(Message::Text(Utf8Bytes::from(text))).await?;
        }
        ws.flush().await
    };
    matches!(tokio::time::timeout(timeout, write).await, Ok(Ok(())))
}

/// Sends `text` to connection `to` through its outbox.
fn relay(
    shared: &Shared,
    to: ConnId,
    text: String,
    kind: MessageKind,
    offer_received: Option<Instant>,
) {
    let Some(outbox) = shared.conns.get(&to).map(|o| o.value().clone()) else {
        return;
    };
    let message = Outbound {
        text: Utf8Bytes::from(text),
        kind,
        offer_received,
    };
    if outbox.push(message).is_err() {
        shared.metrics.error(ErrorKind::QueueFull);
    }
}

fn fail(
    shared: &Shared,
    replies: &mut Vec<String>,
    kind: ErrorKind,
    action: Action,
    info_hash: Option<&Id20>,
) {
    shared.metrics.error(kind);
    shared.metrics.message_out(MessageKind::Failure, 1);
    replies.push(proto::encode_failure(
        kind.reason(),
        Some(action),
        info_hash,
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
            CloseCode::Policy,
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
    replies: &mut Vec<String>,
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
            shared.metrics.message_out(MessageKind::Failure, 1);
            replies.push(proto::encode_failure(
                e.kind.reason(),
                e.action,
                e.info_hash.as_ref(),
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
                WsScrape::Some(ids) => shared.roster.scrape(&ids),
            };
            shared.metrics.message_out(MessageKind::Scrape, 1);
            replies.push(proto::encode_scrape(&files));
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
    replies: &mut Vec<String>,
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
            proto::encode_answer(
                info_hash,
                &announce.peer_id,
                &answer.offer_id,
                answer.answer,
            ),
            MessageKind::Answer,
            None,
        ),
        Err(kind) => fail(shared, replies, kind, Action::Announce, Some(info_hash)),
    }
    None
}

fn handle_announce(
    shared: &Shared,
    session: &mut Session,
    announce: &WsAnnounce<'_>,
    now: Instant,
    replies: &mut Vec<String>,
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
    if announce.event != AnnounceEvent::Stopped {
        match position {
            None if joined.len() >= shared.config.limits.max_swarms_per_connection => {
                fail(
                    shared,
                    replies,
                    ErrorKind::TooManySwarms,
                    Action::Announce,
                    Some(&info_hash),
                );
                return None;
            }
            Some(i) if joined[i].1 != announce.peer_id => {
                // This connection switched peer ids in this swarm: the old one leaves.
                shared
                    .roster
                    .ws_remove(session.reg.id, info_hash, joined[i].1);
                joined.swap_remove(i);
            }
            _ => {}
        }
    }
    let offer_ids: Vec<Id20> = announce.offers.iter().map(|o| o.offer_id).collect();
    let outcome = shared.roster.ws_announce(
        session.reg.id,
        info_hash,
        announce.peer_id,
        announce.event,
        announce.seeder,
        &offer_ids,
        now,
        &mut rand::rng(),
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(kind) => {
            fail(shared, replies, kind, Action::Announce, Some(&info_hash));
            return None;
        }
    };
    let joined = &mut session.reg.joined;
    let position = joined.iter().position(|(ih, _)| *ih == info_hash);
    match (announce.event, position) {
        (AnnounceEvent::Stopped, Some(i)) => {
            joined.swap_remove(i);
        }
        (AnnounceEvent::Stopped, None) | (_, Some(_)) => {}
        (_, None) => joined.push((info_hash, announce.peer_id)),
    }
    shared.metrics.message_out(MessageKind::Announce, 1);
    replies.push(proto::encode_announce_response(
        &info_hash,
        outcome.complete,
        outcome.incomplete,
        shared.config.protocol.announce_interval_secs,
    ));
    for (index, to) in outcome.offer_targets {
        if let Some(offer) = announce.offers.get(index) {
            relay(
                shared,
                to,
                proto::encode_offer(&info_hash, &announce.peer_id, &offer.offer_id, offer.offer),
                MessageKind::Offer,
                Some(now),
            );
        }
    }
    None
}
