//! Moves a freshly built layer's projected geometries into new allocations made one after
//! another, so that they sit together in memory.
//!
//! A build allocates each feature's geometry (one to a few small blocks) while it grows its
//! arrays and frees what the store returned; glibc's malloc carves the small blocks out of
//! the holes these leave all over the heap. Once the temporaries are gone, every page still
//! holding a geometry or two stays resident: on the metropolitan set, pages about five times
//! the geometry's own size. Copying the geometries into one flat buffer, freeing them, and
//! allocating them again in storage order from the free space that this leaves in one piece
//! packs them densely, and the rest can go back to the system (`malloc_trim`). The geometries
//! come back equal, in the same order; the cost is one pass of copies at build time.

use geo::{Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

use crate::tiles::ProjectedGeometry;

const POINTS: u32 = 0;
const LINES: u32 = 1;
const POLYGONS: u32 = 2;

/// Geometries as plain numbers: for each one, its kind and part counts in `counts`, its
/// coordinates in `coords`.
struct Flat {
    counts: Vec<u32>,
    coords: Vec<Coord<f64>>,
}

impl Flat {
    fn ring(&mut self, ring: &[Coord<f64>]) {
        self.counts.push(ring.len() as u32);
        self.coords.extend_from_slice(ring);
    }

    fn push(&mut self, g: &ProjectedGeometry) {
        match g {
            ProjectedGeometry::Points(m) => {
                self.counts.extend([POINTS, m.0.len() as u32]);
                self.coords.extend(m.0.iter().map(|p| p.0));
            }
            ProjectedGeometry::Lines(m) => {
                self.counts.extend([LINES, m.0.len() as u32]);
                for l in &m.0 {
                    self.ring(&l.0);
                }
            }
            ProjectedGeometry::Polygons(m) => {
                self.counts.extend([POLYGONS, m.0.len() as u32]);
                for p in &m.0 {
                    self.counts.push(p.interiors().len() as u32);
                    self.ring(&p.exterior().0);
                    for r in p.interiors() {
                        self.ring(&r.0);
                    }
                }
            }
        }
    }
}

/// Reads a [`Flat`] back, one geometry at a time, each in allocations of exact size.
struct Reader<'a> {
    counts: std::slice::Iter<'a, u32>,
    coords: &'a [Coord<f64>],
}

impl Reader<'_> {
    fn count(&mut self) -> usize {
        *self.counts.next().expect("written by Flat::push") as usize
    }

    fn coords(&mut self, n: usize) -> &[Coord<f64>] {
        let (head, rest) = self.coords.split_at(n);
        self.coords = rest;
        head
    }

    fn ring(&mut self) -> LineString<f64> {
        let n = self.count();
        LineString(self.coords(n).to_vec())
    }

    fn next(&mut self) -> ProjectedGeometry {
        let kind = self.count() as u32;
        let parts = self.count();
        match kind {
            POINTS => ProjectedGeometry::Points(MultiPoint(
                self.coords(parts).iter().map(|&c| Point(c)).collect(),
            )),
            LINES => {
                ProjectedGeometry::Lines(MultiLineString((0..parts).map(|_| self.ring()).collect()))
            }
            _ => ProjectedGeometry::Polygons(MultiPolygon(
                (0..parts)
                    .map(|_| {
                        let holes = self.count();
                        let exterior = self.ring();
                        // The rings were closed when first built; `new` leaves them as they are.
                        Polygon::new(exterior, (0..holes).map(|_| self.ring()).collect())
                    })
                    .collect(),
            )),
        }
    }
}

/// Reallocates the geometries of `items`, in their order (see the module's comment).
pub fn repack<T>(items: &mut [T], geometry: impl Fn(&mut T) -> &mut ProjectedGeometry) {
    // Sized first, so that the buffers are allocated once.
    let (mut counts, mut coords) = (0, 0);
    for item in items.iter_mut() {
        let (parts, points) = match &*geometry(item) {
            ProjectedGeometry::Points(m) => (0, m.0.len()),
            ProjectedGeometry::Lines(m) => (m.0.len(), m.0.iter().map(|l| l.0.len()).sum()),
            ProjectedGeometry::Polygons(m) => m.0.iter().fold((0, 0), |(n, k), p| {
                let rings = 1 + p.interiors().len();
                let points: usize = p.interiors().iter().map(|r| r.0.len()).sum();
                (n + 1 + rings, k + p.exterior().0.len() + points)
            }),
        };
        counts += 2 + parts;
        coords += points;
    }
    let mut flat = Flat {
        counts: Vec::with_capacity(counts),
        coords: Vec::with_capacity(coords),
    };
    for item in items.iter_mut() {
        let empty = ProjectedGeometry::Points(MultiPoint(Vec::new()));
        flat.push(&std::mem::replace(geometry(item), empty));
    }
    let mut reader = Reader {
        counts: flat.counts.iter(),
        coords: &flat.coords,
    };
    for item in items.iter_mut() {
        *geometry(item) = reader.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometries_come_back_equal_and_in_order() {
        let c = |x: f64, y: f64| Coord { x, y };
        let ring = |x: f64| LineString(vec![c(x, 0.), c(x + 1., 0.), c(x + 1., 1.), c(x, 0.)]);
        let mut gs = vec![
            ProjectedGeometry::Points(MultiPoint(vec![Point(c(1., 2.))])),
            ProjectedGeometry::Points(MultiPoint(vec![Point(c(3., 4.)), Point(c(5., 6.))])),
            ProjectedGeometry::Lines(MultiLineString(vec![ring(0.), ring(5.)])),
            ProjectedGeometry::Polygons(MultiPolygon(vec![
                Polygon::new(ring(10.), vec![ring(10.2), ring(10.4)]),
                Polygon::new(ring(20.), vec![]),
            ])),
            ProjectedGeometry::Points(MultiPoint(Vec::new())),
            ProjectedGeometry::Polygons(MultiPolygon(Vec::new())),
        ];
        let want = gs.clone();
        repack(&mut gs, |g| g);
        assert_eq!(gs, want);
    }
}
