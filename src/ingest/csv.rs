//! CSV with a header row: geometry from `lon`/`lat` columns (also `lng`, `longitude`, `x`
//! and `latitude`, `y`) or from a WKT column (`wkt`, `geometry` or `geom`). Other columns
//! become properties: an empty cell is null, `true`/`false` are booleans, decimal numbers
//! are numbers, anything else stays text.

use std::io::Read;

use crate::ingest::{Position, Record, RecordError};
use crate::model::{Feature, Properties};

const LON: &[&str] = &["lon", "lng", "longitude", "x"];
const LAT: &[&str] = &["lat", "latitude", "y"];
const WKT: &[&str] = &["wkt", "geometry", "geom"];

enum GeometryColumns {
    LonLat(usize, usize),
    Wkt(usize),
}

#[derive(Debug, thiserror::Error)]
#[error("CSV header: {0}")]
pub struct BadHeader(pub String);

fn find(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers
        .iter()
        .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
}

fn typed(cell: &str) -> serde_json::Value {
    let t = cell.trim();
    if t.is_empty() {
        return serde_json::Value::Null;
    }
    match t {
        "true" => return true.into(),
        "false" => return false.into(),
        _ => {}
    }
    // Only plain decimal notation counts as a number: codes such as "007" or "1e5" stay text.
    let plain = t.trim_start_matches('-');
    let looks_numeric = !plain.is_empty()
        && plain.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && plain.bytes().filter(|&b| b == b'.').count() <= 1
        && !(plain.len() > 1 && plain.starts_with('0') && !plain.starts_with("0."));
    if looks_numeric {
        if let Ok(i) = t.parse::<i64>() {
            return i.into();
        }
        if let Ok(f) = t.parse::<f64>()
            && let Some(n) = serde_json::Number::from_f64(f)
        {
            return n.into();
        }
    }
    t.into()
}

fn number(cell: &str, position: &Position, field: &str) -> Result<f64, RecordError> {
    cell.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            RecordError::new(
                position.clone(),
                Some(field),
                format!("{:?} is not a number", cell),
            )
        })
}

/// Checks that every ring of a parsed WKT polygon repeats its first point at the end.
fn wkt_rings_closed(w: &wkt::Wkt<f64>) -> Result<(), String> {
    let check = |p: &wkt::types::Polygon<f64>, which: String| {
        for (i, r) in p.rings().iter().enumerate() {
            let c = r.coords();
            let closed = match (c.first(), c.last()) {
                (Some(a), Some(b)) => a.x == b.x && a.y == b.y,
                _ => true,
            };
            if !closed {
                return Err(format!("{which}ring {i} is not closed"));
            }
        }
        Ok(())
    };
    match w {
        wkt::Wkt::Polygon(p) => check(p, String::new()),
        wkt::Wkt::MultiPolygon(mp) => mp
            .polygons()
            .iter()
            .enumerate()
            .try_for_each(|(i, p)| check(p, format!("polygon {i} "))),
        _ => Ok(()),
    }
}

/// Reads the header, then streams one record per row (positions are file lines, the
/// header being line 1).
pub fn read_csv(input: impl Read + 'static) -> Result<impl Iterator<Item = Record>, BadHeader> {
    read_csv_keeping_text(input, Vec::new())
}

