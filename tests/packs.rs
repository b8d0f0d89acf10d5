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

/// One server over every bundled layer, shared by the tests of this file, offering the
/// packs of [`packs_dir`].
fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let packs = packs_dir().to_owned();
        TestServer::start_configured(
            &root().join("layers"),
            urbantile::compute::Limits::default(),
            move |state| {
                state.packs = std::sync::Arc::new(urbantile::export::shelf::Shelf::new(packs))
            },
        )
    })
}

/// The server's packs folder, inside a folder of its own (so a file beside it is outside).
fn packs_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("packs")).unwrap();
        dir
    });
    // Leaked path into a static: the folder lives as long as the test process.
    Box::leak(dir.path().join("packs").into_boxed_path())
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
const DATETIME: &str = "2026-06-01T00:00:00Z/..";

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
fn an_mbtiles_pack_of_a_datetime_holds_exactly_the_tiles_the_server_serves_for_it() {
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
            // Urban problems have a validity interval: the pack is the tiles of `?datetime=`.
            "--datetime",
            DATETIME,
        ],
    );
    check_pack(
        server,
        &out,
        serde_json::json!({
            "layers": LAYERS.split(',').collect::<Vec<_>>(),
            "minzoom": 11, "maxzoom": 17, "bbox": BBOX, "position": log_head(server),
            "query": format!("datetime={DATETIME}"),
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
        .map(|t| (urbantile::archive::pmtiles::tile_id(t), t))
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

/// A pack of the test box, exported into the server's packs folder as `name`.
fn exported_pack(name: &str) -> std::path::PathBuf {
    let out = packs_dir().join(name);
    export_ok(
        server(),
        &out,
        &[
            "--layer",
            LAYERS,
            "--minzoom",
            "12",
            "--maxzoom",
            "16",
            "--bbox",
            &bbox_text(),
        ],
    );
    out
}

#[test]
fn packs_are_listed_with_their_area_zooms_size_and_position() {
    let server = server();
    let a = exported_pack("listed_a.pmtiles");
    let b = exported_pack("listed_b.mbtiles");
    // Not packs, or not readable ones: left out of the list.
    std::fs::write(packs_dir().join("notes.txt"), "x").unwrap();
    std::fs::write(packs_dir().join("half.pmtiles.part"), "x").unwrap();
    std::fs::write(packs_dir().join("broken.pmtiles"), "PMTiles but not really").unwrap();
    let r = server.get("/packs", &[]);
    assert_eq!(r.status, 200);
    let list = r.json();
    let packs = list["packs"].as_array().unwrap();
    for (path, format) in [(&a, "pmtiles"), (&b, "mbtiles")] {
        let name = path.file_stem().unwrap().to_str().unwrap();
        let p = packs
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {list}"));
        assert_eq!(p["format"], format);
        assert_eq!(p["size"], std::fs::metadata(path).unwrap().len());
        assert_eq!(p["minzoom"], 12);
        assert_eq!(p["maxzoom"], 16);
        assert_eq!(p["position"], log_head(server));
        assert_eq!(
            p["layers"],
            serde_json::json!(LAYERS.split(',').collect::<Vec<_>>())
        );
        let bounds: Vec<f64> = p["bounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (got, want) in bounds.iter().zip(BBOX) {
            assert!((got - want).abs() < 1e-6, "{bounds:?}");
        }
        assert!(p["created"].as_str().unwrap().starts_with("20"), "{p}");
        let url = p["url"].as_str().unwrap();
        assert_eq!(url, format!("{}/packs/{name}.{format}", server.base_url()));
        let changes = p["changes"].as_str().unwrap();
        assert!(changes.ends_with(&format!("/packs/{name}/changes?since={}", log_head(server))));
    }
    for skipped in ["notes", "half", "broken"] {
        assert!(!packs.iter().any(|p| p["name"] == skipped), "{list}");
    }
}

#[test]
fn a_pack_is_served_whole_or_by_range_with_an_etag() {
    let server = server();
    let path = exported_pack("ranged.pmtiles");
    let file = std::fs::read(&path).unwrap();
    let len = file.len();
    let whole = server.get("/packs/ranged.pmtiles", &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, file);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        whole.header("content-type"),
        Some("application/vnd.pmtiles")
    );
    let etag = whole.header("etag").unwrap().to_owned();
    for (range, start, end) in [
        ("bytes=0-126".to_owned(), 0, 127),
        (format!("bytes={}-", len - 10), len - 10, len),
        ("bytes=-50".to_owned(), len - 50, len),
        (format!("bytes=100-{}", len + 500), 100, len),
    ] {
        let r = server.get("/packs/ranged.pmtiles", &[("Range", &range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, &file[start..end], "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {start}-{}/{len}", end - 1)
        );
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        // The same range for the version the client holds.
        let r = server.get(
            "/packs/ranged.pmtiles",
            &[("Range", &range), ("If-Range", &etag)],
        );
        assert_eq!(r.status, 206);
    }
    let past = server.get(
        "/packs/ranged.pmtiles",
        &[("Range", &format!("bytes={len}-"))],
    );
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range").unwrap(),
        format!("bytes */{len}")
    );
    assert_eq!(past.json()["code"], "RangeNotSatisfiable");
    // Several ranges, or a range of another version: the whole file.
    let several = server.get("/packs/ranged.pmtiles", &[("Range", "bytes=0-1,5-6")]);
    assert_eq!((several.status, several.body.len()), (200, len));
    let stale = server.get(
        "/packs/ranged.pmtiles",
        &[("Range", "bytes=0-1"), ("If-Range", "\"old\"")],
    );
    assert_eq!((stale.status, stale.body.len()), (200, len));
    let same = server.get("/packs/ranged.pmtiles", &[("If-None-Match", &etag)]);
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    // A pack replaced by a new file gets a new ETag (seen within RECHECK).
    let copy = packs_dir().join("ranged.tmp");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    std::thread::sleep(urbantile::export::shelf::RECHECK + std::time::Duration::from_millis(50));
    let again = server.get("/packs/ranged.pmtiles", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 200);
    assert_ne!(again.header("etag"), Some(etag.as_str()));
}

#[test]
fn an_independent_reader_reads_a_pack_over_http_by_ranges() {
    let server = server();
    let path = exported_pack("over_http.pmtiles");
    let script = r#"
import sys, urllib.request
from pmtiles.reader import MmapSource, Reader, all_tiles
url, path = sys.argv[1], sys.argv[2]
requests = []
def get_bytes(offset, length):
    req = urllib.request.Request(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 206, r.status
        body = r.read()
    assert len(body) == length, (len(body), length)
    requests.append(length)
    return body
remote = dict(all_tiles(get_bytes))
with open(path, "rb") as f:
    local = dict(all_tiles(MmapSource(f)))
assert remote == local and remote, (len(remote), len(local))
assert Reader(get_bytes).metadata()["vector_layers"]
print("ok", len(remote), "tiles over", len(requests), "range requests")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(format!("{}/packs/over_http.pmtiles", server.base_url()))
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pack_names_cannot_reach_outside_the_packs_folder() {
    let server = server();
    // A pack-looking file beside the folder, and one inside it.
    let outside = packs_dir().parent().unwrap().join("secret.pmtiles");
    std::fs::write(&outside, "SECRET").unwrap();
    for (path, status) in [
        ("/packs/..%2Fsecret.pmtiles", 400),
        ("/packs/%2E%2E%2Fsecret.pmtiles", 400),
        ("/packs/..%5Csecret.pmtiles", 400),
        ("/packs/%2Fetc%2Fpasswd", 400),
        ("/packs/..", 400),
        ("/packs/secret", 400),
        ("/packs/a.b.pmtiles", 400),
        ("/packs/nope.pmtiles", 404),
        ("/packs/../secret.pmtiles", 404),
    ] {
        let r = server.get(path, &[]);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("SECRET"),
            "{path}"
        );
        let e = r.json();
        assert!(e["description"].as_str().is_some(), "{path}: {e}");
    }
}

fn send(server: &TestServer, method: &str, path: &str, key: &str, body: &serde_json::Value) {
    let auth = format!("Bearer {key}");
    let r = server.request(
        method,
        path,
        &[
            ("Content-Type", "application/geo+json"),
            ("Authorization", &auth),
        ],
        body.to_string().as_bytes(),
    );
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// A building of the store whose box lies inside `BBOX`, away from `skip`.
fn building_inside(server: &TestServer, skip: &[u64]) -> u64 {
    use geo::BoundingRect;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = urbantile::model::LayerId::new("buildings").unwrap();
    let features = rt.block_on(server.data.store().load_layer(&id)).unwrap();
    features
        .iter()
        .find(|f| {
            let r = f.feature.geometry.bounding_rect().unwrap();
            !skip.contains(&f.id.0)
                && r.min().x > BBOX[0] + 0.002
                && r.max().x < BBOX[2] - 0.002
                && r.min().y > BBOX[1] + 0.002
                && r.max().y < BBOX[3] - 0.002
        })
        .expect("a building inside the box")
        .id
        .0
}

#[test]
fn a_packs_changes_hold_exactly_the_tiles_whose_bytes_changed() {
    // A server of its own: the writes below must not move other tests' positions.
    let dir = tempfile::tempdir().unwrap();
    let packs = dir.path().join("packs");
    std::fs::create_dir(&packs).unwrap();
    let shelf = packs.clone();
    let server = TestServer::start_configured(
        &root().join("layers"),
        urbantile::compute::Limits::default(),
        move |state| state.packs = std::sync::Arc::new(urbantile::export::shelf::Shelf::new(shelf)),
    );
    let args = [
        "--layer",
        LAYERS,
        "--minzoom",
        "12",
        "--maxzoom",
        "17",
        "--bbox",
        &bbox_text(),
    ];
    let old_position = log_head(&server);
    // The same pack in both formats, under two names (a name finds its .pmtiles first).
    export_ok(&server, &packs.join("old.pmtiles"), &args);
    export_ok(&server, &packs.join("oldmb.mbtiles"), &args);
    // Nothing changed yet: an empty delta at the same position.
    let r = server.get(&format!("/packs/old/changes?since={old_position}"), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("urbantile-tiles"), Some("0"));
    assert_eq!(
        r.header("urbantile-position"),
        Some(old_position.to_string().as_str())
    );

    // Writes: a building renamed, one deleted, one added, and an urban problem reported (a
    // clustered layer: its clusters move).
    let key = server.add_key("w", "-", "buildings,urban_problems");
    let renamed = building_inside(&server, &[]);
    let deleted = building_inside(&server, &[renamed]);
    send(
        &server,
        "PATCH",
        &format!("/collections/buildings/items/{renamed}"),
        &key,
        &serde_json::json!({"properties": {"name": "Renamed for the pack test"}}),
    );
    send(
        &server,
        "DELETE",
        &format!("/collections/buildings/items/{deleted}"),
        &key,
        &serde_json::Value::Null,
    );
    let (lon, lat) = (24.9431, 60.1702);
    let d = 0.0002;
    send(
        &server,
        "POST",
        "/collections/buildings/items",
        &key,
        &serde_json::json!({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[
                [lon, lat], [lon + d, lat], [lon + d, lat + d / 2.0], [lon, lat + d / 2.0], [lon, lat]
            ]]},
            "properties": {"name": "New for the pack test", "building": "yes"},
        }),
    );
    send(
        &server,
        "POST",
        "/collections/urban_problems/items",
        &key,
        &serde_json::json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [24.9445, 60.1688]},
            "properties": {"ticket_no": "UP-PACK", "category": "pothole", "status": "new",
                           "reported_at": "2026-11-20T10:00:00Z"},
        }),
    );
    let new_position = log_head(&server);
    assert!(new_position > old_position);

    for (format, name) in [("pmtiles", "old"), ("mbtiles", "oldmb")] {
        let r = server.get(&format!("/packs/{name}/changes?since={old_position}"), &[]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.header("urbantile-position"),
            Some(new_position.to_string().as_str())
        );
        let delta = dir.path().join(format!("delta.{format}"));
        std::fs::write(&delta, &r.body).unwrap();
        let new = dir.path().join(format!("new.{format}"));
        export_ok(&server, &new, &args);
        let old = packs.join(format!("{name}.{format}"));
        let out = Command::new("python3")
            .arg(root().join("tests/check_delta.py"))
            .arg(&old)
            .arg(&delta)
            .arg(&new)
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{format}: {stdout}");
        assert!(
            out.status.success(),
            "{format} delta check failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Bad asks.
    for (path, status, says) in [
        ("/packs/old/changes", 400, "since: required"),
        ("/packs/old/changes?since=x", 400, "whole number"),
        (
            "/packs/old/changes?since=1&bbox=1",
            400,
            "unknown query parameter",
        ),
        (
            &format!("/packs/old/changes?since={}", new_position + 5)[..],
            400,
            "past the change log",
        ),
        (
            &format!("/packs/old/changes?since={}", old_position - 1)[..],
            410,
            "download the pack again",
        ),
        ("/packs/nope/changes?since=1", 404, "no pack named"),
        ("/packs/a.b/changes?since=1", 400, "a pack is NAME"),
    ] {
        let r = server.get(path, &[]);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let e = r.json();
        assert!(
            e["description"].as_str().unwrap().contains(says),
            "{path}: {e}"
        );
    }
    // Once the log no longer reaches back to the pack: download it again.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(server.data.store().prune_changes_through(new_position))
        .unwrap();
    let r = server.get(&format!("/packs/old/changes?since={old_position}"), &[]);
    assert_eq!(r.status, 410, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["description"]
            .as_str()
            .unwrap()
            .contains("/packs/old.pmtiles"),
    );
}

#[test]
fn a_browser_draws_a_building_from_a_pack_with_tiles_blocked() {
    let server = server();
    // The largest named building: easy to hit, whatever its neighbours.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = urbantile::model::LayerId::new("buildings").unwrap();
    let features = rt.block_on(server.data.store().load_layer(&id)).unwrap();
    let (name, at) = features
        .iter()
        .filter_map(|f| {
            use geo::InteriorPoint;
            let name = f.feature.properties.get("name")?.as_str()?.to_owned();
            let p = f.feature.geometry.interior_point()?;
            Some((
                geo::Area::unsigned_area(&f.feature.geometry),
                name,
                [p.x(), p.y()],
            ))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name, at)| (name, at))
        .expect("a named building");
    let bbox = format!(
        "{},{},{},{}",
        at[0] - 0.004,
        at[1] - 0.002,
        at[0] + 0.004,
        at[1] + 0.002
    );
    export_ok(
        server,
        &packs_dir().join("browser.pmtiles"),
        &[
            "--layer",
            "buildings",
            "--minzoom",
            "14",
            "--maxzoom",
            "16",
            "--bbox",
            &bbox,
        ],
    );
    let known = serde_json::json!({
        "pack": "browser.pmtiles",
        "building": {"name": name, "lonlat": at},
    });
    let known_path = packs_dir().parent().unwrap().join("browser-known.json");
    std::fs::write(&known_path, known.to_string()).unwrap();
    let out = Command::new("node")
        .current_dir(root())
        .arg("web/test/pack.mjs")
        .arg(server.base_url())
        .arg(&known_path)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{}\n(needs Debian's chromium at /usr/bin/chromium)",
        String::from_utf8_lossy(&out.stderr)
    );
}
