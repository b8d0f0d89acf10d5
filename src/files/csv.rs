//! CSV: a header row, then one row per feature: its id, its geometry as WKT (the
//! coordinates as stored, each number written in its shortest exact form), then the
//! chosen properties (text as it is, numbers and booleans as JSON writes them, an empty
//! cell for null). RFC 4180 quoting, by the `csv` crate.

use wkt::ToWkt;

use super::{Column, Encoder, as_text};
use crate::model::StoredFeature;

pub struct CsvEncoder {
    id_column: String,
    columns: Vec<Column>,
}

impl CsvEncoder {
    pub fn new(id_column: String, columns: Vec<Column>) -> CsvEncoder {
        CsvEncoder { id_column, columns }
    }

    fn writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out)
    }
}

impl Encoder for CsvEncoder {
    fn head(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Self::writer(&mut out);
        let names = [self.id_column.as_str(), "geometry"]
            .into_iter()
            .chain(self.columns.iter().map(|c| c.name.as_str()));
        // Writing into memory cannot fail.
        let _ = w.write_record(names);
        drop(w);
        out
    }

    fn features(&self, features: &[StoredFeature], out: &mut Vec<u8>) {
        let mut w = Self::writer(out);
        let mut row: Vec<String> = Vec::with_capacity(self.columns.len() + 2);
        for f in features {
            row.clear();
            row.push(f.id.0.to_string());
            row.push(f.feature.geometry.wkt_string());
            for c in &self.columns {
                row.push(
                    as_text(f.feature.properties.get(&c.name))
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                );
            }
            let _ = w.write_record(&row);
        }
        let _ = w.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Feature, FeatureId, Properties};

    #[test]
    fn rows_carry_id_wkt_and_properties_quoted_as_needed() {
        let enc = CsvEncoder::new(
            "id".into(),
            vec![
                Column {
                    name: "name".into(),
                    kind: None,
                },
                Column {
                    name: "n".into(),
                    kind: None,
                },
            ],
        );
        let mut p = Properties::new();
        p.insert("name".into(), "Kallio, \"north\"".into());
        p.insert("n".into(), 3.5.into());
        let f = StoredFeature {
            id: FeatureId(7),
            version: 0,
            feature: Feature {
                geometry: geo::Point::new(24.95, 60.1).into(),
                properties: p,
            },
        };
        let mut out = enc.head();
        enc.features(&[f], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,geometry,name,n\r\n7,POINT(24.95 60.1),\"Kallio, \"\"north\"\"\",3.5\r\n"
        );
    }
}
