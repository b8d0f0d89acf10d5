//! Tile size budgets: which of a layer's features its tiles leave out at each zoom, so that
//! no tile's part of the layer is over the layer's budget (bytes before compression).
//!
//! Thinning drops whole features, never the tail of a list: the layer's features are put
//! in one order of importance, and at each zoom they are taken in that order, each kept
//! when it fits in every tile it meets beside the features kept before it, and left out
//! otherwise; a tile that could not take a feature then takes no later one, so what each
//! tile keeps is what comes first in the order among the features it meets. The decision is made once per feature and zoom for the whole zoom level, so a
//! feature kept in one tile is kept in all its neighbours, and the same data gives the same
//! decisions on every server. Sparse parts of the map keep what dense parts must give up.
//!
//! The order (see [`RankKey`]): a layer's `rank_by` property first, if it has one; then
//! the biggest polygons and the longest lines; points by density, as tippecanoe's
//! drop-densest does: each point gets the coarsest level of a quadtree over the world at
//! which it is the one point of its cell picked (by a hash of its id), so that keeping the
//! points of levels up to some depth keeps at most one point per cell of that depth, and
//! every point where points are sparse.
//!
//! A feature that meets more than [`WIDE_TILES`] tiles at a zoom counts against every tile
//! of the zoom at once, which bounds the plan's cost whatever the features' extent.
//!
//! Sizes are estimates from the grid geometry each feature has at each zoom (see
//! [`crate::tiles::grid`]): its commands, its tags, the values a tile does not hold yet,
//! framing, and slack for clipping. A feature that spans several tiles
//! counts whole in each, so the estimate is above what tiles hold.
//!
//! Kept sets nest: a feature kept at one zoom is kept at every deeper one, up to the
//! layer's maxzoom (overzoomed tiles keep what the maxzoom keeps). The index stores the
//! outcome as each feature's first drawn zoom (its box's `minzoom`), so a thinned tile
//! does not even visit what it leaves out.

use std::cmp::Ordering;

use crate::config::{LayerDef, RankBy};
use crate::index::LayerIndex;
use crate::model::FeatureId;
use crate::tiles::mercator::{HALF_WORLD, ProjectedGeometry};
use crate::tiles::{BUFFER_UNITS, EXTENT, Value};

/// A first zoom meaning "at no zoom".
pub const NEVER: u8 = u8::MAX;

/// Depth of the quadtree that ranks points by density (cells of about 2.4 m at the equator).
const DENSITY_LEVELS: u32 = 24;

/// Bytes a feature message costs besides its geometry and tags: its key, length, id and
/// type fields.
const FEATURE_FRAMING: usize = 16;
/// Bytes one tag costs in a feature: two varint indexes.
const TAG_BYTES: usize = 4;
/// Bytes that frame one value message in a tile's value table.
const VALUE_FRAMING: usize = 3;
/// A tile's total once a feature did not fit in it.
const FULL: usize = usize::MAX;
/// Extra bytes for a feature that a tile cuts: the points clipping adds on the tile's edges.
const CLIP_SLACK: usize = 32;

/// Where a feature stands in its layer's order of importance; the lesser key stays longer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankKey {
    /// Place of the feature's `rank_by` value in the layer's list (values not listed after
    /// the list); 0 without such a list.
    class: u32,
    /// Larger stays longer: the `rank_by` number, else the geometric measure.
    first: f64,
    /// Larger stays longer: the geometric measure when `first` is a `rank_by` number.
    second: f64,
    /// A hash of the id: ties fall the same way on every server.
    tie: u64,
}

impl RankKey {
    fn order(&self, other: &RankKey) -> Ordering {
        self.class
            .cmp(&other.class)
            .then(other.first.total_cmp(&self.first))
            .then(other.second.total_cmp(&self.second))
            .then(self.tie.cmp(&other.tie))
    }
}

/// How much of a layer one zoom keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoomThinning {
    pub z: u8,
    pub kept: usize,
    /// Features drawn at this zoom without a budget.
    pub of: usize,
}

/// A feature that meets more tiles than this at a zoom (a huge polygon, a long line, or a
/// hostile write spanning the world) is counted once against every tile of the zoom rather
/// than tile by tile, so that the plan's cost stays bounded by the number of features.
const WIDE_TILES: u64 = 64;

/// What the features kept at one zoom take of its tiles.
#[derive(Debug, Clone, Default)]
struct ZoomUse {
    /// Bytes used in each tile ([`FULL`] once a feature did not fit).
    tiles: rustc_hash::FxHashMap<(u32, u32), usize>,
    /// Bytes of wide features, counted in every tile.
    wide: usize,
    /// The most any one tile holds (not counting `wide`).
    most: usize,
}

impl ZoomUse {
    /// Whether `bytes` more fit in tile `t`.
    fn fits(&self, t: (u32, u32), bytes: usize, capacity: usize) -> bool {
        self.tiles
            .get(&t)
            .is_none_or(|&used| used != FULL && used + self.wide + bytes <= capacity)
    }

    fn add(&mut self, t: (u32, u32), bytes: usize) {
        let used = self.tiles.entry(t).or_insert(0);
        *used += bytes;
        self.most = self.most.max(*used);
    }

    /// Whether a wide feature of `bytes` fits in every tile.
    fn fits_everywhere(&self, bytes: usize, capacity: usize) -> bool {
        self.most + self.wide + bytes <= capacity
    }
}

/// A layer's thinning, as planned from one state of its index.
#[derive(Debug, Clone, Default)]
pub struct Thinning {
    /// The layer's budget, in bytes.
    pub budget: usize,
    /// The zooms that leave features out, in ascending order.
    pub thinned: Vec<ZoomThinning>,
    /// The zooms planned, `lo..=hi` (none when `lo > hi`).
    lo: u8,
    hi: u8,
    /// Bytes one tile's features may take (the budget less the layer's own framing and
    /// some slack).
    capacity: usize,
    /// Per zoom planned, what each tile holds: features written after the plan are
    /// admitted where they still fit, until the next plan ranks them (see
    /// [`LayerIndex::admit`]).
    totals: Vec<ZoomUse>,
    /// Each live feature's storage position and first kept zoom ([`NEVER`]: none), for the
    /// features the plan saw, in storage order.
    kept_from: Vec<(u32, u8)>,
    /// A feature written since the plan was left out at some zoom: a new plan may keep
    /// it there (in place of lesser features).
    left_out: bool,
    /// The index's storage length and compaction count when the plan's input was gathered:
    /// the features at positions past it were written while it was planned.
    seen: (usize, u64),
}

