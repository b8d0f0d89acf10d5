//! The embedded default store: one SQLite file (WAL journal) through sqlx, with migrations
//! embedded in the binary. Geometry is kept as WKB, properties as JSON text.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use geozero::{CoordDimensions, ToWkb};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::auth::{KeyInfo, Scope};
use crate::model::{Bbox, FeatureId, LayerId, StoredFeature};
use crate::store::{
    Change, ChangeKind, ChangeLog, FeatureStore, Features, Keys, LayerStats, LayerWriter,
    NewFeature, StoreError, WriteMode, now_ms, random_origin, redact_url,
};

/// Rows per INSERT statement: multi-row statements are several times faster than one row
/// each, and 10 parameters a row stay far below SQLite's limit of 32766.
const ROWS_PER_STATEMENT: usize = 500;

pub struct SqliteStore {
    pool: SqlitePool,
    origin: u64,
    /// Held by this handle's open writer: SQLite has one writer at a time, and writers of
    /// one process queue here rather than in SQLite's busy handler, which sleeps and
    /// retries (the busy timeout still orders writers of different processes).
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the file of a `sqlite://PATH` URL and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redact_url(url),
            source,
        };
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
            && path != ":memory:"
        {
            std::fs::create_dir_all(dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL is durable across process crashes; only a power cut can lose
            // the last commits.
            .synchronous(SqliteSynchronous::Normal)
            // Checkpoints (copying the WAL into the database file, with an fsync) would
            // otherwise fall on whichever commit crosses the threshold and stall that write
            // for a disk flush; a background task does them instead (see below).
            .pragma("wal_autocheckpoint", "0")
            // After a big transaction (an ingest), give the WAL file's space back once it
            // has been checkpointed.
            .pragma("journal_size_limit", "67108864")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        tokio::spawn(checkpoint_in_background(pool.clone()));
        Ok(SqliteStore {
            pool,
            origin: random_origin(),
            writer: Arc::default(),
        })
    }
}

