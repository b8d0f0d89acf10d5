//! The bodies of urbantile's fuzz targets, in plain Rust.
//!
//! Each `pub fn TARGET(data: &[u8])` feeds `data` to one surface of the library and panics
//! exactly when it finds a defect: a panic inside the library, or an answer that breaks the
//! surface's contract (an oracle below). The cargo-fuzz targets in `fuzz/fuzz_targets/`
//! call these, and so does the main crate's replay test `tests/fuzz_corpus.rs`, which runs
//! every committed corpus file (and deterministic mutations of them) on every `cargo test`.
//!
//! Only public library API is used; state that is costly to build (small layer indexes, an
//! in-process server over a throwaway store) is built once per process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use geo::{BoundingRect, Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Polygon};
use urbantile::composite::{TileLayer, render_tile};
use urbantile::config::LayerDef;
use urbantile::filter::Filter;
use urbantile::index::LayerIndex;
use urbantile::ingest::validate::validate;
use urbantile::ingest::{Position, Record};
use urbantile::model::{Feature, FeatureId, GeometryKind, Properties, StoredFeature};
use urbantile::tiles::mercator::{HALF_WORLD, epsg3857_to_lon_lat, lon_lat_to_3857};
use urbantile::tiles::{BUFFER_UNITS, EXTENT, ProjectedGeometry, TileCoord};

/// A target's body: one input, a panic for a finding.
pub type Body = fn(&[u8]);

/// Every target, by the name of its folder under `fuzz/corpus/` and its cargo-fuzz binary.
pub const TARGETS: &[(&str, Body)] = &[
    ("cql2_text", cql2_text),
    ("cql2_json", cql2_json),
    ("geojson_write", geojson_write),
    ("geojsonseq", geojsonseq),
    ("csv", csv),
    ("osm_pbf", osm_pbf),
    ("wkt", wkt),
    ("request", request),
    ("mvt_roundtrip", mvt_roundtrip),
    ("gpkg_geometry", gpkg_geometry),
    ("crs_wkt", crs_wkt),
    ("shapefile", shapefile),
    ("fgb", fgb),
    ("token", token),
    ("jwks", jwks),
    ("pmtiles", pmtiles),
    ("snapshot", snapshot),
];

/// Records read from one input at most; a reader must still be safe past it, but the
/// fuzzer's time is better spent on other inputs.
const MAX_RECORDS: usize = 5_000;

/// With `URBANTILE_FUZZ_DEBUG` set, says what an input did (to check that seeds reach deep).
fn debug(line: impl FnOnce() -> String) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("URBANTILE_FUZZ_DEBUG").is_some()) {
        eprintln!("{}", line());
    }
}

// ---------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------

/// The repository root: layer files name their sources relative to it. The bodies are
/// compiled both in the main crate (tests) and in `fuzz/`.
fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if !dir.join("layers").is_dir() {
        dir.pop();
    }
    dir
}

fn layer(id: &str, toml: &str) -> LayerDef {
    LayerDef::from_toml(Path::new(&format!("{id}.toml")), toml).expect("a valid fuzz layer")
}

/// A layer of each geometry kind, with a validity interval and typed properties.
fn layer_of(kind: GeometryKind, minzoom: u8, maxzoom: u8) -> LayerDef {
    layer(
        kind.as_str(),
        &format!(
            "title = \"Fuzz\"\ngeometry = \"{kind}\"\nminzoom = {minzoom}\nmaxzoom = {maxzoom}\n\
             properties = [\"name\", \"n\", \"status\", \"open\", \"from\", \"to\"]\n\
             time = {{ start = \"from\", end = \"to\" }}\n"
        ),
    )
}

const KINDS: [GeometryKind; 3] = [
    GeometryKind::Point,
    GeometryKind::Line,
    GeometryKind::Polygon,
];

fn props(i: u64) -> Properties {
    let mut p = Properties::new();
    p.insert("name".into(), format!("Spot {i}").into());
    p.insert("n".into(), i.into());
    if !i.is_multiple_of(3) {
        p.insert(
            "status".into(),
            if i.is_multiple_of(2) {
                "open"
            } else {
                "closed"
            }
            .into(),
        );
    }
    p.insert("open".into(), i.is_multiple_of(2).into());
    p.insert(
        "from".into(),
        format!("2026-0{}-01T00:00:00Z", 1 + i % 9).into(),
    );
    if !i.is_multiple_of(4) {
        p.insert(
            "to".into(),
            format!("2026-0{}-15T12:30:00+02:00", 1 + i % 9).into(),
        );
    }
    p
}

/// Small indexes of points, lines and polygons (one with a hole) around central Helsinki,
/// for filters to be checked against and evaluated on.
fn small_layers() -> &'static [(LayerDef, LayerIndex)] {
    static LAYERS: OnceLock<Vec<(LayerDef, LayerIndex)>> = OnceLock::new();
    LAYERS.get_or_init(|| {
        KINDS
            .iter()
            .map(|&kind| {
                let def = layer_of(kind, 10, 16);
                let features = (0..12u64)
                    .map(|i| {
                        let x = 24.90 + i as f64 * 0.01;
                        let y = 60.10 + (i % 4) as f64 * 0.01;
                        let geometry: geo::Geometry<f64> = match kind {
                            GeometryKind::Point => geo::Point::new(x, y).into(),
                            GeometryKind::Line => {
                                LineString::from(vec![(x, y), (x + 0.005, y + 0.01), (x + 0.02, y)])
                                    .into()
                            }
                            GeometryKind::Polygon => {
                                let shell = LineString::from(vec![
                                    (x, y),
                                    (x + 0.01, y),
                                    (x + 0.01, y + 0.01),
                                    (x, y + 0.01),
                                    (x, y),
                                ]);
                                let holes = if i % 2 == 0 {
                                    vec![LineString::from(vec![
                                        (x + 0.002, y + 0.002),
                                        (x + 0.002, y + 0.004),
                                        (x + 0.004, y + 0.004),
                                        (x + 0.002, y + 0.002),
                                    ])]
                                } else {
                                    vec![]
                                };
                                Polygon::new(shell, holes).into()
                            }
                        };
                        StoredFeature {
                            id: FeatureId(i),
                            version: 0,
                            feature: Feature {
                                geometry,
                                properties: props(i),
                            },
                        }
                    })
                    .collect();
                let index = LayerIndex::build(&def, features);
                (def, index)
            })
            .collect()
    })
}

