//! OGC API - Features Part 1 (Core, GeoJSON, HTML): the landing page, conformance,
//! collections and their items, as JSON or as HTML pages a person can browse (`f=json|html`
//! or the Accept header). Queries are parsed and run by [`crate::query`]; the page's
//! features come from the store, so geometry and properties are exactly what was ingested.
//! Items also stream as FlatGeobuf or CSV files (`f=fgb|csv`, [`crate::api::export`]), and
//! `OPTIONS` on items says which methods a reader may use (QGIS decides on editing by it).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::api::{ApiError, AppState, Auth, base_url, visible_layer};
use crate::config::LayerDef;
use crate::model::time::format_rfc3339;
use crate::model::{FeatureId, StoredFeature};
use crate::query::{ItemsQuery, run};

pub(crate) const GEOJSON: &str = "application/geo+json";
const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// The conformance classes implemented, and only those.
pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
];

/// Every conformance class the server implements: OGC API - Features' and Tiles'.
fn conforms_to() -> impl Iterator<Item = &'static str> {
    CONFORMANCE
        .iter()
        .chain(crate::api::ogc_tiles::CONFORMANCE)
        .copied()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/conformance", get(conformance))
        .route("/collections", get(collections))
        .route("/collections/{id}", get(collection))
        .route("/collections/{id}/items", get(items).options(items_options))
        .route(
            "/collections/{id}/items/{fid}",
            get(item).options(item_options),
        )
}

/// `OPTIONS /collections/{id}/items`: the methods this reader may use there. QGIS's OGC
/// API Features provider asks before it offers to edit a layer: `POST` (add features)
/// shows only to a key whose write scope names the layer.
async fn items_options(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    Ok(allow(if reader.can_write(def) {
        "GET, HEAD, POST, OPTIONS"
    } else {
        "GET, HEAD, OPTIONS"
    }))
}

/// `OPTIONS /collections/{id}/items/{fid}`: as [`items_options`], with `PUT`, `PATCH` and
/// `DELETE` (replace, update, delete) for a key that may write the layer. The answer
/// does not depend on the feature existing: QGIS asks it of the layer, not of a feature.
async fn item_options(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, _fid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    Ok(allow(if reader.can_write(def) {
        "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
    } else {
        "GET, HEAD, OPTIONS"
    }))
}

fn allow(methods: &'static str) -> Response {
    (
        axum::http::StatusCode::OK,
        [(header::ALLOW, HeaderValue::from_static(methods))],
    )
        .into_response()
}

type Params = Query<Vec<(String, String)>>;

