//! The PostGIS store: any number of urbantile servers (replicas) share one PostgreSQL
//! database through sqlx, each with its own index and tile cache. Geometry is
//! `geometry(Geometry, 4326)` (written and read as WKB, with a GiST index), properties are
//! `jsonb` (sent and read as text), ids are identities, and every row has a `version`.
//! Migrations are in `migrations/postgres/` (sqlx holds an advisory lock while it runs them,
//! so replicas starting together migrate once).
//!
//! # Edits and If-Match
//! A writer's transaction runs at READ COMMITTED and marks itself with `SET LOCAL
//! urbantile.origin`. A feature read with [`LayerWriter::get`] is overwritten or deleted only
//! `WHERE version = <the version read>`: if another replica (or an SQL client) changed it in
//! between, nothing is written and the writer fails with [`StoreError::Changed`]
//! ([`ErrorKind::Conflict`]); [`crate::dataset::live`] then runs the edit again from its reads, which
//! checks `If-Match` against the new state.
//!
//! # The change log
//! A row trigger on `features` logs every INSERT, UPDATE and DELETE in the writing
//! transaction, urbantile's and anyone else's (a bulk write sets `urbantile.bulk`, which the
//! trigger skips, and logs one `reload` row itself). A row is logged without a position:
//! identities commit out of order and rollbacks leave holes, so they cannot be the feed's
//! dense `seq`. The sequencer (the database function `urbantile_sequence()`, one round
//! trip, called by [`sequence`]) gives positions after commit: under a transaction-level
//! advisory lock (one sequencer at a time across all replicas) it reads the counter and
//! numbers, in one UPDATE, every row its snapshot sees without a position (those of
//! committed transactions only), then moves the counter and notifies. Positions
//! thus come from one counter, in the order of the sequencer's runs: dense, never reused,
//! the same on every replica, and a reader's snapshot always sees a prefix of them (each
//! run starts after the previous one's commit is visible). A transaction that commits
//! while a run is under way is numbered by the next run. (Numbering only rows older than
//! the snapshot's xmin, so that positions follow transaction ids, would add nothing to
//! this, and would let any long transaction on the cluster, xids being cluster-wide, hold
//! every replica's feed back for as long as it runs.) Who numbers:
//! - urbantile's writers, not through the sequencer: each numbers its own rows as the
//!   last statement of its transaction (`urbantile_number_mine()`, migration 0004), under
//!   the same lock, which it then holds until its COMMIT, so that the next holder reads the
//!   counter only once those positions are visible; [`LayerWriter::commit`] returns its
//!   changes with their positions. A group of creates ([`Features::create_batch`]) is one
//!   statement, `urbantile_create()`, that inserts, numbers and commits in one round trip;
//!   it writes its log rows with their positions itself, under the same lock (migration
//!   0005), rather than through the trigger and a numbering after.
//!   One round trip and one commit fewer on every edit's path, for a lock held over the
//!   COMMIT's round trip (a writer's connection lost mid-transaction holds it until
//!   PostgreSQL notices, which [`IDLE_WRITER`] bounds);
//! - every replica when the trigger notifies of a write made outside urbantile (LISTEN on
//!   `urbantile_changes`; the sequencer's own notifications, which carry the last
//!   position, wake the readers without a run), and at every poll that times out, in case a
//!   notification was missed.
//!
//! Pruning takes another advisory lock without waiting: one replica prunes at a time, and
//! the others skip their turn.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use geozero::{CoordDimensions, ToWkb};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::auth::{KeyInfo, Scope};
use crate::model::{Bbox, FeatureId, LayerId, StoredFeature};
use crate::store::{
    BatchFailed, Change, ChangeKind, ChangeLog, ErrorKind, FeatureStore, Features, Keys,
    LayerStats, LayerWriter, NewFeature, SeedLock, StoreError, WriteMode, now_ms, random_origin,
    redact_url,
};

