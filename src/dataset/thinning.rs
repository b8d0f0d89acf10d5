//! Keeping the tile size budgets' thinning (see [`crate::index::thinning`]) up to date
//! with writes. A write reaches the index at once, and a feature it adds or moves is drawn
//! at the zooms that leave nothing out; a moment later the layer's thinning is planned
//! anew from the whole layer, off the write path and outside the layer's lock, and the
//! cached tiles of the zooms whose kept features changed are dropped. Writes in quick succession share one plan. A layer
//! that leaves nothing out, and took every write whole, needs no new plan.

use std::time::{Duration, Instant};

use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::index::thinning;
use crate::model::LayerId;

/// How long a plan waits for more writes to the same layers.
const SETTLE: Duration = Duration::from_millis(250);
/// Features a plan copies out of the index per taking of its lock.
const GATHER_PART: usize = 8192;
/// Plans wait at least this many times as long as the last round of plans took.
const SPACING: u32 = 4;

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
        self.replan_again(def);
    }

    /// Asks for another plan of a layer whatever its thinning says.
    fn replan_again(&self, def: &LayerDef) {
        self.replans.dirty.lock().insert(def.id.clone());
        self.replans.wake.notify_one();
    }

    /// Plans the thinning of the layers written to, as they come; runs as long as the
    /// dataset. Under a steady stream of writes, plans of big layers are spaced so that
    /// planning takes at most a fifth of the time: a written feature is drawn where it fits
    /// meanwhile, so a later plan costs the map nothing but the order of what is kept.
    pub(super) async fn replan_written(self: std::sync::Arc<Self>) {
        let mut last = Duration::ZERO;
        loop {
            self.replans.wake.notified().await;
            tokio::time::sleep(SETTLE.max(last * SPACING)).await;
            let started = Instant::now();
            let dirty = std::mem::take(&mut *self.replans.dirty.lock());
            for id in dirty {
                if let Some(def) = self.layer(id.as_str()) {
                    self.replan(def).await;
                }
            }
            last = started.elapsed();
        }
    }

    /// Plans a layer's thinning on the compute pool, puts it in place and drops the cached
    /// tiles it changes. Only copying out what the plan reads, and putting the plan in
    /// place, hold the layer's lock (the pool runs at a lower priority, so a plan holding it
    /// throughout would keep writes and tiles of the layer waiting behind whatever else
    /// takes the cores). Features written meanwhile are admitted against the new plan; one
    /// that no longer fits everywhere asks for the next plan.
    pub(super) async fn replan(&self, def: &LayerDef) {
        let slot = self.index.slot(&def.id).clone();
        let owned = def.clone();
        let planned = self
            .compute
            .run_always(move || {
                let started = Instant::now();
                // In parts, each under the read lock for a millisecond or two, so that
                // writes and tiles of a big layer do not wait for the whole copy.
                let Some(mut input) = thinning::PlanInput::begin(&owned, &slot.read()) else {
                    return Ok(None);
                };
                loop {
                    match input.gather_part(&owned, &slot.read(), GATHER_PART) {
                        Some(true) => break,
                        Some(false) => {}
                        // Compacted or replaced meanwhile: its features moved.
                        None => return Err(()),
                    }
                }
                let gathered = started.elapsed();
                let features = input.len();
                let plan = input.plan();
                let planning = started.elapsed() - gathered;
                let mut index = slot.write();
                let applying = Instant::now();
                let changed = index.set_thinning(plan);
                Ok(Some(Replanned {
                    version: index.version(),
                    changed,
                    again: index.thinning().is_some_and(|t| t.left_out()),
                    features,
                    gathering: gathered,
                    planning,
                    applying: applying.elapsed(),
                }))
            })
            .await;
        let done = match planned {
            Ok(Ok(Some(done))) => done,
            Ok(Ok(None)) => return,
            Ok(Err(())) => {
                self.replan_again(def);
                return;
            }
            Err(e) => {
                tracing::warn!(layer = %def.id, "planning the tile budget's thinning: {e}");
                return;
            }
        };
        if done.again {
            self.replan_again(def);
        }
        let gone = match done.changed {
            Some((lo, hi)) => self
                .cache
                .invalidate_zooms(&def.id, done.version, lo..=hi, |_| true),
            None => 0,
        };
        tracing::debug!(
            layer = %def.id,
            changed = ?done.changed,
            tiles = gone,
            features = done.features,
            gathering_ms = done.gathering.as_secs_f64() * 1e3,
            planning_ms = done.planning.as_secs_f64() * 1e3,
            applying_ms = done.applying.as_secs_f64() * 1e3,
            "thinning planned anew"
        );
    }
}

/// What a plan put in place.
struct Replanned {
    /// The layer's version once it was.
    version: u64,
    /// The zooms whose tiles changed.
    changed: Option<(u8, u8)>,
    /// A feature written while planning was left out somewhere: plan again.
    again: bool,
    /// Features the plan ranked.
    features: usize,
    /// How long copying out the plan's input took (holding the layer's read lock), planning
    /// (holding no lock) and putting the plan in place (holding its write lock).
    gathering: Duration,
    planning: Duration,
    applying: Duration,
}
