//! The OpenAPI document and real clients of the feature API: every documented path answers,
//! schemathesis drives `/api` (bounded, fixed seed), and OWSLib reads collections,
//! queryables and filtered items. Needs `python3 -m pip install -r tests/requirements.txt`.

mod common;

use std::process::Command;

use common::{TestServer, root};

#[test]
fn every_documented_path_answers() {
    let server = TestServer::start(&root().join("layers"));
    let r = server.get("/api", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().contains("openapi"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let school = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let id = urbantile::model::LayerId::new("schools").unwrap();
        rt.block_on(server.data.store().load_layer(&id)).unwrap()[0]
            .id
            .0
    };
    for (path, item) in paths {
        if path == "/changes" {
            continue; // an endless event stream: tests/live.rs reads it
        }
        let mut url = path
            .replace("{layers}", "schools")
            .replace("{z}/{x}/{y}", "14/9327/4742")
            .replace("{tileMatrix}/{tileRow}/{tileCol}", "14/4742/9327")
            .replace("{featureId}", &school.to_string())
            .replace("{fontstack}", "Noto%20Sans%20Regular")
            .replace("{range}", "0-255");
        if !path.contains("/schools/") && path.contains("{featureId}") {
            continue; // the id is a school's; other layers answer 404 for it by design
        }
        if path.contains("{clusterId}") {
            // A cluster of the layer's lowest zoom, as its tiles name it.
            let def = server.data.layer(path.split('/').nth(2).unwrap()).unwrap();
            let clusters = server.data.clusters(def, Default::default()).unwrap();
            let id = clusters
                .tree
                .nodes(def.minzoom)
                .find_map(|n| match n.kind {
                    urbantile::cluster::NodeKind::Cluster { id, .. } => Some(id),
                    urbantile::cluster::NodeKind::Point { .. } => None,
                })
                .unwrap();
            url = url.replace("{clusterId}", &id.to_string());
        }
        let required: Vec<&str> = item["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["required"] == true && p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let query: Vec<String> = required
            .iter()
            .map(|name| match *name {
                "point" => "point=24.9445,60.1690".to_string(),
                "by" => "by=zoning".to_string(),
                other => panic!("no value for required parameter {other} of {path}"),
            })
            .collect();
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let r = server.get(&url, &[]);
        assert!(matches!(r.status, 200 | 204), "{url}: {}", r.status);
    }
    let landing = server.get("/", &[]).json();
    assert!(
        landing["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["rel"] == "service-desc")
    );
}

fn python(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn schemathesis_finds_no_server_error_or_nonconformance() {
    let server = TestServer::start(&root().join("layers"));
    let url = format!("{}/api", server.base_url());
    // positive_data_acceptance is left out: a JSON schema cannot say which free text is
    // valid CQL2 or RFC 3339, or that south <= north, and the server rightly answers 400.
    let (ok, text) = python(&[
        "python3",
        "-m",
        "schemathesis.cli",
        "run",
        &url,
        "--max-examples",
        "5",
        "--seed",
        "7",
        "--no-color",
        "--exclude-checks",
        "positive_data_acceptance",
        "--request-timeout",
        "30",
        // An event stream never ends; tests/live.rs covers it.
        "--exclude-path",
        "/changes",
    ]);
    let summary: String = text
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(ok, "schemathesis found problems:\n{text}");
}

#[test]
fn owslib_reads_collections_queryables_and_filtered_items() {
    let server = TestServer::start(&root().join("layers"));
    let script = root().join("tests/owslib_check.py");
    let (ok, text) = python(&["python3", script.to_str().unwrap(), &server.base_url()]);
    println!("{text}");
    assert!(ok, "OWSLib check failed:\n{text}");
}
