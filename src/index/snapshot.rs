//! A layer's index written to a file and read back: what a start or an export would
//! otherwise rebuild from the store (read every row, parse its properties, project its
//! geometry, encode it at every zoom). Reading one back only copies: the live features in
//! write order, with their projected geometry, tags and grid geometry at each zoom, and the
//! layer's distinct values. The id map, the tiles' packed tree and the tile size budget's
//! plan are built again on reading, as [`LayerIndex::build`] builds them; the feature
//! queries' trees on their first use.
//!
//! The file is `MAGIC`, [`FORMAT`], a [`Stamp`] (what the caller checks it against: its
//! layer file, program and change-log position), the body, and a CRC-32 of everything
//! before it. A file cut short or changed on disk fails the CRC; every count and reference
//! in the body is checked against what is left and what it refers to before anything is
//! allocated or built from it, so that no input makes the reader panic or over-allocate
//! (the `snapshot` fuzz target). Grid geometry is taken as written, under the CRC: it is
//! what this program encoded.

use std::io::Write;

use super::levels::GridLevels;
use super::packed::{PackedTree, ZoomBox};
use super::{FieldType, IndexedFeature, LayerIndex, ValueTable};
use crate::config::LayerDef;
use crate::model::{Bbox, FeatureId, TimeRange};
use crate::tiles::{ProjectedGeometry, Value};

const MAGIC: &[u8; 8] = b"UTINDEX\0";

/// The magic, the format and the stamp.
const HEAD: usize = 8 + 4 + 24;

/// The layout of the body; a file of another format is stale, not corrupt.
pub const FORMAT: u32 = 1;

/// What a snapshot was cut from, for the caller to compare with what it would load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// A hash of the layer's definition and of the program that wrote the file.
    pub fingerprint: u64,
    /// The change-log position the index reflected.
    pub position: u64,
    /// A hash of the log's entry at `position`, which tells one database from another.
    pub entry: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not an index snapshot, or one of another format")]
    Format,
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
    #[error("made for another definition of the layer")]
    Layer,
}

/// Writes `index` with `stamp`; returns the bytes written.
pub fn write(index: &LayerIndex, stamp: Stamp, out: impl Write) -> std::io::Result<u64> {
    let mut w = Checked {
        out,
        crc: flate2::Crc::new(),
        buf: Vec::with_capacity(CHUNK),
        written: 0,
    };
    w.put(MAGIC)?;
    w.put(&FORMAT.to_le_bytes())?;
    for v in [stamp.fingerprint, stamp.position, stamp.entry] {
        w.put(&v.to_le_bytes())?;
    }
    // The live features, in write order (the order a build lays them out in).
    let mut order: Vec<u32> = (0..index.features.len() as u32)
        .filter(|&p| !index.features[p as usize].removed)
        .collect();
    index.sort_positions(&mut order);

    w.u32(index.field_types.len() as u32)?;
    for t in &index.field_types {
        w.u8(match t {
            None => 0,
            Some(FieldType::String) => 1,
            Some(FieldType::Number) => 2,
            Some(FieldType::Boolean) => 3,
        })?;
    }
    match index.bounds {
        None => w.u8(0)?,
        Some(b) => {
            w.u8(1)?;
            for v in [b.west, b.south, b.east, b.north] {
                w.f64(v)?;
            }
        }
    }
    match index.time_extent {
        None => w.u8(0)?,
        Some(t) => {
            w.u8(1)?;
            w.time(t)?;
        }
    }
    w.u32(index.values.values.len() as u32)?;
    for v in &index.values.values {
        match v {
            Value::String(s) => {
                w.u8(0)?;
                w.u32(s.len() as u32)?;
                w.put(s.as_bytes())?;
            }
            Value::Double(d) => {
                w.u8(1)?;
                w.f64(*d)?;
            }
            Value::Uint(u) => {
                w.u8(2)?;
                w.put(&u.to_le_bytes())?;
            }
            Value::Sint(i) => {
                w.u8(3)?;
                w.put(&i.to_le_bytes())?;
            }
            Value::Bool(b) => {
                w.u8(4)?;
                w.u8(*b as u8)?;
            }
        }
    }
    w.u32(order.len() as u32)?;
    for &p in &order {
        let f = &index.features[p as usize];
        w.put(&f.id.0.to_le_bytes())?;
        w.put(&f.order.to_le_bytes())?;
        w.u8(f.minzoom)?;
        w.time(f.time)?;
        let tags = &index.tags[f.tags.start as usize..f.tags.end as usize];
        w.u32(tags.len() as u32)?;
        for &(k, v) in tags {
            w.put(&k.to_le_bytes())?;
            w.u32(v)?;
        }
        w.geometry(&f.geometry)?;
    }
    let (lo, maxzoom, levels) = index.grid.parts();
    w.u8(lo)?;
    w.u8(maxzoom)?;
    w.u8(levels as u8)?;
    for i in 0..levels {
        let z = lo + i as u8;
        let total: u64 = order
            .iter()
            .map(|&p| index.grid.get(z, p).len() as u64)
            .sum();
        w.put(&total.to_le_bytes())?;
        for &p in &order {
            w.put(index.grid.get(z, p))?;
        }
        for &p in &order {
            w.u32(index.grid.get(z, p).len() as u32)?;
        }
    }
    w.flush_chunk()?;
    let crc = w.crc.sum();
    w.out.write_all(&crc.to_le_bytes())?;
    w.out.flush()?;
    Ok(w.written + 4)
}

