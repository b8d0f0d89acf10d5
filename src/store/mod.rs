//! Persistence: the one [`FeatureStore`] trait that every backend implements, and the
//! embedded SQLite backend. The store is the truth; the in-memory [`crate::index`] is
//! rebuilt from it on start and after each layer write.

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
    #[error("cannot open store {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
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
}

/// An open write to one layer (one database transaction).
#[async_trait]
pub trait LayerWriter: Send {
    /// Adds a batch; returns the ids given to the features, in order.
    async fn insert(&mut self, features: &[NewFeature]) -> Result<Vec<FeatureId>, StoreError>;

    /// Makes every batch durable and visible at once.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store a database URL names.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn FeatureStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(StoreError::Url(url.to_owned()))
    }
}
