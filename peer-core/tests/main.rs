//! segswarm-core's integration tests as one test binary (one link instead of one per file).
//! The `native_*` modules need the `native` feature (the native driver).
#![recursion_limit = "256"]

#[cfg(feature = "native")]
#[path = "../../tests/support/peertube_origin.rs"]
mod peertube_origin;
#[cfg(feature = "native")]
#[path = "../../tests/support/mod.rs"]
mod support;

mod engine_mesh;
mod hostile_input;
mod js_vectors;
#[cfg(feature = "native")]
mod native_byterange;
#[cfg(feature = "native")]
mod native_http;
#[cfg(feature = "native")]
mod native_mirror;
#[cfg(feature = "native")]
mod native_origin;
#[cfg(feature = "native")]
mod native_peertube;
#[cfg(feature = "native")]
mod native_rtc;
#[cfg(feature = "native")]
mod native_seeder;
#[cfg(feature = "native")]
mod native_tracker_backoff;
#[cfg(feature = "native")]
mod native_tracker_refused;
#[cfg(feature = "native")]
mod native_viewer;
mod tracker_client_reference;
mod wire_props;
mod wire_regressions;
