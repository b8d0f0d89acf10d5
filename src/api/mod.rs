//! HTTP: `router(state)` assembles one router from the area modules (tiles, catalog). Each
//! module exports `routes()`; handlers turn domain errors into [`ApiError`] at the call site.
//!
//! Handlers stay cheap on the async runtime: CPU-heavy work (uncached tiles, item queries,
//! the planners' questions) goes to the [`crate::compute`] pool through
//! [`AppState::on_pool`] (new glyph ranges too, in `fonts`). Every request passes [`trace::layer`] first (its span, its id,
//! the URI's bounds).

pub mod archive_tiles;
pub mod catalog;
pub mod changes;
pub mod clusters;
pub mod cors;
pub mod edit;
pub mod error;
pub mod export;
pub mod features;
pub mod fonts;
pub mod map;
pub mod metrics;
pub mod ogc_tiles;
pub mod openapi;
pub mod packs;
pub mod planner;
pub mod tiles;
pub mod trace;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use tower_http::cors::CorsLayer;

use crate::auth::Reader;
use crate::dataset::Dataset;
pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub data: Arc<Dataset>,
    /// Raster tile URL template (`{z}/{x}/{y}`) of a base map for the style, if any.
    pub basemap: Option<Arc<str>>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Turns true when the server starts shutting down: long-lived answers (`/changes`)
    /// end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Open `/changes` streams and their bound.
    pub subscribers: changes::Subscribers,
    /// The fonts label glyphs are rendered from, and the ranges rendered so far.
    pub fonts: Arc<crate::glyphs::Fonts>,
    /// Most features an `f=fgb` or `f=csv` items answer streams.
    pub max_export: usize,
    /// The offline packs offered under `/packs`.
    pub packs: Arc<crate::export::shelf::Shelf>,
    /// The city's identity provider, whose tokens sign residents and staff in; `None`
    /// accepts access keys only.
    pub oidc: Option<Arc<crate::auth::token::Verifier>>,
}

/// Default folder of [`AppState::packs`].
pub const DEFAULT_PACKS: &str = "data/packs";

/// Default for [`AppState::max_body`]: 32 MiB.
pub const DEFAULT_MAX_BODY: usize = 32 << 20;

impl AppState {
    /// A state with the default limits, never closing.
    pub fn new(data: Arc<Dataset>) -> AppState {
        AppState {
            data,
            basemap: None,
            max_body: DEFAULT_MAX_BODY,
            closing: tokio::sync::watch::channel(false).1,
            subscribers: changes::Subscribers::new(changes::DEFAULT_MAX_SUBSCRIBERS),
            fonts: Arc::new(crate::glyphs::Fonts::bundled()),
            max_export: export::DEFAULT_MAX_EXPORT,
            packs: Arc::new(crate::export::shelf::Shelf::new(DEFAULT_PACKS)),
            oidc: None,
        }
    }

    /// Runs `work` on the compute pool with the dataset: refused with a 503 when the pool's
    /// queue is full, and stopped with a 503 at the deadline (see [`crate::compute`]).
    pub(crate) async fn on_pool<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Dataset) -> Result<T, ApiError> + Send + 'static,
    {
        let data = self.data.clone();
        self.data.compute().run(move || work(&data)).await?
    }
}

/// Resolves once the server starts shutting down (never, for a state without a sender).
pub(crate) async fn closing(mut closing: tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

pub fn router(state: AppState) -> Router {
    // Map widgets on other sites fetch tiles and TileJSON cross-origin.
    let cors = CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::IF_NONE_MATCH,
            header::IF_MATCH,
            header::ACCEPT,
            header::ACCEPT_ENCODING,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
            // Packs are read by range (MapLibre's pmtiles protocol).
            header::RANGE,
            header::IF_RANGE,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
        ]);
    Router::new()
        .merge(tiles::routes())
        .merge(ogc_tiles::routes())
        .merge(catalog::routes())
        .merge(map::routes())
        .merge(fonts::routes())
        .merge(features::routes())
        .merge(clusters::routes())
        .merge(edit::routes())
        .merge(changes::routes())
        .merge(planner::routes())
        .merge(openapi::routes())
        .merge(metrics::routes())
        .merge(packs::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(cors::CorsExceptPlainOptions(cors))
        .layer(axum::middleware::from_fn_with_state(
            state.data.metrics().http(),
            trace::layer,
        ))
        .with_state(state)
}

