//! Cutting projected features into one MVT layer of one tile: transform to tile-local units,
//! clip to the tile plus buffer, simplify, quantise to the extent grid, drop parts that
//! collapsed and wind rings as MVT 2.1 asks (exterior rings have positive area in tile
//! coordinates, y down; holes negative).

use geo::{Coord, LineString};

use crate::tiles::clip::{ClipSquare, Pt, clip_line, clip_ring_into};
use crate::tiles::mercator::ProjectedGeometry;
use crate::tiles::mvt::{GeomType, GeometryWriter, LayerWriter, Tag, Value};
use crate::tiles::simplify::Simplifier;
use crate::tiles::{BUFFER_UNITS, EXTENT, TileCoord};

/// Simplification tolerance for a tile at `z` of a layer whose data ends at `maxzoom`, in
/// extent units: one unit (the tile's grid) below maxzoom; none from maxzoom on, where the
/// grid is as fine as the data is meant to be shown, and deeper (overzoomed) tiles scale up
/// the maxzoom data rather than invent detail.
pub fn tolerance_units(z: u8, maxzoom: u8) -> f64 {
    if z >= maxzoom { 0.0 } else { 1.0 }
}

/// Tile-local frame: EPSG:3857 metres to extent units, y pointing down.
#[derive(Debug, Clone, Copy)]
struct Frame {
    min_x: f64,
    max_y: f64,
    scale: f64,
    clip: ClipSquare,
    tolerance: f64,
}

impl Frame {
    fn new(tile: TileCoord, tolerance: f64) -> Self {
        let b = tile.bounds_3857();
        let buffer = BUFFER_UNITS as f64;
        Self {
            min_x: b.min_x,
            max_y: b.max_y,
            scale: EXTENT as f64 / tile.span_3857(),
            clip: ClipSquare {
                min: -buffer,
                max: EXTENT as f64 + buffer,
            },
            tolerance,
        }
    }

    fn local(&self, c: Coord<f64>) -> Pt {
        [
            (c.x - self.min_x) * self.scale,
            (self.max_y - c.y) * self.scale,
        ]
    }

    /// The ring in local units without its closing point, and whether its bounding box is
    /// smaller than the tolerance on both axes (it would collapse).
    fn local_ring(&self, ring: &LineString<f64>, out: &mut Vec<Pt>) -> bool {
        out.clear();
        let coords = &ring.0;
        let n = if coords.len() > 1 && coords.first() == coords.last() {
            coords.len() - 1
        } else {
            coords.len()
        };
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for c in &coords[..n] {
            let p = self.local(*c);
            lo = [lo[0].min(p[0]), lo[1].min(p[1])];
            hi = [hi[0].max(p[0]), hi[1].max(p[1])];
            out.push(p);
        }
        hi[0] - lo[0] < self.tolerance && hi[1] - lo[1] < self.tolerance
    }
}

/// Rounds to the grid and drops consecutive repeats.
fn quantise(points: &[Pt], out: &mut Vec<[i32; 2]>) {
    out.clear();
    for p in points {
        let q = [p[0].round() as i32, p[1].round() as i32];
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
}

/// Twice the signed area by the surveyor's formula, in tile coordinates.
fn area2(ring: &[[i32; 2]]) -> i64 {
    let n = ring.len();
    let mut sum = 0i64;
    for i in 0..n {
        let a = ring[i];
        let b = ring[(i + 1) % n];
        sum += a[0] as i64 * b[1] as i64 - b[0] as i64 * a[1] as i64;
    }
    sum
}

/// Builds one layer of one tile.
pub struct LayerRenderer<'v> {
    frame: Frame,
    layer: LayerWriter<'v>,
    geometry: GeometryWriter,
    local: Vec<Pt>,
    parts: Vec<Vec<Pt>>,
    grid: Vec<[i32; 2]>,
    clipped: Vec<Pt>,
    scratch: Vec<Pt>,
    simplifier: Simplifier,
    /// Quantised rings of the polygon being cut (the first `ring_count`), written once the
    /// polygon is known to have area; the vectors are reused from polygon to polygon.
    rings: Vec<Vec<[i32; 2]>>,
    ring_count: usize,
}

