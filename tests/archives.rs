//! Tile archives served as layers, over a real socket: packs exported by `urbantile export`
//! (PMTiles and MBTiles) and a PNG PMTiles archive written here with the `pmtiles` crate,
//! pointed at by layer files beside live layers. Their tiles are checked byte for byte
//! against the files by independent readers (`tests/check_archive.py`: PyPI `pmtiles`,
//! Python's sqlite3), composites are decoded with geozero, and broken archives must stop
//! `serve` at start with an error naming the file.
//! Needs `python3 -m pip install -r tests/requirements.txt`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{TestServer, layer_folder, root, tile_of, urbantile_bin};
use geozero::mvt::{Message, Tile};

const BBOX: [f64; 4] = [24.938, 60.165, 24.950, 60.174];
/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

struct Fixture {
    /// The folder of the served layer files and their archives.
    served: PathBuf,
    server: TestServer,
    _source: TestServer,
    _dir: tempfile::TempDir,
}

/// A server whose layers are `roads` and `parks` (live), `basemap` (a PMTiles pack of
/// buildings and parks at z12-16 over [`BBOX`]), `basemap_mb` (the same as MBTiles) and
/// `aerial` (PNG tiles at z13-14), shared by the tests of this file.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let src_layers = layer_folder(&src, &["buildings", "parks"], &[]);
        let source = TestServer::start(&src_layers);
        let served = dir.path().join("served");
        std::fs::create_dir(&served).unwrap();
        let bbox = BBOX.map(|v| v.to_string()).join(",");
        for out in ["base.pmtiles", "base.mbtiles"] {
            // `--layers` after `export` names the layers (the design's spelling).
            let o = Command::new(urbantile_bin())
                .current_dir(root())
                .arg("--layers")
                .arg(&src_layers)
                .arg("--database")
                .arg(source.database_url())
                .args(["export"])
                .arg(served.join(out))
                .args(["--layers", "buildings,parks", "--minzoom", "12", "--maxzoom", "16"])
                .args(["--bbox", &bbox])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "export: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        write_png_archive(&served.join("aerial.pmtiles"));
        for id in ["roads", "parks"] {
            std::fs::copy(
                root().join(format!("layers/{id}.toml")),
                served.join(format!("{id}.toml")),
            )
            .unwrap();
        }
        let layer = |id: &str, text: String| std::fs::write(served.join(format!("{id}.toml")), text).unwrap();
        layer(
            "basemap",
            "title = \"Base map\"\ndescription = \"buildings and parks\"\n[archive]\npath = \"base.pmtiles\"\n".into(),
        );
        layer(
            "basemap_mb",
            "title = \"Base map (MBTiles)\"\n[archive]\npath = \"base.mbtiles\"\n".into(),
        );
        layer(
            "aerial",
            format!(
                "title = \"Aerial\"\nattribution = \"City survey\"\n[archive]\npath = {:?}\n",
                served.join("aerial.pmtiles").display().to_string()
            ),
        );
        let server = TestServer::start(&served);
        Fixture {
            served,
            server,
            _source: source,
            _dir: dir,
        }
    })
}

/// PNG tiles over [`BBOX`] at z13 and z14, uncompressed, with bounds and zooms.
fn write_png_archive(path: &Path) {
    use pmtiles::{Compression, PmTilesWriter, TileType};
    let mut w = PmTilesWriter::new(TileType::Png)
        .tile_compression(Compression::None)
        .internal_compression(Compression::Gzip)
        .create(std::fs::File::create(path).unwrap())
        .unwrap();
    let mut tiles = Vec::new();
    for z in 13..=14 {
        tiles.extend(common::tiles_over(BBOX, z));
    }
    tiles.sort_by_key(|&(z, x, y)| {
        pmtiles::TileId::from(pmtiles::TileCoord::new(z, x, y).unwrap()).value()
    });
    for (z, x, y) in tiles {
        w.add_tile(pmtiles::TileCoord::new(z, x, y).unwrap(), PNG)
            .unwrap();
    }
    w.set_zoom_range(13, 14);
    w.set_bounds(BBOX[0], BBOX[1], BBOX[2], BBOX[3]);
    w.set_center(24.944, 60.17, 13);
    w.set_metadata("{}");
    w.finalize().unwrap();
}

