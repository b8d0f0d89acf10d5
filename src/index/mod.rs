//! The in-memory side of the store: per layer, the features projected to Web Mercator with
//! their attributes already in MVT form and their geometry already in MVT commands at each
//! of the layer's zooms ([`levels`]), found for tiles by a packed R-tree over storage order
//! ([`packed`]) and for feature queries by R*-trees; so a tile is a tree search plus copying.
//! Built by bulk load from what the store returns; then single-feature writes update it in
//! place ([`LayerIndex::upsert`], [`LayerIndex::remove`]), and a bulk write swaps a layer
//! whole, so a reader sees either the old set or the new one.
//!
//! Each layer sits behind its own read-write lock. Readers hold it for one layer's part of
//! one request and never while waiting on anything else; writers hold it for microseconds.
//!
//! Persistence is [`crate::store`]'s job; this module never touches the database.

pub mod levels;
pub mod packed;
mod repack;
pub mod snapshot;
pub mod thinning;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use parking_lot::lock_api::{ArcRwLockReadGuard, ArcRwLockWriteGuard};

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use crate::config::LayerDef;
use crate::model::schema::PropertyType;
use crate::model::time::parse_rfc3339;
use crate::model::{Bbox, FeatureId, LayerId, Properties, StoredFeature, TimeRange};
use crate::tiles::mercator::Rect3857;
use crate::tiles::mvt::{EncodedValues, Tag};
use crate::tiles::{ProjectedGeometry, Value};
use levels::GridLevels;
use packed::{PackedTree, ZoomBox};

/// A feature as tiles read it.
#[derive(Debug, Clone)]
pub struct IndexedFeature {
    pub id: FeatureId,
    pub geometry: ProjectedGeometry,
    /// Where the feature's attributes sit in the layer's tag arena (see
    /// [`LayerIndex::tags`]).
    tags: std::ops::Range<u32>,
    pub time: TimeRange,
    /// First zoom the feature is drawn at (the layer's, or its `feature_minzoom`).
    pub minzoom: u8,
    /// A deleted or replaced feature's slot, kept until the layer is compacted so that the
    /// other features keep their positions.
    removed: bool,
    /// Z-order of the feature's box: with the id, the order features are written in.
    order: u64,
}

impl IndexedFeature {
    /// Features are laid out, and written into tiles, in this order: spatial, then by id.
    pub fn write_order(&self) -> (u64, FeatureId) {
        (self.order, self.id)
    }
}

/// A layer's distinct attribute values, each stored once however many features share it.
/// The lookup is kept for writes after the build; it maps a hash of each value to where the
/// value is, so that values are not held twice (in the rare case of two values with one
/// hash, the second is stored again: a tile may then list it twice, which MVT allows).
#[derive(Debug, Default)]
struct ValueTable {
    values: Vec<Value>,
    /// The same values as tiles write them.
    encoded: EncodedValues,
    ids: rustc_hash::FxHashMap<u64, u32>,
}

impl ValueTable {
    /// Appends the MVT tags of `properties` (for a layer whose key table is `keys`) to
    /// `arena`, leaving out nulls; returns where they went.
    fn push_tags(
        &mut self,
        keys: &[String],
        properties: &Properties,
        arena: &mut Vec<Tag>,
    ) -> std::ops::Range<u32> {
        let start = arena.len() as u32;
        for (i, k) in keys.iter().enumerate() {
            let Some(value) = properties.get(k).and_then(Value::from_json) else {
                continue;
            };
            let hash = {
                use std::hash::BuildHasher;
                rustc_hash::FxBuildHasher.hash_one(&value)
            };
            let id = match self.ids.get(&hash) {
                Some(&id) if self.values[id as usize] == value => id,
                _ => {
                    let id = self.values.len() as u32;
                    self.encoded.push(&value);
                    self.values.push(value);
                    self.ids.insert(hash, id);
                    id
                }
            };
            arena.push((i as u16, id));
        }
        start..arena.len() as u32
    }
}

