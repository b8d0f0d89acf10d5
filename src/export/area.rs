//! What a pack covers: a lon/lat box or a polygon taken from a layer (`--within
//! zoning:123`), and the tiles of a zoom range that meet it. Tests are made in Web Mercator
//! (EPSG:3857), where tiles are squares and where the server cuts features, so a polygon's
//! edges are the straight lines the tiles draw.

use geo::{Intersects, MapCoords};

use crate::model::Bbox;
use crate::tiles::TileCoord;
use crate::tiles::mercator::{MAX_LATITUDE, Rect3857, epsg3857_to_lon_lat, lon_lat_to_3857};

/// The area of a pack.
#[derive(Debug, Clone, PartialEq)]
pub enum Area {
    /// A lon/lat box (west, south, east, north; west below east).
    Bbox(Bbox),
    /// The polygon of a feature, projected (EPSG:3857); only tiles that meet it count.
    Within {
        /// `LAYER:FEATURE_ID`, as given.
        source: String,
        polygon_3857: geo::MultiPolygon<f64>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AreaError {
    #[error("--bbox {0:?}: expected four numbers west,south,east,north")]
    BboxSyntax(String),
    #[error(
        "--bbox {0:?}: expected west < east and south < north, longitudes in -180..180 and latitudes in -85.0511..85.0511"
    )]
    BboxRange(String),
    #[error("--within {0:?}: expected LAYER:FEATURE_ID, e.g. zoning:123")]
    WithinSyntax(String),
}

/// Parses `--bbox w,s,e,n` (degrees).
pub fn parse_bbox(text: &str) -> Result<Bbox, AreaError> {
    let nums: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| AreaError::BboxSyntax(text.into()))?;
    let [west, south, east, north] = nums[..] else {
        return Err(AreaError::BboxSyntax(text.into()));
    };
    let lon = -180.0..=180.0;
    let lat = -MAX_LATITUDE..=MAX_LATITUDE;
    if !(west < east
        && south < north
        && lon.contains(&west)
        && lon.contains(&east)
        && lat.contains(&south)
        && lat.contains(&north))
    {
        return Err(AreaError::BboxRange(text.into()));
    }
    Ok(Bbox {
        west,
        south,
        east,
        north,
    })
}

/// Parses `--within LAYER:FEATURE_ID` into the layer id and the feature id.
pub fn parse_within(text: &str) -> Result<(String, u64), AreaError> {
    let fail = || AreaError::WithinSyntax(text.into());
    let (layer, id) = text.split_once(':').ok_or_else(fail)?;
    let id = id.trim().parse::<u64>().map_err(|_| fail())?;
    if layer.is_empty() {
        return Err(fail());
    }
    Ok((layer.to_owned(), id))
}

impl Area {
    /// The box around the area, EPSG:3857.
    pub fn rect_3857(&self) -> Rect3857 {
        match self {
            Area::Bbox(b) => {
                let (min_x, min_y) = lon_lat_to_3857(b.west, b.south);
                let (max_x, max_y) = lon_lat_to_3857(b.east, b.north);
                Rect3857 {
                    min_x,
                    min_y,
                    max_x,
                    max_y,
                }
            }
            Area::Within { polygon_3857, .. } => {
                use geo::BoundingRect;
                let r = polygon_3857
                    .bounding_rect()
                    .unwrap_or(geo::Rect::new((0.0, 0.0), (0.0, 0.0)));
                Rect3857 {
                    min_x: r.min().x,
                    min_y: r.min().y,
                    max_x: r.max().x,
                    max_y: r.max().y,
                }
            }
        }
    }

    /// The box around the area in lon/lat.
    pub fn bounds(&self) -> Bbox {
        let r = self.rect_3857();
        let (west, south) = epsg3857_to_lon_lat(r.min_x, r.min_y);
        let (east, north) = epsg3857_to_lon_lat(r.max_x, r.max_y);
        Bbox {
            west,
            south,
            east,
            north,
        }
    }

    /// Whether the tile (its square, without buffer) meets the area.
    pub fn meets(&self, tile: TileCoord) -> bool {
        let r = tile.bounds_3857();
        match self {
            Area::Bbox(_) => r.intersects(&self.rect_3857()),
            Area::Within { polygon_3857, .. } => {
                let rect = geo::Rect::new(
                    geo::coord! { x: r.min_x, y: r.min_y },
                    geo::coord! { x: r.max_x, y: r.max_y },
                );
                polygon_3857.intersects(&rect)
            }
        }
    }

