//! Persistence: the contract every backend implements, as three traits ([`Features`],
//! [`Keys`], [`ChangeLog`]) bundled by [`FeatureStore`], and the two backends: the embedded
//! SQLite store ([`sqlite`], one process) and PostGIS ([`postgis`], any number of servers
//! on one database). The store is the truth; the in-memory [`crate::index`] is rebuilt from
//! it on start and follows its change log afterwards.
//!
//! Every write is one transaction that also appends to the change log ([`Change`]), so
//! that a server sharing the store, and a client of `GET /changes`, learns of every edit.
//! `tests/store_contract.rs` runs one set of tests against both backends.

pub mod postgis;
pub mod sqlite;

use async_trait::async_trait;

use crate::auth::KeyInfo;
use crate::model::{Bbox, Feature, FeatureId, LayerId, StoredFeature, TimeRange};

/// Size and extent of a layer as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerStats {
    pub count: u64,
    /// `None` when the layer is empty.
    pub bounds: Option<Bbox>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `url` has any password replaced by `***` ([`redact_url`]).
    #[error("cannot open store {url}")]
    Open { url: String, source: sqlx::Error },
    #[error("store migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed")]
    Query(#[from] sqlx::Error),
    #[error("feature {id} of layer {layer} has unreadable geometry: {reason}")]
    Geometry {
        layer: LayerId,
        id: FeatureId,
        reason: String,
    },
    /// The database URL, with any password replaced by `***`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    Url(String),
    /// A parameter of the database URL urbantile reads itself is out of range.
    #[error("database URL {url}: {reason}")]
    UrlParameter { url: String, reason: String },
    #[error("a key named {0:?} exists already")]
    KeyExists(String),
    /// The database did something urbantile's schema does not allow (a trigger an operator
    /// added that drops rows, say).
    #[error("layer {layer}: the database answered unexpectedly: {reason}")]
    Unexpected { layer: LayerId, reason: String },
    /// Another transaction changed feature `id` after this writer read it.
    #[error("feature {id} of layer {layer} was changed by another writer meanwhile")]
    Changed { layer: LayerId, id: FeatureId },
}

/// Why [`Features::create_batch`] failed, and whether its features may be stored all the
/// same (the failure came at or after the commit, whose outcome is then unknown).
#[derive(Debug)]
pub struct BatchFailed {
    pub error: StoreError,
    pub maybe_stored: bool,
}

/// What a caller can do about a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The transaction lost a race with another one (a row changed after it was read, a
    /// serialization failure, a deadlock, a unique key taken meanwhile): running the whole
    /// operation again, from its reads, may well succeed.
    Conflict,
    /// The database cannot be reached or is overloaded (connection refused or lost, pool
    /// exhausted, shutting down, busy): try again later.
    Unavailable,
    /// The database refused the data: it breaks a constraint of its schema (a CHECK, NOT
    /// NULL, foreign key or exclusion constraint an operator added to the table). Sending
    /// the same again fails again.
    Refused,
    /// Anything else: a bug, bad data or a broken schema.
    Other,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Changed { .. } => ErrorKind::Conflict,
            StoreError::Open { source, .. } | StoreError::Query(source) => sqlx_kind(source),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => sqlx_kind(source),
            _ => ErrorKind::Other,
        }
    }
}

fn sqlx_kind(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            match code {
                // PostgreSQL: serialization_failure, deadlock_detected, unique_violation.
                "40001" | "40P01" | "23505" => ErrorKind::Conflict,
                // PostgreSQL: the rest of class 23 (integrity constraint violations);
                // SQLite: SQLITE_CONSTRAINT and its CHECK, NOT NULL and foreign key codes.
                c if c.starts_with("23") => ErrorKind::Refused,
                "19" | "275" | "787" | "1299" => ErrorKind::Refused,
                // PostgreSQL: too_many_connections, admin or crash shutdown, cannot connect
                // now, and the whole class 08 (connection exceptions).
                "53300" | "57P01" | "57P02" | "57P03" => ErrorKind::Unavailable,
                c if c.starts_with("08") => ErrorKind::Unavailable,
                // SQLite: SQLITE_BUSY and SQLITE_LOCKED, primary and extended codes (the busy
                // timeout has passed).
                "5" | "6" | "261" | "262" | "517" => ErrorKind::Unavailable,
                _ => ErrorKind::Other,
            }
        }
        _ => ErrorKind::Other,
    }
}

