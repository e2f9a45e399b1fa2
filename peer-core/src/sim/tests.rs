//! Tests of the simulator: determinism, tiny live swarms, the HTTP-only reference, the baseline.

use super::*;

fn small(policy: SimPolicy, mode: Mode) -> SimConfig {
    SimConfig {
        viewers: 8,
        mode,
        seconds: 60.0,
        seed: 7,
        policy,
        join_window: 10.0,
        ..SimConfig::default()
    }
}

#[test]
fn small_live_swarm_shares_segments_and_is_deterministic() {
    let a = Simulation::new(small(SimPolicy::Segswarm, Mode::Live)).run();
    let b = Simulation::new(small(SimPolicy::Segswarm, Mode::Live)).run();
    assert_eq!(a, b);
    assert!(a.segments_delivered > 8 * 10, "{a:?}");
    assert!(a.p2p_share > 0.2, "{a:?}");
    assert!(a.live_latency_p95_s.is_some());
}

/// Two to five viewers of a live stream, all reachable, watching the same edge: about one
/// HTTP fetch per segment, relayed to the others (the ideal share is (N − 1) / N).
#[test]
fn tiny_live_swarms_fetch_each_segment_about_once() {
    for n in [2usize, 3, 5] {
        let r = Simulation::new(SimConfig {
            viewers: n,
            mode: Mode::Live,
            seconds: 120.0,
            seed: 1,
            join_window: 5.0,
            unreachable_share: 0.0,
            leave_share: 0.0,
            ..SimConfig::default()
        })
        .run();
        let ideal = (n - 1) as f64 / n as f64;
        assert_eq!(r.stall_count, 0, "N = {n}: {r:?}");
        assert!(r.p2p_share >= 0.6 * ideal, "N = {n}: {r:?}");
    }
}

#[test]
fn http_only_reference_uses_no_peers() {
    let r = Simulation::new(small(SimPolicy::HttpOnly, Mode::Vod)).run();
    assert_eq!(r.p2p_share, 0.0);
    assert!(r.segments_delivered > 8 * 10, "{r:?}");
    assert!(r.origin_bytes_per_viewer > 0.0);
}

#[test]
fn baseline_runs_vod() {
    let r = Simulation::new(small(SimPolicy::Baseline, Mode::Vod)).run();
    assert!(r.segments_delivered > 8 * 10, "{r:?}");
    assert!(r.p2p_share > 0.0, "{r:?}");
}