fn write_layers() -> &'static [LayerDef] {
    static DEFS: OnceLock<Vec<LayerDef>> = OnceLock::new();
    DEFS.get_or_init(|| KINDS.iter().map(|&k| layer_of(k, 12, 16)).collect())
}

fn def_for(geometry: &geo::Geometry<f64>) -> &'static LayerDef {
    let kind = GeometryKind::of(geometry).unwrap_or(GeometryKind::Point);
    &write_layers()[KINDS.iter().position(|&k| k == kind).unwrap()]
}

// ---------------------------------------------------------------------------------------
// CQL2
// ---------------------------------------------------------------------------------------

/// A CQL2 filter either parses, or is refused with an error that says something; one that
/// parses is evaluated on every feature of small indexes of each geometry kind.
fn cql2(data: &[u8], lang: &str) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (def, index) in small_layers() {
        match Filter::parse(def, index, text, lang) {
            Ok(filter) => {
                let _ = filter.prefilter();
                for f in index.features() {
                    let _ = filter.matches(index, f);
                }
            }
            Err(e) => assert!(!e.to_string().is_empty(), "an empty filter error"),
        }
    }
}

pub fn cql2_text(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    cql2(data, "cql2-text");
}

pub fn cql2_json(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    cql2(data, "cql2-json");
}

// ---------------------------------------------------------------------------------------
// Readers and write validation
// ---------------------------------------------------------------------------------------

/// What must hold of a record a reader gave: an error names a position that `at` accepts;
/// a feature has one, too, and is then validated (which must not panic either, and whose
/// error names the same position). Returns the valid feature, if any.
fn check_record(r: Record, at: impl Fn(&Position) -> bool) -> Option<(&'static LayerDef, Feature)> {
    match r {
        Err(e) => {
            assert!(at(&e.position), "record error at {:?}: {e}", e.position);
            assert!(!e.reason.is_empty(), "record error without a reason");
            None
        }
        Ok((position, feature)) => {
            assert!(at(&position), "record at {position:?}");
            let def = def_for(&feature.geometry);
            match validate(def, &position, feature) {
                Ok(nf) => Some((def, nf.feature)),
                Err(e) => {
                    assert_eq!(e.position, position, "a validation error moved: {e}");
                    None
                }
            }
        }
    }
}

/// A written, valid feature goes into a layer index and tiles are cut around it: the
/// tiles must be valid MVT 2.1.
fn index_and_render(def: &LayerDef, feature: Feature) {
    let Some(Coord { x, y }) = geo::CoordsIter::coords_iter(&feature.geometry).next() else {
        return;
    };
    let index = LayerIndex::build(
        def,
        vec![StoredFeature {
            id: FeatureId(1),
            version: 0,
            feature,
        }],
    );
    let index = Arc::new(parking_lot::RwLock::new(index));
    let (mx, my) = lon_lat_to_3857(x, y);
    for z in [def.minzoom, def.maxzoom, def.maxzoom + 3] {
        let tile = tile_at(z, mx, my);
        let layers = [TileLayer {
            def,
            index: &index,
            filter: None,
        }];
        let rendered = render_tile(&layers, tile, None);
        check_tile(
            &rendered.bytes,
            &format!("tile {}/{}/{}", tile.z, tile.x, tile.y),
        );
    }
}

/// The tile of zoom `z` holding an EPSG:3857 position (clamped to the world).
fn tile_at(z: u8, x: f64, y: f64) -> TileCoord {
    let n = 1u64 << z;
    let span = 2.0 * HALF_WORLD / n as f64;
    let col = (((x + HALF_WORLD) / span).floor().max(0.0) as u64).min(n - 1);
    let row = (((HALF_WORLD - y) / span).floor().max(0.0) as u64).min(n - 1);
    TileCoord::new(z as u32, col, row).expect("a tile inside the scheme")
}

/// A GeoJSON feature body as the write routes read it (PUT: one Feature; POST: a Feature
/// or a FeatureCollection), validated as a write is, then indexed and drawn.
pub fn geojson_write(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    use urbantile::ingest::geojson::{feature_record, read_collection};
    if let Ok(f) = serde_json::from_slice::<geojson::Feature>(data) {
        let at = Position::Stored(7);
        if let Some((def, f)) = check_record(feature_record(at.clone(), f), |p| *p == at) {
            index_and_render(def, f);
        }
    }
    if let Ok(records) = read_collection(data) {
        let n = records.len() as u64;
        for r in records.into_iter().take(MAX_RECORDS) {
            if let Some((def, f)) = check_record(r, |p| matches!(p, Position::Feature(i) if *i < n))
            {
                index_and_render(def, f);
            }
        }
    }
}

/// Line numbers a line-oriented reader may name for `data`: 1 up to the count of line
/// breaks (either kind) plus one.
fn line_bound(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64 + 1
}

pub fn geojsonseq(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let lines = line_bound(data);
    let mut last = 0;
    for r in urbantile::ingest::geojson::read_seq(data).take(MAX_RECORDS) {
        let at = |p: &Position| matches!(p, Position::Line(n) if (1..=lines).contains(n));
        let line = match &r {
            Ok((Position::Line(n), _)) => *n,
            Err(e) => match e.position {
                Position::Line(n) => n,
                _ => 0,
            },
            _ => 0,
        };
        assert!(line > last, "line {line} after line {last}");
        last = line;
        check_record(r, at);
    }
}