/// The follower's read: the log's rows after `$1` (at most `$2`) joined with the
/// features they name ([`FeatureStore::changes_and_features_since`]).
static LOG_WITH_FEATURES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let columns = changelog::CHANGE_COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {columns}, f.id, ST_AsBinary(f.geom), f.properties::text, f.version \
         FROM (SELECT * FROM changes WHERE pos > $1 ORDER BY pos LIMIT $2) c \
         LEFT JOIN features f ON f.layer = c.layer AND f.id = c.feature_id \
         ORDER BY c.pos"
    )
});

/// The channel replicas LISTEN on. The payload is the last position numbered (from a
/// writer or the sequencer), or empty (from the logging trigger: rows wait for positions).
const CHANNEL: &str = "urbantile_changes";

/// Advisory lock keys (one 64-bit space per database; "urbt" and a number). The
/// sequencer's, 0x7572_6274_0001, is taken inside `urbantile_sequence()`.
const PRUNE_LOCK: i64 = 0x7572_6274_0002;

/// How long PostgreSQL lets a writer's transaction sit idle before it ends it (SET LOCAL
/// `idle_in_transaction_session_timeout`): a writer holds the sequencer's lock over its
/// COMMIT, and one whose connection vanished without a word (a replica cut off by the
/// network) would otherwise stall every writer until TCP gives up. A writer is never idle
/// that long: a bulk ingest reads its next batch in well under it.
const IDLE_WRITER: &str = "60s";
const SEED_LOCK: i64 = 0x7572_6274_0003;

/// A pooled connection idle this long is checked (pinged) before it is used again; one
/// used more recently was checked when it was released.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Runs of the sequencer that lose a race (a deadlock with a pruner, say) before it gives up.
const SEQUENCER_ATTEMPTS: u32 = 5;

mod changelog;
mod kept;
mod writer;

use changelog::{Wakeup, listen, sequence};
use kept::Kept;
use writer::PgLayerWriter;

pub struct PgStore {
    pool: PgPool,
    origin: u64,
    /// Set by the listener task when another process may have written.
    wakeup: Arc<Wakeup>,
    listener: tokio::task::JoinHandle<()>,
    /// Connections the busiest statements keep between them ([`kept`]).
    kept: Kept,
}

impl PgStore {
    /// Connects to a `postgres://` URL and brings its schema up to date (creating the
    /// PostGIS extension if the role may).
    ///
    /// Two URL parameters are urbantile's own (the rest go to the driver): `pool_size`,
    /// the connections this server keeps at most for queries (default 10, at least 2: a
    /// first start holds one for its seed lock; LISTEN takes one more, apart), and
    /// `pool_timeout_secs`, how long a request waits for a connection, or for the database
    /// to come back, before it gets 503 with `Retry-After` (default 10).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redact_url(url),
            source,
        };
        let pool_settings = PoolSettings::from_url(url)?;
        let options = PgConnectOptions::from_str(&pool_settings.driver_url)
            .map_err(open_err)?
            .application_name("urbantile");
        let pool = PgPoolOptions::new()
            .max_connections(pool_settings.size)
            .acquire_timeout(pool_settings.timeout)
            // Only a connection that sat idle is checked before use (a round trip): one
            // just released was checked then, and checking every acquire doubled the
            // round trips of every statement on a busy server.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= CHECK_IDLE_AFTER {
                        use sqlx::Connection;
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        // LISTEN keeps its connection for good: it has a pool of its own, so that
        // `pool_size` counts the connections that run queries.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(pool_settings.timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        let wakeup = Arc::new(Wakeup::default());
        let listener = tokio::spawn(listen(listen_pool, wakeup.clone()));
        Ok(PgStore {
            kept: Kept::new(pool.clone(), pool_settings.size),
            pool,
            origin: random_origin(),
            wakeup,
            listener,
        })
    }

    /// Numbers the change-log rows committed so far (see the module docs). Any handle may
    /// run it at any time.
    pub async fn sequence(&self) -> Result<(), StoreError> {
        sequence(&self.pool).await
    }
}

