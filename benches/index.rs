//! The R*-tree: bulk load of the N=10 metropolitan buildings and box queries of 300 m and
//! 1 km around the centre.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use urbantile::model::StoredFeature;
use urbantile::tiles::mercator::{Rect3857, lon_lat_to_3857};

fn bench(c: &mut Criterion) {
    let (layers, bounds) = common::city(10);
    let (def, buildings) = layers
        .iter()
        .find(|(d, _)| d.id.as_str() == "buildings")
        .unwrap();
    eprintln!("{} buildings", buildings.len());
    let (cx, cy) = lon_lat_to_3857(
        (bounds.west + bounds.east) / 2.0,
        (bounds.south + bounds.north) / 2.0,
    );
    for metres in [300.0, 1000.0] {
        // A Web Mercator metre is half a ground metre at 60 N, so a box of `metres` on
        // the ground has a half-width of `metres` in EPSG:3857.
        let half = metres;
        let rect = Rect3857 {
            min_x: cx - half,
            min_y: cy - half,
            max_x: cx + half,
            max_y: cy + half,
        };
        let hits = buildings.query(rect).count();
        eprintln!("{metres} m box: {hits} buildings");
        c.bench_function(&format!("query_{metres}m_box"), |b| {
            b.iter(|| buildings.query(rect).count())
        });
    }
    // Bulk load of one copy of the city's buildings, as a start-up does per layer.
    let sources = urbantile::generate::metro::read_sources(std::slice::from_ref(def)).unwrap();
    let features: Vec<StoredFeature> = sources[0]
        .1
        .iter()
        .enumerate()
        .map(|(i, f)| StoredFeature {
            id: urbantile::model::FeatureId(i as u64 + 1),
            version: 0,
            feature: f.clone(),
        })
        .collect();
    c.bench_function("bulk_load_helsinki_buildings", |b| {
        b.iter(|| urbantile::index::LayerIndex::build(def, features.clone()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
