//! Tile size budgets over a real socket: every tile of a generated dense layer, at every
//! zoom, decoded with an independent decoder (geozero's MVT reader), is within the layer's
//! budget, and holds a feature exactly when that feature is kept at that zoom and meets
//! the tile; kept features nest from zoom to zoom; TileJSON says which zooms thin and how
//! much; points thin where they crowd; and after writes (a new big block, deletions) the
//! same holds once the layer's thinning is planned anew.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestServer, tile_of};
use geozero::mvt::{Message, Tile};
use serde_json::json;

const BLOCKS_BUDGET: usize = 12 * 1024;
const SPOTS_BUDGET: usize = 6 * 1024;
const MINZOOM: u8 = 10;
const MAXZOOM: u8 = 15;
/// Where the data lies (lon/lat): central Helsinki, dense in its middle.
const AREA: [f64; 4] = [24.90, 60.15, 24.99, 60.19];
const CENTRE: [f64; 4] = [24.935, 60.162, 24.955, 60.172];

/// A seeded generator (an LCG), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn within(&mut self, a: [f64; 4]) -> (f64, f64) {
        (
            a[0] + self.next() * (a[2] - a[0]),
            a[1] + self.next() * (a[3] - a[1]),
        )
    }
}

/// A block: an axis-aligned rectangle, so that its box is its shape and "meets a tile"
/// is exact.
#[derive(Debug, Clone, Copy)]
struct Block {
    west: f64,
    south: f64,
    east: f64,
    north: f64,
}

impl Block {
    fn feature(&self, name: &str) -> serde_json::Value {
        let Block {
            west,
            south,
            east,
            north,
        } = *self;
        json!({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]},
            "properties": {"name": name},
        })
    }
}

/// Three in four blocks crowd the centre; sizes from about 15 m to 150 m.
fn blocks() -> Vec<Block> {
    let mut rng = Rng(21);
    (0..5000)
        .map(|i| {
            let (lon, lat) = if i % 4 == 0 {
                rng.within(AREA)
            } else {
                rng.within(CENTRE)
            };
            let w = 0.0003 + rng.next().powi(3) * 0.0025;
            Block {
                west: lon,
                south: lat,
                east: lon + w,
                north: lat + w * 0.5,
            }
        })
        .collect()
}

/// A folder with the layers `blocks` (polygons) and `spots` (points: a crowd in the
/// centre, a few spread out), each with a small budget.
fn layers(dir: &Path) -> (PathBuf, Vec<Block>) {
    let layers = dir.join("layers");
    std::fs::create_dir(&layers).unwrap();
    let blocks = blocks();
    let mut lines = String::new();
    for (i, b) in blocks.iter().enumerate() {
        lines.push_str(&b.feature(&format!("block {i}")).to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("blocks.geojsonseq"), lines).unwrap();
    let mut rng = Rng(5);
    let mut lines = String::new();
    for i in 0..6000 {
        let (lon, lat) = if i < 5900 {
            rng.within([24.944, 60.166, 24.948, 60.168])
        } else {
            rng.within(AREA)
        };
        let f = json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": format!("spot {i}")},
        });
        lines.push_str(&f.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("spots.geojsonseq"), lines).unwrap();
    for (id, geometry, kb) in [
        ("blocks", "polygon", BLOCKS_BUDGET / 1024),
        ("spots", "point", SPOTS_BUDGET / 1024),
    ] {
        std::fs::write(
            layers.join(format!("{id}.toml")),
            format!(
                "title = \"{id}\"\ngeometry = \"{geometry}\"\nminzoom = {MINZOOM}\nmaxzoom = {MAXZOOM}\n\
                 properties = {{ name = \"string\" }}\nbudget_kb = {kb}\n\
                 [source]\npath = \"{}\"\n",
                dir.join(format!("{id}.geojsonseq")).display()
            ),
        )
        .unwrap();
    }
    (layers, blocks)
}

/// The tiles of zoom `z` over [`AREA`] (one tile of margin).
fn tiles_at(z: u8) -> Vec<(u8, u32, u32)> {
    common::tiles_over(AREA, z)
}

