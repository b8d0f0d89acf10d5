//! OpenStreetMap PBF input: reads an `.osm.pbf` file once into a compact in-memory form
//! ([`OsmData`]) and turns the elements a layer's [`TagFilter`] selects into features of the
//! layer's geometry kind, including multipolygon relations assembled from their member ways.
//!
//! Owns: node/way/relation storage, geometry building
//! per [`GeometryKind`] and the OSM tag to property conversion. Ring joining and hole
//! assignment live in `osm_rings.rs`.

#[path = "osm_rings.rs"]
mod rings;

use std::path::{Path, PathBuf};

use geo::orient::{Direction, Orient};
use geo::{Coord, Geometry, LineString, Point, Polygon};
use serde_json::Value;

use crate::ingest::{Position, Record, RecordError};
use crate::model::{Bbox, Feature, GeometryKind, Properties, interior_point};

pub use crate::model::tag_filter::TagFilter;
pub use rings::{Role, assemble_multipolygon, build_multipolygon, join_rings};

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

type Tags = Vec<(String, String)>;

struct Way {
    id: i64,
    nodes: Vec<i64>,
    /// Empty for untagged ways, which are kept only as possible relation members.
    tags: Tags,
}

struct Relation {
    id: i64,
    tags: Tags,
    /// Way members only, in member order; node and relation members carry no area geometry.
    members: Vec<(i64, Role)>,
}

/// Everything of an .osm.pbf file needed to build features, read once into memory.
///
/// Kept: coordinates of all nodes, tags of tagged nodes, all ways (node lists; tags when
/// tagged) because any way may be a relation member, and multipolygon relations. Other
/// relation types are dropped at read time since no layer geometry comes from them.
#[derive(Default)]
pub struct OsmData {
    /// Sorted by id for binary search; PBF files are usually sorted already.
    nodes: Vec<(i64, Coord<f64>)>,
    /// Tagged nodes, sorted by id.
    tagged_nodes: Vec<(i64, Tags)>,
    /// Sorted by id.
    ways: Vec<Way>,
    /// Multipolygon relations, sorted by id.
    relations: Vec<Relation>,
}

/// Element counts of an [`OsmData`], for progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsmStats {
    pub nodes: usize,
    pub tagged_nodes: usize,
    pub ways: usize,
    pub multipolygons: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OsmError {
    #[error("cannot open OSM file {}", path.display())]
    Open {
        path: PathBuf,
        source: osmpbf::Error,
    },
    #[error("cannot read OSM file {}", path.display())]
    Read {
        path: PathBuf,
        source: osmpbf::Error,
    },
    #[error("cannot read OSM file {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// Reads the whole file into memory.
pub fn read_osm(path: &Path) -> Result<OsmData, OsmError> {
    let reader = osmpbf::ElementReader::from_path(path).map_err(|source| OsmError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut data = OsmData::default();
    // The first bad string (e.g. a role that is not UTF-8) is remembered rather than
    // returned from inside the callback, which cannot fail.
    let mut invalid: Option<String> = None;

    // osmpbf panics on some malformed blocks (a relation member of an unknown type unwraps
    // an enum): a bad file must be an error that names it, not a crash of the ingest or of
    // the server's first start. Nothing read before the panic is kept.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reader.for_each(|element| match element {
            osmpbf::Element::Node(n) => data.add_node(n.id(), n.lon(), n.lat(), n.tags()),
            osmpbf::Element::DenseNode(n) => data.add_node(n.id(), n.lon(), n.lat(), n.tags()),
            osmpbf::Element::Way(way) => {
                data.ways.push(Way {
                    id: way.id(),
                    nodes: way.refs().collect(),
                    tags: owned_tags(way.tags()),
                });
            }
            osmpbf::Element::Relation(rel) => {
                if !rel.tags().any(|(k, v)| k == "type" && v == "multipolygon") {
                    return;
                }
                let mut members = Vec::new();
                for m in rel.members() {
                    if m.member_type != osmpbf::RelMemberType::Way {
                        continue;
                    }
                    let role = match m.role() {
                        Ok(role) => Role::of_member(role),
                        Err(e) => {
                            invalid.get_or_insert_with(|| {
                                format!("relation {}: bad member role: {e}", rel.id())
                            });
                            Role::Other
                        }
                    };
                    members.push((m.member_id, role));
                }
                data.relations.push(Relation {
                    id: rel.id(),
                    tags: owned_tags(rel.tags()),
                    members,
                });
            }
        })
    }));
    let read = read.map_err(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        OsmError::Invalid {
            path: path.to_owned(),
            reason: format!("malformed PBF data (the decoder stopped: {what})"),
        }
    })?;
    read.map_err(|source| OsmError::Read {
        path: path.to_owned(),
        source,
    })?;
    if let Some(reason) = invalid {
        return Err(OsmError::Invalid {
            path: path.to_owned(),
            reason,
        });
    }

    // Sorting makes lookups possible and output order independent of the file's block order.
    if !data.nodes.is_sorted_by_key(|n| n.0) {
        data.nodes.sort_unstable_by_key(|n| n.0);
    }
    data.tagged_nodes.sort_by_key(|n| n.0);
    data.ways.sort_by_key(|w| w.id);
    data.relations.sort_by_key(|r| r.id);
    Ok(data)
}

