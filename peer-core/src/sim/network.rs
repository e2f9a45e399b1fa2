//! The network model: peer links with upload and download FIFOs, the engine's commands and
//! transmits carried out, HTTP responses.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    pub(super) other: usize,
    pub(super) other_handle: PeerHandle,
    pub(super) connected: bool,
    /// Arrival time of the last message sent over this link (keeps messages in order).
    last_arrival: u64,
}

#[derive(Debug)]
pub(super) struct Flow {
    pub(super) segment: SegmentId,
    pub(super) offset: usize,
    started: bool,
}

impl Simulation {
    fn parse_sdp(sdp: &str) -> Option<(usize, PeerHandle)> {
        let mut it = sdp.split(':').skip(1);
        let v = it.next()?.parse().ok()?;
        let h = it.next()?.parse().ok()?;
        Some((v, PeerHandle(h)))
    }

    pub(super) fn transmit(&mut self, v: usize, t: Transmit) {
        let now = self.now;
        match t {
            Transmit::Tracker(text) => {
                let t = now + 20_000;
                self.push(t, Ev::TrackerIn(v, text));
            }
            Transmit::Peer {
                peer,
                data,
                segment_bytes,
            } => {
                let Some(l) = self.viewers[v].links.get(&peer).copied() else {
                    return;
                };
                if !l.connected {
                    return;
                }
                let w = l.other;
                let cost = if segment_bytes {
                    data.len() as f64
                } else {
                    0.0
                };
                let up = &mut self.viewers[v];
                let depart = up.up_free.max(now) + us(cost / up.up_rate);
                up.up_free = depart;
                let lat = up.latency_us + self.viewers[w].latency_us;
                // The download side is not a shared queue for peer messages (it is much faster than
                // the uploads feeding it); messages of one link keep their order.
                let mut arrive = depart + lat + us(cost / self.viewers[w].down_rate);
                if let Some(link) = self.viewers[v].links.get_mut(&peer) {
                    arrive = arrive.max(link.last_arrival);
                    link.last_arrival = arrive;
                }
                self.push(
                    arrive,
                    Ev::Deliver(
                        w,
                        IoEvent::PeerMessage {
                            peer: l.other_handle,
                            data,
                        },
                    ),
                );
            }
        }
    }

    pub(super) fn rtc(&mut self, v: usize, c: RtcCommand) {
        let now = self.now;
        match c {
            RtcCommand::CreateOffers(handles) => {
                for peer in handles {
                    let sdp = Some(format!("o:{v}:{}", peer.0));
                    self.push(
                        now + 5_000,
                        Ev::Deliver(v, IoEvent::OfferCreated { peer, sdp }),
                    );
                }
            }
            RtcCommand::CreateAnswer { peer, offer_sdp } => {
                let Some((o, oh)) = Self::parse_sdp(&offer_sdp) else {
                    return;
                };
                if o >= self.viewers.len() || !self.alive(o) {
                    self.push(now + 5_000_000, Ev::AnswerTimeout(v, peer));
                    self.viewers[v].links.insert(
                        peer,
                        Link {
                            other: o,
                            other_handle: oh,
                            connected: false,
                            last_arrival: 0,
                        },
                    );
                    return;
                }
                self.viewers[v].links.insert(
                    peer,
                    Link {
                        other: o,
                        other_handle: oh,
                        connected: false,
                        last_arrival: 0,
                    },
                );
                self.viewers[o].links.insert(
                    oh,
                    Link {
                        other: v,
                        other_handle: peer,
                        connected: false,
                        last_arrival: 0,
                    },
                );
                self.push(
                    now + 5_000,
                    Ev::Deliver(
                        v,
                        IoEvent::AnswerCreated {
                            peer,
                            sdp: format!("a:{v}:{}", peer.0),
                        },
                    ),
                );
                self.push(now + 30_000_000, Ev::AnswerTimeout(v, peer));
            }
            RtcCommand::AcceptAnswer { peer, answer_sdp } => {
                let Some((a, ah)) = Self::parse_sdp(&answer_sdp) else {
                    return;
                };
                let ok_link = self.viewers[v]
                    .links
                    .get(&peer)
                    .is_some_and(|l| l.other == a && l.other_handle == ah);
                if !ok_link || !self.alive(a) {
                    self.viewers[v].links.remove(&peer);
                    self.push(now + 1_000_000, Ev::Deliver(v, IoEvent::PeerClosed(peer)));
                    return;
                }
                let rtt = self.viewers[v].latency_us + self.viewers[a].latency_us;
                if self.viewers[v].unreachable && self.viewers[a].unreachable {
                    self.viewers[v].links.remove(&peer);
                    self.viewers[a].links.remove(&ah);
                    self.push(now + 5_000_000, Ev::Deliver(v, IoEvent::PeerClosed(peer)));
                    self.push(now + 5_000_000, Ev::Deliver(a, IoEvent::PeerClosed(ah)));
                    return;
                }
                for (x, hx) in [(v, peer), (a, ah)] {
                    if let Some(l) = self.viewers[x].links.get_mut(&hx) {
                        l.connected = true;
                    }
                }
                let t = now + rtt * 3;
                self.push(t, Ev::Deliver(v, IoEvent::PeerConnected(peer)));
                self.push(t, Ev::Deliver(a, IoEvent::PeerConnected(ah)));
            }
            RtcCommand::Close(h) => {
                if let Some(l) = self.viewers[v].links.remove(&h) {
                    if self.viewers[l.other]
                        .links
                        .remove(&l.other_handle)
                        .is_some()
                    {
                        let t = now + self.viewers[v].latency_us + self.viewers[l.other].latency_us;
                        self.push(t, Ev::Deliver(l.other, IoEvent::PeerClosed(l.other_handle)));
                    }
                }
            }
        }
    }

