//! The one way a tile is made: [`Dataset::cut_tile`] cuts the MVT bytes of a composite tile
//! from the index, with the layers' clusters, for `GET /tiles` (which compresses and caches
//! them) and for `urbantile export` (which packs them), so that an offline pack holds
//! exactly the bytes the server answers. Compression, caching and HTTP are left to callers.

use crate::composite::{Rendered, TileLayer, render_tile_clustered};
use crate::dataset::Dataset;
use crate::dataset::clusters::Subset;
use crate::filter::{Filter, FilterError};
use serde_json::json;

use crate::model::{Bbox, LayerId, TimeRange};
use crate::tiles::TileCoord;

/// The attribution of every tile set the server publishes (TileJSON, packs).
pub const ATTRIBUTION: &str = "© OpenStreetMap contributors (ODbL); generated city-operations data";

/// What a tile asks beyond its layers and coordinates.
#[derive(Debug, Clone, Copy, Default)]
pub struct TileAsk<'a> {
    /// Only features valid at this instant or in this interval (layers with a time field).
    pub time: Option<TimeRange>,
    /// A CQL2 filter as `(text, language)`, checked against every layer of the tile.
    pub filter: Option<(&'a str, &'a str)>,
}

/// Why a tile could not be cut.
#[derive(Debug, thiserror::Error)]
pub enum CutError {
    /// The filter does not fit one of the tile's layers.
    #[error("layer {layer}: {source}")]
    Filter { layer: LayerId, source: FilterError },
}

impl Dataset {
    /// Cuts the tile `coord` of `layers` (positions in [`Dataset::layers`], in the tile's
    /// layer order): its uncompressed MVT bytes, empty when no layer has a feature there,
    /// and the index (or cluster tree) version each layer was cut from. Clustered layers at
    /// their clustered zooms draw the clusters of the points `ask` keeps.
    ///
    /// CPU work: call it on the compute pool (whose deadline it honours), in place within an
    /// allowance ([`crate::compute::Compute::run_here`]), or on a thread of one's own.
    pub fn cut_tile(
        &self,
        layers: &[usize],
        ask: TileAsk<'_>,
        coord: TileCoord,
    ) -> Result<Rendered, CutError> {
        let mut parts: Vec<TileLayer> = Vec::with_capacity(layers.len());
        for &i in layers {
            let def = &self.layers[i];
            let index = self.index.slot(&def.id);
            // A filter applies to every layer of the tile, so each must have its properties.
            let filter = match ask.filter {
                None => None,
                Some((text, lang)) => {
                    // A job in place that finds the layer locked gives up; what it returns
                    // is thrown away.
                    let Some(read) = crate::compute::read(index) else {
                        return Ok(Rendered::default());
                    };
                    Some(Filter::parse(def, &read, text, lang).map_err(|source| {
                        CutError::Filter {
                            layer: def.id.clone(),
                            source,
                        }
                    })?)
                }
            };
            parts.push(TileLayer { def, index, filter });
        }
        let filter_key = ask.filter.map(|(text, lang)| format!("{lang}:{text}"));
        let clusters: Vec<_> = parts
            .iter()
            .map(|p| {
                let subset = Subset {
                    time: ask.time,
                    filter: p.filter.as_ref().zip(filter_key.as_deref()),
                };
                self.tile_clusters(p.def, coord.z, subset)
            })
            .collect();
        Ok(render_tile_clustered(&parts, &clusters, coord, ask.time))
    }

    /// The positions in [`Dataset::layers`] of these layer ids, in their order; `None` for
    /// an id that is not a layer.
    pub fn positions_of<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Option<Vec<usize>> {
        ids.into_iter()
            .map(|id| self.layers.iter().position(|l| l.id.as_str() == id))
            .collect()
    }

    /// The TileJSON 3.0 `vector_layers` of `layers` (positions in [`Dataset::layers`]): each
    /// layer's id, description, zooms and fields with their types (a clustered layer's
    /// cluster fields too, and its cluster settings; a timed layer's time fields and span),
    /// and the union of their bounds (lon/lat), for TileJSON and for packs.
    pub fn vector_layers(&self, layers: &[usize]) -> (Vec<serde_json::Value>, Option<Bbox>) {
        let mut bounds: Option<Bbox> = None;
        let mut vector_layers = Vec::new();
        for &i in layers {
            let def = &self.layers[i];
            let index = self.index.read(&def.id);
            if let Some(b) = index.bounds() {
                bounds = Some(bounds.map_or(b, |a| a.union(b)));
            }
            let mut fields: serde_json::Map<String, serde_json::Value> = def
                .properties
                .iter()
                .zip(index.field_types())
                .map(|(name, t)| (name.clone(), t.map_or("String", |t| t.as_str()).into()))
                .collect();
            if def.cluster.is_some() {
                for (name, t) in [
                    ("cluster", "Boolean"),
                    ("cluster_id", "Number"),
                    ("point_count", "Number"),
                    ("point_count_abbreviated", "String"),
                    ("expansion_zoom", "Number"),
                ] {
                    fields.insert(name.into(), t.into());
                }
            }
            let mut layer = json!({
                "id": def.id,
                "description": def.description,
                "minzoom": def.minzoom,
                "maxzoom": def.maxzoom,
                "fields": fields,
            });
            // Clustered layers: up to which zoom features are clusters, and what they add up.
            if let Some(c) = &def.cluster {
                layer["cluster"] = json!({
                    "maxzoom": c.maxzoom,
                    "radius_px": c.radius_px,
                    "sum": c.sum.iter().map(|&i| &def.properties[i]).collect::<Vec<_>>(),
                });
            }
            // Layers with a tile size budget: the budget, and the zooms whose tiles leave
            // features out to keep within it, with how many they keep.
            if let Some(budget) = def.budget_bytes() {
                let thinned = index.thinning().map_or(&[][..], |t| &t.thinned[..]);
                layer["budget"] = json!({
                    "bytes": budget,
                    "thinned": thinned
                        .iter()
                        .map(|t| json!({"zoom": t.z, "kept": t.kept, "of": t.of}))
                        .collect::<Vec<_>>(),
                });
            }
            // Layers with a validity interval: the fields that hold it and the span of the
            // data, for a client building a time control for `?datetime=`.
            if let Some(t) = &def.time {
                layer["time"] = json!({
                    "start": t.start,
                    "end": t.end.as_ref().unwrap_or(&t.start),
                    "extent": index.time_extent().map(|e| {
                        [e.start, e.end].map(|v| v.map(crate::model::time::format_rfc3339))
                    }),
                });
            }
            vector_layers.push(layer);
        }
        (vector_layers, bounds)
    }
}
