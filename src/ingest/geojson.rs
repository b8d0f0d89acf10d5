//! GeoJSON (RFC 7946) FeatureCollections and GeoJSONSeq (one Feature per line, RFC 8142
//! record separators allowed). The conversion to geo types is done here rather than by the
//! geojson crate so that each defect (a short position, an unclosed ring) is named with the
//! coordinate path where it is.

use std::io::BufRead;

use geo::{Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use geojson::{GeoJson, Value};

use crate::ingest::{Position, Record, RecordError};
use crate::model::{Feature, Properties};

fn coord(pos: &[f64], path: &str) -> Result<Coord<f64>, String> {
    match pos {
        [x, y, ..] => Ok(Coord { x: *x, y: *y }),
        _ => Err(format!(
            "position {path} has {} number(s); a position needs longitude and latitude",
            pos.len()
        )),
    }
}

fn coords(list: &[Vec<f64>], path: &str) -> Result<Vec<Coord<f64>>, String> {
    list.iter()
        .enumerate()
        .map(|(i, p)| coord(p, &format!("{path}[{i}]")))
        .collect()
}

/// A linear ring must repeat its first position at the end (RFC 7946 3.1.6).
fn ring(list: &[Vec<f64>], path: &str) -> Result<LineString<f64>, String> {
    let cs = coords(list, path)?;
    if cs.len() < 4 {
        return Err(format!(
            "ring {path} has {} positions; a ring needs at least 4",
            cs.len()
        ));
    }
    if cs.first() != cs.last() {
        return Err(format!(
            "ring {path} is not closed: its last position differs from its first"
        ));
    }
    Ok(LineString(cs))
}

fn polygon(rings: &[Vec<Vec<f64>>], path: &str) -> Result<Polygon<f64>, String> {
    let mut it = rings.iter().enumerate();
    let Some((_, exterior)) = it.next() else {
        return Err(format!("polygon {path} has no rings"));
    };
    let exterior = ring(exterior, &format!("{path}[0]"))?;
    let holes = it
        .map(|(i, r)| ring(r, &format!("{path}[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(Polygon::new(exterior, holes))
}

/// Converts a GeoJSON geometry value; errors name the coordinate path, e.g.
/// `coordinates[0][2]`.
pub fn to_geo(value: &Value) -> Result<geo::Geometry<f64>, String> {
    let c = "coordinates";
    Ok(match value {
        Value::Point(p) => Point(coord(p, c)?).into(),
        Value::MultiPoint(ps) => MultiPoint(coords(ps, c)?.into_iter().map(Point).collect()).into(),
        Value::LineString(ps) => LineString(coords(ps, c)?).into(),
        Value::MultiLineString(ls) => MultiLineString(
            ls.iter()
                .enumerate()
                .map(|(i, l)| coords(l, &format!("{c}[{i}]")).map(LineString))
                .collect::<Result<_, _>>()?,
        )
        .into(),
        Value::Polygon(rings) => polygon(rings, c)?.into(),
        Value::MultiPolygon(polys) => MultiPolygon(
            polys
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &format!("{c}[{i}]")))
                .collect::<Result<_, _>>()?,
        )
        .into(),
        Value::GeometryCollection(gs) => {
            geo::Geometry::GeometryCollection(geo::GeometryCollection(
                gs.iter()
                    .map(|g| to_geo(&g.value))
                    .collect::<Result<_, _>>()?,
            ))
        }
    })
}

/// One GeoJSON Feature as a record; a missing or malformed geometry is its error.
pub fn feature_record(position: Position, f: geojson::Feature) -> Record {
    let Some(geometry) = f.geometry else {
        return Err(RecordError::new(
            position,
            Some("geometry"),
            "is null; every feature needs a geometry",
        ));
    };
    let geometry = to_geo(&geometry.value)
        .map_err(|e| RecordError::new(position.clone(), Some("geometry"), e))?;
    let properties: Properties = f.properties.unwrap_or_default();
    Ok((
        position,
        Feature {
            geometry,
            properties,
        },
    ))
}

#[derive(Debug, thiserror::Error)]
#[error("not GeoJSON: {0}")]
pub struct NotGeoJson(pub String);

/// Reads a whole FeatureCollection (or a single Feature). A syntax error is fatal and names
/// the line and column; a bad feature is a record error with its index.
pub fn read_collection(input: impl std::io::Read) -> Result<Vec<Record>, NotGeoJson> {
    let gj: GeoJson = serde_json::from_reader(std::io::BufReader::new(input))
        .map_err(|e| NotGeoJson(e.to_string()))?;
    let features = match gj {
        GeoJson::FeatureCollection(fc) => fc.features,
        GeoJson::Feature(f) => vec![f],
        GeoJson::Geometry(_) => {
            return Err(NotGeoJson(
                "a bare geometry; expected a FeatureCollection or Feature".into(),
            ));
        }
    };
    Ok(features
        .into_iter()
        .enumerate()
        .map(|(i, f)| feature_record(Position::Feature(i as u64), f))
        .collect())
}

/// Streams GeoJSONSeq: one record per non-blank line, each parsed on its own so that a bad
/// line costs only itself.
pub fn read_seq(input: impl BufRead) -> impl Iterator<Item = Record> {
    input.lines().enumerate().filter_map(|(i, line)| {
        let position = Position::Line(i as u64 + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                return Some(Err(RecordError::new(
                    position,
                    None,
                    format!("unreadable: {e}"),
                )));
            }
        };
        let text = line.trim_start_matches('\u{1e}').trim();
        if text.is_empty() {
            return None;
        }
        Some(match serde_json::from_str::<geojson::Feature>(text) {
            Ok(f) => feature_record(position, f),
            Err(e) => Err(RecordError::new(
                position,
                None,
                format!("not a GeoJSON Feature: {e}"),
            )),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_ring_is_named_by_its_path() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[24.9,60.1]}},
            {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}}]}"#;
        let records = read_collection(text.as_bytes()).unwrap();
        assert!(records[0].is_ok());
        let err = records[1].clone().unwrap_err();
        assert_eq!(err.position, Position::Feature(1));
        assert!(
            err.to_string().contains("coordinates[0] is not closed"),
            "{err}"
        );
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let err = read_collection("{\"type\":\n\"FeatureCollection\",,}".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn a_bad_line_of_a_sequence_costs_only_itself() {
        let text = "{\"type\":\"Feature\",\"properties\":{\"a\":1},\"geometry\":{\"type\":\"Point\",\"coordinates\":[1,2]}}\n\
                    {\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[1]}}\n\
                    \n\
                    garbage\n\
                    \u{1e}{\"type\":\"Feature\",\"properties\":null,\"geometry\":{\"type\":\"Point\",\"coordinates\":[3,4]}}\n";
        let records: Vec<Record> = read_seq(text.as_bytes()).collect();
        assert_eq!(records.len(), 4);
        assert!(records[0].is_ok() && records[3].is_ok());
        let e1 = records[1].clone().unwrap_err();
        assert_eq!(e1.position, Position::Line(2));
        assert!(e1.reason.contains("two or more"), "{e1}");
        assert_eq!(records[2].clone().unwrap_err().position, Position::Line(4));
    }
}