/// A database URL fit for logs and error messages: a password in it becomes `***`
/// (`postgres://user:***@host/db`), and so does a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = out[rest..at].find(':').map(|i| rest + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// A stored feature from its columns as both backends keep them: the geometry as WKB and
/// the properties as JSON text. Either one unreadable is a [`StoreError::Geometry`] naming
/// the feature.
pub(crate) fn decode_feature(
    layer: &LayerId,
    id: FeatureId,
    version: u64,
    wkb: &[u8],
    properties: &str,
) -> Result<StoredFeature, StoreError> {
    use geozero::ToGeo;
    let bad = |reason: String| StoreError::Geometry {
        layer: layer.clone(),
        id,
        reason,
    };
    let geometry = geozero::wkb::Wkb(wkb)
        .to_geo()
        .map_err(|e| bad(e.to_string()))?;
    let properties: crate::model::Properties =
        serde_json::from_str(properties).map_err(|e| bad(format!("properties: {e}")))?;
    Ok(StoredFeature {
        id,
        version,
        feature: Feature {
            geometry,
            properties,
        },
    })
}

/// A random non-zero origin mark for a store handle (0 stands for "no server"); positive,
/// since both databases keep it as a signed 64-bit integer.
pub(crate) fn random_origin() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    (h.finish() >> 1).max(1)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Create,
    /// A whole feature replaced (PUT).
    Replace,
    /// A feature's properties or geometry patched (PATCH).
    Update,
    Delete,
    /// Many features of a layer at once (an ingest, or `--replace`): reload the layer.
    Reload,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Replace => "replace",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Reload => "reload",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ChangeKind> {
        Some(match s {
            "create" => ChangeKind::Create,
            "replace" => ChangeKind::Replace,
            "update" => ChangeKind::Update,
            "delete" => ChangeKind::Delete,
            "reload" => ChangeKind::Reload,
            _ => return None,
        })
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Position in the log: increasing, never reused.
    pub seq: u64,
    pub layer: LayerId,
    /// `None` for [`ChangeKind::Reload`].
    pub feature: Option<FeatureId>,
    pub kind: ChangeKind,
    /// Union of the feature's extent before and after (for a reload: of the layer's).
    pub bbox: Option<Bbox>,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The [`ChangeLog::origin`] of the handle that wrote it; 0 for none (the command line
    /// on SQLite, an SQL client on PostgreSQL).
    pub origin: u64,
}

/// How a write treats the features a layer already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Add to what is there.
    Append,
    /// Swap the layer's whole content in one transaction.
    Replace,
}

/// A feature ready to be written: the feature and its validity interval, already checked.
#[derive(Debug, Clone)]
pub struct NewFeature {
    pub feature: Feature,
    pub time: TimeRange,
}

/// The features of every layer.
///
/// Contract, on every backend:
/// - Feature ids are never reused, even after a delete; [`LayerWriter::insert`] returns
///   ids in the order of the features given.
/// - A write ([`Features::begin_write`]) is one transaction: nothing of it is visible to
///   readers, or kept, until [`LayerWriter::commit`]; a dropped writer leaves nothing.
/// - Every committed write is in the change log ([`ChangeLog`]) from the same transaction.
/// - A feature read with [`LayerWriter::get`] and then overwritten or deleted by the same
///   writer is changed only if no other transaction changed it in between (a row version
///   checked by the store), else the write fails with [`ErrorKind::Conflict`]: If-Match
///   holds across processes sharing the store.
#[async_trait]
pub trait Features: Send + Sync {
    /// Number of features of a layer and their lon/lat bounds.
    async fn stats(&self, layer: &LayerId) -> Result<LayerStats, StoreError>;

    /// True when no layer has any feature: a first start.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Every feature of a layer, ordered by id.
    async fn load_layer(&self, layer: &LayerId) -> Result<Vec<StoredFeature>, StoreError>;

    /// The features of a layer with these ids, in the order asked; ids the layer does not
    /// hold are left out.
    async fn features_by_ids(
        &self,
        layer: &LayerId,
        ids: &[FeatureId],
    ) -> Result<Vec<StoredFeature>, StoreError>;

    /// Creates features of one layer in one transaction, each logged as its own creation
    /// (as [`LayerWriter::create_owned`] does), and commits: the ids given, in order, and
    /// the changes logged with their positions. A backend may do it in fewer round trips
    /// than a writer (PostGIS: one statement).
    async fn create_batch(
        &self,
        layer: &LayerId,
        features: &[(&NewFeature, Option<&str>)],
    ) -> Result<(Vec<FeatureId>, Vec<Change>), BatchFailed> {
        let before = |error| BatchFailed {
            error,
            maybe_stored: false,
        };
        let mut w = self
            .begin_write(layer, WriteMode::Append)
            .await
            .map_err(before)?;
        let ids = w.create_many(features).await.map_err(before)?;
        let changes = w.commit().await.map_err(|error| BatchFailed {
            error,
            maybe_stored: true,
        })?;
        Ok((ids, changes))
    }

