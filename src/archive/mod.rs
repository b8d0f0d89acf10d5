//! Tile archives served as layers: a layer file with `[archive] path = "basemap.pmtiles"`
//! (or `.mbtiles`, see [`crate::config::archive`]) is opened once at start and its tiles are
//! answered as they are stored, never cut. This module owns opening and checking an
//! archive, what it says of itself (tile format, zooms, bounds, centre, `vector_layers`),
//! and finding one tile's bytes; HTTP is left to [`crate::api::tiles`].
//!
//! - A PMTiles archive is memory-mapped. Its directories (root and leaves) are read and
//!   checked at start into one sorted list of entries, so that a truncated or corrupt
//!   archive is an error at start that names the file, and a tile is a binary search and a
//!   slice of the map: a [`Bytes`] that shares the map, with no copy per request.
//! - An MBTiles archive is an SQLite database, whose pages are not tiles: serving from it
//!   would copy each tile out of SQLite per request, through an async driver. It is read
//!   once at start instead, every distinct tile into one buffer (identical tiles stored
//!   once, as an MBTiles `images` table stores them), and then served like a PMTiles one,
//!   by slices of that buffer. It costs memory the size of its distinct tiles; a large
//!   archive is better converted to PMTiles (`pmtiles convert`), which stays on disk.
//!
//! Both readers live here ([`pmtiles`], [`mbtiles`]); `export` writes packs and reads them
//! back through them.

pub mod mbtiles;
pub mod pmtiles;

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::Value;

use self::pmtiles::Entry;
use crate::config::{ArchiveDef, ArchiveKind};
use crate::model::{Bbox, LayerId};
use crate::tiles::TileCoord;
use crate::tiles::compress::Encoding;

/// What an archive's tiles are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileFormat {
    Mvt,
    Png,
    Jpeg,
    Webp,
}

impl TileFormat {
    /// The extension of the tile URLs: `/tiles/{id}/{z}/{x}/{y}.{extension}`.
    pub fn extension(self) -> &'static str {
        match self {
            TileFormat::Mvt => "mvt",
            TileFormat::Png => "png",
            TileFormat::Jpeg => "jpg",
            TileFormat::Webp => "webp",
        }
    }

    /// True when `ext` names this format (`.pbf` is an old name of `.mvt`, `.jpeg` of `.jpg`).
    pub fn has_extension(self, ext: &str) -> bool {
        ext == self.extension()
            || matches!(
                (self, ext),
                (TileFormat::Mvt, "pbf") | (TileFormat::Jpeg, "jpeg")
            )
    }

    pub fn content_type(self) -> &'static str {
        match self {
            TileFormat::Mvt => "application/vnd.mapbox-vector-tile",
            TileFormat::Png => "image/png",
            TileFormat::Jpeg => "image/jpeg",
            TileFormat::Webp => "image/webp",
        }
    }

    pub fn is_vector(self) -> bool {
        self == TileFormat::Mvt
    }

    /// The PMTiles v3 header's tile type code.
    fn of_pmtiles(code: u8) -> Option<TileFormat> {
        Some(match code {
            1 => TileFormat::Mvt,
            2 => TileFormat::Png,
            3 => TileFormat::Jpeg,
            4 => TileFormat::Webp,
            _ => return None,
        })
    }

    /// The MBTiles 1.3 `format` metadata value.
    fn of_mbtiles(format: &str) -> Option<TileFormat> {
        Some(match format {
            "pbf" | "mvt" => TileFormat::Mvt,
            "png" => TileFormat::Png,
            "jpg" | "jpeg" => TileFormat::Jpeg,
            "webp" => TileFormat::Webp,
            _ => return None,
        })
    }
}

/// Why an archive layer cannot be served. Each names the layer and the file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("layer {layer}: cannot open the archive {path}")]
    Open {
        layer: LayerId,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("layer {layer}: the archive {path} is unusable: {reason}")]
    Invalid {
        layer: LayerId,
        path: PathBuf,
        reason: String,
    },
}

/// One tile of an archive, as stored.
#[derive(Debug, Clone)]
pub struct ArchiveTile {
    /// A slice of the archive's map (or buffer): no copy.
    pub bytes: Bytes,
    /// How `bytes` are compressed: gzip or zstd for a compressed vector tile, else identity.
    pub encoding: Encoding,
    /// Quoted; the same for the same bytes of the same archive file.
    pub etag: String,
}

