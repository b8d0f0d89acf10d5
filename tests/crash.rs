//! Crash and shutdown safety, on the real `urbantile serve` process:
//! - killed with SIGKILL in the middle of a bulk write (a FeatureCollection POST, one
//!   transaction), then started again on the same store: the batch must be there whole or
//!   not at all, and the server must work;
//! - stopped with SIGTERM during a stream of single-feature writes, with a change-feed
//!   subscriber connected: it must exit by itself, soon, and every write it acknowledged
//!   must be there after a restart.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_addr, http_get, http_request, root, urbantile_bin};
use serde_json::json;

/// `urbantile serve` on `addr`, ready to answer.
fn serve(layers: &Path, database: &str, addr: SocketAddr) -> Child {
    let mut child = Command::new(urbantile_bin())
        .current_dir(root())
        .args(["serve", "--bind", &addr.to_string(), "--layers"])
        .arg(layers)
        .args(["--database", database])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until_up(addr, &mut child, Duration::from_secs(60));
    child
}

fn count(addr: SocketAddr) -> u64 {
    let r = http_get(addr, "/collections/urban_problems/items?limit=1", &[]);
    assert_eq!(r.status, 200);
    r.json()["numberMatched"].as_u64().unwrap()
}

#[test]
fn a_server_killed_during_a_bulk_write_keeps_all_of_it_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["urban_problems"], &[]);
    let db_path = dir.path().join("store.db");
    let database = format!("sqlite://{}", db_path.display());
    let wal = dir.path().join("store.db-wal");

    let addr = free_addr();
    let mut server = serve(&layers, &database, addr);
    let key = common::write_key(&layers, &database, "urban_problems");
    let before = count(addr);

    let n = 20_000;
    let features: Vec<_> = (0..n)
        .map(|i| {
            json!({"type": "Feature",
                "geometry": {"type": "Point", "coordinates": [24.93 + (i % 200) as f64 * 1e-4, 60.16 + (i / 200) as f64 * 1e-4]},
                "properties": {"ticket_no": format!("BULK-{i}"), "category": "litter", "status": "new",
                               "reported_at": "2026-11-21T09:00:00Z"}})
        })
        .collect();
    let body = json!({"type": "FeatureCollection", "features": features}).to_string();
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let wal_before = wal_size();
    let auth = format!("Bearer {key}");
    let poster = std::thread::spawn(move || {
        // The connection dies with the server: the status line, if any came.
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        let head = format!(
            "POST /collections/urban_problems/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: {auth}\r\nContent-Type: application/geo+json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split(' ').nth(1)?.parse::<u16>().ok()
    });
    // Kill as soon as the transaction has written a few MB to the WAL, uncommitted.
    let started = Instant::now();
    while wal_size() < wal_before + (2 << 20) && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let grown = wal_size() >= wal_before + (2 << 20);
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    assert!(grown, "the write never reached the WAL");
    let answered = poster.join().unwrap();
    println!(
        "killed after {:?}; the POST was answered: {answered:?}",
        started.elapsed()
    );

    let mut server = serve(&layers, &database, addr);
    let after = count(addr);
    println!(
        "after the restart: {} of {n} features of the batch",
        after - before
    );
    assert!(
        after == before || after == before + n,
        "a partial batch survived: {before} before, {after} after"
    );
    if answered == Some(201) {
        assert_eq!(after, before + n, "an answered batch was lost");
    }
    // The store takes writes again, and tiles and queries answer.
    let r = http_request(
        addr,
        "POST",
        "/collections/urban_problems/items",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/geo+json"),
        ],
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
               "properties": {"ticket_no": "AFTER", "reported_at": "2026-11-21T10:00:00Z"}})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(r.status, 201);
    assert_eq!(count(addr), after + 1);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn sigterm_during_a_stream_of_writes_loses_no_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let layers = common::layer_folder(dir.path(), &["urban_problems"], &[]);
    let database = format!("sqlite://{}", dir.path().join("store.db").display());
    let addr = free_addr();
    let mut server = serve(&layers, &database, addr);
    let key = common::write_key(&layers, &database, "urban_problems");
    let before = count(addr);

    // A change-feed subscriber stays connected through the shutdown; its stream must end.
    let subscriber = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /changes HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut seen = Vec::new();
        let _ = stream.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });

    // Writers post one feature at a time, each on its own connection, and keep the
    // tickets of the writes answered 201, until the server stops answering.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let auth = format!("Bearer {key}");
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let ticket = format!("TERM-{w}-{i}");
                    let body = json!({"type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [24.93 + i as f64 * 1e-5, 60.16 + w as f64 * 1e-3]},
                        "properties": {"ticket_no": ticket, "category": "litter", "status": "new",
                                       "reported_at": "2026-11-21T09:00:00Z"}})
                    .to_string();
                    let Some(status) = common::try_http_request(
                        addr,
                        "POST",
                        "/collections/urban_problems/items",
                        &[("Authorization", &auth), ("Content-Type", "application/geo+json")],
                        body.as_bytes(),
                    ) else {
                        break;
                    };
                    match status {
                        201 => acknowledged.push(ticket),
                        // Refused while shutting down: not acknowledged, and fine.
                        503 => {}
                        other => panic!("a write got {other}"),
                    }
                    if i > 100_000 {
                        break;
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Let the writes flow, then SIGTERM in the middle of them.
    let started = Instant::now();
    while count(addr) < before + 60 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) sends SIGTERM to the server process this test started.
    let sent = unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let terminated = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            terminated.elapsed() < Duration::from_secs(30),
            "the server did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("stopped in {:?}: {status}", terminated.elapsed());
    assert!(status.success(), "the server exited with {status}");
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    subscriber.join().unwrap();
    assert!(acknowledged.len() > 10, "too few writes before the stop");

    // The store was checkpointed: the database file alone holds every acknowledged write.
    let wal = dir.path().join("store.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "the WAL was not checkpointed at shutdown"
    );
    let mut server = serve(&layers, &database, addr);
    for ticket in &acknowledged {
        let r = http_get(
            addr,
            &format!("/collections/urban_problems/items?ticket_no={ticket}"),
            &[],
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["numberMatched"],
            1,
            "acknowledged write {ticket} is missing after the restart"
        );
    }
    println!("{} acknowledged writes, all kept", acknowledged.len());
    server.kill().unwrap();
    server.wait().unwrap();
}
