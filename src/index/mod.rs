//! The in-memory side of the store: one R*-tree per layer over features projected to Web
//! Mercator, with their attributes already in MVT form, so that a tile is a tree query plus
//! encoding. Built by bulk load from what the store returns; a layer is swapped whole, so a
//! reader sees either the old set or the new one.
//!
//! Persistence is [`crate::store`]'s job; this module never touches the database.

pub mod tile;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use crate::config::LayerDef;
use crate::model::time::parse_rfc3339;
use crate::model::{Bbox, FeatureId, LayerId, Properties, StoredFeature, TimeRange};
use crate::tiles::mercator::Rect3857;
use crate::tiles::mvt::Tag;
use crate::tiles::{ProjectedGeometry, Value};

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
}

/// A layer's distinct attribute values, each stored once however many features share it.
#[derive(Debug, Default)]
struct ValueTable {
    values: Vec<Value>,
    ids: rustc_hash::FxHashMap<Value, u32>,
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
            let next = self.values.len() as u32;
            let id = *self.ids.entry(value).or_insert_with_key(|v| {
                self.values.push(v.clone());
                next
            });
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
    bands: Vec<(u8, RTree<Entry>)>,
    features: Vec<IndexedFeature>,
    tags: Vec<Tag>,
    values: Vec<Value>,
    bounds: Option<Bbox>,
    field_types: Vec<Option<FieldType>>,
    time_extent: Option<TimeRange>,
}

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

impl LayerIndex {
    /// Projects and bulk-loads `features`; features without a projectable, non-empty
    /// geometry are left out (ingest does not let such features in).
    pub fn build(def: &LayerDef, mut features: Vec<StoredFeature>) -> LayerIndex {
        // Features near each other on the map are laid out near each other in memory (the
        // projected geometries are allocated in this order, the tags share one arena), so
        // that a tile reads a few contiguous runs instead of chasing pointers at random.
        features.sort_by_cached_key(|f| Bbox::of(&f.feature.geometry).map_or(0, z_order));
        let mut bands: std::collections::BTreeMap<u8, Vec<Entry>> = Default::default();
        let mut values = ValueTable::default();
        let mut tags = Vec::new();
        let mut indexed = Vec::with_capacity(features.len());
        let mut bounds: Option<Bbox> = None;
        for f in features {
            let Some(geometry) = ProjectedGeometry::from_lon_lat(&f.feature.geometry) else {
                continue;
            };
            let Some(r) = geometry.bounds() else { continue };
            if let Some(b) = Bbox::of(&f.feature.geometry) {
                bounds = Some(bounds.map_or(b, |a| a.union(b)));
            }
            let minzoom = def.feature_minzoom.as_ref().map_or(def.minzoom, |rule| {
                rule.of(&def.properties, &f.feature.properties)
            });
            bands.entry(minzoom).or_default().push(Entry::new(
                Rectangle::from_corners([r.min_x, r.min_y], [r.max_x, r.max_y]),
                indexed.len() as u32,
            ));
            indexed.push(IndexedFeature {
                id: f.id,
                geometry,
                tags: values.push_tags(&def.properties, &f.feature.properties, &mut tags),
                time: time_of(def, &f.feature.properties),
                minzoom,
            });
        }
        // A key's type is that of its values; a key whose values mix types is a string,
        // since that is how a style can always read it.
        let mut field_types = vec![None; def.properties.len()];
        for f in &indexed {
            for (k, v) in &tags[f.tags.start as usize..f.tags.end as usize] {
                let t = FieldType::of(&values.values[*v as usize]);
                let slot = &mut field_types[*k as usize];
                *slot = match *slot {
                    None => Some(t),
                    Some(old) if old == t => Some(t),
                    Some(_) => Some(FieldType::String),
                };
            }
        }
        // Earliest start and latest end; an open end anywhere leaves that side open.
        let time_extent = def.time.as_ref().and_then(|_| {
            let mut it = indexed.iter().map(|f| f.time);
            let first = it.next()?;
            Some(it.fold(first, |acc, t| TimeRange {
                start: acc.start.zip(t.start).map(|(a, b)| a.min(b)),
                end: acc.end.zip(t.end).map(|(a, b)| a.max(b)),
            }))
        });
        LayerIndex {
            time_extent,
            bands: bands
                .into_iter()
                .map(|(z, entries)| (z, RTree::bulk_load(entries)))
                .collect(),
            features: indexed,
            tags,
            values: values.values,
            bounds,
            field_types,
        }
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// A feature's attributes: (declared key index, index into [`LayerIndex::values`]).
    pub fn tags(&self, feature: &IndexedFeature) -> &[Tag] {
        &self.tags[feature.tags.start as usize..feature.tags.end as usize]
    }

    /// The distinct attribute values that feature tags index into.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// For layers with a validity interval: from the earliest start to the latest end of
    /// their features (`None` on a side where some feature is open).
    pub fn time_extent(&self) -> Option<TimeRange> {
        self.time_extent
    }

    /// Type of each declared property (by index), `None` when no feature has it.
    pub fn field_types(&self) -> &[Option<FieldType>] {
        &self.field_types
    }

    /// Lon/lat bounds of all features.
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
        self.bands.iter().map(|(_, tree)| tree)
    }

