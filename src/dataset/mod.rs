//! The layers as a running server holds them, as one service: their definitions, the
//! store, the in-memory index, the tile cache, the change feed, the compute pool and the
//! tile archives served as layers ([`crate::archive`], opened at start), behind
//! methods that say what the rest of the server may do with them (the fields are private).
//!
//! - this file: start-up (ingest every `[source]` into an empty store, then bulk-load each
//!   layer's index), the reads the API makes, shutdown;
//! - [`live`]: edits of single features and the change feed;
//! - `follow.rs`: following the store's change log (every change reaches the index there);
//! - [`clusters`]: the clusters of clustered point layers, rebuilt after writes;
//! - [`recall`]: features answered from memory while the store is unreachable;
//! - `snapshots.rs`: index snapshots, read back at start and written at stop;
//! - `thinning.rs`: tile size budgets planned anew after writes.
//! - [`tile`]: cutting one tile, the same for `/tiles` and for offline packs.

pub mod clusters;
mod follow;
pub mod live;
mod recall;
mod snapshots;
mod thinning;
pub mod tile;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cache::TileCache;
use crate::compute::Compute;
use crate::config::{ConfigError, LayerDef, load_layers};
use crate::index::{Index, LayerIndex};
use crate::ingest::Format;
use crate::ingest::run::{
    IngestError, IngestOptions, IngestReport, OsmCache, ingest_records, open_records, progress,
};
use crate::model::{FeatureId, LayerId, StoredFeature};
use crate::store::{Change, ErrorKind, FeatureStore, StoreError};
use live::Feed;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("first start, layer {layer}")]
    Ingest { layer: LayerId, source: IngestError },
}

/// How long a key the store confirmed is taken without asking again: the longest a
/// revocation takes to hold on every server.
pub const KEY_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a key the store confirmed stays good while the store cannot be reached: a
/// revocation made on another server (or the command line) within this time before an
/// outage may not hold here until the store is back.
pub const KEY_TRUST: std::time::Duration = std::time::Duration::from_secs(60);

/// Features found by [`Dataset::stored_features`].
#[derive(Debug)]
pub struct Stored {
    pub features: Vec<StoredFeature>,
    /// The store could not be reached: the features are the index's (see [`recall`]), as
    /// of the last change this server applied, without versions.
    pub from_memory: bool,
}

pub struct Dataset {
    /// Sorted by id.
    layers: Vec<LayerDef>,
    /// Tile archives served as layers, sorted by id (ids distinct from `layers`').
    archives: Vec<crate::archive::Archive>,
    store: Arc<dyn FeatureStore>,
    index: Index,
    cache: TileCache,
    feed: Feed,
    /// Single-feature creates waiting to share a transaction ([`live`]).
    creates: live::Creates,
    /// Where CPU-heavy work runs: request work and layer rebuilds.
    compute: Compute,
    /// Access keys the store last confirmed live, by hash, and when (see
    /// [`Dataset::live_key`]).
    confirmed_keys:
        parking_lot::Mutex<std::collections::HashMap<String, (Arc<crate::auth::KeyInfo>, Instant)>>,
    /// Clustered layers' clusters.
    clusters: clusters::ClusterTrees,
    /// Layers whose tile budget's thinning awaits a new plan after writes.
    replans: thinning::Replans,
    /// Operations counters (`GET /metrics`).
    metrics: crate::metrics::Metrics,
    /// The folder of index snapshots, if any ([`snapshots`]).
    snapshots: Option<std::path::PathBuf>,
}

impl Dataset {
    /// Reads the layer files, opens and checks every tile archive they point at, and opens
    /// the store; the index starts empty.
    pub async fn open(layers_dir: &Path, database: &str) -> Result<Dataset, StartError> {
        let files = load_layers(layers_dir)?;
        let layers = files.live;
        let mut archives = Vec::with_capacity(files.archives.len());
        for def in files.archives {
            let archive = crate::archive::Archive::open(def).await?;
            tracing::info!(
                layer = %archive.id(),
                format = archive.format().extension(),
                tiles = archive.entry_count(),
                "tile archive {}",
                archive.def().path.display()
            );
            archives.push(archive);
        }
        let store = crate::store::open(database).await?;
        let index = Index::new(layers.iter().map(|l| &l.id));
        let clusters = clusters::ClusterTrees::new(&layers);
        let metrics =
            crate::metrics::Metrics::new(layers.iter().map(|l| l.id.clone()).collect(), true);
        Ok(Dataset {
            clusters,
            metrics,
            layers,
            archives,
            store,
            index,
            cache: TileCache::new(crate::cache::DEFAULT_CAPACITY),
            feed: Feed::default(),
            creates: Default::default(),
            compute: Compute::new(crate::compute::Limits::default()),
            confirmed_keys: Default::default(),
            replans: Default::default(),
            snapshots: None,
        })
    }

