//! The embedded default store: one SQLite file (WAL journal) through sqlx, with migrations
//! embedded in the binary. Geometry is kept as WKB, properties as JSON text.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use geozero::{CoordDimensions, ToGeo, ToWkb};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::auth::{KeyInfo, Scope};
use crate::model::{Bbox, Feature, FeatureId, LayerId, Properties, StoredFeature};
use crate::store::{FeatureStore, LayerStats, LayerWriter, NewFeature, StoreError, WriteMode};

/// Rows per INSERT statement: multi-row statements are several times faster than one row
/// each, and 10 parameters a row stay far below SQLite's limit of 32766.
const ROWS_PER_STATEMENT: usize = 500;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the file of a `sqlite://PATH` URL and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_owned(),
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
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

#[async_trait]
impl FeatureStore for SqliteStore {
    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn stats(&self, layer: &LayerId) -> Result<LayerStats, StoreError> {
        let row = sqlx::query(
            "SELECT count(*), min(min_x), min(min_y), max(max_x), max(max_y) FROM features WHERE layer = ?",
        )
        .bind(layer.as_str())
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        let bounds = match (
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        ) {
            (Some(west), Some(south), Some(east), Some(north)) => Some(Bbox {
                west,
                south,
                east,
                north,
            }),
            _ => None,
        };
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
        let rows =
            sqlx::query("SELECT id, geom, properties FROM features WHERE layer = ? ORDER BY id")
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
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT id, geom, properties FROM features WHERE layer = ");
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

    async fn begin_write(
        &self,
        layer: &LayerId,
        mode: WriteMode,
    ) -> Result<Box<dyn LayerWriter>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if mode == WriteMode::Replace {
            sqlx::query("DELETE FROM features WHERE layer = ?")
                .bind(layer.as_str())
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(SqliteLayerWriter {
            tx,
            layer: layer.clone(),
        }))
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

/// A `(id, geom, properties)` row as a feature.
fn decode_row(layer: &LayerId, row: &sqlx::sqlite::SqliteRow) -> Result<StoredFeature, StoreError> {
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

struct SqliteLayerWriter {
    tx: Transaction<'static, Sqlite>,
    layer: LayerId,
}

#[async_trait]
impl LayerWriter for SqliteLayerWriter {
    async fn insert(&mut self, features: &[NewFeature]) -> Result<Vec<FeatureId>, StoreError> {
        let mut ids = Vec::with_capacity(features.len());
        for chunk in features.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Vec::with_capacity(chunk.len());
            for f in chunk {
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
                rows.push((wkb, bbox, props, f.time));
            }
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO features (layer, geom, properties, min_x, min_y, max_x, max_y, t_start, t_end) ",
            );
            q.push_values(&rows, |mut b, (wkb, bbox, props, time)| {
                b.push_bind(self.layer.as_str())
                    .push_bind(wkb.as_slice())
                    .push_bind(props.as_str())
                    .push_bind(bbox.west)
                    .push_bind(bbox.south)
                    .push_bind(bbox.east)
                    .push_bind(bbox.north)
                    .push_bind(time.start)
                    .push_bind(time.end);
            });
            q.push(" RETURNING id");
            let new_ids: Vec<i64> = q.build_query_scalar().fetch_all(&mut *self.tx).await?;
            ids.extend(new_ids.into_iter().map(|i| FeatureId(i as u64)));
        }
        Ok(ids)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TimeRange;

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
}
