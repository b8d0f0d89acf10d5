//! The tile cache: encoded tiles kept compressed in memory (gzip, or zstd for clients that
//! take it), bounded in bytes, and invalidated exactly by writes.
//!
//! A cached tile is keyed by its `{layers}` list, its query (time and filter), `z/x/y` and
//! its encoding: a tile is cached in the encodings it was asked in.
//! A write to a layer removes exactly the cached tiles of that layer, at every zoom, whose
//! area plus buffer meets the feature's old or new geometry; nothing else is touched.
//!
//! A tile cut before a write must never be stored after the write has invalidated its
//! area. Each layer index counts its changes ([`crate::index::LayerIndex::version`]); an
//! invalidation records the version that tiles of the layer must now be cut from, and
//! [`TileCache::insert`] refuses a tile cut from an older one.
//!
//! Eviction is second chance (CLOCK): tiles leave in insertion order unless they were read
//! since their last pass, in which case they go round once more.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use geo::Intersects;
use parking_lot::Mutex;

use crate::model::LayerId;
use crate::tiles::MAX_ZOOM;
use crate::tiles::compress::Encoding;
use crate::tiles::mercator::Rect3857;
use crate::tiles::{BUFFER_UNITS, EXTENT, ProjectedGeometry, TileCoord};

/// Default capacity: 256 MiB of compressed tiles.
pub const DEFAULT_CAPACITY: usize = 256 << 20;

/// What a cached tile answers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// The `{layers}` path segment as asked (its order is the tile's layer order).
    pub layers: Arc<str>,
    /// The query in a canonical form (empty when there is none).
    pub query: Arc<str>,
    pub tile: TileCoord,
    /// Gzip or zstd (identity clients are answered from the gzip form).
    pub encoding: Encoding,
}

/// A cached tile.
#[derive(Debug, Clone)]
pub struct CachedTile {
    /// The compressed MVT; empty for a tile with no features (or, outside the cache, when
    /// it was not compressed).
    pub body: Bytes,
    /// How `body` is compressed.
    pub encoding: Encoding,
    /// The ETag of the uncompressed bytes (`None` for an empty tile).
    pub etag: Option<Arc<str>>,
    /// Every layer of the tile is public: an anonymous request may have it.
    pub public: bool,
}

#[derive(Debug)]
struct Slot {
    tile: CachedTile,
    layers: Arc<[LayerId]>,
    /// Read since the clock hand last passed.
    referenced: bool,
}

#[derive(Debug, Default)]
struct Inner {
    slots: rustc_hash::FxHashMap<TileKey, Slot>,
    /// Per zoom: the cached keys at each `(x, y)`.
    coords: Vec<HashMap<(u32, u32), Vec<TileKey>>>,
    /// Insertion order, for the clock.
    order: VecDeque<TileKey>,
    bytes: usize,
    /// Per layer: the index version a tile must have been cut from to be stored.
    fresh_from: HashMap<LayerId, u64>,
}

/// Counters for the health route and the benchmarks.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct CacheStats {
    pub tiles: usize,
    pub bytes: usize,
    pub capacity: usize,
    /// Lookups answered from the cache, and those that were not, since start.
    pub hits: u64,
    pub misses: u64,
    /// Tiles dropped to stay within the capacity, and tiles dropped because a write
    /// changed them, since start.
    pub evictions: u64,
    pub invalidations: u64,
}