/// The pool parameters of a database URL, and the URL without them.
#[derive(Debug, PartialEq)]
struct PoolSettings {
    driver_url: String,
    size: u32,
    timeout: Duration,
}

impl PoolSettings {
    fn from_url(url: &str) -> Result<PoolSettings, StoreError> {
        let mut out = PoolSettings {
            driver_url: url.to_owned(),
            size: 10,
            timeout: Duration::from_secs(10),
        };
        let Some((base, query)) = url.split_once('?') else {
            return Ok(out);
        };
        let bad = |reason: String| StoreError::UrlParameter {
            url: redact_url(url),
            reason,
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "pool_size" => {
                    out.size = v
                        .parse()
                        .ok()
                        .filter(|n| (2..=1000).contains(n))
                        .ok_or_else(|| bad(format!("pool_size={v} is not 2 to 1000")))?;
                }
                "pool_timeout_secs" => {
                    let secs: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && *s <= 3600.0)
                        .ok_or_else(|| {
                            bad(format!(
                                "pool_timeout_secs={v} is not a number of seconds up to 3600"
                            ))
                        })?;
                    out.timeout = Duration::from_secs_f64(secs);
                }
                _ => kept.push(pair),
            }
        }
        out.driver_url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(out)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[async_trait]
impl FeatureStore for PgStore {
    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The log's rows joined with the features they name: one statement.
    async fn changes_and_features_since(
        &self,
        seq: u64,
        limit: u32,
    ) -> Result<super::ChangesRead, StoreError> {
        let mut conn = self.kept.take().await?;
        let rows = sqlx::query(&LOG_WITH_FEATURES)
            .bind(seq as i64)
            .bind(limit as i64)
            .fetch_all(conn.conn())
            .await?;
        conn.done();
        let changes = changelog::change_rows(&rows)?;
        let mut features: super::FeaturesRead = Default::default();
        // The feature's columns follow the log's.
        let width = changelog::CHANGE_COLUMNS.split(", ").count();
        for (row, change) in rows.iter().zip(&changes) {
            let Some(id) = change.feature else { continue };
            let found = match row.try_get::<Option<i64>, _>(width)? {
                None => None,
                Some(_) => {
                    let version = row.try_get::<Option<i64>, _>(width + 3)?;
                    let wkb = row.try_get::<Option<&[u8]>, _>(width + 1)?;
                    let properties = row.try_get::<Option<&str>, _>(width + 2)?;
                    let decoded = match (version, wkb, properties) {
                        (Some(v), Some(wkb), Some(p)) => {
                            super::decode_feature(&change.layer, id, v as u64, wkb, p).ok()
                        }
                        _ => None,
                    };
                    match decoded {
                        Some(f) => Some(f),
                        // A row urbantile cannot read (written in SQL): the follower reads
                        // them again itself, and tells the bad one apart.
                        None => {
                            return Ok(super::ChangesRead {
                                changes,
                                features: None,
                            });
                        }
                    }
                }
            };
            features
                .entry(change.layer.clone())
                .or_default()
                .insert(id, found);
        }
        Ok(super::ChangesRead {
            changes,
            features: Some(features),
        })
    }

    /// Every commit is durable in PostgreSQL already: this closes the connections.
    async fn close(&self) -> Result<(), StoreError> {
        // Aborting the listener task drops its connection and pool.
        self.listener.abort();
        // Marks the pool closed at once, so that no connection is kept from here on.
        let closing = self.pool.close();
        self.kept.release_all();
        closing.await;
        Ok(())
    }

    /// A session-level advisory lock on a connection of its own, released by closing that
    /// connection when the guard is dropped.
    async fn seed_lock(&self) -> Result<SeedLock, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SEED_LOCK)
            .execute(&mut *conn)
            .await?;
        Ok(Box::new(SeedGuard(Some(conn))))
    }
}

struct SeedGuard(Option<PoolConnection<Postgres>>);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        // Out of the pool and dropped: the socket closes, the session ends, and the
        // server releases its locks. (Back in the pool it would keep the lock.)
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

