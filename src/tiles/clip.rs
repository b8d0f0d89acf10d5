//! Clipping to an axis-aligned square in tile-local coordinates: Liang-Barsky for polylines
//! (a line that leaves and re-enters becomes several parts) and Sutherland-Hodgman for
//! polygon rings. Both are O(n) per ring and allocate only their output.
//!
//! Sutherland-Hodgman keeps a concave ring as one ring, so parts that the clip separates stay
//! joined by zero-width edges along the clip border. Those edges lie outside the visible tile
//! (in the buffer), which is why the buffer exists.

/// A point in tile-local units (x right, y down).
pub type Pt = [f64; 2];

/// The clip square `[min, max]` on both axes, in tile-local units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipSquare {
    pub min: f64,
    pub max: f64,
}

impl ClipSquare {
    pub fn contains(&self, p: Pt) -> bool {
        p[0] >= self.min && p[0] <= self.max && p[1] >= self.min && p[1] <= self.max
    }

    /// `Some(true)` when the box lies wholly inside, `Some(false)` when wholly outside,
    /// `None` when it straddles the border.
    fn classify(&self, lo: Pt, hi: Pt) -> Option<bool> {
        if hi[0] < self.min || lo[0] > self.max || hi[1] < self.min || lo[1] > self.max {
            Some(false)
        } else if lo[0] >= self.min && hi[0] <= self.max && lo[1] >= self.min && hi[1] <= self.max {
            Some(true)
        } else {
            None
        }
    }
}

fn bounds(points: &[Pt]) -> (Pt, Pt) {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for p in points {
        lo[0] = lo[0].min(p[0]);
        lo[1] = lo[1].min(p[1]);
        hi[0] = hi[0].max(p[0]);
        hi[1] = hi[1].max(p[1]);
    }
    (lo, hi)
}

/// Liang-Barsky: the visible part of segment `a -> b` as parameters `(t0, t1)`.
fn clip_segment(a: Pt, b: Pt, sq: &ClipSquare) -> Option<(f64, f64)> {
    let d = [b[0] - a[0], b[1] - a[1]];
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for axis in 0..2 {
        for (p, q) in [(-d[axis], a[axis] - sq.min), (d[axis], sq.max - a[axis])] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    if r > t1 {
                        return None;
                    }
                    t0 = t0.max(r);
                } else {
                    if r < t0 {
                        return None;
                    }
                    t1 = t1.min(r);
                }
            }
        }
    }
    Some((t0, t1))
}

fn lerp(a: Pt, b: Pt, t: f64) -> Pt {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// Clips a polyline, appending each visible part (two or more points) to `out`.
///
/// # Examples
/// ```
/// use urbantile::tiles::clip::{clip_line, ClipSquare};
/// let sq = ClipSquare { min: 0.0, max: 10.0 };
/// let mut parts = Vec::new();
/// clip_line(&[[-5.0, 5.0], [5.0, 5.0], [5.0, 20.0]], &sq, &mut parts);
/// assert_eq!(parts, vec![vec![[0.0, 5.0], [5.0, 5.0], [5.0, 10.0]]]);
/// ```
pub fn clip_line(points: &[Pt], sq: &ClipSquare, out: &mut Vec<Vec<Pt>>) {
    if points.len() < 2 {
        return;
    }
    let (lo, hi) = bounds(points);
    match sq.classify(lo, hi) {
        Some(true) => {
            out.push(points.to_vec());
            return;
        }
        Some(false) => return,
        None => {}
    }
    let mut part: Vec<Pt> = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        match clip_segment(a, b, sq) {
            None => flush(&mut part, out),
            Some((t0, t1)) => {
                if t0 > 0.0 {
                    // The segment starts outside: whatever came before is a finished part.
                    flush(&mut part, out);
                }
                if part.is_empty() {
                    part.push(if t0 > 0.0 { lerp(a, b, t0) } else { a });
                }
                part.push(if t1 < 1.0 { lerp(a, b, t1) } else { b });
                if t1 < 1.0 {
                    flush(&mut part, out);
                }
            }
        }
    }
    flush(&mut part, out);
}

fn flush(part: &mut Vec<Pt>, out: &mut Vec<Vec<Pt>>) {
    if part.len() >= 2 {
        out.push(std::mem::take(part));
    } else {
        part.clear();
    }
}

/// Clips a ring given without its closing point; returns the clipped ring, also open, which
/// is empty when nothing of the ring lies inside.
///
/// # Examples
/// ```
/// use urbantile::tiles::clip::{clip_ring, ClipSquare};
/// let sq = ClipSquare { min: 0.0, max: 10.0 };
/// let ring = clip_ring(&[[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]], &sq);
/// assert_eq!(ring.len(), 4); // the quarter of the square inside
/// ```
pub fn clip_ring(ring: &[Pt], sq: &ClipSquare) -> Vec<Pt> {
    let mut out = Vec::new();
    clip_ring_into(ring, sq, &mut out, &mut Vec::new());
    out
}

