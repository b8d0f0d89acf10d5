//! OGC API - Tiles 1.0 (OGC 20-057): tile matrix sets, tile sets and their tiles, over the
//! same tiles `/tiles/{layers}/{z}/{x}/{y}.mvt` serves.
//!
//! - `/tileMatrixSets[/WebMercatorQuad]`: the one tile matrix set, defined as TMS 2.0
//!   (OGC 17-083r4) by [`crate::tiles::tms`];
//! - `/tiles` (dataset tile sets: every public layer as one vector tile set, or those named
//!   by `collections=`) and `/collections/{id}/tiles` (one layer): the list of tile sets
//!   and their metadata (`.../WebMercatorQuad`: the tile URL template, layers with their
//!   declared property types, bounding box, tileMatrixSetLimits from the layers' zooms and
//!   bounds);
//! - tiles at `.../WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}`, that is z/y/x: they
//!   are answered by [`crate::api::tiles::serve`] under the same cache key as
//!   `/tiles/{ids}/{z}/{x}/{y}.mvt` (the ids joined by commas), so both routes give the same
//!   bytes, headers and cache entries.
//!
//! The limits list the zooms where the layers' data is (minzoom..=maxzoom) over the tiles
//! meeting their bounds. Any other tile of the matrix set is answered as `/tiles` answers it
//! (204 when empty, overzoomed above maxzoom); a tile outside the matrix set is a 400.
//! `/tiles/WebMercatorQuad` is a literal route, because `/tiles/{tileset}` is the TileJSON
//! route: a layer id (`[a-z0-9_]+`) can never be `WebMercatorQuad`.

mod openapi;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::api::features::{escape, page, wants_html};
use crate::api::{ApiError, AppState, Auth, base_url, property_schema, visible_layer};
use crate::auth::Reader;
use crate::config::LayerDef;
use crate::model::{Bbox, GeometryKind};
use crate::tiles::tms::{
    CRS84, EPSG_3857, GOOGLE_MAPS_COMPATIBLE, Limits, TILE_PX, TileMatrix, WEB_MERCATOR_QUAD,
    WEB_MERCATOR_QUAD_URI, tile_at,
};

pub use crate::api::tiles::MVT_CONTENT_TYPE;
pub(crate) use openapi::openapi_paths;

/// The OGC API - Tiles conformance classes implemented.
pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/collections-selection",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/datetime",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
];

/// Link relations of OGC API - Tiles.
pub const REL_TILESETS_VECTOR: &str = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector";
pub const REL_TILING_SCHEMES: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes";
const REL_TILING_SCHEME: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme";
const REL_GEODATA: &str = "http://www.opengis.net/def/rel/ogc/1.0/geodata";
const REL_DATASET: &str = "http://www.opengis.net/def/rel/ogc/1.0/dataset";
const JSON: &str = "application/json";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tileMatrixSets", get(tile_matrix_sets))
        .route("/tileMatrixSets/{tms}", get(tile_matrix_set))
        .route("/tiles", get(dataset_tilesets))
        .route("/tiles/WebMercatorQuad", get(dataset_tileset))
        .route(
            "/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}",
            get(dataset_tile),
        )
        .route("/collections/{id}/tiles", get(collection_tilesets))
        .route("/collections/{id}/tiles/{tms}", get(collection_tileset))
        .route(
            "/collections/{id}/tiles/{tms}/{tileMatrix}/{tileRow}/{tileCol}",
            get(collection_tile),
        )
}

fn link(href: String, rel: &str, kind: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": kind, "title": title})
}

/// The links a landing page gives to the tile resources.
pub fn landing_links(base: &str) -> [Value; 2] {
    [
        link(
            format!("{base}/tiles"),
            REL_TILESETS_VECTOR,
            JSON,
            "Vector tile sets of the dataset (OGC API - Tiles)",
        ),
        link(
            format!("{base}/tileMatrixSets"),
            REL_TILING_SCHEMES,
            JSON,
            "Tile matrix sets",
        ),
    ]
}

/// The link a collection gives to its tile sets.
pub fn collection_link(base: &str, id: &str) -> Value {
    link(
        format!("{base}/collections/{id}/tiles"),
        REL_TILESETS_VECTOR,
        JSON,
        "Vector tile sets of the collection (OGC API - Tiles)",
    )
}

