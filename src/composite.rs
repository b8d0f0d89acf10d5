//! A composite tile: one MVT layer per requested layer, cut from the layers' index
//! snapshots. Each layer's zoom range and the optional time filter decide which features
//! take part; [`crate::tiles`] does the geometry. A clustered layer at a clustered zoom
//! draws the items of its [`ClusterTree`] instead (clusters with their counts, and the
//! points left alone with their own properties).

use std::sync::Arc;

use parking_lot::RwLock;

use crate::cluster::{ClusterTree, Clustered, NodeKind, abbreviated};
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
/// ([`crate::compute::expired`]); the pool then throws the tile away. In place on the
/// runtime, also once the features found are past the job's allowance
/// ([`crate::compute::afford`]) or a layer is locked by a writer.
///
/// Features are written in write order (spatial, ties by id; see
/// [`LayerIndex::sort_positions`]), so that a tile's bytes (and ETag) depend only on the
/// data: not on the shape of the R*-trees, nor on the order of edits, nor on which server
/// of several answers. Storage follows the same order, so memory is read front to back.
pub fn render_tile(layers: &[TileLayer<'_>], tile: TileCoord, time: Option<TimeRange>) -> Rendered {
    render_tile_clustered(layers, &[], tile, time)
}

/// [`render_tile`] where `clusters[i]`, when given, is what layer `i` draws at this zoom:
/// its clusters, built for this tile's time and filter (layers past the end of `clusters`
/// have none). Such a layer's version in [`Rendered::versions`] is the tree's.
pub fn render_tile_clustered(
    layers: &[TileLayer<'_>],
    clusters: &[Option<Clustered>],
    tile: TileCoord,
    time: Option<TimeRange>,
) -> Rendered {
    // Each layer is built in this thread's buffers, then all are copied once into the
    // tile, allocated at its exact size.
    let (mut buffers, mut closed, mut hits) = SCRATCH.with(|s| s.take());
    let mut used = 0;
    let mut versions = Vec::with_capacity(layers.len());
    let span = tile.span_3857();
    let query = tile
        .bounds_3857()
        .expand(span * BUFFER_UNITS as f64 / EXTENT as f64);
    'layers: for (n, layer) in layers.iter().enumerate() {
        let def = layer.def;
        // One layer locked at a time, never two: see [`crate::index::Index::read`].
        let Some(index) = crate::compute::read(layer.index) else {
            break 'layers;
        };
        let clustered = clusters.get(n).and_then(Option::as_ref);
        versions.push(clustered.map_or(index.version(), |c| c.version));
        if tile.z < def.minzoom {
            continue;
        }
        if let Some(c) = clustered {
            if used == closed.len() {
                closed.push(Default::default());
            }
            buffers.swap_writer(&mut closed[used]);
            buffers = draw_clusters(def, &index, &c.tree, tile, query, buffers);
            buffers.swap_writer(&mut closed[used]);
            used += 1;
            continue;
        }
        hits.clear();
        // In place on the runtime, the search itself stops past the job's allowance.
        let most = crate::compute::items_left();
        let whole =
            index.positions_at_zoom_upto(query, tile.z, most.unwrap_or(usize::MAX), &mut hits);
        if !whole {
            debug_assert!(most.is_some(), "only a bounded search stops short");
            crate::compute::give_up();
            break 'layers;
        }
        if hits.is_empty() {
            continue;
        }
        if !crate::compute::afford(hits.len()) {
            break 'layers;
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

/// Keys a cluster carries after the layer's own (sums go under their property's key), as
/// supercluster names them.
const CLUSTER_KEYS: [&str; 5] = [
    "cluster",
    "cluster_id",
    "point_count",
    "point_count_abbreviated",
    "expansion_zoom",
];

/// Draws a clustered layer's items inside `query` (the tile plus buffer) at the tile's
/// zoom: clusters as points with their counts and sums, points left alone as the
/// features, with their properties. Values are the tile's own table, since clusters'
/// values are in no layer's.
fn draw_clusters(
    def: &LayerDef,
    index: &LayerIndex,
    tree: &ClusterTree,
    tile: TileCoord,
    query: crate::tiles::mercator::Rect3857,
    buffers: Buffers,
) -> Buffers {
    use crate::tiles::mvt::{EncodedValues, Tag};
    use crate::tiles::{ProjectedGeometry, Value};
    let mut keys = def.properties.clone();
    let first = keys.len() as u16;
    keys.extend(CLUSTER_KEYS.iter().map(|k| k.to_string()));
    let sum_keys: &[usize] = def.cluster.as_ref().map_or(&[], |c| &c.sum);
    let mut values = EncodedValues::default();
    // Each distinct value once: the clusters' by value, the points' by their index in the
    // layer's table (mapped once per tile, not hashed per tag).
    let mut ids: rustc_hash::FxHashMap<Value, u32> = Default::default();
    let mut from_layer: rustc_hash::FxHashMap<u32, u32> = Default::default();
    let mut value_id = |v: Value, ids: &mut rustc_hash::FxHashMap<Value, u32>| {
        *ids.entry(v).or_insert_with_key(|v| {
            values.push(v);
            values.len() as u32 - 1
        })
    };
    let whole = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 9.0e15 {
            if x >= 0.0 {
                Value::Uint(x as u64)
            } else {
                Value::Sint(x as i64)
            }
        } else {
            Value::Double(x)
        }
    };
    enum Shape<'g> {
        Feature(&'g ProjectedGeometry),
        At([f64; 2]),
    }
    // Gathered first, since the renderer borrows the finished value table; the tags of
    // all features in one arena.
    let mut features: Vec<(u64, Shape, std::ops::Range<usize>)> = Vec::new();
    let mut tags: Vec<Tag> = Vec::new();
    for node in tree.nodes_in_3857(tile.z, query) {
        if crate::compute::expired() {
            break;
        }
        let start = tags.len();
        match node.kind {
            NodeKind::Point { id } => {
                let Some(f) = index.by_id(crate::model::FeatureId(id)) else {
                    continue;
                };
                for &(k, v) in index.tags(f) {
                    let local = match from_layer.get(&v) {
                        Some(&local) => local,
                        None => {
                            let local = value_id(index.values()[v as usize].clone(), &mut ids);
                            from_layer.insert(v, local);
                            local
                        }
                    };
                    tags.push((k, local));
                }
                features.push((id, Shape::Feature(&f.geometry), start..tags.len()));
            }
            NodeKind::Cluster {
                id,
                count,
                expansion_zoom,
                sums,
            } => {
                let own = [
                    Value::Bool(true),
                    Value::Uint(id),
                    Value::Uint(u64::from(count)),
                    Value::String(abbreviated(count).into()),
                    Value::Uint(u64::from(expansion_zoom)),
                ];
                for (k, v) in (first..).zip(own) {
                    tags.push((k, value_id(v, &mut ids)));
                }
                for (&k, &sum) in sum_keys.iter().zip(sums) {
                    tags.push((k as u16, value_id(whole(sum), &mut ids)));
                }
                let at = crate::cluster::from_world(node.world);
                features.push((id, Shape::At(at), start..tags.len()));
            }
        }
    }
    let mut renderer =
        LayerRenderer::with_buffers(def.id.as_str(), &keys, &values, tile, 0.0, buffers);
    let mut point = ProjectedGeometry::Points(geo::MultiPoint(vec![geo::point!(x: 0.0, y: 0.0)]));
    for (id, shape, range) in &features {
        let geometry = match shape {
            Shape::Feature(g) => *g,
            Shape::At([x, y]) => {
                if let ProjectedGeometry::Points(mp) = &mut point {
                    mp.0[0] = geo::point!(x: *x, y: *y);
                }
                &point
            }
        };
        renderer.add(*id, geometry, &tags[range.clone()]);
    }
    renderer.close()
}

thread_local! {
    /// Work buffers of the tiles rendered on this thread: the renderers', the closed
    /// layers of the tile being built and the index hits.
    static SCRATCH: std::cell::Cell<(Buffers, Vec<WriterBuffers>, Vec<u32>)> = Default::default();
}