/// The validity interval of a feature of `def`; unparseable or missing ends are open
/// (ingest has already refused bad timestamps).
pub fn time_of(def: &LayerDef, properties: &Properties) -> TimeRange {
    let Some(fields) = &def.time else {
        return TimeRange::default();
    };
    let at = |name: &str| {
        properties
            .get(name)
            .and_then(|v| v.as_str())
            .and_then(|s| parse_rfc3339(s).ok())
    };
    let start = at(&fields.start);
    let end = match &fields.end {
        Some(e) => at(e),
        None => start,
    };
    TimeRange { start, end }
}

/// An R*-tree entry: a feature's bounding box in EPSG:3857 and its storage position.
pub type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Morton (Z-order) code of a box's centre on a 2^20 x 2^20 grid over the world: boxes close
/// on the map get close codes.
fn z_order(b: Bbox) -> u64 {
    let cell = |v: f64, lo: f64, span: f64| (((v - lo) / span * 1_048_576.0) as u64).min(1_048_575);
    let x = cell((b.west + b.east) / 2.0, -180.0, 360.0);
    let y = cell((b.south + b.north) / 2.0, -90.0, 180.0);
    let spread = |mut v: u64| {
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    };
    spread(x) | (spread(y) << 1)
}

/// One layer's features and their R*-trees: one tree per distinct feature minzoom, so that
/// a low-zoom tile never walks the features it will not draw.
#[derive(Debug, Default)]
pub struct LayerIndex {
    /// Sorted by minzoom. These answer feature queries; tiles use `packed`. Built on first
    /// use when the index was read back from a snapshot (an export never asks for them).
    bands: std::sync::OnceLock<Bands>,
    features: Vec<IndexedFeature>,
    /// Each feature's box and minzoom, by storage position.
    boxes: Vec<ZoomBox>,
    /// Over `boxes[..sorted]`, for tiles.
    packed: PackedTree,
    /// Live features written since the packed tree was built (positions from `sorted` on),
    /// for tiles.
    recent: RTree<Entry>,
    /// Each feature's geometry made ready for tiles at each of the layer's zooms.
    grid: GridLevels,
    /// Position of each live feature.
    by_id: rustc_hash::FxHashMap<FeatureId, u32>,
    /// Slots of removed features still in `features`.
    removed: usize,
    /// `features[..sorted]` are in [`IndexedFeature::write_order`]; features written since
    /// the last build or compaction follow, in the order they came.
    sorted: usize,
    tags: Vec<Tag>,
    values: ValueTable,
    bounds: Option<Bbox>,
    field_types: Vec<Option<FieldType>>,
    time_extent: Option<TimeRange>,
    /// Counts the changes made to this layer since the server started; tile caching uses it
    /// to tell a tile rendered before a write from one rendered after.
    version: u64,
    /// The tile size budget's last plan (see [`thinning`]); each feature's outcome is its
    /// box's `minzoom`.
    thinning: Option<thinning::Thinning>,
    /// Counts compactions and replacements of the whole layer ([`Index::replace`]), which
    /// move features to new storage positions.
    compactions: u64,
}

/// One R*-tree per distinct feature minzoom, sorted by minzoom.
type Bands = Vec<(u8, RTree<Entry>)>;

/// Bulk-loads the trees of `entries`, grouped by minzoom.
fn bulk_load_bands(bands: std::collections::BTreeMap<u8, Vec<Entry>>) -> Bands {
    bands
        .into_iter()
        .map(|(z, entries)| (z, RTree::bulk_load(entries)))
        .collect()
}

/// A feature's geometry before a write changed or removed it.
pub type OldGeometry = Option<ProjectedGeometry>;

/// The type of an attribute as TileJSON's `vector_layers.fields` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Boolean,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "String",
            FieldType::Number => "Number",
            FieldType::Boolean => "Boolean",
        }
    }

    fn of(v: &Value) -> FieldType {
        match v {
            Value::String(_) => FieldType::String,
            Value::Bool(_) => FieldType::Boolean,
            _ => FieldType::Number,
        }
    }
}

