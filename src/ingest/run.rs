//! One ingest run: open a source, read and validate its records, write them to the store in
//! batches inside one transaction, and report. An invalid geometry is made valid and counted
//! as repaired; a bad record is skipped and counted. With `strict` the first bad record,
//! invalid geometry included, stops the run; either way nothing is half-written, because
//! the transaction commits only at the end.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::LayerDef;
use crate::ingest::osm::{OsmData, OsmError, TagFilter, read_osm};
use crate::ingest::validate::{OnInvalid, validate_with};
use crate::ingest::{Format, Record, RecordError, csv, fgb, geojson, gpkg, shp};
use crate::store::{FeatureStore, NewFeature, StoreError, WriteMode};

/// Features per store batch.
const BATCH: usize = 2_000;
/// Record errors (and repairs) kept for the report; the rest are only counted.
const ERRORS_KEPT: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot tell the format from the file name; pass --format ({})", super::FORMATS.join(", "))]
    UnknownFormat { path: PathBuf },
    #[error("{path}")]
    NotGeoJson {
        path: PathBuf,
        source: geojson::NotGeoJson,
    },
    #[error("{path}")]
    Csv {
        path: PathBuf,
        source: csv::BadHeader,
    },
    #[error(transparent)]
    Osm(#[from] OsmError),
    #[error(transparent)]
    Gpkg(#[from] gpkg::GpkgError),
    #[error(transparent)]
    Shp(#[from] shp::ShpError),
    #[error(transparent)]
    Fgb(#[from] fgb::FgbError),
    #[error(
        "{path}: --table picks a GeoPackage table or a shapefile in a zip; {format:?} input has none"
    )]
    TableNotApplicable { path: PathBuf, format: Format },
    #[error(
        "layer {layer}: an OSM source needs a tag filter (`osm = \"key=value\"` in [source]) to pick its features"
    )]
    NoOsmFilter { layer: String },
    #[error("{path}: {error} (stopped: --strict; nothing was written)")]
    Strict { path: PathBuf, error: RecordError },
    #[error("writing layer {layer}")]
    Store { layer: String, source: StoreError },
}

/// What a run did.
#[derive(Debug, Default)]
pub struct IngestReport {
    pub read: u64,
    /// Features stored, the repaired ones included.
    pub written: u64,
    /// Features stored after their geometry was made valid.
    pub repaired: u64,
    pub skipped: u64,
    /// The first bad records, in input order.
    pub errors: Vec<RecordError>,
    /// What was wrong with the first repaired records, in input order.
    pub repairs: Vec<RecordError>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct IngestOptions {
    pub replace: bool,
    /// Stop at the first bad record, an invalid geometry included, instead of skipping it
    /// (or repairing the geometry).
    pub strict: bool,
}

/// Parsed OSM files by path, so that the layers of a first start read the extract once.
#[derive(Default)]
pub struct OsmCache(HashMap<PathBuf, std::sync::Arc<OsmData>>);

impl OsmCache {
    pub fn get(&mut self, path: &Path) -> Result<std::sync::Arc<OsmData>, OsmError> {
        if let Some(d) = self.0.get(path) {
            return Ok(d.clone());
        }
        let d = std::sync::Arc::new(read_osm(path)?);
        self.0.insert(path.to_owned(), d.clone());
        Ok(d)
    }
}

fn open(path: &Path) -> Result<Box<dyn Read>, IngestError> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    let f = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(Box::new(f))
}

