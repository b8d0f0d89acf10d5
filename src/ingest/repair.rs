//! Make-valid: turns an invalid polygon, multipolygon or line into a valid one that covers
//! what the input meant, or says why nothing is left.
//!
//! It lives in `ingest` beside [`super::validate`] because deciding what a record's geometry
//! means is validation: the store and the index only ever see valid geometry, and the tile
//! code in `tiles` may assume it. It is pure geometry (no I/O), in lon/lat degrees (any
//! planar CRS works the same way).
//!
//! # What it does
//! Polygons follow the "structure" reading of a polygon (the one GEOS's `GeometryFixer` and
//! PostGIS's `ST_MakeValid(g, 'method=structure')` use): the shell says what is inside, the
//! holes say what is cut out of it.
//! - Each ring is filled by the non-zero winding rule, so a bow-tie becomes two triangles, a
//!   figure-eight two loops, a ring that runs round twice one area; spikes and cut lines
//!   have no area and vanish. Repeated points are dropped; a ring with fewer than 3
//!   distinct points (or no area) is dropped.
//! - The filled holes are unioned and cut from the filled shell. A hole that lies wholly
//!   outside its shell cuts nothing; it is taken as a misfiled shell and kept as a part
//!   (as GEOS does), since dropping it would drop area.
//! - The parts of a multipolygon are unioned: overlapping parts merge, a shell nested in
//!   another is absorbed.
//! - The result is clamped to the input's envelope (the overlay rounds to its integer grid,
//!   which could move an extreme point by an ulp) and checked with geo's
//!   [`Validation`]; a result that is still invalid is refused rather than stored.
//!
//! Lines lose repeated consecutive points and parts with fewer than 2 distinct points.
//!
//! Overlays use geo's [`BooleanOps`] (i_overlay), which nodes every crossing.
//!
//! # Cost
//! With n vertices and k crossings, the crossings are first counted with an R-tree of the
//! segments, O(n log n) for ordinary rings; past [`MAX_CROSSINGS`] crossings (or a bounded
//! number of segment pairs whose boxes meet, for rings whose segments all overlap) the
//! geometry is refused as too complex, because the overlay's time grows faster than
//! linearly in k (a 500-point star, 125,000 crossings, took 14 s in a debug build). Below
//! that, each overlay is O((n + k) log n): a polygon costs one per ring, one union of its
//! holes and one difference; a multipolygon one more union of all parts. Deciding whether
//! a hole lies outside its shell is one point-in-polygon test per hole, O(n_shell), and
//! only for a hole whose first point is not inside, O(n_shell x n_hole). The final check
//! is geo's [`Validation`], the same check (and cost) every input record already passed,
//! which for large polygons is the dominant term. Memory is O(n + k). Callers run this
//! only on geometry that failed validation, so valid input pays nothing.
//!
//! # Examples
//! ```
//! use geo::{Area, Validation, wkt};
//! use urbantile::ingest::repair::make_valid;
//!
//! let bowtie = wkt!(POLYGON((0. 0., 1. 1., 1. 0., 0. 1., 0. 0.)));
//! let fixed = make_valid(&bowtie.into()).unwrap();
//! assert!(fixed.is_valid());
//! assert_eq!(fixed.unsigned_area(), 0.5);
//! ```

use geo::algorithm::bool_ops::FillRule;
use geo::algorithm::line_intersection::line_intersection;
use geo::algorithm::orient::Direction;
use geo::algorithm::validation::{InvalidGeometry, InvalidMultiPolygon, InvalidPolygon, RingRole};
use geo::coordinate_position::CoordPos;
use geo::{
    BooleanOps, Coord, CoordinatePosition, CoordsIter, Geometry, Intersects, Line,
    LineIntersection, LineString, MapCoordsInPlace, MultiLineString, MultiPolygon, Orient, Polygon,
    Rect, Validation, unary_union,
};

