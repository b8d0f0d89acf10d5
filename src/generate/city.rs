//! City-operations layers generated from a real OSM extract: construction permits, designed
//! buildings, accidents, traffic jams, public events, toll zones, citizens' reports of urban
//! problems and roads with a traffic load.
//!
//! All geometry is derived from the extract (real footprints, points on real roads, shapes
//! scaled to the data's extent), so the layers line up with a real base map. Attributes are
//! random but plausible, from one seeded [`Rng`] stream per layer: the same extract and seed
//! always give the same features in the same order.

use geo::orient::{Direction, Orient};
use geo::{
    BoundingRect, Coord, Geometry, Intersects, LineString, MapCoordsInPlace, Point, Polygon, Rect,
};
use serde_json::{Value, json};

use super::rng::Rng;
use crate::ingest::osm::{OsmData, TagFilter};
use crate::model::time::format_rfc3339;
use crate::model::{Bbox, Feature, GeometryKind, Properties};

/// File stems of the generated layers, in output order.
pub const LAYERS: [&str; 9] = [
    "construction_permits",
    "designed_buildings",
    "accidents",
    "traffic_jams",
    "public_events",
    "toll_zones",
    "urban_problems",
    "roads",
    "dog_parks",
];

mod layers;

use layers::{
    accidents, construction_permits, designed_buildings, public_events, roads, toll_zones,
    traffic_jams, urban_problems,
};

