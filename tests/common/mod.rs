//! Shared test helpers: a real server on a loopback socket over a fresh store loaded with the
//! bundled city data, and a minimal HTTP/1.1 client (so that tests talk to the socket the
//! way any client does, with no client library in between).
#![allow(dead_code)]

pub mod pg;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use urbantile::api::{AppState, router};
use urbantile::dataset::Dataset;

/// The `urbantile` binary of this build, for tests that start real server processes.
pub fn urbantile_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_urbantile"))
}

/// A loopback address with a port free at the moment of asking.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The tile of zoom `z` holding a point, as `(z, x, y)`.
/// Runs `each(thread, round)` for `rounds` rounds on each of `threads` threads, released
/// together by a barrier so that their requests overlap; what they return, thread by
/// thread, round by round.
pub fn all_at_once<T: Send>(
    threads: usize,
    rounds: usize,
    each: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, each) = (&start, &each);
                scope.spawn(move || {
                    start.wait();
                    (0..rounds).map(|r| each(t, r)).collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

pub fn tile_of(lon: f64, lat: f64, z: u8) -> (u8, u32, u32) {
    let n = (1u64 << z) as f64;
    let x = ((lon + 180.0) / 360.0 * n) as u32;
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n) as u32;
    (z, x, y)
}

/// The tiles of zoom `z` over a lon/lat area `[west, south, east, north]`, with one tile
/// of margin on every side.
pub fn tiles_over(area: [f64; 4], z: u8) -> Vec<(u8, u32, u32)> {
    let (_, x0, y0) = tile_of(area[0], area[3], z);
    let (_, x1, y1) = tile_of(area[2], area[1], z);
    let mut out = Vec::new();
    for x in x0.saturating_sub(1)..=x1 + 1 {
        for y in y0.saturating_sub(1)..=y1 + 1 {
            out.push((z, x, y));
        }
    }
    out
}

/// The crate root: layer files name their sources relative to it.
/// Waits until a server process started by a test answers `/health` on `addr`; panics
/// when the process exits first or `within` passes.
pub fn wait_until_up(addr: SocketAddr, child: &mut std::process::Child, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        if TcpStream::connect(addr).is_ok() && http_get(addr, "/health", &[]).status == 200 {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status}");
        }
        assert!(started.elapsed() < within, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A key that may write `layer`, made with the command line (`urbantile keys add`).
pub fn write_key(layers: &Path, database: &str, layer: &str) -> String {
    add_key(layers, database, &["writer", "--write", layer])
}

/// A key made with `urbantile keys add ARGS` on this store: the line it prints last.
pub fn add_key(layers: &Path, database: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(urbantile_bin())
        .current_dir(root())
        .args(["keys", "add"])
        .args(args)
        .arg("--layers")
        .arg(layers)
        .args(["--database", database])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub data: Arc<Dataset>,
    pub dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl TestServer {
    /// Starts urbantile on 127.0.0.1 (a free port) over a new store in a temp folder,
    /// ingesting every layer of `layers_dir` from its `[source]` on first start.
    pub fn start(layers_dir: &Path) -> TestServer {
        Self::start_with_body_limit(layers_dir, urbantile::api::DEFAULT_MAX_BODY)
    }

    /// Like [`TestServer::start`], refusing request bodies over `max_body` bytes.
    pub fn start_with_body_limit(layers_dir: &Path, max_body: usize) -> TestServer {
        Self::start_configured(layers_dir, urbantile::compute::Limits::default(), |s| {
            s.max_body = max_body
        })
    }

    /// Like [`TestServer::start`], with these compute pool limits.
    pub fn start_with_limits(layers_dir: &Path, limits: urbantile::compute::Limits) -> TestServer {
        Self::start_configured(layers_dir, limits, |_| {})
    }

    /// Like [`TestServer::start`], with these compute pool limits and the router's state
    /// changed by `configure`.
    pub fn start_configured(
        layers_dir: &Path,
        limits: urbantile::compute::Limits,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        std::env::set_current_dir(root()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("urbantile.db").display());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (addr, data) = runtime.block_on(async {
            let data = Dataset::open(layers_dir, &url)
                .await
                .unwrap()
                .with_compute(urbantile::compute::Compute::new(limits));
            data.ingest_sources_if_empty().await.unwrap();
            let data = data.go_live().await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut state = AppState::new(data.clone());
            configure(&mut state);
            let app = router(state);
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (addr, data)
        });
        TestServer {
            addr,
            data,
            dir,
            _runtime: runtime,
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http_get(self.addr, path, headers)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Any request with a body, over a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http_request(self.addr, method, path, headers, body)
    }

    /// The store's path, for the command line (`--database`).
    pub fn database_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("urbantile.db").display()
        )
    }

    /// Makes an access key (as `urbantile keys add` does) and returns its secret.
    pub fn add_key(&self, name: &str, read: &str, write: &str) -> String {
        use urbantile::auth::{KeyInfo, Scope, generate_key, hash_key};
        let key = generate_key().unwrap();
        let info = KeyInfo {
            name: name.into(),
            read: Scope::parse(read.trim_matches('-'), self.data.layers()).unwrap(),
            write: Scope::parse(write.trim_matches('-'), self.data.layers()).unwrap(),
            created_at: 0,
            revoked_at: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(self.data.store().add_key(&info, &hash_key(&key)))
            .unwrap();
        key
    }
}

/// A layers folder `layers` inside `dir` with copies of some bundled layer files, those in
/// `private` marked `private = true`.
pub fn layer_folder(dir: &Path, public: &[&str], private: &[&str]) -> PathBuf {
    let layers = dir.join("layers");
    std::fs::create_dir(&layers).unwrap();
    for (ids, mark) in [(public, false), (private, true)] {
        for id in ids {
            let text = std::fs::read_to_string(root().join(format!("layers/{id}.toml"))).unwrap();
            let text = if mark {
                text.replace("[source]", "private = true\n[source]")
            } else {
                text
            };
            std::fs::write(layers.join(format!("{id}.toml")), text).unwrap();
        }
    }
    layers
}

/// A request with a body and a Content-Length, over a fresh connection.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before it has read the body, and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Like [`http_request`], for a server that may be going away: the status, or `None` when
/// the connection is refused or cut before a status line comes.
pub fn try_http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<u16> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut raw = req.into_bytes();
    raw.extend_from_slice(body);
    send_raw(addr, &raw, false)
}

/// Sends raw request bytes over a fresh connection; the status of the answer, or `None`
/// when no status line came. With `hang_up`, the client closes its side after the request,
/// as one whose body is cut off does; the server may then drop the request unanswered.
pub fn send_raw(addr: SocketAddr, request: &[u8], hang_up: bool) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    // The server may answer and close before it has read a whole (bad) body.
    let _ = s.write_all(request);
    if hang_up {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let line = answer.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One GET over a fresh connection (`Connection: close`); reads to end of stream.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// Gunzips a response body.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}