/// Why a geometry could not be made valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unrepairable {
    #[error("no area is left")]
    NoArea,
    #[error("no line with 2 distinct points is left")]
    NoLength,
    #[error("a {0} has nothing to repair")]
    Kind(&'static str),
    #[error(
        "its rings cross more than {MAX_CROSSINGS} times, or too many of their segments overlap"
    )]
    TooComplex,
    #[error("the repaired geometry is still invalid: {0}")]
    StillInvalid(String),
    /// The polygon overlay gave up on this input (it asserts on some degenerate shapes).
    #[error("the overlay that repairs it failed on this shape")]
    OverlayFailed,
}

/// A valid geometry covering what `g` meant (see the module docs), or why nothing is left.
///
/// Meant for geometry that failed [`Validation`]: a valid input comes back equivalent but
/// possibly re-noded, so callers check validity first and keep valid input as it is.
/// Coordinates must be finite (validation refuses the rest before this runs).
///
/// The overlay crate panics on some degenerate inputs (found by fuzzing: an assertion in
/// its OGC extraction); that is caught here and reported as [`Unrepairable::OverlayFailed`],
/// so that a bad record is refused rather than taking an ingest or a request down.
pub fn make_valid(g: &Geometry<f64>) -> Result<Geometry<f64>, Unrepairable> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make_valid_unguarded(g)))
        .unwrap_or(Err(Unrepairable::OverlayFailed))
}

fn make_valid_unguarded(g: &Geometry<f64>) -> Result<Geometry<f64>, Unrepairable> {
    match g {
        Geometry::Polygon(p) => areal(std::slice::from_ref(p), g),
        Geometry::MultiPolygon(mp) => areal(&mp.0, g),
        Geometry::Rect(r) => areal(&[r.to_polygon()], g),
        Geometry::Triangle(t) => areal(&[t.to_polygon()], g),
        Geometry::LineString(ls) => clean_line(ls)
            .map(Geometry::LineString)
            .ok_or(Unrepairable::NoLength),
        Geometry::MultiLineString(mls) => {
            let parts: Vec<LineString<f64>> = mls.iter().filter_map(clean_line).collect();
            if parts.is_empty() {
                return Err(Unrepairable::NoLength);
            }
            Ok(Geometry::MultiLineString(MultiLineString::new(parts)))
        }
        Geometry::Line(l) if l.start != l.end => Ok(Geometry::Line(*l)),
        Geometry::Line(_) => Err(Unrepairable::NoLength),
        Geometry::Point(_) => Err(Unrepairable::Kind("point")),
        Geometry::MultiPoint(_) => Err(Unrepairable::Kind("multipoint")),
        Geometry::GeometryCollection(_) => Err(Unrepairable::Kind("geometry collection")),
    }
}

/// Where the first of `g`'s validation problems is, when it is a ring that crosses or
/// folds back on itself: a point of the crossing, for error messages.
pub fn locate(g: &Geometry<f64>, problem: &InvalidGeometry) -> Option<Coord<f64>> {
    let (polygon, role) = match (g, problem) {
        (
            Geometry::Polygon(p),
            InvalidGeometry::InvalidPolygon(InvalidPolygon::SelfIntersection(role)),
        ) => (p, role),
        (
            Geometry::MultiPolygon(mp),
            InvalidGeometry::InvalidMultiPolygon(InvalidMultiPolygon::InvalidPolygon(
                i,
                InvalidPolygon::SelfIntersection(role),
            )),
        ) => (mp.0.get(i.0)?, role),
        _ => return None,
    };
    let ring = match role {
        RingRole::Exterior => polygon.exterior(),
        RingRole::Interior(i) => polygon.interiors().get(*i)?,
    };
    crossings(&[ring], 1).0.first().copied()
}

/// Segment pairs whose boxes meet that a crossing search tests before it gives up.
const PAIRS_TESTED: usize = 2_000_000;

/// Crossings past which a geometry is refused as too complex to repair: the overlay's time
/// grows faster than linearly in them (a 500-point star with 125,000 crossings takes 14 s),
/// while a real footprint has a handful.
pub const MAX_CROSSINGS: usize = 10_000;