pub fn csv(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let lines = line_bound(data);
    let Ok(records) = urbantile::ingest::csv::read_csv(std::io::Cursor::new(data.to_vec())) else {
        return;
    };
    // The header is line 1 or later, so a record is on line 2 or later.
    for r in records.take(MAX_RECORDS) {
        check_record(
            r,
            |p| matches!(p, Position::Line(n) if (2..=lines).contains(n)),
        );
    }
}

/// The tag filters of the bundled layers that read OSM, and a few more.
const OSM_FILTERS: &[&str] = &[
    "building",
    "landuse",
    "leisure=park|garden;landuse=recreation_ground",
    "amenity=cafe|restaurant|bar|pub|ice_cream;leisure=outdoor_seating",
    "highway=cycleway;cycleway=*;bicycle=designated",
    "highway&name",
    "natural=*&natural!=water",
];

thread_local! {
    static IN_PBF_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static IN_FGB_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics the library raises inside code of its own that catches them (`catch_unwind`),
/// and turns into errors: the PBF decoder's in `read_osm` (osmpbf, protobuf), the
/// FlatGeobuf decoder's per feature in `read_fgb` (flatgeobuf, flatbuffers), the polygon
/// overlay's in the geometry repair (i_overlay), geo's relate graph's in interior points
/// and ring containment. libFuzzer's panic hook would abort on such a panic before it
/// unwinds to the code that catches it, so this hook lets those through (the decoder's
/// only while `read_osm` runs); any other panic still goes to the hook before (libFuzzer's,
/// or the default). A panic let through that nothing catches still ends the run: it cannot
/// unwind out of the fuzz target.
fn let_the_library_catch_its_own_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map_or("", |l| l.file());
            let decoder = file.contains("/osmpbf-") || file.contains("/protobuf-");
            let fgb = file.contains("/flatgeobuf-") || file.contains("/flatbuffers-");
            let caught = file.contains("/i_overlay-")
                || (file.contains("/geo-") && file.contains("/algorithm/relate/"));
            if !(caught
                || decoder && IN_PBF_DECODER.with(|f| f.get())
                || fgb && IN_FGB_DECODER.with(|f| f.get()))
            {
                previous(info);
            }
        }));
    });
}

