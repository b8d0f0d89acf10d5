//! Rounding to a tile's integer grid, shared by the per-zoom grid geometry
//! ([`crate::tiles::grid`]) and the tile cutter ([`crate::tiles::render`]): rings opened,
//! points quantised with repeats dropped, collapsed parts detected, winding fixed as MVT 2.1
//! asks (exterior rings have positive area in tile coordinates, y down; holes negative).

use geo::Coord;

use crate::tiles::clip::Pt;

/// A ring's points without its closing point (a line's, when it does not close).
pub(crate) fn open_ring(coords: &[Coord<f64>]) -> &[Coord<f64>] {
    match coords {
        [first, .., last] if first == last => &coords[..coords.len() - 1],
        _ => coords,
    }
}

/// Whether the points' box is smaller than `tolerance` on both axes, so that simplifying to
/// it would collapse them; never for a tolerance of 0 (except no points at all).
pub(crate) fn smaller_than(points: &[Pt], tolerance: f64) -> bool {
    if tolerance <= 0.0 && !points.is_empty() {
        return false;
    }
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in points {
        lo = [lo[0].min(p[0]), lo[1].min(p[1])];
        hi = [hi[0].max(p[0]), hi[1].max(p[1])];
    }
    hi[0] - lo[0] < tolerance && hi[1] - lo[1] < tolerance
}

/// Rounds to the grid and drops consecutive repeats.
pub(crate) fn quantise(points: &[Pt], out: &mut Vec<[i32; 2]>) {
    out.clear();
    for p in points {
        let q = [p[0].round() as i32, p[1].round() as i32];
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
}

/// Twice the signed area by the surveyor's formula, in tile coordinates.
pub(crate) fn area2(ring: &[[i32; 2]]) -> i64 {
    let n = ring.len();
    let mut sum = 0i64;
    for i in 0..n {
        let a = ring[i];
        let b = ring[(i + 1) % n];
        sum += a[0] as i64 * b[1] as i64 - b[0] as i64 * a[1] as i64;
    }
    sum
}

/// Rounds a ring (given without its closing point) to the grid into `grid`, wound for its
/// role (exterior: positive area in tile coordinates, y down); returns twice its signed
/// area, `None` when it collapsed to fewer than three points or no area.
pub(crate) fn grid_ring(points: &[Pt], grid: &mut Vec<[i32; 2]>, exterior: bool) -> Option<i64> {
    quantise(points, grid);
    while grid.len() > 1 && grid.first() == grid.last() {
        grid.pop();
    }
    if grid.len() < 3 {
        return None;
    }
    let mut a = area2(grid);
    if a == 0 {
        return None;
    }
    if (a > 0) != exterior {
        grid.reverse();
        a = -a;
    }
    Some(a)
}

/// Twice the signed area of a ring of tile-local points.
pub(crate) fn signed_area2(ring: &[Pt]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}
