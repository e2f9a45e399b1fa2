//! Serving segments to peers: the upload queue, cut-through relays, the upload budget.

use super::*;

/// What an upload can do next (see [`Engine::upload_step`]).
enum UploadStep {
    /// Send `SegmentData` announcing this many bytes.
    Header(usize),
    /// Send these segment bytes (or, when empty, the transfer is complete).
    Bytes(Bytes),
    /// Wait for more bytes of a segment still downloading.
    Wait,
    /// The relayed segment is gone (download failed, bad hash): answer `SegmentAbsent`.
    Absent,
}

impl Engine {
    pub(super) fn upload_request(
        &mut self,
        peer: PeerHandle,
        segment: SegmentId,
        request: RequestId,
        byte_from: Option<u64>,
        now: Instant,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // Requests in a row for one segment we are sending or sent to this peer: each would queue
        // the whole segment again. (Requests we answered `SegmentAbsent` do not count.)
        let repeats = match p.asked.take() {
            Some((s, n)) if s == segment => n.saturating_add(1),
            _ => 1,
        };
        if repeats > 1 {
            self.stats.upload_requests_repeated += 1;
            if repeats > self.config.max_repeated_requests.saturating_add(1) {
                if let Some(id) = p.remote_id {
                    self.banned.insert(id);
                }
                self.stats.peers_banned += 1;
                self.stats.peers_banned_repeats += 1;
                self.violation(peer, "repeated requests for one segment", now);
                return;
            }
            // The segment is being sent to it now: the new request adds nothing.
            if p.upload
                .as_ref()
                .is_some_and(|u| u.segment == segment && u.queued.is_none())
            {
                p.asked = Some((segment, repeats));
                return;
            }
        }
        // One upload per peer: a new request replaces the previous one.
        p.upload = None;
        let refuse = self.config.consume_only || self.p2p_refused();
        let stored = if refuse {
            None
        } else {
            self.store.peek(STREAM, segment)
        };
        let relay =
            stored.is_none() && !refuse && self.config.relay_partial && self.relayable(segment);
        if stored.is_none() && !relay {
            self.send_command(peer, &Command::SegmentAbsent { segment, request });
            return;
        }
        let from = usize::try_from(byte_from.unwrap_or(0)).unwrap_or(usize::MAX);
        let size = match &stored {
            Some(d) => Some(d.len().saturating_sub(from)),
            None => self
                .downloads
                .get(segment)
                .and_then(|d| d.total)
                .and_then(|t| usize::try_from(t).ok())
                .map(|t| t.saturating_sub(from)),
        };
        let active = self
            .peers
            .values()
            .filter(|p| p.upload.as_ref().is_some_and(|u| u.queued.is_none()))
            .count();
        let queued = if active < self.config.max_concurrent_uploads {
            None
        } else if self.may_queue(size) {
            self.next_queue_seq += 1;
            self.stats.upload_requests_queued += 1;
            Some(self.next_queue_seq)
        } else {
            self.stats.upload_requests_refused += 1;
            self.send_command(peer, &Command::SegmentAbsent { segment, request });
            return;
        };
        let data = stored.map(|d| d.slice(from.min(d.len())..));
        let generation = match data {
            Some(_) => None,
            None => self.downloads.get(segment).map(|d| d.generation),
        };
        if let Some(p) = self.peers.get_mut(&peer) {
            p.asked = Some((segment, repeats));
            p.upload = Some(Upload {
                segment,
                request,
                from,
                offset: 0,
                size: data.as_ref().map(Bytes::len),
                data,
                header_sent: false,
                queued,
                generation,
            });
        }
    }

    /// Whether a request for `size` bytes (when known) may wait in the upload queue (see
    /// [`EngineConfig::max_queued_uploads`] and [`EngineConfig::max_upload_queue_wait`]).
    fn may_queue(&self, size: Option<usize>) -> bool {
        let uploads = || self.peers.values().filter_map(|p| p.upload.as_ref());
        let waiting = uploads().filter(|u| u.queued.is_some()).count();
        if waiting >= self.config.max_queued_uploads {
            return false;
        }
        let Some(rate) = self.config.upload_rate else {
            return true;
        };
        // Bytes that go out before this request's first byte; unknown sizes count as this one's.
        let guess = size.unwrap_or(0);
        let ahead: usize = uploads()
            .map(|u| u.size.unwrap_or(guess).saturating_sub(u.offset))
            .sum();
        let slots = self.config.max_concurrent_uploads.max(1) as f64;
        let wait = ahead as f64 / slots / rate.max(1) as f64;
        wait <= self.config.max_upload_queue_wait.as_secs_f64()
    }

