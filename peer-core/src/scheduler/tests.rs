//! Unit tests of the scheduler's policies and limits.

use super::*;
use crate::download_table::{DownloadTable, Request};
use crate::engine::HttpHandle;
use crate::wire::RequestId;
use std::collections::BTreeSet;

/// A scheduler with the download table the engine would keep: planned actions are applied to it.
struct Harness {
    s: Scheduler,
    table: DownloadTable,
    next_request: RequestId,
}

impl std::ops::Deref for Harness {
    type Target = Scheduler;
    fn deref(&self) -> &Scheduler {
        &self.s
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Scheduler {
        &mut self.s
    }
}

impl Harness {
    fn new(s: Scheduler) -> Self {
        Self {
            s,
            table: DownloadTable::new(),
            next_request: 0,
        }
    }

    fn plan(&mut self, wanted: &[WantedSegment], now: Instant) -> Vec<Action> {
        let view = PlanView {
            wanted,
            downloads: &self.table,
        };
        let actions = self.s.plan(&view, now);
        for a in &actions {
            self.next_request += 1;
            match *a {
                Action::StartHttp {
                    segment,
                    base,
                    from_byte,
                }
                | Action::SwitchToHttp {
                    segment,
                    base,
                    from_byte,
                    ..
                } => {
                    let request = Request::Http(HttpHandle(self.next_request.unsigned_abs()));
                    self.table
                        .start(segment, Source::Http(base), request, from_byte, now);
                }
                Action::StartP2p { segment, peer } => {
                    let request = Request::Peer {
                        id: self.next_request,
                        expected: None,
                        received: 0,
                    };
                    let held = self.table.get(segment).map_or(0, |d| d.held());
                    self.table
                        .start(segment, Source::Peer(peer), request, held, now);
                }
                Action::Abort { segment } => {
                    self.table.remove(segment);
                }
            }
        }
        actions
    }

    /// `segment`'s download holds `held` bytes of `total` at `now`.
    fn progress(&mut self, segment: SegmentId, held: u64, total: Option<u64>, now: Instant) {
        let d = self.table.entry(segment);
        d.data.resize(held as usize, 0);
        d.total = total;
        self.table.progressed(segment, now);
    }

    fn completed(&mut self, segment: SegmentId, now: Instant) {
        if let Some(d) = self.table.remove(segment) {
            if let Some(t) = d.transfer {
                self.s.completed(segment, &t, d.held(), now);
            }
        }
    }

    fn failed(&mut self, segment: SegmentId, now: Instant) {
        if let Some(d) = self.table.remove(segment) {
            if let Some(t) = d.transfer {
                self.s.failed(segment, t.source, now);
            }
        }
    }

    /// Running downloads from HTTP and from peers.
    fn running(&self) -> (usize, usize) {
        let http = self.table.loading(true).len();
        (http, self.table.loading(false).len() - http)
    }

    fn download_source(&self, segment: SegmentId) -> Option<Source> {
        self.table
            .get(segment)
            .and_then(|d| d.transfer)
            .map(|t| t.source)
    }
}

fn seg(id: SegmentId, now: Instant, secs: f64, size: u64) -> WantedSegment {
    WantedSegment {
        id,
        deadline: now + Duration::from_secs_f64(secs),
        size_hint: Some(size),
        player_requested: false,
    }
}

#[test]
fn urgent_segment_goes_to_http_even_when_a_peer_has_it() {
    let now = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, false, 1));
    s.add_peer(PeerHandle(1), now);
    s.announce(PeerHandle(1), &[5], &[]);
    let a = s.plan(&[seg(5, now, 2.0, 500_000)], now);
    assert_eq!(
        a,
        vec![Action::StartHttp {
            segment: 5,
            base: 0,
            from_byte: 0
        }]
    );
}

