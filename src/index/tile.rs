//! A composite tile: one MVT layer per requested layer, cut from the layers' index
//! snapshots. Each layer's zoom range and the optional time filter decide which features
//! take part; [`crate::tiles`] does the geometry.

use std::sync::Arc;

use crate::config::LayerDef;
use crate::filter::Filter;
use crate::index::LayerIndex;
use crate::model::TimeRange;
use crate::tiles::render::tolerance_units;
use crate::tiles::{BUFFER_UNITS, EXTENT, LayerRenderer, TileCoord};

/// One layer of a tile request: its definition and the snapshot to read.
pub struct TileLayer<'a> {
    pub def: &'a LayerDef,
    pub index: Arc<LayerIndex>,
    /// Only features that pass this CQL2 filter are drawn.
    pub filter: Option<Filter>,
}

/// Encodes the tile; an empty vector when no layer has a feature there.
///
/// Features are written in the layer's storage order (spatial, ties by id), so that a
/// tile's bytes (and ETag) depend only on the data, not on the shape of the R*-trees, and
/// memory is read front to back.
pub fn render_tile(layers: &[TileLayer<'_>], tile: TileCoord, time: Option<TimeRange>) -> Vec<u8> {
    let mut out = Vec::new();
    let span = tile.span_3857();
    let query = tile
        .bounds_3857()
        .expand(span * BUFFER_UNITS as f64 / EXTENT as f64);
    let mut hits: Vec<u32> = Vec::new();
    for layer in layers {
        let def = layer.def;
        if tile.z < def.minzoom {
            continue;
        }
        hits.clear();
        layer.index.positions_at_zoom(query, tile.z, &mut hits);
        if hits.is_empty() {
            continue;
        }
        hits.sort_unstable();
        let time = time.filter(|_| def.time.is_some());
        let mut renderer = LayerRenderer::new(
            def.id.as_str(),
            &def.properties,
            layer.index.values(),
            tile,
            tolerance_units(tile.z, def.maxzoom),
        );
        for &i in &hits {
            let f = layer.index.feature(i);
            if time.is_some_and(|t| !f.time.overlaps(&t)) {
                continue;
            }
            if layer
                .filter
                .as_ref()
                .is_some_and(|flt| !flt.matches(&layer.index, f))
            {
                continue;
            }
            renderer.add(f.id.0, &f.geometry, layer.index.tags(f));
        }
        renderer.finish(&mut out);
    }
    out
}
