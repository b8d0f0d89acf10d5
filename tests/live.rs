//! Live data over a real socket: feature writes (OGC API - Features Part 4) with keys, ETags
//! and validation; the tile cache staying exact under writes; the change feed; a bulk
//! replace from the command line reaching a running server; concurrent writers.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Response, TestServer, all_at_once, root, tile_of, urbantile_bin};
use geozero::mvt::{Message, Tile};
use serde_json::{Value, json};

/// A server over copies of some bundled layers; `accidents` is made private.
fn live_server(max_body: Option<usize>) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(
        dir.path(),
        &["schools", "urban_problems", "traffic_jams"],
        &["accidents"],
    );
    let s = match max_body {
        Some(n) => TestServer::start_with_body_limit(&layers, n),
        None => TestServer::start(&layers),
    };
    (dir, s)
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn send(s: &TestServer, method: &str, path: &str, key: Option<&str>, body: &Value) -> Response {
    send_with(s, method, path, key, body, &[])
}

fn send_with(
    s: &TestServer,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> Response {
    let auth = key.map(bearer);
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/geo+json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    headers.extend_from_slice(extra);
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    s.request(method, path, &headers, &bytes)
}

fn problem(lon: f64, lat: f64, status: &str) -> Value {
    json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "ticket_no": "UP-TEST",
            "category": "pothole",
            "status": status,
            "description": "test report",
            "reported_at": "2026-11-20T10:00:00Z",
        }
    })
}

fn count(s: &TestServer, layer: &str, key: Option<&str>) -> u64 {
    let auth = key.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = s.get(&format!("/collections/{layer}/items?limit=1"), &headers);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["numberMatched"].as_u64().unwrap()
}

/// Ids and properties of one layer of a tile (identity encoding; 204 is no features).
fn tile_features(
    s: &TestServer,
    layers: &str,
    t: (u8, u32, u32),
) -> HashMap<u64, HashMap<String, String>> {
    let r = s.get(&format!("/tiles/{layers}/{}/{}/{}.mvt", t.0, t.1, t.2), &[]);
    let mut out = HashMap::new();
    if r.status == 204 {
        return out;
    }
    assert_eq!(r.status, 200);
    let tile = Tile::decode(&r.body[..]).unwrap();
    for layer in &tile.layers {
        for f in &layer.features {
            let mut props = HashMap::new();
            for pair in f.tags.chunks(2) {
                let k = layer.keys[pair[0] as usize].clone();
                let v = &layer.values[pair[1] as usize];
                let v = v
                    .string_value
                    .clone()
                    .or(v.double_value.map(|d| d.to_string()))
                    .or(v.int_value.map(|d| d.to_string()))
                    .unwrap_or_default();
                props.insert(k, v);
            }
            out.insert(f.id.unwrap(), props);
        }
    }
    out
}