    /// Moves the oldest queued requests into free upload slots.
    fn start_queued_uploads(&mut self) {
        loop {
            let active = self
                .peers
                .values()
                .filter(|p| p.upload.as_ref().is_some_and(|u| u.queued.is_none()))
                .count();
            if active >= self.config.max_concurrent_uploads {
                return;
            }
            let next = self
                .peers
                .values_mut()
                .filter_map(|p| p.upload.as_mut())
                .filter(|u| u.queued.is_some())
                .min_by_key(|u| u.queued);
            match next {
                Some(u) => u.queued = None,
                None => return,
            }
        }
    }

    /// Whether `segment` is downloading now with bytes to relay (see
    /// [`EngineConfig::relay_partial`]).
    fn relayable(&self, segment: SegmentId) -> bool {
        // A peer transfer counts once the peer answered (its size is known) or bytes are held:
        // requests are not chained onto a holder that may still refuse.
        self.downloads.get(segment).is_some_and(|d| {
            d.transfer.is_some_and(|t| {
                matches!(t.source, Source::Http(_)) || d.total.is_some() || !d.data.is_empty()
            })
        }) && self.hash_known(segment)
    }

    /// The next step of the upload to `peer` (at most `max` bytes), without side effects other
    /// than noting the segment's size and switching a relay to the stored segment once complete.
    fn upload_step(&mut self, peer: PeerHandle, max: usize) -> Option<UploadStep> {
        let relayable = self
            .peers
            .get(&peer)
            .and_then(|p| p.upload.as_ref())
            .map(|u| u.data.is_none() && self.relayable(u.segment))?;
        let p = self.peers.get_mut(&peer)?;
        let u = p.upload.as_mut()?;
        if u.data.is_none() {
            if let Some(stored) = self.store.peek(STREAM, u.segment) {
                if u.from > stored.len() || u.size.is_some_and(|s| s != stored.len() - u.from) {
                    return Some(UploadStep::Absent);
                }
                u.size = Some(stored.len() - u.from);
                u.data = Some(stored.slice(u.from..));
            } else if !relayable {
                return Some(UploadStep::Absent);
            }
        }
        // Bytes of the segment (from `from`) that may go out now.
        let (available, partial) = match &u.data {
            Some(d) => (d.len(), None),
            None => {
                let Some(part) = self.downloads.get(u.segment) else {
                    return Some(UploadStep::Absent);
                };
                if u.generation != Some(part.generation) {
                    // The bytes it relayed were dropped: going on would splice two sources.
                    return Some(UploadStep::Absent);
                }
                let Some(total) = part.total.and_then(|t| usize::try_from(t).ok()) else {
                    return Some(UploadStep::Wait);
                };
                if u.from >= total || u.size.is_some_and(|s| s != total - u.from) {
                    return Some(UploadStep::Absent);
                }
                u.size = Some(total - u.from);
                // Hold the last byte back until the segment is verified and stored.
                let upto = part.data.len().min(total - 1);
                (upto.saturating_sub(u.from), Some(part))
            }
        };
        if !u.header_sent {
            return Some(match u.size {
                Some(size) => UploadStep::Header(size),
                None => UploadStep::Wait,
            });
        }
        let n = available.saturating_sub(u.offset).min(max);
        if n == 0 {
            return Some(if u.data.is_some() {
                UploadStep::Bytes(Bytes::new())
            } else {
                UploadStep::Wait
            });
        }
        let start = u.offset;
        Some(UploadStep::Bytes(match (&u.data, partial) {
            (Some(d), _) => d.slice(start..start + n),
            (None, Some(part)) => {
                Bytes::copy_from_slice(&part.data[u.from + start..u.from + start + n])
            }
            (None, None) => return Some(UploadStep::Wait),
        }))
    }

    /// Ends relays of `segment` (its bytes turned out bad) with `SegmentAbsent`.
    pub(super) fn abort_relays(&mut self, segment: SegmentId) {
        self.end_relays(segment, None);
    }

