//! Geometry made ready for tiles once per zoom instead of once per request.
//!
//! At zoom `z` the whole world is one grid of `2^z * EXTENT` units a side, and every tile is
//! an `EXTENT`-unit window of it. A feature projected to that grid, simplified to one grid
//! unit (below the layer's maxzoom), rounded and cleaned of what collapsed, is the same in
//! every tile it appears in; only where the window starts differs. So the index keeps each
//! feature's MVT geometry commands per zoom, relative to the grid's origin
//! ([`GridEncoder`]), and a tile:
//! - copies them for a feature wholly inside the tile plus buffer, with only the first
//!   point moved to the tile's origin (MVT geometry is delta-encoded, so the rest is the
//!   same bytes);
//! - decodes and clips them for a feature that crosses the buffer's edge
//!   ([`GridDecoder`], then [`crate::tiles::LayerRenderer::add_grid`]).
//!
//! Simplifying whole features, rather than each tile's cut of them, also means that a line
//! crossing two tiles is simplified the same way on both sides of the seam.

use geo::{Coord, LineString};

use crate::tiles::clip::Pt;
use crate::tiles::mercator::{HALF_WORLD, ProjectedGeometry};
use crate::tiles::mvt::{GeomType, GeometryWriter, read_varint, unzigzag};
use crate::tiles::quantise::{grid_ring, open_ring, quantise, smaller_than};
use crate::tiles::simplify::Simplifier;
use crate::tiles::{EXTENT, TileCoord};

/// The deepest zoom kept as grid geometry: its grid (2^30 units a side) and the tile
/// buffer fit in `i32`. Deeper tiles are cut from the projected geometry.
pub const MAX_GRID_ZOOM: u8 = 18;

/// Grid units per EPSG:3857 metre at zoom `z`.
pub fn grid_scale(z: u8) -> f64 {
    EXTENT as f64 * (1u64 << z) as f64 / (2.0 * HALF_WORLD)
}

/// A tile's origin on its zoom's grid (x right, y down).
pub fn tile_origin(tile: TileCoord) -> [i64; 2] {
    [tile.x as i64 * EXTENT as i64, tile.y as i64 * EXTENT as i64]
}

fn to_grid(c: Coord<f64>, scale: f64) -> Pt {
    [(c.x + HALF_WORLD) * scale, (HALF_WORLD - c.y) * scale]
}

/// Encodes features' geometry at one zoom; keeps its work buffers between features.
#[derive(Debug, Default)]
pub struct GridEncoder {
    points: Vec<Pt>,
    grid: Vec<[i32; 2]>,
    rings: Vec<Vec<[i32; 2]>>,
    simplifier: Simplifier,
    writer: GeometryWriter,
}

impl GridEncoder {
    /// Appends `geometry`'s MVT commands on zoom `z`'s grid to `out`, simplified by
    /// `tolerance` grid units (0 for none); returns how many bytes were written, 0 when
    /// nothing of the feature is left at this zoom. The rules are those of
    /// [`crate::tiles::LayerRenderer`]: parts whose box is smaller than the tolerance are
    /// dropped, rings are wound as MVT 2.1 asks, parts that collapse on the grid are dropped.
    pub fn encode(
        &mut self,
        geometry: &ProjectedGeometry,
        z: u8,
        tolerance: f64,
        out: &mut Vec<u8>,
    ) -> usize {
        debug_assert!(z <= MAX_GRID_ZOOM);
        let scale = grid_scale(z);
        self.writer.clear();
        match geometry {
            ProjectedGeometry::Points(mp) => {
                self.grid.clear();
                for p in &mp.0 {
                    let g = to_grid(p.0, scale);
                    let q = [g[0].round() as i32, g[1].round() as i32];
                    if !self.grid.contains(&q) {
                        self.grid.push(q);
                    }
                }
                self.writer.points(&self.grid);
            }
            ProjectedGeometry::Lines(ml) => {
                for line in &ml.0 {
                    self.points.clear();
                    self.points
                        .extend(line.0.iter().map(|&c| to_grid(c, scale)));
                    if smaller_than(&self.points, tolerance) {
                        continue;
                    }
                    self.simplifier.line(&mut self.points, tolerance);
                    quantise(&self.points, &mut self.grid);
                    if self.grid.len() >= 2 {
                        self.writer.line(&self.grid);
                    }
                }
            }
            ProjectedGeometry::Polygons(mp) => {
                for polygon in &mp.0 {
                    let mut count = 0;
                    let Some(mut net) =
                        self.ring(polygon.exterior(), scale, tolerance, true, count)
                    else {
                        continue;
                    };
                    count += 1;
                    for hole in polygon.interiors() {
                        if let Some(a) = self.ring(hole, scale, tolerance, false, count) {
                            net += a;
                            count += 1;
                        }
                    }
                    if net <= 0 {
                        continue;
                    }
                    for ring in &self.rings[..count] {
                        self.writer.ring(ring);
                    }
                }
            }
        }
        out.extend_from_slice(self.writer.as_bytes());
        self.writer.as_bytes().len()
    }

    /// One ring on the grid, simplified, rounded and wound for its role, into
    /// `self.rings[slot]`; twice its signed area, `None` when it collapsed.
    fn ring(
        &mut self,
        ring: &LineString<f64>,
        scale: f64,
        tolerance: f64,
        exterior: bool,
        slot: usize,
    ) -> Option<i64> {
        self.points.clear();
        self.points
            .extend(open_ring(&ring.0).iter().map(|&c| to_grid(c, scale)));
        if smaller_than(&self.points, tolerance) {
            return None;
        }
        self.simplifier.ring(&mut self.points, tolerance);
        if self.rings.len() == slot {
            self.rings.push(Vec::new());
        }
        grid_ring(&self.points, &mut self.rings[slot], exterior)
    }
}