/// The stamp of a snapshot, read from its first bytes without checking the rest.
pub fn stamp(bytes: &[u8]) -> Result<Stamp, SnapshotError> {
    let mut r = Reader { b: bytes };
    if r.take(8).ok() != Some(&MAGIC[..]) || r.u32().ok() != Some(FORMAT) {
        return Err(SnapshotError::Format);
    }
    Ok(Stamp {
        fingerprint: r.u64()?,
        position: r.u64()?,
        entry: r.u64()?,
    })
}

/// Reads a snapshot of the layer `def` back into an index, checking it whole first.
pub fn read(def: &LayerDef, bytes: &[u8]) -> Result<(Stamp, LayerIndex), SnapshotError> {
    let stamp = stamp(bytes)?;
    let Some(split) = bytes.len().checked_sub(4).filter(|&n| n >= HEAD) else {
        return Err(SnapshotError::Corrupt("cut short"));
    };
    let (content, crc) = bytes.split_at(split);
    let mut sum = flate2::Crc::new();
    sum.update(content);
    if sum.sum().to_le_bytes() != crc {
        return Err(SnapshotError::Corrupt("checksum"));
    }
    let mut r = Reader {
        b: &content[HEAD..],
    };
    let index = read_body(def, &mut r)?;
    if !r.b.is_empty() {
        return Err(SnapshotError::Corrupt("bytes after the end"));
    }
    Ok((stamp, index))
}

