//! PostgreSQL stopped and started again under a running urbantile server, on a private
//! PostgreSQL instance of its own (initdb in a temp folder, on a free port), so that the
//! shared test server is never stopped: while the database is away, tiles, feature queries
//! and item pages are answered from memory and writes get 503 with `Retry-After` (never a 500, never a hang past the
//! pool timeout); once it is back, the server writes and follows the log again without a
//! restart, and no acknowledged write is lost. Needs PostgreSQL's binaries (tests/run.sh
//! installs them); `URBANTILE_SKIP_PG=1` skips it.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{http_get, http_request, layer_folder, root};
use serde_json::json;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long the database stays away (issue 11 asks for 10 s under a mixed load).
const OUTAGE: Duration = Duration::from_secs(10);

/// A PostgreSQL instance in a temp folder; stopped and removed when dropped.
struct PrivatePg {
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A PostgreSQL program run as the `postgres` user when this is root (PostgreSQL refuses
/// to run as root), as this user otherwise.
fn pg_command(program: &str) -> Command {
    let path = format!("{PG_BIN}/{program}");
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePg {
    fn create() -> PrivatePg {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed: run tests/run.sh, or set URBANTILE_SKIP_PG=1"
        );
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        let mut initdb = pg_command("initdb");
        initdb
            .args(["--auth=trust", "--username=urbantile", "--no-sync", "-D"])
            .arg(&data);
        run(initdb, "initdb");
        let pg = PrivatePg {
            data,
            port: common::free_addr().port(),
            _dir: dir,
        };
        pg.start();
        pg
    }

    fn start(&self) {
        let mut c = pg_command("pg_ctl");
        c.args(["-w", "-D"]).arg(&self.data).args([
            "-o",
            &format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
                self.port
            ),
            "-l",
        ]);
        c.arg(self.data.join("log")).arg("start");
        c.stdout(Stdio::null());
        run(c, "pg_ctl start");
    }

    fn stop(&self) {
        let mut c = pg_command("pg_ctl");
        c.args(["-w", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop");
        c.stdout(Stdio::null());
        run(c, "pg_ctl stop");
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://urbantile@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let mut c = pg_command("pg_ctl");
        c.args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop");
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn problem(status: &str) -> Vec<u8> {
    json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.9452, 60.1687]},
        "properties": {"category": "pothole", "status": status, "reported_at": "2026-11-20T10:00:00Z"}
    })
    .to_string()
    .into_bytes()
}

fn post(addr: SocketAddr, key: &str, status: &str) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let auth = format!("Bearer {key}");
    let r = http_request(
        addr,
        "POST",
        "/collections/urban_problems/items",
        &[
            ("Content-Type", "application/geo+json"),
            ("Authorization", &auth),
        ],
        &problem(status),
    );
    let retry = r.header("retry-after").map(str::to_owned);
    (r.status, retry, started.elapsed())
}

fn indexed(addr: SocketAddr, status: &str) -> u64 {
    let r = http_get(
        addr,
        &format!("/collections/urban_problems/items?limit=1&status={status}"),
        &[],
    );
    assert_eq!(r.status, 200);
    r.json()["numberMatched"].as_u64().unwrap()
}

