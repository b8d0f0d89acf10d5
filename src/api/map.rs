//! The map: `GET /style.json` (MapLibre style of every public layer), `GET /map` (the
//! interactive page, also the embeddable widget) and its assets under `/map/`. MapLibre GL
//! JS comes from npm at build time and is embedded in the binary; nothing is loaded from a
//! CDN.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::api::tiles::{accepts_gzip, etag_of, if_none_match};
use crate::api::{ApiError, AppState, Auth, base_url, header_value};
use crate::tiles::compress::gzip;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/style.json", get(style))
        .route("/map", get(page))
        .route("/map/{file}", get(asset))
}

async fn style(
    State(state): State<AppState>,
    Auth(reader): Auth,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let data = &state.data;
    let snapshots: Vec<_> = reader
        .visible(data.layers())
        .map(|d| (d, data.index().read(&d.id)))
        .collect();
    let layers: Vec<_> = snapshots.iter().map(|(d, i)| (*d, &**i)).collect();
    Json(crate::style::style(
        &layers,
        data.archives(),
        &base_url(&headers),
        state.basemap.as_deref(),
    ))
}

/// A static file with its gzip form and ETag computed once.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    /// Gzipped bytes (cheap to clone per response) and ETag, made on first use.
    gzipped: OnceLock<(Bytes, String)>,
}

impl Asset {
    const fn new(content_type: &'static str, bytes: &'static [u8]) -> Asset {
        Asset {
            content_type,
            bytes,
            gzipped: OnceLock::new(),
        }
    }

    fn respond(&self, headers: &HeaderMap) -> Response {
        let (zipped, etag) = self.gzipped.get_or_init(|| {
            (
                Bytes::from(gzip(self.bytes).unwrap_or_default()),
                etag_of(self.bytes),
            )
        });
        let mut out = HeaderMap::new();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        out.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        out.insert(header::ETAG, header_value(etag));
        if if_none_match(headers, etag) {
            return (StatusCode::NOT_MODIFIED, out).into_response();
        }
        if accepts_gzip(headers) && !zipped.is_empty() {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return (StatusCode::OK, out, zipped.clone()).into_response();
        }
        (StatusCode::OK, out, self.bytes).into_response()
    }
}

static PAGE: Asset = Asset::new(
    "text/html; charset=utf-8",
    include_bytes!("../../web/map.html"),
);
static MAP_JS: Asset = Asset::new(
    "text/javascript; charset=utf-8",
    include_bytes!("../../web/map.js"),
);
static MAP_CSS: Asset = Asset::new(
    "text/css; charset=utf-8",
    include_bytes!("../../web/map.css"),
);
static EMBED_JS: Asset = Asset::new(
    "text/javascript; charset=utf-8",
    include_bytes!("../../web/embed.js"),
);
static MAPLIBRE_JS: Asset = Asset::new(
    "text/javascript; charset=utf-8",
    include_bytes!("../../web/node_modules/maplibre-gl/dist/maplibre-gl.js"),
);
static MAPLIBRE_CSS: Asset = Asset::new(
    "text/css; charset=utf-8",
    include_bytes!("../../web/node_modules/maplibre-gl/dist/maplibre-gl.css"),
);

async fn page(headers: HeaderMap) -> Response {
    PAGE.respond(&headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let asset = match file.as_str() {
        "map.js" => &MAP_JS,
        "map.css" => &MAP_CSS,
        "embed.js" => &EMBED_JS,
        "maplibre-gl.js" => &MAPLIBRE_JS,
        "maplibre-gl.css" => &MAPLIBRE_CSS,
        _ => return Err(ApiError::NotFound(format!("no map asset {file:?}"))),
    };
    Ok(asset.respond(&headers))
}
