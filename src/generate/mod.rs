//! Deterministic generators of realistic test layers, and the GeoJSONSeq writer they share.
//!
//! Generators take their geometry from real data (an OSM extract) and a seed, and must
//! produce byte-identical output for the same inputs: fixtures are committed and diffed.
//! Hence a fixed PRNG ([`rng`]), no hash-map iteration, and a writer with a fixed key order
//! and fixed coordinate precision.

pub mod city;
pub mod dog_parks;
pub mod metro;
pub mod rng;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use geo::{Coord, Geometry, LineString, Polygon};

use crate::model::Feature;

/// Coordinate precision of written files: 7 decimals is ~1 cm, the precision of OSM itself.
pub const DECIMALS: i32 = 7;

/// Rounds a coordinate value to [`DECIMALS`] decimals.
pub fn round_coord(v: f64) -> f64 {
    let scale = 10f64.powi(DECIMALS);
    (v * scale).round() / scale
}

/// One RFC 7946 GeoJSON Feature as a single line (no newline): `type`, `geometry`,
/// `properties` in that order, properties sorted by key, coordinates rounded to
/// [`DECIMALS`] decimals. Rect, Triangle and Line are written as Polygon / LineString.
///
/// # Examples
/// ```
/// use urbantile::generate::geojson_line;
/// use urbantile::model::{Feature, Properties};
/// let mut properties = Properties::new();
/// properties.insert("b".into(), 1.into());
/// properties.insert("a".into(), "x".into());
/// let f = Feature { geometry: geo::Point::new(24.123456789, 60.1).into(), properties };
/// assert_eq!(
///     geojson_line(&f),
///     r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[24.1234568,60.1]},"properties":{"a":"x","b":1}}"#
/// );
/// ```
pub fn geojson_line(feature: &Feature) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"type":"Feature","geometry":"#);
    write_geometry(&mut out, &feature.geometry);
    out.push_str(r#","properties":"#);
    // The properties map is ordered by key (serde_json without `preserve_order`), and even
    // with that feature insertion order is deterministic in our generators.
    out.push_str(
        &serde_json::to_string(&feature.properties).expect("JSON values always serialise"),
    );
    out.push('}');
    out
}

/// Writes `features` as GeoJSONSeq: one feature per line, no record separators, trailing
/// newline. Writes to a temporary file first so a failed run never leaves half a file.
/// Returns the number of bytes written.
pub fn write_geojsonseq(path: &Path, features: &[Feature]) -> io::Result<u64> {
    let tmp = path.with_extension("geojsonseq.tmp");
    let mut bytes = 0u64;
    {
        let mut w = io::BufWriter::new(fs::File::create(&tmp)?);
        for feature in features {
            let line = geojson_line(feature);
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
            bytes += line.len() as u64 + 1;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(bytes)
}

fn write_geometry(out: &mut String, geometry: &Geometry<f64>) {
    let (kind, body): (&str, String) = match geometry {
        Geometry::Point(p) => ("Point", position(p.0)),
        Geometry::MultiPoint(mp) => ("MultiPoint", list(mp.0.iter().map(|p| position(p.0)))),
        Geometry::Line(l) => (
            "LineString",
            list([position(l.start), position(l.end)].into_iter()),
        ),
        Geometry::LineString(ls) => ("LineString", line(ls)),
        Geometry::MultiLineString(mls) => ("MultiLineString", list(mls.0.iter().map(line))),
        Geometry::Polygon(p) => ("Polygon", polygon(p)),
        Geometry::MultiPolygon(mp) => ("MultiPolygon", list(mp.0.iter().map(polygon))),
        Geometry::Rect(r) => ("Polygon", polygon(&r.to_polygon())),
        Geometry::Triangle(t) => ("Polygon", polygon(&t.to_polygon())),
        Geometry::GeometryCollection(gc) => {
            out.push_str(r#"{"type":"GeometryCollection","geometries":["#);
            for (i, g) in gc.0.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_geometry(out, g);
            }
            out.push_str("]}");
            return;
        }
    };
    out.push_str(r#"{"type":""#);
    out.push_str(kind);
    out.push_str(r#"","coordinates":"#);
    out.push_str(&body);
    out.push('}');
}

fn position(c: Coord<f64>) -> String {
    // serde_json prints the shortest text that reads back to the same f64.
    let num = |v: f64| serde_json::to_string(&round_coord(v)).expect("finite coordinate");
    format!("[{},{}]", num(c.x), num(c.y))
}

fn line(ls: &LineString<f64>) -> String {
    list(ls.0.iter().map(|c| position(*c)))
}

fn polygon(p: &Polygon<f64>) -> String {
    list(std::iter::once(p.exterior()).chain(p.interiors()).map(line))
}

fn list(items: impl Iterator<Item = String>) -> String {
    let mut s = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&item);
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Properties;

    #[test]
    fn polygons_are_written_with_rings_and_rounded_coordinates() {
        let p = Polygon::new(
            LineString::from(vec![(0.0, 0.0), (1.000000049, 0.0), (1.0, 1.0), (0.0, 0.0)]),
            vec![],
        );
        let f = Feature {
            geometry: p.into(),
            properties: Properties::new(),
        };
        assert_eq!(
            geojson_line(&f),
            r#"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0.0,0.0],[1.0,0.0],[1.0,1.0],[0.0,0.0]]]},"properties":{}}"#
        );
    }
}