#[async_trait]
impl Features for PgStore {
    async fn stats(&self, layer: &LayerId) -> Result<LayerStats, StoreError> {
        let row = sqlx::query(
            "WITH s AS (SELECT count(*) AS n, ST_Extent(geom) AS e FROM features WHERE layer = $1) \
             SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM s",
        )
        .bind(layer.as_str())
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        Ok(LayerStats {
            count: count as u64,
            bounds: bbox_columns(&row, 1)?,
        })
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM features)")
            .fetch_one(&self.pool)
            .await?;
        Ok(!any)
    }

    async fn load_layer(&self, layer: &LayerId) -> Result<Vec<StoredFeature>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ST_AsBinary(geom), properties::text, version FROM features \
             WHERE layer = $1 ORDER BY id",
        )
        .bind(layer.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| decode_row(layer, row)).collect()
    }

    async fn features_by_ids(
        &self,
        layer: &LayerId,
        ids: &[FeatureId],
    ) -> Result<Vec<StoredFeature>, StoreError> {
        let wanted: Vec<i64> = ids.iter().map(|id| id.0 as i64).collect();
        let mut conn = self.kept.take().await?;
        let rows = sqlx::query(
            "SELECT id, ST_AsBinary(geom), properties::text, version FROM features \
             WHERE layer = $1 AND id = ANY($2)",
        )
        .bind(layer.as_str())
        .bind(&wanted)
        .fetch_all(conn.conn())
        .await?;
        conn.done();
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let f = decode_row(layer, row)?;
            found.insert(f.id, f);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// One statement, `urbantile_create()` (migration 0005), which is its own transaction:
    /// one round trip for the whole batch. An error that says the database cannot be
    /// reached may have come after the statement's commit.
    async fn create_batch(
        &self,
        layer: &LayerId,
        features: &[(&NewFeature, Option<&str>)],
    ) -> Result<(Vec<FeatureId>, Vec<Change>), BatchFailed> {
        let failed = |error: StoreError| BatchFailed {
            maybe_stored: error.kind() == ErrorKind::Unavailable,
            error,
        };
        let c = writer::Columns::of(layer, features.iter().map(|(f, _)| *f)).map_err(|error| {
            BatchFailed {
                error,
                maybe_stored: false,
            }
        })?;
        let owners: Vec<Option<&str>> = features.iter().map(|(_, owner)| *owner).collect();
        let mut conn = self.kept.take().await.map_err(|e| failed(e.into()))?;
        let rows = sqlx::query(&format!(
            "SELECT {} FROM urbantile_create($1, $2, $3, $4, $5, $6, $7)",
            changelog::CHANGE_COLUMNS
        ))
        .bind(layer.as_str())
        .bind(self.origin as i64)
        .bind(&c.wkbs)
        .bind(&c.props)
        .bind(&c.starts)
        .bind(&c.ends)
        .bind(&owners)
        .fetch_all(conn.conn())
        .await
        .map_err(|e| failed(e.into()))?;
        conn.done();
        let changes = changelog::change_rows(&rows).map_err(failed)?;
        let mut ids: Vec<FeatureId> = changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Create)
            .filter_map(|c| c.feature)
            .collect();
        // Drawn in the order of the arrays (see the function).
        ids.sort_unstable();
        if ids.len() != features.len() {
            return Err(BatchFailed {
                error: StoreError::Unexpected {
                    layer: layer.clone(),
                    reason: format!(
                        "{} features sent, {} creations logged",
                        features.len(),
                        ids.len()
                    ),
                },
                maybe_stored: true,
            });
        }
        Ok((ids, changes))
    }

    async fn begin_write(
        &self,
        layer: &LayerId,
        mode: WriteMode,
    ) -> Result<Box<dyn LayerWriter>, StoreError> {
        let replace = mode == WriteMode::Replace;
        // BEGIN and the session flags in one round trip (a simple query, so no bound
        // parameters: the values are this handle's number and a constant).
        let mut tx = self
            .pool
            .begin_with(format!(
                "BEGIN; SELECT set_config('urbantile.origin', '{}', true), \
                 set_config('urbantile.bulk', '{}', true), \
                 set_config('idle_in_transaction_session_timeout', '{IDLE_WRITER}', true)",
                self.origin,
                if replace { "on" } else { "off" }
            ))
            .await?;
        let mut reload_bbox = None;
        if replace {
            // Two replaces of one layer take turns: the second's DELETE runs after the
            // first's commit and sees (and removes) everything it wrote.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("urbantile.layer:{layer}"))
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(
                "WITH s AS (SELECT ST_Extent(geom) AS e FROM features WHERE layer = $1) \
                 SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM s",
            )
            .bind(layer.as_str())
            .fetch_one(&mut *tx)
            .await?;
            reload_bbox = bbox_columns(&row, 0)?;
            sqlx::query("DELETE FROM features WHERE layer = $1")
                .bind(layer.as_str())
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(PgLayerWriter {
            tx,
            layer: layer.clone(),
            origin: self.origin,
            bulk: replace,
            kind: None,
            reload: replace,
            reload_bbox,
            versions: HashMap::new(),
        }))
    }
}

