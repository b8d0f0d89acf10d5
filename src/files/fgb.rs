//! FlatGeobuf (spec version 3), written as a stream: the magic bytes, a header with no
//! spatial index and a feature count of 0 ("unknown", which the format allows for exactly
//! this), then each feature as a size-prefixed FlatBuffer, in the query's order.
//!
//! The tables are the `flatgeobuf` crate's generated FlatBuffers types; the crate's own
//! `FgbWriter` is not used because it spools every feature to a temporary file and sorts
//! them for its index before it writes a byte, which a streamed answer cannot wait for.
//!
//! Columns: the feature id (`ULong`), then the chosen properties by declared type
//! (`string` -> String, `integer` -> Long, `number` -> Double, `boolean` -> Bool,
//! `datetime` -> DateTime, as its RFC 3339 text; undeclared -> String). Null values are
//! left out, as the format does. Geometry keeps its own type per feature (the header's is
//! Unknown), in WGS84 (EPSG:4326), coordinates exactly as stored.

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use flatgeobuf::{
    Column as FgbColumn, ColumnArgs, ColumnType, Crs, CrsArgs, Feature, FeatureArgs, Geometry,
    GeometryArgs, GeometryType, Header, HeaderArgs,
};
use geo::{Coord, LineString, Polygon};
use serde_json::Value;

use super::{Column, Encoder, as_text};
use crate::config::LayerDef;
use crate::model::StoredFeature;
use crate::model::schema::PropertyType;

/// `fgb`, the spec's major version 3, `fgb`, patch 0.
const MAGIC: [u8; 8] = [b'f', b'g', b'b', 3, b'f', b'g', b'b', 0];

pub struct FgbEncoder {
    name: String,
    title: String,
    description: String,
    id_column: String,
    columns: Vec<Column>,
}

impl FgbEncoder {
    pub fn new(def: &LayerDef, id_column: String, columns: Vec<Column>) -> FgbEncoder {
        FgbEncoder {
            name: def.id.to_string(),
            title: def.title.clone(),
            description: def.description.clone(),
            id_column,
            columns,
        }
    }
}

fn column_type(kind: Option<PropertyType>) -> ColumnType {
    match kind {
        Some(PropertyType::Integer) => ColumnType::Long,
        Some(PropertyType::Number) => ColumnType::Double,
        Some(PropertyType::Boolean) => ColumnType::Bool,
        Some(PropertyType::DateTime) => ColumnType::DateTime,
        Some(PropertyType::String) | None => ColumnType::String,
    }
}

impl Encoder for FgbEncoder {
    fn head(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let mut columns = Vec::with_capacity(self.columns.len() + 1);
        let id = ColumnArgs {
            name: Some(fbb.create_string(&self.id_column)),
            type_: ColumnType::ULong,
            nullable: false,
            unique: true,
            primary_key: true,
            ..Default::default()
        };
        columns.push(FgbColumn::create(&mut fbb, &id));
        for c in &self.columns {
            let args = ColumnArgs {
                name: Some(fbb.create_string(&c.name)),
                type_: column_type(c.kind),
                nullable: true,
                ..Default::default()
            };
            columns.push(FgbColumn::create(&mut fbb, &args));
        }
        let columns = fbb.create_vector(&columns);
        let crs = CrsArgs {
            org: Some(fbb.create_string("EPSG")),
            code: 4326,
            ..Default::default()
        };
        let header = HeaderArgs {
            name: Some(fbb.create_string(&self.name)),
            title: Some(fbb.create_string(&self.title)),
            description: Some(fbb.create_string(&self.description)),
            geometry_type: GeometryType::Unknown,
            columns: Some(columns),
            crs: Some(Crs::create(&mut fbb, &crs)),
            // Unknown until the end, which a stream never goes back to.
            features_count: 0,
            // No spatial index: it would need every feature before the first.
            index_node_size: 0,
            ..Default::default()
        };
        let header = Header::create(&mut fbb, &header);
        fbb.finish_size_prefixed(header, None);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(fbb.finished_data());
        out
    }

