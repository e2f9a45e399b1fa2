//! The segswarm policy: deadline-aware planning, VOD prefetch, live seeding near the edge.

use super::*;

impl Scheduler {
    fn window_end(&self, now: Instant) -> Instant {
        now + if self.live {
            self.config.live_window
        } else {
            self.config.vod_prefetch_window
        }
    }

    pub(super) fn plan_segswarm(
        &mut self,
        wanted: &[WantedSegment],
        now: Instant,
        pass: &mut Pass,
    ) {
        let margin = self.config.safety_margin.as_secs_f64();
        let latency = self.config.request_latency.as_secs_f64();
        // 1. P2P transfers that can no longer finish in time move to HTTP (resuming).
        for w in wanted {
            let Some(d) = pass.running.get(&w.id).copied() else {
                continue;
            };
            let Source::Peer(peer) = d.source else {
                continue;
            };
            let size = d.total.unwrap_or_else(|| self.size_of(w));
            let left_bytes = size.saturating_sub(d.received);
            let estimate = self
                .peers
                .get(&peer)
                .map(|p| p.rate.get())
                .unwrap_or(self.config.initial_peer_rate);
            // The rate since the first byte, once it spans half a second; the estimate before.
            let measured = match d.first_byte {
                Some((t, b)) if now.saturating_duration_since(t).as_secs_f64() >= 0.5 => {
                    d.received.saturating_sub(b) as f64
                        / now.saturating_duration_since(t).as_secs_f64()
                }
                _ => estimate,
            };
            let eta = left_bytes as f64 / measured.max(1.0);
            let time_left = secs_until(w.deadline, now);
            let stalled =
                now.saturating_duration_since(d.last_progress) > self.config.p2p_stall_timeout;
            let http_eta = self.expected_http_secs(left_bytes, now);
            // Predicted to finish later than half the safety margin before the deadline, and HTTP
            // would be faster for the bytes left.
            let too_slow = eta > time_left - margin * 0.5 && http_eta < eta;
            if stalled || too_slow {
                let from_byte = d.received;
                let (http_running, _) = pass.counts();
                if http_running >= self.config.max_http_downloads
                    && !self.preempt_http(wanted, w, now, pass)
                {
                    if stalled {
                        // No HTTP slot: drop the stalled transfer, retry later.
                        self.fail_in_pass(pass, w.id, now);
                    }
                    continue;
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    let slow = if stalled {
                        p.rate.get() * 0.25
                    } else {
                        measured
                    };
                    p.rate.add(slow, self.config.ewma_alpha);
                }
                self.switch_to_http(pass, w.id, peer, from_byte, Some(size), now);
            }
        }

        // 2. New downloads, earliest deadline first. Live: only the newest segments (the live edge)
        // are fetched early over HTTP to seed the swarm; older ones come from peers.
        let window_end = self.window_end(now);
        let order: Vec<&WantedSegment> = wanted
            .iter()
            .filter(|w| w.deadline <= window_end || w.player_requested)
            .collect();
        let live_edge = wanted.iter().map(|w| w.id).max().unwrap_or(0)
            - self.config.live_edge_segments as SegmentId
            + 1;
        let awaiting_announce = self.awaiting_first_announce(now);
        for w in order {
            if pass.running.contains_key(&w.id) {
                continue;
            }
            let size = self.size_of(w);
            let time_left = secs_until(w.deadline, now);
            let http_eta = self.expected_http_secs(size, now);
            let slack = time_left - http_eta - margin;
            let (http_running, p2p_running) = pass.counts();
            if slack <= 0.0 {
                if http_running < self.config.max_http_downloads
                    || self.preempt_http(wanted, w, now, pass)
                {
                    self.start_http(pass, w.id, 0, now);
                }
                continue;
            }
            // A peer that can deliver within the slack.
            if p2p_running < self.config.max_p2p_downloads {
                // Any holder fast enough to finish half the safety margin before the deadline (a
                // late transfer moves to HTTP keeping its bytes), picked at random so that requesters
                // spread over the holders instead of queueing at the fastest one. Without one, a
                // peer still loading the segment relays it.
                let fits = |(_, rate): &(PeerHandle, f64)| {
                    latency + size as f64 / rate.max(1.0) <= time_left - margin * 0.5
                };
                let mut fit: Vec<PeerHandle> = self
                    .free_holders(pass, w.id, now)
                    .into_iter()
                    .filter(fits)
                    .map(|(p, _)| p)
                    .collect();
                if fit.is_empty() && self.config.request_from_loading {
                    fit = self
                        .free_loading_holders(pass, w.id, now)
                        .into_iter()
                        .filter(fits)
                        .map(|(p, _)| p)
                        .collect();
                }
                if !fit.is_empty() {
                    let peer = fit[self.rng.random_range(0..fit.len())];
                    Self::start_p2p(pass, w.id, peer, now);
                    continue;
                }
            }
            // Early HTTP: live, the newest segments (a few peers seed them); VOD, a segment due
            // within the lead time. Cheap tests first: this loop runs on every plan.
            let early = if self.live {
                w.id >= live_edge
            } else {
                time_left <= self.config.vod_http_lead.as_secs_f64()
                    && !self.vod_waits_for_peers(now)
                    && {
                        let rng = &mut self.rng;
                        let draw = *self.seed_decisions.get_or_insert_with(w.id, || SeedDraw {
                            u: rng.random::<f64>(),
                            first_seen: now,
                            slack,
                        });
                        let lead = self.config.vod_http_lead.as_secs_f64();
                        time_left <= lead * (1.0 - self.config.vod_seed_spread * draw.u)
                    }
            };
            if !early || http_running >= self.config.max_http_downloads || awaiting_announce {
                continue;
            }
            if self.someone_loading_or_has(w.id) {
                continue; // it will come from a peer, or from HTTP once urgent
            }
            let fetch_now = if self.live {
                let p = self.seed_probability(size, time_left, now);
                let rng = &mut self.rng;
                let draw = *self.seed_decisions.get_or_insert_with(w.id, || SeedDraw {
                    u: rng.random::<f64>(),
                    first_seen: now,
                    slack,
                });
                let spread = self.config.live_seed_spread * draw.slack.max(0.0) * draw.u;
                draw.u < p
                    || (self.config.live_seed_spread > 0.0
                        && now.saturating_duration_since(draw.first_seen).as_secs_f64() >= spread)
            } else {
                true
            };
            if fetch_now {
                self.start_http(pass, w.id, 0, now);
            }
        }
    }

