//! Planners' questions that OGC API - Features does not cover, answered from the in-memory
//! index: the k nearest features to a point, the features that contain a point, and counts
//! (and sums) of one layer's features grouped by the polygons of another.
//!
//! Geometry is compared in Web Mercator, which keeps "contains" exact and distances exact up
//! to the projection's scale; distances are converted to ground metres with the scale at the
//! query point's latitude (1 / cos(lat)), within a fraction of a per cent across a city.
//!
//! On the compute pool, each question stops early once the job's deadline has passed
//! ([`crate::compute::expired`]); the pool then throws the answer away.

use std::collections::HashMap;

use geo::{Contains, Distance, Euclidean, Point};
use rstar::PointDistance;

use crate::index::{IndexedFeature, LayerIndex};
use crate::model::FeatureId;
use crate::query::ItemsQuery;
use crate::tiles::ProjectedGeometry;
use crate::tiles::Value;
use crate::tiles::mercator::lon_lat_to_3857;

/// Largest `k` of a nearest query.
pub const MAX_K: usize = 1_000;

fn distance_3857(p: &Point<f64>, g: &ProjectedGeometry) -> f64 {
    match g {
        ProjectedGeometry::Points(m) => Euclidean.distance(p, m),
        ProjectedGeometry::Lines(m) => Euclidean.distance(p, m),
        ProjectedGeometry::Polygons(m) => Euclidean.distance(p, m),
    }
}

/// Ground metres per Web Mercator metre at a latitude.
fn ground_scale(lat: f64) -> f64 {
    lat.to_radians().cos()
}

/// The `k` features of `index` nearest to (lon, lat) that match `filter`, closest first, with
/// their distance in ground metres; none farther than `max_metres`.
///
/// Walks the R*-trees in order of bounding-box distance and stops once a box is farther than
/// the k-th exact distance found, so the cost is about k log n for points.
pub fn nearest(
    index: &LayerIndex,
    filter: &ItemsQuery,
    lon: f64,
    lat: f64,
    k: usize,
    max_metres: Option<f64>,
) -> Vec<(FeatureId, f64)> {
    let (x, y) = lon_lat_to_3857(lon, lat);
    let p = Point::new(x, y);
    let scale = ground_scale(lat);
    let limit_3857 = max_metres.map_or(f64::INFINITY, |m| m / scale);
    let mut best: Vec<(f64, &IndexedFeature)> = Vec::with_capacity(k + 1);
    for tree in index.trees() {
        for entry in tree.nearest_neighbor_iter([x, y]) {
            let box_d = entry.geom().distance_2(&[x, y]).sqrt();
            let kth = if best.len() == k {
                best[k - 1].0
            } else {
                f64::INFINITY
            };
            if box_d > kth.min(limit_3857) || crate::compute::expired() {
                break;
            }
            let f = index.feature(entry.data);
            if !filter.matches(index, f) {
                continue;
            }
            let d = distance_3857(&p, &f.geometry);
            if d > limit_3857 || d >= kth {
                continue;
            }
            let at = best
                .iter()
                .position(|(bd, bf)| d < *bd || (d == *bd && f.id < bf.id))
                .unwrap_or(best.len());
            best.insert(at, (d, f));
            best.truncate(k);
        }
    }
    best.into_iter().map(|(d, f)| (f.id, d * scale)).collect()
}

/// Does a projected geometry contain (or, for lines and points, touch) the point?
fn covers(g: &ProjectedGeometry, p: &Point<f64>) -> bool {
    match g {
        ProjectedGeometry::Polygons(m) => m.contains(p) || Euclidean.distance(p, m) == 0.0,
        ProjectedGeometry::Lines(m) => Euclidean.distance(p, m) == 0.0,
        ProjectedGeometry::Points(m) => m.0.iter().any(|q| q == p),
    }
}

/// Features of `index` that contain (lon, lat) and match `filter`, in id order. A point on
/// a boundary counts as contained.
pub fn containing(index: &LayerIndex, filter: &ItemsQuery, lon: f64, lat: f64) -> Vec<FeatureId> {
    let (x, y) = lon_lat_to_3857(lon, lat);
    let p = Point::new(x, y);
    let mut ids: Vec<FeatureId> = index
        .features_at_point([x, y])
        .take_while(|_| !crate::compute::expired())
        .filter(|f| filter.matches(index, f) && covers(&f.geometry, &p))
        .map(|f| f.id)
        .collect();
    ids.sort();
    ids
}

/// One group of an aggregate: a polygon of the grouping layer and what fell in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: FeatureId,
    pub count: u64,
    /// Sum of the numeric property asked for (features without a number add nothing).
    pub sum: Option<f64>,
}

/// The point that stands for a feature when it is assigned to a group: itself for points,
/// a point inside it (or on it) for lines and areas.
fn representative(g: &ProjectedGeometry) -> Option<Point<f64>> {
    match g {
        ProjectedGeometry::Points(m) => m.0.first().copied(),
        ProjectedGeometry::Lines(m) => crate::model::interior_point(m),
        ProjectedGeometry::Polygons(m) => crate::model::interior_point(m),
    }
}

