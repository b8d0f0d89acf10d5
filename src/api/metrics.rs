//! `GET /metrics`: the operations metrics ([`crate::metrics`]) in the Prometheus
//! (OpenMetrics) text format.
//!
//! Metrics name every layer, private ones included, with their write rates, and every route
//! with its traffic: more than an anonymous reader may learn (a private layer is a 404 to
//! them). So on the public listener `/metrics` answers only a key whose read scope is `*`
//! (it may see every layer anyway); anonymous requests get 401 and other keys 403. The
//! usual set-up is the other door: `serve --metrics-bind 10.0.0.11:9184` serves [`router`]
//! (`/metrics` alone, no key) on an address that only the monitoring network reaches, as
//! Prometheus scrapes most exporters.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::{ApiError, AppState, Auth};
use crate::auth::Scope;
use crate::dataset::Dataset;
use crate::metrics::CONTENT_TYPE;

/// `/metrics` on the public listener: for keys that read every layer.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(keyed))
}

/// The metrics listener's router (`--metrics-bind`): `/metrics`, open.
pub fn router(data: Arc<Dataset>) -> Router {
    Router::new()
        .route("/metrics", get(open))
        .fallback(|| async { ApiError::NotFound("this listener serves /metrics only".into()) })
        .with_state(data)
}

async fn keyed(State(state): State<AppState>, Auth(reader): Auth) -> Result<Response, ApiError> {
    match &reader.key {
        None => Err(ApiError::Unauthorized(
            "/metrics needs a key whose read scope is `*` (keys add NAME --read '*'), or the \
             listener of --metrics-bind"
                .into(),
        )),
        Some(k) if k.read != Scope::All => Err(ApiError::Forbidden(format!(
            "key {:?} may not read every layer; /metrics needs read scope `*`",
            k.name
        ))),
        Some(_) => Ok(text(state.data.render_metrics().await)),
    }
}

async fn open(State(data): State<Arc<Dataset>>) -> Response {
    text(data.render_metrics().await)
}

fn text(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
