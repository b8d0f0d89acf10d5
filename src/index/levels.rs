//! A layer's grid geometry ([`crate::tiles::grid`]): for each zoom from the layer's minzoom
//! to its maxzoom, every feature's MVT commands on that zoom's grid, in one byte arena per
//! zoom addressed by storage position.

use std::ops::Range;

use crate::config::LayerDef;
use crate::index::IndexedFeature;
use crate::tiles::grid::{GridEncoder, MAX_GRID_ZOOM};
use crate::tiles::render::tolerance_units;

/// One zoom's commands: `spans[position]` is where a feature's are in `bytes` (empty when
/// the feature is not drawn at this zoom, or nothing of it is left there).
#[derive(Debug, Default)]
struct Level {
    bytes: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

impl Level {
    fn push(&mut self, encoder: &mut GridEncoder, f: &IndexedFeature, z: u8, maxzoom: u8) {
        let start = self.bytes.len() as u32;
        let len = if f.removed || z < f.minzoom {
            0
        } else {
            encoder.encode(&f.geometry, z, tolerance_units(z, maxzoom), &mut self.bytes) as u32
        };
        self.spans.push((start, len));
    }
}

/// One zoom's bytes and each storage position's `(start, len)` in them.
pub(super) type LevelParts = (Vec<u8>, Vec<(u32, u32)>);

/// Grid geometry of one layer at zooms `lo..lo + levels.len()`.
#[derive(Debug, Default)]
pub struct GridLevels {
    lo: u8,
    maxzoom: u8,
    levels: Vec<Level>,
}

impl GridLevels {
    /// The zooms a layer keeps grid geometry for: its own, up to [`MAX_GRID_ZOOM`].
    fn zooms(def: &LayerDef) -> Range<u8> {
        def.minzoom..def.maxzoom.min(MAX_GRID_ZOOM) + 1
    }

    /// Encodes every feature at every zoom of the layer, one thread per core, each taking
    /// whole zooms.
    pub fn build(def: &LayerDef, features: &[IndexedFeature]) -> GridLevels {
        let zooms: Vec<u8> = Self::zooms(def).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(zooms.len())
            .max(1);
        let mut levels: Vec<Option<Level>> = zooms.iter().map(|_| None).collect();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let zooms = &zooms;
                    s.spawn(move || {
                        let mut encoder = GridEncoder::default();
                        let mut done = Vec::new();
                        for (i, &z) in zooms.iter().enumerate().skip(t).step_by(threads) {
                            let mut level = Level {
                                bytes: Vec::new(),
                                spans: Vec::with_capacity(features.len()),
                            };
                            for f in features {
                                level.push(&mut encoder, f, z, def.maxzoom);
                            }
                            level.bytes.shrink_to_fit();
                            done.push((i, level));
                        }
                        done
                    })
                })
                .collect();
            for w in workers {
                for (i, level) in w.join().expect("grid encoding does not panic") {
                    levels[i] = Some(level);
                }
            }
        });
        GridLevels {
            lo: def.minzoom,
            maxzoom: def.maxzoom,
            levels: levels.into_iter().map(|l| l.unwrap_or_default()).collect(),
        }
    }

    /// The first zoom, the layer's maxzoom and the number of zooms held (for
    /// [`crate::index::snapshot`]).
    pub(super) fn parts(&self) -> (u8, u8, usize) {
        (self.lo, self.maxzoom, self.levels.len())
    }

    /// Grid geometry read back from a snapshot: per zoom from `lo`, the bytes and each
    /// storage position's span in them (checked by the reader). `None` when the zooms are
    /// not those `def` keeps.
    pub(super) fn from_parts(
        def: &LayerDef,
        lo: u8,
        maxzoom: u8,
        levels: Vec<LevelParts>,
    ) -> Option<GridLevels> {
        let zooms = Self::zooms(def);
        if lo != zooms.start || maxzoom != def.maxzoom || levels.len() != zooms.len() {
            return None;
        }
        Some(GridLevels {
            lo,
            maxzoom,
            levels: levels
                .into_iter()
                .map(|(bytes, spans)| Level { bytes, spans })
                .collect(),
        })
    }

    /// Encodes a feature just appended at the next storage position.
    pub fn push(&mut self, f: &IndexedFeature) {
        let mut encoder = GridEncoder::default();
        for (i, level) in self.levels.iter_mut().enumerate() {
            level.push(&mut encoder, f, self.lo + i as u8, self.maxzoom);
        }
    }

    /// The same geometry for storage rearranged so that new position `i` holds what was at
    /// `order[i]`; drops the bytes of positions left out.
    pub fn gather(&self, order: &[u32]) -> GridLevels {
        let levels = self
            .levels
            .iter()
            .map(|old| {
                let mut level = Level {
                    bytes: Vec::new(),
                    spans: Vec::with_capacity(order.len()),
                };
                for &p in order {
                    let (start, len) = old.spans[p as usize];
                    let at = level.bytes.len() as u32;
                    level
                        .bytes
                        .extend_from_slice(&old.bytes[start as usize..(start + len) as usize]);
                    level.spans.push((at, len));
                }
                level
            })
            .collect();
        GridLevels {
            lo: self.lo,
            maxzoom: self.maxzoom,
            levels,
        }
    }

    /// Whether tiles at zoom `z` are cut from grid geometry.
    pub fn covers(&self, z: u8) -> bool {
        z >= self.lo && ((z - self.lo) as usize) < self.levels.len()
    }

    /// A feature's commands at zoom `z` (which [`GridLevels::covers`]); empty when it is not
    /// drawn there.
    pub fn get(&self, z: u8, position: u32) -> &[u8] {
        let level = &self.levels[(z - self.lo) as usize];
        let (start, len) = level.spans[position as usize];
        &level.bytes[start as usize..(start + len) as usize]
    }

    /// Bytes held, for the log.
    pub fn size(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.bytes.len() + l.spans.len() * 8)
            .sum()
    }
}
