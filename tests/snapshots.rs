//! Index snapshots (`--snapshots DIR`): an index read back from its snapshot cuts the same
//! tiles and answers the same queries as the index it was written from, takes writes the
//! same way afterwards, and a file cut short or changed is refused, never half-read. A
//! server stopped with SIGTERM writes them; restarted after an edit made while it was
//! down (an ingest, which reloads the layer, and a create through another server), it reads
//! them back, applies the edits from the change log before it serves, and serves the same
//! bytes as a server that indexed everything anew.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{free_addr, http_get, layer_folder, root, urbantile_bin};
use urbantile::composite::{TileLayer, render_tile};
use urbantile::config::{LayerDef, load_layers};
use urbantile::index::LayerIndex;
use urbantile::index::snapshot::{self, SnapshotError, Stamp};
use urbantile::model::{FeatureId, StoredFeature};
use urbantile::tiles::TileCoord;
use urbantile::tiles::mercator::Rect3857;

const STAMP: Stamp = Stamp {
    fingerprint: 7,
    position: 42,
    entry: 9,
};

/// The bundled layers with their features, a small tile budget on each so that thinning
/// plans are part of what is compared.
fn bundled() -> Vec<(LayerDef, Vec<StoredFeature>)> {
    std::env::set_current_dir(root()).unwrap();
    let mut defs = load_layers(&root().join("layers")).unwrap().live;
    for d in &mut defs {
        d.budget_kb = Some(8);
    }
    let sources = urbantile::generate::metro::read_sources(&defs).unwrap();
    let mut id = 0;
    sources
        .into_iter()
        .map(|(def, features)| {
            let stored = features
                .into_iter()
                .map(|feature| {
                    id += 1;
                    StoredFeature {
                        id: FeatureId(id),
                        version: 0,
                        feature,
                    }
                })
                .collect();
            (def.clone(), stored)
        })
        .collect()
}

fn tiles(a: &LayerIndex, def: &LayerDef) -> Vec<TileCoord> {
    let Some(b) = a.bounds() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for z in [def.minzoom, def.minzoom + 1, 14, 16] {
        let (x0, y0) = tile_xy(b.west, b.north, z);
        let (x1, y1) = tile_xy(b.east, b.south, z);
        // At most a 6 x 6 block of tiles in the middle of the layer, per zoom.
        let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
        for x in cx.saturating_sub(3).max(x0)..=(cx + 2).min(x1) {
            for y in cy.saturating_sub(3).max(y0)..=(cy + 2).min(y1) {
                out.push(TileCoord::new(z as u32, x as u64, y as u64).unwrap());
            }
        }
    }
    out
}

fn tile_xy(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let (_, x, y) = common::tile_of(lon, lat, z);
    (x, y)
}

fn render(index: LayerIndex, def: &LayerDef, at: &[TileCoord]) -> (Vec<Vec<u8>>, LayerIndex) {
    let shared = Arc::new(parking_lot::RwLock::new(index));
    let layers = [TileLayer {
        def,
        index: &shared,
        filter: None,
    }];
    let bytes = at
        .iter()
        .map(|t| render_tile(&layers, *t, None).bytes)
        .collect();
    drop(layers);
    let index = Arc::try_unwrap(shared).unwrap().into_inner();
    (bytes, index)
}

fn ids_in(index: &LayerIndex, rect: Rect3857) -> Vec<u64> {
    let mut ids: Vec<u64> = index.query(rect).map(|f| f.id.0).collect();
    ids.sort_unstable();
    ids
}

fn written(index: &LayerIndex) -> Vec<u8> {
    let mut bytes = Vec::new();
    snapshot::write(index, STAMP, &mut bytes).unwrap();
    bytes
}