/// A z14 tile in the middle of [`BBOX`]: buildings and parks and roads are there.
fn middle(z: u8) -> String {
    let (z, x, y) = tile_of((BBOX[0] + BBOX[2]) / 2.0, (BBOX[1] + BBOX[3]) / 2.0, z);
    format!("{z}/{x}/{y}")
}

fn decode(body: &[u8]) -> Tile {
    Tile::decode(body).expect("a valid MVT protobuf")
}

/// Each layer's name and feature count.
fn layers(tile: &Tile) -> Vec<(String, usize)> {
    tile.layers
        .iter()
        .map(|l| (l.name.clone(), l.features.len()))
        .collect()
}

#[test]
fn an_archive_layer_serves_exactly_the_bytes_its_file_holds() {
    let f = fixture();
    for (layer, file, ext) in [
        ("basemap", "base.pmtiles", "mvt"),
        ("basemap_mb", "base.mbtiles", "mvt"),
        ("aerial", "aerial.pmtiles", "png"),
    ] {
        let out = Command::new("python3")
            .arg(root().join("tests/check_archive.py"))
            .arg(f.server.base_url())
            .arg(layer)
            .arg(f.served.join(file))
            .arg(ext)
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}");
        assert!(
            out.status.success(),
            "independent archive check failed:\n{stdout}\n{}\n(needs: python3 -m pip install -r tests/requirements.txt)",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = f.server.get(
        &format!("/tiles/aerial/{}.png", middle(14)),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(
        (r.body.as_slice(), r.header("content-encoding")),
        (PNG, None)
    );
}

#[test]
fn an_archive_tile_is_revalidated_by_its_etag() {
    let f = fixture();
    for layer in ["basemap", "basemap_mb"] {
        let path = format!("/tiles/{layer}/{}.mvt", middle(14));
        let r = f.server.get(&path, &[("Accept-Encoding", "gzip")]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(
            r.header("content-type"),
            Some("application/vnd.mapbox-vector-tile")
        );
        let etag = r.header("etag").expect("an ETag").to_owned();
        let again = f.server.get(&path, &[]);
        assert_eq!(
            again.header("etag"),
            Some(etag.as_str()),
            "one tag per tile"
        );
        let cached = f.server.get(&path, &[("If-None-Match", etag.as_str())]);
        assert_eq!((cached.status, cached.body.len()), (304, 0), "{path}");
        let other = f
            .server
            .get(&format!("/tiles/{layer}/{}.mvt", middle(16)), &[]);
        assert_eq!(other.status, 200);
        assert_ne!(other.header("etag"), Some(etag.as_str()));
        let stale = f
            .server
            .get(&path, &[("If-None-Match", "\"something-else\"")]);
        assert_eq!(stale.status, 200);
    }
}

#[test]
fn tiles_outside_an_archive_are_empty() {
    let f = fixture();
    for path in [
        format!("/tiles/basemap/{}.mvt", middle(11)),
        format!("/tiles/basemap/{}.mvt", middle(17)),
        "/tiles/basemap/14/0/0.mvt".to_owned(),
        "/tiles/basemap_mb/14/0/0.mvt".to_owned(),
        "/tiles/aerial/14/0/0.png".to_owned(),
        format!("/tiles/aerial/{}.png", middle(12)),
    ] {
        let r = f.server.get(&path, &[("Accept-Encoding", "gzip")]);
        assert_eq!((r.status, r.body.len()), (204, 0), "{path}");
    }
}

#[test]
fn a_wrong_extension_or_a_feature_query_is_refused_with_what_is_right() {
    let f = fixture();
    let tile = middle(14);
    let r = f.server.get(&format!("/tiles/basemap/{tile}.png"), &[]);
    assert_eq!(r.status, 404);
    assert!(
        r.json()["description"].as_str().unwrap().contains(".mvt"),
        "{:?}",
        r.json()
    );
    let r = f.server.get(&format!("/tiles/aerial/{tile}.mvt"), &[]);
    assert_eq!(r.status, 404);
    assert!(
        r.json()["description"].as_str().unwrap().contains(".png"),
        "{:?}",
        r.json()
    );
    let r = f.server.get(
        &format!("/tiles/basemap/{tile}.mvt?datetime=2026-01-01T00:00:00Z"),
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["description"]
            .as_str()
            .unwrap()
            .contains("archive")
    );
    assert_eq!(
        f.server
            .get(&format!("/tiles/basemap/{tile}.mvt?v=3"), &[])
            .status,
        200
    );
    assert_eq!(f.server.get("/tiles/basemap/30/0/0.mvt", &[]).status, 400);
}

#[test]
fn a_composite_of_archives_and_a_live_layer_decodes_into_all_their_layers() {
    let f = fixture();
    let tile = middle(14);
    let get = |layers: &str| {
        let r = f.server.get(&format!("/tiles/{layers}/{tile}.mvt"), &[]);
        assert_eq!(
            r.status,
            200,
            "{layers}: {}",
            String::from_utf8_lossy(&r.body)
        );
        layers_of(&r.body)
    };
    fn layers_of(body: &[u8]) -> Vec<(String, usize)> {
        layers(&decode(body))
    }
    let roads = get("roads");
    let archive = get("basemap");
    assert_eq!(
        archive.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["buildings", "parks"]
    );
    assert!(roads[0].1 > 0 && archive[0].1 > 0, "{roads:?} {archive:?}");
    for list in ["roads,basemap", "roads,basemap_mb"] {
        let both = get(list);
        assert_eq!(both, [roads.clone(), archive.clone()].concat(), "{list}");
        // Again, from the cache, gzip: the same tile.
        let r = f.server.get(
            &format!("/tiles/{list}/{tile}.mvt"),
            &[("Accept-Encoding", "gzip")],
        );
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(layers_of(&common::gunzip(&r.body)), both);
    }
    // Features of the archive's layers keep their properties.
    let r = f
        .server
        .get(&format!("/tiles/roads,basemap/{tile}.mvt"), &[]);
    let t = decode(&r.body);
    let buildings = t.layers.iter().find(|l| l.name == "buildings").unwrap();
    assert!(
        !buildings.keys.is_empty() && buildings.features.iter().all(|f| !f.geometry.is_empty())
    );

    let r = f
        .server
        .get(&format!("/tiles/parks,basemap/{tile}.mvt"), &[]);
    assert_eq!(r.status, 400);
    let says = r.json()["description"].as_str().unwrap().to_owned();
    assert!(
        says.contains("\"parks\"") && says.contains("basemap"),
        "{says}"
    );
    let r = f
        .server
        .get(&format!("/tiles/roads,aerial/{tile}.mvt"), &[]);
    assert_eq!(r.status, 400);
    assert!(r.json()["description"].as_str().unwrap().contains("aerial"));
}

#[test]
fn tilejson_of_an_archive_has_its_vector_layers_zooms_and_bounds() {
    let f = fixture();
    for layer in ["basemap", "basemap_mb"] {
        let tj = f.server.get(&format!("/tiles/{layer}.json"), &[]).json();
        let ids: Vec<&str> = tj["vector_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["buildings", "parks"], "{tj}");
        assert_eq!(
            (tj["minzoom"].as_u64(), tj["maxzoom"].as_u64()),
            (Some(12), Some(16))
        );
        for (got, want) in tj["bounds"].as_array().unwrap().iter().zip(BBOX) {
            assert!((got.as_f64().unwrap() - want).abs() < 1e-6, "{tj}");
        }
        assert!(
            tj["tiles"][0]
                .as_str()
                .unwrap()
                .ends_with(&format!("/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"))
        );
        assert_eq!(tj["center"].as_array().unwrap().len(), 3);
    }
    let tj = f.server.get("/tiles/aerial.json", &[]).json();
    assert!(tj["tiles"][0].as_str().unwrap().ends_with(".png"), "{tj}");
    assert!(tj.get("vector_layers").is_none());
    assert_eq!(tj["attribution"], "City survey");
    assert_eq!(
        (tj["minzoom"].as_u64(), tj["maxzoom"].as_u64()),
        (Some(13), Some(14))
    );
    let tj = f.server.get("/tiles/roads,basemap.json", &[]).json();
    let ids: Vec<&str> = tj["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["roads", "buildings", "parks"]);
}

#[test]
fn archives_are_in_the_catalog_and_under_the_live_layers_of_the_style_but_not_collections() {
    let f = fixture();
    let catalog = f.server.get("/catalog", &[]).json();
    let kind = |id: &str| {
        catalog["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .map(|l| (l["kind"].clone(), l["format"].clone()))
    };
    assert_eq!(kind("basemap"), Some(("archive".into(), "mvt".into())));
    assert_eq!(kind("aerial"), Some(("archive".into(), "png".into())));
    assert_eq!(kind("roads").unwrap().0, "features");
    let collections = f.server.get("/collections", &[]).json();
    let ids: Vec<&str> = collections["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"roads") && !ids.contains(&"basemap") && !ids.contains(&"aerial"),
        "{ids:?}"
    );
    assert_eq!(f.server.get("/collections/basemap/items", &[]).status, 404);

    let style = f.server.get("/style.json", &[]).json();
    assert_eq!(style["sources"]["archive-aerial"]["type"], "raster");
    assert_eq!(style["sources"]["archive-basemap"]["type"], "vector");
    let layers = style["layers"].as_array().unwrap();
    let at = |id: &str| {
        layers
            .iter()
            .position(|l| l["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    assert!(at("aerial-raster") < at("roads-line"));
    assert!(at("basemap-buildings-fill") < at("parks-fill"));
    assert_eq!(
        layers[at("basemap-buildings-fill")]["source-layer"],
        "buildings"
    );
    let archives = style["metadata"]["urbantile:archives"].as_array().unwrap();
    assert_eq!(archives.len(), 3);
}

/// `urbantile serve` over a folder with one archive layer pointing at `bytes` (or at no
/// file): its exit status and error output (it must stop at start: it is killed after a
/// while).
fn serve_with_archive(name: &str, bytes: Option<&[u8]>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().join("layers");
    std::fs::create_dir(&layers).unwrap();
    if let Some(bytes) = bytes {
        std::fs::write(layers.join(name), bytes).unwrap();
    }
    std::fs::write(
        layers.join("broken.toml"),
        format!("title = \"Broken\"\n[archive]\npath = \"{name}\"\n"),
    )
    .unwrap();
    let mut child = Command::new(urbantile_bin())
        .current_dir(dir.path())
        .arg("--layers")
        .arg(&layers)
        .arg("--database")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("serve started with a broken archive {name}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.success(), err)
}

#[test]
fn a_truncated_or_corrupt_archive_stops_serve_at_start_naming_the_file() {
    let f = fixture();
    let pm = std::fs::read(f.served.join("base.pmtiles")).unwrap();
    let mb = std::fs::read(f.served.join("base.mbtiles")).unwrap();
    // The root directory, gzipped, garbled.
    let mut garbled = pm.clone();
    let root_at = u64::from_le_bytes(pm[8..16].try_into().unwrap()) as usize;
    for b in &mut garbled[root_at + 2..root_at + 12] {
        *b = !*b;
    }
    let mut text = b"this is not a database, only text ".repeat(200);
    text.truncate(4096);
    for (name, bytes, says) in [
        ("cut.pmtiles", pm[..pm.len() / 2].to_vec(), "truncated"),
        (
            "cut_header.pmtiles",
            pm[..60].to_vec(),
            "not a PMTiles v3 archive",
        ),
        ("garbled.pmtiles", garbled, "directory"),
        (
            "cut.mbtiles",
            mb[..mb.len() / 2].to_vec(),
            "malformed|damaged",
        ),
        ("text.mbtiles", text, "not a readable MBTiles"),
    ] {
        let (ok, err) = serve_with_archive(name, Some(&bytes));
        assert!(!ok, "{name}: serve succeeded");
        let said = err.split("Stack backtrace").next().unwrap_or("").trim();
        println!("{name}:\n{said}");
        assert!(
            err.contains(name)
                && err.contains("broken")
                && says.split('|').any(|s| err.contains(s)),
            "{name}: the error should name the file, the layer and say {says:?}:\n{err}"
        );
    }
    let (ok, err) = serve_with_archive("empty.pmtiles", Some(b""));
    assert!(!ok && err.contains("empty.pmtiles"), "{err}");
    let (ok, err) = serve_with_archive("missing.pmtiles", None);
    assert!(
        !ok && err.contains("missing.pmtiles") && err.contains("cannot open"),
        "{err}"
    );
}
