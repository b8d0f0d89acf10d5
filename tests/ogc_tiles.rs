//! OGC API - Tiles over a real socket: the documents' structure against the standard's
//! required members (and the tile matrix set against an independent computation), the
//! tiles' identity with `/tiles/{layers}/{z}/{x}/{y}.mvt` (bytes, headers, cache entries),
//! z/y/x order, errors; and real clients: OpenLayers' `OGCVectorTile` source draws a known
//! building in headless Chromium (`web/test/ogc_tiles.mjs`), and GDAL (`ogrinfo`, Debian's
//! gdal-bin) decodes it, georeferenced, from the tiles the tile set's item link names (why
//! not through GDAL's OGCAPI driver: see that test).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::OnceLock;

use common::{Response, TestServer, layer_folder, root, tile_of};
use geo::InteriorPoint;
use geozero::mvt::{Message, Tile};

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start(&root().join("layers")))
}

/// The largest named building: its OSM id, name and a point inside it (lon/lat).
fn known_building(server: &TestServer) -> (String, String, [f64; 2]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = urbantile::model::LayerId::new("buildings").unwrap();
    let features = rt.block_on(server.data.store().load_layer(&id)).unwrap();
    features
        .iter()
        .filter_map(|f| {
            let p = &f.feature.properties;
            let name = p.get("name")?.as_str()?.to_owned();
            let osm_id = p.get("osm_id")?.as_str()?.to_owned();
            let at = f.feature.geometry.interior_point()?;
            let size = geo::Area::unsigned_area(&f.feature.geometry);
            Some((size, osm_id, name, [at.x(), at.y()]))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, osm_id, name, at)| (osm_id, name, at))
        .expect("a named building")
}

fn error_code(r: &Response) -> String {
    assert!(
        r.header("content-type").unwrap_or("").contains("json"),
        "{r:?}"
    );
    let body = r.json();
    assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
    body["code"].as_str().unwrap().to_owned()
}

fn link<'a>(doc: &'a serde_json::Value, rel: &str) -> &'a serde_json::Value {
    doc["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == rel)
        .unwrap_or_else(|| panic!("no {rel} link in {doc}"))
}

/// The path of an absolute link of this server.
fn path_of(s: &TestServer, href: &serde_json::Value) -> String {
    href.as_str()
        .unwrap()
        .strip_prefix(&s.base_url())
        .unwrap()
        .to_owned()
}

