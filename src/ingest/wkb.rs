//! Geometry blobs from files, decoded by geozero within bounds. A WKB blob says how many
//! points, rings or parts follow before they do, and geozero's geo writer reserves that
//! much memory at once: four bytes claiming four billion points would ask for 64 GB. So a
//! first pass walks the blob with [`Bounds`], which refuses any count the remaining bytes
//! could not hold and collections nested past a few levels; only then does geozero build
//! the geometry.

use geozero::error::GeozeroError;
use geozero::{GeomProcessor, GeozeroGeometry, ToGeo};

/// Largest geometry blob, in bytes (a polygon of two million vertices fits).
pub const MAX_GEOMETRY_BYTES: usize = 32 << 20;
/// Deepest nesting of geometry collections.
const MAX_COLLECTION_DEPTH: usize = 4;

/// Checks each count a geometry announces against the bytes of its blob.
struct Bounds {
    bytes: usize,
    depth: usize,
}

impl Bounds {
    /// `size` elements of at least `min` bytes each must fit in the blob.
    fn fits(&self, size: usize, min: usize) -> geozero::error::Result<()> {
        if size.saturating_mul(min) > self.bytes {
            return Err(GeozeroError::Geometry(format!(
                "it announces {size} parts or points, more than its {} bytes can hold",
                self.bytes
            )));
        }
        Ok(())
    }
}

impl GeomProcessor for Bounds {
    fn multipoint_begin(&mut self, size: usize, _idx: usize) -> geozero::error::Result<()> {
        self.fits(size, 16)
    }
    fn linestring_begin(&mut self, _t: bool, size: usize, _i: usize) -> geozero::error::Result<()> {
        self.fits(size, 16)
    }
    fn multilinestring_begin(&mut self, size: usize, _idx: usize) -> geozero::error::Result<()> {
        self.fits(size, 4)
    }
    fn polygon_begin(&mut self, _t: bool, size: usize, _i: usize) -> geozero::error::Result<()> {
        self.fits(size, 4)
    }
    fn multipolygon_begin(&mut self, size: usize, _idx: usize) -> geozero::error::Result<()> {
        self.fits(size, 4)
    }
    fn geometrycollection_begin(&mut self, size: usize, _i: usize) -> geozero::error::Result<()> {
        self.depth += 1;
        if self.depth > MAX_COLLECTION_DEPTH {
            return Err(GeozeroError::Geometry(format!(
                "its geometry collections nest deeper than {MAX_COLLECTION_DEPTH} levels"
            )));
        }
        self.fits(size, 5)
    }
    fn geometrycollection_end(&mut self, _idx: usize) -> geozero::error::Result<()> {
        self.depth -= 1;
        Ok(())
    }
}

/// Decodes a geometry that geozero reads, after [`Bounds`] has walked it.
fn bounded(
    g: &impl GeozeroGeometry,
    bytes: usize,
    what: &str,
) -> Result<geo::Geometry<f64>, String> {
    if bytes > MAX_GEOMETRY_BYTES {
        return Err(format!(
            "is {bytes} bytes, over the limit of {MAX_GEOMETRY_BYTES}"
        ));
    }
    g.process_geom(&mut Bounds { bytes, depth: 0 })
        .map_err(|e| format!("is not a valid {what}: {e}"))?;
    g.to_geo()
        .map_err(|e| format!("is not a valid {what}: {e}"))
}

/// A GeoPackage binary geometry (the `GP` header, then WKB). An empty one is an error.
pub fn gpkg_geometry(blob: &[u8]) -> Result<geo::Geometry<f64>, String> {
    if blob.len() < 8 || &blob[..2] != b"GP" {
        return Err("is not a GeoPackage geometry (no GP header)".into());
    }
    if blob[3] & 0b0001_0000 != 0 {
        return Err("is empty".into());
    }
    bounded(
        &geozero::wkb::GpkgWkb(blob),
        blob.len(),
        "GeoPackage geometry",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GeoPackage point: header (GP, version 0, flags little-endian no envelope, srs
    /// 4326), then WKB point (1, type 1, x, y).
    fn gp(wkb: &[u8]) -> Vec<u8> {
        let mut v = b"GP\x00\x01".to_vec();
        v.extend(4326i32.to_le_bytes());
        v.extend(wkb);
        v
    }

    #[test]
    fn a_point_is_read() {
        let mut wkb = vec![1u8];
        wkb.extend(1u32.to_le_bytes());
        wkb.extend(24.9f64.to_le_bytes());
        wkb.extend(60.1f64.to_le_bytes());
        assert_eq!(
            gpkg_geometry(&gp(&wkb)),
            Ok(geo::Point::new(24.9, 60.1).into())
        );
    }

    #[test]
    fn a_count_larger_than_the_blob_is_refused_before_any_allocation() {
        // A linestring that claims 4 billion points and holds one.
        let mut wkb = vec![1u8];
        wkb.extend(2u32.to_le_bytes());
        wkb.extend(u32::MAX.to_le_bytes());
        wkb.extend([0u8; 16]);
        let e = gpkg_geometry(&gp(&wkb)).unwrap_err();
        assert!(e.contains("more than its"), "{e}");
        // Collections in collections.
        let mut deep = Vec::new();
        for _ in 0..50 {
            deep.push(1u8);
            deep.extend(7u32.to_le_bytes());
            deep.extend(1u32.to_le_bytes());
        }
        let e = gpkg_geometry(&gp(&deep)).unwrap_err();
        assert!(e.contains("nest deeper"), "{e}");
    }

    #[test]
    fn empty_truncated_and_foreign_blobs_are_refused() {
        assert_eq!(
            gpkg_geometry(b"GP\x00\x11\x00\x00\x00\x00"),
            Err("is empty".into())
        );
        assert!(gpkg_geometry(b"XX\x00\x01\x00\x00\x00\x00\x01").is_err());
        let e = gpkg_geometry(&gp(&[1, 1, 0, 0, 0, 1, 2])).unwrap_err();
        assert!(e.starts_with("is not a valid GeoPackage geometry"), "{e}");
    }
}
