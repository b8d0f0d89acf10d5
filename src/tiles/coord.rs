//! XYZ tile coordinates in the Web Mercator scheme (EPSG:3857, origin at the top left).

use std::fmt;

use crate::tiles::MAX_ZOOM;
use crate::tiles::mercator::{HALF_WORLD, Rect3857};

/// A tile address `z/x/y`, checked to lie inside the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileCoordError {
    #[error("zoom {0} is outside 0..={MAX_ZOOM}")]
    Zoom(u32),
    #[error("{axis} {value} is outside 0..{limit} at zoom {z}")]
    Axis {
        axis: &'static str,
        value: u64,
        limit: u64,
        z: u8,
    },
}

impl TileCoord {
    /// Checks that `x` and `y` exist at zoom `z`.
    ///
    /// # Examples
    /// ```
    /// use urbantile::tiles::TileCoord;
    /// assert!(TileCoord::new(1, 1, 1).is_ok());
    /// assert!(TileCoord::new(1, 2, 0).is_err());
    /// ```
    pub fn new(z: u32, x: u64, y: u64) -> Result<Self, TileCoordError> {
        if z > MAX_ZOOM as u32 {
            return Err(TileCoordError::Zoom(z));
        }
        let z = z as u8;
        let limit = 1u64 << z;
        for (axis, value) in [("x", x), ("y", y)] {
            if value >= limit {
                return Err(TileCoordError::Axis {
                    axis,
                    value,
                    limit,
                    z,
                });
            }
        }
        Ok(Self {
            z,
            x: x as u32,
            y: y as u32,
        })
    }

    /// Width of the tile in Web Mercator metres.
    pub fn span_3857(self) -> f64 {
        2.0 * HALF_WORLD / (1u64 << self.z) as f64
    }

    /// The tile's square in Web Mercator metres.
    pub fn bounds_3857(self) -> Rect3857 {
        let span = self.span_3857();
        let min_x = -HALF_WORLD + self.x as f64 * span;
        let max_y = HALF_WORLD - self.y as f64 * span;
        Rect3857 {
            min_x,
            min_y: max_y - span,
            max_x: min_x + span,
            max_y,
        }
    }

    /// The tiles at zoom `z` that meet `rect` (EPSG:3857), as inclusive x and y ranges.
    pub fn covering(
        rect: Rect3857,
        z: u8,
    ) -> (std::ops::RangeInclusive<u32>, std::ops::RangeInclusive<u32>) {
        let n = 1u64 << z;
        let span = 2.0 * HALF_WORLD / n as f64;
        let clamp = |v: f64| (v.floor().max(0.0) as u64).min(n - 1) as u32;
        let x0 = clamp((rect.min_x + HALF_WORLD) / span);
        let x1 = clamp((rect.max_x + HALF_WORLD) / span);
        let y0 = clamp((HALF_WORLD - rect.max_y) / span);
        let y1 = clamp((HALF_WORLD - rect.min_y) / span);
        (x0..=x1, y0..=y1)
    }
}

impl fmt::Display for TileCoord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::mercator::lon_lat_to_3857;

    #[test]
    fn the_world_tile_spans_the_whole_projection() {
        let b = TileCoord::new(0, 0, 0).unwrap().bounds_3857();
        assert!((b.min_x + HALF_WORLD).abs() < 1e-6 && (b.max_y - HALF_WORLD).abs() < 1e-6);
    }

    #[test]
    fn helsinki_centre_falls_in_its_known_z14_tile() {
        // Senate Square, 24.9525 E 60.1695 N, is in tile 14/9327/4742.
        let p = lon_lat_to_3857(24.9525, 60.1695);
        let (xs, ys) = TileCoord::covering(
            Rect3857 {
                min_x: p.0,
                min_y: p.1,
                max_x: p.0,
                max_y: p.1,
            },
            14,
        );
        assert_eq!((*xs.start(), *ys.start()), (9327, 4742));
    }

    #[test]
    fn coordinates_outside_the_scheme_are_refused() {
        assert_eq!(TileCoord::new(25, 0, 0), Err(TileCoordError::Zoom(25)));
        assert!(TileCoord::new(3, 0, 8).is_err());
        assert!(TileCoord::new(3, 7, 7).is_ok());
    }
}
