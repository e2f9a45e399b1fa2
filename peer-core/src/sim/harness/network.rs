//! The network model: peer links between nodes, and data-channel messages crossing the sender's
//! upload, both latencies and the receiver's download.

use bytes::Bytes;

use super::clock::micros;
use super::{Harness, NetEvent, PeerBytes};
use crate::engine::{IoEvent, PeerHandle};

/// One end of a connection between two nodes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// The node at the other end.
    pub(super) other: usize,
    /// The other end's handle for this connection.
    pub(super) other_handle: PeerHandle,
    /// The data channel is open (messages are carried).
    pub(super) connected: bool,
    /// Arrival time of the last message sent over this end, µs (keeps messages in order).
    pub(super) last_arrival: u64,
}

impl Link {
    /// A link to `other`'s handle `other_handle`, not yet open.
    pub(super) fn new(other: usize, other_handle: PeerHandle) -> Self {
        Self {
            other,
            other_handle,
            connected: false,
            last_arrival: 0,
        }
    }
}

impl<E> Harness<E> {
    /// `a`'s handle for its connection to `b`, if they have one.
    pub fn link_handle(&self, a: usize, b: usize) -> Option<PeerHandle> {
        self.nodes[a]
            .links
            .iter()
            .find(|(_, l)| l.other == b)
            .map(|(h, _)| *h)
    }

    /// Sends a message over `node`'s link `peer` (dropped unless the link is open): it leaves
    /// after `node`'s earlier messages, at `node`'s upload rate if it carries segment bytes, and
    /// arrives after both latencies, the receiver's download rate and the link's earlier messages.
    pub(super) fn send_peer(&mut self, node: usize, peer: PeerHandle, data: Bytes, segment: bool) {
        let Some(link) = self.nodes[node].links.get(&peer).copied() else {
            return;
        };
        if !link.connected {
            return;
        }
        let now = self.now();
        let to = link.other;
        let data = if segment && self.nodes[node].net.corrupt_segment_bytes {
            corrupt(&data)
        } else {
            data
        };
        let cost = if segment { data.len() as f64 } else { 0.0 };
        let sender = &mut self.nodes[node];
        let depart = sender.up_free.max(now) + micros(cost / sender.net.up_rate);
        sender.up_free = depart;
        let latency = sender.net.latency + self.nodes[to].net.latency;
        // The download side is not a shared queue for peer messages (it is much faster than the
        // uploads feeding it); messages of one link keep their order.
        let mut arrive = depart + latency + micros(cost / self.nodes[to].net.down_rate);
        if let Some(link) = self.nodes[node].links.get_mut(&peer) {
            arrive = arrive.max(link.last_arrival);
            link.last_arrival = arrive;
        }
        if segment && self.config.log {
            self.log.peer_bytes.push(PeerBytes {
                from: node,
                to,
                at: arrive,
                bytes: data.len(),
            });
        }
        let peer = link.other_handle;
        self.push(
            arrive,
            NetEvent::Deliver(to, IoEvent::PeerMessage { peer, data }),
        );
    }

    /// `node` dropped its end `link`: the other end closes too and hears `PeerClosed` after both
    /// latencies (if it still had the link).
    pub(super) fn hang_up(&mut self, node: usize, link: Link) {
        let at = self.now() + self.nodes[node].net.latency + self.nodes[link.other].net.latency;
        if self.nodes[link.other]
            .links
            .remove(&link.other_handle)
            .is_some()
        {
            let closed = IoEvent::PeerClosed(link.other_handle);
            self.push(at, NetEvent::Deliver(link.other, closed));
        }
    }

    /// Removes both ends of the connection between `a` and `b`; returns their handles.
    pub(super) fn unlink(&mut self, a: usize, b: usize) -> Option<(PeerHandle, PeerHandle)> {
        let ha = self.link_handle(a, b)?;
        let link = self.nodes[a].links.remove(&ha)?;
        self.nodes[b].links.remove(&link.other_handle);
        Some((ha, link.other_handle))
    }
}

/// `data` with its first byte flipped.
fn corrupt(data: &Bytes) -> Bytes {
    let mut v = data.to_vec();
    if let Some(first) = v.first_mut() {
        *first ^= 0xff;
    }
    Bytes::from(v)
}