/// Who is asking, from the `Authorization: Bearer <credential>` header: anonymous without
/// one; an access key (`ut_...`) or, when the server has an identity provider, a signed-in
/// person's token (a JWT). 401 for a malformed, unknown, revoked, expired or otherwise
/// refused credential, even on public routes, so that a client learns that it is wrong
/// rather than silently seeing less; 503 when the provider's keys cannot be read.
pub struct Auth(pub Reader);

impl axum::extract::FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Auth(Reader::default()));
        };
        let credential = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <key or token>`".into(),
                )
            })?;
        if crate::auth::token::looks_like_jwt(credential) {
            let Some(verifier) = &state.oidc else {
                return Err(ApiError::Unauthorized(
                    "this server takes access keys only: it has no identity provider for tokens"
                        .into(),
                ));
            };
            // The signature check runs on the compute pool, bounded like other costly work.
            let compute = state.data.compute().clone();
            let verified = verifier
                .verify_on(credential, |check| async move {
                    compute.run(check).await.unwrap_or_else(|refused| {
                        Err(crate::auth::token::TokenError::Busy(refused.to_string()))
                    })
                })
                .await;
            return match verified {
                Ok(user) => Ok(Auth(Reader {
                    key: None,
                    user: Some(user),
                })),
                Err(e) if e.is_unavailable() => Err(ApiError::Unavailable {
                    description: e.to_string(),
                    retry_after_s: if matches!(e, crate::auth::token::TokenError::Busy(_)) {
                        1
                    } else {
                        5
                    },
                }),
                Err(e) => Err(ApiError::Unauthorized(e.to_string())),
            };
        }
        let info = state
            .data
            .live_key(&crate::auth::hash_key(credential))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked key".into()))?;
        Ok(Auth(Reader {
            key: Some(info),
            user: None,
        }))
    }
}

/// A layer the reader may see, or 404 as if a private one did not exist.
pub(crate) fn visible_layer<'a>(
    state: &'a AppState,
    reader: &Reader,
    id: &str,
) -> Result<&'a crate::config::LayerDef, ApiError> {
    state
        .data
        .layer(id)
        .filter(|d| reader.can_read(d))
        .ok_or_else(|| ApiError::NotFound(format!("unknown layer {id:?}")))
}

/// `http://host` of the request, for absolute links such as TileJSON tile URLs.
pub fn base_url(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1:8080");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// The JSON Schema of property `i` of `def` (queryables, OpenAPI): its declared type, or
/// for a layer that lists names only, the type read from its data (string when unknown).
pub(crate) fn property_schema(
    def: &crate::config::LayerDef,
    i: usize,
    inferred: Option<crate::index::FieldType>,
) -> serde_json::Value {
    use crate::index::FieldType;
    use crate::model::schema::PropertyType;
    let name = &def.properties[i];
    let is_time = def
        .time
        .as_ref()
        .is_some_and(|t| t.start == *name || t.end.as_ref() == Some(name));
    let (ty, datetime) = match def.declared_type(i) {
        Some(t) => (t.json_schema_type(), t == PropertyType::DateTime),
        None => (
            match inferred {
                Some(FieldType::Number) => "number",
                Some(FieldType::Boolean) => "boolean",
                _ => "string",
            },
            is_time,
        ),
    };
    let mut schema = serde_json::json!({ "type": ty });
    if datetime {
        schema["format"] = "date-time".into();
    }
    schema
}

/// A header value from text we built ourselves.
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
