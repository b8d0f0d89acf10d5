//! The planners' formats through `urbantile ingest` as a user runs it: GeoPackage, zipped
//! Shapefile and FlatGeobuf files written by GDAL's `ogr2ogr` (an independent writer) from
//! the GeoJSON fixtures in `fixtures/formats/` give the same stored features as the GeoJSON
//! path, in WGS84 and in projected systems (ETRS-TM35FIN, LKS94, Web Mercator); and bad
//! files are refused or reported naming the file, the table and the feature. The
//! projection maths is checked against PROJ's `cs2cs`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use geo::orient::{Direction, Orient};
use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Polygon};
use urbantile::model::LayerId;

use common::root;

const KINDS: [(&str, &str); 3] = [
    ("points", "point"),
    ("lines", "line"),
    ("polygons", "polygon"),
];

fn layer_toml(geometry: &str) -> String {
    format!(
        "title = \"Fixture\"\ngeometry = \"{geometry}\"\n\
         properties = {{ ref = \"integer\", name = \"string\", levels = \"integer\", height = \"number\", \
         heritage = \"boolean\", surveyed = \"datetime\", code = \"string\" }}\n"
    )
}

struct Dir {
    dir: tempfile::TempDir,
    layers: PathBuf,
}

struct Run {
    ok: bool,
    out: String,
}

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().join("layers");
        std::fs::create_dir(&layers).unwrap();
        for (name, geometry) in KINDS {
            std::fs::write(layers.join(format!("{name}.toml")), layer_toml(geometry)).unwrap();
        }
        Dir { dir, layers }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ogr2ogr` with `args`, then `out` (relative to the folder) and `source`.
    fn ogr2ogr(&self, out: &str, source: &Path, args: &[&str]) -> PathBuf {
        let path = self.path(out);
        let status = Command::new("ogr2ogr")
            .args(args)
            .arg(&path)
            .arg(source)
            .args(["-oo", "DATE_AS_STRING=YES"])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("ogr2ogr (GDAL) must be installed; tests/run.sh installs it");
        assert!(status.success(), "ogr2ogr {args:?} {out}");
        path
    }

    /// `urbantile ingest` into the database `db` (one per format, so each starts empty).
    fn ingest(&self, db: &str, layer: &str, file: &Path, extra: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_urbantile"))
            .current_dir(root())
            .arg("--layers")
            .arg(&self.layers)
            .arg("--database")
            .arg(self.db_url(db))
            .arg("ingest")
            .arg(layer)
            .arg(file)
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        Run {
            ok: out.status.success(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    fn db_url(&self, db: &str) -> String {
        format!("sqlite://{}", self.path(&format!("{db}.db")).display())
    }

    /// The stored features of a layer, by their `ref` property.
    fn stored(&self, db: &str, layer: &str) -> BTreeMap<i64, (Geometry<f64>, serde_json::Value)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = urbantile::store::open(&self.db_url(db)).await.unwrap();
            let features = store
                .load_layer(&LayerId::new(layer).unwrap())
                .await
                .unwrap();
            store.close().await.unwrap();
            features
                .into_iter()
                .map(|f| {
                    let props = f.feature.properties;
                    let r = props["ref"]
                        .as_i64()
                        .expect("every fixture feature has a ref");
                    // A format that cannot store null (FlatGeobuf leaves the value out) and
                    // one that stores it say the same.
                    let props: serde_json::Map<_, _> =
                        props.into_iter().filter(|(_, v)| !v.is_null()).collect();
                    (r, (f.feature.geometry, serde_json::Value::Object(props)))
                })
                .collect()
        })
    }
}

fn source(name: &str) -> PathBuf {
    root()
        .join("fixtures/formats")
        .join(format!("{name}.geojson"))
}

/// Every geometry as its multi form, rings oriented (exteriors counter-clockwise) and
/// rotated to start at their smallest vertex without the closing repeat: formats differ in
/// all of these (a shapefile's rings are clockwise, a one-part multipolygon reads back as a
/// polygon) and none of them changes the shape.
fn normal(g: &Geometry<f64>) -> Vec<Vec<Vec<Coord<f64>>>> {
    fn ring(l: &LineString<f64>) -> Vec<Coord<f64>> {
        let mut c = l.0.clone();
        c.pop();
        let start = (0..c.len())
            .min_by(|&a, &b| (c[a].x, c[a].y).partial_cmp(&(c[b].x, c[b].y)).unwrap())
            .unwrap_or(0);
        c.rotate_left(start);
        c
    }
    match g {
        Geometry::Point(p) => vec![vec![vec![p.0]]],
        Geometry::MultiPoint(MultiPoint(ps)) => vec![vec![ps.iter().map(|p| p.0).collect()]],
        Geometry::LineString(l) => vec![vec![l.0.clone()]],
        Geometry::MultiLineString(MultiLineString(ls)) => {
            ls.iter().map(|l| vec![l.0.clone()]).collect()
        }
        Geometry::Polygon(p) => normal(&MultiPolygon(vec![p.clone()]).into()),
        Geometry::MultiPolygon(mp) => mp
            .orient(Direction::Default)
            .0
            .iter()
            .map(|p: &Polygon<f64>| {
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(ring)
                    .collect()
            })
            .collect(),
        other => panic!("unexpected geometry {other:?}"),
    }
}

/// The largest coordinate difference between two geometries of the same shape, in degrees.
fn distance(a: &Geometry<f64>, b: &Geometry<f64>) -> Result<f64, String> {
    let (a, b) = (normal(a), normal(b));
    if a.len() != b.len() {
        return Err(format!("{} parts against {}", a.len(), b.len()));
    }
    let mut worst = 0.0f64;
    for (pa, pb) in a.iter().zip(&b) {
        if pa.len() != pb.len() {
            return Err(format!("{} rings against {}", pa.len(), pb.len()));
        }
        for (ra, rb) in pa.iter().zip(pb) {
            if ra.len() != rb.len() {
                return Err(format!("{} positions against {}", ra.len(), rb.len()));
            }
            for (ca, cb) in ra.iter().zip(rb) {
                worst = worst.max((ca.x - cb.x).abs()).max((ca.y - cb.y).abs());
            }
        }
    }
    Ok(worst)
}

fn same_properties(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    a.len() == b.len()
        && a.iter().all(|(k, va)| match (va, b.get(k)) {
            (serde_json::Value::Number(x), Some(serde_json::Value::Number(y)))
                if x.is_f64() || y.is_f64() =>
            {
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs()
                    <= 1e-9 * x.as_f64().unwrap().abs().max(1.0)
            }
            (x, Some(y)) => x == y,
            (_, None) => false,
        })
}

/// Ingests `file` into its own database and checks it against the GeoJSON path's features.
/// Prints the largest coordinate difference seen (`--nocapture` shows it).
fn check_same(
    dir: &Dir,
    layer: &str,
    file: &Path,
    tolerance: f64,
    expected: &BTreeMap<i64, (Geometry<f64>, serde_json::Value)>,
) {
    let db = file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('.', "_");
    let run = dir.ingest(&db, layer, file, &[]);
    assert!(run.ok, "{}: {}", file.display(), run.out);
    assert!(
        run.out.contains(&format!(
            "{} written (0 repaired), 0 skipped",
            expected.len()
        )),
        "{}: {}",
        file.display(),
        run.out
    );
    let got = dir.stored(&db, layer);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{}",
        file.display()
    );
    let mut worst = 0.0f64;
    for (r, (g, props)) in &got {
        let (eg, eprops) = &expected[r];
        let d = distance(g, eg).unwrap_or_else(|e| panic!("{} ref {r}: {e}", file.display()));
        worst = worst.max(d);
        assert!(
            d <= tolerance,
            "{} ref {r}: geometry off by {d} degrees",
            file.display()
        );
        assert!(
            same_properties(props, eprops),
            "{} ref {r}: {props} != {eprops}",
            file.display()
        );
    }
    println!(
        "{}: {} features, at most {worst:.1e} degrees from the GeoJSON path",
        file.file_name().unwrap().to_string_lossy(),
        got.len()
    );
}

#[test]
fn each_format_written_by_gdal_ingests_to_the_same_features_as_geojson() {
    let dir = Dir::new();
    for (layer, _) in KINDS {
        let src = source(layer);
        let run = dir.ingest("geojson", layer, &src, &[]);
        assert!(run.ok, "{}", run.out);
        let expected = dir.stored("geojson", layer);
        assert!(expected.len() >= 38, "{layer}: {}", expected.len());
        let name = |ext: &str| format!("{layer}{ext}");
        // WGS84, as written: the same doubles.
        let files = [
            dir.ogr2ogr(&name(".gpkg"), &src, &["-f", "GPKG", "-nln", layer]),
            dir.ogr2ogr(
                &name(".shp.zip"),
                &src,
                &["-f", "ESRI Shapefile", "-nln", layer],
            ),
            dir.ogr2ogr(&name(".fgb"), &src, &["-f", "FlatGeobuf"]),
            // Without the spatial index GDAL keeps the source order.
            dir.ogr2ogr(
                &name("-noindex.fgb"),
                &src,
                &["-f", "FlatGeobuf", "-lco", "SPATIAL_INDEX=NO"],
            ),
        ];
        for f in &files {
            check_same(&dir, layer, f, 1e-12, &expected);
        }
        // Projected: back within 1e-7 degrees (about a centimetre).
        let projected = [
            dir.ogr2ogr(
                &name("-3067.shp.zip"),
                &src,
                &["-f", "ESRI Shapefile", "-t_srs", "EPSG:3067", "-nln", layer],
            ),
            dir.ogr2ogr(
                &name("-3346.gpkg"),
                &src,
                &["-f", "GPKG", "-t_srs", "EPSG:3346", "-nln", layer],
            ),
            dir.ogr2ogr(
                &name("-3857.fgb"),
                &src,
                &["-f", "FlatGeobuf", "-t_srs", "EPSG:3857"],
            ),
            dir.ogr2ogr(
                &name("-utf8.shp.zip"),
                &src,
                &[
                    "-f",
                    "ESRI Shapefile",
                    "-t_srs",
                    "EPSG:32635",
                    "-lco",
                    "ENCODING=UTF-8",
                    "-nln",
                    layer,
                ],
            ),
            // A .cpg naming Latin-1, and no code page mark in the .dbf.
            dir.ogr2ogr(
                &name("-latin1.shp.zip"),
                &src,
                &[
                    "-f",
                    "ESRI Shapefile",
                    "-t_srs",
                    "EPSG:3879",
                    "-lco",
                    "ENCODING=ISO-8859-1",
                    "-nln",
                    layer,
                ],
            ),
        ];
        for f in &projected {
            check_same(&dir, layer, f, 1e-7, &expected);
        }
    }
}

#[test]
fn a_geopackage_with_several_tables_reads_all_or_the_one_named() {
    let dir = Dir::new();
    let gpkg = dir.ogr2ogr(
        "two.gpkg",
        &source("points"),
        &["-f", "GPKG", "-nln", "cafes"],
    );
    dir.ogr2ogr(
        "two.gpkg",
        &source("points"),
        &[
            "-f",
            "GPKG",
            "-update",
            "-nln",
            "shops",
            "-t_srs",
            "EPSG:3067",
        ],
    );
    let run = dir.ingest("all", "points", &gpkg, &[]);
    assert!(run.ok && run.out.contains("80 written"), "{}", run.out);
    let run = dir.ingest("one", "points", &gpkg, &["--table", "shops"]);
    assert!(run.ok && run.out.contains("40 written"), "{}", run.out);
    let run = dir.ingest("none", "points", &gpkg, &["--table", "bars"]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out.contains(
            "two.gpkg: no feature table named \"bars\"; its feature tables are: cafes, shops"
        ),
        "{}",
        run.out
    );
    let run = dir.ingest(
        "fgb",
        "points",
        &dir.ogr2ogr("p.fgb", &source("points"), &["-f", "FlatGeobuf"]),
        &["--table", "x"],
    );
    assert!(!run.ok && run.out.contains("--table"), "{}", run.out);
}

#[test]
fn an_unsupported_crs_is_refused_naming_file_table_and_system() {
    let dir = Dir::new();
    let src = source("points");
    // KKJ / Finland zone 3 needs a datum shift (International 1924 ellipsoid).
    let kkj = ["-t_srs", "EPSG:2393"];
    let shp = dir.ogr2ogr(
        "kkj.shp.zip",
        &src,
        &[&["-f", "ESRI Shapefile", "-nln", "cafes"][..], &kkj].concat(),
    );
    let run = dir.ingest("a", "points", &shp, &[]);
    assert!(!run.ok, "{}", run.out);
    assert!(run.out.contains("kkj.shp.zip, shapefile \"cafes\": coordinate system \"Finland_Zone_3\" is not supported"), "{}", run.out);
    assert!(
        run.out.contains("D_KKJ") && run.out.contains("ogr2ogr -t_srs EPSG:4326"),
        "{}",
        run.out
    );
    let gpkg = dir.ogr2ogr(
        "kkj.gpkg",
        &src,
        &[&["-f", "GPKG", "-nln", "cafes"][..], &kkj].concat(),
    );
    let run = dir.ingest("b", "points", &gpkg, &[]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("kkj.gpkg, table \"cafes\": coordinate system EPSG:2393"),
        "{}",
        run.out
    );
    let fgb = dir.ogr2ogr("kkj.fgb", &src, &[&["-f", "FlatGeobuf"][..], &kkj].concat());
    let run = dir.ingest("c", "points", &fgb, &[]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out.contains("kkj.fgb: coordinate system") && run.out.contains("not supported"),
        "{}",
        run.out
    );
    // Nothing was written by any of them.
    assert!(dir.stored("a", "points").is_empty());
}

/// Rewrites a zip without the members whose names end with `drop`, and with `.shp`
/// members cut to `shp_len` bytes when given (Python's zipfile: another writer than GDAL).
fn rezip(from: &Path, to: &Path, drop: &str, shp_len: Option<usize>) {
    let script = format!(
        "import zipfile,sys\nsrc=zipfile.ZipFile(sys.argv[1])\ndst=zipfile.ZipFile(sys.argv[2],'w',zipfile.ZIP_DEFLATED)\n\
         for n in src.namelist():\n  d=src.read(n)\n  if {drop:?} and n.endswith({drop:?}): continue\n  \
         if n.endswith('.shp') and {cut}: d=d[:{len}]\n  dst.writestr(n,d)\ndst.close()\n",
        cut = if shp_len.is_some() { "True" } else { "False" },
        len = shp_len.unwrap_or(0)
    );
    let ok = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn a_missing_prj_and_truncated_or_corrupt_files_are_named() {
    let dir = Dir::new();
    let src = source("polygons");
    let shp = dir.ogr2ogr(
        "areas.shp.zip",
        &src,
        &["-f", "ESRI Shapefile", "-nln", "areas"],
    );
    let no_prj = dir.path("noprj.zip");
    rezip(&shp, &no_prj, ".prj", None);
    let run = dir.ingest("a", "polygons", &no_prj, &[]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out.contains(
            "noprj.zip, shapefile \"areas\": no .prj file; its coordinate system is unknown"
        ),
        "{}",
        run.out
    );

    // A .shp cut inside its 11th record: ten features, then an error naming record 10.
    let cut = dir.path("cut.zip");
    let shp_bytes = {
        let f = std::fs::File::open(&shp).unwrap();
        let mut z = zip::ZipArchive::new(f).unwrap();
        let mut e = z.by_name("areas.shp").unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        v
    };
    let mut at = 100;
    for _ in 0..10 {
        let words = i32::from_be_bytes(shp_bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + words * 2;
    }
    rezip(&shp, &cut, "", Some(at + 20));
    let run = dir.ingest("b", "polygons", &cut, &[]);
    assert!(run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("10 written (0 repaired), 1 skipped (11 read)"),
        "{}",
        run.out
    );
    assert!(
        run.out
            .contains("skipped table \"areas\", fid 10: the .shp is truncated inside this record"),
        "{}",
        run.out
    );
    let run = dir.ingest("b2", "polygons", &cut, &["--strict"]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("cut.zip: table \"areas\", fid 10: the .shp is truncated"),
        "{}",
        run.out
    );
    assert!(dir.stored("b2", "polygons").is_empty());

    // A FlatGeobuf file cut in its last feature.
    let fgb = dir.ogr2ogr("areas.fgb", &src, &["-f", "FlatGeobuf"]);
    let bytes = std::fs::read(&fgb).unwrap();
    let cut_fgb = dir.path("cut.fgb");
    std::fs::write(&cut_fgb, &bytes[..bytes.len() - 30]).unwrap();
    let run = dir.ingest("c", "polygons", &cut_fgb, &[]);
    assert!(run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("47 written (0 repaired), 1 skipped (48 read)"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("skipped feature 47: it claims")
            && run.out.contains("the file is truncated"),
        "{}",
        run.out
    );

    // Files that are not what their names say.
    for (name, bytes, says) in [
        (
            "junk.gpkg",
            &b"this is not a database at all, not even close......"[..],
            "junk.gpkg: not a readable GeoPackage",
        ),
        (
            "junk.zip",
            &b"PK\x03\x04 but then nothing"[..],
            "junk.zip: not a readable zip",
        ),
        (
            "junk.fgb",
            &b"fgb\x03fgb\x00\xff\xff\xff\x7f"[..],
            "junk.fgb: not a FlatGeobuf file",
        ),
        (
            "short.fgb",
            &bytes[..100],
            "short.fgb: not a FlatGeobuf file",
        ),
    ] {
        let p = dir.path(name);
        std::fs::write(&p, bytes).unwrap();
        let run = dir.ingest("d", "polygons", &p, &[]);
        assert!(!run.ok, "{name}: {}", run.out);
        assert!(run.out.contains(says), "{name}: {}", run.out);
    }
}

#[test]
fn a_bad_feature_is_named_by_table_and_fid_and_skipped_or_stops_the_run() {
    let dir = Dir::new();
    // Feature 2 has a level count that is not a number, feature 3 a longitude past 180.
    let geojson = dir.path("bad.geojson");
    let mut f = std::fs::File::create(&geojson).unwrap();
    write!(
        f,
        r#"{{"type":"FeatureCollection","features":[
        {{"type":"Feature","properties":{{"ref":1,"levels":"3"}},"geometry":{{"type":"Point","coordinates":[24.94,60.17]}}}},
        {{"type":"Feature","properties":{{"ref":2,"levels":"three"}},"geometry":{{"type":"Point","coordinates":[24.95,60.17]}}}},
        {{"type":"Feature","properties":{{"ref":3,"levels":"4"}},"geometry":{{"type":"Point","coordinates":[200.0,60.17]}}}}]}}"#
    )
    .unwrap();
    drop(f);
    let gpkg = dir.ogr2ogr("bad.gpkg", &geojson, &["-f", "GPKG", "-nln", "cafes"]);
    let run = dir.ingest("a", "points", &gpkg, &[]);
    assert!(run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("2 written (1 repaired), 1 skipped (3 read)"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("repaired table \"cafes\", fid 2, field \"levels\": is \"three\"; it must be an integer; dropped"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains(
            "skipped table \"cafes\", fid 3, field \"geometry\": coordinate 0 has longitude 200"
        ),
        "{}",
        run.out
    );
    let stored = dir.stored("a", "points");
    assert_eq!(
        stored[&1].1["levels"], 3,
        "text that is a whole number becomes the declared integer"
    );
    let run = dir.ingest("b", "points", &gpkg, &["--strict"]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out.contains("bad.gpkg: table \"cafes\", fid 2, field \"levels\": is \"three\"; it must be an integer"),
        "{}",
        run.out
    );
    // The same file as a shapefile: the fid is GDAL's 0-based record number.
    let shp = dir.ogr2ogr(
        "bad.shp.zip",
        &geojson,
        &["-f", "ESRI Shapefile", "-nln", "cafes"],
    );
    let run = dir.ingest("c", "points", &shp, &["--strict"]);
    assert!(
        !run.ok
            && run
                .out
                .contains("bad.shp.zip: table \"cafes\", fid 1, field \"levels\""),
        "{}",
        run.out
    );
}

/// PROJ's `cs2cs` as the oracle: grid points over Helsinki and Vilnius (and 300 km around)
/// projected by PROJ come back to their longitude and latitude within 1e-9 degrees.
#[test]
fn projections_invert_what_proj_projects() {
    use urbantile::ingest::crs::Crs;
    let mut grid = Vec::new();
    for i in 0..7 {
        for j in 0..7 {
            grid.push((20.0 + i as f64 * 1.5, 53.0 + j as f64 * 2.0));
        }
    }
    for code in [3067, 3346, 3857, 3879, 25835, 32634] {
        let input: String = grid
            .iter()
            .map(|(lon, lat)| format!("{lat} {lon}\n"))
            .collect();
        let mut child = Command::new("cs2cs")
            .args(["-f", "%.6f", "EPSG:4326", &format!("EPSG:{code}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cs2cs (proj-bin) must be installed; tests/run.sh installs it");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let crs = Crs::from_epsg(code).unwrap();
        for (line, (lon, lat)) in String::from_utf8(out.stdout).unwrap().lines().zip(&grid) {
            let v: Vec<f64> = line
                .split_whitespace()
                .map(|s| s.parse().unwrap())
                .collect();
            // cs2cs prints in the CRS's axis order: northing first for 3067? No: EPSG:3067
            // is easting, northing; EPSG:3346 and the GK zones are northing, easting.
            let (e, n) = if matches!(code, 3346 | 3879) {
                (v[1], v[0])
            } else {
                (v[0], v[1])
            };
            let back = crs.to_lon_lat(Coord { x: e, y: n });
            assert!(
                (back.x - lon).abs() < 1e-9 && (back.y - lat).abs() < 1e-9,
                "EPSG:{code}: ({lon}, {lat}) -> ({e}, {n}) -> {back:?}"
            );
        }
    }
}

/// A GeoPackage whose feature table is a view that never ends (a recursive CTE) would hold
/// the ingest forever if it were read: it is refused before any row is.
#[test]
fn a_geopackage_that_would_run_its_own_sql_is_refused() {
    let dir = Dir::new();
    let gpkg = dir.ogr2ogr(
        "view.gpkg",
        &source("points"),
        &["-f", "GPKG", "-nln", "cafes"],
    );
    let script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\n\
        c.execute('ALTER TABLE cafes RENAME TO cafes_data')\n\
        c.execute('CREATE VIEW cafes AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n) \
        SELECT i AS fid, NULL AS geom FROM n')\nc.commit()\n";
    let ok = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&gpkg)
        .status()
        .unwrap();
    assert!(ok.success());
    let started = std::time::Instant::now();
    let run = dir.ingest("a", "points", &gpkg, &[]);
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("view.gpkg, table \"cafes\": cafes is a view, not a table"),
        "{}",
        run.out
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