/// Opens `path` (`-` for standard input) as a stream of records for layer `def`. `table`
/// picks one feature table of a GeoPackage (or one shapefile of a zip holding several);
/// by default every one is read.
pub fn open_records(
    path: &Path,
    format: Option<Format>,
    osm_filter: Option<&TagFilter>,
    table: Option<&str>,
    def: &LayerDef,
    osm: &mut OsmCache,
) -> Result<Box<dyn Iterator<Item = Record>>, IngestError> {
    let format = match format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None if path == Path::new("-") => Format::GeoJsonSeq,
        None => {
            return Err(IngestError::UnknownFormat {
                path: path.to_owned(),
            });
        }
    };
    if table.is_some() && !matches!(format, Format::Gpkg | Format::Shp) {
        return Err(IngestError::TableNotApplicable {
            path: path.to_owned(),
            format,
        });
    }
    Ok(match format {
        Format::Gpkg => Box::new(gpkg::read_gpkg(path, table)?),
        Format::Shp => Box::new(shp::read_shapefile(path, table)?),
        Format::Fgb => Box::new(fgb::read_fgb(path)?),
        Format::GeoJson => {
            let records = geojson::read_collection(open(path)?).map_err(|source| {
                IngestError::NotGeoJson {
                    path: path.to_owned(),
                    source,
                }
            })?;
            Box::new(records.into_iter())
        }
        Format::GeoJsonSeq => Box::new(geojson::read_seq(BufReader::with_capacity(
            1 << 16,
            open(path)?,
        ))),
        Format::Csv => Box::new(
            csv::read_csv_keeping_text(open(path)?, text_columns(def)).map_err(|source| {
                IngestError::Csv {
                    path: path.to_owned(),
                    source,
                }
            })?,
        ),
        Format::Osm => {
            let filter = osm_filter.ok_or_else(|| IngestError::NoOsmFilter {
                layer: def.id.to_string(),
            })?;
            let data = osm.get(path)?;
            Box::new(data.features(filter, def.geometry).into_iter())
        }
    })
}

/// A progress bar on a terminal; hidden otherwise (the caller logs a summary line).
pub fn progress(layer: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:>22} {human_pos:>9} features  {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(layer.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Validates and writes `records` into layer `def`, committing only at the end.
pub async fn ingest_records(
    store: &dyn FeatureStore,
    def: &LayerDef,
    source: &Path,
    records: impl Iterator<Item = Record>,
    options: IngestOptions,
    bar: &ProgressBar,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let store_err = |source| IngestError::Store {
        layer: def.id.to_string(),
        source,
    };
    let mode = if options.replace {
        WriteMode::Replace
    } else {
        WriteMode::Append
    };
    let mut writer = store.begin_write(&def.id, mode).await.map_err(store_err)?;
    let mut report = IngestReport::default();
    let mut batch: Vec<NewFeature> = Vec::with_capacity(BATCH);
    let mut last_log = Instant::now();
    let on_invalid = if options.strict {
        OnInvalid::Refuse {
            how: "ingest without --strict",
        }
    } else {
        OnInvalid::Repair
    };
    for record in records {
        report.read += 1;
        let checked = record
            .and_then(|(position, feature)| validate_with(def, &position, feature, on_invalid));
        match checked {
            Ok(checked) => {
                if let Some(repair) = checked.repaired {
                    report.repaired += 1;
                    if report.repairs.len() < ERRORS_KEPT {
                        report.repairs.push(repair);
                    }
                }
                batch.push(checked.feature);
            }
            Err(error) if options.strict => {
                return Err(IngestError::Strict {
                    path: source.to_owned(),
                    error,
                });
            }
            Err(error) => {
                report.skipped += 1;
                if report.errors.len() < ERRORS_KEPT {
                    report.errors.push(error);
                }
            }
        }
        if batch.len() == BATCH {
            report.written += writer.insert(&batch).await.map_err(store_err)?.len() as u64;
            batch.clear();
            bar.set_position(report.written);
            if bar.is_hidden() && last_log.elapsed() > Duration::from_secs(5) {
                tracing::info!(layer = %def.id, written = report.written, "ingesting");
                last_log = Instant::now();
            }
        }
    }
    report.written += writer.insert(&batch).await.map_err(store_err)?.len() as u64;
    writer.commit().await.map_err(store_err)?;
    bar.set_position(report.written);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The properties a layer declares as text (`string`, `datetime`): a CSV reader keeps their
/// cells as written rather than reading numbers out of them.
fn text_columns(def: &LayerDef) -> Vec<String> {
    use crate::model::schema::PropertyType;
    def.properties
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            matches!(
                def.declared_type(*i),
                Some(PropertyType::String | PropertyType::DateTime)
            )
        })
        .map(|(_, name)| name.clone())
        .collect()
}