#[test]
fn an_index_read_back_cuts_the_same_tiles_and_takes_the_same_writes() {
    for (def, features) in bundled() {
        // Edited after the build, so that removed slots and features written since the
        // packed tree are part of what is written.
        let moved: Vec<StoredFeature> = features.iter().step_by(7).take(50).cloned().collect();
        let mut original = LayerIndex::build(&def, features);
        for f in features_gone(&original, 11) {
            original.remove(f);
        }
        for mut f in moved.clone() {
            use geo::Translate;
            f.feature.geometry = f.feature.geometry.translate(0.002, 0.001);
            original.upsert(&def, f);
        }
        // As the server plans the tile budget anew after writes (a snapshot read back is
        // planned as it is read).
        replan(&def, &mut original);
        let bytes = written(&original);
        let (stamp, read) = snapshot::read(&def, &bytes).unwrap();
        assert_eq!(stamp, STAMP);
        assert_eq!(snapshot::stamp(&bytes).unwrap(), STAMP);
        assert_eq!(read.len(), original.len(), "{}", def.id);
        assert_eq!(read.bounds(), original.bounds());

        let at = tiles(&original, &def);
        assert!(!at.is_empty(), "{}", def.id);
        let world = Rect3857 {
            min_x: -2.0e7,
            min_y: -2.0e7,
            max_x: 2.0e7,
            max_y: 2.0e7,
        };
        // Tiles do not build the feature queries' trees: the writes below come first on
        // the read-back index, as a start's replay of the log does.
        let (mut original_tiles, mut original) = render(original, &def, &at);
        let (mut read_tiles, mut read) = render(read, &def, &at);
        assert!(original_tiles.iter().any(|t| !t.is_empty()), "{}", def.id);
        same_tiles(&read_tiles, &original_tiles, &at, &def, "read back");

        // The same writes on both (a new feature first), then the same tiles and queries.
        let mut new = moved[0].clone();
        new.id = FeatureId(1 << 40);
        original.upsert(&def, new.clone());
        read.upsert(&def, new);
        for f in features_gone(&original, 5) {
            assert!(original.remove(f).is_some());
            assert!(read.remove(f).is_some(), "{}: {f:?}", def.id);
        }
        for mut f in moved.into_iter().take(10) {
            use geo::Translate;
            f.feature.geometry = f.feature.geometry.translate(-0.003, 0.002);
            original.upsert(&def, f.clone());
            read.upsert(&def, f);
        }
        replan(&def, &mut original);
        replan(&def, &mut read);
        (original_tiles, original) = render(original, &def, &at);
        (read_tiles, read) = render(read, &def, &at);
        same_tiles(&read_tiles, &original_tiles, &at, &def, "after writes");
        let (read_ids, original_ids) = (ids_in(&read, world), ids_in(&original, world));
        assert_eq!(read_ids, original_ids, "{}: queries", def.id);
        let mut once = read_ids.clone();
        once.dedup();
        assert_eq!(once, read_ids, "{}: a feature found twice", def.id);
        assert_eq!(read_ids.len(), read.len(), "{}", def.id);
        // Written again, the read-back index gives the same snapshot as the original.
        assert_eq!(written(&read), written(&original), "{}", def.id);
    }
}

fn replan(def: &LayerDef, index: &mut LayerIndex) {
    if let Some(plan) = urbantile::index::thinning::plan(def, index) {
        index.set_thinning(plan);
    }
}

fn same_tiles(a: &[Vec<u8>], b: &[Vec<u8>], at: &[TileCoord], def: &LayerDef, when: &str) {
    for ((x, y), t) in a.iter().zip(b).zip(at) {
        assert!(
            x == y,
            "{} {when}: tile {t} differs ({} and {} bytes)",
            def.id,
            x.len(),
            y.len()
        );
    }
}

/// Every `step`-th live feature's id.
fn features_gone(index: &LayerIndex, step: usize) -> Vec<FeatureId> {
    let world = Rect3857 {
        min_x: -2.0e7,
        min_y: -2.0e7,
        max_x: 2.0e7,
        max_y: 2.0e7,
    };
    let mut ids: Vec<FeatureId> = index.query(world).map(|f| f.id).collect();
    ids.sort_unstable();
    ids.into_iter().step_by(step).collect()
}

#[test]
fn a_snapshot_cut_short_changed_or_of_another_layer_is_refused() {
    let all = bundled();
    let (def, features) = all
        .iter()
        .find(|(d, _)| d.id.as_str() == "schools")
        .unwrap();
    let bytes = written(&LayerIndex::build(def, features.clone()));
    // Every length short of the whole, and a few bytes more.
    // (Around the end of the stamp too: a file holding a stamp and less than a CRC.)
    for cut in (0..bytes.len())
        .step_by(97)
        .chain(30..45)
        .chain([bytes.len() - 1])
    {
        assert!(snapshot::read(def, &bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 3]);
    assert!(snapshot::read(def, &longer).is_err());
    // A byte changed anywhere past the stamp fails the checksum.
    for at in (40..bytes.len()).step_by(131) {
        let mut changed = bytes.clone();
        changed[at] ^= 0x20;
        assert_eq!(
            snapshot::read(def, &changed).err(),
            Some(SnapshotError::Corrupt("checksum")),
            "byte {at}"
        );
    }
    // Another format, or not a snapshot.
    let mut other = bytes.clone();
    other[8] ^= 1;
    assert_eq!(
        snapshot::read(def, &other).err(),
        Some(SnapshotError::Format)
    );
    assert_eq!(snapshot::stamp(b"{}").err(), Some(SnapshotError::Format));
    // Another layer's definition (other properties).
    let (parks, _) = all.iter().find(|(d, _)| d.id.as_str() == "parks").unwrap();
    assert!(snapshot::read(parks, &bytes).is_err());
}

/// A server process this test started: ended (SIGKILL) if the test fails before it stops it.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn serve(layers: &Path, database: &str, addr: SocketAddr, snapshots: Option<&Path>) -> Server {
    let mut command = Command::new(urbantile_bin());
    command
        .current_dir(root())
        .args(["serve", "--bind", &addr.to_string(), "--layers"])
        .arg(layers)
        .args(["--database", database])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(dir) = snapshots {
        command.arg("--snapshots").arg(dir);
    }
    let mut server = Server(Some(command.spawn().unwrap()));
    common::wait_until_up(addr, server.0.as_mut().unwrap(), Duration::from_secs(120));
    server
}

