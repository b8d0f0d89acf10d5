//! Following the store's change log for as long as the server runs: other processes'
//! edits (an `ingest --replace` from the command line, another server sharing the store)
//! reach this server's index and tile cache, and every change is broadcast to `GET /changes`
//! subscribers, in `seq` order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::dataset::live::CHANGE_LOG_KEEP;
use crate::index::LayerIndex;
use crate::model::error_chain;
use crate::store::{Change, ChangeKind, StoreError};

/// Why the feed could not apply a change from the store (it tries again).
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rebuilding a layer's index")]
    Rebuild(#[from] crate::compute::Refused),
}

impl Dataset {
    /// Follows the store's change log for as long as the server runs: applies other
    /// processes' edits, broadcasts every change, and keeps the log bounded. `from` is the
    /// last `seq` the index already reflects (read before the index was loaded).
    pub(super) async fn follow_changes(self: Arc<Self>, from: u64, poll: Duration) {
        // `go_live` has set the feed to `from` already ([`Feed::start_at`]), before any
        // subscriber could ask.
        let mut last = from;
        let mut since_prune = 0u64;
        'poll: loop {
            let batch = match self.store.changes_since(last, 1000).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("reading the change log: {}", error_chain(&e));
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            let full = batch.len() == 1000;
            // The log is gap-free; a gap means another server pruned entries this one had
            // not read: reload everything from the store rather than miss them.
            if batch.first().is_some_and(|c| c.seq > last + 1) {
                tracing::warn!(from = last, "change log pruned past this server: reloading");
                for def in &self.layers {
                    if let Err(e) = self.reload(def).await {
                        tracing::warn!(layer = %def.id, "reloading: {}", error_chain(&e));
                        tokio::time::sleep(poll).await;
                        continue 'poll;
                    }
                }
            }
            for change in batch {
                if change.origin != self.store.origin()
                    && let Err(e) = self.apply_external(&change).await
                {
                    // Not applied: try again on the next poll, without moving on.
                    tracing::warn!(
                        seq = change.seq,
                        "applying a change from the store: {}",
                        error_chain(&e)
                    );
                    tokio::time::sleep(poll).await;
                    continue 'poll;
                }
                last = change.seq;
                since_prune += 1;
                self.feed.last.store(last, Ordering::Release);
                // No subscriber is not an error.
                let _ = self.feed.sender.send(Arc::new(change));
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
                tokio::select! {
                    _ = self.feed.wake.notified() => {}
                    // A sleep of `poll`, or less when the store says others wrote.
                    _ = self.store.wait_for_changes(poll) => {}
                }
            }
        }
    }

    /// Replaces a layer's index with what the store holds and drops its cached tiles.
    async fn reload(&self, def: &LayerDef) -> Result<(), FollowError> {
        let _in_order = self.feed.write.lock().await;
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

    /// Brings the index and cache up to date with a change another process made.
    async fn apply_external(&self, change: &Change) -> Result<(), FollowError> {
        let Some(def) = self.layer(change.layer.as_str()) else {
            return Ok(());
        };
        match (change.kind, change.feature) {
            (ChangeKind::Reload, _) | (_, None) => self.reload(def).await?,
            (_, Some(id)) => {
                let _in_order = self.feed.write.lock().await;
                // The feature as it is now, whatever happened in between: applying the
                // same change twice, or late, converges on the store.
                let now = self.store.features_by_ids(&def.id, &[id]).await?;
                let state = now.into_iter().next().map(|f| f.feature);
                self.apply_to_index(def, [(id, state)]);
                self.recluster(def).await;
            }
        }
        Ok(())
    }
}