impl Thinning {
    /// Whether planning anew could change what tiles keep: some zoom leaves features out,
    /// or a feature written since was left out somewhere. (A layer that leaves nothing out
    /// takes every write as it comes; a deletion only frees room.)
    pub fn stale(&self) -> bool {
        !self.thinned.is_empty() || self.left_out
    }

    /// Whether a feature written since the plan was left out at some zoom.
    pub fn left_out(&self) -> bool {
        self.left_out
    }
}

/// Plans the thinning of a layer with a budget (`None` without one), from the index as it
/// is: [`PlanInput::gather`] then [`PlanInput::plan`].
pub fn plan(def: &LayerDef, index: &LayerIndex) -> Option<Thinning> {
    PlanInput::gather(def, index).map(PlanInput::plan)
}

/// What a plan reads of one state of a layer's index, copied out of it: gathering takes a
/// small part of a plan's time, so the layer's lock is held only that long and writes to
/// the layer do not wait for the plan itself.
#[derive(Debug)]
pub struct PlanInput {
    budget: usize,
    lo: u8,
    hi: u8,
    capacity: usize,
    /// Every live feature, in storage order.
    features: Vec<PlanFeature>,
    /// The value ids of the features' tags, each feature's in one run.
    tags: Vec<u32>,
    /// Per feature, `hi - lo + 1` shape estimates ([`estimate_shape`]), from zoom `lo` up.
    shapes: Vec<u32>,
    /// Per value id, what the value costs a tile that does not hold it yet.
    value_bytes: Vec<u32>,
    /// The index's storage length and compaction count when gathering began.
    seen: (usize, u64),
    /// The next storage position to copy out.
    next: usize,
}

#[derive(Debug)]
struct PlanFeature {
    id: FeatureId,
    position: u32,
    /// The feature's own first zoom (not the budget's).
    minzoom: u8,
    bounds: ([f64; 2], [f64; 2]),
    tags: std::ops::Range<u32>,
    /// The rank key, but for a point's density level (see [`PlanInput::rank`]).
    class: u32,
    number: Option<f64>,
    measure: Measure,
}

#[derive(Debug, Clone, Copy)]
enum Measure {
    /// A line's length or a polygon's area.
    Size(f64),
    /// A point, ranked by density: the quadtree cell of its (first) point, if any.
    Point(Option<u64>),
}

impl PlanInput {
    /// Copies out of `index` what planning reads; `None` for a layer without a budget.
    /// Cost: O(features x (zooms + tags)), plus each line's or polygon's vertices.
    pub fn gather(def: &LayerDef, index: &LayerIndex) -> Option<PlanInput> {
        let mut input = PlanInput::begin(def, index)?;
        input.gather_part(def, index, usize::MAX);
        Some(input)
    }

    /// An input with nothing copied yet, to be filled by [`PlanInput::gather_part`] while
    /// the layer's lock is taken and let go between parts; `None` for a layer without a
    /// budget. The features it will hold are those stored now; what is written
    /// meanwhile is admitted when the plan is put in place ([`LayerIndex::set_thinning`]).
    pub fn begin(def: &LayerDef, index: &LayerIndex) -> Option<PlanInput> {
        let budget = def.budget_bytes()?;
        // Up to a clustered layer's cluster zoom its tiles draw clusters, not these features.
        let lo = match &def.cluster {
            Some(c) => def.minzoom.max(c.maxzoom.saturating_add(1)),
            None => def.minzoom,
        };
        let hi = def.maxzoom;
        let overhead =
            def.id.as_str().len() + def.properties.iter().map(|k| k.len() + 3).sum::<usize>() + 32;
        // A twentieth of slack for what the estimate misses.
        let capacity = (budget - budget / 20).saturating_sub(overhead);
        let live = index.features.len() - index.removed;
        Some(PlanInput {
            budget,
            lo,
            hi,
            capacity,
            features: Vec::with_capacity(live),
            tags: Vec::new(),
            shapes: Vec::with_capacity(live * (hi.saturating_sub(lo) as usize + 1)),
            value_bytes: Vec::new(),
            seen: (index.features.len(), index.compactions),
            next: 0,
        })
    }

    /// Copies out up to `n` more storage positions (features removed since are left out).
    /// Returns whether the input is complete; `None` when the layer was compacted since
    /// [`PlanInput::begin`], which moved its features: the input is then of no use.
    pub fn gather_part(&mut self, def: &LayerDef, index: &LayerIndex, n: usize) -> Option<bool> {
        if index.compactions != self.seen.1 {
            return None;
        }
        // Values only ever join the table: those written since the last part.
        let values = index.encoded_values();
        let known = self.value_bytes.len() as u32;
        self.value_bytes.extend(
            (known..index.values().len() as u32)
                .map(|v| (VALUE_FRAMING + values.get(v).len()) as u32),
        );
        let (lo, hi) = (self.lo, self.hi);
        let end = self.seen.0.min(self.next.saturating_add(n));
        let input = self;
        for p in input.next..end {
            let f = &index.features[p];
            if f.removed {
                continue;
            }
            let p = p as u32;
            let start = input.tags.len() as u32;
            input.tags.extend(index.tags(f).iter().map(|&(_, v)| v));
            for z in lo..=hi {
                input.shapes.push(estimate_shape(index, p, z) as u32);
            }
            let measure = match &f.geometry {
                ProjectedGeometry::Points(mp) => Measure::Point(mp.0.first().map(|pt| {
                    let cells = (1u64 << DENSITY_LEVELS) as f64;
                    let cx = ((pt.x() + HALF_WORLD) / (2.0 * HALF_WORLD) * cells)
                        .clamp(0.0, cells - 1.0);
                    let cy = ((HALF_WORLD - pt.y()) / (2.0 * HALF_WORLD) * cells)
                        .clamp(0.0, cells - 1.0);
                    morton(cx as u32, cy as u32)
                })),
                ProjectedGeometry::Lines(lines) => Measure::Size(
                    lines
                        .0
                        .iter()
                        .flat_map(|l| l.lines())
                        .map(|s| (s.end.x - s.start.x).hypot(s.end.y - s.start.y))
                        .sum(),
                ),
                ProjectedGeometry::Polygons(polygons) => {
                    use geo::Area;
                    Measure::Size(polygons.unsigned_area())
                }
            };
            let (class, number) = match &def.rank_by {
                None => (0, None),
                Some(RankBy::Number(key)) => (
                    0,
                    Some(match index.value_of(f, *key) {
                        Some(Value::Double(v)) => *v,
                        Some(Value::Uint(v)) => *v as f64,
                        Some(Value::Sint(v)) => *v as f64,
                        _ => f64::NEG_INFINITY,
                    }),
                ),
                Some(RankBy::Ordered { property, order }) => {
                    // Values are compared as text, as `feature_minzoom` compares them.
                    let class = index.value_of(f, *property).and_then(|v| {
                        let text = match v {
                            Value::String(s) => s.to_string(),
                            Value::Double(v) => v.to_string(),
                            Value::Uint(v) => v.to_string(),
                            Value::Sint(v) => v.to_string(),
                            Value::Bool(v) => v.to_string(),
                        };
                        order.iter().position(|o| *o == text)
                    });
                    (class.unwrap_or(order.len()) as u32, None)
                }
            };
            input.features.push(PlanFeature {
                id: f.id,
                position: p,
                minzoom: f.minzoom,
                bounds: index.box_of(p),
                tags: start..input.tags.len() as u32,
                class,
                number,
                measure,
            });
        }
        input.next = end;
        Some(end == input.seen.0)
    }

