//! `/health` and `/catalog`: is the store answering, and which layers exist with their
//! counts, bounds and zooms.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::api::{ApiError, AppState, Auth};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/catalog", get(catalog))
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match state.data.store.health().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))),
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
    let layers: Vec<_> = reader
        .visible(&data.layers)
        .map(|def| {
            let index = data.index.read(&def.id);
            json!({
                "id": def.id,
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
    Ok(Json(json!({ "layers": layers })))
}