/// The query parameters of a request, each at most once.
fn unique(params: Vec<(String, String)>) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::with_capacity(params.len());
    for (k, v) in params {
        if out.contains_key(&k) {
            return Err(ApiError::BadRequest(format!(
                "query parameter {k:?} is given more than once"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Refuses any parameter but those in `allowed`.
fn only(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::BadRequest(format!(
            "unknown query parameter {k:?} (this resource takes: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// JSON, or for `f=html` (or a browser's Accept) a page with the document's links.
fn json_or_html(
    doc: Value,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    title: &str,
) -> Result<Response, ApiError> {
    let f: Vec<(String, String)> = params
        .get("f")
        .map(|f| vec![("f".to_string(), f.clone())])
        .unwrap_or_default();
    if !wants_html(&f, headers)? {
        return Ok(Json(doc).into_response());
    }
    let links: String = doc["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["templated"] != true)
        .map(|l| {
            let href = l["href"].as_str().unwrap_or("");
            format!(
                "<li><a href=\"{}\">{}</a> ({})</li>",
                escape(href),
                escape(l["title"].as_str().unwrap_or(href)),
                escape(l["rel"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    Ok(page(
        title,
        format!("<ul>{links}</ul><pre>{}</pre>", escape(&text)),
    ))
}

/// A tile matrix set id from a path: only WebMercatorQuad is served.
fn known_tms(tms: &str) -> Result<(), ApiError> {
    if tms == WEB_MERCATOR_QUAD {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "unknown tile matrix set {:?} (this server has {WEB_MERCATOR_QUAD})",
            tms.chars().take(60).collect::<String>()
        )))
    }
}

async fn tile_matrix_sets(
    _: Auth,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let params = unique(params)?;
    only(&params, &["f"])?;
    let base = base_url(&headers);
    let doc = json!({
        "tileMatrixSets": [{
            "id": WEB_MERCATOR_QUAD,
            "title": "Google Maps Compatible for the World",
            "uri": WEB_MERCATOR_QUAD_URI,
            "crs": EPSG_3857,
            "links": [link(format!("{base}/tileMatrixSets/{WEB_MERCATOR_QUAD}"), "self", JSON, "WebMercatorQuad")],
        }],
        "links": [link(format!("{base}/tileMatrixSets"), "self", JSON, "Tile matrix sets")],
    });
    json_or_html(doc, &params, &headers, "Tile matrix sets")
}

/// The TMS 2.0 definition of WebMercatorQuad, zooms 0..=[`crate::tiles::MAX_ZOOM`].
pub fn web_mercator_quad() -> Value {
    let origin = TileMatrix::at(0).map_or([0.0; 2], |m| m.point_of_origin);
    let matrices: Vec<Value> = TileMatrix::all()
        .map(|m| {
            json!({
                "id": m.zoom.to_string(),
                "scaleDenominator": m.scale_denominator,
                "cellSize": m.cell_size,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": m.point_of_origin,
                "tileWidth": TILE_PX,
                "tileHeight": TILE_PX,
                "matrixWidth": m.matrix_size,
                "matrixHeight": m.matrix_size,
            })
        })
        .collect();
    let (lower, upper) = ([origin[0], -origin[1]], [-origin[0], origin[1]]);
    json!({
        "id": WEB_MERCATOR_QUAD,
        "title": "Google Maps Compatible for the World",
        "uri": WEB_MERCATOR_QUAD_URI,
        "crs": EPSG_3857,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": GOOGLE_MAPS_COMPATIBLE,
        "boundingBox": {
            "lowerLeft": lower,
            "upperRight": upper,
            "crs": EPSG_3857,
        },
        "tileMatrices": matrices,
    })
}

async fn tile_matrix_set(
    _: Auth,
    Path(tms): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    known_tms(&tms)?;
    let params = unique(params)?;
    only(&params, &["f"])?;
    let mut doc = web_mercator_quad();
    doc["links"] = json!([link(
        format!("{}/tileMatrixSets/{WEB_MERCATOR_QUAD}", base_url(&headers)),
        "self",
        JSON,
        "WebMercatorQuad"
    )]);
    json_or_html(doc, &params, &headers, "WebMercatorQuad")
}

/// A tile set: the layers it draws and where it is served.
struct Tileset<'a> {
    defs: Vec<&'a LayerDef>,
    /// `/tiles` or `/collections/{id}/tiles`.
    path: String,
    /// `?collections=...` as the dataset tile set was asked for, or empty.
    query: String,
    /// The collection of a collection's tile set.
    collection: Option<&'a LayerDef>,
}

impl Tileset<'_> {
    /// The ids joined by commas: the `{layers}` of `/tiles/{layers}/...`, and the cache key.
    fn ids(&self) -> String {
        let ids: Vec<&str> = self.defs.iter().map(|d| d.id.as_str()).collect();
        ids.join(",")
    }

    fn title(&self) -> String {
        match self.collection {
            Some(def) => def.title.clone(),
            None if self.query.is_empty() => "urbantile: every public layer".into(),
            None => {
                let titles: Vec<&str> = self.defs.iter().map(|d| d.title.as_str()).collect();
                titles.join(", ")
            }
        }
    }
}

/// The dataset's tile set: the layers `collections` names (readable by `reader`, each once),
/// or every public layer.
fn dataset<'a>(
    state: &'a AppState,
    reader: &Reader,
    collections: Option<&String>,
) -> Result<Tileset<'a>, ApiError> {
    let Some(list) = collections else {
        return Ok(Tileset {
            defs: state.data.layers().iter().filter(|d| !d.private).collect(),
            path: "/tiles".into(),
            query: String::new(),
            collection: None,
        });
    };
    let mut defs: Vec<&LayerDef> = Vec::new();
    for id in list.split(',') {
        let def = state
            .data
            .layer(id)
            .filter(|d| reader.can_read(d))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "collections: {:?} is not a collection of this dataset",
                    id.chars().take(60).collect::<String>()
                ))
            })?;
        if defs.iter().any(|d| d.id == def.id) {
            return Err(ApiError::BadRequest(format!(
                "collections: {id:?} is listed twice"
            )));
        }
        defs.push(def);
    }
    let ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
    Ok(Tileset {
        query: format!("?collections={}", ids.join(",")),
        defs,
        path: "/tiles".into(),
        collection: None,
    })
}

fn collection<'a>(state: &'a AppState, reader: &Reader, id: &str) -> Result<Tileset<'a>, ApiError> {
    let def = visible_layer(state, reader, id)?;
    Ok(Tileset {
        defs: vec![def],
        path: format!("/collections/{}/tiles", def.id),
        query: String::new(),
        collection: Some(def),
    })
}

/// The list of tile sets (one: WebMercatorQuad) of `set`.
fn tilesets_doc(set: &Tileset, base: &str) -> Value {
    let (path, query) = (&set.path, &set.query);
    json!({
        "tilesets": [{
            "title": set.title(),
            "dataType": "vector",
            "crs": EPSG_3857,
            "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
            "links": [
                link(format!("{base}{path}/{WEB_MERCATOR_QUAD}{query}"), "self", JSON, "The tile set's metadata"),
                link(format!("{base}/tileMatrixSets/{WEB_MERCATOR_QUAD}"), REL_TILING_SCHEME, JSON, "WebMercatorQuad"),
            ],
        }],
        "links": [link(format!("{base}{path}{query}"), "self", JSON, "Tile sets")],
    })
}

/// Lon/lat bounds as a TMS 2.0 `2DBoundingBox`.
fn bounding_box(b: Bbox) -> Value {
    json!({"lowerLeft": [b.west, b.south], "upperRight": [b.east, b.north], "crs": CRS84})
}

/// What a layer of the tile set is: its fields (declared property types, plus a clustered
/// layer's cluster fields), zooms, bounds and collection.
fn layer_doc(state: &AppState, def: &LayerDef, base: &str) -> Value {
    let index = state.data.index().read(&def.id);
    let mut properties: Map<String, Value> = def
        .properties
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let inferred = index.field_types().get(i).copied().flatten();
            (name.clone(), property_schema(def, i, inferred))
        })
        .collect();
    if def.cluster.is_some() {
        for (name, ty) in [
            ("cluster", "boolean"),
            ("cluster_id", "integer"),
            ("point_count", "integer"),
            ("point_count_abbreviated", "string"),
            ("expansion_zoom", "integer"),
        ] {
            properties.insert(name.into(), json!({ "type": ty }));
        }
    }
    let mut layer = json!({
        "id": def.id,
        "title": def.title,
        "description": def.description,
        "dataType": "vector",
        "geometryDimension": match def.geometry {
            GeometryKind::Point => 0,
            GeometryKind::Line => 1,
            GeometryKind::Polygon => 2,
        },
        "featureType": def.id,
        "crs": EPSG_3857,
        "minTileMatrix": def.minzoom.to_string(),
        "maxTileMatrix": def.maxzoom.to_string(),
        "propertiesSchema": {"type": "object", "properties": properties},
        "links": [link(format!("{base}/collections/{}", def.id), REL_GEODATA, JSON, &def.title)],
    });
    if let Some(b) = index.bounds() {
        layer["boundingBox"] = bounding_box(b);
    }
    layer
}

