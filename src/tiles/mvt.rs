//! The Mapbox Vector Tile 2.1 wire format: a small protobuf writer for tiles, layers and
//! features, with per-layer key and value tables deduplicated as the spec asks.
//!
//! urbantile writes the protobuf itself rather than through a generic MVT crate because it
//! quantises geometry before encoding: only then can rings that collapse or flip on the
//! extent grid be dropped or re-wound, and the commands written straight into one buffer.

use std::hash::{Hash, Hasher};

use std::cell::RefCell;

/// An attribute value as MVT stores it (`Value` message of the spec).
#[derive(Debug, Clone)]
pub enum Value {
    String(Box<str>),
    Double(f64),
    /// Non-negative integers.
    Uint(u64),
    /// Negative integers (zig-zag encoded).
    Sint(i64),
    Bool(bool),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            (Value::Uint(a), Value::Uint(b)) => a == b,
            (Value::Sint(a), Value::Sint(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::String(s) => s.hash(state),
            Value::Double(d) => d.to_bits().hash(state),
            Value::Uint(u) => u.hash(state),
            Value::Sint(i) => i.hash(state),
            Value::Bool(b) => b.hash(state),
        }
    }
}

impl Value {
    /// The MVT value for a JSON value; `None` for null, which MVT cannot hold (the key is
    /// then left off the feature). Arrays and objects become their JSON text.
    pub fn from_json(v: &serde_json::Value) -> Option<Value> {
        use serde_json::Value as J;
        Some(match v {
            J::Null => return None,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Value::Uint(u)
                } else if let Some(i) = n.as_i64() {
                    Value::Sint(i)
                } else {
                    Value::Double(n.as_f64()?)
                }
            }
            J::String(s) => Value::String(s.as_str().into()),
            J::Array(_) | J::Object(_) => Value::String(v.to_string().into()),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::String(s) => write_bytes(out, 1, s.as_bytes()),
            Value::Double(d) => {
                write_key(out, 3, WIRE_I64);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Value::Uint(u) => write_uint_field(out, 5, *u),
            Value::Sint(i) => write_uint_field(out, 6, zigzag(*i)),
            Value::Bool(b) => write_uint_field(out, 7, *b as u64),
        }
    }
}

/// A layer's distinct values already encoded as MVT `Value` messages, one after another
/// in the order they were added, so that a tile copies the ones it uses from one arena
/// (values first met near each other on the map sit near each other in it).
#[derive(Debug, Default)]
pub struct EncodedValues {
    bytes: Vec<u8>,
    /// Where each value's message is in `bytes`.
    spans: Vec<(u32, u32)>,
}

impl EncodedValues {
    /// Appends a value; it is addressed by its position among those pushed.
    pub fn push(&mut self, value: &Value) {
        let start = self.bytes.len() as u32;
        value.write(&mut self.bytes);
        self.spans.push((start, self.bytes.len() as u32 - start));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The encoded message of value `i`.
    pub fn get(&self, i: u32) -> &[u8] {
        let (start, len) = self.spans[i as usize];
        &self.bytes[start as usize..(start + len) as usize]
    }
}

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;

/// MVT geometry types (`GeomType` of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeomType {
    Point = 1,
    LineString = 2,
    Polygon = 3,
}

pub(crate) fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn write_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    write_varint(out, ((field as u64) << 3) | wire as u64);
}

fn write_uint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    write_key(out, field, WIRE_VARINT);
    write_varint(out, v);
}

fn write_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    write_key(out, field, WIRE_LEN);
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads the varint at `*at` and moves past it; `None` when the bytes end inside it.
pub(crate) fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Geometry commands of one feature (MVT 2.1 section 4.3), with the cursor carried across
/// parts as the spec requires. Commands are kept already varint-encoded, so that a feature
/// is written with one copy.
#[derive(Debug, Default)]
pub struct GeometryWriter {
    bytes: Vec<u8>,
    cursor: [i32; 2],
}

