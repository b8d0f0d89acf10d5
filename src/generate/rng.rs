//! A small seedable pseudo-random number generator (SplitMix64) for the generators.
//!
//! Written here rather than taken from `rand` because generated fixtures must stay
//! byte-identical across crate upgrades and platforms: this algorithm and its helpers are
//! fixed forever, while `rand`'s value streams are allowed to change between versions.
//! Not for anything security-related.

/// SplitMix64 (Steele, Lea, Flood 2014): one u64 of state, passes BigCrush, and every seed
/// (including 0) gives a full-period stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for one named purpose (e.g. a layer). Streams are derived
    /// from the seed and the label only, so adding a layer or drawing more numbers in one
    /// layer does not change what any other layer generates.
    pub fn fork(&self, label: &str) -> Rng {
        // FNV-1a over the label, then mixed with the parent state through one SplitMix step.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in label.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng {
            state: mix(self.state ^ mix(hash)),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in the closed range [lo, hi].
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = hi.wrapping_sub(lo) as u64;
        if span == u64::MAX {
            return self.next_u64() as i64;
        }
        lo.wrapping_add(self.below(span + 1) as i64)
    }

    /// Uniform in [0, n), without modulo bias (Lemire's multiply-and-reject).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element; panics on an empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An element chosen with probability proportional to its weight; panics when all
    /// weights are zero.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut ticket = self.below(total);
        for (item, weight) in items {
            if ticket < u64::from(*weight) {
                return item;
            }
            ticket -= u64::from(*weight);
        }
        unreachable!("ticket below the total weight")
    }
}

/// The SplitMix64 output function (a variant of MurmurHash3's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_values() {
        // First outputs of the reference C implementation seeded with 1234567.
        let mut rng = Rng::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn the_same_seed_gives_the_same_stream_and_forks_are_independent() {
        let mut a = Rng::new(2026);
        let mut b = Rng::new(2026);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        let root = Rng::new(2026);
        let mut x = root.fork("accidents");
        let mut y = root.fork("accidents");
        let mut z = root.fork("roads");
        assert_eq!(x.next_u64(), y.next_u64());
        assert_ne!(x.next_u64(), z.next_u64());
    }

    #[test]
    fn ranges_stay_in_bounds_and_reach_both_ends() {
        let mut rng = Rng::new(7);
        let draws: Vec<i64> = (0..2000).map(|_| rng.range_i64(-2, 3)).collect();
        assert!(draws.iter().all(|d| (-2..=3).contains(d)));
        assert!(draws.contains(&-2) && draws.contains(&3));
        assert!((0..2000).all(|_| {
            let f = rng.range_f64(1.5, 2.5);
            (1.5..2.5).contains(&f)
        }));
    }

    #[test]
    fn weighted_choices_follow_their_weights() {
        let mut rng = Rng::new(99);
        let items = [("minor", 80), ("serious", 18), ("fatal", 2), ("never", 0)];
        let mut counts = [0usize; 4];
        for _ in 0..10_000 {
            let chosen = rng.weighted(&items);
            counts[items.iter().position(|(name, _)| name == chosen).unwrap()] += 1;
        }
        assert!((7700..8300).contains(&counts[0]), "{counts:?}");
        assert!((100..300).contains(&counts[2]), "{counts:?}");
        assert_eq!(counts[3], 0);
    }
}