/// The field types a layer file declares (integers are numbers to a style), or none yet
/// for a layer whose types are read from its data.
fn declared_field_types(def: &LayerDef) -> Vec<Option<FieldType>> {
    match &def.types {
        Some(types) => types
            .iter()
            .map(|t| {
                Some(match t {
                    PropertyType::String | PropertyType::DateTime => FieldType::String,
                    PropertyType::Integer | PropertyType::Number => FieldType::Number,
                    PropertyType::Boolean => FieldType::Boolean,
                })
            })
            .collect(),
        None => vec![None; def.properties.len()],
    }
}

impl LayerIndex {
    /// Projects and bulk-loads `features`; features without a projectable, non-empty
    /// geometry are left out (ingest does not let such features in).
    pub fn build(def: &LayerDef, mut features: Vec<StoredFeature>) -> LayerIndex {
        // Features near each other on the map are laid out near each other in memory (the
        // projected geometries are allocated in this order, the tags share one arena), so
        // that a tile reads a few contiguous runs instead of chasing pointers at random.
        features.sort_by_cached_key(|f| (Bbox::of(&f.feature.geometry).map_or(0, z_order), f.id));
        let mut index = LayerIndex {
            field_types: declared_field_types(def),
            ..Default::default()
        };
        index.features.reserve_exact(features.len());
        index.boxes.reserve_exact(features.len());
        index.by_id.reserve(features.len());
        let mut bands: std::collections::BTreeMap<u8, Vec<Entry>> = Default::default();
        for f in features {
            if let Some((minzoom, entry)) = index.push(def, f) {
                bands.entry(minzoom).or_default().push(entry);
            }
        }
        index.tags.shrink_to_fit();
        index.bands = bulk_load_bands(bands).into();
        index.sorted = index.features.len();
        index.packed = PackedTree::build(&index.boxes);
        index.grid = GridLevels::build(def, &index.features);
        if let Some(plan) = thinning::plan(def, &index) {
            index.set_thinning(plan);
        }
        repack::repack(&mut index.features, |f| &mut f.geometry);
        index
    }

    /// Appends a feature to the storage and the derived summaries (bounds, field types,
    /// time extent); returns its band and tree entry, `None` for an unprojectable one.
    fn push(&mut self, def: &LayerDef, f: StoredFeature) -> Option<(u8, Entry)> {
        let geometry = ProjectedGeometry::from_lon_lat(&f.feature.geometry)?;
        let r = geometry.bounds()?;
        let bbox = Bbox::of(&f.feature.geometry);
        if let Some(b) = bbox {
            self.bounds = Some(self.bounds.map_or(b, |a| a.union(b)));
        }
        let minzoom = def.feature_minzoom.as_ref().map_or(def.minzoom, |rule| {
            rule.of(&def.properties, &f.feature.properties)
        });
        let position = self.features.len() as u32;
        let tags = self
            .values
            .push_tags(&def.properties, &f.feature.properties, &mut self.tags);
        // Without a declaration, a key's type is that of its values; a key whose values
        // mix types is a string, since that is how a style can always read it.
        self.field_types.resize(def.properties.len(), None);
        let inferred = if def.types.is_some() {
            &[][..]
        } else {
            &self.tags[tags.start as usize..tags.end as usize]
        };
        for (k, v) in inferred {
            let t = FieldType::of(&self.values.values[*v as usize]);
            let slot = &mut self.field_types[*k as usize];
            *slot = match *slot {
                None => Some(t),
                Some(old) if old == t => Some(t),
                Some(_) => Some(FieldType::String),
            };
        }
        let time = time_of(def, &f.feature.properties);
        let order = bbox.map_or(0, z_order);
        // Earliest start and latest end; an open end anywhere leaves that side open.
        if def.time.is_some() {
            self.time_extent = Some(match self.time_extent {
                None if self.by_id.is_empty() => time,
                None => TimeRange::default(),
                Some(acc) => TimeRange {
                    start: acc.start.zip(time.start).map(|(a, b)| a.min(b)),
                    end: acc.end.zip(time.end).map(|(a, b)| a.max(b)),
                },
            });
        }
        self.by_id.insert(f.id, position);
        self.features.push(IndexedFeature {
            id: f.id,
            geometry,
            tags,
            time,
            minzoom,
            removed: false,
            order,
        });
        self.boxes.push(ZoomBox {
            min: [r.min_x, r.min_y],
            max: [r.max_x, r.max_y],
            minzoom,
        });
        let entry = Entry::new(
            Rectangle::from_corners([r.min_x, r.min_y], [r.max_x, r.max_y]),
            position,
        );
        Some((minzoom, entry))
    }