#[test]
fn the_tile_matrix_set_is_web_mercator_quad_as_computed_independently() {
    let s = server();
    let list = s.get("/tileMatrixSets", &[]);
    assert_eq!(list.status, 200);
    let list = list.json();
    let sets = list["tileMatrixSets"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["id"], "WebMercatorQuad");
    let r = s.get(&path_of(s, &link(&sets[0], "self")["href"]), &[]);
    assert_eq!(r.status, 200);
    let tms = r.json();
    assert_eq!(tms["crs"], "http://www.opengis.net/def/crs/EPSG/0/3857");
    assert_eq!(
        tms["uri"],
        "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    );
    let matrices = tms["tileMatrices"].as_array().unwrap();
    assert_eq!(matrices.len(), 25, "zooms 0..=24");
    // EPSG:3857: a sphere of radius 6378137 m; 256-pixel tiles; 0.28 mm pixels.
    let half = std::f64::consts::PI * 6_378_137.0;
    for (z, m) in matrices.iter().enumerate() {
        for key in [
            "id",
            "scaleDenominator",
            "cellSize",
            "pointOfOrigin",
            "tileWidth",
            "tileHeight",
            "matrixWidth",
            "matrixHeight",
        ] {
            assert!(!m[key].is_null(), "tile matrix {z} lacks {key}");
        }
        assert_eq!(m["id"], z.to_string());
        let cell = 2.0 * half / 256.0 / 2f64.powi(z as i32);
        let got = m["cellSize"].as_f64().unwrap();
        assert!((got - cell).abs() / cell < 1e-12, "z{z} cell {got}");
        let scale = m["scaleDenominator"].as_f64().unwrap();
        assert!((scale - cell / 0.00028).abs() / scale < 1e-12, "z{z} scale");
        assert_eq!(m["matrixWidth"], 1u64 << z);
        assert_eq!(m["matrixHeight"], 1u64 << z);
        assert_eq!(m["tileWidth"], 256);
        let origin = m["pointOfOrigin"].as_array().unwrap();
        assert!((origin[0].as_f64().unwrap() + half).abs() < 1e-6);
        assert!((origin[1].as_f64().unwrap() - half).abs() < 1e-6);
    }
    // Zoom 0 as OGC 17-083r4 prints it.
    assert!((matrices[0]["scaleDenominator"].as_f64().unwrap() - 559_082_264.028_717).abs() < 1e-5);
    let r = s.get("/tileMatrixSets/WorldCRS84Quad", &[]);
    assert_eq!((r.status, error_code(&r).as_str()), (404, "NotFound"));
}

/// The tile set list at `path` and the metadata of its one tile set, checked for the
/// members the standard requires.
fn tileset(s: &TestServer, path: &str) -> serde_json::Value {
    let r = s.get(path, &[]);
    assert_eq!(r.status, 200, "{path}");
    let list = r.json();
    let sets = list["tilesets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{list}");
    for key in ["dataType", "crs", "links"] {
        assert!(
            !sets[0][key].is_null(),
            "{path}: the tile set item lacks {key}"
        );
    }
    let scheme = path_of(
        s,
        &link(
            &sets[0],
            "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
        )["href"],
    );
    assert_eq!(scheme, "/tileMatrixSets/WebMercatorQuad");
    let r = s.get(&path_of(s, &link(&sets[0], "self")["href"]), &[]);
    assert_eq!(r.status, 200);
    let doc = r.json();
    for key in [
        "dataType",
        "crs",
        "links",
        "tileMatrixSetLimits",
        "layers",
        "boundingBox",
    ] {
        assert!(!doc[key].is_null(), "{path}: the tile set lacks {key}");
    }
    assert_eq!(doc["dataType"], "vector");
    assert_eq!(doc["crs"], "http://www.opengis.net/def/crs/EPSG/0/3857");
    let item = link(&doc, "item");
    assert_eq!(item["type"], "application/vnd.mapbox-vector-tile");
    let href = item["href"].as_str().unwrap();
    assert!(
        href.contains("/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}"),
        "{href}"
    );
    link(&doc, "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme");
    doc
}

/// The limits the tile set must have: every zoom of its layers, over the tiles of their
/// bounds as the collections' extents give them.
fn expected_limits(s: &TestServer, ids: &[&str]) -> Vec<(String, [u64; 4])> {
    let mut bounds = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let (mut min, mut max) = (u8::MAX, 0);
    for id in ids {
        let c = s.get(&format!("/collections/{id}"), &[]).json();
        let b = c["extent"]["spatial"]["bbox"][0].as_array().unwrap();
        for i in 0..4 {
            let v = b[i].as_f64().unwrap();
            bounds[i] = if i < 2 {
                bounds[i].min(v)
            } else {
                bounds[i].max(v)
            };
        }
        let def = s.data.layer(id).unwrap();
        min = min.min(def.minzoom);
        max = max.max(def.maxzoom);
    }
    (min..=max)
        .map(|z| {
            let (_, x0, y0) = tile_of(bounds[0], bounds[3], z);
            let (_, x1, y1) = tile_of(bounds[2], bounds[1], z);
            (z.to_string(), [y0 as u64, y1 as u64, x0 as u64, x1 as u64])
        })
        .collect()
}

fn limits_of(doc: &serde_json::Value) -> Vec<(String, [u64; 4])> {
    doc["tileMatrixSetLimits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let n = |k: &str| l[k].as_u64().unwrap();
            (
                l["tileMatrix"].as_str().unwrap().to_owned(),
                [
                    n("minTileRow"),
                    n("maxTileRow"),
                    n("minTileCol"),
                    n("maxTileCol"),
                ],
            )
        })
        .collect()
}