    /// The same dataset with this tile cache (before it goes live).
    pub fn with_cache(mut self, cache: TileCache) -> Dataset {
        self.cache = cache;
        self
    }

    /// The same dataset with this compute pool (before it goes live).
    pub fn with_compute(mut self, compute: Compute) -> Dataset {
        self.compute = compute;
        self
    }

    /// The same dataset with this tile size budget, in KiB, for the layers whose files
    /// declare none (0: no budget); before the index is loaded.
    pub fn with_tile_budget(mut self, kb: u32) -> Dataset {
        for def in &mut self.layers {
            def.budget_kb.get_or_insert(kb);
        }
        self
    }

    /// The same dataset without per-request metrics (`--no-request-metrics`): the router
    /// then records no route counters or latencies.
    pub fn without_request_metrics(mut self) -> Dataset {
        self.metrics =
            crate::metrics::Metrics::new(self.layers.iter().map(|l| l.id.clone()).collect(), false);
        self
    }

    /// The operations counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Every metric as `GET /metrics` answers it: the counters, and what is read now (the
    /// cache's state, the change log's head from the store, layer sizes).
    pub async fn render_metrics(&self) -> String {
        let head = match self.store.change_span().await {
            Ok(span) => Some(span.map_or(0, |(_, last)| last)),
            Err(e) => {
                tracing::warn!("metrics: reading the change log's head: {e}");
                None
            }
        };
        let applied = self.last_change();
        let scrape = crate::metrics::Scrape {
            cache: self.cache.stats(),
            log_applied: applied,
            log_head: head.map(|h| h.max(applied)),
            layer_features: self
                .layers
                .iter()
                .map(|l| self.index.read(&l.id).len())
                .collect(),
            compute_jobs: self.compute.admitted(),
            in_place: self.compute.in_place_counts(),
        };
        self.metrics.render(&scrape)
    }

    /// Every layer, sorted by id.
    pub fn layers(&self) -> &[LayerDef] {
        &self.layers
    }

    pub fn layer(&self, id: &str) -> Option<&LayerDef> {
        self.layers.iter().find(|l| l.id.as_str() == id)
    }

    /// The tile archives served as layers, sorted by id.
    pub fn archives(&self) -> &[crate::archive::Archive] {
        &self.archives
    }

    pub fn archive(&self, id: &str) -> Option<&crate::archive::Archive> {
        self.archives.iter().find(|a| a.id().as_str() == id)
    }

    /// The in-memory index of every layer (read it, never write it: writes go through
    /// [`Dataset::edit`] so that the store, the cache and the feed follow).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The encoded tiles kept in memory.
    pub fn cache(&self) -> &TileCache {
        &self.cache
    }

    /// The pool where CPU-heavy request work runs.
    pub fn compute(&self) -> &Compute {
        &self.compute
    }

    /// The store itself, for administration from the command line and for tests: keys,
    /// counts, ingest. A server's requests use the methods below.
    pub fn store(&self) -> &Arc<dyn FeatureStore> {
        &self.store
    }

