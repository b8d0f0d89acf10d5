//! The WebMercatorQuad tile matrix set of the OGC Two-Dimensional Tile Matrix Set standard
//! (OGC 17-083r4, TMS 2.0), computed rather than copied: the tile scheme the server already
//! serves ([`crate::tiles::TileCoord`]: EPSG:3857, 256-pixel tiles, origin at the top left,
//! row 0 at the north), described as the standard describes it, and the limits of a tile set
//! over a box. Pure and synchronous.
//!
//! A tile matrix `z` of WebMercatorQuad is the XYZ zoom `z`: its tile row is XYZ `y` and its
//! tile column XYZ `x`, so `{tileMatrix}/{tileRow}/{tileCol}` is `z/y/x`.

use crate::model::Bbox;
use crate::tiles::mercator::{HALF_WORLD, MAX_LATITUDE, Rect3857, lon_lat_to_3857};
use crate::tiles::{MAX_ZOOM, TileCoord};

/// The identifier used in paths (`/tileMatrixSets/WebMercatorQuad`).
pub const WEB_MERCATOR_QUAD: &str = "WebMercatorQuad";
/// The set's registered URI (OGC Naming Authority).
pub const WEB_MERCATOR_QUAD_URI: &str =
    "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad";
/// EPSG:3857 as an OGC CRS URI.
pub const EPSG_3857: &str = "http://www.opengis.net/def/crs/EPSG/0/3857";
/// Longitude, latitude on WGS 84.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
/// The well-known scale set WebMercatorQuad follows.
pub const GOOGLE_MAPS_COMPATIBLE: &str =
    "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible";
/// Tile width and height in pixels.
pub const TILE_PX: u32 = 256;
/// The standardised rendering pixel, 0.28 mm, that links cell size to scale (OGC 17-083r4).
pub const PIXEL_SIZE_M: f64 = 0.000_28;

/// One tile matrix (zoom) of WebMercatorQuad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileMatrix {
    pub zoom: u8,
    /// Metres of EPSG:3857 per pixel.
    pub cell_size: f64,
    /// `cell_size / 0.28 mm`.
    pub scale_denominator: f64,
    /// Columns and rows (the matrix is square): `2^zoom`.
    pub matrix_size: u64,
    /// The top-left corner of tile (0, 0), EPSG:3857 metres: the same at every zoom.
    pub point_of_origin: [f64; 2],
}

impl TileMatrix {
    /// Tile matrix `zoom`, or `None` past [`MAX_ZOOM`].
    ///
    /// # Examples
    /// ```
    /// use urbantile::tiles::tms::TileMatrix;
    /// let m = TileMatrix::at(0).unwrap();
    /// assert_eq!(m.matrix_size, 1);
    /// assert!((m.cell_size - 156_543.033_928_041).abs() < 1e-6);
    /// assert!(TileMatrix::at(25).is_none());
    /// ```
    pub fn at(zoom: u8) -> Option<TileMatrix> {
        if zoom > MAX_ZOOM {
            return None;
        }
        let matrix_size = 1u64 << zoom;
        let cell_size = 2.0 * HALF_WORLD / (TILE_PX as f64 * matrix_size as f64);
        Some(TileMatrix {
            zoom,
            cell_size,
            scale_denominator: cell_size / PIXEL_SIZE_M,
            matrix_size,
            point_of_origin: [-HALF_WORLD, HALF_WORLD],
        })
    }

    /// Every tile matrix the server serves, 0..=[`MAX_ZOOM`].
    pub fn all() -> impl Iterator<Item = TileMatrix> {
        (0..=MAX_ZOOM).filter_map(TileMatrix::at)
    }
}

/// The tiles of one tile matrix a tile set covers, inclusive (OGC `TileMatrixLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub zoom: u8,
    pub min_row: u32,
    pub max_row: u32,
    pub min_col: u32,
    pub max_col: u32,
}

impl Limits {
    /// The tiles of zoom `zoom` meeting `bounds` (lon/lat, clamped to the Mercator latitudes);
    /// with no bounds, the whole matrix.
    pub fn covering(bounds: Option<Bbox>, zoom: u8) -> Limits {
        let rect = match bounds {
            Some(b) => {
                let clamp = |lat: f64| lat.clamp(-MAX_LATITUDE, MAX_LATITUDE);
                let (min_x, min_y) = lon_lat_to_3857(b.west, clamp(b.south));
                let (max_x, max_y) = lon_lat_to_3857(b.east, clamp(b.north));
                Rect3857 {
                    min_x,
                    min_y,
                    max_x,
                    max_y,
                }
            }
            None => Rect3857 {
                min_x: -HALF_WORLD,
                min_y: -HALF_WORLD,
                max_x: HALF_WORLD,
                max_y: HALF_WORLD,
            },
        };
        let (cols, rows) = TileCoord::covering(rect, zoom);
        Limits {
            zoom,
            min_row: *rows.start(),
            max_row: *rows.end(),
            min_col: *cols.start(),
            max_col: *cols.end(),
        }
    }