#[async_trait]
impl FeatureStore for SqliteStore {
    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Copies the whole WAL into the database file and empties it (TRUNCATE waits for
    /// readers and writers to finish), then closes every connection.
    async fn close(&self) -> Result<(), StoreError> {
        // A checkpoint that meets a reader or writer says so (its first column, busy) rather
        // than failing: try again for a while, then close anyway (the WAL is durable too).
        for _ in 0..100 {
            let (busy,): (i64,) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await?;
            if busy == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.pool.close().await;
        Ok(())
    }
}

#[async_trait]
impl Features for SqliteStore {
    async fn stats(&self, layer: &LayerId) -> Result<LayerStats, StoreError> {
        let row = sqlx::query(
            "SELECT count(*), min(min_x), min(min_y), max(max_x), max(max_y) FROM features WHERE layer = ?",
        )
        .bind(layer.as_str())
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        let bounds = bbox_columns(&row, 1)?;
        Ok(LayerStats {
            count: count as u64,
            bounds,
        })
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let any: Option<i64> = sqlx::query_scalar("SELECT id FROM features LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(any.is_none())
    }

    async fn load_layer(&self, layer: &LayerId) -> Result<Vec<StoredFeature>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, geom, properties, version FROM features WHERE layer = ? ORDER BY id",
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
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        // Batches stay well below SQLite's limit on bound parameters.
        for chunk in ids.chunks(5_000) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT id, geom, properties, version FROM features WHERE layer = ",
            );
            q.push_bind(layer.as_str()).push(" AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.0 as i64);
            }
            q.push(")");
            for row in q.build().fetch_all(&self.pool).await? {
                let f = decode_row(layer, &row)?;
                found.insert(f.id, f);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn begin_write(
        &self,
        layer: &LayerId,
        mode: WriteMode,
    ) -> Result<Box<dyn LayerWriter>, StoreError> {
        let one_writer = self.writer.clone().lock_owned().await;
        // IMMEDIATE takes the write lock now: a transaction that reads before it writes
        // (If-Match) cannot then fail to upgrade.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut reload_bbox = None;
        if mode == WriteMode::Replace {
            reload_bbox = layer_bounds(&mut tx, layer).await?;
            sqlx::query("DELETE FROM features WHERE layer = ?")
                .bind(layer.as_str())
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(SqliteLayerWriter {
            tx,
            layer: layer.clone(),
            origin: self.origin,
            reload: mode == WriteMode::Replace,
            reload_bbox,
            changes: Vec::new(),
            versions: std::collections::HashMap::new(),
            _one_writer: one_writer,
        }))
    }
}

#[async_trait]
impl Keys for SqliteStore {
    async fn add_key(&self, key: &KeyInfo, key_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, read_layers, write_layers, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
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
            "SELECT name, read_layers, write_layers, created_at, revoked_at FROM api_keys ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_row).collect()
    }

    async fn revoke_key(&self, name: &str, at: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT name, read_layers, write_layers, created_at, revoked_at FROM api_keys \
             WHERE key_hash = ? AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_row).transpose()
    }
}

/// One file has one writer at a time (BEGIN IMMEDIATE), and `seq` is an AUTOINCREMENT key
/// given inside that lock, so commits happen in `seq` order and the log is dense as it is.
#[async_trait]
impl ChangeLog for SqliteStore {
    fn origin(&self) -> u64 {
        self.origin
    }

    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin \
             FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq as i64)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let layer: String = row.try_get(1)?;
            let kind: String = row.try_get(3)?;
            // Rows this build cannot read (an unknown layer id or kind) are skipped rather
            // than stopping the feed.
            let (Ok(layer), Some(kind)) = (LayerId::new(&layer), ChangeKind::parse(&kind)) else {
                continue;
            };
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

    async fn change_span(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query("SELECT min(seq), max(seq) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        let first: Option<i64> = row.try_get(0)?;
        let last: Option<i64> = row.try_get(1)?;
        Ok(first.zip(last).map(|(a, b)| (a as u64, b as u64)))
    }

    async fn prune_changes_through(&self, seq: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM changes WHERE seq <= ?")
            .bind(seq as i64)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Copies committed WAL frames into the database file every 200 ms, off the commit path;
/// stops when the pool is closed. A PASSIVE pass, which blocks nobody, copies what is there;
/// a RESTART pass then copies what was committed meanwhile (writers wait for that short
/// part only) and lets the next writer start the WAL from its beginning, so that it does
/// not grow without end under a steady stream of writes.
async fn checkpoint_in_background(pool: SqlitePool) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if pool.is_closed() {
            return;
        }
        let Ok(mut conn) = pool.acquire().await else {
            continue;
        };
        // RESTART makes writers wait while it finishes, and itself waits for readers: on
        // this connection it gives up after 20 ms (a busy WAL is checkpointed next time)
        // rather than hold writers for the store's 10 s busy timeout.
        for statement in [
            "PRAGMA wal_checkpoint(PASSIVE)",
            "PRAGMA busy_timeout = 20",
            "PRAGMA wal_checkpoint(RESTART)",
            "PRAGMA busy_timeout = 10000",
        ] {
            if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
                tracing::warn!("WAL checkpoint: {e}");
            }
        }
    }
}

/// Four nullable REAL columns from `at` on, as a box.
fn bbox_columns(row: &sqlx::sqlite::SqliteRow, at: usize) -> Result<Option<Bbox>, StoreError> {
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

async fn layer_bounds(
    tx: &mut Transaction<'static, Sqlite>,
    layer: &LayerId,
) -> Result<Option<Bbox>, StoreError> {
    let row = sqlx::query(
        "SELECT min(min_x), min(min_y), max(max_x), max(max_y) FROM features WHERE layer = ?",
    )
    .bind(layer.as_str())
    .fetch_one(&mut **tx)
    .await?;
    bbox_columns(&row, 0)
}

fn union(a: Option<Bbox>, b: Option<Bbox>) -> Option<Bbox> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.union(b)),
        (a, b) => a.or(b),
    }
}

fn key_row(row: &sqlx::sqlite::SqliteRow) -> Result<KeyInfo, StoreError> {
    Ok(KeyInfo {
        name: row.try_get(0)?,
        read: Scope::from_stored(row.try_get(1)?),
        write: Scope::from_stored(row.try_get(2)?),
        created_at: row.try_get(3)?,
        revoked_at: row.try_get(4)?,
    })
}

/// An `(id, geom, properties, version)` row as a feature.
fn decode_row(layer: &LayerId, row: &sqlx::sqlite::SqliteRow) -> Result<StoredFeature, StoreError> {
    let id = FeatureId(row.try_get::<i64, _>(0)? as u64);
    let version = row.try_get::<i64, _>(3)? as u64;
    super::decode_feature(layer, id, version, row.try_get(1)?, row.try_get(2)?)
}

