//! Spherical Web Mercator (EPSG:3857) maths and the projected form of features that tiles are
//! cut from. Units are metres on the projection plane; latitudes are clamped to the
//! projection's limit of about 85.0511 degrees.

use geo::{Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Polygon};

/// Earth radius used by EPSG:3857, metres.
pub const EARTH_RADIUS: f64 = 6_378_137.0;
/// Half the width of the projected world, metres.
pub const HALF_WORLD: f64 = std::f64::consts::PI * EARTH_RADIUS;
/// Latitude where the square Web Mercator world ends.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// An axis-aligned rectangle in EPSG:3857 metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect3857 {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Rect3857 {
    pub fn expand(self, by: f64) -> Rect3857 {
        Rect3857 {
            min_x: self.min_x - by,
            min_y: self.min_y - by,
            max_x: self.max_x + by,
            max_y: self.max_y + by,
        }
    }

    pub fn intersects(&self, other: &Rect3857) -> bool {
        self.min_x <= other.max_x
            && other.min_x <= self.max_x
            && self.min_y <= other.max_y
            && other.min_y <= self.max_y
    }
}

/// Projects WGS84 degrees to EPSG:3857 metres.
///
/// # Examples
/// ```
/// use urbantile::tiles::mercator::lon_lat_to_3857;
/// let (x, y) = lon_lat_to_3857(0.0, 0.0);
/// assert!(x.abs() < 1e-9 && y.abs() < 1e-9);
/// ```
pub fn lon_lat_to_3857(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE);
    let x = lon.to_radians() * EARTH_RADIUS;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * EARTH_RADIUS;
    (x, y)
}

/// Inverse of [`lon_lat_to_3857`].
pub fn epsg3857_to_lon_lat(x: f64, y: f64) -> (f64, f64) {
    let lon = (x / EARTH_RADIUS).to_degrees();
    let lat = (2.0 * (y / EARTH_RADIUS).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// A feature's geometry projected to EPSG:3857 and normalised to one multi-type per kind,
/// the form tiles are cut from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectedGeometry {
    Points(MultiPoint<f64>),
    Lines(MultiLineString<f64>),
    Polygons(MultiPolygon<f64>),
}

impl ProjectedGeometry {
    /// Projects a lon/lat geometry. Collections are flattened when all their members are of
    /// one kind; `None` for mixed collections.
    pub fn from_lon_lat(geometry: &geo::Geometry<f64>) -> Option<ProjectedGeometry> {
        use geo::Geometry as G;
        let p = |c: &Coord<f64>| {
            let (x, y) = lon_lat_to_3857(c.x, c.y);
            Coord { x, y }
        };
        let line = |l: &LineString<f64>| LineString(l.0.iter().map(p).collect());
        let poly = |pg: &Polygon<f64>| {
            Polygon::new(
                line(pg.exterior()),
                pg.interiors().iter().map(line).collect(),
            )
        };
        Some(match geometry {
            G::Point(pt) => Self::Points(MultiPoint(vec![p(&pt.0).into()])),
            G::MultiPoint(mp) => {
                Self::Points(MultiPoint(mp.0.iter().map(|pt| p(&pt.0).into()).collect()))
            }
            G::Line(l) => Self::Lines(MultiLineString(vec![LineString(vec![
                p(&l.start),
                p(&l.end),
            ])])),
            G::LineString(l) => Self::Lines(MultiLineString(vec![line(l)])),
            G::MultiLineString(ml) => Self::Lines(MultiLineString(ml.0.iter().map(line).collect())),
            G::Polygon(pg) => Self::Polygons(MultiPolygon(vec![poly(pg)])),
            G::MultiPolygon(mp) => Self::Polygons(MultiPolygon(mp.0.iter().map(poly).collect())),
            G::Rect(r) => Self::Polygons(MultiPolygon(vec![poly(&r.to_polygon())])),
            G::Triangle(t) => Self::Polygons(MultiPolygon(vec![poly(&t.to_polygon())])),
            G::GeometryCollection(gc) => {
                let parts: Vec<ProjectedGeometry> =
                    gc.0.iter().map(Self::from_lon_lat).collect::<Option<_>>()?;
                let mut it = parts.into_iter();
                let mut acc = it.next()?;
                for part in it {
                    match (&mut acc, part) {
                        (Self::Points(a), Self::Points(b)) => a.0.extend(b.0),
                        (Self::Lines(a), Self::Lines(b)) => a.0.extend(b.0),
                        (Self::Polygons(a), Self::Polygons(b)) => a.0.extend(b.0),
                        _ => return None,
                    }
                }
                acc
            }
        })
    }

    /// The MVT geometry type tiles write it as.
    pub fn mvt_type(&self) -> crate::tiles::mvt::GeomType {
        use crate::tiles::mvt::GeomType;
        match self {
            Self::Points(_) => GeomType::Point,
            Self::Lines(_) => GeomType::LineString,
            Self::Polygons(_) => GeomType::Polygon,
        }
    }

    /// Bounding rectangle in EPSG:3857, `None` when empty.
    ///
    /// Polygons count their holes too: geo's bounding box reads exteriors only, which is
    /// the same for a valid polygon, but a hole that strays outside its shell (in data
    /// that skipped validation) would then lie outside the box that decides whether a
    /// feature is copied into a tile unclipped, and reach past the tile's buffer.
    pub fn bounds(&self) -> Option<Rect3857> {
        use geo::{BoundingRect, CoordsIter};
        let r = match self {
            Self::Points(g) => g.bounding_rect(),
            Self::Lines(g) => g.bounding_rect(),
            Self::Polygons(g) => g.coords_iter().fold(None, |r: Option<geo::Rect<f64>>, c| {
                Some(r.map_or(geo::Rect::new(c, c), |r| {
                    geo::Rect::new(
                        geo::Coord {
                            x: r.min().x.min(c.x),
                            y: r.min().y.min(c.y),
                        },
                        geo::Coord {
                            x: r.max().x.max(c.x),
                            y: r.max().y.max(c.y),
                        },
                    )
                }))
            }),
        }?;
        Some(Rect3857 {
            min_x: r.min().x,
            min_y: r.min().y,
            max_x: r.max().x,
            max_y: r.max().y,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygons_bounds_hold_a_hole_outside_its_shell() {
        let shell = geo::LineString::from(vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 0.0)]);
        let stray = geo::LineString::from(vec![(5.0, 5.0), (40.0, -20.0), (6.0, 6.0), (5.0, 5.0)]);
        let g = ProjectedGeometry::Polygons(geo::MultiPolygon(vec![geo::Polygon::new(
            shell,
            vec![stray],
        )]));
        let b = g.bounds().unwrap();
        assert_eq!(
            (b.min_x, b.min_y, b.max_x, b.max_y),
            (0.0, -20.0, 40.0, 10.0)
        );
    }

    #[test]
    fn projection_round_trips_within_a_nanodegree() {
        for (lon, lat) in [(24.94, 60.17), (-122.4, 37.8), (179.9, -84.0)] {
            let (x, y) = lon_lat_to_3857(lon, lat);
            let (lon2, lat2) = epsg3857_to_lon_lat(x, y);
            assert!((lon - lon2).abs() < 1e-9 && (lat - lat2).abs() < 1e-9);
        }
    }

    #[test]
    fn the_edge_of_the_world_is_half_the_circumference() {
        let (x, y) = lon_lat_to_3857(180.0, MAX_LATITUDE);
        assert!((x - HALF_WORLD).abs() < 1e-6);
        assert!((y - HALF_WORLD).abs() < 1e-3);
    }
}
