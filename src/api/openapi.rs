//! `GET /api`: the OpenAPI 3.0 document of this server, generated at request time from the
//! same definitions the handlers use: the layer files (one set of paths per public
//! collection, with its properties as typed query parameters), the item parameters the
//! query parser accepts ([`crate::query::RESERVED`]) and the conformance classes.
//! `tests/openapi.rs` checks that every documented path answers and drives it with
//! schemathesis.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::api::features::{escape, page, wants_html};
use crate::api::{ApiError, AppState, Auth, base_url};
use crate::auth::Reader;
use crate::config::LayerDef;
use crate::index::FieldType;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api", get(api))
}

pub(super) fn param(
    name: &str,
    location: &str,
    description: &str,
    schema: Value,
    required: bool,
) -> Value {
    json!({
        "name": name,
        "in": location,
        "description": description,
        "required": required,
        "schema": schema,
    })
}

pub(super) fn q(name: &str, description: &str, schema: Value) -> Value {
    param(name, "query", description, schema, false)
}

/// Responses every route may give besides its success.
fn errors(codes: &[u16]) -> Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            let what = match c {
                400 => "A malformed or unknown parameter, or a body that is not JSON",
                401 => "No key, or an unknown or revoked one",
                403 => "The key may not write this layer",
                404 => "Not found",
                412 => "If-Match names a state the feature is no longer in",
                413 => "The body is larger than the server accepts",
                415 => "The body's Content-Type is not accepted",
                422 => "The feature does not fit the layer (the description names feature and field)",
                _ => "Error",
            };
            (
                c.to_string(),
                json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}),
            )
        })
        .collect()
}

pub(super) fn ok(description: &str, types: &[&str], schema: Value) -> Value {
    let content: Map<String, Value> = types
        .iter()
        .map(|t| (t.to_string(), json!({ "schema": schema })))
        .collect();
    json!({"description": description, "content": content})
}

pub(super) fn operation(
    summary: &str,
    params: Vec<Value>,
    success: (&str, Value),
    error_codes: &[u16],
) -> Value {
    let mut responses = errors(error_codes);
    responses.insert(success.0.to_string(), success.1);
    json!({"get": {"summary": summary, "parameters": params, "responses": responses}})
}

pub(super) fn f_param() -> Value {
    q(
        "f",
        "Response format",
        json!({"type": "string", "enum": ["json", "html"]}),
    )
}

/// The item filters every query route of a layer takes.
fn filter_params(def: &LayerDef, types: &[Option<FieldType>]) -> Vec<Value> {
    let mut out = vec![
        q(
            "bbox",
            "Only features meeting this CRS84 box: west,south,east,north",
            json!({"type": "array", "items": {"type": "number", "minimum": -180, "maximum": 180}, "minItems": 4, "maxItems": 6}),
        )
        .as_object()
        .cloned()
        .map(|mut o| {
            o.insert("style".into(), json!("form"));
            o.insert("explode".into(), json!(false));
            Value::Object(o)
        })
        .unwrap_or_default(),
        q("filter", "A CQL2 filter", json!({"type": "string"})),
        q(
            "filter-lang",
            "Language of the filter",
            json!({"type": "string", "enum": ["cql2-text", "cql2-json"]}),
        ),
        q(
            "filter-crs",
            "CRS of geometry literals in the filter",
            json!({"type": "string", "enum": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]}),
        ),
    ];
    if def.time.is_some() {
        out.push(q(
            "datetime",
            "Only features valid at this RFC 3339 instant or in this interval (a/b, open ends ..)",
            json!({"type": "string"}),
        ));
    }
    for (i, (name, t)) in def.properties.iter().zip(types).enumerate() {
        out.push(q(
            name,
            &format!("Only features whose {name} equals this"),
            super::property_schema(def, i, *t),
        ));
    }
    out
}

