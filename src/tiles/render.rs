//! Cutting projected features into one MVT layer of one tile: transform to tile-local units,
//! clip to the tile plus buffer, simplify, quantise to the extent grid, drop parts that
//! collapsed and wind rings as MVT 2.1 asks (exterior rings have positive area in tile
//! coordinates, y down; holes negative).

use geo::{Coord, LineString};

use crate::tiles::clip::{ClipSquare, Pt, clip_line, clip_ring_into};
use crate::tiles::grid::{GridDecoder, tile_origin};
use crate::tiles::mercator::ProjectedGeometry;
use crate::tiles::mvt::{
    EncodedValues, GeomType, GeometryWriter, LayerWriter, Moved, Tag, WriterBuffers,
};
use crate::tiles::quantise::{grid_ring, open_ring, quantise, signed_area2, smaller_than};
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
        out.extend(open_ring(&ring.0).iter().map(|&c| self.local(c)));
        smaller_than(out, self.tolerance)
    }
}

impl Buffers {
    /// Exchanges the layer writer's buffers (a closed layer for another to work in).
    pub fn swap_writer(&mut self, writer: &mut WriterBuffers) {
        std::mem::swap(&mut self.writer, writer);
    }
}

/// Builds one layer of one tile.
pub struct LayerRenderer<'v> {
    frame: Frame,
    layer: LayerWriter<'v>,
    b: Buffers,
    ring_count: usize,
    /// The tile's origin on its zoom's grid, for grid geometry.
    origin: [i64; 2],
}

/// A renderer's work buffers, passed from one renderer to the next (see
/// [`LayerRenderer::with_buffers`]) so that a tile's layers, and a thread's tiles, reuse
/// them instead of growing new ones.
#[derive(Debug, Default)]
pub struct Buffers {
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
    decoded: GridDecoder,
    writer: WriterBuffers,
}

impl<'v> LayerRenderer<'v> {
    /// `keys` are the layer's declared property names and `values` its distinct values,
    /// which feature tags index into.
    pub fn new(
        name: &'v str,
        keys: &'v [String],
        values: &'v EncodedValues,
        tile: TileCoord,
        tolerance_units: f64,
    ) -> Self {
        Self::with_buffers(
            name,
            keys,
            values,
            tile,
            tolerance_units,
            Buffers::default(),
        )
    }