    /// Adds a feature, or replaces the one with its id, in place; returns the geometry it
    /// had before. A feature that cannot be projected is removed instead.
    pub fn upsert(&mut self, def: &LayerDef, f: StoredFeature) -> OldGeometry {
        // Trees still to be built (read from a snapshot) are built now, before the new
        // feature is pushed: built after, they would hold it already.
        self.bands_mut();
        let old = self.remove(f.id);
        self.version += 1;
        if let Some((minzoom, entry)) = self.push(def, f) {
            let bands = self.bands_mut();
            let at = bands.partition_point(|(z, _)| *z < minzoom);
            if bands.get(at).is_none_or(|(z, _)| *z != minzoom) {
                bands.insert(at, (minzoom, RTree::new()));
            }
            bands[at].1.insert(entry);
            self.grid.push(self.features.last().expect("just pushed"));
            // Where the tile size budget lets it be drawn until the next plan ranks it.
            self.admit(self.features.len() as u32 - 1);
            self.recent.insert(entry);
            // Once as many features have come since the packed tree was built as it holds,
            // sort them in (amortised, a constant cost per write).
            if self.features.len() - self.sorted > 65_536.max(self.sorted) {
                self.compact();
            }
        }
        old
    }

    /// Removes a feature in place; returns its geometry, `None` when there was no such
    /// feature.
    pub fn remove(&mut self, id: FeatureId) -> OldGeometry {
        let position = *self.by_id.get(&id)?;
        self.bands_mut();
        self.by_id.remove(&id);
        self.version += 1;
        let f = &mut self.features[position as usize];
        let geometry = std::mem::replace(
            &mut f.geometry,
            ProjectedGeometry::Points(geo::MultiPoint(Vec::new())),
        );
        f.removed = true;
        if let Some(r) = geometry.bounds()
            && let Some((_, tree)) = self
                .bands
                .get_mut()
                .expect("built above")
                .iter_mut()
                .find(|(z, _)| *z == f.minzoom)
        {
            let entry = Entry::new(
                Rectangle::from_corners([r.min_x, r.min_y], [r.max_x, r.max_y]),
                position,
            );
            tree.remove(&entry);
            if position as usize >= self.sorted {
                self.recent.remove(&entry);
            }
        }
        self.removed += 1;
        if self.removed > 1024 && self.removed > self.by_id.len() {
            self.compact();
        }
        Some(geometry)
    }

    /// Drops the slots of removed features, puts the rest back in write order and rebuilds
    /// the trees by bulk load.
    fn compact(&mut self) {
        self.compactions += 1;
        let mut order: Vec<u32> = (0..self.features.len() as u32)
            .filter(|&p| !self.features[p as usize].removed)
            .collect();
        order.sort_unstable_by_key(|&p| self.features[p as usize].write_order());
        self.grid = self.grid.gather(&order);
        let old_boxes = std::mem::take(&mut self.boxes);
        let mut old: Vec<Option<IndexedFeature>> = std::mem::take(&mut self.features)
            .into_iter()
            .map(Some)
            .collect();
        let old_tags = std::mem::take(&mut self.tags);
        self.by_id.clear();
        self.removed = 0;
        let mut bands: std::collections::BTreeMap<u8, Vec<Entry>> = Default::default();
        for p in order {
            let mut f = old[p as usize].take().expect("each position once");
            self.boxes.push(old_boxes[p as usize]);
            let position = self.features.len() as u32;
            let start = self.tags.len() as u32;
            self.tags
                .extend_from_slice(&old_tags[f.tags.start as usize..f.tags.end as usize]);
            f.tags = start..self.tags.len() as u32;
            if let Some(r) = f.geometry.bounds() {
                bands.entry(f.minzoom).or_default().push(Entry::new(
                    Rectangle::from_corners([r.min_x, r.min_y], [r.max_x, r.max_y]),
                    position,
                ));
            }
            self.by_id.insert(f.id, position);
            self.features.push(f);
        }
        self.bands = bulk_load_bands(bands).into();
        self.sorted = self.features.len();
        self.packed = PackedTree::build(&self.boxes);
        self.recent = RTree::new();
        release_freed_memory();
    }

