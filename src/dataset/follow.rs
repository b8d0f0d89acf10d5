//! Following the store's change log for as long as the server runs, in `seq` order: every
//! change, this server's own edits and those of other processes sharing the store (an
//! `ingest --replace` from the command line, another server), reaches the index and the tile
//! cache here, and is then broadcast to `GET /changes` subscribers. One path for all of them
//! keeps the index in the store's order whatever order concurrent edits finish in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::dataset::live::CHANGE_LOG_KEEP;
use crate::index::LayerIndex;
use crate::model::{FeatureId, LayerId, error_chain};
use crate::store::{Change, ChangeKind, ErrorKind, FeaturesRead, StoreError};

/// Why the feed could not apply a change from the store (it tries again).
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rebuilding a layer's index")]
    Rebuild(#[from] crate::compute::Refused),
}

impl Dataset {
    /// Follows the store's change log for as long as the server runs: applies every
    /// change to the index and cache, broadcasts it, and keeps the log bounded. `from` is the
    /// last `seq` the index already reflects (read before the index was loaded).
    pub(super) async fn follow_changes(self: Arc<Self>, from: u64, poll: Duration) {
        // `go_live` has set the feed to `from` already ([`Feed::start_at`]), before any
        // subscriber could ask.
        let mut last = from;
        let mut since_prune = 0u64;
        // The next poll, whatever woke the follower meanwhile: a store's timed-out wait is
        // also its fallback for notices missed (it numbers the rows they announced), and a
        // stream of this server's own writes, each waking the follower, must not put it
        // off for good.
        let mut poll_at = tokio::time::Instant::now() + poll;
        'poll: loop {
            let read = match self.store.changes_and_features_since(last, 1000).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!("reading the change log: {}", error_chain(&e));
                    self.feed.failed();
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            let (batch, mut read_with) = (read.changes, read.features);
            let full = batch.len() == 1000;
            // The log is gap-free; a gap means another server pruned entries this one had
            // not read: reload everything from the store rather than miss them.
            if batch.first().is_some_and(|c| c.seq > last + 1) {
                tracing::warn!(from = last, "change log pruned past this server: reloading");
                // The features read with the log are older than the layers now are.
                read_with = None;
                for def in &self.layers {
                    if let Err(e) = self.reload(def).await {
                        tracing::warn!(layer = %def.id, "reloading: {}", error_chain(&e));
                        self.feed.failed();
                        tokio::time::sleep(poll).await;
                        continue 'poll;
                    }
                }
            }
            // Runs of feature changes are applied together (one store read per layer);
            // a reload stands alone.
            let mut rest = &batch[..];
            while !rest.is_empty() {
                let run = rest
                    .iter()
                    .position(|c| c.kind == ChangeKind::Reload || c.feature.is_none())
                    .map_or(rest.len(), |at| at.max(1));
                let (now, later) = rest.split_at(run);
                // After a reload (which reads the layer afresh) features read with the log
                // may be older than the index: they are read again.
                if now
                    .iter()
                    .any(|c| c.kind == ChangeKind::Reload || c.feature.is_none())
                {
                    read_with = None;
                }
                if let Err(e) = self.apply(now, read_with.as_mut()).await {
                    // Not applied: try again on the next poll, without moving on.
                    tracing::warn!(
                        seq = now[0].seq,
                        "applying a change from the store: {}",
                        error_chain(&e)
                    );
                    self.feed.failed();
                    tokio::time::sleep(poll).await;
                    continue 'poll;
                }
                let now_ms = crate::store::now_ms();
                for change in now {
                    self.metrics.applied(change, now_ms);
                    last = change.seq;
                    since_prune += 1;
                    // No subscriber is not an error.
                    let _ = self.feed.sender.send(Arc::new(change.clone()));
                }
                self.feed.applied_through(last);
                rest = later;
            }
            // Only what this server has read and broadcast is pruned, keeping the newest
            // CHANGE_LOG_KEEP for subscribers that reconnect.
            if since_prune >= 1000 && last > CHANGE_LOG_KEEP {
                since_prune = 0;
                if let Err(e) = self
                    .store
                    .prune_changes_through(last - CHANGE_LOG_KEEP)
                    .await
                {
                    tracing::warn!("pruning the change log: {}", error_chain(&e));
                }
            }
            if !full {
                loop {
                    let left = poll_at.saturating_duration_since(tokio::time::Instant::now());
                    tokio::select! {
                        _ = self.feed.committed_past(last) => break,
                        // A sleep until the next poll, or less when the store says others
                        // wrote; told only of what this server has applied (its own
                        // writes), it has nothing to read.
                        woken = self.store.wait_for_changes(left) => {
                            match woken {
                                // Polled (or told of rows waiting for positions): the
                                // store numbered what was committed.
                                None => {
                                    poll_at = tokio::time::Instant::now() + poll;
                                    break;
                                }
                                Some(through) if through > last => break,
                                Some(_) => {}
                            }
                        }
                    }
                }
            }
        }
    }

    /// Replaces a layer's index with what the store holds and drops its cached tiles.
    async fn reload(&self, def: &LayerDef) -> Result<(), FollowError> {
        let features = self.store.load_layer(&def.id).await?;
        // Built on the compute pool, never on the async runtime: a big layer takes seconds.
        let owned = def.clone();
        let fresh = self
            .compute
            .run_always(move || LayerIndex::build(&owned, features))
            .await?;
        let count = fresh.len();
        self.index.replace(&def.id, fresh);
        let version = self.index.read(&def.id).version();
        let gone = self.cache.invalidate_layer(&def.id, version);
        self.recluster(def).await;
        tracing::info!(layer = %def.id, features = count, tiles = gone, "layer reloaded from the store");
        Ok(())
    }

    /// Brings the index and cache up to date with `changes`: one reload, or a run of
    /// feature changes. Each feature changed gets its state as the store holds it now,
    /// whatever happened in between: applying a change twice, or late, converges on the
    /// store.
    /// Applies a run of changes; `read_with` holds the features they name when they were
    /// read with the log (see [`crate::store::ChangesRead`]), else they are read here. The
    /// features are taken out of it: only the run before a batch's first reload uses it.
    async fn apply(
        &self,
        changes: &[Change],
        mut read_with: Option<&mut FeaturesRead>,
    ) -> Result<(), FollowError> {
        let mut by_layer: HashMap<&LayerId, Vec<FeatureId>> = HashMap::new();
        for change in changes {
            let Some(def) = self.layer(change.layer.as_str()) else {
                continue;
            };
            match (change.kind, change.feature) {
                (ChangeKind::Reload, _) | (_, None) => match self.reload(def).await {
                    // A layer the store cannot give back whole (a row written in SQL that
                    // urbantile cannot read) keeps its index as it was, rather than
                    // stopping every later change at this one.
                    Err(FollowError::Store(e)) if e.kind() == ErrorKind::Other => {
                        tracing::error!(
                            layer = %def.id,
                            seq = change.seq,
                            "the layer cannot be reloaded; its index stays as it was: {}",
                            error_chain(&e)
                        );
                    }
                    done => done?,
                },
                (_, Some(id)) => by_layer.entry(&def.id).or_default().push(id),
            }
        }
        for (layer, mut ids) in by_layer {
            ids.sort_unstable();
            ids.dedup();
            let def = self.layer(layer.as_str()).expect("a layer of this dataset");
            let mut now: HashMap<FeatureId, _> = match read_with.as_deref_mut() {
                Some(read) => {
                    let mut read = read.remove(layer).unwrap_or_default();
                    ids.iter()
                        .filter_map(|id| read.remove(id).flatten())
                        .map(|f| (f.id, f))
                        .collect()
                }
                None => {
                    let found = match self.store.features_by_ids(layer, &ids).await {
                        Ok(found) => found,
                        Err(e) if e.kind() == ErrorKind::Other => {
                            self.readable(layer, &ids).await?
                        }
                        Err(e) => return Err(e.into()),
                    };
                    found.into_iter().map(|f| (f.id, f)).collect()
                }
            };
            self.apply_to_index(def, ids.into_iter().map(|id| (id, now.remove(&id))));
            self.recluster(def).await;
            self.replan_later(def);
        }
        Ok(())
    }

    /// The features of `ids` the store can give back, read one by one: one it cannot read
    /// (written in SQL in a form urbantile does not take) is left out, and so leaves the
    /// index, with an error logged, instead of holding up every later change.
    async fn readable(
        &self,
        layer: &LayerId,
        ids: &[FeatureId],
    ) -> Result<Vec<crate::model::StoredFeature>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            match self.store.features_by_ids(layer, &[id]).await {
                Ok(found) => out.extend(found),
                Err(e) if e.kind() == ErrorKind::Other => {
                    tracing::error!(
                        %layer,
                        feature = id.0,
                        "the feature cannot be read from the store; it leaves the index: {}",
                        error_chain(&e)
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