#[derive(Debug)]
pub struct TileCache {
    inner: Mutex<Inner>,
    /// The [`TileKey::query`] of requests without one, shared.
    no_query: Arc<str>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

/// Bytes a slot costs beyond its tile: key, maps and queue entries.
const OVERHEAD: usize = 160;

impl TileCache {
    /// A cache holding at most `capacity` bytes of tiles (0 disables it).
    pub fn new(capacity: usize) -> TileCache {
        TileCache {
            inner: Mutex::new(Inner {
                coords: vec![HashMap::new(); MAX_ZOOM as usize + 1],
                ..Default::default()
            }),
            capacity,
            no_query: Arc::from(""),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// The query part of the key of a request without a query.
    pub fn no_query(&self) -> Arc<str> {
        self.no_query.clone()
    }

    /// False when the capacity is 0.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.lock();
        CacheStats {
            tiles: inner.slots.len(),
            bytes: inner.bytes,
            capacity: self.capacity,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }

    /// Counts `n` tiles dropped by a write; returns `n`.
    fn invalidated(&self, n: usize) -> usize {
        self.invalidations.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    pub fn get(&self, key: &TileKey) -> Option<CachedTile> {
        let found = self.get_hit(key);
        if found.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// [`TileCache::get`] counting a hit only: for a first look whose miss is looked up
    /// (and counted) again on the way to cutting the tile.
    pub fn get_hit(&self, key: &TileKey) -> Option<CachedTile> {
        let mut inner = self.inner.lock();
        let slot = inner.slots.get_mut(key)?;
        slot.referenced = true;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(slot.tile.clone())
    }

    /// Stores a tile cut from `layers` at index `versions` (same order), unless a write
    /// has invalidated one of them since. Returns whether it was stored.
    pub fn insert(
        &self,
        key: TileKey,
        layers: Arc<[LayerId]>,
        versions: &[u64],
        tile: CachedTile,
    ) -> bool {
        let cost = tile.body.len() + OVERHEAD;
        if cost > self.capacity / 16 {
            return false;
        }
        let mut inner = self.inner.lock();
        let stale = layers
            .iter()
            .zip(versions)
            .any(|(l, v)| inner.fresh_from.get(l).is_some_and(|f| v < f));
        if stale || inner.slots.contains_key(&key) {
            return false;
        }
        inner.bytes += cost;
        inner.coords[key.tile.z as usize]
            .entry((key.tile.x, key.tile.y))
            .or_default()
            .push(key.clone());
        inner.order.push_back(key.clone());
        inner.slots.insert(
            key,
            Slot {
                tile,
                layers,
                referenced: false,
            },
        );
        while inner.bytes > self.capacity {
            let Some(k) = inner.order.pop_front() else {
                break;
            };
            match inner.slots.get_mut(&k) {
                Some(slot) if slot.referenced => {
                    slot.referenced = false;
                    inner.order.push_back(k);
                }
                Some(_) => {
                    inner.remove(&k);
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                None => {}
            }
        }
        true
    }

    /// After a write to `layer` (now at index `version`): drops every cached tile of the
    /// layer whose area plus buffer meets one of `geometries` (the features' old and new
    /// shapes). Returns how many tiles went.
    pub fn invalidate(
        &self,
        layer: &LayerId,
        version: u64,
        geometries: &[&ProjectedGeometry],
    ) -> usize {
        let mut inner = self.inner.lock();
        inner.fresh_from.insert(layer.clone(), version);
        let mut doomed = Vec::new();
        for g in geometries {
            let Some(bounds) = g.bounds() else { continue };
            for z in 0..=MAX_ZOOM {
                let at_zoom = &inner.coords[z as usize];
                if at_zoom.is_empty() {
                    continue;
                }
                let pad =
                    TileCoord { z, x: 0, y: 0 }.span_3857() * BUFFER_UNITS as f64 / EXTENT as f64;
                let (xs, ys) = TileCoord::covering(bounds.expand(pad), z);
                let range =
                    (*xs.end() - *xs.start() + 1) as usize * (*ys.end() - *ys.start() + 1) as usize;
                let mut check = |(x, y): (u32, u32), keys: &Vec<TileKey>| {
                    if keys.iter().any(|k| inner.slots[k].layers.contains(layer))
                        && meets(g, buffered(TileCoord { z, x, y }))
                    {
                        doomed.extend(
                            keys.iter()
                                .filter(|k| inner.slots[*k].layers.contains(layer))
                                .cloned(),
                        );
                    }
                };
                if range <= at_zoom.len() {
                    for x in xs {
                        for y in ys.clone() {
                            if let Some(keys) = at_zoom.get(&(x, y)) {
                                check((x, y), keys);
                            }
                        }
                    }
                } else {
                    for (&(x, y), keys) in at_zoom {
                        if xs.contains(&x) && ys.contains(&y) {
                            check((x, y), keys);
                        }
                    }
                }
            }
        }
        self.invalidated(inner.remove_all(doomed))
    }

    /// After a write to a clustered layer: drops the layer's tiles at `zooms` for which
    /// `which` holds. Returns how many went.
    pub fn invalidate_zooms(
        &self,
        layer: &LayerId,
        version: u64,
        zooms: std::ops::RangeInclusive<u8>,
        which: impl Fn(&TileKey) -> bool,
    ) -> usize {
        let mut inner = self.inner.lock();
        inner.fresh_from.insert(layer.clone(), version);
        let mut doomed = Vec::new();
        for z in zooms.filter(|&z| z <= MAX_ZOOM) {
            doomed.extend(
                inner.coords[z as usize]
                    .values()
                    .flatten()
                    .filter(|k| inner.slots[*k].layers.contains(layer) && which(k))
                    .cloned(),
            );
        }
        self.invalidated(inner.remove_all(doomed))
    }

    /// After a write to a clustered layer: drops the layer's tiles without a query whose
    /// area plus buffer holds one of `points` (zoom, EPSG:3857), the places where its
    /// clusters changed ([`crate::cluster::ClusterTree::changes_from`]). Returns how many
    /// went.
    pub fn invalidate_points(
        &self,
        layer: &LayerId,
        version: u64,
        points: &[(u8, [f64; 2])],
    ) -> usize {
        let mut inner = self.inner.lock();
        inner.fresh_from.insert(layer.clone(), version);
        let mut doomed = Vec::new();
        for &(z, [x, y]) in points {
            if z > MAX_ZOOM || inner.coords[z as usize].is_empty() {
                continue;
            }
            let pad = TileCoord { z, x: 0, y: 0 }.span_3857() * BUFFER_UNITS as f64 / EXTENT as f64;
            let at = Rect3857 {
                min_x: x,
                min_y: y,
                max_x: x,
                max_y: y,
            };
            let (xs, ys) = TileCoord::covering(at.expand(pad), z);
            for tx in xs {
                for ty in ys.clone() {
                    let Some(keys) = inner.coords[z as usize].get(&(tx, ty)) else {
                        continue;
                    };
                    if !buffered(TileCoord { z, x: tx, y: ty }).intersects(&at) {
                        continue;
                    }
                    doomed.extend(
                        keys.iter()
                            .filter(|k| {
                                k.query.is_empty() && inner.slots[*k].layers.contains(layer)
                            })
                            .cloned(),
                    );
                }
            }
        }
        self.invalidated(inner.remove_all(doomed))
    }

    /// After a whole-layer reload: drops every cached tile of the layer.
    pub fn invalidate_layer(&self, layer: &LayerId, version: u64) -> usize {
        let mut inner = self.inner.lock();
        inner.fresh_from.insert(layer.clone(), version);
        let doomed: Vec<TileKey> = inner
            .slots
            .iter()
            .filter(|(_, s)| s.layers.contains(layer))
            .map(|(k, _)| k.clone())
            .collect();
        self.invalidated(inner.remove_all(doomed))
    }
}

impl Inner {
    /// Removes every key of `doomed` still cached (a key may be listed twice); returns how
    /// many went.
    fn remove_all(&mut self, doomed: Vec<TileKey>) -> usize {
        let mut gone = 0;
        for k in doomed {
            if self.slots.contains_key(&k) {
                self.remove(&k);
                gone += 1;
            }
        }
        gone
    }

    fn remove(&mut self, key: &TileKey) {
        let Some(slot) = self.slots.remove(key) else {
            return;
        };
        self.bytes -= slot.tile.body.len() + OVERHEAD;
        let at_zoom = &mut self.coords[key.tile.z as usize];
        if let Some(keys) = at_zoom.get_mut(&(key.tile.x, key.tile.y)) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                at_zoom.remove(&(key.tile.x, key.tile.y));
            }
        }
        // The clock queue forgets the key lazily, when its hand reaches it; keep the queue
        // from growing without bound under heavy invalidation.
        if self.order.len() > 2 * self.slots.len() + 1024 {
            let slots = &self.slots;
            self.order.retain(|k| slots.contains_key(k));
        }
    }
}

/// The area a tile's features are cut from: the tile plus its buffer, and a hair more so
/// that rounding at the edge can only widen what is invalidated.
fn buffered(tile: TileCoord) -> Rect3857 {
    let span = tile.span_3857();
    tile.bounds_3857()
        .expand(span * BUFFER_UNITS as f64 / EXTENT as f64 + span * 1e-9)
}

fn meets(g: &ProjectedGeometry, r: Rect3857) -> bool {
    let rect = geo::Rect::new(
        geo::coord! { x: r.min_x, y: r.min_y },
        geo::coord! { x: r.max_x, y: r.max_y },
    );
    match g {
        ProjectedGeometry::Points(p) => p.intersects(&rect),
        ProjectedGeometry::Lines(l) => l.intersects(&rect),
        ProjectedGeometry::Polygons(p) => p.intersects(&rect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::mercator::lon_lat_to_3857;

    fn key(layers: &str, z: u8, x: u32, y: u32) -> TileKey {
        TileKey {
            layers: layers.into(),
            query: "".into(),
            tile: TileCoord { z, x, y },
            encoding: Encoding::Gzip,
        }
    }

    fn tile(n: usize) -> CachedTile {
        CachedTile {
            body: Bytes::from(vec![7u8; n]),
            encoding: Encoding::Gzip,
            etag: Some("\"t\"".into()),
            public: true,
        }
    }

    fn ids(list: &str) -> Arc<[LayerId]> {
        list.split(',').map(|s| LayerId::new(s).unwrap()).collect()
    }

    fn point(lon: f64, lat: f64) -> ProjectedGeometry {
        let (x, y) = lon_lat_to_3857(lon, lat);
        ProjectedGeometry::Points(geo::MultiPoint(vec![geo::point!(x: x, y: y)]))
    }

    #[test]
    fn a_write_drops_exactly_the_tiles_its_geometry_meets() {
        let cache = TileCache::new(1 << 20);
        let roads = LayerId::new("roads").unwrap();
        // Helsinki centre at z14 is tile 9326/4739; a point inside it, well away from edges.
        let p = point(24.9410, 60.1700);
        let here = TileCoord::covering(p.bounds().unwrap(), 14);
        let (x, y) = (*here.0.start(), *here.1.start());
        for (layers, dx) in [
            ("roads", 0),
            ("roads", 2),
            ("schools", 0),
            ("schools,roads", 0),
        ] {
            assert!(cache.insert(key(layers, 14, x + dx, y), ids(layers), &[0, 0], tile(10)));
        }
        assert!(cache.insert(key("roads", 4, 9, 4), ids("roads"), &[0], tile(10)));
        assert_eq!(cache.invalidate(&roads, 1, &[&p]), 3);
        assert!(cache.get(&key("roads", 14, x, y)).is_none());
        assert!(cache.get(&key("schools,roads", 14, x, y)).is_none());
        assert!(cache.get(&key("roads", 4, 9, 4)).is_none());
        assert!(cache.get(&key("roads", 14, x + 2, y)).is_some());
        assert!(cache.get(&key("schools", 14, x, y)).is_some());
        // A tile cut before that write is refused; one cut after is kept.
        assert!(!cache.insert(key("roads", 14, x, y), ids("roads"), &[0], tile(10)));
        assert!(cache.insert(key("roads", 14, x, y), ids("roads"), &[1], tile(10)));
    }

    #[test]
    fn a_diagonal_line_spares_the_tiles_of_its_box_it_does_not_cross() {
        let cache = TileCache::new(1 << 20);
        let roads = LayerId::new("roads").unwrap();
        let z = 16;
        let t = TileCoord {
            z,
            x: 37300,
            y: 18960,
        };
        let r = t.bounds_3857();
        let s = t.span_3857();
        // From the middle of one tile to the middle of the tile three down and three right.
        let line =
            ProjectedGeometry::Lines(geo::MultiLineString(vec![geo::LineString::from(vec![
                (r.min_x + s / 2.0, r.max_y - s / 2.0),
                (r.min_x + 3.5 * s, r.max_y - 3.5 * s),
            ])]));
        for dx in 0..4 {
            for dy in 0..4 {
                cache.insert(
                    key("roads", z, t.x + dx, t.y + dy),
                    ids("roads"),
                    &[0],
                    tile(1),
                );
            }
        }
        let gone = cache.invalidate(&roads, 1, &[&line]);
        assert!(cache.get(&key("roads", z, t.x + 3, t.y)).is_some());
        assert!(cache.get(&key("roads", z, t.x, t.y + 3)).is_some());
        assert!(cache.get(&key("roads", z, t.x + 2, t.y + 2)).is_none());
        // The four diagonal tiles, and at each of the three corners the line passes through,
        // the two tiles whose buffer it crosses there.
        assert_eq!(gone, 10);
    }

    #[test]
    fn the_clock_keeps_read_tiles_and_the_size_bound() {
        let cache = TileCache::new(16 * (100 + OVERHEAD));
        for i in 0..8 {
            cache.insert(key("roads", 10, i, 0), ids("roads"), &[0], tile(100));
        }
        cache.get(&key("roads", 10, 0, 0));
        for i in 8..20 {
            cache.insert(key("roads", 10, i, 0), ids("roads"), &[0], tile(100));
        }
        let s = cache.stats();
        assert!(s.bytes <= s.capacity);
        assert_eq!(s.tiles, 16);
        // 20 inserted, 16 kept: 4 evicted, counted as evictions and not invalidations.
        assert_eq!((s.evictions, s.invalidations), (4, 0));
        assert!(cache.get(&key("roads", 10, 0, 0)).is_some());
        assert!(cache.get(&key("roads", 10, 1, 0)).is_none());
        assert_eq!(
            cache.invalidate_layer(&LayerId::new("roads").unwrap(), 1),
            16
        );
        let s = cache.stats();
        assert_eq!((s.bytes, s.evictions, s.invalidations), (0, 4, 16));
        // Hits and misses: a first look that only counts hits, and the full lookup.
        assert!(cache.get_hit(&key("roads", 10, 0, 0)).is_none());
        assert!(cache.get(&key("roads", 10, 0, 0)).is_none());
        assert_eq!(cache.stats().misses - s.misses, 1);
    }
}
