//! The server under hostile and malformed requests, over a real socket, on the bundled city
//! data:
//! - the two requests that used to take it down (a CQL2 filter nested 5,000 parentheses
//!   deep overflowed the stack; a `LIKE` pattern of many `%` ran for minutes on a runtime
//!   thread), on items and on tiles;
//! - 16 expensive requests at once: `/health` keeps answering quickly and the extra load is
//!   shed with 503 and `Retry-After`, never queued without end;
//! - 10,000 generated malformed or hostile requests (every route, every method, broken
//!   parameters, encodings, headers and bodies): no answer is a 5xx other than 503, every
//!   request gets a status line, and the server still answers afterwards.
//!
//! Schemathesis adds its own generated requests against the OpenAPI document in
//! `tests/openapi.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{TestServer, root};
use urbantile::generate::rng::Rng;

/// The tests here load the server on purpose, and one measures latency: they take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn raw(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    common::send_raw(addr, request, false)
}

#[test]
fn a_filter_nested_5000_deep_gets_a_400_that_names_the_limit() {
    let _turn = turn();
    let server = TestServer::start(&root().join("layers"));
    let deep = format!("{}name = 'x'{}", "(".repeat(5000), ")".repeat(5000));
    let json = format!(
        "{}true{}",
        r#"{"op":"not","args":["#.repeat(150),
        "]}".repeat(150)
    );
    for path in [
        format!("/collections/roads/items?filter={}", enc(&deep)),
        format!("/tiles/roads/15/18654/9484.mvt?filter={}", enc(&deep)),
        format!(
            "/collections/roads/items?filter-lang=cql2-json&filter={}",
            enc(&json)
        ),
        format!(
            "/collections/schools/nearest?point=24.94,60.17&filter={}",
            enc(&deep)
        ),
    ] {
        let r = server.get(&path, &[]);
        assert_eq!(r.status, 400, "{path:.80}");
        let body = r.json();
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("limit of 64 levels"),
            "{body}"
        );
    }
    assert_eq!(server.get("/health", &[]).status, 200);
}

#[test]
fn a_like_pattern_of_many_percent_signs_is_answered() {
    let _turn = turn();
    let server = TestServer::start(&root().join("layers"));
    let filter = format!("name LIKE '{}x'", "%".repeat(60));
    let items = server.get(
        &format!("/collections/roads/items?limit=5&filter={}", enc(&filter)),
        &[],
    );
    // Exponential backtracking would run into the deadline (a 503); a linear matcher
    // answers.
    assert_eq!(items.status, 200);
    let tile = server.get(
        &format!("/tiles/roads/15/18654/9484.mvt?filter={}", enc(&filter)),
        &[],
    );
    assert!(matches!(tile.status, 200 | 204), "{}", tile.status);
    let long = format!("name LIKE '{}'", "%a".repeat(600));
    let r = server.get(
        &format!("/collections/roads/items?filter={}", enc(&long)),
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("limit of 1024 characters"));
}

#[test]
fn health_answers_quickly_while_16_expensive_requests_run() {
    let _turn = turn();
    let server = TestServer::start(&root().join("layers"));
    let addr = server.addr;
    // Expensive on purpose: long LIKE patterns over every building and road, and an
    // aggregate, each scanning a whole layer with no spatial box to narrow it.
    let pattern = "%a%e%i%o%u%".repeat(90);
    let expensive = [
        format!(
            "/collections/buildings/items?limit=10000&filter={}",
            enc(&format!(
                "name LIKE '{pattern}' OR building LIKE '{pattern}'"
            ))
        ),
        format!(
            "/collections/roads/items?limit=10000&filter={}",
            enc(&format!(
                "name LIKE '{pattern}' OR highway LIKE '{pattern}'"
            ))
        ),
        "/collections/accidents/aggregate?by=zoning&sum=vehicles".to_owned(),
    ];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let path = expensive[i % expensive.len()].clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let request =
                        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                    statuses.push(raw(addr, request.as_bytes()));
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let r = server.get("/health", &[]);
        latencies.push(started.elapsed());
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<Option<u16>> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let ok = statuses.iter().filter(|s| **s == Some(200)).count();
    let shed = statuses.iter().filter(|s| **s == Some(503)).count();
    println!(
        "/health p50 {p50:?}, p99 {p99:?}; expensive requests: {ok} answered, {shed} shed with 503, {} in all",
        statuses.len()
    );
    assert!(
        statuses.iter().all(|s| matches!(s, Some(200 | 503))),
        "expensive requests got {:?}",
        statuses
            .iter()
            .filter(|s| !matches!(s, Some(200 | 503)))
            .collect::<Vec<_>>()
    );
    assert!(ok > 0, "no expensive request was answered");
    assert!(
        p99 < Duration::from_millis(100),
        "/health p99 {p99:?} under 16 expensive requests"
    );
}