/// Where a ring crosses, touches or runs back along itself or another ring, other than at
/// the vertex two neighbouring segments of a ring share: at most `limit` points, and
/// whether the search was complete (false when it stopped at `limit` points or after
/// [`PAIRS_TESTED`] pairs).
///
/// The segments go into an R-tree (O(n log n)); each is tested against those whose boxes
/// meet its own, so ordinary rings cost O(n log n) and a ring whose segments all overlap
/// stops at the pair budget. Iterative, so no input can exhaust the stack.
fn crossings(rings: &[&LineString<f64>], limit: usize) -> (Vec<Coord<f64>>, bool) {
    use rstar::primitives::{GeomWithData, Line as Segment};
    use rstar::{RTree, RTreeObject};

    // (ring, segment index in it, segments in it)
    type Tag = (usize, usize, usize);
    let mut segments: Vec<GeomWithData<Segment<[f64; 2]>, Tag>> = Vec::new();
    for (r, ring) in rings.iter().enumerate() {
        let mut coords = ring.0.clone();
        coords.dedup();
        let n = coords.len().saturating_sub(1);
        for (i, w) in coords.windows(2).enumerate() {
            let line = Segment::new([w[0].x, w[0].y], [w[1].x, w[1].y]);
            segments.push(GeomWithData::new(line, (r, i, n)));
        }
    }
    let tree = RTree::bulk_load(segments);
    let mut found = Vec::new();
    let mut budget = PAIRS_TESTED;
    for a in tree.iter() {
        for b in tree.locate_in_envelope_intersecting(a.envelope()) {
            let ((ra, ia, n), (rb, ib, _)) = (a.data, b.data);
            if (ra, ia) >= (rb, ib) {
                continue;
            }
            let Some(left) = budget.checked_sub(1) else {
                return (found, false);
            };
            budget = left;
            let line = |s: &Segment<[f64; 2]>| {
                Line::new(
                    geo::coord! {x: s.from[0], y: s.from[1]},
                    geo::coord! {x: s.to[0], y: s.to[1]},
                )
            };
            let neighbours = ra == rb && (ib == ia + 1 || (ia == 0 && ib + 1 == n));
            let point = match line_intersection(line(a.geom()), line(b.geom())) {
                None => continue,
                Some(LineIntersection::SinglePoint { .. }) if neighbours => continue,
                Some(LineIntersection::SinglePoint { intersection, .. }) => intersection,
                Some(LineIntersection::Collinear { intersection }) => intersection.start,
            };
            found.push(point);
            if found.len() >= limit {
                return (found, false);
            }
        }
    }
    (found, true)
}

/// A line without repeated consecutive points, if it still has 2.
fn clean_line(ls: &LineString<f64>) -> Option<LineString<f64>> {
    let mut coords = ls.0.clone();
    coords.dedup();
    (coords.len() >= 2).then(|| LineString::new(coords))
}

/// The polygons as one valid areal geometry, inside the envelope of `input`.
fn areal(polygons: &[Polygon<f64>], input: &Geometry<f64>) -> Result<Geometry<f64>, Unrepairable> {
    let rings: Vec<&LineString<f64>> = polygons
        .iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        .collect();
    if !crossings(&rings, MAX_CROSSINGS + 1).1 {
        return Err(Unrepairable::TooComplex);
    }
    let parts: Vec<Polygon<f64>> = polygons
        .iter()
        .flat_map(|p| fix_polygon(p).0)
        .map(|p| p.orient(Direction::Default))
        .collect();
    let mut merged = if parts.len() > 1 {
        unary_union(&parts)
    } else {
        MultiPolygon::new(parts)
    };
    // Every ring counts: `bounding_rect` of a polygon is its shell's, and a hole outside
    // the shell is kept.
    if let Some(envelope) = envelope(input) {
        clamp(&mut merged, envelope);
    }
    merged.0.retain(|p| !p.exterior().0.is_empty());
    let out = match merged.0.len() {
        0 => return Err(Unrepairable::NoArea),
        1 => Geometry::Polygon(merged.0.remove(0)),
        _ => Geometry::MultiPolygon(merged),
    };
    if let Some(problem) = out.validation_errors().first() {
        return Err(Unrepairable::StillInvalid(problem.to_string()));
    }
    Ok(out)
}

