//! Point clusters: building a layer's clusters for 100,000 points (the real accidents
//! layer repeated over a grid, as the metropolitan set repeats the city), as a write to a
//! clustered layer rebuilds them: the points read from the index, the tree built, and
//! the tree compared with the one before to find the tiles to drop.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use urbantile::cluster::ClusterTree;
use urbantile::dataset::clusters::{Subset, leaves_of, params_of};
use urbantile::index::LayerIndex;
use urbantile::model::{Bbox, FeatureId, StoredFeature};

const POINTS: usize = 100_000;

fn bench(c: &mut Criterion) {
    let defs = common::layers();
    let def = defs.iter().find(|d| d.id.as_str() == "accidents").unwrap();
    let sources = urbantile::generate::metro::read_sources(std::slice::from_ref(def)).unwrap();
    let city = &sources[0].1;
    let bounds = city
        .iter()
        .filter_map(|f| Bbox::of(&f.geometry))
        .reduce(Bbox::union)
        .unwrap();
    let (dx, dy) = (bounds.east - bounds.west, bounds.north - bounds.south);
    let side = (POINTS as f64 / city.len() as f64).sqrt().ceil() as usize;
    let mut features = Vec::with_capacity(POINTS);
    'grid: for i in 0..side {
        for j in 0..side {
            for f in city {
                if features.len() == POINTS {
                    break 'grid;
                }
                let mut f = f.clone();
                geo::Translate::translate_mut(&mut f.geometry, dx * i as f64, dy * j as f64);
                features.push(StoredFeature {
                    id: FeatureId(features.len() as u64 + 1),
                    version: 0,
                    feature: f,
                });
            }
        }
    }
    let index = LayerIndex::build(def, features);
    let params = params_of(def).unwrap();
    let (leaves, sums) = leaves_of(def, &index, Subset::default());
    eprintln!(
        "{} points ({} x {} copies of {} accidents), radius {} px, zooms {}..={}",
        leaves.len(),
        side,
        side,
        city.len(),
        params.radius_px,
        params.minzoom,
        params.maxzoom
    );
    c.bench_function("build_clusters_100k_points", |b| {
        b.iter(|| ClusterTree::build(params, &leaves, &sums, 1))
    });
    c.bench_function("rebuild_clusters_100k_from_the_index", |b| {
        b.iter(|| {
            let (leaves, sums) = leaves_of(def, &index, Subset::default());
            ClusterTree::build(params, &leaves, &sums, 1)
        })
    });
    let before = ClusterTree::build(params, &leaves, &sums, 1);
    let mut moved = leaves.clone();
    moved[500].world[0] += 1e-7;
    let after = ClusterTree::build(params, &moved, &sums, 1);
    eprintln!(
        "one point moved: {} items changed",
        after.changes_from(&before).len()
    );
    c.bench_function("compare_clusters_100k", |b| {
        b.iter(|| after.changes_from(&before).len())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
