//! Signalling: offers and answers made, paired through their SDP text, data channels opened or
//! failed, connections given up and closed.
//!
//! The SDP is `o:NODE:HANDLE` for an offer and `a:NODE:HANDLE` for an answer: it names the end
//! that made it, so the other end can be found when it comes back through the tracker.

use super::clock::SECOND;
use super::network::Link;
use super::{Close, Harness, NetEvent};
use crate::engine::{IoEvent, PeerHandle, RtcCommand};

/// An answer that does not match its offer, or whose node is gone: the offerer hears
/// `PeerClosed` this much later, µs.
const BAD_ANSWER_DELAY: u64 = SECOND;

/// Round trips between accepting an answer and the data channel opening.
const CONNECT_ROUND_TRIPS: u64 = 3;

impl<E> Harness<E> {
    /// Nodes `a` and `b` can never connect (their ICE fails).
    pub fn block(&mut self, a: usize, b: usize) {
        self.blocked.insert((a.min(b), a.max(b)));
    }

    /// Whether `a` and `b` can connect: not both [unreachable](super::NodeNet::unreachable), not
    /// [blocked](Self::block).
    pub fn can_connect(&self, a: usize, b: usize) -> bool {
        let both_unreachable = self.nodes[a].net.unreachable && self.nodes[b].net.unreachable;
        !both_unreachable && !self.blocked.contains(&(a.min(b), a.max(b)))
    }

    /// Carries out one RTC command of `node`'s engine.
    pub(super) fn rtc(&mut self, node: usize, command: RtcCommand) {
        let now = self.now();
        match command {
            RtcCommand::CreateOffers(handles) => {
                for peer in handles {
                    let sdp = Some(format!("o:{node}:{}", peer.0));
                    let made = IoEvent::OfferCreated { peer, sdp };
                    self.push(now + self.config.sdp_delay, NetEvent::Deliver(node, made));
                }
            }
            RtcCommand::CreateAnswer { peer, offer_sdp } => {
                let Some((offerer, offer_handle)) = parse_sdp(&offer_sdp) else {
                    return;
                };
                if offerer >= self.nodes.len() || self.nodes[offerer].engine.is_none() {
                    // The offerer is gone: ICE never completes.
                    let at = now + self.config.ice_failure_delay;
                    self.push(at, NetEvent::AnswerTimeout(node, peer));
                    let link = Link::new(offerer, offer_handle);
                    self.nodes[node].links.insert(peer, link);
                    return;
                }
                let link = Link::new(offerer, offer_handle);
                self.nodes[node].links.insert(peer, link);
                self.nodes[offerer]
                    .links
                    .insert(offer_handle, Link::new(node, peer));
                let sdp = format!("a:{node}:{}", peer.0);
                let made = IoEvent::AnswerCreated { peer, sdp };
                self.push(now + self.config.sdp_delay, NetEvent::Deliver(node, made));
                let at = now + self.config.answer_timeout;
                self.push(at, NetEvent::AnswerTimeout(node, peer));
            }
            RtcCommand::AcceptAnswer { peer, answer_sdp } => {
                let Some((answerer, answer_handle)) = parse_sdp(&answer_sdp) else {
                    return;
                };
                let matches = self.nodes[node]
                    .links
                    .get(&peer)
                    .is_some_and(|l| l.other == answerer && l.other_handle == answer_handle);
                if !matches || self.nodes[answerer].engine.is_none() {
                    self.nodes[node].links.remove(&peer);
                    let closed = NetEvent::Deliver(node, IoEvent::PeerClosed(peer));
                    self.push(now + BAD_ANSWER_DELAY, closed);
                    return;
                }
                if !self.can_connect(node, answerer) {
                    self.nodes[node].links.remove(&peer);
                    self.nodes[answerer].links.remove(&answer_handle);
                    let at = now + self.config.ice_failure_delay;
                    self.push(at, NetEvent::Deliver(node, IoEvent::PeerClosed(peer)));
                    let closed = IoEvent::PeerClosed(answer_handle);
                    self.push(at, NetEvent::Deliver(answerer, closed));
                    return;
                }
                for (end, handle) in [(node, peer), (answerer, answer_handle)] {
                    if let Some(link) = self.nodes[end].links.get_mut(&handle) {
                        link.connected = true;
                    }
                }
                let round_trip = self.nodes[node].net.latency + self.nodes[answerer].net.latency;
                let at = now + round_trip * CONNECT_ROUND_TRIPS;
                self.push(at, NetEvent::Deliver(node, IoEvent::PeerConnected(peer)));
                let opened = IoEvent::PeerConnected(answer_handle);
                self.push(at, NetEvent::Deliver(answerer, opened));
            }
            RtcCommand::Close(peer) => {
                if self.config.log {
                    self.log.closes.push(Close { node, peer });
                }
                if let Some(link) = self.nodes[node].links.remove(&peer) {
                    self.hang_up(node, link);
                }
            }
        }
    }

    /// The answer timeout of `node`'s connection `peer`: if its data channel has not opened, the
    /// link is dropped and `true` returned (the engine is to hear `PeerClosed`).
    pub(super) fn give_up_answer(&mut self, node: usize, peer: PeerHandle) -> bool {
        let links = &mut self.nodes[node].links;
        if links.get(&peer).is_some_and(|l| !l.connected) {
            links.remove(&peer);
            return true;
        }
        false
    }
}

/// The node and handle named by an SDP of this harness.
fn parse_sdp(sdp: &str) -> Option<(usize, PeerHandle)> {
    let mut it = sdp.split(':').skip(1);
    let node = it.next()?.parse().ok()?;
    let handle = it.next()?.parse().ok()?;
    Some((node, PeerHandle(handle)))
}
