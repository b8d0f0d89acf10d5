//! A composite tile: one MVT layer per requested layer, cut from the layers' index
//! snapshots. Each layer's zoom range and the optional time filter decide which features
//! take part; [`crate::tiles`] does the geometry.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::config::LayerDef;
use crate::filter::Filter;
use crate::index::LayerIndex;
use crate::model::TimeRange;
use crate::tiles::mvt::WriterBuffers;
use crate::tiles::render::Buffers;
use crate::tiles::render::tolerance_units;
use crate::tiles::{BUFFER_UNITS, EXTENT, LayerRenderer, TileCoord};

/// One layer of a tile request: its definition and its index.
pub struct TileLayer<'a> {
    pub def: &'a LayerDef,
    /// Locked for reading while this layer's part of the tile is cut.
    pub index: &'a Arc<RwLock<LayerIndex>>,
    /// Only features that pass this CQL2 filter are drawn.
    pub filter: Option<Filter>,
}

/// An encoded tile and the [`LayerIndex::version`] of each layer it was cut from.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Empty when no layer has a feature there.
    pub bytes: Vec<u8>,
    pub versions: Vec<u64>,
}

/// Encodes the tile. On the compute pool, stops early once the job's deadline has passed
/// ([`crate::compute::expired`]); the pool then throws the tile away.
///
/// Features are written in write order (spatial, ties by id; see
/// [`LayerIndex::sort_positions`]), so that a tile's bytes (and ETag) depend only on the
/// data: not on the shape of the R*-trees, nor on the order of edits, nor on which server
/// of several answers. Storage follows the same order, so memory is read front to back.
pub fn render_tile(layers: &[TileLayer<'_>], tile: TileCoord, time: Option<TimeRange>) -> Rendered {
    // Each layer is built in this thread's buffers, then all are copied once into the
    // tile, allocated at its exact size.
    let (mut buffers, mut closed, mut hits) = SCRATCH.with(|s| s.take());
    let mut used = 0;
    let mut versions = Vec::with_capacity(layers.len());
    let span = tile.span_3857();
    let query = tile
        .bounds_3857()
        .expand(span * BUFFER_UNITS as f64 / EXTENT as f64);
    'layers: for layer in layers {
        let def = layer.def;
        // One layer locked at a time, never two: see [`crate::index::Index::read`].
        let index = layer.index.read();
        versions.push(index.version());
        if tile.z < def.minzoom {
            continue;
        }
        hits.clear();
        index.positions_at_zoom(query, tile.z, &mut hits);
        if hits.is_empty() {
            continue;
        }
        index.sort_positions(&mut hits);
        let time = time.filter(|_| def.time.is_some());
        // Up to the layer's maxzoom, features come ready-simplified for this zoom.
        let grid = index.grid(tile.z);
        let tolerance = if grid.is_some() {
            0.0
        } else {
            tolerance_units(tile.z, def.maxzoom)
        };
        if used == closed.len() {
            closed.push(Default::default());
        }
        buffers.swap_writer(&mut closed[used]);
        let mut renderer = LayerRenderer::with_buffers(
            def.id.as_str(),
            &def.properties,
            index.encoded_values(),
            tile,
            tolerance,
            buffers,
        );
        for &i in &hits {
            if crate::compute::expired() {
                buffers = renderer.close();
                buffers.swap_writer(&mut closed[used]);
                break 'layers;
            }
            let f = index.feature(i);
            if time.is_some_and(|t| !f.time.overlaps(&t)) {
                continue;
            }
            if layer
                .filter
                .as_ref()
                .is_some_and(|flt| !flt.matches(&index, f))
            {
                continue;
            }
            match grid {
                Some(grid) => {
                    let commands = grid.commands(i);
                    if commands.is_empty() {
                        continue;
                    }
                    let (min, max) = index.box_of(i);
                    let inside = renderer.holds(min, max);
                    let kind = f.geometry.mvt_type();
                    renderer.add_grid(f.id.0, kind, commands, inside, index.tags(f));
                }
                None => {
                    renderer.add(f.id.0, &f.geometry, index.tags(f));
                }
            }
        }
        buffers = renderer.close();
        buffers.swap_writer(&mut closed[used]);
        used += 1;
    }
    let mut bytes = Vec::with_capacity(closed[..used].iter().map(|w| w.layer_len()).sum());
    for layer in &closed[..used] {
        layer.write_to(&mut bytes);
    }
    SCRATCH.with(|s| s.set((buffers, closed, hits)));
    Rendered { bytes, versions }
}

thread_local! {
    /// Work buffers of the tiles rendered on this thread: the renderers', the closed
    /// layers of the tile being built and the index hits.
    static SCRATCH: std::cell::Cell<(Buffers, Vec<WriterBuffers>, Vec<u32>)> = Default::default();
}