#[test]
fn a_full_queue_sheds_with_503_and_retry_after() {
    let _turn = turn();
    // One worker, a queue of one and a short deadline: of many slow requests at once,
    // some are shed at once and some overrun; none waits for ever.
    let server = TestServer::start_with_limits(
        &root().join("layers"),
        urbantile::compute::Limits {
            threads: 1,
            queue: 1,
            deadline: Duration::from_millis(300),
        },
    );
    let addr = server.addr;
    let pattern = "%a%e%i%o%u%".repeat(90);
    let path = format!(
        "/collections/buildings/items?limit=10000&filter={}",
        enc(&format!(
            "name LIKE '{pattern}' OR building LIKE '{pattern}'"
        ))
    );
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .unwrap();
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let shed: Vec<&String> = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503"))
        .collect();
    assert!(!shed.is_empty(), "nothing was shed: {answers:?}");
    for a in &answers {
        assert!(
            a.starts_with("HTTP/1.1 200") || a.starts_with("HTTP/1.1 503"),
            "{a:.300}"
        );
        if a.starts_with("HTTP/1.1 503") {
            assert!(a.to_ascii_lowercase().contains("retry-after:"), "{a:.300}");
            assert!(a.contains("ServiceUnavailable"), "{a:.300}");
        }
    }
    assert_eq!(server.get("/health", &[]).status, 200);
}

#[test]
fn change_streams_past_the_bound_get_503_and_a_closed_one_frees_its_place() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["schools"], &[]);
    let streams = urbantile::api::changes::Subscribers::new(2);
    let in_server = streams.clone();
    let server =
        TestServer::start_configured(&layers, urbantile::compute::Limits::default(), |state| {
            state.subscribers = in_server
        });
    // Opens a stream and reads its status line; the stream stays open with the socket.
    let open = || {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /changes HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        (s, String::from_utf8_lossy(&head).into_owned())
    };
    let (first, a) = open();
    let (_second, b) = open();
    assert!(
        a.starts_with("HTTP/1.1 200") && b.starts_with("HTTP/1.1 200"),
        "{a}{b}"
    );
    let (_, c) = open();
    assert!(c.starts_with("HTTP/1.1 503"), "{c}");
    assert!(c.to_ascii_lowercase().contains("retry-after: 30"), "{c}");
    assert_eq!(streams.open(), 2);
    // A client that goes frees its place (the server notices on its next write to it, at
    // once for a closed socket on loopback, or at the keep-alive at the latest).
    drop(first);
    let t0 = std::time::Instant::now();
    while streams.open() > 1 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, d) = open();
    assert!(d.starts_with("HTTP/1.1 200"), "{d}");
}