    /// Probability that this peer fetches a new live segment over HTTP right away (see
    /// [`SchedulerConfig::live_http_seeds`]).
    fn seed_probability(&self, size: u64, time_left: f64, now: Instant) -> f64 {
        let n = self.peers.len();
        if n == 0 {
            return 1.0;
        }
        let budget = time_left
            - self.expected_http_secs(size, now)
            - self.config.safety_margin.as_secs_f64();
        let mean_rate = self.peers.values().map(|p| p.rate.get()).sum::<f64>() / n as f64;
        let transfer = self.config.request_latency.as_secs_f64() + size as f64 / mean_rate.max(1.0);
        let doublings = (budget / (transfer * self.config.live_doubling_factor))
            .floor()
            .clamp(0.0, 30.0);
        let tree = self.config.live_http_seeds / 2f64.powf(doublings);
        let swarm = self.swarm_size.unwrap_or(n + 1).max(n + 1) as f64;
        let floor = self.config.live_min_seeds / swarm;
        tree.max(floor).min(1.0)
    }

    /// No connected peer has announced what it holds yet, and one connected within
    /// [`SchedulerConfig::first_announce_wait`].
    fn awaiting_first_announce(&self, now: Instant) -> bool {
        let wait = self.config.first_announce_wait;
        let mut recent = false;
        for p in self.peers.values() {
            match p.awaiting_announce_since {
                None => return false,
                Some(t) => recent |= now < t + wait,
            }
        }
        recent
    }

    /// VOD: no peer yet, the tracker did not report us alone, and the swarm is young (see
    /// [`SchedulerConfig::vod_peer_wait`]).
    fn vod_waits_for_peers(&self, now: Instant) -> bool {
        self.peers.is_empty()
            && self.swarm_size.is_none_or(|n| n > 1)
            && self
                .first_plan
                .is_some_and(|t| now < t + self.config.vod_peer_wait)
    }

    fn is_urgent(&self, w: &WantedSegment, now: Instant, margin: f64) -> bool {
        secs_until(w.deadline, now) - self.expected_http_secs(self.size_of(w), now) - margin <= 0.0
    }

    /// Frees an HTTP slot for `urgent` by aborting the HTTP download of a later, non-urgent segment.
    fn preempt_http(
        &mut self,
        wanted: &[WantedSegment],
        urgent: &WantedSegment,
        now: Instant,
        pass: &mut Pass,
    ) -> bool {
        let margin = self.config.safety_margin.as_secs_f64();
        let victim = wanted
            .iter()
            .rev()
            .filter(|w| w.deadline > urgent.deadline && !self.is_urgent(w, now, margin))
            .find(|w| pass.is_http(w.id))
            .map(|w| w.id);
        if let Some(v) = victim {
            pass.abort(v);
            true
        } else {
            false
        }
    }
}
