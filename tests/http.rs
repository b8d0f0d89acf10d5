//! The HTTP interface over a real socket: status codes, headers, compression, revalidation
//! and error bodies, against a server loaded with the bundled city data.

mod common;

use std::sync::OnceLock;

use common::{TestServer, gunzip, root};
use geozero::mvt::{Message, Tile};

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start(&root().join("layers")))
}

/// A z16 tile in central Helsinki (Esplanadi) that holds buildings, roads and more.
const CENTRE_Z16: &str = "16/37309/18969";

fn decode(body: &[u8]) -> Tile {
    Tile::decode(body).expect("a valid MVT protobuf")
}

fn layer_names(tile: &Tile) -> Vec<String> {
    tile.layers.iter().map(|l| l.name.clone()).collect()
}

#[test]
fn health_answers_ok() {
    let r = server().get("/health", &[]);
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["status"], "ok");
    // The first start logged one `reload` per ingested layer, and this server has applied
    // all of them.
    let log = &body["log"];
    assert!(log["head"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(log["applied"], log["head"], "{body}");
    assert_eq!(log["behind"], 0, "{body}");
}

#[test]
fn the_catalog_lists_every_layer_with_the_stores_count_and_bounds() {
    let s = server();
    let r = s.get("/catalog", &[]);
    assert_eq!(r.status, 200);
    let body = r.json();
    let layers = body["layers"].as_array().unwrap();
    assert_eq!(layers.len(), s.data.layers().len());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for l in layers {
        let id = urbantile::model::LayerId::new(l["id"].as_str().unwrap()).unwrap();
        let stats = rt.block_on(s.data.store().stats(&id)).unwrap();
        assert_eq!(l["count"].as_u64().unwrap(), stats.count, "{id}");
        assert!(stats.count > 0, "layer {id} is empty");
        let b = l["bounds"].as_array().unwrap();
        let want = stats.bounds.unwrap().to_array();
        for i in 0..4 {
            assert!(
                (b[i].as_f64().unwrap() - want[i]).abs() < 1e-9,
                "{id} bounds"
            );
        }
        for key in ["title", "geometry", "minzoom", "maxzoom"] {
            assert!(!l[key].is_null(), "{id} lacks {key}");
        }
    }
}

#[test]
fn a_tile_is_mvt_with_an_etag_and_cache_headers() {
    let r = server().get(&format!("/tiles/buildings,roads/{CENTRE_Z16}.mvt"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.mapbox-vector-tile")
    );
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.header("etag").unwrap().starts_with('"'));
    assert!(r.header("cache-control").unwrap().contains("max-age"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let tile = decode(&r.body);
    assert_eq!(layer_names(&tile), ["buildings", "roads"]);
    for layer in &tile.layers {
        assert_eq!(layer.version, 2);
        assert_eq!(layer.extent, Some(4096));
        assert!(!layer.features.is_empty());
    }
}

#[test]
fn gzip_is_used_when_accepted_and_holds_the_same_tile() {
    let path = format!("/tiles/buildings,roads,zoning/{CENTRE_Z16}.mvt");
    let plain = server().get(&path, &[]);
    let zipped = server().get(&path, &[("Accept-Encoding", "gzip, deflate, br")]);
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    assert!(zipped.body.len() < plain.body.len());
    assert_eq!(gunzip(&zipped.body), plain.body);
    assert_eq!(zipped.header("etag"), plain.header("etag"));
}

#[test]
fn zstd_is_preferred_when_accepted_cached_as_served_and_holds_the_same_tile() {
    // Not used by any other test, so that the first answer is a cache miss.
    let path = format!("/tiles/buildings,roads,accidents,zoning/{CENTRE_Z16}.mvt");
    let chrome = [("Accept-Encoding", "gzip, deflate, br, zstd")];
    let miss = server().get(&path, &chrome);
    let hit = server().get(&path, &chrome);
    let plain = server().get(&path, &[]);
    let zipped = server().get(&path, &[("Accept-Encoding", "gzip")]);
    for r in [&miss, &hit] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("zstd"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("etag"), plain.header("etag"));
        // An independent decoder (pure Rust, not the C library that encoded it).
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut ruzstd::decoding::StreamingDecoder::new(&r.body[..]).unwrap(),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, plain.body);
        assert!(r.body.len() < zipped.body.len(), "zstd larger than gzip");
    }
    assert_eq!(miss.body, hit.body);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&zipped.body), plain.body);
    // Refused with q=0, zstd is not sent.
    let no = server().get(&path, &[("Accept-Encoding", "zstd;q=0, gzip")]);
    assert_eq!(no.header("content-encoding"), Some("gzip"));
}