impl GeometryWriter {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.cursor = [0, 0];
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The packed `geometry` field's content.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn command(&mut self, id: u32, count: usize) {
        write_varint(&mut self.bytes, ((id & 0x7) | ((count as u32) << 3)) as u64);
    }

    fn point(&mut self, p: [i32; 2]) {
        let dx = p[0] - self.cursor[0];
        let dy = p[1] - self.cursor[1];
        write_varint(&mut self.bytes, zigzag(dx as i64));
        write_varint(&mut self.bytes, zigzag(dy as i64));
        self.cursor = p;
    }

    /// Points of a point or multi-point feature: one MoveTo with all of them.
    pub fn points(&mut self, points: &[[i32; 2]]) {
        if points.is_empty() {
            return;
        }
        self.command(1, points.len());
        for &p in points {
            self.point(p);
        }
    }

    /// One line part of two or more points.
    pub fn line(&mut self, points: &[[i32; 2]]) {
        debug_assert!(points.len() >= 2);
        self.command(1, 1);
        self.point(points[0]);
        self.command(2, points.len() - 1);
        for &p in &points[1..] {
            self.point(p);
        }
    }

    /// One ring of three or more points, without its closing point.
    pub fn ring(&mut self, points: &[[i32; 2]]) {
        debug_assert!(points.len() >= 3);
        self.line(points);
        self.command(7, 1);
    }
}

/// A command stream written relative to another origin (see [`crate::tiles::grid`]), moved
/// so that `origin` becomes (0, 0). MVT geometry is delta-encoded, so only the first point
/// changes: `head` is the first command and point re-encoded, `rest` the bytes after them,
/// copied as they are.
pub struct Moved<'a> {
    head: [u8; 30],
    head_len: usize,
    pub rest: &'a [u8],
}

impl<'a> Moved<'a> {
    /// `None` when `bytes` does not start with a MoveTo and its point, or that point moved
    /// runs off the integers.
    pub fn new(bytes: &'a [u8], origin: [i64; 2]) -> Option<Moved<'a>> {
        let mut at = 0;
        let command = read_varint(bytes, &mut at)?;
        let x = read_varint(bytes, &mut at)?;
        let y = read_varint(bytes, &mut at)?;
        if command & 7 != 1 {
            return None;
        }
        let mut moved = Moved {
            head: [0; 30],
            head_len: 0,
            rest: &bytes[at..],
        };
        // Three varints of at most 10 bytes each.
        for v in [
            command,
            zigzag(unzigzag(x).checked_sub(origin[0])?),
            zigzag(unzigzag(y).checked_sub(origin[1])?),
        ] {
            let mut v = v;
            while v >= 0x80 {
                moved.head[moved.head_len] = (v as u8) | 0x80;
                moved.head_len += 1;
                v >>= 7;
            }
            moved.head[moved.head_len] = v as u8;
            moved.head_len += 1;
        }
        Some(moved)
    }

    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }
}

thread_local! {
    static SLOT_POOL: RefCell<ValueSlots> = const { RefCell::new(ValueSlots { stamp: 0, slots: Vec::new() }) };
}

/// Dedup slots for one layer writer; see [`LayerWriter`].
struct ValueSlots {
    stamp: u32,
    slots: Vec<(u32, u32)>,
}

impl ValueSlots {
    /// Takes the thread's slots (or fresh ones if a writer on this thread holds them) with a
    /// new stamp, grown to `len`. Stale entries carry older stamps and so read as unused.
    fn take(len: usize) -> ValueSlots {
        let mut s = SLOT_POOL.with(|p| {
            std::mem::replace(
                &mut *p.borrow_mut(),
                ValueSlots {
                    stamp: 0,
                    slots: Vec::new(),
                },
            )
        });
        s.stamp = s.stamp.wrapping_add(1);
        if s.stamp == 0 {
            // After 2^32 writers the stamps wrap: start over so no old stamp can match.
            s.slots.iter_mut().for_each(|e| e.0 = 0);
            s.stamp = 1;
        }
        if s.slots.len() < len {
            s.slots.resize(len, (0, 0));
        }
        s
    }
}

impl Drop for LayerWriter<'_> {
    fn drop(&mut self) {
        let slots = std::mem::replace(
            &mut self.slots,
            ValueSlots {
                stamp: 0,
                slots: Vec::new(),
            },
        );
        SLOT_POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if slots.slots.len() >= pool.slots.len() {
                *pool = slots;
            }
        });
    }
}

/// A feature attribute as a tile needs it: the index of the key in the layer's declared
/// properties and the index of the value in the layer's table of distinct values.
pub type Tag = (u16, u32);

/// Builds one layer of a tile. Keys are the layer's declared property names and values the
/// layer's distinct values, both addressed by index; only those that features use are
/// written, each once.
pub struct LayerWriter<'v> {
    name: &'v str,
    declared_keys: &'v [String],
    layer_values: &'v EncodedValues,
    /// Per layer value: the stamp of the writer that last used it and its index in this
    /// tile's value table. Borrowed from a per-thread pool, so that deduplicating a tile's
    /// values costs an array access per tag rather than a hash lookup.
    slots: ValueSlots,
    buf: WriterBuffers,
    count: usize,
}