    /// Puts storage positions (from [`LayerIndex::positions_at_zoom`]) in write order, so
    /// that a tile's bytes depend only on the data, not on the order of edits.
    pub fn sort_positions(&self, positions: &mut [u32]) {
        positions.sort_unstable();
        // Positions below `sorted` are already in write order: only features written in
        // place since the last build need the slower sort.
        if positions.last().is_some_and(|&p| p as usize >= self.sorted) {
            positions.sort_unstable_by_key(|&p| self.features[p as usize].write_order());
        }
    }

    /// Changes made since the server started (see the field's comment).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The live feature with this id.
    pub fn by_id(&self, id: FeatureId) -> Option<&IndexedFeature> {
        self.by_id.get(&id).map(|&p| &self.features[p as usize])
    }

    /// Number of live features.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A feature's attributes: (declared key index, index into [`LayerIndex::values`]).
    pub fn tags(&self, feature: &IndexedFeature) -> &[Tag] {
        &self.tags[feature.tags.start as usize..feature.tags.end as usize]
    }

    /// The distinct attribute values that feature tags index into.
    pub fn values(&self) -> &[Value] {
        &self.values.values
    }

    /// [`LayerIndex::values`] encoded as tiles write them.
    pub fn encoded_values(&self) -> &EncodedValues {
        &self.values.encoded
    }

    /// For layers with a validity interval: from the earliest start to the latest end of
    /// their features (`None` on a side where some feature is open). Removing features does
    /// not shrink it until the layer is reloaded.
    pub fn time_extent(&self) -> Option<TimeRange> {
        self.time_extent
    }

    /// Type of each declared property (by index), `None` when no feature has it.
    /// The value of property `key` (its place in the layer's `properties`) of a feature,
    /// if it has one.
    pub fn value_of(&self, f: &IndexedFeature, key: usize) -> Option<&Value> {
        self.tags(f)
            .iter()
            .find(|(k, _)| *k as usize == key)
            .map(|(_, v)| &self.values()[*v as usize])
    }

    pub fn field_types(&self) -> &[Option<FieldType>] {
        &self.field_types
    }

    /// Lon/lat bounds of all features (like the time extent, it only grows until the layer
    /// is reloaded).
    pub fn bounds(&self) -> Option<Bbox> {
        self.bounds
    }

    /// Features whose bounding box meets `rect`, in no particular order. Cost: O(log n + k).
    pub fn query(&self, rect: Rect3857) -> impl Iterator<Item = &IndexedFeature> {
        let env = AABB::from_corners([rect.min_x, rect.min_y], [rect.max_x, rect.max_y]);
        self.trees()
            .flat_map(move |tree| tree.locate_in_envelope_intersecting(env))
            .map(|e| &self.features[e.data as usize])
    }

    /// The layer's R*-trees (one per feature minzoom); entries carry storage positions.
    pub fn trees(&self) -> impl Iterator<Item = &RTree<Entry>> {
        self.bands().iter().map(|(_, tree)| tree)
    }

    /// The feature queries' trees, built now if the index was read from a snapshot.
    fn bands(&self) -> &Bands {
        self.bands.get_or_init(|| {
            let mut bands: std::collections::BTreeMap<u8, Vec<Entry>> = Default::default();
            for (p, f) in self.features.iter().enumerate() {
                if f.removed {
                    continue;
                }
                let b = &self.boxes[p];
                bands
                    .entry(f.minzoom)
                    .or_default()
                    .push(Entry::new(Rectangle::from_corners(b.min, b.max), p as u32));
            }
            bulk_load_bands(bands)
        })
    }

    fn bands_mut(&mut self) -> &mut Bands {
        self.bands();
        self.bands.get_mut().expect("just built")
    }