/// [`read_csv`], with the cells of `text_columns` kept as the text they are (columns a
/// layer declares `string` or `datetime`): a code such as `1.10` or `007` must not go
/// through a number on its way in.
pub fn read_csv_keeping_text(
    input: impl Read + 'static,
    text_columns: Vec<String>,
) -> Result<impl Iterator<Item = Record>, BadHeader> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| BadHeader(e.to_string()))?
        .clone();
    let columns = match (
        find(&headers, LON),
        find(&headers, LAT),
        find(&headers, WKT),
    ) {
        (Some(x), Some(y), _) => GeometryColumns::LonLat(x, y),
        (_, _, Some(w)) => GeometryColumns::Wkt(w),
        _ => {
            return Err(BadHeader(format!(
                "no geometry columns: need lon and lat (or {}) or a WKT column ({})",
                [LON, LAT].concat().join(", "),
                WKT.join(", ")
            )));
        }
    };
    let geometry_cols: Vec<usize> = match columns {
        GeometryColumns::LonLat(x, y) => vec![x, y],
        GeometryColumns::Wkt(w) => vec![w],
    };
    // The csv crate counts lines by '\n' only, yet also ends records at a lone '\r': in a
    // file with old Mac line ends every record would be on "line 1", the header's. A record
    // starts on a later line than the one before it, so its line is at least one past that.
    let mut last_line = headers.position().map_or(1, |p| p.line());
    let mut line_of = move |reported: Option<&csv::Position>| {
        let line = reported.map_or(0, |p| p.line()).max(last_line + 1);
        last_line = line;
        line
    };
    Ok(reader.into_records().map(move |row| {
        let row = row.map_err(|e| {
            let line = line_of(e.position());
            RecordError::new(Position::Line(line), None, e.to_string())
        })?;
        let position = Position::Line(line_of(row.position()));
        if row.len() != headers.len() {
            return Err(RecordError::new(
                position,
                None,
                format!("has {} cells; the header has {}", row.len(), headers.len()),
            ));
        }
        let geometry: geo::Geometry<f64> = match columns {
            GeometryColumns::LonLat(x, y) => {
                let lon = number(&row[x], &position, &headers[x])?;
                let lat = number(&row[y], &position, &headers[y])?;
                geo::Point::new(lon, lat).into()
            }
            GeometryColumns::Wkt(w) => {
                let bad =
                    |reason: String| RecordError::new(position.clone(), Some(&headers[w]), reason);
                let parsed: wkt::Wkt<f64> = row[w]
                    .parse()
                    .map_err(|e| bad(format!("not valid WKT: {e}")))?;
                wkt_rings_closed(&parsed).map_err(bad)?;
                geo::Geometry::try_from(parsed).map_err(|e| bad(format!("unusable WKT: {e}")))?
            }
        };
        let mut properties = Properties::new();
        for (i, (name, cell)) in headers.iter().zip(row.iter()).enumerate() {
            if !geometry_cols.contains(&i) {
                let name = name.trim();
                let value = if text_columns.iter().any(|c| c == name) {
                    // As typed() reads text: trimmed, and an empty cell is null.
                    match cell.trim() {
                        "" => serde_json::Value::Null,
                        t => serde_json::Value::String(t.to_owned()),
                    }
                } else {
                    typed(cell)
                };
                properties.insert(name.to_owned(), value);
            }
        }
        Ok((
            position,
            Feature {
                geometry,
                properties,
            },
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &'static str) -> Vec<Record> {
        read_csv(text.as_bytes()).unwrap().collect()
    }

    #[test]
    fn lon_lat_rows_become_points_with_typed_properties() {
        let r = records("name,lon,lat,seats,open,code\nCafe,24.95,60.17,12,true,007\n");
        let (pos, f) = r[0].clone().unwrap();
        assert_eq!(pos, Position::Line(2));
        assert_eq!(f.geometry, geo::Point::new(24.95, 60.17).into());
        assert_eq!(f.properties["seats"], 12);
        assert_eq!(f.properties["open"], true);
        assert_eq!(f.properties["code"], "007");
        assert!(!f.properties.contains_key("lon"));
    }

    #[test]
    fn text_columns_keep_their_cells_as_written() {
        let text = "lon,lat,code,n\n24.9,60.1,1.10,1.10\n24.9,60.1, ,12345678901234567890\n";
        let records: Vec<Record> = read_csv_keeping_text(text.as_bytes(), vec!["code".into()])
            .unwrap()
            .collect();
        let props = |i: usize| records[i].as_ref().unwrap().1.properties.clone();
        assert_eq!(props(0)["code"], serde_json::json!("1.10"));
        assert_eq!(props(0)["n"], serde_json::json!(1.1));
        assert_eq!(props(1)["code"], serde_json::Value::Null);
    }

    #[test]
    fn a_bad_number_names_the_line_and_column() {
        let r = records("lon,lat\n24.9,60.1\n24.9,sixty\n");
        let e = r[1].clone().unwrap_err();
        assert_eq!(e.position, Position::Line(3));
        assert_eq!(e.field.as_deref(), Some("lat"));
        assert!(e.reason.contains("\"sixty\""), "{e}");
    }

    #[test]
    fn wkt_polygons_are_read_and_unclosed_rings_refused() {
        let r = records(
            "id,wkt\n1,\"POLYGON((0 0,1 0,1 1,0 0))\"\n2,\"POLYGON((0 0,1 0,1 1))\"\n3,\"POLYGON((0 0\"\n",
        );
        assert!(matches!(
            r[0].clone().unwrap().1.geometry,
            geo::Geometry::Polygon(_)
        ));
        assert!(r[1].clone().unwrap_err().reason.contains("not closed"));
        assert!(r[2].clone().unwrap_err().reason.contains("not valid WKT"));
    }

    #[test]
    fn records_of_a_file_with_lone_carriage_returns_are_on_their_own_lines() {
        // Found by the csv fuzz target: every record here was reported on line 1.
        let r = records("lon,lat,a\r24.9,60.1,1\r24.9,sixty,2\r1,2\r");
        assert_eq!(r[0].clone().unwrap().0, Position::Line(2));
        assert_eq!(r[1].clone().unwrap_err().position, Position::Line(3));
        assert_eq!(r[2].clone().unwrap_err().position, Position::Line(4));
        let r = records("lon,lat\n24.9,60.1\n\"24.9\n\",60.1\n1,2\n");
        let lines: Vec<Position> = r
            .iter()
            .map(|x| match x {
                Ok((p, _)) => p.clone(),
                Err(e) => e.position.clone(),
            })
            .collect();
        assert_eq!(
            lines,
            [Position::Line(2), Position::Line(3), Position::Line(5)]
        );
    }

    #[test]
    fn a_header_without_geometry_is_refused() {
        assert!(read_csv("a,b\n1,2\n".as_bytes()).is_err());
    }
}
