//! The upload budget: a token bucket of bytes per second.

use super::*;

/// A token bucket limiting upload to a byte rate, with a burst allowance.
#[derive(Debug, Clone)]
pub struct UploadBudget {
    rate: Option<f64>,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl UploadBudget {
    /// A bucket refilled at `rate` bytes/s holding at most `burst` bytes; `None` means unlimited.
    pub fn new(rate: Option<u64>, burst: u64) -> Self {
        Self {
            rate: rate.map(|r| r as f64),
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let (Some(rate), Some(last)) = (self.rate, self.last) {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * rate).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Takes `bytes` tokens if available (a message larger than the burst is allowed when the bucket
    /// is full). Returns whether the bytes may be sent now.
    pub fn try_take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill(now);
        let need = (bytes as f64).min(self.burst);
        if self.tokens >= need {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    /// When `bytes` tokens will be available, if they are not now.
    pub fn ready_at(&mut self, bytes: usize, now: Instant) -> Option<Instant> {
        let rate = self.rate?;
        self.refill(now);
        let need = (bytes as f64).min(self.burst);
        if self.tokens >= need || rate <= 0.0 {
            return None;
        }
        let wait = (need - self.tokens) / rate;
        Some(now + crate::time::secs(wait.min(3600.0)))
    }
}
