//! segswarm-wasm: the segswarm peer engine driven by the browser (web-sys WebRTC, WebSocket, fetch)
//! and exposed to hls.js through wasm-bindgen.
//!
//! Not built yet: this crate only reserves its place in the workspace (see the wasm issue).