/// HTML or JSON: `f` decides, else an Accept header that prefers HTML (a browser).
pub(crate) fn wants_html(
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<bool, ApiError> {
    if let Some((_, f)) = params.iter().find(|(k, _)| k == "f") {
        return match f.as_str() {
            "json" | "geojson" => Ok(false),
            "html" => Ok(true),
            other => Err(ApiError::BadRequest(format!(
                "f: {other:?} is not a format here; use json or html"
            ))),
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(accept.contains("text/html"))
}

/// Only `f` is allowed on the pages that take no query.
fn no_params(params: &[(String, String)]) -> Result<(), ApiError> {
    match params.iter().find(|(k, _)| k != "f") {
        Some((k, _)) => Err(ApiError::BadRequest(format!(
            "unknown query parameter {k:?} (this resource takes only f)"
        ))),
        None => Ok(()),
    }
}

fn link(href: String, rel: &str, kind: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": kind, "title": title})
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A minimal HTML page around `body` (already escaped).
pub(crate) fn page(title: &str, body: String) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · urbantile</title><style>body{{font:15px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:70em;padding:0 1em}}\
         table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}\
         nav a{{margin-right:1em}}</style></head><body><nav><a href=\"/?f=html\">Home</a><a href=\"/collections?f=html\">Collections</a>\
         <a href=\"/map\">Map</a></nav><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
    .into_response()
}

pub(crate) fn with_type(json: Value, content_type: &'static str) -> Response {
    let mut r = Json(json).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn landing(_: Auth, headers: HeaderMap, Query(params): Params) -> Result<Response, ApiError> {
    no_params(&params)?;
    let base = base_url(&headers);
    if wants_html(&params, &headers)? {
        return Ok(page(
            "urbantile",
            "<p>The city's map layers as vector tiles and feature collections.</p><ul>\
             <li><a href=\"/collections?f=html\">Collections</a></li>\
             <li><a href=\"/conformance?f=html\">Conformance</a></li>\
             <li><a href=\"/tiles?f=html\">Vector tile sets (OGC API - Tiles)</a></li>\
             <li><a href=\"/api\">The OpenAPI document</a></li>\
             <li><a href=\"/map\">The map</a></li></ul>"
                .into(),
        ));
    }
    let [tilesets, tiling_schemes] = crate::api::ogc_tiles::landing_links(&base);
    Ok(Json(json!({
        "title": "urbantile",
        "description": "The city's map layers as vector tiles and OGC API - Features collections",
        "links": [
            link(format!("{base}/?f=json"), "self", "application/json", "This document"),
            link(format!("{base}/?f=html"), "alternate", "text/html", "This document as HTML"),
            link(format!("{base}/api"), "service-desc", "application/vnd.oai.openapi+json;version=3.0", "The OpenAPI document"),
            link(format!("{base}/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{base}/collections"), "data", "application/json", "Collections"),
            tilesets,
            tiling_schemes,
        ],
    }))
    .into_response())
}

async fn conformance(
    _: Auth,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    no_params(&params)?;
    if wants_html(&params, &headers)? {
        let items: String = conforms_to()
            .map(|c| format!("<li>{}</li>", escape(c)))
            .collect();
        return Ok(page("Conformance", format!("<ul>{items}</ul>")));
    }
    Ok(Json(json!({ "conformsTo": conforms_to().collect::<Vec<_>>() })).into_response())
}

fn collection_json(state: &AppState, def: &LayerDef, base: &str) -> Value {
    let index = state.data.index().read(&def.id);
    let id = def.id.as_str();
    let mut extent = json!({
        "spatial": {
            "bbox": [index.bounds().map_or([-180.0, -90.0, 180.0, 90.0], |b| b.to_array())],
            "crs": CRS84,
        }
    });
    if let Some(t) = index.time_extent() {
        extent["temporal"] = json!({
            "interval": [[t.start.map(format_rfc3339), t.end.map(format_rfc3339)]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        });
    }
    json!({
        "id": id,
        "title": def.title,
        "description": def.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            link(format!("{base}/collections/{id}"), "self", "application/json", &def.title),
            link(format!("{base}/collections/{id}?f=html"), "alternate", "text/html", &def.title),
            link(format!("{base}/collections/{id}/items"), "items", GEOJSON, "Features"),
            link(format!("{base}/collections/{id}/items?f=html"), "items", "text/html", "Features as HTML"),
            link(format!("{base}/tiles/{id}.json"), "describedby", "application/json", "TileJSON of the layer's tiles"),
            crate::api::ogc_tiles::collection_link(base, id),
        ],
    })
}

async fn collections(
    State(state): State<AppState>,
    Auth(reader): Auth,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    no_params(&params)?;
    let base = base_url(&headers);
    let public: Vec<&LayerDef> = reader.visible(state.data.layers()).collect();
    if wants_html(&params, &headers)? {
        let rows: String = public
            .iter()
            .map(|d| {
                let n = state.data.index().read(&d.id).len();
                format!(
                    "<tr><td><a href=\"/collections/{id}?f=html\">{t}</a></td><td>{n}</td><td>{desc}</td></tr>",
                    id = d.id,
                    t = escape(&d.title),
                    desc = escape(&d.description)
                )
            })
            .collect();
        return Ok(page(
            "Collections",
            format!(
                "<table><tr><th>Collection</th><th>Features</th><th>About</th></tr>{rows}</table>"
            ),
        ));
    }
    Ok(Json(json!({
        "collections": public.iter().map(|d| collection_json(&state, d, &base)).collect::<Vec<_>>(),
        "links": [
            link(format!("{base}/collections"), "self", "application/json", "Collections"),
            link(format!("{base}/collections?f=html"), "alternate", "text/html", "Collections as HTML"),
        ],
    }))
    .into_response())
}

async fn collection(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    no_params(&params)?;
    let doc = collection_json(&state, def, &base_url(&headers));
    if wants_html(&params, &headers)? {
        let props: String = def
            .properties
            .iter()
            .map(|p| format!("<li>{}</li>", escape(p)))
            .collect();
        return Ok(page(
            &def.title,
            format!(
                "<p>{}</p><p>Extent: {}</p><p><a href=\"/collections/{id}/items?f=html\">Browse the features</a> · \
                 <a href=\"/map?layers={id}\">See them on the map</a></p><h2>Properties</h2><ul>{props}</ul>",
                escape(&def.description),
                escape(&doc["extent"].to_string()),
                id = def.id,
            ),
        ));
    }
    Ok(Json(doc).into_response())
}

/// A stored feature as GeoJSON, with only the chosen properties (all declared ones by
/// default).
pub(crate) fn feature_json(def: &LayerDef, f: &StoredFeature, chosen: Option<&[usize]>) -> Value {
    let properties: serde_json::Map<String, Value> = match chosen {
        None => f.feature.properties.clone(),
        Some(list) => list
            .iter()
            .filter_map(|&i| {
                let k = &def.properties[i];
                f.feature.properties.get(k).map(|v| (k.clone(), v.clone()))
            })
            .collect(),
    };
    json!({
        "type": "Feature",
        "id": f.id.0,
        "geometry": geojson::Geometry::new(geojson::Value::from(&f.feature.geometry)),
        "properties": properties,
    })
}

/// The request's query string with `offset` (and `f`) replaced, for paging links.
fn with_offset(params: &[(String, String)], offset: usize, f: Option<&str>) -> String {
    let mut out: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "offset" && k != "f")
        .cloned()
        .collect();
    if offset > 0 {
        out.push(("offset".into(), offset.to_string()));
    }
    if let Some(f) = f {
        out.push(("f".into(), f.into()));
    }
    let q = serde_urlencoded::to_string(&out).unwrap_or_default();
    if q.is_empty() { q } else { format!("?{q}") }
}

async fn items(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    if let Some(format) = crate::api::export::format_param(&params)? {
        let base = base_url(&headers);
        return crate::api::export::items(state.clone(), def, params, format, base).await;
    }
    let html = wants_html(&params, &headers)?;
    let base = base_url(&headers);
    let layer = def.id.clone();
    // The query runs on the compute pool (it can take long), then the page's features are
    // read from the store here, off the pool (a store that is slow or away must not hold a
    // worker that uncached tiles need), and the page is written on the pool again (up to
    // 10,000 features is CPU work too).
    let params = std::sync::Arc::new(params);
    let asked = params.clone();
    let (shape, page) = state
        .on_pool(move |data| {
            let def = layer_of(data, &layer)?;
            let index = data.index().read(&def.id);
            let q = ItemsQuery::parse(def, &index, &asked, crate::model::time::now_secs())
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let page = run(&index, &q);
            Ok::<_, ApiError>((
                PageShape {
                    offset: q.offset,
                    limit: q.limit,
                    properties: q.properties.clone(),
                },
                page,
            ))
        })
        .await?;
    let stored = state.data.stored_features(&def.id, &page.ids).await?;
    let from_memory = stored.from_memory;
    let layer = def.id.clone();
    let mut response = state
        .on_pool(move |data| {
            let def = layer_of(data, &layer)?;
            items_page(
                def,
                &params,
                &base,
                html,
                &shape,
                page.matched,
                stored.features,
            )
        })
        .await?;
    if from_memory {
        mark_from_memory(&mut response);
    }
    Ok(response)
}

/// Marks an answer made from memory while the store was unreachable
/// ([`crate::dataset::Stored::from_memory`]): no cache may keep it.
pub(crate) fn mark_from_memory(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, crate::api::header_value("no-store"));
    headers.insert(
        "urbantile-answered-from",
        crate::api::header_value("memory; the store is unreachable"),
    );
}

fn layer_of<'a>(
    data: &'a crate::dataset::Dataset,
    layer: &crate::model::LayerId,
) -> Result<&'a LayerDef, ApiError> {
    data.layer(layer.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("unknown layer {:?}", layer.as_str())))
}