    /// Features copied out so far.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Each feature's [`RankKey`], by its place in `features`.
    fn rank(&self) -> Vec<RankKey> {
        let density = density_levels(&self.features);
        self.features
            .iter()
            .zip(density)
            .map(|(f, density)| {
                let measure = match f.measure {
                    Measure::Size(v) => v,
                    Measure::Point(_) => -(density as f64),
                };
                let tie = mix(f.id.0);
                match f.number {
                    Some(first) => RankKey {
                        class: f.class,
                        first,
                        second: measure,
                        tie,
                    },
                    None => RankKey {
                        class: f.class,
                        first: measure,
                        second: 0.0,
                        tie,
                    },
                }
            })
            .collect()
    }

    fn tags_of(&self, f: &PlanFeature) -> &[u32] {
        &self.tags[f.tags.start as usize..f.tags.end as usize]
    }

    /// [`estimate_shape`] of feature `k` (by its place in `features`) at zoom `z`.
    fn shape(&self, k: usize, z: u8) -> usize {
        let zooms = (self.hi - self.lo) as usize + 1;
        self.shapes[k * zooms + (z - self.lo) as usize] as usize
    }

    /// The same input with its features (and their tags and shapes) in `order`.
    fn in_order(self, order: &[u32]) -> PlanInput {
        let zooms = (self.hi - self.lo) as usize + 1;
        let mut features = Vec::with_capacity(order.len());
        let mut tags = Vec::with_capacity(self.tags.len());
        let mut shapes = Vec::with_capacity(self.shapes.len());
        let mut old: Vec<Option<PlanFeature>> = self.features.into_iter().map(Some).collect();
        for &i in order {
            let mut f = old[i as usize].take().expect("each feature once");
            let start = tags.len() as u32;
            tags.extend_from_slice(&self.tags[f.tags.start as usize..f.tags.end as usize]);
            f.tags = start..tags.len() as u32;
            let i = i as usize;
            shapes.extend_from_slice(&self.shapes[i * zooms..(i + 1) * zooms]);
            features.push(f);
        }
        PlanInput {
            features,
            tags,
            shapes,
            ..self
        }
    }

    /// Plans the thinning. Cost: O(features x zooms x tags x min(tiles each feature meets,
    /// [`WIDE_TILES`])), plus a sort.
    pub fn plan(self) -> Thinning {
        let (lo, hi, capacity) = (self.lo, self.hi, self.capacity);
        let ranks = self.rank();
        let mut order: Vec<u32> = (0..self.features.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| ranks[a as usize].order(&ranks[b as usize]));
        // Each zoom walks the features in rank order: laid out in that order, the walk reads
        // memory in sequence instead of missing the cache at every feature.
        let ranked = self.in_order(&order);

        let mut kept = vec![true; order.len()];
        let mut kept_from = vec![NEVER; order.len()];
        let mut thinned = Vec::new();
        let mut all_totals = Vec::new();
        // From the deepest zoom up, each zoom choosing among what the one below it kept.
        for z in (lo..=hi).rev() {
            let mut totals = ZoomUse::default();
            // The values each tile holds so far.
            let mut values_in: rustc_hash::FxHashMap<(u32, u32), rustc_hash::FxHashSet<u32>> =
                Default::default();
            let mut costs: Vec<((u32, u32), usize)> = Vec::new();
            let (mut n_kept, mut of) = (0, 0);
            for (k, f) in ranked.features.iter().enumerate() {
                if f.minzoom > z {
                    continue;
                }
                of += 1;
                if !kept[k] {
                    continue;
                }
                let base = ranked.shape(k, z);
                if base == 0 {
                    // Nothing of it is drawn at this zoom: it costs nothing here.
                    kept_from[k] = z;
                    n_kept += 1;
                    continue;
                }
                let tags = ranked.tags_of(f);
                let tiles = tiles_of(f.bounds, z);
                if tiles.count() > WIDE_TILES {
                    let values: usize = tags
                        .iter()
                        .map(|&v| ranked.value_bytes[v as usize] as usize)
                        .sum();
                    let bytes = base + values + CLIP_SLACK;
                    if totals.fits_everywhere(bytes, capacity) {
                        totals.wide += bytes;
                        kept_from[k] = z;
                        n_kept += 1;
                    } else {
                        kept[k] = false;
                    }
                    continue;
                }
                let base = if tiles.is_single() {
                    base
                } else {
                    base + CLIP_SLACK
                };
                // A value costs a tile once, however many of its features share it.
                costs.clear();
                costs.extend(tiles.iter().map(|t| {
                    let held = values_in.get(&t);
                    let new_values: usize = tags
                        .iter()
                        .filter(|&&v| held.is_none_or(|held| !held.contains(&v)))
                        .map(|&v| ranked.value_bytes[v as usize] as usize)
                        .sum();
                    (t, base + new_values)
                }));
                if costs.iter().all(|&(t, c)| totals.fits(t, c, capacity)) {
                    for &(t, c) in &costs {
                        totals.add(t, c);
                        values_in.entry(t).or_default().extend(tags.iter().copied());
                    }
                    kept_from[k] = z;
                    n_kept += 1;
                } else {
                    kept[k] = false;
                    // A tile that could not take this feature takes none after it, so that
                    // what a tile keeps is always what comes first in the order; a feature
                    // too big for any tile closes none.
                    for &(t, c) in &costs {
                        if c <= capacity && !totals.fits(t, c, capacity) {
                            totals.tiles.insert(t, FULL);
                        }
                    }
                }
            }
            if n_kept < of {
                thinned.push(ZoomThinning {
                    z,
                    kept: n_kept,
                    of,
                });
            }
            all_totals.push(totals);
        }
        thinned.reverse();
        all_totals.reverse();
        // Zooms below `lo` (clustered ones) keep whatever `lo` keeps: nothing is drawn from
        // these features there.
        for (k, from) in kept_from.iter_mut().enumerate() {
            if *from == lo && kept[k] {
                *from = 0;
            }
        }
        Thinning {
            budget: ranked.budget,
            thinned,
            lo,
            hi,
            capacity,
            totals: all_totals,
            left_out: false,
            seen: ranked.seen,
            // In storage order, which putting it in place walks.
            kept_from: {
                let mut by_position: Vec<(u32, u8)> = ranked
                    .features
                    .iter()
                    .zip(kept_from)
                    .map(|(f, from)| (f.position, from))
                    .collect();
                by_position.sort_unstable_by_key(|&(p, _)| p);
                by_position
            },
        }
    }
}

