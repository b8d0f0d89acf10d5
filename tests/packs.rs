//! Offline packs: `urbantile export` run as a real process on the store of a running
//! server, its archive read back by independent readers (`tests/check_pack.py`: PyPI
//! `pmtiles`, Python's sqlite3) and compared tile by tile, byte for byte, with what the
//! server answers for the same area; bad arguments give clear errors.
//! Needs `python3 -m pip install -r tests/requirements.txt`.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{TestServer, root, urbantile_bin};

/// One server over every bundled layer, shared by the tests of this file.
fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start(&root().join("layers")))
}

fn run_export(server: &TestServer, out: &Path, args: &[&str]) -> Output {
    Command::new(urbantile_bin())
        .current_dir(root())
        .arg("--layers")
        .arg(root().join("layers"))
        .arg("--database")
        .arg(server.database_url())
        .arg("export")
        .arg(out)
        .args(args)
        .env("RUST_LOG", "urbantile=info")
        .output()
        .expect("urbantile runs")
}

fn export_ok(server: &TestServer, out: &Path, args: &[&str]) -> String {
    let o = run_export(server, out, args);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "export failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// The store's change-log head: the position a pack cut now records.
fn log_head(server: &TestServer) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(server.data.change_span())
        .unwrap()
        .map_or(0, |(_, last)| last)
}