/// The limits of `set`: each zoom from the lowest minzoom to the highest maxzoom of its
/// layers, over the tiles meeting the union of their bounds (the whole matrix when no layer
/// holds a feature yet).
fn limits(state: &AppState, defs: &[&LayerDef]) -> (Vec<Limits>, Option<Bbox>) {
    let bounds = defs
        .iter()
        .filter_map(|d| state.data.index().read(&d.id).bounds())
        .reduce(Bbox::union);
    let min = defs.iter().map(|d| d.minzoom).min().unwrap_or(0);
    let max = defs.iter().map(|d| d.maxzoom).max().unwrap_or(0);
    let limits = (min..=max).map(|z| Limits::covering(bounds, z)).collect();
    (limits, bounds)
}

/// The tile set metadata of `set` (TMS 2.0 `TileSetMetadata`).
fn tileset_doc(state: &AppState, set: &Tileset, base: &str) -> Value {
    let (path, query) = (&set.path, &set.query);
    let (limits, bounds) = limits(state, &set.defs);
    let tile_matrix_limits: Vec<Value> = limits
        .iter()
        .map(|l| {
            json!({
                "tileMatrix": l.zoom.to_string(),
                "minTileRow": l.min_row,
                "maxTileRow": l.max_row,
                "minTileCol": l.min_col,
                "maxTileCol": l.max_col,
            })
        })
        .collect();
    let ids = set.ids();
    let mut links = vec![
        link(
            format!("{base}{path}/{WEB_MERCATOR_QUAD}{query}"),
            "self",
            JSON,
            "This tile set",
        ),
        link(
            format!("{base}/tileMatrixSets/{WEB_MERCATOR_QUAD}"),
            REL_TILING_SCHEME,
            JSON,
            "WebMercatorQuad",
        ),
        json!({
            "href": format!("{base}{path}/{WEB_MERCATOR_QUAD}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}"),
            "rel": "item",
            "type": MVT_CONTENT_TYPE,
            "title": "A vector tile (MVT 2.1), z/y/x",
            "templated": true,
        }),
    ];
    match set.collection {
        Some(def) => links.push(link(
            format!("{base}/collections/{}", def.id),
            REL_GEODATA,
            JSON,
            &def.title,
        )),
        None => links.push(link(format!("{base}/"), REL_DATASET, JSON, "The dataset")),
    }
    if !set.defs.is_empty() {
        links.push(link(
            format!("{base}/tiles/{ids}.json"),
            "alternate",
            JSON,
            "TileJSON 3.0.0 of the same tiles",
        ));
    }
    let mut doc = json!({
        "title": set.title(),
        "dataType": "vector",
        "crs": EPSG_3857,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "mediaTypes": [MVT_CONTENT_TYPE],
        "tileMatrixSetLimits": tile_matrix_limits,
        "links": links,
    });
    if let Some(def) = set.collection {
        doc["description"] = def.description.clone().into();
    }
    let layers: Vec<Value> = set.defs.iter().map(|d| layer_doc(state, d, base)).collect();
    if !layers.is_empty() {
        doc["layers"] = layers.into();
    }
    if let Some(b) = bounds {
        doc["boundingBox"] = bounding_box(b);
        let zoom = limits
            .last()
            .map_or(0, |l| l.zoom.saturating_sub(2).max(limits[0].zoom));
        doc["centerPoint"] = json!({
            "coordinates": [(b.west + b.east) / 2.0, (b.south + b.north) / 2.0],
            "crs": CRS84,
            "tileMatrix": zoom.to_string(),
        });
    }
    doc
}