/// Values that break parsers: empty, huge, negative, not numbers, encodings, markup,
/// traversal, deep nesting, long runs.
const NASTY: &[&str] = &[
    "",
    "-1",
    "0",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "18446744073709551616",
    "99999999999999999999999",
    "1,2",
    "1,2,3,4",
    "180,90,-180,-90",
    "24.94,60.17,24.95,60.18",
    "-180,-90,180,90,1,2",
    "24.94,60.17",
    "a,b",
    ",,,",
    "../../../etc/passwd",
    "<script>alert(1)</script>",
    "'",
    "\"",
    "\\",
    "%",
    "%%",
    "ä漢😀",
    "\u{0}",
    "\u{7f}",
    "..",
    "../..",
    "now",
    "2026-01-01T00:00:00Z",
    "2026-01-01/..",
    "../2026-13-45",
    "2026-02-30T25:61:61Z",
    "name = 'x'",
    "name LIKE '%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%x'",
    "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))",
    "S_INTERSECTS(geometry, BBOX(1,2))",
    "S_WITHIN(geometry, POINT(1e308 1e308))",
    "T_BEFORE(name, DATE('x'))",
    "n IN ()",
    "(((((((((((",
    ")))))",
    "NOT NOT NOT NOT",
    "{\"op\":\"and\",\"args\":[]}",
    "{\"op\":\"=\",\"args\":[{\"property\":\"name\"},[[[[[[1]]]]]]]}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]",
    "cql2-json",
    "cql2-text",
    "html",
    "json",
    "+name,-name,name",
    "geometry",
    "roads,roads",
    "*",
];

const PATHS: &[&str] = &[
    "/",
    "/conformance",
    "/api",
    "/catalog",
    "/health",
    "/ping",
    "/style.json",
    "/map",
    "/map/embed.js",
    "/collections",
    "/collections/{L}",
    "/collections/{L}/items",
    "/collections/{L}/items/{N}",
    "/collections/{L}/queryables",
    "/collections/{L}/nearest",
    "/collections/{L}/containing",
    "/collections/{L}/aggregate",
    "/collections/{L}/clusters/{N}/leaves",
    "/tiles/{L}.json",
    "/tiles/{L}/{Z}/{X}/{Y}.mvt",
    "/tiles/{L}/{Z}/{X}/{Y}.pbf",
    "/tiles/{L}/{Z}/{X}/{Y}",
    "/fonts/Noto%20Sans%20Regular/{N}.pbf",
    "/fonts/Noto%20Sans%20Bold,{L}/{Z}-{Y}.pbf",
    "/fonts/{N}/0-255.pbf",
];

const PARAMS: &[&str] = &[
    "bbox",
    "datetime",
    "limit",
    "offset",
    "filter",
    "filter-lang",
    "filter-crs",
    "bbox-crs",
    "properties",
    "sortby",
    "f",
    "point",
    "k",
    "max_distance",
    "by",
    "sum",
    "name",
    "status",
    "v",
    "bytes",
    "layers",
    "zz",
];

const LAYERS: &[&str] = &[
    "roads",
    "buildings",
    "schools",
    "accidents",
    "zoning",
    "urban_problems",
    "roads,schools",
    "nope",
    "roads,roads",
    "",
    "%2e%2e",
    "ROADS",
];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.below(list.len() as u64) as usize]
}

/// A value: a nasty one, a number, or random bytes (percent-encoded or, sometimes, raw).
fn value(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 | 1 => enc(pick(rng, NASTY)),
        2 => format!("{}", rng.below(1 << 20) as i64 - (1 << 10)),
        3 => enc(&"x".repeat(rng.below(20_000) as usize)),
        4 => (0..rng.below(40))
            .map(|_| format!("%{:02X}", rng.below(256)))
            .collect(),
        _ => {
            // Raw bytes that may not even be legal in a URI.
            let raw: String = (0..rng.below(12))
                .map(|_| (b' ' + rng.below(95) as u8) as char)
                .filter(|c| !matches!(c, ' ' | '#'))
                .collect();
            raw
        }
    }
}

