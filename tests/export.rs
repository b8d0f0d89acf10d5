//! Items as files, over a real socket: `f=fgb` read by GDAL (from a file and straight from
//! the server) and `f=csv` read by Python's csv and shapely, each equal to the GeoJSON
//! answer of the same query (`tests/check_export.py`), with filters; `limit` and the bound
//! on a file's features; bad `f`; and `OPTIONS` as QGIS asks it before editing.

mod common;

fn text(r: &common::Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

use std::process::Command;

use common::{TestServer, root};

fn check(s: &TestServer, layer: &str, query: &str) -> usize {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(root().join("tests/check_export.py"))
        .args([&s.base_url(), layer, query])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{layer}?{query}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn flatgeobuf_and_csv_hold_the_json_answer_filters_included() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(
        dir.path(),
        &["buildings", "roads", "accidents", "designed_buildings"],
        &[],
    );
    let s = TestServer::start(&layers);
    // Polygons and multipolygons with numbers and names with colons; lines with integers;
    // points with date-times; a CQL2 filter, a bbox, a property subset and an order.
    let bbox = "bbox=24.940,60.166,24.948,60.171";
    assert!(check(&s, "buildings", bbox) > 100);
    assert!(
        check(
            &s,
            "roads",
            &format!("{bbox}&properties=name,maxspeed,lanes&sortby=-maxspeed")
        ) > 50
    );
    // The whole layer: several runs of the stream.
    assert!(check(&s, "roads", "") > 2000);
    let all = check(&s, "accidents", "");
    let serious = check(
        &s,
        "accidents",
        "filter=severity%3D%27serious%27%20AND%20vehicles%3E%3D2",
    );
    assert!(serious > 0 && serious < all, "{serious} of {all}");
    let since = check(
        &s,
        "accidents",
        "datetime=2026-06-01T00:00:00Z/..&sortby=-occurred_at",
    );
    assert!(since < all, "{since} of {all}");
    assert!(check(&s, "designed_buildings", "") > 0);
}

#[test]
fn a_file_is_the_whole_result_up_to_the_bound_then_pages() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools"], &[]);
    let s = TestServer::start_configured(&layers, Default::default(), |st| st.max_export = 7);
    let matched = s.get("/collections/schools/items?limit=1", &[]).json()["numberMatched"]
        .as_u64()
        .unwrap();
    assert!(matched > 7);
    let rows = |r: &common::Response| text(r).lines().count() - 1;
    // No limit: up to the bound, with a link to the rest.
    let r = s.get("/collections/schools/items?f=csv", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(rows(&r), 7);
    assert_eq!(r.header("ogc-numbermatched").unwrap(), matched.to_string());
    assert_eq!(r.header("ogc-numberreturned").unwrap(), "7");
    let link = r.header("link").unwrap();
    assert!(
        link.contains("offset=7") && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("schools.csv")
    );
    // A smaller limit holds; a larger one is clamped to the bound; offset pages.
    assert_eq!(
        rows(&s.get("/collections/schools/items?f=csv&limit=3", &[])),
        3
    );
    assert_eq!(
        rows(&s.get("/collections/schools/items?f=csv&limit=1000", &[])),
        7
    );
    let last = s.get(
        &format!("/collections/schools/items?f=csv&offset={}", matched - 2),
        &[],
    );
    assert_eq!(rows(&last), 2);
    assert!(last.header("link").is_none());
    // Nothing matched: a file with its head only.
    let none = s.get("/collections/schools/items?f=fgb&bbox=0,0,0.001,0.001", &[]);
    assert_eq!(none.status, 200);
    assert_eq!(&none.body[..3], b"fgb");
    assert_eq!(none.header("ogc-numberreturned").unwrap(), "0");
}

#[test]
fn bad_formats_and_queries_are_400s_that_say_what() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools"], &[]);
    let s = TestServer::start(&layers);
    let r = s.get("/collections/schools/items?f=shp", &[]);
    assert_eq!(r.status, 400);
    let d = r.json()["description"].as_str().unwrap().to_owned();
    for word in ["\"shp\"", "json", "html", "fgb", "csv"] {
        assert!(d.contains(word), "{d}");
    }
    let r = s.get("/collections/schools/items?f=fgb&limit=0", &[]);
    assert_eq!(r.status, 400);
    let r = s.get("/collections/schools/items?f=csv&filter=colour%3D1", &[]);
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("colour"), "{}", text(&r));
    assert_eq!(s.get("/collections/nope/items?f=fgb", &[]).status, 404);
}

#[test]
fn options_tell_qgis_which_methods_a_reader_may_use() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools", "parks"], &["zoning"]);
    let s = TestServer::start(&layers);
    let writer = s.add_key("writer", "-", "schools");
    let auth = format!("Bearer {writer}");
    let allow = |path: &str, headers: &[(&str, &str)]| {
        let r = s.request("OPTIONS", path, headers, b"");
        assert_eq!(r.status, 200, "{path}: {}", text(&r));
        r.header("allow").unwrap().to_owned()
    };
    assert_eq!(
        allow("/collections/schools/items", &[("Authorization", &auth)]),
        "GET, HEAD, POST, OPTIONS"
    );
    assert_eq!(
        allow("/collections/schools/items/1", &[("Authorization", &auth)]),
        "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
    );
    // Without a key, or for a layer the key may not write: read only.
    assert_eq!(
        allow("/collections/schools/items", &[]),
        "GET, HEAD, OPTIONS"
    );
    assert_eq!(
        allow("/collections/parks/items/1", &[("Authorization", &auth)]),
        "GET, HEAD, OPTIONS"
    );
    // A private layer stays hidden; a bad key is told so.
    assert_eq!(
        s.request("OPTIONS", "/collections/zoning/items", &[], b"")
            .status,
        404
    );
    assert_eq!(
        s.request(
            "OPTIONS",
            "/collections/schools/items",
            &[("Authorization", "Bearer nope")],
            b""
        )
        .status,
        401
    );
}