async fn dataset_tilesets(
    State(state): State<AppState>,
    Auth(reader): Auth,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let params = unique(params)?;
    only(&params, &["f", "collections"])?;
    let set = dataset(&state, &reader, params.get("collections"))?;
    let doc = tilesets_doc(&set, &base_url(&headers));
    json_or_html(doc, &params, &headers, "Tile sets")
}

async fn dataset_tileset(
    State(state): State<AppState>,
    Auth(reader): Auth,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let params = unique(params)?;
    only(&params, &["f", "collections"])?;
    let set = dataset(&state, &reader, params.get("collections"))?;
    let doc = tileset_doc(&state, &set, &base_url(&headers));
    json_or_html(doc, &params, &headers, &set.title())
}

async fn collection_tilesets(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let set = collection(&state, &reader, &id)?;
    let params = unique(params)?;
    only(&params, &["f"])?;
    let doc = tilesets_doc(&set, &base_url(&headers));
    json_or_html(doc, &params, &headers, &set.title())
}

async fn collection_tileset(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, tms)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let set = collection(&state, &reader, &id)?;
    known_tms(&tms)?;
    let params = unique(params)?;
    only(&params, &["f"])?;
    let doc = tileset_doc(&state, &set, &base_url(&headers));
    json_or_html(doc, &params, &headers, &set.title())
}