#[test]
fn distant_segment_comes_from_the_peer_that_has_it() {
    let now = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, false, 1));
    s.add_peer(PeerHandle(1), now);
    s.add_peer(PeerHandle(2), now);
    s.announce(PeerHandle(2), &[5], &[]);
    let a = s.plan(&[seg(5, now, 30.0, 500_000)], now);
    assert_eq!(
        a,
        vec![Action::StartP2p {
            segment: 5,
            peer: PeerHandle(2)
        }]
    );
    // One download per peer: a second segment of the same peer waits.
    s.announce(PeerHandle(2), &[5, 6], &[]);
    let a = s.plan(
        &[seg(5, now, 30.0, 500_000), seg(6, now, 34.0, 500_000)],
        now,
    );
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn slow_peer_transfer_switches_to_http_resuming_from_received_bytes() {
    let t0 = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 2, false, 1));
    s.add_peer(PeerHandle(1), t0);
    s.announce(PeerHandle(1), &[7], &[]);
    let w = [seg(7, t0, 12.0, 1_000_000)];
    assert_eq!(
        s.plan(&w, t0),
        vec![Action::StartP2p {
            segment: 7,
            peer: PeerHandle(1)
        }]
    );
    // First bytes after 0.5 s, then only 100 kB by 4 s: 900 kB left at about 23 kB/s cannot
    // finish in the 8 s left.
    s.progress(7, 20_000, Some(1_000_000), t0 + Duration::from_millis(500));
    let t1 = t0 + Duration::from_secs(4);
    s.progress(7, 100_000, Some(1_000_000), t1);
    let a = s.plan(&w, t1);
    assert_eq!(
        a,
        vec![Action::SwitchToHttp {
            segment: 7,
            peer: PeerHandle(1),
            base: 0,
            from_byte: 100_000
        }]
    );
    assert_eq!(s.download_source(7), Some(Source::Http(0)));
}

#[test]
fn a_segment_only_loading_at_a_peer_is_asked_of_it_unless_relays_are_off() {
    let now = Instant::now();
    for relays in [true, false] {
        let cfg = SchedulerConfig {
            request_from_loading: relays,
            ..SchedulerConfig::default()
        };
        let mut s = Harness::new(Scheduler::new(cfg, 1, false, 1));
        s.add_peer(PeerHandle(1), now);
        s.announce(PeerHandle(1), &[], &[5]);
        let a = s.plan(&[seg(5, now, 30.0, 500_000)], now);
        let expected = if relays {
            vec![Action::StartP2p {
                segment: 5,
                peer: PeerHandle(1),
            }]
        } else {
            vec![]
        };
        assert_eq!(a, expected, "relays {relays}");
    }
}

#[test]
fn fast_peer_transfer_is_kept() {
    let t0 = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, false, 1));
    s.add_peer(PeerHandle(1), t0);
    s.announce(PeerHandle(1), &[7], &[]);
    let w = [seg(7, t0, 12.0, 1_000_000)];
    s.plan(&w, t0);
    let t1 = t0 + Duration::from_secs(1);
    s.progress(7, 600_000, Some(1_000_000), t1);
    assert!(s.plan(&w, t1).is_empty());
}

#[test]
fn failed_base_is_backed_off_and_mirror_used() {
    let t0 = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 2, false, 1));
    let w = [seg(1, t0, 1.0, 1000)];
    assert_eq!(
        s.plan(&w, t0),
        vec![Action::StartHttp {
            segment: 1,
            base: 0,
            from_byte: 0
        }]
    );
    s.failed(1, t0);
    assert_eq!(
        s.plan(&w, t0),
        vec![Action::StartHttp {
            segment: 1,
            base: 1,
            from_byte: 0
        }]
    );
    // After the back-off the origin is preferred again.
    s.completed(1, t0);
    let later = t0 + Duration::from_secs(60);
    assert_eq!(s.pick_base(later), 0);
}

#[test]
fn vod_prefetch_is_bounded_by_the_window() {
    let t0 = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, false, 1));
    s.add_peer(PeerHandle(1), t0);
    let ids: Vec<SegmentId> = (0..100).collect();
    s.announce(PeerHandle(1), &ids, &[]);
    let wanted: Vec<WantedSegment> = (0..100)
        .map(|i| seg(i, t0, 10.0 + 4.0 * i as f64, 100_000))
        .collect();
    let mut started = 0;
    // Even with all downloads completing instantly, nothing beyond 60 s ahead is fetched.
    let mut done = BTreeSet::new();
    for _ in 0..50 {
        let left: Vec<WantedSegment> = wanted
            .iter()
            .filter(|w| !done.contains(&w.id))
            .cloned()
            .collect();
        for a in s.plan(&left, t0) {
            if let Action::StartP2p { segment, .. } | Action::StartHttp { segment, .. } = a {
                started += 1;
                assert!(segment <= 12, "segment {segment} is beyond the window");
                s.completed(segment, t0);
                done.insert(segment);
            }
        }
    }
    assert!(started >= 10);
}