/// A layer writer's growing buffers, passed from one writer to the next (see
/// [`LayerWriter::with_buffers`]) so that a tile's layers, and a thread's tiles, reuse them.
#[derive(Debug, Default)]
pub struct WriterBuffers {
    /// A closed layer's key, length and first fields.
    head: Vec<u8>,
    key_slots: Vec<u32>,
    keys_used: Vec<u16>,
    values_order: Vec<u32>,
    features: Vec<u8>,
    /// The packed tags of the feature being added.
    tags: Vec<u8>,
    tail: Vec<u8>,
}

impl WriterBuffers {
    /// Bytes of the layer closed in these buffers (0 when it had no feature).
    pub fn layer_len(&self) -> usize {
        self.head.len() + self.features.len() + self.tail.len()
    }

    /// Appends the layer closed in these buffers to a tile.
    pub fn write_to(&self, tile: &mut Vec<u8>) {
        if !self.head.is_empty() {
            tile.extend_from_slice(&self.head);
            tile.extend_from_slice(&self.features);
            tile.extend_from_slice(&self.tail);
        }
    }
}

impl<'v> LayerWriter<'v> {
    pub fn new(
        name: &'v str,
        declared_keys: &'v [String],
        layer_values: &'v EncodedValues,
    ) -> Self {
        Self::with_buffers(name, declared_keys, layer_values, WriterBuffers::default())
    }