/// [`clip_ring`] into a caller's buffer `out`, with `tmp` as scratch, so that a tile's
/// thousands of rings reuse two allocations.
pub fn clip_ring_into(ring: &[Pt], sq: &ClipSquare, out: &mut Vec<Pt>, tmp: &mut Vec<Pt>) {
    out.clear();
    if ring.len() < 3 {
        return;
    }
    let (lo, hi) = bounds(ring);
    match sq.classify(lo, hi) {
        Some(true) => {
            out.extend_from_slice(ring);
            return;
        }
        Some(false) => return,
        None => {}
    }
    // Passes alternate between the buffers (out -> tmp -> out -> tmp -> out), one per
    // edge: left, right, top, bottom. The fourth pass writes `out`.
    out.extend_from_slice(ring);
    for edge in 0..4 {
        if edge % 2 == 0 {
            clip_pass(out, tmp, edge, sq);
        } else {
            clip_pass(tmp, out, edge, sq);
        }
    }
}

/// One Sutherland-Hodgman pass of `src` against one edge of the square into `dst`.
fn clip_pass(src: &[Pt], dst: &mut Vec<Pt>, edge: u8, sq: &ClipSquare) {
    dst.clear();
    let (axis, bound, keep_above) = match edge {
        0 => (0, sq.min, true),
        1 => (0, sq.max, false),
        2 => (1, sq.min, true),
        _ => (1, sq.max, false),
    };
    let inside = |p: Pt| {
        if keep_above {
            p[axis] >= bound
        } else {
            p[axis] <= bound
        }
    };
    let cross = |a: Pt, b: Pt| {
        let t = (bound - a[axis]) / (b[axis] - a[axis]);
        let mut p = lerp(a, b, t);
        p[axis] = bound; // exact, so that later passes see it on the border
        p
    };
    let Some(&last) = src.last() else { return };
    let mut prev = last;
    for &cur in src {
        match (inside(prev), inside(cur)) {
            (true, true) => dst.push(cur),
            (true, false) => dst.push(cross(prev, cur)),
            (false, true) => {
                dst.push(cross(prev, cur));
                dst.push(cur);
            }
            (false, false) => {}
        }
        prev = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQ: ClipSquare = ClipSquare {
        min: 0.0,
        max: 10.0,
    };

    fn area(ring: &[Pt]) -> f64 {
        let n = ring.len();
        (0..n)
            .map(|i| {
                let (a, b) = (ring[i], ring[(i + 1) % n]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn a_line_that_leaves_and_returns_becomes_two_parts() {
        let mut parts = Vec::new();
        clip_line(
            &[[2.0, 5.0], [15.0, 5.0], [15.0, 8.0], [2.0, 8.0]],
            &SQ,
            &mut parts,
        );
        assert_eq!(
            parts,
            vec![vec![[2.0, 5.0], [10.0, 5.0]], vec![[10.0, 8.0], [2.0, 8.0]]]
        );
    }

    #[test]
    fn a_line_crossing_the_square_is_cut_at_both_borders() {
        let mut parts = Vec::new();
        clip_line(&[[-10.0, 5.0], [20.0, 5.0]], &SQ, &mut parts);
        assert_eq!(parts, vec![vec![[0.0, 5.0], [10.0, 5.0]]]);
    }

    #[test]
    fn a_line_wholly_outside_gives_nothing() {
        let mut parts = Vec::new();
        clip_line(&[[-10.0, -5.0], [20.0, -5.0]], &SQ, &mut parts);
        assert!(parts.is_empty());
    }

    #[test]
    fn a_ring_covering_the_square_becomes_the_square() {
        let ring = clip_ring(
            &[[-5.0, -5.0], [15.0, -5.0], [15.0, 15.0], [-5.0, 15.0]],
            &SQ,
        );
        assert!((area(&ring).abs() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_diamond_loses_the_parts_outside_the_square() {
        // |x-5| + |y-5| <= 7 meets the square [0,10]^2 in the square minus four corner
        // triangles with legs of 3: 100 - 4 * 4.5 = 82.
        let ring = clip_ring(&[[5.0, -2.0], [12.0, 5.0], [5.0, 12.0], [-2.0, 5.0]], &SQ);
        assert!((area(&ring).abs() - 82.0).abs() < 1e-9, "{}", area(&ring));
        assert!(ring.iter().all(|p| SQ.contains(*p)));
    }

    #[test]
    fn clipping_keeps_the_winding() {
        let ccw = [[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]];
        assert!(area(&clip_ring(&ccw, &SQ)) > 0.0);
        let cw: Vec<Pt> = ccw.iter().rev().copied().collect();
        assert!(area(&clip_ring(&cw, &SQ)) < 0.0);
    }
}