/// What a page's answer needs of its query, once the query has run.
struct PageShape {
    offset: usize,
    limit: usize,
    properties: Option<Vec<usize>>,
}

/// One page of items as GeoJSON or HTML, from the features the query chose (`matched` in
/// all).
fn items_page(
    def: &LayerDef,
    params: &[(String, String)],
    base: &str,
    html: bool,
    q: &PageShape,
    matched: usize,
    features: Vec<crate::model::StoredFeature>,
) -> Result<Response, ApiError> {
    let id = def.id.as_str();
    let path = format!("{base}/collections/{id}/items");
    let next = (q.offset + q.limit < matched).then(|| q.offset + q.limit);
    let prev = (q.offset > 0).then(|| q.offset.saturating_sub(q.limit));

    if html {
        let chosen: Vec<&String> = match &q.properties {
            Some(list) => list.iter().map(|&i| &def.properties[i]).collect(),
            None => def.properties.iter().collect(),
        };
        let head: String = chosen
            .iter()
            .map(|p| format!("<th>{}</th>", escape(p)))
            .collect();
        let rows: String = features
            .iter()
            .map(|f| {
                let cells: String = chosen
                    .iter()
                    .map(|p| {
                        let v = f.feature.properties.get(*p).map_or(String::new(), |v| match v {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        });
                        format!("<td>{}</td>", escape(&v))
                    })
                    .collect();
                format!("<tr><td><a href=\"/collections/{id}/items/{fid}?f=html\">{fid}</a></td>{cells}</tr>", fid = f.id)
            })
            .collect();
        let mut nav = String::new();
        if let Some(p) = prev {
            nav.push_str(&format!(
                "<a href=\"{}\">Previous</a> ",
                escape(&with_offset(params, p, Some("html")))
            ));
        }
        if let Some(n) = next {
            nav.push_str(&format!(
                "<a href=\"{}\">Next</a>",
                escape(&with_offset(params, n, Some("html")))
            ));
        }
        return Ok(page(
            &def.title,
            format!(
                "<p>{} of {} features (from {}).</p><table><tr><th>id</th>{head}</tr>{rows}</table><p>{nav}</p>",
                features.len(),
                matched,
                q.offset + 1
            ),
        ));
    }

    let mut links = vec![
        link(
            format!("{path}{}", with_offset(params, q.offset, None)),
            "self",
            GEOJSON,
            "This page",
        ),
        link(
            format!("{path}{}", with_offset(params, q.offset, Some("html"))),
            "alternate",
            "text/html",
            "This page as HTML",
        ),
        link(
            format!("{base}/collections/{id}"),
            "collection",
            "application/json",
            &def.title,
        ),
    ];
    if let Some(n) = next {
        links.push(link(
            format!("{path}{}", with_offset(params, n, None)),
            "next",
            GEOJSON,
            "Next page",
        ));
    }
    if let Some(p) = prev {
        links.push(link(
            format!("{path}{}", with_offset(params, p, None)),
            "prev",
            GEOJSON,
            "Previous page",
        ));
    }
    let doc = json!({
        "type": "FeatureCollection",
        "features": features.iter().map(|f| feature_json(def, f, q.properties.as_deref())).collect::<Vec<_>>(),
        "numberMatched": matched,
        "numberReturned": features.len(),
        "timeStamp": format_rfc3339(crate::model::time::now_secs()),
        "links": links,
    });
    Ok(with_type(doc, GEOJSON))
}

