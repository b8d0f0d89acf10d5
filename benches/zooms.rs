//! Where the time of a load run goes: renders (and gzips) every composite tile covering the
//! N=10 metropolitan set at z10-z16 once, single-threaded, and prints per-zoom totals,
//! averages, worst cases and sizes; then what each candidate encoding of those tiles costs
//! and saves (gzip at the server's level, zstd at several levels), which is how the zstd
//! level was chosen. `cargo bench --bench zooms`; `REPEAT=k` renders the whole set k times
//! first (without timing), so that a profiler sees mostly rendering.

mod common;

use std::sync::Arc;
use std::time::Instant;

use urbantile::composite::render_tile;
use urbantile::tiles::TileCoord;

fn main() {
    let (layers, b) = common::city(10);
    let layers: Vec<_> = layers
        .into_iter()
        .map(|(d, i)| (d, Arc::new(parking_lot::RwLock::new(i))))
        .collect();
    let tile_layers = common::tile_layers(&layers);
    let data = common::rect_3857(b);
    let repeat: usize = std::env::var("REPEAT").map_or(0, |r| r.parse().unwrap());
    for _ in 0..repeat {
        for z in 10u8..=16 {
            let (xs, ys) = TileCoord::covering(data, z);
            for x in xs {
                for y in ys.clone() {
                    std::hint::black_box(render_tile(&tile_layers, TileCoord { z, x, y }, None));
                }
            }
        }
    }
    let (mut render_all, mut gzip_all, mut n_all) = (0.0, 0.0, 0);
    // Per candidate encoding: seconds, compressed bytes; and the uncompressed bytes.
    let codecs: [(&str, Option<i32>); 5] = [
        ("gzip (fast)", None),
        ("zstd -1", Some(-1)),
        ("zstd 1", Some(1)),
        ("zstd 2", Some(2)),
        ("zstd 3", Some(3)),
    ];
    let mut spent = [(0.0f64, 0usize); 5];
    let mut raw_all = 0usize;
    println!("zoom  tiles  render ms  gzip ms  avg us  worst ms  avg KB");
    for z in 10u8..=16 {
        let (xs, ys) = TileCoord::covering(data, z);
        let (mut render, mut gzip, mut worst, mut bytes, mut n) = (0.0, 0.0, 0.0f64, 0, 0);
        for x in xs {
            for y in ys.clone() {
                let t = Instant::now();
                let tile = render_tile(&tile_layers, TileCoord { z, x, y }, None).bytes;
                let r = t.elapsed().as_secs_f64();
                let t = Instant::now();
                std::hint::black_box(urbantile::tiles::compress::gzip(&tile).unwrap());
                gzip += t.elapsed().as_secs_f64();
                raw_all += tile.len();
                for ((_, level), (secs, size)) in codecs.iter().zip(spent.iter_mut()) {
                    let t = Instant::now();
                    let out = match level {
                        None => urbantile::tiles::compress::gzip(&tile).unwrap(),
                        Some(l) => zstd::bulk::compress(&tile, *l).unwrap(),
                    };
                    *secs += t.elapsed().as_secs_f64();
                    *size += out.len();
                }
                render += r;
                worst = worst.max(r);
                bytes += tile.len();
                n += 1;
            }
        }
        println!(
            "z{z:<4} {n:>5} {:>10.0} {:>8.0} {:>7.0} {:>9.1} {:>7}",
            render * 1e3,
            gzip * 1e3,
            render * 1e6 / n as f64,
            worst * 1e3,
            bytes / n / 1024
        );
        render_all += render;
        gzip_all += gzip;
        n_all += n;
    }
    println!(
        "all   {n_all:>5} {:>10.0} {:>8.0} {:>7.0}",
        render_all * 1e3,
        gzip_all * 1e3,
        render_all * 1e6 / n_all as f64
    );
    println!();
    println!("encoding      total ms  us/tile  size % of raw  time % of render");
    for ((name, _), (secs, size)) in codecs.iter().zip(spent) {
        println!(
            "{name:<12} {:>9.0} {:>8.1} {:>14.1} {:>17.1}",
            secs * 1e3,
            secs * 1e6 / n_all as f64,
            100.0 * size as f64 / raw_all as f64,
            100.0 * secs / render_all
        );
    }
}