/// For each feature (in that order), the coarsest quadtree level at which it is the point
/// picked in its cell (the one of least id hash); 0 for features without points.
fn density_levels(features: &[PlanFeature]) -> Vec<u32> {
    let mut points: Vec<(u64, u64, u32)> = features
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f.measure {
            Measure::Point(Some(cell)) => Some((cell, mix(f.id.0), i as u32)),
            _ => None,
        })
        .collect();
    let mut level = vec![0u32; features.len()];
    if points.is_empty() {
        return level;
    }
    points.sort_unstable();
    let mut assigned = vec![false; points.len()];
    for depth in 0..=DENSITY_LEVELS {
        let shift = 2 * (DENSITY_LEVELS - depth);
        let mut start = 0;
        while start < points.len() {
            let cell = points[start].0 >> shift;
            let mut end = start;
            let mut pick = start;
            while end < points.len() && points[end].0 >> shift == cell {
                if points[end].1 < points[pick].1 {
                    pick = end;
                }
                end += 1;
            }
            if !assigned[pick] {
                assigned[pick] = true;
                level[points[pick].2 as usize] = depth;
            }
            start = end;
        }
    }
    // Points that share their finest cell with a picked one come after every level.
    for (k, &(_, _, i)) in points.iter().enumerate() {
        if !assigned[k] {
            level[i as usize] = DENSITY_LEVELS + 1;
        }
    }
    level
}

/// Interleaves the bits of x and y (x in the even bits).
fn morton(x: u32, y: u32) -> u64 {
    let spread = |v: u32| {
        let mut v = v as u64;
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    };
    spread(x) | (spread(y) << 1)
}