#[test]
fn a_collections_tile_set_describes_its_layer_zooms_bounds_and_declared_fields() {
    let s = server();
    let doc = tileset(s, "/collections/buildings/tiles");
    assert_eq!(limits_of(&doc), expected_limits(s, &["buildings"]));
    let def = s.data.layer("buildings").unwrap();
    assert_eq!(
        limits_of(&doc).len(),
        (def.maxzoom - def.minzoom + 1) as usize
    );
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let layer = &layers[0];
    assert_eq!(layer["id"], "buildings");
    assert_eq!(layer["dataType"], "vector");
    assert_eq!(layer["geometryDimension"], 2);
    assert_eq!(layer["minTileMatrix"], def.minzoom.to_string());
    assert_eq!(layer["maxTileMatrix"], def.maxzoom.to_string());
    // The types layers/buildings.toml declares.
    let text = std::fs::read_to_string(root().join("layers/buildings.toml")).unwrap();
    let declared: toml::Table = text.parse().unwrap();
    let declared = declared["properties"].as_table().unwrap();
    let fields = layer["propertiesSchema"]["properties"].as_object().unwrap();
    assert_eq!(fields.len(), declared.len());
    for (name, ty) in declared {
        assert_eq!(fields[name]["type"], ty.as_str().unwrap(), "{name}");
    }
    assert_eq!(
        path_of(
            s,
            &link(&doc, "http://www.opengis.net/def/rel/ogc/1.0/geodata")["href"]
        ),
        "/collections/buildings"
    );
    // The collection and the landing page lead here.
    let c = s.get("/collections/buildings", &[]).json();
    let tiles = link(&c, "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector");
    assert_eq!(path_of(s, &tiles["href"]), "/collections/buildings/tiles");
    let landing = s.get("/", &[]).json();
    let tiles = link(
        &landing,
        "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
    );
    assert_eq!(path_of(s, &tiles["href"]), "/tiles");
    let schemes = link(
        &landing,
        "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
    );
    assert_eq!(path_of(s, &schemes["href"]), "/tileMatrixSets");
    let conformance = s.get("/conformance", &[]).json();
    let classes: BTreeSet<&str> = conformance["conformsTo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for class in [
        "core",
        "tileset",
        "tilesets-list",
        "geodata-tilesets",
        "dataset-tilesets",
        "collections-selection",
        "datetime",
        "mvt",
        "oas30",
    ] {
        let uri = format!("http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{class}");
        assert!(classes.contains(uri.as_str()), "{uri}");
    }
    assert!(classes.contains("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"));
}

#[test]
fn the_dataset_tile_set_holds_every_public_layer_or_the_selected_ones() {
    let s = server();
    let doc = tileset(s, "/tiles");
    let all: Vec<&str> = s.data.layers().iter().map(|d| d.id.as_str()).collect();
    let ids: Vec<&str> = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, all);
    assert_eq!(limits_of(&doc), expected_limits(s, &all));
    let doc = tileset(s, "/tiles?collections=roads,buildings");
    let ids: Vec<&str> = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["roads", "buildings"]);
    assert_eq!(limits_of(&doc), expected_limits(s, &["roads", "buildings"]));
    let href = link(&doc, "item")["href"].as_str().unwrap();
    assert!(
        href.ends_with("{tileCol}?collections=roads,buildings"),
        "{href}"
    );
}

/// Both answers, for the same request headers, are the same answer.
fn same_answer(a: &Response, b: &Response, what: &str) {
    assert_eq!(a.status, b.status, "{what}");
    assert_eq!(a.body, b.body, "{what}");
    for h in [
        "etag",
        "content-type",
        "content-encoding",
        "cache-control",
        "vary",
    ] {
        assert_eq!(a.header(h), b.header(h), "{what}: {h}");
    }
}

