//! The time type used by every sans-IO state machine of this crate.
//!
//! Core logic never reads a clock: the driver passes the current [`Instant`] in. Keeping the type
//! behind this alias lets the browser build swap in `web_time::Instant` in one place.

/// A monotonic point in time, supplied by the driver as "now".
pub type Instant = std::time::Instant;
