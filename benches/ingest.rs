//! Ingest of the whole bundled city into a fresh SQLite store: read the OSM extract and
//! the generated files, validate, and write every layer (what a first start does).

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use urbantile::dataset::Dataset;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = common::root();
    std::env::set_current_dir(&root).unwrap();
    c.bench_function("ingest_helsinki_all_layers", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                rt.block_on(async {
                    let url = format!("sqlite://{}", dir.path().join("b.db").display());
                    let data = Dataset::open(&root.join("layers"), &url).await.unwrap();
                    let reports = data.ingest_sources_if_empty().await.unwrap();
                    assert!(!reports.is_empty());
                });
                dir
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
