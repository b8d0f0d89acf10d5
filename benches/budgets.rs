//! Tile size budgets on the N=10 metropolitan set: the five peer layers (buildings, roads,
//! parks, zoning, bike lanes), every one drawn from z0, indexed twice — without budgets and
//! with `BUDGET_KB` (default 100) per layer, so that their composite stays under 500 KB —
//! then every composite tile covering the data at z10-z16 rendered once, single-threaded.
//! Prints per zoom: tiles, average and largest size, tiles over 500 KB, render time; and
//! the time the budget's plan added to the index build.
//! `cargo bench --bench budgets` (N=3 for a quick run: `N=3 cargo bench --bench budgets`).

mod common;

use std::sync::Arc;
use std::time::Instant;

use urbantile::composite::render_tile;
use urbantile::tiles::TileCoord;

const PEERS: [&str; 5] = ["buildings", "roads", "parks", "zoning", "bike_lanes"];
const TILE_BUDGET: usize = 500 * 1024;

fn main() {
    let n: u32 = std::env::var("N").map_or(10, |v| v.parse().unwrap());
    let budget_kb: u32 = std::env::var("BUDGET_KB").map_or(100, |v| v.parse().unwrap());
    let mut rows = Vec::new();
    for kb in [0, budget_kb] {
        let started = Instant::now();
        let (layers, b) = common::city_of(n, |def| {
            if !PEERS.contains(&def.id.as_str()) {
                return false;
            }
            def.minzoom = 0;
            def.feature_minzoom = None;
            def.budget_kb = Some(kb);
            true
        });
        let built = started.elapsed().as_secs_f64();
        let layers: Vec<_> = layers
            .into_iter()
            .map(|(d, i)| (d, Arc::new(parking_lot::RwLock::new(i))))
            .collect();
        let tile_layers = common::tile_layers(&layers);
        let data = common::rect_3857(b);
        println!(
            "budget {} per layer: five layers indexed in {built:.1} s",
            if kb == 0 {
                "off".to_string()
            } else {
                format!("{kb} KB")
            }
        );
        for (def, index) in &layers {
            let index = index.read();
            if let Some(t) = index.thinning() {
                let thinned: Vec<String> = t
                    .thinned
                    .iter()
                    .filter(|t| t.z >= 10)
                    .map(|t| format!("z{} {:.0}%", t.z, 100.0 * t.kept as f64 / t.of as f64))
                    .collect();
                println!(
                    "  {:<10} kept at z10+: {}",
                    def.id.as_str(),
                    thinned.join(", ")
                );
            }
        }
        // One untimed pass first, so that both runs time warm memory alike.
        for z in 10u8..=16 {
            let (xs, ys) = TileCoord::covering(data, z);
            for x in xs {
                for y in ys.clone() {
                    std::hint::black_box(render_tile(&tile_layers, TileCoord { z, x, y }, None));
                }
            }
        }
        println!("zoom  tiles  avg KB  max KB  over 500 KB  render ms  us/tile");
        for z in 10u8..=16 {
            let (xs, ys) = TileCoord::covering(data, z);
            let (mut total, mut largest, mut over, mut tiles, mut secs) = (0, 0, 0, 0, 0.0);
            for x in xs {
                for y in ys.clone() {
                    let t = Instant::now();
                    let bytes = render_tile(&tile_layers, TileCoord { z, x, y }, None).bytes;
                    secs += t.elapsed().as_secs_f64();
                    total += bytes.len();
                    largest = largest.max(bytes.len());
                    over += usize::from(bytes.len() > TILE_BUDGET);
                    tiles += 1;
                }
            }
            println!(
                "z{z:<4} {tiles:>5} {:>7.0} {:>7.0} {over:>12} {:>10.0} {:>8.0}",
                total as f64 / tiles as f64 / 1024.0,
                largest as f64 / 1024.0,
                secs * 1e3,
                secs * 1e6 / tiles as f64
            );
            rows.push((kb, z, secs / tiles as f64));
        }
        println!();
    }
    println!("render time per tile, budget against none:");
    for z in 10u8..=16 {
        let of = |kb| rows.iter().find(|r| r.0 == kb && r.1 == z).unwrap().2;
        println!("z{z:<4} {:>5.2}x faster", of(0) / of(budget_kb));
    }
}