    /// Features whose bounding box holds the EPSG:3857 point.
    pub fn features_at_point(&self, p: [f64; 2]) -> impl Iterator<Item = &IndexedFeature> {
        self.trees()
            .flat_map(move |tree| tree.locate_all_at_point(p))
            .map(|e| &self.features[e.data as usize])
    }

    /// Every feature, in storage order (Z-order of their centres).
    pub fn features(&self) -> &[IndexedFeature] {
        &self.features
    }

    /// Storage positions (see [`LayerIndex::feature`]) of the features drawn at zoom `z`
    /// whose bounding box meets `rect`, appended to `out` in no particular order.
    pub fn positions_at_zoom(&self, rect: Rect3857, z: u8, out: &mut Vec<u32>) {
        let env = AABB::from_corners([rect.min_x, rect.min_y], [rect.max_x, rect.max_y]);
        for (_, tree) in self.bands.iter().take_while(|(minzoom, _)| *minzoom <= z) {
            out.extend(tree.locate_in_envelope_intersecting(env).map(|e| e.data));
        }
    }

    /// The feature at a storage position from [`LayerIndex::positions_at_zoom`].
    pub fn feature(&self, position: u32) -> &IndexedFeature {
        &self.features[position as usize]
    }

    /// Like [`LayerIndex::query`], but only the features drawn at zoom `z`.
    pub fn query_at_zoom(&self, rect: Rect3857, z: u8) -> impl Iterator<Item = &IndexedFeature> {
        let env = AABB::from_corners([rect.min_x, rect.min_y], [rect.max_x, rect.max_y]);
        self.bands
            .iter()
            .take_while(move |(minzoom, _)| *minzoom <= z)
            .flat_map(move |(_, tree)| tree.locate_in_envelope_intersecting(env))
            .map(|e| &self.features[e.data as usize])
    }
}

/// All layers' indexes. Each layer sits behind its own lock only long enough to clone or
/// swap an `Arc`; tiles render from the snapshot they took.
#[derive(Debug, Default)]
pub struct Index {
    layers: HashMap<LayerId, RwLock<Arc<LayerIndex>>>,
}

impl Index {
    pub fn new<'a>(layers: impl IntoIterator<Item = &'a LayerId>) -> Index {
        Index {
            layers: layers
                .into_iter()
                .map(|id| (id.clone(), RwLock::new(Arc::new(LayerIndex::default()))))
                .collect(),
        }
    }

    /// The current snapshot of a layer, `None` for an unknown layer.
    pub fn layer(&self, id: &LayerId) -> Option<Arc<LayerIndex>> {
        let slot = self.layers.get(id)?;
        Some(slot.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Replaces a layer's snapshot; readers holding the old one keep it until they finish.
    pub fn replace(&self, id: &LayerId, index: LayerIndex) {
        if let Some(slot) = self.layers.get(id) {
            *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        }
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
}