fn check_pack(server: &TestServer, pack: &Path, spec: serde_json::Value) {
    let spec_path = pack.with_extension("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(root().join("tests/check_pack.py"))
        .arg(server.base_url())
        .arg(pack)
        .arg(&spec_path)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "independent pack check failed:\n{stdout}\n{}\n(needs: python3 -m pip install -r tests/requirements.txt)",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Layers of every kind: polygons, lines, and a clustered point layer (clusters up to z15).
const LAYERS: &str = "buildings,roads,urban_problems,parks";
const BBOX: [f64; 4] = [24.938, 60.165, 24.950, 60.174];

fn bbox_text() -> String {
    BBOX.map(|v| v.to_string()).join(",")
}

#[test]
fn a_pmtiles_pack_holds_exactly_the_tiles_the_server_serves_in_its_box() {
    let server = server();
    let out = server.dir.path().join("box.pmtiles");
    let printed = export_ok(
        server,
        &out,
        &[
            "--layer",
            LAYERS,
            "--minzoom",
            "11",
            "--maxzoom",
            "17",
            "--bbox",
            &bbox_text(),
        ],
    );
    assert!(printed.contains("tiles/s"), "{printed}");
    check_pack(
        server,
        &out,
        serde_json::json!({
            "layers": LAYERS.split(',').collect::<Vec<_>>(),
            "minzoom": 11, "maxzoom": 17, "bbox": BBOX, "position": log_head(server),
        }),
    );
}

#[test]
fn an_mbtiles_pack_holds_exactly_the_tiles_the_server_serves_in_its_box() {
    let server = server();
    let out = server.dir.path().join("box.mbtiles");
    export_ok(
        server,
        &out,
        &[
            "--layer",
            "buildings",
            "--layer",
            "roads,urban_problems,parks",
            "--minzoom",
            "11",
            "--maxzoom",
            "17",
            "--bbox",
            &bbox_text(),
            "--threads",
            "3",
        ],
    );
    check_pack(
        server,
        &out,
        serde_json::json!({
            "layers": LAYERS.split(',').collect::<Vec<_>>(),
            "minzoom": 11, "maxzoom": 17, "bbox": BBOX, "position": log_head(server),
        }),
    );
}

/// The zoning polygon that leaves the most of its box empty: a real district outline, far
/// from a rectangle, so that its box holds tiles it does not meet.
fn district(server: &TestServer) -> (u64, serde_json::Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = urbantile::model::LayerId::new("zoning").unwrap();
    let features = rt.block_on(server.data.store().load_layer(&id)).unwrap();
    let f = features
        .iter()
        .filter(|f| matches!(f.feature.geometry, geo::Geometry::Polygon(_)))
        .max_by(|a, b| {
            empty_of_box(&a.feature.geometry).total_cmp(&empty_of_box(&b.feature.geometry))
        })
        .expect("a zoning polygon");
    let geometry = geojson::Geometry::new(geojson::Value::from(&f.feature.geometry));
    (f.id.0, serde_json::to_value(geometry).unwrap())
}

fn empty_of_box(g: &geo::Geometry) -> f64 {
    use geo::{Area, BoundingRect};
    g.bounding_rect().map_or(0.0, |r| r.unsigned_area()) - g.unsigned_area()
}

#[test]
fn within_a_district_the_pack_holds_only_the_tiles_that_meet_its_polygon() {
    let server = server();
    let (id, polygon) = district(server);
    let out = server.dir.path().join("district.pmtiles");
    let within = format!("zoning:{id}");
    export_ok(
        server,
        &out,
        &[
            "--layer",
            "buildings,zoning",
            "--minzoom",
            "13",
            "--maxzoom",
            "18",
            "--within",
            &within,
        ],
    );
    check_pack(
        server,
        &out,
        serde_json::json!({
            "layers": ["buildings", "zoning"],
            "minzoom": 13, "maxzoom": 18, "polygon": polygon, "least_outside": 3,
            "position": log_head(server),
        }),
    );
}

#[test]
fn bad_arguments_are_refused_with_what_is_wrong() {
    let server = server();
    let dir = server.dir.path();
    let pack = dir.join("bad.pmtiles");
    for (args, out, expected) in [
        (
            vec![],
            dir.join("bad.zip"),
            "a pack is written as .pmtiles or .mbtiles",
        ),
        (
            vec!["--layer", "nope"],
            pack.clone(),
            "--layer \"nope\": no such layer",
        ),
        (vec!["--layer", "roads,roads"], pack.clone(), "listed twice"),
        (
            vec!["--bbox", "1,2,3"],
            pack.clone(),
            "expected four numbers",
        ),
        (vec!["--bbox", "25,60,24,61"], pack.clone(), "west < east"),
        (
            vec!["--within", "zoning"],
            pack.clone(),
            "expected LAYER:FEATURE_ID",
        ),
        (
            vec!["--within", "zoning:999999999"],
            pack.clone(),
            "has no feature 999999999",
        ),
        (
            vec!["--within", "nope:1"],
            pack.clone(),
            "no layer \"nope\"",
        ),
        (
            vec!["--minzoom", "15", "--maxzoom", "12"],
            pack.clone(),
            "expected minzoom <= maxzoom",
        ),
        (
            vec!["--datetime", "yesterday"],
            pack.clone(),
            "--datetime \"yesterday\"",
        ),
        (
            vec![
                "--bbox",
                "-180,-85,180,85",
                "--minzoom",
                "0",
                "--maxzoom",
                "16",
            ],
            pack.clone(),
            "over the limit",
        ),
        (
            vec!["--bbox", "1,2,3,4", "--within", "zoning:1"],
            pack.clone(),
            "cannot be used with",
        ),
    ] {
        let o = run_export(server, &out, &args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
    // A point feature is no area.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schools = urbantile::model::LayerId::new("schools").unwrap();
    let school = rt
        .block_on(server.data.store().load_layer(&schools))
        .unwrap()[0]
        .id
        .0;
    let o = run_export(server, &pack, &["--within", &format!("schools:{school}")]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("takes a polygon"), "{stderr}");
}

#[test]
fn a_big_pack_gets_leaf_directories_and_stores_repeated_tiles_once() {
    use urbantile::export::{PackMeta, Sink};
    use urbantile::tiles::TileCoord;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pmtiles");
    // 40,000 tiles at z9 in tile-id order, their contents cycling through 9,000: enough
    // entries that the root directory cannot hold them all.
    let mut tiles: Vec<(u64, TileCoord)> = (0..200u32)
        .flat_map(|x| (0..200u32).map(move |y| TileCoord { z: 9, x, y }))
        .map(|t| (urbantile::export::pmtiles::tile_id(t), t))
        .collect();
    tiles.sort_unstable();
    let mut writer: Box<dyn Sink> =
        Box::new(urbantile::export::pmtiles::Writer::create(&path).unwrap());
    let mut expected = Vec::new();
    for (n, (_, t)) in tiles.iter().enumerate() {
        let c = (n * 7919) % 9000;
        let content = format!("tile content {c}");
        let gz = urbantile::tiles::compress::gzip(content.as_bytes()).unwrap();
        writer
            .add(*t, &gz, c as u128 + 1)
            .unwrap_or_else(|e| panic!("{e}"));
        expected.push(serde_json::json!([t.z, t.x, t.y, content]));
    }
    let meta = PackMeta {
        name: "big".into(),
        description: "synthetic".into(),
        minzoom: 9,
        maxzoom: 9,
        bounds: urbantile::model::Bbox {
            west: -180.0,
            south: -80.0,
            east: 0.0,
            north: 80.0,
        },
        center: (-90.0, 0.0, 9),
        vector_layers: vec![],
        urbantile: serde_json::json!({}),
    };
    writer.finish(&meta).unwrap();
    let expected_path = dir.path().join("expected.json");
    std::fs::write(
        &expected_path,
        serde_json::Value::from(expected).to_string(),
    )
    .unwrap();
    let script = r#"
import gzip, json, sys
from pmtiles.reader import MmapSource, Reader, all_tiles
expected = {(z, x, y): c.encode() for z, x, y, c in json.load(open(sys.argv[2]))}
with open(sys.argv[1], "rb") as f:
    get = MmapSource(f)
    header = Reader(get).header()
    got = {t: gzip.decompress(d) for t, d in all_tiles(get)}
assert header["leaf_directory_length"] > 0, header
assert header["clustered"], header
assert header["tile_contents_count"] == 9000, header
assert got == expected, (len(got), len(expected))
print("ok", len(got), "tiles,", header["tile_contents_count"], "contents, leaves", header["leaf_directory_length"], "bytes")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .arg(&expected_path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