/// One polygon's valid parts: its filled shell less its filled holes, plus any hole that
/// lies wholly outside the shell.
fn fix_polygon(p: &Polygon<f64>) -> MultiPolygon<f64> {
    let shell = fill(p.exterior());
    if shell.0.is_empty() || p.interiors().is_empty() {
        return shell;
    }
    let mut cut = Vec::new();
    let mut outside = Vec::new();
    for piece in p.interiors().iter().flat_map(|h| fill(h).0) {
        if overlaps_shell(&shell, &piece) {
            cut.push(piece.orient(Direction::Default));
        } else {
            outside.push(piece);
        }
    }
    let mut out = if cut.is_empty() {
        shell
    } else {
        // The cut pieces may overlap one another: union them first, because the difference
        // reads its operands by the even-odd rule.
        shell.difference(&unary_union(&cut))
    };
    out.0.extend(outside);
    out
}

/// The area a ring encloses, by the non-zero winding rule, as valid polygons; empty for a
/// ring with fewer than 3 distinct points or no area.
fn fill(ring: &LineString<f64>) -> MultiPolygon<f64> {
    let mut coords = ring.0.clone();
    coords.dedup();
    if coords.len() > 1 && coords.first() == coords.last() {
        coords.pop();
    }
    if coords.len() < 3 {
        return MultiPolygon::new(Vec::new());
    }
    Polygon::new(LineString::new(coords), Vec::new())
        .union_with_fill_rule(&MultiPolygon::new(Vec::new()), FillRule::NonZero)
}

/// Whether a filled hole piece shares any area or boundary with the filled shell. The
/// usual case, a hole inside its shell, is settled by one point-in-polygon test.
fn overlaps_shell(shell: &MultiPolygon<f64>, piece: &Polygon<f64>) -> bool {
    let Some(&first) = piece.exterior().0.first() else {
        return false;
    };
    shell.coordinate_position(&first) != CoordPos::Outside || shell.intersects(piece)
}

/// The rectangle around every coordinate of `g`, holes included.
pub fn envelope(g: &Geometry<f64>) -> Option<Rect<f64>> {
    g.coords_iter().map(|c| Rect::new(c, c)).reduce(|a, b| {
        Rect::new(
            geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
            geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
        )
    })
}

/// Pulls every coordinate into `envelope`.
fn clamp(mp: &mut MultiPolygon<f64>, envelope: Rect<f64>) {
    let (min, max) = (envelope.min(), envelope.max());
    mp.map_coords_in_place(|c| {
        geo::coord! {
            x: c.x.clamp(min.x, max.x),
            y: c.y.clamp(min.y, max.y),
        }
    });
}

#[cfg(test)]
mod tests {
    //! Expected areas are worked out by hand; each also matches what shapely 2.2 (GEOS 3.14)
    //! gives with `make_valid(g, method="structure")` for the same WKT.

    use super::*;
    use geo::{Area, BoundingRect, wkt};

    /// Repairs `g`, checks that the result is valid, inside the input's envelope and of
    /// the expected area, and returns it.
    fn repaired(g: impl Into<Geometry<f64>>, area: f64) -> Geometry<f64> {
        let g = g.into();
        assert!(!g.is_valid(), "the test input should be invalid: {g:?}");
        let out = make_valid(&g).unwrap();
        assert!(out.is_valid(), "{:?}", out.validation_errors());
        let (inside, outside) = (envelope(&g).unwrap(), envelope(&out).unwrap());
        assert!(
            inside.min().x <= outside.min().x
                && inside.min().y <= outside.min().y
                && outside.max().x <= inside.max().x
                && outside.max().y <= inside.max().y,
            "{outside:?} is not inside {inside:?}"
        );
        assert!(
            (out.unsigned_area() - area).abs() <= 1e-9 * area + 1e-12,
            "area {} instead of {area}: {out:?}",
            out.unsigned_area()
        );
        out
    }

