//! `GET /fonts/{fontstack}/{range}.pbf`: label glyphs in MapLibre's glyph protocol, for the
//! style's `glyphs` URL. `{fontstack}` is a comma-separated list of font names (URL-encoded,
//! as MapLibre sends it), `{range}` a block of 256 code points such as `0-255`.
//!
//! What the glyphs are and how they are rendered and kept is [`crate::glyphs`]'. Here: a
//! malformed range or stack is a 400 that says what and where, an unknown font a 404; a
//! range rendered before is answered on the runtime, a new one is rendered on the compute
//! pool (shed with 503 like any expensive request). Gzipped to clients that accept it.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::tiles::accepts_gzip;
use crate::api::{ApiError, AppState, Auth};
use crate::glyphs::{GlyphError, GlyphRange};

pub fn routes() -> Router<AppState> {
    Router::new().route("/fonts/{fontstack}/{range}", get(glyphs))
}

impl From<GlyphError> for ApiError {
    fn from(e: GlyphError) -> Self {
        match e {
            GlyphError::Malformed(_) => ApiError::BadRequest(e.to_string()),
            GlyphError::UnknownFont { .. } => ApiError::NotFound(e.to_string()),
            GlyphError::Render { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

async fn glyphs(
    State(state): State<AppState>,
    // Glyphs are public, but a request with a key is checked like any other: a wrong key
    // gets 401 everywhere, so that a client learns of it on its first request.
    Auth(_reader): Auth,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path((fontstack, range)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let range = range.strip_suffix(".pbf").ok_or_else(|| {
        let shown: String = range.chars().take(40).collect();
        ApiError::NotFound(format!("glyphs {shown:?} must end in .pbf"))
    })?;
    let range = GlyphRange::parse(range)?;
    let fonts = state.fonts.clone();
    let stack = fonts.stack(&fontstack)?;
    let gzip_ok = accepts_gzip(&headers);
    // One font's kept range is answered as it is; a stack of several is merged and
    // encoded anew, CPU work for the pool like a new range.
    let kept = if stack.len() == 1 {
        fonts.cached(&stack, range, gzip_ok)
    } else {
        None
    };
    let answer = match kept {
        Some(answer) => answer,
        None => {
            let fonts = fonts.clone();
            state
                .data
                .compute()
                .run(move || fonts.glyphs(&stack, range, gzip_ok))
                .await??
        }
    };
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            ),
            // The fonts are part of the binary: a range changes only with a new release.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
            (header::VARY, HeaderValue::from_static("Accept-Encoding")),
        ],
        answer.bytes,
    )
        .into_response();
    if answer.gzipped {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}
