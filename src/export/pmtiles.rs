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

/// The PMTiles tile id of a tile: its position on the zoom's Hilbert curve after every
/// tile of the zooms below (PMTiles v3 spec, "Tile ID").
pub fn tile_id(tile: TileCoord) -> u64 {
    pmtiles::TileId::from(pmtiles::TileCoord::new(tile.z, tile.x, tile.y).expect("a valid tile"))
        .value()
}

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

/// The parts of a PMTiles v3 header a reader needs (PMTiles v3 spec, "Header").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub root: (u64, u64),
    pub metadata: (u64, u64),
    pub leaves_offset: u64,
    pub data_offset: u64,
    pub clustered: bool,
    /// 1 none, 2 gzip (the spec's codes).
    pub internal_compression: u8,
    pub tile_compression: u8,
    /// 1 MVT.
    pub tile_type: u8,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// west, south, east, north.
    pub bounds: [f64; 4],
}

/// Why an archive cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a PMTiles v3 archive (no \"PMTiles\" magic and version 3 at the start)")]
    Magic,
    #[error("truncated: {what} runs past the end of the file ({len} bytes)")]
    Truncated { what: &'static str, len: u64 },
    #[error("{0} is compressed with an unknown method")]
    Compression(&'static str),
    #[error("a directory is malformed: {0}")]
    Directory(&'static str),
    #[error("the metadata is not JSON: {0}")]
    Metadata(String),
    #[error("decompressing {0}")]
    Inflate(&'static str, #[source] std::io::Error),
}

/// One directory entry: a run of tiles, or (run 0) a leaf directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tile_id: u64,
    pub offset: u64,
    pub length: u64,
    pub run_length: u64,
}

/// A PMTiles archive read in place (from a memory map or any byte slice): the header, the
/// metadata, and tiles found through the root and leaf directories.
///
/// The `pmtiles` crate writes packs, but its reader is async only (and pulls an async
/// compression stack), while its sync `Header` and `DirEntry` keep the offsets a reader
/// needs private; the format's reading side is a few varints, done here.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pub header: Header,
    root: Vec<Entry>,
    /// Leaf directories decoded so far, by offset.
    leaves: std::cell::RefCell<std::collections::HashMap<u64, Vec<Entry>>>,
}

impl<'a> Reader<'a> {
    /// Checks the header and that every part it points at lies inside `bytes`.
    pub fn new(bytes: &'a [u8]) -> Result<Reader<'a>, ReadError> {
        if bytes.len() < 127 || &bytes[..7] != b"PMTiles" || bytes[7] != 3 {
            return Err(ReadError::Magic);
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let e7_at = |at: usize| {
            f64::from(i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"))) / 1e7
        };
        let header = Header {
            root: (u64_at(8), u64_at(16)),
            metadata: (u64_at(24), u64_at(32)),
            leaves_offset: u64_at(40),
            data_offset: u64_at(56),
            clustered: bytes[96] == 1,
            internal_compression: bytes[97],
            tile_compression: bytes[98],
            tile_type: bytes[99],
            minzoom: bytes[100],
            maxzoom: bytes[101],
            bounds: [e7_at(102), e7_at(106), e7_at(110), e7_at(114)],
        };
        let len = bytes.len() as u64;
        for (what, (offset, length)) in [
            ("the root directory", header.root),
            ("the metadata", header.metadata),
            ("the leaf directories", (header.leaves_offset, u64_at(48))),
            ("the tile data", (header.data_offset, u64_at(64))),
        ] {
            if offset.checked_add(length).is_none_or(|end| end > len) {
                return Err(ReadError::Truncated { what, len });
            }
        }
        if !matches!(header.internal_compression, 1 | 2) {
            return Err(ReadError::Compression("the directories"));
        }
        let mut reader = Reader {
            bytes,
            header,
            root: Vec::new(),
            leaves: Default::default(),
        };
        reader.root = reader.directory(header.root.0, header.root.1)?;
        Ok(reader)
    }

    fn part(&self, what: &'static str, offset: u64, length: u64) -> Result<&'a [u8], ReadError> {
        let len = self.bytes.len() as u64;
        match offset.checked_add(length) {
            Some(end) if end <= len => Ok(&self.bytes[offset as usize..end as usize]),
            _ => Err(ReadError::Truncated { what, len }),
        }
    }

    fn internal(&self, what: &'static str, raw: &[u8]) -> Result<Vec<u8>, ReadError> {
        match self.header.internal_compression {
            2 => crate::tiles::compress::decode(raw, crate::tiles::compress::Encoding::Gzip)
                .map_err(|e| ReadError::Inflate(what, e)),
            _ => Ok(raw.to_vec()),
        }
    }

    /// The JSON metadata.
    pub fn metadata(&self) -> Result<serde_json::Value, ReadError> {
        let (offset, length) = self.header.metadata;
        let raw = self.part("the metadata", offset, length)?;
        let text = self.internal("the metadata", raw)?;
        serde_json::from_slice(&text).map_err(|e| ReadError::Metadata(e.to_string()))
    }

    fn directory(&self, offset: u64, length: u64) -> Result<Vec<Entry>, ReadError> {
        let raw = self.part("a directory", offset, length)?;
        decode_directory(&self.internal("a directory", raw)?)
    }

    /// The stored (compressed) bytes of tile `tile`, if the archive has it. Leaf
    /// directories are decoded once and kept.
    pub fn tile(&self, tile: TileCoord) -> Result<Option<&'a [u8]>, ReadError> {
        let id = tile_id(tile);
        let mut found = find(&self.root, id);
        // The spec allows at most three levels of leaves below the root.
        for _ in 0..4 {
            let Some(e) = found else { return Ok(None) };
            if e.run_length > 0 {
                return self
                    .part("a tile", self.header.data_offset + e.offset, e.length)
                    .map(Some);
            }
            let mut leaves = self.leaves.borrow_mut();
            let leaf = match leaves.entry(e.offset) {
                std::collections::hash_map::Entry::Occupied(kept) => kept.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(self.directory(self.header.leaves_offset + e.offset, e.length)?)
                }
            };
            found = find(leaf, id);
        }
        Err(ReadError::Directory(
            "leaves nest deeper than the spec allows",
        ))
    }

    /// Every tile entry (leaf directories followed), in tile-id order.
    pub fn entries(&self) -> Result<Vec<Entry>, ReadError> {
        let mut out = Vec::new();
        let (offset, length) = self.header.root;
        self.walk(offset, length, 0, &mut out)?;
        Ok(out)
    }

    fn walk(
        &self,
        offset: u64,
        length: u64,
        depth: u8,
        out: &mut Vec<Entry>,
    ) -> Result<(), ReadError> {
        if depth > 3 {
            return Err(ReadError::Directory(
                "leaves nest deeper than the spec allows",
            ));
        }
        for e in self.directory(offset, length)? {
            if e.run_length == 0 {
                self.walk(
                    self.header.leaves_offset + e.offset,
                    e.length,
                    depth + 1,
                    out,
                )?;
            } else {
                out.push(e);
            }
        }
        Ok(())
    }

    /// The stored bytes of an entry's tile.
    pub fn entry_bytes(&self, e: &Entry) -> Result<&'a [u8], ReadError> {
        self.part("a tile", self.header.data_offset + e.offset, e.length)
    }
}

/// The entry of `entries` (sorted by tile id) holding tile `id`: a run that covers it, or
/// the leaf directory whose range it falls in.
fn find(entries: &[Entry], id: u64) -> Option<Entry> {
    let at = entries.partition_point(|e| e.tile_id <= id);
    let e = entries[at.checked_sub(1)?];
    (e.run_length == 0 || id < e.tile_id + e.run_length).then_some(e)
}

/// Decodes an uncompressed directory: the entry count, then tile-id deltas, run lengths,
/// lengths and offsets, each a column of varints; an offset of 0 after the first entry
/// means "right after the previous tile" (PMTiles v3 spec, "Directories").
fn decode_directory(mut buf: &[u8]) -> Result<Vec<Entry>, ReadError> {
    let n = varint(&mut buf)?;
    // Each entry takes at least four bytes: a bound before allocating.
    if n > buf.len() as u64 / 4 {
        return Err(ReadError::Directory("too many entries"));
    }
    let n = n as usize;
    let mut entries = vec![
        Entry {
            tile_id: 0,
            offset: 0,
            length: 0,
            run_length: 0
        };
        n
    ];
    let mut last = 0u64;
    for e in &mut entries {
        last = last
            .checked_add(varint(&mut buf)?)
            .ok_or(ReadError::Directory("tile ids overflow"))?;
        e.tile_id = last;
    }
    for e in &mut entries {
        e.run_length = varint(&mut buf)?;
    }
    for e in &mut entries {
        e.length = varint(&mut buf)?;
    }
    for i in 0..n {
        let v = varint(&mut buf)?;
        entries[i].offset = if v == 0 && i > 0 {
            entries[i - 1].offset + entries[i - 1].length
        } else {
            v.saturating_sub(1)
        };
    }
    Ok(entries)
}

/// The tile of a tile id (the inverse of [`tile_id`]).
pub fn tile_of_id(id: u64) -> Option<TileCoord> {
    let c = pmtiles::TileCoord::from(pmtiles::TileId::new(id).ok()?);
    Some(TileCoord {
        z: c.z(),
        x: c.x(),
        y: c.y(),
    })
}

/// One unsigned LEB128 varint from the front of `buf`.
fn varint(buf: &mut &[u8]) -> Result<u64, ReadError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf
            .split_first()
            .ok_or(ReadError::Directory("ends inside a number"))?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ReadError::Directory("a number is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