/// A regular expression alternative of literal names.
fn alternatives(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| {
                    if "\\^$.|?*+()[]{}".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Part 4 writes on a collection's items, merged into the read operations' path items.
fn write_paths(def: &LayerDef, paths: &mut Map<String, Value>) {
    let id = def.id.as_str();
    let geojson_body = |what: &str, kinds: &[&str]| {
        json!({"required": true, "description": what, "content": {
            "application/geo+json": {"schema": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": kinds}},
            }},
        }})
    };
    let write = |summary: String, body: Option<Value>, success: (&str, Value), extra: &[u16]| {
        let mut codes = vec![400, 401, 403, 404, 413, 415, 422];
        codes.extend_from_slice(extra);
        let mut responses = errors(&codes);
        responses.insert(success.0.into(), success.1);
        let mut op = json!({
            "summary": summary,
            "security": [{"bearer": []}],
            "responses": responses,
        });
        if let Some(b) = body {
            op["requestBody"] = b;
        }
        op
    };
    let if_match = param(
        "If-Match",
        "header",
        "Change the feature only if its ETag is still this",
        json!({"type": "string"}),
        false,
    );
    let fid = param(
        "featureId",
        "path",
        "Feature id",
        json!({"type": "string"}),
        true,
    );
    let repair = q(
        "repair",
        "true: store an invalid geometry made valid instead of answering 422",
        json!({"type": "boolean", "default": false}),
    );
    let created = json!({"description": "Created; Location names the (first) new feature"});
    let changed = json!({"description": "The feature as now stored, with its new ETag"});
    if let Some(Value::Object(item)) = paths.get_mut(&format!("/collections/{id}/items")) {
        let mut post = write(
            format!(
                "{}: add a Feature, or a FeatureCollection in one transaction",
                def.title
            ),
            Some(geojson_body(
                "The new feature(s)",
                &["Feature", "FeatureCollection"],
            )),
            ("201", created),
            &[],
        );
        post["parameters"] = json!([repair.clone()]);
        item.insert("post".into(), post);
    }
    if let Some(Value::Object(item)) =
        paths.get_mut(&format!("/collections/{id}/items/{{featureId}}"))
    {
        let mut put = write(
            format!("{}: replace a feature", def.title),
            Some(geojson_body("The feature's new state", &["Feature"])),
            ("200", changed.clone()),
            &[412],
        );
        put["parameters"] = json!([fid.clone(), if_match.clone(), repair.clone()]);
        let mut patch = write(
            format!("{}: change a feature (JSON merge patch)", def.title),
            Some(json!({"required": true, "content": {
                "application/merge-patch+json": {"schema": {"type": "object"}},
            }})),
            ("200", changed),
            &[412],
        );
        patch["parameters"] = json!([fid.clone(), if_match.clone(), repair]);
        let mut delete = write(
            format!("{}: delete a feature", def.title),
            None,
            ("204", json!({"description": "Deleted"})),
            &[412],
        );
        delete["parameters"] = json!([fid, if_match]);
        item.insert("put".into(), put);
        item.insert("patch".into(), patch);
        item.insert("delete".into(), delete);
    }
}

fn collection_paths(
    def: &LayerDef,
    types: &[Option<FieldType>],
    polygon_layers: &[&str],
    paths: &mut Map<String, Value>,
) {
    let id = def.id.as_str();
    let fc = json!({"$ref": "#/components/schemas/featureCollection"});
    let names: Vec<&str> = def.properties.iter().map(String::as_str).collect();
    let one = alternatives(&names);
    let properties_pattern = format!("^(({one})(,({one}))*)?$");
    let sortable = format!("[+-]?(id|{one})");
    let sortby_pattern = format!("^({sortable}(,{sortable})*)?$");
    let numeric: Vec<&str> = def
        .properties
        .iter()
        .zip(types)
        .filter(|(_, t)| **t == Some(FieldType::Number))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut items_params = filter_params(def, types);
    items_params.extend([
        q(
            "limit",
            "Page size (default 10, larger values are clamped to 10000); for f=fgb and f=csv \
             files, the whole result by default, up to the server's --max-export-features",
            json!({"type": "integer", "minimum": 1}),
        ),
        q(
            "offset",
            "Features to skip",
            json!({"type": "integer", "minimum": 0}),
        ),
        q(
            "properties",
            "Comma list of properties to return",
            json!({"type": "string", "pattern": properties_pattern}),
        ),
        q(
            "sortby",
            "Comma list of [+|-]property",
            json!({"type": "string", "pattern": sortby_pattern}),
        ),
        q(
            "f",
            "Response format: a page of GeoJSON or HTML, or the result as a FlatGeobuf or CSV \
             (WKT) file",
            json!({"type": "string", "enum": ["json", "html", "fgb", "csv"]}),
        ),
    ]);
    paths.insert(
        format!("/collections/{id}"),
        operation(
            &format!("{}: the collection", def.title),
            vec![f_param()],
            (
                "200",
                ok(
                    "The collection",
                    &["application/json", "text/html"],
                    json!({"type": "object"}),
                ),
            ),
            &[400],
        ),
    );
    paths.insert(
        format!("/collections/{id}/items"),
        operation(
            &format!("{}: features", def.title),
            items_params,
            ("200", {
                let mut answer = ok(
                    "A page of features (or, with f=fgb or f=csv, the result as a file)",
                    &["application/geo+json", "text/html"],
                    fc.clone(),
                );
                let file = json!({"schema": {"type": "string", "format": "binary"}});
                answer["content"]["application/flatgeobuf"] = file.clone();
                answer["content"]["text/csv"] = file;
                answer
            }),
            &[400],
        ),
    );
    paths.insert(
        format!("/collections/{id}/items/{{featureId}}"),
        operation(
            &format!("{}: one feature", def.title),
            vec![
                param(
                    "featureId",
                    "path",
                    "Feature id",
                    json!({"type": "string"}),
                    true,
                ),
                f_param(),
            ],
            (
                "200",
                ok(
                    "The feature",
                    &["application/geo+json", "text/html"],
                    json!({"type": "object"}),
                ),
            ),
            &[400, 404],
        ),
    );
    paths.insert(
        format!("/collections/{id}/queryables"),
        operation(
            &format!("{}: queryable properties", def.title),
            vec![],
            (
                "200",
                ok(
                    "JSON Schema of the properties",
                    &["application/schema+json"],
                    json!({"type": "object"}),
                ),
            ),
            &[],
        ),
    );
    let point = param(
        "point",
        "query",
        "lon,lat (CRS84)",
        json!({"type": "string", "pattern": "^-?(180(\\.0+)?|(1[0-7][0-9]|[0-9]{1,2})(\\.[0-9]+)?),-?(90(\\.0+)?|[0-8]?[0-9](\\.[0-9]+)?)$"}),
        true,
    );
    let mut nearest = vec![
        point.clone(),
        q(
            "k",
            "How many (1 to 1000, default 5)",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        q(
            "max_distance",
            "Farthest distance in metres",
            json!({"type": "number", "minimum": 0}),
        ),
    ];
    nearest.extend(filter_params(def, types));
    paths.insert(
        format!("/collections/{id}/nearest"),
        operation(
            &format!(
                "{}: the k nearest features to a point, with distance_m",
                def.title
            ),
            nearest,
            (
                "200",
                ok(
                    "Features, closest first",
                    &["application/geo+json"],
                    fc.clone(),
                ),
            ),
            &[400],
        ),
    );
    let mut containing = vec![point];
    containing.extend(filter_params(def, types));
    paths.insert(
        format!("/collections/{id}/containing"),
        operation(
            &format!("{}: features containing a point", def.title),
            containing,
            ("200", ok("Features", &["application/geo+json"], fc)),
            &[400],
        ),
    );
    let mut aggregate = vec![param(
        "by",
        "query",
        "A polygon layer to group by",
        json!({"type": "string", "enum": polygon_layers}),
        true,
    )];
    if !numeric.is_empty() {
        aggregate.push(q(
            "sum",
            "A numeric property to sum",
            json!({"type": "string", "enum": numeric}),
        ));
    }
    aggregate.extend(filter_params(def, types));
    paths.insert(
        format!("/collections/{id}/aggregate"),
        operation(
            &format!(
                "{}: counts (and sums) grouped by the polygons of another layer",
                def.title
            ),
            aggregate,
            (
                "200",
                ok("Groups", &["application/json"], json!({"type": "object"})),
            ),
            &[400],
        ),
    );
    if def.cluster.is_some() {
        let mut leaves = vec![
            param(
                "clusterId",
                "path",
                "A cluster's cluster_id, from a tile",
                json!({"type": "integer", "minimum": 0}),
                true,
            ),
            q(
                "limit",
                "Page size (1 to 10000, default 10)",
                json!({"type": "integer", "minimum": 1, "maximum": 10000}),
            ),
            q(
                "offset",
                "Points to skip",
                json!({"type": "integer", "minimum": 0}),
            ),
        ];
        // The tile's own query, which chose the points its clusters group.
        leaves.push(q(
            "filter",
            "The tile's CQL2 filter",
            json!({"type": "string"}),
        ));
        leaves.push(q(
            "filter-lang",
            "Language of the filter",
            json!({"type": "string", "enum": ["cql2-text", "cql2-json"]}),
        ));
        if def.time.is_some() {
            leaves.push(q(
                "datetime",
                "The tile's datetime",
                json!({"type": "string"}),
            ));
        }
        paths.insert(
            format!("/collections/{id}/clusters/{{clusterId}}/leaves"),
            operation(
                &format!(
                    "{}: the points of a cluster of its tiles (with the tile's datetime and filter)",
                    def.title
                ),
                leaves,
                (
                    "200",
                    ok("The points, paged", &["application/geo+json"], json!({"type": "object"})),
                ),
                &[400, 404],
            ),
        );
    }
}

/// The document, for the layers `reader` may see, served from `base`.
pub fn document(state: &AppState, reader: &Reader, base: &str) -> Value {
    let bearer = match &state.oidc {
        Some(v) => format!(
            "An access key from `urbantile keys add`, or a token of the identity provider {} (its discovery document: {}/.well-known/openid-configuration); the layers' `[access]` rules say what a token may do",
            v.config().issuer,
            v.config().issuer.trim_end_matches('/')
        ),
        None => "An access key from `urbantile keys add`".to_owned(),
    };
    let mut paths = Map::new();
    let plain = |summary: &str, types: &[&str]| {
        operation(
            summary,
            vec![f_param()],
            ("200", ok(summary, types, json!({"type": "object"}))),
            &[400],
        )
    };
    paths.insert(
        "/".into(),
        plain("Landing page", &["application/json", "text/html"]),
    );
    paths.insert(
        "/conformance".into(),
        plain("Conformance classes", &["application/json", "text/html"]),
    );
    paths.insert(
        "/collections".into(),
        plain("Collections", &["application/json", "text/html"]),
    );
    paths.insert(
        "/api".into(),
        operation(
            "This document",
            vec![],
            (
                "200",
                ok(
                    "OpenAPI 3.0",
                    &["application/vnd.oai.openapi+json;version=3.0"],
                    json!({"type": "object"}),
                ),
            ),
            &[],
        ),
    );
    paths.insert(
        "/ping".into(),
        operation(
            "Is the process up (touches nothing)",
            vec![],
            ("200", ok("ok", &["text/plain"], json!({"type": "string"}))),
            &[],
        ),
    );
    paths.insert(
        "/health".into(),
        operation(
            "Is the store answering, and how far has this server applied its change log \
             (applied, head, behind)",
            vec![],
            (
                "200",
                ok("ok", &["application/json"], json!({"type": "object"})),
            ),
            &[],
        ),
    );
    paths.insert(
        "/changes".into(),
        operation(
            "Server-sent events, one per feature created, replaced, updated or deleted; \
             reconnect with Last-Event-ID to receive what was missed",
            vec![
                q(
                    "layers",
                    "Comma list of layers to follow (default: every layer)",
                    json!({"type": "string"}),
                ),
                param(
                    "Last-Event-ID",
                    "header",
                    "The id of the last event received",
                    json!({"type": "string", "pattern": "^[0-9]+$"}),
                    false,
                ),
            ],
            (
                "200",
                ok(
                    "An event stream",
                    &["text/event-stream"],
                    json!({"type": "string"}),
                ),
            ),
            &[400, 404],
        ),
    );
    paths.insert(
        "/catalog".into(),
        operation(
            "Layers with counts, bounds and zooms",
            vec![],
            (
                "200",
                ok("Layers", &["application/json"], json!({"type": "object"})),
            ),
            &[],
        ),
    );
    paths.insert(
        "/style.json".into(),
        operation(
            "MapLibre style of every public layer",
            vec![],
            (
                "200",
                ok("Style", &["application/json"], json!({"type": "object"})),
            ),
            &[],
        ),
    );
    paths.insert(
        "/fonts/{fontstack}/{range}.pbf".into(),
        operation(
            "Label glyphs (MapLibre glyph protocol): signed distance fields of 256 code points",
            vec![
                param(
                    "fontstack",
                    "path",
                    "Font names, comma-separated (at most 4), such as `Noto Sans Regular`; \
                     a code point takes the first listed font's glyph",
                    json!({"type": "string"}),
                    true,
                ),
                param(
                    "range",
                    "path",
                    "N-M with N a multiple of 256 and M = N + 255, at most 65535, such as 0-255",
                    json!({"type": "string", "pattern": "^[0-9]{1,5}-[0-9]{1,5}$"}),
                    true,
                ),
            ],
            (
                "200",
                ok(
                    "The glyphs (glyphs.proto)",
                    &["application/x-protobuf"],
                    json!({"type": "string", "format": "binary"}),
                ),
            ),
            &[400, 404],
        ),
    );
    let layers_param = param(
        "layers",
        "path",
        "A layer id or a comma list",
        json!({"type": "string"}),
        true,
    );
    let int = |name: &str| {
        param(
            name,
            "path",
            "Tile coordinate",
            json!({"type": "integer", "minimum": 0}),
            true,
        )
    };
    let mut tile = operation(
        "A vector tile (MVT 2.1) of one or more layers",
        vec![
            layers_param.clone(),
            int("z"),
            int("x"),
            int("y"),
            q(
                "datetime",
                "Time filter for layers with a validity interval: an RFC 3339 instant or \
                 interval (`..` for an open end), or `now`",
                json!({"type": "string"}),
            ),
            q("filter", "CQL2 text filter", json!({"type": "string"})),
            q(
                "v",
                "Ignored: a client's cache buster, e.g. the last change event id",
                json!({"type": "string"}),
            ),
            q(
                "filter-lang",
                "Language of the filter",
                json!({"type": "string", "enum": ["cql2-text", "cql2-json"]}),
            ),
        ],
        (
            "200",
            ok(
                "The tile",
                &["application/vnd.mapbox-vector-tile"],
                json!({"type": "string", "format": "binary"}),
            ),
        ),
        &[400, 404],
    );
    tile["get"]["responses"]["204"] = json!({"description": "No feature in this tile"});
    tile["get"]["responses"]["304"] = json!({"description": "Not modified (If-None-Match)"});
    paths.insert("/tiles/{layers}/{z}/{x}/{y}.mvt".into(), tile);
    paths.insert(
        "/tiles/{layers}.json".into(),
        operation(
            "TileJSON 3.0.0",
            vec![layers_param],
            (
                "200",
                ok("TileJSON", &["application/json"], json!({"type": "object"})),
            ),
            &[404],
        ),
    );
    let public: Vec<&LayerDef> = reader.visible(state.data.layers()).collect();
    let polygon_layers: Vec<&str> = public
        .iter()
        .filter(|d| d.geometry == crate::model::GeometryKind::Polygon)
        .map(|d| d.id.as_str())
        .collect();
    for def in &public {
        let index = state.data.index().read(&def.id);
        collection_paths(def, index.field_types(), &polygon_layers, &mut paths);
        write_paths(def, &mut paths);
    }
    super::ogc_tiles::openapi_paths(&public, &mut paths);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "urbantile",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The city's map layers as vector tiles, OGC API - Features collections and planners' queries.",
        },
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
          "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": bearer},
          },
          "schemas": {
            "exception": {
                "type": "object",
                "required": ["code"],
                "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
            },
            "featureCollection": {
                "type": "object",
                "required": ["type", "features"],
                "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": {"type": "object"}},
                    "numberMatched": {"type": "integer", "minimum": 0},
                    "numberReturned": {"type": "integer", "minimum": 0},
                },
            },
        }},
    })
}

async fn api(
    State(state): State<AppState>,
    Auth(reader): Auth,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    if let Some((k, _)) = params.iter().find(|(k, _)| k != "f") {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter {k:?} (/api takes only f)"
        )));
    }
    let doc = document(&state, &reader, &base_url(&headers));
    if wants_html(&params, &headers)? {
        let rows: String = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let names: Vec<&str> = item["get"]["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                format!(
                    "<tr><td><code>GET {}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(path),
                    escape(item["get"]["summary"].as_str().unwrap_or("")),
                    escape(&names.join(", "))
                )
            })
            .collect();
        return Ok(page(
            "API",
            format!(
                "<p>The OpenAPI 3.0 document is <a href=\"/api?f=json\">here as JSON</a>.</p>\
                 <table><tr><th>Route</th><th>What</th><th>Parameters</th></tr>{rows}</table>"
            ),
        ));
    }
    let mut r = Json(doc).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/vnd.oai.openapi+json;version=3.0"),
    );
    Ok(r)
}