    pub fn contains(&self, tile: TileCoord) -> bool {
        tile.z == self.zoom
            && (self.min_row..=self.max_row).contains(&tile.y)
            && (self.min_col..=self.max_col).contains(&tile.x)
    }
}

/// Why a `{tileMatrix}/{tileRow}/{tileCol}` names no tile of WebMercatorQuad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePathError {
    #[error("tileMatrix {0:?} is not one of this tile matrix set's, \"0\" to \"{MAX_ZOOM}\"")]
    Matrix(String),
    #[error("{name} {value:?} is not a whole number")]
    NotNumber { name: &'static str, value: String },
    #[error("{name} {value} is outside 0..={max} in tile matrix {zoom}")]
    Outside {
        name: &'static str,
        value: u64,
        max: u64,
        zoom: u8,
    },
}

/// The tile at `{tileMatrix}/{tileRow}/{tileCol}` (z/y/x). Identifiers are exact: `"07"` is
/// not tile matrix 7, and numbers are ASCII digits only (no sign).
///
/// # Examples
/// ```
/// use urbantile::tiles::tms::tile_at;
/// let t = tile_at("14", "4742", "9327").unwrap();
/// assert_eq!((t.z, t.x, t.y), (14, 9327, 4742));
/// assert!(tile_at("1", "0", "2").is_err());
/// ```
pub fn tile_at(matrix: &str, row: &str, col: &str) -> Result<TileCoord, TilePathError> {
    let canonical = !matrix.is_empty()
        && matrix.len() <= 2
        && matrix.bytes().all(|b| b.is_ascii_digit())
        && (matrix == "0" || !matrix.starts_with('0'));
    let zoom = matrix
        .parse::<u8>()
        .ok()
        .filter(|z| canonical && *z <= MAX_ZOOM)
        .ok_or_else(|| TilePathError::Matrix(matrix.chars().take(40).collect()))?;
    let number = |name: &'static str, v: &str| {
        if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TilePathError::NotNumber {
                name,
                value: v.chars().take(40).collect(),
            });
        }
        v.parse::<u64>().map_err(|_| TilePathError::NotNumber {
            name,
            value: v.into(),
        })
    };
    let (row, col) = (number("tileRow", row)?, number("tileCol", col)?);
    let max = (1u64 << zoom) - 1;
    for (name, value) in [("tileRow", row), ("tileCol", col)] {
        if value > max {
            return Err(TilePathError::Outside {
                name,
                value,
                max,
                zoom,
            });
        }
    }
    TileCoord::new(zoom as u32, col, row).map_err(|_| TilePathError::Matrix(matrix.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_sizes_halve_and_match_the_published_definition() {
        // Zoom 0 as the OGC definition prints it (17-083r4, Annex D); each zoom halves it.
        let (cell0, scale0) = (156_543.033_928_041, 559_082_264.028_717);
        for z in 0..=MAX_ZOOM {
            let m = TileMatrix::at(z).unwrap();
            let k = (1u64 << z) as f64;
            assert!(
                (m.cell_size * k - cell0).abs() / cell0 < 1e-12,
                "z{z}: {}",
                m.cell_size
            );
            assert!(
                (m.scale_denominator * k - scale0).abs() / scale0 < 1e-12,
                "z{z}"
            );
            assert_eq!(m.matrix_size, 1 << z);
            assert_eq!(
                m.point_of_origin,
                [-20_037_508.342_789_244, 20_037_508.342_789_244]
            );
        }
        assert_eq!(TileMatrix::all().count(), MAX_ZOOM as usize + 1);
    }

    #[test]
    fn paths_name_z_y_x_and_refuse_what_is_outside() {
        let t = tile_at("3", "5", "2").unwrap();
        assert_eq!((t.z, t.x, t.y), (3, 2, 5));
        for (m, r, c) in [
            ("25", "0", "0"),
            ("07", "0", "0"),
            ("-1", "0", "0"),
            ("a", "0", "0"),
            ("", "0", "0"),
            ("3", "8", "0"),
            ("3", "0", "8"),
            ("3", "+1", "0"),
            ("3", "0", "1e2"),
            ("3", "99999999999999999999999", "0"),
        ] {
            assert!(tile_at(m, r, c).is_err(), "{m}/{r}/{c}");
        }
    }

    #[test]
    fn limits_cover_a_box_and_the_whole_matrix_without_one() {
        let helsinki = Bbox {
            west: 24.93,
            south: 60.16,
            east: 24.95,
            north: 60.17,
        };
        let l = Limits::covering(Some(helsinki), 14);
        assert!(l.min_col <= l.max_col && l.min_row <= l.max_row);
        // The tile of a point inside the box is inside the limits.
        let n = 16384.0;
        let x = ((24.94 + 180.0) / 360.0 * n) as u32;
        let lat = 60.165f64.to_radians();
        let y =
            ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n) as u32;
        assert!(l.contains(TileCoord::new(14, x as u64, y as u64).unwrap()));
        assert!(!l.contains(TileCoord::new(14, 0, 0).unwrap()));
        let all = Limits::covering(None, 3);
        assert_eq!(
            (all.min_row, all.max_row, all.min_col, all.max_col),
            (0, 7, 0, 7)
        );
    }
}