/// A random request of one of a few kinds, as raw bytes, and whether its body is shorter
/// than it announces (the client then hangs up).
fn hostile_request(rng: &mut Rng, key: &str) -> (Vec<u8>, bool) {
    let mut path = pick(rng, PATHS)
        .replace("{L}", pick(rng, LAYERS))
        .replace("{N}", &value(rng))
        .replace(
            "{Z}",
            &[rng.below(30).to_string(), value(rng)][rng.below(2) as usize],
        )
        .replace("{X}", &rng.below(1 << 20).to_string())
        .replace(
            "{Y}",
            &[rng.below(1 << 16).to_string(), value(rng)][rng.below(2) as usize],
        );
    let n = rng.below(5);
    for i in 0..n {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(pick(rng, PARAMS));
        path.push('=');
        path.push_str(&value(rng));
    }
    let method = [
        "GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
    ][rng.below(9) as usize];
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    let extra = [
        "Accept-Encoding: gzip;q=garbage, *;q=-1".to_owned(),
        "Accept: text/html".to_owned(),
        "If-None-Match: \"x\", W/\"\", *".to_owned(),
        "If-Match: \"nope\"".to_owned(),
        "Authorization: Bearer".to_owned(),
        "Authorization: Bearer nonsense".to_owned(),
        "Authorization: Basic dXNlcjpwYXNz".to_owned(),
        format!("Authorization: Bearer {key}"),
        format!("Authorization: Bearer {key}"),
        "Last-Event-ID: -1".to_owned(),
        "X-Request-Id: a b c".to_owned(),
        "Content-Type: application/merge-patch+json".to_owned(),
        "Content-Type: application/geo+json".to_owned(),
        "Content-Type: text/plain".to_owned(),
        format!("X-Long: {}", "h".repeat(8000)),
    ];
    for _ in 0..rng.below(4) {
        head.push_str(&extra[rng.below(extra.len() as u64) as usize]);
        head.push_str("\r\n");
    }
    let body: Vec<u8> = match (method, rng.below(7)) {
        ("GET" | "HEAD" | "OPTIONS" | "DELETE", _) => Vec::new(),
        (_, 0) => br#"{"type":"Feature","geometry":{"type":"Point","coordinates":[24.94,60.17]},"properties":{"status":"new"}}"#.to_vec(),
        (_, 1) => br#"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[24.94,60.17],[24.95,60.18],[24.95,60.17],[24.94,60.18],[24.94,60.17]]]},"properties":{}}"#.to_vec(),
        (_, 2) => format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        (_, 3) => br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{"x":{"y":[1,2,{"z":null}]}}}]}"#.to_vec(),
        (_, 4) => (0..rng.below(2000)).map(|_| rng.below(256) as u8).collect(),
        (_, 5) => br#"{"geometry":{"type":"Point","coordinates":[1e400, -1e400]},"properties":null}"#.to_vec(),
        _ => br#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[24.9,60.1]"#.to_vec(),
    };
    // Sometimes the announced length is a lie (a body cut off, or longer than said).
    let announced = match rng.below(8) {
        0 => body.len() + 1 + rng.below(100) as usize,
        1 => body.len() / 2,
        _ => body.len(),
    };
    head.push_str(&format!("Content-Length: {announced}\r\n\r\n"));
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    (out, announced > body.len())
}

#[test]
fn ten_thousand_hostile_requests_get_no_server_error() {
    let _turn = turn();
    let server = TestServer::start(&root().join("layers"));
    let key = server.add_key("hostile", "*", "*");
    let addr = server.addr;
    let threads = 4;
    let per_thread = 2_500;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(1000 + t);
                let mut counts = std::collections::BTreeMap::<u16, usize>::new();
                for i in 0..per_thread {
                    let (request, cut) = hostile_request(&mut rng, &key);
                    let Some(status) = common::send_raw(addr, &request, cut) else {
                        if cut {
                            // The client hung up mid-body: nobody is left to answer.
                            *counts.entry(0).or_default() += 1;
                            continue;
                        }
                        panic!(
                            "request {t}/{i} got no status line: {:.300}",
                            String::from_utf8_lossy(&request)
                        );
                    };
                    assert!(
                        status < 500 || status == 503,
                        "request {t}/{i} got {status}: {:.400}",
                        String::from_utf8_lossy(&request)
                    );
                    *counts.entry(status).or_default() += 1;
                }
                counts
            })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for w in workers {
        for (status, n) in w.join().unwrap() {
            *counts.entry(status).or_default() += n;
        }
    }
    println!(
        "statuses of {} hostile requests: {counts:?}",
        threads * per_thread
    );
    assert_eq!(counts.values().sum::<usize>(), 10_000);
    // Not all refused at the door: the generator reaches the handlers too.
    assert!(counts.get(&200).copied().unwrap_or(0) > 500, "{counts:?}");
    assert_eq!(server.get("/health", &[]).status, 200);
}