#[test]
fn a_matching_etag_gets_304_and_another_gets_the_tile() {
    let path = format!("/tiles/roads/{CENTRE_Z16}.mvt");
    let first = server().get(&path, &[]);
    let etag = first.header("etag").unwrap().to_owned();
    let again = server().get(&path, &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = server().get(&path, &[("If-None-Match", "\"0000000000000000\"")]);
    assert_eq!(other.status, 200);
    assert_eq!(other.body, first.body);
}

#[test]
fn the_same_tile_has_the_same_bytes_every_time() {
    let path = format!("/tiles/buildings,roads,accidents/{CENTRE_Z16}.mvt");
    let a = server().get(&path, &[]);
    let b = server().get(&path, &[]);
    assert_eq!(a.body, b.body);
}

#[test]
fn a_tile_without_features_is_204() {
    // Far out at sea, and buildings below their minzoom.
    for path in ["/tiles/roads/14/0/0.mvt", "/tiles/buildings/10/582/296.mvt"] {
        let r = server().get(path, &[]);
        assert_eq!(r.status, 204, "{path}");
        assert!(r.body.is_empty());
    }
}

#[test]
fn overzoomed_tiles_still_have_the_features() {
    // z18 is above every layer's maxzoom of 16: served from the maxzoom data.
    let r = server().get("/tiles/buildings/18/149236/75878.mvt", &[]);
    assert_eq!(r.status, 200);
    assert!(!decode(&r.body).layers[0].features.is_empty());
}

#[test]
fn a_composite_tile_has_one_layer_per_requested_layer_in_request_order() {
    let r = server().get(
        &format!("/tiles/zoning,buildings,roads/{CENTRE_Z16}.mvt"),
        &[],
    );
    assert_eq!(
        layer_names(&decode(&r.body)),
        ["zoning", "buildings", "roads"]
    );
}

#[test]
fn datetime_filters_timed_layers_only() {
    let path = "/tiles/accidents,roads/14/9327/4742.mvt";
    let all = decode(&server().get(path, &[]).body);
    let before = decode(
        &server()
            .get(&format!("{path}?datetime=../1990-01-01T00:00:00Z"), &[])
            .body,
    );
    let count = |t: &Tile, name: &str| {
        t.layers
            .iter()
            .find(|l| l.name == name)
            .map_or(0, |l| l.features.len())
    };
    assert!(count(&all, "accidents") > 0);
    assert_eq!(count(&before, "accidents"), 0);
    assert_eq!(count(&before, "roads"), count(&all, "roads"));
}

fn assert_error(path: &str, status: u16, mentions: &str) {
    let r = server().get(path, &[]);
    assert_eq!(
        r.status,
        status,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let body = r.json();
    assert!(body["code"].is_string(), "{path}");
    let d = body["description"].as_str().unwrap();
    assert!(
        d.contains(mentions),
        "{path}: {d:?} should mention {mentions:?}"
    );
}

#[test]
fn bad_tile_requests_get_400_saying_what_is_wrong() {
    assert_error("/tiles/roads/25/0/0.mvt", 400, "zoom 25");
    assert_error("/tiles/roads/3/8/0.mvt", 400, "x 8");
    assert_error("/tiles/roads/3/0/8.mvt", 400, "y 8");
    assert_error("/tiles/roads/a/0/0.mvt", 400, "z \"a\"");
    assert_error("/tiles/roads/1/-1/0.mvt", 400, "x \"-1\"");
    assert_error("/tiles/roads/99999999999999999999/0/0.mvt", 400, "z");
    assert_error("/tiles/roads/14/0/0.mvt?colour=red", 400, "colour");
    assert_error(
        "/tiles/roads/14/0/0.mvt?datetime=yesterday",
        400,
        "datetime",
    );
    assert_error("/tiles/roads,roads/14/0/0.mvt", 400, "twice");
}

#[test]
fn unknown_things_get_404_naming_them() {
    assert_error("/tiles/castles/14/0/0.mvt", 404, "castles");
    assert_error("/tiles/roads,castles/14/0/0.mvt", 404, "castles");
    assert_error("/tiles/castles.json", 404, "castles");
    assert_error("/tiles/roads/14/0/0.png", 404, ".mvt");
    assert_error("/nothing/here", 404, "route");
}

#[test]
fn tilejson_describes_the_layers_and_points_at_this_server() {
    let s = server();
    let r = s.get("/tiles/buildings,accidents.json", &[]);
    assert_eq!(r.status, 200);
    let tj = r.json();
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(
        tj["tiles"][0],
        format!(
            "{}/tiles/buildings,accidents/{{z}}/{{x}}/{{y}}.mvt",
            s.base_url()
        )
    );
    let layers = tj["vector_layers"].as_array().unwrap();
    assert_eq!(layers[0]["id"], "buildings");
    assert_eq!(layers[0]["minzoom"], 14);
    assert_eq!(layers[0]["fields"]["name"], "String");
    assert_eq!(layers[1]["fields"]["vehicles"], "Number");
    // The time a client can filter by, with `?datetime=`.
    assert!(layers[0].get("time").is_none());
    assert_eq!(layers[1]["time"]["start"], "occurred_at");
    let extent = layers[1]["time"]["extent"].as_array().unwrap();
    assert!(extent[0].as_str().unwrap() < extent[1].as_str().unwrap());
    assert!(tj["query_parameters"]["datetime"].is_string());
    assert!(
        s.get("/tiles/buildings.json", &[])
            .json()
            .get("query_parameters")
            .is_none()
    );
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        b[0] > 24.9 && b[2] < 25.0 && b[1] > 60.1 && b[3] < 60.2,
        "{b:?}"
    );
    let c = tj["center"].as_array().unwrap();
    assert!(c[0].as_f64().unwrap() > b[0] && c[0].as_f64().unwrap() < b[2]);
}

#[test]
fn odd_requests_never_get_a_server_error() {
    let paths = [
        "/tiles//0/0/0.mvt",
        "/tiles/roads/0/0/.mvt",
        "/tiles/roads/0/0/0.mvt.mvt",
        "/tiles/%00/0/0/0.mvt",
        "/tiles/roads/0/0/0.mvt?datetime=2026-13-01",
        "/tiles/roads/0/0/0.mvt?datetime=../..",
        "/tiles/roads/0/0/0.mvt?datetime=2026-02-01/2026-01-01",
        "/tiles/roads/24/16777215/16777215.mvt",
        "/tiles/roads/0/0/0.mvt?datetime=%ff",
        "/tiles/,/0/0/0.mvt",
        "/tiles/.json",
        "/catalog?x=1",
    ];
    for p in paths {
        let r = server().get(p, &[]);
        assert!(r.status < 500, "{p} -> {}", r.status);
    }
}

/// A server with two layers: public schools and private accidents.
fn with_private_accidents() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools"], &["accidents"]);
    let s = TestServer::start(&layers);
    (dir, s)
}

