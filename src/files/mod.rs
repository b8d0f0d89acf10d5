//! Feature files for planners' desktop tools: FlatGeobuf ([`fgb`]) and CSV with a WKT
//! geometry column ([`csv`]), written piece by piece so that an answer of any size streams
//! with a bounded amount of memory.
//!
//! An [`Encoder`] is made once per answer from the layer and the chosen properties; it
//! writes the file's head, then any number of runs of features, each run a self-contained
//! slice of the file (pure and sync: the API runs it on the compute pool).

pub mod csv;
pub mod fgb;

use serde_json::Value;

use crate::config::LayerDef;
use crate::model::StoredFeature;
use crate::model::schema::PropertyType;

/// A file format features are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    FlatGeobuf,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::FlatGeobuf => "application/flatgeobuf",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::FlatGeobuf => "fgb",
            Format::Csv => "csv",
        }
    }
}

/// One column of the file: a declared property (or one a layer lists without a type).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// `None` for a layer that lists property names only: values are written as text.
    pub kind: Option<PropertyType>,
}

/// The columns of a layer's file: `chosen` properties (by index; every one when `None`),
/// and the name of the column holding the feature id: `id`, or `fid` (then `feature_id`)
/// when the layer has a property of that name.
pub fn columns(def: &LayerDef, chosen: Option<&[usize]>) -> (String, Vec<Column>) {
    let all: Vec<usize> = (0..def.properties.len()).collect();
    let columns = chosen
        .unwrap_or(&all)
        .iter()
        .map(|&i| Column {
            name: def.properties[i].clone(),
            kind: def.declared_type(i),
        })
        .collect();
    let id = ["id", "fid", "feature_id"]
        .into_iter()
        .find(|n| !def.properties.iter().any(|p| p == n))
        .unwrap_or("urbantile_id");
    (id.to_owned(), columns)
}

/// Writes a file's head and its features.
pub trait Encoder: Send + Sync {
    /// The start of the file (FlatGeobuf's magic bytes and header; CSV's header row).
    fn head(&self) -> Vec<u8>;
    /// A run of features, appended to `out`.
    fn features(&self, features: &[StoredFeature], out: &mut Vec<u8>);
}

/// The encoder of `format` for a layer's file with these columns.
pub fn encoder(
    format: Format,
    def: &LayerDef,
    id_column: String,
    columns: Vec<Column>,
) -> Box<dyn Encoder> {
    match format {
        Format::FlatGeobuf => Box::new(fgb::FgbEncoder::new(def, id_column, columns)),
        Format::Csv => Box::new(csv::CsvEncoder::new(id_column, columns)),
    }
}

/// A property's value as text, for a column without a declared type and for CSV: strings as
/// they are, other values as JSON; `None` for null or missing.
pub(crate) fn as_text(value: Option<&Value>) -> Option<std::borrow::Cow<'_, str>> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.as_str().into()),
        other => Some(other.to_string().into()),
    }
}
