//! Installs the map page's front-end packages (MapLibre GL JS, and playwright-core for the
//! browser tests and supercluster for the cluster tests) from the npm registry when they are missing, so that `cargo run` and
//! `cargo test` are the whole set-up. The server embeds the files it serves.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    let marker = Path::new("web/node_modules/maplibre-gl/dist/maplibre-gl.js");
    // supercluster is the cluster tests' reference implementation (tests/clusters.rs).
    let oracle = Path::new("web/node_modules/supercluster/index.js");
    // pmtiles is the MapLibre protocol the offline packs' browser test reads a pack with.
    let packs = Path::new("web/node_modules/pmtiles/dist/pmtiles.js");
    if marker.exists() && oracle.exists() && packs.exists() {
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
