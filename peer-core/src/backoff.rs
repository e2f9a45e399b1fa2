//! Reconnect backoff for tracker sockets, shared by the native and browser drivers.
//!
//! Exponential with full jitter: after the n-th failed attempt in a row the delay is drawn from
//! `(0, min(max, initial × factorⁿ)]`, so clients that lost the same tracker at the same moment do
//! not come back in lockstep. The count of failures is reset only by [`Backoff::reset`], which
//! drivers call once the tracker *accepted an announce*
//! ([`TrackerFrame::is_announce_accepted`](crate::tracker_client::TrackerFrame::is_announce_accepted)),
//! not when the socket opens: a tracker that accepts connections and closes them at once (over
//! capacity, shutting down) must not be hammered once a second. A close with code 1013 (try again
//! later) or 1001 (going away) waits at least [`BackoffConfig::going_away_min`].
//!
//! A tracker that *refused* the client (a `failure reason` to one of its announces, then a close;
//! or an HTTP 401/403/429 instead of the WebSocket upgrade, or a reset during the handshake) waits
//! minutes: [`BackoffConfig::refused_min`], doubling with each refusal in a row up to
//! [`BackoffConfig::refused_max`], plus up to half of it at random. This is what private trackers
//! ask for: PeerTube's (`server/core/controllers/tracker.ts`) answers an unknown info_hash with
//! `Unknown infoHash <hex> requested by ip <ip>`, closes the socket and blocks the IP for
//! `TRACKER_RATE_LIMITS.BLOCK_IP_LIFETIME` (3 minutes, `server/core/initializers/constants.ts`),
//! answering every upgrade from it meanwhile with `HTTP/1.1 403 Forbidden` and a closed socket.
//! Drivers report a refusal with [`Backoff::refused`] (the next delay is then a refused one) and
//! may test an upgrade's HTTP status with [`is_refusal_status`].
//!
//! Sans-IO: the caller passes the random sample and sleeps the returned delay itself.

use std::time::Duration;

/// WebSocket close code 1001: the server is going away (shutting down).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code 1013: try again later (the server is overloaded).
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// Settings of a [`Backoff`].
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Delay cap after the first failure. Default 1 s.
    pub initial: Duration,
    /// Largest delay cap. Default 30 s.
    pub max: Duration,
    /// Factor applied to the cap after each failure in a row. Default 2.
    pub factor: u32,
    /// Share of each delay that is random: 1.0 = full jitter (uniform in `(0, cap]`), 0.0 = the
    /// cap itself. Default 1.0.
    pub jitter: f64,
    /// Least delay after a close with code 1001 or 1013 (the jittered delay is added to it).
    /// Default 30 s.
    pub going_away_min: Duration,
    /// Delay after the first refusal in a row ([`Backoff::refused`]); each further one doubles it,
    /// up to [`BackoffConfig::refused_max`], and up to half of it is added at random (scaled by
    /// `jitter`). Default 180 s: PeerTube's tracker blocks a refused IP for 3 minutes
    /// (`TRACKER_RATE_LIMITS.BLOCK_IP_LIFETIME`); any attempt before that is refused again.
    pub refused_min: Duration,
    /// Largest delay after refusals in a row (before jitter). Default 30 min.
    pub refused_max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            factor: 2,
            jitter: 1.0,
            going_away_min: Duration::from_secs(30),
            refused_min: Duration::from_secs(180),
            refused_max: Duration::from_secs(30 * 60),
        }
    }
}

/// Whether an HTTP status answering the WebSocket upgrade means the tracker refuses this client
/// (401, 403 — PeerTube's answer to a blocked IP — or 429), rather than being unavailable.
pub fn is_refusal_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 429)
}

/// Failures in a row and the delays they call for. See the module documentation.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
    /// Refusals in a row (since the last [`Backoff::reset`]).
    refusals: u32,
    /// A refusal was reported and no delay has been drawn since.
    refused: bool,
}

impl Backoff {
    /// No failure yet.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
            refusals: 0,
            refused: false,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Failures since the last [`Backoff::reset`].
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Refusals in a row since the last [`Backoff::reset`].
    pub fn refusals(&self) -> u32 {
        self.refusals
    }

    /// Whether a refusal is pending: the next [`Backoff::next_delay`] will be a refused one.
    pub fn is_refused(&self) -> bool {
        self.refused
    }

    /// The tracker refused the client (a `failure reason` to an announce, or an upgrade answered
    /// with [`is_refusal_status`]): the next [`Backoff::next_delay`] waits at least
    /// [`BackoffConfig::refused_min`] (more after refusals in a row), whatever the close code.
    /// Cleared by [`Backoff::reset`] (an accepted announce) and by the delay it causes.
    pub fn refused(&mut self) {
        self.refused = true;
    }

    /// The delay before jitter after the next refusal: `refused_min × 2ⁿ` (n = refusals in a row
    /// so far), at most `refused_max` (and never below `refused_min`).
    pub fn refused_base(&self) -> Duration {
        let min = self.config.refused_min;
        let max = self.config.refused_max.max(min);
        let mut base = min;
        for _ in 0..self.refusals.min(64) {
            base = base.saturating_mul(2).min(max);
            if base == max {
                break;
            }
        }
        base
    }

