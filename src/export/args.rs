//! The `export` command's arguments, checked against the dataset and turned into an
//! [`ExportSpec`]: every mistake is an error that names the argument and what is allowed.

use crate::dataset::Dataset;
use crate::export::ExportSpec;
use crate::export::area::{Area, AreaError, parse_bbox, parse_within};
use crate::model::{FeatureId, LayerId};
use crate::tiles::{MAX_ZOOM, ProjectedGeometry};

/// The arguments as given.
#[derive(Debug, Clone, Default)]
pub struct ExportArgs {
    /// Layer ids (comma lists allowed); none means every public layer.
    pub layers: Vec<String>,
    pub minzoom: Option<u8>,
    pub maxzoom: Option<u8>,
    pub bbox: Option<String>,
    pub within: Option<String>,
    pub datetime: Option<String>,
    pub threads: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("--layer {0:?}: no such layer; the layers are: {1}")]
    UnknownLayer(String, String),
    #[error(
        "--layer {0:?}: the layer is private, and packs are served to anyone; export public layers"
    )]
    PrivateLayer(String),
    #[error("--layer {0:?} is listed twice")]
    Duplicate(String),
    #[error("no public layer to export")]
    NoLayer,
    #[error("--minzoom {min} and --maxzoom {max}: expected minzoom <= maxzoom <= {MAX_ZOOM}")]
    Zooms { min: u8, max: u8 },
    #[error("--bbox and --within both given: give one")]
    TwoAreas,
    #[error(transparent)]
    Area(#[from] AreaError),
    #[error("--within {0:?}: no layer {1:?}")]
    WithinLayer(String, String),
    #[error("--within {0:?}: layer {1} has no feature {2}")]
    WithinFeature(String, String, u64),
    #[error("--within {0:?}: the feature is a {1}; --within takes a polygon")]
    WithinNotPolygon(String, &'static str),
    #[error("the layers have no features, so there is no area to export: give --bbox or --within")]
    NoArea,
    #[error("--datetime {0:?}: {1}")]
    Datetime(String, String),
}

impl ExportArgs {
    /// Checks the arguments against `data` (its index loaded) and makes the spec of a pack
    /// cut at change-log position `position`.
    pub fn resolve(&self, data: &Dataset, position: u64) -> Result<ExportSpec, ArgsError> {
        let layers = self.layer_positions(data)?;
        let defs: Vec<_> = layers.iter().map(|&i| &data.layers()[i]).collect();
        let minzoom = self
            .minzoom
            .unwrap_or_else(|| defs.iter().map(|d| d.minzoom).min().unwrap_or(0));
        let maxzoom = self
            .maxzoom
            .unwrap_or_else(|| defs.iter().map(|d| d.maxzoom).max().unwrap_or(0));
        if minzoom > maxzoom || maxzoom > MAX_ZOOM {
            return Err(ArgsError::Zooms {
                min: minzoom,
                max: maxzoom,
            });
        }
        let area = match (&self.bbox, &self.within) {
            (Some(_), Some(_)) => return Err(ArgsError::TwoAreas),
            (Some(b), None) => Area::Bbox(parse_bbox(b)?),
            (None, Some(w)) => within(data, w)?,
            (None, None) => Area::Bbox(data.vector_layers(&layers).1.ok_or(ArgsError::NoArea)?),
        };
        let time = match &self.datetime {
            None => None,
            Some(text) => Some((
                crate::model::time::parse_datetime_param(text, crate::model::time::now_secs())
                    .map_err(|e| ArgsError::Datetime(text.clone(), e))?,
                text.clone(),
            )),
        };
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        Ok(ExportSpec {
            layers,
            minzoom,
            maxzoom,
            area,
            time,
            position,
            threads,
        })
    }

    /// The layers an export of these arguments reads: those it cuts, and the layer of
    /// `--within`. Unknown names are left to [`ExportArgs::resolve`] to report.
    pub fn layers_read(&self, data: &Dataset) -> Vec<LayerId> {
        let mut ids: Vec<LayerId> = self
            .layer_positions(data)
            .unwrap_or_default()
            .into_iter()
            .map(|i| data.layers()[i].id.clone())
            .collect();
        if let Some((layer, _)) = self.within.as_deref().and_then(|w| parse_within(w).ok()) {
            ids.extend(LayerId::new(&layer).ok());
        }
        ids
    }

    fn layer_positions(&self, data: &Dataset) -> Result<Vec<usize>, ArgsError> {
        let ids: Vec<&str> = self
            .layers
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if ids.is_empty() {
            let public: Vec<usize> = (0..data.layers().len())
                .filter(|&i| !data.layers()[i].private)
                .collect();
            if public.is_empty() {
                return Err(ArgsError::NoLayer);
            }
            return Ok(public);
        }
        let mut out: Vec<usize> = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(i) = data.layers().iter().position(|l| l.id.as_str() == id) else {
                let known: Vec<&str> = data.layers().iter().map(|l| l.id.as_str()).collect();
                return Err(ArgsError::UnknownLayer(id.into(), known.join(", ")));
            };
            if data.layers()[i].private {
                return Err(ArgsError::PrivateLayer(id.into()));
            }
            if out.contains(&i) {
                return Err(ArgsError::Duplicate(id.into()));
            }
            out.push(i);
        }
        Ok(out)
    }
}

/// The area of `--within LAYER:FEATURE_ID`: the feature's polygon as the index holds it.
fn within(data: &Dataset, text: &str) -> Result<Area, ArgsError> {
    let (layer, id) = parse_within(text)?;
    let layer_id = LayerId::new(&layer)
        .ok()
        .filter(|l| data.layer(l.as_str()).is_some())
        .ok_or_else(|| ArgsError::WithinLayer(text.into(), layer.clone()))?;
    let index = data.index().read(&layer_id);
    let feature = index
        .by_id(FeatureId(id))
        .ok_or_else(|| ArgsError::WithinFeature(text.into(), layer.clone(), id))?;
    match &feature.geometry {
        ProjectedGeometry::Polygons(p) => Ok(Area::Within {
            source: text.to_owned(),
            polygon_3857: p.clone(),
        }),
        ProjectedGeometry::Points(_) => Err(ArgsError::WithinNotPolygon(text.into(), "point")),
        ProjectedGeometry::Lines(_) => Err(ArgsError::WithinNotPolygon(text.into(), "line")),
    }
}