    /// Starts a write to one layer. Nothing is visible to others, and nothing is kept if the
    /// writer is dropped, until [`LayerWriter::commit`]. [`WriteMode::Replace`] swaps the
    /// layer whole: two replaces of one layer never mix their features.
    async fn begin_write(
        &self,
        layer: &LayerId,
        mode: WriteMode,
    ) -> Result<Box<dyn LayerWriter>, StoreError>;
}

/// Access keys, kept by the hash of their secret.
#[async_trait]
pub trait Keys: Send + Sync {
    /// Records a new access key by the hash of its secret; fails with
    /// [`StoreError::KeyExists`] if the name is taken.
    async fn add_key(&self, key: &KeyInfo, key_hash: &str) -> Result<(), StoreError>;

    /// Every key, revoked ones too, by name.
    async fn keys(&self) -> Result<Vec<KeyInfo>, StoreError>;

    /// Revokes a key; false when no live key has that name.
    async fn revoke_key(&self, name: &str, at: i64) -> Result<bool, StoreError>;

    /// The live (not revoked) key with this hash.
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyInfo>, StoreError>;
}

/// The change log: one entry per feature created, replaced, updated or deleted, and one
/// `reload` per bulk write to a layer, whoever wrote it.
///
/// Contract, on every backend:
/// - Positions ([`Change::seq`]) are dense (1, 2, 3, ...) and never reused; every reader
///   sees the same entries at the same positions.
/// - Stable read horizon: [`ChangeLog::changes_since`] returns only committed entries, and
///   a prefix of them: once it has returned position `n`, every position below `n` exists
///   or was pruned, and no entry can later appear below `n`. So a gap after the position a
///   reader asked from means entries were pruned, never that they are still to come.
///   (On PostgreSQL, where commits finish out of order, positions are given after commit;
///   an entry may take until the next [`ChangeLog::wait_for_changes`] to get one.)
/// - Retention: [`ChangeLog::prune_changes_through`] drops the oldest entries; on a store
///   shared by several servers only one of them prunes at a time.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// This handle's mark on the changes it writes, random per open store (0 stands for a
    /// writer outside urbantile): which process made a change, for the log's readers and
    /// for operators reading the table.
    fn origin(&self) -> u64;

    /// Change log entries after `seq`, oldest first, at most `limit`.
    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, StoreError>;

    /// The first and last `seq` the log still holds (`None` when it is empty).
    async fn change_span(&self) -> Result<Option<(u64, u64)>, StoreError>;

    /// Drops the log entries up to and including `seq`; returns how many went (0 when
    /// another process sharing the store is pruning at the same time).
    async fn prune_changes_through(&self, seq: u64) -> Result<u64, StoreError>;

    /// Waits until the log may have grown (another process wrote), or `timeout` passes. A
    /// store whose processes cannot tell each other just sleeps: its readers poll.
    ///
    /// Returns `Some(p)` when it was woken by notices that name the log's positions, `p`
    /// being the highest position any notice to this handle has named: a reader that has
    /// applied `p` already has nothing to read (a server is told of its own writes too).
    /// `None` when the log may hold anything new: read it.
    async fn wait_for_changes(&self, timeout: std::time::Duration) -> Option<u64> {
        tokio::time::sleep(timeout).await;
        None
    }
}

/// While held, no other process sharing the store holds one: replicas starting together
/// on an empty store seed it once. Dropping it lets the next one in.
pub type SeedLock = Box<dyn std::any::Any + Send + Sync>;

/// A whole store: its features, keys and change log, and its life cycle.
#[async_trait]
pub trait FeatureStore: Features + Keys + ChangeLog {
    /// Succeeds when the store answers a query.
    async fn health(&self) -> Result<(), StoreError>;

    /// Makes everything committed durable in the store's own files and closes it: the last
    /// step of a shutdown. Calls after it fail.
    async fn close(&self) -> Result<(), StoreError>;

    /// Waits until this process is the only one seeding the store (see [`SeedLock`]).
    async fn seed_lock(&self) -> Result<SeedLock, StoreError> {
        Ok(Box::new(()))
    }

