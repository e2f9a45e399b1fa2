//! A throughput estimate: an exponentially weighted moving average.

/// An exponentially weighted moving average of a throughput, bytes/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    value: f64,
    samples: u32,
}

impl Ewma {
    /// An average that reports `initial` until the first sample.
    pub fn new(initial: f64) -> Self {
        Self {
            value: initial,
            samples: 0,
        }
    }

    /// Adds a sample with weight `alpha` (the first sample replaces the initial value).
    pub fn add(&mut self, sample: f64, alpha: f64) {
        if !sample.is_finite() || sample <= 0.0 {
            return;
        }
        if self.samples == 0 {
            self.value = sample;
        } else {
            self.value = alpha * sample + (1.0 - alpha) * self.value;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The current estimate.
    pub fn get(&self) -> f64 {
        self.value
    }

    /// How many samples were added.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}