    fn features(&self, features: &[StoredFeature], out: &mut Vec<u8>) {
        let mut fbb = FlatBufferBuilder::with_capacity(4096);
        let mut props = Vec::with_capacity(256);
        let mut scratch = Scratch::default();
        for f in features {
            props.clear();
            props.extend_from_slice(&0u16.to_le_bytes());
            props.extend_from_slice(&f.id.0.to_le_bytes());
            for (i, c) in self.columns.iter().enumerate() {
                let slot = u16::try_from(i + 1).unwrap_or(u16::MAX);
                write_value(&mut props, slot, c.kind, f.feature.properties.get(&c.name));
            }
            let geometry = geometry(&mut fbb, &mut scratch, &f.feature.geometry);
            let properties = fbb.create_vector(&props);
            let feature = Feature::create(
                &mut fbb,
                &FeatureArgs {
                    geometry: Some(geometry),
                    properties: Some(properties),
                    columns: None,
                },
            );
            fbb.finish_size_prefixed(feature, None);
            out.extend_from_slice(fbb.finished_data());
            fbb.reset();
        }
    }
}

/// One property as FlatGeobuf stores it: its column's index, then its value (little
/// endian; text as a u32 length and UTF-8). A null or missing value, or one that does not
/// fit its declared type, is left out.
fn write_value(out: &mut Vec<u8>, slot: u16, kind: Option<PropertyType>, value: Option<&Value>) {
    let start = out.len();
    out.extend_from_slice(&slot.to_le_bytes());
    let written = match (kind, value) {
        (_, None | Some(Value::Null)) => false,
        (Some(PropertyType::Integer), Some(v)) => match v.as_i64() {
            Some(n) => {
                out.extend_from_slice(&n.to_le_bytes());
                true
            }
            None => false,
        },
        (Some(PropertyType::Number), Some(v)) => match v.as_f64() {
            Some(n) => {
                out.extend_from_slice(&n.to_le_bytes());
                true
            }
            None => false,
        },
        (Some(PropertyType::Boolean), Some(v)) => match v.as_bool() {
            Some(b) => {
                out.push(u8::from(b));
                true
            }
            None => false,
        },
        (_, v) => match as_text(v) {
            Some(text) => {
                let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&text.as_bytes()[..len as usize]);
                true
            }
            None => false,
        },
    };
    if !written {
        out.truncate(start);
    }
}

/// Buffers reused from feature to feature.
#[derive(Default)]
struct Scratch {
    xy: Vec<f64>,
    ends: Vec<u32>,
}

impl Scratch {
    fn push_line(&mut self, line: &LineString<f64>) {
        self.xy
            .extend(line.0.iter().flat_map(|c: &Coord<f64>| [c.x, c.y]));
        self.ends.push((self.xy.len() / 2) as u32);
    }

    fn push_polygon(&mut self, p: &Polygon<f64>) {
        self.push_line(p.exterior());
        for ring in p.interiors() {
            self.push_line(ring);
        }
    }

    /// A geometry table of the coordinates gathered so far (`ends` only when there is
    /// more than one part, as the spec asks), and empties the buffers.
    fn finish<'a>(
        &mut self,
        fbb: &mut FlatBufferBuilder<'a>,
        type_: GeometryType,
    ) -> WIPOffset<Geometry<'a>> {
        let xy = Some(fbb.create_vector(&self.xy));
        let ends = (self.ends.len() > 1).then(|| fbb.create_vector(&self.ends));
        self.xy.clear();
        self.ends.clear();
        Geometry::create(
            fbb,
            &GeometryArgs {
                xy,
                ends,
                type_,
                ..Default::default()
            },
        )
    }
}