/// Reads grid geometry back as parts of tile-local points: each MoveTo starts a part
/// (for points, the whole MoveTo is one part), LineTo extends it.
#[derive(Debug, Default)]
pub struct GridDecoder {
    /// All parts' points, one after another.
    pub points: Vec<Pt>,
    /// Where each part ends in `points`.
    pub ends: Vec<usize>,
}

impl GridDecoder {
    /// Decodes `bytes` (from [`GridEncoder::encode`]) shifted so that `origin` is (0, 0).
    /// Returns false for a malformed stream, which the index never holds.
    pub fn decode(&mut self, bytes: &[u8], kind: GeomType, origin: [i64; 2]) -> bool {
        self.points.clear();
        self.ends.clear();
        let mut at = 0;
        let mut cursor = [-origin[0], -origin[1]];
        while at < bytes.len() {
            let Some(command) = read_varint(bytes, &mut at) else {
                return false;
            };
            let (id, count) = (command & 7, command >> 3);
            match id {
                1 | 2 => {
                    for _ in 0..count {
                        let (Some(dx), Some(dy)) =
                            (read_varint(bytes, &mut at), read_varint(bytes, &mut at))
                        else {
                            return false;
                        };
                        if id == 1 && kind != GeomType::Point && !self.points.is_empty() {
                            self.ends.push(self.points.len());
                        }
                        // Checked: a stream that runs off the integers is malformed (an
                        // index snapshot changed on disk, under a CRC that still holds).
                        let (Some(x), Some(y)) = (
                            cursor[0].checked_add(unzigzag(dx)),
                            cursor[1].checked_add(unzigzag(dy)),
                        ) else {
                            return false;
                        };
                        cursor = [x, y];
                        self.points.push([cursor[0] as f64, cursor[1] as f64]);
                    }
                }
                7 => {}
                _ => return false,
            }
        }
        if !self.points.is_empty() {
            self.ends.push(self.points.len());
        }
        true
    }

    /// The decoded parts in order.
    pub fn parts(&self) -> impl Iterator<Item = &[Pt]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.points[s..e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::quantise::area2;
    use geo::{MultiLineString, MultiPolygon, line_string, polygon};

    fn tile_box(tile: TileCoord, at: [f64; 4]) -> geo::Polygon<f64> {
        // `at` in tile units (x0, y0, x1, y1), y down.
        let b = tile.bounds_3857();
        let u = tile.span_3857() / EXTENT as f64;
        let x = |v: f64| b.min_x + v * u;
        let y = |v: f64| b.max_y - v * u;
        polygon![
            (x: x(at[0]), y: y(at[1])),
            (x: x(at[2]), y: y(at[1])),
            (x: x(at[2]), y: y(at[3])),
            (x: x(at[0]), y: y(at[3])),
        ]
    }

    #[test]
    fn a_square_round_trips_relative_to_its_tile() {
        let tile = TileCoord::new(14, 9330, 4742).unwrap();
        let g = ProjectedGeometry::Polygons(MultiPolygon(vec![tile_box(
            tile,
            [100.0, 200.0, 300.0, 400.0],
        )]));
        let mut out = Vec::new();
        let n = GridEncoder::default().encode(&g, 14, 0.0, &mut out);
        assert_eq!(n, out.len());
        let mut d = GridDecoder::default();
        assert!(d.decode(&out, GeomType::Polygon, tile_origin(tile)));
        let parts: Vec<&[Pt]> = d.parts().collect();
        assert_eq!(parts.len(), 1);
        let ring: Vec<[i32; 2]> = parts[0]
            .iter()
            .map(|p| [p[0] as i32, p[1] as i32])
            .collect();
        // Positive surveyor's area in tile coordinates (y down): exterior.
        assert!(area2(&ring) > 0);
        let mut xs: Vec<i32> = ring.iter().map(|p| p[0]).collect();
        xs.sort();
        xs.dedup();
        assert_eq!(xs, [100, 300]);
    }

    #[test]
    fn lines_are_simplified_once_on_the_grid_and_tiny_parts_dropped() {
        let tile = TileCoord::new(12, 2332, 1185).unwrap();
        let b = tile.bounds_3857();
        let u = tile.span_3857() / EXTENT as f64;
        let wiggly: LineString<f64> = (0..=100)
            .map(|i| Coord {
                x: b.min_x + (10 + i * 10) as f64 * u,
                y: b.max_y - (500.0 + (i % 2) as f64 * 0.3) * u,
            })
            .collect();
        let tiny = line_string![(x: b.min_x + 5.0 * u, y: b.max_y - 5.0 * u), (x: b.min_x + 5.3 * u, y: b.max_y - 5.2 * u)];
        let g = ProjectedGeometry::Lines(MultiLineString(vec![wiggly, tiny]));
        let mut out = Vec::new();
        GridEncoder::default().encode(&g, 12, 1.0, &mut out);
        let mut d = GridDecoder::default();
        assert!(d.decode(&out, GeomType::LineString, tile_origin(tile)));
        let parts: Vec<&[Pt]> = d.parts().collect();
        assert_eq!(parts, [&[[10.0, 500.0], [1010.0, 500.0]][..]]);
    }

    #[test]
    fn a_cut_off_stream_is_refused() {
        let mut d = GridDecoder::default();
        assert!(!d.decode(&[9, 0x80], GeomType::Point, [0, 0]));
        assert!(!d.decode(&[3], GeomType::Point, [0, 0]));
    }
}
