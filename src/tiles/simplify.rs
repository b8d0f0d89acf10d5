//! Douglas-Peucker simplification in tile-local units, run after clipping so that its cost
//! is bounded by what a tile shows. The tolerance is a distance in extent units: 1.0 drops
//! detail finer than the tile's grid, which quantisation would collapse anyway.

use crate::tiles::clip::Pt;

/// Squared distance from `p` to the segment `a -> b`.
fn seg_dist2(p: Pt, a: Pt, b: Pt) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let len2 = d[0] * d[0] + d[1] * d[1];
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / len2).clamp(0.0, 1.0)
    };
    let q = [a[0] + t * d[0] - p[0], a[1] + t * d[1] - p[1]];
    q[0] * q[0] + q[1] * q[1]
}

/// Douglas-Peucker with its work buffers kept between calls, so that simplifying a tile's
/// features allocates once.
#[derive(Debug, Default)]
pub struct Simplifier {
    keep: Vec<bool>,
    stack: Vec<(usize, usize)>,
    half: Vec<Pt>,
}

impl Simplifier {
    /// Simplifies an open polyline in place, keeping both ends.
    pub fn line(&mut self, points: &mut Vec<Pt>, tolerance: f64) {
        let n = points.len();
        if n < 3 || tolerance <= 0.0 {
            return;
        }
        let tol2 = tolerance * tolerance;
        self.keep.clear();
        self.keep.resize(n, false);
        self.keep[0] = true;
        self.keep[n - 1] = true;
        self.stack.clear();
        self.stack.push((0, n - 1));
        while let Some((first, last)) = self.stack.pop() {
            let (mut worst, mut worst_d2) = (0, tol2);
            for i in first + 1..last {
                let d2 = seg_dist2(points[i], points[first], points[last]);
                if d2 > worst_d2 {
                    worst = i;
                    worst_d2 = d2;
                }
            }
            if worst != 0 {
                self.keep[worst] = true;
                self.stack.push((first, worst));
                self.stack.push((worst, last));
            }
        }
        let mut i = 0;
        let keep = &self.keep;
        points.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    /// Simplifies a ring given without its closing point. The ring is split at its first
    /// point and at the point farthest from it, so that neither half starts and ends at
    /// one place.
    pub fn ring(&mut self, ring: &mut Vec<Pt>, tolerance: f64) {
        if ring.len() < 4 || tolerance <= 0.0 {
            return;
        }
        let a = ring[0];
        let dist2 = |p: &Pt| (p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2);
        let far = (1..ring.len())
            .max_by(|&i, &j| dist2(&ring[i]).total_cmp(&dist2(&ring[j])))
            .unwrap_or(1);
        let mut second = std::mem::take(&mut self.half);
        second.clear();
        second.extend_from_slice(&ring[far..]);
        second.push(a);
        ring.truncate(far + 1);
        self.line(ring, tolerance);
        self.line(&mut second, tolerance);
        ring.extend_from_slice(&second[1..second.len() - 1]);
        self.half = second;
    }
}

/// Simplifies an open polyline in place, keeping both ends.
///
/// # Examples
/// ```
/// use urbantile::tiles::simplify::simplify_line;
/// let mut line = vec![[0.0, 0.0], [5.0, 0.2], [10.0, 0.0], [10.0, 10.0]];
/// simplify_line(&mut line, 1.0);
/// assert_eq!(line, vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]);
/// ```
pub fn simplify_line(points: &mut Vec<Pt>, tolerance: f64) {
    Simplifier::default().line(points, tolerance);
}

/// Simplifies a ring given without its closing point (see [`Simplifier::ring`]).
pub fn simplify_ring(ring: &mut Vec<Pt>, tolerance: f64) {
    Simplifier::default().ring(ring, tolerance);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_within_tolerance_of_the_chord_are_dropped() {
        let mut line: Vec<Pt> = (0..=100)
            .map(|i| [i as f64, (i % 2) as f64 * 0.3])
            .collect();
        simplify_line(&mut line, 0.5);
        assert_eq!(line, vec![[0.0, 0.0], [100.0, 0.0]]);
    }

    #[test]
    fn a_corner_beyond_tolerance_is_kept() {
        let mut line = vec![[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]];
        simplify_line(&mut line, 1.0);
        assert_eq!(line.len(), 3);
    }

    #[test]
    fn a_square_ring_with_noise_keeps_its_four_corners() {
        let mut ring = vec![
            [0.0, 0.0],
            [5.0, 0.1],
            [10.0, 0.0],
            [10.1, 5.0],
            [10.0, 10.0],
            [5.0, 9.9],
            [0.0, 10.0],
            [-0.1, 5.0],
        ];
        simplify_ring(&mut ring, 0.5);
        assert_eq!(
            ring,
            vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
        );
    }
}
