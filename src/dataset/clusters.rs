//! The clusters of the layers that declare `cluster` (see [`crate::cluster`]): which points
//! take part (the layer's live features, those valid at a tile's `datetime` and passing
//! its `filter`), the trees built from them, kept per index version and query, and the
//! exact tile invalidation after a write.
//!
//! A tree is built from one version of the layer's index and says so; a tile drawn from it
//! is cached under that version, so that [`crate::cache`] refuses it once a write has made
//! it stale. After each write, [`Dataset::recluster`] builds the layer's unfiltered tree on
//! the compute pool and drops exactly the cached tiles whose clusters differ from those of
//! the tree tiles were last drawn from (the baseline); tiles asked with a `datetime` or
//! `filter` are grouped from other points and are dropped at every clustered zoom.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::cluster::{ClusterParams, ClusterTree, Clustered, Leaf, to_world};
use crate::config::LayerDef;
use crate::dataset::Dataset;
use crate::filter::Filter;
use crate::index::LayerIndex;
use crate::model::{LayerId, TimeRange};
use crate::tiles::{ProjectedGeometry, Value};

/// Trees kept per layer besides the baseline: one per recent (version, query).
const KEEP: usize = 6;

/// Which of a layer's points a tree groups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subset<'a> {
    pub time: Option<TimeRange>,
    /// The filter and its text (language and text as asked), which tells trees apart.
    pub filter: Option<(&'a Filter, &'a str)>,
}

impl Subset<'_> {
    /// What tells this subset's tree apart from others of `def`: a time only where the
    /// layer has one (elsewhere it selects every point), and the filter's text.
    fn key(&self, def: &LayerDef) -> String {
        let mut key = String::new();
        if let Some(t) = self.time.filter(|_| def.time.is_some()) {
            key.push_str(&format!("t={:?}..{:?};", t.start, t.end));
        }
        if let Some((_, text)) = self.filter {
            key.push_str(text);
        }
        key
    }
}

#[derive(Debug, Default)]
struct LayerTrees {
    recent: VecDeque<(u64, String, Arc<ClusterTree>)>,
    /// The unfiltered tree that cached tiles may have been drawn from; `None` until one
    /// is built.
    baseline: Option<Clustered>,
}

/// Every clustered layer's trees, each layer behind its own lock (held while a tree is
/// built, so that concurrent tiles wait for one build instead of each making their own).
#[derive(Debug, Default)]
pub struct ClusterTrees {
    layers: HashMap<LayerId, Arc<Mutex<LayerTrees>>>,
}

impl ClusterTrees {
    pub fn new(layers: &[LayerDef]) -> ClusterTrees {
        ClusterTrees {
            layers: layers
                .iter()
                .filter(|d| d.cluster.is_some())
                .map(|d| (d.id.clone(), Arc::default()))
                .collect(),
        }
    }
}

/// How a layer's tree is shaped.
pub fn params_of(def: &LayerDef) -> Option<ClusterParams> {
    def.cluster.as_ref().map(|c| ClusterParams {
        radius_px: f64::from(c.radius_px),
        extent: 512.0,
        minzoom: def.minzoom,
        maxzoom: c.maxzoom,
    })
}

/// The points of `index` in `subset`, by feature id, with the layer's sums (0 for a
/// feature without the property). A multipoint takes part at its first point.
pub fn leaves_of(def: &LayerDef, index: &LayerIndex, subset: Subset<'_>) -> (Vec<Leaf>, Vec<f64>) {
    let sum_keys: &[usize] = def.cluster.as_ref().map_or(&[], |c| &c.sum);
    let time = subset.time.filter(|_| def.time.is_some());
    // The sums are read in the same pass as the points, while each feature is at hand.
    let mut picked = Vec::with_capacity(index.len());
    let mut sums_read = Vec::with_capacity(index.len() * sum_keys.len());
    for f in index.features() {
        if time.is_some_and(|t| !f.time.overlaps(&t)) {
            continue;
        }
        if subset.filter.is_some_and(|(flt, _)| !flt.matches(index, f)) {
            continue;
        }
        let ProjectedGeometry::Points(mp) = &f.geometry else {
            continue;
        };
        let Some(p) = mp.0.first() else { continue };
        picked.push(Leaf {
            id: f.id.0,
            world: to_world(p.x(), p.y()),
        });
        for &k in sum_keys {
            sums_read.push(index.value_of(f, k).map_or(0.0, number));
        }
    }
    // By id, so that the tree depends on the data and not on the order of edits. Features
    // are mostly kept in id order already.
    if picked.is_sorted_by_key(|l| l.id) {
        return (picked, sums_read);
    }
    let mut order: Vec<u32> = (0..picked.len() as u32).collect();
    order.sort_unstable_by_key(|&i| picked[i as usize].id);
    let n = sum_keys.len();
    let sums = order
        .iter()
        .flat_map(|&i| &sums_read[i as usize * n..(i as usize + 1) * n])
        .copied()
        .collect();
    (order.iter().map(|&i| picked[i as usize]).collect(), sums)
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Double(d) => *d,
        Value::Uint(u) => *u as f64,
        Value::Sint(i) => *i as f64,
        Value::Bool(_) | Value::String(_) => 0.0,
    }
}

/// The clusters of `index`'s points in `subset`, built now (`None` for a layer without
/// clusters): what [`Dataset::clusters`] keeps, for a caller holding an index of its own.
pub fn build_tree(def: &LayerDef, index: &LayerIndex, subset: Subset<'_>) -> Option<ClusterTree> {
    let params = params_of(def)?;
    let (leaves, sums) = leaves_of(def, index, subset);
    let n_sums = def.cluster.as_ref().map_or(0, |c| c.sum.len());
    Some(ClusterTree::build(params, &leaves, &sums, n_sums))
}

