//! FlatGeobuf input, read by the `flatgeobuf` crate in one sequential pass, with the
//! header's coordinate system brought to WGS84 by [`super::crs`].
//!
//! The crate trusts sizes in the file (a feature that claims 4 GB is allocated before it is
//! read) and indexes into buffers it has verified only in part (a truncated property or
//! ring panics). So the file is first walked without the crate: the header, the index
//! size, then every feature's size prefix, each checked against the bytes left and
//! [`MAX_FEATURE_BYTES`]; the crate then reads only the features that walk accepted, and
//! each feature is decoded under `catch_unwind`, a panic costing that feature alone.
//!
//! A record's position is its 0-based feature index, as GDAL numbers FlatGeobuf fids.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use flatgeobuf::{FallibleStreamingIterator, FeatureIter, FgbReader, reader_trait::NotSeekable};
use geozero::{ColumnValue, FeatureProperties, PropertyProcessor, ToGeo};

use crate::ingest::crs::{Crs, UnsupportedCrs};
use crate::ingest::{Position, Record, RecordError};
use crate::model::{Feature, Properties};

/// Largest feature, in bytes.
pub const MAX_FEATURE_BYTES: usize = 32 << 20;
/// Largest header, in bytes (the crate's own limit).
const MAX_HEADER_BYTES: usize = 10 << 20;
/// Size of one packed R-tree node in the index.
const NODE_BYTES: u64 = 40;

#[derive(Debug, thiserror::Error)]
pub enum FgbError {
    #[error("{}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: not a FlatGeobuf file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Crs {
        path: PathBuf,
        source: UnsupportedCrs,
    },
}

/// What the walk over the file found.
struct Walk {
    crs: Crs,
    /// Features whose size prefix fits the file.
    features: u64,
    /// Why the walk stopped before the end, if it did.
    stopped: Option<String>,
}

fn walk(path: &Path) -> Result<Walk, FgbError> {
    let io = |e: std::io::Error| FgbError::Read {
        path: path.to_owned(),
        reason: format!("cannot read it: {e}"),
    };
    let corrupt = |reason: String| FgbError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let mut f = BufReader::new(File::open(path).map_err(io)?);
    let len = f.get_ref().metadata().map_err(io)?.len();
    let mut head = [0u8; 12];
    f.read_exact(&mut head)
        .map_err(|_| corrupt("shorter than its magic bytes and header size".into()))?;
    if &head[..3] != b"fgb" || &head[4..7] != b"fgb" || head[3] > flatgeobuf::VERSION {
        return Err(corrupt("no FlatGeobuf magic bytes".into()));
    }
    let header_size = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if !(8..=MAX_HEADER_BYTES).contains(&header_size) || 12 + header_size as u64 > len {
        return Err(corrupt(format!(
            "a header of {header_size} bytes does not fit"
        )));
    }
    let mut header_buf = head[8..12].to_vec();
    header_buf.resize(4 + header_size, 0);
    f.read_exact(&mut header_buf[4..]).map_err(io)?;
    let header = flatgeobuf::size_prefixed_root_as_header(&header_buf)
        .map_err(|e| corrupt(format!("its header is malformed: {e}")))?;
    let crs = match header.crs() {
        None => Err(UnsupportedCrs {
            name: "(none)".into(),
            why: "the file names no coordinate system (write it with one, e.g. `ogr2ogr -a_srs EPSG:4326`)"
                .into(),
        }),
        Some(c) => match (c.wkt(), c.org(), c.code()) {
            // The FlatGeobuf spec: `org` defaults to EPSG.
            (_, org, code)
                if code > 0
                    && org.is_none_or(|o| o.eq_ignore_ascii_case("EPSG"))
                    && Crs::from_epsg(code as i64).is_ok() =>
            {
                Crs::from_epsg(code as i64)
            }
            (Some(wkt), _, _) => Crs::from_wkt(wkt),
            (None, org, code) => Err(UnsupportedCrs {
                name: format!("{}:{code}", org.unwrap_or("EPSG")),
                why: "it is not one of the systems urbantile can convert".into(),
            }),
        },
    }
    .map_err(|source| FgbError::Crs {
        path: path.to_owned(),
        source,
    })?;
    let count = header.features_count();
    let node_size = header.index_node_size();
    let mut at = 12 + header_size as u64;
    if node_size > 0 && count > 0 {
        if node_size < 2 || count > len / NODE_BYTES {
            return Err(corrupt(format!(
                "its index (node size {node_size}, {count} features) cannot fit"
            )));
        }
        at += flatgeobuf::packed_r_tree::PackedRTree::index_size(count as usize, node_size) as u64;
    }
    let mut features = 0u64;
    let mut stopped = None;
    while at < len && (count == 0 || features < count) {
        f.seek(SeekFrom::Start(at)).map_err(io)?;
        let mut size = [0u8; 4];
        if f.read_exact(&mut size).is_err() {
            stopped = Some("the file ends inside its size prefix".to_string());
            break;
        }
        let size = u32::from_le_bytes(size) as u64;
        if size > MAX_FEATURE_BYTES as u64 {
            stopped = Some(format!(
                "it claims {size} bytes, over the limit of {MAX_FEATURE_BYTES}"
            ));
            break;
        }
        if at + 4 + size > len {
            stopped = Some(format!(
                "it claims {size} bytes and the file has {} left: the file is truncated",
                len - at - 4
            ));
            break;
        }
        at += 4 + size;
        features += 1;
    }
    if stopped.is_none() && count > 0 && features < count {
        stopped = Some(format!(
            "the header promises {count} features and the file holds {features}"
        ));
    }
    Ok(Walk {
        crs,
        features,
        stopped,
    })
}