fn path_of(location: &str) -> String {
    let rest = location.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

#[test]
fn writes_need_a_key_with_the_write_scope_and_private_layers_stay_hidden() {
    let (_d, s) = live_server(None);
    let writer = s.add_key("writer", "-", "urban_problems");
    let reader = s.add_key("reader", "accidents", "-");
    let before = count(&s, "urban_problems", None);
    let body = problem(24.94, 60.17, "new");
    let routes = [
        ("POST", "/collections/urban_problems/items".to_owned()),
        ("PUT", "/collections/urban_problems/items/1".to_owned()),
        ("PATCH", "/collections/urban_problems/items/1".to_owned()),
        ("DELETE", "/collections/urban_problems/items/1".to_owned()),
    ];
    for (method, path) in &routes {
        let r = send(&s, method, path, None, &body);
        assert_eq!(r.status, 401, "{method} {path} without a key");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(send(&s, method, path, Some("ut_wrong"), &body).status, 401);
        let r = send(&s, method, path, Some(&reader), &body);
        assert_eq!(r.status, 403, "{method} {path} with a read-only key");
        assert!(
            r.json()["description"]
                .as_str()
                .unwrap()
                .contains("urban_problems")
        );
        let other = path.replace("urban_problems", "schools");
        assert_eq!(send(&s, method, &other, Some(&writer), &body).status, 403);
        // The private layer: unknown to a key without its scope, 401 without a key.
        let private = path.replace("urban_problems", "accidents");
        assert_eq!(send(&s, method, &private, None, &body).status, 401);
        assert_eq!(send(&s, method, &private, Some(&writer), &body).status, 404);
    }
    assert_eq!(count(&s, "urban_problems", None), before);
    // A private layer's tile, cached for a reader with the scope, is still 404 to others.
    let (_, x, y) = tile_of(24.9410, 60.1700, 14);
    let private_tile = format!("/tiles/accidents/14/{x}/{y}.mvt");
    let with_key = s.get(&private_tile, &[("Authorization", &bearer(&reader))]);
    assert_eq!(with_key.status, 200);
    assert!(
        with_key
            .header("cache-control")
            .unwrap()
            .starts_with("private")
    );
    assert_eq!(s.get(&private_tile, &[]).status, 404);
    assert_eq!(s.get(&format!("{private_tile}?v=1"), &[]).status, 404);
    assert_eq!(
        s.get(&private_tile, &[("Authorization", &bearer(&writer))])
            .status,
        404
    );
    // Reading the private layer's changes needs the scope too.
    assert_eq!(s.get("/changes?layers=accidents", &[]).status, 404);
    assert_eq!(s.get("/collections/accidents/items", &[]).status, 404);
    assert_eq!(
        s.get(
            "/collections/accidents/items",
            &[("Authorization", &bearer(&reader))]
        )
        .status,
        200
    );
}

#[test]
fn a_feature_goes_through_create_replace_patch_and_delete_with_etags() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems");
    let (lon, lat) = (24.9452, 60.1687);
    let t = tile_of(lon, lat, 16);
    let tile_path = format!("/tiles/urban_problems/{}/{}/{}.mvt", t.0, t.1, t.2);
    let tile_etag = |s: &TestServer| s.get(&tile_path, &[]).header("etag").map(str::to_owned);
    let before = tile_features(&s, "urban_problems", t);
    let etag0 = tile_etag(&s);

    let r = send(
        &s,
        "POST",
        "/collections/urban_problems/items",
        Some(&key),
        &problem(lon, lat, "new"),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let location = r.header("location").unwrap().to_owned();
    let etag = r.header("etag").unwrap().to_owned();
    let id = r.json()["id"].as_u64().unwrap();
    assert!(location.ends_with(&format!("/collections/urban_problems/items/{id}")));
    let item = path_of(&location);
    let got = s.get(&item, &[]);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    assert_eq!(got.json()["properties"]["status"], "new");
    assert_eq!(got.json()["geometry"]["coordinates"], json!([lon, lat]));
    assert_eq!(s.get(&item, &[("If-None-Match", &etag)]).status, 304);
    // The tile, cached before the write, shows the new feature and has a new ETag.
    let now = tile_features(&s, "urban_problems", t);
    assert_eq!(now.len(), before.len() + 1);
    assert_eq!(now[&id]["status"], "new");
    assert_ne!(tile_etag(&s), etag0);

    // A stale If-Match changes nothing.
    let r = send_with(
        &s,
        "PUT",
        &item,
        Some(&key),
        &problem(lon, lat, "closed"),
        &[("If-Match", "\"0000\"")],
    );
    assert_eq!(r.status, 412);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(s.get(&item, &[]).json()["properties"]["status"], "new");
    assert_eq!(tile_features(&s, "urban_problems", t)[&id]["status"], "new");

    let r = send_with(
        &s,
        "PUT",
        &item,
        Some(&key),
        &problem(lon, lat, "in_progress"),
        &[("If-Match", &etag)],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let etag2 = r.header("etag").unwrap().to_owned();
    assert_ne!(etag2, etag);
    assert_eq!(
        tile_features(&s, "urban_problems", t)[&id]["status"],
        "in_progress"
    );

    // PATCH: a merge patch; the old ETag no longer matches.
    let patch = json!({"properties": {"status": "resolved", "description": null}});
    let r = send_with(
        &s,
        "PATCH",
        &item,
        Some(&key),
        &patch,
        &[("If-Match", &etag)],
    );
    assert_eq!(r.status, 412);
    // If-Match compares strongly: the weak form of the current tag does not match.
    let weak = format!("W/{etag2}");
    let r = send_with(
        &s,
        "PATCH",
        &item,
        Some(&key),
        &patch,
        &[("If-Match", &weak)],
    );
    assert_eq!(r.status, 412);
    let r = send_with(
        &s,
        "PATCH",
        &item,
        Some(&key),
        &patch,
        &[("If-Match", &etag2)],
    );
    assert_eq!(r.status, 200);
    let doc = s.get(&item, &[]).json();
    assert_eq!(doc["properties"]["status"], "resolved");
    assert!(doc["properties"].get("description").is_none());
    assert_eq!(doc["properties"]["category"], "pothole");
    let f = &tile_features(&s, "urban_problems", t)[&id];
    assert_eq!(f["status"], "resolved");
    assert!(!f.contains_key("description"));

    // Moving it out of the tile takes it out of that tile and into the other.
    let far = (24.9300, 60.1600);
    let r = send(
        &s,
        "PATCH",
        &item,
        Some(&key),
        &json!({"geometry": {"type": "Point", "coordinates": [far.0, far.1]}}),
    );
    assert_eq!(r.status, 200);
    assert!(!tile_features(&s, "urban_problems", t).contains_key(&id));
    assert!(tile_features(&s, "urban_problems", tile_of(far.0, far.1, 16)).contains_key(&id));

    let r = send(&s, "DELETE", &item, Some(&key), &Value::Null);
    assert_eq!(r.status, 204);
    assert_eq!(s.get(&item, &[]).status, 404);
    // A precondition on a feature that is gone fails; without one, it is not found.
    let r = send_with(
        &s,
        "PUT",
        &item,
        Some(&key),
        &problem(lon, lat, "x"),
        &[("If-Match", "*")],
    );
    assert_eq!(r.status, 412);
    assert_eq!(
        send(&s, "DELETE", &item, Some(&key), &Value::Null).status,
        404
    );
    assert!(!tile_features(&s, "urban_problems", tile_of(far.0, far.1, 16)).contains_key(&id));
    assert_eq!(tile_features(&s, "urban_problems", t), before);
    assert_eq!(
        tile_etag(&s),
        etag0,
        "the tile is back to its bytes, so to its ETag"
    );
}

#[test]
fn bad_writes_get_an_error_naming_feature_and_field_and_change_nothing() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems");
    let items = "/collections/urban_problems/items";
    let before = count(&s, "urban_problems", None);
    let check = |r: Response, status: u16, mentions: &[&str]| {
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, status, "{body}");
        for m in mentions {
            assert!(body.contains(m), "{body} should mention {m}");
        }
    };
    // (member, property or "" for the member itself, bad value, what the error names)
    let line = json!({"type": "LineString", "coordinates": [[24.94, 60.17], [24.95, 60.18]]});
    let cases = [
        ("geometry", "", line, &["geometry", "line"][..]),
        ("properties", "colour", json!("red"), &["colour"][..]),
        ("properties", "status", json!(5), &["status", "string"][..]),
        (
            "properties",
            "reported_at",
            json!("yesterday"),
            &["reported_at"][..],
        ),
    ];
    for (member, name, value, mentions) in &cases {
        let mut bad = problem(24.94, 60.17, "new");
        if name.is_empty() {
            bad[*member] = value.clone();
        } else {
            bad[*member][*name] = value.clone();
        }
        check(send(&s, "POST", items, Some(&key), &bad), 422, mentions);
    }
    let mut extra = problem(24.94, 60.17, "new");
    extra["properties"]["colour"] = json!("red");
    let outside = problem(200.0, 60.17, "new");
    check(
        send(&s, "POST", items, Some(&key), &outside),
        422,
        &["longitude"],
    );
    // One bad feature in a collection: none is written, and the error names it.
    let batch = json!({"type": "FeatureCollection", "features": [
        problem(24.94, 60.17, "new"), problem(24.941, 60.17, "new"), extra, problem(24.942, 60.17, "new"),
    ]});
    check(
        send(&s, "POST", items, Some(&key), &batch),
        422,
        &["feature 2", "colour"],
    );
    check(
        send(
            &s,
            "POST",
            items,
            Some(&key),
            &json!({"type": "FeatureCollection", "features": []}),
        ),
        422,
        &["no features"],
    );
    let auth = bearer(&key);
    check(
        s.request(
            "POST",
            items,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/geo+json"),
            ],
            b"{\"type\": \"Feature\", ",
        ),
        400,
        &["GeoJSON"],
    );
    check(
        s.request(
            "POST",
            items,
            &[("Authorization", &auth), ("Content-Type", "text/csv")],
            b"a,b",
        ),
        415,
        &["application/geo+json"],
    );
    check(
        send(
            &s,
            "PUT",
            &format!("{items}/abc"),
            Some(&key),
            &problem(24.94, 60.17, "x"),
        ),
        404,
        &["abc"],
    );
    check(
        send(
            &s,
            "PATCH",
            &format!("{items}/999999"),
            Some(&key),
            &json!({"properties": {}}),
        ),
        404,
        &["999999"],
    );
    let first = s.get(&format!("{items}?limit=1"), &[]).json()["features"][0]["id"]
        .as_u64()
        .unwrap();
    let one = format!("{items}/{first}");
    let unchanged = s.get(&one, &[]).body;
    check(
        send(&s, "PATCH", &one, Some(&key), &json!({"colour": 1})),
        422,
        &["colour"],
    );
    let at = format!("feature id {first}");
    check(
        send(
            &s,
            "PATCH",
            &one,
            Some(&key),
            &json!({"properties": {"status": []}}),
        ),
        422,
        &["status", &at],
    );
    let nothing = json!({"type": "Feature", "geometry": null, "properties": {}});
    check(
        send(&s, "PUT", &one, Some(&key), &nothing),
        422,
        &["geometry"],
    );
    assert_eq!(s.get(&one, &[]).body, unchanged);
    assert_eq!(count(&s, "urban_problems", None), before);
    // A whole valid collection goes in at once.
    let batch = json!({"type": "FeatureCollection", "features": [
        problem(24.94, 60.17, "new"), problem(24.941, 60.17, "new"),
    ]});
    let r = send(&s, "POST", items, Some(&key), &batch);
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["numberCreated"], 2);
    assert_eq!(count(&s, "urban_problems", None), before + 2);
}