async fn item(
    State(state): State<AppState>,
    Auth(reader): Auth,
    Path((id, fid)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let def = visible_layer(&state, &reader, &id)?;
    no_params(&params)?;
    let not_found = || ApiError::NotFound(format!("collection {id:?} has no feature {fid:?}"));
    let fid_num: u64 = fid.parse().map_err(|_| not_found())?;
    let found = state
        .data
        .stored_features(&def.id, &[FeatureId(fid_num)])
        .await?;
    let from_memory = found.from_memory;
    let f = found.features.first().ok_or_else(not_found)?;
    let base = base_url(&headers);
    if wants_html(&params, &headers)? {
        let rows: String = f
            .feature
            .properties
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v))
            })
            .collect();
        let mut response = page(
            &format!("{} {}", def.title, f.id),
            format!(
                "<table>{rows}</table><p><a href=\"/collections/{id}/items/{fid}?f=json\">GeoJSON</a> · \
                 <a href=\"/collections/{id}/items?f=html\">All features</a></p>",
                id = def.id,
                fid = f.id
            ),
        );
        if from_memory {
            mark_from_memory(&mut response);
        }
        return Ok(response);
    }
    let mut doc = feature_json(def, f, None);
    doc["links"] = json!([
        link(
            format!("{base}/collections/{id}/items/{fid}"),
            "self",
            GEOJSON,
            "This feature"
        ),
        link(
            format!("{base}/collections/{id}/items/{fid}?f=html"),
            "alternate",
            "text/html",
            "This feature as HTML"
        ),
        link(
            format!("{base}/collections/{id}"),
            "collection",
            "application/json",
            &def.title
        ),
    ]);
    if from_memory {
        // No version, so no ETag.
        let mut response = with_type(doc, GEOJSON);
        mark_from_memory(&mut response);
        return Ok(response);
    }
    // The ETag of the feature's state, for If-Match on writes and revalidation here.
    let etag = crate::dataset::live::feature_etag(f.version, &f.feature);
    if crate::api::tiles::if_none_match(&headers, &etag) {
        return Ok((
            axum::http::StatusCode::NOT_MODIFIED,
            [(header::ETAG, crate::api::header_value(&etag))],
        )
            .into_response());
    }
    let mut response = with_type(doc, GEOJSON);
    response
        .headers_mut()
        .insert(header::ETAG, crate::api::header_value(&etag));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_links_keep_the_query_and_replace_the_offset() {
        let params = vec![
            ("bbox".to_string(), "1,2,3,4".to_string()),
            ("offset".to_string(), "10".to_string()),
            ("limit".to_string(), "5".to_string()),
        ];
        assert_eq!(
            with_offset(&params, 15, None),
            "?bbox=1%2C2%2C3%2C4&limit=5&offset=15"
        );
        assert_eq!(
            with_offset(&params, 0, Some("html")),
            "?bbox=1%2C2%2C3%2C4&limit=5&f=html"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
