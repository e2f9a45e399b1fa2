//! What the harness records for tests when [`HarnessConfig::log`](super::HarnessConfig::log) is
//! on: segments delivered to players, HTTP requests, connections closed and segment bytes sent
//! between peers.

use bytes::Bytes;

use super::Harness;
use crate::engine::{DeliverySource, Event, PeerHandle};
use crate::wire::SegmentId;

/// Everything recorded, in the order it happened.
#[derive(Debug, Default)]
pub struct HarnessLog {
    /// Segments the engines delivered (`Event::SegmentReady`).
    pub deliveries: Vec<Delivery>,
    /// HTTP GETs the engines made.
    pub http_requests: Vec<HttpRequest>,
    /// Connections the engines closed (`RtcCommand::Close`).
    pub closes: Vec<Close>,
    /// Messages of segment bytes sent between nodes.
    pub peer_bytes: Vec<PeerBytes>,
}

/// A segment an engine delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The node.
    pub node: usize,
    /// The segment.
    pub segment: SegmentId,
    /// Its bytes.
    pub data: Bytes,
    /// Where they came from.
    pub source: DeliverySource,
    /// When, µs.
    pub at: u64,
}

/// An HTTP GET an engine made.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The node.
    pub node: usize,
    /// The URL.
    pub url: String,
    /// First byte asked for (a range request), if not 0.
    pub range_from: Option<u64>,
    /// When, µs.
    pub at: u64,
}

/// A connection an engine closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The node.
    pub node: usize,
    /// Its handle for the connection.
    pub peer: PeerHandle,
}

/// A message of segment bytes between two nodes.
#[derive(Debug, Clone, Copy)]
pub struct PeerBytes {
    /// Sender.
    pub from: usize,
    /// Receiver.
    pub to: usize,
    /// Arrival, µs.
    pub at: u64,
    /// Size, bytes.
    pub bytes: usize,
}

impl HarnessLog {
    /// The first delivery of `segment` by `node`.
    pub fn delivery(&self, node: usize, segment: SegmentId) -> Option<&Delivery> {
        self.deliveries
            .iter()
            .find(|d| d.node == node && d.segment == segment)
    }

    /// `node`'s HTTP GETs of the file `file` (the URL's last path segment).
    pub fn http_requests_for(&self, node: usize, file: &str) -> Vec<&HttpRequest> {
        self.http_requests
            .iter()
            .filter(|r| r.node == node && r.url.rsplit('/').next() == Some(file))
            .collect()
    }

    /// The messages of segment bytes `from` sent to `to`.
    pub fn peer_bytes_between(&self, from: usize, to: usize) -> Vec<PeerBytes> {
        self.peer_bytes
            .iter()
            .filter(|b| b.from == from && b.to == to)
            .copied()
            .collect()
    }
}

impl<E> Harness<E> {
    /// Records `event` of `node`'s engine if it is a delivery and logging is on.
    pub(super) fn log_event(&mut self, node: usize, event: &Event) {
        if !self.config.log {
            return;
        }
        if let Event::SegmentReady {
            segment,
            data,
            source,
        } = event
        {
            let at = self.now();
            self.log.deliveries.push(Delivery {
                node,
                segment: *segment,
                data: data.clone(),
                source: *source,
                at,
            });
        }
    }
}
