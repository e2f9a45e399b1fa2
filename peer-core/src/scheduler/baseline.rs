//! The p2p-media-loader v2 baseline: its default scheduling, for comparison.

use super::*;

impl Scheduler {
    pub(super) fn plan_baseline(
        &mut self,
        wanted: &[WantedSegment],
        now: Instant,
        pass: &mut Pass,
    ) {
        let high = self.config.baseline_high_demand_window;
        let http_window = self.config.baseline_http_window;
        let p2p_window = self.config.baseline_p2p_window;
        // P2P "no bytes" timeout.
        let timeout = self.config.p2p_stall_timeout;
        self.abort_silent(pass, now, timeout, |s| matches!(s, Source::Peer(_)));
        // The player's request gets no special treatment (p2p-media-loader starts it at once only
        // after a seek); the queue below covers it.
        for (i, w) in wanted.iter().enumerate() {
            let ahead = w.deadline.saturating_duration_since(now);
            let in_high = ahead <= high;
            if in_high {
                match pass.running.get(&w.id).map(|d| (d.source, d.received)) {
                    Some((Source::Peer(peer), received)) => {
                        let (h, _) = pass.counts();
                        if h < self.config.max_http_downloads
                            || Self::abort_last_after(pass, wanted, i, true)
                        {
                            self.switch_to_http(pass, w.id, peer, received, None, now);
                        }
                    }
                    Some((Source::Http(_), _)) => {}
                    None => {
                        let (h, _) = pass.counts();
                        if h < self.config.max_http_downloads
                            || Self::abort_last_after(pass, wanted, i, true)
                        {
                            self.start_http(pass, w.id, 0, now);
                            continue;
                        }
                        let (_, p) = pass.counts();
                        if self.someone_has(w.id)
                            && (p < self.config.max_p2p_downloads
                                || Self::abort_last_after(pass, wanted, i, false))
                        {
                            if let Some(peer) = self.pick_weighted_holder(pass, w.id, now) {
                                Self::start_p2p(pass, w.id, peer, now);
                            }
                        }
                    }
                }
            } else if ahead <= p2p_window
                && !pass.running.contains_key(&w.id)
                && self.someone_loading_or_has(w.id)
            {
                let (_, p) = pass.counts();
                if p < self.config.max_p2p_downloads {
                    if let Some(peer) = self.pick_weighted_holder(pass, w.id, now) {
                        Self::start_p2p(pass, w.id, peer, now);
                    }
                }
            }
        }
        // Random HTTP downloads on a timer, only while peers are connected.
        let interval = self.config.baseline_random_http_interval.as_secs_f64();
        match self.next_random_http {
            None => {
                let n = self.peers.len() as f64;
                let wait = self.rng.random::<f64>() * interval * n + interval;
                self.next_random_http = Some(now + Duration::from_secs_f64(wait));
            }
            Some(t) if t <= now => {
                self.random_http(wanted, now, http_window, pass);
                let n = self.peers.len() as f64;
                let wait = self.rng.random::<f64>() * interval * n + interval;
                self.next_random_http = Some(now + Duration::from_secs_f64(wait));
            }
            Some(_) => {}
        }
    }

    fn random_http(
        &mut self,
        wanted: &[WantedSegment],
        now: Instant,
        http_window: Duration,
        pass: &mut Pass,
    ) {
        let max_http = self.config.max_http_downloads;
        if self.peers.is_empty() || pass.counts().0 >= max_http {
            return;
        }
        let candidates: Vec<SegmentId> = wanted
            .iter()
            .filter(|w| w.deadline.saturating_duration_since(now) <= http_window)
            .filter(|w| !self.someone_loading_or_has(w.id) && !pass.running.contains_key(&w.id))
            .map(|w| w.id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let peers_count = self.peers.len() + 1;
        let count = candidates.len().min(max_http * peers_count);
        let mut idx: Vec<usize> = (0..count).collect();
        // Fisher-Yates shuffle with our seeded generator.
        for i in (1..idx.len()).rev() {
            let j = self.rng.random_range(0..=i);
            idx.swap(i, j);
        }
        let mut probability = count as f64 / peers_count as f64;
        for i in idx {
            if pass.counts().0 >= max_http {
                break;
            }
            if probability >= 1.0 || self.rng.random::<f64>() <= probability {
                self.start_http(pass, candidates[i], 0, now);
            }
            probability -= 1.0;
            if probability <= 0.0 {
                break;
            }
        }
    }

    /// Baseline peer choice: weighted random by measured download bandwidth, unproven peers at a
    /// tenth of the best (as p2p-media-loader's `downloadSegment`).
    fn pick_weighted_holder(
        &mut self,
        pass: &Pass,
        segment: SegmentId,
        now: Instant,
    ) -> Option<PeerHandle> {
        let holders = self.free_holders(pass, segment, now);
        if holders.is_empty() {
            return None;
        }
        if holders.len() == 1 {
            return Some(holders[0].0);
        }
        let measured: Vec<(PeerHandle, f64)> = holders
            .iter()
            .map(|(h, _)| {
                let p = &self.peers[h];
                (
                    *h,
                    if p.rate.samples() > 0 {
                        p.rate.get()
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        let max = measured.iter().map(|m| m.1).fold(0.0, f64::max);
        if max <= 0.0 {
            let i = self.rng.random_range(0..measured.len());
            return Some(measured[i].0);
        }
        let base = (max * 0.1).max(1.0);
        let unproven = measured.iter().filter(|m| m.1 <= base).count() as f64;
        let proven: f64 = measured.iter().filter(|m| m.1 > base).map(|m| m.1).sum();
        let adjusted = if unproven > 0.0 && proven > 0.0 && unproven * base > proven {
            proven / unproven
        } else {
            base
        };
        let weights: Vec<f64> = measured.iter().map(|m| m.1.max(adjusted)).collect();
        let total: f64 = weights.iter().sum();
        let mut x = self.rng.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Some(measured[i].0);
            }
            x -= w;
        }
        measured.last().map(|m| m.0)
    }

    /// Baseline: abort the last download of the given kind queued after position `i`.
    fn abort_last_after(pass: &mut Pass, wanted: &[WantedSegment], i: usize, http: bool) -> bool {
        let victim = wanted[i + 1..]
            .iter()
            .rev()
            .find(|w| match pass.running.get(&w.id) {
                Some(d) => matches!(d.source, Source::Http(_)) == http,
                None => false,
            })
            .map(|w| w.id);
        if let Some(v) = victim {
            pass.abort(v);
            true
        } else {
            false
        }
    }
}