/// The parameters of a tile request, checked; what remains is what
/// [`crate::api::tiles::serve`] takes (datetime, filter, filter-lang, v).
fn tile_params(
    params: Vec<(String, String)>,
    dataset: bool,
) -> Result<(Option<String>, HashMap<String, String>), ApiError> {
    let mut params = unique(params)?;
    let allowed: &[&str] = if dataset {
        &["collections", "datetime", "f", "filter", "filter-lang", "v"]
    } else {
        &["datetime", "f", "filter", "filter-lang", "v"]
    };
    only(&params, allowed)?;
    if let Some(f) = params.remove("f")
        && f != "mvt"
    {
        return Err(ApiError::BadRequest(format!(
            "f: {:?} is not a tile format here; tiles are mvt",
            f.chars().take(40).collect::<String>()
        )));
    }
    Ok((params.remove("collections"), params))
}

/// The cached answer to an anonymous tile request without a query (or with only `v` or
/// `f=mvt`), as `/tiles` answers its common request; `None` takes the full path, which
/// also produces every error.
fn from_cache(state: &AppState, request: &Request) -> Option<Response> {
    let headers = request.headers();
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let uri = request.uri();
    if let Some(q) = uri.query()
        && !q
            .split('&')
            .all(|kv| kv.starts_with("v=") || kv == "f=mvt" || kv.is_empty())
    {
        return None;
    }
    let mut parts = uri.path().rsplitn(4, '/');
    let (col, row, matrix) = (parts.next()?, parts.next()?, parts.next()?);
    let tile = tile_at(matrix, row, col).ok()?;
    let rest = parts.next()?;
    if rest == "/tiles/WebMercatorQuad" {
        let ids: Vec<&str> = state
            .data
            .layers()
            .iter()
            .filter(|d| !d.private)
            .map(|d| d.id.as_str())
            .collect();
        return crate::api::tiles::cached(state, &ids.join(","), tile, headers);
    }
    let id = rest
        .strip_prefix("/collections/")?
        .strip_suffix("/tiles/WebMercatorQuad")?;
    let def = state.data.layer(id).filter(|d| !d.private)?;
    crate::api::tiles::cached(state, def.id.as_str(), tile, headers)
}

async fn dataset_tile(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    if let Some(answer) = from_cache(&state, &request) {
        return Ok(answer);
    }
    let (mut parts, _) = request.into_parts();
    let Auth(reader) = Auth::from_request_parts(&mut parts, &state).await?;
    let Path((matrix, row, col)) =
        Path::<(String, String, String)>::from_request_parts(&mut parts, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(params) = Query::<Vec<(String, String)>>::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (collections, query) = tile_params(params, true)?;
    let set = dataset(&state, &reader, collections.as_ref())?;
    let tile = tile_at(&matrix, &row, &col).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    crate::api::tiles::serve(
        &state,
        &set.ids(),
        &set.defs,
        &[],
        tile,
        &query,
        &parts.headers,
    )
    .await
}

async fn collection_tile(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    if let Some(answer) = from_cache(&state, &request) {
        return Ok(answer);
    }
    let (mut parts, _) = request.into_parts();
    let Auth(reader) = Auth::from_request_parts(&mut parts, &state).await?;
    let Path((id, tms, matrix, row, col)) =
        Path::<(String, String, String, String, String)>::from_request_parts(&mut parts, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(params) = Query::<Vec<(String, String)>>::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let set = collection(&state, &reader, &id)?;
    known_tms(&tms)?;
    let tile = tile_at(&matrix, &row, &col).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (_, query) = tile_params(params, false)?;
    crate::api::tiles::serve(
        &state,
        &set.ids(),
        &set.defs,
        &[],
        tile,
        &query,
        &parts.headers,
    )
    .await
}