fn zone(rings: Value) -> Value {
    json!({
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": rings},
        "properties": {"name": "test zone"}
    })
}

/// The stored geometry of a feature, read back through the API.
fn stored_geometry(s: &TestServer, path: &str) -> geo::Geometry<f64> {
    let r = s.get(path, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let g: geojson::Geometry = serde_json::from_value(r.json()["geometry"].clone()).unwrap();
    g.try_into().unwrap()
}

#[test]
fn an_invalid_polygon_gets_422_saying_it_can_be_repaired_and_is_stored_valid_with_repair_true() {
    use geo::{Area, Validation};
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["toll_zones"], &[]);
    let s = TestServer::start(&layers);
    let key = s.add_key("w", "-", "toll_zones");
    let items = "/collections/toll_zones/items";
    let before = count(&s, "toll_zones", None);
    // A 0.01 x 0.01 degree bow-tie: two triangles of a quarter of the square each.
    let bowtie = zone(json!([[
        [24.94, 60.17],
        [24.95, 60.18],
        [24.95, 60.17],
        [24.94, 60.18],
        [24.94, 60.17]
    ]]));
    let r = send(&s, "POST", items, Some(&key), &bowtie);
    assert_eq!(r.status, 422);
    let said = r.json()["description"].as_str().unwrap().to_owned();
    assert!(
        said.contains("self-intersection")
            && said.ends_with("it can be repaired: resend with ?repair=true"),
        "{said}"
    );
    // Nothing with area left: no repair helps, and the answer says so.
    let flat = zone(json!([[
        [24.94, 60.17],
        [24.95, 60.18],
        [24.94, 60.17],
        [24.94, 60.17]
    ]]));
    for path in [items.to_owned(), format!("{items}?repair=true")] {
        let r = send(&s, "POST", &path, Some(&key), &flat);
        assert_eq!(r.status, 422);
        let said = r.json()["description"].as_str().unwrap().to_owned();
        assert!(
            said.contains("it cannot be repaired: no area is left"),
            "{said}"
        );
    }
    // Unknown parameters and values are 400, on every write.
    for (method, path) in [
        ("POST", format!("{items}?fix=true")),
        ("POST", format!("{items}?repair=yes")),
        ("PUT", format!("{items}/1?fix=true")),
        ("PATCH", format!("{items}/1?repair=1")),
        ("DELETE", format!("{items}/1?repair=true")),
    ] {
        let r = send(&s, method, &path, Some(&key), &bowtie);
        assert_eq!(r.status, 400, "{method} {path}");
    }
    assert_eq!(count(&s, "toll_zones", None), before);

    let r = send(
        &s,
        "POST",
        &format!("{items}?repair=true"),
        Some(&key),
        &bowtie,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let path = path_of(r.header("location").unwrap());
    let g = stored_geometry(&s, &path);
    assert!(g.is_valid(), "{:?}", g.validation_errors());
    assert!(
        matches!(&g, geo::Geometry::MultiPolygon(mp) if mp.0.len() == 2),
        "{g:?}"
    );
    assert!(
        (g.unsigned_area() - 0.5e-4).abs() < 1e-10,
        "{}",
        g.unsigned_area()
    );
    assert_eq!(count(&s, "toll_zones", None), before + 1);

    // PUT and PATCH refuse the same way and repair when asked.
    let overlapping = json!({
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[24.94, 60.17], [24.96, 60.17], [24.96, 60.19], [24.94, 60.19], [24.94, 60.17]]],
            [[[24.95, 60.18], [24.97, 60.18], [24.97, 60.20], [24.95, 60.20], [24.95, 60.18]]]
        ]},
        "properties": {"name": "test zone"}
    });
    let r = send(&s, "PUT", &path, Some(&key), &overlapping);
    assert_eq!(r.status, 422);
    assert!(
        r.json()["description"]
            .as_str()
            .unwrap()
            .contains("resend with ?repair=true")
    );
    let r = send(
        &s,
        "PUT",
        &format!("{path}?repair=true"),
        Some(&key),
        &overlapping,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let g = stored_geometry(&s, &path);
    assert!(
        g.is_valid() && matches!(g, geo::Geometry::Polygon(_)),
        "{g:?}"
    );
    assert!(
        (g.unsigned_area() - 7e-4).abs() < 1e-10,
        "{}",
        g.unsigned_area()
    );
    let patch = json!({"geometry": bowtie["geometry"]});
    assert_eq!(send(&s, "PATCH", &path, Some(&key), &patch).status, 422);
    let r = send(
        &s,
        "PATCH",
        &format!("{path}?repair=false"),
        Some(&key),
        &patch,
    );
    assert_eq!(r.status, 422);
    let r = send(
        &s,
        "PATCH",
        &format!("{path}?repair=true"),
        Some(&key),
        &patch,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(stored_geometry(&s, &path).is_valid());
}

#[test]
fn bodies_over_the_limit_get_413_and_cut_off_bodies_400() {
    let (_d, s) = live_server(Some(64 * 1024));
    let key = s.add_key("w", "-", "urban_problems");
    let items = "/collections/urban_problems/items";
    let before = count(&s, "urban_problems", None);
    let big = json!({"type": "FeatureCollection", "features": (0..600).map(|i| problem(24.9 + i as f64 * 1e-5, 60.17, "new")).collect::<Vec<_>>()});
    assert!(big.to_string().len() > 64 * 1024);
    let r = send(&s, "POST", items, Some(&key), &big);
    assert_eq!(r.status, 413);
    assert!(String::from_utf8_lossy(&r.body).contains("65536"));
    // Sent in chunks, without announcing its length.
    let mut stream = TcpStream::connect(s.addr).unwrap();
    let head = format!(
        "POST {items} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: application/geo+json\r\nTransfer-Encoding: chunked\r\n\r\n",
        bearer(&key)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let text = big.to_string();
    for piece in text.as_bytes().chunks(8192) {
        if stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .is_err()
        {
            break;
        }
        let _ = stream.write_all(piece);
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    let _ = BufReader::new(&stream).read_line(&mut answer);
    assert!(answer.contains(" 413 "), "{answer}");

    // A body that stops before its announced length.
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = problem(24.94, 60.17, "new").to_string();
    let head = format!(
        "POST {items} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: application/geo+json\r\nContent-Length: {}\r\n\r\n",
        bearer(&key),
        body.len() + 100
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert_eq!(count(&s, "urban_problems", None), before);
}

/// A `GET /changes` subscriber reading events off the socket.
struct Events {
    reader: BufReader<TcpStream>,
    /// Bytes of the current chunk not read yet.
    left: usize,
    pending: String,
}

#[derive(Debug, Clone)]
struct Event {
    id: Option<u64>,
    kind: String,
    data: Value,
}

impl Events {
    fn open(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Events {
        let stream = TcpStream::connect(s.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        (&stream).write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Events {
            reader,
            left: 0,
            pending: String::new(),
        }
    }

    /// The next event (keep-alive comments are skipped).
    fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut e = Event {
                    id: None,
                    kind: "message".into(),
                    data: Value::Null,
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        e.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        e.kind = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        e.data = serde_json::from_str(v.trim()).unwrap();
                        any = true;
                    }
                }
                if any {
                    return e;
                }
                continue;
            }
            // The body is chunked: a size line, the bytes, CRLF.
            if self.left == 0 {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                if size.trim().is_empty() {
                    continue;
                }
                self.left = usize::from_str_radix(size.trim(), 16).unwrap();
                assert!(self.left > 0, "the feed ended");
            }
            let mut buf = vec![0; self.left];
            self.reader.read_exact(&mut buf).unwrap();
            self.left = 0;
            self.pending.push_str(&String::from_utf8(buf).unwrap());
        }
    }
}

#[test]
fn the_change_feed_sends_every_edit_and_a_reconnect_gets_what_it_missed() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems,accidents");
    let items = "/collections/urban_problems/items";
    let mut feed = Events::open(&s, "/changes?layers=urban_problems", &[]);
    let mut everything = Events::open(&s, "/changes", &[]);

    let r = send(&s, "POST", items, Some(&key), &problem(24.94, 60.17, "new"));
    let id = r.json()["id"].as_u64().unwrap();
    let e = feed.next();
    assert_eq!(e.kind, "change");
    assert_eq!(e.data["kind"], "create");
    assert_eq!(e.data["layer"], "urban_problems");
    assert_eq!(e.data["id"], id);
    assert_eq!(e.data["bbox"], json!([24.94, 60.17, 24.94, 60.17]));
    let seen = e.id.unwrap();
    // An anonymous subscriber to everything never hears of the private layer.
    let secret = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
        "properties": {"severity": "minor", "occurred_at": "2026-11-20T10:00:00Z"}});
    let r = send(
        &s,
        "POST",
        "/collections/accidents/items",
        Some(&key),
        &secret,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(everything.next().data["id"], id);
    drop(feed);

    // Missed while away: an update, a move and a delete.
    let item = format!("{items}/{id}");
    send(
        &s,
        "PATCH",
        &item,
        Some(&key),
        &json!({"properties": {"status": "resolved"}}),
    );
    send(
        &s,
        "PUT",
        &item,
        Some(&key),
        &problem(24.95, 60.18, "resolved"),
    );
    send(&s, "DELETE", &item, Some(&key), &Value::Null);
    let after = everything.next();
    assert_eq!(
        after.data["kind"], "update",
        "the private create was not sent"
    );
    let mut back = Events::open(
        &s,
        "/changes?layers=urban_problems",
        &[("Last-Event-ID", &seen.to_string())],
    );
    let kinds: Vec<(String, Value)> = (0..3)
        .map(|_| {
            let e = back.next();
            (
                e.data["kind"].as_str().unwrap().to_owned(),
                e.data["bbox"].clone(),
            )
        })
        .collect();
    assert_eq!(kinds[0].0, "update");
    assert_eq!(
        kinds[1],
        ("replace".to_owned(), json!([24.94, 60.17, 24.95, 60.18]))
    );
    assert_eq!(kinds[2].0, "delete");
    // And then live ones again.
    send(&s, "POST", items, Some(&key), &problem(24.94, 60.17, "new"));
    assert_eq!(back.next().data["kind"], "create");

    // A client further behind than the log reaches is told so, not silently skipped ahead;
    // so is one with an id this store never gave.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(s.data.store().prune_changes_through(seen + 2))
        .unwrap();
    let mut late = Events::open(
        &s,
        "/changes?layers=urban_problems",
        &[("Last-Event-ID", &seen.to_string())],
    );
    assert_eq!(late.next().kind, "reset");
    let mut stranger = Events::open(&s, "/changes", &[("Last-Event-ID", "99999999")]);
    assert_eq!(stranger.next().kind, "reset");
    assert_eq!(s.get("/changes?layers=nope", &[]).status, 404);
    assert_eq!(s.get("/changes?layer=urban_problems", &[]).status, 400);
    assert_eq!(
        s.get("/changes", &[("Last-Event-ID", "yesterday")]).status,
        400
    );
}

