//! Several `urbantile serve` processes (replicas) on one PostGIS database, over real
//! sockets: started together on an empty database they seed it once; a write answered by one
//! is in the items, tiles and `/changes` of the other; If-Match writers on different replicas
//! lose no update; a key revoked is refused by both; an edit made directly in SQL reaches
//! every replica, even one whose notice was lost, under a stream of writes; after random writes
//! spread over both, every tile either serves has the features of one encoded from the
//! database. Needs
//! `URBANTILE_TEST_PG` (see tests/common/pg.rs).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::PgDatabase;
use common::{
    Response, all_at_once, free_addr, http_get, http_request, layer_folder, root, tile_of,
    urbantile_bin,
};
use geozero::mvt::{Message, Tile};
use serde_json::{Value, json};

/// One server process; killed when dropped.
struct Replica {
    addr: SocketAddr,
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replicas on one throwaway database, and what keeps them alive.
struct Cluster {
    replicas: Vec<Replica>,
    layers: PathBuf,
    dir: tempfile::TempDir,
    /// Runs the SQL a test sends as another client would.
    rt: tokio::runtime::Runtime,
    /// Declared last: dropped once the servers are gone.
    db: PgDatabase,
}

/// `n` servers started at the same moment on a new, empty database, each ready to answer;
/// `None` when PostGIS tests are skipped.
fn cluster(n: usize) -> Option<Cluster> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(PgDatabase::create())?;
    let dir = tempfile::tempdir().unwrap();
    let layers = layer_folder(dir.path(), &["urban_problems", "schools"], &[]);
    let replicas: Vec<Replica> = (0..n)
        .map(|i| {
            let addr = free_addr();
            let log = std::fs::File::create(dir.path().join(format!("replica{i}.log"))).unwrap();
            let child = Command::new(urbantile_bin())
                .current_dir(root())
                .args(["serve", "--bind", &addr.to_string(), "--layers"])
                .arg(&layers)
                .args(["--database", &db.url])
                .env("RUST_LOG", "urbantile=info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            Replica { addr, child }
        })
        .collect();
    let mut c = Cluster {
        replicas,
        layers,
        dir,
        rt,
        db,
    };
    for i in 0..n {
        c.wait_ready(i);
    }
    Some(c)
}

impl Cluster {
    fn addr(&self, i: usize) -> SocketAddr {
        self.replicas[i].addr
    }

    fn wait_ready(&mut self, i: usize) {
        let started = Instant::now();
        let addr = self.replicas[i].addr;
        loop {
            if TcpStream::connect(addr).is_ok() && http_get(addr, "/health", &[]).status == 200 {
                return;
            }
            if let Some(status) = self.replicas[i].child.try_wait().unwrap() {
                panic!("replica {i} exited ({status}): {}", self.log(i));
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "replica {i} did not start: {}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("replica{i}.log"))).unwrap_or_default()
    }

    /// A key made with the command line on the shared database.
    fn write_key(&self) -> String {
        let out = Command::new(urbantile_bin())
            .current_dir(root())
            .args([
                "keys",
                "add",
                "writer",
                "--write",
                "urban_problems",
                "--layers",
            ])
            .arg(&self.layers)
            .args(["--database", &self.db.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().last().unwrap().to_owned()
    }

    fn exec(&self, statement: &str) {
        self.rt.block_on(async {
            let mut conn = self.db.connect().await;
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        });
    }

    fn sql(&self, statement: &str) -> i64 {
        self.rt.block_on(async {
            let mut conn = self.db.connect().await;
            sqlx::query_scalar::<_, i64>(statement)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        })
    }
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> Response {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("Content-Type", "application/geo+json"),
        ("Authorization", auth.as_str()),
    ];
    headers.extend_from_slice(extra);
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    http_request(addr, method, path, &headers, &bytes)
}

/// A POST of one urban problem with a write key.
fn create_problem(addr: SocketAddr, key: &str, body: &Value) -> Response {
    send(
        addr,
        "POST",
        "/collections/urban_problems/items",
        key,
        body,
        &[],
    )
}

fn problem(lon: f64, lat: f64, status: &str) -> Value {
    json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "ticket_no": "UP-REPLICA",
            "category": "pothole",
            "status": status,
            "description": "replica test",
            "reported_at": "2026-11-20T10:00:00Z",
        }
    })
}

fn count(addr: SocketAddr) -> u64 {
    let r = http_get(addr, "/collections/urban_problems/items?limit=1", &[]);
    assert_eq!(r.status, 200);
    r.json()["numberMatched"].as_u64().unwrap()
}

/// The `status` of each feature of the urban_problems layer of a tile, by id.
fn tile_statuses(addr: SocketAddr, t: (u8, u32, u32)) -> HashMap<u64, String> {
    let r = http_get(
        addr,
        &format!("/tiles/urban_problems/{}/{}/{}.mvt", t.0, t.1, t.2),
        &[],
    );
    let mut out = HashMap::new();
    if r.status == 204 {
        return out;
    }
    assert_eq!(r.status, 200);
    let tile = Tile::decode(&r.body[..]).unwrap();
    for layer in &tile.layers {
        for f in &layer.features {
            for pair in f.tags.chunks(2) {
                if layer.keys[pair[0] as usize] == "status" {
                    let v = layer.values[pair[1] as usize].string_value.clone();
                    out.insert(f.id.unwrap(), v.unwrap_or_default());
                }
            }
        }
    }
    out
}

/// Waits until `check` holds, at most `limit`; how long it took.
fn until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
    started.elapsed()
}

/// A `/changes` subscriber: the raw event stream of one replica.
struct Subscriber {
    stream: TcpStream,
    seen: String,
}

impl Subscriber {
    fn connect(addr: SocketAddr) -> Subscriber {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                format!("GET /changes?layers=urban_problems HTTP/1.1\r\nHost: {addr}\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Subscriber {
            stream,
            seen: String::new(),
        }
    }

