//! segswarm-wasm: the segswarm peer engine driven by the browser and exposed through wasm-bindgen.
//!
//! This crate is the browser driver of `segswarm-core`'s sans-IO state machines. Its pieces, each
//! one concept, exist only on `wasm32` (on other targets the crate is empty, so workspace builds
//! and tests stay unaffected):
//!
//! - [`timer`]: `setTimeout` timers that are cleared when dropped, and an async sleep;
//! - [`rtc`]: an `RTCPeerConnection` with one `RTCDataChannel` — full-SDP offer/answer (ICE
//!   gathering complete before the SDP is handed out), binary messages, `bufferedAmount`
//!   back-pressure;
//! - [`tracker`]: the WebSocket transport that drives a
//!   [`segswarm_core::tracker_client::TrackerClient`];
//! - [`fetch`]: `fetch` with an `AbortController` and byte ranges;
//! - [`api`]: what is exported to JavaScript.
//!
//! Every event-handler closure is owned by the struct that installed it and is released (handler
//! unset, closure dropped) when that struct is closed or dropped; nothing is `forget()`-ed.
//!
//! Not built yet (see the wasm issue): the engine loop tying these to `segswarm_core::engine`,
//! the hls.js loader and the TypeScript package.

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod error;
#[cfg(target_arch = "wasm32")]
pub mod fetch;
#[cfg(target_arch = "wasm32")]
pub mod rtc;
#[cfg(target_arch = "wasm32")]
pub mod timer;
#[cfg(target_arch = "wasm32")]
pub mod tracker;
#[cfg(target_arch = "wasm32")]
mod wake;
