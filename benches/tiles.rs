//! Tile encoding: a composite tile of every layer at the centre of the N=10 metropolitan
//! set, from the index to MVT bytes (query, clip, simplify, quantise, encode).

mod common;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use urbantile::composite::render_tile;

fn bench(c: &mut Criterion) {
    let (layers, bounds) = common::city(10);
    let layers: Vec<_> = layers
        .into_iter()
        .map(|(d, i)| (d, Arc::new(parking_lot::RwLock::new(i))))
        .collect();
    let tile_layers = common::tile_layers(&layers);
    let mut group = c.benchmark_group("composite_tile");
    for z in [10u8, 12, 14, 16] {
        let tile = common::centre_tile(bounds, z);
        let size = render_tile(&tile_layers, tile, None).bytes.len();
        eprintln!("z{z} tile {tile}: {size} bytes");
        group.bench_function(format!("z{z}"), |b| {
            b.iter(|| render_tile(&tile_layers, tile, None))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
