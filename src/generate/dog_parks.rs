//! Animal walking places: fenced dog areas placed inside the real parks of the extract.
//! Generated because the bundled extract maps no `leisure=dog_park`; with an extract that
//! does, the layer can read OSM directly (`osm = "leisure=dog_park"`).

use geo::orient::{Direction, Orient};
use geo::{Area, Contains, Coord, Geometry, LineString, Polygon};
use serde_json::json;

use crate::generate::city::{offset, rounded};
use crate::generate::rng::Rng;
use crate::ingest::osm::{OsmData, TagFilter};
use crate::model::{Feature, GeometryKind, Properties};

/// A park must be this large (square degrees at 60 N, about 2,500 m2) to get a dog area.
const MIN_PARK_DEG2: f64 = 2_500.0 / (55_800.0 * 111_300.0);

pub fn dog_parks(osm: &OsmData, rng: &mut Rng) -> Vec<Feature> {
    let filter: TagFilter = "leisure=park|garden;landuse=recreation_ground|grass"
        .parse()
        .expect("a valid built-in filter");
    let mut out = Vec::new();
    for (_, park) in osm
        .features(&filter, GeometryKind::Polygon)
        .into_iter()
        .filter_map(Result::ok)
    {
        let polygons: Vec<Polygon<f64>> = match park.geometry {
            Geometry::Polygon(p) => vec![p],
            Geometry::MultiPolygon(mp) => mp.0,
            _ => continue,
        };
        let name = park
            .properties
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        for polygon in polygons {
            if polygon.unsigned_area() < MIN_PARK_DEG2 {
                continue;
            }
            let Some(centre) = crate::model::interior_point(&polygon) else {
                continue;
            };
            // Try a few sizes and turns until the fenced area fits inside the park.
            for _ in 0..8 {
                let (w, h) = (rng.range_f64(12.0, 35.0), rng.range_f64(12.0, 30.0));
                let turn = rng.range_f64(0.0, std::f64::consts::PI);
                let (c, s) = (turn.cos(), turn.sin());
                let corner =
                    |u: f64, v: f64| rounded(offset(centre.0, u * c - v * s, u * s + v * c));
                let ring: Vec<Coord<f64>> = vec![
                    corner(-w / 2.0, -h / 2.0),
                    corner(w / 2.0, -h / 2.0),
                    corner(w / 2.0, h / 2.0),
                    corner(-w / 2.0, h / 2.0),
                    corner(-w / 2.0, -h / 2.0),
                ];
                let area = Polygon::new(LineString::new(ring), vec![]).orient(Direction::Default);
                if !polygon.contains(&area) {
                    continue;
                }
                let mut properties = Properties::new();
                let label = name.as_deref().unwrap_or("Neighbourhood park");
                properties.insert("name".into(), json!(format!("{label} dog area")));
                properties.insert("leisure".into(), json!("dog_park"));
                properties.insert("barrier".into(), json!("fence"));
                properties.insert("dogs".into(), json!(*rng.pick(&["all", "small", "large"])));
                out.push(Feature {
                    geometry: area.into(),
                    properties,
                });
                break;
            }
        }
    }
    out
}