pub fn osm_pbf(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    use urbantile::ingest::osm::{TagFilter, read_osm};
    // One file per thread, rewritten for each input.
    thread_local! {
        static FILE: tempfile::NamedTempFile =
            tempfile::Builder::new().suffix(".osm.pbf").tempfile().expect("a temp file");
    }
    let path = FILE.with(|f| {
        std::fs::write(f.path(), data).expect("writing the temp file");
        f.path().to_owned()
    });
    IN_PBF_DECODER.with(|f| f.set(true));
    let read = read_osm(&path);
    IN_PBF_DECODER.with(|f| f.set(false));
    let osm = match read {
        Ok(osm) => osm,
        Err(e) => {
            assert!(
                e.to_string().contains(&*path.to_string_lossy()),
                "an OSM error that does not name its file: {e}"
            );
            return;
        }
    };
    let _ = osm.stats();
    let _ = osm.extent();
    for text in OSM_FILTERS {
        let filter = TagFilter::parse(text).expect("a valid tag filter");
        for kind in KINDS {
            for r in osm.features(&filter, kind).into_iter().take(MAX_RECORDS) {
                check_record(r, |p| matches!(p, Position::Osm { .. }));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Planners' formats
// ---------------------------------------------------------------------------------------

/// `data` in a temp file of its own per thread and suffix, rewritten for each input.
fn temp_file(data: &[u8], suffix: &'static str) -> PathBuf {
    thread_local! {
        static FILES: std::cell::RefCell<Vec<(&'static str, tempfile::NamedTempFile)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    FILES.with(|files| {
        let mut files = files.borrow_mut();
        if !files.iter().any(|(s, _)| *s == suffix) {
            let f = tempfile::Builder::new()
                .suffix(suffix)
                .tempfile()
                .expect("a temp file");
            files.push((suffix, f));
        }
        let (_, f) = files
            .iter()
            .find(|(s, _)| *s == suffix)
            .expect("made above");
        std::fs::write(f.path(), data).expect("writing the temp file");
        f.path().to_owned()
    })
}

/// A GeoPackage geometry blob as `gpkg_geometry` decodes it: an error, or a geometry
/// that validates (or not) for its kind's layer and is indexed and drawn if valid.
pub fn gpkg_geometry(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let Ok(geometry) = urbantile::ingest::wkb::gpkg_geometry(data) else {
        return;
    };
    let at = Position::Table {
        table: "fuzz".into(),
        fid: 1,
    };
    let feature = Feature {
        geometry,
        properties: Properties::new(),
    };
    if let Some((def, f)) = check_record(Ok((at.clone(), feature)), |p| *p == at) {
        index_and_render(def, f);
    }
}

/// WKT as `Crs::from_wkt` reads it: an error naming something, or a CRS whose way to
/// WGS84 gives finite numbers for finite grid coordinates near its origin.
pub fn crs_wkt(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    use urbantile::ingest::crs::Crs;
    let text = String::from_utf8_lossy(data);
    match Crs::from_wkt(&text) {
        Err(e) => assert!(
            !e.why.is_empty() && !e.name.is_empty(),
            "an empty CRS error: {e}"
        ),
        Ok(crs) => {
            for (x, y) in [(0.0, 0.0), (500_000.0, 6_670_000.0), (24.9, 60.2)] {
                let c = crs.to_lon_lat(Coord { x, y });
                debug(|| format!("{crs:?}: ({x}, {y}) -> {c:?}"));
            }
        }
    }
}

/// A zip read as a zipped shapefile: an error naming the file, or records at table
/// positions (a shapefile of the zip and a record number), validated.
pub fn shapefile(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let path = temp_file(data, ".shp.zip");
    match urbantile::ingest::shp::read_shapefile(&path, None) {
        Err(e) => assert!(
            e.to_string().contains(&*path.to_string_lossy()),
            "a shapefile error that does not name its file: {e}"
        ),
        Ok(records) => {
            for r in records.take(MAX_RECORDS) {
                check_record(r, |p| matches!(p, Position::Table { fid, .. } if *fid >= 0));
            }
        }
    }
}

/// A FlatGeobuf file: an error naming the file, or records at increasing feature
/// indexes, validated.
pub fn fgb(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let path = temp_file(data, ".fgb");
    IN_FGB_DECODER.with(|f| f.set(true));
    let read = urbantile::ingest::fgb::read_fgb(&path);
    let records: Vec<Record> = match read {
        Err(e) => {
            IN_FGB_DECODER.with(|f| f.set(false));
            assert!(
                e.to_string().contains(&*path.to_string_lossy()),
                "a FlatGeobuf error that does not name its file: {e}"
            );
            return;
        }
        Ok(records) => records.take(MAX_RECORDS).collect(),
    };
    IN_FGB_DECODER.with(|f| f.set(false));
    for (next, r) in records.into_iter().enumerate() {
        let i = match &r {
            Ok((Position::Feature(i), _)) => *i,
            Err(e) => match e.position {
                Position::Feature(i) => i,
                _ => u64::MAX,
            },
            _ => u64::MAX,
        };
        assert_eq!(i, next as u64, "feature {i} where feature {next} belongs");
        check_record(r, |p| matches!(p, Position::Feature(_)));
    }
}

// ---------------------------------------------------------------------------------------
// WKT
// ---------------------------------------------------------------------------------------

/// WKT as the library reads it: a CSV geometry cell (one record, with an error naming
/// line 2 and the column if it is bad), and a geometry literal (parse, convert, check
/// validity, project, and relate to a feature as a spatial filter does).
pub fn wkt(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    use geo::{Relate, Validation};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cell = text.replace('"', "\"\"");
    let file = format!("id,wkt\n1,\"{cell}\"\n");
    let records: Vec<Record> = urbantile::ingest::csv::read_csv(std::io::Cursor::new(file))
        .expect("the header names a WKT column")
        .collect();
    assert_eq!(records.len(), 1, "one row, one record");
    for r in records {
        if let Err(e) = &r {
            // A cell that breaks the CSV quoting is the CSV reader's error, without a field.
            if e.field.is_some() {
                assert_eq!(e.field.as_deref(), Some("wkt"), "{e}");
            }
        }
        check_record(r, |p| *p == Position::Line(2));
    }
    let Ok(parsed) = text.parse::<wkt::Wkt<f64>>() else {
        return;
    };
    let Ok(geometry) = geo::Geometry::<f64>::try_from(parsed) else {
        return;
    };
    // As ingest and the CQL2 filter do: coordinates outside CRS84 bounds are refused before
    // geo's validity check, which can panic on them (it relates rings to each other).
    let in_bounds = geo::CoordsIter::coords_iter(&geometry)
        .all(|c| (-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y));
    if !in_bounds {
        return;
    }
    let valid = geometry.is_valid();
    let _ = geometry.bounding_rect();
    let Some(projected) = ProjectedGeometry::from_lon_lat(&geometry) else {
        return;
    };
    let _ = projected.bounds();
    if !valid {
        return;
    }
    let (_, index) = &small_layers()[2];
    let literal = match &projected {
        ProjectedGeometry::Points(m) => geo::Geometry::MultiPoint(m.clone()),
        ProjectedGeometry::Lines(m) => geo::Geometry::MultiLineString(m.clone()),
        ProjectedGeometry::Polygons(m) => geo::Geometry::MultiPolygon(m.clone()),
    };
    if geo::CoordsIter::coords_iter(&literal).any(|c| !c.x.is_finite() || !c.y.is_finite()) {
        return;
    }
    // As the CQL2 filter does: a literal that Web Mercator's clamping makes invalid is
    // refused before any relate test.
    if !literal.is_valid() {
        return;
    }
    for f in index.features().take(3) {
        let ProjectedGeometry::Polygons(p) = &f.geometry else {
            continue;
        };
        let m = geo::Geometry::MultiPolygon(p.clone()).relate(&literal);
        let _ = (m.is_intersects(), m.is_within(), m.is_contains());
    }
}

// ---------------------------------------------------------------------------------------
// Requests through the router, in process
// ---------------------------------------------------------------------------------------

/// Small bundled layers of each kind (one private, read with a key).
const SERVED: &[&str] = &[
    "accidents",
    "traffic_jams",
    "dog_parks",
    "toll_zones",
    "construction_permits",
];
const PRIVATE: &str = "dog_parks";

struct Server {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    /// A key that reads every layer; `$KEY` in a header value stands for it.
    key: String,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        use urbantile::api::{AppState, router};
        use urbantile::auth::{KeyInfo, Scope, generate_key, hash_key};
        use urbantile::dataset::Dataset;
        let root = repo_root();
        let dir = tempfile::tempdir().expect("a temp folder");
        let layers = dir.path().join("layers");
        std::fs::create_dir(&layers).unwrap();
        for id in SERVED {
            let text = std::fs::read_to_string(root.join(format!("layers/{id}.toml"))).unwrap();
            let text = text.replace("path = \"", &format!("path = \"{}/", root.display()));
            let text = if *id == PRIVATE {
                text.replace("[source]", "private = true\n[source]")
            } else {
                text
            };
            std::fs::write(layers.join(format!("{id}.toml")), text).unwrap();
        }
        let url = format!("sqlite://{}", dir.path().join("urbantile.db").display());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (app, key) = runtime.block_on(async {
            let data = Dataset::open(&layers, &url).await.expect("the store opens");
            data.ingest_sources_if_empty()
                .await
                .expect("the bundled data ingests");
            let key = generate_key().unwrap();
            let info = KeyInfo {
                name: "fuzz".into(),
                read: Scope::parse("*", data.layers()).unwrap(),
                write: Scope::parse("", data.layers()).unwrap(),
                created_at: 0,
                revoked_at: None,
            };
            data.store().add_key(&info, &hash_key(&key)).await.unwrap();
            let data = data.go_live().await.expect("the dataset goes live");
            (router(AppState::new(data)), key)
        });
        Server {
            runtime,
            app,
            key,
            _dir: dir,
        }
    })
}

/// One request: the first line is the target (path and query), optionally after `HEAD `;
/// the lines after it, up to a blank one, are headers `Name: value`. The answer must not be
/// a 500, nor any 5xx but 503; a tile answered 200 must be valid MVT 2.1.
pub fn request(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    use axum::body::Body;
    use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, header};
    use tower::ServiceExt;

    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let (method, target) = match first.strip_prefix(b"HEAD ") {
        Some(rest) => (Method::HEAD, rest),
        None => (Method::GET, first.strip_prefix(b"GET ").unwrap_or(first)),
    };
    let target = if target.starts_with(b"/") {
        target.to_vec()
    } else {
        [b"/".as_slice(), target].concat()
    };
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let server = server();
    let mut builder = Request::builder().method(method).uri(uri.clone());
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .replace("$KEY", &server.key);
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let Ok(req) = builder.body(Body::empty()) else {
        return;
    };
    let (status, headers, body) = server.runtime.block_on(async {
        let resp = server
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        let streaming = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        // A change feed never ends: its head is the answer.
        let body = if streaming {
            Default::default()
        } else {
            axum::body::to_bytes(body, 256 << 20)
                .await
                .expect("the body reads whole")
        };
        (parts.status, parts.headers, body)
    });
    debug(|| format!("{status} {uri} ({} bytes)", body.len()));
    assert!(
        !status.is_server_error() || status.as_u16() == 503,
        "{status} for {uri}: {}",
        String::from_utf8_lossy(&body[..body.len().min(2000)])
    );
    let is_tile = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/vnd.mapbox-vector-tile");
    if status.as_u16() == 200 && is_tile && !body.is_empty() {
        use urbantile::tiles::compress::{Encoding, decode};
        let encoding = match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
            None => Encoding::Identity,
            Some(b"gzip") => Encoding::Gzip,
            Some(b"zstd") => Encoding::Zstd,
            Some(other) => panic!(
                "{uri}: a tile in an unknown encoding {:?}",
                String::from_utf8_lossy(other)
            ),
        };
        let bytes = decode(&body, encoding)
            .unwrap_or_else(|e| panic!("{uri}: a {encoding:?} tile does not decode: {e}"));
        check_tile(&bytes, &uri.to_string());
    }
}

