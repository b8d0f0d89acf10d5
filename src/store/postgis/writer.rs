//! A write to one layer on PostGIS: one transaction, session flags for the logging
//! trigger, conditional UPDATEs on the row version, and the numbering of its log rows as
//! its last statement.

use super::changelog::{CHANGE_COLUMNS, change_rows};
use super::*;

/// Rows per bulk INSERT: one statement of five array parameters (`unnest`), so the
/// parameter limit does not apply; the size bounds one round trip's memory.
const ROWS_PER_STATEMENT: usize = 5_000;

pub(super) struct PgLayerWriter {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) layer: LayerId,
    pub(super) origin: u64,
    /// Whether `urbantile.bulk` is on in this transaction (the trigger then logs nothing).
    pub(super) bulk: bool,
    /// The `urbantile.kind` set in this transaction, if any.
    pub(super) kind: Option<ChangeKind>,
    /// Whether commit logs a `reload` (after `--replace` or a bulk insert), and the extent
    /// it covers so far.
    pub(super) reload: bool,
    pub(super) reload_bbox: Option<Bbox>,
    /// The version of each feature [`LayerWriter::get`] read: its overwrite or delete
    /// requires it still.
    pub(super) versions: HashMap<FeatureId, i64>,
}

/// Features as the columns of one multi-row INSERT (`unnest` of arrays): WKB geometries,
/// properties as JSON text, and time ranges.
pub(super) struct Columns {
    pub(super) wkbs: Vec<Vec<u8>>,
    pub(super) props: Vec<String>,
    pub(super) starts: Vec<Option<i64>>,
    pub(super) ends: Vec<Option<i64>>,
}

impl Columns {
    pub(super) fn of<'a>(
        layer: &LayerId,
        features: impl ExactSizeIterator<Item = &'a NewFeature>,
    ) -> Result<Columns, StoreError> {
        let n = features.len();
        let mut c = Columns {
            wkbs: Vec::with_capacity(n),
            props: Vec::with_capacity(n),
            starts: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
        };
        for f in features {
            c.wkbs.push(wkb(layer, f)?);
            c.props
                .push(serde_json::Value::Object(f.feature.properties.clone()).to_string());
            c.starts.push(f.time.start);
            c.ends.push(f.time.end);
        }
        Ok(c)
    }
}

fn wkb(layer: &LayerId, f: &NewFeature) -> Result<Vec<u8>, StoreError> {
    f.feature
        .geometry
        .to_wkb(CoordDimensions::xy())
        .map_err(|e| StoreError::Geometry {
            layer: layer.clone(),
            id: FeatureId(0),
            reason: e.to_string(),
        })
}

impl PgLayerWriter {
    fn wkb(&self, f: &NewFeature) -> Result<Vec<u8>, StoreError> {
        wkb(&self.layer, f)
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
            let c = Columns::of(&self.layer, chunk.iter())?;
            for f in chunk {
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
            .bind(&c.wkbs)
            .bind(&c.props)
            .bind(&c.starts)
            .bind(&c.ends)
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

    async fn create_owned(
        &mut self,
        feature: &NewFeature,
        owner: Option<&str>,
    ) -> Result<FeatureId, StoreError> {
        self.set_flags(false, None).await?;
        let wkb = self.wkb(feature)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO features (layer, geom, properties, t_start, t_end, owner) \
             VALUES ($1, ST_GeomFromWKB($2, 4326), $3::jsonb, $4, $5, $6) RETURNING id",
        )
        .bind(self.layer.as_str())
        .bind(wkb)
        .bind(serde_json::Value::Object(feature.feature.properties.clone()).to_string())
        .bind(feature.time.start)
        .bind(feature.time.end)
        .bind(owner)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(FeatureId(id as u64))
    }

    async fn owner(&mut self, id: FeatureId) -> Result<Option<String>, StoreError> {
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner FROM features WHERE id = $1 AND layer = $2")
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
        self.set_flags(false, Some(kind)).await?;
        let wkb = self.wkb(feature)?;
        let expected = self.versions.get(&id).copied();
        // The trigger bumps `version` and logs the change with the old and new extent.
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE features SET geom = ST_GeomFromWKB($1, 4326), properties = $2::jsonb, \
             t_start = $3, t_end = $4 \
             WHERE id = $5 AND layer = $6 AND version = coalesce($7, version) \
             RETURNING version",
        )
        .bind(wkb)
        .bind(serde_json::Value::Object(feature.feature.properties.clone()).to_string())
        .bind(feature.time.start)
        .bind(feature.time.end)
        .bind(id.0 as i64)
        .bind(self.layer.as_str())
        .bind(expected)
        .fetch_optional(&mut *self.tx)
        .await?;
        match (version, expected) {
            (None, None) => Ok(None),
            // Changed or deleted since this writer read it.
            (None, Some(_)) => Err(self.changed(id)),
            (Some(version), _) => {
                self.versions.entry(id).and_modify(|v| *v = version);
                Ok(Some(version as u64))
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
        // This transaction's log rows, numbered now (none if it wrote nothing); the
        // sequencer's lock is held from here to the commit (migration 0004).
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM urbantile_number_mine()"
        ))
        .fetch_all(&mut *self.tx)
        .await?;
        let changes = change_rows(&rows)?;
        self.tx.commit().await?;
        Ok(changes)
    }
}
