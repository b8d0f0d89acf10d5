//! `GET /metrics` over real sockets: the real `urbantile serve` process with
//! `--metrics-bind`, scraped before and after a cache miss, a cache hit, a write and a
//! request no route matches, each scrape parsed by the Prometheus Python client's
//! OpenMetrics parser (`tests/check_metrics.py`), which refuses malformed text; and who may
//! read `/metrics` on the public listener.

mod common;

fn text(r: &common::Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_addr, http_get, http_request, root, tile_of, urbantile_bin};

/// The server process, killed (by its PID) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(layers: &Path, database: &str, addr: SocketAddr, metrics: SocketAddr) -> Server {
    let child = Command::new(urbantile_bin())
        .current_dir(root())
        .args(["serve", "--bind", &addr.to_string(), "--layers"])
        .arg(layers)
        .args(["--database", database])
        .args(["--metrics-bind", &metrics.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let started = Instant::now();
    loop {
        if std::net::TcpStream::connect(metrics).is_ok()
            && http_get(addr, "/health", &[]).status == 200
        {
            return server;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("the server exited: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every sample of a scrape, parsed by the reference parser: `name{k=v,...}` -> value.
fn scrape(metrics: SocketAddr) -> HashMap<String, f64> {
    let r = http_get(metrics, "/metrics", &[]);
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    parse(&text(&r))
}

fn parse(text: &str) -> HashMap<String, f64> {
    let mut child = Command::new("python3")
        .arg(root().join("tests/check_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A sample's value, 0 when absent.
fn value(s: &HashMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

const TILE_ROUTE: &str = "route=/tiles/{layers}/{z}/{x}/{y}";

#[test]
fn counters_move_with_requests_writes_and_cache_hits() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools", "parks"], &[]);
    let database = format!("sqlite://{}", dir.path().join("store.db").display());
    let (addr, metrics) = (free_addr(), free_addr());
    let _server = serve(&layers, &database, addr, metrics);
    let writer = common::add_key(&layers, &database, &["writer", "--write", "schools"]);

    let before = scrape(metrics);
    // The first start ingested the layers' sources, and the index holds what was written.
    let written = value(
        &before,
        "urbantile_ingest_features_total{layer=schools,outcome=written}",
    );
    assert!(written > 0.0, "{written}");
    assert_eq!(
        value(&before, "urbantile_layer_features{layer=schools}"),
        written
    );

    // A tile twice: a miss (cut and cached), then a hit; two tiles of one route.
    let (z, x, y) = tile_of(24.9445, 60.1690, 15);
    let path = format!("/tiles/schools,parks/{z}/{x}/{y}.mvt");
    let gz = [("Accept-Encoding", "gzip")];
    assert_eq!(http_get(addr, &path, &gz).status, 200);
    assert_eq!(http_get(addr, &path, &gz).status, 200);
    let other = format!("/tiles/schools/{z}/{}/{y}.mvt", x + 1);
    assert!([200, 204].contains(&http_get(addr, &other, &gz).status));
    assert_eq!(http_get(addr, "/no/such/route", &[]).status, 404);
    let mid = scrape(metrics);
    let moved = |key: &str| value(&mid, key) - value(&before, key);
    let tiles = |status: u16| {
        moved(&format!(
            "urbantile_http_requests_total{{{TILE_ROUTE},status={status}}}"
        ))
    };
    assert_eq!(tiles(200) + tiles(204), 3.0);
    assert!(tiles(200) >= 2.0);
    assert_eq!(
        moved(&format!(
            "urbantile_http_request_duration_seconds_count{{{TILE_ROUTE}}}"
        )),
        3.0
    );
    assert_eq!(
        moved("urbantile_http_requests_total{route=unmatched,status=404}"),
        1.0
    );
    assert_eq!(moved("urbantile_tile_cache_hits_total{}"), 1.0);
    assert_eq!(moved("urbantile_tile_cache_misses_total{}"), 2.0);
    assert_eq!(moved("urbantile_tile_size_bytes_count{zoom=15}"), 2.0);
    // Each miss was tried in place on the runtime once (light as they are, a busy machine
    // may still push one past the 2 ms and on to the pool).
    assert_eq!(
        moved("urbantile_compute_in_place_total{outcome=done}")
            + moved("urbantile_compute_in_place_total{outcome=moved}"),
        2.0
    );
    assert!(moved("urbantile_tile_cache_bytes{}") > 0.0);
    assert_eq!(value(&mid, "urbantile_tile_cache_tiles{}"), 2.0);
    // Labels are route templates, never paths.
    assert!(
        !mid.keys().any(|k| k.contains("route=/tiles/schools")),
        "{:?}",
        mid.keys()
            .filter(|k| k.contains("route="))
            .collect::<Vec<_>>()
    );

    // A write inside the cached tile: counted by layer and kind, applied from the log,
    // and the tile dropped from the cache.
    let body = serde_json::json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.9445, 60.1690]},
        "properties": {"name": "Metrics school"},
    });
    let auth = format!("Bearer {writer}");
    let r = http_request(
        addr,
        "POST",
        "/collections/schools/items",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/geo+json"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(http_get(addr, &path, &gz).status, 200);
    let after = scrape(metrics);
    let moved = |key: &str| value(&after, key) - value(&mid, key);
    assert_eq!(
        moved("urbantile_writes_total{kind=create,layer=schools}"),
        1.0
    );
    assert_eq!(
        moved("urbantile_changes_applied_total{kind=create,layer=schools}"),
        1.0
    );
    assert_eq!(
        moved("urbantile_http_requests_total{route=/collections/{id}/items,status=201}"),
        1.0
    );
    assert_eq!(moved("urbantile_changelog_applied{}"), 1.0);
    assert_eq!(value(&after, "urbantile_changelog_behind{}"), 0.0);
    assert_eq!(
        value(&after, "urbantile_changelog_head{}"),
        value(&after, "urbantile_changelog_applied{}")
    );
    assert_eq!(
        moved("urbantile_changelog_apply_delay_seconds_count{}"),
        1.0
    );
    assert!(moved("urbantile_tile_cache_invalidations_total{}") >= 1.0);
    // The tile was cut again after the write: a miss, not a hit.
    assert_eq!(moved("urbantile_tile_cache_misses_total{}"), 1.0);
    assert_eq!(moved("urbantile_tile_cache_hits_total{}"), 0.0);
    assert_eq!(moved("urbantile_layer_features{layer=schools}"), 1.0);
    assert!(value(&after, "urbantile_process_resident_memory_bytes{}") > 1e6);
    // The listener serves /metrics alone.
    assert_eq!(http_get(metrics, "/health", &[]).status, 404);
}

#[test]
fn metrics_on_the_public_listener_need_a_key_that_reads_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools"], &["parks"]);
    let s = common::TestServer::start(&layers);
    let anonymous = s.get("/metrics", &[]);
    assert_eq!(anonymous.status, 401);
    assert!(
        text(&anonymous).contains("--metrics-bind"),
        "{}",
        text(&anonymous)
    );
    let some = s.add_key("some", "parks", "-");
    let r = s.get("/metrics", &[("Authorization", &format!("Bearer {some}"))]);
    assert_eq!(r.status, 403, "{}", text(&r));
    let all = s.add_key("ops", "*", "-");
    let r = s.get("/metrics", &[("Authorization", &format!("Bearer {all}"))]);
    assert_eq!(r.status, 200);
    let samples = parse(&text(&r));
    // The private layer is named, which is why the key must read it.
    assert!(samples.contains_key("urbantile_layer_features{layer=parks}"));
    assert_eq!(
        value(
            &samples,
            "urbantile_http_requests_total{route=/metrics,status=401}"
        ),
        1.0
    );
}