#[test]
fn a_replace_from_the_command_line_reaches_the_running_server_whole() {
    let (d, s) = live_server(None);
    let jams = "/collections/traffic_jams/items?limit=1";
    let old = count(&s, "traffic_jams", None);
    let file = d.path().join("jams.geojsonseq");
    let lines: Vec<String> =
        std::fs::read_to_string(root().join("fixtures/generated/traffic_jams.geojsonseq"))
            .unwrap()
            .lines()
            .take(7)
            .map(str::to_owned)
            .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let t = tile_of(24.94, 60.17, 12);
    let before = tile_features(&s, "traffic_jams", t);
    assert!(before.len() > 7);
    let mut feed = Events::open(&s, "/changes?layers=traffic_jams", &[]);

    // A reader polls all the while: it must see the old set or the new one, nothing else.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = s.addr;
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = common::http_get(addr, jams, &[]);
                seen.push(r.json()["numberMatched"].as_u64().unwrap());
            }
            seen
        })
    };
    let health = || s.get("/health", &[]).json()["log"].clone();
    let before_log = health();
    assert_eq!(before_log["behind"], 0, "{before_log}");
    assert_eq!(before_log["applied"], before_log["head"], "{before_log}");
    let out = std::process::Command::new(urbantile_bin())
        .args(["ingest", "traffic_jams"])
        .arg(&file)
        .arg("--replace")
        .arg("--layers")
        .arg(d.path().join("layers"))
        .arg("--database")
        .arg(s.database_url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = feed.next();
    assert_eq!(
        (e.data["kind"].as_str(), e.data["id"].clone()),
        (Some("reload"), Value::Null)
    );
    let started = Instant::now();
    while count(&s, "traffic_jams", None) != 7 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the server never saw the replace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // /health says how far this server has applied the log: the other process's one
    // `reload` entry, applied.
    let head = before_log["head"].as_u64().unwrap() + 1;
    let started = Instant::now();
    while health() != json!({"applied": head, "head": head, "behind": 0}) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/health log {} never reached {head}",
            health()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(
        seen.iter().all(|&n| n == old || n == 7),
        "a reader saw a mix: {seen:?}"
    );
    // The cached tile was dropped with the old set.
    let after = tile_features(&s, "traffic_jams", t);
    assert!(after.len() <= 7 && after.keys().all(|k| !before.contains_key(k)));
}

