//! PMTiles v3 archives read in place: the header, the JSON metadata, and tiles found
//! through the root and leaf directories (PMTiles v3 spec). Writing is
//! [`crate::export::pmtiles`]'s, through the `pmtiles` crate.

use crate::tiles::TileCoord;

/// The PMTiles tile id of a tile: its position on the zoom's Hilbert curve after every
/// tile of the zooms below (PMTiles v3 spec, "Tile ID").
pub fn tile_id(tile: TileCoord) -> u64 {
    pmtiles::TileId::from(pmtiles::TileCoord::new(tile.z, tile.x, tile.y).expect("a valid tile"))
        .value()
}

/// The parts of a PMTiles v3 header a reader needs (PMTiles v3 spec, "Header").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub root: (u64, u64),
    pub metadata: (u64, u64),
    pub leaves_offset: u64,
    pub data_offset: u64,
    pub data_length: u64,
    pub clustered: bool,
    /// 0 unknown, 1 none, 2 gzip, 3 brotli, 4 zstd (the spec's codes).
    pub internal_compression: u8,
    pub tile_compression: u8,
    /// 0 unknown, 1 MVT, 2 PNG, 3 JPEG, 4 WebP, 5 AVIF.
    pub tile_type: u8,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// west, south, east, north.
    pub bounds: [f64; 4],
    /// Longitude, latitude, zoom.
    pub center: (f64, f64, u8),
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
            data_length: u64_at(64),
            clustered: bytes[96] == 1,
            internal_compression: bytes[97],
            tile_compression: bytes[98],
            tile_type: bytes[99],
            minzoom: bytes[100],
            maxzoom: bytes[101],
            bounds: [e7_at(102), e7_at(106), e7_at(110), e7_at(114)],
            center: (e7_at(119), e7_at(123), bytes[118]),
        };
        let len = bytes.len() as u64;
        for (what, (offset, length)) in [
            ("the root directory", header.root),
            ("the metadata", header.metadata),
            ("the leaf directories", (header.leaves_offset, u64_at(48))),
            ("the tile data", (header.data_offset, header.data_length)),
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
                    .part(
                        "a tile",
                        self.header.data_offset.saturating_add(e.offset),
                        e.length,
                    )
                    .map(Some);
            }
            let mut leaves = self.leaves.borrow_mut();
            let leaf = match leaves.entry(e.offset) {
                std::collections::hash_map::Entry::Occupied(kept) => kept.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                    self.directory(self.header.leaves_offset.saturating_add(e.offset), e.length)?,
                ),
            };
            found = find(leaf, id);
        }
        Err(ReadError::Directory(
            "leaves nest deeper than the spec allows",
        ))
    }

    /// Every tile entry (leaf directories followed), in tile-id order. Each leaf directory
    /// is read once: one named twice is an error (a damaged archive could otherwise make
    /// the walk repeat itself).
    pub fn entries(&self) -> Result<Vec<Entry>, ReadError> {
        let mut out = Vec::new();
        let (offset, length) = self.header.root;
        self.walk(offset, length, 0, &mut out, &mut Default::default())?;
        Ok(out)
    }

    fn walk(
        &self,
        offset: u64,
        length: u64,
        depth: u8,
        out: &mut Vec<Entry>,
        seen: &mut std::collections::HashSet<u64>,
    ) -> Result<(), ReadError> {
        if depth > 3 {
            return Err(ReadError::Directory(
                "leaves nest deeper than the spec allows",
            ));
        }
        for e in self.directory(offset, length)? {
            if e.run_length == 0 {
                let at = self.header.leaves_offset.saturating_add(e.offset);
                if !seen.insert(at) {
                    return Err(ReadError::Directory("a leaf directory is named twice"));
                }
                self.walk(at, e.length, depth + 1, out, seen)?;
            } else {
                out.push(e);
            }
        }
        Ok(())
    }

    /// The stored bytes of an entry's tile.
    pub fn entry_bytes(&self, e: &Entry) -> Result<&'a [u8], ReadError> {
        self.part(
            "a tile",
            self.header.data_offset.saturating_add(e.offset),
            e.length,
        )
    }
}

/// The entry of `entries` (sorted by tile id) holding tile `id`: a run that covers it, or
/// the leaf directory whose range it falls in.
pub(crate) fn find(entries: &[Entry], id: u64) -> Option<Entry> {
    let at = entries.partition_point(|e| e.tile_id <= id);
    let e = entries[at.checked_sub(1)?];
    (e.run_length == 0 || id.checked_sub(e.tile_id).is_some_and(|d| d < e.run_length)).then_some(e)
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
            entries[i - 1].offset.saturating_add(entries[i - 1].length)
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
