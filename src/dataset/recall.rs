//! Features answered from memory while the store cannot be reached (a PostgreSQL restart, a
//! network cut): the index holds every live feature's attributes and its geometry in
//! EPSG:3857, enough to answer item pages, queries and planners with what the server last
//! knew, instead of 503. What such an answer cannot give:
//! - the feature's version (and so its ETag): the index does not keep it;
//! - the exact stored geometry: coordinates come back through the Web Mercator projection
//!   and its inverse (rounded to 1e-9 degrees, about 0.1 mm, which is within the
//!   round trip's error), and a multi-geometry of one member comes back as that member;
//! - array and object property values, which the index holds as their JSON text.

use crate::config::LayerDef;
use crate::index::LayerIndex;
use crate::model::{Feature, FeatureId, Properties, StoredFeature};
use crate::tiles::mercator::epsg3857_to_lon_lat;
use crate::tiles::{ProjectedGeometry, Value};

/// The features with these ids as the index holds them, in the order asked; ids it does
/// not hold are left out. Their [`StoredFeature::version`] is 0: unknown.
pub(super) fn recall(def: &LayerDef, index: &LayerIndex, ids: &[FeatureId]) -> Vec<StoredFeature> {
    ids.iter()
        .filter_map(|&id| {
            let f = index.by_id(id)?;
            let mut properties = Properties::new();
            for &(key, value) in index.tags(f) {
                let (Some(name), Some(value)) = (
                    def.properties.get(key as usize),
                    index.values().get(value as usize),
                ) else {
                    continue;
                };
                properties.insert(name.clone(), to_json(value));
            }
            Some(StoredFeature {
                id,
                version: 0,
                feature: Feature {
                    geometry: to_lon_lat(&f.geometry),
                    properties,
                },
            })
        })
        .collect()
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::Double(d) => {
            serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Uint(u) => (*u).into(),
        Value::Sint(i) => (*i).into(),
        Value::Bool(b) => (*b).into(),
    }
}

/// Back to lon/lat, rounded to 1e-9 degrees so that a coordinate stored with fewer digits
/// comes back as it was written.
fn to_lon_lat(g: &ProjectedGeometry) -> geo::Geometry<f64> {
    use geo::MapCoords;
    let back = |c: geo::Coord<f64>| {
        let (lon, lat) = epsg3857_to_lon_lat(c.x, c.y);
        let round = |v: f64| (v * 1e9).round() / 1e9;
        geo::Coord {
            x: round(lon),
            y: round(lat),
        }
    };
    match g {
        ProjectedGeometry::Points(p) if p.0.len() == 1 => p.0[0].map_coords(back).into(),
        ProjectedGeometry::Points(p) => p.map_coords(back).into(),
        ProjectedGeometry::Lines(l) if l.0.len() == 1 => l.0[0].map_coords(back).into(),
        ProjectedGeometry::Lines(l) => l.map_coords(back).into(),
        ProjectedGeometry::Polygons(p) if p.0.len() == 1 => p.0[0].map_coords(back).into(),
        ProjectedGeometry::Polygons(p) => p.map_coords(back).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projected_point_comes_back_as_it_was_written() {
        let written = geo::Geometry::Point(geo::Point::new(24.9384, 60.1699));
        let projected = ProjectedGeometry::from_lon_lat(&written).unwrap();
        assert_eq!(to_lon_lat(&projected), written);
        let line = geo::Geometry::LineString(geo::LineString::from(vec![
            (24.93, 60.16),
            (24.95123456, 60.17),
        ]));
        assert_eq!(
            to_lon_lat(&ProjectedGeometry::from_lon_lat(&line).unwrap()),
            line
        );
    }
}