/// Creates sent at once share commits (see `dataset::live::group`); each answer still
/// names the feature its request sent, and every one is in the layer's tiles when answered.
#[test]
fn concurrent_creates_each_get_their_own_feature() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems");
    let before = count(&s, "urban_problems", None);
    let (threads, rounds) = (12, 5);
    let s = &s;
    let created: Vec<(u64, String)> = all_at_once(threads, rounds, |t, r| {
        let status = format!("c{t}-{r}");
        let (lon, lat) = (24.94 + t as f64 * 1e-3, 60.16 + r as f64 * 1e-3);
        let body = problem(lon, lat, &status);
        let path = "/collections/urban_problems/items";
        let res = send(s, "POST", path, Some(&key), &body);
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["id"].as_u64().unwrap();
        // Answered, so its tile has it already (z16: past the clusters).
        let shown = tile_features(s, "urban_problems", tile_of(lon, lat, 16));
        assert_eq!(
            shown.get(&id).map(|p| p["status"].as_str()),
            Some(status.as_str())
        );
        (id, status)
    });
    let ids: std::collections::HashSet<u64> = created.iter().map(|c| c.0).collect();
    assert_eq!(ids.len(), threads * rounds, "an id was given twice");
    for (id, status) in &created {
        let item = s.get(&format!("/collections/urban_problems/items/{id}"), &[]);
        assert_eq!(item.json()["properties"]["status"], status.as_str());
    }
    assert_eq!(
        count(s, "urban_problems", None),
        before + (threads * rounds) as u64
    );
}

