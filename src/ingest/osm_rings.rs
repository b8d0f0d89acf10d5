//! Geometry assembly for OSM multipolygon relations: joining member ways into closed rings
//! by their shared end nodes, and turning outer and inner rings into (multi)polygons with
//! each hole given to the outer ring that contains it.
//!
//! Everything here works on in-memory node id lists and coordinates, so it can be tested
//! without a PBF file; reading the file and looking up nodes is [`super::osm`]'s job.

use std::collections::BTreeMap;

use geo::orient::{Direction, Orient};
use geo::{Area, Contains, Coord, Geometry, LineString, MultiPolygon, Polygon};

/// How a member way takes part in a multipolygon relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// "outer", and the empty role, which old relations use for outers.
    Outer,
    Inner,
    /// Any other role (e.g. "subarea"): not part of the area's geometry.
    Other,
}

impl Role {
    pub fn of_member(role: &str) -> Role {
        match role {
            "outer" | "" => Role::Outer,
            "inner" => Role::Inner,
            _ => Role::Other,
        }
    }
}

/// The geometry of a multipolygon relation from its member ways (role and node ids, in
/// member order) and a node coordinate lookup: outer and inner ways are joined into rings
/// separately, then holes are assigned by [`build_multipolygon`]. The error says which
/// ring cannot be closed or which node is missing.
pub fn assemble_multipolygon(
    members: &[(Role, &[i64])],
    node: impl Fn(i64) -> Option<Coord<f64>>,
) -> Result<Geometry<f64>, String> {
    let to_rings = |wanted: Role, what: &str| -> Result<Vec<LineString<f64>>, String> {
        let ways: Vec<&[i64]> = members
            .iter()
            .filter(|(role, _)| *role == wanted)
            .map(|(_, w)| *w)
            .collect();
        join_rings(&ways)
            .map_err(|e| format!("{what} {e}"))?
            .into_iter()
            .map(|ring| {
                ring.iter()
                    .map(|&id| {
                        node(id).ok_or_else(|| format!("node {id} is missing from the file"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(LineString::new)
            })
            .collect()
    };
    build_multipolygon(
        to_rings(Role::Outer, "outer")?,
        to_rings(Role::Inner, "inner")?,
    )
}

/// Joins ways (node id lists) into closed rings. A ring may be made of several ways, each in
/// either direction; ways that are closed on their own are rings as they are.
///
/// Rings are returned in the order of their first way, so the result is deterministic.
/// A way that cannot be joined into a closed ring is an error naming the node where the
/// chain stops, which is what a mapper needs to find the gap.
pub fn join_rings(ways: &[&[i64]]) -> Result<Vec<Vec<i64>>, String> {
    // Endpoint index over the open ways. A BTreeMap keeps the lookup order-independent of
    // hashing; within one node the candidates stay in member order.
    let mut by_end: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, way) in ways.iter().enumerate() {
        if way.len() < 2 {
            return Err(format!(
                "a member way has {} node(s), a ring needs at least 2 per way",
                way.len()
            ));
        }
        if !is_closed(way) {
            by_end.entry(way[0]).or_default().push(i);
            by_end.entry(way[way.len() - 1]).or_default().push(i);
        }
    }

    let mut used = vec![false; ways.len()];
    let mut rings = Vec::new();
    for (start, way) in ways.iter().enumerate() {
        if used[start] {
            continue;
        }
        used[start] = true;
        let mut chain: Vec<i64> = way.to_vec();
        while !is_closed(&chain) {
            let end = chain[chain.len() - 1];
            let next = by_end
                .get(&end)
                .and_then(|candidates| candidates.iter().copied().find(|&i| !used[i]));
            let Some(next) = next else {
                return Err(format!(
                    "ring starting at node {} cannot be closed: no further member way starts or ends at node {end}",
                    chain[0]
                ));
            };
            used[next] = true;
            let way = ways[next];
            if way[0] == end {
                chain.extend_from_slice(&way[1..]);
            } else {
                // The way runs the other way round: walk it backwards, skipping the shared node.
                chain.extend(way[..way.len() - 1].iter().rev());
            }
        }
        if chain.len() < 4 {
            return Err(format!(
                "ring through node {} has only {} nodes, a closed ring needs at least 4",
                chain[0],
                chain.len()
            ));
        }
        rings.push(chain);
    }
    Ok(rings)
}

fn is_closed(nodes: &[i64]) -> bool {
    nodes.len() >= 2 && nodes[0] == nodes[nodes.len() - 1]
}

/// Whether `outer` contains `inner` (boundaries may touch). geo's polygon-in-polygon test
/// goes through its relate graph, which panics on some invalid rings ("topology position
/// conflict", found by fuzzing an OSM relation): the caller passes only rings it found
/// valid (each checked once: the check is quadratic in a ring's points), and such a panic
/// counts as not contained; the caller then falls back on a point of the inner ring.
fn contains_ring(outer: &Polygon<f64>, inner: &Polygon<f64>) -> bool {
    use geo::BoundingRect;
    let (Some(o), Some(i)) = (outer.bounding_rect(), inner.bounding_rect()) else {
        return false;
    };
    if i.min().x < o.min().x
        || i.min().y < o.min().y
        || i.max().x > o.max().x
        || i.max().y > o.max().y
    {
        return false;
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outer.contains(inner)))
        .unwrap_or(false)
}

/// Builds the geometry of a multipolygon from closed outer and inner rings: each inner ring
/// becomes a hole of the smallest outer ring that contains it (the smallest, so that an
/// island inside a lake inside a forest gets the right parent). Exteriors come out
/// counter-clockwise and holes clockwise (RFC 7946). One outer gives a Polygon, several a
/// MultiPolygon.
pub fn build_multipolygon(
    outers: Vec<LineString<f64>>,
    inners: Vec<LineString<f64>>,
) -> Result<Geometry<f64>, String> {
    if outers.is_empty() {
        return Err("no outer ring".to_owned());
    }
    let mut polygons: Vec<Polygon<f64>> = outers
        .into_iter()
        .map(|ring| Polygon::new(ring, Vec::new()))
        .collect();
    let areas: Vec<f64> = polygons.iter().map(|p| p.unsigned_area()).collect();
    let valid: Vec<bool> = polygons.iter().map(geo::Validation::is_valid).collect();
    let mut holes: Vec<Vec<LineString<f64>>> = vec![Vec::new(); polygons.len()];

    for inner in inners {
        let inner_polygon = Polygon::new(inner, Vec::new());
        // Fallback for slightly sloppy data whose hole pokes out of its outer: an interior
        // point of the hole (not a vertex, which may sit on the outer ring) decides.
        let probe = crate::model::interior_point(&inner_polygon);
        let inner_valid = geo::Validation::is_valid(&inner_polygon);
        // The whole ring must lie in the outer (touching its boundary is allowed): a probe
        // point alone could land on an island that lies inside this very hole.
        let containing = |strict: bool| {
            polygons
                .iter()
                .enumerate()
                .filter(|(k, outer)| {
                    if strict {
                        inner_valid && valid[*k] && contains_ring(outer, &inner_polygon)
                    } else {
                        probe.is_some_and(|p| outer.contains(&p))
                    }
                })
                .min_by(|(a, _), (b, _)| areas[*a].total_cmp(&areas[*b]))
                .map(|(i, _)| i)
        };
        let parent = containing(true)
            .or_else(|| containing(false))
            .ok_or_else(|| {
                format!(
                    "inner ring at {} lies in no outer ring",
                    describe(inner_polygon.exterior())
                )
            })?;
        let (inner, _) = inner_polygon.into_inner();
        holes[parent].push(inner);
    }

    for (polygon, holes) in polygons.iter_mut().zip(holes) {
        for hole in holes {
            polygon.interiors_push(hole);
        }
    }
    let mut polygons: Vec<Polygon<f64>> = polygons
        .into_iter()
        .map(|p| p.orient(Direction::Default))
        .collect();
    Ok(if polygons.len() == 1 {
        Geometry::Polygon(polygons.remove(0))
    } else {
        Geometry::MultiPolygon(MultiPolygon::new(polygons))
    })
}

fn describe(ring: &LineString<f64>) -> String {
    ring.0
        .first()
        .map(|c: &Coord<f64>| format!("({:.7}, {:.7})", c.x, c.y))
        .unwrap_or_else(|| "(empty)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, size: f64) -> LineString<f64> {
        LineString::from(vec![
            (x0, y0),
            (x0 + size, y0),
            (x0 + size, y0 + size),
            (x0, y0 + size),
            (x0, y0),
        ])
    }

    #[test]
    fn ways_in_mixed_directions_join_into_one_ring() {
        // Ring 1-2-3-4-5-6-1 split into three ways; the second is stored backwards and the
        // third is listed before the second.
        let a: &[i64] = &[1, 2, 3];
        let c: &[i64] = &[5, 6, 1];
        let b: &[i64] = &[5, 4, 3];
        let rings = join_rings(&[a, c, b]).unwrap();
        assert_eq!(rings, vec![vec![1, 2, 3, 4, 5, 6, 1]]);
    }

    #[test]
    fn closed_ways_and_joined_ways_give_separate_rings_in_member_order() {
        let closed: &[i64] = &[10, 11, 12, 10];
        let a: &[i64] = &[1, 2, 3];
        let b: &[i64] = &[1, 4, 3];
        let rings = join_rings(&[a, closed, b]).unwrap();
        assert_eq!(rings, vec![vec![1, 2, 3, 4, 1], vec![10, 11, 12, 10]]);
    }

    #[test]
    fn a_gap_between_ways_is_an_error_naming_the_node() {
        let a: &[i64] = &[1, 2, 3];
        let b: &[i64] = &[4, 5, 1];
        let err = join_rings(&[a, b]).unwrap_err();
        assert!(err.contains("node 3") || err.contains("node 4"), "{err}");
    }

    #[test]
    fn a_closed_ring_of_three_nodes_is_too_small() {
        let a: &[i64] = &[1, 2, 1];
        assert!(join_rings(&[a]).is_err());
    }

    /// Nodes 1..=25 on a 5x5 grid 1 unit apart (id = 5 * row + col + 1); 100..=103 a unit
    /// square far away.
    fn grid_node(id: i64) -> Option<Coord<f64>> {
        match id {
            1..=25 => Some(Coord {
                x: ((id - 1) % 5) as f64,
                y: ((id - 1) / 5) as f64,
            }),
            100..=103 => Some(
                [(10.0, 0.0), (11.0, 0.0), (11.0, 1.0), (10.0, 1.0)][(id - 100) as usize].into(),
            ),
            _ => None,
        }
    }

    #[test]
    fn a_relation_with_two_outers_and_a_hole_becomes_a_valid_multipolygon() {
        use geo::Validation;
        // Outer A: square 1-5-25-21 in two ways, the second stored backwards. Hole inside A:
        // 7-9-19-17 in two ways. Outer B: one closed way far away.
        let a1: &[i64] = &[1, 2, 3, 4, 5, 10, 15, 20, 25];
        let a2: &[i64] = &[25, 24, 23, 22, 21, 16, 11, 6, 1];
        let h1: &[i64] = &[7, 8, 9, 14, 19];
        let h2: &[i64] = &[7, 12, 17, 18, 19];
        let b: &[i64] = &[100, 101, 102, 103, 100];
        let members = [
            (Role::Outer, a1),
            (Role::Inner, h1),
            (Role::Outer, b),
            (Role::Inner, h2),
            (Role::Outer, a2),
        ];
        let Geometry::MultiPolygon(mp) = assemble_multipolygon(&members, grid_node).unwrap() else {
            panic!("expected a MultiPolygon")
        };
        assert_eq!(mp.0.len(), 2);
        assert_eq!(
            mp.0[0].interiors().len(),
            1,
            "the hole belongs to the big square"
        );
        assert!(mp.0[1].interiors().is_empty());
        assert!((mp.unsigned_area() - (16.0 - 4.0 + 1.0)).abs() < 1e-9);
        assert!(mp.is_valid(), "{:?}", mp.validation_errors());
    }

    #[test]
    fn a_member_way_with_an_unknown_node_is_an_error() {
        let a: &[i64] = &[1, 2, 999, 1];
        let err = assemble_multipolygon(&[(Role::Outer, a)], grid_node).unwrap_err();
        assert!(err.contains("999"), "{err}");
    }

    #[test]
    fn holes_go_to_the_outer_that_contains_them_and_rings_are_oriented() {
        // Two outers; the hole lies in the second one. The first outer is given clockwise.
        let mut first = square(0.0, 0.0, 1.0);
        first.0.reverse();
        let second = square(5.0, 5.0, 4.0);
        let hole = square(6.0, 6.0, 1.0);
        let geometry = build_multipolygon(vec![first, second], vec![hole]).unwrap();
        let Geometry::MultiPolygon(mp) = geometry else {
            panic!("expected a MultiPolygon")
        };
        assert_eq!(mp.0.len(), 2);
        assert!(mp.0[0].interiors().is_empty());
        assert_eq!(mp.0[1].interiors().len(), 1);
        for polygon in &mp.0 {
            assert!(
                polygon.signed_area() > 0.0,
                "exterior must be counter-clockwise"
            );
        }
        use geo::Winding;
        assert!(mp.0[1].interiors()[0].is_cw(), "holes must be clockwise");
    }

    #[test]
    fn a_hole_inside_an_island_inside_a_hole_goes_to_the_smallest_outer() {
        let big = square(0.0, 0.0, 10.0);
        let lake = square(2.0, 2.0, 6.0);
        let island = square(3.0, 3.0, 4.0);
        let pond = square(4.0, 4.0, 1.0);
        let Geometry::MultiPolygon(mp) =
            build_multipolygon(vec![big, island], vec![lake, pond]).unwrap()
        else {
            panic!("expected a MultiPolygon")
        };
        assert_eq!(mp.0[0].interiors().len(), 1);
        assert_eq!(mp.0[1].interiors().len(), 1);
        assert!((mp.0[1].unsigned_area() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn an_inner_ring_outside_every_outer_is_an_error() {
        let err = build_multipolygon(vec![square(0.0, 0.0, 1.0)], vec![square(5.0, 5.0, 1.0)])
            .unwrap_err();
        assert!(err.contains("no outer ring"), "{err}");
    }
}
