//! Plain data shared by every other module: layer ids, geometry kinds, features and their
//! properties, time validity. No I/O happens here.
//!
//! Coordinates in a [`Feature`] are WGS84 longitude/latitude (EPSG:4326, RFC 7946 order).
//! Projection to Web Mercator is the job of [`crate::tiles::mercator`].

pub mod schema;
pub mod tag_filter;
pub mod time;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point inside `g` (on it, for lines), or its centroid where geo cannot find one: geo's
/// interior point goes through its relate graph, which panics on some invalid shapes
/// ("topology position conflict", found by fuzzing OSM relations). Such a panic is caught
/// here, so that one bad shape costs one imprecise point, not an ingest or a request.
pub fn interior_point<G>(g: &G) -> Option<geo::Point<f64>>
where
    G: geo::InteriorPoint<Output = Option<geo::Point<f64>>>
        + geo::Centroid<Output = Option<geo::Point<f64>>>,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.interior_point()))
        .unwrap_or_else(|_| g.centroid())
}

/// Attribute map of a feature, as in a GeoJSON `properties` member.
pub type Properties = serde_json::Map<String, serde_json::Value>;

/// A layer id: the stem of its file in `layers/`, `[a-z0-9_]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LayerId(String);

impl LayerId {
    /// Validates `id` as a layer id.
    ///
    /// # Examples
    /// ```
    /// use urbantile::model::LayerId;
    /// assert!(LayerId::new("bike_lanes").is_ok());
    /// assert!(LayerId::new("Bike-Lanes").is_err());
    /// ```
    pub fn new(id: &str) -> Result<Self, InvalidLayerId> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(InvalidLayerId(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("layer id {0:?} is not allowed: use 1 to 64 of a-z, 0-9 and _")]
pub struct InvalidLayerId(pub String);

/// The one geometry kind a layer holds. Multi-geometries of the same kind are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeometryKind {
    Point,
    Line,
    Polygon,
}

impl GeometryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Point => "point",
            Self::Line => "line",
            Self::Polygon => "polygon",
        }
    }

    /// The kind of a geometry, or `None` for collections and other mixed shapes.
    pub fn of(geometry: &geo::Geometry<f64>) -> Option<Self> {
        use geo::Geometry as G;
        match geometry {
            G::Point(_) | G::MultiPoint(_) => Some(Self::Point),
            G::Line(_) | G::LineString(_) | G::MultiLineString(_) => Some(Self::Line),
            G::Polygon(_) | G::MultiPolygon(_) | G::Rect(_) | G::Triangle(_) => Some(Self::Polygon),
            G::GeometryCollection(_) => None,
        }
    }
}

impl fmt::Display for GeometryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store-assigned feature id, unique within the store. It is the MVT feature id and the
/// OGC API feature id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureId(pub u64);

impl fmt::Display for FeatureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A feature before it is stored: geometry in lon/lat and its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub geometry: geo::Geometry<f64>,
    pub properties: Properties,
}

/// A feature as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeature {
    pub id: FeatureId,
    /// Counts the feature's edits (0 as created); with the id, never reused, it names one
    /// state of one feature, on every server sharing the store: the feature's ETag.
    pub version: u64,
    pub feature: Feature,
}

/// A validity interval in Unix seconds (UTC); an open end is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeRange {
    /// True when the two closed intervals share at least one instant.
    pub fn overlaps(&self, other: &TimeRange) -> bool {
        let starts_before_other_ends = match (self.start, other.end) {
            (Some(s), Some(e)) => s <= e,
            _ => true,
        };
        let ends_after_other_starts = match (self.end, other.start) {
            (Some(e), Some(s)) => e >= s,
            _ => true,
        };
        starts_before_other_ends && ends_after_other_starts
    }
}

/// A bounding box in WGS84 degrees: west, south, east, north.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bbox {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl Bbox {
    pub fn to_array(self) -> [f64; 4] {
        [self.west, self.south, self.east, self.north]
    }

    /// The smallest box holding both.
    pub fn union(self, other: Bbox) -> Bbox {
        Bbox {
            west: self.west.min(other.west),
            south: self.south.min(other.south),
            east: self.east.max(other.east),
            north: self.north.max(other.north),
        }
    }

    pub fn of(geometry: &geo::Geometry<f64>) -> Option<Bbox> {
        use geo::BoundingRect;
        geometry.bounding_rect().map(|r| Bbox {
            west: r.min().x,
            south: r.min().y,
            east: r.max().x,
            north: r.max().y,
        })
    }
}

/// An error and its causes on one line, `what: why: why`, for log lines and internal error
/// details. Error types here say only their own part and leave the cause to `source()`,
/// so that nothing is said twice.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A 64-bit hash of byte strings (FNV-style multiply and rotate, in four independent lanes
/// of eight bytes so that the CPU overlaps them): stable across runs and builds, unlike
/// std's hasher, and fast enough to run on every tile. For ETags, not for security.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let step = |h: u64, w: u64| (h ^ w).wrapping_mul(K).rotate_left(29);
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("eight bytes"));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for bytes in parts {
        h = step(h, bytes.len() as u64);
        let mut lanes = [h, h ^ 1, h ^ 2, h ^ 3];
        let mut blocks = bytes.chunks_exact(32);
        for block in &mut blocks {
            for (lane, c) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                *lane = step(*lane, word(c));
            }
        }
        h = lanes.into_iter().fold(h, step);
        let mut chunks = blocks.remainder().chunks_exact(8);
        for c in &mut chunks {
            h = step(h, word(c));
        }
        for &b in chunks.remainder() {
            h = step(h, b as u64);
        }
    }
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stable_hash_sees_every_byte_and_every_boundary() {
        let base: Vec<u8> = (0..100u8).collect();
        let h = stable_hash(&[&base]);
        for i in 0..base.len() {
            let mut changed = base.clone();
            changed[i] ^= 1;
            assert_ne!(stable_hash(&[&changed]), h, "byte {i}");
        }
        assert_ne!(stable_hash(&[&base[..40], &base[40..]]), h);
        assert_ne!(stable_hash(&[&base[..99]]), h);
    }

    #[test]
    fn time_ranges_with_open_ends_overlap_everything_after_or_before() {
        let open_end = TimeRange {
            start: Some(10),
            end: None,
        };
        assert!(open_end.overlaps(&TimeRange {
            start: Some(100),
            end: Some(200)
        }));
        assert!(!open_end.overlaps(&TimeRange {
            start: Some(0),
            end: Some(5)
        }));
        assert!(open_end.overlaps(&TimeRange {
            start: Some(0),
            end: Some(10)
        }));
    }
}
