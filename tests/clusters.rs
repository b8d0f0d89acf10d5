//! Point clusters over a real socket: tiles decoded with an independent decoder (geozero's
//! MVT reader) and compared with the reference implementation, the npm package
//! supercluster run in node (tests/supercluster_oracle.mjs; build.rs installs it); every
//! point in exactly one item at each zoom, tiles agreeing across their borders, the leaves
//! route, `datetime` and `filter`, and writes changing exactly the tiles whose clusters
//! they change.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Response, TestServer, root, tile_of};
use geozero::mvt::{Message, Tile};
use serde_json::{Value, json};

const MINZOOM: u8 = 9;
const MAXZOOM: u8 = 14;
const POINTS: usize = 3000;
/// The area the points are spread over (lon/lat): central Helsinki and around.
const AREA: [f64; 4] = [24.85, 60.14, 25.05, 60.22];
/// Where most points crowd, as accidents do at busy junctions.
const HOTSPOTS: [(f64, f64); 6] = [
    (24.9410, 60.1700),
    (24.9525, 60.1690),
    (24.9300, 60.1640),
    (24.9800, 60.1880),
    (24.9050, 60.2000),
    (25.0100, 60.1550),
];

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
}

/// A folder with one clustered point layer, `incidents`, of [`POINTS`] generated points:
/// three in five around the hotspots, the rest spread over the area; half in 2025, half
/// in 2026; 1 to 4 vehicles each.
fn incidents_layer(dir: &Path) -> PathBuf {
    let layers = dir.join("layers");
    std::fs::create_dir(&layers).unwrap();
    let mut rng = Rng(12);
    let mut lines = String::new();
    for i in 0..POINTS {
        let (lon, lat) = if i % 5 < 3 {
            let (hx, hy) = HOTSPOTS[i % HOTSPOTS.len()];
            let spread = |r: &mut Rng| r.next() + r.next() + r.next() - 1.5;
            (hx + spread(&mut rng) * 0.004, hy + spread(&mut rng) * 0.002)
        } else {
            (
                AREA[0] + rng.next() * (AREA[2] - AREA[0]),
                AREA[1] + rng.next() * (AREA[3] - AREA[1]),
            )
        };
        let vehicles = 1 + (rng.next() * 4.0) as i64;
        let at = if i % 2 == 0 {
            "2025-06-01T12:00:00Z"
        } else {
            "2026-06-01T12:00:00Z"
        };
        let f = json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"vehicles": vehicles, "kind": if i % 3 == 0 { "crash" } else { "bump" }, "at": at},
        });
        lines.push_str(&f.to_string());
        lines.push('\n');
    }
    let data = dir.join("incidents.geojsonseq");
    std::fs::write(&data, lines).unwrap();
    std::fs::write(
        layers.join("incidents.toml"),
        format!(
            "title = \"Incidents\"\ngeometry = \"point\"\nminzoom = {MINZOOM}\nmaxzoom = 16\n\
             properties = {{ vehicles = \"integer\", kind = \"string\", at = \"datetime\" }}\n\
             time = {{ start = \"at\" }}\n\
             cluster = {{ radius_px = 40, maxzoom = {MAXZOOM}, sum = [\"vehicles\"] }}\n\
             [source]\npath = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    // A layer without clusters, for the leaves route's 404.
    let schools = std::fs::read_to_string(root().join("layers/schools.toml")).unwrap();
    std::fs::write(layers.join("schools.toml"), schools).unwrap();
    layers
}

fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let layers = incidents_layer(dir.path());
    let s = TestServer::start(&layers);
    (dir, s)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One feature of a decoded tile.
#[derive(Debug, Clone)]
struct Item {
    id: u64,
    /// Tile-local position; inside the tile proper (not its buffer) when both are in
    /// 0..4096.
    at: [i64; 2],
    props: BTreeMap<String, String>,
}

impl Item {
    fn inside(&self) -> bool {
        (0..4096).contains(&self.at[0]) && (0..4096).contains(&self.at[1])
    }
    fn cluster(&self) -> Option<(u64, u64)> {
        let n = |k: &str| self.props.get(k).map(|v| v.parse::<u64>().unwrap());
        (self.props.get("cluster").map(String::as_str) == Some("true"))
            .then(|| (n("cluster_id").unwrap(), n("point_count").unwrap()))
    }
    fn number(&self, k: &str) -> f64 {
        self.props[k].parse().unwrap()
    }
}

fn decode(r: &Response) -> Vec<Item> {
    if r.status == 204 {
        return Vec::new();
    }
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let tile = Tile::decode(&r.body[..]).expect("a valid MVT");
    let mut out = Vec::new();
    for layer in &tile.layers {
        assert_eq!(layer.name, "incidents");
        // MVT 2.1: ids unique in a layer, clusters' and points' alike.
        let mut ids = HashSet::new();
        assert!(layer.features.iter().all(|f| ids.insert(f.id.unwrap())));
        for f in &layer.features {
            // One point: MoveTo(1) then zig-zag x, y (MVT 2.1, 4.3).
            assert_eq!(f.geometry.len(), 3, "{f:?}");
            assert_eq!(f.geometry[0], 9);
            let zz = |v: u32| i64::from((v >> 1) as i32 ^ -((v & 1) as i32));
            let mut props = BTreeMap::new();
            for pair in f.tags.chunks(2) {
                let v = &layer.values[pair[1] as usize];
                let text = v
                    .string_value
                    .clone()
                    .or(v.double_value.map(|d| d.to_string()))
                    .or(v.int_value.map(|d| d.to_string()))
                    .or(v.uint_value.map(|d| d.to_string()))
                    .or(v.sint_value.map(|d| d.to_string()))
                    .or(v.bool_value.map(|d| d.to_string()))
                    .unwrap();
                props.insert(layer.keys[pair[0] as usize].clone(), text);
            }
            out.push(Item {
                id: f.id.unwrap(),
                at: [zz(f.geometry[1]), zz(f.geometry[2])],
                props,
            });
        }
    }
    out
}

/// The tiles of zoom `z` over [`AREA`] (one tile of margin).
fn tiles_at(z: u8) -> Vec<(u8, u32, u32)> {
    common::tiles_over(AREA, z)
}

fn tile_path(t: (u8, u32, u32), query: &str) -> String {
    format!("/tiles/incidents/{}/{}/{}.mvt{query}", t.0, t.1, t.2)
}

/// Every item of zoom `z` over the area, each once (from the tile that holds it, not a
/// neighbour's buffer), after checking that tiles agree across their borders: an item in
/// a tile's buffer is, with the same id and count, inside the neighbour.
fn items_at(s: &TestServer, z: u8, query: &str) -> Vec<Item> {
    let mut inside: HashMap<(bool, u64), Item> = HashMap::new();
    let mut buffered = Vec::new();
    for t in tiles_at(z) {
        for item in decode(&s.get(&tile_path(t, query), &[])) {
            let key = (item.cluster().is_some(), item.id);
            if !item.inside() {
                buffered.push(item);
                continue;
            }
            if let Some(twice) = inside.insert(key, item.clone()) {
                panic!("z{z}: {twice:?} is inside two tiles");
            }
        }
    }
    for item in buffered {
        let key = (item.cluster().is_some(), item.id);
        let home = inside
            .get(&key)
            .unwrap_or_else(|| panic!("z{z}: {item:?} is only in a buffer"));
        assert_eq!(home.cluster(), item.cluster(), "z{z}");
    }
    let mut items: Vec<Item> = inside.into_values().collect();
    items.sort_by_key(|i| (i.cluster().is_some(), i.id));
    items
}

/// Every page of a cluster's leaves: their ids, checking the paging links on the way.
fn leaves(s: &TestServer, cluster: u64, query: &str) -> Vec<u64> {
    let mut path = format!("/collections/incidents/clusters/{cluster}/leaves?limit=500{query}");
    let mut ids = Vec::new();
    loop {
        let r = s.get(&path, &[]);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let doc = r.json();
        for f in doc["features"].as_array().unwrap() {
            ids.push(f["id"].as_u64().unwrap());
        }
        let next = doc["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .map(|l| l["href"].as_str().unwrap().to_owned());
        match next {
            Some(href) => {
                let rest = href.split_once("://").unwrap().1;
                path = rest[rest.find('/').unwrap()..].to_owned();
            }
            None => {
                assert_eq!(doc["numberMatched"].as_u64().unwrap() as usize, ids.len());
                return ids;
            }
        }
    }
}

/// The layer's points as the store has them: id, lon, lat, vehicles.
fn stored_points(s: &TestServer) -> Vec<(u64, f64, f64, i64)> {
    let r = s.get("/collections/incidents/items?limit=10000", &[]);
    assert_eq!(r.status, 200);
    let mut out: Vec<_> = r.json()["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let c = &f["geometry"]["coordinates"];
            (
                f["id"].as_u64().unwrap(),
                c[0].as_f64().unwrap(),
                c[1].as_f64().unwrap(),
                f["properties"]["vehicles"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort_by_key(|p| p.0);
    out
}

/// supercluster's answer for the points, in id order, with the layer's settings.
fn supercluster(points: &[(u64, f64, f64, i64)]) -> Value {
    supercluster_with(points, 40, MINZOOM, MAXZOOM)
}

/// supercluster's answer for the points with this radius and these zooms (run in node).
fn supercluster_with(
    points: &[(u64, f64, f64, i64)],
    radius: u32,
    minzoom: u8,
    maxzoom: u8,
) -> Value {
    let input = json!({
        "points": points.iter().map(|p| json!([p.0, p.1, p.2, p.3])).collect::<Vec<_>>(),
        "radius": radius, "extent": 512, "minZoom": minzoom, "maxZoom": maxzoom,
    });
    let mut child = Command::new("node")
        .arg(root().join("tests/supercluster_oracle.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (tests/run.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "supercluster: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn clusters_agree_with_supercluster_and_hold_every_point_once_at_every_zoom() {
    let (_d, s) = server();
    let points = stored_points(&s);
    assert_eq!(points.len(), POINTS);
    let all: HashSet<u64> = points.iter().map(|p| p.0).collect();
    let total_vehicles: i64 = points.iter().map(|p| p.3).sum();
    let reference = supercluster(&points);
    for z in MINZOOM..=MAXZOOM {
        let items = items_at(&s, z, "");
        let mut seen = HashSet::new();
        let mut vehicles = 0.0;
        let mut sizes = Vec::new();
        let mut sums = Vec::new();
        for item in &items {
            match item.cluster() {
                Some((id, count)) => {
                    let ids = leaves(&s, id, "");
                    assert_eq!(ids.len() as u64, count);
                    for l in ids {
                        assert!(seen.insert(l), "z{z}: point {l} in two items");
                    }
                    assert_eq!(item.number("expansion_zoom") as u8, (id & 31) as u8 + 1);
                    let abbreviated = &item.props["point_count_abbreviated"];
                    assert!(abbreviated == &count.to_string() || count >= 1000);
                    vehicles += item.number("vehicles");
                    sizes.push(count);
                    sums.push((count, item.number("vehicles") as u64, abbreviated.clone()));
                }
                None => {
                    assert!(seen.insert(item.id), "z{z}: point {} twice", item.id);
                    assert!(!item.props.contains_key("point_count"));
                    vehicles += item.number("vehicles");
                }
            }
        }
        assert_eq!(seen, all, "z{z}: every point in exactly one item");
        assert_eq!(vehicles, total_vehicles as f64, "z{z}: the sums add up");

        // The reference: the same number of items and the same cluster sizes, within a
        // small tolerance (supercluster rounds positions to 32-bit integers, so a pair
        // right at the radius can fall the other way).
        let r = &reference[z.to_string()];
        let mut want: Vec<u64> = r["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[0].as_u64().unwrap())
            .collect();
        let want_items = want.len() + r["points"].as_array().unwrap().len();
        sizes.sort_unstable();
        want.sort_unstable();
        let tolerance = 1 + want_items / 100;
        assert!(
            items.len().abs_diff(want_items) <= tolerance,
            "z{z}: {} items, supercluster {want_items}",
            items.len()
        );
        let moved: u64 = if sizes.len() == want.len() {
            sizes.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).sum()
        } else {
            sizes.iter().sum::<u64>().abs_diff(want.iter().sum())
        };
        assert!(
            moved as usize <= 2 + POINTS / 100,
            "z{z}: cluster sizes {sizes:?}, supercluster {want:?}"
        );
        // With the same sizes, the same sums and abbreviations too.
        if moved == 0 {
            let mut want_sums: Vec<(u64, u64, String)> = r["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let abbreviated = match &c[2] {
                        Value::String(s) => s.clone(),
                        n => n.to_string(),
                    };
                    (c[0].as_u64().unwrap(), c[1].as_u64().unwrap(), abbreviated)
                })
                .collect();
            want_sums.sort();
            sums.sort();
            assert_eq!(sums, want_sums, "z{z}");
        }
        eprintln!(
            "z{z}: {} items ({} clusters), supercluster {want_items} ({}); sizes differ by {moved}",
            items.len(),
            sizes.len(),
            want.len()
        );
    }
    // Past the clusters' maxzoom, the points themselves.
    let items = items_at(&s, MAXZOOM + 1, "");
    assert!(items.iter().all(|i| i.cluster().is_none()));
    assert_eq!(items.iter().map(|i| i.id).collect::<HashSet<_>>(), all);
}

/// Per zoom, the sorted cluster sizes and the number of points left alone.
type Levels = BTreeMap<u8, (Vec<u64>, usize)>;

/// supercluster's levels for points (id, lon, lat) with this radius and zooms.
fn supercluster_levels(points: &[(u64, f64, f64, i64)], radius: u32, maxzoom: u8) -> Levels {
    let out = supercluster_with(points, radius, 0, maxzoom);
    (0..=maxzoom)
        .map(|z| {
            let r = &out[z.to_string()];
            let mut sizes: Vec<u64> = r["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c[0].as_u64().unwrap())
                .collect();
            sizes.sort_unstable();
            (z, (sizes, r["points"].as_array().unwrap().len()))
        })
        .collect()
}

#[test]
fn the_algorithm_matches_supercluster_at_other_radii_from_z0_with_repeated_points() {
    use urbantile::cluster::{ClusterParams, ClusterTree, Leaf, NodeKind, to_world};
    let mut rng = Rng(99);
    let mut points = Vec::new();
    for i in 0..2000u64 {
        let (lon, lat) = if i % 10 == 0 && i > 0 {
            // Every tenth point repeats an earlier one's position.
            let p: &(u64, f64, f64, i64) = &points[(i / 2) as usize];
            (p.1, p.2)
        } else {
            (
                AREA[0] + rng.next() * (AREA[2] - AREA[0]),
                AREA[1] + rng.next() * (AREA[3] - AREA[1]),
            )
        };
        points.push((i + 1, lon, lat, 1));
    }
    for (radius, maxzoom) in [(20, 16), (60, 14)] {
        let leaves: Vec<Leaf> = points
            .iter()
            .map(|&(id, lon, lat, _)| {
                let (x, y) = urbantile::tiles::mercator::lon_lat_to_3857(lon, lat);
                Leaf {
                    id,
                    world: to_world(x, y),
                }
            })
            .collect();
        let params = ClusterParams {
            radius_px: f64::from(radius),
            extent: 512.0,
            minzoom: 0,
            maxzoom,
        };
        let tree = ClusterTree::build(params, &leaves, &[], 0);
        let ours: Levels = (0..=maxzoom)
            .map(|z| {
                let mut sizes = Vec::new();
                let mut alone = 0;
                for n in tree.nodes(z) {
                    match n.kind {
                        NodeKind::Cluster { count, .. } => sizes.push(u64::from(count)),
                        NodeKind::Point { .. } => alone += 1,
                    }
                }
                sizes.sort_unstable();
                (z, (sizes, alone))
            })
            .collect();
        let want = supercluster_levels(&points, radius, maxzoom);
        for z in 0..=maxzoom {
            let (a, b) = (&ours[&z], &want[&z]);
            let items = |l: &(Vec<u64>, usize)| l.0.len() + l.1;
            assert!(
                items(a).abs_diff(items(b)) <= 1 + items(b) / 100,
                "radius {radius} z{z}: {a:?} vs supercluster {b:?}"
            );
            eprintln!(
                "radius {radius} z{z}: {} items, supercluster {}; same sizes: {}",
                items(a),
                items(b),
                a == b
            );
        }
    }
}

#[test]
fn datetime_and_filter_cluster_only_the_points_they_keep() {
    let (_d, s) = server();
    let count = |query: &str| -> u64 {
        items_at(&s, 11, query)
            .iter()
            .map(|i| i.cluster().map_or(1, |c| c.1))
            .sum()
    };
    let in_2026 = "?datetime=2026-01-01T00:00:00Z/2026-12-31T00:00:00Z";
    assert_eq!(count(in_2026), (POINTS / 2) as u64);
    let busy = s
        .get(
            &format!(
                "/collections/incidents/items?limit=1&filter={}",
                enc("vehicles >= 3")
            ),
            &[],
        )
        .json()["numberMatched"]
        .as_u64()
        .unwrap();
    let filter = format!("?filter={}", enc("vehicles >= 3"));
    assert_eq!(count(&filter), busy);
    // The leaves of a filtered tile's cluster, asked with the same filter, all pass it.
    let items = items_at(&s, 11, &filter);
    let (id, n) = items.iter().find_map(Item::cluster).unwrap();
    let ids = leaves(&s, id, &format!("&filter={}", enc("vehicles >= 3")));
    assert_eq!(ids.len() as u64, n);
    for id in ids.iter().take(20) {
        let f = s
            .get(&format!("/collections/incidents/items/{id}"), &[])
            .json();
        assert!(f["properties"]["vehicles"].as_i64().unwrap() >= 3);
    }
}

/// Each tile's features in a readable, comparable form.
fn snapshot(s: &TestServer, query: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for z in MINZOOM..=MAXZOOM + 1 {
        for t in tiles_at(z) {
            let mut features: Vec<String> = decode(&s.get(&tile_path(t, query), &[]))
                .iter()
                .map(|i| format!("{} {:?} {:?}", i.id, i.at, i.props))
                .collect();
            features.sort();
            out.insert(tile_path(t, ""), features);
        }
    }
    out
}

#[test]
fn a_write_changes_exactly_the_tiles_whose_clusters_it_changes() {
    let (_d, s) = server();
    let key = s.add_key("writer", "-", "incidents");
    let auth = format!("Bearer {key}");
    let headers = [
        ("Content-Type", "application/geo+json"),
        ("Authorization", auth.as_str()),
    ];
    let before = snapshot(&s, "");
    let (lon, lat) = HOTSPOTS[3];
    let point = json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon + 0.0003, lat]},
        "properties": {"vehicles": 2, "kind": "crash", "at": "2026-11-30T08:00:00Z"},
    });
    let started = Instant::now();
    let r = s.request(
        "POST",
        "/collections/incidents/items",
        &headers,
        point.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let (_, x, y) = tile_of(lon, lat, 12);
    let seen = decode(&s.get(&tile_path((12, x, y), ""), &[]));
    eprintln!(
        "write answered and its tile read in {:?}",
        started.elapsed()
    );
    assert!(seen.iter().any(|i| i.cluster().is_some()));

    // Tiles answered after the write (from the cache where it kept them) are what a
    // fresh rendering gives: `vehicles >= 0` keeps every point, and its tiles were
    // never cached.
    let check = |before: &BTreeMap<String, Vec<String>>| {
        let after = snapshot(&s, "");
        let fresh = snapshot(&s, &format!("?filter={}", enc("vehicles >= 0")));
        assert_eq!(after, fresh);
        let changed: Vec<&String> = after.keys().filter(|k| after[*k] != before[*k]).collect();
        let zooms: HashSet<&str> = changed
            .iter()
            .map(|p| p.split('/').nth(3).unwrap())
            .collect();
        eprintln!(
            "{} of {} tiles changed, at zooms {zooms:?}",
            changed.len(),
            after.len()
        );
        assert!(zooms.len() >= 4, "{changed:?}");
        assert!(changed.len() * 4 < after.len(), "{changed:?}");
        after
    };
    let after = check(&before);

    // A delete elsewhere: again exactly the tiles it changes.
    let id = stored_points(&s)[7].0;
    let r = s.request(
        "DELETE",
        &format!("/collections/incidents/items/{id}"),
        &headers,
        b"",
    );
    assert_eq!(r.status, 204);
    check(&after);
}

#[test]
fn bad_leaves_requests_get_a_clear_400_or_404() {
    let (_d, s) = server();
    let items = items_at(&s, 10, "");
    let (id, _) = items.iter().find_map(Item::cluster).unwrap();
    let leaves = |q: &str| format!("/collections/incidents/clusters/{id}/leaves{q}");
    for (path, status, says) in [
        (
            "/collections/incidents/clusters/abc/leaves".to_owned(),
            400,
            "cluster id \"abc\"",
        ),
        (
            "/collections/incidents/clusters/-1/leaves".to_owned(),
            400,
            "cluster id \"-1\"",
        ),
        (
            "/collections/incidents/clusters/99999999999999999999999/leaves".to_owned(),
            400,
            "not a whole number",
        ),
        (
            "/collections/incidents/clusters/12345/leaves".to_owned(),
            404,
            "no cluster 12345",
        ),
        (
            "/collections/schools/clusters/1/leaves".to_owned(),
            404,
            "has no clusters",
        ),
        (
            "/collections/nope/clusters/1/leaves".to_owned(),
            404,
            "nope",
        ),
        (leaves("?limit=-1"), 400, "limit: \"-1\""),
        (leaves("?limit=0"), 400, "limit: must be at least 1"),
        (leaves("?offset=1e30"), 400, "offset: \"1e30\""),
        (leaves("?offset=99999999999999999999999999"), 400, "offset"),
        (
            leaves("?bbox=1,2,3,4"),
            400,
            "unknown query parameter \"bbox\"",
        ),
        (leaves("?filter=vehicles%20%3E"), 400, "filter"),
        (leaves("?datetime=yesterday"), 400, "datetime"),
    ] {
        let r = s.get(&path, &[]);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let doc = r.json();
        let description = doc["description"].as_str().unwrap();
        assert!(description.contains(says), "{path}: {description}");
    }
    // An offset past the end is an empty page, as items answer it.
    let r = s.get(&leaves("?offset=1000000"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["numberReturned"], 0);
}