    fn parts(g: &Geometry<f64>) -> usize {
        match g {
            Geometry::Polygon(_) => 1,
            Geometry::MultiPolygon(mp) => mp.0.len(),
            other => panic!("not areal: {other:?}"),
        }
    }

    #[test]
    fn a_bow_tie_becomes_two_triangles() {
        let out = repaired(wkt!(POLYGON((0. 0., 1. 1., 1. 0., 0. 1., 0. 0.))), 0.5);
        assert_eq!(parts(&out), 2);
    }

    #[test]
    fn a_figure_eight_becomes_its_two_loops() {
        let out = repaired(
            wkt!(POLYGON((0. 0., 2. 0., 2. 2., 4. 2., 4. 4., 2. 4., 2. 2., 0. 2., 0. 0.))),
            8.0,
        );
        assert_eq!(parts(&out), 2);
    }

    #[test]
    fn overlapping_parts_of_a_multipolygon_become_their_union() {
        let out = repaired(
            wkt!(MULTIPOLYGON(((0. 0., 2. 0., 2. 2., 0. 2., 0. 0.)), ((1. 1., 3. 1., 3. 3., 1. 3., 1. 1.)))),
            7.0,
        );
        assert_eq!(parts(&out), 1);
    }

    #[test]
    fn a_spike_is_cut_off() {
        let out = repaired(
            wkt!(POLYGON((0. 0., 2. 0., 2. 1., 4. 1., 2. 1., 2. 2., 0. 2., 0. 0.))),
            4.0,
        );
        assert_eq!(out.bounding_rect().unwrap().max().x, 2.0);
    }

    #[test]
    fn duplicate_points_are_dropped_and_the_shape_kept() {
        // A square whose corners repeat, with a spike to a repeated point.
        repaired(
            wkt!(POLYGON((0. 0., 0. 0., 2. 0., 2. 0., 2. 2., 3. 3., 3. 3., 2. 2., 0. 2., 0. 0.))),
            4.0,
        );
        let line = Geometry::LineString(wkt!(LINESTRING(0. 0., 0. 0., 1. 1., 1. 1.)));
        assert_eq!(
            make_valid(&line).unwrap(),
            Geometry::LineString(wkt!(LINESTRING(0. 0., 1. 1.)))
        );
    }

    #[test]
    fn a_ring_with_two_distinct_points_has_no_area() {
        let g: Geometry<f64> = wkt!(POLYGON((0. 0., 1. 1., 0. 0., 1. 1., 0. 0.))).into();
        assert!(!g.is_valid());
        assert_eq!(make_valid(&g), Err(Unrepairable::NoArea));
    }