/// A geo geometry as a FlatGeobuf geometry table: flat coordinates with part ends, and
/// parts of their own for multipolygons and collections.
fn geometry<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    s: &mut Scratch,
    g: &geo::Geometry<f64>,
) -> WIPOffset<Geometry<'a>> {
    use geo::Geometry as G;
    match g {
        G::Point(p) => {
            s.xy.extend([p.x(), p.y()]);
            s.finish(fbb, GeometryType::Point)
        }
        G::MultiPoint(mp) => {
            s.xy.extend(mp.0.iter().flat_map(|p| [p.x(), p.y()]));
            s.finish(fbb, GeometryType::MultiPoint)
        }
        G::Line(l) => {
            s.push_line(&LineString::from(vec![l.start, l.end]));
            s.finish(fbb, GeometryType::LineString)
        }
        G::LineString(l) => {
            s.push_line(l);
            s.finish(fbb, GeometryType::LineString)
        }
        G::MultiLineString(ml) => {
            for l in &ml.0 {
                s.push_line(l);
            }
            s.finish(fbb, GeometryType::MultiLineString)
        }
        G::Polygon(p) => {
            s.push_polygon(p);
            s.finish(fbb, GeometryType::Polygon)
        }
        G::Rect(r) => {
            s.push_polygon(&r.to_polygon());
            s.finish(fbb, GeometryType::Polygon)
        }
        G::Triangle(t) => {
            s.push_polygon(&t.to_polygon());
            s.finish(fbb, GeometryType::Polygon)
        }
        G::MultiPolygon(mp) => {
            let parts: Vec<_> =
                mp.0.iter()
                    .map(|p| {
                        s.push_polygon(p);
                        s.finish(fbb, GeometryType::Polygon)
                    })
                    .collect();
            let parts = fbb.create_vector(&parts);
            Geometry::create(
                fbb,
                &GeometryArgs {
                    type_: GeometryType::MultiPolygon,
                    parts: Some(parts),
                    ..Default::default()
                },
            )
        }
        G::GeometryCollection(gc) => {
            let parts: Vec<_> = gc.0.iter().map(|g| geometry(fbb, s, g)).collect();
            let parts = fbb.create_vector(&parts);
            Geometry::create(
                fbb,
                &GeometryArgs {
                    type_: GeometryType::GeometryCollection,
                    parts: Some(parts),
                    ..Default::default()
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Feature, FeatureId, Properties};
    use flatgeobuf::{FallibleStreamingIterator, FeatureProperties, FgbReader};
    use geozero::ToGeo;

    fn def() -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("spots.toml"),
            "title = \"Spots\"\ngeometry = \"polygon\"\n\
             properties = { name = \"string\", n = \"integer\", x = \"number\", ok = \"boolean\", at = \"datetime\" }\n",
        )
        .unwrap()
    }

    /// The crate's own reader (sequential, since there is no index) reads back every
    /// feature: geometry, id and properties.
    #[test]
    fn the_crates_reader_reads_the_stream_back() {
        let def = def();
        let (id, columns) = super::super::columns(&def, None);
        let enc = FgbEncoder::new(&def, id, columns);
        let square = |x: f64| {
            Polygon::new(
                LineString::from(vec![(x, 60.0), (x + 1.0, 60.0), (x + 1.0, 61.0), (x, 60.0)]),
                vec![],
            )
        };
        let mut p = Properties::new();
        p.insert("name".into(), "Töölö".into());
        p.insert("n".into(), 42.into());
        p.insert("x".into(), 0.1.into());
        p.insert("ok".into(), true.into());
        p.insert("at".into(), "2026-05-01T10:00:00Z".into());
        let features = [
            StoredFeature {
                id: FeatureId(9),
                version: 0,
                feature: Feature {
                    geometry: geo::MultiPolygon(vec![square(24.0), square(26.0)]).into(),
                    properties: p,
                },
            },
            StoredFeature {
                id: FeatureId(10),
                version: 0,
                feature: Feature {
                    geometry: square(25.0).into(),
                    properties: Properties::new(),
                },
            },
        ];
        let mut file = enc.head();
        enc.features(&features[..1], &mut file);
        enc.features(&features[1..], &mut file);
        let mut reader = std::io::Cursor::new(file);
        let fgb = FgbReader::open(&mut reader).unwrap();
        assert_eq!(fgb.header().features_count(), 0);
        let mut it = fgb.select_all_seq().unwrap();
        let mut got = Vec::new();
        while let Some(f) = it.next().unwrap() {
            let props = f.properties().unwrap();
            got.push((f.to_geo().unwrap(), props));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, features[0].feature.geometry);
        assert_eq!(got[1].0, features[1].feature.geometry);
        assert_eq!(got[0].1["id"], "9");
        assert_eq!(got[0].1["name"], "Töölö");
        assert_eq!(got[0].1["n"], "42");
        assert_eq!(got[0].1["ok"], "true");
        assert_eq!(got[0].1["at"], "2026-05-01T10:00:00Z");
        assert_eq!(got[1].1.get("name"), None);
    }
}
