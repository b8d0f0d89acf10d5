//! `/ping`, `/health` and `/catalog`: is the process up, is the store answering, and which
//! layers exist with their counts, bounds and zooms. Tile archives served as layers are in
//! the catalog with `"kind": "archive"` (and their tile format), live layers with
//! `"kind": "features"`; archives hold no features, so they are not OGC API collections.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::api::{ApiError, AppState, Auth};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ping", get(ping))
        .route("/health", get(health))
        .route("/catalog", get(catalog))
}

/// Liveness for load balancers: a fixed answer that touches nothing. `?bytes=N` (at most
/// 1 MiB) makes it N fixed bytes: the load benchmark's baseline for the cost of a request
/// that returns a body of a tile's size.
async fn ping(
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    static FILL: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let mut size = None;
    for (k, v) in &q {
        match (k.as_str(), v.parse::<usize>()) {
            ("bytes", Ok(n)) if n <= 1 << 20 => size = Some(n),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "/ping takes only bytes=N with N up to 1048576, not {k}={v:?}"
                )));
            }
        }
    }
    let body = match size {
        None => bytes::Bytes::from_static(b"ok"),
        Some(n) => FILL
            .get_or_init(|| bytes::Bytes::from(vec![b'.'; 1 << 20]))
            .slice(..n),
    };
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain")], body).into_response())
}

/// `200 {"status": "ok", "log": {...}}` when the store answers, else 503. `log` says how far
/// this server has applied the store's change log: `applied` (the last position it has
/// applied and broadcast), `head` (the last position in the store) and `behind` (changes
/// written, by this or another server, that it has not applied yet). A replica whose
/// `behind` stays above zero is falling behind its peers.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    // Reading the log's span is the store's health check too: one indexed query.
    let applied = state.data.last_change();
    match state.data.change_span().await {
        Ok(span) => {
            let head = span.map_or(applied, |(_, last)| last.max(applied));
            (
                StatusCode::OK,
                Json(json!({
                    "status": "ok",
                    "log": {"applied": applied, "head": head, "behind": head - applied},
                })),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
        }
    }
}

async fn catalog(
    State(state): State<AppState>,
    Auth(reader): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let data = &state.data;
    let mut layers: Vec<_> = reader
        .visible(data.layers())
        .map(|def| {
            let index = data.index().read(&def.id);
            json!({
                "id": def.id,
                "kind": "features",
                "title": def.title,
                "description": def.description,
                "geometry": def.geometry,
                "count": index.len(),
                "bounds": index.bounds().map(|b| b.to_array()),
                "minzoom": def.minzoom,
                "maxzoom": def.maxzoom,
                "properties": def.properties,
                "time": def.time.is_some(),
                "time_extent": index.time_extent().map(|t| {
                    [t.start, t.end].map(|v| v.map(crate::model::time::format_rfc3339))
                }),
            })
        })
        .collect();
    layers.extend(data.archives().iter().map(|a| {
        let def = a.def();
        let (minzoom, maxzoom) = a.zooms();
        json!({
            "id": def.id,
            "kind": "archive",
            "title": def.title,
            "description": def.description,
            "format": a.format().extension(),
            "bounds": a.bounds().to_array(),
            "minzoom": minzoom,
            "maxzoom": maxzoom,
            "vector_layers": a.vector_layers(),
        })
    }));
    Ok(Json(json!({ "layers": layers })))
}
