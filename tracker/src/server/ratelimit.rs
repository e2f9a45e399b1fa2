//! A token bucket for per-connection request rates; sans-IO (time passed in).

use std::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