fn read_body(def: &LayerDef, r: &mut Reader) -> Result<LayerIndex, SnapshotError> {
    let keys = def.properties.len();
    let n = r.count(1)?;
    if n != keys {
        return Err(SnapshotError::Layer);
    }
    let mut field_types = Vec::with_capacity(n);
    for _ in 0..n {
        field_types.push(match r.u8()? {
            0 => None,
            1 => Some(FieldType::String),
            2 => Some(FieldType::Number),
            3 => Some(FieldType::Boolean),
            _ => return Err(SnapshotError::Corrupt("field type")),
        });
    }
    let bounds = match r.u8()? {
        0 => None,
        1 => Some(Bbox {
            west: r.f64()?,
            south: r.f64()?,
            east: r.f64()?,
            north: r.f64()?,
        }),
        _ => return Err(SnapshotError::Corrupt("bounds")),
    };
    let time_extent = match r.u8()? {
        0 => None,
        1 => Some(r.time()?),
        _ => return Err(SnapshotError::Corrupt("time extent")),
    };
    let mut values = ValueTable::default();
    let n = r.count(2)?;
    values.values.reserve_exact(n);
    for _ in 0..n {
        let value = match r.u8()? {
            0 => {
                let len = r.count(1)?;
                let s = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| SnapshotError::Corrupt("string value"))?;
                Value::String(s.into())
            }
            1 => Value::Double(r.f64()?),
            2 => Value::Uint(r.u64()?),
            3 => Value::Sint(r.u64()? as i64),
            4 => Value::Bool(match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(SnapshotError::Corrupt("boolean value")),
            }),
            _ => return Err(SnapshotError::Corrupt("value kind")),
        };
        let id = values.values.len() as u32;
        let hash = {
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one(&value)
        };
        values.encoded.push(&value);
        values.ids.entry(hash).or_insert(id);
        values.values.push(value);
    }
    let mut index = LayerIndex {
        field_types,
        bounds,
        time_extent,
        ..Default::default()
    };
    // Each feature takes at least 37 bytes (id, order, zoom, time, tag count, geometry).
    let n = r.count(37)?;
    index.features.reserve_exact(n);
    index.boxes.reserve_exact(n);
    index.by_id.reserve(n);
    let mut last_order = None;
    for position in 0..n as u32 {
        let id = FeatureId(r.u64()?);
        let order = r.u64()?;
        if last_order.is_some_and(|last| (order, id) <= last) {
            return Err(SnapshotError::Corrupt("features out of write order"));
        }
        last_order = Some((order, id));
        let minzoom = r.u8()?;
        if minzoom > crate::tiles::MAX_ZOOM {
            return Err(SnapshotError::Corrupt("feature minzoom"));
        }
        let time = r.time()?;
        let t = r.count(6)?;
        let start = index.tags.len() as u32;
        for tag in r.take(t * 6)?.chunks_exact(6) {
            let k = u16::from_le_bytes([tag[0], tag[1]]);
            let v = u32::from_le_bytes([tag[2], tag[3], tag[4], tag[5]]);
            if k as usize >= keys || v as usize >= values.values.len() {
                return Err(SnapshotError::Corrupt("tag"));
            }
            index.tags.push((k, v));
        }
        let geometry = r.geometry()?;
        let Some(b) = geometry.bounds() else {
            return Err(SnapshotError::Corrupt("empty geometry"));
        };
        if index.by_id.insert(id, position).is_some() {
            return Err(SnapshotError::Corrupt("feature id twice"));
        }
        index.boxes.push(ZoomBox {
            min: [b.min_x, b.min_y],
            max: [b.max_x, b.max_y],
            minzoom,
        });
        index.features.push(IndexedFeature {
            id,
            geometry,
            tags: start..index.tags.len() as u32,
            time,
            minzoom,
            removed: false,
            order,
        });
    }
    index.values = values;
    let lo = r.u8()?;
    let maxzoom = r.u8()?;
    let levels = r.u8()? as usize;
    let mut grid = Vec::with_capacity(levels.min(32));
    for _ in 0..levels {
        let total = r.u64()?;
        let bytes = r.take(usize::try_from(total).map_err(|_| SnapshotError::Corrupt("grid"))?)?;
        let lens = r.take(n.checked_mul(4).ok_or(SnapshotError::Corrupt("grid"))?)?;
        let mut spans = Vec::with_capacity(n);
        let mut at: u64 = 0;
        for len in lens.chunks_exact(4) {
            let len = u32::from_le_bytes(len.try_into().expect("four bytes"));
            spans.push((at as u32, len));
            at += len as u64;
        }
        if at != total || total > u32::MAX as u64 {
            return Err(SnapshotError::Corrupt("grid spans"));
        }
        grid.push((bytes.to_vec(), spans));
    }
    index.grid = GridLevels::from_parts(def, lo, maxzoom, grid).ok_or(SnapshotError::Layer)?;
    index.tags.shrink_to_fit();
    index.sorted = index.features.len();
    index.packed = PackedTree::build(&index.boxes);
    if let Some(plan) = super::thinning::plan(def, &index) {
        index.set_thinning(plan);
    }
    Ok(index)
}

/// Bytes checksummed and written at once.
const CHUNK: usize = 1 << 16;

/// A writer that counts and checksums what passes through it, a chunk at a time.
struct Checked<W> {
    out: W,
    crc: flate2::Crc,
    buf: Vec<u8>,
    written: u64,
}

