//! Persistence: the one [`FeatureStore`] trait that every backend implements, and the
//! embedded SQLite backend. The store is the truth; the in-memory [`crate::index`] is
//! rebuilt from it on start and follows its change log afterwards.
//!
//! Every write is one transaction that also appends to the change log ([`Change`]), so
//! that a server sharing the store, and a client of `GET /changes`, learns of every edit.

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
    #[error("unsupported database URL {0:?}: use sqlite://PATH")]
    Url(String),
    #[error("a key named {0:?} exists already")]
    KeyExists(String),
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

    fn parse(s: &str) -> Option<ChangeKind> {
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
    /// The [`FeatureStore::origin`] of the handle that wrote it; 0 for none.
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

/// The persistent store of every layer's features.
#[async_trait]
pub trait FeatureStore: Send + Sync {
    /// Succeeds when the store answers a query.
    async fn health(&self) -> Result<(), StoreError>;

    /// Makes everything committed durable in the store's own files and closes it: the last
    /// step of a shutdown. Calls after it fail.
    async fn close(&self) -> Result<(), StoreError>;

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

    /// Records a new access key by the hash of its secret; fails if the name is taken.
    async fn add_key(&self, key: &KeyInfo, key_hash: &str) -> Result<(), StoreError>;

    /// Every key, revoked ones too, by name.
    async fn keys(&self) -> Result<Vec<KeyInfo>, StoreError>;

    /// Revokes a key; false when no live key has that name.
    async fn revoke_key(&self, name: &str, at: i64) -> Result<bool, StoreError>;

    /// The live (not revoked) key with this hash.
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyInfo>, StoreError>;

    /// Starts a write to one layer. Nothing is visible to others, and nothing is kept if the
    /// writer is dropped, until [`LayerWriter::commit`].
    async fn begin_write(
        &self,
        layer: &LayerId,
        mode: WriteMode,
    ) -> Result<Box<dyn LayerWriter>, StoreError>;

    /// This handle's mark on the changes it writes, random per open store, so that a
    /// server can tell its own edits from those of other processes sharing the store.
    fn origin(&self) -> u64;

    /// Change log entries after `seq`, oldest first, at most `limit`.
    async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, StoreError>;

    /// The first and last `seq` the log still holds (`None` when it is empty).
    async fn change_span(&self) -> Result<Option<(u64, u64)>, StoreError>;

    /// Drops the log entries up to and including `seq`; returns how many went.
    async fn prune_changes_through(&self, seq: u64) -> Result<u64, StoreError>;
}

/// An open write to one layer (one database transaction).
///
/// Bulk [`insert`](LayerWriter::insert)s are logged as one `reload` change at commit; the
/// per-feature operations log one change each.
#[async_trait]
pub trait LayerWriter: Send {
    /// Adds a batch; returns the ids given to the features, in order.
    async fn insert(&mut self, features: &[NewFeature]) -> Result<Vec<FeatureId>, StoreError>;

    /// A feature of this layer as this transaction sees it.
    async fn get(&mut self, id: FeatureId) -> Result<Option<StoredFeature>, StoreError>;

    /// Adds one feature and logs its creation.
    async fn create(&mut self, feature: &NewFeature) -> Result<FeatureId, StoreError>;

    /// Overwrites a feature (`kind` is [`ChangeKind::Replace`] or [`ChangeKind::Update`],
    /// for the log); false when the layer has no such feature.
    async fn overwrite(
        &mut self,
        id: FeatureId,
        feature: &NewFeature,
        kind: ChangeKind,
    ) -> Result<bool, StoreError>;

    /// Deletes a feature; false when the layer has no such feature.
    async fn delete(&mut self, id: FeatureId) -> Result<bool, StoreError>;

    /// Makes everything durable and visible at once; returns the changes logged, in order.
    async fn commit(self: Box<Self>) -> Result<Vec<Change>, StoreError>;
}

/// Opens the store a database URL names.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn FeatureStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(StoreError::Url(url.to_owned()))
    }
}