#[test]
fn concurrent_writers_lose_no_update_and_no_tile_is_stale_after_an_answer() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems");
    let (lon, lat) = (24.9452, 60.1687);
    let r = send(
        &s,
        "POST",
        "/collections/urban_problems/items",
        Some(&key),
        &problem(lon, lat, "0"),
    );
    let item = path_of(r.header("location").unwrap());
    let id = r.json()["id"].as_u64().unwrap();
    // z16: past urban_problems' clusters, so the tile shows the feature's own status.
    let t = tile_of(lon, lat, 16);
    let s = &s;
    let (writers, rounds) = (4, 15);
    std::thread::scope(|scope| {
        for _ in 0..writers {
            let (key, item) = (key.clone(), item.clone());
            scope.spawn(move || {
                let mut done = 0;
                while done < rounds {
                    // Read, increment, write back only if nobody wrote in between.
                    let got = s.get(&item, &[]);
                    let n: u64 = got.json()["properties"]["status"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let etag = got.header("etag").unwrap().to_owned();
                    let patch = json!({"properties": {"status": (n + 1).to_string()}});
                    let r = send_with(
                        s,
                        "PATCH",
                        &item,
                        Some(&key),
                        &patch,
                        &[("If-Match", &etag)],
                    );
                    match r.status {
                        200 => {
                            done += 1;
                            // Answered, so every tile already shows n + 1 or later.
                            let shown: u64 = tile_features(s, "urban_problems", t)[&id]["status"]
                                .parse()
                                .unwrap();
                            assert!(shown > n, "a stale tile: {shown} after writing {}", n + 1);
                        }
                        412 => {}
                        other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
                    }
                }
            });
        }
    });
    let end = s.get(&item, &[]).json();
    assert_eq!(end["properties"]["status"], (writers * rounds).to_string());
}

/// Bytes of a tile as the server answers it, without compression.
fn served(s: &TestServer, layers: &str, t: (u8, u32, u32)) -> (Vec<u8>, Option<String>) {
    let r = s.get(&format!("/tiles/{layers}/{}/{}/{}.mvt", t.0, t.1, t.2), &[]);
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    (r.body.clone(), r.header("etag").map(str::to_owned))
}

/// The same tile encoded afresh from the index (and the clusters of its version),
/// bypassing the cache.
fn fresh(s: &TestServer, layers: &str, t: (u8, u32, u32)) -> Vec<u8> {
    use urbantile::composite::{TileLayer, render_tile_clustered};
    let layers: Vec<TileLayer> = layers
        .split(',')
        .map(|id| {
            let def = s.data.layer(id).unwrap();
            TileLayer {
                def,
                index: s.data.index().slot(&def.id),
                filter: None,
            }
        })
        .collect();
    let coord = urbantile::tiles::TileCoord {
        z: t.0,
        x: t.1,
        y: t.2,
    };
    let clusters: Vec<_> = layers
        .iter()
        .map(|l| s.data.tile_clusters(l.def, t.0, Default::default()))
        .collect();
    render_tile_clustered(&layers, &clusters, coord, None).bytes
}

