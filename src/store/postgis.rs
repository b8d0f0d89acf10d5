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
//! ([`ErrorKind::Conflict`]); [`crate::live`] then runs the edit again from its reads, which
//! checks `If-Match` against the new state.
//!
//! # The change log
//! A row trigger on `features` logs every INSERT, UPDATE and DELETE in the writing
//! transaction, urbantile's and anyone else's (a bulk write sets `urbantile.bulk`, which the
//! trigger skips, and logs one `reload` row itself). A row is logged without a position:
//! identities commit out of order and rollbacks leave holes, so they cannot be the feed's
//! dense `seq`. The sequencer ([`sequence`]) gives positions after commit: under a
//! transaction-level advisory lock (one sequencer at a time across all replicas) it reads
//! the counter and numbers, in one UPDATE, every row its snapshot sees without a position
//! (those of committed transactions only), then moves the counter and notifies. Positions
//! thus come from one counter, in the order of the sequencer's runs: dense, never reused,
//! the same on every replica, and a reader's snapshot always sees a prefix of them (each
//! run starts after the previous one's commit is visible). A transaction that commits
//! while a run is under way is numbered by the next run. (Numbering only rows older than
//! the snapshot's xmin, so that positions follow transaction ids, would add nothing to
//! this, and would let any long transaction on the cluster, xids being cluster-wide, hold
//! every replica's feed back for as long as it runs.) Who runs it:
//! - the writer, right after its commit ([`LayerWriter::commit`] returns its changes with
//!   their positions);
//! - every replica when woken (LISTEN on `urbantile_changes`: the sequencer notifies, and
//!   the trigger notifies for writes made outside urbantile) and at every poll, in case a
//!   notification was missed or a writer died between its commit and its sequencing.
//!
//! Pruning takes another advisory lock without waiting: one replica prunes at a time, and
//! the others skip their turn.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use geozero::{CoordDimensions, ToGeo, ToWkb};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::Notify;

use crate::auth::{KeyInfo, Scope};
use crate::model::{Bbox, Feature, FeatureId, LayerId, Properties, StoredFeature};
use crate::store::{
    Change, ChangeKind, ChangeLog, ErrorKind, FeatureStore, Features, Keys, LayerStats,
    LayerWriter, NewFeature, SeedLock, StoreError, WriteMode, now_ms, random_origin, redact_url,
};

/// The channel replicas LISTEN on; a payload is not needed.
const CHANNEL: &str = "urbantile_changes";

/// Advisory lock keys (one 64-bit space per database; "urbt" and a number). The
/// sequencer's, 0x7572_6274_0001, is taken inside `urbantile_sequence()`.
const PRUNE_LOCK: i64 = 0x7572_6274_0002;
const SEED_LOCK: i64 = 0x7572_6274_0003;

/// Rows per bulk INSERT: one statement of five array parameters (`unnest`), so the
/// parameter limit does not apply; the size bounds one round trip's memory.
const ROWS_PER_STATEMENT: usize = 5_000;

/// Runs of the sequencer that lose a race (a deadlock with a pruner, say) before it gives up.
const SEQUENCER_ATTEMPTS: u32 = 5;