    /// Builds the feature queries' trees, if they wait for a first query, so that none
    /// waits for them.
    pub fn warm(&self) {
        self.bands();
    }

    /// Features whose bounding box holds the EPSG:3857 point.
    pub fn features_at_point(&self, p: [f64; 2]) -> impl Iterator<Item = &IndexedFeature> {
        self.trees()
            .flat_map(move |tree| tree.locate_all_at_point(p))
            .map(|e| &self.features[e.data as usize])
    }

    /// Every live feature, in storage order (Z-order of their centres, then later writes).
    pub fn features(&self) -> impl Iterator<Item = &IndexedFeature> {
        self.features.iter().filter(|f| !f.removed)
    }

    /// Storage positions (see [`LayerIndex::feature`]) of the live features drawn at zoom
    /// `z` whose bounding box meets `rect`, appended to `out`: first those under the packed
    /// tree in write order, then any written since it was built.
    pub fn positions_at_zoom(&self, rect: Rect3857, z: u8, out: &mut Vec<u32>) {
        self.positions_at_zoom_upto(rect, z, usize::MAX, out);
    }

    /// [`LayerIndex::positions_at_zoom`] that stops searching the packed tree once it has
    /// found more than `most` features: false when it stopped, and `out` is incomplete.
    pub fn positions_at_zoom_upto(
        &self,
        rect: Rect3857,
        z: u8,
        most: usize,
        out: &mut Vec<u32>,
    ) -> bool {
        let q = ZoomBox {
            min: [rect.min_x, rect.min_y],
            max: [rect.max_x, rect.max_y],
            minzoom: 0,
        };
        let start = out.len();
        if !self
            .packed
            .search_upto(&self.boxes[..self.sorted], &q, z, most, out)
        {
            return false;
        }
        let env = AABB::from_corners(q.min, q.max);
        out.extend(
            self.recent
                .locate_in_envelope_intersecting(env)
                .map(|e| e.data)
                .filter(|&p| self.boxes[p as usize].minzoom <= z),
        );
        if self.removed > 0 {
            let mut kept = start;
            for k in start..out.len() {
                let p = out[k];
                if !self.features[p as usize].removed {
                    out[kept] = p;
                    kept += 1;
                }
            }
            out.truncate(kept);
        }
        true
    }

    /// A feature's box in EPSG:3857 (min, max) by storage position.
    pub fn box_of(&self, position: u32) -> ([f64; 2], [f64; 2]) {
        let b = &self.boxes[position as usize];
        (b.min, b.max)
    }

    /// The layer's features made ready for tiles at zoom `z` (see [`crate::tiles::grid`]),
    /// `None` when tiles at that zoom are cut from the projected geometry.
    pub fn grid(&self, z: u8) -> Option<GridAt<'_>> {
        self.grid.covers(z).then_some(GridAt {
            levels: &self.grid,
            z,
        })
    }

    /// The feature at a storage position from [`LayerIndex::positions_at_zoom`].
    pub fn feature(&self, position: u32) -> &IndexedFeature {
        &self.features[position as usize]
    }

    /// Like [`LayerIndex::query`], but only the features drawn at zoom `z`.
    pub fn query_at_zoom(&self, rect: Rect3857, z: u8) -> impl Iterator<Item = &IndexedFeature> {
        let env = AABB::from_corners([rect.min_x, rect.min_y], [rect.max_x, rect.max_y]);
        self.bands()
            .iter()
            .take_while(move |(minzoom, _)| *minzoom <= z)
            .flat_map(move |(_, tree)| tree.locate_in_envelope_intersecting(env))
            .map(|e| &self.features[e.data as usize])
    }
}

/// A layer's grid geometry at one zoom; see [`LayerIndex::grid`].
#[derive(Clone, Copy)]
pub struct GridAt<'a> {
    levels: &'a GridLevels,
    z: u8,
}

impl GridAt<'_> {
    /// The MVT commands of the feature at a storage position, relative to the zoom's grid
    /// origin; empty when it is not drawn at this zoom.
    pub fn commands(&self, position: u32) -> &[u8] {
        self.levels.get(self.z, position)
    }
}

