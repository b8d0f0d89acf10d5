//! PMTiles v3 packs. Written with the `pmtiles` crate's stream writer: header, root and
//! leaf directories, tiles added in tile-id order (so the archive is clustered), identical
//! tiles stored once and runs of them as one entry, gzip tiles and gzip directories and
//! metadata. The tiles come gzip-compressed already (by the workers, in parallel), so the
//! writer stores them as they are.

use std::fs::File;
use std::path::Path;

use pmtiles::{Compression, PmTilesStreamWriter, PmTilesWriter, TileType};

use crate::export::{ExportError, PackMeta, Sink};
use crate::tiles::TileCoord;

/// A PMTiles archive being written.
pub struct Writer {
    out: PmTilesStreamWriter<File, pmtiles::CallerKey<u128>>,
}

impl Writer {
    pub fn create(path: &Path) -> Result<Writer, ExportError> {
        let file = File::create(path).map_err(|source| ExportError::Io {
            path: path.to_owned(),
            source,
        })?;
        let out = PmTilesWriter::new(TileType::Mvt)
            .precompressed(Compression::Gzip)
            .internal_compression(Compression::Gzip)
            .dedup_by_key::<u128>()
            .create(file)?;
        Ok(Writer { out })
    }
}

impl Sink for Writer {
    fn add(&mut self, tile: TileCoord, gzip: &[u8], key: u128) -> Result<(), ExportError> {
        let coord = pmtiles::TileCoord::new(tile.z, tile.x, tile.y)?;
        self.out.add_tile(coord, gzip, Some(key))?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, meta: &PackMeta) -> Result<(), ExportError> {
        let b = meta.bounds;
        self.out.set_metadata(meta.tilejson().to_string());
        self.out.set_zoom_range(meta.minzoom, meta.maxzoom);
        self.out.set_bounds(b.west, b.south, b.east, b.north);
        self.out
            .set_center(meta.center.0, meta.center.1, meta.center.2);
        self.out.finalize()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::pmtiles::{Reader, tile_id};
    use crate::export::{PackMeta, Sink};

    #[test]
    fn the_reader_finds_every_tile_the_crate_wrote_through_leaf_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pmtiles");
        let mut tiles: Vec<TileCoord> = (0..160u32)
            .flat_map(|x| (0..160u32).map(move |y| TileCoord { z: 8, x, y }))
            .collect();
        tiles.sort_unstable_by_key(|t| tile_id(*t));
        let mut w: Box<dyn Sink> = Box::new(Writer::create(&path).unwrap());
        // Runs of identical tiles, and contents repeated far apart.
        let content = |i: usize| format!("c{}", (i / 3) % 5000).into_bytes();
        for (i, t) in tiles.iter().enumerate() {
            let c = content(i);
            w.add(*t, &c, crate::export::content_key(&c)).unwrap();
        }
        let meta = PackMeta {
            name: "t".into(),
            description: String::new(),
            minzoom: 8,
            maxzoom: 8,
            bounds: crate::model::Bbox {
                west: -180.0,
                south: -85.0,
                east: 0.0,
                north: 0.0,
            },
            center: (0.0, 0.0, 8),
            vector_layers: vec![],
            urbantile: serde_json::json!({"position": 7}),
        };
        w.finish(&meta).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let r = Reader::new(&bytes).unwrap();
        assert_eq!(r.metadata().unwrap()["urbantile"]["position"], 7);
        for (i, t) in tiles.iter().enumerate() {
            assert_eq!(r.tile(*t).unwrap(), Some(&content(i)[..]), "{t}");
        }
        assert_eq!(r.tile(TileCoord { z: 8, x: 200, y: 3 }).unwrap(), None);
        assert_eq!(r.tile(TileCoord { z: 9, x: 0, y: 0 }).unwrap(), None);
        let entries = r.entries().unwrap();
        let addressed: u64 = entries.iter().map(|e| e.run_length).sum();
        assert_eq!(addressed, tiles.len() as u64);
        assert!(entries.len() < tiles.len(), "runs were not merged");
        // A cut file is an error that says what runs past the end, never a panic.
        for cut in [10, 127, bytes.len() / 2] {
            assert!(Reader::new(&bytes[..cut]).is_err(), "{cut}");
        }
    }
}
