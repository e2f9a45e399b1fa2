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
//! - [`fetch`]: `fetch` with an `AbortController` and byte ranges;
//! - [`driver`]: the engine loop — one `segswarm_core::engine::Engine` (one swarm) whose outputs
//!   become peer connections, tracker frames (reconnecting WebSocket), fetches and timers;
//! - [`api`]: what is exported to JavaScript (`SegswarmEngine`, stream identity functions).
//!
//! Every event-handler closure is owned by the struct that installed it and is released (handler
//! unset, closure dropped) when that struct is closed or dropped; nothing is `forget()`-ed.
//!
//! The hls.js glue is hand-written JavaScript with TypeScript types in `wasm-peer/js/`; the
//! package is built into `wasm-peer/pkg/` by `wasm-peer/build-pkg.sh`.

// The modules linked above exist only on wasm32: documenting the (empty) crate for another target
// leaves those links dangling.
#![cfg_attr(not(target_arch = "wasm32"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod driver;
#[cfg(target_arch = "wasm32")]
pub mod error;
#[cfg(target_arch = "wasm32")]
pub mod fetch;
#[cfg(target_arch = "wasm32")]
mod oneshot;
#[cfg(target_arch = "wasm32")]
pub mod rtc;
#[cfg(target_arch = "wasm32")]
pub mod timer;
#[cfg(target_arch = "wasm32")]
mod wake;
