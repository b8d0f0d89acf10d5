//! The metropolitan benchmark set: every layer's first-start data (the real Helsinki extract
//! and the generated city-operations layers) repeated over an N x N grid of side-by-side
//! copies, written as GeoJSONSeq files that `urbantile ingest` loads. N=10 is about
//! 10 x 17 km and 400k features; N=30 several million.
//!
//! Copies are shifted in whole degrees of the extract's own extent, so they tile without
//! overlap; shapes stretch slightly with latitude, which does not matter for load tests.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use geo::Translate;

use crate::config::LayerDef;
use crate::ingest::Format;
use crate::ingest::run::{IngestError, OsmCache, open_records};
use crate::ingest::validate::validate;
use crate::model::{Bbox, Feature};

#[derive(Debug, thiserror::Error)]
pub enum MetroError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("writing {path}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("no layer has a [source] with features")]
    Empty,
}

/// Reads each layer's `[source]` and keeps the features that pass the layer's checks.
pub fn read_sources(layers: &[LayerDef]) -> Result<Vec<(&LayerDef, Vec<Feature>)>, MetroError> {
    let mut osm = OsmCache::default();
    let mut out = Vec::new();
    for def in layers {
        let Some(source) = &def.source else { continue };
        let format = source
            .format
            .as_deref()
            .and_then(|f| f.parse::<Format>().ok());
        let records = open_records(
            &source.path,
            format,
            source.osm.as_ref(),
            None,
            def,
            &mut osm,
        )?;
        let features = records
            .filter_map(|r| r.ok())
            .filter_map(|(pos, f)| validate(def, &pos, f).ok())
            .map(|nf| nf.feature)
            .collect();
        out.push((def, features));
    }
    Ok(out)
}

/// Writes `<out>/<layer>.geojsonseq` for every layer with a source, holding n x n shifted
/// copies of its features. Returns the number of features written per layer.
pub fn write_metro(
    layers: &[LayerDef],
    n: u32,
    out: &Path,
) -> Result<Vec<(String, u64)>, MetroError> {
    let sources = read_sources(layers)?;
    let bounds = sources
        .iter()
        .flat_map(|(_, fs)| fs.iter())
        .filter_map(|f| Bbox::of(&f.geometry))
        .reduce(Bbox::union)
        .ok_or(MetroError::Empty)?;
    let (dx, dy) = (bounds.east - bounds.west, bounds.north - bounds.south);
    std::fs::create_dir_all(out).map_err(|source| MetroError::Write {
        path: out.to_owned(),
        source,
    })?;
    let mut counts = Vec::new();
    for (def, features) in &sources {
        let path = out.join(format!("{}.geojsonseq", def.id));
        let werr = |source| MetroError::Write {
            path: path.clone(),
            source,
        };
        let mut w = BufWriter::new(File::create(&path).map_err(werr)?);
        let mut written = 0u64;
        for i in 0..n {
            for j in 0..n {
                for f in features {
                    let g = f.geometry.translate(dx * i as f64, dy * j as f64);
                    let feature = geojson::Feature {
                        bbox: None,
                        geometry: Some(geojson::Geometry::new(geojson::Value::from(&g))),
                        id: None,
                        properties: Some(f.properties.clone()),
                        foreign_members: None,
                    };
                    serde_json::to_writer(&mut w, &feature).map_err(|e| werr(e.into()))?;
                    w.write_all(b"\n").map_err(werr)?;
                    written += 1;
                }
            }
        }
        w.flush().map_err(werr)?;
        counts.push((def.id.to_string(), written));
    }
    Ok(counts)
}