    pub(super) fn http(&mut self, v: usize, c: HttpCommand) {
        let now = self.now;
        match c {
            HttpCommand::Get {
                request,
                url,
                range_from,
                ..
            } => {
                let id: Option<SegmentId> = url
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.strip_suffix(".ts"))
                    .and_then(|n| n.parse().ok());
                let Some(id) = id else {
                    self.push(
                        now + 1000,
                        Ev::Deliver(
                            v,
                            IoEvent::HttpFailed {
                                request,
                                reason: "404".into(),
                            },
                        ),
                    );
                    return;
                };
                let offset = (range_from.unwrap_or(0) as usize).min(self.segment_bytes);
                self.viewers[v].flows.insert(
                    request,
                    Flow {
                        segment: id,
                        offset,
                        started: false,
                    },
                );
                let t = now + us(self.cfg.http_ttfb_ms / 1000.0);
                self.push(t, Ev::HttpNext(v, request));
            }
            HttpCommand::Abort(h) => {
                self.viewers[v].flows.remove(&h);
            }
        }
    }

    pub(super) fn event(&mut self, v: usize, e: Event) {
        match e {
            Event::SegmentReady { segment, .. } => self.player_segment(v, segment, true),
            Event::SegmentFailed { segment, .. } => self.player_segment(v, segment, false),
            _ => {}
        }
    }

    pub(super) fn http_next(&mut self, v: usize, h: HttpHandle) {
        let size = self.segment_bytes;
        let Some(flow) = self.viewers[v].flows.get_mut(&h) else {
            return;
        };
        if !flow.started {
            flow.started = true;
            let len = (size - flow.offset) as u64;
            self.input(
                v,
                IoEvent::HttpStarted {
                    request: h,
                    content_length: Some(len),
                },
            );
        }
        let Some(flow) = self.viewers[v].flows.get(&h) else {
            return;
        };
        if flow.offset >= size {
            self.viewers[v].flows.remove(&h);
            self.input(v, IoEvent::HttpCompleted(h));
            return;
        }
        let offset = flow.offset;
        let len = self.chunk.min(size - offset);
        let viewer = &mut self.viewers[v];
        viewer.down_free = viewer.down_free.max(self.now) + us(len as f64 / viewer.down_rate);
        let t = viewer.down_free;
        self.push(t, Ev::HttpData(v, h, offset, len));
    }
}