/// An open archive layer.
pub struct Archive {
    def: ArchiveDef,
    format: TileFormat,
    minzoom: u8,
    maxzoom: u8,
    bounds: Bbox,
    /// Longitude, latitude, zoom.
    center: (f64, f64, u8),
    /// TileJSON `vector_layers` (vector archives), as the archive's metadata has them.
    vector_layers: Vec<Value>,
    /// The layer file's attribution, else the archive's.
    attribution: Option<String>,
    /// The whole memory map (PMTiles) or the buffer of distinct tiles (MBTiles).
    data: Bytes,
    /// Sorted by tile id, runs not overlapping; offsets are into `data`.
    entries: Vec<Entry>,
    /// Stands for this file (size, modification time, first bytes) in ETags.
    tag: u64,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("id", &self.def.id)
            .field("path", &self.def.path)
            .field("format", &self.format)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Archive {
    /// Opens and checks the archive of `def`: a PMTiles one is mapped and its directories
    /// read, an MBTiles one read into memory (see the module's documentation).
    pub async fn open(def: ArchiveDef) -> Result<Archive, ArchiveError> {
        let invalid = |reason: String| ArchiveError::Invalid {
            layer: def.id.clone(),
            path: def.path.clone(),
            reason,
        };
        let meta = std::fs::metadata(&def.path).map_err(|source| ArchiveError::Open {
            layer: def.id.clone(),
            path: def.path.clone(),
            source,
        })?;
        let opened = match def.kind {
            ArchiveKind::PmTiles => open_pmtiles(&def).map_err(invalid)?,
            // Each of its errors says its cause in its own text.
            ArchiveKind::MbTiles => mbtiles::load(&def.path)
                .await
                .map_err(|e| invalid(e.to_string()))?,
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        let head = &opened.data[..opened.data.len().min(16 << 10)];
        let tag = crate::model::stable_hash(&[
            &meta.len().to_le_bytes()[..],
            &mtime.to_le_bytes()[..],
            head,
        ]);
        let attribution = def.attribution.clone().or(opened.attribution);
        let archive = Archive {
            format: opened.format,
            minzoom: opened.minzoom,
            maxzoom: opened.maxzoom,
            bounds: opened.bounds,
            center: opened.center,
            vector_layers: opened.vector_layers,
            attribution,
            data: opened.data,
            entries: opened.entries,
            tag,
            def,
        };
        archive
            .check_entries()
            .map_err(|reason| ArchiveError::Invalid {
                layer: archive.def.id.clone(),
                path: archive.def.path.clone(),
                reason,
            })?;
        Ok(archive)
    }

    /// Every entry runs forward, without overlap, and inside the data: a damaged directory
    /// is found at start rather than on the first request that reaches it.
    fn check_entries(&self) -> Result<(), String> {
        let len = self.data.len() as u64;
        let mut next_id = 0u64;
        for e in &self.entries {
            if e.tile_id < next_id || e.run_length == 0 {
                return Err(format!(
                    "a directory is malformed: tile ids out of order at {}",
                    e.tile_id
                ));
            }
            next_id = e.tile_id.saturating_add(e.run_length);
            if e.offset.checked_add(e.length).is_none_or(|end| end > len) {
                return Err(format!(
                    "truncated: tile {} runs past the end of the data ({len} bytes)",
                    e.tile_id
                ));
            }
        }
        Ok(())
    }

    pub fn def(&self) -> &ArchiveDef {
        &self.def
    }

    pub fn id(&self) -> &LayerId {
        &self.def.id
    }

    pub fn format(&self) -> TileFormat {
        self.format
    }

    pub fn zooms(&self) -> (u8, u8) {
        (self.minzoom, self.maxzoom)
    }

    pub fn bounds(&self) -> Bbox {
        self.bounds
    }

    pub fn center(&self) -> (f64, f64, u8) {
        self.center
    }

    pub fn vector_layers(&self) -> &[Value] {
        &self.vector_layers
    }

    /// The ids of the MVT layers its tiles hold, as its `vector_layers` list them.
    pub fn layer_names(&self) -> impl Iterator<Item = &str> {
        self.vector_layers.iter().filter_map(|l| l["id"].as_str())
    }

    pub fn attribution(&self) -> Option<&str> {
        self.attribution.as_deref()
    }

    /// How many tiles (runs of identical tiles count once) the archive addresses.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Tile `coord` as stored, or `None` when the archive has no tile there (or an empty
    /// one). A binary search and a slice of the map: no copy, no lock.
    pub fn tile(&self, coord: TileCoord) -> Option<ArchiveTile> {
        if !(self.minzoom..=self.maxzoom).contains(&coord.z) {
            return None;
        }
        let e = pmtiles::find(&self.entries, pmtiles::tile_id(coord))?;
        if e.length == 0 {
            return None;
        }
        let bytes = self
            .data
            .slice(e.offset as usize..(e.offset + e.length) as usize);
        let encoding = match (self.format, &bytes[..]) {
            (TileFormat::Mvt, [0x1f, 0x8b, ..]) => Encoding::Gzip,
            (TileFormat::Mvt, [0x28, 0xb5, 0x2f, 0xfd, ..]) => Encoding::Zstd,
            _ => Encoding::Identity,
        };
        // The offset stands for the bytes: identical tiles share it, others never do.
        let etag = format!("\"a{:016x}-{:x}-{:x}\"", self.tag, e.offset, e.length);
        Some(ArchiveTile {
            bytes,
            encoding,
            etag,
        })
    }

    /// The uncompressed MVT bytes of tile `coord` (a vector archive), for a composite tile;
    /// empty when it has none there. Decompressing is CPU work: call it on the compute pool.
    pub fn mvt(&self, coord: TileCoord) -> std::io::Result<Vec<u8>> {
        match self.tile(coord) {
            None => Ok(Vec::new()),
            Some(t) if t.encoding == Encoding::Identity => Ok(t.bytes.to_vec()),
            Some(t) => crate::tiles::compress::decode(&t.bytes, t.encoding),
        }
    }
}

/// What opening an archive of either kind finds.
struct Opened {
    format: TileFormat,
    minzoom: u8,
    maxzoom: u8,
    bounds: Bbox,
    center: (f64, f64, u8),
    vector_layers: Vec<Value>,
    attribution: Option<String>,
    data: Bytes,
    entries: Vec<Entry>,
}

fn bbox_of(b: [f64; 4]) -> Bbox {
    Bbox {
        west: b[0],
        south: b[1],
        east: b[2],
        north: b[3],
    }
}

/// Maps a PMTiles archive and reads its header, metadata and every directory.
fn open_pmtiles(def: &ArchiveDef) -> Result<Opened, String> {
    let file = std::fs::File::open(&def.path).map_err(|e| e.to_string())?;
    // SAFETY: the map is only read. The archive must not be changed in place while the
    // server runs (the README says so); replacing it by a rename leaves this map on the
    // old file.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let error = |e: pmtiles::ReadError| crate::model::error_chain(&e);
    let reader = pmtiles::Reader::new(&map).map_err(error)?;
    let h = reader.header;
    let format = TileFormat::of_pmtiles(h.tile_type).ok_or_else(|| {
        format!(
            "tile type {} is not one of MVT, PNG, JPEG, WebP (PMTiles codes 1-4)",
            h.tile_type
        )
    })?;
    match (format.is_vector(), h.tile_compression) {
        // Unknown, none, gzip and zstd vector tiles are told apart by their first bytes.
        (true, 0 | 1 | 2 | 4) | (false, 0 | 1) => {}
        (_, 3) => return Err("its tiles are brotli-compressed, which is not served".into()),
        (_, c) => return Err(format!("tile compression {c} is not one urbantile serves")),
    }
    if h.minzoom > h.maxzoom || h.maxzoom > 31 {
        return Err(format!(
            "zooms {}..{} are not a zoom range",
            h.minzoom, h.maxzoom
        ));
    }
    let metadata = reader.metadata().map_err(error)?;
    let mut entries = reader.entries().map_err(error)?;
    let data_end = h.data_offset.saturating_add(h.data_length);
    for e in &mut entries {
        e.offset = e.offset.saturating_add(h.data_offset);
        if e.offset
            .checked_add(e.length)
            .is_none_or(|end| end > data_end)
        {
            return Err(format!(
                "a directory is malformed: tile {} lies outside the tile data",
                e.tile_id
            ));
        }
    }
    let vector_layers = metadata["vector_layers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let attribution = metadata["attribution"].as_str().map(str::to_owned);
    drop(reader);
    Ok(Opened {
        format,
        minzoom: h.minzoom,
        maxzoom: h.maxzoom,
        bounds: bbox_of(h.bounds),
        center: h.center,
        vector_layers,
        attribution,
        data: Bytes::from_owner(map),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_name_their_formats_and_old_names_are_kept() {
        assert!(TileFormat::Mvt.has_extension("mvt") && TileFormat::Mvt.has_extension("pbf"));
        assert!(TileFormat::Jpeg.has_extension("jpeg") && TileFormat::Jpeg.has_extension("jpg"));
        assert!(!TileFormat::Png.has_extension("mvt"));
        assert_eq!(TileFormat::of_mbtiles("pbf"), Some(TileFormat::Mvt));
        assert_eq!(TileFormat::of_pmtiles(2), Some(TileFormat::Png));
        assert_eq!(TileFormat::of_pmtiles(5), None);
    }
}
