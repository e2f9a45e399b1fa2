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

use std::time::Duration;

/// Longest span the core converts from seconds: 10⁹ s (about 32 years). Media times come from
/// remote playlists; anything longer is clamped to it.
pub const MAX_SPAN_SECS: f64 = 1e9;

/// `secs` as a [`Duration`], never panicking: negative or NaN is zero, more than
/// [`MAX_SPAN_SECS`] (or infinite) is clamped to it.
pub fn secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs.min(MAX_SPAN_SECS)).unwrap_or(Duration::ZERO)
}

/// `at + secs(s)`, saturating at `at` plus [`MAX_SPAN_SECS`] and never panicking on overflow.
pub fn after(at: Instant, s: f64) -> Instant {
    let d = secs(s);
    at.checked_add(d).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_from_remote_numbers_never_panic() {
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert_eq!(secs(1.5), Duration::from_millis(1500));
        assert_eq!(secs(1e20), Duration::from_secs(1_000_000_000));
        assert_eq!(secs(f64::INFINITY), Duration::from_secs(1_000_000_000));
        let now = Instant::now();
        assert!(after(now, 1e300) > now);
    }
}
