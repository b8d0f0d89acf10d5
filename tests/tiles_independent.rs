//! Served tiles checked by an independent decoder against a brute-force answer: the
//! Python script `tests/check_tiles.py` (mapbox-vector-tile to decode, shapely/GEOS to
//! clip the source features) drives a real server on a loopback socket.
//! Needs `python3 -m pip install -r tests/requirements.txt`.

mod common;

use std::process::Command;

use common::{TestServer, root};

#[test]
fn tiles_at_z14_z16_and_overzoom_match_the_clipped_source_features() {
    let server = TestServer::start(&root().join("layers"));
    let sources = server.dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for def in server.data.layers() {
        let features = rt
            .block_on(server.data.store().load_layer(&def.id))
            .unwrap();
        let features: Vec<serde_json::Value> = features
            .into_iter()
            .map(|f| {
                let geometry = geojson::Geometry::new(geojson::Value::from(&f.feature.geometry));
                serde_json::json!({
                    "id": f.id.0,
                    "geometry": geometry,
                    "properties": f.feature.properties,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "layer": def.id,
            "minzoom": def.minzoom,
            "maxzoom": def.maxzoom,
            "keys": def.properties,
            "feature_minzoom": def.feature_minzoom.as_ref().map(|r| serde_json::json!({
                "property": def.properties[r.property],
                "values": r.values,
                "default": r.default,
            })),
            "cluster_maxzoom": def.cluster.as_ref().map(|c| c.maxzoom),
            "features": features,
        });
        std::fs::write(sources.join(format!("{}.json", def.id)), doc.to_string()).unwrap();
    }
    let out = Command::new("python3")
        .arg(root().join("tests/check_tiles.py"))
        .arg(server.base_url())
        .arg(&sources)
        .args(["12", "14", "16", "17"])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "independent tile check failed:\n{stdout}\n{stderr}\n(needs: python3 -m pip install -r tests/requirements.txt)"
    );
    // The checks held for tiles made in place on the runtime and for those that proved
    // too heavy there (the z12 ones of the bigger layers) and were made on the pool.
    let (done, moved) = server.data.compute().in_place_counts();
    println!("tiles made in place: {done}; moved on to the pool: {moved}");
    assert!(done > 0 && moved > 0, "{done} in place, {moved} moved on");
}