/// Counts the features of `layer` that match `filter`, grouped by the polygons of
/// `groups` that contain their representative point, with the sum of declared property
/// `sum` (by index) if asked. A feature inside overlapping polygons counts in each; one
/// outside every polygon counts in none. Groups are returned by count, largest first, then
/// id; polygons with nothing in them are left out.
pub fn aggregate(
    layer: &LayerIndex,
    filter: &ItemsQuery,
    groups: &LayerIndex,
    sum: Option<usize>,
) -> Vec<Group> {
    let mut acc: HashMap<FeatureId, (u64, f64)> = HashMap::new();
    for f in layer.features() {
        if crate::compute::expired() {
            break;
        }
        if !filter.matches(layer, f) {
            continue;
        }
        let Some(p) = representative(&f.geometry) else {
            continue;
        };
        let add = sum.and_then(|key| match layer.value_of(f, key)? {
            Value::Uint(u) => Some(*u as f64),
            Value::Sint(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        });
        for g in groups.features_at_point([p.x(), p.y()]) {
            if let ProjectedGeometry::Polygons(m) = &g.geometry
                && (m.contains(&p) || Euclidean.distance(&p, m) == 0.0)
            {
                let e = acc.entry(g.id).or_default();
                e.0 += 1;
                e.1 += add.unwrap_or(0.0);
            }
        }
    }
    let mut out: Vec<Group> = acc
        .into_iter()
        .map(|(id, (count, total))| Group {
            id,
            count,
            sum: sum.map(|_| total),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LayerDef;
    use crate::model::{Feature, Properties, StoredFeature};
    use geo::polygon;

    fn def(geometry: &str) -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("t.toml"),
            &format!("title = \"T\"\ngeometry = \"{geometry}\"\nproperties = [\"kind\", \"n\"]\n"),
        )
        .unwrap()
    }

    fn all() -> ItemsQuery {
        ItemsQuery::parse(&def("point"), &LayerIndex::default(), &[], 0).unwrap()
    }

    fn stored(id: u64, geometry: geo::Geometry<f64>, kind: &str, n: i64) -> StoredFeature {
        let mut p = Properties::new();
        p.insert("kind".into(), kind.into());
        p.insert("n".into(), n.into());
        StoredFeature {
            id: FeatureId(id),
            version: 0,
            feature: Feature {
                geometry,
                properties: p,
            },
        }
    }

    fn points() -> LayerIndex {
        // A row of points 0.001 degrees of longitude apart at 60 N (about 55.8 m).
        let fs = (0..50)
            .map(|i| {
                stored(
                    i + 1,
                    Point::new(24.9 + i as f64 * 0.001, 60.0).into(),
                    if i % 2 == 0 { "a" } else { "b" },
                    i as i64,
                )
            })
            .collect();
        LayerIndex::build(&def("point"), fs)
    }

    #[test]
    fn nearest_finds_the_closest_in_order_with_ground_metres() {
        let idx = points();
        let got = nearest(&idx, &all(), 24.9101, 60.0, 3, None);
        let ids: Vec<u64> = got.iter().map(|(id, _)| id.0).collect();
        assert_eq!(ids, [11, 12, 10]);
        // 0.0001 degrees of longitude at 60 N is 111,319 m * cos(60) / 10,000 = 5.57 m.
        assert!((got[0].1 - 5.566).abs() < 0.05, "{}", got[0].1);
        let capped = nearest(&idx, &all(), 24.9101, 60.0, 10, Some(60.0));
        assert_eq!(capped.len(), 2, "{capped:?}");
    }

    #[test]
    fn nearest_agrees_with_a_brute_force_ranking_under_a_filter() {
        let idx = points();
        let q = ItemsQuery::parse(
            &def("point"),
            &LayerIndex::default(),
            &[("kind".into(), "b".into())],
            0,
        )
        .unwrap();
        let got: Vec<u64> = nearest(&idx, &q, 24.9333, 60.0, 4, None)
            .iter()
            .map(|(i, _)| i.0)
            .collect();
        let (x, _) = lon_lat_to_3857(24.9333, 60.0);
        let mut brute: Vec<(f64, u64)> = (0..50u64)
            .filter(|i| i % 2 == 1)
            .map(|i| {
                (
                    (lon_lat_to_3857(24.9 + i as f64 * 0.001, 60.0).0 - x).abs(),
                    i + 1,
                )
            })
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(got, brute.iter().take(4).map(|b| b.1).collect::<Vec<_>>());
    }

    fn zones() -> LayerIndex {
        let west = polygon![(x: 24.8995, y: 59.99), (x: 24.9205, y: 59.99), (x: 24.9205, y: 60.01), (x: 24.8995, y: 60.01)];
        let east = polygon![(x: 24.9205, y: 59.99), (x: 24.95, y: 59.99), (x: 24.95, y: 60.01), (x: 24.9205, y: 60.01)];
        LayerIndex::build(
            &def("polygon"),
            vec![
                stored(900, west.into(), "w", 0),
                stored(901, east.into(), "e", 0),
            ],
        )
    }

    #[test]
    fn containing_finds_the_zone_of_a_point() {
        let z = zones();
        let q = ItemsQuery::parse(&def("polygon"), &LayerIndex::default(), &[], 0).unwrap();
        assert_eq!(containing(&z, &q, 24.91, 60.0), [FeatureId(900)]);
        assert_eq!(containing(&z, &q, 24.93, 60.0), [FeatureId(901)]);
        assert!(containing(&z, &q, 25.5, 60.0).is_empty());
    }

    #[test]
    fn aggregate_counts_and_sums_per_zone() {
        let groups = aggregate(&points(), &all(), &zones(), Some(1));
        // Points 0..=20 (x <= 24.920) fall in the west zone, 21..=49 up to 24.949 in the east.
        let west = groups.iter().find(|g| g.id == FeatureId(900)).unwrap();
        let east = groups.iter().find(|g| g.id == FeatureId(901)).unwrap();
        assert_eq!(west.count + east.count, 50);
        assert_eq!(west.count, 21);
        assert_eq!(west.sum, Some((0..21).sum::<i64>() as f64));
        assert_eq!(groups[0].id, FeatureId(901), "largest group first");
    }
}
