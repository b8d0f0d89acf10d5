//! Installs the map page's front-end packages (MapLibre GL JS, and playwright-core for the
//! browser tests, supercluster for the cluster tests and OpenLayers for the OGC API - Tiles
//! client test) from the npm registry when they are missing, so that `cargo run` and
//! `cargo test` are the whole set-up. The server embeds the files it serves.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    let marker = Path::new("web/node_modules/maplibre-gl/dist/maplibre-gl.js");
    // supercluster is the cluster tests' reference implementation (tests/clusters.rs).
    let oracle = Path::new("web/node_modules/supercluster/index.js");
    // OpenLayers is the OGC API - Tiles test's client (tests/ogc_tiles.rs).
    let ol = Path::new("web/node_modules/ol/dist/ol.js");
    // pmtiles is the MapLibre protocol the offline packs' browser test reads a pack with.
    let packs = Path::new("web/node_modules/pmtiles/dist/pmtiles.js");
    if marker.exists() && oracle.exists() && ol.exists() && packs.exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir("web")
        .status();
    match status {
        Ok(s) if s.success() && marker.exists() => {}
        Ok(s) => panic!("`npm ci` in web/ failed ({s}); the map page needs maplibre-gl from npm"),
        Err(e) => panic!("cannot run npm ({e}); install Node.js and npm to build the map page"),
    }
}