#[test]
fn ogc_tiles_are_the_xyz_tiles_bytes_headers_and_cache_entries() {
    use urbantile::cache::TileKey;
    use urbantile::tiles::TileCoord;
    use urbantile::tiles::compress::Encoding;
    let s = server();
    let (_, _, at) = known_building(s);
    let all: Vec<&str> = s
        .data
        .layers()
        .iter()
        .filter(|d| !d.private)
        .map(|d| d.id.as_str())
        .collect();
    let all = all.join(",");
    let cache = s.data.cache();
    for z in [14, 15, 16, 18] {
        // The column east of the building's: no other test asks for these tiles.
        let (_, x, y) = tile_of(at[0], at[1], z);
        let x = x + 1;
        let pairs = [
            (
                format!("/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}"),
                format!("/tiles/buildings/{z}/{x}/{y}.mvt"),
                Some("buildings"),
            ),
            (
                format!("/tiles/WebMercatorQuad/{z}/{y}/{x}"),
                format!("/tiles/{all}/{z}/{x}/{y}.mvt"),
                Some(all.as_str()),
            ),
            (
                format!("/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=roads,buildings"),
                format!("/tiles/roads,buildings/{z}/{x}/{y}.mvt"),
                Some("roads,buildings"),
            ),
            (
                format!(
                    "/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=public_events&datetime=2026-06-01T00:00:00Z/.."
                ),
                format!("/tiles/public_events/{z}/{x}/{y}.mvt?datetime=2026-06-01T00:00:00Z/.."),
                None,
            ),
        ];
        for (ogc, xyz, layers) in pairs {
            // The key the XYZ route looks its tile up by, in each stored form.
            let key = |encoding| TileKey {
                layers: layers.unwrap_or_default().into(),
                query: cache.no_query(),
                tile: TileCoord::new(z as u32, x as u64, y as u64).unwrap(),
                encoding,
            };
            for (accept, stored) in [
                (None, Encoding::Gzip),
                (Some("gzip"), Encoding::Gzip),
                (Some("zstd, gzip"), Encoding::Zstd),
            ] {
                let headers: Vec<(&str, &str)> =
                    accept.map(|e| ("Accept-Encoding", e)).into_iter().collect();
                let first = accept != Some("gzip");
                if layers.is_some() && first {
                    assert!(cache.get(&key(stored)).is_none(), "{xyz} was cached before");
                }
                // The OGC route first: it makes the entry the XYZ route then answers from.
                let a = s.get(&ogc, &headers);
                if layers.is_some() {
                    assert!(
                        cache.get(&key(stored)).is_some(),
                        "{ogc} made no entry for {xyz}"
                    );
                }
                let b = s.get(&xyz, &headers);
                same_answer(&a, &b, &format!("{ogc} vs {xyz} ({accept:?})"));
                assert!(matches!(a.status, 200 | 204), "{ogc}: {}", a.status);
                if let Some(etag) = a.header("etag") {
                    assert_eq!(s.get(&ogc, &[("If-None-Match", etag)]).status, 304);
                }
            }
        }
    }
}

#[test]
fn the_path_is_z_y_x_and_finds_the_known_building() {
    let s = server();
    let (osm_id, name, at) = known_building(s);
    let (z, x, y) = tile_of(at[0], at[1], 16);
    assert_ne!(x, y, "a non-square address tells row from column");
    let r = s.get(
        &format!("/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}"),
        &[],
    );
    assert_eq!(r.status, 200);
    let tile = Tile::decode(r.body.as_slice()).unwrap();
    let layer = &tile.layers[0];
    assert_eq!(layer.name, "buildings");
    let key = layer.keys.iter().position(|k| k == "osm_id").unwrap() as u32;
    let found = layer.features.iter().any(|f| {
        f.tags.chunks(2).any(|t| {
            t[0] == key && layer.values[t[1] as usize].string_value.as_deref() == Some(&osm_id)
        })
    });
    assert!(
        found,
        "building {name} ({osm_id}) is not in tile {z}/{y}/{x} (z/y/x)"
    );
    // Swapped, the address is another tile of the world: the sea south of the equator.
    let swapped = s.get(
        &format!("/collections/buildings/tiles/WebMercatorQuad/{z}/{x}/{y}"),
        &[],
    );
    assert_eq!(swapped.status, 204);
}

