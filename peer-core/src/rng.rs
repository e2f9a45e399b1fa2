//! [`CoreRng`]: the random number generator the engine and scheduler draw from.
//!
//! Natively it is rand's `StdRng` (ChaCha12), whose output the simulator's seeded results rely on.
//! The browser (wasm32) build uses rand's `SmallRng` instead: the choices it drives (peer order,
//! tie breaks, seeding decisions) need no cryptographic strength, and the ChaCha block code is a
//! noticeable part of the wasm module. Either way, one seed gives one sequence.

use rand::SeedableRng;

/// The engine's and scheduler's random number generator (see the module docs).
#[cfg(not(target_arch = "wasm32"))]
pub type CoreRng = rand::rngs::StdRng;

/// The engine's and scheduler's random number generator (see the module docs).
#[cfg(target_arch = "wasm32")]
pub type CoreRng = rand::rngs::SmallRng;

/// A generator seeded from `seed` (same seed, same sequence on one target).
pub fn seeded(seed: u64) -> CoreRng {
    CoreRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn draws(seed: u64) -> Vec<u64> {
        let mut r = seeded(seed);
        (0..8).map(|_| r.random()).collect()
    }

    #[test]
    fn same_seed_same_sequence() {
        assert_eq!(draws(42), draws(42));
        assert_ne!(draws(42), draws(43));
    }
}