/// A fixed 64-bit mix (splitmix64's finaliser): ids to well-spread tie breakers.
fn mix(mut v: u64) -> u64 {
    v = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    v = (v ^ (v >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v = (v ^ (v >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    v ^ (v >> 31)
}

/// The bytes the feature at `position` adds to a tile at zoom `z` it lies wholly inside;
/// 0 when nothing of it is drawn there.
fn estimate(index: &LayerIndex, position: u32, z: u8) -> usize {
    let shape = estimate_shape(index, position, z);
    if shape == 0 {
        return 0;
    }
    let values = index.encoded_values();
    let f = &index.features[position as usize];
    let tags: usize = index
        .tags(f)
        .iter()
        .map(|&(_, v)| VALUE_FRAMING + values.get(v).len())
        .sum();
    shape + tags
}

/// [`estimate`] without the feature's values (which a tile holds once, however many
/// features share them): its geometry, tags and framing; 0 when nothing of it is drawn.
fn estimate_shape(index: &LayerIndex, position: u32, z: u8) -> usize {
    let f = &index.features[position as usize];
    let geometry = if index.grid.covers(z) {
        index.grid.get(z, position).len()
    } else {
        // Past the grid's zooms: at most a few bytes per vertex.
        use geo::CoordsIter;
        match &f.geometry {
            ProjectedGeometry::Points(g) => g.coords_count() * 6 + 2,
            ProjectedGeometry::Lines(g) => g.coords_count() * 6 + 2 * g.0.len(),
            ProjectedGeometry::Polygons(g) => g.coords_count() * 6 + 4 * g.0.len(),
        }
    };
    if geometry == 0 {
        return 0;
    }
    geometry + TAG_BYTES * index.tags(f).len() + FEATURE_FRAMING
}

/// The tiles at zoom `z` that a box (EPSG:3857) plus the tile buffer meets.
#[derive(Debug, Clone, Copy)]
struct TileSpan {
    x: (u32, u32),
    y: (u32, u32),
}

impl TileSpan {
    fn is_single(&self) -> bool {
        self.x.0 == self.x.1 && self.y.0 == self.y.1
    }

    fn count(&self) -> u64 {
        (self.x.1 - self.x.0 + 1) as u64 * (self.y.1 - self.y.0 + 1) as u64
    }

    fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (self.x.0..=self.x.1).flat_map(move |x| (self.y.0..=self.y.1).map(move |y| (x, y)))
    }
}

fn tiles_of((min, max): ([f64; 2], [f64; 2]), z: u8) -> TileSpan {
    let n = 1u64 << z;
    let span = 2.0 * HALF_WORLD / n as f64;
    let pad = span * BUFFER_UNITS as f64 / EXTENT as f64;
    let col = |x: f64| (((x + HALF_WORLD) / span).floor().clamp(0.0, (n - 1) as f64)) as u32;
    let row = |y: f64| (((HALF_WORLD - y) / span).floor().clamp(0.0, (n - 1) as f64)) as u32;
    TileSpan {
        x: (col(min[0] - pad), col(max[0] + pad)),
        y: (row(max[1] + pad), row(min[1] - pad)),
    }
}

impl LayerIndex {
    /// Puts a plan in place: each feature it saw is drawn from its first kept zoom on.
    /// Features written while it was planned are admitted again against its totals, as a
    /// write admits them (see [`LayerIndex::admit`]). If the layer's features moved since
    /// its input was gathered (a compaction, or the whole layer replaced), the plan is of
    /// no use: the thinning in place stays (writes since were admitted against it, and a
    /// replaced layer was planned when it was built) and says it is stale, so that the next
    /// plan is made. Returns the zooms whose tiles change, if any; the layer's version then
    /// moves on.
    pub fn set_thinning(&mut self, plan: Thinning) -> Option<(u8, u8)> {
        let (seen, compactions) = plan.seen;
        if compactions != self.compactions {
            if let Some(t) = &mut self.thinning {
                t.left_out = true;
            }
            return None;
        }
        let planned = self.apply_plan(plan);
        let mut changed = planned;
        for p in seen..self.features.len() {
            if self.features[p].removed {
                continue;
            }
            let before = self.boxes[p].minzoom;
            self.admit(p as u32);
            let after = self.boxes[p].minzoom;
            if before != after {
                let lo = before.min(after);
                let hi = match before.max(after) {
                    NEVER => crate::tiles::MAX_ZOOM,
                    z => z - 1,
                };
                changed = Some(changed.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        // (Features written since the plan's input are not in the packed tree yet.)
        if planned.is_none() && changed.is_some() {
            self.version += 1;
        }
        changed
    }

    /// Each feature the plan saw, still where it was ([`LayerIndex::set_thinning`] checked
    /// that none moved) unless removed since (a feature moved on the map is written anew,
    /// and admitted afterwards), gets its first kept zoom.
    fn apply_plan(&mut self, plan: Thinning) -> Option<(u8, u8)> {
        let mut changed: Option<(u8, u8)> = None;
        for &(p, kept_from) in &plan.kept_from {
            if self.features.get(p as usize).is_none_or(|f| f.removed) {
                continue;
            }
            let first = self.features[p as usize].minzoom.max(kept_from);
            let b = &mut self.boxes[p as usize];
            if b.minzoom != first {
                let lo = b.minzoom.min(first);
                let hi = match b.minzoom.max(first) {
                    NEVER => crate::tiles::MAX_ZOOM,
                    z => z - 1,
                };
                changed = Some(changed.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
                b.minzoom = first;
            }
        }
        self.thinning = Some(Thinning {
            kept_from: Vec::new(),
            ..plan
        });
        if changed.is_some() {
            self.version += 1;
            self.packed = super::packed::PackedTree::build(&self.boxes[..self.sorted]);
        }
        changed
    }

    /// Decides at which zooms a feature just written (at `position`, its grid geometry
    /// made) is drawn until the next plan ranks it: from the deepest zoom up, as long as
    /// it fits in every tile it meets beside what they hold. A tile that left a feature
    /// out takes nothing new, so what each tile keeps still comes first in the order.
    pub(super) fn admit(&mut self, position: u32) {
        let Some(mut t) = self.thinning.take() else {
            return;
        };
        let minzoom = self.features[position as usize].minzoom;
        let mut first = NEVER;
        for z in (t.lo..=t.hi).rev() {
            if minzoom > z {
                break;
            }
            let bytes = estimate(self, position, z);
            if bytes > 0 {
                let tiles = tiles_of(self.box_of(position), z);
                let totals = &mut t.totals[(z - t.lo) as usize];
                if tiles.count() > WIDE_TILES {
                    let bytes = bytes + CLIP_SLACK;
                    if !totals.fits_everywhere(bytes, t.capacity) {
                        break;
                    }
                    totals.wide += bytes;
                } else {
                    let bytes = if tiles.is_single() {
                        bytes
                    } else {
                        bytes + CLIP_SLACK
                    };
                    if !tiles.iter().all(|x| totals.fits(x, bytes, t.capacity)) {
                        break;
                    }
                    for x in tiles.iter() {
                        totals.add(x, bytes);
                    }
                }
            }
            first = z;
        }
        if first == t.lo {
            first = 0;
        }
        if t.lo > t.hi {
            first = 0;
        }
        if first > minzoom {
            t.left_out = true;
        }
        self.boxes[position as usize].minzoom = minzoom.max(first);
        self.thinning = Some(t);
    }

    /// The layer's thinning as last planned (`None` before a plan or without a budget).
    pub fn thinning(&self) -> Option<&Thinning> {
        self.thinning.as_ref()
    }

    /// Whether the feature at a storage position is drawn at zoom `z` (its own minzoom
    /// and the budget's decision).
    pub fn drawn_at(&self, position: u32, z: u8) -> bool {
        self.boxes[position as usize].minzoom <= z
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::composite::{TileLayer, render_tile};
    use crate::generate::rng::Rng;
    use crate::model::{Feature, Properties, StoredFeature};
    use crate::tiles::TileCoord;
    use crate::tiles::mercator::Rect3857;

    fn layer(geometry: &str, extra: &str) -> LayerDef {
        layer_to(15, geometry, extra)
    }

    fn layer_to(maxzoom: u8, geometry: &str, extra: &str) -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("dense.toml"),
            &format!(
                "title = \"Dense\"\ngeometry = \"{geometry}\"\nminzoom = 10\nmaxzoom = {maxzoom}\n\
                 properties = {{ name = \"string\", class = \"string\", load = \"integer\" }}\n{extra}"
            ),
        )
        .unwrap()
    }

    fn feature(id: u64, geometry: geo::Geometry<f64>, class: &str, load: i64) -> StoredFeature {
        let mut properties = Properties::new();
        properties.insert("name".into(), format!("feature number {id}").into());
        properties.insert("class".into(), class.into());
        properties.insert("load".into(), load.into());
        StoredFeature {
            id: FeatureId(id),
            version: 0,
            feature: Feature {
                geometry,
                properties,
            },
        }
    }

    /// A rectangle `side` degrees wide and half as high, from its south-west corner.
    fn rectangle(id: u64, lon: f64, lat: f64, side: f64) -> StoredFeature {
        let ring = geo::LineString::from(vec![
            (lon, lat),
            (lon + side, lat),
            (lon + side, lat + side / 2.0),
            (lon, lat + side / 2.0),
            (lon, lat),
        ]);
        feature(id, geo::Polygon::new(ring, vec![]).into(), "x", 0)
    }

    /// Squares of many sizes, crowded in a block of central Helsinki and sparse around it.
    fn squares(n: u64) -> Vec<StoredFeature> {
        let mut rng = Rng::new(5);
        (1..=n)
            .map(|id| {
                let (lon, lat) = if id % 4 == 0 {
                    (rng.range_f64(24.80, 25.10), rng.range_f64(60.10, 60.25))
                } else {
                    (rng.range_f64(24.93, 24.95), rng.range_f64(60.16, 60.17))
                };
                rectangle(id, lon, lat, 0.00002 * (1.0 + rng.f64() * 40.0))
            })
            .collect()
    }

    fn all_tiles(index: &LayerIndex, z: u8) -> Vec<TileCoord> {
        let b = index.bounds().unwrap();
        let (x0, y0) = crate::tiles::mercator::lon_lat_to_3857(b.west, b.south);
        let (x1, y1) = crate::tiles::mercator::lon_lat_to_3857(b.east, b.north);
        let (xs, ys) = TileCoord::covering(
            Rect3857 {
                min_x: x0,
                min_y: y0,
                max_x: x1,
                max_y: y1,
            },
            z,
        );
        xs.flat_map(|x| ys.clone().map(move |y| TileCoord { z, x, y }))
            .collect()
    }

    /// Every tile of the layer at every zoom from its minzoom to one past its maxzoom:
    /// each within `budget` bytes; returns the largest.
    fn largest_tile(
        def: &LayerDef,
        index: LayerIndex,
    ) -> (usize, Arc<parking_lot::RwLock<LayerIndex>>) {
        let slot = Arc::new(parking_lot::RwLock::new(index));
        let layers = [TileLayer {
            def,
            index: &slot,
            filter: None,
        }];
        let mut largest = 0;
        for z in def.minzoom..=def.maxzoom + 1 {
            for tile in all_tiles(&slot.read(), z) {
                largest = largest.max(render_tile(&layers, tile, None).bytes.len());
            }
        }
        (largest, slot)
    }

    fn id_position(index: &LayerIndex, id: u64) -> u32 {
        index.by_id[&FeatureId(id)]
    }

    #[test]
    fn every_tile_of_a_dense_layer_stays_within_its_budget() {
        let def = layer("polygon", "budget_kb = 8\n");
        let index = LayerIndex::build(&def, squares(6000));
        let thinning = index.thinning().unwrap().clone();
        assert_eq!(thinning.budget, 8192);
        assert!(
            thinning
                .thinned
                .iter()
                .any(|t| t.z == 10 && t.kept < t.of / 4),
            "z10 thins: {:?}",
            thinning.thinned
        );
        let (largest, _) = largest_tile(&def, index);
        assert!(largest <= 8192, "a tile of {largest} bytes");
        // The estimate counts every value of every feature, and a cut feature whole in
        // every tile it meets, so tiles come out below the budget, but not far below.
        assert!(
            largest > 8192 / 2,
            "the budget is used, not wasted: {largest}"
        );
        // Without a budget the same tiles are far larger.
        let unbounded = layer("polygon", "budget_kb = 0\n");
        let index = LayerIndex::build(&unbounded, squares(6000));
        assert!(index.thinning().is_none());
        assert!(largest_tile(&unbounded, index).0 > 8 * 8192);
    }

    #[test]
    fn kept_features_nest_and_a_tile_keeps_its_biggest_polygons() {
        let def = layer("polygon", "budget_kb = 8\n");
        let features = squares(6000);
        let index = LayerIndex::build(&def, features.clone());
        use geo::Area;
        for f in &features {
            let p = id_position(&index, f.id.0);
            for z in def.minzoom..def.maxzoom {
                assert!(
                    !index.drawn_at(p, z) || index.drawn_at(p, z + 1),
                    "feature {} kept at z{z} but not at z{}",
                    f.id.0,
                    z + 1
                );
            }
        }
        // Among the features wholly inside one tile and kept one zoom deeper (which the
        // zoom chooses from), every one kept is at least as big (projected area) as every
        // one left out.
        for z in def.minzoom..=def.maxzoom {
            let mut by_tile: HashMap<(u32, u32), (f64, f64)> = HashMap::new();
            for f in &features {
                let p = id_position(&index, f.id.0);
                let tiles = tiles_of(index.box_of(p), z);
                // (A feature too small to leave anything at a zoom is kept there: it costs
                // nothing, and stays in the running for deeper zooms.)
                if !tiles.is_single()
                    || (z < def.maxzoom && !index.drawn_at(p, z + 1))
                    || estimate(&index, p, z) == 0
                {
                    continue;
                }
                let projected = ProjectedGeometry::from_lon_lat(&f.feature.geometry).unwrap();
                let ProjectedGeometry::Polygons(mp) = projected else {
                    unreachable!()
                };
                let area = mp.unsigned_area();
                let e = by_tile
                    .entry((tiles.x.0, tiles.y.0))
                    .or_insert((f64::INFINITY, 0.0));
                if index.drawn_at(p, z) {
                    e.0 = e.0.min(area);
                } else {
                    e.1 = e.1.max(area);
                }
            }
            for (tile, (smallest_kept, largest_dropped)) in by_tile {
                assert!(
                    smallest_kept >= largest_dropped,
                    "z{z} {tile:?}: kept {smallest_kept} < dropped {largest_dropped}"
                );
            }
        }
    }

    use std::collections::HashMap;

    #[test]
    fn points_thin_where_they_crowd_and_keep_their_spread() {
        let def = layer("point", "budget_kb = 16\n");
        let mut rng = Rng::new(9);
        let mut features = Vec::new();
        // A crowd of 20,000 in a few blocks, and 150 spread over a 30 km square.
        for id in 1..=20_150u64 {
            let (lon, lat) = if id <= 20_000 {
                (rng.range_f64(24.94, 24.95), rng.range_f64(60.165, 60.17))
            } else {
                (rng.range_f64(24.7, 25.2), rng.range_f64(60.05, 60.3))
            };
            features.push(feature(id, geo::Point::new(lon, lat).into(), "x", 0));
        }
        let index = LayerIndex::build(&def, features.clone());
        let z = 10;
        let kept: Vec<&StoredFeature> = features
            .iter()
            .filter(|f| index.drawn_at(id_position(&index, f.id.0), z))
            .collect();
        assert!(kept.len() < 10_000, "{} kept at z10", kept.len());
        // The spread: every cell of a 32 x 32 grid over the area that had a point still
        // has one.
        let cell = |f: &StoredFeature| {
            let geo::Geometry::Point(p) = f.feature.geometry else {
                unreachable!()
            };
            (
                ((p.x() - 24.7) / 0.5 * 32.0) as i32,
                ((p.y() - 60.05) / 0.25 * 32.0) as i32,
            )
        };
        let before: std::collections::HashSet<_> = features.iter().map(cell).collect();
        let after: std::collections::HashSet<_> = kept.iter().map(|f| cell(f)).collect();
        assert_eq!(before, after);
        // Every sparse point stays at every zoom: only the crowd gives way.
        for f in &features[20_000..] {
            let p = id_position(&index, f.id.0);
            assert!(
                index.drawn_at(p, def.minzoom),
                "{f:?} first drawn at z{}",
                index.boxes[p as usize].minzoom
            );
        }
        let (largest, _) = largest_tile(&def, index);
        assert!(largest <= 16 * 1024, "a tile of {largest} bytes");
    }

    #[test]
    fn a_feature_spanning_the_world_costs_the_plan_one_step_per_zoom() {
        let def = layer_to(18, "polygon", "budget_kb = 8\n");
        let world = geo::Polygon::new(
            geo::LineString::from(vec![
                (-179.0, -80.0),
                (179.0, -80.0),
                (179.0, 80.0),
                (-179.0, 80.0),
                (-179.0, -80.0),
            ]),
            vec![],
        );
        let mut features = squares(2000);
        features.push(feature(50_000, world.into(), "x", 0));
        let started = std::time::Instant::now();
        let mut index = LayerIndex::build(&def, features);
        // Billions of tiles at z18, were they walked one by one.
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
        // The biggest polygon there is: kept first, at every zoom.
        assert!(index.drawn_at(id_position(&index, 50_000), 10));
        // A second one, written: admitted as fast.
        let started = std::time::Instant::now();
        let world = geo::Polygon::new(
            geo::LineString::from(vec![
                (-170.0, -70.0),
                (170.0, -70.0),
                (170.0, 70.0),
                (-170.0, -70.0),
            ]),
            vec![],
        );
        index.upsert(&def, feature(50_001, world.into(), "x", 0));
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
        // The tiles of the crowded block stay within the budget, the world's polygons in them.
        let slot = Arc::new(parking_lot::RwLock::new(index));
        let layers = [TileLayer {
            def: &def,
            index: &slot,
            filter: None,
        }];
        for z in 10..=18 {
            let (xs, ys) = TileCoord::covering(crowd_3857(), z);
            for x in xs {
                for y in ys.clone() {
                    let bytes = render_tile(&layers, TileCoord { z, x, y }, None)
                        .bytes
                        .len();
                    assert!(bytes <= 8192, "z{z} {x} {y}: {bytes} bytes");
                }
            }
        }
    }

    /// Where [`squares`] crowd, in EPSG:3857.
    fn crowd_3857() -> Rect3857 {
        let (x0, y0) = crate::tiles::mercator::lon_lat_to_3857(24.93, 60.16);
        let (x1, y1) = crate::tiles::mercator::lon_lat_to_3857(24.95, 60.17);
        Rect3857 {
            min_x: x0,
            min_y: y0,
            max_x: x1,
            max_y: y1,
        }
    }

    #[test]
    fn a_ranking_property_decides_before_geometry() {
        let def = layer(
            "line",
            "budget_kb = 32\nrank_by = { property = \"class\", order = [\"motorway\", \"primary\"] }\n",
        );
        let mut rng = Rng::new(3);
        let mut features = Vec::new();
        for id in 1..=3000u64 {
            let (lon, lat) = (rng.range_f64(24.93, 24.96), rng.range_f64(60.16, 60.175));
            // Short motorways, long residential streets.
            let (class, len) = match id % 10 {
                0 => ("motorway", 0.0005),
                1 => ("primary", 0.001),
                _ => ("residential", 0.004),
            };
            let line = geo::LineString::from(vec![(lon, lat), (lon + len, lat + len / 3.0)]);
            features.push(feature(id, line.into(), class, 0));
        }
        let index = LayerIndex::build(&def, features.clone());
        let kept = |class: &str, z: u8| {
            features
                .iter()
                .filter(|f| f.feature.properties["class"] == class)
                .filter(|f| index.drawn_at(id_position(&index, f.id.0), z))
                .count()
        };
        assert_eq!(kept("motorway", 10), 300, "every motorway stays");
        assert!(kept("residential", 10) < 300);
        // A numeric ranking: higher loads stay.
        let def = layer("line", "budget_kb = 32\nrank_by = \"load\"\n");
        let features: Vec<_> = features
            .into_iter()
            .map(|mut f| {
                let load = (f.id.0 * 7919 % 1000) as i64;
                f.feature.properties.insert("load".into(), load.into());
                f
            })
            .collect();
        let index = LayerIndex::build(&def, features.clone());
        let (mut lowest_kept, mut highest_dropped) = (i64::MAX, i64::MIN);
        for f in &features {
            let load = f.feature.properties["load"].as_i64().unwrap();
            if index.drawn_at(id_position(&index, f.id.0), 10) {
                lowest_kept = lowest_kept.min(load);
            } else {
                highest_dropped = highest_dropped.max(load);
            }
        }
        assert!(highest_dropped > i64::MIN, "z10 thins");
        // One tile holds them all at z10: a prefix of the order.
        assert!(
            lowest_kept >= highest_dropped,
            "{lowest_kept} < {highest_dropped}"
        );
    }

    #[test]
    fn a_feature_written_after_the_plan_is_drawn_where_it_fits_until_the_next_ranks_it() {
        let def = layer_to(18, "polygon", "budget_kb = 8\n");
        let mut index = LayerIndex::build(&def, squares(6000));
        let thinned: Vec<u8> = index
            .thinning()
            .unwrap()
            .thinned
            .iter()
            .map(|t| t.z)
            .collect();
        assert!(
            thinned.contains(&10) && !thinned.contains(&18),
            "{thinned:?}"
        );
        let version = index.version();
        let big = geo::Polygon::new(
            geo::LineString::from(vec![
                (24.94, 60.165),
                (24.944, 60.165),
                (24.944, 60.167),
                (24.94, 60.167),
                (24.94, 60.165),
            ]),
            vec![],
        );
        index.upsert(&def, feature(90_001, big.into(), "x", 0));
        let p = id_position(&index, 90_001);
        // Room at z18; none in the crowded tiles of a thinned zoom.
        assert!(index.drawn_at(p, 18));
        assert!(!index.drawn_at(p, 10));
        // The next plan ranks it: the biggest polygon there is kept everywhere.
        let next = plan(&def, &index).unwrap();
        let changed = index.set_thinning(next).expect("its zooms change");
        assert!(changed.0 <= 10, "{changed:?}");
        assert!(index.version() > version + 1);
        assert!(index.drawn_at(p, 10));
        // Planning again from the same data changes nothing.
        let again = plan(&def, &index).unwrap();
        assert_eq!(index.set_thinning(again), None);
        let (largest, _) = largest_tile(&def, index);
        assert!(largest <= 8192, "a tile of {largest} bytes");
    }

    /// Little squares in the crowded block of [`squares`], ids from `first`.
    fn crowded(first: u64, n: u64) -> Vec<StoredFeature> {
        let mut rng = Rng::new(first);
        (first..first + n)
            .map(|id| {
                let (lon, lat) = (rng.range_f64(24.93, 24.95), rng.range_f64(60.16, 60.17));
                rectangle(id, lon, lat, 0.00004)
            })
            .collect()
    }

    #[test]
    fn features_written_while_a_plan_is_made_are_admitted_against_it() {
        let def = layer_to(18, "polygon", "budget_kb = 8\n");
        let mut index = LayerIndex::build(&def, squares(6000));
        // The plan's input is copied out; then writes come before the plan is put in place:
        // new features in the crowd, one feature moved there, one deleted.
        let input = PlanInput::gather(&def, &index).unwrap();
        for f in crowded(100_000, 400) {
            index.upsert(&def, f);
        }
        // (Feature 8 is out of the crowd, kept at every zoom.)
        assert!(index.drawn_at(id_position(&index, 8), 10));
        let moved = crowded(8, 1).pop().unwrap();
        index.upsert(&def, moved);
        index.remove(FeatureId(12));
        index.set_thinning(input.plan());
        assert!(!index.by_id.contains_key(&FeatureId(12)));
        // Each written feature is drawn at z18, where there is room, and not at z10, whose
        // crowded tiles are full; one that did not fit everywhere asks for the next plan.
        for id in (100_000..100_400).chain([8]) {
            let p = id_position(&index, id);
            assert!(index.drawn_at(p, 18), "{id}");
            assert!(!index.drawn_at(p, 10), "{id}");
        }
        assert!(index.thinning().unwrap().left_out());
        let (largest, slot) = largest_tile(&def, index);
        assert!(largest <= 8192, "a tile of {largest} bytes");
        // The next plan ranks them with the rest, and still keeps every tile in budget.
        let mut index = std::mem::take(&mut *slot.write());
        let next = plan(&def, &index).unwrap();
        index.set_thinning(next);
        assert!(!index.thinning().unwrap().left_out());
        let (largest, _) = largest_tile(&def, index);
        assert!(largest <= 8192, "a tile of {largest} bytes");
    }

    #[test]
    fn a_plan_gathered_before_a_compaction_asks_for_the_next() {
        let def = layer_to(18, "polygon", "budget_kb = 8\n");
        let mut index = LayerIndex::build(&def, squares(3000));
        let input = PlanInput::gather(&def, &index).unwrap();
        for f in crowded(100_000, 50) {
            index.upsert(&def, f);
        }
        index.compact();
        index.set_thinning(input.plan());
        // Positions moved: the features written meanwhile keep their provisional zooms, and
        // the thinning asks to be planned again.
        assert!(index.thinning().unwrap().left_out());
        let (largest, _) = largest_tile(&def, index);
        assert!(largest <= 8192, "a tile of {largest} bytes");
    }

    #[test]
    fn an_input_gathered_in_parts_plans_the_same_and_takes_writes_between_parts() {
        let def = layer_to(18, "polygon", "budget_kb = 8\n");
        let mut index = LayerIndex::build(&def, squares(6000));
        let whole = PlanInput::gather(&def, &index).unwrap().plan();
        let mut parts = PlanInput::begin(&def, &index).unwrap();
        let mut steps = 0;
        while !parts.gather_part(&def, &index, 700).unwrap() {
            steps += 1;
        }
        assert_eq!(steps, 6000usize.div_ceil(700) - 1);
        assert_eq!(parts.plan().kept_from, whole.kept_from);

        // Writes between parts: features added in the crowd, one removed after its part was
        // copied (position 10), one before (position 5000).
        let mut input = PlanInput::begin(&def, &index).unwrap();
        assert_eq!(input.gather_part(&def, &index, 3000), Some(false));
        let (early, late) = (index.features[10].id, index.features[5000].id);
        index.remove(early);
        index.remove(late);
        for f in crowded(100_000, 300) {
            index.upsert(&def, f);
        }
        assert_eq!(input.gather_part(&def, &index, usize::MAX), Some(true));
        assert_eq!(input.features.len(), 5999);
        index.set_thinning(input.plan());
        assert!(!index.by_id.contains_key(&early) && !index.by_id.contains_key(&late));
        assert!(index.thinning().unwrap().left_out());
        let (largest, _) = largest_tile(&def, index);
        assert!(largest <= 8192, "a tile of {largest} bytes");

        // A compaction between parts moves features: the input is given up.
        let mut index = LayerIndex::build(&def, squares(2000));
        let mut input = PlanInput::begin(&def, &index).unwrap();
        assert_eq!(input.gather_part(&def, &index, 500), Some(false));
        index.compact();
        assert_eq!(input.gather_part(&def, &index, 500), None);
    }

    #[test]
    fn a_layer_replaced_while_its_plan_is_made_is_not_planned_by_position() {
        let def = layer_to(18, "polygon", "budget_kb = 8\n");
        let index = crate::index::Index::new([&def.id]);
        index.replace(&def.id, LayerIndex::build(&def, squares(3000)));
        let slot = index.slot(&def.id);
        // Replaced between two parts of the copy: the copy is given up.
        let mut input = PlanInput::begin(&def, &slot.read()).unwrap();
        assert_eq!(input.gather_part(&def, &slot.read(), 1000), Some(false));
        index.replace(&def.id, LayerIndex::build(&def, squares(500)));
        assert_eq!(input.gather_part(&def, &slot.read(), 1000), None);
        // Replaced by a smaller layer between the copy and putting the plan in place: the
        // plan's positions are not used (they would run past the new layer's end), its ids
        // are, and the thinning asks for the next plan.
        index.replace(&def.id, LayerIndex::build(&def, squares(3000)));
        let plan = PlanInput::gather(&def, &slot.read()).unwrap().plan();
        index.replace(&def.id, LayerIndex::build(&def, squares(500)));
        let mut layer = slot.write();
        layer.set_thinning(plan);
        assert!(layer.thinning().unwrap().left_out());
        drop(layer);
        let (largest, _) = largest_tile(&def, std::mem::take(&mut *slot.write()));
        assert!(largest <= 8192, "a tile of {largest} bytes");
    }
}