    /// Reads events until one holds `needle`, at most `limit`.
    fn wait_for(&mut self, needle: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            assert!(
                started.elapsed() < limit,
                "no event with {needle} in {limit:?}: {}",
                self.seen
            );
            if let Ok(n) = self.stream.read(&mut buf) {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        started.elapsed()
    }
}

/// How many features with this `status` a replica's index holds (an item query runs on the
/// index, unlike a single item, which is read from the store).
fn indexed(addr: SocketAddr, status: &str) -> u64 {
    let r = http_get(
        addr,
        &format!("/collections/urban_problems/items?limit=1&status={status}"),
        &[],
    );
    assert_eq!(r.status, 200);
    r.json()["numberMatched"].as_u64().unwrap()
}

/// A feature's status as the store has it (a single item is read from the store).
fn item_status(addr: SocketAddr, id: u64) -> Option<String> {
    let r = http_get(
        addr,
        &format!("/collections/urban_problems/items/{id}"),
        &[],
    );
    match r.status {
        404 => None,
        200 => Some(r.json()["properties"]["status"].as_str()?.to_owned()),
        other => panic!("GET item {id}: {other}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn replicas_started_together_seed_once_and_see_each_others_writes() {
    let Some(c) = cluster(2) else { return };
    let (a, b) = (c.addr(0), c.addr(1));
    // Seeded once, not once per replica.
    let seeded = count(a);
    assert!(seeded > 100);
    assert_eq!(count(b), seeded);
    assert_eq!(
        c.sql("SELECT count(*) FROM features WHERE layer = 'urban_problems'"),
        seeded as i64
    );
    let key = c.write_key();
    let (lon, lat) = (24.9452, 60.1687);
    // z16: past urban_problems' clusters, so the tile shows each feature's status.
    let t = tile_of(lon, lat, 16);
    // B has the tile cached before A writes into it.
    let before = tile_statuses(b, t);
    let mut feed = Subscriber::connect(b);

    let r = create_problem(a, &key, &problem(lon, lat, "new"));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let answered = Instant::now();
    let id = r.json()["id"].as_u64().unwrap();
    let etag = r.header("etag").unwrap().to_owned();
    until(Duration::from_secs(1), "the item in B's index", || {
        indexed(b, "new") == 1
    });
    until(Duration::from_secs(1), "the tile on B", || {
        tile_statuses(b, t).get(&id).map(String::as_str) == Some("new")
    });
    feed.wait_for(&format!("\"id\":{id}"), Duration::from_secs(1));
    eprintln!(
        "A's write in B's item, tile and feed after {:?}",
        answered.elapsed()
    );
    assert!(!before.contains_key(&id));

    // B updates with A's ETag; A, still holding that ETag, is refused.
    let patch = json!({"properties": {"status": "seen by B"}});
    let r = send(
        b,
        "PATCH",
        &format!("/collections/urban_problems/items/{id}"),
        &key,
        &patch,
        &[("If-Match", &etag)],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The ETag is the row's version: every replica gives the same one for the same state,
    // and a write that changes nothing still makes a new one.
    let patched = r.header("etag").unwrap().to_owned();
    assert_ne!(patched, etag);
    let item = format!("/collections/urban_problems/items/{id}");
    assert_eq!(
        http_get(a, &item, &[]).header("etag"),
        Some(patched.as_str())
    );
    assert_eq!(
        http_get(b, &item, &[]).header("etag"),
        Some(patched.as_str())
    );
    let again = send(b, "PATCH", &item, &key, &patch, &[("If-Match", &patched)]);
    assert_eq!(again.status, 200);
    let etag_again = again.header("etag").unwrap().to_owned();
    assert_ne!(etag_again, patched);
    assert_eq!(
        http_get(a, &item, &[]).header("etag"),
        Some(etag_again.as_str())
    );
    let patch = json!({"properties": {"status": "stale"}});
    let r = send(
        a,
        "PATCH",
        &format!("/collections/urban_problems/items/{id}"),
        &key,
        &patch,
        &[("If-Match", &etag)],
    );
    assert_eq!(r.status, 412);
    assert_eq!(item_status(a, id).as_deref(), Some("seen by B"));
    until(Duration::from_secs(1), "B's update in A's tile", || {
        tile_statuses(a, t).get(&id).map(String::as_str) == Some("seen by B")
    });

    let r = send(
        a,
        "DELETE",
        &format!("/collections/urban_problems/items/{id}"),
        &key,
        &Value::Null,
        &[],
    );
    assert_eq!(r.status, 204);
    until(Duration::from_secs(1), "the delete on B", || {
        indexed(b, "seen%20by%20B") == 0 && !tile_statuses(b, t).contains_key(&id)
    });
    assert_eq!(item_status(b, id), None);

    // Write to visible on the other replica, 40 writes alternating between the two: each
    // within a second (the test's bound, on a machine shared with the rest of the tests);
    // the 100 ms p99 target is measured by benches/pg.sh, not asserted here.
    let mut lags = Vec::new();
    for i in 0..40 {
        let (to, other) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let r = create_problem(
            to,
            &key,
            &problem(lon + i as f64 * 1e-4, lat, &format!("lag-{i}")),
        );
        assert_eq!(r.status, 201);
        let answered = Instant::now();
        until(
            Duration::from_secs(1),
            "a write in the other replica's index",
            || indexed(other, &format!("lag-{i}")) == 1,
        );
        lags.push(answered.elapsed());
    }
    lags.sort();
    eprintln!(
        "write to visible on the other replica: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().unwrap()
    );
    assert_eq!(count(a), seeded + 40);
    assert_eq!(count(b), seeded + 40);

    // Keys live in the database: a revocation on the command line holds on every replica
    // within KEY_FRESH (each takes a key the store confirmed for that long).
    let out = Command::new(urbantile_bin())
        .current_dir(root())
        .args(["keys", "revoke", "writer", "--layers"])
        .arg(&c.layers)
        .args(["--database", &c.db.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(urbantile::dataset::KEY_FRESH + Duration::from_millis(50));
    for at in [a, b] {
        let r = create_problem(at, &key, &problem(lon, lat, "x"));
        assert_eq!(r.status, 401);
    }
}

/// Concurrent single-feature creates share transactions (group commit): checked in the
/// database itself, by the transaction ids of the rows. Each request still gets its own
/// feature, and a feature a CHECK constraint of the database refuses fails alone, with 422.
#[test]
fn concurrent_creates_share_commits_and_a_refused_one_fails_alone() {
    let Some(c) = cluster(2) else { return };
    let key = c.write_key();
    c.exec(
        "ALTER TABLE features ADD CONSTRAINT no_refused \
         CHECK (properties->>'status' IS DISTINCT FROM 'refused')",
    );
    let before = count(c.addr(0)) as i64;
    let (threads, rounds) = (12, 4);
    let addr = c.addr(0);
    let answers: Vec<(String, u16, Option<u64>)> = all_at_once(threads, rounds, |t, r| {
        // One in six is refused by the database, not by urbantile.
        let status = if (t + r) % 6 == 5 {
            "refused".to_owned()
        } else {
            format!("g{t}-{r}")
        };
        let body = problem(24.94 + t as f64 * 1e-3, 60.16 + r as f64 * 1e-3, &status);
        let res = create_problem(addr, &key, &body);
        let id = (res.status == 201).then(|| res.json()["id"].as_u64().unwrap());
        if res.status == 422 {
            assert!(res.text().contains("no_refused"), "{}", res.text());
        }
        (status, res.status, id)
    });
    let mut ids = std::collections::HashSet::new();
    for (status, code, id) in &answers {
        if status == "refused" {
            assert_eq!(*code, 422, "{status}");
            continue;
        }
        assert_eq!(*code, 201, "{status}");
        let id = id.unwrap();
        assert!(ids.insert(id), "id {id} given twice");
        // Each answer names the feature it sent, on the other replica too.
        until(Duration::from_secs(1), "the create on replica 1", || {
            item_status(c.addr(1), id).as_deref() == Some(status.as_str())
        });
    }
    let created = ids.len() as i64;
    assert!(created >= (threads * rounds * 4 / 5) as i64);
    assert_eq!(
        c.sql("SELECT count(*) FROM features WHERE layer = 'urban_problems' AND properties->>'description' = 'replica test'"),
        created
    );
    let commits = c.sql(
        "SELECT count(DISTINCT xmin::text) FROM features \
         WHERE layer = 'urban_problems' AND properties->>'description' = 'replica test'",
    );
    assert!(
        commits < created,
        "{created} creates took {commits} transactions: none were shared"
    );
    for i in 0..2 {
        until(
            Duration::from_secs(1),
            "every create in both indexes",
            || count(c.addr(i)) as i64 == before + created,
        );
    }
}

#[test]
fn if_match_writers_on_two_replicas_lose_no_update() {
    let Some(c) = cluster(2) else { return };
    let key = c.write_key();
    let r = create_problem(c.addr(0), &key, &problem(24.95, 60.17, "0"));
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_u64().unwrap();
    let item = format!("/collections/urban_problems/items/{id}");
    let (writers, rounds) = (4, 10);
    std::thread::scope(|scope| {
        for w in 0..writers {
            let addr = c.addr(w % 2);
            let (key, item) = (&key, &item);
            scope.spawn(move || {
                let mut done = 0;
                while done < rounds {
                    // Read, increment, write back only if nobody wrote in between: the
                    // replica read may lag the other's last write, which If-Match catches.
                    let got = http_get(addr, item, &[]);
                    assert_eq!(got.status, 200);
                    let n: u64 = got.json()["properties"]["status"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let etag = got.header("etag").unwrap().to_owned();
                    let patch = json!({"properties": {"status": (n + 1).to_string()}});
                    let r = send(addr, "PATCH", item, key, &patch, &[("If-Match", &etag)]);
                    match r.status {
                        200 => done += 1,
                        412 => {}
                        other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
                    }
                }
            });
        }
    });
    let total = (writers * rounds).to_string();
    assert_eq!(item_status(c.addr(0), id), Some(total.clone()));
    for i in 0..2 {
        until(
            Duration::from_secs(1),
            "the last update in both indexes",
            || indexed(c.addr(i), &total) == 1,
        );
    }
}

#[test]
fn an_edit_made_in_sql_or_a_replace_on_the_command_line_reaches_every_replica() {
    let Some(c) = cluster(2) else { return };
    let (lon, lat) = (24.9402, 60.1702);
    let t = tile_of(lon, lat, 16);
    for i in 0..2 {
        tile_statuses(c.addr(i), t);
    }
    let id = c.sql(&format!(
        "INSERT INTO features (layer, geom, properties) VALUES ('urban_problems', \
         ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326), \
         '{{\"status\": \"from sql\", \"category\": \"litter\"}}') RETURNING id"
    )) as u64;
    for i in 0..2 {
        let took = until(Duration::from_secs(1), "an SQL insert on a replica", || {
            tile_statuses(c.addr(i), t).get(&id).map(String::as_str) == Some("from sql")
        });
        eprintln!("SQL insert in replica {i}'s tile after at most {took:?}");
    }
    c.sql(&format!(
        "UPDATE features SET properties = properties || '{{\"status\": \"fixed in sql\"}}' \
         WHERE id = {id} RETURNING id"
    ));
    for i in 0..2 {
        until(Duration::from_secs(1), "an SQL update on a replica", || {
            item_status(c.addr(i), id).as_deref() == Some("fixed in sql")
                && tile_statuses(c.addr(i), t).get(&id).map(String::as_str) == Some("fixed in sql")
        });
    }
    c.sql(&format!(
        "DELETE FROM features WHERE id = {id} RETURNING id"
    ));
    for i in 0..2 {
        until(Duration::from_secs(1), "an SQL delete on a replica", || {
            item_status(c.addr(i), id).is_none() && !tile_statuses(c.addr(i), t).contains_key(&id)
        });
    }

    // A bulk replace from the command line is one `reload`, and both replicas reload.
    let file = c.dir.path().join("two_schools.geojsonseq");
    let school = |lon: f64, name: &str| {
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, 60.17]},
               "properties": {"name": name}})
        .to_string()
    };
    std::fs::write(
        &file,
        format!("{}\n{}\n", school(24.94, "A"), school(24.95, "B")),
    )
    .unwrap();
    let out = Command::new(urbantile_bin())
        .current_dir(root())
        .args(["ingest", "schools"])
        .arg(&file)
        .args(["--replace", "--layers"])
        .arg(&c.layers)
        .args(["--database", &c.db.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The first start's ingest and the replace: one `reload` each, nothing per feature.
    let logged = c.sql(
        "SELECT count(*) FILTER (WHERE kind = 'reload') * 1000 + count(*) \
         FROM changes WHERE layer = 'schools'",
    );
    assert_eq!(
        logged,
        2 * 1000 + 2,
        "a bulk write is logged once, not per feature"
    );
    for i in 0..2 {
        until(Duration::from_secs(1), "a --replace on a replica", || {
            let r = http_get(c.addr(i), "/collections/schools/items?limit=1", &[]);
            r.json()["numberMatched"] == 2
        });
    }

    // A TRUNCATE fires no row trigger; its statement trigger logs a reload per layer.
    c.rt.block_on(async {
        let mut conn = c.db.connect().await;
        sqlx::query("TRUNCATE features")
            .execute(&mut conn)
            .await
            .unwrap();
    });
    for i in 0..2 {
        until(Duration::from_secs(1), "a TRUNCATE on a replica", || {
            ["schools", "urban_problems"].iter().all(|l| {
                let r = http_get(c.addr(i), &format!("/collections/{l}/items?limit=1"), &[]);
                r.json()["numberMatched"] == 0
            })
        });
    }
}

/// A row written in SQL whose notice never came (here: logged with an origin of its own,
/// for which the trigger sends none, as a notice lost while the listener reconnects) is
/// numbered by the replica's poll, which a stream of the replica's own writes, each with a
/// notice it skips, does not put off: it reaches the index while the stream goes on.
#[test]
fn a_write_without_a_notice_is_found_by_the_poll_under_a_stream_of_writes() {
    let Some(c) = cluster(1) else { return };
    let key = c.write_key();
    let addr = c.addr(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut written = 0u32;
            let started = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the stream did not stop"
                );
                let body = problem(24.94 + f64::from(written % 100) * 1e-4, 60.17, "streamed");
                let r = create_problem(addr, &key, &body);
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                written += 1;
            }
            written
        });
        // The stream is under way.
        until(Duration::from_secs(10), "the first streamed writes", || {
            indexed(addr, "streamed") >= 20
        });
        c.exec(
            "DO $$ BEGIN \
               PERFORM set_config('urbantile.origin', '99', true); \
               INSERT INTO features (layer, geom, properties) VALUES ('urban_problems', \
                 ST_SetSRID(ST_MakePoint(24.95, 60.18), 4326), \
                 '{\"status\": \"unannounced\", \"category\": \"litter\"}'); \
             END $$",
        );
        let streamed_before = indexed(addr, "streamed");
        let took = until(Duration::from_secs(3), "a write without a notice", || {
            indexed(addr, "unannounced") == 1
        });
        let streamed_after = indexed(addr, "streamed");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        eprintln!(
            "found after {took:?}, while {} streamed writes were indexed ({written} in all)",
            streamed_after - streamed_before
        );
        // Found while the stream went on, not once it stopped.
        assert!(streamed_after > streamed_before);
    });
}

/// A tile's features, decoded: id -> (layer, properties as text, geometry commands), so
/// that tiles whose features are in another order compare equal.
type Decoded = std::collections::BTreeMap<u64, (String, Vec<(String, String)>, Vec<u32>)>;

fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Decoded::new();
    if bytes.is_empty() {
        return out;
    }
    let tile = Tile::decode(bytes).unwrap();
    for layer in &tile.layers {
        for f in &layer.features {
            let mut tags: Vec<(String, String)> = f
                .tags
                .chunks(2)
                .map(|p| {
                    let v = &layer.values[p[1] as usize];
                    (layer.keys[p[0] as usize].clone(), format!("{v:?}"))
                })
                .collect();
            tags.sort();
            out.insert(
                f.id.unwrap(),
                (layer.name.clone(), tags, f.geometry.clone()),
            );
        }
    }
    out
}

