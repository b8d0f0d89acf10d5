//! Throwaway PostgreSQL databases for the tests that need PostGIS.
//!
//! The server comes from `URBANTILE_TEST_PG` (a `postgres://` URL of a role that may create
//! databases; `tests/run.sh` sets it up and exports it). Without it these tests fail, naming
//! the variable, so that a run that did not test PostGIS never passes for one that did;
//! `URBANTILE_SKIP_PG=1` skips them instead, for a developer without PostgreSQL.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// A database of its own for one test, with PostGIS, dropped (best effort) at the end.
pub struct PgDatabase {
    /// The URL of the new database.
    pub url: String,
    admin_url: String,
    name: String,
}

/// The server URL the tests use, or `None` when they are to be skipped.
pub fn server_url() -> Option<String> {
    match std::env::var("URBANTILE_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("URBANTILE_SKIP_PG").is_ok_and(|v| v == "1") => {
            eprintln!("URBANTILE_SKIP_PG=1: skipping a PostGIS test");
            None
        }
        _ => panic!(
            "this test needs PostgreSQL with PostGIS: run tests/run.sh (which sets it up), or set \
             URBANTILE_TEST_PG=postgres://USER:PASSWORD@HOST:PORT/postgres (a role that may create \
             databases), or URBANTILE_SKIP_PG=1 to skip the PostGIS tests"
        ),
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl PgDatabase {
    /// A new, empty database with the PostGIS extension; `None` when PostGIS tests are
    /// skipped (see the module docs).
    pub async fn create() -> Option<PgDatabase> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin_url = server_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "urbantile_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = connect(&admin_url).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        let mut db = connect(&url).await;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
            .execute(&mut db)
            .await
            .unwrap_or_else(|e| panic!("CREATE EXTENSION postgis in {name}: {e}"));
        Some(PgDatabase {
            url,
            admin_url,
            name,
        })
    }

    /// A plain SQL connection to the database, as any client outside urbantile has.
    pub async fn connect(&self) -> sqlx::PgConnection {
        connect(&self.url).await
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL (URBANTILE_TEST_PG): {e}"))
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread with a
        // runtime of its own drops the database, closing what is still connected to it.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