/// Read access to one layer's index, held for the length of one reader's work on it.
pub type LayerRead = ArcRwLockReadGuard<parking_lot::RawRwLock, LayerIndex>;
/// Write access to one layer's index.
pub type LayerWrite = ArcRwLockWriteGuard<parking_lot::RawRwLock, LayerIndex>;

/// All layers' indexes, each behind its own lock.
#[derive(Debug, Default)]
pub struct Index {
    layers: HashMap<LayerId, Arc<RwLock<LayerIndex>>>,
    /// What an unknown layer reads as.
    empty: Arc<RwLock<LayerIndex>>,
}

impl Index {
    pub fn new<'a>(layers: impl IntoIterator<Item = &'a LayerId>) -> Index {
        Index {
            layers: layers
                .into_iter()
                .map(|id| (id.clone(), Arc::default()))
                .collect(),
            empty: Arc::default(),
        }
    }

    /// A layer's lock, the empty layer's for an unknown id.
    pub fn slot(&self, id: &LayerId) -> &Arc<RwLock<LayerIndex>> {
        self.layers.get(id).unwrap_or(&self.empty)
    }

    /// Reads a layer (an unknown one reads as empty). Do not hold two at once: take what is
    /// needed from one, then read the next (or use [`Index::read_both`]).
    pub fn read(&self, id: &LayerId) -> LayerRead {
        self.slot(id).read_arc()
    }

    /// Reads two layers, locked in a fixed (id) order so that two readers of the same pair
    /// can never wait on each other behind a writer.
    pub fn read_both(&self, a: &LayerId, b: &LayerId) -> (LayerRead, LayerRead) {
        if a == b {
            // The same lock twice: the second read must not queue behind a waiting writer,
            // which would wait for the first.
            let first = self.read(a);
            return (first, self.slot(a).read_arc_recursive());
        }
        if a <= b {
            let ra = self.read(a);
            (ra, self.read(b))
        } else {
            let rb = self.read(b);
            (self.read(a), rb)
        }
    }

    /// Locks a layer for writing (`None` for an unknown id).
    pub fn write(&self, id: &LayerId) -> Option<LayerWrite> {
        self.layers.get(id).map(|slot| slot.write_arc())
    }

    /// Replaces a layer's index; a reader in the middle of it finishes on the old one. What
    /// the build freed, and the old index, go back to the system.
    pub fn replace(&self, id: &LayerId, mut index: LayerIndex) {
        if let Some(mut slot) = self.write(id) {
            index.version = slot.version + 1;
            // Every feature may be somewhere else now, as after a compaction: a thinning
            // plan gathered from the old contents must not apply by position.
            index.compactions = slot.compactions + 1;
            *slot = index;
        }
        release_freed_memory();
    }
}

