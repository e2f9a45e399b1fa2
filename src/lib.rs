//! segswarm: peer-to-peer delivery of HLS video segments.
//!
//! This facade re-exports the workspace crates so that examples, benches and end-to-end
//! tests can use one name:
//! - [`tracker`]: the WebTorrent WebSocket + HTTP tracker (`segswarm-tracker`);
//! - [`core`]: the sans-IO peer engine (`segswarm-core`).

pub use segswarm_core as core;
pub use segswarm_tracker as tracker;
