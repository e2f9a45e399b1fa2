//! `segswarm simulate`: JSON fields on the last line, and the same seed gives the same output.

use std::process::Command;

fn simulate(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_segswarm"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run segswarm");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).expect("last line is JSON")
}

const SMALL: &[&str] = &[
    "--viewers",
    "6",
    "--seconds",
    "40",
    "--join-window",
    "10",
    "--json",
];

#[test]
fn live_json_has_the_documented_fields_and_is_deterministic() {
    let args: Vec<&str> = [SMALL, &["--mode", "live", "--seed", "5"]].concat();
    let a = simulate(&args);
    for f in [
        "viewers",
        "p2p_share",
        "origin_bytes_per_viewer",
        "stall_count",
        "stall_seconds",
        "startup_p95_s",
        "live_latency_p95_s",
    ] {
        assert!(
            a.get(f).is_some_and(|v| !v.is_null()),
            "field {f} missing in {a}"
        );
    }
    assert_eq!(a["viewers"], 6);
    let share = a["p2p_share"].as_f64().expect("number");
    assert!((0.0..=1.0).contains(&share));
    assert!(a["origin_bytes_per_viewer"].as_f64().expect("number") > 0.0);
    // Both policies are reported, and the top level is segswarm's.
    assert_eq!(a["policy"], "segswarm");
    assert_eq!(a["policies"]["segswarm"]["p2p_share"], a["p2p_share"]);
    assert!(a["policies"]["baseline"]["p2p_share"].is_number());
    let b = simulate(&args);
    assert_eq!(a, b, "same seed, same output");
}

#[test]
fn vod_baseline_only_and_another_seed_differs() {
    let a = simulate(
        &[
            SMALL,
            &["--mode", "vod", "--policy", "baseline", "--seed", "1"],
        ]
        .concat(),
    );
    assert_eq!(a["policy"], "baseline");
    assert!(
        a.get("live_latency_p95_s").is_none(),
        "no live latency for VOD: {a}"
    );
    assert!(a["startup_p95_s"].as_f64().expect("number") > 0.0);
    let b = simulate(
        &[
            SMALL,
            &["--mode", "vod", "--policy", "baseline", "--seed", "2"],
        ]
        .concat(),
    );
    assert_ne!(a, b, "a different seed draws a different scenario");
}
