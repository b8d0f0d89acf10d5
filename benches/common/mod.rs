//! Benchmark data: the bundled city layers, optionally repeated over an N x N grid in
//! memory the way the metropolitan set is, projected and indexed.
#![allow(dead_code)]

use geo::Translate;
use urbantile::config::{LayerDef, load_layers};
use urbantile::generate::metro::read_sources;
use urbantile::index::LayerIndex;
use urbantile::model::{Bbox, FeatureId, StoredFeature};
use urbantile::tiles::TileCoord;

pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn layers() -> Vec<LayerDef> {
    std::env::set_current_dir(root()).unwrap();
    load_layers(&root().join("layers")).unwrap().live
}

/// Every layer indexed, with its features repeated n x n times; also the data's bounds.
pub fn city(n: u32) -> (Vec<(LayerDef, LayerIndex)>, Bbox) {
    city_of(n, |_| true)
}

/// Like [`city`], for the layers `choose` keeps, as it changes them.
pub fn city_of(
    n: u32,
    mut choose: impl FnMut(&mut LayerDef) -> bool,
) -> (Vec<(LayerDef, LayerIndex)>, Bbox) {
    let mut defs = layers();
    defs.retain_mut(|d| choose(d));
    let sources = read_sources(&defs).unwrap();
    let bounds = sources
        .iter()
        .flat_map(|(_, fs)| fs.iter())
        .filter_map(|f| Bbox::of(&f.geometry))
        .reduce(Bbox::union)
        .unwrap();
    let (dx, dy) = (bounds.east - bounds.west, bounds.north - bounds.south);
    let mut id = 0;
    let layers = sources
        .into_iter()
        .map(|(def, features)| {
            let mut stored = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    for f in &features {
                        id += 1;
                        let mut f = f.clone();
                        f.geometry = f.geometry.translate(dx * i as f64, dy * j as f64);
                        stored.push(StoredFeature {
                            id: FeatureId(id),
                            version: 0,
                            feature: f,
                        });
                    }
                }
            }
            (def.clone(), LayerIndex::build(def, stored))
        })
        .collect();
    let all = Bbox {
        west: bounds.west,
        south: bounds.south,
        east: bounds.west + dx * n as f64,
        north: bounds.south + dy * n as f64,
    };
    (layers, all)
}

/// Tile-rendering views of indexed layers, unfiltered.
pub fn tile_layers(
    layers: &[(LayerDef, std::sync::Arc<parking_lot::RwLock<LayerIndex>>)],
) -> Vec<urbantile::composite::TileLayer<'_>> {
    layers
        .iter()
        .map(|(def, index)| urbantile::composite::TileLayer {
            def,
            index,
            filter: None,
        })
        .collect()
}

/// `b` in EPSG:3857.
pub fn rect_3857(b: Bbox) -> urbantile::tiles::mercator::Rect3857 {
    use urbantile::tiles::mercator::lon_lat_to_3857;
    let (min_x, min_y) = lon_lat_to_3857(b.west, b.south);
    let (max_x, max_y) = lon_lat_to_3857(b.east, b.north);
    urbantile::tiles::mercator::Rect3857 {
        min_x,
        min_y,
        max_x,
        max_y,
    }
}

/// The tile at zoom z that holds the centre of `b`.
pub fn centre_tile(b: Bbox, z: u8) -> TileCoord {
    let lon = (b.west + b.east) / 2.0;
    let lat = (b.south + b.north) / 2.0;
    let n = (1u64 << z) as f64;
    let x = ((lon + 180.0) / 360.0 * n) as u64;
    let y = ((1.0 - lat.to_radians().tan().asinh() / std::f64::consts::PI) / 2.0 * n) as u64;
    TileCoord::new(z as u32, x, y).unwrap()
}