#[test]
fn a_database_outage_answers_503_and_the_server_recovers_by_itself() {
    if common::pg::server_url().is_none() {
        return;
    }
    let pg = PrivatePg::create();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sql = |statement: String, db: &str| {
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&pg.url(db)).await.unwrap();
            sqlx::query(&statement).execute(&mut conn).await.unwrap();
        })
    };
    sql("CREATE DATABASE city".into(), "postgres");
    let url = format!("{}?pool_timeout_secs=2", pg.url("city"));
    let dir = tempfile::tempdir().unwrap();
    let layers = layer_folder(dir.path(), &["urban_problems"], &[]);
    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_addr().port())
        .parse()
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_urbantile");
    let key = common::write_key(&layers, &url, "urban_problems");
    let _server = Server(
        Command::new(bin)
            .current_dir(root())
            .args(["serve", "--bind", &addr.to_string(), "--layers"])
            .arg(&layers)
            .args(["--database", &url])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() || http_get(addr, "/health", &[]).status != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "no start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The tile the writes go to.
    let tile = "/tiles/urban_problems/15/18654/9484.mvt";
    assert_eq!(post(addr, &key, "before").0, 201);

    // Writers and tile readers run through the outage; every answer is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for w in 0..2 {
        let (stop, acknowledged, answers, key) = (
            stop.clone(),
            acknowledged.clone(),
            answers.clone(),
            key.clone(),
        );
        load.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let status = format!("w{w}-{i}");
                let (code, retry, took) = post(addr, &key, &status);
                if code == 201 {
                    acknowledged.lock().unwrap().push(status);
                }
                answers.lock().unwrap().push((code, retry, took));
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    pg.stop();
    let down = Instant::now();
    let tile_status = http_get(addr, tile, &[]).status;
    assert_eq!(tile_status, 200);
    let mut tiles_while_down = 0;
    let mut items_while_down = 0;
    while down.elapsed() < OUTAGE {
        let started = Instant::now();
        assert_eq!(http_get(addr, tile, &[]).status, tile_status);
        assert!(started.elapsed() < Duration::from_millis(500));
        tiles_while_down += 1;
        // Feature queries and item pages are answered from memory too, marked as such and
        // never cached; the store's wait for a connection (2 s here) bounds them.
        let page = http_get(addr, "/collections/urban_problems/items?status=before", &[]);
        assert_eq!(page.status, 200);
        let features = page.json()["features"].as_array().unwrap().clone();
        assert_eq!(features.len(), 1, "{:?}", page.json());
        assert_eq!(features[0]["properties"]["status"], "before");
        let coords = &features[0]["geometry"]["coordinates"];
        assert_eq!(features[0]["geometry"]["type"], "Point");
        assert_eq!(coords, &json!([24.9452, 60.1687]));
        assert_eq!(features[0]["properties"]["category"], "pothole");
        let one = http_get(
            addr,
            &format!(
                "/collections/urban_problems/items/{}",
                features[0]["id"].as_u64().unwrap()
            ),
            &[],
        );
        assert_eq!(one.status, 200);
        if page.header("urbantile-answered-from").is_some() {
            assert_eq!(page.header("cache-control"), Some("no-store"));
            assert!(one.header("etag").is_none(), "a version is not known");
            items_while_down += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        items_while_down > 0,
        "no item page was answered from memory"
    );
    let health = http_get(addr, "/health", &[]);
    assert_eq!(health.status, 503);
    pg.start();
    // Writes come back by themselves.
    let back = Instant::now();
    loop {
        if post(addr, &key, "after").0 == 201 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "writes did not come back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("writes back {:?} after the restart", back.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }

    let answers = answers.lock().unwrap();
    let unavailable = answers.iter().filter(|(c, _, _)| *c == 503).count();
    eprintln!(
        "{} writes during the run: {} answered 503, {tiles_while_down} tiles from memory",
        answers.len(),
        unavailable
    );
    assert!(unavailable > 0, "no write met the outage");
    for (code, retry, took) in answers.iter() {
        assert!(matches!(code, 201 | 503), "a write answered {code}");
        if *code == 503 {
            assert!(retry.is_some(), "503 without Retry-After");
        }
        // The pool waits 2 s for a connection; a write queued behind another waits longer.
        assert!(*took < Duration::from_secs(8), "a write took {took:?}");
    }
    // Nothing acknowledged was lost, and the server follows the log again: an SQL insert
    // reaches its index.
    let acknowledged = acknowledged.lock().unwrap();
    for status in acknowledged
        .iter()
        .chain(["before".to_owned(), "after".to_owned()].iter())
    {
        assert_eq!(indexed(addr, status), 1, "acknowledged write {status}");
    }
    sql(
        "INSERT INTO features (layer, geom, properties) VALUES ('urban_problems', \
         ST_SetSRID(ST_MakePoint(24.94, 60.17), 4326), '{\"status\": \"sql-after\"}')"
            .into(),
        "city",
    );
    let started = Instant::now();
    while indexed(addr, "sql-after") != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the feed did not come back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