type LayerFn = fn(&City<'_>, &mut Rng) -> Vec<Feature>;

/// Generates every layer of [`LAYERS`] as `(file stem, features)`. Coordinates are already
/// rounded to the written precision, so what the caller holds is exactly what is written.
pub fn generate_city(osm: &OsmData, seed: u64) -> Vec<(String, Vec<Feature>)> {
    let city = City::from_osm(osm);
    let root = Rng::new(seed);
    let dog_parks: LayerFn = |city, rng| crate::generate::dog_parks::dog_parks(city.osm, rng);
    let generators: [LayerFn; 9] = [
        construction_permits,
        designed_buildings,
        accidents,
        traffic_jams,
        public_events,
        toll_zones,
        urban_problems,
        roads,
        dog_parks,
    ];
    LAYERS
        .iter()
        .zip(generators)
        .map(|(stem, generate)| {
            let mut features = generate(&city, &mut root.fork(stem));
            for f in &mut features {
                round_geometry(&mut f.geometry);
            }
            (stem.to_string(), features)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The city: what the generators draw from
// ---------------------------------------------------------------------------------------

/// Highway classes that carry motor traffic; only these get accidents, jams and designs.
#[rustfmt::skip]
const DRIVABLE: &[&str] = &[
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
    "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "living_street",
    "service", "road",
];

struct Road {
    coords: Vec<Coord<f64>>,
    properties: Properties,
    highway: String,
    name: Option<String>,
}

/// One straight piece of a road, `coords[index]..coords[index + 1]`.
struct Segment {
    road: usize,
    index: usize,
    a: Coord<f64>,
    b: Coord<f64>,
    length_m: f64,
}

/// Picks road segments with probability proportional to a weight (length times a class
/// factor), so that e.g. accidents spread evenly per metre of busy road.
struct SegmentSampler {
    segments: Vec<Segment>,
    cumulative: Vec<f64>,
}

impl SegmentSampler {
    fn new(roads: &[Road], weight_per_metre: impl Fn(&Road) -> f64) -> SegmentSampler {
        let mut segments = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (road_index, road) in roads.iter().enumerate() {
            let w = weight_per_metre(road);
            if w <= 0.0 {
                continue;
            }
            for (index, pair) in road.coords.windows(2).enumerate() {
                let length_m = distance_m(pair[0], pair[1]);
                if length_m < 0.5 {
                    continue;
                }
                total += length_m * w;
                segments.push(Segment {
                    road: road_index,
                    index,
                    a: pair[0],
                    b: pair[1],
                    length_m,
                });
                cumulative.push(total);
            }
        }
        SegmentSampler {
            segments,
            cumulative,
        }
    }

    fn sample(&self, rng: &mut Rng) -> &Segment {
        let total = *self.cumulative.last().expect("the extract has roads");
        let ticket = rng.f64() * total;
        let i = self.cumulative.partition_point(|&c| c <= ticket);
        &self.segments[i.min(self.segments.len() - 1)]
    }
}

struct Venue {
    at: Coord<f64>,
    name: Option<String>,
}

struct City<'a> {
    osm: &'a OsmData,
    extent: Bbox,
    buildings: Vec<Feature>,
    roads: Vec<Road>,
    /// Drivable segments weighted by length and how busy the class is.
    traffic: SegmentSampler,
    /// Drivable segments weighted by length only.
    drivable: SegmentSampler,
    /// Every road segment (footways too) weighted by length.
    streets: SegmentSampler,
    venues: Vec<Venue>,
}

impl<'a> City<'a> {
    fn from_osm(osm: &'a OsmData) -> City<'a> {
        let buildings: Vec<Feature> = features(osm, "building", GeometryKind::Polygon)
            .into_iter()
            .filter_map(|mut f| {
                // Only footprints that stay valid at the written precision are reused.
                round_geometry(&mut f.geometry);
                geo::Validation::is_valid(&f.geometry).then_some(f)
            })
            .collect();
        let roads: Vec<Road> = features(osm, "highway=*&area!=yes", GeometryKind::Line)
            .into_iter()
            .filter_map(|f| {
                let Geometry::LineString(line) = f.geometry else {
                    return None;
                };
                let mut coords: Vec<Coord<f64>> = line.0.into_iter().map(rounded).collect();
                coords.dedup();
                let text = |k: &str| {
                    f.properties
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let (highway, name) = (text("highway")?, text("name"));
                (coords.len() >= 2).then_some(Road {
                    coords,
                    highway,
                    name,
                    properties: f.properties,
                })
            })
            .collect();
        let traffic = SegmentSampler::new(&roads, |r| traffic_weight(&r.highway));
        let drivable =
            SegmentSampler::new(&roads, |r| if is_drivable(&r.highway) { 1.0 } else { 0.0 });
        let streets = SegmentSampler::new(&roads, |_| 1.0);
        let venues = features(
            osm,
            "leisure=park|garden;place=square;highway=pedestrian&area=yes",
            GeometryKind::Point,
        )
        .into_iter()
        .filter_map(|f| match f.geometry {
            Geometry::Point(p) => {
                let name = f
                    .properties
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Some(Venue { at: p.0, name })
            }
            _ => None,
        })
        .collect();
        let extent = osm.extent().unwrap_or(Bbox {
            west: 0.0,
            south: 0.0,
            east: 0.0,
            north: 0.0,
        });
        City {
            osm,
            extent,
            buildings,
            roads,
            traffic,
            drivable,
            streets,
            venues,
        }
    }
}

fn features(osm: &OsmData, filter: &str, kind: GeometryKind) -> Vec<Feature> {
    let filter: TagFilter = filter.parse().expect("built-in filters are valid");
    // Elements with missing nodes (cut by the extract's edge) are simply not used.
    osm.features(&filter, kind)
        .into_iter()
        .filter_map(Result::ok)
        .map(|(_, f)| f)
        .collect()
}

fn is_drivable(highway: &str) -> bool {
    DRIVABLE.contains(&highway)
}

/// Relative traffic per metre of road, by class.
fn traffic_weight(highway: &str) -> f64 {
    match highway.trim_end_matches("_link") {
        "motorway" | "trunk" | "primary" => 3.0,
        "secondary" => 2.5,
        "tertiary" => 2.0,
        "unclassified" | "residential" | "road" => 1.0,
        "living_street" => 0.5,
        "service" => 0.4,
        _ => 0.0,
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers: metres, times, properties
// ---------------------------------------------------------------------------------------

/// Metres per degree of longitude and latitude at `lat` (WGS84 series expansion).
fn metres_per_degree(lat: f64) -> (f64, f64) {
    let phi = lat.to_radians();
    let lon = 111_412.84 * phi.cos() - 93.5 * (3.0 * phi).cos();
    let lat = 111_132.954 - 559.822 * (2.0 * phi).cos() + 1.175 * (4.0 * phi).cos();
    (lon, lat)
}

/// Local planar distance in metres; exact enough over a city.
fn distance_m(a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (mx, my) = metres_per_degree((a.y + b.y) / 2.0);
    ((b.x - a.x) * mx).hypot((b.y - a.y) * my)
}

/// `c` moved by `dx` metres east and `dy` metres north.
pub(crate) fn offset(c: Coord<f64>, dx: f64, dy: f64) -> Coord<f64> {
    let (mx, my) = metres_per_degree(c.y);
    Coord {
        x: c.x + dx / mx,
        y: c.y + dy / my,
    }
}

/// Unit vector along a segment and its left normal, in metres (east, north).
fn frame(a: Coord<f64>, b: Coord<f64>) -> ((f64, f64), (f64, f64)) {
    let (mx, my) = metres_per_degree((a.y + b.y) / 2.0);
    let (dx, dy) = ((b.x - a.x) * mx, (b.y - a.y) * my);
    let len = dx.hypot(dy).max(f64::EPSILON);
    ((dx / len, dy / len), (-dy / len, dx / len))
}

fn lerp(a: Coord<f64>, b: Coord<f64>, t: f64) -> Coord<f64> {
    Coord {
        x: a.x + (b.x - a.x) * t,
        y: a.y + (b.y - a.y) * t,
    }
}

pub(crate) fn rounded(c: Coord<f64>) -> Coord<f64> {
    Coord {
        x: super::round_coord(c.x),
        y: super::round_coord(c.y),
    }
}

fn round_geometry(g: &mut Geometry<f64>) {
    g.map_coords_in_place(rounded);
}

/// 2026-01-01T00:00:00Z in Unix seconds.
const YEAR_START: i64 = 1_767_225_600;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// Midnight of a random day of 2026.
fn day_2026(rng: &mut Rng) -> i64 {
    YEAR_START + rng.range_i64(0, 364) * DAY
}

/// Traffic-shaped hour of day: busiest in the morning and afternoon rush.
const TRAFFIC_HOURS: [u32; 24] = [
    1, 1, 1, 1, 1, 2, 4, 8, 9, 6, 5, 5, 6, 6, 6, 7, 9, 9, 7, 5, 4, 3, 2, 1,
];

/// A random instant of 2026 with the hour drawn from `hour_weights`, to the minute.
fn time_2026(rng: &mut Rng, hour_weights: &[u32; 24]) -> i64 {
    let hours: Vec<(i64, u32)> = (0..24).zip(hour_weights.iter().copied()).collect();
    day_2026(rng) + rng.weighted(&hours) * HOUR + rng.range_i64(0, 59) * 60
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn props<const N: usize>(pairs: [(&str, Value); N]) -> Properties {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn opt_text(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| text(s.clone()))
}

fn point(c: Coord<f64>) -> Geometry<f64> {
    Geometry::Point(Point(c))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use geo::Validation;

    use super::*;
    use crate::ingest::osm::read_osm;
    use crate::model::time::parse_rfc3339;

    fn helsinki() -> &'static OsmData {
        static DATA: OnceLock<OsmData> = OnceLock::new();
        DATA.get_or_init(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/helsinki.osm.pbf");
            read_osm(std::path::Path::new(path)).expect("fixture reads")
        })
    }

    fn generated() -> &'static [(String, Vec<Feature>)] {
        static LAYERS: OnceLock<Vec<(String, Vec<Feature>)>> = OnceLock::new();
        LAYERS.get_or_init(|| generate_city(helsinki(), 2026))
    }

    fn layer(stem: &str) -> &'static [Feature] {
        &generated()
            .iter()
            .find(|(s, _)| s == stem)
            .expect("layer exists")
            .1
    }

    #[test]
    fn the_generator_is_deterministic() {
        let again = generate_city(helsinki(), 2026);
        assert_eq!(again.as_slice(), generated());
        let lines = |layers: &[(String, Vec<Feature>)]| -> Vec<String> {
            layers
                .iter()
                .flat_map(|(_, fs)| fs.iter().map(crate::generate::geojson_line))
                .collect()
        };
        assert_eq!(lines(&again), lines(generated()));
        assert_ne!(
            generate_city(helsinki(), 7)[2].1,
            layer("accidents"),
            "the seed must matter"
        );
    }

    #[test]
    fn the_committed_fixtures_are_exactly_what_the_generator_writes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/generated");
        for (stem, features) in generated() {
            let path = dir.join(format!("{stem}.geojsonseq"));
            let committed = std::fs::read_to_string(&path).expect("fixture exists");
            let fresh: String = features
                .iter()
                .map(|f| crate::generate::geojson_line(f) + "\n")
                .collect();
            assert!(
                committed == fresh,
                "{} differs from the generator's output: run urbantile-gen city",
                path.display()
            );
        }
    }

    #[test]
    fn every_layer_is_non_empty_with_its_geometry_kind_and_valid_geometry() {
        let expected = [
            ("construction_permits", GeometryKind::Polygon),
            ("designed_buildings", GeometryKind::Polygon),
            ("accidents", GeometryKind::Point),
            ("traffic_jams", GeometryKind::Line),
            ("public_events", GeometryKind::Point),
            ("toll_zones", GeometryKind::Polygon),
            ("urban_problems", GeometryKind::Point),
            ("roads", GeometryKind::Line),
            ("dog_parks", GeometryKind::Polygon),
        ];
        assert_eq!(
            generated()
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            LAYERS
        );
        for (stem, kind) in expected {
            let features = layer(stem);
            assert!(!features.is_empty(), "{stem} is empty");
            for f in features {
                assert_eq!(GeometryKind::of(&f.geometry), Some(kind), "{stem}");
                assert!(
                    f.geometry.is_valid(),
                    "{stem}: {:?}",
                    f.geometry.validation_errors()
                );
                let polygons: Vec<&Polygon<f64>> = match &f.geometry {
                    Geometry::Polygon(p) => vec![p],
                    Geometry::MultiPolygon(mp) => mp.0.iter().collect(),
                    _ => vec![],
                };
                for p in polygons {
                    use geo::Winding;
                    assert!(
                        p.exterior().is_ccw(),
                        "{stem}: exterior must be counter-clockwise"
                    );
                    assert!(
                        p.interiors().iter().all(|r| r.is_cw()),
                        "{stem}: holes must be clockwise"
                    );
                }
            }
        }
        assert_eq!(layer("toll_zones").len(), 3);
        assert!(
            matches!(&layer("toll_zones")[0].geometry, Geometry::Polygon(p) if p.interiors().len() == 1)
        );
        assert!((40..=60).contains(&layer("designed_buildings").len()));
    }

    #[test]
    fn accidents_lie_within_a_metre_of_a_drivable_road() {
        let city = City::from_osm(helsinki());
        for accident in layer("accidents") {
            let Geometry::Point(p) = accident.geometry else {
                panic!("accident is not a point")
            };
            let nearest = city
                .drivable
                .segments
                .iter()
                .map(|s| point_segment_distance_m(p.0, s.a, s.b))
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest < 1.0,
                "accident {:?} is {nearest:.2} m from the nearest road",
                p
            );
        }
    }

    #[test]
    fn intervals_end_after_they_start() {
        let pairs = [
            (
                "construction_permits",
                "valid_from",
                "valid_to",
                30 * DAY,
                720 * DAY,
            ),
            ("public_events", "start", "end", HOUR, 5 * DAY),
            ("traffic_jams", "detected_at", "cleared_at", 1, DAY),
            ("urban_problems", "reported_at", "resolved_at", 1, 31 * DAY),
        ];
        for (stem, from, to, min, max) in pairs {
            for f in layer(stem) {
                let (Some(a), Some(b)) = (f.properties[from].as_str(), f.properties[to].as_str())
                else {
                    continue;
                };
                let d = parse_rfc3339(b).unwrap() - parse_rfc3339(a).unwrap();
                assert!((min..=max).contains(&d), "{stem}: {a} .. {b}");
                assert!(a.starts_with("2026-"), "{stem}: {a} is not in 2026");
            }
        }
    }

    #[test]
    fn generated_times_start_on_new_year_2026() {
        assert_eq!(format_rfc3339(YEAR_START), "2026-01-01T00:00:00Z");
    }

    fn point_segment_distance_m(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> f64 {
        let (mx, my) = metres_per_degree(p.y);
        let (ax, ay, bx, by) = (
            (a.x - p.x) * mx,
            (a.y - p.y) * my,
            (b.x - p.x) * mx,
            (b.y - p.y) * my,
        );
        let (dx, dy) = (bx - ax, by - ay);
        let t = (-(ax * dx + ay * dy) / (dx * dx + dy * dy).max(f64::EPSILON)).clamp(0.0, 1.0);
        (ax + t * dx).hypot(ay + t * dy)
    }
}