#[async_trait]
impl Keys for PgStore {
    async fn add_key(&self, key: &KeyInfo, key_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, read_layers, write_layers, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&key.name)
        .bind(key_hash)
        .bind(key.read.to_string())
        .bind(key.write.to_string())
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::KeyExists(key.name.clone()));
        }
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, read_layers, write_layers, created_at, revoked_at FROM api_keys \
             ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_row).collect()
    }

    async fn revoke_key(&self, name: &str, at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT name, read_layers, write_layers, created_at, revoked_at FROM api_keys \
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_row).transpose()
    }
}

/// Four nullable double columns from `at` on, as a box.
fn bbox_columns(row: &PgRow, at: usize) -> Result<Option<Bbox>, StoreError> {
    Ok(
        match (
            row.try_get(at)?,
            row.try_get(at + 1)?,
            row.try_get(at + 2)?,
            row.try_get(at + 3)?,
        ) {
            (Some(west), Some(south), Some(east), Some(north)) => Some(Bbox {
                west,
                south,
                east,
                north,
            }),
            _ => None,
        },
    )
}

fn key_row(row: &PgRow) -> Result<KeyInfo, StoreError> {
    Ok(KeyInfo {
        name: row.try_get(0)?,
        read: Scope::from_stored(row.try_get(1)?),
        write: Scope::from_stored(row.try_get(2)?),
        created_at: row.try_get(3)?,
        revoked_at: row.try_get(4)?,
    })
}

/// An `(id, WKB, properties as text, version)` row as a feature.
fn decode_row(layer: &LayerId, row: &PgRow) -> Result<StoredFeature, StoreError> {
    let id = FeatureId(row.try_get::<i64, _>(0)? as u64);
    let version = row.try_get::<i64, _>(3)? as u64;
    super::decode_feature(layer, id, version, row.try_get(1)?, row.try_get(2)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_parameters_are_taken_out_of_the_url() {
        let p = PoolSettings::from_url(
            "postgres://u:pw@h/db?sslmode=disable&pool_size=32&pool_timeout_secs=2.5",
        )
        .unwrap();
        assert_eq!(p.driver_url, "postgres://u:pw@h/db?sslmode=disable");
        assert_eq!((p.size, p.timeout), (32, Duration::from_millis(2500)));
        let p = PoolSettings::from_url("postgres://h/db?pool_size=2").unwrap();
        assert_eq!((p.driver_url.as_str(), p.size), ("postgres://h/db", 2));
        let p = PoolSettings::from_url("postgres://h/db").unwrap();
        assert_eq!((p.size, p.timeout), (10, Duration::from_secs(10)));
        let e = PoolSettings::from_url("postgres://u:pw@h/db?pool_size=0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "database URL postgres://u:***@h/db?pool_size=0: pool_size=0 is not 2 to 1000"
        );
        assert!(PoolSettings::from_url("postgres://h/db?pool_timeout_secs=-1").is_err());
    }
}
