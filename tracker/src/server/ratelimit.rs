//! Token buckets for request rates: one per WebSocket connection, and one per client IP address
//! for HTTP announces ([`IpRateLimiter`]); sans-IO (time passed in).

use std::net::IpAddr;
use std::time::Instant;

use dashmap::DashMap;

/// `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f32,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst as f32,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, rate: u32, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate as f32).min(burst as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl TokenBucket {
    /// Whether the bucket would be full at `now` (then it is the same as a new bucket).
    fn is_full_at(&self, rate: u32, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.tokens + elapsed * rate as f32 >= burst as f32
    }
}

/// One token bucket per client IP address. A bucket that has refilled is the same as no bucket,
/// so [`IpRateLimiter::prune`] removes those and the map only holds recently active addresses.
#[derive(Debug, Default)]
pub(crate) struct IpRateLimiter {
    buckets: DashMap<IpAddr, TokenBucket>,
}

impl IpRateLimiter {
    /// Takes one token from `ip`'s bucket if there is one.
    pub fn try_take(&self, ip: IpAddr, rate: u32, burst: u32, now: Instant) -> bool {
        self.buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(burst, now))
            .try_take(rate, burst, now)
    }

    /// Forgets the addresses whose buckets are full again.
    pub fn prune(&self, rate: u32, burst: u32, now: Instant) {
        self.buckets
            .retain(|_, bucket| !bucket.is_full_at(rate, burst, now));
    }

    /// Addresses remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn per_ip_buckets_are_independent_and_pruned_once_refilled() {
        let t0 = Instant::now();
        let limiter = IpRateLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(limiter.try_take(a, 1, 2, t0));
        assert!(limiter.try_take(a, 1, 2, t0));
        assert!(!limiter.try_take(a, 1, 2, t0), "burst of 2 used up");
        assert!(
            limiter.try_take(b, 1, 2, t0),
            "another address has its own bucket"
        );
        limiter.prune(1, 2, t0 + Duration::from_millis(500));
        assert_eq!(limiter.len(), 2, "neither bucket is full yet");
        limiter.prune(1, 2, t0 + Duration::from_millis(1500));
        assert_eq!(limiter.len(), 1, "b refilled after 1 s, a needs 2 s");
        limiter.prune(1, 2, t0 + Duration::from_secs(2));
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, t0);
        assert!((0..3).all(|_| b.try_take(2, 3, t0)));
        assert!(!b.try_take(2, 3, t0));
        assert!(b.try_take(2, 3, t0 + Duration::from_millis(500)));
        assert!(!b.try_take(2, 3, t0 + Duration::from_millis(500)));
        let later = t0 + Duration::from_secs(100);
        assert_eq!(
            (0..10).filter(|_| b.try_take(2, 3, later)).count(),
            3,
            "capped at burst"
        );
    }
}