#[test]
fn concurrency_limits_hold() {
    let t0 = Instant::now();
    let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, false, 1));
    for p in 0..10 {
        s.add_peer(PeerHandle(p), t0);
        s.announce(PeerHandle(p), &(0..20).collect::<Vec<_>>(), &[]);
    }
    let wanted: Vec<WantedSegment> = (0..20)
        .map(|i| seg(i, t0, if i < 5 { 1.0 } else { 30.0 }, 100_000))
        .collect();
    s.plan(&wanted, t0);
    let (h, p) = s.running();
    assert_eq!((h, p), (2, 3));
}

#[test]
fn upload_budget_limits_rate() {
    let t0 = Instant::now();
    let mut b = UploadBudget::new(Some(1000), 1000);
    assert!(b.try_take(1000, t0));
    assert!(!b.try_take(500, t0));
    let t1 = t0 + Duration::from_millis(500);
    assert!(b.try_take(500, t1));
    assert!(!b.try_take(500, t1));
    assert_eq!(b.ready_at(500, t1), Some(t1 + Duration::from_millis(500)));
}

#[test]
fn baseline_loads_high_demand_over_http_and_the_rest_from_peers() {
    let t0 = Instant::now();
    let cfg = SchedulerConfig {
        policy: Policy::Baseline,
        ..SchedulerConfig::default()
    };
    let mut s = Harness::new(Scheduler::new(cfg, 1, false, 1));
    s.add_peer(PeerHandle(1), t0);
    s.announce(PeerHandle(1), &[10], &[]);
    let a = s.plan(&[seg(1, t0, 5.0, 1000), seg(10, t0, 40.0, 1000)], t0);
    assert!(a.contains(&Action::StartHttp {
        segment: 1,
        base: 0,
        from_byte: 0
    }));
    assert!(a.contains(&Action::StartP2p {
        segment: 10,
        peer: PeerHandle(1)
    }));
}

#[test]
fn early_http_waits_for_a_new_peers_first_announcement() {
    let t0 = Instant::now();
    let http_starts = |a: &[Action]| {
        a.iter()
            .filter_map(|a| match a {
                Action::StartHttp { segment, .. } => Some(*segment),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    for live in [false, true] {
        // Segment 0 is urgent, 3 is due in 10 s (within the VOD HTTP lead, and at the live
        // edge): the channel to a peer just opened, its announcement is on the way.
        let wanted = [seg(0, t0, 0.5, 100_000), seg(3, t0, 10.0, 100_000)];
        let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, live, 1));
        s.add_peer(PeerHandle(1), t0);
        assert_eq!(http_starts(&s.plan(&wanted, t0)), vec![0], "live {live}");
        // It announces 3: that comes from the peer.
        let t1 = t0 + Duration::from_millis(20);
        s.completed(0, t1);
        s.announce(PeerHandle(1), &[3], &[]);
        assert_eq!(
            s.plan(&wanted[1..], t1),
            vec![Action::StartP2p {
                segment: 3,
                peer: PeerHandle(1)
            }],
            "live {live}"
        );
        // A peer that never announces holds nothing back for longer than the wait (VOD, where
        // an unannounced segment within the lead goes to HTTP at once).
        if !live {
            let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, live, 1));
            s.add_peer(PeerHandle(1), t0);
            assert!(http_starts(&s.plan(&wanted[1..], t0)).is_empty());
            let late = t0 + SchedulerConfig::default().first_announce_wait;
            let wanted_late = [seg(3, late, 9.5, 100_000)];
            assert_eq!(http_starts(&s.plan(&wanted_late, late)), vec![3]);
            // Once some peer has announced, a newcomer's silence holds nothing back.
            let mut s = Harness::new(Scheduler::new(SchedulerConfig::default(), 1, live, 1));
            s.add_peer(PeerHandle(1), t0);
            s.announce(PeerHandle(1), &[], &[]);
            s.add_peer(PeerHandle(2), t0);
            assert_eq!(http_starts(&s.plan(&wanted[1..], t0)), vec![3]);
        }
    }
}