/// Random writes (seeded) spread over two replicas; then every tile around them, as each
/// replica serves it (from its cache or not), holds the same features as the tile encoded
/// from an index built afresh from the database.
#[test]
fn random_writes_over_two_replicas_leave_every_tile_as_the_database_has_it() {
    use urbantile::composite::{TileLayer, render_tile_clustered};
    let Some(c) = cluster(2) else { return };
    let key = c.write_key();
    let mut rng = urbantile::generate::rng::Rng::new(7);
    let mut next = move |n: u64| rng.below(n);
    let mut tiles = Vec::new();
    for z in [14u8, 15, 16, 17] {
        let (_, x, y) = tile_of(24.945, 60.170, z);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            tiles.push((z, x + dx - 1, y + dy - 1));
        }
    }
    let tile_path =
        |t: (u8, u32, u32)| format!("/tiles/urban_problems/{}/{}/{}.mvt", t.0, t.1, t.2);
    let mut ours: Vec<u64> = Vec::new();
    for step in 0..120 {
        let at = c.addr(next(2) as usize);
        if next(2) == 0 {
            // Reads fill both caches between the writes.
            let t = tiles[next(tiles.len() as u64) as usize];
            let r = http_get(at, &tile_path(t), &[]);
            assert!(r.status == 200 || r.status == 204);
            continue;
        }
        let spot = (
            24.935 + next(2000) as f64 * 1e-5,
            60.165 + next(1000) as f64 * 1e-5,
        );
        let body = problem(spot.0, spot.1, &format!("s{step}"));
        let action = if ours.is_empty() { 0 } else { next(3) };
        let r = match action {
            0 => {
                let r = create_problem(at, &key, &body);
                ours.push(r.json()["id"].as_u64().unwrap());
                r
            }
            1 => {
                let id = ours[next(ours.len() as u64) as usize];
                send(
                    at,
                    "PUT",
                    &format!("/collections/urban_problems/items/{id}"),
                    &key,
                    &body,
                    &[],
                )
            }
            _ => {
                let id = ours.swap_remove(next(ours.len() as u64) as usize);
                send(
                    at,
                    "DELETE",
                    &format!("/collections/urban_problems/items/{id}"),
                    &key,
                    &Value::Null,
                    &[],
                )
            }
        };
        assert!(
            r.status < 300,
            "{}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }

    // The tiles an index built from the database now gives.
    let defs = urbantile::config::load_layers(&c.layers).unwrap().live;
    let def = defs
        .iter()
        .find(|d| d.id.as_str() == "urban_problems")
        .unwrap();
    let features = c.rt.block_on(async {
        let store = urbantile::store::open(&c.db.url).await.unwrap();
        store.load_layer(&def.id).await.unwrap()
    });
    let index = urbantile::index::Index::new([&def.id]);
    index.replace(&def.id, urbantile::index::LayerIndex::build(def, features));
    // Up to the cluster zoom, the clusters of that index.
    let tree =
        urbantile::dataset::clusters::build_tree(def, &index.read(&def.id), Default::default())
            .map(std::sync::Arc::new);
    let want: Vec<Decoded> = tiles
        .iter()
        .map(|&(z, x, y)| {
            let layers = [TileLayer {
                def,
                index: index.slot(&def.id),
                filter: None,
            }];
            let clustered = def.cluster.as_ref().is_some_and(|c| z <= c.maxzoom);
            let clusters = [tree
                .clone()
                .filter(|_| clustered)
                .map(|tree| urbantile::cluster::Clustered { version: 0, tree })];
            let coord = urbantile::tiles::TileCoord { z, x, y };
            decode(&render_tile_clustered(&layers, &clusters, coord, None).bytes)
        })
        .collect();
    assert!(
        want.iter().any(|d| d.len() > 3),
        "the writes missed the tiles"
    );
    for i in 0..2 {
        for (t, want) in tiles.iter().zip(&want) {
            until(
                Duration::from_secs(1),
                "a replica's tile as the database has it",
                || {
                    let r = http_get(c.addr(i), &tile_path(*t), &[]);
                    decode(&r.body) == *want
                },
            );
        }
    }
}
