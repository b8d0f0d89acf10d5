//! Keeping a pack fresh: the tiles of a pack that changed since a change-log position, as a
//! small archive of the pack's format. PMTiles has no delta format and Martin's `mbtiles
//! diff` compares whole files offline; here the change log says which features changed,
//! and so which of the pack's tiles may have, and only those are cut again and compared.
//!
//! Which tiles a change may touch, for each zoom of the pack: those of the pack's area whose
//! square plus buffer meets the change's extent (the union of the feature's old and new
//! boxes, as the log records it), as the tile cache's invalidation does; every tile of the
//! area for a reload, and for a change to a clustered layer at its clustered zooms (a point
//! moves clusters beyond its own box). Each such tile is cut now ([`Dataset::cut_tile`])
//! and compared, uncompressed, with what the client holds:
//! - a tile no change touched between the pack's position and `since` is still the pack's
//!   own: it is sent only if its bytes differ, and listed as removed if it is now empty;
//! - a tile touched there may hold bytes from an earlier delta the server cannot see: it is
//!   sent (or listed as removed) whatever it was. Asked from the pack's own position, the
//!   delta thus holds exactly the tiles whose bytes changed.

use std::collections::BTreeSet;

use crate::dataset::Dataset;
use crate::dataset::tile::TileAsk;
use crate::export::area::Area;
use crate::model::Bbox;
use crate::store::{Change, ChangeKind};
use crate::tiles::mercator::{Rect3857, lon_lat_to_3857};
use crate::tiles::{BUFFER_UNITS, EXTENT, TileCoord};

/// More candidate tiles than this: the delta would be about the pack's size; the client
/// is told to download the pack again.
pub const MAX_CANDIDATES: usize = 50_000;

/// What a pack covers, as its metadata records it.
#[derive(Debug, Clone)]
pub struct PackScope {
    /// Positions in [`Dataset::layers`], in the tiles' layer order.
    pub layers: Vec<usize>,
    pub minzoom: u8,
    pub maxzoom: u8,
    pub area: Area,
}

/// The tiles to cut again, in tile-id order.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Tiles a change after `since` may have touched.
    pub tiles: Vec<TileCoord>,
    /// Those also touched between the pack's position and `since` (the client may hold
    /// another version of them than the pack's).
    pub unknown: BTreeSet<TileCoord>,
}

/// The tiles of `scope` that `changes` may have touched: those of changes after `since`,
/// marked unknown when also touched by one at or before it. `None` when there are more
/// than [`MAX_CANDIDATES`].
pub fn candidates(
    data: &Dataset,
    scope: &PackScope,
    changes: &[Change],
    since: u64,
) -> Option<Candidates> {
    let mut after = BTreeSet::new();
    let mut before = BTreeSet::new();
    for change in changes {
        let Some(i) = scope
            .layers
            .iter()
            .copied()
            .find(|&i| data.layers()[i].id == change.layer)
        else {
            continue;
        };
        let def = &data.layers()[i];
        let out = if change.seq > since {
            &mut after
        } else {
            &mut before
        };
        for z in scope.minzoom..=scope.maxzoom {
            let clustered = def
                .cluster
                .as_ref()
                .is_some_and(|c| z >= def.minzoom && z <= c.maxzoom);
            let whole = change.kind == ChangeKind::Reload || change.bbox.is_none() || clustered;
            let touched: Box<dyn Iterator<Item = TileCoord>> = match change.bbox {
                Some(b) if !whole => Box::new(tiles_meeting(&scope.area, b, z)),
                _ => Box::new(scope.area.tiles_at(z)),
            };
            for t in touched {
                out.insert(t);
                if out.len() > MAX_CANDIDATES {
                    return None;
                }
            }
        }
    }
    let unknown = before.intersection(&after).copied().collect();
    let mut tiles: Vec<TileCoord> = after.into_iter().collect();
    tiles.sort_unstable_by_key(|t| crate::archive::pmtiles::tile_id(*t));
    Some(Candidates { tiles, unknown })
}

/// The tiles of zoom `z` in `area` whose square plus buffer meets the lon/lat box `b`.
fn tiles_meeting(area: &Area, b: Bbox, z: u8) -> impl Iterator<Item = TileCoord> + '_ {
    let (min_x, min_y) = lon_lat_to_3857(b.west, b.south);
    let (max_x, max_y) = lon_lat_to_3857(b.east, b.north);
    let span = TileCoord { z, x: 0, y: 0 }.span_3857();
    // The buffer, and a hair more so that rounding can only widen what is looked at.
    let pad = span * BUFFER_UNITS as f64 / EXTENT as f64 + span * 1e-9;
    let rect = Rect3857 {
        min_x,
        min_y,
        max_x,
        max_y,
    }
    .expand(pad);
    let (xs, ys) = TileCoord::covering(rect, z);
    ys.flat_map(move |y| xs.clone().map(move |x| TileCoord { z, x, y }))
        .filter(move |t| area.meets(*t))
}

/// A delta: tiles to put (gzip MVT, with their content key) and tiles to remove.
#[derive(Debug, Default)]
pub struct Delta {
    pub tiles: Vec<(TileCoord, Vec<u8>, u128)>,
    pub removed: Vec<TileCoord>,
    /// Candidate tiles cut again.
    pub cut: usize,
}

/// Cuts every candidate tile again and keeps those that differ from what the client holds
/// (see the module's header): `pack_tile` gives a tile's uncompressed bytes in the pack.
/// CPU work: call it on the compute pool (whose deadline it honours).
pub fn compute(
    data: &Dataset,
    scope: &PackScope,
    ask: TileAsk<'_>,
    candidates: &Candidates,
    pack_tile: &dyn Fn(TileCoord) -> Option<Vec<u8>>,
) -> Result<Delta, crate::dataset::tile::CutError> {
    let mut delta = Delta::default();
    for &tile in &candidates.tiles {
        if crate::compute::expired() {
            break;
        }
        let now = data.cut_tile(&scope.layers, ask, tile)?.bytes;
        delta.cut += 1;
        let unknown = candidates.unknown.contains(&tile);
        let before = if unknown { None } else { pack_tile(tile) };
        if !unknown && before.as_deref().unwrap_or_default() == now.as_slice() {
            continue;
        }
        if now.is_empty() {
            // Nothing to remove from a client that cannot have had it.
            if unknown || before.is_some() {
                delta.removed.push(tile);
            }
            continue;
        }
        let key = crate::export::content_key(&now);
        let gzip = crate::tiles::compress::gzip(&now).unwrap_or_default();
        delta.tiles.push((tile, gzip, key));
    }
    Ok(delta)
}