struct SqliteLayerWriter {
    tx: Transaction<'static, Sqlite>,
    layer: LayerId,
    origin: u64,
    /// Whether commit logs a `reload` (after `--replace` or a bulk insert), and the extent
    /// it covers so far.
    reload: bool,
    reload_bbox: Option<Bbox>,
    changes: Vec<Change>,
    /// The version of each feature [`LayerWriter::get`] read, which its overwrite or
    /// delete then requires (the write lock makes a mismatch impossible here; the check
    /// keeps the contract the same as on PostgreSQL).
    versions: std::collections::HashMap<FeatureId, i64>,
    /// Released after the transaction ends (fields drop in order).
    _one_writer: tokio::sync::OwnedMutexGuard<()>,
}

/// A feature as its row stores it.
struct EncodedRow {
    wkb: Vec<u8>,
    bbox: Bbox,
    props: String,
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl EncodedRow {
    /// Binds `geom, properties, min_x, min_y, max_x, max_y, t_start, t_end`, the column
    /// order of both the single-row INSERT and the UPDATE.
    fn bind<'q>(&'q self, q: SqliteQuery<'q>, time: crate::model::TimeRange) -> SqliteQuery<'q> {
        q.bind(self.wkb.as_slice())
            .bind(self.props.as_str())
            .bind(self.bbox.west)
            .bind(self.bbox.south)
            .bind(self.bbox.east)
            .bind(self.bbox.north)
            .bind(time.start)
            .bind(time.end)
    }
}

impl SqliteLayerWriter {
    fn row(&self, f: &NewFeature) -> Result<EncodedRow, StoreError> {
        let wkb = f
            .feature
            .geometry
            .to_wkb(CoordDimensions::xy())
            .map_err(|e| StoreError::Geometry {
                layer: self.layer.clone(),
                id: FeatureId(0),
                reason: e.to_string(),
            })?;
        let bbox = Bbox::of(&f.feature.geometry).unwrap_or(Bbox {
            west: 0.0,
            south: 0.0,
            east: 0.0,
            north: 0.0,
        });
        let props = serde_json::Value::Object(f.feature.properties.clone()).to_string();
        Ok(EncodedRow { wkb, bbox, props })
    }

    fn changed(&self, id: FeatureId) -> StoreError {
        StoreError::Changed {
            layer: self.layer.clone(),
            id,
        }
    }

    /// The stored extent of a feature of this layer, `None` when there is no such feature.
    async fn extent(&mut self, id: FeatureId) -> Result<Option<Bbox>, StoreError> {
        let row = sqlx::query(
            "SELECT min_x, min_y, max_x, max_y FROM features WHERE id = ? AND layer = ?",
        )
        .bind(id.0 as i64)
        .bind(self.layer.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        match row {
            Some(row) => bbox_columns(&row, 0),
            None => Ok(None),
        }
    }

    async fn log(
        &mut self,
        feature: Option<FeatureId>,
        kind: ChangeKind,
        bbox: Option<Bbox>,
    ) -> Result<(), StoreError> {
        let at_ms = now_ms();
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO changes (layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(self.layer.as_str())
        .bind(feature.map(|f| f.0 as i64))
        .bind(kind.as_str())
        .bind(bbox.map(|b| b.west))
        .bind(bbox.map(|b| b.south))
        .bind(bbox.map(|b| b.east))
        .bind(bbox.map(|b| b.north))
        .bind(at_ms)
        .bind(self.origin as i64)
        .fetch_one(&mut *self.tx)
        .await?;
        self.changes.push(Change {
            seq: seq as u64,
            layer: self.layer.clone(),
            feature,
            kind,
            bbox,
            at_ms,
            origin: self.origin,
        });
        Ok(())
    }
}

#[async_trait]
impl LayerWriter for SqliteLayerWriter {
    async fn insert(&mut self, features: &[NewFeature]) -> Result<Vec<FeatureId>, StoreError> {
        let mut ids = Vec::with_capacity(features.len());
        for chunk in features.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Vec::with_capacity(chunk.len());
            for f in chunk {
                let row = self.row(f)?;
                self.reload_bbox = union(self.reload_bbox, Some(row.bbox));
                rows.push((row, f.time));
            }
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO features (layer, geom, properties, min_x, min_y, max_x, max_y, t_start, t_end) ",
            );
            q.push_values(&rows, |mut b, (row, time)| {
                b.push_bind(self.layer.as_str())
                    .push_bind(row.wkb.as_slice())
                    .push_bind(row.props.as_str())
                    .push_bind(row.bbox.west)
                    .push_bind(row.bbox.south)
                    .push_bind(row.bbox.east)
                    .push_bind(row.bbox.north)
                    .push_bind(time.start)
                    .push_bind(time.end);
            });
            q.push(" RETURNING id");
            let new_ids: Vec<i64> = q.build_query_scalar().fetch_all(&mut *self.tx).await?;
            ids.extend(new_ids.into_iter().map(|i| FeatureId(i as u64)));
        }
        self.reload |= !features.is_empty();
        Ok(ids)
    }

