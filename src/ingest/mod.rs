//! Readers that turn files into [`Feature`]s, one record at a time, with an error per bad
//! record that says where it is and what is wrong, and the checks ([`validate`]) and
//! geometry repair ([`repair`]) a feature passes before it is stored. Storing the features
//! is the store's job; this module only reads, validates and repairs.
//!
//! Formats: GeoJSON FeatureCollection, GeoJSONSeq (newline-delimited, RFC 8142 record
//! separators allowed), CSV (lon/lat columns or a WKT column), OSM PBF (with a tag filter),
//! and the planners' formats GeoPackage, zipped Shapefile and FlatGeobuf, whose coordinate
//! systems [`crs`] brings to WGS84 (the maths in [`projection`]).

pub mod crs;
pub mod csv;
pub mod fgb;
pub mod geojson;
pub mod gpkg;
pub mod osm;
pub mod projection;
pub mod repair;
pub mod run;
pub mod shp;
pub mod validate;
pub mod wkb;

use std::fmt;

use crate::model::Feature;

/// Where a record sits in its input, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a line-oriented file (GeoJSONSeq, CSV).
    Line(u64),
    /// 0-based index of a feature in a FeatureCollection.
    Feature(u64),
    /// An OSM element: `node`, `way` or `relation`, and its id.
    Osm { kind: &'static str, id: i64 },
    /// A stored feature, by id (an edit through the API).
    Stored(u64),
    /// A feature of a table in a file: a GeoPackage table and its fid, or a shapefile
    /// (named by its `.shp` member) and its 0-based record number, as GDAL counts fids.
    Table { table: String, fid: i64 },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Feature(n) => write!(f, "feature {n}"),
            Position::Osm { kind, id } => write!(f, "{kind} {id}"),
            Position::Stored(id) => write!(f, "feature id {id}"),
            Position::Table { table, fid } => write!(f, "table {table:?}, fid {fid}"),
        }
    }
}

/// One bad record: where it is, which field (if one is to blame) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{position}{}: {reason}", field.as_ref().map(|f| format!(", field {f:?}")).unwrap_or_default())]
pub struct RecordError {
    pub position: Position,
    pub field: Option<String>,
    pub reason: String,
}

impl RecordError {
    pub fn new(position: Position, field: Option<&str>, reason: impl Into<String>) -> Self {
        Self {
            position,
            field: field.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// A record that was read, with its position for later validation errors.
pub type Record = Result<(Position, Feature), RecordError>;

/// Input formats, by the names the CLI and layer files use (defined with the layer files).
pub use crate::config::FORMATS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    GeoJsonSeq,
    Csv,
    Osm,
    /// GeoPackage.
    Gpkg,
    /// A zipped Shapefile (`.shp.zip`, `.shz` or any `.zip` holding one), or a bare `.shp`
    /// with its sidecar files beside it.
    Shp,
    /// FlatGeobuf.
    Fgb,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "geojson" => Format::GeoJson,
            "geojsonseq" => Format::GeoJsonSeq,
            "csv" => Format::Csv,
            "osm" => Format::Osm,
            "gpkg" => Format::Gpkg,
            "shp" => Format::Shp,
            "fgb" => Format::Fgb,
            _ => {
                return Err(format!(
                    "unknown format {s:?}: use one of {}",
                    FORMATS.join(", ")
                ));
            }
        })
    }
}

impl Format {
    /// The format a file name suggests.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let ends = |exts: &[&str]| exts.iter().any(|e| name.ends_with(e));
        if ends(&[".osm.pbf", ".pbf"]) {
            Some(Format::Osm)
        } else if ends(&[".geojsonseq", ".geojsons", ".geojsonl", ".ndjson", ".jsonl"]) {
            Some(Format::GeoJsonSeq)
        } else if ends(&[".geojson", ".json"]) {
            Some(Format::GeoJson)
        } else if ends(&[".csv"]) {
            Some(Format::Csv)
        } else if ends(&[".gpkg"]) {
            Some(Format::Gpkg)
        } else if ends(&[".shp", ".shz", ".zip"]) {
            Some(Format::Shp)
        } else if ends(&[".fgb"]) {
            Some(Format::Fgb)
        } else {
            None
        }
    }
}