impl<'v> LayerRenderer<'v> {
    /// `keys` are the layer's declared property names and `values` its distinct values,
    /// which feature tags index into.
    pub fn new(
        name: &'v str,
        keys: &'v [String],
        values: &'v [Value],
        tile: TileCoord,
        tolerance_units: f64,
    ) -> Self {
        Self {
            frame: Frame::new(tile, tolerance_units),
            layer: LayerWriter::new(name, keys, values),
            geometry: GeometryWriter::default(),
            local: Vec::new(),
            parts: Vec::new(),
            grid: Vec::new(),
            clipped: Vec::new(),
            scratch: Vec::new(),
            simplifier: Simplifier::default(),
            rings: Vec::new(),
            ring_count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.layer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layer.is_empty()
    }

    /// Adds the feature's part inside the tile plus buffer; returns false (and writes
    /// nothing) when nothing of it is left there after clipping and quantisation.
    /// `tags` pairs declared-key indexes with indexes into the layer's values.
    pub fn add(&mut self, id: u64, geometry: &ProjectedGeometry, tags: &[Tag]) -> bool {
        self.geometry.clear();
        let geom_type = match geometry {
            ProjectedGeometry::Points(mp) => {
                self.grid.clear();
                for p in &mp.0 {
                    let l = self.frame.local(p.0);
                    if self.frame.clip.contains(l) {
                        let q = [l[0].round() as i32, l[1].round() as i32];
                        if !self.grid.contains(&q) {
                            self.grid.push(q);
                        }
                    }
                }
                self.geometry.points(&self.grid);
                GeomType::Point
            }
            ProjectedGeometry::Lines(ml) => {
                for line in &ml.0 {
                    if self.frame.local_ring(line, &mut self.local) {
                        continue;
                    }
                    // local_ring drops a closing point; a closed line keeps it.
                    if line.0.len() > 1 && line.0.first() == line.0.last() {
                        self.local.push(self.local[0]);
                    }
                    self.parts.clear();
                    clip_line(&self.local, &self.frame.clip, &mut self.parts);
                    for part in &mut self.parts {
                        self.simplifier.line(part, self.frame.tolerance);
                        quantise(part, &mut self.grid);
                        if self.grid.len() >= 2 {
                            self.geometry.line(&self.grid);
                        }
                    }
                }
                GeomType::LineString
            }
            ProjectedGeometry::Polygons(mp) => {
                for polygon in &mp.0 {
                    self.ring_count = 0;
                    let Some(mut net) = self.ring(polygon.exterior(), true) else {
                        continue;
                    };
                    for hole in polygon.interiors() {
                        net += self.ring(hole, false).unwrap_or(0);
                    }
                    // A tile that lies inside a hole clips shell and hole to the same
                    // square: nothing of the polygon is left to draw.
                    if net <= 0 {
                        continue;
                    }
                    for ring in &self.rings[..self.ring_count] {
                        self.geometry.ring(ring);
                    }
                }
                GeomType::Polygon
            }
        };
        if self.geometry.is_empty() {
            return false;
        }
        self.layer.add_feature(id, geom_type, &self.geometry, tags);
        true
    }

    /// Clips, simplifies and quantises one ring, wound for its role, and queues it in
    /// `self.rings`; returns twice its signed area (positive for a shell), or `None` when
    /// nothing of it survives.
    fn ring(&mut self, ring: &LineString<f64>, exterior: bool) -> Option<i64> {
        if self.frame.local_ring(ring, &mut self.local) {
            return None;
        }
        clip_ring_into(
            &self.local,
            &self.frame.clip,
            &mut self.clipped,
            &mut self.scratch,
        );
        self.simplifier
            .ring(&mut self.clipped, self.frame.tolerance);
        if self.rings.len() == self.ring_count {
            self.rings.push(Vec::new());
        }
        let grid = &mut self.rings[self.ring_count];
        quantise(&self.clipped, grid);
        while grid.len() > 1 && grid.first() == grid.last() {
            grid.pop();
        }
        if grid.len() < 3 {
            return None;
        }
        let mut a = area2(grid);
        if a == 0 {
            return None;
        }
        if (a > 0) != exterior {
            grid.reverse();
            a = -a;
        }
        self.ring_count += 1;
        Some(a)
    }

    /// Appends the layer to `tile`; nothing when no feature was added.
    pub fn finish(self, tile: &mut Vec<u8>) {
        self.layer.finish(tile, EXTENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{MultiPolygon, Polygon, polygon};

    fn tile_square(tile: TileCoord, inset: f64) -> Polygon<f64> {
        let b = tile.bounds_3857();
        polygon![
            (x: b.min_x + inset, y: b.min_y + inset),
            (x: b.max_x - inset, y: b.min_y + inset),
            (x: b.max_x - inset, y: b.max_y - inset),
            (x: b.min_x + inset, y: b.max_y - inset),
        ]
    }

    #[test]
    fn a_polygon_smaller_than_a_grid_cell_is_dropped() {
        let tile = TileCoord::new(10, 500, 300).unwrap();
        let span = tile.span_3857();
        let tiny = tile_square(tile, span * 0.49999);
        let f = ProjectedGeometry::Polygons(MultiPolygon(vec![tiny]));
        let keys = vec![];
        let mut r = LayerRenderer::new("t", &keys, &[], tile, 1.0);
        assert!(!r.add(7, &f, &[]));
        assert!(r.is_empty());
    }

    #[test]
    fn a_counter_clockwise_map_polygon_becomes_a_positive_tile_ring() {
        // In map space (y up) the square is counter-clockwise; after the y flip it must be
        // written with positive surveyor's area.
        let tile = TileCoord::new(12, 2000, 1000).unwrap();
        let sq = tile_square(tile, tile.span_3857() / 4.0);
        let f = ProjectedGeometry::Polygons(MultiPolygon(vec![sq]));
        let keys = vec![];
        let mut r = LayerRenderer::new("t", &keys, &[], tile, 1.0);
        assert!(r.add(7, &f, &[]));
        assert_eq!(area2(&r.rings[0]), 2 * 2048 * 2048);
    }

    #[test]
    fn a_tile_inside_a_hole_gets_nothing_of_the_polygon() {
        let tile = TileCoord::new(12, 2000, 1000).unwrap();
        let span = tile.span_3857();
        let shell = tile_square(tile, -span);
        let hole = tile_square(tile, -span / 2.0);
        let donut = Polygon::new(shell.exterior().clone(), vec![hole.exterior().clone()]);
        let f = ProjectedGeometry::Polygons(MultiPolygon(vec![donut]));
        let keys = vec![];
        let mut r = LayerRenderer::new("t", &keys, &[], tile, 1.0);
        assert!(!r.add(7, &f, &[]));
    }

    #[test]
    fn tiles_from_maxzoom_on_are_not_simplified() {
        assert_eq!(tolerance_units(14, 16), 1.0);
        assert_eq!(tolerance_units(16, 16), 0.0);
        assert_eq!(tolerance_units(18, 16), 0.0);
    }
}