    #[test]
    fn a_hole_with_two_distinct_points_is_dropped() {
        repaired(
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (1. 1., 2. 2., 1. 1., 1. 1.))),
            16.0,
        );
    }

    #[test]
    fn a_hole_outside_its_shell_is_kept_as_a_part() {
        let out = repaired(
            wkt!(POLYGON((0. 0., 2. 0., 2. 2., 0. 2., 0. 0.), (3. 3., 4. 3., 4. 4., 3. 4., 3. 3.))),
            5.0,
        );
        assert_eq!(parts(&out), 2);
    }

    #[test]
    fn a_hole_across_its_shell_cuts_only_what_it_covers() {
        repaired(
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (3. 1., 5. 1., 5. 3., 3. 3., 3. 1.))),
            14.0,
        );
    }

    #[test]
    fn overlapping_holes_cut_their_union() {
        repaired(
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (1. 1., 5. 1., 5. 5., 1. 5., 1. 1.),
                (3. 3., 7. 3., 7. 7., 3. 7., 3. 3.)
            )),
            100.0 - 28.0,
        );
    }

    #[test]
    fn a_shell_nested_in_another_is_absorbed() {
        let out = repaired(
            wkt!(MULTIPOLYGON(((0. 0., 10. 0., 10. 10., 0. 10., 0. 0.)), ((2. 2., 4. 2., 4. 4., 2. 4., 2. 2.)))),
            100.0,
        );
        assert_eq!(parts(&out), 1);
    }

    #[test]
    fn a_ring_that_runs_round_twice_is_filled_once() {
        repaired(
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0., 1. 1., 3. 1., 3. 3., 1. 3., 1. 1., 0. 0.))),
            16.0,
        );
    }

    #[test]
    fn real_coordinates_survive_the_overlay_grid() {
        // A Helsinki-sized bow-tie: the overlay's integer grid must not move the result
        // off the input noticeably.
        let out = repaired(
            wkt!(POLYGON((24.9400 60.1700, 24.9410 60.1710, 24.9410 60.1700, 24.9400 60.1710, 24.9400 60.1700))),
            0.5e-6,
        );
        assert_eq!(parts(&out), 2);
    }

    #[test]
    fn a_crossing_is_located() {
        let at = |g: Geometry<f64>| {
            let problem = g.validation_errors().remove(0);
            locate(&g, &problem)
        };
        let bowtie = wkt!(POLYGON((0. 0., 1. 1., 1. 0., 0. 1., 0. 0.)));
        assert_eq!(
            at(bowtie.clone().into()),
            Some(geo::coord! {x: 0.5, y: 0.5})
        );
        let spike = wkt!(POLYGON((0. 0., 2. 0., 2. 1., 4. 1., 2. 1., 2. 2., 0. 2., 0. 0.)));
        let found = at(spike.into()).unwrap();
        assert!(
            found.y == 1.0 && (2.0..=4.0).contains(&found.x),
            "{found:?}"
        );
        let square = wkt!(POLYGON((5. 5., 6. 5., 6. 6., 5. 6., 5. 5.)));
        let two = MultiPolygon::new(vec![square, bowtie]);
        assert_eq!(at(two.into()), Some(geo::coord! {x: 0.5, y: 0.5}));
        let figure_eight =
            wkt!(POLYGON((0. 0., 2. 0., 2. 2., 4. 2., 4. 4., 2. 4., 2. 2., 0. 2., 0. 0.)));
        assert_eq!(at(figure_eight.into()), Some(geo::coord! {x: 2., y: 2.}));
    }

    #[test]
    fn a_ring_crossing_itself_too_often_is_refused_quickly() {
        // A 301-point star: each edge crosses most others, 44,700 crossings in all.
        let n = 301;
        let coords: Vec<Coord<f64>> = (0..=n)
            .map(|i| {
                let a = std::f64::consts::TAU * ((i * 150) % n) as f64 / n as f64;
                geo::coord! {x: a.cos(), y: a.sin()}
            })
            .collect();
        let star: Geometry<f64> = Polygon::new(LineString::new(coords), vec![]).into();
        let started = std::time::Instant::now();
        assert_eq!(make_valid(&star), Err(Unrepairable::TooComplex));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn lines_lose_parts_without_two_distinct_points() {
        let g = Geometry::MultiLineString(wkt!(MULTILINESTRING((0. 0., 0. 0.), (0. 0., 1. 0.))));
        assert!(!g.is_valid());
        assert_eq!(
            make_valid(&g).unwrap(),
            Geometry::MultiLineString(wkt!(MULTILINESTRING((0. 0., 1. 0.))))
        );
        let g = Geometry::LineString(wkt!(LINESTRING(5. 5., 5. 5., 5. 5.)));
        assert_eq!(make_valid(&g), Err(Unrepairable::NoLength));
    }
}
