//! Which swarm each peer joins: S swarms whose popularity follows a Zipf law with exponent `skew`
//! (swarm k, counted from 0, is chosen with weight 1/(k+1)^skew; skew 0 is uniform).

use segswarm_ws_protocol::Id20;

/// The swarm popularity distribution.
pub struct Swarms {
    cdf: Vec<f64>,
}

impl Swarms {
    /// `count` swarms (at least 1) with Zipf exponent `skew` (at least 0).
    pub fn new(count: usize, skew: f64) -> Swarms {
        let count = count.max(1);
        let skew = skew.max(0.0);
        let mut cdf = Vec::with_capacity(count);
        let mut sum = 0.0;
        for k in 0..count {
            sum += 1.0 / ((k + 1) as f64).powf(skew);
            cdf.push(sum);
        }
        for v in &mut cdf {
            *v /= sum;
        }
        Swarms { cdf }
    }

    /// The swarm for a uniform random number `u` in [0, 1).
    pub fn pick(&self, u: f64) -> usize {
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }

    /// Number of swarms.
    pub fn len(&self) -> usize {
        self.cdf.len()
    }

    /// The info hash (`ssbench` and 13 digits) of swarm `index` in generation `epoch` (churn mode rotates
    /// generations so that old swarms empty out and new ones appear).
    pub fn info_hash(&self, index: usize, epoch: u64) -> Id20 {
        let n = epoch * self.cdf.len() as u64 + index as u64;
        let text = format!("ssbench{:013}", n % 10_000_000_000_000);
        Id20::from_bytes(text.as_bytes()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_low_indices() {
        let s = Swarms::new(100, 1.0);
        let mut counts = [0usize; 100];
        for i in 0..100_000 {
            counts[s.pick(i as f64 / 100_000.0)] += 1;
        }
        // Weight of swarm 0 is 1/H(100) ≈ 19.3 %; swarm 1 half of that.
        assert!((18_500..20_000).contains(&counts[0]), "{}", counts[0]);
        assert!((9_000..10_500).contains(&counts[1]), "{}", counts[1]);
        assert!(counts[99] > 0);
    }

    #[test]
    fn uniform_without_skew_and_ids_are_20_chars() {
        let s = Swarms::new(4, 0.0);
        assert_eq!(s.pick(0.0), 0);
        assert_eq!(s.pick(0.26), 1);
        assert_eq!(s.pick(0.999), 3);
        assert_eq!(&s.info_hash(3, 2).0[..7], b"ssbench");
        assert_ne!(s.info_hash(3, 2), s.info_hash(3, 1));
    }
}
