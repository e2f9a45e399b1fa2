//! The time type used by every sans-IO state machine of this crate.
//!
//! Core logic never reads a clock: the driver passes the current [`Instant`] in. Keeping the type
//! behind this alias lets the browser build swap in `web_time::Instant` in one place:
//! `std::time::Instant::now()` panics on `wasm32-unknown-unknown`, while `web_time::Instant` reads
//! `performance.now()` there (and is `std::time::Instant` itself on every other target).

/// A monotonic point in time, supplied by the driver as "now".
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub type Instant = std::time::Instant;

/// A monotonic point in time, supplied by the driver as "now" (browser: `performance.now()`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub type Instant = web_time::Instant;
