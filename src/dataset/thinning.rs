//! Keeping the tile size budgets' thinning (see [`crate::index::thinning`]) up to date
//! with writes. A write reaches the index at once, and a feature it adds or moves is drawn
//! at the zooms that leave nothing out; a moment later the layer's thinning is planned
//! anew from the whole layer, off the write path and outside the layer's lock, and the
//! cached tiles of the zooms whose kept features changed are dropped. Writes in quick succession share one plan. A layer
//! that leaves nothing out, and took every write whole, needs no new plan.

use std::time::Duration;

use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::index::thinning;
use crate::model::LayerId;

/// How long a plan waits for more writes to the same layers.
const SETTLE: Duration = Duration::from_millis(250);

/// Layers written since their last plan, and the wake-up of the task that plans them.
#[derive(Debug, Default)]
pub(super) struct Replans {
    dirty: parking_lot::Mutex<std::collections::BTreeSet<LayerId>>,
    wake: tokio::sync::Notify,
}

impl Dataset {
    /// After a write to a layer with a budget (nothing for others): asks for a new plan.
    pub(super) fn replan_later(&self, def: &LayerDef) {
        if def.budget_bytes().is_none()
            || !self
                .index
                .read(&def.id)
                .thinning()
                .is_none_or(|t| t.stale())
        {
            return;
        }
        self.replans.dirty.lock().insert(def.id.clone());
        self.replans.wake.notify_one();
    }

    /// Plans the thinning of the layers written to, as they come; runs as long as the
    /// dataset.
    pub(super) async fn replan_written(self: std::sync::Arc<Self>) {
        loop {
            self.replans.wake.notified().await;
            tokio::time::sleep(SETTLE).await;
            let dirty = std::mem::take(&mut *self.replans.dirty.lock());
            for id in dirty {
                if let Some(def) = self.layer(id.as_str()) {
                    self.replan(def).await;
                }
            }
        }
    }

    /// Plans a layer's thinning on the compute pool, puts it in place and drops the cached
    /// tiles it changes. Only copying out what the plan reads holds the layer's lock (the
    /// pool runs at a lower priority, so a plan holding it throughout would keep writes and
    /// tiles of the layer waiting behind whatever else takes the cores); features written
    /// meanwhile keep their provisional zooms until the next plan, which their writes ask
    /// for.
    pub(super) async fn replan(&self, def: &LayerDef) {
        let slot = self.index.slot(&def.id).clone();
        let owned = def.clone();
        let planned = self
            .compute
            .run_always(move || {
                let input = thinning::PlanInput::gather(&owned, &slot.read())?;
                let plan = input.plan();
                let mut index = slot.write();
                let changed = index.set_thinning(plan);
                // A feature written while planning that no longer fits everywhere.
                let again = index.thinning().is_some_and(|t| t.left_out());
                Some((index.version(), changed, again))
            })
            .await;
        if let Ok(Some((_, _, true))) = planned {
            self.replans.dirty.lock().insert(def.id.clone());
            self.replans.wake.notify_one();
        }
        match planned {
            Ok(Some((version, Some((lo, hi)), _))) => {
                let gone = self
                    .cache
                    .invalidate_zooms(&def.id, version, lo..=hi, |_| true);
                tracing::debug!(layer = %def.id, lo, hi, tiles = gone, "thinning planned anew");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(layer = %def.id, "planning the tile budget's thinning: {e}"),
        }
    }
}