fn owned_tags<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Tags {
    tags.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

impl OsmData {
    fn add_node<'a>(
        &mut self,
        id: i64,
        lon: f64,
        lat: f64,
        tags: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        self.nodes.push((id, Coord { x: lon, y: lat }));
        let tags = owned_tags(tags);
        if !tags.is_empty() {
            self.tagged_nodes.push((id, tags));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------

impl OsmData {
    pub fn stats(&self) -> OsmStats {
        OsmStats {
            nodes: self.nodes.len(),
            tagged_nodes: self.tagged_nodes.len(),
            ways: self.ways.len(),
            multipolygons: self.relations.len(),
        }
    }

    /// The box around all nodes of the file, `None` for a file without nodes.
    pub fn extent(&self) -> Option<Bbox> {
        let mut iter = self.nodes.iter().map(|(_, c)| Bbox {
            west: c.x,
            south: c.y,
            east: c.x,
            north: c.y,
        });
        let first = iter.next()?;
        Some(iter.fold(first, Bbox::union))
    }

    fn node(&self, id: i64) -> Option<Coord<f64>> {
        self.nodes
            .binary_search_by_key(&id, |n| n.0)
            .ok()
            .map(|i| self.nodes[i].1)
    }

    fn way(&self, id: i64) -> Option<&Way> {
        self.ways
            .binary_search_by_key(&id, |w| w.id)
            .ok()
            .map(|i| &self.ways[i])
    }

    fn coords(
        &self,
        nodes: &[i64],
        position: impl Fn() -> Position,
    ) -> Result<Vec<Coord<f64>>, RecordError> {
        nodes
            .iter()
            .map(|&id| {
                self.node(id).ok_or_else(|| {
                    RecordError::new(
                        position(),
                        None,
                        format!("node {id} is missing from the file"),
                    )
                })
            })
            .collect()
    }

    /// Features whose tags match `filter`, as the layer's geometry kind wants them:
    /// - Point: tagged nodes become points; tagged closed ways and multipolygon relations
    ///   become a point inside the area (geo InteriorPoint), e.g. schools mapped as areas.
    /// - Line: tagged ways become LineStrings (closed ways too, as lines).
    /// - Polygon: tagged closed ways (first node == last, >= 4 nodes) become Polygons;
    ///   relations with type=multipolygon (tags on the relation) are assembled from their
    ///   member ways. Relations that cannot be closed are RecordErrors. Member ways are
    ///   emitted on their own only when their own tags match.
    ///
    /// Properties: every tag as a JSON string, except numeric values of [`NUMERIC_KEYS`];
    /// plus "osm_id" as "node/123", "way/123" or "relation/123". Missing node references
    /// give a RecordError for that way or relation. Order: nodes, then ways, then relations,
    /// each by id.
    pub fn features(&self, filter: &TagFilter, kind: GeometryKind) -> Vec<Record> {
        let mut out = Vec::new();
        if kind == GeometryKind::Point {
            for (id, tags) in self
                .tagged_nodes
                .iter()
                .filter(|(_, tags)| filter.matches(tags))
            {
                let position = Position::Osm {
                    kind: "node",
                    id: *id,
                };
                // Every tagged node has a coordinate: both come from the same element.
                let coord = self.node(*id).expect("tagged node has a coordinate");
                out.push(Ok((
                    position,
                    feature(Geometry::Point(Point(coord)), tags, "node", *id),
                )));
            }
        }
        for way in self
            .ways
            .iter()
            .filter(|w| !w.tags.is_empty() && filter.matches(&w.tags))
        {
            if let Some(record) = self.way_feature(way, kind) {
                out.push(record);
            }
        }
        if kind != GeometryKind::Line {
            for rel in self.relations.iter().filter(|r| filter.matches(&r.tags)) {
                out.push(self.relation_feature(rel, kind));
            }
        }
        out
    }

    fn way_feature(&self, way: &Way, kind: GeometryKind) -> Option<Record> {
        let position = || Position::Osm {
            kind: "way",
            id: way.id,
        };
        let closed = way.nodes.len() >= 2 && way.nodes.first() == way.nodes.last();
        // Open ways have no area: they are not points or polygons of an area layer (e.g. a
        // `barrier` line in a park layer), so they are skipped rather than reported.
        if kind != GeometryKind::Line && !closed {
            return None;
        }
        let min_nodes = if kind == GeometryKind::Line { 2 } else { 4 };
        if way.nodes.len() < min_nodes {
            let reason = format!(
                "way has {} nodes, a {kind} needs at least {min_nodes}",
                way.nodes.len()
            );
            return Some(Err(RecordError::new(position(), None, reason)));
        }
        if kind == GeometryKind::Line {
            return Some(
                self.cut_line(way)
                    .map(|geometry| (position(), feature(geometry, &way.tags, "way", way.id))),
            );
        }
        let coords = match self.coords(&way.nodes, position) {
            Ok(coords) => coords,
            Err(e) => return Some(Err(e)),
        };
        let line = LineString::new(coords);
        let geometry = match kind {
            GeometryKind::Line => unreachable!("lines are cut above"),
            GeometryKind::Polygon => {
                Geometry::Polygon(Polygon::new(line, Vec::new()).orient(Direction::Default))
            }
            GeometryKind::Point => match interior_point(&Polygon::new(line, Vec::new())) {
                Some(p) => Geometry::Point(p),
                None => {
                    return Some(Err(RecordError::new(
                        position(),
                        None,
                        "area is degenerate, it has no interior point",
                    )));
                }
            },
        };
        Some(Ok((
            position(),
            feature(geometry, &way.tags, "way", way.id),
        )))
    }

    /// A way as a line, keeping the runs of its nodes that the file has: an extract cut at
    /// a boundary drops the nodes outside it, and the part inside is still the road.
    fn cut_line(&self, way: &Way) -> Result<Geometry<f64>, RecordError> {
        let mut parts: Vec<LineString<f64>> = Vec::new();
        let mut run: Vec<Coord<f64>> = Vec::new();
        let mut missing = None;
        for &id in &way.nodes {
            match self.node(id) {
                Some(c) => run.push(c),
                None => {
                    missing.get_or_insert(id);
                    if run.len() >= 2 {
                        parts.push(LineString::new(std::mem::take(&mut run)));
                    }
                    run.clear();
                }
            }
        }
        if run.len() >= 2 {
            parts.push(LineString::new(run));
        }
        match parts.len() {
            0 => Err(RecordError::new(
                Position::Osm {
                    kind: "way",
                    id: way.id,
                },
                None,
                format!(
                    "no two consecutive nodes of the way are in the file (node {} is missing)",
                    missing.unwrap_or_default()
                ),
            )),
            1 => Ok(Geometry::LineString(parts.remove(0))),
            _ => Ok(Geometry::MultiLineString(geo::MultiLineString(parts))),
        }
    }

    fn relation_feature(&self, rel: &Relation, kind: GeometryKind) -> Record {
        let position = Position::Osm {
            kind: "relation",
            id: rel.id,
        };
        let error = |reason: String| RecordError::new(position.clone(), None, reason);
        let geometry = self.assemble(rel).map_err(error)?;
        let geometry = match kind {
            GeometryKind::Point => match interior_point(&geometry) {
                Some(p) => Geometry::Point(p),
                None => {
                    return Err(RecordError::new(
                        position,
                        None,
                        "area is degenerate, it has no interior point",
                    ));
                }
            },
            _ => geometry,
        };
        Ok((
            position.clone(),
            feature(geometry, &rel.tags, "relation", rel.id),
        ))
    }

    /// The (multi)polygon of a multipolygon relation, or why it cannot be built.
    fn assemble(&self, rel: &Relation) -> Result<Geometry<f64>, String> {
        let members = rel
            .members
            .iter()
            .map(|&(way_id, role)| match self.way(way_id) {
                Some(way) => Ok((role, way.nodes.as_slice())),
                None => Err(format!("member way {way_id} is missing from the file")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        assemble_multipolygon(&members, |id| self.node(id))
    }
}

/// Keys whose values become JSON numbers when they parse as finite numbers, so that
/// styles and filters can compare them numerically.
pub const NUMERIC_KEYS: &[&str] = &[
    "height",
    "min_height",
    "building:levels",
    "levels",
    "lanes",
    "maxspeed",
    "capacity",
];

fn feature(geometry: Geometry<f64>, tags: &[(String, String)], kind: &str, id: i64) -> Feature {
    Feature {
        geometry,
        properties: tag_properties(tags, kind, id),
    }
}

/// Tags as properties (see [`OsmData::features`]) with "osm_id" added.
pub fn tag_properties(tags: &[(String, String)], kind: &str, id: i64) -> Properties {
    let mut properties = Properties::new();
    for (key, value) in tags {
        let number = if NUMERIC_KEYS.contains(&key.as_str()) {
            numeric_value(key, value)
        } else {
            None
        };
        properties.insert(
            key.clone(),
            number.unwrap_or_else(|| Value::String(value.clone())),
        );
    }
    properties.insert("osm_id".to_owned(), Value::String(format!("{kind}/{id}")));
    properties
}

fn numeric_value(key: &str, value: &str) -> Option<Value> {
    let mut text = value.trim();
    if key == "height" || key == "min_height" {
        // "12 m" and "12m" are both common in the data; other units are left as strings.
        text = text.strip_suffix('m').map(str::trim_end).unwrap_or(text);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    // Rust's float parser accepts "inf" and "NaN"; those are not numbers a map can use.
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Validation;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn osm(kind: &'static str, id: i64) -> Position {
        Position::Osm { kind, id }
    }

    fn position(record: &Record) -> &Position {
        match record {
            Ok((position, _)) => position,
            Err(e) => &e.position,
        }
    }

    #[test]
    fn a_relation_member_of_an_unknown_type_is_an_error_naming_the_file() {
        // Found by the osm_pbf fuzz target: osmpbf unwraps the member type and panicked.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/osm_pbf/regression-unknown-member-type");
        let e = read_osm(&path).err().expect("an error");
        let text = e.to_string();
        assert!(
            text.contains("regression-unknown-member-type") && text.contains("malformed"),
            "{text}"
        );
    }

    #[test]
    fn a_plain_key_and_key_star_both_mean_the_key_is_present() {
        for text in ["building", "building=*", " building = * "] {
            let f = TagFilter::parse(text).unwrap();
            assert!(f.matches(&tags(&[("building", "yes")])), "{text}");
            assert!(!f.matches(&tags(&[("amenity", "school")])), "{text}");
        }
    }

    #[test]
    fn value_lists_and_alternatives_match_any_of_them() {
        let f: TagFilter = "leisure=park;landuse=grass|forest".parse().unwrap();
        assert!(f.matches(&tags(&[("leisure", "park")])));
        assert!(f.matches(&tags(&[("landuse", "forest")])));
        assert!(!f.matches(&tags(&[("landuse", "residential")])));
        assert!(!f.matches(&tags(&[("leisure", "pitch")])));
    }

    #[test]
    fn negations_joined_with_and_exclude_values() {
        let f: TagFilter = "highway=*&highway!=footway|steps".parse().unwrap();
        assert!(f.matches(&tags(&[("highway", "residential")])));
        assert!(!f.matches(&tags(&[("highway", "steps")])));
        assert!(!f.matches(&tags(&[("name", "Mannerheimintie")])));
        let g: TagFilter = "highway=*&area!=*".parse().unwrap();
        assert!(g.matches(&tags(&[("highway", "service")])));
        assert!(!g.matches(&tags(&[("highway", "pedestrian"), ("area", "yes")])));
    }

    #[test]
    fn the_filter_prints_back_in_canonical_form() {
        let f: TagFilter = "building;highway=*&highway!=steps|footway".parse().unwrap();
        assert_eq!(f.to_string(), "building=*;highway=*&highway!=steps|footway");
        assert_eq!(f.to_string().parse::<TagFilter>().unwrap(), f);
    }

    #[test]
    fn malformed_filters_are_rejected_with_a_reason() {
        let bad_filters = [
            "",
            "a;;b",
            "=x",
            "a=",
            "a=b|",
            "a&",
            "highway!=footway",
            "a=*|b",
        ];
        for bad in bad_filters {
            assert!(TagFilter::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn numeric_keys_become_numbers_and_osm_id_is_added() {
        let p = tag_properties(
            &tags(&[
                ("height", "12.5 m"),
                ("building:levels", "4"),
                ("maxspeed", "50 mph"),
                ("name", "12"),
                ("lanes", "NaN"),
            ]),
            "way",
            42,
        );
        assert_eq!(p["height"], serde_json::json!(12.5));
        assert_eq!(p["building:levels"], serde_json::json!(4));
        assert_eq!(p["maxspeed"], serde_json::json!("50 mph"));
        assert_eq!(p["name"], serde_json::json!("12"));
        assert_eq!(p["lanes"], serde_json::json!("NaN"));
        assert_eq!(p["osm_id"], serde_json::json!("way/42"));
    }

    /// A small in-memory dataset: a grid of nodes 1..=25 (5x5, 0.001° apart, id = 5*row+col+1).
    fn grid(ways: Vec<(i64, Vec<i64>, Tags)>, relations: Vec<(i64, Vec<(i64, Role)>)>) -> OsmData {
        let nodes = (0..25)
            .map(|i| {
                (
                    i + 1,
                    Coord {
                        x: 24.9 + (i % 5) as f64 * 0.001,
                        y: 60.1 + (i / 5) as f64 * 0.001,
                    },
                )
            })
            .collect();
        OsmData {
            nodes,
            tagged_nodes: Vec::new(),
            ways: ways
                .into_iter()
                .map(|(id, nodes, tags)| Way { id, nodes, tags })
                .collect(),
            relations: relations
                .into_iter()
                .map(|(id, members)| Relation {
                    id,
                    tags: tags(&[("type", "multipolygon"), ("building", "yes")]),
                    members,
                })
                .collect(),
        }
    }

    #[test]
    fn a_relation_becomes_one_feature_and_its_untagged_member_ways_none() {
        // The outer square 1-5-25-21 is split into two ways, the hole 7-9-19-17 is one.
        let outer_a = vec![1, 2, 3, 4, 5, 10, 15, 20, 25];
        let outer_b = vec![1, 6, 11, 16, 21, 22, 23, 24, 25];
        let hole = vec![7, 8, 9, 14, 19, 18, 17, 12, 7];
        let members = vec![(10, Role::Outer), (11, Role::Outer), (12, Role::Inner)];
        let ways = vec![
            (10, outer_a, vec![]),
            (11, outer_b, vec![]),
            (12, hole, vec![]),
        ];
        let data = grid(ways, vec![(50, members)]);
        let filter: TagFilter = "building".parse().unwrap();

        let records = data.features(&filter, GeometryKind::Polygon);
        assert_eq!(
            records.len(),
            1,
            "member ways must not be emitted on their own"
        );
        let (position, feature) = records[0].as_ref().unwrap();
        assert_eq!(*position, osm("relation", 50));
        let Geometry::Polygon(polygon) = &feature.geometry else {
            panic!("expected a Polygon")
        };
        assert_eq!(polygon.interiors().len(), 1);
        assert!(polygon.is_valid(), "{:?}", polygon.validation_errors());
        assert_eq!(feature.properties["osm_id"], "relation/50");

        let points = data.features(&filter, GeometryKind::Point);
        assert!(matches!(&points[0], Ok((_, f)) if matches!(f.geometry, Geometry::Point(_))));
    }

    #[test]
    fn a_relation_that_cannot_be_closed_is_an_error_not_a_silent_drop() {
        let data = grid(
            vec![(10, vec![1, 2, 3, 8], vec![]), (11, vec![1, 6, 7], vec![])],
            vec![(51, vec![(10, Role::Outer), (11, Role::Outer)])],
        );
        let records = data.features(&"building".parse().unwrap(), GeometryKind::Polygon);
        let err = records[0].as_ref().unwrap_err();
        assert_eq!(err.position, osm("relation", 51));
        assert!(err.reason.contains("cannot be closed"), "{}", err.reason);
    }

    #[test]
    fn a_line_cut_by_the_extract_keeps_the_nodes_the_file_has() {
        let data = grid(
            vec![
                (10, vec![1, 2, 999], tags(&[("highway", "service")])),
                (11, vec![1, 998, 2], tags(&[("highway", "service")])),
            ],
            vec![],
        );
        let records = data.features(&"highway".parse().unwrap(), GeometryKind::Line);
        let (_, kept) = records[0].as_ref().unwrap();
        assert!(matches!(&kept.geometry, Geometry::LineString(l) if l.0.len() == 2));
        let err = records[1].as_ref().unwrap_err();
        assert_eq!(err.position, osm("way", 11));
        assert!(err.reason.contains("998"), "{err}");
    }

    #[test]
    fn an_area_with_a_missing_node_is_an_error_for_that_way() {
        let data = grid(
            vec![(10, vec![1, 2, 999, 1], tags(&[("building", "yes")]))],
            vec![],
        );
        let records = data.features(&"building".parse().unwrap(), GeometryKind::Polygon);
        let err = records[0].as_ref().unwrap_err();
        assert_eq!(err.position, osm("way", 10));
        assert!(err.reason.contains("999"));
    }

    #[test]
    fn closed_ways_are_lines_in_line_layers_and_ccw_polygons_in_polygon_layers() {
        // Clockwise square 1-6-7-2-1.
        let data = grid(
            vec![(10, vec![1, 6, 7, 2, 1], tags(&[("leisure", "park")]))],
            vec![],
        );
        let filter: TagFilter = "leisure=park".parse().unwrap();
        let lines = data.features(&filter, GeometryKind::Line);
        assert!(
            matches!(&lines[0].as_ref().unwrap().1.geometry, Geometry::LineString(l) if l.0.len() == 5)
        );
        let polygons = data.features(&filter, GeometryKind::Polygon);
        let Geometry::Polygon(p) = &polygons[0].as_ref().unwrap().1.geometry else {
            panic!()
        };
        use geo::Area;
        assert!(p.signed_area() > 0.0);
    }

    const HELSINKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/helsinki.osm.pbf");

    #[test]
    fn the_helsinki_extract_yields_buildings_schools_and_roads() {
        let data = read_osm(Path::new(HELSINKI)).unwrap();
        let buildings = data.features(&"building".parse().unwrap(), GeometryKind::Polygon);
        let ok: Vec<&Feature> = buildings
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, f)| f)
            .collect();
        // The fixture is a ~1 x 1.6 km extract of the centre: about 500 buildings in all.
        assert!(ok.len() > 400, "only {} building polygons", ok.len());
        let with_hole_from_relation = ok.iter().any(|f| {
            f.properties["osm_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("relation/"))
                && match &f.geometry {
                    Geometry::Polygon(p) => !p.interiors().is_empty(),
                    Geometry::MultiPolygon(mp) => mp.0.iter().any(|p| !p.interiors().is_empty()),
                    _ => false,
                }
        });
        assert!(
            with_hole_from_relation,
            "no building multipolygon with an inner ring"
        );

        let schools = data.features(&"amenity=school".parse().unwrap(), GeometryKind::Point);
        let is_point =
            |r: &Record| matches!(r, Ok((_, f)) if matches!(f.geometry, Geometry::Point(_)));
        assert!(schools.iter().any(is_point));
        let roads = data.features(&"highway=*".parse().unwrap(), GeometryKind::Line);
        assert!(roads.iter().filter(|r| r.is_ok()).count() > 100);

        // Deterministic order: ways before relations, ids ascending within each kind.
        let ids: Vec<(bool, i64)> = buildings
            .iter()
            .map(|r| match position(r) {
                Position::Osm { kind, id } => (*kind == "relation", *id),
                other => panic!("unexpected position {other}"),
            })
            .collect();
        assert!(ids.is_sorted());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_the_path() {
        let err = read_osm(Path::new("/nonexistent/city.osm.pbf"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/city.osm.pbf"));
    }
}