    /// Change log entries after `seq`, as [`ChangeLog::changes_since`] reads them, and,
    /// where the backend reads them in the same statement, the features those entries
    /// name as the store holds them at that moment. A follower then needs no second read.
    /// The default reads the log alone.
    async fn changes_and_features_since(
        &self,
        seq: u64,
        limit: u32,
    ) -> Result<ChangesRead, StoreError> {
        Ok(ChangesRead {
            changes: self.changes_since(seq, limit).await?,
            features: None,
        })
    }
}

/// What [`FeatureStore::changes_and_features_since`] read.
#[derive(Debug, Default)]
pub struct ChangesRead {
    pub changes: Vec<Change>,
    /// Each feature a feature change names, as the store held it in the same read; `None`
    /// when the backend did not read
    /// them, or one of them could not be decoded (the reader then reads them itself, one
    /// by one where it must).
    pub features: Option<FeaturesRead>,
}

/// Features read with the log: by layer, then by id (`None`: not in that layer any more).
pub type FeaturesRead =
    std::collections::HashMap<LayerId, std::collections::HashMap<FeatureId, Option<StoredFeature>>>;

/// An open write to one layer (one database transaction).
///
/// Bulk [`insert`](LayerWriter::insert)s are logged as one `reload` change at commit; the
/// per-feature operations log one change each.
#[async_trait]
pub trait LayerWriter: Send {
    /// Adds a batch; returns the ids given to the features, in order.
    async fn insert(&mut self, features: &[NewFeature]) -> Result<Vec<FeatureId>, StoreError>;

    /// A feature of this layer as this transaction sees it. The writer remembers the
    /// version it read: a later [`overwrite`](LayerWriter::overwrite) or
    /// [`delete`](LayerWriter::delete) of it by this writer fails with
    /// [`StoreError::Changed`] if another transaction has changed it since.
    async fn get(&mut self, id: FeatureId) -> Result<Option<StoredFeature>, StoreError>;

    /// Adds one feature (at version 0) and logs its creation.
    async fn create(&mut self, feature: &NewFeature) -> Result<FeatureId, StoreError> {
        self.create_owned(feature, None).await
    }

    /// Adds one feature (at version 0) that records its owner (see
    /// [`crate::auth::token::owner_of`]), and logs its creation. The owner is kept apart
    /// from the properties and is never served.
    async fn create_owned(
        &mut self,
        feature: &NewFeature,
        owner: Option<&str>,
    ) -> Result<FeatureId, StoreError>;

    /// Adds several features as [`create_owned`](LayerWriter::create_owned) does, each
    /// logged as its own creation; returns their ids, in order. All or nothing, as the
    /// transaction is.
    async fn create_many(
        &mut self,
        features: &[(&NewFeature, Option<&str>)],
    ) -> Result<Vec<FeatureId>, StoreError> {
        let mut ids = Vec::with_capacity(features.len());
        for (feature, owner) in features {
            ids.push(self.create_owned(feature, *owner).await?);
        }
        Ok(ids)
    }

    /// The owner a feature of this layer was created with; `None` for a feature without
    /// one, or no such feature.
    async fn owner(&mut self, id: FeatureId) -> Result<Option<String>, StoreError>;

    /// Overwrites a feature (`kind` is [`ChangeKind::Replace`] or [`ChangeKind::Update`],
    /// for the log); returns its new [`StoredFeature::version`], or `None` when the layer
    /// has no such feature.
    async fn overwrite(
        &mut self,
        id: FeatureId,
        feature: &NewFeature,
        kind: ChangeKind,
    ) -> Result<Option<u64>, StoreError>;

    /// Deletes a feature; false when the layer has no such feature.
    async fn delete(&mut self, id: FeatureId) -> Result<bool, StoreError>;

    /// Makes everything durable and visible at once; returns the changes logged, in order,
    /// with their log positions.
    async fn commit(self: Box<Self>) -> Result<Vec<Change>, StoreError>;
}

/// Opens the store a database URL names: `sqlite://PATH` (the embedded default) or
/// `postgres://...` / `postgresql://...` (PostGIS, shared by any number of servers).
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn FeatureStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgis::PgStore::open(url).await?))
    } else {
        Err(StoreError::Url(redact_url(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_a_url() {
        assert_eq!(
            redact_url("postgres://u:s3cret@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://h/x?user=u&password=s3cret"),
            "postgresql://h/x?user=u&password=***"
        );
        assert_eq!(redact_url("postgres://u@h/x"), "postgres://u@h/x");
        assert_eq!(redact_url("sqlite://data/a.db"), "sqlite://data/a.db");
        let e = StoreError::Url(redact_url("mysql://u:s3cret@h/x"));
        assert!(!e.to_string().contains("s3cret"));
    }
}