/// A tile's features by id (their names), after checking its size.
fn fetch(s: &TestServer, layer: &str, t: (u8, u32, u32), budget: usize) -> BTreeMap<u64, String> {
    let r = s.get(&format!("/tiles/{layer}/{}/{}/{}.mvt", t.0, t.1, t.2), &[]);
    if r.status == 204 {
        return BTreeMap::new();
    }
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.body.len() <= budget,
        "{layer} {t:?}: {} bytes, over the budget of {budget}",
        r.body.len()
    );
    let tile = Tile::decode(&r.body[..]).expect("a valid MVT");
    let mut out = BTreeMap::new();
    for l in &tile.layers {
        assert_eq!(l.name, layer);
        for f in &l.features {
            let name = l.values[f.tags[1] as usize].string_value.clone().unwrap();
            assert!(
                out.insert(f.id.unwrap(), name).is_none(),
                "an id twice in {t:?}"
            );
        }
    }
    out
}

/// EPSG:3857 of a lon/lat.
fn merc(lon: f64, lat: f64) -> (f64, f64) {
    const R: f64 = 6_378_137.0;
    (
        lon.to_radians() * R,
        (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
            .tan()
            .ln()
            * R,
    )
}

/// Whether a block meets the tile plus its 64-unit buffer: `Some(answer)`, or `None` when
/// it lies within a unit of the buffer's edge (where rounding decides).
fn meets(b: &Block, (z, x, y): (u8, u32, u32)) -> Option<bool> {
    const HALF: f64 = std::f64::consts::PI * 6_378_137.0;
    let span = 2.0 * HALF / (1u64 << z) as f64;
    let unit = span / 4096.0;
    let pad = 64.0 * unit;
    let (tx0, ty1) = (-HALF + x as f64 * span, HALF - y as f64 * span);
    let (tx1, ty0) = (tx0 + span, ty1 - span);
    let (bx0, by0) = merc(b.west, b.south);
    let (bx1, by1) = merc(b.east, b.north);
    let gaps = [
        bx0 - (tx1 + pad),
        (tx0 - pad) - bx1,
        by0 - (ty1 + pad),
        (ty0 - pad) - by1,
    ];
    let widest = gaps.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if widest.abs() < unit {
        None
    } else {
        Some(widest < 0.0)
    }
}

/// The blocks each tile holds, at every zoom checked.
fn kept_blocks(s: &TestServer) -> Vec<BTreeMap<u64, String>> {
    (MINZOOM..=MAXZOOM + 1)
        .flat_map(tiles_at)
        .map(|t| fetch(s, "blocks", t, BLOCKS_BUDGET))
        .collect()
}

/// At every zoom: every tile within the budget, holding exactly the kept blocks that meet
/// it (a block is kept at a zoom when some tile there holds it); kept sets nest. Returns
/// the kept ids per zoom.
fn check_blocks(s: &TestServer, blocks: &BTreeMap<u64, Block>) -> BTreeMap<u8, BTreeSet<u64>> {
    let mut kept_at = BTreeMap::new();
    for z in MINZOOM..=MAXZOOM + 1 {
        let tiles: Vec<_> = tiles_at(z)
            .into_iter()
            .map(|t| (t, fetch(s, "blocks", t, BLOCKS_BUDGET)))
            .collect();
        let kept: BTreeSet<u64> = tiles.iter().flat_map(|(_, f)| f.keys().copied()).collect();
        for (t, held) in &tiles {
            for id in &kept {
                match meets(&blocks[id], *t) {
                    Some(true) => assert!(
                        held.contains_key(id),
                        "block {id} kept at z{z} but not in {t:?}"
                    ),
                    Some(false) => assert!(
                        !held.contains_key(id),
                        "block {id} in {t:?} which it does not meet"
                    ),
                    None => {}
                }
            }
        }
        kept_at.insert(z, kept);
    }
    for z in MINZOOM..=MAXZOOM {
        let missing: Vec<_> = kept_at[&z].difference(&kept_at[&(z + 1)]).collect();
        assert!(
            missing.is_empty(),
            "kept at z{z}, not at z{}: {missing:?}",
            z + 1
        );
    }
    kept_at
}

fn area(b: &Block) -> f64 {
    (b.east - b.west) * (b.north - b.south)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn tiles_keep_within_their_budget_by_dropping_whole_features() {
    let dir = tempfile::tempdir().unwrap();
    let (layers, generated) = layers(dir.path());
    let s = TestServer::start(&layers);
    // Store ids follow the file's order.
    let mut blocks: BTreeMap<u64, Block> = generated
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u64 + 1, *b))
        .collect();
    let kept_at = check_blocks(&s, &blocks);
    // The low zooms thin most.
    let counts: Vec<usize> = kept_at.values().map(BTreeSet::len).collect();
    assert!(counts[0] < blocks.len() / 2, "{counts:?}");
    assert!(
        counts[MAXZOOM as usize - MINZOOM as usize] > 2 * counts[0],
        "{counts:?}"
    );
    // The big blocks stay longest.
    let z = MINZOOM;
    let (kept, dropped): (Vec<f64>, Vec<f64>) = {
        let (k, d): (Vec<_>, Vec<_>) = blocks.iter().partition(|(id, _)| kept_at[&z].contains(id));
        (
            k.into_iter().map(|(_, b)| area(b)).collect(),
            d.into_iter().map(|(_, b)| area(b)).collect(),
        )
    };
    assert!(median(kept) > 3.0 * median(dropped));

    // TileJSON says which zooms thin, and how many they keep.
    let tj = s.get("/tiles/blocks.json", &[]).json();
    let budget = &tj["vector_layers"][0]["budget"];
    assert_eq!(budget["bytes"], BLOCKS_BUDGET);
    let said: BTreeMap<u8, (usize, usize)> = budget["thinned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["zoom"].as_u64().unwrap() as u8,
                (
                    t["kept"].as_u64().unwrap() as usize,
                    t["of"].as_u64().unwrap() as usize,
                ),
            )
        })
        .collect();
    let seen: BTreeMap<u8, (usize, usize)> = kept_at
        .iter()
        .filter(|(z, k)| **z <= MAXZOOM && k.len() < blocks.len())
        .map(|(z, k)| (*z, (k.len(), blocks.len())))
        .collect();
    assert_eq!(said, seen);

    // Points: the crowd gives way, the spread-out ones stay at every zoom.
    let mut spots_at_min = BTreeSet::new();
    for t in tiles_at(MINZOOM) {
        spots_at_min.extend(fetch(&s, "spots", t, SPOTS_BUDGET).into_values());
    }
    assert!(
        spots_at_min.len() < 1000,
        "{} spots at z{MINZOOM}",
        spots_at_min.len()
    );
    for i in 5900..6000 {
        assert!(
            spots_at_min.contains(&format!("spot {i}")),
            "spot {i} left out"
        );
    }

    // Writes. A block where tiles have room is drawn at once; a block bigger than any,
    // in the crowd, where tiles are full, once the layer's thinning is planned anew, and
    // then from the first zoom (nothing is bigger); 500 deletions. Everything above then
    // holds again.
    let key = s.add_key("editor", "-", "blocks");
    let auth = format!("Bearer {key}");
    let post = |b: &Block, name: &str| {
        let r = s.request(
            "POST",
            "/collections/blocks/items",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/geo+json"),
            ],
            b.feature(name).to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_u64().unwrap()
    };
    let lone = Block {
        west: 24.985,
        south: 60.186,
        east: 24.9854,
        north: 60.1862,
    };
    let lone_id = post(&lone, "a lone one");
    blocks.insert(lone_id, lone);
    let t = tile_of(24.9852, 60.1861, MAXZOOM);
    assert!(fetch(&s, "blocks", t, BLOCKS_BUDGET).contains_key(&lone_id));
    let big = Block {
        west: 24.944,
        south: 60.1665,
        east: 24.9515,
        north: 60.1685,
    };
    let big_id = post(&big, "the big one");
    blocks.insert(big_id, big);
    for id in (2..=2000).step_by(4) {
        let r = s.request(
            "DELETE",
            &format!("/collections/blocks/items/{id}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 204);
        blocks.remove(&id);
    }
    let t = tile_of(24.948, 60.1675, MINZOOM);
    let started = Instant::now();
    while !fetch(&s, "blocks", t, BLOCKS_BUDGET).contains_key(&big_id) {
        assert!(started.elapsed() < Duration::from_secs(10), "no new plan");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Plans run a moment after writes, so one may have landed half-way through the
    // deletions, and the last may still be to come: wait until two looks at every tile, a
    // second apart (several times the wait before a plan), agree, so that the checks
    // below see one plan.
    let mut before = kept_blocks(&s);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = kept_blocks(&s);
        if now == before {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "plans go on");
        before = now;
    }
    let kept_after = check_blocks(&s, &blocks);
    assert!(kept_after[&MINZOOM].contains(&big_id));
    let gone: HashMap<u64, ()> = (2..=2000).step_by(4).map(|id| (id, ())).collect();
    assert!(
        kept_after
            .values()
            .flatten()
            .all(|id| !gone.contains_key(id))
    );
}