impl<W: Write> Checked<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.written += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn u8(&mut self, v: u8) -> std::io::Result<()> {
        self.put(&[v])
    }

    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    fn f64(&mut self, v: f64) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    fn time(&mut self, t: TimeRange) -> std::io::Result<()> {
        for end in [t.start, t.end] {
            match end {
                None => self.put(&[0; 9])?,
                Some(v) => {
                    self.u8(1)?;
                    self.put(&v.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    fn coords(&mut self, coords: &[geo::Coord<f64>]) -> std::io::Result<()> {
        self.u32(coords.len() as u32)?;
        for c in coords {
            self.f64(c.x)?;
            self.f64(c.y)?;
        }
        Ok(())
    }

    fn geometry(&mut self, g: &ProjectedGeometry) -> std::io::Result<()> {
        match g {
            ProjectedGeometry::Points(points) => {
                self.u8(1)?;
                self.u32(points.0.len() as u32)?;
                for p in &points.0 {
                    self.f64(p.x())?;
                    self.f64(p.y())?;
                }
            }
            ProjectedGeometry::Lines(lines) => {
                self.u8(2)?;
                self.u32(lines.0.len() as u32)?;
                for l in &lines.0 {
                    self.coords(&l.0)?;
                }
            }
            ProjectedGeometry::Polygons(polygons) => {
                self.u8(3)?;
                self.u32(polygons.0.len() as u32)?;
                for p in &polygons.0 {
                    self.u32(1 + p.interiors().len() as u32)?;
                    self.coords(&p.exterior().0)?;
                    for ring in p.interiors() {
                        self.coords(&ring.0)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads the body, refusing anything that would run past its end.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if n > self.b.len() {
            return Err(SnapshotError::Corrupt("cut short"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, SnapshotError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A count of items each at least `size` bytes long, so that no count can ask for
    /// more than what is left.
    fn count(&mut self, size: usize) -> Result<usize, SnapshotError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(size) > self.b.len() {
            return Err(SnapshotError::Corrupt("count past the end"));
        }
        Ok(n)
    }

    fn time(&mut self) -> Result<TimeRange, SnapshotError> {
        let mut end = || -> Result<Option<i64>, SnapshotError> {
            let flag = self.u8()?;
            let v = self.u64()? as i64;
            match flag {
                0 => Ok(None),
                1 => Ok(Some(v)),
                _ => Err(SnapshotError::Corrupt("time")),
            }
        };
        Ok(TimeRange {
            start: end()?,
            end: end()?,
        })
    }

    /// `n` coordinates, each two finite numbers.
    fn coords_of(&mut self, n: usize) -> Result<Vec<geo::Coord<f64>>, SnapshotError> {
        let bytes = self.take(n.checked_mul(16).ok_or(SnapshotError::Corrupt("count"))?)?;
        let mut out = Vec::with_capacity(n);
        for c in bytes.chunks_exact(16) {
            let x = f64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
            let y = f64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
            if !x.is_finite() || !y.is_finite() {
                return Err(SnapshotError::Corrupt("coordinate"));
            }
            out.push(geo::Coord { x, y });
        }
        Ok(out)
    }

    fn coords(&mut self) -> Result<Vec<geo::Coord<f64>>, SnapshotError> {
        let n = self.count(16)?;
        self.coords_of(n)
    }

    fn geometry(&mut self) -> Result<ProjectedGeometry, SnapshotError> {
        use geo::{LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
        Ok(match self.u8()? {
            1 => {
                let points = self.coords()?.into_iter().map(Point).collect();
                ProjectedGeometry::Points(MultiPoint(points))
            }
            2 => {
                let n = self.count(4)?;
                let mut lines = Vec::with_capacity(n);
                for _ in 0..n {
                    lines.push(LineString(self.coords()?));
                }
                ProjectedGeometry::Lines(MultiLineString(lines))
            }
            3 => {
                let n = self.count(8)?;
                let mut polygons = Vec::with_capacity(n);
                for _ in 0..n {
                    let rings = self.count(4)?;
                    if rings == 0 {
                        return Err(SnapshotError::Corrupt("polygon without rings"));
                    }
                    let exterior = LineString(self.coords()?);
                    let mut interiors = Vec::with_capacity(rings - 1);
                    for _ in 1..rings {
                        interiors.push(LineString(self.coords()?));
                    }
                    polygons.push(Polygon::new(exterior, interiors));
                }
                ProjectedGeometry::Polygons(MultiPolygon(polygons))
            }
            _ => return Err(SnapshotError::Corrupt("geometry kind")),
        })
    }
}