    /// The tiles of zoom `z` that meet the area, row by row.
    pub fn tiles_at(&self, z: u8) -> impl Iterator<Item = TileCoord> + '_ {
        let (xs, ys) = TileCoord::covering(self.rect_3857(), z);
        ys.flat_map(move |y| xs.clone().map(move |x| TileCoord { z, x, y }))
            .filter(|t| self.meets(*t))
    }

    /// How many tiles of `zooms` the area's box covers: a bound on the tiles a pack can
    /// hold, known before any is cut.
    pub fn box_tiles(&self, zooms: std::ops::RangeInclusive<u8>) -> u64 {
        zooms
            .map(|z| {
                let (xs, ys) = TileCoord::covering(self.rect_3857(), z);
                (u64::from(*xs.end() - *xs.start()) + 1) * (u64::from(*ys.end() - *ys.start()) + 1)
            })
            .sum()
    }

    /// The area as recorded in a pack's metadata: the box, or the polygon (GeoJSON,
    /// lon/lat) and where it came from.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Area::Bbox(b) => serde_json::json!({ "bbox": b.to_array() }),
            Area::Within {
                source,
                polygon_3857,
            } => {
                let lon_lat = polygon_3857.map_coords(|c| {
                    let (x, y) = epsg3857_to_lon_lat(c.x, c.y);
                    geo::coord! { x: x, y: y }
                });
                let geometry = geojson::Geometry::new(geojson::Value::from(&lon_lat));
                serde_json::json!({ "within": source, "geometry": geometry })
            }
        }
    }

    /// The area a pack's metadata records ([`Area::to_json`]); `None` if it holds none.
    pub fn from_json(v: &serde_json::Value) -> Option<Area> {
        if let Some(b) = v.get("bbox").and_then(|b| b.as_array()) {
            let n: Vec<f64> = b.iter().filter_map(serde_json::Value::as_f64).collect();
            let [west, south, east, north] = n[..] else {
                return None;
            };
            return Some(Area::Bbox(Bbox {
                west,
                south,
                east,
                north,
            }));
        }
        let source = v.get("within")?.as_str()?.to_owned();
        let geometry: geojson::Geometry =
            serde_json::from_value(v.get("geometry")?.clone()).ok()?;
        let lon_lat: geo::Geometry<f64> = geometry.value.try_into().ok()?;
        let polygon = match lon_lat {
            geo::Geometry::Polygon(p) => geo::MultiPolygon(vec![p]),
            geo::Geometry::MultiPolygon(m) => m,
            _ => return None,
        };
        let polygon_3857 = polygon.map_coords(|c| {
            let (x, y) = lon_lat_to_3857(c.x, c.y);
            geo::coord! { x: x, y: y }
        });
        Some(Area::Within {
            source,
            polygon_3857,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bbox_needs_four_ordered_numbers_on_the_earth() {
        assert!(parse_bbox("24.93,60.16,24.96,60.18").is_ok());
        for bad in ["1,2,3", "a,b,c,d", "1,2,3,4,5", ""] {
            assert!(
                matches!(parse_bbox(bad), Err(AreaError::BboxSyntax(_))),
                "{bad}"
            );
        }
        for bad in ["25,60,24,61", "24,61,25,60", "-190,0,0,1", "0,0,1,89"] {
            assert!(
                matches!(parse_bbox(bad), Err(AreaError::BboxRange(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn within_names_a_layer_and_a_numeric_feature() {
        assert_eq!(parse_within("zoning:123"), Ok(("zoning".into(), 123)));
        for bad in ["zoning", "zoning:x", ":5", "zoning:-1"] {
            assert!(parse_within(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_triangle_spares_the_tiles_of_its_box_it_does_not_meet() {
        // A triangle over 4x4 tiles at z16, right angle at the bottom left, whose
        // hypotenuse runs just below the tiles' diagonal: the 6 tiles right of the
        // diagonal are in its box but do not meet it.
        let t = TileCoord {
            z: 16,
            x: 37300,
            y: 18960,
        };
        let r = t.bounds_3857();
        let s = t.span_3857();
        // In tile units, x right and y down: (0.1, 0.3), (0.1, 3.9), (3.7, 3.9).
        let at = |tx: f64, ty: f64| (r.min_x + tx * s, r.max_y - ty * s);
        let triangle = geo::Polygon::new(
            geo::LineString::from(vec![at(0.1, 0.3), at(0.1, 3.9), at(3.7, 3.9), at(0.1, 0.3)]),
            vec![],
        );
        let area = Area::Within {
            source: "t:1".into(),
            polygon_3857: geo::MultiPolygon(vec![triangle]),
        };
        let tiles: Vec<_> = area.tiles_at(16).collect();
        assert_eq!(area.box_tiles(16..=16), 16);
        assert_eq!(tiles.len(), 10);
        assert!(!tiles.contains(&TileCoord {
            z: 16,
            x: t.x + 3,
            y: t.y
        }));
        assert!(tiles.contains(&TileCoord {
            z: 16,
            x: t.x,
            y: t.y + 3
        }));
        // The area survives the trip through a pack's metadata.
        let back = Area::from_json(&area.to_json()).unwrap();
        assert_eq!(back.tiles_at(16).collect::<Vec<_>>(), tiles);
    }
}
