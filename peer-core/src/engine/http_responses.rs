//! HTTP responses coming in: headers, body chunks into the download table, completion, failure.

use super::*;

impl Engine {
    /// The running HTTP transfer on `request`: its segment, base URL index and first byte.
    fn http_transfer(&self, request: HttpHandle) -> Option<(SegmentId, usize, u64)> {
        let seg = self.downloads.by_http(request)?;
        let t = self.downloads.get(seg)?.transfer.as_ref()?;
        match t.source {
            Source::Http(base) => Some((seg, base, t.from_byte)),
            Source::Peer(_) => None,
        }
    }

    pub(super) fn http_started(&mut self, request: HttpHandle, content_length: Option<u64>) {
        if let Some((seg, _, from_byte)) = self.http_transfer(request) {
            self.downloads.truncate(seg, from_byte);
            if let Some(d) = self.downloads.get_mut(seg) {
                d.total = content_length.map(|l| l + from_byte);
            }
        }
    }

    pub(super) fn http_failed(&mut self, request: HttpHandle, reason: &str, now: Instant) {
        if let Some((seg, base, _)) = self.http_transfer(request) {
            tracing::debug!(segment = seg, "HTTP failed: {reason}");
            self.downloads.stop(seg);
            self.scheduler.failed(seg, Source::Http(base), now);
            self.announce_dirty = true;
        }
    }

    pub(super) fn http_chunk(&mut self, request: HttpHandle, data: &[u8], now: Instant) {
        let Some((seg, base, _)) = self.http_transfer(request) else {
            return;
        };
        self.downloads.entry(seg).data.extend_from_slice(data);
        self.downloads.progressed(seg, now);
        self.stats.http_bytes += data.len() as u64;
        *self.stats.http_bytes_by_base.get_or_insert_with(base, || 0) += data.len() as u64;
        self.out.events.push(Event::BytesReceived {
            source: DeliverySource::Http(base),
            bytes: data.len() as u64,
        });
    }

    pub(super) fn http_completed(&mut self, request: HttpHandle, now: Instant) {
        let Some((seg, base, _)) = self.http_transfer(request) else {
            return;
        };
        let complete = self
            .downloads
            .get(seg)
            .is_some_and(|d| d.total.is_none_or(|t| t == d.held()));
        if !complete {
            self.downloads.remove(seg);
            self.scheduler.failed(seg, Source::Http(base), now);
            return;
        }
        self.segment_loaded(seg, None, now);
    }
}