#[test]
fn a_private_layer_is_invisible_on_every_route() {
    let (_dir, s) = with_private_accidents();
    let catalog = s.get("/catalog", &[]).json();
    let ids: Vec<&str> = catalog["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["schools"]);
    for path in [
        "/tiles/accidents/14/9327/4742.mvt",
        "/tiles/schools,accidents/14/9327/4742.mvt",
        "/tiles/accidents.json",
        "/collections/accidents",
        "/collections/accidents/items",
        "/collections/accidents/queryables",
        "/collections/accidents/nearest?point=24.94,60.17",
    ] {
        assert_eq!(s.get(path, &[]).status, 404, "{path}");
    }
    for path in ["/collections", "/style.json", "/api"] {
        let body = String::from_utf8(s.get(path, &[]).body).unwrap();
        assert!(
            !body.contains("accidents"),
            "{path} mentions the private layer"
        );
    }
}

#[test]
fn a_key_with_the_read_scope_sees_a_private_layer_and_a_wrong_key_gets_401() {
    use urbantile::auth::{KeyInfo, Scope, hash_key};
    let (_dir, s) = with_private_accidents();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let add = |name: &str, read: &str, secret: &str| {
        let info = KeyInfo {
            name: name.into(),
            read: Scope::parse(read, s.data.layers()).unwrap(),
            write: Scope::from_stored("-"),
            created_at: 0,
            revoked_at: None,
        };
        rt.block_on(s.data.store().add_key(&info, &hash_key(secret)))
            .unwrap();
    };
    add("analysts", "accidents", "ut_analysts");
    add("schools-only", "schools", "ut_schools");
    let bearer = |k: &str| format!("Bearer {k}");
    let with = |path: &str, k: &str| s.get(path, &[("Authorization", &bearer(k))]);
    for path in [
        "/tiles/accidents/14/9327/4742.mvt",
        "/tiles/accidents.json",
        "/collections/accidents/items",
    ] {
        assert_eq!(with(path, "ut_analysts").status, 200, "{path}");
        assert_eq!(with(path, "ut_schools").status, 404, "{path}");
    }
    let catalog = with("/catalog", "ut_analysts").json();
    assert_eq!(catalog["layers"].as_array().unwrap().len(), 2);
    for (k, path) in [
        ("ut_wrong", "/catalog"),
        ("ut_wrong", "/tiles/schools/14/9327/4742.mvt"),
    ] {
        let r = with(path, k);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(
        s.get("/catalog", &[("Authorization", "Basic abc")]).status,
        401
    );
    rt.block_on(s.data.store().revoke_key("analysts", 1))
        .unwrap();
    // A key is taken as the store last confirmed it for up to KEY_FRESH.
    std::thread::sleep(urbantile::dataset::KEY_FRESH + std::time::Duration::from_millis(50));
    assert_eq!(
        with("/collections/accidents/items", "ut_analysts").status,
        401
    );
}

#[test]
fn the_cache_buster_v_changes_the_url_but_not_the_tile() {
    let s = server();
    let plain = s.get(&format!("/tiles/buildings/{CENTRE_Z16}.mvt"), &[]);
    let busted = s.get(&format!("/tiles/buildings/{CENTRE_Z16}.mvt?v=42"), &[]);
    assert_eq!(busted.status, 200);
    assert_eq!(plain.body, busted.body);
    assert_eq!(plain.header("etag"), busted.header("etag"));
}

#[test]
fn ping_answers_a_fixed_body_of_the_size_asked() {
    let s = server();
    let r = s.get("/ping", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    let r = s.get("/ping?bytes=30000", &[]);
    assert_eq!(r.body.len(), 30000);
    assert_eq!(s.get("/ping?bytes=2000000", &[]).status, 400);
    assert_eq!(s.get("/ping?size=1", &[]).status, 400);
}