    /// Ends relays of `segment` with `SegmentAbsent`, except those reading generation `keep`.
    pub(super) fn end_relays(&mut self, segment: SegmentId, keep: Option<u64>) {
        let relays: Vec<(PeerHandle, RequestId)> = self
            .peers
            .iter_mut()
            .filter_map(|(h, p)| {
                let u = p.upload.take_if(|u| {
                    u.segment == segment
                        && u.data.is_none()
                        && (keep.is_none() || u.generation != keep)
                })?;
                p.asked = None;
                Some((*h, u.request))
            })
            .collect();
        for (h, request) in relays {
            self.send_command(h, &Command::SegmentAbsent { segment, request });
        }
    }

    pub(super) fn pump_uploads(&mut self, now: Instant) {
        loop {
            self.start_queued_uploads();
            let order: Vec<PeerHandle> = self
                .peers
                .iter()
                .filter(|(_, p)| p.upload.as_ref().is_some_and(|u| u.queued.is_none()))
                .map(|(h, _)| *h)
                .collect();
            if order.is_empty() {
                return;
            }
            // Round robin, starting after the last peer served.
            let start = self
                .upload_cursor
                .and_then(|c| order.iter().position(|h| *h > c))
                .unwrap_or(0);
            let mut progressed = false;
            let mut blocked = false;
            for i in 0..order.len() {
                let h = order[(start + i) % order.len()];
                let max = self.config.max_message_bytes;
                let Some(step) = self.upload_step(h, max) else {
                    continue;
                };
                let Some(u) = self.peers.get_mut(&h).and_then(|p| p.upload.as_mut()) else {
                    continue;
                };
                let (seg, req) = (u.segment, u.request);
                match step {
                    UploadStep::Wait => continue,
                    UploadStep::Absent => {
                        if let Some(p) = self.peers.get_mut(&h) {
                            p.upload = None;
                            p.asked = None;
                        }
                        self.send_command(
                            h,
                            &Command::SegmentAbsent {
                                segment: seg,
                                request: req,
                            },
                        );
                    }
                    UploadStep::Header(size) => {
                        // `SegmentData` goes out at once; the budget paces the bytes.
                        u.header_sent = true;
                        self.send_command(
                            h,
                            &Command::SegmentData {
                                segment: seg,
                                request: req,
                                size: size as u64,
                            },
                        );
                    }
                    UploadStep::Bytes(chunk) => {
                        let n = chunk.len();
                        // Out of budget: headers and endings of other uploads still go out.
                        if n > 0 && (blocked || !self.budget.try_take(n, now)) {
                            blocked = true;
                            continue;
                        }
                        u.offset += n;
                        let finished = u.data.is_some() && u.size.is_some_and(|s| u.offset >= s);
                        if finished {
                            if let Some(p) = self.peers.get_mut(&h) {
                                p.upload = None;
                            }
                        }
                        if n > 0 {
                            self.stats.uploaded_bytes += n as u64;
                            self.out.transmits.push(Transmit::Peer {
                                peer: h,
                                data: chunk,
                                segment_bytes: true,
                            });
                            self.out.events.push(Event::BytesSent {
                                peer: h,
                                bytes: n as u64,
                            });
                        }
                        if finished {
                            self.send_command(
                                h,
                                &Command::SegmentDataSendingCompleted {
                                    segment: seg,
                                    request: req,
                                },
                            );
                        }
                    }
                }
                progressed = true;
                self.upload_cursor = Some(h);
            }
            if !progressed || blocked {
                return;
            }
        }
    }

    /// Bytes the next upload message will carry (0: a command can go now), if any upload can move.
    pub(super) fn next_upload_bytes(&self) -> Option<usize> {
        let max = self.config.max_message_bytes;
        self.peers
            .values()
            .filter_map(|p| p.upload.as_ref())
            .filter(|u| u.queued.is_none())
            .filter_map(|u| {
                let available = match &u.data {
                    Some(d) => d.len(),
                    None => {
                        let part = self.downloads.get(u.segment)?;
                        let total = usize::try_from(part.total?).ok()?;
                        part.data
                            .len()
                            .min(total.saturating_sub(1))
                            .saturating_sub(u.from)
                    }
                };
                if !u.header_sent {
                    return u.size.map(|_| 0);
                }
                match available.saturating_sub(u.offset).min(max) {
                    0 if u.data.is_some() => Some(0),
                    0 => None,
                    n => Some(n),
                }
            })
            .min()
    }
}