// ---------------------------------------------------------------------------------------
// MVT round trip
// ---------------------------------------------------------------------------------------

/// Reads fuzz bytes as numbers; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn i16(&mut self) -> i16 {
        i16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Tile-local units (x right, y down; 0..EXTENT across the tile) to EPSG:3857, clamped to
/// the world.
fn local_to_3857(tile: TileCoord, p: [f64; 2]) -> Coord<f64> {
    let b = tile.bounds_3857();
    let unit = tile.span_3857() / EXTENT as f64;
    Coord {
        x: (b.min_x + p[0] * unit).clamp(-HALF_WORLD, HALF_WORLD),
        y: (b.max_y - p[1] * unit).clamp(-HALF_WORLD, HALF_WORLD),
    }
}

fn to_local(tile: TileCoord, c: Coord<f64>) -> [f64; 2] {
    let b = tile.bounds_3857();
    let unit = tile.span_3857() / EXTENT as f64;
    [(c.x - b.min_x) / unit, (b.max_y - c.y) / unit]
}

/// Arbitrary geometry of one kind, drawn around one tile of one zoom of a layer, is
/// indexed and cut into that tile. The tile must decode (by geozero, an independent
/// decoder) and be valid MVT 2.1: see [`check_tile`]. Points must also come out where they
/// went in: every point inside the tile plus buffer is in the tile, and nothing else is.
pub fn mvt_roundtrip(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let mut r = Bytes(data);
    let kind = KINDS[r.u8() as usize % 3];
    let maxzoom = r.u8() % 25;
    let minzoom = maxzoom.saturating_sub(r.u8() % 3);
    // From the layer's minzoom to a few zooms past its maxzoom (overzoomed tiles).
    let z = (minzoom + r.u8() % 8).min(24);
    let n = 1u64 << z;
    let tile = TileCoord::new(z as u32, r.u32() as u64 % n, r.u32() as u64 % n).unwrap();
    // Units of the fuzzed coordinates, in extent units: sub-unit wiggles up to spans of
    // many tiles.
    let unit = [1.0 / 16.0, 1.0, 16.0, 1024.0][r.u8() as usize % 4];
    let point = |r: &mut Bytes| -> Coord<f64> {
        let local = [
            EXTENT as f64 / 2.0 + r.i16() as f64 * unit,
            EXTENT as f64 / 2.0 + r.i16() as f64 * unit,
        ];
        local_to_3857(tile, local)
    };
    let mut parts: Vec<(u8, Vec<Coord<f64>>)> = Vec::new();
    let count = 1 + r.u8() as usize % 6;
    for _ in 0..count {
        let flags = r.u8();
        let len = r.u8() as usize % 48;
        let mut part: Vec<Coord<f64>> = Vec::with_capacity(len + 1);
        for _ in 0..len {
            if r.is_empty() {
                break;
            }
            // Sometimes the same point again, or a step back along the last segment.
            let p = match (r.u8() % 8, part.last()) {
                (0, Some(&last)) => last,
                _ => point(&mut r),
            };
            part.push(p);
        }
        parts.push((flags, part));
    }
    let lon_lat = |c: Coord<f64>| {
        let (x, y) = epsg3857_to_lon_lat(c.x, c.y);
        Coord { x, y }
    };
    let geometry: geo::Geometry<f64> = match kind {
        GeometryKind::Point => MultiPoint(
            parts
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&c| geo::Point(lon_lat(c))))
                .collect(),
        )
        .into(),
        GeometryKind::Line => MultiLineString(
            parts
                .iter()
                .map(|(flags, p)| {
                    let mut l: Vec<Coord<f64>> = p.iter().map(|&c| lon_lat(c)).collect();
                    if flags & 1 == 1 && !l.is_empty() {
                        l.push(l[0]);
                    }
                    LineString(l)
                })
                .collect(),
        )
        .into(),
        GeometryKind::Polygon => {
            let mut polygons: Vec<(LineString<f64>, Vec<LineString<f64>>)> = Vec::new();
            for (flags, p) in &parts {
                let ring = LineString(p.iter().map(|&c| lon_lat(c)).collect());
                match polygons.last_mut() {
                    Some((_, holes)) if flags & 1 == 1 => holes.push(ring),
                    _ => polygons.push((ring, Vec::new())),
                }
            }
            MultiPolygon(
                polygons
                    .into_iter()
                    .map(|(shell, holes)| Polygon::new(shell, holes))
                    .collect(),
            )
            .into()
        }
    };
    let def = layer(
        "shapes",
        &format!(
            "title = \"Shapes\"\ngeometry = \"{kind}\"\nminzoom = {minzoom}\nmaxzoom = {maxzoom}\nproperties = [\"p\"]\n"
        ),
    );
    let mut properties = Properties::new();
    properties.insert("p".into(), (r.u8() as u64).into());
    let input: Vec<[f64; 2]> = match &geometry {
        geo::Geometry::MultiPoint(mp) => {
            mp.0.iter()
                .map(|p| {
                    let (x, y) = lon_lat_to_3857(p.x(), p.y());
                    to_local(tile, Coord { x, y })
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let index = LayerIndex::build(
        &def,
        vec![StoredFeature {
            id: FeatureId(42),
            version: 0,
            feature: Feature {
                geometry,
                properties,
            },
        }],
    );
    let index = Arc::new(parking_lot::RwLock::new(index));
    let layers = [TileLayer {
        def: &def,
        index: &index,
        filter: None,
    }];
    let rendered = render_tile(&layers, tile, None);
    let what = format!("{kind} tile {}/{}/{}", tile.z, tile.x, tile.y);
    let decoded = check_tile(&rendered.bytes, &what);
    debug(|| {
        format!(
            "{what}: {} bytes, {} features",
            rendered.bytes.len(),
            decoded.len()
        )
    });
    if kind == GeometryKind::Point {
        let out: Vec<[i64; 2]> = decoded
            .iter()
            .flat_map(|f| f.parts.iter().flatten().copied())
            .collect();
        let near = |a: [f64; 2], b: [i64; 2]| {
            (a[0] - b[0] as f64).abs() <= 1.0 && (a[1] - b[1] as f64).abs() <= 1.0
        };
        let (lo, hi) = (
            -(BUFFER_UNITS as f64) + 1.0,
            (EXTENT + BUFFER_UNITS) as f64 - 1.0,
        );
        for p in &input {
            if (lo..=hi).contains(&p[0]) && (lo..=hi).contains(&p[1]) {
                assert!(
                    out.iter().any(|&q| near(*p, q)),
                    "{what}: point {p:?} is missing from {out:?}"
                );
            }
        }
        for q in &out {
            assert!(
                input.iter().any(|&p| near(p, *q)),
                "{what}: point {q:?} is not in the input {input:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// MVT 2.1 checks
// ---------------------------------------------------------------------------------------

/// One decoded feature: its type and its parts (points; lines; rings without closing
/// point) in tile units.
pub struct DecodedFeature {
    pub kind: u32,
    pub parts: Vec<Vec<[i64; 2]>>,
}

/// Checks an encoded tile against MVT 2.1 and returns its features. Two decoders read it:
/// the command streams are walked here, with the rules of the spec (section 4.3) and the
/// tile's buffer, and then geozero's MVT reader, independent of urbantile, turns each
/// feature into a geo geometry. `what` names the tile in messages.
pub fn check_tile(bytes: &[u8], what: &str) -> Vec<DecodedFeature> {
    use geozero::ToGeo;
    use geozero::mvt::{Message, Tile};
    let mut out = Vec::new();
    if bytes.is_empty() {
        return out;
    }
    let tile = Tile::decode(bytes).unwrap_or_else(|e| panic!("{what}: not a protobuf tile: {e}"));
    let mut names = std::collections::HashSet::new();
    for layer in &tile.layers {
        let name = &layer.name;
        assert!(!name.is_empty(), "{what}: a layer without a name");
        assert!(names.insert(name.clone()), "{what}: layer {name} twice");
        assert_eq!(layer.version, 2, "{what}: layer {name}: version");
        let extent = layer.extent.unwrap_or(4096);
        assert_eq!(extent, EXTENT, "{what}: layer {name}: extent");
        assert!(!layer.features.is_empty(), "{what}: layer {name} is empty");
        for v in &layer.values {
            let set = [
                v.string_value.is_some(),
                v.float_value.is_some(),
                v.double_value.is_some(),
                v.int_value.is_some(),
                v.uint_value.is_some(),
                v.sint_value.is_some(),
                v.bool_value.is_some(),
            ];
            assert_eq!(
                set.iter().filter(|&&s| s).count(),
                1,
                "{what}: layer {name}: a value with other than one field: {v:?}"
            );
        }
        let mut ids = std::collections::HashSet::new();
        for f in &layer.features {
            let at = format!("{what}: layer {name}: feature {:?}", f.id);
            if let Some(id) = f.id {
                assert!(ids.insert(id), "{at}: id twice in the layer");
            }
            assert!(f.tags.len() % 2 == 0, "{at}: odd tags");
            for pair in f.tags.chunks(2) {
                assert!((pair[0] as usize) < layer.keys.len(), "{at}: key index");
                assert!((pair[1] as usize) < layer.values.len(), "{at}: value index");
            }
            let kind = f.r#type.unwrap_or(0) as u32;
            let parts = check_commands(kind, &f.geometry, &at);
            let g = f
                .to_geo()
                .unwrap_or_else(|e| panic!("{at}: geozero cannot read it: {e}"));
            let expected = match kind {
                1 => matches!(g, geo::Geometry::Point(_) | geo::Geometry::MultiPoint(_)),
                2 => matches!(
                    g,
                    geo::Geometry::LineString(_) | geo::Geometry::MultiLineString(_)
                ),
                _ => matches!(
                    g,
                    geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_)
                ),
            };
            assert!(expected, "{at}: type {kind} decoded as {g:?}");
            out.push(DecodedFeature { kind, parts });
        }
    }
    out
}

fn area2(ring: &[[i64; 2]]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}

/// Walks one feature's commands (MVT 2.1 section 4.3) and checks: the commands fit the
/// type; a point feature is one MoveTo; every line part is a MoveTo of one point and a
/// LineTo of one or more; every ring a MoveTo, a LineTo of two or more and a ClosePath,
/// without repeating its first point at the end; no LineTo of length zero; every ring has
/// an area, and a polygon feature starts with an exterior ring (positive area, y down); all
/// points lie inside the tile plus its buffer.
fn check_commands(kind: u32, geometry: &[u32], at: &str) -> Vec<Vec<[i64; 2]>> {
    let lo = -(BUFFER_UNITS as i64);
    let hi = (EXTENT + BUFFER_UNITS) as i64;
    let mut parts: Vec<Vec<[i64; 2]>> = Vec::new();
    let mut cursor = [0i64; 2];
    let mut i = 0;
    let next = |i: &mut usize| -> u32 {
        let v = *geometry
            .get(*i)
            .unwrap_or_else(|| panic!("{at}: commands end early: {geometry:?}"));
        *i += 1;
        v
    };
    let point = |i: &mut usize, cursor: &mut [i64; 2]| -> [i64; 2] {
        let dx = next(i);
        let dy = next(i);
        let unzig = |v: u32| ((v >> 1) as i64) ^ -((v & 1) as i64);
        let (dx, dy) = (unzig(dx), unzig(dy));
        *cursor = [cursor[0] + dx, cursor[1] + dy];
        assert!(
            (lo..=hi).contains(&cursor[0]) && (lo..=hi).contains(&cursor[1]),
            "{at}: point {cursor:?} is outside the tile plus buffer"
        );
        *cursor
    };
    assert!(!geometry.is_empty(), "{at}: no geometry");
    match kind {
        1 => {
            let c = geometry[0];
            i += 1;
            assert!(
                c & 7 == 1 && c >> 3 >= 1,
                "{at}: a point feature starts with {c}"
            );
            let mut ps = Vec::new();
            for _ in 0..c >> 3 {
                ps.push(point(&mut i, &mut cursor));
            }
            assert_eq!(i, geometry.len(), "{at}: more than one MoveTo");
            parts.push(ps);
        }
        2 | 3 => {
            let mut first_ring = true;
            while i < geometry.len() {
                let c = geometry[i];
                i += 1;
                assert_eq!(
                    c,
                    1 | (1 << 3),
                    "{at}: a part starts with {c}, not MoveTo(1)"
                );
                let mut part = vec![point(&mut i, &mut cursor)];
                let c = geometry.get(i).copied().unwrap_or(0);
                i += 1;
                let count = c >> 3;
                let need = if kind == 2 { 1 } else { 2 };
                assert!(
                    c & 7 == 2 && count >= need,
                    "{at}: a MoveTo followed by {c}, not LineTo({need}+)"
                );
                for _ in 0..count {
                    let before = cursor;
                    let p = point(&mut i, &mut cursor);
                    assert_ne!(p, before, "{at}: a LineTo of length zero");
                    part.push(p);
                }
                if kind == 3 {
                    let c = geometry.get(i).copied().unwrap_or(0);
                    i += 1;
                    assert_eq!(c, 7 | (1 << 3), "{at}: a ring ends with {c}, not ClosePath");
                    assert_ne!(
                        part.first(),
                        part.last(),
                        "{at}: a ring repeats its first point before ClosePath"
                    );
                    let a = area2(&part);
                    assert_ne!(a, 0, "{at}: a ring without area: {part:?}");
                    if first_ring {
                        assert!(a > 0, "{at}: the first ring is not exterior: {part:?}");
                        first_ring = false;
                    }
                }
                parts.push(part);
            }
        }
        other => panic!("{at}: geometry type {other}"),
    }
    parts
}

// ---------------------------------------------------------------------------------------
// Identity

/// The issuer and audience the `token` target's verifier expects; its keys are
/// `bodies/token_jwks.json` (public halves; the corpus's valid tokens were signed with the
/// private ones, which are not kept).
const TOKEN_ISSUER: &str = "https://id.city.example/realms/fuzz";
const TOKEN_AUDIENCE: &str = "city-map";

fn token_verifier() -> &'static (tokio::runtime::Runtime, urbantile::auth::token::Verifier) {
    static V: OnceLock<(tokio::runtime::Runtime, urbantile::auth::token::Verifier)> =
        OnceLock::new();
    V.get_or_init(|| {
        use urbantile::auth::jwks::JwksSource;
        use urbantile::auth::token::{OidcConfig, Verifier};
        let file =
            std::env::temp_dir().join(format!("urbantile-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&file, include_str!("token_jwks.json")).expect("the key set file");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let verifier = Verifier::new(OidcConfig {
            issuer: TOKEN_ISSUER.into(),
            audiences: vec![TOKEN_AUDIENCE.into()],
            jwks: JwksSource::File(file),
            leeway_s: 30,
        })
        .expect("a verifier");
        runtime
            .block_on(verifier.keys().refresh())
            .expect("the fuzz key set reads");
        (runtime, verifier)
    })
}

/// A bearer token, checked against a fixed key set: refused with a reason, or a person whose
/// token holds the issuer, the audience, a `sub` and an `exp` not past.
pub fn token(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    let text = String::from_utf8_lossy(data);
    let (runtime, verifier) = token_verifier();
    match runtime.block_on(verifier.check(&text)) {
        Err(e) => {
            debug(|| format!("refused: {e}"));
            assert!(!e.to_string().is_empty(), "a refusal without a reason");
        }
        Ok(user) => {
            debug(|| format!("accepted: {}", user.subject));
            assert_eq!(
                user.claims["iss"], TOKEN_ISSUER,
                "accepted from another issuer"
            );
            let aud = &user.claims["aud"];
            assert!(
                aud == TOKEN_AUDIENCE
                    || aud
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v == TOKEN_AUDIENCE)),
                "accepted for another audience: {aud}"
            );
            assert!(!user.subject.is_empty(), "accepted without a sub");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            assert!(user.expires + 30 >= now, "accepted after it expired");
        }
    }
}

/// A JWKS document as an identity provider might serve it: an error, or only keys of the
/// two algorithms the server verifies with.
pub fn jwks(data: &[u8]) {
    let_the_library_catch_its_own_panics();
    use jsonwebtoken::Algorithm;
    let text = String::from_utf8_lossy(data);
    match urbantile::auth::jwks::parse_set(&text) {
        Err(e) => assert!(!e.is_empty(), "an empty key set error"),
        Ok(keys) => {
            debug(|| format!("{} keys", keys.len()));
            for key in keys.values() {
                assert!(
                    matches!(key.algorithm, Algorithm::RS256 | Algorithm::ES256),
                    "a key for {:?}",
                    key.algorithm
                );
            }
        }
    }
}

/// A PMTiles archive read in place (archive layers are served from such a reader's
/// entries): an error, or a header, metadata, directories and tiles whose byte ranges all
/// lie inside the input; never a panic, never a walk that repeats itself.
pub fn pmtiles(data: &[u8]) {
    use urbantile::archive::pmtiles::Reader;
    use urbantile::tiles::TileCoord;
    let_the_library_catch_its_own_panics();
    let Ok(reader) = Reader::new(data) else {
        return;
    };
    let _ = reader.metadata();
    if let Ok(entries) = reader.entries() {
        for e in entries.iter().take(MAX_RECORDS) {
            if let Ok(bytes) = reader.entry_bytes(e) {
                assert_eq!(
                    bytes.len() as u64,
                    e.length,
                    "an entry's bytes are its length"
                );
            }
        }
    }
    for (z, x, y) in [
        (0, 0, 0),
        (1, 1, 0),
        (3, 4, 2),
        (8, 145, 74),
        (14, 9326, 4741),
    ] {
        if let Ok(Some(bytes)) = reader.tile(TileCoord { z, x, y }) {
            assert!(bytes.len() <= data.len());
        }
    }
}

/// An index snapshot read back (`index::snapshot`, what `--snapshots` reads at start): the
/// first byte picks one of the small layers' definitions, the rest is the file, whose last
/// four bytes are set to the CRC-32 of the others so that mutations reach the body's
/// checks. An error, or an index whose tiles render, whose features answer a query, which
/// takes a write, and which writes itself back to a file that reads back the same; never a
/// panic.
pub fn snapshot(data: &[u8]) {
    use urbantile::index::snapshot;
    use urbantile::tiles::mercator::Rect3857;
    let_the_library_catch_its_own_panics();
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let layers = small_layers();
    let (def, _) = &layers[pick as usize % layers.len()];
    let mut file = file.to_vec();
    if file.len() >= 4 {
        let split = file.len() - 4;
        let mut crc = flate2::Crc::new();
        crc.update(&file[..split]);
        file[split..].copy_from_slice(&crc.sum().to_le_bytes());
    }
    let Ok((stamp, index)) = snapshot::read(def, &file) else {
        return;
    };
    debug(|| format!("snapshot read: {} features", index.len()));
    // Wider than the world: the reader takes any finite coordinates.
    let world = Rect3857 {
        min_x: f64::MIN,
        min_y: f64::MIN,
        max_x: f64::MAX,
        max_y: f64::MAX,
    };
    let found = index.query(world).count();
    assert_eq!(found, index.len(), "every live feature is found once");
    let shared = Arc::new(parking_lot::RwLock::new(index));
    for (z, x, y) in [
        (10, 582, 296),
        (12, 2331, 1185),
        (14, 9326, 4741),
        (16, 37305, 18966),
    ] {
        let tile = TileCoord { z, x, y };
        let layers = [TileLayer {
            def,
            index: &shared,
            filter: None,
        }];
        let _ = render_tile(&layers, tile, None);
    }
    let mut index = Arc::try_unwrap(shared)
        .expect("no other holder")
        .into_inner();
    let mut again = Vec::new();
    snapshot::write(&index, stamp, &mut again).expect("writes to memory");
    let (_, back) = snapshot::read(def, &again).expect("a snapshot written reads back");
    assert_eq!(back.len(), index.len());
    let first = index.query(world).next().map(|f| f.id);
    if let Some(first) = first {
        assert!(
            index.remove(first).is_some(),
            "a feature found can be removed"
        );
    }
}

/// Seeds of the `snapshot` target: each small layer's index written as a snapshot, after
/// the byte that picks its definition (`tests/fuzz_corpus.rs` writes them on request).
pub fn snapshot_seeds() -> Vec<(String, Vec<u8>)> {
    use urbantile::index::snapshot::{Stamp, write};
    small_layers()
        .iter()
        .enumerate()
        .map(|(i, (def, index))| {
            let mut file = vec![i as u8];
            let stamp = Stamp {
                fingerprint: 1,
                position: 2,
                entry: 3,
            };
            write(index, stamp, &mut file).expect("writes to memory");
            (format!("seed-{}", def.id), file)
        })
        .collect()
}