/// The features of a FlatGeobuf file, streamed.
pub fn read_fgb(path: &Path) -> Result<FgbRecords, FgbError> {
    let walk = walk(path)?;
    let file = File::open(path).map_err(|e| FgbError::Read {
        path: path.to_owned(),
        reason: format!("cannot read it: {e}"),
    })?;
    let iter = FgbReader::open(BufReader::new(file))
        .and_then(|r| r.select_all_seq())
        .map_err(|e| FgbError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(FgbRecords {
        iter,
        walk,
        next: 0,
        done: false,
    })
}

/// The records of [`read_fgb`].
pub struct FgbRecords {
    iter: FeatureIter<BufReader<File>, NotSeekable>,
    walk: Walk,
    next: u64,
    done: bool,
}

impl Iterator for FgbRecords {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        if self.done {
            return None;
        }
        let i = self.next;
        let position = Position::Feature(i);
        if i >= self.walk.features {
            self.done = true;
            return self
                .walk
                .stopped
                .take()
                .map(|why| Err(RecordError::new(position, None, why)));
        }
        self.next += 1;
        let feature = match self.iter.next() {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.done = true;
                return Some(Err(RecordError::new(position, None, "is missing")));
            }
            Err(e) => {
                // The stream cannot be resumed after a feature it could not read.
                self.done = true;
                return Some(Err(RecordError::new(
                    position,
                    None,
                    format!("is unreadable: {e}"),
                )));
            }
        };
        let crs = self.walk.crs;
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            let geometry = feature
                .to_geo()
                .map_err(|e| ("geometry", format!("is not a valid geometry: {e}")))?;
            let mut props = Props::default();
            feature
                .process_properties(&mut props)
                .map_err(|e| ("properties", format!("are malformed: {e}")))?;
            Ok::<_, (&str, String)>((geometry, props.0))
        }));
        Some(match decoded {
            Ok(Ok((geometry, properties))) => Ok((
                position,
                Feature {
                    geometry: crs.geometry_to_lon_lat(geometry),
                    properties,
                },
            )),
            Ok(Err((field, why))) => Err(RecordError::new(position, Some(field), why)),
            Err(_) => Err(RecordError::new(
                position,
                None,
                "is malformed (its buffers point outside the feature)",
            )),
        })
    }
}

/// FlatGeobuf property values as JSON.
#[derive(Default)]
struct Props(Properties);

impl PropertyProcessor for Props {
    fn property(
        &mut self,
        _i: usize,
        name: &str,
        value: &ColumnValue,
    ) -> geozero::error::Result<bool> {
        let number = |f: f64| {
            serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        };
        let v: serde_json::Value = match *value {
            ColumnValue::Byte(v) => v.into(),
            ColumnValue::UByte(v) => v.into(),
            ColumnValue::Bool(v) => v.into(),
            ColumnValue::Short(v) => v.into(),
            ColumnValue::UShort(v) => v.into(),
            ColumnValue::Int(v) => v.into(),
            ColumnValue::UInt(v) => v.into(),
            ColumnValue::Long(v) => v.into(),
            ColumnValue::ULong(v) => v.into(),
            // Through its shortest text: 12.3f32 is 12.3, not 12.300000190734863.
            ColumnValue::Float(v) => number(v.to_string().parse().unwrap_or(f64::NAN)),
            ColumnValue::Double(v) => number(v),
            ColumnValue::String(s) | ColumnValue::DateTime(s) => s.into(),
            ColumnValue::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| s.into()),
            // A property cannot hold bytes.
            ColumnValue::Binary(_) => return Ok(false),
        };
        self.0.insert(name.to_owned(), v);
        Ok(false)
    }
}