    /// A writer working in `buf` (from an earlier [`LayerWriter::finish`]).
    pub fn with_buffers(
        name: &'v str,
        declared_keys: &'v [String],
        layer_values: &'v EncodedValues,
        mut buf: WriterBuffers,
    ) -> Self {
        buf.key_slots.clear();
        buf.key_slots.resize(declared_keys.len(), u32::MAX);
        buf.keys_used.clear();
        buf.values_order.clear();
        buf.features.clear();
        Self {
            name,
            declared_keys,
            layer_values,
            slots: ValueSlots::take(layer_values.len()),
            buf,
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a feature with its tags (key index, value index).
    pub fn add_feature(
        &mut self,
        id: u64,
        geom_type: GeomType,
        geometry: &GeometryWriter,
        tags: &[Tag],
    ) {
        self.add_feature_split(id, geom_type, geometry.as_bytes(), &[], tags);
    }

    /// [`LayerWriter::add_feature`] for a geometry given in two pieces, `head` then `rest`
    /// (see [`Moved`]), so that stored commands are copied once, straight into the layer.
    pub fn add_feature_split(
        &mut self,
        id: u64,
        geom_type: GeomType,
        head: &[u8],
        rest: &[u8],
        tags: &[Tag],
    ) {
        let buf = &mut self.buf;
        // The packed tags are written as they are mapped to this tile's tables.
        buf.tags.clear();
        for (key, value) in tags {
            let Some(key_slot) = buf.key_slots.get_mut(*key as usize) else {
                continue;
            };
            if *value as usize >= self.layer_values.len() {
                continue;
            }
            let value_slot = &mut self.slots.slots[*value as usize];
            if *key_slot == u32::MAX {
                *key_slot = buf.keys_used.len() as u32;
                buf.keys_used.push(*key);
            }
            let v = if value_slot.0 == self.slots.stamp {
                value_slot.1
            } else {
                let next = buf.values_order.len() as u32;
                *value_slot = (self.slots.stamp, next);
                buf.values_order.push(*value);
                next
            };
            write_varint(&mut buf.tags, *key_slot as u64);
            write_varint(&mut buf.tags, v as u64);
        }
        // Feature message fields: id (1), tags (2, packed), type (3), geometry (4, packed).
        // Its length is known before writing, so it goes straight into the layer buffer.
        let tags_len = buf.tags.len() as u64;
        let geom_len = (head.len() + rest.len()) as u64;
        let mut size = 1 + varint_len(id) + 2 + 1 + varint_len(geom_len) + geom_len;
        if !buf.tags.is_empty() {
            size += 1 + varint_len(tags_len) + tags_len;
        }
        let out = &mut buf.features;
        out.reserve(size as usize + 10);
        write_key(out, 2, WIRE_LEN);
        write_varint(out, size);
        write_uint_field(out, 1, id);
        if !buf.tags.is_empty() {
            write_bytes(out, 2, &buf.tags);
        }
        write_uint_field(out, 3, geom_type as u64);
        write_key(out, 4, WIRE_LEN);
        write_varint(out, geom_len);
        out.extend_from_slice(head);
        out.extend_from_slice(rest);
        self.count += 1;
    }

    /// Finishes the layer in its buffers without copying it anywhere, and returns them: a
    /// tile of several layers then copies each once, into a buffer of the tile's exact size
    /// (see [`WriterBuffers::layer_len`] and [`WriterBuffers::write_to`]). A layer without
    /// features writes nothing.
    pub fn close(mut self, extent: u32) -> WriterBuffers {
        let mut buf = std::mem::take(&mut self.buf);
        buf.head.clear();
        buf.tail.clear();
        if self.count == 0 {
            buf.features.clear();
            return buf;
        }
        for &k in &buf.keys_used {
            write_bytes(&mut buf.tail, 3, self.declared_keys[k as usize].as_bytes());
        }
        for &v in &buf.values_order {
            write_bytes(&mut buf.tail, 4, self.layer_values.get(v));
        }
        write_uint_field(&mut buf.tail, 5, extent as u64);
        // Layer message: version (15), name (1), then the features and the tables.
        let name = self.name.as_bytes();
        let fields_len = 2 + 1 + varint_len(name.len() as u64) as usize + name.len();
        let len = fields_len + buf.features.len() + buf.tail.len();
        write_key(&mut buf.head, 3, WIRE_LEN);
        write_varint(&mut buf.head, len as u64);
        write_uint_field(&mut buf.head, 15, 2);
        write_bytes(&mut buf.head, 1, name);
        buf
    }
}

fn varint_len(v: u64) -> u64 {
    (64 - (v | 1).leading_zeros() as u64).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_examples() {
        let mut out = Vec::new();
        write_varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        assert_eq!(varint_len(300), 2);
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
    }

    #[test]
    fn zigzag_interleaves_signs() {
        assert_eq!([0, -1, 1, -2, 2].map(zigzag), [0, 1, 2, 3, 4]);
        assert_eq!([0, 1, 2, 3, 4].map(unzigzag), [0, -1, 1, -2, 2]);
    }

    #[test]
    fn a_moved_stream_changes_only_its_first_point() {
        let mut at_origin = GeometryWriter::default();
        at_origin.ring(&[[103, 206], [108, 212], [120, 234]]);
        let moved = Moved::new(at_origin.as_bytes(), [100, 200]).unwrap();
        let whole = [moved.head(), moved.rest].concat();
        assert_eq!(whole, [9, 6, 12, 18, 10, 12, 24, 44, 15]);
        assert!(Moved::new(&[10, 2, 2], [0, 0]).is_none(), "a LineTo first");
        assert!(Moved::new(&[9, 2], [0, 0]).is_none(), "cut off");
    }

    #[test]
    fn the_spec_example_point_encodes_as_in_the_spec() {
        // MVT 2.1 section 4.3.5.1: a point at (25, 17) is [9, 50, 34].
        let mut g = GeometryWriter::default();
        g.points(&[[25, 17]]);
        assert_eq!(g.as_bytes(), [9, 50, 34]);
    }

    #[test]
    fn the_spec_example_polygon_encodes_as_in_the_spec() {
        // MVT 2.1 section 4.3.5.6: [9, 6, 12, 18, 10, 12, 24, 44, 15].
        let mut g = GeometryWriter::default();
        g.ring(&[[3, 6], [8, 12], [20, 34]]);
        assert_eq!(g.as_bytes(), [9, 6, 12, 18, 10, 12, 24, 44, 15]);
    }

    #[test]
    fn equal_values_are_stored_once_per_layer() {
        let keys = vec!["kind".to_string()];
        let mut values = EncodedValues::default();
        values.push(&Value::String("park".into()));
        let tags = vec![(0u16, 0u32)];
        let mut g = GeometryWriter::default();
        g.points(&[[1, 1]]);
        let mut layer = LayerWriter::new("parks", &keys, &values);
        layer.add_feature(1, GeomType::Point, &g, &tags);
        layer.add_feature(2, GeomType::Point, &g, &tags);
        assert_eq!(layer.buf.values_order.len(), 1);
        assert_eq!(layer.buf.keys_used, [0]);
        // The value table holds the one value as the spec's Value message: string_value (1).
        let closed = layer.close(4096);
        let mut tile = Vec::new();
        closed.write_to(&mut tile);
        let message = [0x22, 6, 0x0a, 4, b'p', b'a', b'r', b'k'];
        assert!(tile.windows(message.len()).any(|w| w == message));
    }
}
