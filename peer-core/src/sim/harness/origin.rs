//! The HTTP origin: bodies by file name, each response started after a time to first byte and
//! its body sent in chunks through the node's download, one chunk after another.

use bytes::Bytes;

use super::clock::{micros, MILLISECOND};
use super::{Harness, Host, HttpRequest, NetEvent};
use crate::engine::{HttpCommand, HttpHandle, IoEvent};

/// One HTTP response under way.
#[derive(Debug)]
pub(super) struct Flow {
    body: Bytes,
    /// Bytes of `body` sent so far (a range request starts past 0).
    offset: usize,
    /// `HttpStarted` was sent.
    started: bool,
}

impl<E> Harness<E> {
    /// Serves `body` for every URL whose last path segment is `file` (any host, any directory).
    pub fn serve(&mut self, file: impl Into<String>, body: Bytes) {
        self.origin.insert(file.into(), body);
    }

    /// The body served for `file`, if any.
    pub fn served(&self, file: &str) -> Option<&Bytes> {
        self.origin.get(file)
    }

    /// Carries out one HTTP command of `node`'s engine.
    pub(super) fn http(&mut self, node: usize, command: HttpCommand) {
        let now = self.now();
        match command {
            HttpCommand::Get {
                request,
                url,
                range_from,
                ..
            } => {
                let file = url.rsplit('/').next().unwrap_or_default();
                let body = self.origin.get(file).cloned();
                if self.config.log {
                    let at = now;
                    self.log.http_requests.push(HttpRequest {
                        node,
                        url,
                        range_from,
                        at,
                    });
                }
                let Some(body) = body else {
                    let reason = "404".into();
                    let failed = IoEvent::HttpFailed { request, reason };
                    self.push(now + MILLISECOND, NetEvent::Deliver(node, failed));
                    return;
                };
                let offset = usize::try_from(range_from.unwrap_or(0))
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                let flow = Flow {
                    body,
                    offset,
                    started: false,
                };
                self.nodes[node].flows.insert(request, flow);
                let at = now + self.config.http_ttfb;
                self.push(at, NetEvent::HttpNext(node, request));
            }
            HttpCommand::Abort(request) => {
                self.nodes[node].flows.remove(&request);
            }
        }
    }
}

/// The response `request` of `node` goes on: it starts, or completes, or its next chunk is queued
/// on the node's download.
pub(super) fn http_next<E, H: Host<E>>(host: &mut H, node: usize, request: HttpHandle) {
    let Some(flow) = host.harness().nodes[node].flows.get_mut(&request) else {
        return;
    };
    if !flow.started {
        flow.started = true;
        let content_length = Some((flow.body.len() - flow.offset) as u64);
        host.input(
            node,
            IoEvent::HttpStarted {
                request,
                content_length,
            },
        );
    }
    let harness = host.harness();
    let Some(flow) = harness.nodes[node].flows.get(&request) else {
        return;
    };
    let size = flow.body.len();
    let offset = flow.offset;
    if offset >= size {
        harness.nodes[node].flows.remove(&request);
        host.input(node, IoEvent::HttpCompleted(request));
        return;
    }
    let len = harness.config.http_chunk_bytes.min(size - offset);
    let now = harness.now();
    let receiver = &mut harness.nodes[node];
    receiver.down_free = receiver.down_free.max(now) + micros(len as f64 / receiver.net.down_rate);
    let at = receiver.down_free;
    let data = NetEvent::HttpData {
        node,
        request,
        offset,
        len,
    };
    harness.push(at, data);
}

/// A chunk of the response `request` of `node` arrives (unless the request was aborted).
pub(super) fn http_data<E, H: Host<E>>(
    host: &mut H,
    node: usize,
    request: HttpHandle,
    offset: usize,
    len: usize,
) {
    let Some(flow) = host.harness().nodes[node].flows.get_mut(&request) else {
        return;
    };
    let data = flow.body.slice(offset..offset + len);
    flow.offset = offset + len;
    host.input(node, IoEvent::HttpChunk { request, data });
    http_next(host, node, request);
}
