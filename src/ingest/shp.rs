//! Shapefile input: a `.zip` (also `.shp.zip`, `.shz`) holding one or more shapefiles, or a
//! bare `.shp` with its sidecar files beside it. Geometry comes from the `.shp` (read by
//! the `shapefile` crate), attributes from the `.dbf` (the `dbase` crate), the coordinate
//! system from the `.prj` (which must be there: a shapefile without one could be in any
//! system), and the text encoding of the `.dbf` from the `.cpg` when there is one, else
//! from the `.dbf`'s code page mark (GDAL's default, 87, is Latin-1), else UTF-8 if the
//! text is valid UTF-8 and Windows-1252 (a superset of Latin-1) if not.
//!
//! A zip is read within bounds: at most [`MAX_MEMBERS`] entries, and no member inflates
//! past [`MAX_MEMBER_BYTES`] (however small it claims to be), so a zip bomb costs at most
//! that much. A shapefile is read into memory whole; its records are walked once first so
//! that the crate never reads a record that claims more bytes than the file has, or parts
//! that run past its points.
//!
//! Each record's position is its shapefile (the `.shp` member's stem) and its 0-based
//! record number, as GDAL numbers shapefile fids. DBF cannot store a null text, so an
//! empty text field is null.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use geo::{Contains, Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use shapefile::dbase;
use shapefile::dbase::encoding::DynEncoding;

use crate::ingest::crs::{Crs, UnsupportedCrs};
use crate::ingest::{Position, Record, RecordError};
use crate::model::{Feature, Properties};

/// Most entries in a zip.
pub const MAX_MEMBERS: usize = 10_000;
/// Largest member of a shapefile once inflated (or read from disk).
pub const MAX_MEMBER_BYTES: u64 = 1 << 30;
/// Largest `.prj` or `.cpg`.
const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ShpError {
    #[error("{}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: holds no shapefile (no .shp member)", path.display())]
    Empty { path: PathBuf },
    #[error("{}: no shapefile named {table:?}; it holds: {}", path.display(), names.join(", "))]
    NoSuchTable {
        path: PathBuf,
        table: String,
        names: Vec<String>,
    },
    #[error("{}, shapefile {name:?}: no {ext} file; {why}", path.display())]
    Missing {
        path: PathBuf,
        name: String,
        ext: &'static str,
        why: &'static str,
    },
    #[error("{}, shapefile {name:?}: {member} inflates past the limit of {limit} bytes", path.display())]
    TooLarge {
        path: PathBuf,
        name: String,
        member: String,
        limit: u64,
    },
    #[error("{}, shapefile {name:?}: {source}", path.display())]
    Crs {
        path: PathBuf,
        name: String,
        source: UnsupportedCrs,
    },
    #[error("{}, shapefile {name:?}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        name: String,
        reason: String,
    },
}

/// One shapefile's files, read into memory.
#[derive(Default)]
struct Members {
    shp: Option<Vec<u8>>,
    dbf: Option<Vec<u8>>,
    prj: Option<Vec<u8>>,
    cpg: Option<Vec<u8>>,
}

/// Reads at most `limit` bytes; `None` when there are more.
fn read_capped(r: impl Read, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    r.take(limit + 1).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= limit).then_some(buf))
}

/// The records of every shapefile in `path` (a zip, or a bare `.shp`), or of the one whose
/// name is `table`, in name order. Everything but a bad record is checked before the first
/// record: the members, the CRS, the headers.
pub fn read_shapefile(
    path: &Path,
    table: Option<&str>,
) -> Result<std::vec::IntoIter<Record>, ShpError> {
    read_within(path, table, MAX_MEMBER_BYTES)
}

