//! The map page: the style and assets over HTTP, and the page itself in headless Chromium
//! (Debian's `chromium`, driven by playwright-core from `web/node_modules`): it loads without
//! errors, draws known features, toggles, popups, the time slider, a phone layout, the
//! widget, a street's name along it and a cluster's count (label pixels, found by comparing
//! with the labels hidden); and it writes the README's screenshot to `web/screenshot.png`.

mod common;

use std::process::Command;

use common::{TestServer, root};
use geo::InteriorPoint;

fn named(server: &TestServer, layer: &str) -> (String, [f64; 2]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = urbantile::model::LayerId::new(layer).unwrap();
    let features = rt.block_on(server.data.store().load_layer(&id)).unwrap();
    // The largest named feature: easy to hit with a click, whatever its neighbours.
    features
        .iter()
        .filter_map(|f| {
            let name = f.feature.properties.get("name")?.as_str()?.to_owned();
            let p = f.feature.geometry.interior_point()?;
            let size = geo::Area::unsigned_area(&f.feature.geometry);
            Some((size, name, [p.x(), p.y()]))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name, at)| (name, at))
        .unwrap_or_else(|| panic!("no named feature in {layer}"))
}

/// A named line: its name, its vertices and the middle of its longest stretch (lon/lat).
type NamedLine = (String, Vec<[f64; 2]>, [f64; 2]);

/// The named line with the longest stretch between two vertices (where a label along it
/// has room): its name, its vertices and the middle of that stretch (lon/lat).
fn longest_named_line(server: &TestServer, layer: &str) -> NamedLine {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = urbantile::model::LayerId::new(layer).unwrap();
    let features = rt.block_on(server.data.store().load_layer(&id)).unwrap();
    let mut best: Option<(f64, NamedLine)> = None;
    for f in &features {
        let Some(name) = f.feature.properties.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        let lines: Vec<&geo::LineString> = match &f.feature.geometry {
            geo::Geometry::LineString(l) => vec![l],
            geo::Geometry::MultiLineString(m) => m.0.iter().collect(),
            _ => continue,
        };
        for line in lines {
            for seg in line.lines() {
                let (dx, dy) = (seg.dx() * 60.17f64.to_radians().cos(), seg.dy());
                let length = dx.hypot(dy);
                if best.as_ref().is_none_or(|(longest, _)| length > *longest) {
                    let vertices = line.coords().map(|c| [c.x, c.y]).collect();
                    let mid = [
                        (seg.start.x + seg.end.x) / 2.0,
                        (seg.start.y + seg.end.y) / 2.0,
                    ];
                    best = Some((length, (name.to_owned(), vertices, mid)));
                }
            }
        }
    }
    best.unwrap_or_else(|| panic!("no named line in {layer}")).1
}

#[test]
fn the_map_page_works_in_a_real_browser() {
    let server = TestServer::start(&root().join("layers"));
    let (school, school_at) = named(&server, "schools");
    let (building, building_at) = named(&server, "buildings");
    let (street, street_line, street_at) = longest_named_line(&server, "roads");
    let key = server.add_key("map-test", "-", "urban_problems");
    let known = serde_json::json!({
        "school": {"name": school, "lonlat": school_at},
        "building": {"name": building, "lonlat": building_at},
        "street": {"name": street, "lonlat": street_at, "line": street_line},
        "centre": [24.9445, 60.1690],
        "key": key,
    });
    let known_path = server.dir.path().join("known.json");
    std::fs::write(&known_path, known.to_string()).unwrap();
    let out = Command::new("node")
        .current_dir(root())
        .arg("web/test/map.mjs")
        .arg(server.base_url())
        .arg(&known_path)
        .arg(root().join("web/screenshot.png"))
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

#[test]
fn the_pages_own_javascript_and_css_stay_under_50_kb() {
    let total: u64 = ["web/map.html", "web/map.js", "web/map.css", "web/embed.js"]
        .iter()
        .map(|f| std::fs::metadata(root().join(f)).unwrap().len())
        .sum();
    assert!(total < 50 * 1024, "{total} bytes");
}

#[test]
fn style_json_draws_every_public_layer_from_this_servers_tiles() {
    let server = TestServer::start(&root().join("layers"));
    let r = server.get("/style.json", &[]);
    assert_eq!(r.status, 200);
    let style = r.json();
    assert_eq!(style["version"], 8);
    let url = style["sources"]["urbantile"]["url"].as_str().unwrap();
    assert!(url.starts_with(&server.base_url()), "{url}");
    let layers = style["layers"].as_array().unwrap();
    for def in server.data.layers().iter().filter(|d| !d.private) {
        let drawn: Vec<_> = layers
            .iter()
            .filter(|l| l["source-layer"] == def.id.as_str())
            .collect();
        assert!(!drawn.is_empty(), "{} is not drawn", def.id);
        assert!(
            drawn
                .iter()
                .all(|l| l["minzoom"].as_u64().unwrap() >= def.minzoom as u64)
        );
    }
    let extruded = layers
        .iter()
        .find(|l| l["type"] == "fill-extrusion")
        .unwrap();
    assert_eq!(extruded["source-layer"], "buildings");
    // The TileJSON the style points at answers.
    let path = &url[server.base_url().len()..];
    assert_eq!(server.get(path, &[]).status, 200);
}

#[test]
fn the_page_and_its_assets_are_served_compressed_and_unknown_assets_are_404() {
    let server = TestServer::start(&root().join("layers"));
    let page = server.get("/map", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&page.body).contains("/map/maplibre-gl.js"));
    let js = server.get("/map/maplibre-gl.js", &[("Accept-Encoding", "gzip")]);
    assert_eq!(js.status, 200);
    assert_eq!(js.header("content-encoding"), Some("gzip"));
    assert!(common::gunzip(&js.body).len() > 500_000);
    let etag = js.header("etag").unwrap().to_owned();
    assert_eq!(
        server
            .get("/map/maplibre-gl.js", &[("If-None-Match", &etag)])
            .status,
        304
    );
    assert_eq!(server.get("/map/nothing.js", &[]).status, 404);
}