impl Dataset {
    /// What a tile of `def` at zoom `z` draws from clusters: its clusters at the zooms
    /// from the layer's minzoom to its cluster maxzoom, `None` elsewhere (and for a layer
    /// without clusters). CPU work: call it on the compute pool (in place, a tree too big for
    /// the job's allowance is not built, and the job gives up).
    pub fn tile_clusters(&self, def: &LayerDef, z: u8, subset: Subset<'_>) -> Option<Clustered> {
        let c = def.cluster.as_ref()?;
        if z < def.minzoom || z > c.maxzoom {
            return None;
        }
        self.clusters(def, subset)
    }

    /// The clusters of a clustered layer's points in `subset`, built from the index as it
    /// is now (or taken from the trees kept); `None` for a layer without clusters. CPU
    /// work: call it on the compute pool.
    pub fn clusters(&self, def: &LayerDef, subset: Subset<'_>) -> Option<Clustered> {
        let trees = self.clusters.layers.get(&def.id)?;
        tree_for(def, self.index.slot(&def.id), trees, subset)
    }

    /// After a write to a clustered layer (nothing for others): builds its clusters anew on
    /// the compute pool and drops the cached tiles they change. Call it after the write has
    /// reached the index, before answering, so that the next tile finds the tree ready.
    pub(super) async fn recluster(&self, def: &LayerDef) {
        let Some(trees) = self.clusters.layers.get(&def.id).cloned() else {
            return;
        };
        let index = self.index.slot(&def.id).clone();
        let owned = def.clone();
        let kept = trees.clone();
        let done = self
            .compute
            .run_always(move || {
                let now = tree_for(&owned, &index, &trees, Subset::default())?;
                let old = trees.lock().baseline.replace(now.clone());
                let changed = old.map(|old| {
                    let old = old.tree;
                    if Arc::ptr_eq(&old, &now.tree) {
                        return Vec::new();
                    }
                    now.tree
                        .changes_from(&old)
                        .into_iter()
                        .map(|(z, w)| (z, crate::cluster::from_world(w)))
                        .collect::<Vec<_>>()
                });
                Some((now.version, now.tree.params().maxzoom, changed))
            })
            .await;
        let (version, maxzoom, changed) = match done {
            Ok(Some(done)) => done,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(layer = %def.id, "rebuilding clusters: {e}");
                // Whatever the clusters are now, no cached tile of theirs is kept, and the
                // next rebuild has no tree to compare with.
                kept.lock().baseline = None;
                let v = self.index.read(&def.id).version();
                self.cache
                    .invalidate_zooms(&def.id, v, 0..=crate::tiles::MAX_ZOOM, |_| true);
                return;
            }
        };
        let zooms = def.minzoom..=maxzoom;
        match changed {
            Some(changed) => {
                // Tiles asked with a datetime or a filter group other points.
                self.cache
                    .invalidate_zooms(&def.id, version, zooms, |k| !k.query.is_empty());
                self.cache.invalidate_points(&def.id, version, &changed);
            }
            // No tree before: a cached tile of these zooms may be from anything.
            None => {
                self.cache
                    .invalidate_zooms(&def.id, version, zooms, |_| true);
            }
        }
    }
}

/// [`Dataset::clusters`] on its parts: the layer's index and its trees.
///
/// The trees' lock is held to look a tree up and to keep one, never while one is built
/// (tens of milliseconds for 100,000 points): a request for a tree of its own (a new
/// `datetime` or `filter`) must not hold up tiles and writes that need another. Two
/// requests for the same missing tree may both build it; the pool bounds how many run, and
/// a job in place builds only trees within its allowance.
fn tree_for(
    def: &LayerDef,
    index: &RwLock<LayerIndex>,
    trees: &Mutex<LayerTrees>,
    subset: Subset<'_>,
) -> Option<Clustered> {
    let params = params_of(def)?;
    let key = subset.key(def);
    let (version, leaves, sums) = {
        let index = crate::compute::read(index)?;
        let version = index.version();
        if let Some(kept) = kept_tree(&trees.lock(), version, &key) {
            return Some(kept);
        }
        // A job run in place on the runtime builds only small trees (one point is one
        // item of its allowance); bigger ones are left to the pool.
        if !crate::compute::afford(index.len()) {
            return None;
        }
        let (leaves, sums) = leaves_of(def, &index, subset);
        (version, leaves, sums)
    };
    let n_sums = def.cluster.as_ref().map_or(0, |c| c.sum.len());
    let tree = Arc::new(ClusterTree::build(params, &leaves, &sums, n_sums));
    let mut trees = trees.lock();
    if let Some(kept) = kept_tree(&trees, version, &key) {
        return Some(kept);
    }
    if key.is_empty() && trees.baseline.is_none() {
        trees.baseline = Some(Clustered {
            version,
            tree: tree.clone(),
        });
    }
    trees.recent.push_front((version, key, tree.clone()));
    trees.recent.truncate(KEEP);
    Some(Clustered { version, tree })
}

/// The tree kept for this index version and subset key, if any. The unfiltered tree is
/// the baseline after a write: kept whatever other queries push through `recent`.
fn kept_tree(trees: &LayerTrees, version: u64, key: &str) -> Option<Clustered> {
    let baseline = trees
        .baseline
        .as_ref()
        .filter(|b| key.is_empty() && b.version == version)
        .map(|b| &b.tree);
    baseline
        .or_else(|| {
            trees
                .recent
                .iter()
                .find(|(v, k, _)| *v == version && k == key)
                .map(|(_, _, tree)| tree)
        })
        .map(|tree| Clustered {
            version,
            tree: tree.clone(),
        })
}
