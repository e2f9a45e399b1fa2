//! End-to-end tests of the `segswarm` and `segswarm-tracker` binaries as one test binary (one link
//! instead of one per file): real processes, headless Chromium and ffmpeg streams on loopback.
#![recursion_limit = "256"]

#[path = "support/peertube_origin.rs"]
mod peertube_origin;
#[path = "support/segswarm_proc.rs"]
mod segswarm_proc;
mod support;

mod byterange;
mod deploy_examples;
mod peertube_mirror;
mod peertube_seed;
mod seed_play;
mod seeder_browser_interop;
mod simulate_cli;
mod tracker_browser_interop;
mod wasm_e2e;
mod wasm_peertube;