    /// The delay cap for the next failure: `initial × factorⁿ`, at most `max`.
    pub fn cap(&self) -> Duration {
        let mut cap = self.config.initial.min(self.config.max);
        for _ in 0..self.failures.min(64) {
            cap = cap
                .saturating_mul(self.config.factor.max(1))
                .min(self.config.max);
            if cap == self.config.max {
                break;
            }
        }
        cap
    }

    /// Counts a failed attempt (or a lost connection, closed with `close_code` if the tracker sent
    /// one) and returns the delay before the next attempt. `unit` is a random sample in `[0, 1)`.
    /// If a refusal is pending ([`Backoff::refused`]) the delay is
    /// [`Backoff::refused_base`] plus `jitter × unit / 2` of it.
    pub fn next_delay(&mut self, close_code: Option<u16>, unit: f64) -> Duration {
        let cap = self.cap();
        self.failures = self.failures.saturating_add(1);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jitter = if self.config.jitter.is_nan() {
            1.0
        } else {
            self.config.jitter.clamp(0.0, 1.0)
        };
        if std::mem::take(&mut self.refused) {
            let base = self.refused_base();
            self.refusals = self.refusals.saturating_add(1);
            let extra = Duration::try_from_secs_f64(base.as_secs_f64() * jitter * unit / 2.0)
                .unwrap_or(Duration::ZERO);
            return base.saturating_add(extra);
        }
        let share = 1.0 - jitter * unit;
        let delay = Duration::try_from_secs_f64(cap.as_secs_f64() * share).unwrap_or(cap);
        match close_code {
            Some(CLOSE_GOING_AWAY | CLOSE_TRY_AGAIN_LATER) => {
                self.config.going_away_min.saturating_add(delay)
            }
            _ => delay,
        }
    }

    /// The tracker accepted an announce: the next failure starts from `initial` again, and a
    /// pending refusal is forgotten.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.refusals = 0;
        self.refused = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact() -> Backoff {
        Backoff::new(BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        })
    }

    #[test]
    fn delays_double_up_to_the_cap_until_reset() {
        let mut b = exact();
        let secs: Vec<u64> = (0..7).map(|_| b.next_delay(None, 0.5).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(None, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_spreads_delays_below_the_cap() {
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..5 {
            b.next_delay(None, 0.0);
        }
        assert_eq!(b.cap(), Duration::from_secs(30));
        let lo = b.clone().next_delay(None, 0.999);
        let hi = b.clone().next_delay(None, 0.0);
        assert!(lo < Duration::from_millis(100), "{lo:?}");
        assert_eq!(hi, Duration::from_secs(30));
        assert_eq!(b.next_delay(None, f64::NAN), Duration::from_secs(30));
    }

    #[test]
    fn overloaded_or_going_away_waits_at_least_thirty_seconds() {
        for code in [CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER] {
            let mut b = Backoff::new(BackoffConfig::default());
            assert!(b.next_delay(Some(code), 0.999) >= Duration::from_secs(30));
        }
        let mut b = Backoff::new(BackoffConfig::default());
        assert!(b.next_delay(Some(1000), 0.0) <= Duration::from_secs(1));
    }

    #[test]
    fn absurd_settings_do_not_overflow() {
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::MAX,
            max: Duration::MAX,
            factor: u32::MAX,
            jitter: f64::NAN,
            going_away_min: Duration::MAX,
            refused_min: Duration::MAX,
            refused_max: Duration::ZERO,
        });
        for _ in 0..100 {
            b.next_delay(Some(CLOSE_GOING_AWAY), 0.5);
            b.refused();
            b.next_delay(None, 0.5);
        }
        assert_eq!(b.failures(), 200);
        assert_eq!(b.refusals(), 100);
    }

    #[test]
    fn a_refusal_waits_minutes_doubling_with_jitter_until_an_accepted_announce() {
        let mut b = Backoff::new(BackoffConfig::default());
        // A close after a refused announce: PeerTube's 3-minute IP block, whatever the code.
        b.refused();
        assert!(b.is_refused());
        assert_eq!(b.next_delay(None, 0.0), Duration::from_secs(180));
        assert!(!b.is_refused());
        // The next failure without a refusal is an ordinary one again (the count goes on).
        assert!(b.next_delay(None, 0.0) <= Duration::from_secs(2));
        // Refusals in a row double, with up to half added at random.
        b.refused();
        assert_eq!(b.next_delay(Some(1000), 0.0), Duration::from_secs(360));
        b.refused();
        let d = b.next_delay(None, 0.999);
        assert!(
            d > Duration::from_secs(1079) && d <= Duration::from_secs(1080),
            "{d:?}"
        );
        for _ in 0..10 {
            b.refused();
            b.next_delay(None, 0.0);
        }
        assert_eq!(b.refused_base(), Duration::from_secs(30 * 60));
        // An accepted announce forgets refusals, pending or past.
        b.refused();
        b.reset();
        assert!(!b.is_refused());
        assert_eq!(b.refusals(), 0);
        assert_eq!(b.next_delay(None, 0.0), Duration::from_secs(1));
        b.refused();
        assert_eq!(b.next_delay(None, 0.0), Duration::from_secs(180));
    }

    #[test]
    fn refusal_statuses() {
        for s in [401, 403, 429] {
            assert!(is_refusal_status(s), "{s}");
        }
        for s in [200, 400, 404, 500, 502, 503] {
            assert!(!is_refusal_status(s), "{s}");
        }
    }
}