/// [`read_shapefile`] with a bound on the `.shp` and `.dbf` members' size.
fn read_within(
    path: &Path,
    table: Option<&str>,
    max_member: u64,
) -> Result<std::vec::IntoIter<Record>, ShpError> {
    let limit_of = |ext: &str| match ext {
        "prj" | "cpg" => MAX_SIDECAR_BYTES,
        _ => max_member,
    };
    let read_err = |reason: String| ShpError::Read {
        path: path.to_owned(),
        reason,
    };
    let mut sets: BTreeMap<String, Members> = BTreeMap::new();
    let is_shp = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("shp"));
    if is_shp {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned();
        let mut m = Members::default();
        for ext in ["shp", "dbf", "prj", "cpg"] {
            // The sidecars may be named in either case.
            let candidates = [
                path.with_extension(ext),
                path.with_extension(ext.to_ascii_uppercase()),
            ];
            let Some(p) = candidates.iter().find(|p| p.is_file()) else {
                continue;
            };
            let f = std::fs::File::open(p)
                .map_err(|e| read_err(format!("cannot read {}: {e}", p.display())))?;
            let bytes = read_capped(f, limit_of(ext))
                .map_err(|e| read_err(format!("cannot read {}: {e}", p.display())))?
                .ok_or_else(|| ShpError::TooLarge {
                    path: path.to_owned(),
                    name: stem.clone(),
                    member: p.display().to_string(),
                    limit: limit_of(ext),
                })?;
            *slot(&mut m, ext) = Some(bytes);
        }
        sets.insert(stem, m);
    } else {
        let file =
            std::fs::File::open(path).map_err(|e| read_err(format!("cannot read it: {e}")))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| read_err(format!("not a readable zip: {e}")))?;
        if zip.len() > MAX_MEMBERS {
            return Err(read_err(format!(
                "the zip has {} entries, over the limit of {MAX_MEMBERS}",
                zip.len()
            )));
        }
        for i in 0..zip.len() {
            let entry = zip
                .by_index(i)
                .map_err(|e| read_err(format!("zip entry {i} is unreadable: {e}")))?;
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().to_owned();
            if name.starts_with("__MACOSX/") {
                continue;
            }
            let file_name = name.rsplit('/').next().unwrap_or(&name);
            let Some((stem, ext)) = file_name.rsplit_once('.') else {
                continue;
            };
            let ext = ext.to_ascii_lowercase();
            if !matches!(ext.as_str(), "shp" | "dbf" | "prj" | "cpg") {
                continue;
            }
            let bytes = read_capped(entry, limit_of(&ext))
                .map_err(|e| read_err(format!("zip member {name} is unreadable: {e}")))?
                .ok_or_else(|| ShpError::TooLarge {
                    path: path.to_owned(),
                    name: stem.to_owned(),
                    member: name.clone(),
                    limit: limit_of(&ext),
                })?;
            *slot(sets.entry(stem.to_owned()).or_default(), &ext) = Some(bytes);
        }
    }
    sets.retain(|_, m| m.shp.is_some());
    if sets.is_empty() {
        return Err(ShpError::Empty {
            path: path.to_owned(),
        });
    }
    if let Some(t) = table {
        if !sets.contains_key(t) {
            return Err(ShpError::NoSuchTable {
                path: path.to_owned(),
                table: t.to_owned(),
                names: sets.keys().cloned().collect(),
            });
        }
        sets.retain(|name, _| name == t);
    }
    let mut records = Vec::new();
    for (name, m) in sets {
        read_one(path, &name, m, &mut records)?;
    }
    Ok(records.into_iter())
}

fn slot<'a>(m: &'a mut Members, ext: &str) -> &'a mut Option<Vec<u8>> {
    match ext {
        "shp" => &mut m.shp,
        "dbf" => &mut m.dbf,
        "prj" => &mut m.prj,
        _ => &mut m.cpg,
    }
}

