//! `urbantile ingest` and `urbantile layers` as a user runs them: every input format, the
//! bad-record report with positions, invalid geometry repaired and counted, --strict
//! writing nothing, --replace, and layer files with mistakes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::root;

struct Cli {
    dir: tempfile::TempDir,
    layers: PathBuf,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

const SPOTS: &str = r##"
title = "Spots"
geometry = "point"
properties = ["name", "n", "when"]
time = { start = "when" }
"##;

const AREAS: &str = r##"
title = "Areas"
geometry = "polygon"
properties = ["name"]
"##;

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().join("layers");
        std::fs::create_dir(&layers).unwrap();
        std::fs::write(layers.join("spots.toml"), SPOTS).unwrap();
        std::fs::write(layers.join("areas.toml"), AREAS).unwrap();
        Cli { dir, layers }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run_with(&self, layers: &Path, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_urbantile"));
        cmd.current_dir(root())
            .arg("--layers")
            .arg(layers)
            .arg("--database")
            .arg(format!(
                "sqlite://{}",
                self.dir.path().join("t.db").display()
            ))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(&self.layers, args, None)
    }

    /// Feature count of a layer, from `urbantile layers`.
    fn count(&self, layer: &str) -> u64 {
        let r = self.run(&["layers"]);
        assert!(r.ok, "{}", r.all());
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{layer} ")))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count for {layer} in {}", r.stdout))
    }
}

fn point(lon: &str, lat: &str, props: &str) -> String {
    format!(
        r#"{{"type":"Feature","properties":{props},"geometry":{{"type":"Point","coordinates":[{lon},{lat}]}}}}"#
    )
}