    /// Features of a layer as stored, by id (ids not there are left out), for answers
    /// that join the index's hits with their stored properties and geometry. While the
    /// store cannot be reached, they come from memory instead ([`recall`]).
    pub async fn stored_features(
        &self,
        layer: &LayerId,
        ids: &[FeatureId],
    ) -> Result<Stored, StoreError> {
        match self.store.features_by_ids(layer, ids).await {
            Ok(features) => Ok(Stored {
                features,
                from_memory: false,
            }),
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                let Some(def) = self.layer(layer.as_str()) else {
                    return Err(e);
                };
                tracing::debug!(%layer, "store unavailable, answering from memory: {e}");
                Ok(Stored {
                    features: recall::recall(def, &self.index.read(layer), ids),
                    from_memory: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The live (not revoked) access key with this hash. A key the store confirmed in the
    /// last [`KEY_FRESH`] is taken as it was, so that a service's stream of requests costs
    /// one store lookup a second, and a revocation holds on every server within that time.
    /// While the store cannot be reached, a key it confirmed in the last [`KEY_TRUST`] is
    /// taken as still live (the keys it confirmed are kept; they are as many as the store
    /// has keys, not as many as hashes asked for).
    pub async fn live_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<Arc<crate::auth::KeyInfo>>, StoreError> {
        if let Some((key, at)) = self.confirmed_keys.lock().get(key_hash)
            && at.elapsed() <= KEY_FRESH
        {
            return Ok(Some(key.clone()));
        }
        match self.store.key_by_hash(key_hash).await {
            Ok(Some(key)) => {
                let key = Arc::new(key);
                self.confirmed_keys
                    .lock()
                    .insert(key_hash.to_owned(), (key.clone(), Instant::now()));
                Ok(Some(key))
            }
            Ok(None) => {
                self.confirmed_keys.lock().remove(key_hash);
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                match self.confirmed_keys.lock().get(key_hash) {
                    Some((key, at)) if at.elapsed() <= KEY_TRUST => Ok(Some(key.clone())),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A subscription to the changes broadcast from now on, and the position of the last
    /// one broadcast before it: older changes are read with [`Dataset::changes_since`].
    pub fn subscribe(&self) -> (tokio::sync::broadcast::Receiver<Arc<Change>>, u64) {
        let receiver = self.feed.subscribe();
        (receiver, self.feed.last())
    }

    /// The position of the last change broadcast.
    pub fn last_change(&self) -> u64 {
        self.feed.last()
    }

    /// Up to `limit` entries of the store's change log after position `seq`.
    pub async fn changes_since(&self, seq: u64, limit: u32) -> Result<Vec<Change>, StoreError> {
        self.store.changes_since(seq, limit).await
    }

    /// The first and last positions the store's change log still holds.
    pub async fn change_span(&self) -> Result<Option<(u64, u64)>, StoreError> {
        self.store.change_span().await
    }

    /// On an empty store, ingests every layer's `[source]`: invalid geometries are made
    /// valid, bad records skipped, and each layer logs one summary line ([`log_report`]).
    /// Returns what was ingested; nothing when the store already had data.
    pub async fn ingest_sources_if_empty(
        &self,
    ) -> Result<Vec<(LayerId, IngestReport)>, StartError> {
        // Replicas starting together on one empty store (PostGIS) seed it once: the others
        // wait here, then find it full.
        let _seeding = self.store.seed_lock().await?;
        if !self.store.is_empty().await? {
            return Ok(Vec::new());
        }
        tracing::info!("empty store: ingesting every layer's [source]");
        let mut osm = OsmCache::default();
        let mut reports = Vec::new();
        for def in &self.layers {
            let Some(source) = &def.source else { continue };
            let fail = |source| StartError::Ingest {
                layer: def.id.clone(),
                source,
            };
            let format = source
                .format
                .as_deref()
                .map(|f| f.parse::<Format>())
                .transpose()
                .map_err(|_| {
                    fail(IngestError::UnknownFormat {
                        path: source.path.clone(),
                    })
                })?;
            let records = open_records(
                &source.path,
                format,
                source.osm.as_ref(),
                None,
                def,
                &mut osm,
            )
            .map_err(fail)?;
            let bar = progress(def.id.as_str());
            let report = ingest_records(
                self.store.as_ref(),
                def,
                &source.path,
                records,
                IngestOptions::default(),
                &bar,
            )
            .await
            .map_err(fail)?;
            bar.finish_and_clear();
            log_report(def, &report);
            self.metrics
                .ingested(&def.id, report.written, report.repaired, report.skipped);
            reports.push((def.id.clone(), report));
        }
        Ok(reports)
    }

    /// Loads the index and starts following the store's change log (see
    /// `follow.rs`); the dataset is then ready to serve.
    pub async fn go_live(self) -> Result<Arc<Dataset>, StartError> {
        // The log position is read before the index is loaded, so that a change made in
        // between is applied (again) rather than missed.
        let latest = self.store.change_span().await?.map_or(0, |(_, last)| last);
        // Layers read from snapshots reflect the log at their own positions: the follower
        // starts from the earliest (applying a change again converges on the store).
        let from = self
            .load_index_at(|_| true, None)
            .await?
            .map_or(latest, |p| p.min(latest));
        self.feed.start_at(from);
        let data = Arc::new(self);
        // Layers read from snapshots build their feature queries' trees now, before any
        // request or change could wait on a layer's lock behind a build.
        let mut warming = tokio::task::JoinSet::new();
        for def in &data.layers {
            let (data, id) = (data.clone(), def.id.clone());
            warming.spawn_blocking(move || data.index.read(&id).warm());
        }
        while let Some(done) = warming.join_next().await {
            if let Err(e) = done {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        let mark = data.feed.mark();
        tokio::spawn(
            data.clone()
                .follow_changes(from, std::time::Duration::from_millis(200)),
        );
        tokio::spawn(data.clone().replan_written());
        // Snapshots read: serving starts once what changed since they were written is
        // applied, as it starts with the index current when every layer is read from the
        // store (a store that fails meanwhile lets it start, behind, as then).
        if from < latest && !data.feed.wait_for(latest, mark, CATCH_UP).await {
            tracing::warn!(
                from,
                latest,
                "serving before the changes made since the index snapshots are applied"
            );
        }
        Ok(data)
    }

    /// Loads every layer from the store and indexes it.
    pub async fn load_index(&self) -> Result<(), StartError> {
        self.load_index_of(|_| true).await
    }

    /// Loads the layers `wanted` picks from the store and indexes them; the others stay
    /// empty (an export reads only what it cuts).
    pub async fn load_index_of(&self, wanted: impl Fn(&LayerId) -> bool) -> Result<(), StartError> {
        self.load_index_at(wanted, None).await.map(|_| ())
    }

    /// As [`Dataset::load_index_of`], reading first the layers whose index snapshot fits
    /// ([`Dataset::with_snapshots`]; `exactly_at`: only snapshots at that log position);
    /// returns the earliest log position a snapshot read reflects, `None` when none was.
    pub async fn load_index_at(
        &self,
        wanted: impl Fn(&LayerId) -> bool,
        exactly_at: Option<u64>,
    ) -> Result<Option<u64>, StartError> {
        let from_snapshots = self.load_snapshots(&wanted, exactly_at).await;
        let read = |id: &LayerId| wanted(id) && !from_snapshots.iter().any(|(l, _)| l == id);
        self.load_from_store(read).await?;
        Ok(from_snapshots.iter().map(|(_, p)| *p).min())
    }

    /// Loads the layers `wanted` picks from the store and indexes them. Layers are read one
    /// at a time, and each is built on a blocking thread while the next ones are read,
    /// [`BUILDS_AT_ONCE`] at most: a big layer's build does not hold up the small ones
    /// after it, and the rows and half-built indexes in memory at once stay those of a few
    /// layers (each build already spreads its zooms over the cores).
    async fn load_from_store(&self, wanted: impl Fn(&LayerId) -> bool) -> Result<(), StartError> {
        let started = Instant::now();
        let mut total = 0;
        let mut loaded = 0;
        let mut building: tokio::task::JoinSet<(LayerId, LayerIndex)> = Default::default();
        for def in self.layers.iter().filter(|def| wanted(&def.id)) {
            while building.len() >= BUILDS_AT_ONCE {
                total += install(&self.index, building.join_next().await);
            }
            loaded += 1;
            let read = Instant::now();
            let features = self.store.load_layer(&def.id).await?;
            tracing::debug!(layer = %def.id, features = features.len(), ms = read.elapsed().as_millis() as u64, "layer read");
            let owned = def.clone();
            building.spawn_blocking(move || {
                let built = Instant::now();
                let index = LayerIndex::build(&owned, features);
                tracing::debug!(layer = %owned.id, ms = built.elapsed().as_millis() as u64, "layer indexed");
                (owned.id, index)
            });
        }
        while !building.is_empty() {
            total += install(&self.index, building.join_next().await);
        }
        tracing::info!(
            features = total,
            layers = loaded,
            ms = started.elapsed().as_millis() as u64,
            "index built"
        );
        Ok(())
    }
}

/// The longest a start waits for the changes made since its index snapshots.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(120);

/// Layers built at once at start, while the next is read.
const BUILDS_AT_ONCE: usize = 2;

/// Puts a layer's index in place once it is built; returns its feature count.
fn install(
    index: &Index,
    built: Option<Result<(LayerId, LayerIndex), tokio::task::JoinError>>,
) -> usize {
    let (id, layer) = match built {
        Some(Ok(built)) => built,
        Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        None => return 0,
    };
    let n = layer.len();
    index.replace(&id, layer);
    n
}

/// One summary line per ingest: the counts, and the first few repaired and skipped records
/// with their reasons (a real extract has thousands; the CLI prints more of them).
pub fn log_report(def: &LayerDef, report: &IngestReport) {
    const QUOTED: usize = 3;
    let first = |kept: &[crate::ingest::RecordError], total: u64| {
        let mut text: Vec<String> = kept.iter().take(QUOTED).map(|e| e.to_string()).collect();
        if total > text.len() as u64 {
            text.push(format!("... {} more", total - text.len() as u64));
        }
        text.join("; ")
    };
    tracing::info!(
        layer = %def.id,
        written = report.written,
        repaired = report.repaired,
        skipped = report.skipped,
        ms = report.elapsed.as_millis() as u64,
        first_repaired = %first(&report.repairs, report.repaired),
        first_skipped = %first(&report.errors, report.skipped),
        "ingested"
    );
}