/// Gives freed memory back to the system. A compaction builds the layer's new arrays beside
/// the old ones, and a whole layer's build (at start or on a bulk write) frees everything
/// the store returned and its own temporaries; glibc keeps what they freed in its arenas
/// (and, once a large block has been freed, serves large blocks from there too), so without
/// this a server under a steady stream of writes grows by a layer's size at each compaction,
/// and a replica holds about twice its index after starting.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Feature;
    use crate::tiles::mercator::lon_lat_to_3857;

    fn def() -> LayerDef {
        LayerDef::from_toml(
            std::path::Path::new("schools.toml"),
            "title = \"S\"\ngeometry = \"point\"\nproperties = [\"name\", \"opened\"]\ntime = { start = \"opened\" }\n",
        )
        .unwrap()
    }

    fn point(id: u64, lon: f64, lat: f64, name: &str) -> StoredFeature {
        let mut properties = Properties::new();
        properties.insert("name".into(), name.into());
        properties.insert("opened".into(), "2026-01-01".into());
        properties.insert("dropped".into(), 1.into());
        StoredFeature {
            id: FeatureId(id),
            version: 0,
            feature: Feature {
                geometry: geo::Point::new(lon, lat).into(),
                properties,
            },
        }
    }

    #[test]
    fn a_box_query_finds_exactly_the_points_inside() {
        let idx = LayerIndex::build(
            &def(),
            vec![
                point(1, 24.94, 60.17, "a"),
                point(2, 24.95, 60.17, "b"),
                point(3, 25.5, 60.5, "c"),
            ],
        );
        let (x0, y0) = lon_lat_to_3857(24.93, 60.16);
        let (x1, y1) = lon_lat_to_3857(24.96, 60.18);
        let mut ids: Vec<u64> = idx
            .query(Rect3857 {
                min_x: x0,
                min_y: y0,
                max_x: x1,
                max_y: y1,
            })
            .map(|f| f.id.0)
            .collect();
        ids.sort();
        assert_eq!(ids, [1, 2]);
        let b = idx.bounds().unwrap();
        assert_eq!((b.west, b.north), (24.94, 60.5));
    }

    #[test]
    fn only_declared_properties_become_tags_and_time_is_read() {
        let idx = LayerIndex::build(&def(), vec![point(1, 24.94, 60.17, "a")]);
        let f = &idx.features[0];
        let tags = idx.tags(f);
        assert_eq!(tags.len(), 2);
        assert_eq!(idx.values()[tags[0].1 as usize], Value::String("a".into()));
        assert_eq!(tags[0].0, 0);
        assert_eq!(f.time.start, Some(1_767_225_600));
        assert_eq!(f.time.end, f.time.start);
    }

    #[test]
    fn in_place_writes_answer_like_a_fresh_build_through_compaction() {
        // Seeded, so that a failure replays.
        let mut rng = crate::generate::rng::Rng::new(7);
        let mut next = move |n: u64| rng.below(n);
        let def = def();
        let mut idx = LayerIndex::build(&def, Vec::new());
        let mut model: HashMap<u64, StoredFeature> = HashMap::new();
        let (x0, y0) = lon_lat_to_3857(24.90, 60.15);
        let (x1, y1) = lon_lat_to_3857(24.95, 60.18);
        let window = Rect3857 {
            min_x: x0,
            min_y: y0,
            max_x: x1,
            max_y: y1,
        };
        let mut version = idx.version();
        for step in 0..6000 {
            let id = next(800) + 1;
            let changed = if next(3) == 0 {
                let had = model.remove(&id).is_some();
                assert_eq!(idx.remove(FeatureId(id)).is_some(), had);
                had
            } else {
                let f = point(
                    id,
                    24.85 + next(2000) as f64 * 1e-4,
                    60.10 + next(1000) as f64 * 1e-4,
                    &format!("n{step}"),
                );
                let had = model.insert(id, f.clone()).is_some();
                assert_eq!(idx.upsert(&def, f).is_some(), had);
                true
            };
            assert_eq!(idx.version() > version, changed);
            version = idx.version();
            if step % 500 == 0 || step == 5999 {
                let fresh = LayerIndex::build(&def, model.values().cloned().collect());
                let ids = |i: &LayerIndex| {
                    let mut v: Vec<u64> = i.query(window).map(|f| f.id.0).collect();
                    v.sort();
                    v
                };
                assert_eq!(ids(&idx), ids(&fresh), "step {step}");
                // Tiles' search (packed tree plus what was written since) agrees too, and
                // comes out in the same write order.
                let tile_ids = |i: &LayerIndex| {
                    let mut hits = Vec::new();
                    i.positions_at_zoom(window, 16, &mut hits);
                    i.sort_positions(&mut hits);
                    hits.iter().map(|&p| i.feature(p).id.0).collect::<Vec<_>>()
                };
                assert_eq!(tile_ids(&idx), tile_ids(&fresh), "step {step}");
                assert_eq!(tile_ids(&fresh).len(), ids(&fresh).len());
                assert_eq!(idx.len(), model.len());
                assert_eq!(idx.features().count(), model.len());
                for (id, f) in &model {
                    let got = idx.by_id(FeatureId(*id)).unwrap();
                    let name = &idx.values()[idx.tags(got)[0].1 as usize];
                    assert_eq!(
                        name,
                        &Value::String(f.feature.properties["name"].as_str().unwrap().into())
                    );
                }
            }
        }
        // With 800 ids and a third of the writes deletes, slots were reclaimed.
        assert!(idx.features.len() < 6000);
    }
}