    async fn get(&mut self, id: FeatureId) -> Result<Option<StoredFeature>, StoreError> {
        let row = sqlx::query(
            "SELECT id, geom, properties, version FROM features WHERE id = ? AND layer = ?",
        )
        .bind(id.0 as i64)
        .bind(self.layer.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        self.versions.insert(id, row.try_get(3)?);
        decode_row(&self.layer, &row).map(Some)
    }

    async fn create_owned(
        &mut self,
        feature: &NewFeature,
        owner: Option<&str>,
    ) -> Result<FeatureId, StoreError> {
        let row = self.row(feature)?;
        let insert = sqlx::query(
            "INSERT INTO features (layer, owner, geom, properties, min_x, min_y, max_x, max_y, t_start, t_end) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(self.layer.as_str())
        .bind(owner);
        let id: i64 = row
            .bind(insert, feature.time)
            .fetch_one(&mut *self.tx)
            .await?
            .try_get(0)?;
        let id = FeatureId(id as u64);
        self.log(Some(id), ChangeKind::Create, Some(row.bbox))
            .await?;
        Ok(id)
    }

    async fn owner(&mut self, id: FeatureId) -> Result<Option<String>, StoreError> {
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner FROM features WHERE id = ? AND layer = ?")
                .bind(id.0 as i64)
                .bind(self.layer.as_str())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(owner.flatten())
    }

    async fn overwrite(
        &mut self,
        id: FeatureId,
        feature: &NewFeature,
        kind: ChangeKind,
    ) -> Result<Option<u64>, StoreError> {
        let Some(old) = self.extent(id).await? else {
            return Ok(None);
        };
        let row = self.row(feature)?;
        let update = sqlx::query(
            "UPDATE features SET geom = ?, properties = ?, min_x = ?, min_y = ?, max_x = ?, \
             max_y = ?, t_start = ?, t_end = ?, version = version + 1 \
             WHERE id = ? AND version = coalesce(?, version) RETURNING version",
        );
        let updated = row
            .bind(update, feature.time)
            .bind(id.0 as i64)
            .bind(self.versions.get(&id).copied())
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(updated) = updated else {
            return Err(self.changed(id));
        };
        let version: i64 = updated.try_get(0)?;
        self.versions.entry(id).and_modify(|v| *v = version);
        self.log(Some(id), kind, Some(old.union(row.bbox))).await?;
        Ok(Some(version as u64))
    }

    async fn delete(&mut self, id: FeatureId) -> Result<bool, StoreError> {
        let Some(old) = self.extent(id).await? else {
            return Ok(false);
        };
        let done =
            sqlx::query("DELETE FROM features WHERE id = ? AND version = coalesce(?, version)")
                .bind(id.0 as i64)
                .bind(self.versions.remove(&id))
                .execute(&mut *self.tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(self.changed(id));
        }
        self.log(Some(id), ChangeKind::Delete, Some(old)).await?;
        Ok(true)
    }

    async fn commit(mut self: Box<Self>) -> Result<Vec<Change>, StoreError> {
        if self.reload {
            let bbox = self.reload_bbox;
            self.log(None, ChangeKind::Reload, bbox).await?;
        }
        self.tx.commit().await?;
        Ok(self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Feature, Properties, TimeRange};

    fn feature(lon: f64, lat: f64, name: &str) -> NewFeature {
        let mut properties = Properties::new();
        properties.insert("name".into(), name.into());
        NewFeature {
            feature: Feature {
                geometry: geo::Point::new(lon, lat).into(),
                properties,
            },
            time: TimeRange::default(),
        }
    }

    async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sub/t.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn features_written_are_read_back_in_order() {
        let (_dir, store) = temp_store().await;
        let layer = LayerId::new("schools").unwrap();
        assert!(store.is_empty().await.unwrap());
        let mut w = store.begin_write(&layer, WriteMode::Append).await.unwrap();
        let ids = w
            .insert(&[feature(24.9, 60.1, "a"), feature(24.8, 60.2, "b")])
            .await
            .unwrap();
        w.commit().await.unwrap();
        assert_eq!(ids.len(), 2);
        let back = store.load_layer(&layer).await.unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].feature.properties["name"], "b");
        assert_eq!(back[1].feature.geometry, geo::Point::new(24.8, 60.2).into());
        let picked = store
            .features_by_ids(&layer, &[ids[1], FeatureId(999), ids[0]])
            .await
            .unwrap();
        assert_eq!(
            picked.iter().map(|f| f.id).collect::<Vec<_>>(),
            [ids[1], ids[0]]
        );
        let other = LayerId::new("other").unwrap();
        assert!(
            store
                .features_by_ids(&other, &ids)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_dropped_writer_leaves_nothing_and_replace_swaps_everything() {
        let (_dir, store) = temp_store().await;
        let layer = LayerId::new("roads").unwrap();
        let mut w = store.begin_write(&layer, WriteMode::Append).await.unwrap();
        w.insert(&[feature(1.0, 1.0, "old")]).await.unwrap();
        w.commit().await.unwrap();

        let mut w = store.begin_write(&layer, WriteMode::Replace).await.unwrap();
        w.insert(&[feature(2.0, 2.0, "half")]).await.unwrap();
        drop(w);
        assert_eq!(store.stats(&layer).await.unwrap().count, 1);

        let mut w = store.begin_write(&layer, WriteMode::Replace).await.unwrap();
        w.insert(&[feature(3.0, 3.0, "new1"), feature(4.0, 4.0, "new2")])
            .await
            .unwrap();
        w.commit().await.unwrap();
        let names: Vec<_> = store
            .load_layer(&layer)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.feature.properties["name"].clone())
            .collect();
        assert_eq!(names, ["new1", "new2"]);
    }

    #[tokio::test]
    async fn every_write_is_logged_with_its_extent_in_the_same_transaction() {
        let (_dir, store) = temp_store().await;
        let layer = LayerId::new("schools").unwrap();
        let mut w = store.begin_write(&layer, WriteMode::Append).await.unwrap();
        let a = w.create(&feature(24.0, 60.0, "a")).await.unwrap();
        let b = w.create(&feature(25.0, 61.0, "b")).await.unwrap();
        assert_eq!(
            w.get(a).await.unwrap().unwrap().feature.properties["name"],
            "a"
        );
        assert_eq!(
            w.overwrite(a, &feature(24.5, 60.5, "a2"), ChangeKind::Replace)
                .await
                .unwrap(),
            Some(1)
        );
        assert!(w.delete(b).await.unwrap());
        assert!(!w.delete(FeatureId(999)).await.unwrap());
        let changes = w.commit().await.unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.feature)).collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Create, Some(a)),
                (ChangeKind::Create, Some(b)),
                (ChangeKind::Replace, Some(a)),
                (ChangeKind::Delete, Some(b)),
            ]
        );
        let moved = changes[2].bbox.unwrap();
        assert_eq!((moved.west, moved.north), (24.0, 60.5));
        assert_eq!(store.changes_since(0, 100).await.unwrap(), changes);
        assert_eq!(
            store.changes_since(changes[1].seq, 1).await.unwrap(),
            [changes[2].clone()]
        );
        assert!(
            changes
                .iter()
                .all(|c| c.origin == store.origin() && c.origin != 0)
        );

        // An abandoned writer logs nothing; a replace logs one reload over old and new.
        let mut w = store.begin_write(&layer, WriteMode::Append).await.unwrap();
        w.create(&feature(1.0, 1.0, "lost")).await.unwrap();
        drop(w);
        let mut w = store.begin_write(&layer, WriteMode::Replace).await.unwrap();
        let n = w.insert(&[feature(26.0, 59.0, "n")]).await.unwrap()[0];
        let reload = w.commit().await.unwrap();
        assert_eq!(reload.len(), 1);
        assert_eq!(
            (reload[0].kind, reload[0].feature),
            (ChangeKind::Reload, None)
        );
        let b = reload[0].bbox.unwrap();
        assert_eq!((b.west, b.south, b.east, b.north), (24.5, 59.0, 26.0, 60.5));
        assert_eq!(
            store.change_span().await.unwrap(),
            Some((changes[0].seq, reload[0].seq))
        );
        assert_eq!(
            store.prune_changes_through(changes[2].seq).await.unwrap(),
            3
        );
        assert_eq!(
            store.change_span().await.unwrap().unwrap().0,
            changes[3].seq
        );

        // Ids are never reused, even that of the newest feature once it is deleted.
        let mut w = store.begin_write(&layer, WriteMode::Append).await.unwrap();
        assert!(w.delete(n).await.unwrap());
        let c = w.create(&feature(1.0, 1.0, "c")).await.unwrap();
        w.commit().await.unwrap();
        assert!(c > n);
    }
}