/// The records of a `.shp` that are whole and sound: how many come before the first one
/// that is not, and what is wrong with that one. Each record's header gives its content
/// length in 16-bit words, which must fit in the file; a multi-part shape's part offsets
/// must rise within its point count and its points fit in its content, since the crate
/// reserves memory for each part from those offsets.
fn complete_records(shp: &[u8]) -> (usize, Option<&'static str>) {
    let i32_at = |at: usize| i32::from_le_bytes([shp[at], shp[at + 1], shp[at + 2], shp[at + 3]]);
    let mut at = 100;
    let mut n = 0;
    while at + 8 <= shp.len() {
        let words = i32::from_be_bytes([shp[at + 4], shp[at + 5], shp[at + 6], shp[at + 7]]);
        let Some(end) = usize::try_from(words)
            .ok()
            .and_then(|w| (at + 8).checked_add(w * 2))
        else {
            return (n, Some("the .shp is truncated inside this record"));
        };
        if words < 2 || end > shp.len() {
            return (n, Some("the .shp is truncated inside this record"));
        }
        let content = at + 8;
        // Polyline and polygon, plain, Z and M: type, box, part and point counts, parts.
        if matches!(i32_at(content), 3 | 5 | 13 | 15 | 23 | 25) && content + 44 <= end {
            let (parts, points) = (i32_at(content + 36), i32_at(content + 40));
            let sound = parts >= 0
                && points >= 0
                && content + 44 + parts as usize * 4 + points as usize * 16 <= end
                && (0..parts as usize)
                    .map(|k| i32_at(content + 44 + k * 4))
                    .try_fold(0, |last, p| (p >= last && p <= points).then_some(p))
                    .is_some();
            if !sound {
                return (
                    n,
                    Some("its part offsets or point count do not fit the record"),
                );
            }
        }
        at = end;
        n += 1;
    }
    let rest = (at != shp.len()).then_some("the .shp is truncated inside this record");
    (n, rest)
}

/// The decimals of each numeric field, from the `.dbf`'s field descriptors (the `dbase`
/// crate does not expose them): a field with none holds integers.
fn decimals(dbf: &[u8]) -> BTreeMap<String, u8> {
    let mut out = BTreeMap::new();
    let mut at = 32;
    while at + 32 <= dbf.len() && dbf[at] != 0x0d {
        let d = &dbf[at..at + 32];
        let end = d[..11].iter().position(|&b| b == 0).unwrap_or(11);
        out.insert(String::from_utf8_lossy(&d[..end]).into_owned(), d[17]);
        at += 32;
    }
    out
}

fn encoding(
    path: &Path,
    name: &str,
    m: &Members,
    dbf: &[u8],
) -> Result<Option<DynEncoding>, ShpError> {
    if let Some(cpg) = &m.cpg {
        let text = String::from_utf8_lossy(cpg);
        return DynEncoding::from_name(text.trim())
            .map(Some)
            .ok_or_else(|| ShpError::Corrupt {
                path: path.to_owned(),
                name: name.to_owned(),
                reason: format!("its .cpg names an unknown encoding {:?}", text.trim()),
            });
    }
    // Byte 29 is the language driver (code page) mark; 0 says nothing. GDAL writes 87
    // ("ANSI", ISO-8859-1) by default, which the dbase crate does not know: Windows-1252
    // is its superset.
    match dbf.get(29).copied().unwrap_or(0) {
        0 => {}
        3 | 87..=89 => return Ok(DynEncoding::from_name("1252")),
        _ => return Ok(None),
    }
    let header_len = dbf
        .get(8..10)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let body = dbf.get(header_len.min(dbf.len())..).unwrap_or(&[]);
    Ok(Some(if std::str::from_utf8(body).is_ok() {
        DynEncoding::from_name("UTF-8").expect("UTF-8 is known")
    } else {
        DynEncoding::from_name("1252").expect("1252 is known")
    }))
}