#[test]
fn cached_tiles_stay_byte_equal_to_fresh_ones_through_random_writes() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems,traffic_jams");
    // Seeded, so that a failure replays.
    let mut rng = urbantile::generate::rng::Rng::new(11);
    let mut next = move |n: u64| rng.below(n);
    // Writes land in a 0.02 x 0.01 degree box in the centre; tiles are read at every zoom
    // the layers have, inside and around it.
    let spot = |next: &mut dyn FnMut(u64) -> u64| {
        (
            24.935 + next(2000) as f64 * 1e-5,
            60.165 + next(1000) as f64 * 1e-5,
        )
    };
    let mut tiles = Vec::new();
    for z in [12u8, 13, 14, 15, 16, 17] {
        // Four tiles a zoom around the box's centre (at high zooms, some miss the box).
        let (_, x, y) = tile_of(24.945, 60.170, z);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            tiles.push((z, x + dx - 1, y + dy - 1));
        }
    }
    let sets = [
        "urban_problems",
        "traffic_jams",
        "urban_problems,traffic_jams",
    ];
    type Seen = (Vec<u8>, Option<String>);
    let mut etags: HashMap<(usize, (u8, u32, u32)), Seen> = HashMap::new();
    let mut ours: Vec<(String, u64)> = Vec::new();
    let (mut reads, mut writes, mut hits) = (0, 0, 0);
    for _step in 0..400 {
        if next(3) == 0 {
            writes += 1;
            let feature_of = |layer: &str, next: &mut dyn FnMut(u64) -> u64| {
                if layer == "urban_problems" {
                    let (lon, lat) = spot(next);
                    problem(lon, lat, "new")
                } else {
                    let (a, b) = (spot(next), spot(next));
                    json!({"type": "Feature",
                        "geometry": {"type": "LineString", "coordinates": [[a.0, a.1], [b.0, b.1]]},
                        "properties": {"road": "Test", "speed_kmh": 5, "level": 3,
                                       "detected_at": "2026-11-20T08:00:00Z"}})
                }
            };
            let action = if ours.is_empty() { 0 } else { next(3) };
            let r = match action {
                0 => {
                    let layer = sets[next(2) as usize];
                    let r = send(
                        &s,
                        "POST",
                        &format!("/collections/{layer}/items"),
                        Some(&key),
                        &feature_of(layer, &mut next),
                    );
                    ours.push((layer.to_owned(), r.json()["id"].as_u64().unwrap()));
                    r
                }
                1 => {
                    let (layer, id) = ours[next(ours.len() as u64) as usize].clone();
                    let body = feature_of(&layer, &mut next);
                    let path = format!("/collections/{layer}/items/{id}");
                    send(&s, "PUT", &path, Some(&key), &body)
                }
                _ => {
                    let (layer, id) = ours.swap_remove(next(ours.len() as u64) as usize);
                    let path = format!("/collections/{layer}/items/{id}");
                    send(&s, "DELETE", &path, Some(&key), &Value::Null)
                }
            };
            assert!(
                r.status < 300,
                "{}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        } else {
            reads += 1;
            let set = next(sets.len() as u64) as usize;
            let t = tiles[next(tiles.len() as u64) as usize];
            let before = s.data.cache().stats().hits;
            let (bytes, etag) = served(&s, sets[set], t);
            hits += s.data.cache().stats().hits - before;
            let want = fresh(&s, sets[set], t);
            assert!(
                bytes == want,
                "tile {t:?} of {} is stale: {} bytes served, {} fresh",
                sets[set],
                bytes.len(),
                want.len()
            );
            // The ETag changes when, and only when, the bytes do.
            if let Some((old_bytes, old_etag)) = etags.get(&(set, t)) {
                assert_eq!(old_bytes == &bytes, old_etag == &etag, "tile {t:?}");
            }
            etags.insert((set, t), (bytes, etag));
        }
    }
    println!("{reads} reads ({hits} from the cache), {writes} writes");
    // And equal to tiles cut from an index built afresh from the store, as after a restart
    // or on another server: the order of edits leaves no trace in the bytes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rebuilt: Vec<_> = ["urban_problems", "traffic_jams"]
        .iter()
        .map(|id| {
            let def = s.data.layer(id).unwrap();
            let stored = rt.block_on(s.data.store().load_layer(&def.id)).unwrap();
            let index = urbantile::index::LayerIndex::build(def, stored);
            (def, std::sync::Arc::new(parking_lot::RwLock::new(index)))
        })
        .collect();
    for (set, layers) in sets.iter().enumerate() {
        for &t in &tiles {
            let tile_layers: Vec<urbantile::composite::TileLayer> = layers
                .split(',')
                .map(|id| {
                    let (def, index) = rebuilt.iter().find(|(d, _)| d.id.as_str() == id).unwrap();
                    urbantile::composite::TileLayer {
                        def,
                        index,
                        filter: None,
                    }
                })
                .collect();
            let coord = urbantile::tiles::TileCoord {
                z: t.0,
                x: t.1,
                y: t.2,
            };
            // Clusters built anew from the rebuilt index, at the zooms that draw them.
            let clusters: Vec<_> = tile_layers
                .iter()
                .map(|l| {
                    let c = l.def.cluster.as_ref()?;
                    if t.0 < l.def.minzoom || t.0 > c.maxzoom {
                        return None;
                    }
                    let tree = urbantile::dataset::clusters::build_tree(
                        l.def,
                        &l.index.read(),
                        Default::default(),
                    )?;
                    Some(urbantile::cluster::Clustered {
                        version: 0,
                        tree: std::sync::Arc::new(tree),
                    })
                })
                .collect();
            let want =
                urbantile::composite::render_tile_clustered(&tile_layers, &clusters, coord, None)
                    .bytes;
            let (got, _) = served(&s, sets[set], t);
            assert!(
                got == want,
                "tile {t:?} of {layers} differs from a rebuilt index's"
            );
        }
    }
    assert!(hits > 50, "the cache was hardly used: {hits}");
}

#[test]
fn clients_that_hang_up_mid_write_leave_the_store_writable() {
    let (_d, s) = live_server(None);
    let key = s.add_key("w", "-", "urban_problems");
    let before = count(&s, "urban_problems", None);
    let body = problem(24.94, 60.17, "hung-up").to_string();
    let head = format!(
        "POST /collections/urban_problems/items HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/geo+json\r\nContent-Length: {}\r\n\r\n",
        bearer(&key),
        body.len()
    );
    // Four clients each send 100 whole writes and hang up without waiting for the answers,
    // so that requests are dropped at every point of their handling.
    let addr = s.addr;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (head, body) = (head.clone(), body.clone());
            scope.spawn(move || {
                for _ in 0..100 {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let _ = c.write_all(head.as_bytes());
                    let _ = c.write_all(body.as_bytes());
                    drop(c);
                }
            });
        }
    });
    // Every write the server received is done whole; none holds the store.
    let r = send(
        &s,
        "POST",
        "/collections/urban_problems/items",
        Some(&key),
        &problem(24.95, 60.17, "after"),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    std::thread::sleep(Duration::from_millis(300));
    let after = count(&s, "urban_problems", None);
    assert!(
        after > before && after <= before + 401,
        "{before} -> {after}"
    );
}