#[test]
fn tiles_outside_the_matrix_set_and_bad_parameters_are_json_errors() {
    let s = server();
    let c = "/collections/buildings/tiles";
    for (path, status, code) in [
        (
            format!("{c}/WebMercatorQuad/25/0/0"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/07/0/0"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/14/16384/0"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/14/0/16384"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/14/-1/0"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/14/0/x"),
            400,
            "InvalidParameterValue",
        ),
        (format!("{c}/WorldCRS84Quad/1/0/0"), 404, "NotFound"),
        (format!("{c}/WorldCRS84Quad"), 404, "NotFound"),
        ("/collections/nowhere/tiles".into(), 404, "NotFound"),
        (
            "/collections/nowhere/tiles/WebMercatorQuad/1/0/0".into(),
            404,
            "NotFound",
        ),
        (
            format!("{c}/WebMercatorQuad/1/0/0?collections=roads"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/1/0/0?f=png"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/1/0/0?zoom=3"),
            400,
            "InvalidParameterValue",
        ),
        (
            format!("{c}/WebMercatorQuad/1/0/0?datetime=yesterday"),
            400,
            "InvalidParameterValue",
        ),
        (format!("{c}?f=xml"), 400, "InvalidParameterValue"),
        (
            "/tiles/WebMercatorQuad/1/0/0?collections=nowhere".into(),
            400,
            "InvalidParameterValue",
        ),
        (
            "/tiles/WebMercatorQuad/1/0/0?collections=".into(),
            400,
            "InvalidParameterValue",
        ),
        (
            "/tiles/WebMercatorQuad/1/0/0?collections=roads,roads".into(),
            400,
            "InvalidParameterValue",
        ),
        (
            "/tiles/WebMercatorQuad/1/0/0?collections=roads&collections=parks".into(),
            400,
            "InvalidParameterValue",
        ),
        (
            "/tiles/WebMercatorQuad?collections=nowhere".into(),
            400,
            "InvalidParameterValue",
        ),
        ("/tiles?zoom=1".into(), 400, "InvalidParameterValue"),
        (
            "/tileMatrixSets?limit=1".into(),
            400,
            "InvalidParameterValue",
        ),
    ] {
        let r = s.get(&path, &[]);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(error_code(&r), code, "{path}");
    }
    // The XYZ routes beside them still answer (axum matches the literal segment first).
    let (_, _, at) = known_building(s);
    let (z, x, y) = tile_of(at[0], at[1], 15);
    assert_eq!(
        s.get(&format!("/tiles/buildings/{z}/{x}/{y}.mvt"), &[])
            .status,
        200
    );
    assert_eq!(s.get("/tiles/buildings.json", &[]).status, 200);
    assert_eq!(s.get("/tiles/WebMercatorQuad.json", &[]).status, 404);
    // A tile inside the matrix set but outside the limits is answered as /tiles answers it.
    assert_eq!(
        s.get(&format!("{c}/WebMercatorQuad/3/0/0"), &[]).status,
        204
    );
    // f=html pages for people.
    let page = s.get(&format!("{c}/WebMercatorQuad?f=html"), &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
}

#[test]
fn private_layers_stay_out_of_the_dataset_unless_the_key_may_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let layers = layer_folder(dir.path(), &["schools"], &["dog_parks"]);
    let s = TestServer::start(&layers);
    let doc = s.get("/tiles/WebMercatorQuad", &[]).json();
    let ids: Vec<&str> = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["schools"]);
    let r = s.get(
        "/tiles/WebMercatorQuad/14/4742/9327?collections=dog_parks",
        &[],
    );
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (400, "InvalidParameterValue")
    );
    assert_eq!(s.get("/collections/dog_parks/tiles", &[]).status, 404);
    let key = s.add_key("reader", "dog_parks", "-");
    let auth = format!("Bearer {key}");
    let r = s.get(
        "/tiles/WebMercatorQuad?collections=dog_parks",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200);
    let r = s.get(
        "/collections/dog_parks/tiles/WebMercatorQuad/14/4742/9327",
        &[("Authorization", &auth)],
    );
    assert!(matches!(r.status, 200 | 204), "{}", r.status);
    assert!(r.header("cache-control").unwrap().starts_with("private"));
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .current_dir(root())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// GDAL's MVT driver decodes the tiles a client finds by following the tile set's links, and
/// georeferences them by the tile's z/x/y: the known building is where it is.
///
/// Debian 12's GDAL (3.6.2) cannot serve as the OGC API client itself: its OGCAPI driver
/// predates the published OGC API - Tiles and TMS 2.0 (its maintainers titled the 3.6
/// update "not working properly due to churn in tilematrixset spec"; TMS 2.0 parsing came
/// later, GDAL pull request 8130). Against this server it follows the collection's links to
/// the tile set list, the tile set and the tile matrix set, then fails to parse the TMS 2.0
/// definition ("Invalid tiling matrix set name"); given a TMS 1.0 definition instead, it
/// still makes no layer.
#[test]
fn gdal_decodes_the_known_building_from_the_tiles_the_item_link_names() {
    let s = server();
    let (osm_id, name, at) = known_building(s);
    let doc = s
        .get("/collections/buildings/tiles/WebMercatorQuad", &[])
        .json();
    let template = link(&doc, "item")["href"].as_str().unwrap().to_owned();
    let (bx, by) = lon_lat_to_3857(at[0], at[1]);
    for l in limits_of(&doc) {
        let z: u8 = l.0.parse().unwrap();
        let (_, x, y) = tile_of(at[0], at[1], z);
        let url = template
            .replace("{tileMatrix}", &z.to_string())
            .replace("{tileRow}", &y.to_string())
            .replace("{tileCol}", &x.to_string());
        let r = s.get(&path_of(s, &serde_json::Value::from(url.clone())), &[]);
        assert_eq!(r.status, 200, "{url}");
        let file = s.dir.path().join(format!("gdal-{z}-{x}-{y}.mvt"));
        std::fs::write(&file, &r.body).unwrap();
        // Only the features meeting a 2 m box around the building's inner point (EPSG:3857).
        let spat: Vec<String> = [bx - 1.0, by - 1.0, bx + 1.0, by + 1.0]
            .iter()
            .map(|v| format!("{v:.3}"))
            .collect();
        let (xs, ys, zs) = (format!("X={x}"), format!("Y={y}"), format!("Z={z}"));
        let path = format!("MVT:{}", file.display());
        let (ok, text) = run(
            "ogrinfo",
            &[
                "-ro",
                "-oo",
                &xs,
                "-oo",
                &ys,
                "-oo",
                &zs,
                "-spat",
                &spat[0],
                &spat[1],
                &spat[2],
                &spat[3],
                &path,
                "buildings",
            ],
        );
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!("osm_id (String) = {osm_id}")),
            "GDAL finds no building {name} ({osm_id}) at its place in {url}:\n{text}"
        );
        assert!(
            text.contains("MULTIPOLYGON") || text.contains("POLYGON"),
            "{text}"
        );
    }
}

fn lon_lat_to_3857(lon: f64, lat: f64) -> (f64, f64) {
    let r = 6_378_137.0;
    let x = lon.to_radians() * r;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * r;
    (x, y)
}

#[test]
fn openlayers_draws_the_known_building_from_the_ogc_tile_sets() {
    let s = server();
    let (osm_id, name, at) = known_building(s);
    let known = serde_json::json!({"osm_id": osm_id, "name": name, "lonlat": at});
    let known_path = s.dir.path().join("known-building.json");
    std::fs::write(&known_path, known.to_string()).unwrap();
    let (ok, text) = run(
        "node",
        &[
            "web/test/ogc_tiles.mjs",
            &s.base_url(),
            known_path.to_str().unwrap(),
        ],
    );
    println!("{text}");
    assert!(
        ok,
        "OpenLayers test failed (needs Debian's chromium at /usr/bin/chromium):\n{text}"
    );
}