/// SIGTERM, then the server's log once it has stopped.
fn stop(mut server: Server) -> String {
    let mut child = server.0.take().unwrap();
    // SAFETY: kill(2) sends SIGTERM to the server process this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let mut log = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{log}");
    log
}

#[test]
fn a_restarted_server_reads_its_snapshots_and_applies_what_changed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let layers = layer_folder(dir.path(), &["schools", "parks"], &[]);
    let database = format!("sqlite://{}", dir.path().join("urbantile.db").display());
    let snapshots = dir.path().join("snapshots");

    let first = serve(&layers, &database, free_addr(), Some(&snapshots));
    let log = stop(first);
    assert!(
        log.contains("index snapshot written layer=schools"),
        "{log}"
    );
    assert!(snapshots.join("schools.index").is_file());
    assert!(snapshots.join("parks.index").is_file());

    // A school added from the command line while the server is down: the log moves on.
    let (lon, lat) = (24.9384, 60.1699);
    let file = dir.path().join("new.geojson");
    std::fs::write(
        &file,
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon},{lat}]}},"properties":{{"name":"Snapshot School"}}}}]}}"#
        ),
    )
    .unwrap();
    let ingest = Command::new(urbantile_bin())
        .current_dir(root())
        .args(["ingest", "schools"])
        .arg(&file)
        .arg("--layers")
        .arg(&layers)
        .args(["--database", &database])
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{ingest:?}");

    // And one written through another server (no snapshots) meanwhile, logged as a create.
    let key = common::write_key(&layers, &database, "schools");
    let other_addr = free_addr();
    let other = serve(&layers, &database, other_addr, None);
    let (lon2, lat2) = (lon + 0.0004, lat + 0.0002);
    let posted = common::http_request(
        other_addr,
        "POST",
        "/collections/schools/items",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/geo+json"),
        ],
        format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon2},{lat2}]}},"properties":{{"name":"Posted School"}}}}"#
        )
        .as_bytes(),
    );
    assert_eq!(posted.status, 201, "{}", posted.text());
    stop(other);

    // What a writer cut off mid-file leaves: removed at the next start once its process
    // has ended, kept while it runs (here, this test's own process).
    // A process id above the system's largest is one that cannot be running.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let left = snapshots.join(format!("schools.index.{}.partial", pid_max + 1));
    let running = snapshots.join(format!("parks.index.{}.partial", std::process::id()));
    for f in [&left, &running] {
        std::fs::write(f, b"half a snapshot").unwrap();
    }

    let addr = free_addr();
    let warm = serve(&layers, &database, addr, Some(&snapshots));
    assert!(!left.exists(), "a dead writer's partial file is removed");
    assert!(running.exists(), "a running writer's partial file is kept");
    let fresh_addr = free_addr();
    let fresh = serve(&layers, &database, fresh_addr, None);
    let bbox = format!(
        "/collections/schools/items?bbox={},{},{},{}",
        lon - 0.001,
        lat - 0.001,
        lon + 0.001,
        lat + 0.001
    );
    let found = http_get(addr, &bbox, &[]).json();
    let names: Vec<&str> = found["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["properties"]["name"].as_str())
        .collect();
    assert!(names.contains(&"Snapshot School"), "{found}");
    assert!(names.contains(&"Posted School"), "{found}");
    for z in [13u8, 14, 15, 16] {
        let (z, x, y) = common::tile_of(lon, lat, z);
        let path = format!("/tiles/schools,parks/{z}/{x}/{y}.mvt");
        let a = http_get(addr, &path, &[]);
        let b = http_get(fresh_addr, &path, &[]);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, b.body, "{path}: snapshot and fresh index differ");
    }
    let items = "/collections/parks/items?limit=1000";
    assert_eq!(
        http_get(addr, items, &[]).json()["features"],
        http_get(fresh_addr, items, &[]).json()["features"]
    );
    let fresh_log = stop(fresh);
    assert!(!fresh_log.contains("index snapshot"), "{fresh_log}");
    let log = stop(warm);
    assert!(
        log.contains("layer read from its index snapshot layer=parks"),
        "{log}"
    );
    assert!(
        log.contains("layer read from its index snapshot layer=schools"),
        "{log}"
    );
}