#[test]
fn a_geojson_collection_is_ingested_and_bad_features_are_reported_by_index() {
    let cli = Cli::new();
    let features = [
        point("24.94", "60.17", r#"{"name":"a","n":1,"when":"2026-05-01T10:00:00Z"}"#),
        point("200", "60.17", r#"{"name":"far east"}"#),
        point("24.95", "60.18", r#"{"name":"b","when":"last tuesday"}"#),
        r#"{"type":"Feature","properties":{},"geometry":null}"#.to_string(),
        r#"{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[24.9,60.1],[24.91,60.11]]}}"#.to_string(),
        point("24.96", "60.16", r#"{"name":"c","extra":"dropped"}"#),
    ];
    let path = cli.file(
        "spots.geojson",
        &format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        ),
    );
    let r = cli.run(&["ingest", "spots", path.to_str().unwrap()]);
    assert!(r.ok, "{}", r.all());
    assert!(
        r.stdout
            .contains("2 written (0 repaired), 4 skipped (6 read)"),
        "{}",
        r.stdout
    );
    for expected in [
        "feature 1, field \"geometry\": coordinate 0 has longitude 200 outside -180..180",
        "feature 2, field \"when\"",
        "feature 3, field \"geometry\": is null",
        "feature 4, field \"geometry\": is a line; layer spots holds points",
    ] {
        assert!(
            r.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            r.stdout
        );
    }
    assert_eq!(cli.count("spots"), 2);
}

#[test]
fn strict_stops_at_the_first_bad_record_and_writes_nothing() {
    let cli = Cli::new();
    let text = [
        point("24.94", "60.17", r#"{"name":"a"}"#),
        point("24.94", "95", r#"{"name":"b"}"#),
        point("24.95", "60.17", r#"{"name":"c"}"#),
    ]
    .join("\n");
    let path = cli.file("spots.geojsonseq", &text);
    let r = cli.run(&["ingest", "spots", path.to_str().unwrap(), "--strict"]);
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("line 2, field \"geometry\": coordinate 0 has latitude 95"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert_eq!(cli.count("spots"), 0);
}

fn polygon(rings: &str) -> String {
    format!(
        r#"{{"type":"Feature","properties":{{}},"geometry":{{"type":"Polygon","coordinates":{rings}}}}}"#
    )
}

/// Valid, repairable and hopeless polygons, one a line.
fn messy_polygons() -> String {
    [
        // 1: a valid square
        polygon("[[[24.94,60.17],[24.95,60.17],[24.95,60.18],[24.94,60.18],[24.94,60.17]]]"),
        // 2: a bow-tie: two triangles
        polygon("[[[24.94,60.17],[24.95,60.18],[24.95,60.17],[24.94,60.18],[24.94,60.17]]]"),
        // 3: overlapping parts of a multipolygon: their union
        r#"{"type":"Feature","properties":{},"geometry":{"type":"MultiPolygon","coordinates":[[[[24.94,60.17],[24.96,60.17],[24.96,60.19],[24.94,60.19],[24.94,60.17]]],[[[24.95,60.18],[24.97,60.18],[24.97,60.20],[24.95,60.20],[24.95,60.18]]]]}}"#.to_string(),
        // 4: a ring with 2 distinct points: nothing is left
        polygon("[[[24.94,60.17],[24.95,60.18],[24.94,60.17],[24.95,60.18],[24.94,60.17]]]"),
        // 5: a square with a spike
        polygon("[[[24.94,60.17],[24.95,60.17],[24.95,60.175],[24.99,60.175],[24.95,60.175],[24.95,60.18],[24.94,60.18],[24.94,60.17]]]"),
    ]
    .join("\n")
}

#[test]
fn invalid_polygons_are_repaired_and_counted_apart_from_skipped_ones() {
    let cli = Cli::new();
    let path = cli.file("areas.geojsonseq", &messy_polygons());
    let r = cli.run(&["ingest", "areas", path.to_str().unwrap()]);
    assert!(r.ok, "{}", r.all());
    assert!(
        r.stdout
            .contains("areas: 4 written (3 repaired), 1 skipped (5 read)"),
        "{}",
        r.stdout
    );
    for expected in [
        "repaired line 2, field \"geometry\": is invalid: exterior ring has a self-intersection at (24.945000, 60.175000); repaired",
        "repaired line 3, field \"geometry\": is invalid: polygons at indices 0 and 1 overlap; repaired",
        "repaired line 5, field \"geometry\": is invalid: exterior ring has a self-intersection at (24.950000, 60.175000); repaired",
        "skipped line 4, field \"geometry\": is invalid: exterior ring has a self-intersection at (24.950000, 60.180000); it cannot be repaired: no area is left",
    ] {
        assert!(
            r.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            r.stdout
        );
    }
    assert_eq!(cli.count("areas"), 4);
    // The spike (out to 24.99) is cut off: the layer ends where the parts of line 3 do.
    let r = cli.run(&["layers"]);
    let line = r.stdout.lines().find(|l| l.starts_with("areas ")).unwrap();
    assert!(
        line.contains("24.94000,60.17000,24.97000,60.20000"),
        "{line}"
    );
}

#[test]
fn strict_stops_at_the_first_invalid_geometry_saying_it_could_be_repaired() {
    let cli = Cli::new();
    let path = cli.file("areas.geojsonseq", &messy_polygons());
    let r = cli.run(&["ingest", "areas", path.to_str().unwrap(), "--strict"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            "line 2, field \"geometry\": is invalid: exterior ring has a self-intersection at (24.945000, 60.175000); it can be repaired: ingest without --strict"
        ) && r.stderr.contains("nothing was written"),
        "{}",
        r.stderr
    );
    assert_eq!(cli.count("areas"), 0);
}

#[test]
fn malformed_geojson_names_line_and_column_and_writes_nothing() {
    let cli = Cli::new();
    let path = cli.file(
        "broken.geojson",
        "{\"type\": \"FeatureCollection\",\n \"features\": [ {\"type\": ]}",
    );
    let r = cli.run(&["ingest", "spots", path.to_str().unwrap()]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("broken.geojson") && r.stderr.contains("line 2"),
        "{}",
        r.stderr
    );
    assert_eq!(cli.count("spots"), 0);
}

#[test]
fn geojsonseq_reports_bad_lines_by_number() {
    let cli = Cli::new();
    let text = format!(
        "{}\n{{\"type\":\"Feature\"\n\n{}\n",
        point("24.94", "60.17", "{}"),
        point("24.95", "60.18", "{}")
    );
    let path = cli.file("s.geojsonseq", &text);
    let r = cli.run(&["ingest", "spots", path.to_str().unwrap()]);
    assert!(r.ok, "{}", r.all());
    assert!(
        r.stdout.contains("2 written (0 repaired), 1 skipped"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("line 2: not a GeoJSON Feature"),
        "{}",
        r.stdout
    );
}

#[test]
fn csv_with_lon_lat_reports_bad_numbers_with_line_and_column() {
    let cli = Cli::new();
    let path = cli.file(
        "spots.csv",
        "name,lon,lat,n\nfirst,24.94,60.17,3\nsecond,24.95,sixty,4\nthird,NaN,60.1,5\nfourth,24.96,60.19,\n",
    );
    let r = cli.run(&["ingest", "spots", path.to_str().unwrap()]);
    assert!(r.ok, "{}", r.all());
    assert!(
        r.stdout.contains("2 written (0 repaired), 2 skipped"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("line 3, field \"lat\": \"sixty\" is not a number"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("line 4, field \"lon\": \"NaN\" is not a number"),
        "{}",
        r.stdout
    );
}

#[test]
fn csv_with_wkt_polygons_refuses_unclosed_rings_and_repairs_self_intersecting_ones() {
    let cli = Cli::new();
    let path = cli.file(
        "areas.csv",
        "name,wkt\n\
         ok,\"POLYGON((24.94 60.17,24.95 60.17,24.95 60.18,24.94 60.17))\"\n\
         open,\"POLYGON((24.94 60.17,24.95 60.17,24.95 60.18))\"\n\
         bowtie,\"POLYGON((24.94 60.17,24.95 60.18,24.95 60.17,24.94 60.18,24.94 60.17))\"\n\
         garbage,\"POLYGON((24.94\"\n",
    );
    let r = cli.run(&["ingest", "areas", path.to_str().unwrap()]);
    assert!(r.ok, "{}", r.all());
    assert!(
        r.stdout.contains("2 written (1 repaired), 2 skipped"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("line 3, field \"wkt\": ring 0 is not closed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("repaired line 4, field \"geometry\": is invalid"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("line 5, field \"wkt\": not valid WKT"),
        "{}",
        r.stdout
    );
}

#[test]
fn osm_pbf_uses_the_layers_tag_filter_and_assembles_multipolygons() {
    let cli = Cli::new();
    let layers = root().join("layers");
    let pbf = root().join("fixtures/helsinki.osm.pbf");
    let r = cli.run_with(
        &layers,
        &["ingest", "buildings", pbf.to_str().unwrap()],
        None,
    );
    assert!(r.ok, "{}", r.all());
    // 575 building ways and 67 relations in the extract; those cut by its edge are reported.
    let written: u64 = r
        .stdout
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(written > 400, "{}", r.stdout);
    assert!(
        r.stdout.contains("way ") && r.stdout.contains("is missing from the file"),
        "{}",
        r.stdout
    );
    let r = cli.run_with(
        &layers,
        &[
            "ingest",
            "schools",
            pbf.to_str().unwrap(),
            "--osm",
            "amenity=school",
        ],
        None,
    );
    assert!(r.ok, "{}", r.all());
    assert!(r.stdout.starts_with("schools: 3 written"), "{}", r.stdout);
}

#[test]
fn replace_swaps_the_layer_and_append_adds_to_it() {
    let cli = Cli::new();
    let path = cli.file(
        "two.geojsonseq",
        &[point("24.94", "60.17", "{}"), point("24.95", "60.18", "{}")].join("\n"),
    );
    let p = path.to_str().unwrap();
    assert!(cli.run(&["ingest", "spots", p]).ok);
    assert!(cli.run(&["ingest", "spots", p]).ok);
    assert_eq!(cli.count("spots"), 4);
    assert!(cli.run(&["ingest", "spots", p, "--replace"]).ok);
    assert_eq!(cli.count("spots"), 2);
}

#[test]
fn standard_input_is_read_as_geojsonseq() {
    let cli = Cli::new();
    let r = cli.run_with(
        &cli.layers,
        &["ingest", "spots", "-"],
        Some(&point("24.94", "60.17", "{}")),
    );
    assert!(r.ok, "{}", r.all());
    assert_eq!(cli.count("spots"), 1);
}

#[test]
fn an_unknown_layer_or_format_says_what_is_allowed() {
    let cli = Cli::new();
    let path = cli.file("x.txt", "");
    let r = cli.run(&["ingest", "castles", path.to_str().unwrap()]);
    assert!(
        !r.ok
            && r.stderr.contains("unknown layer \"castles\"")
            && r.stderr.contains("areas, spots"),
        "{}",
        r.stderr
    );
    let r = cli.run(&["ingest", "spots", path.to_str().unwrap()]);
    assert!(!r.ok && r.stderr.contains("--format"), "{}", r.stderr);
    let r = cli.run(&[
        "ingest",
        "spots",
        path.to_str().unwrap(),
        "--format",
        "shapefile",
    ]);
    assert!(
        !r.ok && r.stderr.contains("geojson, geojsonseq, csv, osm"),
        "{}",
        r.stderr
    );
    let r = cli.run(&["ingest", "spots", "/no/such/file.geojson"]);
    assert!(
        !r.ok && r.stderr.contains("/no/such/file.geojson"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_layer_file_with_a_mistake_stops_the_cli_naming_file_and_key() {
    let cli = Cli::new();
    std::fs::write(
        cli.layers.join("bad.toml"),
        "title = \"Bad\"\ngeometry = \"point\"\nminzom = 3\n",
    )
    .unwrap();
    let r = cli.run(&["layers"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("bad.toml") && r.stderr.contains("minzom"),
        "{}",
        r.stderr
    );
    std::fs::write(
        cli.layers.join("bad.toml"),
        "title = \"Bad\"\ngeometry = \"point\"\nmaxzoom = 30\n",
    )
    .unwrap();
    let r = cli.run(&["layers"]);
    assert!(
        !r.ok && r.stderr.contains("bad.toml: key `maxzoom`: 30 is above 24"),
        "{}",
        r.stderr
    );
    std::fs::write(cli.layers.join("Bad-Name.toml"), SPOTS).unwrap();
    std::fs::remove_file(cli.layers.join("bad.toml")).unwrap();
    let r = cli.run(&["layers"]);
    assert!(!r.ok && r.stderr.contains("Bad-Name"), "{}", r.stderr);
}

#[test]
fn layers_lists_count_bounds_and_zooms() {
    let cli = Cli::new();
    let path = cli.file(
        "two.geojsonseq",
        &[point("24.94", "60.17", "{}"), point("24.95", "60.18", "{}")].join("\n"),
    );
    assert!(cli.run(&["ingest", "spots", path.to_str().unwrap()]).ok);
    let r = cli.run(&["layers"]);
    let line = r.stdout.lines().find(|l| l.starts_with("spots ")).unwrap();
    assert!(
        line.contains("24.94000,60.17000,24.95000,60.18000"),
        "{line}"
    );
    assert!(line.contains(" 0-16 "), "{line}");
}

#[test]
fn keys_are_shown_once_listed_without_secrets_and_revoked() {
    let cli = Cli::new();
    let r = cli.run(&["keys", "add", "sensors", "--write", "spots"]);
    assert!(r.ok, "{}", r.all());
    let key = r.stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("ut_") && key.len() == 67, "{}", r.stdout);
    let list = cli.run(&["keys", "list"]);
    assert!(list.stdout.contains("sensors") && list.stdout.contains("spots"));
    assert!(!list.stdout.contains(&key), "the secret must not be listed");
    assert!(
        !cli.run(&["keys", "add", "sensors", "--write", "spots"]).ok,
        "names are unique"
    );
    let r = cli.run(&["keys", "add", "x", "--write", "castles"]);
    assert!(!r.ok && r.stderr.contains("castles"), "{}", r.stderr);
    assert!(!cli.run(&["keys", "add", "y"]).ok, "a key needs a scope");
    assert!(cli.run(&["keys", "revoke", "sensors"]).ok);
    assert!(cli.run(&["keys", "list"]).stdout.contains("revoked"));
    assert!(!cli.run(&["keys", "revoke", "sensors"]).ok);
}