    /// A renderer working in `buffers` (from an earlier [`LayerRenderer::close`]).
    pub fn with_buffers(
        name: &'v str,
        keys: &'v [String],
        values: &'v EncodedValues,
        tile: TileCoord,
        tolerance_units: f64,
        mut buffers: Buffers,
    ) -> Self {
        let writer = std::mem::take(&mut buffers.writer);
        Self {
            frame: Frame::new(tile, tolerance_units),
            layer: LayerWriter::with_buffers(name, keys, values, writer),
            b: buffers,
            ring_count: 0,
            origin: tile_origin(tile),
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
        self.b.geometry.clear();
        let geom_type = match geometry {
            ProjectedGeometry::Points(mp) => {
                self.b.grid.clear();
                for p in &mp.0 {
                    let l = self.frame.local(p.0);
                    if self.frame.clip.contains(l) {
                        let q = [l[0].round() as i32, l[1].round() as i32];
                        if !self.b.grid.contains(&q) {
                            self.b.grid.push(q);
                        }
                    }
                }
                self.b.geometry.points(&self.b.grid);
                GeomType::Point
            }
            ProjectedGeometry::Lines(ml) => {
                for line in &ml.0 {
                    if self.frame.local_ring(line, &mut self.b.local) {
                        continue;
                    }
                    // local_ring drops a closing point; a closed line keeps it.
                    if line.0.len() > 1 && line.0.first() == line.0.last() {
                        self.b.local.push(self.b.local[0]);
                    }
                    self.b.parts.clear();
                    clip_line(&self.b.local, &self.frame.clip, &mut self.b.parts);
                    for part in &mut self.b.parts {
                        self.b.simplifier.line(part, self.frame.tolerance);
                        quantise(part, &mut self.b.grid);
                        if self.b.grid.len() >= 2 {
                            self.b.geometry.line(&self.b.grid);
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
                    for ring in &self.b.rings[..self.ring_count] {
                        self.b.geometry.ring(ring);
                    }
                }
                GeomType::Polygon
            }
        };
        if self.b.geometry.is_empty() {
            return false;
        }
        self.layer
            .add_feature(id, geom_type, &self.b.geometry, tags);
        true
    }

    /// Clips, simplifies and quantises one ring, wound for its role, and queues it in
    /// `self.b.rings`; returns twice its signed area (positive for a shell), or `None` when
    /// nothing of it survives.
    fn ring(&mut self, ring: &LineString<f64>, exterior: bool) -> Option<i64> {
        if self.frame.local_ring(ring, &mut self.b.local) {
            return None;
        }
        self.cut_ring(exterior)
    }

    /// [`LayerRenderer::ring`] for the ring in `self.b.local`, already in tile-local units.
    fn cut_ring(&mut self, exterior: bool) -> Option<i64> {
        clip_ring_into(
            &self.b.local,
            &self.frame.clip,
            &mut self.b.clipped,
            &mut self.b.scratch,
        );
        self.b
            .simplifier
            .ring(&mut self.b.clipped, self.frame.tolerance);
        if self.b.rings.len() == self.ring_count {
            self.b.rings.push(Vec::new());
        }
        let a = grid_ring(
            &self.b.clipped,
            &mut self.b.rings[self.ring_count],
            exterior,
        )?;
        self.ring_count += 1;
        Some(a)
    }

    /// Whether an EPSG:3857 box lies inside the tile plus buffer with room for rounding,
    /// so that grid geometry within it needs no clipping.
    pub fn holds(&self, min: [f64; 2], max: [f64; 2]) -> bool {
        let lo = self.frame.local(Coord {
            x: min[0],
            y: max[1],
        });
        let hi = self.frame.local(Coord {
            x: max[0],
            y: min[1],
        });
        let (a, b) = (self.frame.clip.min + 0.51, self.frame.clip.max - 0.51);
        lo[0] >= a && lo[1] >= a && hi[0] <= b && hi[1] <= b
    }

    /// Adds a feature from its grid geometry at this tile's zoom (see
    /// [`crate::tiles::grid`]); `inside` says it lies wholly within the tile plus buffer
    /// ([`LayerRenderer::holds`]), so that its commands are copied rather than clipped.
    /// Returns false, writing nothing, when nothing of it is left in the tile.
    pub fn add_grid(
        &mut self,
        id: u64,
        kind: GeomType,
        bytes: &[u8],
        inside: bool,
        tags: &[Tag],
    ) -> bool {
        if inside {
            let Some(moved) = Moved::new(bytes, self.origin) else {
                return false;
            };
            self.layer
                .add_feature_split(id, kind, moved.head(), moved.rest, tags);
            return true;
        }
        self.b.geometry.clear();
        let mut decoded = std::mem::take(&mut self.b.decoded);
        if decoded.decode(bytes, kind, self.origin) {
            self.clip_decoded(kind, &decoded);
        }
        self.b.decoded = decoded;
        if self.b.geometry.is_empty() {
            return false;
        }
        self.layer.add_feature(id, kind, &self.b.geometry, tags);
        true
    }

    /// Clips decoded grid geometry (already simplified and on this tile's grid) to the tile
    /// plus buffer into `self.b.geometry`.
    fn clip_decoded(&mut self, kind: GeomType, decoded: &GridDecoder) {
        match kind {
            GeomType::Point => {
                self.b.grid.clear();
                for part in decoded.parts() {
                    for &p in part {
                        if self.frame.clip.contains(p) {
                            self.b.grid.push([p[0] as i32, p[1] as i32]);
                        }
                    }
                }
                self.b.geometry.points(&self.b.grid);
            }
            GeomType::LineString => {
                for line in decoded.parts() {
                    self.b.parts.clear();
                    clip_line(line, &self.frame.clip, &mut self.b.parts);
                    for part in &self.b.parts {
                        quantise(part, &mut self.b.grid);
                        if self.b.grid.len() >= 2 {
                            self.b.geometry.line(&self.b.grid);
                        }
                    }
                }
            }
            GeomType::Polygon => {
                // Rings come as written: each exterior (positive area) then its holes.
                let mut parts = decoded.parts().peekable();
                while let Some(shell) = parts.next() {
                    self.ring_count = 0;
                    self.b.local.clear();
                    self.b.local.extend_from_slice(shell);
                    let mut net = self.cut_ring(true);
                    while let Some(hole) = parts.next_if(|r| signed_area2(r) < 0.0) {
                        if net.is_some() {
                            self.b.local.clear();
                            self.b.local.extend_from_slice(hole);
                            let a = self.cut_ring(false).unwrap_or(0);
                            net = net.map(|n| n + a);
                        }
                    }
                    if net.is_none_or(|n| n <= 0) {
                        continue;
                    }
                    for ring in &self.b.rings[..self.ring_count] {
                        self.b.geometry.ring(ring);
                    }
                }
            }
        }
    }

    /// Finishes the layer in `b.writer` without copying it (see [`LayerWriter::close`]).
    pub fn close(self) -> Buffers {
        let mut b = self.b;
        b.writer = self.layer.close(EXTENT);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::quantise::area2;
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
        let values = EncodedValues::default();
        let mut r = LayerRenderer::new("t", &keys, &values, tile, 1.0);
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
        let values = EncodedValues::default();
        let mut r = LayerRenderer::new("t", &keys, &values, tile, 1.0);
        assert!(r.add(7, &f, &[]));
        assert_eq!(area2(&r.b.rings[0]), 2 * 2048 * 2048);
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
        let values = EncodedValues::default();
        let mut r = LayerRenderer::new("t", &keys, &values, tile, 1.0);
        assert!(!r.add(7, &f, &[]));
    }

    #[test]
    fn tiles_from_maxzoom_on_are_not_simplified() {
        assert_eq!(tolerance_units(14, 16), 1.0);
        assert_eq!(tolerance_units(16, 16), 0.0);
        assert_eq!(tolerance_units(18, 16), 0.0);
    }
}
