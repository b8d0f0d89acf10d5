//! A histogram that costs three relaxed atomic additions to record into and nothing else:
//! no lock, no allocation. Buckets are fixed when it is made; the counts are read (and made
//! cumulative by the encoder) at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Observations in whole units of `unit` (nanoseconds, bytes), counted per bucket.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds (inclusive), ascending, in the recorded unit.
    bounds: &'static [u64],
    /// One count per bound, then one for values above the last (`+Inf`).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// What one recorded unit is in the exported unit (1e-9 for nanoseconds to seconds).
    scale: f64,
}

/// A histogram's state at one moment, in the exported unit: the sum, the count, and per
/// bucket its upper bound and the observations in it alone (not cumulative).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sum: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    pub fn new(bounds: &'static [u64], scale: f64) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// Records one value (in the recorded unit).
    #[inline]
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn snapshot(&self) -> Snapshot {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|&b| b as f64 * self.scale)
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        Snapshot {
            sum: self.sum.load(Ordering::Relaxed) as f64 * self.scale,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        static BOUNDS: [u64; 3] = [10, 100, 1000];
        let h = Histogram::new(&BOUNDS, 0.5);
        for v in [0, 10, 11, 100, 5000, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 6);
        assert_eq!(h.count(), 6);
        assert_eq!(s.sum, 6121.0 * 0.5);
        assert_eq!(
            s.buckets,
            vec![(5.0, 2), (50.0, 2), (500.0, 1), (f64::INFINITY, 1)]
        );
    }
}