fn read_one(path: &Path, name: &str, m: Members, out: &mut Vec<Record>) -> Result<(), ShpError> {
    let corrupt = |reason: String| ShpError::Corrupt {
        path: path.to_owned(),
        name: name.to_owned(),
        reason,
    };
    let missing = |ext, why| ShpError::Missing {
        path: path.to_owned(),
        name: name.to_owned(),
        ext,
        why,
    };
    let prj = m.prj.as_ref().ok_or_else(|| {
        missing(
            ".prj",
            "its coordinate system is unknown (give the shapefile its .prj, e.g. `ogr2ogr -a_srs EPSG:4326`)",
        )
    })?;
    let crs = Crs::from_wkt(&String::from_utf8_lossy(prj)).map_err(|source| ShpError::Crs {
        path: path.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    let dbf = m
        .dbf
        .as_ref()
        .ok_or_else(|| missing(".dbf", "a shapefile needs its attribute table"))?;
    let shp = m.shp.as_ref().expect("only sets with a .shp are read");
    if shp.len() < 100 {
        return Err(corrupt(format!(
            ".shp is {} bytes, shorter than its 100-byte header",
            shp.len()
        )));
    }
    let (count, unsound) = complete_records(shp);
    let decimals = decimals(dbf);
    let mut builder = dbase::ReaderBuilder::new();
    if let Some(e) = encoding(path, name, &m, dbf)? {
        builder = builder.with_encoding(e);
    }
    let mut table = builder
        .build(Cursor::new(dbf.as_slice()))
        .map_err(|e| corrupt(format!(".dbf: {e}")))?;
    let mut shapes = shapefile::ShapeReader::new(Cursor::new(shp.as_slice()))
        .map_err(|e| corrupt(format!(".shp: {e}")))?;
    let rows = table.header().num_records as usize;
    let mut rows_iter = table.iter_records();
    let mut shapes_iter = shapes.iter_shapes();
    for fid in 0..count {
        let position = Position::Table {
            table: name.to_owned(),
            fid: fid as i64,
        };
        let shape = shapes_iter.next();
        let row = if fid < rows { rows_iter.next() } else { None };
        let record = match (shape, row) {
            (Some(Ok(shape)), Some(Ok(row))) => to_geo(shape, &position).map(|g| {
                (
                    position,
                    Feature {
                        geometry: crs.geometry_to_lon_lat(g),
                        properties: properties(row, &decimals),
                    },
                )
            }),
            (Some(Err(e)), _) => {
                out.push(Err(RecordError::new(
                    position,
                    Some("geometry"),
                    format!("is unreadable: {e}"),
                )));
                // The reader cannot find the next record after a bad one.
                return Ok(());
            }
            (None, _) => Err(RecordError::new(position, None, "is missing from the .shp")),
            (_, Some(Err(e))) => Err(RecordError::new(
                position,
                None,
                format!("its .dbf row is unreadable: {e}"),
            )),
            (_, None) => Err(RecordError::new(
                position,
                None,
                format!("has no .dbf row (the .dbf has {rows})"),
            )),
        };
        out.push(record);
    }
    // The records after an unsound one cannot be found (its length is not to be trusted).
    if let Some(why) = unsound {
        out.push(Err(RecordError::new(
            Position::Table {
                table: name.to_owned(),
                fid: count as i64,
            },
            None,
            why,
        )));
    }
    Ok(())
}

fn coords<P: HasXy>(points: &[P]) -> Vec<Coord<f64>> {
    points
        .iter()
        .map(|p| Coord {
            x: p.xy().0,
            y: p.xy().1,
        })
        .collect()
}

/// The x and y of a shapefile point of any flavour (plain, M, Z).
trait HasXy {
    fn xy(&self) -> (f64, f64);
}
impl HasXy for shapefile::Point {
    fn xy(&self) -> (f64, f64) {
        (self.x, self.y)
    }
}
impl HasXy for shapefile::PointM {
    fn xy(&self) -> (f64, f64) {
        (self.x, self.y)
    }
}
impl HasXy for shapefile::PointZ {
    fn xy(&self) -> (f64, f64) {
        (self.x, self.y)
    }
}

fn lines<P: HasXy>(parts: &[Vec<P>]) -> geo::Geometry<f64> {
    let mut ls: Vec<LineString<f64>> = parts.iter().map(|p| LineString(coords(p))).collect();
    if ls.len() == 1 {
        ls.pop().expect("one part").into()
    } else {
        MultiLineString(ls).into()
    }
}

/// Shapefile polygons list rings, outer ones clockwise and holes counter-clockwise, with
/// no say which outer ring a hole belongs to: a hole goes to the first outer ring that
/// contains its first vertex (the last one if none does), as GDAL assigns them.
fn polygons<P: HasXy>(rings: &[shapefile::PolygonRing<P>]) -> geo::Geometry<f64> {
    let mut outers: Vec<Polygon<f64>> = Vec::new();
    let mut holes = Vec::new();
    for r in rings {
        match r {
            shapefile::PolygonRing::Outer(p) => {
                outers.push(Polygon::new(LineString(coords(p)), vec![]))
            }
            shapefile::PolygonRing::Inner(p) => holes.push(LineString(coords(p))),
        }
    }
    if outers.is_empty() {
        // Only counter-clockwise rings: they can only be outer rings written the wrong way.
        outers = holes.drain(..).map(|h| Polygon::new(h, vec![])).collect();
    }
    for h in holes {
        let at = h.0.first().copied().and_then(|c| {
            outers
                .iter()
                .position(|o| o.exterior().0.len() >= 4 && o.contains(&Point(c)))
        });
        let i = at.unwrap_or(outers.len() - 1);
        outers[i].interiors_push(h);
    }
    if outers.len() == 1 {
        outers.pop().expect("one polygon").into()
    } else {
        MultiPolygon(outers).into()
    }
}

fn to_geo(shape: shapefile::Shape, position: &Position) -> Result<geo::Geometry<f64>, RecordError> {
    use shapefile::Shape as S;
    Ok(match shape {
        S::Point(p) => Point::new(p.x, p.y).into(),
        S::PointM(p) => Point::new(p.x, p.y).into(),
        S::PointZ(p) => Point::new(p.x, p.y).into(),
        S::Multipoint(m) => MultiPoint(coords(m.points()).into_iter().map(Point).collect()).into(),
        S::MultipointM(m) => MultiPoint(coords(m.points()).into_iter().map(Point).collect()).into(),
        S::MultipointZ(m) => MultiPoint(coords(m.points()).into_iter().map(Point).collect()).into(),
        S::Polyline(l) => lines(l.parts()),
        S::PolylineM(l) => lines(l.parts()),
        S::PolylineZ(l) => lines(l.parts()),
        S::Polygon(p) if !p.rings().is_empty() => polygons(p.rings()),
        S::PolygonM(p) if !p.rings().is_empty() => polygons(p.rings()),
        S::PolygonZ(p) if !p.rings().is_empty() => polygons(p.rings()),
        S::Polygon(_) | S::PolygonM(_) | S::PolygonZ(_) => {
            return Err(RecordError::new(
                position.clone(),
                Some("geometry"),
                "is a polygon with no rings",
            ));
        }
        S::NullShape => {
            return Err(RecordError::new(
                position.clone(),
                Some("geometry"),
                "is a null shape; every feature needs a geometry",
            ));
        }
        S::Multipatch(_) => {
            return Err(RecordError::new(
                position.clone(),
                Some("geometry"),
                "is a multipatch (a 3D surface), which urbantile does not read",
            ));
        }
    })
}

fn number(v: f64, integral: bool) -> serde_json::Value {
    if integral && v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        return (v as i64).into();
    }
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn properties(row: dbase::Record, decimals: &BTreeMap<String, u8>) -> Properties {
    use dbase::FieldValue as F;
    let mut out = Properties::new();
    for (name, value) in row {
        let integral = decimals.get(&name).is_some_and(|d| *d == 0);
        let v = match value {
            F::Character(Some(s)) | F::Memo(s) => {
                let t = s.trim_end();
                if t.is_empty() {
                    serde_json::Value::Null
                } else {
                    t.into()
                }
            }
            F::Numeric(Some(n)) => number(n, integral),
            F::Float(Some(f)) => {
                // Through its shortest text: 12.3f32 is 12.3, not 12.300000190734863.
                number(f.to_string().parse().unwrap_or(f64::NAN), integral)
            }
            F::Logical(Some(b)) => b.into(),
            F::Date(Some(d)) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()).into(),
            F::Integer(i) => i.into(),
            F::Double(d) | F::Currency(d) => number(d, false),
            F::DateTime(dt) => {
                let (d, t) = (dt.date(), dt.time());
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    d.year(),
                    d.month(),
                    d.day(),
                    t.hours(),
                    t.minutes(),
                    t.seconds()
                )
                .into()
            }
            F::Character(None)
            | F::Numeric(None)
            | F::Float(None)
            | F::Logical(None)
            | F::Date(None) => serde_json::Value::Null,
        };
        out.insert(name, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn square(x: f64, y: f64, side: f64, clockwise: bool) -> Vec<shapefile::Point> {
        let mut p = vec![
            shapefile::Point::new(x, y),
            shapefile::Point::new(x, y + side),
            shapefile::Point::new(x + side, y + side),
            shapefile::Point::new(x + side, y),
            shapefile::Point::new(x, y),
        ];
        if !clockwise {
            p.reverse();
        }
        p
    }

    #[test]
    fn a_hole_listed_after_another_outer_ring_goes_to_the_ring_around_it() {
        use shapefile::PolygonRing::{Inner, Outer};
        let rings = [
            Outer(square(0.0, 0.0, 10.0, true)),
            Outer(square(20.0, 0.0, 10.0, true)),
            Inner(square(2.0, 2.0, 2.0, false)),
        ];
        let geo::Geometry::MultiPolygon(mp) = polygons(&rings) else {
            panic!("two outer rings make a multipolygon")
        };
        assert_eq!(mp.0[0].interiors().len(), 1);
        assert_eq!(mp.0[1].interiors().len(), 0);
    }

    #[test]
    fn a_zip_member_that_inflates_past_the_bound_is_refused_whatever_it_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("bomb.shp", deflated).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..3 {
            zip.write_all(&zeros).unwrap();
        }
        zip.start_file("bomb.prj", deflated).unwrap();
        zip.write_all(
            br#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]]]"#,
        )
        .unwrap();
        zip.finish().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 20_000);
        let e = read_within(&path, None, 2 << 20).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "bomb.zip, shapefile \"bomb\": bomb.shp inflates past the limit of 2097152 bytes"
            ),
            "{e}"
        );
        // Under the bound it is read, and then refused for what it is.
        let e = read_within(&path, None, 4 << 20).unwrap_err();
        assert!(e.to_string().contains("no .dbf file"), "{e}");
    }

    #[test]
    fn record_walk_stops_at_a_record_longer_than_the_file_or_with_parts_past_its_points() {
        let mut shp = vec![0u8; 100];
        // Record 1: 4 words (a null shape and padding); record 2 claims 1000 words.
        shp.extend(1i32.to_be_bytes());
        shp.extend(4i32.to_be_bytes());
        shp.extend([0u8; 8]);
        shp.extend(2i32.to_be_bytes());
        shp.extend(1000i32.to_be_bytes());
        shp.extend([0u8; 10]);
        assert_eq!(
            complete_records(&shp),
            (1, Some("the .shp is truncated inside this record"))
        );
        assert_eq!(complete_records(&shp[..116]), (1, None));
        // A polyline whose second part starts past its point count.
        let mut shp = vec![0u8; 100];
        shp.extend(1i32.to_be_bytes());
        shp.extend(((44 + 8 + 32) / 2i32).to_be_bytes());
        shp.extend(3i32.to_le_bytes());
        shp.extend([0u8; 32]);
        shp.extend(2i32.to_le_bytes());
        shp.extend(2i32.to_le_bytes());
        shp.extend(0i32.to_le_bytes());
        shp.extend(1_000_000_000i32.to_le_bytes());
        shp.extend([0u8; 32]);
        assert_eq!(
            complete_records(&shp),
            (
                0,
                Some("its part offsets or point count do not fit the record")
            )
        );
    }
}