#[test]
fn every_documented_route_refuses_a_wrong_key_and_hides_a_private_layer() {
    let (_d, s) = live_server(None);
    let doc = s.get("/api", &[]).json();
    let paths = doc["paths"].as_object().unwrap();
    let mut probed = 0;
    for (path, item) in paths {
        // The probes and the map page's static files answer whoever asks.
        if path == "/ping" || path == "/health" || path.starts_with("/map") {
            continue;
        }
        let url = path
            .replace("{layers}", "schools")
            .replace("{z}/{x}/{y}", "14/9327/4742")
            .replace("{featureId}", "1");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let r = send(
                &s,
                &method,
                &url,
                Some("ut_wrong"),
                &problem(24.94, 60.17, "x"),
            );
            assert_eq!(r.status, 401, "{method} {url} with a wrong key");
            probed += 1;
        }
    }
    assert!(probed > 40, "only {probed} routes probed");
    // Anonymous probes of the private layer find nothing, whatever the route.
    for (method, path) in [
        ("GET", "/tiles/accidents/14/9327/4742.mvt"),
        ("GET", "/tiles/accidents.json"),
        ("GET", "/collections/accidents"),
        ("GET", "/collections/accidents/items"),
        ("GET", "/collections/accidents/items/1"),
        ("GET", "/collections/accidents/queryables"),
        ("GET", "/collections/accidents/nearest?point=24.94,60.17"),
        ("GET", "/collections/accidents/containing?point=24.94,60.17"),
        ("GET", "/collections/accidents/aggregate?by=schools"),
        ("GET", "/collections/schools/aggregate?by=accidents"),
        ("GET", "/changes?layers=accidents"),
    ] {
        let r = send(&s, method, path, None, &Value::Null);
        assert!(
            matches!(r.status, 400 | 404),
            "{method} {path}: {}",
            r.status
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("private"),
            "{path} tells the layer is private"
        );
    }
}

/// The layer file's declared types decide what a write may hold and what the queryables
/// say, for an empty layer as for a full one: nothing is read from the data.
#[test]
fn declared_types_are_the_contract_for_writes_and_queryables() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["traffic_jams"], &[]);
    std::fs::write(
        layers.join("counters.toml"),
        "title = \"Bike counters\"\ngeometry = \"point\"\n\
         properties = { name = \"string\", daily = \"integer\", share = \"number\", \
         heated = \"boolean\", since = \"datetime\" }\n",
    )
    .unwrap();
    let s = TestServer::start(&layers);
    let key = s.add_key("w", "-", "traffic_jams,counters");
    for (layer, expected) in [
        (
            "counters",
            json!({"name": ["string", null], "daily": ["integer", null], "share": ["number", null],
                   "heated": ["boolean", null], "since": ["string", "date-time"]}),
        ),
        (
            "traffic_jams",
            json!({"road": ["string", null], "speed_kmh": ["integer", null],
                   "detected_at": ["string", "date-time"], "cleared_at": ["string", "date-time"]}),
        ),
    ] {
        let q = s
            .get(&format!("/collections/{layer}/queryables"), &[])
            .json();
        for (name, want) in expected.as_object().unwrap() {
            let p = &q["properties"][name];
            assert_eq!(
                json!([p["type"], p.get("format")]),
                *want,
                "{layer}.{name}: {p}"
            );
        }
    }
    // The empty layer's TileJSON names the declared field types too.
    let tj = s.get("/tiles/counters.json", &[]).json();
    assert_eq!(
        tj["vector_layers"][0]["fields"],
        json!({"name": "String", "daily": "Number", "share": "Number", "heated": "Boolean", "since": "String"})
    );
    let counter = |props: Value| {
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
               "properties": props})
    };
    let items = "/collections/counters/items";
    for (props, mentions) in [
        (json!({"daily": "3"}), "is \\\"3\\\"; it must be an integer"),
        (json!({"daily": 3.5}), "it must be an integer"),
        (json!({"share": true}), "it must be a number"),
        (json!({"heated": "yes"}), "it must be a boolean"),
        (json!({"since": "last week"}), "RFC 3339"),
        (json!({"name": 7}), "it must be a string"),
    ] {
        let r = send(&s, "POST", items, Some(&key), &counter(props.clone()));
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, 422, "{props}: {body}");
        assert!(body.contains(mentions), "{props}: {body}");
    }
    let good = json!({"name": "Baana", "daily": 4100, "share": 0.31, "heated": false,
                      "since": "2026-05-01"});
    let r = send(&s, "POST", items, Some(&key), &counter(good));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // The stored feature's values, and `?prop=` by the declared type.
    let found = s.get(&format!("{items}?daily=4100"), &[]).json();
    assert_eq!(found["numberMatched"], 1, "{found}");
    assert_eq!(found["features"][0]["properties"]["daily"], 4100);
    for bad in [
        "heated=maybe",
        "daily=0.5",
        "daily=",
        "since=null",
        "share=lots",
    ] {
        let r = s.get(&format!("{items}?{bad}"), &[]);
        assert_eq!(r.status, 400, "{bad}");
    }
    // A CQL2 comparison of the integer with a string is a type error, even on an empty
    // layer's neighbour: the declaration decides.
    let r = s.get(&format!("{items}?filter=daily%3D'many'"), &[]);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // Traffic jams: an integer sent as text is refused, the same value as a number is not.
    let jam = |speed: Value| {
        json!({"type": "Feature",
               "geometry": {"type": "LineString", "coordinates": [[24.94, 60.17], [24.95, 60.17]]},
               "properties": {"road": "Mannerheimintie", "speed_kmh": speed, "level": 2,
                              "detected_at": "2026-12-01T08:00:00Z"}})
    };
    let items = "/collections/traffic_jams/items";
    assert_eq!(
        send(&s, "POST", items, Some(&key), &jam(json!("12"))).status,
        422
    );
    assert_eq!(
        send(&s, "POST", items, Some(&key), &jam(json!(12))).status,
        201
    );
}
