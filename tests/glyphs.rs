//! Label glyphs, `GET /fonts/{fontstack}/{range}.pbf`: every character of the names the
//! style labels has a glyph, decoded by an independent reader (`tests/check_glyphs.py`, a
//! hand-written protobuf reader in Python); and bad requests are refused with a JSON body
//! that says what and where.

mod common;

use std::process::Command;

use common::{TestServer, layer_folder, root};

#[test]
fn glyph_ranges_cover_every_character_of_the_labelled_names() {
    let server = TestServer::start(&root().join("layers"));
    let out = Command::new("python3")
        .arg(root().join("tests/check_glyphs.py"))
        .arg(server.base_url())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "glyph check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_glyph_requests_say_what_is_wrong_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&layer_folder(dir.path(), &["schools"], &[]));
    let regular = "/fonts/Noto%20Sans%20Regular";
    let ok = server.get(&format!("{regular}/0-255.pbf"), &[]);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/x-protobuf"));
    // Rendered once, then answered from memory: the same bytes.
    assert_eq!(
        server.get(&format!("{regular}/0-255.pbf"), &[]).body,
        ok.body
    );
    // Gzipped to clients that accept it: the same glyphs.
    let zipped = server.get(
        &format!("{regular}/0-255.pbf"),
        &[("Accept-Encoding", "gzip, deflate, br, zstd")],
    );
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    assert_eq!(common::gunzip(&zipped.body), ok.body);
    // A stack of both fonts answers too.
    let both = "/fonts/Noto%20Sans%20Bold,Noto%20Sans%20Regular/256-511.pbf";
    assert_eq!(server.get(both, &[]).status, 200);

    let long_stack = ["Noto%20Sans%20Regular"; 5].join(",");
    let long_name = "x".repeat(300);
    let cases: &[(String, u16, &str)] = &[
        (format!("{regular}/0-511.pbf"), 400, "range"),
        (format!("{regular}/1-256.pbf"), 400, "multiple of 256"),
        (format!("{regular}/65536-65791.pbf"), 400, "65535"),
        (format!("{regular}/a-b.pbf"), 400, "range"),
        (format!("{regular}/-256-511.pbf"), 400, "range"),
        (format!("{regular}/{}.pbf", "9".repeat(40)), 400, "range"),
        (format!("/fonts/{long_stack}/0-255.pbf"), 400, "at most 4"),
        (format!("/fonts/{long_name}/0-255.pbf"), 400, "bytes"),
        (
            "/fonts/Noto%20Sans%20Regular,/0-255.pbf".into(),
            400,
            "empty",
        ),
        (
            "/fonts/Arial%20Unicode%20MS%20Regular/0-255.pbf".into(),
            404,
            "Arial",
        ),
        (
            "/fonts/Noto%20Sans%20Regular,Comic%20Sans/0-255.pbf".into(),
            404,
            "Comic Sans",
        ),
        (format!("{regular}/0-255.json"), 404, ".pbf"),
    ];
    for (path, status, says) in cases {
        let r = server.get(path, &[]);
        assert_eq!(r.status, *status, "{path}");
        let body = r.json();
        let description = body["description"].as_str().unwrap_or_default();
        assert!(
            description.contains(says) && body["code"].is_string(),
            "{path}: {body}"
        );
    }
    assert_eq!(server.get("/health", &[]).status, 200);
}