pub struct PgStore {
    pool: PgPool,
    origin: u64,
    /// Change-log row ids of this handle's commits whose outcome it does not know (the
    /// connection was lost during COMMIT): [`ChangeLog::changes_since`] reports them with
    /// origin 0, so that this server applies them like another's if they did commit.
    uncertain: Uncertain,
    /// Set by the listener task when another process may have written.
    woken: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl PgStore {
    /// Connects to a `postgres://` URL and brings its schema up to date (creating the
    /// PostGIS extension if the role may).
    ///
    /// Two URL parameters are urbantile's own (the rest go to the driver): `pool_size`,
    /// the connections this server keeps at most for queries (default 10, at least 2: a
    /// first start holds one for its seed lock; LISTEN takes one more, apart), and
    /// `pool_timeout_secs`, how
    /// long a request waits for a connection, or for the database to come back, before it
    /// gets 503 with `Retry-After` (default 10).
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
        let woken = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(listen_pool, woken.clone()));
        Ok(PgStore {
            pool,
            origin: random_origin(),
            uncertain: Uncertain::default(),
            woken,
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

/// Wakes `woken` at every notification on [`CHANNEL`], for as long as the pool is open;
/// reconnects after a lost connection, and then wakes anyway (something may have been
/// missed meanwhile; the readers' poll covers the rest).
async fn listen(pool: PgPool, woken: Arc<Notify>) {
    // An outage is logged once, when it starts, and once when it ends (the readers log
    // their own failures).
    let mut failing = false;
    let failed = |e: sqlx::Error, failing: &mut bool| {
        if !std::mem::replace(failing, true) {
            tracing::warn!("listening for store changes: {e}; retrying every second");
        }
    };
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                failed(e, &mut failing);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            failed(e, &mut failing);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if std::mem::take(&mut failing) {
            tracing::info!("listening for store changes again");
        }
        woken.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => woken.notify_one(),
                // The connection was lost (and is being made again): what was notified
                // meanwhile is gone, so the reader looks anyway.
                Ok(None) => {
                    woken.notify_one();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    failed(e, &mut failing);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Gives dense positions to the change-log rows of committed transactions that have none
/// yet, in one call of the database function `urbantile_sequence` (see the module docs and
/// migrations/postgres/0001_store.sql); a no-op, without a lock, when there are none.
async fn sequence(pool: &PgPool) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        let run = sqlx::query("SELECT urbantile_sequence()")
            .execute(pool)
            .await
            .map_err(StoreError::from);
        match run {
            Err(e) if e.kind() == ErrorKind::Conflict && attempt < SEQUENCER_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
            }
            done => return done.map(|_| ()),
        }
    }
}

#[async_trait]
impl FeatureStore for PgStore {
    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Every commit is durable in PostgreSQL already: this closes the connections.
    async fn close(&self) -> Result<(), StoreError> {
        // Aborting the listener task drops its connection and pool.
        self.listener.abort();
        self.pool.close().await;
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
            "SELECT id, ST_AsBinary(geom), properties::text FROM features \
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
        let rows = sqlx::query(
            "SELECT id, ST_AsBinary(geom), properties::text FROM features \
             WHERE layer = $1 AND id = ANY($2)",
        )
        .bind(layer.as_str())
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let f = decode_row(layer, row)?;
            found.insert(f.id, f);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
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
                 set_config('urbantile.bulk', '{}', true)",
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
            pool: self.pool.clone(),
            uncertain: self.uncertain.clone(),
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

const CHANGE_COLUMNS: &str =
    "pos, layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin, id";

type Uncertain = Arc<parking_lot::Mutex<std::collections::HashSet<i64>>>;

#[async_trait]
impl ChangeLog for PgStore {
    fn origin(&self) -> u64 {
        self.origin
    }

    /// Only rows with a position: committed, and a prefix (see the module docs).
    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE pos > $1 ORDER BY pos LIMIT $2"
        ))
        .bind(seq as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut changes = change_rows(&rows)?;
        let mut uncertain = self.uncertain.lock();
        if !uncertain.is_empty() {
            for (change, row) in changes.iter_mut().zip(&rows) {
                if uncertain.remove(&row.try_get::<i64, _>(10)?) {
                    change.origin = 0;
                }
            }
        }
        Ok(changes)
    }

    async fn change_span(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query("SELECT min(pos), max(pos) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        let first: Option<i64> = row.try_get(0)?;
        let last: Option<i64> = row.try_get(1)?;
        Ok(first.zip(last).map(|(a, b)| (a as u64, b as u64)))
    }

    async fn prune_changes_through(&self, seq: u64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !mine {
            return Ok(0);
        }
        // Rows without a position yet are never pruned (NULL <= n is not true).
        let done = sqlx::query("DELETE FROM changes WHERE pos <= $1")
            .bind(seq as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Returns at a notification or after `timeout`, and then runs the sequencer either
    /// way, so that rows written outside urbantile (or left by a writer that died after
    /// its commit) get their positions.
    ///
    /// Cancel-safe: the sequencer runs as a task of its own, to the end, even when the
    /// caller stops waiting (the feed does, when its own server wrote). A query cut off
    /// half-way would cost its connection, and a new one costs PostGIS's start-up in the
    /// server process (tens of milliseconds).
    async fn wait_for_changes(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.woken.notified()).await;
        let pool = self.pool.clone();
        if let Ok(Err(e)) = tokio::spawn(async move { sequence(&pool).await }).await {
            tracing::warn!(
                "numbering the change log: {}",
                crate::model::error_chain(&e)
            );
        }
    }
}

/// Rows of [`CHANGE_COLUMNS`] as changes, one for one.
fn change_rows(rows: &[PgRow]) -> Result<Vec<Change>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let layer: String = row.try_get(1)?;
        let kind: String = row.try_get(3)?;
        // A row this build cannot read (a layer name no layer file can have, written in
        // SQL; an unknown kind) is kept, as a reload of a layer no server has or of its
        // own layer, rather than skipped: a hole in the positions would read as pruning.
        let layer = LayerId::new(&layer)
            .unwrap_or_else(|_| LayerId::new("_unreadable").expect("a valid layer id"));
        let kind = ChangeKind::parse(&kind).unwrap_or(ChangeKind::Reload);
        out.push(Change {
            seq: row.try_get::<i64, _>(0)? as u64,
            layer,
            feature: row
                .try_get::<Option<i64>, _>(2)?
                .map(|i| FeatureId(i as u64)),
            kind,
            bbox: bbox_columns(row, 4)?,
            at_ms: row.try_get(8)?,
            origin: row.try_get::<i64, _>(9)? as u64,
        });
    }
    Ok(out)
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

/// An `(id, WKB, properties as text)` row as a feature.
fn decode_row(layer: &LayerId, row: &PgRow) -> Result<StoredFeature, StoreError> {
    let id = FeatureId(row.try_get::<i64, _>(0)? as u64);
    let bad = |reason: String| StoreError::Geometry {
        layer: layer.clone(),
        id,
        reason,
    };
    let wkb: &[u8] = row.try_get(1)?;
    let geometry = geozero::wkb::Wkb(wkb)
        .to_geo()
        .map_err(|e| bad(e.to_string()))?;
    let props: &str = row.try_get(2)?;
    let properties: Properties =
        serde_json::from_str(props).map_err(|e| bad(format!("properties: {e}")))?;
    Ok(StoredFeature {
        id,
        feature: Feature {
            geometry,
            properties,
        },
    })
}

struct PgLayerWriter {
    tx: Transaction<'static, Postgres>,
    /// For the sequencer run after commit.
    pool: PgPool,
    uncertain: Uncertain,
    layer: LayerId,
    origin: u64,
    /// Whether `urbantile.bulk` is on in this transaction (the trigger then logs nothing).
    bulk: bool,
    /// The `urbantile.kind` set in this transaction, if any.
    kind: Option<ChangeKind>,
    /// Whether commit logs a `reload` (after `--replace` or a bulk insert), and the extent
    /// it covers so far.
    reload: bool,
    reload_bbox: Option<Bbox>,
    /// The version of each feature [`LayerWriter::get`] read: its overwrite or delete
    /// requires it still.
    versions: HashMap<FeatureId, i64>,
}

impl PgLayerWriter {
    fn wkb(&self, f: &NewFeature) -> Result<Vec<u8>, StoreError> {
        f.feature
            .geometry
            .to_wkb(CoordDimensions::xy())
            .map_err(|e| StoreError::Geometry {
                layer: self.layer.clone(),
                id: FeatureId(0),
                reason: e.to_string(),
            })
    }

    fn changed(&self, id: FeatureId) -> StoreError {
        StoreError::Changed {
            layer: self.layer.clone(),
            id,
        }
    }

    /// Sets the session flags the trigger reads, when they differ from what is set.
    async fn set_flags(&mut self, bulk: bool, kind: Option<ChangeKind>) -> Result<(), StoreError> {
        if self.bulk != bulk {
            sqlx::query("SELECT set_config('urbantile.bulk', $1, true)")
                .bind(if bulk { "on" } else { "off" })
                .execute(&mut *self.tx)
                .await?;
            self.bulk = bulk;
        }
        if let Some(kind) = kind
            && self.kind != Some(kind)
        {
            sqlx::query("SELECT set_config('urbantile.kind', $1, true)")
                .bind(kind.as_str())
                .execute(&mut *self.tx)
                .await?;
            self.kind = Some(kind);
        }
        Ok(())
    }
}

#[async_trait]
impl LayerWriter for PgLayerWriter {
    async fn insert(&mut self, features: &[NewFeature]) -> Result<Vec<FeatureId>, StoreError> {
        self.set_flags(true, None).await?;
        let mut ids = Vec::with_capacity(features.len());
        for chunk in features.chunks(ROWS_PER_STATEMENT) {
            let mut wkbs = Vec::with_capacity(chunk.len());
            let mut props = Vec::with_capacity(chunk.len());
            let mut starts = Vec::with_capacity(chunk.len());
            let mut ends = Vec::with_capacity(chunk.len());
            for f in chunk {
                wkbs.push(self.wkb(f)?);
                props.push(serde_json::Value::Object(f.feature.properties.clone()).to_string());
                starts.push(f.time.start);
                ends.push(f.time.end);
                let bbox = Bbox::of(&f.feature.geometry);
                self.reload_bbox = match (self.reload_bbox, bbox) {
                    (Some(a), Some(b)) => Some(a.union(b)),
                    (a, b) => a.or(b),
                };
            }
            let mut new_ids: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO features (layer, geom, properties, t_start, t_end) \
                 SELECT $1, ST_GeomFromWKB(g, 4326), p::jsonb, s, e \
                 FROM unnest($2::bytea[], $3::text[], $4::bigint[], $5::bigint[]) AS t(g, p, s, e) \
                 RETURNING id",
            )
            .bind(self.layer.as_str())
            .bind(&wkbs)
            .bind(&props)
            .bind(&starts)
            .bind(&ends)
            .fetch_all(&mut *self.tx)
            .await?;
            // Identities are drawn row by row in the order unnest yields them, so sorted
            // ids are in the order of the features given.
            new_ids.sort_unstable();
            ids.extend(new_ids.into_iter().map(|i| FeatureId(i as u64)));
        }
        self.reload |= !features.is_empty();
        Ok(ids)
    }

    async fn get(&mut self, id: FeatureId) -> Result<Option<StoredFeature>, StoreError> {
        let row = sqlx::query(
            "SELECT id, ST_AsBinary(geom), properties::text, version FROM features \
             WHERE id = $1 AND layer = $2",
        )
        .bind(id.0 as i64)
        .bind(self.layer.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        self.versions.insert(id, row.try_get(3)?);
        decode_row(&self.layer, &row).map(Some)
    }

    async fn create(&mut self, feature: &NewFeature) -> Result<FeatureId, StoreError> {
        self.set_flags(false, None).await?;
        let wkb = self.wkb(feature)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO features (layer, geom, properties, t_start, t_end) \
             VALUES ($1, ST_GeomFromWKB($2, 4326), $3::jsonb, $4, $5) RETURNING id",
        )
        .bind(self.layer.as_str())
        .bind(wkb)
        .bind(serde_json::Value::Object(feature.feature.properties.clone()).to_string())
        .bind(feature.time.start)
        .bind(feature.time.end)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(FeatureId(id as u64))
    }

    async fn overwrite(
        &mut self,
        id: FeatureId,
        feature: &NewFeature,
        kind: ChangeKind,
    ) -> Result<bool, StoreError> {
        self.set_flags(false, Some(kind)).await?;
        let wkb = self.wkb(feature)?;
        let expected = self.versions.get(&id).copied();
        // The trigger bumps `version` and logs the change with the old and new extent.
        let done = sqlx::query(
            "UPDATE features SET geom = ST_GeomFromWKB($1, 4326), properties = $2::jsonb, \
             t_start = $3, t_end = $4 \
             WHERE id = $5 AND layer = $6 AND version = coalesce($7, version)",
        )
        .bind(wkb)
        .bind(serde_json::Value::Object(feature.feature.properties.clone()).to_string())
        .bind(feature.time.start)
        .bind(feature.time.end)
        .bind(id.0 as i64)
        .bind(self.layer.as_str())
        .bind(expected)
        .execute(&mut *self.tx)
        .await?;
        match (done.rows_affected(), expected) {
            (0, None) => Ok(false),
            // Changed or deleted since this writer read it.
            (0, Some(_)) => Err(self.changed(id)),
            _ => {
                self.versions.entry(id).and_modify(|v| *v += 1);
                Ok(true)
            }
        }
    }

    async fn delete(&mut self, id: FeatureId) -> Result<bool, StoreError> {
        self.set_flags(false, None).await?;
        let expected = self.versions.remove(&id);
        let done = sqlx::query(
            "DELETE FROM features WHERE id = $1 AND layer = $2 AND version = coalesce($3, version)",
        )
        .bind(id.0 as i64)
        .bind(self.layer.as_str())
        .bind(expected)
        .execute(&mut *self.tx)
        .await?;
        match (done.rows_affected(), expected) {
            (0, None) => Ok(false),
            (0, Some(_)) => Err(self.changed(id)),
            _ => Ok(true),
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<Vec<Change>, StoreError> {
        if self.reload {
            let b = self.reload_bbox;
            sqlx::query(
                "INSERT INTO changes (layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin) \
                 VALUES ($1, NULL, 'reload', $2, $3, $4, $5, $6, $7)",
            )
            .bind(self.layer.as_str())
            .bind(b.map(|b| b.west))
            .bind(b.map(|b| b.south))
            .bind(b.map(|b| b.east))
            .bind(b.map(|b| b.north))
            .bind(now_ms())
            .bind(self.origin as i64)
            .execute(&mut *self.tx)
            .await?;
        }
        // This transaction's log rows (none if it wrote nothing, and so has no xid).
        let mine: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM changes WHERE pos IS NULL AND xid = pg_current_xact_id_if_assigned()",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        if let Err(e) = self.tx.commit().await {
            let e = StoreError::from(e);
            if e.kind() == ErrorKind::Unavailable {
                self.uncertain.lock().extend(&mine);
            }
            return Err(e);
        }
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        // The write is durable from here on: a failure to number its changes now is
        // logged, not returned (any replica's next poll numbers them).
        let numbered = async {
            let mut attempt = 1;
            loop {
                let rows = sqlx::query(&format!(
                    "SELECT {CHANGE_COLUMNS} FROM urbantile_sequence_then($1) ORDER BY pos"
                ))
                .bind(&mine)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::from);
                match rows {
                    Err(e) if e.kind() == ErrorKind::Conflict && attempt < SEQUENCER_ATTEMPTS => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
                    }
                    rows => return change_rows(&rows?),
                }
            }
        };
        match numbered.await {
            Ok(changes) => Ok(changes),
            Err(e) => {
                tracing::warn!(
                    "numbering the change log after a commit: {}",
                    crate::model::error_chain(&e)
                );
                Ok(Vec::new())
            }
        }
    }
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
